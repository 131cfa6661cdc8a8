//! Stat and realpath caches shared by all requests (spec 5.4, 5.10).
//!
//! Keys are absolute textual paths (they may hold symlinks, `..` and `//`); values are
//! the realpath when the path names an object of the wanted kind. Misses are cached too:
//! files are assumed not to change until [`FsCache::clear`] (a cache reset).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::shard::ShardedMap;

/// What a path names, after following symlinks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Other,
}

/// A cached `stat` + `realpath`.
#[derive(Clone, Debug)]
struct Entry {
    kind: Kind,
    real: Option<Arc<Path>>,
}

/// The caches.
#[derive(Debug, Default)]
pub struct FsCache {
    entries: ShardedMap<PathBuf, Option<Entry>>,
    syscalls: AtomicU64,
}

impl FsCache {
    fn lookup(&self, path: &Path) -> Option<Entry> {
        if let Some(e) = self.entries.get(path) {
            return e;
        }
        self.syscalls.fetch_add(1, Ordering::Relaxed);
        let entry = match std::fs::metadata(path) {
            Err(_) => None,
            Ok(md) => {
                let kind = if md.is_file() {
                    Kind::File
                } else if md.is_dir() {
                    Kind::Dir
                } else {
                    Kind::Other
                };
                let real = std::fs::canonicalize(path).ok().map(Arc::from);
                Some(Entry { kind, real })
            }
        };
        self.entries.insert_if_absent(path.to_path_buf(), entry)
    }

    /// The realpath of `path` when it is a regular file (symlinks followed); directories,
    /// devices, FIFOs and dangling links are absent.
    pub fn file(&self, path: &Path) -> Option<Arc<Path>> {
        match self.lookup(path) {
            Some(Entry {
                kind: Kind::File,
                real,
            }) => real,
            _ => None,
        }
    }

    /// The realpath of `path` when it is a directory.
    pub fn dir(&self, path: &Path) -> Option<Arc<Path>> {
        match self.lookup(path) {
            Some(Entry {
                kind: Kind::Dir,
                real,
            }) => real,
            _ => None,
        }
    }

    /// The number of `stat` calls made (cache misses).
    pub fn syscalls(&self) -> u64 {
        self.syscalls.load(Ordering::Relaxed)
    }

    /// Forgets everything.
    pub fn clear(&self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_named_like_header_is_not_a_file() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("foo.h")).unwrap();
        std::fs::write(t.path().join("bar.h"), b"").unwrap();
        let c = FsCache::default();
        assert!(c.file(&t.path().join("foo.h")).is_none());
        assert!(c.dir(&t.path().join("foo.h")).is_some());
        let real = c.file(&t.path().join("foo.h/../bar.h")).unwrap();
        assert_eq!(
            &*real,
            std::fs::canonicalize(t.path().join("bar.h")).unwrap()
        );
        // Misses are cached until cleared.
        std::fs::write(t.path().join("late.h"), b"").unwrap();
        assert!(c.file(&t.path().join("late.h")).is_some());
        let n = c.syscalls();
        assert!(c.file(&t.path().join("late.h")).is_some());
        assert_eq!(c.syscalls(), n);
    }
}
