//! `pump`: runs a build in distcc's pump mode, as distcc 3.4's `pump` script does.
//!
//! Order of work, as the original's (spec A.3-A.11):
//! 1. validate `DISTCC_MAX_DISCREPANCY` (a number of at least 1);
//! 2. pick the mode ([`cli::parse`]); the help needs nothing else;
//! 3. find the distcc client in the distcc location ([`common::location`]);
//! 4. work out the hosts ([`hosts`]) and start the include server ([`server`]), the two
//!    concurrently when `lsdistcc` probes `DISTCC_POTENTIAL_HOSTS`;
//! 5. run the command with `INCLUDE_SERVER_PORT` and distcc's directory first on `PATH`,
//!    or print `export` lines (`--startup`);
//! 6. shut down: the discrepancy report, stop the include server, its summary
//!    ([`report`]), remove the socket directory.
//!
//! Unlike the original, every exit path cleans up, including SIGINT, SIGTERM and SIGHUP:
//! a signal sent to pump (not the terminal's, which the build already got) is passed to
//! the build, pump waits for the build, shuts down, then dies of the same signal.
//! Defaults may come from `pump.toml` ([`settings`]); the environment overrides them.

pub mod cli;
pub mod hosts;
pub mod report;
pub mod server;
pub mod settings;
pub mod shell;

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use common::env::{self, Env};
use common::location::Location;

use crate::cli::Mode;
use crate::server::{Server, SocketDir, Stdio3};
use crate::settings::Settings;

/// The compiled-in system configuration directory (`PUMP_SYSCONFDIR` overrides it).
pub const SYSCONFDIR: &str = match option_env!("PUMP_BUILD_SYSCONFDIR") {
    Some(d) => d,
    None => "/etc",
};

/// How pump ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Exit with this status.
    Code(i32),
    /// Die of this signal (after cleaning up), as a shell killed by it would.
    Signal(i32),
}

/// A failure that ends pump with exit status 1 after printing `lines` on stderr.
#[derive(Debug)]
pub struct Failure {
    lines: Vec<String>,
}

impl Failure {
    fn new(line: impl Into<String>) -> Failure {
        Failure {
            lines: vec![line.into()],
        }
    }

    /// The lines to print.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }
}

/// Runs pump with `args` (after argv[0]) and the environment snapshot `env`.
pub fn run(argv0: &OsStr, args: &[OsString], env: Env) -> Result<Exit, Failure> {
    let name = argv0.to_string_lossy().into_owned();
    let settings_path = env
        .distcc_dir()
        .map(|d| d.join(settings::FILE_NAME))
        .unwrap_or_default();
    let settings =
        Settings::load(&settings_path).map_err(|e| Failure::new(format!("{name}: {e}")))?;
    let max_discrepancy = max_discrepancy(&name, &env, &settings)?;
    let mode = cli::parse(args).map_err(|e| Failure::new(format!("{name}: {e}")))?;
    if mode == Mode::Help {
        print!("{}", cli::HELP);
        return Ok(Exit::Code(0));
    }
    let include_server_args = match env.get(env::INCLUDE_SERVER_ARGS) {
        Some(v) => shell::split(env::INCLUDE_SERVER_ARGS, v)
            .map_err(|e| Failure::new(format!("{name}: {e}")))?,
        None => settings.include_server.args.clone(),
    };
    let location = Location::resolve(&env, argv0);
    let pump = Pump {
        include_server_args,
        name,
        sysconfdir: env
            .non_empty(env::PUMP_SYSCONFDIR)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(SYSCONFDIR)),
        env,
        location,
        settings,
        max_discrepancy,
    };
    // The build runs distcc from its location (put first on PATH): it must be there.
    if pump.location.distcc().is_none() {
        return Err(Failure::new(format!(
            "{}: error: can't find distcc (looked in {})",
            pump.name,
            pump.location.dir().display()
        )));
    }
    match mode {
        Mode::Help => unreachable!("handled above"),
        Mode::Shutdown => Ok(pump.shutdown_mode()),
        Mode::Startup => pump.startup_mode(),
        Mode::Command(cmd) => pump.command_mode(&cmd),
    }
}

/// `DISTCC_MAX_DISCREPANCY` (or pump.toml's), which must be a number of at least 1.
fn max_discrepancy(name: &str, env: &Env, settings: &Settings) -> Result<i64, Failure> {
    let text = match env.non_empty(env::DISTCC_MAX_DISCREPANCY) {
        Some(v) => v.to_string_lossy().into_owned(),
        None => match settings.pump.max_discrepancy {
            Some(n) => n.to_string(),
            None => return Ok(1),
        },
    };
    match text.trim().parse::<i64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(Failure::new(format!(
            "{name}: Bad DISTCC_MAX_DISCREPANCY value: \"{text}\". Needs to be 1 or greater."
        ))),
    }
}

struct Pump {
    name: String,
    include_server_args: Vec<String>,
    env: Env,
    location: Location,
    settings: Settings,
    sysconfdir: PathBuf,
    max_discrepancy: i64,
}

/// What a successful start produced.
struct Started {
    server: Server,
    /// `DISTCC_HOSTS` rebuilt from lsdistcc's output (probe path only).
    hosts: Option<String>,
}

impl Pump {
    /// Verbose unless `DISTCC_TESTING_INCLUDE_SERVER` is a non-zero number.
    fn verbose(&self) -> bool {
        let v = self
            .env
            .text(env::DISTCC_TESTING_INCLUDE_SERVER)
            .unwrap_or_default();
        !matches!(v.trim().parse::<i64>(), Ok(n) if n != 0)
    }

    fn potential_hosts(&self) -> Option<Vec<String>> {
        match self.env.non_empty(env::DISTCC_POTENTIAL_HOSTS) {
            Some(v) => Some(shell::split_blanks(v)),
            None if !self.settings.hosts.potential.is_empty() => {
                Some(self.settings.hosts.potential.clone())
            }
            None => None,
        }
    }

    fn lsdistcc_args(&self) -> Vec<String> {
        match self.env.get(env::LSDISTCC_ARGS) {
            Some(v) => shell::split_blanks(v),
            None => self.settings.hosts.lsdistcc_args.clone(),
        }
    }

    /// `<distcc location>:$PATH`.
    fn child_path(&self) -> OsString {
        let mut p = self.location.dir().as_os_str().to_owned();
        p.push(":");
        if let Some(old) = self.env.get(env::PATH) {
            p.push(old);
        }
        p
    }

    /// Works out the hosts and starts the include server (spec A.6, A.7).
    fn start(&self, verbose: bool, stdio: Stdio3) -> Result<Started, Failure> {
        // Host discovery (lsdistcc) runs while the include server starts; the static
        // host check is made first, in this process.
        let probe = match self.potential_hosts() {
            Some(names) => Ok(self.spawn_lsdistcc(&names)),
            None => Err(self.static_hosts()?),
        };
        let started = self.start_include_server(stdio);
        let hosts = match probe {
            Ok(p) => {
                let out = p.and_then(|h| h.into_output().ok()).map(|o| o.stdout);
                let live = hosts::live_hosts(&String::from_utf8_lossy(&out.unwrap_or_default()));
                if started.is_err() {
                    eprintln!(
                        "__________Warning: distcc-pump include server failed; running unpumped"
                    );
                }
                if verbose {
                    println!("__________Found {} available distcc servers", live.len());
                }
                Some(hosts::probed_hosts_value(&live, started.is_ok()))
            }
            Err(counted) => {
                if verbose {
                    println!("{}", counted.message());
                }
                None
            }
        };
        let server = started?;
        Ok(Started { server, hosts })
    }

    fn spawn_lsdistcc(&self, names: &[String]) -> Option<duct::Handle> {
        let lsdistcc = self.location.lsdistcc();
        if !common::location::is_executable(&lsdistcc) {
            eprintln!(
                "{}: error: can't find lsdistcc (looked in {})",
                self.name,
                self.location.dir().display()
            );
            return None;
        }
        let mut args = vec!["-c150".to_owned()];
        args.extend(self.lsdistcc_args());
        args.extend(names.iter().cloned());
        duct::cmd(lsdistcc, args)
            .stdout_capture()
            .stdin_null()
            .unchecked()
            .start()
            .ok()
    }

    /// The static path's check: a host configuration exists and lists at least one
    /// `,cpp` host. The list is what `distcc --show-hosts` would print, read with the
    /// client's own rules (`common::hosts`, checked against the distro's client host
    /// string by host string), without starting a process on the way to the build.
    fn static_hosts(&self) -> Result<hosts::StaticHosts, Failure> {
        if !hosts::configured(&self.env, &self.sysconfdir) {
            return Err(Failure::new(hosts::not_configured_message(
                &self.name,
                &self.sysconfdir,
            )));
        }
        // A list the client cannot read gives it no hosts at all.
        let listed = match common::hosts::load_host_list(&self.env, &self.sysconfdir) {
            Ok((_, list)) => list.iter().map(|h| format!("{h}\n")).collect::<String>(),
            Err(_) => String::new(),
        };
        let counted = hosts::StaticHosts::count(&listed);
        if counted.pump == 0 {
            return Err(Failure::new(format!(
                "{}: error: pump mode requested, but distcc hosts list does not contain any hosts with ',cpp' option",
                self.name
            )));
        }
        Ok(counted)
    }

    fn start_include_server(&self, stdio: Stdio3) -> Result<Server, Failure> {
        let verbose_fail = |mut f: Failure| {
            if stdio == Stdio3::Inherit || self.verbose() {
                f.lines
                    .push("__________Could not start distcc-pump include server".to_owned());
            }
            f
        };
        let launcher = self.location.include_server().ok_or_else(|| {
            verbose_fail(Failure::new(format!(
                "{}: error: can't find {} (looked in {})",
                self.name,
                common::location::INCLUDE_SERVER,
                self.location.own_dir().display()
            )))
        })?;
        server::start(
            &launcher,
            &self.env.tmpdir(),
            &self.include_server_args,
            &[],
            stdio,
        )
        .map_err(|e| {
            let line = match e {
                server::StartError::NoSocket { .. } => format!("__________{e}"),
                _ => format!("{}: {e}", self.name),
            };
            verbose_fail(Failure::new(line))
        })
    }

    fn command_mode(&self, cmd: &[OsString]) -> Result<Exit, Failure> {
        let signals = Signals::install(true);
        let verbose = self.verbose();
        if verbose {
            println!(
                "__________Using distcc-pump from {}",
                self.location.dir().display()
            );
        }
        let started = self.start(verbose, Stdio3::Inherit)?;
        if let Some(sig) = signals.received() {
            self.shutdown(Some(started.server.pid), &started.server.dir, verbose);
            return Ok(Exit::Signal(sig));
        }
        let mut command = Command::new(&cmd[0]);
        command
            .args(&cmd[1..])
            .env(env::PATH, self.child_path())
            .env(env::INCLUDE_SERVER_PORT, started.server.dir.socket());
        if let Some(h) = &started.hosts {
            command.env(env::DISTCC_HOSTS, h);
        }
        let status = match command.spawn() {
            Ok(mut child) => {
                signals.forward_to(child.id() as i32);
                let status = child.wait();
                signals.forward_to(0);
                status.map(shell_status).unwrap_or(1)
            }
            Err(e) => {
                let (what, code) = match e.kind() {
                    std::io::ErrorKind::NotFound => ("command not found".to_owned(), 127),
                    std::io::ErrorKind::PermissionDenied => ("permission denied".to_owned(), 126),
                    _ => (e.to_string(), 126),
                };
                eprintln!("{}: {}: {what}", self.name, cmd[0].to_string_lossy());
                code
            }
        };
        self.shutdown(Some(started.server.pid), &started.server.dir, verbose);
        Ok(match signals.received() {
            Some(sig) => Exit::Signal(sig),
            None => Exit::Code(status),
        })
    }

    fn startup_mode(&self) -> Result<Exit, Failure> {
        // Nothing to pass a signal on to: record it, and stop the server after the start.
        let signals = Signals::install(false);
        let started = self.start(false, Stdio3::Files)?;
        if let Some(sig) = signals.received() {
            self.shutdown(Some(started.server.pid), &started.server.dir, false);
            return Ok(Exit::Signal(sig));
        }
        let dir = started.server.dir.path().to_string_lossy().into_owned();
        let socket = started.server.dir.socket().to_string_lossy().into_owned();
        let mut lines = vec![
            format!(
                "export INCLUDE_SERVER_PID={}",
                shell::quote(&started.server.pid.to_string())
            ),
            format!("export INCLUDE_SERVER_DIR={}", shell::quote(&dir)),
            format!("export INCLUDE_SERVER_PORT={}", shell::quote(&socket)),
        ];
        let hosts = started
            .hosts
            .clone()
            .or_else(|| self.env.text(env::DISTCC_HOSTS))
            .filter(|h| !h.is_empty());
        if let Some(h) = hosts {
            // The client accepts any blank between hosts; one line keeps eval simple.
            let one_line = h.split_ascii_whitespace().collect::<Vec<_>>().join(" ");
            lines.push(format!("export DISTCC_HOSTS={}", shell::quote(&one_line)));
        }
        lines.push(format!(
            "export PATH={}",
            shell::quote(&self.child_path().to_string_lossy())
        ));
        // One write: `eval "$(pump --startup)"` reads it at once.
        let mut text = lines.join("\n");
        text.push('\n');
        let _ = std::io::stdout().lock().write_all(text.as_bytes());
        Ok(Exit::Code(0))
    }

    fn shutdown_mode(&self) -> Exit {
        let dir = self
            .env
            .non_empty(env::INCLUDE_SERVER_DIR)
            .map(PathBuf::from);
        let pid = self
            .env
            .text(env::INCLUDE_SERVER_PID)
            .and_then(|p| p.trim().parse::<i32>().ok());
        match dir {
            Some(dir) => {
                let dir = SocketDir::new(dir);
                // Only signal a live process whose socket is still there, so a recycled
                // pid is left alone.
                let pid = pid.filter(|p| server::alive(*p) && dir.socket().exists());
                self.shutdown(pid, &dir, self.verbose());
            }
            None => {
                if let Some(p) = pid.filter(|p| server::alive(*p)) {
                    eprintln!(
                        "{}: INCLUDE_SERVER_DIR is not set; not stopping process {p}",
                        self.name
                    );
                }
            }
        }
        Exit::Code(0)
    }

    /// Spec A.11, then the summary: report discrepancies, stop the server, replay its
    /// saved output, summarise its statistics, remove the directory.
    fn shutdown(&self, pid: Option<i32>, dir: &SocketDir, verbose: bool) {
        let count = report::discrepancy_count(&dir.file(server::DISCREPANCY_COUNTER));
        for line in report::discrepancies(count, self.max_discrepancy) {
            eprintln!("{line}");
        }
        if let Some(pid) = pid.filter(|p| server::alive(*p)) {
            if verbose {
                println!("__________Shutting down distcc-pump include server");
            }
            server::stop(pid);
        }
        for (name, to_stdout) in [(server::STDOUT, true), (server::STDERR, false)] {
            if let Ok(bytes) = std::fs::read(dir.file(name)) {
                if to_stdout {
                    let _ = std::io::stdout().write_all(&bytes);
                } else {
                    let _ = std::io::stderr().write_all(&bytes);
                }
            }
        }
        if verbose {
            if let Some(stats) = report::Stats::load(&dir.file(server::STATS)) {
                println!("{}", stats.summary());
            }
        }
        let _ = std::io::stdout().flush();
        dir.remove();
    }
}

/// The status a shell reports for a finished child: its code, or 128 + signal.
fn shell_status(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// SIGINT, SIGTERM and SIGHUP, caught for the whole run.
struct Signals {
    first: Arc<AtomicI32>,
    /// Set by the signal handler itself: a signal sent to the whole process group is
    /// recorded before the build's `wait` returns (the forwarding thread may run later).
    caught: Arc<std::sync::atomic::AtomicUsize>,
    child: Arc<AtomicI32>,
}

impl Signals {
    /// Catches the signals; with `forward`, a thread also passes them on to the build
    /// (see [`Signals::forward_to`]).
    fn install(forward: bool) -> Signals {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        use signal_hook::iterator::exfiltrator::WithOrigin;
        use signal_hook::iterator::SignalsInfo;
        let first = Arc::new(AtomicI32::new(0));
        let caught = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let child = Arc::new(AtomicI32::new(0));
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            let _ = signal_hook::flag::register_usize(sig, caught.clone(), sig as usize);
        }
        let forwarder = forward
            .then(|| SignalsInfo::<WithOrigin>::new([SIGINT, SIGTERM, SIGHUP]).ok())
            .flatten();
        if let Some(mut signals) = forwarder {
            let (first, child) = (first.clone(), child.clone());
            std::thread::spawn(move || {
                for info in signals.forever() {
                    let _ =
                        first.compare_exchange(0, info.signal, Ordering::SeqCst, Ordering::SeqCst);
                    // A terminal's SIGINT already reached the whole process group; a
                    // signal sent to pump alone is passed on to the build.
                    let from_process = info.process.is_some();
                    let pid = child.load(Ordering::SeqCst);
                    if pid > 0 && (info.signal != SIGINT || from_process) {
                        // SAFETY: signalling our own child.
                        unsafe { libc::kill(pid, info.signal) };
                    }
                }
            });
        }
        Signals {
            first,
            caught,
            child,
        }
    }

    fn forward_to(&self, pid: i32) {
        self.child.store(pid, Ordering::SeqCst);
    }

    fn received(&self) -> Option<i32> {
        match self.first.load(Ordering::SeqCst) {
            0 => match self.caught.load(Ordering::SeqCst) {
                0 => None,
                s => Some(s as i32),
            },
            s => Some(s),
        }
    }
}
