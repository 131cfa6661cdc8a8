//! distcc's `ParseHostSpec_Case` and `InvalidHostSpec_Case` (spec C.7, D.1), run against
//! the `h_hosts` example's own code.

use std::path::Path;

use common::env::{self, Env};

#[allow(dead_code)]
#[path = "../examples/h_hosts.rs"]
mod h_hosts;

/// The host list of `ParseHostSpec_Case`, verbatim (Python's `\t` is a real tab).
const PARSE_HOST_SPEC: &str = "localhost 127.0.0.1 @angry   ted@angry
        \t@angry:/home/mbp/bin/distccd  angry:4204
        ipv4-localhost
        angry/44
        angry:300/44
        angry/44:300
        angry,lzo
        angry:3000,lzo    # some comment
        angry/44,lzo
        @angry,lzo#asdasd
        # oh yeah nothing here
        @angry:/usr/sbin/distccd,lzo
        localhostbutnotreally
        ";

/// Its expected output, verbatim.
const PARSE_HOST_SPEC_OUT: &str = "16
   2 LOCAL
   4 TCP 127.0.0.1 3632
   4 SSH (no-user) angry (no-command)
   4 SSH ted angry (no-command)
   4 SSH (no-user) angry /home/mbp/bin/distccd
   4 TCP angry 4204
   4 TCP ipv4-localhost 3632
  44 TCP angry 3632
  44 TCP angry 300
  44 TCP angry 300
   4 TCP angry 3632
   4 TCP angry 3000
  44 TCP angry 3632
   4 SSH (no-user) angry (no-command)
   4 SSH (no-user) angry /usr/sbin/distccd
   4 TCP localhostbutnotreally 3632
";

/// Runs the example's `h_hosts` with only `DISTCC_HOSTS` set and no hosts files.
fn run(spec: &str) -> (u8, String, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let env = Env::from_pairs([
        (env::DISTCC_HOSTS, spec),
        (env::HOME, dir.path().to_str().expect("utf-8 temp path")),
    ]);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = h_hosts::h_hosts(&env, &dir.path().join("etc"), &mut out, &mut err)
        .expect("writing to buffers");
    let text = |b: Vec<u8>| String::from_utf8(b).expect("utf-8 output");
    (code, text(out), text(err))
}

#[test]
fn parse_host_spec_case() {
    let (code, out, err) = run(PARSE_HOST_SPEC);
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(out, PARSE_HOST_SPEC_OUT);
}

#[test]
fn invalid_host_spec_case() {
    for spec in ["", "    ", "\t", "  @ ", ":", "mbp@", "angry::", ":4200"] {
        let (code, out, err) = run(spec);
        assert_eq!(code, 106, "exit code for {spec:?}");
        assert_eq!(out, "", "stdout for {spec:?}");
        assert!(
            err.contains("failed to parse"),
            "stderr for {spec:?}: {err}"
        );
    }
}

#[test]
fn more_observed_cases_print_like_h_hosts() {
    let cases = [
        ("a/2:3633/8", "1\n   8 TCP a 3633\n"),
        ("[::1]:3633/2,lzo", "1\n   2 TCP ::1 3633\n"),
        ("u@h/3:/opt/distccd,lzo", "1\n   3 SSH u h /opt/distccd\n"),
        ("localhost/3,cpp,lzo", "1\n   3 LOCAL\n"),
        ("a/4xyz", "1\n   4 TCP a 3632\n"),
        ("a,lzoXYZ", "1\n   4 TCP a 3632\n"),
        ("a,down", "1\n   4 TCP a 3632\n"),
        ("a,auth=svc", "1\n   4 TCP a 3632\n"),
        ("--randomizeXX a", "1\n   4 TCP a 3632\n"),
        ("--localslots=3 a", "1\n   4 TCP a 3632\n"),
        ("--localslots=abc", "1\n   4 TCP --localslots=abc 3632\n"),
        ("#c\nb", "1\n   4 TCP b 3632\n"),
        ("a/-3", "1\n  -3 TCP a 3632\n"),
        (
            "a: a:-5 a:70000",
            "3\n   4 TCP a 0\n   4 TCP a -5\n   4 TCP a 70000\n",
        ),
        ("+zeroconf", "1\n   0 ZEROCONF\n"),
    ];
    for (spec, want) in cases {
        let (code, out, _) = run(spec);
        assert_eq!((code, out.as_str()), (0, want), "spec {spec:?}");
    }
}

#[test]
fn bad_localslots_is_reported_but_not_fatal() {
    let (code, out, err) = run("--localslots=abc");
    assert_eq!(code, 0);
    assert_eq!(out, "1\n   4 TCP --localslots=abc 3632\n");
    assert_eq!(
        err,
        "h_hosts: bad multiplier \"=abc\" in host specification\n"
    );
}

#[test]
fn no_list_at_all_exits_106() {
    let dir = tempfile::tempdir().expect("temp dir");
    let env = Env::from_pairs([(env::DISTCC_DIR, dir.path())]);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = h_hosts::h_hosts(
        &env,
        Path::new("/nonexistent-sysconfdir"),
        &mut out,
        &mut err,
    )
    .expect("writing to buffers");
    assert_eq!(code, 106);
    assert!(out.is_empty());
    let err = String::from_utf8(err).expect("utf-8");
    assert!(
        err.starts_with("h_hosts: no hostlist is set; can't distribute work\n"),
        "{err}"
    );
}
