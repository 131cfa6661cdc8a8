//! Starting the serving process the way distcc's pump expects (spec 2.1, 2.3, 2.6).
//!
//! The launcher forks before any thread exists. The child is the serving process: it
//! stays in the caller's process group (so Ctrl-C in a `pump make` terminal reaches
//! it), creates its client root and socket, and then writes `\n` to a readiness pipe.
//! The parent blocks on that pipe: a `\n` means the socket accepts connections, so it
//! writes the child's pid and a newline to `--pid_file` and exits 0. Anything else (an
//! error line from the child, or end-of-file because the child died) makes the parent
//! reap the child and fail with one line saying why. The child has then removed what it
//! created, and no pid file is written.
//!
//! When `pump` passes a descriptor in `INCLUDE_SERVER_READY_FD`, the launcher does not
//! fork: it serves in its own process, writes the pid file, and then writes its pid and
//! a newline to that descriptor; pump, which waits on it, goes on at once instead of
//! waiting for a launcher process to exit. A failed start prints its one line and exits
//! 1, which pump sees as the launcher's exit.
//!
//! In the serving process SIGTERM and SIGINT are turned into bytes on self-pipes that
//! the accept loop polls; either one stops serving, removes every client root of this
//! server, unlinks the socket, writes `stats.json` and exits 0. SIGPIPE is ignored, so a
//! client gone mid-reply is an `EPIPE` on that connection only.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use include_server::server::{Server, ServerConfig};
use nix::fcntl::OFlag;
use nix::sys::signal::{self, SigHandler, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

/// What the serving process does besides serving.
#[derive(Debug)]
pub struct Daemon {
    /// The server's configuration.
    pub config: ServerConfig,
    /// `--pid_file`.
    pub pid_file: Option<std::path::PathBuf>,
    /// `-t`: print timing at exit.
    pub time: bool,
    /// `INCLUDE_SERVER_READY_FD`: serve in this process and report readiness there.
    pub ready_fd: Option<OwnedFd>,
}

/// Forks the serving process and returns once it serves (or failed to start).
/// Returns the launcher's exit status.
pub fn launch(daemon: Daemon) -> Result<u8> {
    if let Some(fd) = daemon.ready_fd {
        let ready = Ready::Pump {
            fd: std::fs::File::from(fd),
            pid_file: daemon.pid_file,
        };
        let code = serve(daemon.config, ready, daemon.time);
        return Ok(u8::try_from(code).unwrap_or(1));
    }
    let (ready_r, ready_w) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).context("cannot create a pipe")?;
    // SAFETY: the launcher has not started any thread, so the child is a complete copy
    // of a single-threaded process and may do anything.
    match unsafe { fork() }.context("cannot fork")? {
        ForkResult::Parent { child } => {
            drop(ready_w);
            parent(ready_r, child, daemon.pid_file.as_deref())
        }
        ForkResult::Child => {
            drop(ready_r);
            let ready = Ready::Parent(std::fs::File::from(ready_w));
            let code = serve(daemon.config, ready, daemon.time);
            std::process::exit(code)
        }
    }
}

fn parent(ready: OwnedFd, child: Pid, pid_file: Option<&Path>) -> Result<u8> {
    // The first byte decides: `\n` is readiness; anything else starts an error line,
    // and end-of-file means the child died first.
    let mut ready = std::fs::File::from(ready);
    let mut first = [0u8; 1];
    let n = loop {
        match ready.read(&mut first) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => break other.unwrap_or(0),
        }
    };
    if n == 1 && first[0] == b'\n' {
        if let Some(path) = pid_file {
            if let Err(e) = std::fs::write(path, format!("{child}\n")) {
                let _ = signal::kill(child, Signal::SIGTERM);
                let _ = waitpid(child, None);
                bail!("cannot write the pid file '{}': {e}", path.display());
            }
        }
        return Ok(0);
    }
    let mut message = first[..n].to_vec();
    let _ = ready.read_to_end(&mut message);
    let status = waitpid(child, None);
    let text = String::from_utf8_lossy(&message).trim().to_string();
    if !text.is_empty() {
        bail!("{text}");
    }
    match status {
        Ok(WaitStatus::Exited(_, code)) => {
            bail!("the serving process exited with status {code} before it was ready")
        }
        Ok(WaitStatus::Signaled(_, sig, _)) => {
            bail!("the serving process was killed by {sig} before it was ready")
        }
        other => bail!("the serving process ended before it was ready ({other:?})"),
    }
}

/// Who waits for the serving process to be ready.
enum Ready {
    /// The launcher's parent half, on a pipe: `\n`, or an error line.
    Parent(std::fs::File),
    /// pump, on `INCLUDE_SERVER_READY_FD`: the pid and `\n`, after the pid file; an
    /// error is printed, and pump sees this process exit.
    Pump {
        fd: std::fs::File,
        pid_file: Option<std::path::PathBuf>,
    },
}

impl Ready {
    fn fail(self, text: &str) {
        match self {
            Ready::Parent(mut pipe) => {
                let _ = writeln!(pipe, "{text}");
            }
            Ready::Pump { .. } => eprintln!("include_server: {text}"),
        }
    }

    /// Says that the socket accepts. `false` means nobody will know of this server
    /// (pump's case is said on stderr; the launcher's parent half is gone).
    fn send(self) -> bool {
        match self {
            Ready::Parent(mut pipe) => pipe.write_all(b"\n").is_ok(),
            Ready::Pump { mut fd, pid_file } => {
                let pid = std::process::id();
                let sent = match pid_file {
                    Some(path) => std::fs::write(&path, format!("{pid}\n")).map_err(|e| {
                        format!("cannot write the pid file '{}': {e}", path.display())
                    }),
                    None => Ok(()),
                }
                .and_then(|()| {
                    fd.write_all(format!("{pid}\n").as_bytes())
                        .map_err(|e| format!("pump is gone: {e}"))
                });
                if let Err(e) = &sent {
                    eprintln!("include_server: {e}");
                }
                sent.is_ok()
            }
        }
    }
}

/// The serving process: start, signal readiness, serve until SIGTERM/SIGINT, clean up.
/// Returns the exit status.
fn serve(config: ServerConfig, ready: Ready, time: bool) -> i32 {
    let started = Instant::now();
    let stops = match stop_pipes() {
        Ok(s) => s,
        Err(e) => {
            ready.fail(&format!("cannot install signal handlers: {e}"));
            return 1;
        }
    };
    let server = match Server::start(config) {
        Ok(s) => s,
        Err(e) => {
            ready.fail(&e.to_string());
            return 1;
        }
    };
    if !ready.send() {
        let _ = server.shutdown();
        return 1;
    }
    let which = server.serve(&[stops[0].as_fd(), stops[1].as_fd()]);
    match which {
        Ok(1) => eprintln!("Include server: keyboard interrupt, quitting after cleaning up."),
        Ok(_) => {}
        Err(e) => eprintln!("include_server: serving failed: {e}"),
    }
    let mut code = 0;
    if let Err(e) = server.shutdown() {
        eprintln!("include_server: cleaning up: {e}");
        code = 1;
    }
    if time {
        print_timing(started);
    }
    // The process exits next: freeing every cache entry one by one (tens of
    // milliseconds after a large build) would only delay the exit `pump` waits for.
    std::mem::forget(server);
    code
}

/// Read ends of self-pipes written by the SIGTERM and SIGINT handlers (in that order).
/// Also ignores SIGPIPE.
fn stop_pipes() -> std::io::Result<[UnixStream; 2]> {
    // SAFETY: ignoring a signal installs no handler code.
    unsafe { signal::signal(Signal::SIGPIPE, SigHandler::SigIgn) }.map_err(std::io::Error::from)?;
    let mut out = Vec::new();
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        let (r, w) = UnixStream::pair()?;
        signal_hook::low_level::pipe::register(sig, w)?;
        out.push(r);
    }
    let [term, int] = <[UnixStream; 2]>::try_from(out).expect("two pipes were made");
    Ok([term, int])
}

/// `-t`: elapsed, user and system time of the server and its children, on stderr.
fn print_timing(started: Instant) {
    use nix::sys::resource::{getrusage, UsageWho};
    let secs = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
    let (mut user, mut system) = (0.0, 0.0);
    for who in [UsageWho::RUSAGE_SELF, UsageWho::RUSAGE_CHILDREN] {
        if let Ok(u) = getrusage(who) {
            user += secs(u.user_time());
            system += secs(u.system_time());
        }
    }
    eprintln!(
        "Include server timing.  Elapsed: {:3.1}s User: {user:3.1}s System: {system:3.1}s User + System: {:3.1}s",
        started.elapsed().as_secs_f64(),
        user + system
    );
}
