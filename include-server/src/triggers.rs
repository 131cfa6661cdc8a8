//! `--stat_reset_triggers`: files whose change drops every cache (spec 5.11).
//!
//! The option is a `:`-separated list of globs, relative to the server's start-up
//! directory. Each matching path is stamped (mtime, inode, device). Before each request
//! the globs are expanded again; a changed stamp, a new path or a vanished path is a
//! trigger: the caller starts a new generation. Unlike distcc 3.4, a vanished path is
//! forgotten once reported, so it triggers one reset, not one per request.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What identifies a version of a trigger file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    mtime: i64,
    mtime_nsec: i64,
    ino: u64,
    dev: u64,
}

/// Why a glob of the option is unusable.
#[derive(Debug, thiserror::Error)]
#[error("bad --stat_reset_triggers glob {pattern:?}: {error}")]
pub struct TriggerError {
    /// The glob.
    pub pattern: String,
    /// Why.
    pub error: glob::PatternError,
}

/// The trigger globs and the stamps last seen.
#[derive(Debug)]
pub struct StatResetTriggers {
    patterns: Vec<glob::Pattern>,
    stamps: BTreeMap<PathBuf, Option<Stamp>>,
}

impl StatResetTriggers {
    /// Parses `spec` (`glob1:glob2:...`), makes relative globs relative to `base`, and
    /// stamps what they match now.
    pub fn new(spec: &str, base: &Path) -> Result<StatResetTriggers, TriggerError> {
        let patterns = spec
            .split(':')
            .filter(|g| !g.is_empty())
            .map(|g| {
                let full = if g.starts_with('/') {
                    g.to_string()
                } else {
                    format!("{}/{g}", glob::Pattern::escape(&base.to_string_lossy()))
                };
                glob::Pattern::new(&full).map_err(|error| TriggerError {
                    pattern: g.to_string(),
                    error,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut triggers = StatResetTriggers {
            patterns,
            stamps: BTreeMap::new(),
        };
        triggers.stamps = triggers.expand();
        Ok(triggers)
    }

    /// Expands the globs now.
    fn expand(&self) -> BTreeMap<PathBuf, Option<Stamp>> {
        let mut out = BTreeMap::new();
        for pattern in &self.patterns {
            let Ok(paths) = glob::glob(pattern.as_str()) else {
                continue;
            };
            for path in paths.flatten() {
                let stamp = std::fs::metadata(&path).ok().map(|m| Stamp {
                    mtime: m.mtime(),
                    mtime_nsec: m.mtime_nsec(),
                    ino: m.ino(),
                    dev: m.dev(),
                });
                out.insert(path, stamp);
            }
        }
        out
    }

    /// Re-expands and compares; returns the warning text of the first change found (and
    /// records the new state), or `None` when nothing changed.
    pub fn check(&mut self) -> Option<String> {
        let now = self.expand();
        let mut message = None;
        for (path, stamp) in &now {
            match self.stamps.get(path) {
                Some(old) if old == stamp => {}
                Some(_) => {
                    message = Some(format!(
                        "Path '{}' changed. Clearing caches.",
                        path.display()
                    ));
                    break;
                }
                None => {
                    message = Some(format!(
                        "Path '{}' came into existence. Clearing caches.",
                        path.display()
                    ));
                    break;
                }
            }
        }
        if message.is_none() {
            if let Some(gone) = self.stamps.keys().find(|p| !now.contains_key(*p)) {
                message = Some(format!(
                    "Path '{}' no longer exists. Clearing caches.",
                    gone.display()
                ));
            }
        }
        if message.is_some() {
            self.stamps = now;
        }
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn change_creation_and_removal_each_trigger_once() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        fs::write(base.join("a.trigger"), "1").unwrap();
        let mut t = StatResetTriggers::new("*.trigger:sub/b", base).unwrap();
        assert_eq!(t.check(), None);

        // A new file (replaced inode) counts as a change.
        fs::write(base.join("new"), "2").unwrap();
        fs::rename(base.join("new"), base.join("a.trigger")).unwrap();
        let msg = t.check().unwrap();
        assert!(
            msg.ends_with("a.trigger' changed. Clearing caches."),
            "{msg}"
        );
        assert_eq!(t.check(), None);

        fs::create_dir(base.join("sub")).unwrap();
        fs::write(base.join("sub/b"), "").unwrap();
        let msg = t.check().unwrap();
        assert!(
            msg.ends_with("sub/b' came into existence. Clearing caches."),
            "{msg}"
        );
        assert_eq!(t.check(), None);

        fs::remove_file(base.join("sub/b")).unwrap();
        let msg = t.check().unwrap();
        assert!(
            msg.ends_with("sub/b' no longer exists. Clearing caches."),
            "{msg}"
        );
        assert_eq!(t.check(), None, "a vanished path triggers once");
    }

    #[test]
    fn bad_glob_is_an_error() {
        let err = StatResetTriggers::new("[", Path::new("/")).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("bad --stat_reset_triggers glob \"[\""));
    }
}
