//! `pump` end to end: the real distcc client, a real loopback distccd, our include server
//! and lsdistcc, and the sample project in `tests/sample-project`.

use std::io::{BufRead, BufReader};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use e2e::{bin, wait_pid_gone, Distccd, Run, TestEnv};

/// The sample project, copied into the test's temp dir.
fn sample_project(env: &TestEnv) -> PathBuf {
    e2e::sample_project(env.path())
}

/// A test environment whose hosts are the loopback distccd in pump mode, with local
/// fall-back forbidden, so a wrong closure fails the build.
fn pump_env(d: &Distccd) -> TestEnv {
    let mut env = TestEnv::new();
    env.set("DISTCC_HOSTS", format!("{}/4,cpp,lzo", d.host()))
        .set("DISTCC_FALLBACK", "0")
        .set("PUMP_SYSCONFDIR", "/nonexistent")
        .set("DISTCC_LOG", "")
        .set("DISTCC_VERBOSE", "0");
    env
}

/// Objects the sample project builds.
const OBJECTS: &[&str] = &[
    "src/main.o",
    "src/greet.o",
    "src/table.o",
    "lib/strbuf.o",
    "src/shapes.o",
    "src/stats.o",
];

/// Sources compiled in pump mode according to distccd's log.
fn compiled_remotely(d: &Distccd) -> Vec<String> {
    d.wait_for_jobs(OBJECTS.len());
    d.pump_mode_jobs()
}

/// Everything left in a temp dir.
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Processes whose command line mentions `needle` (our include server has its socket
/// path in its arguments).
fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            if String::from_utf8_lossy(&cmd).contains(needle) && pid != std::process::id() {
                pids.push(pid);
            }
        }
    }
    pids
}

/// `pump make -j4` of the sample project, with `make_args` after `-j4`: every translation
/// unit is served by the include server, compiled by distccd in pump mode, and the
/// program runs. Returns make's output.
fn pump_make_sample(make_args: &[&str]) -> String {
    let d = Distccd::start();
    let env = pump_env(&d);
    let project = sample_project(&env);
    let run = Run::of(
        env.cmd(bin("pump"))
            .args(["make", "-j4"])
            .args(make_args)
            .current_dir(&project),
    );
    run.expect_success();
    assert!(
        run.stdout.contains("__________Using distcc-pump from"),
        "{run}"
    );
    assert!(
        run.stdout
            .contains("__________Using 1 distcc server in pump mode"),
        "{run}"
    );
    assert!(
        run.stdout
            .contains("__________Include server: 6 of 6 translation unit(s) served"),
        "{run}"
    );
    for o in OBJECTS {
        assert!(project.join(o).is_file(), "{o} missing\n{run}");
    }
    let out = Run::of(env.cmd(project.join("sample")).current_dir(&project));
    out.expect_success();
    assert!(out.stdout.starts_with("hello from posix"), "{out}");
    let remote = compiled_remotely(&d);
    assert_eq!(
        remote.len(),
        OBJECTS.len(),
        "distccd log:\n{}\n{run}",
        d.log()
    );
    assert!(
        leftovers(&env.tmp()).is_empty(),
        "left in TMPDIR: {:?}",
        leftovers(&env.tmp())
    );
    run.stdout.clone()
}

#[test]
fn pump_make_compiles_every_translation_unit_remotely() {
    pump_make_sample(&[]);
}

#[test]
fn pump_make_with_clang_compiles_every_translation_unit_remotely() {
    // Another compiler family: its own probe output and predefined macros, and no
    // guessed walk while it is probed (the guess knows GCC's layout only).
    let out = pump_make_sample(&["CC=distcc clang", "CXX=distcc clang++"]);
    assert!(out.contains("distcc clang -"), "{out}");
    assert!(out.contains("distcc clang++ -"), "{out}");
}

#[test]
fn startup_eval_make_shutdown() {
    let d = Distccd::start();
    let env = pump_env(&d);
    let project = sample_project(&env);
    let pump = bin("pump");
    let script = format!(
        r#"eval "$('{pump}' --startup)" || exit 90
echo "pid=$INCLUDE_SERVER_PID" > ../server.txt
make -j4; rc=$?
'{pump}' --shutdown
exit $rc"#,
        pump = pump.display()
    );
    let run = Run::of(env.cmd("sh").args(["-c", &script]).current_dir(&project));
    run.expect_success();
    for o in OBJECTS {
        assert!(project.join(o).is_file(), "{o} missing\n{run}");
    }
    assert_eq!(compiled_remotely(&d).len(), OBJECTS.len(), "{}", d.log());
    assert!(
        run.stdout
            .contains("__________Shutting down distcc-pump include server"),
        "{run}"
    );
    let pid: u32 = std::fs::read_to_string(env.path().join("server.txt"))
        .unwrap()
        .trim()
        .trim_start_matches("pid=")
        .parse()
        .unwrap();
    assert!(
        wait_pid_gone(pid, Duration::from_secs(1)),
        "include server {pid} still running"
    );
    assert!(
        leftovers(&env.tmp()).is_empty(),
        "left in TMPDIR: {:?}",
        leftovers(&env.tmp())
    );
}

#[test]
fn startup_prints_eval_safe_exports() {
    let mut env = TestEnv::new();
    let odd = "127.0.0.1:1/2,cpp,lzo it's [x]*";
    env.set("DISTCC_HOSTS", odd)
        .set("INCLUDE_SERVER_ARGS", r#"--stat_reset_triggers="a b*" -s"#);
    let run = Run::of(env.cmd(bin("pump")).arg("--startup"));
    run.expect_success();
    let lines = run.lines();
    assert_eq!(lines.len(), 5, "{run}");
    for (line, name) in lines.iter().zip([
        "INCLUDE_SERVER_PID",
        "INCLUDE_SERVER_DIR",
        "INCLUDE_SERVER_PORT",
        "DISTCC_HOSTS",
        "PATH",
    ]) {
        assert!(
            line.starts_with(&format!("export {name}='")),
            "{line}\n{run}"
        );
    }
    // The exports survive eval byte for byte, quotes and glob characters included.
    let script = format!(
        "{}\nprintf '%s\\n' \"$DISTCC_HOSTS\" \"$INCLUDE_SERVER_PID\"",
        run.stdout
    );
    let shell = Run::of(env.cmd("sh").args(["-c", &script]));
    shell.expect_success();
    let got = shell.lines();
    assert_eq!(got[0], odd);
    let pid: i32 = got[1].parse().unwrap();
    // INCLUDE_SERVER_ARGS was split with shell quoting, and nothing else was run.
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    assert!(
        args.contains(&&b"--stat_reset_triggers=a b*"[..]),
        "{:?}",
        String::from_utf8_lossy(&cmdline)
    );
    let stop = Run::of(
        env.cmd(bin("pump"))
            .arg("--shutdown")
            .envs(shell_exports(&run.stdout)),
    );
    stop.expect_success();
    assert!(wait_pid_gone(pid as u32, Duration::from_secs(1)));
    assert!(
        leftovers(&env.tmp()).is_empty(),
        "{:?}",
        leftovers(&env.tmp())
    );
}

/// The NAME=value pairs of `export NAME='value'` lines (values without quotes inside).
fn shell_exports(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.starts_with("INCLUDE_SERVER"))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
        .collect()
}

#[test]
fn potential_hosts_are_probed_with_our_lsdistcc() {
    let d = Distccd::start();
    let mut env = TestEnv::new();
    env.set("DISTCC_POTENTIAL_HOSTS", "127.0.0.1 no-such-host.invalid")
        .set("LSDISTCC_ARGS", format!("-r{} -g5", d.port()));
    let run = Run::of(
        env.cmd(bin("pump"))
            .args(["sh", "-c", "printf '%s' \"$DISTCC_HOSTS\""]),
    );
    run.expect_success();
    assert!(
        run.stdout
            .contains("__________Found 1 available distcc servers"),
        "{run}"
    );
    assert!(
        run.stdout
            .contains(&format!("--randomize 127.0.0.1:{},cpp,lzo", d.port())),
        "{run}"
    );
}

#[test]
fn the_commands_exit_status_passes_through() {
    let mut env = TestEnv::new();
    env.set("DISTCC_HOSTS", "127.0.0.1:1,cpp,lzo");
    Run::of(env.cmd(bin("pump")).args(["sh", "-c", "exit 7"])).expect_code(7);
    Run::of(env.cmd(bin("pump")).arg("no-such-command-here")).expect_code(127);
    assert!(
        leftovers(&env.tmp()).is_empty(),
        "{:?}",
        leftovers(&env.tmp())
    );
}

#[test]
fn help_is_printed_for_no_arguments_and_help_flags() {
    let env = TestEnv::new();
    for args in [&[][..], &["-h"][..], &["--help"][..], &[""][..]] {
        let run = Run::of(env.cmd(bin("pump")).args(args));
        run.expect_success();
        assert!(
            run.stdout
                .starts_with("Usage:\n    pump COMMAND [ARG...]\n"),
            "{run}"
        );
        assert!(run.stderr.is_empty(), "{run}");
    }
}

/// Error paths: exact message, exit 1, command not run, nothing left behind.
#[test]
fn error_paths_have_exact_messages_and_exit_1() {
    let pump = bin("pump");
    let pump_s = pump.display().to_string();
    struct Case {
        vars: Vec<(&'static str, String)>,
        stderr: String,
    }
    let cases = vec![
        Case {
            vars: vec![("PUMP_SYSCONFDIR", "/nonexistent".into())],
            stderr: format!("{pump_s}: expected environment variables \"DISTCC_HOSTS\" or \"DISTCC_POTENTIAL_HOSTS\" to be set, or to find a distcc hosts file in \"$DISTCC_DIR/hosts\", \"$HOME/.distcc/hosts\", or \"/nonexistent/distcc/hosts\".\n"),
        },
        Case {
            vars: vec![("DISTCC_HOSTS", "127.0.0.1 localhost/2,lzo".into())],
            stderr: format!("{pump_s}: error: pump mode requested, but distcc hosts list does not contain any hosts with ',cpp' option\n"),
        },
        Case {
            vars: vec![
                ("DISTCC_HOSTS", "a,cpp,lzo".into()),
                ("DISTCC_LOCATION", "/nonexistent/bin".into()),
            ],
            stderr: format!("{pump_s}: error: can't find distcc (looked in /nonexistent/bin)\n"),
        },
        Case {
            vars: vec![("DISTCC_HOSTS", "a,cpp,lzo".into()), ("DISTCC_MAX_DISCREPANCY", "0".into())],
            stderr: format!("{pump_s}: Bad DISTCC_MAX_DISCREPANCY value: \"0\". Needs to be 1 or greater.\n"),
        },
        Case {
            vars: vec![("DISTCC_HOSTS", "a,cpp,lzo".into()), ("DISTCC_MAX_DISCREPANCY", "many".into())],
            stderr: format!("{pump_s}: Bad DISTCC_MAX_DISCREPANCY value: \"many\". Needs to be 1 or greater.\n"),
        },
        Case {
            vars: vec![("DISTCC_HOSTS", "a,cpp,lzo".into()), ("INCLUDE_SERVER_ARGS", "-s 'unbalanced".into())],
            stderr: format!("{pump_s}: INCLUDE_SERVER_ARGS has an unbalanced quote or a trailing backslash: \"-s 'unbalanced\"\n"),
        },
    ];
    for case in cases {
        let mut env = TestEnv::new();
        for (k, v) in &case.vars {
            env.set(k, v);
        }
        let run = Run::of(env.cmd(&pump).args(["touch", "ran"]));
        run.expect_code(1);
        assert_eq!(run.stderr, case.stderr, "{run}");
        assert!(!env.path().join("ran").exists(), "command ran\n{run}");
        assert!(
            leftovers(&env.tmp()).is_empty(),
            "{:?}\n{run}",
            leftovers(&env.tmp())
        );
    }
}

#[test]
fn an_include_server_that_cannot_start_means_no_build() {
    let d = Distccd::start();
    let mut env = TestEnv::new();
    env.set("DISTCC_POTENTIAL_HOSTS", "127.0.0.1")
        .set("LSDISTCC_ARGS", format!("-r{}", d.port()))
        .set("INCLUDE_SERVER_ARGS", "--no-such-option");
    let run = Run::of(env.cmd(bin("pump")).args(["touch", "ran"]));
    run.expect_code(1);
    assert!(
        run.stderr
            .contains("__________Warning: distcc-pump include server failed; running unpumped"),
        "{run}"
    );
    assert!(
        run.stderr.contains("__________Expected a socket at '"),
        "{run}"
    );
    assert!(!env.path().join("ran").exists(), "command ran\n{run}");
    assert!(
        leftovers(&env.tmp()).is_empty(),
        "{:?}",
        leftovers(&env.tmp())
    );
}

#[test]
fn a_missing_distcc_in_the_location_is_reported() {
    let env = TestEnv::new();
    let dir = env.path().join("bin");
    std::fs::create_dir_all(&dir).unwrap();
    let run = Run::of(
        env.cmd(bin("pump"))
            .env("DISTCC_LOCATION", &dir)
            .env("DISTCC_HOSTS", "a,cpp,lzo")
            .arg("true"),
    );
    run.expect_code(1);
    assert_eq!(
        run.stderr,
        format!(
            "{}: error: can't find distcc (looked in {})\n",
            bin("pump").display(),
            dir.display()
        )
    );
}

/// Starts `pump` over a build that announces itself through a fifo and then blocks, and
/// returns pump's child handle and the socket directory the build saw.
fn start_blocked_build(env: &TestEnv) -> (std::process::Child, PathBuf) {
    let fifo = env.path().join("ready");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo with a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let child = env
        .cmd(bin("pump"))
        .args([
            "sh",
            "-c",
            "echo \"$INCLUDE_SERVER_PORT\" > ready; exec cat",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    // Opening the fifo for reading waits for the build to open it for writing.
    let mut line = String::new();
    BufReader::new(std::fs::File::open(&fifo).unwrap())
        .read_line(&mut line)
        .unwrap();
    let socket = PathBuf::from(line.trim());
    assert!(socket.exists(), "socket {socket:?} missing");
    (child, socket.parent().unwrap().to_path_buf())
}

fn assert_all_gone(env: &TestEnv, dir: &Path) {
    let needle = dir.to_string_lossy().into_owned();
    for pid in processes_mentioning(&needle) {
        assert!(
            wait_pid_gone(pid, Duration::from_secs(5)),
            "process {pid} still mentions {needle}"
        );
    }
    assert!(!dir.exists(), "{dir:?} left behind");
    assert!(
        leftovers(&env.tmp()).is_empty(),
        "{:?}",
        leftovers(&env.tmp())
    );
}

#[test]
fn sigterm_to_pump_stops_the_build_and_cleans_up() {
    let mut env = TestEnv::new();
    env.set("DISTCC_HOSTS", "127.0.0.1:1,cpp,lzo");
    let (mut child, dir) = start_blocked_build(&env);
    // SAFETY: signalling the pump we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    assert_all_gone(&env, &dir);
}

#[test]
fn sigint_to_the_process_group_stops_everything_and_cleans_up() {
    let mut env = TestEnv::new();
    env.set("DISTCC_HOSTS", "127.0.0.1:1,cpp,lzo");
    let (mut child, dir) = start_blocked_build(&env);
    // Like Ctrl-C: the whole foreground process group gets SIGINT.
    // SAFETY: signalling the process group we created.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status:?}");
    assert_all_gone(&env, &dir);
}
