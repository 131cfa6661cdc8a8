//! `include_server`: the launcher distcc's `pump` runs to start the include server.
//!
//! It takes `include_server.py`'s command line ([`cli`]), checks everything that can be
//! checked before forking (options, `DISTCC_CLIENT_TMP`, the observation regex, the
//! trigger globs), and then starts the serving process ([`daemon`]). It returns only
//! when the socket accepts connections; on any failure it prints one line and exits 1.
//!
//! Exit codes: 0 started; 1 usage error, `--simple_algorithm`, or a failed start.

#![cfg_attr(not(test), no_main)]
// The test harness brings its own `main`; this one is not built for it.
#![cfg_attr(test, allow(dead_code))]

use include_server_launcher::cli;
mod daemon;

use std::time::Duration;

use anyhow::{Context, Result};
use common::env::{self, Env};
use include_server::analysis::AnalyzerConfig;
use include_server::client_root::ClientTmp;
use include_server::server::{Options, ServerConfig};
use include_server::triggers::StatResetTriggers;

/// Started without Rust's runtime set-up (see [`common::start`]): `pump --startup` runs
/// this program every time.
#[cfg(not(test))]
#[no_mangle]
pub extern "C" fn main(_argc: std::os::raw::c_int, _argv: *const *const u8) -> std::os::raw::c_int {
    common::start::run(|| match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("include_server: {e:#}");
            1
        }
    })
}

fn run() -> Result<u8> {
    let env = Env::from_process();
    let opts = match cli::Options::parse(std::env::args_os().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("include_server: {e}");
            print!("{}", cli::USAGE);
            return Ok(1);
        }
    };
    if opts.simple_algorithm {
        println!("Not implemented");
        return Ok(1);
    }
    let Some(port) = opts.port.clone() else {
        eprintln!("INCLUDE_SERVER_PORT not provided. Aborting.");
        eprintln!("{}", "-".repeat(70));
        print!("{}", cli::USAGE);
        return Ok(1);
    };
    let ready_fd = match env.get(env::INCLUDE_SERVER_READY_FD) {
        Some(v) => Some(ready_fd(v)?),
        None => None,
    };
    let client_tmp = ClientTmp::from_env(env.get(env::DISTCC_CLIENT_TMP))?;
    let path_observation = opts
        .path_observation_re
        .as_deref()
        .map(regex_lite::Regex::new)
        .transpose()
        .context("bad --path_observation_re")?;
    let stat_reset_triggers = match &opts.stat_reset_triggers {
        Some(spec) => {
            let cwd = std::env::current_dir().context("cannot read the current directory")?;
            Some(StatResetTriggers::new(spec, &cwd)?)
        }
        None => None,
    };
    let io_timeout = env
        .text(env::DISTCC_IO_TIMEOUT)
        .and_then(|t| t.trim().parse::<u64>().ok())
        .filter(|&t| t > 0)
        .unwrap_or(300);
    let path_env = env.get(env::PATH).map(|p| p.to_os_string());
    let config = ServerConfig {
        socket: port,
        client_tmp,
        analyzer: AnalyzerConfig {
            unsafe_absolute_includes: opts.unsafe_absolute_includes,
            no_unexpanded_functions: opts.unsafe_no_unexpanded_functions,
            probe_path: path_env.clone(),
            probe_cache: env.probe_cache_dir(),
            prefetch_helpers: None,
            probe_deadline: None,
        },
        options: Options {
            debug: opts.debug,
            statistics: opts.statistics,
            force_dirs: !opts.no_force_dirs,
            verify: opts.verify,
            write_include_closure: opts.write_include_closure,
            path_observation,
            stat_reset_triggers,
            io_timeout: Duration::from_secs(io_timeout),
            path_env,
            ..Options::default()
        },
    };
    daemon::launch(daemon::Daemon {
        config,
        pid_file: opts.pid_file,
        time: opts.time,
        ready_fd,
    })
}

/// `INCLUDE_SERVER_READY_FD`: an open descriptor other than the standard three, taken
/// over (and kept from the compilers the server runs).
fn ready_fd(value: &std::ffi::OsStr) -> Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let text = value.to_string_lossy();
    let bad = || {
        anyhow::anyhow!(
            "{} '{text}' is not an open file descriptor",
            env::INCLUDE_SERVER_READY_FD
        )
    };
    let fd: i32 = text.trim().parse().map_err(|_| bad())?;
    // SAFETY: F_SETFD only sets the descriptor's flags (and fails if it is not open).
    if fd < 3 || unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
        return Err(bad());
    }
    // SAFETY: the descriptor is open (above), was handed to this process for this
    // purpose alone, and nothing else here owns it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}
