//! Shell word rules without a shell.
//!
//! distcc's `pump` passed `INCLUDE_SERVER_ARGS` through `eval` (so `$(...)` ran) and
//! printed `--startup` values unquoted (so spaces collapsed and globs expanded). Here
//! [`split`] applies POSIX quoting rules (single and double quotes, backslashes) and
//! nothing else: no expansion, no command substitution. [`quote`] produces a single-quoted
//! word that any POSIX shell's `eval` reads back byte for byte.

use std::ffi::OsStr;

/// Why a value could not be split into words.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{name} has an unbalanced quote or a trailing backslash: {value:?}")]
pub struct SplitError {
    /// The variable the value came from.
    pub name: String,
    /// The value.
    pub value: String,
}

/// Splits `value` (from variable `name`) into words with POSIX shell quoting rules.
pub fn split(name: &str, value: &OsStr) -> Result<Vec<String>, SplitError> {
    let text = value.to_string_lossy();
    shlex::split(&text).ok_or_else(|| SplitError {
        name: name.to_owned(),
        value: text.into_owned(),
    })
}

/// Splits on runs of blanks only, like an unquoted `$VAR` without globbing: used for
/// host lists and `LSDISTCC_ARGS`, which distcc's pump word-split that way.
pub fn split_blanks(value: &OsStr) -> Vec<String> {
    value
        .to_string_lossy()
        .split_ascii_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Quotes `s` as one shell word: `'…'`, each `'` written as `'\''`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_honours_quotes_and_runs_nothing() {
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            ("  -s   -t ", &["-s", "-t"]),
            (
                r#"--stat_reset_triggers="a b*""#,
                &["--stat_reset_triggers=a b*"],
            ),
            (r"'x y' z\ w", &["x y", "z w"]),
            (
                "$(echo --no-email) `id`",
                &["$(echo", "--no-email)", "`id`"],
            ),
            (r#""a\"b""#, &["a\"b"]),
        ];
        for (input, want) in cases {
            let got = split("INCLUDE_SERVER_ARGS", OsStr::new(input)).unwrap();
            assert_eq!(got, *want, "input {input:?}");
        }
    }

    #[test]
    fn unbalanced_quote_names_the_variable_and_value() {
        let err = split("INCLUDE_SERVER_ARGS", OsStr::new("-s 'oops")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "INCLUDE_SERVER_ARGS has an unbalanced quote or a trailing backslash: \"-s 'oops\""
        );
    }

    #[test]
    fn quote_round_trips_through_a_real_shell() {
        for value in [
            "plain",
            "with space",
            "it's",
            "*.c [::1] $HOME `x` \\n",
            "a\nb",
            "",
        ] {
            let script = format!("printf %s {}", quote(value));
            let out = std::process::Command::new("sh")
                .args(["-c", &script])
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                value,
                "value {value:?}"
            );
        }
    }
}
