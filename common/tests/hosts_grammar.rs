//! Table-driven tests of the `DISTCC_HOSTS` grammar: every form of spec C.3, C.4 and C.7,
//! plus the quirks observed with Debian's distcc 3.4 client while writing the parser.

use common::hosts::{self, HostKind, HostList, HostSpec, HostsError, Protocol};

/// One line per entry: slots, kind and parts, protocol and flags.
fn describe(h: &HostSpec) -> String {
    let flags = |o: &hosts::HostOptions| {
        let mut s = format!(" p{}", o.protocol().number());
        if o.down() {
            s.push_str(" down");
        }
        if o.auth() {
            s.push_str(" auth");
            if let Some(name) = o.auth_name() {
                s.push('=');
                s.push_str(name);
            }
        }
        s
    };
    match h.kind() {
        HostKind::Local => format!("{} LOCAL", h.slots()),
        HostKind::Tcp {
            host,
            port,
            options,
        } => format!("{} TCP {host} {port}{}", h.slots(), flags(options)),
        HostKind::Ssh {
            user,
            host,
            command,
            options,
        } => format!(
            "{} SSH {} {host} {}{}",
            h.slots(),
            user.as_deref().unwrap_or("-"),
            command.as_deref().unwrap_or("-"),
            flags(options)
        ),
        HostKind::Zeroconf => format!("{} ZEROCONF", h.slots()),
    }
}

fn parse_ok(spec: &str) -> HostList {
    match hosts::parse(spec) {
        Ok(list) => list,
        Err(e) => panic!("{spec:?} should parse, got: {e}"),
    }
}

/// Accepted host lists: (spec, [(verbatim token, description)]).
const ACCEPTED: &[(&str, &[(&str, &str)])] = &[
    // C.4 LOCAL: 9 characters, or '/' as the 10th; options never parsed.
    ("localhost", &[("localhost", "2 LOCAL")]),
    ("localhost/3", &[("localhost/3", "3 LOCAL")]),
    ("localhost/3,cpp,lzo", &[("localhost/3,cpp,lzo", "3 LOCAL")]),
    ("localhost/3xyz", &[("localhost/3xyz", "3 LOCAL")]),
    ("localhost/-1", &[("localhost/-1", "-1 LOCAL")]),
    (
        "localhost,cpp,lzo",
        &[("localhost,cpp,lzo", "4 TCP localhost 3632 p3")],
    ),
    (
        "localhost:3632",
        &[("localhost:3632", "4 TCP localhost 3632 p1")],
    ),
    ("localhostx", &[("localhostx", "4 TCP localhostx 3632 p1")]),
    (
        "localhost=3",
        &[("localhost=3", "4 TCP localhost=3 3632 p1")],
    ),
    (
        "localhostbutnotreally",
        &[(
            "localhostbutnotreally",
            "4 TCP localhostbutnotreally 3632 p1",
        )],
    ),
    // C.4 SSH: '@' anywhere; user before the first '@'; /LIMIT before :COMMAND.
    ("@angry", &[("@angry", "4 SSH - angry - p1")]),
    ("ted@angry", &[("ted@angry", "4 SSH ted angry - p1")]),
    (
        "u@h/3:/opt/distccd,lzo",
        &[("u@h/3:/opt/distccd,lzo", "3 SSH u h /opt/distccd p2")],
    ),
    (
        "u@h:cmd:with:colons/and/slashes",
        &[(
            "u@h:cmd:with:colons/and/slashes",
            "4 SSH u h cmd:with:colons/and/slashes p1",
        )],
    ),
    ("u@h,lzo,cpp", &[("u@h,lzo,cpp", "4 SSH u h - p3")]),
    ("u@h,down", &[("u@h,down", "4 SSH u h - p1 down")]),
    ("h@u@v", &[("h@u@v", "4 SSH h u@v - p1")]),
    (
        "a,auth=svc@REALM",
        &[("a,auth=svc@REALM", "4 SSH a,auth=svc REALM - p1")],
    ),
    ("@h:cmd#x", &[("@h:cmd", "4 SSH - h cmd#x p1")]),
    ("@angry,lzo#asdasd", &[("@angry,lzo", "4 SSH - angry - p2")]),
    // C.4 TCP: old and new style multipliers, [ipv6], strtol ports.
    ("a", &[("a", "4 TCP a 3632 p1")]),
    ("a/2:3633/8", &[("a/2:3633/8", "8 TCP a 3633 p1")]),
    ("angry/44:300", &[("angry/44:300", "44 TCP angry 300 p1")]),
    ("angry:300/44", &[("angry:300/44", "44 TCP angry 300 p1")]),
    (
        "[::1]:3633/2,lzo",
        &[("[::1]:3633/2,lzo", "2 TCP ::1 3633 p2")],
    ),
    ("[::1]", &[("[::1]", "4 TCP ::1 3632 p1")]),
    ("[::1]=3", &[("[::1]=3", "3 TCP ::1 3632 p1")]),
    (
        "[fe80::1]/5:7000",
        &[("[fe80::1]/5:7000", "5 TCP fe80::1 7000 p1")],
    ),
    ("a=8", &[("a=8", "4 TCP a=8 3632 p1")]),
    ("a:", &[("a:", "4 TCP a 0 p1")]),
    ("a:-5", &[("a:-5", "4 TCP a -5 p1")]),
    ("a:70000", &[("a:70000", "4 TCP a 70000 p1")]),
    ("a:4294967296", &[("a:4294967296", "4 TCP a 0 p1")]),
    (
        "a:99999999999999999999",
        &[("a:99999999999999999999", "4 TCP a -1 p1")],
    ),
    ("a: 5", &[("a:", "4 TCP a 5 p1"), ("5", "4 TCP 5 3632 p1")]),
    ("a:5\x0b", &[("a:5\x0b", "4 TCP a 5 p1")]),
    ("a/4xyz", &[("a/4xyz", "4 TCP a 3632 p1")]),
    ("a/-3", &[("a/-3", "-3 TCP a 3632 p1")]),
    ("a/-3:5", &[("a/-3:5", "-3 TCP a 3632 p1")]),
    ("a/+3", &[("a/+3", "3 TCP a 3632 p1")]),
    (
        "a/ 3",
        &[("a/", "3 TCP a 3632 p1"), ("3", "4 TCP 3 3632 p1")],
    ),
    ("a/4294967297", &[("a/4294967297", "1 TCP a 3632 p1")]),
    (
        "a/99999999999999999999",
        &[("a/99999999999999999999", "-1 TCP a 3632 p1")],
    ),
    // Options: prefix matches, order free, auth names.
    ("angry,lzo", &[("angry,lzo", "4 TCP angry 3632 p2")]),
    ("a,lzoXYZ", &[("a,lzoXYZ", "4 TCP a 3632 p2")]),
    ("a,lzocpp", &[("a,lzocpp", "4 TCP a 3632 p2")]),
    ("a,lzo,cpp", &[("a,lzo,cpp", "4 TCP a 3632 p3")]),
    ("a,cpp,lzo", &[("a,cpp,lzo", "4 TCP a 3632 p3")]),
    ("a,down", &[("a,down", "4 TCP a 3632 p1 down")]),
    ("a,auth", &[("a,auth", "4 TCP a 3632 p1 auth")]),
    ("a,auth=", &[("a,auth=", "4 TCP a 3632 p1 auth")]),
    ("a,auth=svc", &[("a,auth=svc", "4 TCP a 3632 p1 auth=svc")]),
    (
        "a,auth=svc:x",
        &[("a,auth=svc:x", "4 TCP a 3632 p1 auth=svc")],
    ),
    (
        "a,auth=s/v,cpp",
        &[("a,auth=s/v,cpp", "4 TCP a 3632 p1 auth=s")],
    ),
    (
        "a,auth=svc,lzo",
        &[("a,auth=svc,lzo", "4 TCP a 3632 p2 auth=svc")],
    ),
    (
        "a,auth=x,auth",
        &[("a,auth=x,auth", "4 TCP a 3632 p1 auth=x")],
    ),
    (
        "a,auth=x,auth=",
        &[("a,auth=x,auth=", "4 TCP a 3632 p1 auth")],
    ),
    ("a,lzo#x,cpp", &[("a,lzo", "4 TCP a 3632 p2")]),
    // C.2 tokeniser: comments, \v inside tokens, host names running past '#'.
    ("#c\nb", &[("b", "4 TCP b 3632 p1")]),
    (
        "a\n#c b\nc",
        &[("a", "4 TCP a 3632 p1"), ("c", "4 TCP c 3632 p1")],
    ),
    ("a#x b", &[("a", "4 TCP a#x 3632 p1")]),
    ("#c\rb", &[("b", "4 TCP b 3632 p1")]),
    (
        "a\x0bb c",
        &[("a\x0bb", "4 TCP a\x0bb 3632 p1"), ("c", "4 TCP c 3632 p1")],
    ),
    (" \t\n\x0b\x0c\ra", &[("a", "4 TCP a 3632 p1")]),
    (
        "angry:3000,lzo    # some comment\nb",
        &[
            ("angry:3000,lzo", "4 TCP angry 3000 p2"),
            ("b", "4 TCP b 3632 p1"),
        ],
    ),
    // C.3 keywords.
    (
        "--randomiz a",
        &[
            ("--randomiz", "4 TCP --randomiz 3632 p1"),
            ("a", "4 TCP a 3632 p1"),
        ],
    ),
    (
        "--localslots=abc",
        &[("--localslots=abc", "4 TCP --localslots=abc 3632 p1")],
    ),
    (
        "--localslots=0 a",
        &[
            ("--localslots=0", "4 TCP --localslots=0 3632 p1"),
            ("a", "4 TCP a 3632 p1"),
        ],
    ),
    ("+zeroconf", &[("+zeroconf", "0 ZEROCONF")]),
    (
        "+zeroconf a",
        &[("+zeroconf", "0 ZEROCONF"), ("a", "4 TCP a 3632 p1")],
    ),
    ("+zeroconfx", &[("+zeroconfx", "4 TCP +zeroconfx 3632 p1")]),
    // Lists pump builds (spec A.6, D.1).
    (
        "<invalid>,cpp,lzo",
        &[("<invalid>,cpp,lzo", "4 TCP <invalid> 3632 p3")],
    ),
    (
        "--randomize 127.0.0.1,cpp,lzo\nlocalhost,cpp,lzo",
        &[
            ("127.0.0.1,cpp,lzo", "4 TCP 127.0.0.1 3632 p3"),
            ("localhost,cpp,lzo", "4 TCP localhost 3632 p3"),
        ],
    ),
    (
        "h,lzo,cpp,cpp,lzo",
        &[("h,lzo,cpp,cpp,lzo", "4 TCP h 3632 p3")],
    ),
    (
        "h 12,cpp,lzo",
        &[("h", "4 TCP h 3632 p1"), ("12,cpp,lzo", "4 TCP 12 3632 p3")],
    ),
    (
        "h,down,cpp,lzo",
        &[("h,down,cpp,lzo", "4 TCP h 3632 p3 down")],
    ),
    ("localhost/2,cpp,lzo", &[("localhost/2,cpp,lzo", "2 LOCAL")]),
];

#[test]
fn accepted_forms_parse_to_the_expected_hosts() {
    for (spec, want) in ACCEPTED {
        let list = parse_ok(spec);
        let got: Vec<(String, String)> = list
            .iter()
            .map(|h| (h.text().to_owned(), describe(h)))
            .collect();
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(t, d)| (t.to_string(), d.to_string()))
            .collect();
        assert_eq!(got, want, "spec {spec:?}");
    }
}

#[test]
fn display_writes_the_verbatim_token_and_reparses_to_the_same_tokens() {
    for (spec, _) in ACCEPTED {
        let list = parse_ok(spec);
        let texts: Vec<String> = list.iter().map(ToString::to_string).collect();
        let verbatim: Vec<&str> = list.iter().map(HostSpec::text).collect();
        assert_eq!(texts, verbatim, "spec {spec:?}");
        let again = parse_ok(&texts.join(" "));
        let again: Vec<String> = again.iter().map(ToString::to_string).collect();
        assert_eq!(again, texts, "spec {spec:?}");
    }
}

/// A keyword case: (spec, randomize, localslots, localslots_cpp, warnings, host tokens).
type KeywordCase = (
    &'static str,
    bool,
    i32,
    i32,
    &'static [&'static str],
    &'static [&'static str],
);

/// Keyword tokens and the list values they set.
const KEYWORDS: &[KeywordCase] = &[
    ("a", false, 4, 8, &[], &["a"]),
    ("--randomize a b", true, 4, 8, &[], &["a", "b"]),
    ("a --randomizeXX b", true, 4, 8, &[], &["a", "b"]),
    ("--randomizeXX a", true, 4, 8, &[], &["a"]),
    ("--randomize@x a", true, 4, 8, &[], &["a"]),
    ("--localslots=3 a", false, 3, 8, &[], &["a"]),
    ("--localslots/5 a", false, 5, 8, &[], &["a"]),
    ("--localslots=-2 a", false, -2, 8, &[], &["a"]),
    ("--localslots a", false, 4, 8, &[], &["a"]),
    ("--localslotsXYZ a", false, 4, 8, &[], &["a"]),
    ("--localslots_cpp=3 a", false, 4, 3, &[], &["a"]),
    ("--localslots_cpp/6 a", false, 4, 6, &[], &["a"]),
    ("--localslots_cpp a", false, 4, 8, &[], &["a"]),
    (
        "--localslots_cpp=0 a",
        false,
        4,
        8,
        &["bad multiplier \"=0 a\" in host specification"],
        &["a"],
    ),
    (
        "--localslots_cpp=abc a",
        false,
        4,
        8,
        &["bad multiplier \"=abc a\" in host specification"],
        &["a"],
    ),
    (
        "--localslots=abc",
        false,
        4,
        8,
        &["bad multiplier \"=abc\" in host specification"],
        &["--localslots=abc"],
    ),
    (
        "--localslots=0 a",
        false,
        4,
        8,
        &["bad multiplier \"=0 a\" in host specification"],
        &["--localslots=0", "a"],
    ),
    (
        "--localslots=2 --localslots_cpp=7 --randomize x",
        true,
        2,
        7,
        &[],
        &["x"],
    ),
];

#[test]
fn keywords_set_the_list_values_and_bad_multipliers_fall_through() {
    for (spec, randomize, localslots, localslots_cpp, warnings, tokens) in KEYWORDS {
        let list = parse_ok(spec);
        assert_eq!(list.randomize(), *randomize, "randomize of {spec:?}");
        assert_eq!(list.localslots(), *localslots, "localslots of {spec:?}");
        assert_eq!(
            list.localslots_cpp(),
            *localslots_cpp,
            "localslots_cpp of {spec:?}"
        );
        let got: Vec<String> = list.warnings().iter().map(ToString::to_string).collect();
        assert_eq!(got, *warnings, "warnings of {spec:?}");
        let got: Vec<&str> = list.iter().map(HostSpec::text).collect();
        assert_eq!(got, *tokens, "hosts of {spec:?}");
    }
}

fn multiplier(text: &str) -> HostsError {
    HostsError::BadMultiplier { text: text.into() }
}
fn port(text: &str) -> HostsError {
    HostsError::InvalidPort { text: text.into() }
}
fn tcp_name(text: &str) -> HostsError {
    HostsError::TcpHostnameRequired { text: text.into() }
}
fn ssh_name(text: &str) -> HostsError {
    HostsError::SshHostnameRequired { text: text.into() }
}
fn option(options: &str) -> HostsError {
    HostsError::UnrecognizedOption {
        options: options.into(),
    }
}
fn cpp(options: &str) -> HostsError {
    HostsError::CppWithoutLzo {
        options: options.into(),
    }
}
fn none() -> HostsError {
    HostsError::NoHosts {
        source_name: "$DISTCC_HOSTS".into(),
    }
}

/// Rejected host lists and the error each gives.
fn rejected() -> Vec<(&'static str, HostsError)> {
    vec![
        // InvalidHostSpec_Case, every input.
        ("", none()),
        ("    ", none()),
        ("\t", none()),
        ("  @ ", ssh_name("@ ")),
        (":", tcp_name(":")),
        ("mbp@", ssh_name("mbp@")),
        ("angry::", port(":")),
        (":4200", tcp_name(":4200")),
        // C.7 error examples and what the client was seen to print for them.
        ("a/0", multiplier("/0")),
        ("a/0 b", multiplier("/0 b")),
        ("a:x", port("x")),
        ("a:x b", port("x b")),
        ("a:12x", port("12x")),
        ("a:+", port("+")),
        ("a,cpp", cpp(",cpp")),
        ("a,cpp b", cpp(",cpp b")),
        ("a,cpplzo", cpp(",cpplzo")),
        ("a,auth=svc,cpp", cpp(",auth=svc,cpp")),
        ("u@h,cpp", cpp(",cpp")),
        ("a,", option(",")),
        ("a,,lzo", option(",,lzo")),
        ("a,foo", option(",foo")),
        ("a,x b", option(",x b")),
        ("a,zstd", option(",zstd")),
        ("u@h,bogus", option(",bogus")),
        ("@", ssh_name("@")),
        ("u@", ssh_name("u@")),
        ("@ b", ssh_name("@ b")),
        ("@/3", ssh_name("@/3")),
        ("u@h/0", multiplier("/0")),
        (": a", tcp_name(": a")),
        ("[]", tcp_name("[]")),
        (
            "[::1",
            HostsError::UnclosedIpv6 {
                text: "[::1".into(),
            },
        ),
        (
            "[::1 b",
            HostsError::UnclosedIpv6 {
                text: "[::1 b".into(),
            },
        ),
        ("[::1]/0", multiplier("/0")),
        ("a/4294967296", multiplier("/4294967296")),
        ("localhost/", multiplier("/")),
        ("localhost/0", multiplier("/0")),
        ("localhost/x", multiplier("/x")),
        ("--localslots/0", multiplier("/0")),
        ("good b/0", multiplier("/0")),
        // Lists holding no host.
        ("# only a comment", none()),
        ("--randomize", none()),
        ("--localslots=3 --localslots_cpp=2", none()),
        ("--localslots_cpp", none()),
        ("--localslots", none()),
        ("--randomize ", none()),
    ]
}

#[test]
fn rejected_forms_give_the_clients_error() {
    for (spec, want) in rejected() {
        match hosts::parse(spec) {
            Ok(list) => panic!("{spec:?} should fail, parsed {:?}", list.hosts()),
            Err(e) => {
                assert_eq!(e, want, "spec {spec:?}");
                assert_eq!(e.exit_code(), hosts::EXIT_BAD_HOSTSPEC, "spec {spec:?}");
            }
        }
    }
}

#[test]
fn error_messages_are_the_clients_texts() {
    let cases = [
        ("a/0", "bad multiplier \"/0\" in host specification"),
        ("a:x", "invalid tcp port specification in \"x\""),
        (
            ":4200",
            "hostname is required in tcp host specification \":4200\"",
        ),
        (
            "u@",
            "hostname is required in SSH host specification \"u@\"",
        ),
        ("[::1", "IPv6 Hostname requires closing ']' in \"[::1\""),
        ("a,foo", "unrecognized option in host specification: ,foo"),
        (
            "a,cpp",
            "pump mode (',cpp') requires compression (',lzo'); invalid host options: ,cpp",
        ),
        (
            "",
            "$DISTCC_HOSTS contained no hosts; can't distribute work",
        ),
    ];
    for (spec, want) in cases {
        let e = hosts::parse(spec).expect_err(spec);
        assert_eq!(e.to_string(), want, "spec {spec:?}");
    }
    assert_eq!(hosts::EXIT_BAD_HOSTSPEC, 106);
    assert_eq!(
        HostsError::NoHostList.to_string(),
        "no hostlist is set; can't distribute work"
    );
}

#[test]
fn no_hosts_names_the_source() {
    let source = hosts::HostSource::File("/etc/distcc/hosts".into());
    let e = hosts::parse_source("# nothing\n", &source).unwrap_err();
    assert_eq!(
        e.to_string(),
        "/etc/distcc/hosts contained no hosts; can't distribute work"
    );
}

#[test]
fn text_stops_at_nul_and_survives_bad_utf8() {
    let list = hosts::parse(b"a b\0c").unwrap();
    let got: Vec<&str> = list.iter().map(HostSpec::text).collect();
    assert_eq!(got, ["a", "b"]);
    let list = hosts::parse(b"h\xff/3 x").unwrap();
    assert_eq!(list.hosts()[0].hostname(), Some("h\u{fffd}"));
    assert_eq!(list.hosts()[0].slots(), 3);
    assert_eq!(list.len(), 2);
}

#[test]
fn accessors_expose_the_parts() {
    let list = parse_ok("localhost u@h:/bin/d,lzo [::1]:7/2,lzo,cpp,down +zeroconf");
    let [local, ssh, tcp, zc] = list.hosts() else {
        panic!("four entries expected: {:?}", list.hosts());
    };
    assert!(local.is_local());
    assert_eq!(local.hostname(), Some("localhost"));
    assert_eq!(local.options(), None);
    assert_eq!(local.protocol(), Protocol::V1);
    assert_eq!(ssh.user(), Some("u"));
    assert_eq!(ssh.hostname(), Some("h"));
    assert_eq!(ssh.command(), Some("/bin/d"));
    assert_eq!(ssh.port(), None);
    assert_eq!(ssh.protocol(), Protocol::V2);
    assert!(ssh.options().is_some_and(|o| o.lzo() && !o.cpp()));
    assert_eq!(tcp.hostname(), Some("::1"));
    assert_eq!(tcp.port(), Some(7));
    assert_eq!(tcp.slots(), 2);
    assert_eq!(tcp.protocol(), Protocol::V3);
    assert_eq!(tcp.protocol().number(), 3);
    assert!(tcp
        .options()
        .is_some_and(|o| o.down() && o.cpp() && o.lzo()));
    assert_eq!(zc.kind(), &HostKind::Zeroconf);
    assert_eq!(zc.hostname(), None);
    assert_eq!(zc.slots(), 0);
    assert_eq!(list.total_slots(), 2 + 4 + 2);
}

#[test]
fn total_slots_adds_like_distcc_j() {
    for (spec, want) in [
        ("localhost 127.0.0.1 @angry", 10),
        ("--localslots=3 a", 4),
        ("a/-3", -3),
        ("a/2147483647 b/2", -2147483647),
    ] {
        assert_eq!(parse_ok(spec).total_slots(), want, "spec {spec:?}");
    }
}

#[test]
fn shuffle_is_a_seeded_permutation_and_randomize_only_acts_when_asked() {
    let spec = "a b c d e f g h i j localhost";
    let written: Vec<String> = parse_ok(spec).iter().map(ToString::to_string).collect();

    let mut plain = parse_ok(spec);
    plain.apply_randomize();
    let got: Vec<String> = plain.iter().map(ToString::to_string).collect();
    assert_eq!(got, written, "no --randomize: written order kept");

    let shuffled = |seed| {
        let mut l = parse_ok(spec);
        l.shuffle_with_seed(seed);
        l.iter().map(ToString::to_string).collect::<Vec<_>>()
    };
    assert_eq!(shuffled(7), shuffled(7), "same seed, same order");
    let mut sorted = shuffled(7);
    sorted.sort();
    let mut want = written.clone();
    want.sort();
    assert_eq!(sorted, want, "a permutation of the same hosts");
    assert!(
        (0..20).any(|seed| shuffled(seed) != written),
        "some seed moves something"
    );

    let mut randomized = parse_ok(&format!("--randomize {spec}"));
    randomized.apply_randomize();
    let mut got: Vec<String> = randomized.iter().map(ToString::to_string).collect();
    got.sort();
    assert_eq!(got, want);
}
