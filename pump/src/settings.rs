//! The optional settings file, `$DISTCC_DIR/pump.toml` (default `~/.distcc/pump.toml`).
//!
//! It holds defaults; the environment overrides each of them:
//!
//! ```toml
//! [include_server]
//! args = ["--stat_reset_triggers=/usr/include/*.h"]  # overridden by INCLUDE_SERVER_ARGS
//!
//! [hosts]
//! potential = ["server1", "server2"]                  # overridden by DISTCC_POTENTIAL_HOSTS
//! lsdistcc_args = ["-c200"]                           # overridden by LSDISTCC_ARGS
//!
//! [pump]
//! max_discrepancy = 1                                 # overridden by DISTCC_MAX_DISCREPANCY
//! ```
//!
//! A missing file is the same as an empty one. A file that does not parse, or has a key
//! this version does not know, is an error naming the file and the line.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// File name inside distcc's directory.
pub const FILE_NAME: &str = "pump.toml";

/// The parsed file.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// `[include_server]`.
    pub include_server: IncludeServerSettings,
    /// `[hosts]`.
    pub hosts: HostSettings,
    /// `[pump]`.
    pub pump: PumpSettings,
}

/// `[include_server]`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IncludeServerSettings {
    /// Default options for the include server.
    pub args: Vec<String>,
}

/// `[hosts]`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostSettings {
    /// Default host names to probe with `lsdistcc`.
    pub potential: Vec<String>,
    /// Default extra options for `lsdistcc`.
    pub lsdistcc_args: Vec<String>,
}

/// `[pump]`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PumpSettings {
    /// Default discrepancy threshold for the shutdown report.
    pub max_discrepancy: Option<i64>,
}

/// A settings file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file exists but cannot be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The file does not parse or has an unknown key.
    #[error("{path} line {line}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

impl Settings {
    /// Loads `path`; a missing file gives the defaults.
    pub fn load(path: &Path) -> Result<Settings, SettingsError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Settings::parse(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
            Err(error) => Err(SettingsError::Read {
                path: path.to_owned(),
                error,
            }),
        }
    }

    /// Parses the text of `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Settings, SettingsError> {
        toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
                .unwrap_or(1);
            SettingsError::Parse {
                path: path.to_owned(),
                line,
                message: e.message().trim().replace('\n', " "),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_file_parses() {
        let text = r#"
[include_server]
args = ["-s", "--unsafe_absolute_includes"]
[hosts]
potential = ["a", "b"]
lsdistcc_args = ["-c200"]
[pump]
max_discrepancy = 3
"#;
        let s = Settings::parse(Path::new("pump.toml"), text).unwrap();
        assert_eq!(s.include_server.args, ["-s", "--unsafe_absolute_includes"]);
        assert_eq!(s.hosts.potential, ["a", "b"]);
        assert_eq!(s.hosts.lsdistcc_args, ["-c200"]);
        assert_eq!(s.pump.max_discrepancy, Some(3));
    }

    #[test]
    fn missing_file_is_default() {
        let s = Settings::load(Path::new("/nonexistent/pump.toml")).unwrap();
        assert_eq!(s, Settings::default());
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let cases = [
            ("[hosts]\npotential = \"a\"\n", 2, "invalid type"),
            (
                "[pump]\n\nmax_discrepancy = 1\nbogus = 2\n",
                4,
                "unknown field `bogus`",
            ),
            ("[hosts\n", 1, ""),
        ];
        for (text, line, needle) in cases {
            let err = Settings::parse(Path::new("/h/.distcc/pump.toml"), text).unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.starts_with(&format!("/h/.distcc/pump.toml line {line}: ")),
                "{text:?}: {msg}"
            );
            assert!(msg.contains(needle), "{text:?}: {msg}");
            assert!(!msg.contains('\n'), "one line: {msg}");
        }
    }
}
