//! Where the pump-mode tools and the distcc client live.
//!
//! Lookup order for the *distcc location* (the directory holding `distcc` and `lsdistcc`),
//! the order [`Location::resolve`] follows, as distcc's `pump` does:
//!
//! 1. `$DISTCC_LOCATION`, if set and not empty, taken as written.
//! 2. The directory of the running tool's `argv[0]`:
//!    - a bare name (no `/`) is first searched for on `$PATH`, since a native binary
//!      started through `PATH` sees only its name, while a shell script sees its full
//!      path;
//!    - if that path is a symlink, it is read **one hop** (no canonicalisation): an
//!      absolute target's directory is the location, a relative target gives
//!      `dirname(argv0)/dirname(target)`, left unnormalised;
//!    - otherwise `dirname(argv0)` (`.` for a bare name not found on `$PATH`).
//! 3. If `argv[0]` is empty, the directory of `/proc/self/exe`.
//!
//! The location is a [`Layout::Installed`] bin directory, or a [`Layout::BuildTree`]
//! when it is cargo's `target/<profile>` directory: there the distcc client is not beside
//! the tools, so [`Location::distcc`] falls back to the first `distcc` on `$PATH` that is
//! not in the build tree.
//!
//! The include-server launcher ([`Location::include_server`]) is always looked up beside
//! the running tool itself (its own argv[0] directory, then `/proc/self/exe`'s), never in
//! `$DISTCC_LOCATION`: a user pointing `DISTCC_LOCATION` at the distro's `/usr/bin` keeps
//! our launcher.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::env::{self, Env};

/// File name of the distcc client.
pub const DISTCC: &str = "distcc";
/// File name of the discovery tool.
pub const LSDISTCC: &str = "lsdistcc";
/// File name of the include-server launcher, as distcc's manual names it.
pub const INCLUDE_SERVER: &str = "include_server";

/// What kind of directory the tools run from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// An installed bin directory: `distcc`, `lsdistcc` and the launcher side by side.
    Installed,
    /// cargo's `target/<profile>` directory, before installation.
    BuildTree,
}

/// The resolved locations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    dir: PathBuf,
    own_dir: PathBuf,
    layout: Layout,
    path_dirs: Vec<PathBuf>,
}

impl Location {
    /// Resolves the locations for a tool started as `argv0` (see the module docs).
    pub fn resolve(env: &Env, argv0: &OsStr) -> Location {
        let path_dirs = env.path_dirs();
        let own_dir = script_dir(argv0, &path_dirs).unwrap_or_else(exe_dir);
        let dir = match env.non_empty(env::DISTCC_LOCATION) {
            Some(loc) => PathBuf::from(loc),
            None => own_dir.clone(),
        };
        let layout = if is_build_tree(&dir) {
            Layout::BuildTree
        } else {
            Layout::Installed
        };
        Location {
            dir,
            own_dir,
            layout,
            path_dirs,
        }
    }

    /// The distcc location (`$DISTCC_LOCATION` or the tool's own directory).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The running tool's own directory by the argv[0] rule, ignoring `DISTCC_LOCATION`.
    pub fn own_dir(&self) -> &Path {
        &self.own_dir
    }

    /// Installed bin directory or build tree.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The distcc client: `<location>/distcc`; in a build tree, the first executable
    /// `distcc` on `$PATH` outside the build tree. `None` if there is none.
    pub fn distcc(&self) -> Option<PathBuf> {
        let beside = self.dir.join(DISTCC);
        if is_executable(&beside) {
            return Some(beside);
        }
        match self.layout {
            Layout::Installed => None,
            Layout::BuildTree => self
                .path_dirs
                .iter()
                .map(|d| (d, d.join(DISTCC)))
                .filter(|(_, p)| is_executable(p))
                .find(|(d, _)| !is_build_tree(d))
                .map(|(_, p)| p),
        }
    }

    /// `<location>/lsdistcc`, falling back to the one beside the running tool.
    pub fn lsdistcc(&self) -> PathBuf {
        let beside = self.dir.join(LSDISTCC);
        if is_executable(&beside) {
            return beside;
        }
        self.own_dir.join(LSDISTCC)
    }

    /// The include-server launcher beside the running tool (argv[0] directory, then the
    /// real executable's directory). `None` if neither has it.
    pub fn include_server(&self) -> Option<PathBuf> {
        [self.own_dir.clone(), exe_dir()]
            .into_iter()
            .map(|d| d.join(INCLUDE_SERVER))
            .find(|p| is_executable(p))
    }
}

/// The directory of `argv0` by the one-hop symlink rule, searching `path_dirs` for a bare
/// name. `None` only when `argv0` is empty.
pub fn script_dir(argv0: &OsStr, path_dirs: &[PathBuf]) -> Option<PathBuf> {
    if argv0.is_empty() {
        return None;
    }
    let given = Path::new(argv0);
    let path = if argv0.as_encoded_bytes().contains(&b'/') {
        given.to_path_buf()
    } else {
        match path_dirs
            .iter()
            .map(|d| d.join(given))
            .find(|p| is_executable(p))
        {
            Some(p) => p,
            None => return Some(PathBuf::from(".")),
        }
    };
    let parent = dirname(&path);
    match std::fs::read_link(&path) {
        Ok(target) => {
            let tdir = dirname(&target);
            if target.is_absolute() {
                Some(tdir)
            } else {
                Some(parent.join(tdir))
            }
        }
        Err(_) => Some(parent),
    }
}

/// Like `dirname(1)`: the path without its last component, `.` if there is none.
fn dirname(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if d.as_os_str().is_empty() => PathBuf::from("."),
        Some(d) => d.to_path_buf(),
        None => PathBuf::from(if p.is_absolute() { "/" } else { "." }),
    }
}

fn exe_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."))
}

/// True for cargo's `target/<profile>` directories (recognised by cargo's
/// `CACHEDIR.TAG` one level up, or a parent named `target` with a `.fingerprint` dir).
pub fn is_build_tree(dir: &Path) -> bool {
    let Some(parent) = dir.parent() else {
        return false;
    };
    dir.join(".fingerprint").is_dir()
        && (parent.join("CACHEDIR.TAG").is_file()
            || parent.file_name() == Some(OsStr::new("target")))
}

/// True if `p` is a regular file (after links) with an execute bit set.
pub fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn exe(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn distcc_location_wins_when_set() {
        let env = Env::from_pairs([(env::DISTCC_LOCATION, "/opt/d/bin")]);
        let loc = Location::resolve(&env, OsStr::new("/usr/local/bin/pump"));
        assert_eq!(loc.dir(), Path::new("/opt/d/bin"));
        assert_eq!(loc.own_dir(), Path::new("/usr/local/bin"));
    }

    #[test]
    fn empty_distcc_location_is_ignored() {
        let env = Env::from_pairs([(env::DISTCC_LOCATION, "")]);
        let loc = Location::resolve(&env, OsStr::new("/x/y/pump"));
        assert_eq!(loc.dir(), Path::new("/x/y"));
    }

    #[test]
    fn bare_name_is_searched_on_path() {
        let t = tempfile::tempdir().unwrap();
        let bin = t.path().join("bin");
        exe(&bin.join("distcc-pump"));
        let env = Env::from_pairs([(env::PATH, format!("/nonexistent:{}", bin.display()))]);
        let loc = Location::resolve(&env, OsStr::new("distcc-pump"));
        assert_eq!(loc.dir(), bin);
        let missing = Location::resolve(&env, OsStr::new("no-such-tool"));
        assert_eq!(missing.dir(), Path::new("."));
    }

    #[test]
    fn symlinks_are_followed_one_hop_without_normalising() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        exe(&root.join("bin/pump"));
        std::fs::create_dir_all(root.join("link")).unwrap();
        symlink("../bin/pump", root.join("link/pump")).unwrap();
        let got = script_dir(root.join("link/pump").as_os_str(), &[]).unwrap();
        assert_eq!(got, root.join("link/../bin"));

        symlink(root.join("bin/pump"), root.join("abs-pump")).unwrap();
        let got = script_dir(root.join("abs-pump").as_os_str(), &[]).unwrap();
        assert_eq!(got, root.join("bin"));

        // A second hop is not followed.
        symlink("link/pump", root.join("two-hop")).unwrap();
        let got = script_dir(root.join("two-hop").as_os_str(), &[]).unwrap();
        assert_eq!(got, root.join("link"));
    }

    #[test]
    fn relative_argv0_keeps_its_directory() {
        assert_eq!(
            script_dir(OsStr::new("./pump"), &[]).unwrap(),
            PathBuf::from(".")
        );
        assert_eq!(
            script_dir(OsStr::new("sub/pump"), &[]).unwrap(),
            PathBuf::from("sub")
        );
        assert_eq!(script_dir(OsStr::new(""), &[]), None);
    }

    #[test]
    fn installed_layout_finds_tools_beside_each_other() {
        let t = tempfile::tempdir().unwrap();
        let bin = t.path().join("usr/bin");
        for name in [DISTCC, LSDISTCC, INCLUDE_SERVER, "pump"] {
            exe(&bin.join(name));
        }
        let loc = Location::resolve(&Env::default(), bin.join("pump").as_os_str());
        assert_eq!(loc.layout(), Layout::Installed);
        assert_eq!(loc.distcc(), Some(bin.join(DISTCC)));
        assert_eq!(loc.lsdistcc(), bin.join(LSDISTCC));
        assert_eq!(loc.include_server(), Some(bin.join(INCLUDE_SERVER)));
    }

    #[test]
    fn build_tree_takes_distcc_from_path() {
        let t = tempfile::tempdir().unwrap();
        let target = t.path().join("target");
        let debug = target.join("debug");
        std::fs::create_dir_all(debug.join(".fingerprint")).unwrap();
        std::fs::write(target.join("CACHEDIR.TAG"), "").unwrap();
        exe(&debug.join("pump"));
        exe(&debug.join(LSDISTCC));
        let usr = t.path().join("usr/bin");
        exe(&usr.join(DISTCC));
        let env = Env::from_pairs([(env::PATH, format!("{}:{}", debug.display(), usr.display()))]);
        let loc = Location::resolve(&env, debug.join("pump").as_os_str());
        assert_eq!(loc.layout(), Layout::BuildTree);
        assert_eq!(loc.distcc(), Some(usr.join(DISTCC)));
        assert_eq!(loc.lsdistcc(), debug.join(LSDISTCC));
    }

    #[test]
    fn installed_layout_without_distcc_reports_none() {
        let t = tempfile::tempdir().unwrap();
        exe(&t.path().join("bin/pump"));
        let loc = Location::resolve(&Env::default(), t.path().join("bin/pump").as_os_str());
        assert_eq!(loc.distcc(), None);
    }
}
