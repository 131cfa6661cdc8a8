//! The `include_server` binary as pump drives it: readiness (the socket accepts and the
//! pid file holds the serving pid when the launcher returns), shutdown on SIGTERM and
//! SIGINT (roots, socket gone, stats written, exit 0, no zombie), cache generations, and
//! starts that fail cleanly (one line, exit 1, nothing left behind, no hang).

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use common::wire::{self, tags, ArgvLimits};

const BIN: &str = env!("CARGO_BIN_EXE_include_server");

/// Makes this test process the reaper of orphans, so the serving process (orphaned when
/// the launcher exits) becomes our child and its exit status can be checked.
fn become_subreaper() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes plain integers.
        let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        assert_eq!(rc, 0, "prctl: {}", std::io::Error::last_os_error());
    });
}

/// A socket directory, a client-root base and the launcher's stderr file.
struct Setup {
    dir: tempfile::TempDir,
    base: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        become_subreaper();
        Setup {
            dir: tempfile::tempdir().unwrap(),
            // In /tmp whatever TMPDIR says: DISTCC_CLIENT_TMP is at most two levels deep.
            base: tempfile::tempdir_in("/tmp").unwrap(),
        }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("socket")
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.path().join("pid")
    }

    fn stderr_file(&self) -> PathBuf {
        self.dir.path().join("stderr")
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr_file()).unwrap_or_default()
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stdout")).unwrap_or_default()
    }

    /// Runs the launcher to completion. Its stdout and stderr go to files, since the
    /// serving process inherits them and would keep a pipe open.
    fn launch(&self, args: &[&str]) -> ExitStatus {
        self.launch_with(
            args,
            &[("DISTCC_CLIENT_TMP", self.base.path().to_str().unwrap())],
        )
    }

    fn launch_with(&self, args: &[&str], env: &[(&str, &str)]) -> ExitStatus {
        let started = Instant::now();
        let out = Command::new(BIN)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .envs(env.iter().copied())
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(File::create(self.dir.path().join("stdout")).unwrap())
            .stderr(File::create(self.stderr_file()).unwrap())
            .status()
            .unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the launcher took {:?}",
            started.elapsed()
        );
        out
    }

    /// Starts a server with pump's arguments plus `extra`; checks the readiness
    /// contract and returns the serving pid.
    fn start(&self, extra: &[&str]) -> i32 {
        let socket = self.socket();
        let pid_file = self.pid_file();
        let mut args = vec![
            "--port",
            socket.to_str().unwrap(),
            "--pid_file",
            pid_file.to_str().unwrap(),
            "-d1",
        ];
        args.extend_from_slice(extra);
        let out = self.launch(&args);
        assert!(out.success(), "{out:?} {}", self.stderr());
        let meta = std::fs::symlink_metadata(&socket).unwrap();
        assert!(meta.file_type().is_socket());
        UnixStream::connect(&socket).expect("the socket accepts when the launcher returns");
        let text = std::fs::read_to_string(&pid_file).unwrap();
        assert!(
            text.ends_with('\n') && text[..text.len() - 1].bytes().all(|b| b.is_ascii_digit()),
            "pid file {text:?}"
        );
        let pid: i32 = text.trim().parse().unwrap();
        assert!(self
            .roots()
            .iter()
            .all(|r| r.contains(&format!(".include_server-{pid}-"))));
        assert_eq!(self.roots().len(), 1, "{:?}", self.roots());
        pid
    }

    fn roots(&self) -> Vec<String> {
        std::fs::read_dir(self.base.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    /// One request; returns the reply's paths.
    fn request(&self, cwd: &Path, argv: &[&str]) -> Vec<Vec<u8>> {
        let mut s = UnixStream::connect(self.socket()).unwrap();
        let mut req = Vec::new();
        wire::write_bytes(&mut req, tags::CDIR, cwd.to_str().unwrap().as_bytes()).unwrap();
        wire::write_argv(&mut req, argv).unwrap();
        s.write_all(&req).unwrap();
        let mut reply = Vec::new();
        s.read_to_end(&mut reply).unwrap();
        wire::read_argv(&mut reply.as_slice(), ArgvLimits::default()).unwrap()
    }

    /// Sends `sig` and waits (with a deadline) for the serving process to exit; returns
    /// its exit code.
    fn stop(&self, pid: i32, sig: libc::c_int) -> i32 {
        // SAFETY: kill with a pid and a signal number.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
        wait_exit(pid, Duration::from_secs(10))
    }

    /// After a stop: nothing of the server remains but stats.json.
    fn check_clean(&self) {
        assert!(!self.socket().exists(), "socket left behind");
        assert!(
            self.roots().is_empty(),
            "roots left behind: {:?}",
            self.roots()
        );
        let stats: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.dir.path().join("stats.json")).unwrap())
                .unwrap();
        assert!(stats["requests"].is_u64(), "{stats}");
    }
}

/// Waits for our (adopted) child `pid` to exit, with a deadline; returns its exit code.
fn wait_exit(pid: i32, deadline: Duration) -> i32 {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    assert!(
        fd >= 0,
        "pidfd_open {pid}: {}",
        std::io::Error::last_os_error()
    );
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: pfd is valid for the call.
    let n = unsafe { libc::poll(&mut pfd, 1, deadline.as_millis() as i32) };
    // SAFETY: fd is ours, closed once.
    unsafe { libc::close(fd) };
    assert_eq!(n, 1, "process {pid} still running after {deadline:?}");
    let mut status = 0;
    // SAFETY: waitpid on our adopted child with a valid status pointer.
    let got = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(got, pid, "waitpid: {}", std::io::Error::last_os_error());
    assert!(libc::WIFEXITED(status), "status {status:#x}");
    libc::WEXITSTATUS(status)
}

#[test]
fn readiness_then_sigterm_cleans_up() {
    let s = Setup::new();
    let pid = s.start(&[]);
    let cwd = std::fs::canonicalize(s.dir.path()).unwrap();
    // The server answers (the empty list is a fall-back the client handles).
    let reply = s.request(&cwd, &["gcc", "-c", "nonexist.c", "-o", "nonexist.o"]);
    assert!(reply.is_empty());
    assert_eq!(s.stop(pid, libc::SIGTERM), 0);
    s.check_clean();
    assert!(!s.stderr().contains("keyboard interrupt"));
}

#[test]
fn sigint_says_so_and_cleans_up() {
    let s = Setup::new();
    let pid = s.start(&[]);
    assert_eq!(s.stop(pid, libc::SIGINT), 0);
    s.check_clean();
    assert!(
        s.stderr()
            .contains("Include server: keyboard interrupt, quitting after cleaning up.\n"),
        "{}",
        s.stderr()
    );
}

#[test]
fn every_option_of_include_server_py_is_accepted() {
    let s = Setup::new();
    let pid = s.start(&[
        "-e",
        "--no-email",
        "--email_bound",
        "5",
        "-x",
        "--unsafe_no_unexpanded_functions",
        "--unsafe_absolute_includes",
        "--no_force_dirs",
        "-s",
        "-t",
        "-v",
        "-w",
        "--stat_reset_triggers=trigger*",
        "--path_observation_re=^/usr/",
        "--debug_pattern=3",
        "stray",
        "--bogus-after-stray",
    ]);
    let cwd = std::fs::canonicalize(s.dir.path()).unwrap();
    std::fs::write(cwd.join("x.c"), "#include \"x.h\"\n").unwrap();
    std::fs::write(cwd.join("x.h"), "").unwrap();
    let reply = s.request(&cwd, &["gcc", "-c", "x.c", "-o", "x.o"]);
    assert!(!reply.is_empty(), "{}", s.stderr());
    assert_eq!(s.stop(pid, libc::SIGTERM), 0);
    s.check_clean();
    // -t, -s, -w (with -v, both lists).
    assert!(
        s.stderr().contains("Include server timing."),
        "{}",
        s.stderr()
    );
    assert!(
        s.stdout().starts_with("TRANSLATION_UNIT: x.c\n"),
        "{}",
        s.stdout()
    );
    let approx = std::fs::read_to_string(cwd.join("x.d_approx")).unwrap();
    assert!(
        approx.contains(&format!("{}\n", cwd.join("x.h").display())),
        "{approx}"
    );
    assert!(cwd.join("x.d_exact").is_file());
}

#[test]
fn stat_reset_trigger_starts_a_new_generation() {
    let s = Setup::new();
    let trigger = s.dir.path().join("trigger");
    std::fs::write(&trigger, "1").unwrap();
    let pid = s.start(&["--stat_reset_triggers=trig*:absent"]);
    let cwd = std::fs::canonicalize(s.dir.path()).unwrap();
    let argv = ["gcc", "-c", "x.c", "-o", "x.o"];
    s.request(&cwd, &argv);
    assert_eq!(s.roots().len(), 1);
    // A new inode is a change whatever the clock's resolution.
    std::fs::write(s.dir.path().join("new"), "2").unwrap();
    std::fs::rename(s.dir.path().join("new"), &trigger).unwrap();
    s.request(&cwd, &argv);
    let mut roots = s.roots();
    roots.sort();
    assert_eq!(roots.len(), 2, "{roots:?}");
    assert!(
        roots.iter().any(|r| r.ends_with(&format!("-{pid}-2"))),
        "{roots:?}"
    );
    // No further change, no further generation.
    s.request(&cwd, &argv);
    assert_eq!(s.roots().len(), 2);
    assert_eq!(s.stop(pid, libc::SIGTERM), 0);
    s.check_clean();
    assert!(
        s.stderr().contains(&format!(
            "WARNING include server: Path '{}' changed. Clearing caches.",
            trigger.display()
        )),
        "{}",
        s.stderr()
    );
}

#[test]
fn usage_errors_exit_1_before_starting() {
    let s = Setup::new();
    let socket = s.socket();
    let port = socket.to_str().unwrap();
    let out = s.launch(&["--port", port, "--bogus"]);
    assert_eq!(out.code(), Some(1));
    assert!(s.stdout().starts_with("Usage: include_server"));
    assert_eq!(
        s.stderr(),
        "include_server: option --bogus not recognized\n"
    );

    let out = s.launch(&["-d1"]);
    assert_eq!(out.code(), Some(1));
    assert!(s
        .stderr()
        .starts_with("INCLUDE_SERVER_PORT not provided. Aborting.\n"));
    assert!(s.stdout().starts_with("Usage: include_server"));

    let out = s.launch(&["--port", port, "--simple_algorithm"]);
    assert_eq!(out.code(), Some(1));
    assert_eq!(s.stdout(), "Not implemented\n");

    let out = s.launch(&["--port", port, "--path_observation_re=("]);
    assert_eq!(out.code(), Some(1));
    assert!(s
        .stderr()
        .starts_with("include_server: bad --path_observation_re"));

    assert!(!socket.exists());
    assert!(s.roots().is_empty());
}

#[test]
fn failed_starts_say_why_in_one_line_and_leave_nothing() {
    let s = Setup::new();
    let pid_file = s.pid_file();
    let pid_arg = pid_file.to_str().unwrap();
    let base = s.base.path().to_str().unwrap().to_string();
    let socket = s.socket();
    let cases: &[(&str, &str, &str)] = &[
        (
            "/nonexistent-dir/socket",
            &base,
            "include_server: cannot listen on '/nonexistent-dir/socket': No such file or directory (os error 2)",
        ),
        (
            socket.to_str().unwrap(),
            "/proc",
            "include_server: cannot create a client root in '/proc'",
        ),
        (
            socket.to_str().unwrap(),
            "relative/tmp",
            "include_server: DISTCC_CLIENT_TMP must start with '/': got \"relative/tmp\"",
        ),
        (
            socket.to_str().unwrap(),
            "/a/b/c",
            "include_server: DISTCC_CLIENT_TMP must have at most two directory levels",
        ),
    ];
    for (port, client_tmp, want) in cases {
        let out = s.launch_with(
            &["--port", port, "--pid_file", pid_arg, "-d1"],
            &[("DISTCC_CLIENT_TMP", client_tmp)],
        );
        assert_eq!(out.code(), Some(1), "{port} {client_tmp}");
        let err = s.stderr();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with(want), "{err}");
        assert!(!pid_file.exists(), "pid file written for a failed start");
        assert!(!socket.exists());
        assert!(s.roots().is_empty(), "{:?}", s.roots());
    }
}

#[test]
fn a_second_server_uses_the_compiler_probe_the_first_saved() {
    let s = Setup::new();
    let probes = tempfile::tempdir().unwrap();
    let cache = probes.path().join("probes");
    let cwd = std::fs::canonicalize(s.dir.path()).unwrap();
    std::fs::write(cwd.join("x.c"), "#include \"x.h\"\n#include <stdio.h>\n").unwrap();
    std::fs::write(cwd.join("x.h"), "").unwrap();
    let argv = ["gcc", "-c", "x.c", "-o", "x.o"];
    let run = || {
        let (socket, pid_file) = (s.socket(), s.pid_file());
        let out = s.launch_with(
            &[
                "--port",
                socket.to_str().unwrap(),
                "--pid_file",
                pid_file.to_str().unwrap(),
            ],
            &[
                ("DISTCC_CLIENT_TMP", s.base.path().to_str().unwrap()),
                ("INCLUDE_SERVER_PROBE_CACHE", cache.to_str().unwrap()),
            ],
        );
        assert!(out.success(), "{out:?} {}", s.stderr());
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let reply = s.request(&cwd, &argv);
        assert_eq!(s.stop(pid, libc::SIGTERM), 0);
        s.check_clean();
        let stats: serde_json::Value =
            serde_json::from_slice(&std::fs::read(s.dir.path().join("stats.json")).unwrap())
                .unwrap();
        // The root's name holds the pid: compare the paths inside it.
        let inside: Vec<String> = reply
            .iter()
            .map(|p| {
                let p = String::from_utf8_lossy(p).into_owned();
                p.split_once(".include_server-")
                    .map_or(p.clone(), |(_, rest)| {
                        rest.split_once('/').unwrap().1.to_string()
                    })
            })
            .collect();
        (inside, stats)
    };
    let (first, stats) = run();
    assert_eq!(stats["compiler_probes"], 1, "{stats}");
    assert_eq!(stats["probe_cache_hits"], 0, "{stats}");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&cache).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o700);
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 1);
    let (second, stats) = run();
    assert_eq!(stats["compiler_probes"], 0, "{stats}");
    assert_eq!(stats["probe_cache_hits"], 1, "{stats}");
    assert_eq!(second, first);
    assert!(first.iter().any(|p| p.ends_with("x.h.lzo")), "{first:?}");
}

#[test]
fn with_a_ready_descriptor_it_serves_in_its_own_process_and_says_when() {
    use std::os::fd::AsRawFd;
    let s = Setup::new();
    let (mut ready_r, ready_w) = std::io::pipe().unwrap();
    // The launcher inherits the write end (as pump's does).
    // SAFETY: clearing FD_CLOEXEC on a descriptor this test owns.
    assert_eq!(
        unsafe { libc::fcntl(ready_w.as_raw_fd(), libc::F_SETFD, 0) },
        0
    );
    let socket = s.socket();
    let pid_file = s.pid_file();
    let mut child = Command::new(BIN)
        .args(["--port", socket.to_str().unwrap()])
        .args(["--pid_file", pid_file.to_str().unwrap(), "-d1"])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("DISTCC_CLIENT_TMP", s.base.path())
        .env("INCLUDE_SERVER_READY_FD", ready_w.as_raw_fd().to_string())
        .stdin(Stdio::null())
        .stdout(File::create(s.dir.path().join("stdout")).unwrap())
        .stderr(File::create(s.stderr_file()).unwrap())
        .spawn()
        .unwrap();
    drop(ready_w);
    // Blocks until the server writes (or, if it died, until end of file).
    let mut line = String::new();
    ready_r.read_to_string(&mut line).unwrap();
    let pid = child.id() as i32;
    assert_eq!(line, format!("{pid}\n"), "stderr: {}", s.stderr());
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap(),
        line,
        "the pid file is written before readiness"
    );
    UnixStream::connect(&socket).expect("the socket accepts once the pid is written");
    assert_eq!(
        child.try_wait().unwrap(),
        None,
        "the launcher itself serves"
    );
    // SAFETY: kill with our child's pid and a signal number.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    assert_eq!(wait_exit(pid, Duration::from_secs(10)), 0);
    s.check_clean();
}

#[test]
fn a_bad_ready_descriptor_is_a_one_line_error() {
    let s = Setup::new();
    let socket = s.socket();
    for bad in ["soon", "1", "987"] {
        let out = s.launch_with(
            &["--port", socket.to_str().unwrap(), "-d1"],
            &[
                ("DISTCC_CLIENT_TMP", s.base.path().to_str().unwrap()),
                ("INCLUDE_SERVER_READY_FD", bad),
            ],
        );
        assert_eq!(out.code(), Some(1), "{bad}");
        assert_eq!(
            s.stderr(),
            format!(
                "include_server: INCLUDE_SERVER_READY_FD '{bad}' is not an open file descriptor\n"
            )
        );
        assert!(!socket.exists());
        assert!(s.roots().is_empty());
    }
}

#[test]
fn path_observation_warns_once_about_each_matching_path() {
    let s = Setup::new();
    // Python's syntax; (?i) folds ASCII letters.
    let pid = s.start(&["--path_observation_re=(?i)/OBSERVED\\.H$"]);
    let cwd = std::fs::canonicalize(s.dir.path()).unwrap();
    std::fs::write(
        cwd.join("x.c"),
        "#include \"observed.h\"\n#include \"y.h\"\n",
    )
    .unwrap();
    std::fs::write(cwd.join("observed.h"), "").unwrap();
    std::fs::write(cwd.join("y.h"), "").unwrap();
    for _ in 0..2 {
        let reply = s.request(&cwd, &["gcc", "-c", "x.c", "-o", "x.o"]);
        assert!(!reply.is_empty(), "{}", s.stderr());
    }
    assert_eq!(s.stop(pid, libc::SIGTERM), 0);
    let stderr = s.stderr();
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("lookup of file"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].contains("lookup of file 'observed.h'"),
        "{stderr}"
    );
}
