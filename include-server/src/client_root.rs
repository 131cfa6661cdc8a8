//! Client roots: the per-generation directories that hold what replies name.
//!
//! Invariants the distcc 3.4 client relies on (spec 2.7, 4.2):
//! - every reply path starts with a *prefix of exactly three components*, because the
//!   client strips exactly three leading components to recover the original path;
//! - a root is `<base>/tmpXXXXXXXX.include_server-<pid>-<generation>`, where `<pid>` is
//!   the serving process's pid; with a one-component base such as `/tmp` the prefix is
//!   that directory plus `/padding` (and plus two paddings for the base `/`);
//! - roots are owner-only (mode 0700);
//! - roots of include servers whose pid no longer exists are removed at start-up, and a
//!   server removes all its own generations at exit.
//!
//! The base is `DISTCC_CLIENT_TMP` if set, else `/dev/shm` if it is a usable directory,
//! else `/tmp`.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// Why a client-root base or a root is unusable.
#[derive(Debug, thiserror::Error)]
pub enum RootError {
    /// `DISTCC_CLIENT_TMP` is relative.
    #[error("DISTCC_CLIENT_TMP must start with '/': got {0:?}")]
    Relative(OsString),
    /// `DISTCC_CLIENT_TMP` is too deep for the three-component prefix.
    #[error("DISTCC_CLIENT_TMP must have at most two directory levels: got {0:?}")]
    TooDeep(OsString),
    /// The root directory could not be created.
    #[error("cannot create a client root in '{}': {error}", base.display())]
    Create {
        /// The base directory.
        base: PathBuf,
        /// The OS error.
        error: io::Error,
    },
}

/// The directory client roots are created in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientTmp {
    base: PathBuf,
    depth: usize,
}

/// One generation's client root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRoot {
    prefix: PathBuf,
    dir: PathBuf,
    generation: u32,
}

impl ClientRoot {
    /// The three-component prefix every reply path starts with.
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// The directory created for this generation (the prefix or an ancestor of it).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The generation number, from 1.
    pub fn generation(&self) -> u32 {
        self.generation
    }
}

impl ClientTmp {
    /// The base from the value of `DISTCC_CLIENT_TMP` (`None` when unset).
    pub fn from_env(value: Option<&OsStr>) -> Result<ClientTmp, RootError> {
        let raw: PathBuf = match value {
            Some(v) => PathBuf::from(v),
            None if usable_dir(Path::new("/dev/shm")) => PathBuf::from("/dev/shm"),
            None => PathBuf::from("/tmp"),
        };
        if !raw.as_os_str().as_bytes().starts_with(b"/") {
            return Err(RootError::Relative(raw.into_os_string()));
        }
        let mut bytes = raw.as_os_str().as_bytes().to_vec();
        while bytes.len() > 1 && bytes.ends_with(b"/") {
            bytes.pop();
        }
        let base = PathBuf::from(OsString::from_vec(bytes));
        let depth = base
            .components()
            .filter(|c| !matches!(c, Component::RootDir | Component::CurDir))
            .count();
        if depth > 2 {
            return Err(RootError::TooDeep(raw.into_os_string()));
        }
        Ok(ClientTmp { base, depth })
    }

    /// The base directory.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// Creates generation `generation`'s root for the server `pid`, mode 0700.
    pub fn create_root(&self, pid: u32, generation: u32) -> Result<ClientRoot, RootError> {
        let create_err = |error| RootError::Create {
            base: self.base.clone(),
            error,
        };
        let dir = tempfile::Builder::new()
            .prefix("tmp")
            .suffix(&format!(".include_server-{pid}-{generation}"))
            .rand_bytes(8)
            .permissions(fs::Permissions::from_mode(0o700))
            .tempdir_in(&self.base)
            .map_err(create_err)?
            .keep();
        let mut prefix = dir.clone();
        for _ in self.depth..2 {
            prefix.push("padding");
        }
        if prefix != dir {
            if let Err(e) = fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&prefix)
            {
                let _ = fs::remove_dir_all(&dir);
                return Err(create_err(e));
            }
        }
        Ok(ClientRoot {
            prefix,
            dir,
            generation,
        })
    }

    /// The roots of every generation of server `pid` present in the base.
    pub fn roots_of(&self, pid: u32) -> Vec<PathBuf> {
        self.scan()
            .into_iter()
            .filter(|(_, p)| *p == pid)
            .map(|(path, _)| path)
            .collect()
    }

    /// Removes the roots of include servers whose process no longer exists (when the
    /// base is writable). Returns what was removed.
    pub fn remove_dead_servers(&self) -> Vec<PathBuf> {
        if !writable_dir(&self.base) {
            return Vec::new();
        }
        let mut removed = Vec::new();
        for (path, pid) in self.scan() {
            if !process_exists(pid) && fs::remove_dir_all(&path).is_ok() {
                removed.push(path);
            }
        }
        removed
    }

    /// Removes every root of server `pid`; returns the first error, after trying all.
    pub fn remove_roots_of(&self, pid: u32) -> io::Result<()> {
        let mut result = Ok(());
        for path in self.roots_of(pid) {
            if let Err(e) = remove_tree(&path) {
                if result.is_ok() {
                    result = Err(e);
                }
            }
        }
        result
    }

    /// `(path, pid)` of every `*.include_server-<pid>-<generation>` entry of the base.
    fn scan(&self) -> Vec<(PathBuf, u32)> {
        let Ok(entries) = fs::read_dir(&self.base) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let pid = root_pid(e.file_name().as_bytes())?;
                Some((e.path(), pid))
            })
            .collect()
    }
}

/// The pid in a root's name `*.include_server-<pid>-<generation>`.
fn root_pid(name: &[u8]) -> Option<u32> {
    const MARK: &[u8] = b".include_server-";
    let at = name.windows(MARK.len()).rposition(|w| w == MARK)?;
    let rest = std::str::from_utf8(&name[at + MARK.len()..]).ok()?;
    let (pid, generation) = rest.rsplit_once('-')?;
    generation.parse::<u32>().ok()?;
    pid.parse().ok()
}

/// Removes a directory tree. Retries a few times, because a request still being served
/// in another thread may be adding files while the tree is being removed.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    let mut last = Ok(());
    for _ in 0..5 {
        match fs::remove_dir_all(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => last = Err(e),
        }
    }
    last
}

fn process_exists(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(e) => e != nix::errno::Errno::ESRCH,
    }
}

fn access(path: &Path, mode: nix::unistd::AccessFlags) -> bool {
    nix::unistd::access(path, mode).is_ok()
}

fn usable_dir(path: &Path) -> bool {
    use nix::unistd::AccessFlags;
    path.is_dir()
        && access(
            path,
            AccessFlags::R_OK | AccessFlags::W_OK | AccessFlags::X_OK,
        )
}

fn writable_dir(path: &Path) -> bool {
    use nix::unistd::AccessFlags;
    path.is_dir() && access(path, AccessFlags::W_OK | AccessFlags::X_OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn components(p: &Path) -> usize {
        p.components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .count()
    }

    #[test]
    fn base_rules_of_distcc_client_tmp() {
        let ok = |v: &str| ClientTmp::from_env(Some(OsStr::new(v))).map(|t| t.base);
        assert_eq!(ok("/tmp").unwrap(), Path::new("/tmp"));
        assert_eq!(ok("/tmp/").unwrap(), Path::new("/tmp"));
        assert_eq!(ok("/dev/shm//").unwrap(), Path::new("/dev/shm"));
        assert_eq!(ok("/").unwrap(), Path::new("/"));
        assert_eq!(
            ok("tmp").unwrap_err().to_string(),
            "DISTCC_CLIENT_TMP must start with '/': got \"tmp\""
        );
        assert_eq!(
            ok("/a/b/c").unwrap_err().to_string(),
            "DISTCC_CLIENT_TMP must have at most two directory levels: got \"/a/b/c\""
        );
        let default = ClientTmp::from_env(None).unwrap();
        assert!(default.base == Path::new("/dev/shm") || default.base == Path::new("/tmp"));
    }

    #[test]
    fn roots_have_three_components_and_are_private() {
        let outer = tempfile::tempdir_in("/tmp").unwrap();
        // A two-level base (/tmp/.tmpXXXX) and a one-level base (/tmp itself is shared,
        // so use the outer dir's parent only for naming checks).
        let two = ClientTmp::from_env(Some(outer.path().as_os_str())).unwrap();
        assert_eq!(components(two.base()), 2);
        let root = two.create_root(4242, 1).unwrap();
        assert_eq!(components(root.prefix()), 3);
        assert_eq!(root.prefix(), root.dir());
        let name = root.dir().file_name().unwrap().to_str().unwrap().to_owned();
        assert!(name.starts_with("tmp"), "{name}");
        assert!(name.ends_with(".include_server-4242-1"), "{name}");
        assert_eq!(name.len(), "tmp".len() + 8 + ".include_server-4242-1".len());
        let mode = fs::metadata(root.dir()).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert_eq!(two.roots_of(4242), vec![root.dir().to_path_buf()]);
        two.remove_roots_of(4242).unwrap();
        assert!(!root.dir().exists());
    }

    #[test]
    fn one_level_base_gets_padding() {
        let tmp = ClientTmp::from_env(Some(OsStr::new("/tmp"))).unwrap();
        let root = tmp.create_root(std::process::id(), 77).unwrap();
        assert_eq!(components(root.prefix()), 3);
        assert_eq!(root.prefix(), root.dir().join("padding"));
        assert!(root.prefix().is_dir());
        remove_tree(root.dir()).unwrap();
    }

    #[test]
    fn dead_servers_roots_are_removed_live_ones_kept() {
        let outer = tempfile::tempdir_in("/tmp").unwrap();
        let tmp = ClientTmp::from_env(Some(outer.path().as_os_str())).unwrap();
        let mine = tmp.create_root(std::process::id(), 1).unwrap();
        // A pid above pid_max cannot be alive.
        let dead = tmp.create_root(99_999_999, 3).unwrap();
        fs::write(dead.dir().join("x.h.lzo"), b"\x11\0\0").unwrap();
        let removed = tmp.remove_dead_servers();
        assert_eq!(removed, vec![dead.dir().to_path_buf()]);
        assert!(mine.dir().is_dir());
        assert!(!dead.dir().exists());
    }

    #[test]
    fn unwritable_base_fails_to_create() {
        let tmp = ClientTmp::from_env(Some(OsStr::new("/proc/self"))).unwrap();
        let err = tmp.create_root(1, 1).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot create a client root in '/proc/self'"),
            "{err}"
        );
    }

    #[test]
    fn pid_parsing_of_root_names() {
        assert_eq!(root_pid(b"tmpabc.include_server-4242-1"), Some(4242));
        assert_eq!(root_pid(b"tmpa-b.include_server-17-12"), Some(17));
        assert_eq!(root_pid(b"tmpabc.include_server-x-1"), None);
        assert_eq!(root_pid(b"tmpabc.include_server-42"), None);
        assert_eq!(root_pid(b"unrelated"), None);
    }
}
