//! Differential test: our `DISTCC_HOSTS` parser against the distro's real distcc 3.4
//! client. For every host list below, `distcc --show-hosts` and `distcc -j` run with a
//! cleared environment (only `PATH`, `HOME` and `DISTCC_DIR`, both a temp dir, plus
//! `DISTCC_HOSTS`), and our parse must agree with them:
//!
//! - the same outcome: the client reports `Failed to get host list` on stderr exactly
//!   when we return an error (it exits 0 either way, with empty stdout on failure);
//! - on failure, every line the client logs for the error is in its stderr;
//! - on success, the same verbatim tokens in the same order (`--show-hosts`; as a set
//!   when `--randomize` is given, since the client shuffles), the same
//!   slot sum (`-j`), and our non-fatal warnings logged by the client too.
//!
//! Not compared: `+zeroconf`, for which the client starts its zeroconf browser and whose
//! result depends on the machine's Avahi daemon (the grammar tests cover the token).
//! The test fails, not skips, when `/usr/bin/distcc` is missing.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Output};

use common::env::{self, Env};
use common::hosts::{self, HostList, HostsError};

const DISTCC: &str = "/usr/bin/distcc";

/// The 16-host list of distcc's `ParseHostSpec_Case`, verbatim.
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

/// Every form of spec C.3, C.4 and C.7 and every quirk the grammar tests pin.
const CASES: &[&str] = &[
    PARSE_HOST_SPEC,
    // InvalidHostSpec_Case.
    "",
    "    ",
    "\t",
    "  @ ",
    ":",
    "mbp@",
    "angry::",
    ":4200",
    // C.7 "more observed cases".
    "a/2:3633/8",
    "[::1]:3633/2,lzo",
    "u@h/3:/opt/distccd,lzo",
    "localhost/3,cpp,lzo",
    "a/4xyz",
    "a,lzoXYZ",
    "a,down",
    "a,auth=svc",
    "--randomizeXX a",
    "--localslots=3 a",
    "#c\nb",
    // C.7 errors.
    "a/0",
    "a:x",
    "a:12x",
    "a,cpp",
    "a,",
    "a,,lzo",
    "a,foo",
    "@",
    "u@",
    "[::1",
    // C.3 keywords.
    "--randomize a",
    "--randomiz a",
    "--randomize@x a",
    "--randomize",
    "--localslots=abc",
    "--localslots=0 a",
    "--localslots=-2 a",
    "--localslots a",
    "--localslotsXYZ a",
    "--localslots/5 a",
    "--localslots/0",
    "--localslots_cpp=3 a",
    "--localslots_cpp/6 a",
    "--localslots_cpp a",
    "--localslots_cpp=0 a",
    "--localslots_cpp=abc a",
    "--localslots_cpp",
    "--localslots",
    "--localslots=3 --localslots_cpp=2",
    "+zeroconfx",
    // C.4 LOCAL.
    "localhost",
    "localhost/3",
    "localhost/3xyz",
    "localhost/-1",
    "localhost,cpp,lzo",
    "localhost:3632",
    "localhostx",
    "localhost=3",
    "localhostbutnotreally",
    "localhost/",
    "localhost/0",
    "localhost/x",
    // C.4 SSH.
    "@angry",
    "ted@angry",
    "u@h:cmd:with:colons/and/slashes",
    "u@h,lzo,cpp",
    "u@h,down",
    "h@u@v",
    "a,auth=svc@REALM",
    "@h:cmd#x",
    "@angry,lzo#asdasd",
    "@ b",
    "@/3",
    "u@h/0",
    "u@h,cpp",
    "u@h,bogus",
    // C.4 TCP.
    "a",
    "angry/44:300",
    "angry:300/44",
    "[::1]",
    "[::1]=3",
    "[fe80::1]/5:7000",
    "[]",
    "[::1 b",
    "[::1]/0",
    "a=8",
    "a:",
    "a:-5",
    "a:70000",
    "a:4294967296",
    "a:99999999999999999999",
    "a: 5",
    "a:5\x0b",
    "a:+",
    "a:x b",
    ": a",
    "a/-3",
    "a/-3:5",
    "a/+3",
    "a/ 3",
    "a/0 b",
    "a/4294967297",
    "a/4294967296",
    "a/99999999999999999999",
    "a/2147483647 b/2",
    "good b/0",
    // Options.
    "angry,lzo",
    "a,lzocpp",
    "a,cpplzo",
    "a,lzo,cpp",
    "a,cpp,lzo",
    "a,cpp b",
    "a,x b",
    "a,zstd",
    "a,auth",
    "a,auth=",
    "a,auth=svc:x",
    "a,auth=s/v,cpp",
    "a,auth=svc,lzo",
    "a,auth=svc,cpp",
    "a,auth=x,auth",
    "a,lzo#x,cpp",
    // Tokeniser.
    "a\n#c b\nc",
    "a#x b",
    "#c\rb",
    "a\x0bb c",
    " \t\n\x0b\x0c\ra",
    "angry:3000,lzo    # some comment\nb",
    "# only a comment",
    "localhost 127.0.0.1 @angry",
    // Lists pump builds (spec A.6, D.1); the client shuffles the --randomize one.
    "<invalid>,cpp,lzo",
    "--randomize 127.0.0.1,cpp,lzo\nlocalhost,cpp,lzo",
    "--randomize ",
    "h,lzo,cpp,cpp,lzo",
    "h 12,cpp,lzo",
    "h,down,cpp,lzo",
    "localhost/2,cpp,lzo",
];

/// What the client did with one host list.
struct ClientView {
    accepted: bool,
    show_hosts: Vec<String>,
    slots: Option<i32>,
    stderr: String,
}

fn path_var() -> std::ffi::OsString {
    Env::from_process()
        .get(env::PATH)
        .map(OsStr::to_os_string)
        .unwrap_or_else(|| "/usr/bin:/bin".into())
}

fn run_client(arg: &str, hosts: Option<&OsStr>, home: &Path, distcc_dir: Option<&Path>) -> Output {
    let mut cmd = Command::new(DISTCC);
    cmd.arg(arg)
        .env_clear()
        .env(env::PATH, path_var())
        .env(env::HOME, home);
    if let Some(dir) = distcc_dir {
        cmd.env(env::DISTCC_DIR, dir);
    }
    if let Some(h) = hosts {
        cmd.env(env::DISTCC_HOSTS, h);
    }
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {DISTCC} {arg}: {e}"))
}

fn client(hosts: Option<&OsStr>, home: &Path, distcc_dir: Option<&Path>) -> ClientView {
    assert!(
        Path::new(DISTCC).is_file(),
        "{DISTCC} is missing: install Debian's `distcc` package (apt-get install distcc); \
         this differential test needs the real client"
    );
    let show = run_client("--show-hosts", hosts, home, distcc_dir);
    let j = run_client("-j", hosts, home, distcc_dir);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let stderr = text(&show.stderr);
    let accepted = !stderr.contains("Failed to get host list");
    let j_err = text(&j.stderr);
    assert_eq!(
        accepted,
        !j_err.contains("Failed to get host list"),
        "--show-hosts and -j disagree for {hosts:?}: {stderr} / {j_err}"
    );
    let show_hosts: Vec<String> = text(&show.stdout).lines().map(str::to_owned).collect();
    let j_out = text(&j.stdout);
    let slots = if j_out.trim().is_empty() {
        None
    } else {
        Some(
            j_out
                .trim()
                .parse()
                .unwrap_or_else(|e| panic!("distcc -j printed {j_out:?}: {e}")),
        )
    };
    assert!(
        show.status.success() && j.status.success(),
        "the client exits 0 even on a bad list; got {:?} / {:?} for {hosts:?}",
        show.status,
        j.status
    );
    ClientView {
        accepted,
        show_hosts,
        slots,
        stderr,
    }
}

/// The lines the client logs for an error, after its `(function) LEVEL: ` prefix.
fn client_lines(e: &HostsError) -> Vec<String> {
    match e {
        HostsError::UnclosedIpv6 { .. } => vec!["IPv6 Hostname requires closing ']'".into()],
        HostsError::CppWithoutLzo { options } => vec![
            "pump mode (',cpp') requires compression (',lzo')".into(),
            format!("invalid host options: {options}"),
        ],
        other => vec![other.to_string()],
    }
}

/// Every way our parse disagrees with the client's, one readable line each.
fn compare(what: &str, ours: Result<HostList, HostsError>, theirs: &ClientView) -> Vec<String> {
    let mut problems = Vec::new();
    match ours {
        Ok(list) => {
            if !theirs.accepted {
                problems.push(format!(
                    "{what}: we accept, the client rejects: {}",
                    theirs.stderr
                ));
                return problems;
            }
            let mut tokens: Vec<&str> = list.iter().map(|h| h.text()).collect();
            let mut shown: Vec<&str> = theirs.show_hosts.iter().map(String::as_str).collect();
            if list.randomize() {
                // The client shuffled them: compare as sets.
                tokens.sort_unstable();
                shown.sort_unstable();
            }
            if tokens != shown {
                problems.push(format!(
                    "{what}: --show-hosts printed {:?}, we have {tokens:?}",
                    theirs.show_hosts
                ));
            }
            if Some(list.total_slots()) != theirs.slots {
                problems.push(format!(
                    "{what}: -j printed {:?}, our sum is {}",
                    theirs.slots,
                    list.total_slots()
                ));
            }
            for w in list.warnings() {
                if !theirs.stderr.contains(&format!("ERROR: {w}\n")) {
                    problems.push(format!(
                        "{what}: the client did not log our warning {w:?}: {}",
                        theirs.stderr
                    ));
                }
            }
        }
        Err(e) => {
            if theirs.accepted {
                problems.push(format!(
                    "{what}: we reject ({e}), the client accepts {:?}",
                    theirs.show_hosts
                ));
                return problems;
            }
            if !theirs.show_hosts.is_empty() || theirs.slots.is_some() {
                problems.push(format!("{what}: the client printed something on failure"));
            }
            for line in client_lines(&e) {
                if !theirs.stderr.contains(&format!(": {line}\n")) {
                    problems.push(format!(
                        "{what}: the client did not log {line:?}: {}",
                        theirs.stderr
                    ));
                }
            }
        }
    }
    problems
}

/// Fails listing every disagreement at once.
fn assert_agree(problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{} disagreement(s) with {DISTCC}:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn distcc_hosts_values_parse_as_the_real_client_parses_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut specs: Vec<&[u8]> = CASES.iter().map(|s| s.as_bytes()).collect();
    specs.push(b"h\xff/3 x");
    let mut problems = Vec::new();
    for spec in specs {
        let value = OsStr::from_bytes(spec);
        let theirs = client(Some(value), dir.path(), Some(dir.path()));
        let what = format!("DISTCC_HOSTS={value:?}");
        problems.extend(compare(&what, hosts::parse(spec), &theirs));
    }
    assert_agree(&problems);
}

#[test]
fn host_files_are_found_and_parsed_as_the_real_client_does() {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().join("home");
    let top = dir.path().join("top");
    fs::create_dir_all(&home).expect("mkdir home");
    fs::create_dir_all(&top).expect("mkdir top");
    let sysconfdir = Path::new(hosts::DEFAULT_SYSCONFDIR);
    let mut problems = Vec::new();
    let mut check = |what: &str, hosts: Option<&OsStr>, distcc_dir: Option<&Path>| {
        let mut env = Env::from_pairs([(env::HOME, home.as_os_str())]);
        if let Some(d) = distcc_dir {
            env = env.with(env::DISTCC_DIR, d);
        }
        if let Some(h) = hosts {
            env = env.with(env::DISTCC_HOSTS, h);
        }
        let ours = match hosts::find_host_list(&env, sysconfdir) {
            Ok(Some(found)) => found.parse(),
            Ok(None) => Err(HostsError::NoHostList),
            Err(e) => Err(e),
        };
        let theirs = client(hosts, &home, distcc_dir);
        problems.extend(compare(what, ours, &theirs));
    };

    let hosts_file = top.join("hosts");
    fs::write(&hosts_file, "# comment\nfile1/3 file2:4000\n  localhost\n").expect("write");
    check("$DISTCC_DIR/hosts", None, Some(&top));
    check(
        "empty DISTCC_HOSTS beats the file",
        Some(OsStr::new("")),
        Some(&top),
    );
    fs::write(&hosts_file, "# nothing\n").expect("write");
    check("a hosts file without hosts", None, Some(&top));
    fs::write(&hosts_file, "a/0\n").expect("write");
    check("a bad hosts file", None, Some(&top));

    fs::create_dir_all(home.join(".distcc")).expect("mkdir ~/.distcc");
    fs::write(home.join(".distcc/hosts"), "fromhome,lzo,cpp\n").expect("write");
    check("$HOME/.distcc/hosts", None, None);
    fs::remove_file(home.join(".distcc/hosts")).expect("rm");
    check("the system hosts file (or none)", None, None);
    let missing = top.join("sub");
    check(
        "DISTCC_DIR without hosts falls to the system file",
        None,
        Some(&missing),
    );
    assert_agree(&problems);
}
