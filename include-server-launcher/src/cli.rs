//! The command line of `include_server.py` (distcc 3.4), parsed the way Python's
//! `getopt` parses it, so that existing `INCLUDE_SERVER_ARGS` keep working.
//!
//! getopt rules followed here: short options `d:estvwx` (clustered, `-d1` or `-d 1`);
//! long options may be abbreviated to any unique prefix (an exact name always wins),
//! take their value as `--opt=value` or as the next argument; parsing stops at `--` or
//! at the first non-option argument, and the rest is ignored. Integer values are parsed
//! as Python's `int()` does for plain decimals (surrounding spaces, a sign).

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

/// The usage text (free-form; printed to stdout on a usage error).
pub const USAGE: &str = "\
Usage: include_server --port INCLUDE_SERVER_PORT [OPTIONS]

The pump-mode include server of distcc. It listens on the Unix socket
INCLUDE_SERVER_PORT and tells the distcc client which files a compilation needs.

Options:
  --port INCLUDE_SERVER_PORT      Unix socket to listen on (required).
  --pid_file FILEPATH             Write the serving process's pid to FILEPATH.
  -d, --debug_pattern=INT         Debug bit mask: 1 warnings, 2 trace, 4 trace1,
                                  8 trace2, 16 data (default 1).
  -e, --email                     Accepted for compatibility; no e-mail is sent.
  --no-email                      Accepted for compatibility (the default).
  --email_bound NUMBER            Accepted for compatibility.
  --path_observation_re=RE        Warn about new resolutions whose realpath matches RE.
  --stat_reset_triggers=LIST      Colon-separated globs; a change to a matching file
                                  clears every cache.
  --simple_algorithm              Not implemented (exits 1).
  --unsafe_absolute_includes      Ignore absolute #include names instead of failing.
  --unsafe_no_unexpanded_functions
                                  Do not keep unexpanded function-like macro names.
  --no_force_dirs                 Do not create forcing files.
  -s, --statistics                Print statistics after each request.
  -t, --time                      Print the server's timing at exit.
  -v, --verify                    Check each closure against the real preprocessor.
  -w, --write_include_closure     Write .d_approx (and with -v .d_exact) files.
  -x, --exact_analysis            Accepted for compatibility; no effect.
";

/// What the command line asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// `--port`.
    pub port: Option<PathBuf>,
    /// `--pid_file`.
    pub pid_file: Option<PathBuf>,
    /// `-d` / `--debug_pattern` (default 1).
    pub debug: u32,
    /// `-e` / `--email` (accepted; `--no-email` clears it).
    pub email: bool,
    /// `--email_bound`.
    pub email_bound: i64,
    /// `--path_observation_re`.
    pub path_observation_re: Option<String>,
    /// `--stat_reset_triggers`.
    pub stat_reset_triggers: Option<String>,
    /// `--simple_algorithm`.
    pub simple_algorithm: bool,
    /// `--unsafe_absolute_includes`.
    pub unsafe_absolute_includes: bool,
    /// `--unsafe_no_unexpanded_functions`.
    pub unsafe_no_unexpanded_functions: bool,
    /// `--no_force_dirs`.
    pub no_force_dirs: bool,
    /// `-s` / `--statistics`.
    pub statistics: bool,
    /// `-t` / `--time`.
    pub time: bool,
    /// `-v` / `--verify`.
    pub verify: bool,
    /// `-w` / `--write_include_closure`.
    pub write_include_closure: bool,
    /// `-x` / `--exact_analysis`.
    pub exact_analysis: bool,
}

/// A usage error: the text says which argument is wrong.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Every option: long name, short letter, whether it takes a value.
const TABLE: &[(&str, Option<char>, bool)] = &[
    ("port", None, true),
    ("pid_file", None, true),
    ("debug_pattern", Some('d'), true),
    ("email", Some('e'), false),
    ("no-email", None, false),
    ("email_bound", None, true),
    ("path_observation_re", None, true),
    ("stat_reset_triggers", None, true),
    ("simple_algorithm", None, false),
    ("unsafe_absolute_includes", None, false),
    ("unsafe_no_unexpanded_functions", None, false),
    ("no_force_dirs", None, false),
    ("statistics", Some('s'), false),
    ("time", Some('t'), false),
    ("verify", Some('v'), false),
    ("write_include_closure", Some('w'), false),
    ("exact_analysis", Some('x'), false),
];

impl Options {
    /// Parses the arguments after the program name.
    pub fn parse<I>(args: I) -> Result<Options, UsageError>
    where
        I: IntoIterator<Item = OsString>,
    {
        let mut opts = Options {
            debug: 1,
            email_bound: 3,
            ..Options::default()
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let arg = arg.into_vec();
            if arg == b"--" {
                break;
            }
            if let Some(long) = arg.strip_prefix(b"--") {
                let (name, inline) = match long.iter().position(|&b| b == b'=') {
                    Some(i) => (&long[..i], Some(long[i + 1..].to_vec())),
                    None => (long, None),
                };
                let name = String::from_utf8_lossy(name).into_owned();
                let &(full, _, takes) = lookup_long(&name)?;
                let value = match (takes, inline) {
                    (true, Some(v)) => Some(v),
                    (true, None) => Some(
                        args.next()
                            .ok_or_else(|| {
                                UsageError(format!("option --{full} requires argument"))
                            })?
                            .into_vec(),
                    ),
                    (false, Some(_)) => {
                        return Err(UsageError(format!(
                            "option --{full} must not have an argument"
                        )))
                    }
                    (false, None) => None,
                };
                opts.set(full, value)?;
            } else if arg.len() > 1 && arg[0] == b'-' {
                let mut i = 1;
                while i < arg.len() {
                    let c = arg[i] as char;
                    let &(full, _, takes) = TABLE
                        .iter()
                        .find(|(_, s, _)| *s == Some(c))
                        .ok_or_else(|| UsageError(format!("option -{c} not recognized")))?;
                    i += 1;
                    if takes {
                        let value = if i < arg.len() {
                            arg[i..].to_vec()
                        } else {
                            args.next()
                                .ok_or_else(|| {
                                    UsageError(format!("option -{c} requires argument"))
                                })?
                                .into_vec()
                        };
                        opts.set(full, Some(value))?;
                        break;
                    }
                    opts.set(full, None)?;
                }
            } else {
                // The first non-option ends parsing; the rest is ignored.
                break;
            }
        }
        Ok(opts)
    }

    fn set(&mut self, name: &str, value: Option<Vec<u8>>) -> Result<(), UsageError> {
        let value = value.unwrap_or_default();
        let text = || String::from_utf8_lossy(&value).into_owned();
        let path = || PathBuf::from(OsString::from_vec(value.clone()));
        match name {
            "port" => self.port = Some(path()),
            "pid_file" => self.pid_file = Some(path()),
            "debug_pattern" => {
                let n = int(&text(), name)?;
                self.debug = u32::try_from(n)
                    .map_err(|_| UsageError(format!("bad value for --{name}: {n}")))?;
            }
            "email" => self.email = true,
            "no-email" => self.email = false,
            "email_bound" => self.email_bound = int(&text(), name)?,
            "path_observation_re" => self.path_observation_re = Some(text()),
            "stat_reset_triggers" => self.stat_reset_triggers = Some(text()),
            "simple_algorithm" => self.simple_algorithm = true,
            "unsafe_absolute_includes" => self.unsafe_absolute_includes = true,
            "unsafe_no_unexpanded_functions" => self.unsafe_no_unexpanded_functions = true,
            "no_force_dirs" => self.no_force_dirs = true,
            "statistics" => self.statistics = true,
            "time" => self.time = true,
            "verify" => self.verify = true,
            "write_include_closure" => self.write_include_closure = true,
            "exact_analysis" => self.exact_analysis = true,
            _ => return Err(UsageError(format!("option --{name} not recognized"))),
        }
        Ok(())
    }
}

/// The table entry for a long option given as `name` (exact, or a unique prefix).
fn lookup_long(name: &str) -> Result<&'static (&'static str, Option<char>, bool), UsageError> {
    if let Some(e) = TABLE.iter().find(|(long, _, _)| *long == name) {
        return Ok(e);
    }
    let matches: Vec<_> = TABLE
        .iter()
        .filter(|(long, _, _)| !name.is_empty() && long.starts_with(name))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(UsageError(format!("option --{name} not recognized"))),
        _ => Err(UsageError(format!("option --{name} not a unique prefix"))),
    }
}

/// Python's `int()` of a decimal string.
fn int(text: &str, name: &str) -> Result<i64, UsageError> {
    text.trim().replace('_', "").parse().map_err(|_| {
        UsageError(format!(
            "bad value for --{name}: {text:?} is not an integer"
        ))
    })
}

/// The same surface described to clap, for the man page and shell completions only:
/// parsing is [`Options::parse`]'s (getopt's unique-prefix rules are not clap's).
pub fn command() -> clap::Command {
    use clap::{Arg, ArgAction, Command};
    let flag = |id: &'static str, short: Option<char>, help: &'static str| {
        let a = Arg::new(id).long(id).action(ArgAction::SetTrue).help(help);
        match short {
            Some(c) => a.short(c),
            None => a,
        }
    };
    let value = |id: &'static str, name: &'static str, help: &'static str| {
        Arg::new(id).long(id).value_name(name).help(help)
    };
    Command::new("include_server")
        .about("The include server of distcc's pump mode")
        .long_about(
            "include_server starts the include server that distcc's pump mode uses. It \
             listens on the Unix socket given by --port and answers each distcc client with \
             the files its compilation needs (the source, every header it may include, \
             LZO-compressed under a private temporary directory, plus the symbolic links and \
             directories that make the include paths resolve on the server). The launcher \
             returns once the socket accepts connections, with the serving process's pid in \
             the --pid_file. Requests are served concurrently. A request that cannot be \
             covered gets the empty answer, so the client preprocesses locally; the reason is \
             logged on stderr and counted. pump(1) starts and stops it; it is rarely run by \
             hand. Long options may be abbreviated to any unique prefix, as in distcc's \
             Python include server, whose options are all accepted.",
        )
        .after_long_help(
            "SIGNALS: SIGTERM and SIGINT stop the server after in-flight requests finish (at \
             most 2 s); it removes its temporary directories and the socket and writes \
             stats.json next to the socket: requests, fall-backs by reason, files parsed and \
             compressed, cache hits and time spent.\n\n\
             ENVIRONMENT: DISTCC_CLIENT_TMP (where client roots are made: /dev/shm, else \
             /tmp); DISTCC_IO_TIMEOUT (seconds a client may stall); PATH (the only variable \
             the compiler probes see); INCLUDE_SERVER_PROBE_CACHE (where each compiler's \
             default include directories and predefined macros are saved for the next \
             server, checked against the compiler's files before each use; default \
             $DISTCC_DIR/include_server/probes, ~/.distcc when DISTCC_DIR is unset; set but \
             empty: nothing saved); INCLUDE_SERVER_READY_FD (set by pump(1): a descriptor \
             on which the server writes its pid and a newline once the socket accepts; the \
             launcher then serves in its own process instead of forking, and exits only when \
             the server stops).\n\n\
             EXIT STATUS: 0 once the server is ready; 1 for a bad option, --simple_algorithm, \
             or a server that could not start (one line on stderr says why).",
        )
        .disable_help_flag(true)
        .disable_version_flag(true)
        .arg(
            value(
                "port",
                "INCLUDE_SERVER_PORT",
                "Unix socket to listen on (required)",
            )
            .required(true),
        )
        .arg(value(
            "pid_file",
            "FILEPATH",
            "Write the serving process's pid to FILEPATH",
        ))
        .arg(
            value(
                "debug_pattern",
                "INT",
                "Debug bit mask: 1 warnings, 2 trace (default 1)",
            )
            .short('d'),
        )
        .arg(flag(
            "email",
            Some('e'),
            "Accepted for compatibility; no e-mail is sent",
        ))
        .arg(flag(
            "no-email",
            None,
            "Accepted for compatibility (the default)",
        ))
        .arg(value("email_bound", "NUMBER", "Accepted for compatibility"))
        .arg(value(
            "path_observation_re",
            "RE",
            "Warn about new resolutions whose realpath matches RE (Python's regular \
             expression syntax, with ASCII meanings for \\w, \\d, \\s and (?i))",
        ))
        .arg(value(
            "stat_reset_triggers",
            "LIST",
            "Colon-separated globs; a change to a matching file clears every cache",
        ))
        .arg(flag("simple_algorithm", None, "Not implemented (exits 1)"))
        .arg(flag(
            "unsafe_absolute_includes",
            None,
            "Ignore absolute #include names instead of failing the request",
        ))
        .arg(flag(
            "unsafe_no_unexpanded_functions",
            None,
            "Do not keep unexpanded function-like macro names",
        ))
        .arg(flag("no_force_dirs", None, "Do not create forcing files"))
        .arg(flag(
            "statistics",
            Some('s'),
            "Print statistics after each request",
        ))
        .arg(flag("time", Some('t'), "Print the server's timing at exit"))
        .arg(flag(
            "verify",
            Some('v'),
            "Check each closure against the real preprocessor",
        ))
        .arg(flag(
            "write_include_closure",
            Some('w'),
            "Write .d_approx (and with -v .d_exact) files",
        ))
        .arg(flag(
            "exact_analysis",
            Some('x'),
            "Accepted for compatibility; no effect",
        ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn clap_description_is_consistent() {
        super::command().debug_assert();
    }

    use super::*;

    fn parse(args: &[&str]) -> Result<Options, UsageError> {
        Options::parse(args.iter().map(OsString::from))
    }

    fn base() -> Options {
        Options {
            debug: 1,
            email_bound: 3,
            ..Options::default()
        }
    }

    #[test]
    fn accepted_command_lines() {
        let cases: &[(&[&str], Options)] = &[
            (
                &["--port", "/s/socket", "--pid_file", "/p", "-d1"],
                Options {
                    port: Some("/s/socket".into()),
                    pid_file: Some("/p".into()),
                    ..base()
                },
            ),
            (
                &["--port=/s", "-d", "19", "-st"],
                Options {
                    port: Some("/s".into()),
                    debug: 19,
                    statistics: true,
                    time: true,
                    ..base()
                },
            ),
            (
                &[
                    "--po",
                    "/s",
                    "--stat_r=a:b",
                    "--unsafe_a",
                    "--no_",
                    "--debug=3",
                ],
                Options {
                    port: Some("/s".into()),
                    stat_reset_triggers: Some("a:b".into()),
                    unsafe_absolute_includes: true,
                    no_force_dirs: true,
                    debug: 3,
                    ..base()
                },
            ),
            (
                &[
                    "-e",
                    "--no-e",
                    "--email_bound",
                    " 7 ",
                    "-vwx",
                    "--sim",
                    "--unsafe_no",
                ],
                Options {
                    email: false,
                    email_bound: 7,
                    verify: true,
                    write_include_closure: true,
                    exact_analysis: true,
                    simple_algorithm: true,
                    unsafe_no_unexpanded_functions: true,
                    ..base()
                },
            ),
            (
                &["--path_observation_re", "^/usr", "-s", "extra", "--bogus"],
                Options {
                    path_observation_re: Some("^/usr".into()),
                    statistics: true,
                    ..base()
                },
            ),
            (
                &["--time", "--", "-s"],
                Options {
                    time: true,
                    ..base()
                },
            ),
            (
                &["-d0", "--stat_reset_triggers", "", "-"],
                Options {
                    debug: 0,
                    stat_reset_triggers: Some(String::new()),
                    ..base()
                },
            ),
        ];
        for (args, want) in cases {
            assert_eq!(parse(args).as_ref(), Ok(want), "{args:?}");
        }
    }

    #[test]
    fn rejected_command_lines() {
        let cases: &[(&[&str], &str)] = &[
            (&["--bogus"], "option --bogus not recognized"),
            (&["-q"], "option -q not recognized"),
            (&["--no"], "option --no not a unique prefix"),
            (&["--e"], "option --e not a unique prefix"),
            (&["--port"], "option --port requires argument"),
            (&["-d"], "option -d requires argument"),
            (
                &["-dx"],
                "bad value for --debug_pattern: \"x\" is not an integer",
            ),
            (
                &["--email_bound=many"],
                "bad value for --email_bound: \"many\" is not an integer",
            ),
            (&["--verify=1"], "option --verify must not have an argument"),
            (&["-d", "-1"], "bad value for --debug_pattern: -1"),
        ];
        for (args, want) in cases {
            assert_eq!(parse(args), Err(UsageError(want.to_string())), "{args:?}");
        }
    }

    #[test]
    fn every_option_of_the_table_is_settable() {
        for (long, short, takes) in TABLE {
            let mut args = vec![format!("--{long}")];
            if *takes {
                args.push("1".into());
            }
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            assert!(parse(&refs).is_ok(), "--{long}");
            if let Some(c) = short {
                let mut args = vec![format!("-{c}")];
                if *takes {
                    args.push("1".into());
                }
                let refs: Vec<&str> = args.iter().map(String::as_str).collect();
                assert!(parse(&refs).is_ok(), "-{c}");
            }
        }
    }
}
