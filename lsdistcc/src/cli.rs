//! The command line of `lsdistcc`, parsed the way distcc 3.4's parses it (spec B.1).
//!
//! The rules, which clap cannot express:
//! - options are read while an argument starts with `-`; the first one that does not ends
//!   the options, and everything after it is a name (even `-l`);
//! - only the second character of an option is looked at: `-lv` is `-l`, and `-help` is
//!   `-h` (the DNS retry interval) with the value `elp`;
//! - a value is the rest of the same argument (`-c150`); a separate word is never taken,
//!   so `-c 150` sets the connect timeout to 0 and makes `150` a host name;
//! - an empty value is 0, as C's `atoi("")` gives (`-t` alone means "no time limit",
//!   `-h` alone means "retry DNS at once").
//!
//! Where this parser is stricter than the original, and why (also in `docs/lsdistcc.md`):
//! - a value that is not a decimal number (`-cabc`, `-c15x`) is rejected instead of being
//!   read as `atoi` would (0 or 15); so `-help` gets the usage text (and one stderr line)
//!   instead of silently starting a scan with `-h0`;
//! - a port above 65535 is rejected instead of wrapping around in `htons`.
//!
//! Every rejection is a [`UsageError`]: the binary prints the usage text on stdout and
//! exits 1, as the original does, plus one stderr line naming the bad value, except for
//! `--help`, which gets only the usage text (distcc's own test asserts an empty stderr).

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

/// The usage text (stdout). The same options and defaults as distcc 3.4's, in our own
/// words; the first line starts `Usage:` as distcc's test suite checks.
pub const USAGE: &str = "\
Usage: lsdistcc [OPTIONS] [FORMAT | HOST...]
Finds the distcc servers that are up and prints one per line.
With no argument, or with a FORMAT containing %d, it probes the names the format
gives for 1, 2, 3, ... (default distcc%d) and stops at the first name that does not
resolve (see -g) or when the time limit is reached. Otherwise it probes exactly the
HOSTs given.
Option values are attached to the letter: -c150, -pgcc, -P3.
Options:
  -l          print each host's latency in milliseconds (connect and compile)
  -n          print the IPv4 address instead of the name
  -x          also print the hosts that are down, marked ,down
  -v          say why each host is down (repeat for more detail)
  -d          append this machine's DNS domain to every name
  -tSECONDS   stop after this many seconds, 0 for no limit [7]
  -hMS        resend a DNS lookup after this many milliseconds [500]
  -cMS        connect timeout in milliseconds, 0 to skip connecting [900]
  -kMS        compile-probe timeout in milliseconds, 0 to skip it [1500]
  -mBITS      leading address bits that must equal the first host's [0]
  -oN         extra DNS lookups to keep in flight [1]
  -gN         unresolvable names to tolerate before stopping [0]
  -rPORT      distccd's TCP port [3632]
  -PN         protocol for the compile probe and the printed suffix, 1-3 [1]
  -pCOMPILER  probe with a test compile by COMPILER (no probe without -p) [none]
Exit status: 0 if any name resolved, 1 if none did or the command line is wrong.
Examples:
  lsdistcc -l -pgcc
  lsdistcc -pgcc hosta hostb hostc
";

/// distcc's protocol version, chosen with `-P`: it selects the compile probe's request and
/// the suffix printed after each host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `-P1`: plain preprocessed source, no suffix.
    P1,
    /// `-P2`: LZO-compressed source, suffix `,lzo`.
    P2,
    /// `-P3`: pump mode (file list), suffix `,lzo,cpp`.
    P3,
}

impl Protocol {
    /// The protocol number sent in `DIST` and expected back in `DONE`.
    pub fn number(self) -> u32 {
        match self {
            Protocol::P1 => 1,
            Protocol::P2 => 2,
            Protocol::P3 => 3,
        }
    }

    /// The host-spec suffix printed after every host: `""`, `",lzo"` or `",lzo,cpp"`.
    pub fn suffix(self) -> &'static str {
        match self {
            Protocol::P1 => "",
            Protocol::P2 => ",lzo",
            Protocol::P3 => ",lzo,cpp",
        }
    }
}

/// Everything the command line sets. Defaults are distcc 3.4's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `-l`: print the latency in ms after each host.
    pub latency: bool,
    /// `-n`: print the dotted IPv4 address instead of the name.
    pub numeric: bool,
    /// `-x`: print down hosts too, with `,down`.
    pub show_down: bool,
    /// `-v`, repeatable.
    pub verbose: u32,
    /// `-d`: append `.<DNS domain>` to every name.
    pub domain: bool,
    /// `-t`: overall time limit; `None` for `-t0` (no limit). Default 7 s.
    pub time_limit: Option<Duration>,
    /// `-h`: DNS retry interval. Default 500 ms.
    pub dns_retry: Duration,
    /// `-c`: connect timeout; `None` for `-c0` (no connect: a resolved host is up).
    /// Default 900 ms.
    pub connect_timeout: Option<Duration>,
    /// `-k`: compile-probe timeout; `None` for `-k0` (no probe). Default 1500 ms.
    pub compile_timeout: Option<Duration>,
    /// `-m`: leading address bits that must equal the first address found (0..=31).
    pub match_bits: u32,
    /// `-o`: extra first-try DNS lookups kept in flight. Default 1.
    pub overlap: u32,
    /// `-g`: failed lookups tolerated before the scan stops. Default 0.
    pub dns_gap: u32,
    /// `-r`: TCP port. Default 3632.
    pub port: u16,
    /// `-P`: protocol. Default 1.
    pub protocol: Protocol,
    /// `-p`: compiler for the compile probe; the probe runs only when this is set.
    pub compiler: Option<Vec<u8>>,
    /// The arguments after the options: a format (if the first contains `%d`) or hosts.
    pub names: Vec<OsString>,
}

/// distcc's default port.
pub const DEFAULT_PORT: u16 = 3632;

impl Default for Options {
    fn default() -> Self {
        Options {
            latency: false,
            numeric: false,
            show_down: false,
            verbose: 0,
            domain: false,
            time_limit: Some(Duration::from_secs(7)),
            dns_retry: Duration::from_millis(500),
            connect_timeout: Some(Duration::from_millis(900)),
            compile_timeout: Some(Duration::from_millis(1500)),
            match_bits: 0,
            overlap: 1,
            dns_gap: 0,
            port: DEFAULT_PORT,
            protocol: Protocol::P1,
            compiler: None,
            names: Vec::new(),
        }
    }
}

/// Why the command line was rejected. In every case the usage text goes to stdout and the
/// exit status is 1; [`UsageError::message`] is the extra stderr line, if any.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    /// `--help`: usage only, nothing on stderr.
    #[error("help requested")]
    Help,
    /// An option letter lsdistcc does not have, or `-`, `--`, `--foo`.
    #[error("unknown option '{0}'")]
    UnknownOption(String),
    /// A value that is not a decimal number.
    #[error("invalid value '{value}' for -{letter}: not a number")]
    NotANumber {
        /// The option letter.
        letter: char,
        /// The value as written.
        value: String,
    },
    /// A number outside the accepted range.
    #[error("invalid value '{value}' for -{letter}: {expected}")]
    OutOfRange {
        /// The option letter.
        letter: char,
        /// The value as written.
        value: String,
        /// The accepted range, in words.
        expected: &'static str,
    },
    /// `-p` with nothing attached.
    #[error("-p needs a compiler name attached, as in -pgcc")]
    EmptyCompiler,
}

impl UsageError {
    /// The one line for stderr, or `None` for `--help`.
    pub fn message(&self) -> Option<String> {
        match self {
            UsageError::Help => None,
            other => Some(format!("lsdistcc: {other}")),
        }
    }
}

/// Parses the arguments after the program name.
pub fn parse<I, A>(args: I) -> Result<Options, UsageError>
where
    I: IntoIterator<Item = A>,
    A: Into<OsString>,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let mut opts = Options::default();
    let mut i = 0;
    while i < args.len() && args[i].as_bytes().first() == Some(&b'-') {
        let arg = args[i].as_bytes();
        let value = arg.get(2..).unwrap_or(&[]);
        let shown = || String::from_utf8_lossy(arg).into_owned();
        match arg.get(1) {
            Some(b'l') => opts.latency = true,
            Some(b'n') => opts.numeric = true,
            Some(b'x') => opts.show_down = true,
            Some(b'v') => opts.verbose += 1,
            Some(b'd') => opts.domain = true,
            Some(b't') => {
                let secs = number('t', value, 0, u32::MAX, ">= 0")?;
                opts.time_limit = (secs > 0).then(|| Duration::from_secs(secs.into()));
            }
            Some(b'h') => {
                opts.dns_retry = millis(number('h', value, 0, u32::MAX, ">= 0")?);
            }
            Some(b'c') => {
                let ms = number('c', value, 0, u32::MAX, ">= 0")?;
                opts.connect_timeout = (ms > 0).then(|| millis(ms));
            }
            Some(b'k') => {
                let ms = number('k', value, 0, u32::MAX, ">= 0")?;
                opts.compile_timeout = (ms > 0).then(|| millis(ms));
            }
            Some(b'm') => opts.match_bits = number('m', value, 0, 31, "0 to 31")?,
            Some(b'o') => opts.overlap = number('o', value, 0, u32::MAX, ">= 0")?,
            Some(b'g') => opts.dns_gap = number('g', value, 0, u32::MAX, ">= 0")?,
            Some(b'r') => {
                let port = number('r', value, 1, 65535, "a port from 1 to 65535")?;
                opts.port = u16::try_from(port).expect("range checked");
            }
            Some(b'P') => {
                opts.protocol = match number('P', value, 1, 3, "1, 2 or 3")? {
                    1 => Protocol::P1,
                    2 => Protocol::P2,
                    _ => Protocol::P3,
                }
            }
            Some(b'p') => {
                if value.is_empty() {
                    return Err(UsageError::EmptyCompiler);
                }
                opts.compiler = Some(value.to_vec());
            }
            _ if arg == b"--help" => return Err(UsageError::Help),
            _ => return Err(UsageError::UnknownOption(shown())),
        }
        i += 1;
    }
    opts.names = args[i..].to_vec();
    Ok(opts)
}

fn millis(ms: u32) -> Duration {
    Duration::from_millis(ms.into())
}

/// Reads an attached value: empty is 0 (C's `atoi("")`), otherwise an optional sign and
/// decimal digits and nothing else, within `min..=max`.
fn number(
    letter: char,
    value: &[u8],
    min: u32,
    max: u32,
    expected: &'static str,
) -> Result<u32, UsageError> {
    let text = String::from_utf8_lossy(value).into_owned();
    if value.is_empty() {
        return if min == 0 {
            Ok(0)
        } else {
            Err(UsageError::OutOfRange {
                letter,
                value: text,
                expected,
            })
        };
    }
    let n: i64 = match text.parse() {
        Ok(n) => n,
        Err(_) => {
            let digits = text.strip_prefix(['+', '-']).unwrap_or(&text);
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                // A well-formed number too large for i64: out of range, not garbage.
                return Err(UsageError::OutOfRange {
                    letter,
                    value: text,
                    expected,
                });
            }
            return Err(UsageError::NotANumber {
                letter,
                value: text,
            });
        }
    };
    if n < i64::from(min) || n > i64::from(max) {
        return Err(UsageError::OutOfRange {
            letter,
            value: text,
            expected,
        });
    }
    Ok(u32::try_from(n).expect("range checked"))
}

/// The same surface described to clap, for the man page and shell completions only:
/// parsing is [`parse`]'s (clap cannot express the attached-value rules).
pub fn command() -> clap::Command {
    use clap::{Arg, ArgAction, Command};
    let short = |id: &'static str| id.chars().next().unwrap_or('?');
    let flag = |id: &'static str, help: &'static str| {
        Arg::new(id)
            .short(short(id))
            .action(ArgAction::SetTrue)
            .help(help)
    };
    let value = |id: &'static str, name: &'static str, help: &'static str| {
        Arg::new(id).short(short(id)).value_name(name).help(help)
    };
    Command::new("lsdistcc")
        .about("Find distcc servers that are up")
        .long_about(
            "lsdistcc probes distcc servers and prints those that are up, one per line, in \
             the order the hosts were given or generated. With no argument, or with a FORMAT \
             containing %d, it probes the names the format gives for 1, 2, 3, ... (default \
             distcc%d) and stops at the first name that does not resolve (see -g) or at the \
             time limit; otherwise it probes exactly the HOSTs given. A host is up when a TCP \
             connection to distccd's port succeeds and, with -p, when a test compile succeeds. \
             Option values are attached to the letter: -c150, -pgcc, -P3; a separate word is \
             a host name. Probes run concurrently, so many hosts cost about one timeout.",
        )
        .after_long_help(
            "Each line is the name (or with -n the address), then :PORT if the port is not \
             3632, then ,lzo for -P2 or ,lzo,cpp for -P3, then ,down with -x for a host that \
             is down, then the latency in milliseconds with -l.\n\n\
             EXIT STATUS: 0 if any name resolved (even if its host is down), or when the -t \
             time limit ends the run; 1 if no name resolved or the command line is wrong (the \
             usage text on stdout, and one line on stderr naming the bad value).",
        )
        .disable_help_flag(true)
        .disable_version_flag(true)
        .override_usage("lsdistcc [OPTIONS] [FORMAT | HOST...]")
        .arg(flag(
            "l",
            "Print each host's latency in milliseconds (connect and compile)",
        ))
        .arg(flag("n", "Print the IPv4 address instead of the name"))
        .arg(flag(
            "x",
            "Also print the hosts that are down, marked ,down",
        ))
        .arg(flag(
            "v",
            "Say why each host is down (repeat for more detail)",
        ))
        .arg(flag("d", "Append this machine's DNS domain to every name"))
        .arg(value(
            "t",
            "SECONDS",
            "Stop after this many seconds, 0 for no limit [7]",
        ))
        .arg(value(
            "h",
            "MS",
            "Resend a DNS lookup after this many milliseconds [500]",
        ))
        .arg(value(
            "c",
            "MS",
            "Connect timeout in milliseconds, 0 to skip connecting [900]",
        ))
        .arg(value(
            "k",
            "MS",
            "Compile-probe timeout in milliseconds, 0 to skip it [1500]",
        ))
        .arg(value(
            "m",
            "BITS",
            "Leading address bits that must equal the first host's [0]",
        ))
        .arg(value("o", "N", "Extra DNS lookups to keep in flight [1]"))
        .arg(value(
            "g",
            "N",
            "Unresolvable names to tolerate before stopping [0]",
        ))
        .arg(value("r", "PORT", "distccd's TCP port [3632]"))
        .arg(value(
            "P",
            "N",
            "Protocol for the compile probe and the printed suffix, 1-3 [1]",
        ))
        .arg(value(
            "p",
            "COMPILER",
            "Probe with a test compile by COMPILER [none]",
        ))
        .arg(
            Arg::new("names")
                .value_name("FORMAT | HOST")
                .num_args(0..)
                .value_hint(clap::ValueHint::Hostname)
                .help("A name format with one %d, or the hosts to probe"),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn clap_description_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn usage_names_every_option_with_distccs_defaults() {
        assert!(USAGE.starts_with("Usage: lsdistcc "));
        for (opt, default) in [
            ("-tSECONDS", "[7]"),
            ("-hMS", "[500]"),
            ("-cMS", "[900]"),
            ("-kMS", "[1500]"),
            ("-mBITS", "[0]"),
            ("-oN", "[1]"),
            ("-gN", "[0]"),
            ("-rPORT", "[3632]"),
            ("-PN", "[1]"),
            ("-pCOMPILER", "[none]"),
        ] {
            let line = USAGE
                .lines()
                .find(|l| l.trim_start().starts_with(opt))
                .unwrap_or_else(|| panic!("{opt} missing"));
            assert!(line.ends_with(default), "{line}");
        }
        for flag in ["-l ", "-n ", "-x ", "-v ", "-d "] {
            assert!(USAGE.contains(&format!("\n  {flag}")), "{flag} missing");
        }
    }

    #[test]
    fn defaults_are_distccs() {
        let o = parse(Vec::<String>::new()).unwrap();
        assert_eq!(o, Options::default());
        assert_eq!(o.time_limit, Some(Duration::from_secs(7)));
        assert_eq!(o.dns_retry, ms(500));
        assert_eq!(o.connect_timeout, Some(ms(900)));
        assert_eq!(o.compile_timeout, Some(ms(1500)));
        assert_eq!((o.match_bits, o.overlap, o.dns_gap), (0, 1, 0));
        assert_eq!(
            (o.port, o.protocol, o.compiler.clone()),
            (3632, Protocol::P1, None)
        );
    }

    /// One row: the arguments, and a check on the parsed options.
    type Row = (&'static [&'static str], fn(&Options) -> bool);

    #[test]
    fn accepted_forms() {
        let rows: &[Row] = &[
            (&["-c150"], |o| o.connect_timeout == Some(ms(150))),
            (&["-c0"], |o| o.connect_timeout.is_none()),
            // A separate word is not a value: -c gets 0 and 150 is a host.
            (&["-c", "150"], |o| {
                o.connect_timeout.is_none() && o.names == ["150"]
            }),
            (&["-t"], |o| o.time_limit.is_none()),
            (&["-t3"], |o| o.time_limit == Some(Duration::from_secs(3))),
            (&["-h"], |o| o.dns_retry == Duration::ZERO),
            (&["-h20"], |o| o.dns_retry == ms(20)),
            (&["-k0"], |o| o.compile_timeout.is_none()),
            (&["-k300"], |o| o.compile_timeout == Some(ms(300))),
            (&["-m31"], |o| o.match_bits == 31),
            (&["-m"], |o| o.match_bits == 0),
            (&["-o4", "-g2"], |o| o.overlap == 4 && o.dns_gap == 2),
            (&["-r42000"], |o| o.port == 42000),
            (&["-r65535"], |o| o.port == 65535),
            (&["-r+7"], |o| o.port == 7),
            (&["-P2"], |o| o.protocol == Protocol::P2),
            (&["-P3"], |o| o.protocol == Protocol::P3),
            (&["-pgcc"], |o| o.compiler.as_deref() == Some(&b"gcc"[..])),
            (&["-lv"], |o| o.latency && o.verbose == 0),
            (&["-v", "-v", "-vv"], |o| o.verbose == 3),
            (&["-n", "-x", "-d"], |o| {
                o.numeric && o.show_down && o.domain
            }),
            // Options end at the first word without a dash.
            (&["-l", "host", "-x"], |o| {
                o.latency && !o.show_down && o.names == ["host", "-x"]
            }),
            (&["127.0.0.%d", "b"], |o| o.names == ["127.0.0.%d", "b"]),
        ];
        for (args, check) in rows {
            let o = parse(args.iter()).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert!(check(&o), "{args:?} parsed as {o:?}");
        }
    }

    #[test]
    fn rejected_forms() {
        let oor = |letter, value: &str, expected| UsageError::OutOfRange {
            letter,
            value: value.into(),
            expected,
        };
        let rows: &[(&[&str], UsageError)] = &[
            (&["--help"], UsageError::Help),
            (&["-r1", "--help"], UsageError::Help),
            (&["-z"], UsageError::UnknownOption("-z".into())),
            // -h is the DNS retry interval; C reads "elp" as 0 and starts a scan.
            (
                &["-help"],
                UsageError::NotANumber {
                    letter: 'h',
                    value: "elp".into(),
                },
            ),
            (&["-"], UsageError::UnknownOption("-".into())),
            (&["--"], UsageError::UnknownOption("--".into())),
            (&["--port=1"], UsageError::UnknownOption("--port=1".into())),
            (&["-c-1"], oor('c', "-1", ">= 0")),
            (&["-t-1"], oor('t', "-1", ">= 0")),
            (&["-h-5"], oor('h', "-5", ">= 0")),
            (&["-k-1"], oor('k', "-1", ">= 0")),
            (&["-o-1"], oor('o', "-1", ">= 0")),
            (&["-g-1"], oor('g', "-1", ">= 0")),
            (&["-m32"], oor('m', "32", "0 to 31")),
            (&["-m-1"], oor('m', "-1", "0 to 31")),
            (&["-r0"], oor('r', "0", "a port from 1 to 65535")),
            (&["-r"], oor('r', "", "a port from 1 to 65535")),
            (&["-r65536"], oor('r', "65536", "a port from 1 to 65535")),
            (&["-P0"], oor('P', "0", "1, 2 or 3")),
            (&["-P4"], oor('P', "4", "1, 2 or 3")),
            (&["-P"], oor('P', "", "1, 2 or 3")),
            (
                &["-c99999999999999999999"],
                oor('c', "99999999999999999999", ">= 0"),
            ),
            (
                &["-cabc"],
                UsageError::NotANumber {
                    letter: 'c',
                    value: "abc".into(),
                },
            ),
            (
                &["-c15x"],
                UsageError::NotANumber {
                    letter: 'c',
                    value: "15x".into(),
                },
            ),
            (&["-p"], UsageError::EmptyCompiler),
        ];
        for (args, want) in rows {
            assert_eq!(parse(args.iter()).as_ref(), Err(want), "{args:?}");
        }
    }

    #[test]
    fn messages_name_the_bad_value() {
        assert_eq!(UsageError::Help.message(), None);
        let e = parse(["-cabc"]).unwrap_err();
        assert_eq!(
            e.message().unwrap(),
            "lsdistcc: invalid value 'abc' for -c: not a number"
        );
        let e = parse(["-r70000"]).unwrap_err();
        assert_eq!(
            e.message().unwrap(),
            "lsdistcc: invalid value '70000' for -r: a port from 1 to 65535"
        );
        let e = parse(["-q"]).unwrap_err();
        assert_eq!(e.message().unwrap(), "lsdistcc: unknown option '-q'");
    }

    #[test]
    fn suffixes_follow_protocol() {
        assert_eq!(Protocol::P1.suffix(), "");
        assert_eq!(Protocol::P2.suffix(), ",lzo");
        assert_eq!(Protocol::P3.suffix(), ",lzo,cpp");
    }
}
