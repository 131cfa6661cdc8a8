//! `h_hosts`: distcc's host-list test program, rebuilt on [`common::hosts`], so that
//! distcc's own `ParseHostSpec_Case` and `InvalidHostSpec_Case` can run against our parser.
//!
//! Like distcc's, it finds the list the client's way (`DISTCC_HOSTS`, then the hosts
//! files), honours `--randomize`, and prints the number of entries, then one line per
//! entry: `printf("%4d ", slots)` followed by `LOCAL`,
//! `SSH <user|(no-user)> <host> <command|(no-command)>` or `TCP <host> <port>`.
//! A `+zeroconf` entry, which distcc would replace by the servers it discovers, prints
//! as `   0 ZEROCONF`. When the list cannot be had, it prints the reason on stderr and
//! exits with the client's code for it (106, `EXIT_BAD_HOSTSPEC`, for a parse failure).
//! Arguments (distcc's takes `-v`) are ignored.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use common::env::{self, Env};
use common::hosts::{self, HostKind, HostList};

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("h_hosts: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<ExitCode> {
    let env = Env::from_process();
    let code = h_hosts(
        &env,
        Path::new(hosts::DEFAULT_SYSCONFDIR),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    )?;
    Ok(ExitCode::from(code))
}

/// Looks up and parses the host list, writes the report to `out` (or the reason to
/// `err`), and returns the exit code.
pub fn h_hosts(
    env: &Env,
    sysconfdir: &Path,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8> {
    let list = match hosts::load_host_list(env, sysconfdir) {
        Ok((_, list)) => list,
        Err(e) => {
            let value = match env.text(env::DISTCC_HOSTS) {
                Some(v) => format!("{v:?}"),
                None => "the host list (DISTCC_HOSTS is unset)".to_owned(),
            };
            writeln!(err, "h_hosts: {e}").context("writing to stderr")?;
            writeln!(err, "h_hosts: failed to parse {value}").context("writing to stderr")?;
            return Ok(e.exit_code());
        }
    };
    for warning in list.warnings() {
        writeln!(err, "h_hosts: {warning}").context("writing to stderr")?;
    }
    out.write_all(render(&list).as_bytes())
        .context("writing to stdout")?;
    Ok(0)
}

/// The report for a parsed list, byte for byte as distcc's `h_hosts` prints it.
pub fn render(list: &HostList) -> String {
    let mut text = format!("{}\n", list.len());
    for host in list {
        let _ = write!(text, "{:4} ", host.slots());
        let _ = match host.kind() {
            HostKind::Local => writeln!(text, "LOCAL"),
            HostKind::Ssh {
                user,
                host,
                command,
                ..
            } => writeln!(
                text,
                "SSH {} {} {}",
                user.as_deref().unwrap_or("(no-user)"),
                host,
                command.as_deref().unwrap_or("(no-command)")
            ),
            HostKind::Tcp { host, port, .. } => writeln!(text, "TCP {host} {port}"),
            HostKind::Zeroconf => writeln!(text, "ZEROCONF"),
        };
    }
    text
}
