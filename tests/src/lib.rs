//! Support for the end-to-end tests: built binaries, isolated environments, and a real
//! distro `distccd` on loopback.
//!
//! - [`bin`] finds a binary of this workspace in cargo's target directory (the test
//!   command builds them first with `cargo build --workspace`).
//! - [`TestEnv`] is a temp directory plus a [`Command`] builder with a cleared
//!   environment: only `PATH`, `HOME`, `TMPDIR` and `DISTCC_DIR` are set, all pointing into
//!   the temp directory (except `PATH`). [`Run`] captures a finished command and prints
//!   everything needed to diagnose a failure; it kills a command that outlives its
//!   deadline and stops reading output that a leftover process keeps open.
//! - [`Distccd`] starts `/usr/bin/distccd` on 127.0.0.1 and a free port, in the foreground
//!   (`--no-detach --log-stderr`), waits until its log says the daemon started, which
//!   distccd logs after `listen()` (a pipe, with a deadline), and stops its whole process group on drop.
//! - [`wait_until`] waits for a condition signalled by a pipe or socket, with a deadline
//!   that reports the last error.
//! - [`IncludeServer`] starts our include server on a socket of its own and asks it as
//!   the distcc client does; [`shipped`] reads the files a reply ships.
//!
//! Nothing here sleeps: readiness comes from the daemon's own log pipe, and process exit
//! from `wait()`.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The distro's distcc client.
pub const DISTCC: &str = "/usr/bin/distcc";
/// The distro's distcc daemon.
pub const DISTCCD: &str = "/usr/bin/distccd";
/// The distro's lsdistcc, for side-by-side comparisons.
pub const DISTRO_LSDISTCC: &str = "/usr/bin/lsdistcc";

/// cargo's directory of built binaries (`target/<profile>`), found from this test
/// executable's own path (`target/<profile>/deps/<test>`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("test binary has a parent");
    let dir = if deps.file_name() == Some(OsStr::new("deps")) {
        deps.parent().expect("deps has a parent")
    } else {
        deps
    };
    dir.to_path_buf()
}

/// A binary of this workspace, e.g. `bin("lsdistcc")`. Panics with a hint if it has not
/// been built.
pub fn bin(name: &str) -> PathBuf {
    let p = target_dir().join(name);
    assert!(
        p.is_file(),
        "{} is not built: run `cargo build --workspace` before the end-to-end tests",
        p.display()
    );
    p
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// True when running as root (distccd then needs `--user`).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Waits until `f` returns `Ok`, calling it again each time `wake` (a condition the
/// caller's pipe reader or socket notifies) fires or `step` passes, until `deadline`.
/// Panics naming `what` and the last error.
pub fn wait_until<T>(
    deadline: Duration,
    what: &str,
    mut f: impl FnMut() -> Result<T, String>,
) -> T {
    let start = Instant::now();
    let pair = (Mutex::new(()), Condvar::new());
    loop {
        let last = match f() {
            Ok(v) => return v,
            Err(e) => e,
        };
        let elapsed = start.elapsed();
        if elapsed >= deadline {
            panic!("timed out after {deadline:?} waiting for {what}: last error: {last}");
        }
        // A bounded wait on a condition nobody signals: a poll interval, not a sleep that
        // stands in for readiness. Callers with a real readiness signal use Log::wait_for.
        let guard = pair.0.lock().unwrap();
        let step = Duration::from_millis(5).min(deadline - elapsed);
        let _unused = pair.1.wait_timeout(guard, step).unwrap();
    }
}

/// A growing log fed by a reader thread, with a condition variable for waiters.
#[derive(Clone, Default)]
pub struct Log {
    inner: Arc<(Mutex<LogState>, Condvar)>,
}

#[derive(Default)]
struct LogState {
    text: String,
    closed: bool,
}

impl Log {
    /// Starts a thread copying `r` into a new log, line by line.
    pub fn capture<R: Read + Send + 'static>(r: R) -> Log {
        let log = Log::default();
        let feed = log.clone();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(r);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match lines.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let (m, c) = &*feed.inner;
                        m.lock()
                            .unwrap()
                            .text
                            .push_str(&String::from_utf8_lossy(&buf));
                        c.notify_all();
                    }
                }
            }
            let (m, c) = &*feed.inner;
            m.lock().unwrap().closed = true;
            c.notify_all();
        });
        log
    }

    /// Everything captured so far.
    pub fn text(&self) -> String {
        self.inner.0.lock().unwrap().text.clone()
    }

    /// Waits until the log contains `needle`. Panics with the log if the writer closes
    /// the pipe first or the deadline passes.
    pub fn wait_for(&self, needle: &str, deadline: Duration) {
        let start = Instant::now();
        let (m, c) = &*self.inner;
        let mut st = m.lock().unwrap();
        loop {
            if st.text.contains(needle) {
                return;
            }
            if st.closed {
                panic!("log closed before {needle:?} appeared:\n{}", st.text);
            }
            let left = deadline.saturating_sub(start.elapsed());
            if left.is_zero() {
                panic!(
                    "timed out after {deadline:?} waiting for {needle:?} in log:\n{}",
                    st.text
                );
            }
            st = c.wait_timeout(st, left).unwrap().0;
        }
    }

    /// Waits until `needle` occurs at least `n` times. Panics with the log after the
    /// deadline.
    pub fn wait_for_count(&self, needle: &str, n: usize, deadline: Duration) {
        let (st, timed_out) = self.count_within(needle, n, deadline);
        if st.text.matches(needle).count() < n {
            panic!(
                "waited {deadline:?} (timed out: {timed_out}) for {n} × {needle:?} in log:\n{}",
                st.text
            );
        }
    }

    /// Waits until `needle` occurs `n` times, the writer closes the pipe, or `deadline`
    /// passes; whether it occurs `n` times.
    pub fn reaches_count(&self, needle: &str, n: usize, deadline: Duration) -> bool {
        self.count_within(needle, n, deadline)
            .0
            .text
            .matches(needle)
            .count()
            >= n
    }

    fn count_within(
        &self,
        needle: &str,
        n: usize,
        deadline: Duration,
    ) -> (std::sync::MutexGuard<'_, LogState>, bool) {
        let (m, c) = &*self.inner;
        let st = m.lock().unwrap();
        let (st, res) = c
            .wait_timeout_while(st, deadline, |s| {
                s.text.matches(needle).count() < n && !s.closed
            })
            .unwrap();
        (st, res.timed_out())
    }

    /// Waits until the writer closes the pipe (the process exited), up to `deadline`.
    pub fn wait_closed(&self, deadline: Duration) -> bool {
        let (m, c) = &*self.inner;
        let st = m.lock().unwrap();
        let (st, _) = c.wait_timeout_while(st, deadline, |s| !s.closed).unwrap();
        st.closed
    }
}

/// A temp directory and an isolated environment for commands run by a test.
pub struct TestEnv {
    dir: tempfile::TempDir,
    path: OsString,
    vars: Vec<(OsString, OsString)>,
}

impl TestEnv {
    /// A fresh temp directory with `home/`, `tmp/` and `home/.distcc/`; `PATH` is the
    /// workspace's build directory, then `/usr/local/bin:/usr/bin:/bin`.
    pub fn new() -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("pump-e2e.")
            .tempdir()
            .expect("temp dir");
        for sub in ["home/.distcc", "tmp"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        }
        let path = std::env::join_paths([
            target_dir(),
            PathBuf::from("/usr/local/bin"),
            PathBuf::from("/usr/bin"),
            PathBuf::from("/bin"),
        ])
        .expect("PATH");
        TestEnv {
            dir,
            path,
            vars: Vec::new(),
        }
    }

    /// The temp directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The `TMPDIR` given to commands.
    pub fn tmp(&self) -> PathBuf {
        self.dir.path().join("tmp")
    }

    /// The `HOME` given to commands.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// Replaces `PATH` for commands.
    pub fn set_path(&mut self, path: impl Into<OsString>) -> &mut Self {
        self.path = path.into();
        self
    }

    /// Sets an extra variable for every command built afterwards.
    pub fn set(&mut self, k: impl Into<OsString>, v: impl Into<OsString>) -> &mut Self {
        let k = k.into();
        self.vars.retain(|(n, _)| *n != k);
        self.vars.push((k, v.into()));
        self
    }

    /// Writes a file under the temp directory (parents created); returns its path.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).expect("mkdir");
        std::fs::write(&p, contents).expect("write");
        p
    }

    /// A command with a cleared environment: `PATH`, `HOME`, `TMPDIR`, `DISTCC_DIR`, plus
    /// what [`TestEnv::set`] added; the working directory is the temp directory.
    pub fn cmd(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env_clear()
            .env("PATH", &self.path)
            .env("HOME", self.home())
            .env("TMPDIR", self.tmp())
            .env("DISTCC_DIR", self.home().join(".distcc"))
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        for (k, v) in &self.vars {
            c.env(k, v);
        }
        c
    }
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

/// How long [`Run::of`] lets a command run.
pub const RUN_DEADLINE: Duration = Duration::from_secs(15 * 60);
/// How long [`Run::of`] keeps reading output after the command exited.
pub const PIPE_GRACE: Duration = Duration::from_secs(10);

/// What a pipe gave so far, and whether it reached its end.
#[derive(Default)]
struct Received {
    bytes: Vec<u8>,
    ended: bool,
}

/// One output pipe, read to its end by a thread of its own.
struct Captured {
    buf: Arc<(Mutex<Received>, Condvar)>,
}

impl Captured {
    fn start(mut pipe: impl Read + Send + 'static) -> Captured {
        let buf = Arc::new((Mutex::new(Received::default()), Condvar::new()));
        let shared = Arc::clone(&buf);
        std::thread::spawn(move || {
            let mut chunk = [0u8; 64 * 1024];
            loop {
                let n = pipe.read(&mut chunk).unwrap_or(0);
                let mut b = shared.0.lock().unwrap();
                if n == 0 {
                    b.ended = true;
                    shared.1.notify_all();
                    return;
                }
                b.bytes.extend_from_slice(&chunk[..n]);
            }
        });
        Captured { buf }
    }

    /// What was read, and whether the pipe reached its end before `until`.
    fn finish(self, until: Instant) -> (Vec<u8>, bool) {
        let (lock, cv) = &*self.buf;
        let mut b = lock.lock().unwrap();
        while !b.ended {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            b = cv.wait_timeout(b, left).unwrap().0;
        }
        (std::mem::take(&mut b.bytes), b.ended)
    }
}

/// A finished command: what ran and what it printed.
pub struct Run {
    /// The command line, for messages.
    pub command: String,
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Wall time.
    pub elapsed: Duration,
}

impl Run {
    /// Runs `cmd` to completion, capturing stdout and stderr.
    ///
    /// Two waits are bounded, so that a test fails with what it has instead of hanging:
    /// - the command itself: after [`RUN_DEADLINE`] it is killed (SIGKILL) and the record
    ///   says so;
    /// - the output pipes after the command exited: a process it left running may still
    ///   hold them open. After [`PIPE_GRACE`] the record keeps what was read and says so.
    pub fn of(cmd: &mut Command) -> Run {
        Run::bounded(cmd, RUN_DEADLINE, PIPE_GRACE)
    }

    /// [`Run::of`] with the two bounds given.
    pub fn bounded(cmd: &mut Command, deadline: Duration, pipe_grace: Duration) -> Run {
        let command = format!("{cmd:?}");
        let start = Instant::now();
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {command}: {e}"));
        let stdout = Captured::start(child.stdout.take().expect("piped stdout"));
        let stderr = Captured::start(child.stderr.take().expect("piped stderr"));
        let pid = child.id();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let mut notes = String::new();
        let status = match rx.recv_timeout(deadline) {
            Ok(status) => status,
            Err(_) => {
                // SAFETY: kill(2) takes no pointers. The waiter reaps the child only once it
                // has exited; if that happened just now, the signal finds no process.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                notes.push_str(&format!(
                    "\n[e2e: killed after {deadline:?}: the command did not finish]"
                ));
                rx.recv().expect("the waiter thread sends the status")
            }
        }
        .unwrap_or_else(|e| panic!("cannot wait for {command}: {e}"));
        let grace = Instant::now() + pipe_grace;
        let stdout = stdout.finish(grace);
        let stderr = stderr.finish(grace);
        if !(stdout.1 && stderr.1) {
            notes.push_str(&format!(
                "\n[e2e: an output pipe was still open {pipe_grace:?} after the command exited: \
                 a process it started is still running]"
            ));
        }
        Run {
            command,
            status,
            stdout: String::from_utf8_lossy(&stdout.0).into_owned(),
            stderr: String::from_utf8_lossy(&stderr.0).into_owned() + &notes,
            elapsed: start.elapsed(),
        }
    }

    /// The exit code, or 128+signal.
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| 128 + self.status.signal().unwrap_or(0))
    }

    /// Panics with the whole record unless the exit code is `want`.
    #[track_caller]
    pub fn expect_code(&self, want: i32) -> &Run {
        assert_eq!(self.code(), want, "unexpected exit code\n{self}");
        self
    }

    /// Panics with the whole record unless the command succeeded.
    #[track_caller]
    pub fn expect_success(&self) -> &Run {
        self.expect_code(0)
    }

    /// stdout lines.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// stdout lines, sorted (for tools whose output order is not defined).
    pub fn sorted_lines(&self) -> Vec<String> {
        let mut v: Vec<String> = self.stdout.lines().map(str::to_owned).collect();
        v.sort();
        v
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "command: {}", self.command)?;
        writeln!(f, "status:  {} ({:?})", self.code(), self.elapsed)?;
        writeln!(f, "--- stdout ---\n{}", self.stdout)?;
        write!(f, "--- stderr ---\n{}", self.stderr)
    }
}

/// Options for [`Distccd::start_with`].
#[derive(Clone, Debug)]
pub struct DistccdOptions {
    /// Address to listen on (a loopback address).
    pub listen: String,
    /// Port; `None` picks a free one.
    pub port: Option<u16>,
    /// `--jobs`.
    pub jobs: u32,
    /// `--log-level`.
    pub log_level: &'static str,
}

impl Default for DistccdOptions {
    fn default() -> Self {
        DistccdOptions {
            listen: "127.0.0.1".into(),
            port: None,
            jobs: 4,
            log_level: "info",
        }
    }
}

/// A real distro `distccd`, on loopback, stopped on drop.
pub struct Distccd {
    child: Child,
    port: u16,
    listen: String,
    log: Log,
    _tmp: tempfile::TempDir,
}

impl Distccd {
    /// Starts distccd on 127.0.0.1 and a free port with `--log-level info`.
    pub fn start() -> Distccd {
        Self::start_with(DistccdOptions::default())
    }

    /// Starts distccd with `opts`; waits until it accepts connections: its log pipe says
    /// "daemon started", logged after `listen()` ("listening on" comes before it).
    pub fn start_with(opts: DistccdOptions) -> Distccd {
        assert!(
            Path::new(DISTCCD).is_file(),
            "{DISTCCD} is missing: install the distro's distcc package (apt-get install distcc)"
        );
        // A port picked free can be taken before distccd binds it; distccd then exits
        // with 102 (EXIT_BIND_FAILED) and we pick another one.
        for _ in 0..5 {
            match Self::try_start(&opts) {
                Ok(d) => return d,
                Err(log) if opts.port.is_none() && log.contains("bind") => continue,
                Err(log) => panic!("distccd did not start:\n{log}"),
            }
        }
        panic!("distccd could not bind a free port five times in a row");
    }

    fn try_start(opts: &DistccdOptions) -> Result<Distccd, String> {
        let tmp = tempfile::Builder::new()
            .prefix("distccd.")
            .tempdir()
            .expect("temp dir");
        // As root, distccd drops to `nobody`, which must be able to write its temp dir.
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o1777))
            .expect("chmod");
        let port = opts.port.unwrap_or_else(free_port);
        let mut cmd = Command::new(DISTCCD);
        cmd.args(["--no-detach", "--daemon", "--log-stderr"])
            .args(["--allow", "127.0.0.0/8", "--listen", &opts.listen])
            .arg(format!("--port={port}"))
            .arg(format!("--jobs={}", opts.jobs))
            .arg(format!("--log-level={}", opts.log_level))
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("TMPDIR", tmp.path())
            .current_dir(tmp.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own process group, so drop can stop the preforked children too.
            .process_group(0);
        if is_root() {
            cmd.args(["--user", "nobody"]);
        }
        let mut child = cmd.spawn().map_err(|e| format!("spawn {DISTCCD}: {e}"))?;
        let log = Log::capture(child.stderr.take().expect("piped stderr"));
        let (m, c) = &*log.inner;
        let mut st = m.lock().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if st.text.contains("daemon started") {
                break;
            }
            if st.closed {
                let text = st.text.clone();
                drop(st);
                let _ = child.wait();
                return Err(text);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let text = st.text.clone();
                drop(st);
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no 'daemon started' line within 20 s:\n{text}"));
            }
            st = c.wait_timeout(st, left).unwrap().0;
        }
        drop(st);
        Ok(Distccd {
            child,
            port,
            listen: opts.listen.clone(),
            log,
            _tmp: tmp,
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `address:port`, as a `DISTCC_HOSTS` host (without options).
    pub fn host(&self) -> String {
        format!("{}:{}", self.listen, self.port)
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        self.log.text()
    }

    /// Waits until its log contains `needle` (jobs are logged when they finish).
    pub fn wait_for_log(&self, needle: &str) {
        self.log.wait_for(needle, Duration::from_secs(30));
    }

    /// Waits until distccd has logged `n` finished jobs (it logs a job after the client
    /// already has its result, so a test reads the log only after this).
    pub fn wait_for_jobs(&self, n: usize) {
        self.log
            .wait_for_count("(dcc_job_summary)", n, Duration::from_secs(30));
    }

    /// Like [`Distccd::wait_for_jobs`], without failing: whether `n` jobs were logged
    /// within `deadline` (a build whose jobs did not all reach distccd has fewer).
    pub fn jobs_logged_within(&self, n: usize, deadline: Duration) -> bool {
        self.log.reaches_count("(dcc_job_summary)", n, deadline)
    }

    /// Sources of the jobs that compiled in pump mode, sorted: a job that ended
    /// `COMPILE_OK` after distccd ran its pump-mode debug-info fix-up
    /// (`dcc_fix_debug_info`, which only pump-mode jobs run) in the same process.
    pub fn pump_mode_jobs(&self) -> Vec<String> {
        pump_mode_jobs(&self.log())
    }

    /// Sources of every job that ended `COMPILE_OK`, pump mode or not, sorted.
    pub fn compiled_jobs(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .log()
            .lines()
            .filter(|l| l.contains(" COMPILE_OK "))
            .filter_map(|l| l.split_whitespace().last().map(str::to_owned))
            .collect();
        v.sort();
        v
    }

    /// The pid of the listening process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Distccd {
    fn drop(&mut self) {
        let pgid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) with a negative pid signals the process group we created.
        unsafe {
            libc::kill(-pgid, libc::SIGTERM);
        }
        let _ = self.child.wait();
        // Wait for the preforked children to close the log pipe too.
        if !self.log.wait_closed(Duration::from_secs(10)) {
            // SAFETY: as above.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
}

/// See [`Distccd::pump_mode_jobs`]; works on any distccd log text.
pub fn pump_mode_jobs(log: &str) -> Vec<String> {
    let mut fixed = std::collections::HashSet::new();
    let mut jobs = Vec::new();
    for line in log.lines() {
        let Some(pid) = line
            .strip_prefix("distccd[")
            .and_then(|r| r.split_once(']'))
            .map(|(p, _)| p.to_owned())
        else {
            continue;
        };
        if line.contains("(dcc_fix_debug_info)") {
            fixed.insert(pid);
        } else if line.contains(" COMPILE_OK ") {
            if fixed.remove(&pid) {
                if let Some(src) = line.split_whitespace().last() {
                    jobs.push(src.to_owned());
                }
            }
        } else if line.contains("(dcc_job_summary)") {
            fixed.remove(&pid);
        }
    }
    jobs.sort();
    jobs
}

/// Copies the directory tree `src` to `dst` (regular files and directories).
pub fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("mkdir");
    for entry in std::fs::read_dir(src).expect("read_dir") {
        let entry = entry.expect("dir entry");
        let to = dst.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).expect("copy");
        }
    }
}

/// A fresh copy of `tests/sample-project` at `<dir>/project`.
pub fn sample_project(dir: &Path) -> PathBuf {
    let dst = dir.join("project");
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-project"),
        &dst,
    );
    dst
}

/// Writes `text` to a file and makes it executable (a test script).
pub fn write_script(path: &Path, text: &str) {
    let mut f = std::fs::File::create(path).expect("create script");
    f.write_all(text.as_bytes()).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// Waits until process `pid` (not necessarily our child) has exited, using a pidfd
/// (readiness from the kernel, no polling). True if it is gone within `deadline`.
pub fn wait_pid_gone(pid: u32, deadline: Duration) -> bool {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) } as i32;
    if fd < 0 {
        // ESRCH: no such process.
        return std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
    }
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = deadline.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: pfd is a valid pollfd for the duration of the call; fd is ours to close.
    let n = unsafe { libc::poll(&mut pfd, 1, ms) };
    // SAFETY: fd came from pidfd_open above and is closed once.
    unsafe { libc::close(fd) };
    n > 0
}

/// Our include server (`include_server`, the launcher) on a socket in a temp dir, asked
/// over the socket exactly as the distcc client asks; stopped on drop.
pub struct IncludeServer {
    socket: PathBuf,
    pid: u32,
    _dir: tempfile::TempDir,
}

impl IncludeServer {
    /// Starts the server; returns once its socket accepts (the launcher's exit).
    pub fn start() -> IncludeServer {
        let dir = tempfile::Builder::new()
            .prefix("include-server.")
            .tempdir()
            .expect("temp dir");
        let socket = dir.path().join("socket");
        let pid_file = dir.path().join("pid");
        // The daemon keeps stderr for its warnings, so its output is not captured (a pipe
        // would stay open).
        let status = Command::new(bin("include_server"))
            .arg("--port")
            .arg(&socket)
            .arg("--pid_file")
            .arg(&pid_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .expect("running include_server");
        assert!(status.success(), "include_server failed to start: {status}");
        let pid = std::fs::read_to_string(&pid_file)
            .expect("pid file")
            .trim()
            .parse()
            .expect("pid");
        IncludeServer {
            socket,
            pid,
            _dir: dir,
        }
    }

    /// The reply's paths for one compile command run in `directory`.
    pub fn ask(&self, directory: &Path, argv: &[String]) -> Result<Vec<Vec<u8>>, String> {
        use common::wire::{self, tags, ArgvLimits};
        let mut s = std::os::unix::net::UnixStream::connect(&self.socket)
            .map_err(|e| format!("connect: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        wire::write_bytes(
            &mut buf,
            tags::CDIR,
            directory.as_os_str().as_encoded_bytes(),
        )
        .map_err(|e| e.to_string())?;
        wire::write_argv(&mut buf, argv).map_err(|e| e.to_string())?;
        s.write_all(&buf).map_err(|e| format!("send: {e}"))?;
        wire::read_argv(&mut s, ArgvLimits::default()).map_err(|e| format!("reply: {e}"))
    }
}

impl Drop for IncludeServer {
    fn drop(&mut self) {
        // SAFETY: signalling the server this test started.
        unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGTERM) };
        wait_pid_gone(self.pid, Duration::from_secs(10));
    }
}

/// The files a reply ships (`.lzo`, `.lzo.abs`), as realpaths: the client root's three
/// components removed, as the distcc client maps them.
pub fn shipped(paths: &[Vec<u8>]) -> std::collections::HashSet<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    paths
        .iter()
        .filter_map(|p| {
            let p = p.strip_suffix(b".abs").unwrap_or(p);
            let p = p.strip_suffix(b".lzo")?;
            let (i, _) = p.iter().enumerate().filter(|(_, b)| **b == b'/').nth(3)?;
            Some(PathBuf::from(OsStr::from_bytes(&p[i..])))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distccd_starts_compiles_and_stops() {
        let d = Distccd::start();
        let env = TestEnv::new();
        env.write("hello.c", "int main(void) { return 0; }\n");
        let run = Run::of(
            env.cmd(DISTCC)
                .env("DISTCC_HOSTS", d.host())
                .env("DISTCC_FALLBACK", "0")
                .args(["gcc", "-c", "hello.c", "-o", "hello.o"]),
        );
        run.expect_success();
        assert!(env.path().join("hello.o").is_file(), "{run}");
        d.wait_for_log("COMPILE_OK");
        assert_eq!(d.compiled_jobs(), ["hello.c"]);
        // Plain distcc (no ,cpp): compiled remotely, not in pump mode.
        assert!(d.pump_mode_jobs().is_empty(), "{}", d.log());
        let pid = d.pid();
        drop(d);
        assert!(
            wait_pid_gone(pid, Duration::from_secs(5)),
            "distccd {pid} still running after drop"
        );
    }

    #[test]
    fn pump_mode_jobs_are_told_apart_by_the_debug_info_fix_up() {
        let log = "\
distccd[1] compile from a.c to a.o
distccd[2] compile from b.c to b.o
distccd[1] (dcc_fix_debug_info) client_path_plus_slashes = ///
distccd[2] (dcc_job_summary) client: 127.0.0.1:5 COMPILE_OK exit:0 sig:0 core:0 ret:0 time:5ms gcc b.c
distccd[1] (dcc_job_summary) client: 127.0.0.1:6 COMPILE_OK exit:0 sig:0 core:0 ret:0 time:5ms gcc src/a.c
";
        assert_eq!(pump_mode_jobs(log), ["src/a.c"]);
    }

    #[test]
    fn run_reports_exit_codes() {
        let env = TestEnv::new();
        Run::of(env.cmd("sh").args(["-c", "exit 7"])).expect_code(7);
    }

    #[test]
    fn run_is_bounded_by_its_deadline() {
        // cat waits on a pipe whose writing end the test holds until the end.
        let (reader, _writer) = std::io::pipe().unwrap();
        let env = TestEnv::new();
        let mut cmd = env.cmd("sh");
        cmd.args(["-c", "echo started; exec cat"]).stdin(reader);
        let run = Run::bounded(&mut cmd, Duration::from_millis(300), Duration::from_secs(5));
        assert_eq!(run.code(), 128 + libc::SIGKILL, "{run}");
        assert_eq!(run.stdout, "started\n");
        assert!(run.stderr.contains("killed after 300ms"), "{run}");
    }

    #[test]
    fn run_returns_when_a_leftover_process_holds_the_output_pipe() {
        // The leftover waits on a pipe whose writing end the test holds: it ends with the
        // test.
        let (reader, _writer) = std::io::pipe().unwrap();
        let env = TestEnv::new();
        let mut cmd = env.cmd("sh");
        cmd.args(["-c", "exec 3<&0; cat <&3 & echo leftover $!"])
            .stdin(reader);
        let run = Run::bounded(
            &mut cmd,
            Duration::from_secs(60),
            Duration::from_millis(300),
        );
        run.expect_success();
        assert!(run.stdout.starts_with("leftover "), "{run}");
        assert!(run.stderr.contains("still open 300ms after"), "{run}");
    }
}
