//! Stat and realpath caches shared by all requests (spec 5.4, 5.10).
//!
//! Keys are absolute textual paths (they may hold symlinks, `..` and `//`); values are
//! the realpath when the path names an object of the wanted kind. Misses are cached too:
//! files are assumed not to change until [`FsCache::clear`] (a cache reset).
//!
//! A realpath is built from the cached realpath of the parent directory: a path whose
//! last component is not a symlink (a plain name, `.` or `..`) costs one `lstat`, where
//! `realpath(3)` reads every component again (a symlink at the end takes the full
//! `canonicalize`).

use std::os::unix::ffi::OsStrExt;
use std::path::Path;
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
    /// By the path's bytes (hashing bytes is much cheaper than `Path`'s component-wise
    /// hash; two spellings of one path are two entries with the same value).
    entries: ShardedMap<Box<[u8]>, Option<Entry>>,
    syscalls: AtomicU64,
}

/// An absolute `path` split at its last component, trailing slashes ignored: the
/// directory part (`/` for a top-level name) and the name. `None` for the root and for
/// relative paths.
fn split_last(path: &[u8]) -> Option<(&Path, &[u8])> {
    if !path.starts_with(b"/") {
        return None;
    }
    let end = path.iter().rposition(|&b| b != b'/')?;
    let slash = path[..end].iter().rposition(|&b| b == b'/')?;
    let parent: &[u8] = match path[..slash].iter().rposition(|&b| b != b'/') {
        Some(parent_end) => &path[..=parent_end],
        None => b"/",
    };
    Some((
        Path::new(std::ffi::OsStr::from_bytes(parent)),
        &path[slash + 1..=end],
    ))
}

impl FsCache {
    fn lookup(&self, path: &Path) -> Option<Entry> {
        let key = path.as_os_str().as_bytes();
        if let Some(e) = self.entries.get(key) {
            return e;
        }
        // Nothing resolves under a parent that is not a directory (this holds for `.`
        // and `..` too: the kernel walks the parent first). Include names like
        // `bits/x.h` are tried in every search directory: most directories have no
        // `bits`, and one `stat` of it answers for all its names.
        if let Some((parent, _)) = split_last(key) {
            if !matches!(
                self.lookup(parent),
                Some(Entry {
                    kind: Kind::Dir,
                    ..
                })
            ) {
                return self.entries.insert_if_absent(key.into(), None);
            }
        }
        self.syscalls.fetch_add(1, Ordering::Relaxed);
        let kind_of = |md: &std::fs::Metadata| {
            if md.is_file() {
                Kind::File
            } else if md.is_dir() {
                Kind::Dir
            } else {
                Kind::Other
            }
        };
        let entry = match std::fs::symlink_metadata(path) {
            Err(_) => None,
            Ok(md) if !md.file_type().is_symlink() => {
                let real = self
                    .real_from_parent(path)
                    .or_else(|| std::fs::canonicalize(path).ok().map(Arc::from));
                Some(Entry {
                    kind: kind_of(&md),
                    real,
                })
            }
            Ok(_) => match std::fs::metadata(path) {
                Err(_) => None,
                Ok(md) => Some(Entry {
                    kind: kind_of(&md),
                    real: std::fs::canonicalize(path).ok().map(Arc::from),
                }),
            },
        };
        self.entries.insert_if_absent(key.into(), entry)
    }

    /// The realpath of a path that is not a symlink itself: its parent's realpath (from
    /// the cache) joined with its name (`.` and `..` taken on that realpath, a trailing
    /// slash ignored); `None` for the root or when the parent is not a directory.
    fn real_from_parent(&self, path: &Path) -> Option<Arc<Path>> {
        let bytes = path.as_os_str().as_bytes();
        let (parent, name) = split_last(bytes)?;
        if bytes.ends_with(b"/") {
            // `dir/`: the directory itself (a link there is followed).
            return self.dir(&parent.join(std::ffi::OsStr::from_bytes(name)));
        }
        let parent_real = self.dir(parent)?;
        // The parent's realpath has no links left: `.` is it, `..` its own parent (as
        // the kernel takes `..` after following the parent's links).
        if name == b"." {
            return Some(parent_real);
        }
        if name == b".." {
            return Some(Arc::from(parent_real.parent().unwrap_or(Path::new("/"))));
        }
        let mut real = parent_real.as_os_str().as_bytes().to_vec();
        if real != b"/" {
            real.push(b'/');
        }
        real.extend_from_slice(name);
        Some(Arc::from(Path::new(std::ffi::OsStr::from_bytes(&real))))
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
        // Symlinks anywhere: to a file, to a directory on the way, and `..` after one.
        std::fs::create_dir_all(t.path().join("real/sub")).unwrap();
        std::fs::write(t.path().join("real/sub/x.h"), b"").unwrap();
        std::os::unix::fs::symlink(t.path().join("real/sub"), t.path().join("link")).unwrap();
        std::os::unix::fs::symlink("real/sub/x.h", t.path().join("xlink.h")).unwrap();
        for p in [
            "link/x.h",
            "xlink.h",
            "link/../sub/x.h",
            "real//sub/./x.h",
            "link",
            "link/..",
            "link/.",
            "link/../..",
            "real/sub/.",
            "real/./sub/..",
            "real/sub/",
            "link//",
        ] {
            let p = t.path().join(p);
            let want = std::fs::canonicalize(&p).unwrap();
            let got = c.file(&p).or_else(|| c.dir(&p)).unwrap();
            assert_eq!(&*got, want, "{}", p.display());
        }
        assert!(c.file(&t.path().join("link/../x.h")).is_none());
        // Misses are cached until cleared.
        std::fs::write(t.path().join("late.h"), b"").unwrap();
        assert!(c.file(&t.path().join("late.h")).is_some());
        let n = c.syscalls();
        assert!(c.file(&t.path().join("late.h")).is_some());
        assert_eq!(c.syscalls(), n);
    }

    #[test]
    fn nothing_under_a_missing_directory_costs_a_stat() {
        let t = tempfile::tempdir().unwrap();
        let c = FsCache::default();
        assert!(c.dir(t.path()).is_some());
        let n = c.syscalls();
        for name in ["a.h", "b.h", "c.h", "sub/d.h", "../e.h"] {
            assert!(
                c.file(&t.path().join("bits").join(name)).is_none(),
                "{name}"
            );
        }
        // One stat of `bits` answered for all of them.
        assert_eq!(c.syscalls(), n + 1);
        // A file where a directory is expected is no directory either.
        std::fs::write(t.path().join("f.h"), b"").unwrap();
        assert!(c.file(&t.path().join("f.h/x.h")).is_none());
        assert!(c.file(&t.path().join("f.h/../f.h")).is_none());
        assert!(c.file(&t.path().join("f.h")).is_some());
        for (path, want) in [
            ("/a/b/c", Some(("/a/b", "c"))),
            ("/a//b//", Some(("/a", "b"))),
            ("/a", Some(("/", "a"))),
            ("/", None),
            ("a/b", None),
        ] {
            assert_eq!(
                split_last(path.as_bytes()),
                want.map(|(p, n)| (Path::new(p), n.as_bytes())),
                "{path}"
            );
        }
    }
}
