//! Which names get probed (spec B.2): a `printf`-style format numbered 1 to 500, or the
//! literal host list from the command line, each optionally followed by `.<DNS domain>`.
//!
//! The first positional argument is a format when it contains the two characters `%d`;
//! later arguments are then ignored. Otherwise every argument is a host name, copied
//! verbatim (a later `%d` stays literal). With no arguments the format is `distcc%d`.
//!
//! A format is read with `printf`'s rules for the only directives it may hold: `%%` is a
//! literal `%` and `%d` is the number. It must hold exactly one `%d`: `a%%d` (no
//! conversion, `printf` would print `a%d` 500 times), `%d-%d` (two: C reads garbage for
//! the second) and any other directive (`%s`, `%03d`: undefined behaviour in C) are
//! rejected with a [`NameError`]. There is no 200-character or 500-name limit.

use std::ffi::{CStr, OsString};
use std::os::unix::ffi::OsStrExt;

use common::env::{self, Env};

/// How many names a format generates (distcc's `MAXHOSTS`).
pub const FORMAT_COUNT: usize = 500;

/// The format used when no names are given.
pub const DEFAULT_FORMAT: &str = "distcc%d";

/// Why the names could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The format has `%d` in it only as part of `%%d`.
    #[error("format '{0}' has no %d conversion ('%%' is a literal '%')")]
    NoConversion(String),
    /// The format has more than one `%d`.
    #[error("format '{format}' has {count} %d conversions; use exactly one")]
    TooManyConversions {
        /// The format as written.
        format: String,
        /// How many `%d` it holds.
        count: usize,
    },
    /// The format has a directive other than `%d` and `%%`.
    #[error("format '{format}' has the directive '{directive}'; only %d and %% are supported")]
    BadDirective {
        /// The format as written.
        format: String,
        /// The offending directive, as far as it was read.
        directive: String,
    },
    /// `-d` was given but no DNS domain could be found.
    #[error("Can't get domain name")]
    NoDomain,
}

/// One piece of a parsed format.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(Vec<u8>),
    Number,
}

/// A format with exactly one `%d`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    pieces: Vec<Piece>,
}

impl Format {
    /// Parses a format; see the module documentation for the rules.
    pub fn parse(format: &[u8]) -> Result<Format, NameError> {
        let shown = || String::from_utf8_lossy(format).into_owned();
        let mut pieces = Vec::new();
        let mut text = Vec::new();
        let mut count = 0;
        let mut i = 0;
        while i < format.len() {
            let b = format[i];
            if b != b'%' {
                text.push(b);
                i += 1;
                continue;
            }
            match format.get(i + 1) {
                Some(b'%') => text.push(b'%'),
                Some(b'd') => {
                    count += 1;
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                    pieces.push(Piece::Number);
                }
                other => {
                    let end = if other.is_some() { i + 2 } else { i + 1 };
                    return Err(NameError::BadDirective {
                        format: shown(),
                        directive: String::from_utf8_lossy(&format[i..end]).into_owned(),
                    });
                }
            }
            i += 2;
        }
        pieces.push(Piece::Text(text));
        match count {
            0 => Err(NameError::NoConversion(shown())),
            1 => Ok(Format { pieces }),
            count => Err(NameError::TooManyConversions {
                format: shown(),
                count,
            }),
        }
    }

    /// The name for number `i`.
    pub fn render(&self, i: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.extend_from_slice(t),
                Piece::Number => out.extend_from_slice(i.to_string().as_bytes()),
            }
        }
        out
    }
}

/// Builds the list of names to probe, in order, from the positional arguments.
/// `domain` is appended (after a `.`) to every name when given.
pub fn names(args: &[OsString], domain: Option<&[u8]>) -> Result<Vec<Vec<u8>>, NameError> {
    let mut out: Vec<Vec<u8>> = match args.first() {
        None => {
            let f = Format::parse(DEFAULT_FORMAT.as_bytes())?;
            (1..=FORMAT_COUNT).map(|i| f.render(i)).collect()
        }
        Some(first) if contains_percent_d(first.as_bytes()) => {
            let f = Format::parse(first.as_bytes())?;
            (1..=FORMAT_COUNT).map(|i| f.render(i)).collect()
        }
        Some(_) => args.iter().map(|a| a.as_bytes().to_vec()).collect(),
    };
    if let Some(d) = domain {
        for n in &mut out {
            n.push(b'.');
            n.extend_from_slice(d);
        }
    }
    Ok(out)
}

fn contains_percent_d(s: &[u8]) -> bool {
    s.windows(2).any(|w| w == b"%d")
}

/// The DNS domain for `-d`, found as distcc 3.4 finds it: the longer of `$HOST` and
/// `$HOSTNAME` among those containing a dot; else the host name if it contains a dot; else
/// the canonical name the resolver gives for the host name. The domain is the text after
/// the first dot; it must be non-empty, and the full name at most 513 characters of
/// `[A-Za-z0-9.-]`.
pub fn dns_domain(env: &Env) -> Result<Vec<u8>, NameError> {
    let dotted = |name: &str| {
        env.get(name)
            .map(|v| v.as_bytes().to_vec())
            .filter(|v| v.contains(&b'.'))
    };
    let mut best = dotted(env::HOST);
    if let Some(h2) = dotted(env::HOSTNAME) {
        if best.as_ref().map_or(true, |h| h.len() < h2.len()) {
            best = Some(h2);
        }
    }
    let full = match best {
        Some(b) => b,
        None => {
            let host = hostname().ok_or(NameError::NoDomain)?;
            if host.contains(&b'.') {
                host
            } else {
                canonical_name(&host).ok_or(NameError::NoDomain)?
            }
        }
    };
    domain_of(&full).ok_or(NameError::NoDomain)
}

/// The text after the first dot of a validated full name.
fn domain_of(full: &[u8]) -> Option<Vec<u8>> {
    let legal = |b: &u8| b.is_ascii_alphanumeric() || *b == b'.' || *b == b'-';
    if full.len() > 513 || !full.iter().all(legal) {
        return None;
    }
    let dot = full.iter().position(|b| *b == b'.')?;
    let domain = &full[dot + 1..];
    (!domain.is_empty()).then(|| domain.to_vec())
}

fn hostname() -> Option<Vec<u8>> {
    let mut buf = [0u8; 1024];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it
    // when the name fits, and the last byte is forced to NUL below in any case.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|b| *b == 0)?;
    Some(buf[..end].to_vec())
}

/// The resolver's canonical name for `host` (IPv4, as `gethostbyname` would give).
fn canonical_name(host: &[u8]) -> Option<Vec<u8>> {
    let c_host = std::ffi::CString::new(host).ok()?;
    // SAFETY: an all-zero addrinfo is a valid "no hints" value.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = libc::AF_INET;
    hints.ai_flags = libc::AI_CANONNAME;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid NUL-terminated host, valid hints, res receives a list we free below.
    let rc = unsafe { libc::getaddrinfo(c_host.as_ptr(), std::ptr::null(), &hints, &mut res) };
    if rc != 0 || res.is_null() {
        return None;
    }
    // SAFETY: res is the non-null list getaddrinfo returned; ai_canonname, when set, is a
    // NUL-terminated string owned by that list, copied out before freeing.
    let name = unsafe {
        let p = (*res).ai_canonname;
        let name = (!p.is_null()).then(|| CStr::from_ptr(p).to_bytes().to_vec());
        libc::freeaddrinfo(res);
        name
    };
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    fn text(v: Vec<Vec<u8>>) -> Vec<String> {
        v.into_iter()
            .map(|n| String::from_utf8(n).unwrap())
            .collect()
    }

    #[test]
    fn default_format_is_distcc_1_to_500() {
        let n = text(names(&[], None).unwrap());
        assert_eq!(n.len(), 500);
        assert_eq!(n[0], "distcc1");
        assert_eq!(n[499], "distcc500");
    }

    #[test]
    fn format_only_from_first_argument() {
        let n = text(names(&os(&["127.0.0.%d", "ignored"]), None).unwrap());
        assert_eq!(n.len(), 500);
        assert_eq!(&n[..2], ["127.0.0.1", "127.0.0.2"]);
        let n = text(names(&os(&["a", "b%d"]), None).unwrap());
        assert_eq!(n, ["a", "b%d"]);
        // %03d does not contain "%d": a plain host name.
        let n = text(names(&os(&["distcc%03d"]), None).unwrap());
        assert_eq!(n, ["distcc%03d"]);
    }

    #[test]
    fn formats_are_printf_like() {
        let rows: &[(&str, Result<&str, NameError>)] = &[
            ("h%d", Ok("h7")),
            ("%d.x", Ok("7.x")),
            ("100%%-%d", Ok("100%-7")),
            ("a%%d", Err(NameError::NoConversion("a%%d".into()))),
            (
                "%d-%d",
                Err(NameError::TooManyConversions {
                    format: "%d-%d".into(),
                    count: 2,
                }),
            ),
            (
                "%s%d",
                Err(NameError::BadDirective {
                    format: "%s%d".into(),
                    directive: "%s".into(),
                }),
            ),
            (
                "h%d%",
                Err(NameError::BadDirective {
                    format: "h%d%".into(),
                    directive: "%".into(),
                }),
            ),
        ];
        for (f, want) in rows {
            let got = Format::parse(f.as_bytes()).map(|f| String::from_utf8(f.render(7)).unwrap());
            assert_eq!(got.as_deref(), want.as_ref().map(|s| *s), "{f}");
        }
    }

    #[test]
    fn long_names_and_lists_are_not_truncated() {
        let long = "x".repeat(300);
        let n = text(names(&os(&[&long]), None).unwrap());
        assert_eq!(n[0].len(), 300);
        let many: Vec<String> = (0..700).map(|i| format!("h{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(names(&os(&many), None).unwrap().len(), 700);
    }

    #[test]
    fn domain_is_appended_to_every_name() {
        let n = text(names(&os(&["a", "b"]), Some(b"example.org")).unwrap());
        assert_eq!(n, ["a.example.org", "b.example.org"]);
    }

    #[test]
    fn domain_prefers_the_longer_dotted_environment_value() {
        let env = Env::from_pairs([(env::HOST, "a.b"), (env::HOSTNAME, "box.corp.example")]);
        assert_eq!(dns_domain(&env).unwrap(), b"corp.example");
        let env = Env::from_pairs([(env::HOST, "m.lab.example"), (env::HOSTNAME, "nodot")]);
        assert_eq!(dns_domain(&env).unwrap(), b"lab.example");
    }

    #[test]
    fn domain_validation() {
        assert_eq!(domain_of(b"h.ex-ample.org"), Some(b"ex-ample.org".to_vec()));
        assert_eq!(domain_of(b"h."), None);
        assert_eq!(domain_of(b"nodot"), None);
        assert_eq!(domain_of(b"h.bad_char"), None);
        assert_eq!(domain_of(format!("h.{}", "a".repeat(600)).as_bytes()), None);
        let env = Env::from_pairs([(env::HOSTNAME, "h.bad_char")]);
        assert_eq!(dns_domain(&env), Err(NameError::NoDomain));
    }
}
