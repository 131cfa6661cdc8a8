//! pump's command line: the four forms of distcc 3.4's `pump`, and the help text.
//!
//! Dispatch follows the original: no argument, an empty first argument, `-h` or `--help`
//! print the help; exactly `--startup` or `--shutdown` select those modes; anything else
//! is a command to run. One deliberate difference: `--startup`/`--shutdown` followed by
//! more words is an error here (the original ran a command named `--startup`, exit 127).
//!
//! [`command`] describes the same surface to clap, for the man page and completions.

use std::ffi::{OsStr, OsString};

/// What pump was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Print the help text, exit 0.
    Help,
    /// Start the include server, print `export` lines, leave it running.
    Startup,
    /// Stop the include server named by `INCLUDE_SERVER_PID`/`INCLUDE_SERVER_DIR`.
    Shutdown,
    /// Run this command in pump mode.
    Command(Vec<OsString>),
}

/// A command line pump does not accept.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{flag} takes no arguments, got {extra:?}")]
pub struct UsageError {
    /// `--startup` or `--shutdown`.
    pub flag: String,
    /// What followed it.
    pub extra: String,
}

/// Picks the mode from the arguments after argv[0].
pub fn parse(args: &[OsString]) -> Result<Mode, UsageError> {
    let Some(first) = args.first() else {
        return Ok(Mode::Help);
    };
    if first.is_empty() || first == "-h" || first == "--help" {
        return Ok(Mode::Help);
    }
    for (flag, mode) in [("--startup", Mode::Startup), ("--shutdown", Mode::Shutdown)] {
        if first == OsStr::new(flag) {
            if args.len() > 1 {
                let extra: Vec<_> = args[1..].iter().map(|a| a.to_string_lossy()).collect();
                return Err(UsageError {
                    flag: flag.to_owned(),
                    extra: extra.join(" "),
                });
            }
            return Ok(mode);
        }
    }
    Ok(Mode::Command(args.to_vec()))
}

/// The help text (stdout, exit 0).
pub const HELP: &str = "\
Usage:
    pump COMMAND [ARG...]
or
    pump --startup
    pump --shutdown

Description:
  pump runs a build in distcc's pump mode, where the build servers preprocess as
  well as compile. It starts an include server on this machine, which tells each
  distcc invocation which source and header files its translation unit needs;
  distcc sends those files along, and the server preprocesses and compiles
  remotely.

  pump COMMAND [ARG...] starts the include server, runs the command with
  INCLUDE_SERVER_PORT set and distcc's directory first on PATH, stops the include
  server when the command ends, and exits with the command's status.

  pump --startup starts the include server and prints shell commands that
  export INCLUDE_SERVER_PID, INCLUDE_SERVER_DIR, INCLUDE_SERVER_PORT,
  DISTCC_HOSTS (when known) and PATH. Use it as
      eval \"$(pump --startup)\"; make -j40; pump --shutdown
  pump --shutdown stops the include server those variables describe.

  Only hosts marked ',cpp' in DISTCC_HOSTS (which needs ',lzo' too) are used in
  pump mode, for example
      DISTCC_HOSTS='--randomize server1,cpp,lzo server2/8,cpp,lzo'
  When DISTCC_POTENTIAL_HOSTS is set, pump probes those hosts with lsdistcc while
  the include server starts, and builds DISTCC_HOSTS from the live ones.

  If a compile fails on a server but succeeds locally, the client counts a
  discrepancy; after DISTCC_MAX_DISCREPANCY of them (default 1) the rest of the
  build uses plain distcc. pump reports this, and a summary of what the include
  server did, when it stops.

Environment:
  DISTCC_HOSTS            hosts to use (see distcc(1)); read from
                          $DISTCC_DIR/hosts, ~/.distcc/hosts or the system hosts
                          file when unset
  DISTCC_POTENTIAL_HOSTS  host names to probe with lsdistcc; replaces DISTCC_HOSTS
  LSDISTCC_ARGS           extra options for lsdistcc (after -c150)
  INCLUDE_SERVER_ARGS     extra options for the include server, split with shell
                          quoting rules (nothing in it is executed)
  DISTCC_LOCATION         directory holding distcc and lsdistcc (default: the
                          directory pump was started from)
  DISTCC_MAX_DISCREPANCY  discrepancies before demotion to plain distcc (default 1)
  DISTCC_DIR              distcc's directory (default ~/.distcc); pump reads
                          default settings from its pump.toml
  TMPDIR                  where the include server's socket directory is made

Example:
  pump make -j40
";

/// The description in the man page: plain paragraphs, reflowed by the formatter.
const MAN_DESCRIPTION: &str = "\
pump runs a build in distcc's pump mode, where the build servers preprocess as well as compile. It starts an include server on this machine, which tells each distcc invocation which source and header files its translation unit needs; distcc sends those files along, and the server preprocesses and compiles remotely.

pump COMMAND [ARG...] starts the include server, runs the command with INCLUDE_SERVER_PORT set and distcc's directory first on PATH, stops the include server when the command ends, and exits with the command's status. A SIGINT, SIGTERM or SIGHUP sent to pump is passed to the command; pump then stops the include server, removes its temporary files and dies of the same signal.

pump --startup starts the include server and prints shell commands that export INCLUDE_SERVER_PID, INCLUDE_SERVER_DIR, INCLUDE_SERVER_PORT, DISTCC_HOSTS (when known) and PATH, quoted so that eval reads them back exactly: eval \"$(pump --startup)\"; make -j40; pump --shutdown. pump --shutdown stops the include server those variables describe.

Only hosts marked ',cpp' in DISTCC_HOSTS (which needs ',lzo' too) are used in pump mode. When DISTCC_POTENTIAL_HOSTS is set, pump probes those hosts with lsdistcc while the include server starts, and builds DISTCC_HOSTS from the live ones, on one line.

If a compile fails on a server but succeeds locally, the client counts a discrepancy; after DISTCC_MAX_DISCREPANCY of them (default 1) the rest of the build uses plain distcc. When the include server stops, pump reports discrepancies and one line summarising what the include server did: translation units served, fall-backs to local preprocessing by reason, and files shipped.";

/// The environment section of the man page.
const MAN_ENVIRONMENT: &str = "\
ENVIRONMENT

DISTCC_HOSTS: hosts to use (see distcc(1)); read from $DISTCC_DIR/hosts, ~/.distcc/hosts or the system hosts file when unset.

DISTCC_POTENTIAL_HOSTS: host names to probe with lsdistcc; replaces DISTCC_HOSTS.

LSDISTCC_ARGS: extra options for lsdistcc, after -c150.

INCLUDE_SERVER_ARGS: extra options for the include server, split with shell quoting rules; nothing in it is executed.

DISTCC_LOCATION: directory holding distcc and lsdistcc (default: the directory pump was started from, following one symlink).

DISTCC_MAX_DISCREPANCY: discrepancies before demotion to plain distcc (default 1; must be 1 or more).

DISTCC_DIR: distcc's directory (default ~/.distcc); pump reads default settings from its pump.toml.

TMPDIR: where the include server's socket directory is made.

PUMP_SYSCONFDIR: overrides the compiled-in directory holding distcc/hosts.

EXIT STATUS

0 after the help, a successful --startup, and --shutdown; 1 when pump cannot start (bad DISTCC_MAX_DISCREPANCY, no distcc, no hosts or no ',cpp' host, include server failed); otherwise the command's status.";

/// The same surface as a clap command, for the man page and shell completions.
pub fn command() -> clap::Command {
    use clap::{Arg, ArgAction, Command};
    Command::new("pump")
        .about("Run a build in distcc's pump mode (remote preprocessing)")
        .long_about(MAN_DESCRIPTION)
        .after_long_help(MAN_ENVIRONMENT)
        .override_usage("pump COMMAND [ARG...]\n       pump --startup\n       pump --shutdown")
        .disable_version_flag(true)
        .arg(
            Arg::new("startup")
                .long("startup")
                .action(ArgAction::SetTrue)
                .help("Start the include server and print export commands for the shell")
                .exclusive(true),
        )
        .arg(
            Arg::new("shutdown")
                .long("shutdown")
                .action(ArgAction::SetTrue)
                .help("Stop the include server started by --startup")
                .exclusive(true),
        )
        .arg(
            Arg::new("command")
                .value_name("COMMAND")
                .num_args(1..)
                .trailing_var_arg(true)
                .allow_hyphen_values(true)
                .value_hint(clap::ValueHint::CommandWithArguments)
                .help("The build command to run in pump mode"),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn dispatch_table() {
        let cases: &[(&[&str], Mode)] = &[
            (&[], Mode::Help),
            (&[""], Mode::Help),
            (&["-h"], Mode::Help),
            (&["-h", "make"], Mode::Help),
            (&["--help"], Mode::Help),
            (&["--startup"], Mode::Startup),
            (&["--shutdown"], Mode::Shutdown),
            (&["make", "-j8"], Mode::Command(args(&["make", "-j8"]))),
            (&["--version"], Mode::Command(args(&["--version"]))),
            (&["", "make"], Mode::Help),
        ];
        for (input, want) in cases {
            assert_eq!(parse(&args(input)).unwrap(), *want, "{input:?}");
        }
    }

    #[test]
    fn extra_words_after_startup_are_an_error() {
        let err = parse(&args(&["--startup", "x", "y"])).unwrap_err();
        assert_eq!(err.to_string(), "--startup takes no arguments, got \"x y\"");
    }

    #[test]
    fn clap_definition_is_consistent() {
        command().debug_assert();
    }
}
