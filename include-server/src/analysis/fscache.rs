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
//!
//! That `lstat`, and the `open` of a file to read, name the file relative to a
//! descriptor of its directory (an `O_PATH` one, kept for the cache's life, at most
//! [`MAX_DIR_FDS`] of them): the kernel then looks up one name, not every component of
//! an absolute path again (a cold request makes about a thousand such calls, most of
//! them for names under directories five or six levels deep).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};

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
    /// A regular file's size when it was looked up.
    size: u64,
    /// Whether the path is a symlink itself (to what `kind` tells).
    link: bool,
}

/// The most directory descriptors the caches of a process keep open together; lookups in
/// further directories use absolute paths. (A cold request of a large C++ code base
/// meets a few dozen directories; Boost's headers spread over a few hundred.)
pub const MAX_DIR_FDS: usize = 512;

/// How many directory descriptors all caches hold (or are about to).
static OPEN_DIR_FDS: AtomicUsize = AtomicUsize::new(0);

/// The caches.
#[derive(Debug, Default)]
pub struct FsCache {
    /// By the path's bytes (hashing bytes is much cheaper than `Path`'s component-wise
    /// hash; two spellings of one path are two entries with the same value).
    entries: ShardedMap<Box<[u8]>, Option<Entry>>,
    /// `O_PATH` descriptors by the directory's realpath; `None` where opening failed.
    dir_fds: ShardedMap<Box<[u8]>, Option<Arc<OwnedFd>>>,
    /// How many descriptors of [`OPEN_DIR_FDS`] this cache holds.
    open_dirs: AtomicUsize,
    syscalls: AtomicU64,
}

/// The file-type bits of a `stat`.
fn kind_bits(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

fn kind_of(st: &FileStat) -> Kind {
    match kind_bits(st) {
        SFlag::S_IFREG => Kind::File,
        SFlag::S_IFDIR => Kind::Dir,
        _ => Kind::Other,
    }
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
        let mut parent_fd = None;
        if let Some((parent, name)) = split_last(key) {
            match self.lookup(parent) {
                Some(Entry {
                    kind: Kind::Dir,
                    real: Some(real),
                    ..
                }) => {
                    // `name` in the parent's realpath is `path` (the parent's links
                    // followed, as the kernel does), except for a trailing slash.
                    if !key.ends_with(b"/") {
                        parent_fd = self.dir_fd(&real).map(|fd| (fd, name));
                    }
                }
                Some(Entry {
                    kind: Kind::Dir, ..
                }) => {}
                _ => return self.entries.insert_if_absent(key.into(), None),
            }
        }
        self.syscalls.fetch_add(1, Ordering::Relaxed);
        let lstat = match &parent_fd {
            Some((fd, name)) => {
                nix::sys::stat::fstatat(Some(fd.as_raw_fd()), *name, AtFlags::AT_SYMLINK_NOFOLLOW)
            }
            None => nix::sys::stat::lstat(path),
        };
        let entry = match lstat {
            Err(_) => None,
            Ok(st) if kind_bits(&st) != SFlag::S_IFLNK => {
                let real = self
                    .real_from_parent(path)
                    .or_else(|| std::fs::canonicalize(path).ok().map(Arc::from));
                Some(Entry {
                    kind: kind_of(&st),
                    real,
                    size: st.st_size as u64,
                    link: false,
                })
            }
            Ok(_) => match nix::sys::stat::stat(path) {
                Err(_) => None,
                Ok(st) => Some(Entry {
                    kind: kind_of(&st),
                    real: std::fs::canonicalize(path).ok().map(Arc::from),
                    size: st.st_size as u64,
                    link: true,
                }),
            },
        };
        self.entries.insert_if_absent(key.into(), entry)
    }

    /// An `O_PATH` descriptor of the directory whose realpath is `real`, opened on first
    /// use; `None` once [`MAX_DIR_FDS`] are open, or if it cannot be opened.
    fn dir_fd(&self, real: &Path) -> Option<Arc<OwnedFd>> {
        let key = real.as_os_str().as_bytes();
        if let Some(fd) = self.dir_fds.get(key) {
            return fd;
        }
        if OPEN_DIR_FDS.fetch_add(1, Ordering::Relaxed) >= MAX_DIR_FDS {
            OPEN_DIR_FDS.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        // `O_PATH` keeps only `O_DIRECTORY` and the `O_CLOEXEC` std adds: no read access
        // to the directory is needed, only search access on the way to it.
        let fd = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags((OFlag::O_PATH | OFlag::O_DIRECTORY).bits())
            .open(real)
            .ok()
            .map(|f| Arc::new(OwnedFd::from(f)));
        let kept = self.dir_fds.insert_if_absent(key.into(), fd.clone());
        if matches!((&fd, &kept), (Some(a), Some(b)) if Arc::ptr_eq(a, b)) {
            self.open_dirs.fetch_add(1, Ordering::Relaxed);
        } else {
            // Not opened, or another thread opened it first (ours closes here).
            OPEN_DIR_FDS.fetch_sub(1, Ordering::Relaxed);
        }
        kept
    }

    /// Opens the regular file whose realpath is `real` for reading (relative to its
    /// directory's descriptor when the cache holds one), with its size when a lookup
    /// of that path saw it.
    pub fn open_file(&self, real: &Path) -> std::io::Result<(std::fs::File, Option<u64>)> {
        let key = real.as_os_str().as_bytes();
        let size = match self.entries.get(key) {
            Some(Some(Entry {
                kind: Kind::File,
                size,
                ..
            })) => Some(size),
            _ => None,
        };
        let at = split_last(key).and_then(|(parent, name)| {
            let fd = self.dir_fds.get(parent.as_os_str().as_bytes())??;
            Some((fd, name))
        });
        let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC;
        let fd = match &at {
            Some((fd, name)) => {
                nix::fcntl::openat(Some(fd.as_raw_fd()), *name, flags, Mode::empty())
            }
            None => nix::fcntl::open(real, flags, Mode::empty()),
        }
        .map_err(std::io::Error::from)?;
        // SAFETY: `open` just returned this descriptor, which nothing else owns.
        Ok((unsafe { std::fs::File::from_raw_fd(fd) }, size))
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
                ..
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
                ..
            }) => real,
            _ => None,
        }
    }

    /// Whether `path` is a symlink to a file or a directory (a dangling link is not:
    /// nothing resolves through it). Cached like the rest: a directory's answer comes
    /// with its realpath.
    pub fn is_link(&self, path: &Path) -> bool {
        matches!(self.lookup(path), Some(Entry { link: true, .. }))
    }

    /// The number of `stat` calls made (cache misses).
    pub fn syscalls(&self) -> u64 {
        self.syscalls.load(Ordering::Relaxed)
    }

    /// Forgets everything (the directory descriptors close once no lookup holds them).
    pub fn clear(&self) {
        self.entries.clear();
        self.dir_fds.clear();
        OPEN_DIR_FDS.fetch_sub(self.open_dirs.swap(0, Ordering::Relaxed), Ordering::Relaxed);
    }
}

impl Drop for FsCache {
    fn drop(&mut self) {
        OPEN_DIR_FDS.fetch_sub(*self.open_dirs.get_mut(), Ordering::Relaxed);
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
        // Whether a path is a link itself, as `lstat` tells (a dangling link leads
        // nowhere, so it counts as nothing).
        std::os::unix::fs::symlink("nowhere.h", t.path().join("dangling.h")).unwrap();
        for (p, link) in [
            ("link", true),
            ("xlink.h", true),
            ("link/x.h", false),
            ("link/..", false),
            ("real/sub", false),
            ("real/sub/x.h", false),
            ("dangling.h", false),
            ("missing.h", false),
        ] {
            let p = t.path().join(p);
            assert_eq!(c.is_link(&p), link, "{}", p.display());
            let lstat = std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_symlink());
            assert_eq!(link, lstat && p.exists(), "{}", p.display());
        }
        // Misses are cached until cleared.
        std::fs::write(t.path().join("late.h"), b"").unwrap();
        assert!(c.file(&t.path().join("late.h")).is_some());
        let n = c.syscalls();
        assert!(c.file(&t.path().join("late.h")).is_some());
        assert_eq!(c.syscalls(), n);
    }

    #[test]
    fn files_open_relative_to_their_directory_with_the_size_seen() {
        use std::io::Read;
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("real/sub")).unwrap();
        std::fs::write(t.path().join("real/sub/x.h"), b"#include <y.h>\n").unwrap();
        std::os::unix::fs::symlink(t.path().join("real"), t.path().join("link")).unwrap();
        let c = FsCache::default();
        let real = c.file(&t.path().join("link/sub/x.h")).unwrap();
        assert_eq!(
            &*real,
            std::fs::canonicalize(t.path().join("real/sub/x.h")).unwrap()
        );
        // The lookup went through the link; the realpath was never looked up itself.
        let (mut f, size) = c.open_file(&real).unwrap();
        assert_eq!(size, None);
        let mut text = Vec::new();
        f.read_to_end(&mut text).unwrap();
        assert_eq!(text, b"#include <y.h>\n");
        // Looked up by its realpath: the size comes with it.
        assert!(c.file(&real).is_some());
        assert_eq!(c.open_file(&real).unwrap().1, Some(15));
        // Names in a directory that holds a descriptor: `.`, `..`, links, misses.
        let sub = t.path().join("real/sub");
        assert!(c.dir(&sub).is_some());
        assert_eq!(
            c.dir(&sub.join("..")).as_deref(),
            Some(&*std::fs::canonicalize(t.path().join("real")).unwrap())
        );
        assert!(c.file(&sub.join("missing.h")).is_none());
        assert!(c.file(&sub.join("../../link/sub/x.h")).is_some());
        // A file that is not there cannot be opened, and says so.
        let gone = c.open_file(&sub.join("gone.h")).unwrap_err();
        assert_eq!(gone.kind(), std::io::ErrorKind::NotFound);
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
