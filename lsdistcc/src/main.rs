//! `lsdistcc`: finds live distcc servers; a drop-in for distcc 3.4's (see `docs/lsdistcc.md`).
//!
//! This binary parses the command line, runs the scan of the `lsdistcc` library and prints:
//! result lines on stdout in the order the names were given, `-v` diagnostics on stderr.
//! A closed stdout (broken pipe) ends the printing quietly.
//!
//! Exit status, as the original: 0 if at least one name resolved (down hosts count), or if
//! the `-t` limit ended the run; 1 if nothing resolved, on bad usage, and when `-d` finds no
//! domain.

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use common::env::Env;
use lsdistcc::cli::{self, Options, UsageError};
use lsdistcc::names::{self, NameError};
use lsdistcc::probe::{compile_request, CompileProbe, Outcome, ProbeSpec};
use lsdistcc::report::{self, Ordered};
use lsdistcc::scan::{self, Event, ScanConfig};

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("lsdistcc: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<ExitCode> {
    let env = Env::from_process();
    let opts = match cli::parse(std::env::args_os().skip(1)) {
        Ok(o) => o,
        Err(e) => return Ok(usage(&e)),
    };
    let domain = if opts.domain {
        match names::dns_domain(&env) {
            Ok(d) => Some(d),
            Err(e) => {
                eprintln!("{e}");
                return Ok(ExitCode::FAILURE);
            }
        }
    } else {
        None
    };
    let names = match names::names(&opts.names, domain.as_deref()) {
        Ok(n) => n,
        Err(e @ NameError::NoDomain) => {
            eprintln!("{e}");
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => {
            eprintln!("lsdistcc: {e}");
            print_usage();
            return Ok(ExitCode::FAILURE);
        }
    };
    let config = scan_config(&opts, names.len());
    let mut out = Printer::new(opts.verbose > 0);
    let mut ordered = Ordered::new(names.len());
    let mut on_event = |event: Event| {
        match event {
            Event::Lookup { index, attempt } => {
                if opts.verbose > 0 {
                    let what = if attempt == 1 {
                        "Looking up"
                    } else {
                        "Resending"
                    };
                    eprintln!("{}: {what} {}", now(), shown(&names[index]));
                }
            }
            Event::NotFound { index, reason } => {
                if opts.verbose > 0 {
                    eprintln!("{}: {} not found: {reason}", now(), shown(&names[index]));
                }
                ordered.settle(index, None);
            }
            Event::Limited { end } => {
                if opts.verbose > 0 {
                    eprintln!("Already searching up to host {end}, won't search any higher");
                }
                ordered.skip_from(end);
            }
            Event::Probed {
                index,
                addr,
                result,
            } => {
                if opts.verbose > 0 {
                    if let Outcome::Down(reason) = &result.outcome {
                        eprintln!("{}: {} is down: {reason}", now(), shown(&names[index]));
                    }
                }
                let line =
                    report::line(&opts, &names[index], addr, &result.outcome, result.latency);
                ordered.settle(index, line);
            }
        }
        out.write_lines(ordered.ready());
    };
    let summary = scan::scan(&names, &config, &mut on_event)?;
    if summary.timed_out {
        if opts.verbose > 0 {
            eprintln!("Timeout!");
        }
        out.write_lines(ordered.drain_finished());
    } else {
        out.write_lines(ordered.ready());
    }
    out.flush();
    let found = summary.timed_out || summary.resolved > 0;
    Ok(if found {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Bad usage: the optional one-line reason on stderr, the usage text on stdout, exit 1.
fn usage(e: &UsageError) -> ExitCode {
    if let Some(m) = e.message() {
        eprintln!("{m}");
    }
    print_usage();
    ExitCode::FAILURE
}

fn print_usage() {
    let mut stdout = io::stdout().lock();
    let _ = stdout.write_all(cli::USAGE.as_bytes());
    let _ = stdout.flush();
}

fn scan_config(opts: &Options, n: usize) -> ScanConfig {
    let compile = match (&opts.compiler, opts.compile_timeout) {
        (Some(cc), Some(timeout)) => Some(CompileProbe {
            request: compile_request(cc, opts.protocol),
            protocol: opts.protocol.number(),
            timeout,
        }),
        _ => None,
    };
    // One socket per probe; keep some descriptors for stdio, the resolver and the channel.
    let limit = scan::raise_fd_limit(n as u64 + 32);
    ScanConfig {
        dns_retry: opts.dns_retry,
        overlap: opts.overlap,
        dns_gap: opts.dns_gap,
        match_bits: opts.match_bits,
        probe: ProbeSpec {
            port: opts.port,
            connect_timeout: opts.connect_timeout,
            compile,
        },
        deadline: opts.time_limit.map(|t| Instant::now() + t),
        max_probes: usize::try_from(limit.saturating_sub(32)).unwrap_or(usize::MAX),
    }
}

/// `now <sec> <ms>`, the original's timestamp for verbose lines.
fn now() -> String {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!("now {} {}", t.as_secs(), t.subsec_millis())
}

fn shown(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

/// Result lines on stdout: flushed after each line with `-v` (as the original), else at the
/// end; the first write error (a closed pipe) silences it for good.
struct Printer {
    out: io::BufWriter<io::Stdout>,
    flush_each: bool,
    closed: bool,
}

impl Printer {
    fn new(flush_each: bool) -> Printer {
        Printer {
            out: io::BufWriter::new(io::stdout()),
            flush_each,
            closed: false,
        }
    }

    fn write_lines(&mut self, lines: Vec<Vec<u8>>) {
        for l in lines {
            if self.closed {
                return;
            }
            let r = self.out.write_all(&l);
            let r = if self.flush_each {
                r.and_then(|()| self.out.flush())
            } else {
                r
            };
            if r.is_err() {
                self.closed = true;
            }
        }
    }

    fn flush(&mut self) {
        if !self.closed && self.out.flush().is_err() {
            self.closed = true;
        }
    }
}
