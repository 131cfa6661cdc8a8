//! Starting and stopping the include server.
//!
//! Start: make the socket directory `${TMPDIR-/tmp}/distcc-pump.XXXXXX` (mode 0700) and
//! the pid file `distcc-pump-pid.XXXXXX`, run the launcher as
//! `include_server --port <dir>/socket --pid_file <pidfile> -d1 <args>` and wait for it to
//! return (it returns once the socket accepts), or, for our own launcher, for the pid it
//! writes on the `INCLUDE_SERVER_READY_FD` pipe once the socket accepts (it then serves
//! in the launcher's process, and pump need not wait for a process to exit). Then the
//! socket must exist and the pid (from that pipe or the pid file) must be a decimal
//! number; the pid file is removed. Any failure removes everything this start made.
//!
//! Stop: SIGTERM, then wait (through a pidfd, no polling) up to [`STOP_GRACE`]; a server
//! still alive then gets SIGKILL. `--shutdown` first checks that the pid is alive and its
//! socket still exists, so a recycled pid is not signalled.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::env;

/// Socket file name inside the socket directory (the client derives the discrepancy
/// counter from it).
pub const SOCKET: &str = "socket";
/// The include server's saved stdout in `--startup` mode.
pub const STDOUT: &str = "stdout";
/// The include server's saved stderr in `--startup` mode.
pub const STDERR: &str = "stderr";
/// The counter the distcc client appends to.
pub const DISCREPANCY_COUNTER: &str = "discrepancy_counter";
/// The statistics the include server writes when it exits.
pub const STATS: &str = "stats.json";
/// The longest `INCLUDE_SERVER_PORT` the distcc client accepts.
pub const MAX_SOCKET_PATH: usize = 106;
/// How long a stopping include server may take before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// Why the include server did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A temp object could not be made.
    #[error("Could not make temp \"{prefix}\": {error}")]
    Temp {
        /// `distcc-pump` or `distcc-pump-pid`.
        prefix: &'static str,
        /// Why.
        error: std::io::Error,
    },
    /// The socket path is too long for the distcc client.
    #[error("socket path {path:?} is {len} bytes, more than the {MAX_SOCKET_PATH} the distcc client accepts: set TMPDIR to a shorter directory")]
    SocketPathTooLong {
        /// The path.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
    /// The launcher could not be run.
    #[error("cannot run the include server {launcher:?}: {error}")]
    Spawn {
        /// Its path.
        launcher: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// It ran but no socket appeared, or no pid was written.
    #[error("Expected a socket at '{}'", socket.display())]
    NoSocket {
        /// The expected socket.
        socket: PathBuf,
    },
}

/// Where the include server's files live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketDir {
    dir: PathBuf,
}

impl SocketDir {
    /// An existing socket directory (from `INCLUDE_SERVER_DIR`).
    pub fn new(dir: PathBuf) -> SocketDir {
        SocketDir { dir }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// `<dir>/socket`, the value of `INCLUDE_SERVER_PORT`.
    pub fn socket(&self) -> PathBuf {
        self.dir.join(SOCKET)
    }

    /// `<dir>/<name>`.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Removes the directory and everything in it; a missing one is fine.
    pub fn remove(&self) {
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A running include server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// Its pid (the serving process, from the pid file).
    pub pid: i32,
    /// Its files.
    pub dir: SocketDir,
}

/// How the launcher's standard streams are connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdio3 {
    /// Inherit pump's (COMMAND mode: warnings appear in the build output).
    Inherit,
    /// stdin from /dev/null, stdout and stderr to files in the socket directory
    /// (`--startup`, so `eval "$(pump --startup)"` does not wait on an open pipe).
    Files,
}

/// Starts the include server through `launcher` with `args` after pump's own options.
pub fn start(
    launcher: &Path,
    tmpdir: &Path,
    args: &[String],
    env: &[(&str, OsString)],
    stdio: Stdio3,
) -> Result<Server, StartError> {
    let dir = make_temp(tmpdir, "distcc-pump", true)?;
    let dir = SocketDir::new(dir);
    let result = start_in(&dir, launcher, tmpdir, args, env, stdio);
    if result.is_err() {
        dir.remove();
    }
    result
}

fn start_in(
    dir: &SocketDir,
    launcher: &Path,
    tmpdir: &Path,
    args: &[String],
    env: &[(&str, OsString)],
    stdio: Stdio3,
) -> Result<Server, StartError> {
    let socket = dir.socket();
    let len = socket.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(StartError::SocketPathTooLong { path: socket, len });
    }
    let pid_file = make_temp(tmpdir, "distcc-pump-pid", false)?;
    let mut cmd = Command::new(launcher);
    cmd.arg("--port")
        .arg(&socket)
        .arg("--pid_file")
        .arg(&pid_file)
        .arg("-d1")
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    if stdio == Stdio3::Files {
        let out = std::fs::File::create(dir.file(STDOUT));
        let err = std::fs::File::create(dir.file(STDERR));
        if let (Ok(out), Ok(err)) = (out, err) {
            cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        }
    }
    // Our launcher reports readiness on this pipe and serves in its own process; any
    // other launcher ignores it and is waited for, as distcc's pump does.
    let ready = ready_pipe();
    if let Some((_, w)) = &ready {
        cmd.env(env::INCLUDE_SERVER_READY_FD, w.as_raw_fd().to_string());
    }
    let child = cmd.spawn();
    let ready = ready.map(|(r, _)| r);
    let mut child = match child {
        Ok(c) => c,
        Err(error) => {
            let _ = std::fs::remove_file(&pid_file);
            return Err(StartError::Spawn {
                launcher: launcher.to_owned(),
                error,
            });
        }
    };
    let pid = match ready.and_then(|r| wait_ready(r, child.id())) {
        Some(pid) => Some(pid),
        None => {
            // The launcher exited (as distcc's does once its server is ready). One still
            // running said something unexpected on the pipe: it is not waited for.
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
            }
            let _ = child.wait();
            parse_pid(&std::fs::read(&pid_file).unwrap_or_default())
        }
    };
    let _ = std::fs::remove_file(&pid_file);
    let is_socket = std::fs::symlink_metadata(&socket)
        .map(|m| m.file_type().is_socket())
        .unwrap_or(false);
    match (is_socket, pid) {
        (true, Some(pid)) => Ok(Server {
            pid,
            dir: dir.clone(),
        }),
        (_, Some(pid)) => {
            // A server that wrote its pid but has no socket is of no use: stop it.
            stop(pid);
            Err(StartError::NoSocket { socket })
        }
        _ => Err(StartError::NoSocket { socket }),
    }
}

/// A pipe for `INCLUDE_SERVER_READY_FD`: the read end (close-on-exec) and the write
/// end (inherited by the launcher alone: it is made just before the launcher starts and
/// closed just after). `None` without pidfds, which the wait needs.
fn ready_pipe() -> Option<(std::fs::File, OwnedFd)> {
    let own = pidfd(std::process::id() as i32)?;
    // SAFETY: closing the descriptor pidfd_open returned.
    unsafe { libc::close(own) };
    let mut fds = [-1; 2];
    // SAFETY: pipe2 writes two new descriptors into the array it is given.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return None;
    }
    // SAFETY: both descriptors were just created and are owned here alone.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let r = std::fs::File::from(r);
    // SAFETY: clearing FD_CLOEXEC on a descriptor this function owns.
    (unsafe { libc::fcntl(w.as_raw_fd(), libc::F_SETFD, 0) } == 0).then_some((r, w))
}

/// Waits until the launcher writes `<pid>\n` on `ready` (its pid), or exits; `None`
/// when it exited (or wrote something else) first.
fn wait_ready(mut ready: std::fs::File, launcher: u32) -> Option<i32> {
    let Some(exited) = pidfd(launcher as i32) else {
        // No pidfd after all: the pipe alone (end of file once the launcher is gone).
        let mut got = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::Read::take(&mut ready, 16), &mut got);
        return parse_pid(&got).filter(|_| got.ends_with(b"\n"));
    };
    // SAFETY: the pidfd is owned here and closed once, when `_guard` drops.
    let _guard = unsafe { OwnedFd::from_raw_fd(exited) };
    let mut got = Vec::new();
    let mut open = true;
    loop {
        let mut fds = [
            libc::pollfd {
                fd: if open { ready.as_raw_fd() } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: exited,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: fds is a valid array of two pollfds for the call.
        if unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) } < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return None;
        }
        if fds[0].revents != 0 {
            let mut buf = [0u8; 32];
            match std::io::Read::read(&mut ready, &mut buf) {
                Ok(0) | Err(_) => open = false,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
            if got.ends_with(b"\n") {
                return parse_pid(&got);
            }
            if got.len() > 16 {
                return None;
            }
            continue;
        }
        if fds[1].revents != 0 {
            return None;
        }
    }
}

/// A pid as the launcher writes it (pid file or ready pipe): decimal digits and at most
/// one newline after them (distcc's pump checks `^[0-9][0-9]*$`).
fn parse_pid(text: &[u8]) -> Option<i32> {
    let digits = text.strip_suffix(b"\n").unwrap_or(text);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// `mktemp [-d] ${TMPDIR-/tmp}/PREFIX.XXXXXX`, kept on disk.
fn make_temp(tmpdir: &Path, prefix: &'static str, dir: bool) -> Result<PathBuf, StartError> {
    let base = if tmpdir.as_os_str().is_empty() {
        Path::new("/")
    } else {
        tmpdir
    };
    let dotted = format!("{prefix}.");
    let mut b = tempfile::Builder::new();
    b.prefix(&dotted).rand_bytes(6);
    let made = if dir {
        b.permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir_in(base)
            .map(|d| d.keep())
    } else {
        b.tempfile_in(base)
            .and_then(|f| f.keep().map_err(|e| e.error))
            .map(|(_, p)| p)
    };
    made.map_err(|error| StartError::Temp { prefix, error })
}

/// True if process `pid` exists.
pub fn alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks that the process exists.
    pid > 0 && unsafe { libc::kill(pid, 0) } == 0
}

/// Sends SIGTERM and waits for the process to go; SIGKILL after [`STOP_GRACE`].
pub fn stop(pid: i32) {
    if pid <= 0 {
        return;
    }
    let fd = pidfd(pid);
    // SAFETY: signalling a pid we started (or were told about and checked).
    unsafe { libc::kill(pid, libc::SIGTERM) };
    if let Some(fd) = fd {
        if !wait_fd(fd, STOP_GRACE) {
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            wait_fd(fd, Duration::from_secs(2));
        }
        // SAFETY: fd came from pidfd_open and is closed once.
        unsafe { libc::close(fd) };
    }
    // A server that is pump's own child (it reported readiness itself) is reaped here;
    // for any other pid this fails with ECHILD.
    // SAFETY: waitpid with a null status pointer and WNOHANG only reaps.
    unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
}

fn pidfd(pid: i32) -> Option<i32> {
    // SAFETY: pidfd_open takes a pid and flags, returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    (fd >= 0).then_some(fd)
}

fn wait_fd(fd: i32, timeout: Duration) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    loop {
        // SAFETY: p is a valid pollfd for the call.
        let n = unsafe { libc::poll(&mut p, 1, ms) };
        if n >= 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return n > 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_follow_mktemp() {
        let t = tempfile::tempdir().unwrap();
        let d = make_temp(t.path(), "distcc-pump", true).unwrap();
        let name = d.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("distcc-pump.") && name.len() == "distcc-pump.".len() + 6,
            "{name}"
        );
        let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let f = make_temp(t.path(), "distcc-pump-pid", false).unwrap();
        assert!(f.is_file());
    }

    #[test]
    fn long_socket_paths_are_refused_and_nothing_is_left() {
        let t = tempfile::tempdir().unwrap();
        let deep = t.path().join("d".repeat(100));
        std::fs::create_dir(&deep).unwrap();
        let err = start(Path::new("/bin/true"), &deep, &[], &[], Stdio3::Inherit).unwrap_err();
        assert!(matches!(err, StartError::SocketPathTooLong { .. }), "{err}");
        assert_eq!(std::fs::read_dir(&deep).unwrap().count(), 0);
    }

    #[test]
    fn a_launcher_that_makes_no_socket_fails_cleanly() {
        let t = tempfile::tempdir().unwrap();
        let err = start(Path::new("/bin/true"), t.path(), &[], &[], Stdio3::Files).unwrap_err();
        assert!(
            err.to_string().starts_with("Expected a socket at '"),
            "{err}"
        );
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
    }

    /// A launcher like distcc's: it ignores `INCLUDE_SERVER_READY_FD`, forks a daemon
    /// that keeps every inherited descriptor open (the ready pipe's write end too), and
    /// exits once the socket listens, after writing the pid file.
    const CLASSIC_LAUNCHER: &str = r#"#!/usr/bin/env python3
import os, socket, sys
a = sys.argv[1:]
port, pid_file = a[a.index("--port") + 1], a[a.index("--pid_file") + 1]
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    s = socket.socket(socket.AF_UNIX)
    s.bind(port)
    s.listen(5)
    os.write(w, b"x")
    os.close(w)
    while True:
        s.accept()[0].close()
os.close(w)
os.read(r, 1)
with open(pid_file, "w") as f:
    f.write("%d\n" % pid)
"#;

    #[test]
    fn a_launcher_that_ignores_the_ready_descriptor_is_waited_for() {
        let t = tempfile::tempdir().unwrap();
        let launcher = t.path().join("include_server");
        std::fs::write(&launcher, CLASSIC_LAUNCHER).unwrap();
        std::fs::set_permissions(&launcher, std::fs::Permissions::from_mode(0o755)).unwrap();
        let tmp = t.path().join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let (l, d) = (launcher.clone(), tmp.clone());
        std::thread::spawn(move || {
            let _ = tx.send(start(&l, &d, &[], &[], Stdio3::Files));
        });
        let server = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("pump waits for a launcher that exits, not for the ready pipe")
            .unwrap();
        assert!(alive(server.pid));
        assert!(server.dir.socket().exists());
        // stop() returns once the process has exited (its pidfd is readable).
        stop(server.pid);
        server.dir.remove();
        assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0, "pid file left");
    }
}
