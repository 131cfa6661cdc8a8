//! The environment, read once into a typed snapshot.
//!
//! Every variable any tool of this workspace consults is a named constant here, with what
//! it means. [`Env::from_process`] is the only function in the workspace that reads the
//! process environment; tests build an [`Env`] from explicit pairs with [`Env::from_pairs`].
//! Values are kept as raw [`OsString`]s (paths may be any bytes); typed accessors interpret
//! them the way distcc 3.4 does.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

/// The distcc host list (spec C). Present-but-empty still wins over the hosts files.
pub const DISTCC_HOSTS: &str = "DISTCC_HOSTS";
/// distcc's per-user directory; default `$HOME/.distcc`.
pub const DISTCC_DIR: &str = "DISTCC_DIR";
/// Directory holding the `distcc` client and `lsdistcc` that `pump` uses.
pub const DISTCC_LOCATION: &str = "DISTCC_LOCATION";
/// Host names `pump` probes with `lsdistcc` to build `DISTCC_HOSTS`.
pub const DISTCC_POTENTIAL_HOSTS: &str = "DISTCC_POTENTIAL_HOSTS";
/// Number of remote-failed, locally-succeeded compiles before pump mode is demoted.
pub const DISTCC_MAX_DISCREPANCY: &str = "DISTCC_MAX_DISCREPANCY";
/// When true, a failing include server is a hard error for the client (test suites).
pub const DISTCC_TESTING_INCLUDE_SERVER: &str = "DISTCC_TESTING_INCLUDE_SERVER";
/// `0` forbids the client's local fall-back.
pub const DISTCC_FALLBACK: &str = "DISTCC_FALLBACK";
/// Client verbosity.
pub const DISTCC_VERBOSE: &str = "DISTCC_VERBOSE";
/// Client log file.
pub const DISTCC_LOG: &str = "DISTCC_LOG";
/// Base directory of the include server's client roots (default `/dev/shm`, else `/tmp`).
pub const DISTCC_CLIENT_TMP: &str = "DISTCC_CLIENT_TMP";
/// Seconds the RPC layer waits for progress on a socket (default 300).
pub const DISTCC_IO_TIMEOUT: &str = "DISTCC_IO_TIMEOUT";
/// Recipient of the include server's e-mail reports (accepted, unused).
pub const DISTCC_EMAILLOG_WHOM_TO_BLAME: &str = "DISTCC_EMAILLOG_WHOM_TO_BLAME";
/// Extra options for the include server, split with shell word rules by `pump`.
pub const INCLUDE_SERVER_ARGS: &str = "INCLUDE_SERVER_ARGS";
/// The include server's Unix socket path, read by the distcc client.
pub const INCLUDE_SERVER_PORT: &str = "INCLUDE_SERVER_PORT";
/// Where the include server saves compiler probes for the next server: unset means
/// `$DISTCC_DIR/include_server/probes`, set but empty means nowhere.
pub const INCLUDE_SERVER_PROBE_CACHE: &str = "INCLUDE_SERVER_PROBE_CACHE";
/// Set by `pump` for the launcher it starts: a descriptor on which the serving process
/// writes its pid and a newline once the socket accepts, so that pump need not wait for
/// the launcher to exit. A launcher given it serves in its own process instead of
/// forking; one that does not know it ignores it.
pub const INCLUDE_SERVER_READY_FD: &str = "INCLUDE_SERVER_READY_FD";
/// The include server's pid, exported by `pump --startup`.
pub const INCLUDE_SERVER_PID: &str = "INCLUDE_SERVER_PID";
/// The socket directory, exported by `pump --startup`.
pub const INCLUDE_SERVER_DIR: &str = "INCLUDE_SERVER_DIR";
/// Extra options `pump` passes to `lsdistcc`.
pub const LSDISTCC_ARGS: &str = "LSDISTCC_ARGS";
/// Accepted for compatibility with the Python pump; ignored.
pub const PYTHONOPTIMIZE: &str = "PYTHONOPTIMIZE";
/// Temporary directory. Like the shell's `${TMPDIR-/tmp}`: set-but-empty is kept.
pub const TMPDIR: &str = "TMPDIR";
/// The user's home directory.
pub const HOME: &str = "HOME";
/// Executable search path.
pub const PATH: &str = "PATH";
/// pump's system configuration directory (holding `distcc/hosts`), overriding the
/// compiled-in default so packagers need not patch the binary.
pub const PUMP_SYSCONFDIR: &str = "PUMP_SYSCONFDIR";
/// Host name candidates for `lsdistcc -d` (the longer one containing a dot wins).
pub const HOST: &str = "HOST";
/// See [`HOST`].
pub const HOSTNAME: &str = "HOSTNAME";

/// Every variable of the snapshot, in the order documented above.
pub const ALL: &[&str] = &[
    DISTCC_HOSTS,
    DISTCC_DIR,
    DISTCC_LOCATION,
    DISTCC_POTENTIAL_HOSTS,
    DISTCC_MAX_DISCREPANCY,
    DISTCC_TESTING_INCLUDE_SERVER,
    DISTCC_FALLBACK,
    DISTCC_VERBOSE,
    DISTCC_LOG,
    DISTCC_CLIENT_TMP,
    DISTCC_IO_TIMEOUT,
    DISTCC_EMAILLOG_WHOM_TO_BLAME,
    INCLUDE_SERVER_ARGS,
    INCLUDE_SERVER_PORT,
    INCLUDE_SERVER_PROBE_CACHE,
    INCLUDE_SERVER_READY_FD,
    INCLUDE_SERVER_PID,
    INCLUDE_SERVER_DIR,
    LSDISTCC_ARGS,
    PYTHONOPTIMIZE,
    TMPDIR,
    HOME,
    PATH,
    PUMP_SYSCONFDIR,
    HOST,
    HOSTNAME,
];

/// A snapshot of the variables in [`ALL`]. Unknown names are not kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    vars: BTreeMap<&'static str, OsString>,
}

impl Env {
    /// Reads the process environment. The only environment read in the workspace.
    #[allow(clippy::disallowed_methods)]
    pub fn from_process() -> Self {
        Self::from_pairs(std::env::vars_os())
    }

    /// Builds a snapshot from explicit pairs; names outside [`ALL`] are dropped.
    pub fn from_pairs<K, V, I>(pairs: I) -> Self
    where
        K: AsRef<OsStr>,
        V: Into<OsString>,
        I: IntoIterator<Item = (K, V)>,
    {
        let mut vars = BTreeMap::new();
        for (k, v) in pairs {
            if let Some(name) = ALL.iter().find(|n| OsStr::new(n) == k.as_ref()) {
                vars.insert(*name, v.into());
            }
        }
        Env { vars }
    }

    /// The raw value of `name` (one of the constants), if set, even if empty.
    pub fn get(&self, name: &str) -> Option<&OsStr> {
        self.vars.get(name).map(OsString::as_os_str)
    }

    /// The value of `name` if it is set and not empty.
    pub fn non_empty(&self, name: &str) -> Option<&OsStr> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// The value as UTF-8 text, lossily converted.
    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name).map(|v| v.to_string_lossy().into_owned())
    }

    /// True when `name` is set to a value distcc treats as true: set, not empty, and
    /// not starting with `0` (distcc's `dcc_getenv_bool`).
    pub fn flag(&self, name: &str) -> bool {
        self.non_empty(name)
            .map(|v| !v.as_encoded_bytes().starts_with(b"0"))
            .unwrap_or(false)
    }

    /// `${TMPDIR-/tmp}`: an unset `TMPDIR` means `/tmp`, a set-but-empty one is kept
    /// (so temp names land in `/`), exactly as distcc's `pump` script does.
    pub fn tmpdir(&self) -> PathBuf {
        match self.get(TMPDIR) {
            Some(v) => PathBuf::from(v),
            None => PathBuf::from("/tmp"),
        }
    }

    /// `$HOME`, if set and not empty.
    pub fn home(&self) -> Option<PathBuf> {
        self.non_empty(HOME).map(PathBuf::from)
    }

    /// distcc's directory: `$DISTCC_DIR` if set and not empty, else `$HOME/.distcc`.
    pub fn distcc_dir(&self) -> Option<PathBuf> {
        self.non_empty(DISTCC_DIR)
            .map(PathBuf::from)
            .or_else(|| self.home().map(|h| h.join(".distcc")))
    }

    /// Where the include server saves compiler probes ([`INCLUDE_SERVER_PROBE_CACHE`]).
    pub fn probe_cache_dir(&self) -> Option<PathBuf> {
        match self.get(INCLUDE_SERVER_PROBE_CACHE) {
            Some(v) if v.is_empty() => None,
            Some(v) => Some(PathBuf::from(v)),
            None => self
                .distcc_dir()
                .map(|d| d.join("include_server").join("probes")),
        }
    }

    /// The directories of `$PATH`, in order; empty entries mean the current directory.
    pub fn path_dirs(&self) -> Vec<PathBuf> {
        match self.get(PATH) {
            Some(p) => std::env::split_paths(p)
                .map(|d| {
                    if d.as_os_str().is_empty() {
                        PathBuf::from(".")
                    } else {
                        d
                    }
                })
                .collect(),
            None => Vec::new(),
        }
    }

    /// Pairs of every variable that is set, for handing to a child process.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &OsStr)> {
        self.vars.iter().map(|(k, v)| (*k, v.as_os_str()))
    }

    /// A copy with `name` set to `value`.
    pub fn with(mut self, name: &str, value: impl Into<OsString>) -> Self {
        if let Some(n) = ALL.iter().find(|n| **n == name) {
            self.vars.insert(*n, value.into());
        }
        self
    }

    /// A copy with `name` removed.
    pub fn without(mut self, name: &str) -> Self {
        self.vars.remove(name);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_are_dropped_and_known_ones_kept() {
        let env = Env::from_pairs([("DISTCC_HOSTS", "a b"), ("UNRELATED", "x")]);
        assert_eq!(env.get(DISTCC_HOSTS), Some(OsStr::new("a b")));
        assert_eq!(env.iter().count(), 1);
    }

    #[test]
    fn tmpdir_follows_shell_dash_rule() {
        assert_eq!(Env::default().tmpdir(), PathBuf::from("/tmp"));
        let empty = Env::from_pairs([(TMPDIR, "")]);
        assert_eq!(empty.tmpdir(), PathBuf::from(""));
        let set = Env::from_pairs([(TMPDIR, "/var/tmp")]);
        assert_eq!(set.tmpdir(), PathBuf::from("/var/tmp"));
    }

    #[test]
    fn distcc_dir_defaults_under_home() {
        let env = Env::from_pairs([(HOME, "/home/u")]);
        assert_eq!(env.distcc_dir(), Some(PathBuf::from("/home/u/.distcc")));
        let env = env.with(DISTCC_DIR, "/d");
        assert_eq!(env.distcc_dir(), Some(PathBuf::from("/d")));
        assert_eq!(Env::default().distcc_dir(), None);
    }

    #[test]
    fn probe_cache_dir_defaults_under_distcc_dir() {
        let env = Env::from_pairs([(HOME, "/home/u")]);
        assert_eq!(
            env.probe_cache_dir(),
            Some(PathBuf::from("/home/u/.distcc/include_server/probes"))
        );
        assert_eq!(
            env.clone()
                .with(INCLUDE_SERVER_PROBE_CACHE, "/c")
                .probe_cache_dir(),
            Some(PathBuf::from("/c"))
        );
        assert_eq!(
            env.with(INCLUDE_SERVER_PROBE_CACHE, "").probe_cache_dir(),
            None
        );
    }

    #[test]
    fn flags_follow_distcc_rules() {
        for (v, want) in [("1", true), ("yes", true), ("0", false), ("", false)] {
            let env = Env::from_pairs([(DISTCC_FALLBACK, v)]);
            assert_eq!(env.flag(DISTCC_FALLBACK), want, "value {v:?}");
        }
        assert!(!Env::default().flag(DISTCC_FALLBACK));
    }

    #[test]
    fn path_dirs_keep_order_and_map_empty_to_dot() {
        let env = Env::from_pairs([(PATH, "/a::/b")]);
        assert_eq!(
            env.path_dirs(),
            vec![PathBuf::from("/a"), PathBuf::from("."), PathBuf::from("/b")]
        );
    }
}
