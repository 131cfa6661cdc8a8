//! The `DISTCC_HOSTS` grammar, parsed exactly as the distcc 3.4 client parses it, and the
//! order in which the client looks for the host list.
//!
//! This module owns three things:
//!
//! - [`parse`] / [`parse_source`]: text (the variable's value or a hosts file's content)
//!   to a [`HostList`], reproducing the client's quirks (spec C.2-C.4), listed below.
//! - [`find_host_list`] / [`load_host_list`]: where the text comes from (spec C.1).
//! - [`HostList::apply_randomize`]: the `--randomize` shuffle (spec C.5).
//!
//! # The grammar, as the client really reads it
//!
//! The scanner walks the text until its end (or a NUL byte, which ends a C string):
//! a `#` where a token would start skips to the next `\n`, `\r` or the end; C `isspace`
//! characters (space, `\t`, `\n`, `\v`, `\f`, `\r`) are skipped; anything else starts a
//! token that runs up to one of space, `#`, `\t`, `\n`, `\f`, `\r` (**not** `\v`). The token
//! text is kept verbatim ([`HostSpec::text`], distcc's `hostdef_string`, what
//! `distcc --show-hosts` prints), and [`HostSpec`]'s `Display` writes exactly that text.
//!
//! Each token is checked, in this order, against:
//!
//! 1. `--randomize` as a prefix: sets [`HostList::randomize`].
//! 2. `--localslots_cpp` as a prefix, then an optional multiplier (`/N` or `=N`): sets
//!    [`HostList::localslots_cpp`] (default 8). A multiplier whose value is 0 is logged
//!    (kept in [`HostList::warnings`]) and the token falls through to the next check.
//! 3. `--localslots` likewise for [`HostList::localslots`] (default 4). So
//!    `--localslots_cpp=0` is ignored (its rest `_cpp=0` has no multiplier), and
//!    `--localslots=abc` falls through to the host parsers and becomes a TCP host
//!    named `--localslots=abc`.
//! 4. exactly `+zeroconf`: [`HostKind::Zeroconf`]. The client would browse for servers
//!    and splice in what it finds; we cannot browse, so the entry is kept as a marker
//!    (0 slots, protocol 1, which is what discovered hosts get). It counts as an entry, so
//!    a list holding only `+zeroconf` parses; the real client fails then unless the
//!    browser found servers.
//! 5. a host: LOCAL if the token starts with `localhost` and is 9 characters long or has
//!    `/` as its 10th; else SSH if it contains `@`; else TCP.
//!
//! The host sub-parsers read the **whole remaining text**, not the token, and never
//! check that they consumed the token: trailing garbage is ignored, a TCP host name
//! may run on past a `#` (`a#x` is shown as `a` but names host `a#x`), and error
//! messages quote the text from the bad part to the end of the input.
//!
//! - LOCAL: 2 slots, then an optional `/N` multiplier; options are not parsed
//!   (`localhost/3,cpp,lzo` is LOCAL, 3 slots, protocol 1).
//! - SSH: `[USER]@HOST[/N][:COMMAND][,OPTIONS]`. The user is everything before the
//!   first `@`; the host name runs up to one of `/: \t\n\r\f,` and is required; the
//!   command runs up to one of ` \t\n\r\f,`.
//! - TCP: `HOST` (up to one of `/: \t\n\r\f,`) or `[HOST]` (up to one of `/] \t\n\r\f,`,
//!   then a required `]`), then an optional multiplier (old style `host/N:port`), then
//!   `:PORT` read with C `strtol` (so `a:` is port 0, `a:-5` is port -5, `a:70000` is
//!   accepted, and the port is an [`i32`]), which must be followed by the end, a space,
//!   `/` or `,`; then an optional multiplier again (new style `host:port/N`, which wins),
//!   then options. `=` does not end a host name, so `a=8` is a host called `a=8`.
//! - Multiplier: `/` or `=` followed by C `atoi` digits (leading blanks and a sign
//!   allowed, overflow wraps as in glibc). 0 is an error; negative values are kept.
//! - Options: `,lzo`, `,down`, `,cpp`, `,auth[=NAME]`, each matched as a prefix, repeated
//!   while a `,` follows (`lzoXYZ` is lzo; `lzocpp` is only lzo). Anything else, an empty
//!   option included, is an error. `cpp` without `lzo` is an error; otherwise the
//!   protocol is 1 (plain), 2 (lzo) or 3 (lzo and cpp).
//!
//! Any error ends the whole parse (distcc exits with [`EXIT_BAD_HOSTSPEC`]); a list
//! without any entry is the error [`HostsError::NoHosts`].

use std::ffi::{CString, OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::env::{self, Env};

/// distcc's exit code for a bad or missing host list (`EXIT_BAD_HOSTSPEC`).
pub const EXIT_BAD_HOSTSPEC: u8 = 106;
/// distcc's exit code for running out of memory; also used for a hosts file over 1 MiB.
pub const EXIT_OUT_OF_MEMORY: u8 = 105;
/// distcc's exit code for an I/O error (`EXIT_IO_ERROR`).
pub const EXIT_IO_ERROR: u8 = 107;
/// distcc's exit code when a file vanished (`EXIT_NO_SUCH_FILE`).
pub const EXIT_NO_SUCH_FILE: u8 = 115;
/// The compiled-in system configuration directory of Debian's client.
pub const DEFAULT_SYSCONFDIR: &str = "/etc";
/// The TCP port a host gets when it names none.
pub const DEFAULT_PORT: i32 = 3632;
/// Slots of a TCP or SSH host without a multiplier.
pub const DEFAULT_REMOTE_SLOTS: i32 = 4;
/// Slots of a `localhost` entry without a multiplier.
pub const DEFAULT_LOCAL_SLOTS: i32 = 2;
/// Local job slots when `--localslots` is not given.
pub const DEFAULT_LOCALSLOTS: i32 = 4;
/// Local preprocessing slots when `--localslots_cpp` is not given.
pub const DEFAULT_LOCALSLOTS_CPP: i32 = 8;
/// The source name used in messages about `$DISTCC_HOSTS`.
pub const ENV_SOURCE_NAME: &str = "$DISTCC_HOSTS";
/// Hosts files larger than this are refused, as the client refuses them.
pub const MAX_HOSTS_FILE_SIZE: u64 = 1 << 20;

/// Why a host list could not be found, read or parsed.
///
/// The messages are the distcc client's texts. Where the client quotes "the rest of the
/// specification", the field holds the input from the bad part to the end of the text,
/// exactly as the client prints it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostsError {
    /// A `/N` or `=N` multiplier whose value is 0 (or not a number).
    #[error("bad multiplier \"{text}\" in host specification")]
    BadMultiplier {
        /// The text from the `/` or `=` to the end of the input.
        text: String,
    },
    /// A TCP port followed by something other than the end, a space, `/` or `,`.
    #[error("invalid tcp port specification in \"{text}\"")]
    InvalidPort {
        /// The text after the `:` to the end of the input.
        text: String,
    },
    /// A TCP host without a host name (`:4200`, `[]`).
    #[error("hostname is required in tcp host specification \"{text}\"")]
    TcpHostnameRequired {
        /// The text from the start of the token to the end of the input.
        text: String,
    },
    /// An SSH host without a host name (`@`, `u@`).
    #[error("hostname is required in SSH host specification \"{text}\"")]
    SshHostnameRequired {
        /// The text from the start of the token to the end of the input.
        text: String,
    },
    /// `[` without the closing `]`. distcc's text stops at the `]'`; we name the input.
    #[error("IPv6 Hostname requires closing ']' in \"{text}\"")]
    UnclosedIpv6 {
        /// The text from the start of the token to the end of the input.
        text: String,
    },
    /// An option other than `lzo`, `down`, `cpp` or `auth` (an empty one included).
    #[error("unrecognized option in host specification: {options}")]
    UnrecognizedOption {
        /// The text from the first `,` of the options to the end of the input.
        options: String,
    },
    /// `,cpp` without `,lzo`. distcc logs the two texts joined here on two lines.
    #[error("pump mode (',cpp') requires compression (',lzo'); invalid host options: {options}")]
    CppWithoutLzo {
        /// The text from the first `,` of the options to the end of the input.
        options: String,
    },
    /// The text held no host.
    #[error("{source_name} contained no hosts; can't distribute work")]
    NoHosts {
        /// `$DISTCC_HOSTS` or the hosts file's path.
        source_name: String,
    },
    /// Neither the variable nor any hosts file was found.
    #[error("no hostlist is set; can't distribute work")]
    NoHostList,
    /// A hosts file that passed the access check could not be read.
    #[error("failed to read {}: {message}", path.display())]
    Read {
        /// The hosts file.
        path: PathBuf,
        /// The system's description of the failure.
        message: String,
        /// The distcc exit code for it ([`EXIT_IO_ERROR`] or [`EXIT_NO_SUCH_FILE`]).
        code: u8,
    },
    /// A hosts file over [`MAX_HOSTS_FILE_SIZE`].
    #[error("{} is too large to load ({size} bytes)", path.display())]
    TooLarge {
        /// The hosts file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
    },
}

impl HostsError {
    /// The exit code the distcc client uses for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            HostsError::Read { code, .. } => *code,
            HostsError::TooLarge { .. } => EXIT_OUT_OF_MEMORY,
            _ => EXIT_BAD_HOSTSPEC,
        }
    }
}

/// The protocol version a host is spoken to with, chosen by its options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// No compression, preprocessing on the client.
    V1 = 1,
    /// LZO compression, preprocessing on the client (`,lzo`).
    V2 = 2,
    /// LZO compression, preprocessing on the server: pump mode (`,lzo,cpp`).
    V3 = 3,
}

impl Protocol {
    /// The version number sent on the wire.
    pub fn number(self) -> u32 {
        self as u32
    }
}

/// The `,option` list of a TCP or SSH host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostOptions {
    lzo: bool,
    cpp: bool,
    down: bool,
    auth: bool,
    auth_name: Option<String>,
}

impl HostOptions {
    /// `,lzo`: compress with LZO1X.
    pub fn lzo(&self) -> bool {
        self.lzo
    }

    /// `,cpp`: preprocess on the server (pump mode).
    pub fn cpp(&self) -> bool {
        self.cpp
    }

    /// `,down`: marked down. The client records it and never reads it.
    pub fn down(&self) -> bool {
        self.down
    }

    /// `,auth`: authenticate with GSS-API.
    pub fn auth(&self) -> bool {
        self.auth
    }

    /// `,auth=NAME`: the server principal name to use instead of the host name. A later
    /// `,auth=` with an empty name clears it, a later bare `,auth` keeps it.
    pub fn auth_name(&self) -> Option<&str> {
        self.auth_name.as_deref()
    }

    /// The protocol these options select (never `cpp` without `lzo`: the parser refuses
    /// that combination).
    pub fn protocol(&self) -> Protocol {
        match (self.lzo, self.cpp) {
            (true, true) => Protocol::V3,
            (true, false) => Protocol::V2,
            (false, _) => Protocol::V1,
        }
    }
}

/// What kind of entry a [`HostSpec`] is, with the parts that kind has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKind {
    /// `localhost[/N]`: run on this machine.
    Local,
    /// A distccd reached over TCP.
    Tcp {
        /// The host name or address, without IPv6 brackets.
        host: String,
        /// The port as `strtol` read it, truncated to a C `int`: not range-checked.
        port: i32,
        /// The `,option` list.
        options: HostOptions,
    },
    /// A distccd started over SSH.
    Ssh {
        /// The part before the first `@`, if not empty.
        user: Option<String>,
        /// The host name.
        host: String,
        /// The `:COMMAND` to run instead of `distccd`.
        command: Option<String>,
        /// The `,option` list.
        options: HostOptions,
    },
    /// `+zeroconf`: servers to be discovered by the client's zeroconf browser, which we
    /// cannot run. Kept as a marker with 0 slots.
    Zeroconf,
}

/// One entry of the host list: its verbatim token, its job slots and its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    text: String,
    slots: i32,
    kind: HostKind,
}

impl HostSpec {
    /// The token exactly as written (distcc's `hostdef_string`).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The number of jobs that may run there at once (may be negative: `a/-3`).
    pub fn slots(&self) -> i32 {
        self.slots
    }

    /// The kind of entry and its parts.
    pub fn kind(&self) -> &HostKind {
        &self.kind
    }

    /// True for `localhost` entries.
    pub fn is_local(&self) -> bool {
        matches!(self.kind, HostKind::Local)
    }

    /// The host name (`localhost` for LOCAL, none for `+zeroconf`).
    pub fn hostname(&self) -> Option<&str> {
        match &self.kind {
            HostKind::Local => Some("localhost"),
            HostKind::Tcp { host, .. } | HostKind::Ssh { host, .. } => Some(host),
            HostKind::Zeroconf => None,
        }
    }

    /// The TCP port, for TCP hosts.
    pub fn port(&self) -> Option<i32> {
        match &self.kind {
            HostKind::Tcp { port, .. } => Some(*port),
            _ => None,
        }
    }

    /// The SSH user, for SSH hosts that name one.
    pub fn user(&self) -> Option<&str> {
        match &self.kind {
            HostKind::Ssh { user, .. } => user.as_deref(),
            _ => None,
        }
    }

    /// The SSH command, for SSH hosts that name one.
    pub fn command(&self) -> Option<&str> {
        match &self.kind {
            HostKind::Ssh { command, .. } => command.as_deref(),
            _ => None,
        }
    }

    /// The options of a TCP or SSH host (LOCAL entries never parse options).
    pub fn options(&self) -> Option<&HostOptions> {
        match &self.kind {
            HostKind::Tcp { options, .. } | HostKind::Ssh { options, .. } => Some(options),
            _ => None,
        }
    }

    /// The protocol spoken to this host (1 for LOCAL and `+zeroconf`).
    pub fn protocol(&self) -> Protocol {
        self.options().map_or(Protocol::V1, HostOptions::protocol)
    }
}

impl fmt::Display for HostSpec {
    /// Writes the verbatim token, as `distcc --show-hosts` does.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A parsed host list: the entries in written order plus the global keywords.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostList {
    hosts: Vec<HostSpec>,
    randomize: bool,
    localslots: i32,
    localslots_cpp: i32,
    warnings: Vec<HostsError>,
}

impl HostList {
    /// The entries, in written order (or shuffled, after [`HostList::apply_randomize`]).
    pub fn hosts(&self) -> &[HostSpec] {
        &self.hosts
    }

    /// The entries, iterated.
    pub fn iter(&self) -> std::slice::Iter<'_, HostSpec> {
        self.hosts.iter()
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// Never true for a list returned by [`parse`], which refuses empty lists.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// True when a `--randomize` token was seen anywhere.
    pub fn randomize(&self) -> bool {
        self.randomize
    }

    /// Local job slots (`--localslots`, default [`DEFAULT_LOCALSLOTS`]).
    pub fn localslots(&self) -> i32 {
        self.localslots
    }

    /// Local preprocessing slots (`--localslots_cpp`, default [`DEFAULT_LOCALSLOTS_CPP`]).
    pub fn localslots_cpp(&self) -> i32 {
        self.localslots_cpp
    }

    /// Errors the client logs without failing: a bad `--localslots` multiplier.
    pub fn warnings(&self) -> &[HostsError] {
        &self.warnings
    }

    /// The sum of the entries' slots, as `distcc -j` prints it (C `int` arithmetic, so it
    /// wraps; `--localslots` is not included).
    pub fn total_slots(&self) -> i32 {
        self.hosts
            .iter()
            .fold(0i32, |sum, h| sum.wrapping_add(h.slots))
    }

    /// Shuffles the entries if `--randomize` was given, seeded from the process id and
    /// the clock. The client sorts by glibc `rand()` seeded with its pid, so the order
    /// differs from the client's; only "some permutation" is promised.
    pub fn apply_randomize(&mut self) {
        if self.randomize {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            self.shuffle_with_seed(nanos ^ (u64::from(std::process::id()) << 32));
        }
    }

    /// Shuffles the entries with a deterministic generator (Fisher-Yates over
    /// SplitMix64), whatever the randomize flag says.
    pub fn shuffle_with_seed(&mut self, seed: u64) {
        let mut state = seed;
        for i in (1..self.hosts.len()).rev() {
            let j = (splitmix64(&mut state) % (i as u64 + 1)) as usize;
            self.hosts.swap(i, j);
        }
    }
}

impl<'a> IntoIterator for &'a HostList {
    type Item = &'a HostSpec;
    type IntoIter = std::slice::Iter<'a, HostSpec>;

    fn into_iter(self) -> Self::IntoIter {
        self.hosts.iter()
    }
}

/// One step of SplitMix64: small, self-contained, good enough for a shuffle.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Where a host list was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostSource {
    /// The `DISTCC_HOSTS` variable.
    Environment,
    /// A hosts file.
    File(PathBuf),
}

impl HostSource {
    /// The name the client uses in messages: `$DISTCC_HOSTS` or the file's path.
    pub fn name(&self) -> String {
        match self {
            HostSource::Environment => ENV_SOURCE_NAME.to_owned(),
            HostSource::File(p) => p.display().to_string(),
        }
    }
}

impl fmt::Display for HostSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// The text of a host list and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostListText {
    source: HostSource,
    text: Vec<u8>,
}

impl HostListText {
    /// Where the text came from.
    pub fn source(&self) -> &HostSource {
        &self.source
    }

    /// The raw text (the variable's value or the whole file).
    pub fn text(&self) -> &[u8] {
        &self.text
    }

    /// Parses the text, naming its source in messages.
    pub fn parse(&self) -> Result<HostList, HostsError> {
        parse_source(&self.text, &self.source)
    }
}

/// Finds the host list the way the client's `dcc_get_hostlist` does, in this order:
///
/// 1. `DISTCC_HOSTS`, if set **even when empty**: its value, source `$DISTCC_HOSTS`; no
///    file is looked at.
/// 2. `<top>/hosts`, if `access(R_OK)` allows it, where `<top>` is `$DISTCC_DIR` if set
///    (even when empty, which gives `/hosts`), else `$HOME/.distcc` if `HOME` is set.
///    The client creates `$HOME/.distcc` here as a side effect (even for
///    `--show-hosts`); **we do not**, which changes nothing about the result. With
///    `HOME` unset the client warns `HOME is not set; can't find distcc directory`; we
///    just go on to step 3.
/// 3. `<sysconfdir>/distcc/hosts`, if `access(R_OK)` allows it ([`DEFAULT_SYSCONFDIR`]
///    on Debian).
/// 4. Otherwise `Ok(None)`; the client then fails with [`HostsError::NoHostList`].
///
/// A file is read whole (up to [`MAX_HOSTS_FILE_SIZE`]); a read failure after the access
/// check is an error, as in the client.
pub fn find_host_list(env: &Env, sysconfdir: &Path) -> Result<Option<HostListText>, HostsError> {
    if let Some(value) = env.get(env::DISTCC_HOSTS) {
        return Ok(Some(HostListText {
            source: HostSource::Environment,
            text: value.as_bytes().to_vec(),
        }));
    }
    let top = match (env.get(env::DISTCC_DIR), env.get(env::HOME)) {
        (Some(dir), _) => Some(dir.to_os_string()),
        (None, Some(home)) => Some(concat(home, "/.distcc")),
        (None, None) => None,
    };
    let candidates = top
        .map(|t| concat(&t, "/hosts"))
        .into_iter()
        .chain(std::iter::once(concat(
            sysconfdir.as_os_str(),
            "/distcc/hosts",
        )));
    for path in candidates {
        let path = PathBuf::from(path);
        if readable(&path) {
            let text = read_hosts_file(&path)?;
            return Ok(Some(HostListText {
                source: HostSource::File(path),
                text,
            }));
        }
    }
    Ok(None)
}

/// [`find_host_list`], then [`parse_source`], then [`HostList::apply_randomize`]: the
/// list the client would use. No list at all is [`HostsError::NoHostList`].
pub fn load_host_list(env: &Env, sysconfdir: &Path) -> Result<(HostSource, HostList), HostsError> {
    let found = find_host_list(env, sysconfdir)?.ok_or(HostsError::NoHostList)?;
    let mut list = found.parse()?;
    list.apply_randomize();
    Ok((found.source, list))
}

/// `a` followed by `b`, as C string concatenation does (an empty `a` gives `b`).
fn concat(a: &OsStr, b: &str) -> OsString {
    let mut s = a.to_os_string();
    s.push(b);
    s
}

/// `access(path, R_OK) == 0`: the real-uid check the client makes before reading.
fn readable(path: &Path) -> bool {
    let Ok(c_path) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c_path` is a valid NUL-terminated string that outlives the call.
    unsafe { libc::access(c_path.as_ptr(), libc::R_OK) == 0 }
}

fn read_hosts_file(path: &Path) -> Result<Vec<u8>, HostsError> {
    use std::io::Read;
    let read_error = |e: std::io::Error| HostsError::Read {
        path: path.to_owned(),
        code: if e.kind() == std::io::ErrorKind::NotFound {
            EXIT_NO_SUCH_FILE
        } else {
            EXIT_IO_ERROR
        },
        message: e.to_string(),
    };
    let mut file = std::fs::File::open(path).map_err(read_error)?;
    let size = file.metadata().map_err(read_error)?.len();
    if size > MAX_HOSTS_FILE_SIZE {
        return Err(HostsError::TooLarge {
            path: path.to_owned(),
            size,
        });
    }
    let mut text = Vec::with_capacity(size as usize);
    file.read_to_end(&mut text).map_err(read_error)?;
    Ok(text)
}

/// Parses a host list given as the `DISTCC_HOSTS` value (source name `$DISTCC_HOSTS`).
///
/// The text is cut at its first NUL byte (the client reads a C string); bytes that are
/// not UTF-8 are replaced with U+FFFD, which changes no token boundary since every
/// separator is ASCII. The entries are in written order; call
/// [`HostList::apply_randomize`] to honour `--randomize`.
pub fn parse(text: impl AsRef<[u8]>) -> Result<HostList, HostsError> {
    parse_source(text, &HostSource::Environment)
}

/// [`parse`], naming `source` in the "contained no hosts" error.
pub fn parse_source(text: impl AsRef<[u8]>, source: &HostSource) -> Result<HostList, HostsError> {
    let bytes = text.as_ref();
    let bytes = bytes.split(|&b| b == 0).next().unwrap_or_default();
    let text = String::from_utf8_lossy(bytes);
    Parser { s: &text }.parse_list(source)
}

/// C `isspace` in the C locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Bytes that end a token: `" #\t\n\f\r"` (no `\v`).
const TOKEN_END: &[u8] = b" #\t\n\x0c\r";
/// Bytes that end a host name: `"/: \t\n\r\f,"`.
const HOSTNAME_END: &[u8] = b"/: \t\n\r\x0c,";
/// Bytes that end a bracketed IPv6 host name: `"/] \t\n\r\f,"`.
const IPV6_END: &[u8] = b"/] \t\n\r\x0c,";
/// Bytes that end an SSH command: `" \t\n\r\f,"`.
const COMMAND_END: &[u8] = b" \t\n\r\x0c,";

/// The scanner over the whole input; positions are byte offsets into `s`, always at
/// ASCII bytes or the end, so slicing `s` with them is valid.
struct Parser<'a> {
    s: &'a str,
}

impl<'a> Parser<'a> {
    /// The byte at `i`, or 0 (the C terminator) past the end.
    fn at(&self, i: usize) -> u8 {
        self.s.as_bytes().get(i).copied().unwrap_or(0)
    }

    /// C `strcspn` from `i`: the offset of the first byte in `set`, or the end.
    fn span_until(&self, i: usize, set: &[u8]) -> usize {
        self.s.as_bytes()[i..]
            .iter()
            .position(|b| set.contains(b))
            .map_or(self.s.len(), |n| i + n)
    }

    /// distcc's `dcc_dup_part`: the text up to a byte of `set`, or `None` if empty (the
    /// cursor then stays put).
    fn dup_part(&self, pos: &mut usize, set: &[u8]) -> Option<&'a str> {
        let end = self.span_until(*pos, set);
        if end == *pos {
            return None;
        }
        let part = &self.s[*pos..end];
        *pos = end;
        Some(part)
    }

    /// C `strtol(s + i, &tail, 10)`: the value (saturated at the `long` limits) and the
    /// tail offset, which is `i` itself when no digit was read.
    fn strtol(&self, i: usize) -> (i64, usize) {
        let mut p = i;
        while is_c_space(self.at(p)) {
            p += 1;
        }
        let negative = self.at(p) == b'-';
        if matches!(self.at(p), b'-' | b'+') {
            p += 1;
        }
        let digits_start = p;
        let mut value: i64 = 0;
        let mut overflow = false;
        while self.at(p).is_ascii_digit() {
            let d = i64::from(self.at(p) - b'0');
            let next = value.checked_mul(10).and_then(|v| {
                if negative {
                    v.checked_sub(d)
                } else {
                    v.checked_add(d)
                }
            });
            match next {
                Some(v) => value = v,
                None => overflow = true,
            }
            p += 1;
        }
        if p == digits_start {
            return (0, i);
        }
        if overflow {
            value = if negative { i64::MIN } else { i64::MAX };
        }
        (value, p)
    }

    /// glibc `atoi`: `strtol` truncated to an `int`.
    fn atoi(&self, i: usize) -> i32 {
        self.strtol(i).0 as i32
    }

    /// An optional `/N` or `=N` multiplier at `pos`, stored in `slots`.
    fn multiplier(&self, pos: &mut usize, slots: &mut i32) -> Result<(), HostsError> {
        if !matches!(self.at(*pos), b'/' | b'=') {
            return Ok(());
        }
        let start = *pos;
        *pos += 1;
        let value = self.atoi(*pos);
        if value == 0 {
            return Err(HostsError::BadMultiplier {
                text: self.s[start..].to_owned(),
            });
        }
        while self.at(*pos).is_ascii_digit() {
            *pos += 1;
        }
        *slots = value;
        Ok(())
    }

    /// The `,option` list at `pos`.
    fn options(&self, pos: &mut usize) -> Result<HostOptions, HostsError> {
        let started = *pos;
        let mut opts = HostOptions::default();
        let mut p = *pos;
        while self.at(p) == b',' {
            p += 1;
            let rest = &self.s.as_bytes()[p..];
            if rest.starts_with(b"lzo") {
                opts.lzo = true;
                p += 3;
            } else if rest.starts_with(b"down") {
                opts.down = true;
                p += 4;
            } else if rest.starts_with(b"cpp") {
                opts.cpp = true;
                p += 3;
            } else if rest.starts_with(b"auth") {
                opts.auth = true;
                p += 4;
                if self.at(p) == b'=' {
                    p += 1;
                    opts.auth_name = self.dup_part(&mut p, HOSTNAME_END).map(str::to_owned);
                }
            } else {
                return Err(HostsError::UnrecognizedOption {
                    options: self.s[started..].to_owned(),
                });
            }
        }
        if opts.cpp && !opts.lzo {
            return Err(HostsError::CppWithoutLzo {
                options: self.s[started..].to_owned(),
            });
        }
        *pos = p;
        Ok(opts)
    }

    fn local(&self, start: usize, slots: &mut i32) -> Result<HostKind, HostsError> {
        *slots = DEFAULT_LOCAL_SLOTS;
        let mut pos = start + "localhost".len();
        self.multiplier(&mut pos, slots)?;
        Ok(HostKind::Local)
    }

    fn ssh(&self, start: usize, slots: &mut i32) -> Result<HostKind, HostsError> {
        let mut pos = start;
        let user = self.dup_part(&mut pos, b"@").map(str::to_owned);
        // The caller saw an '@' in the token, so `pos` is at it.
        pos += 1;
        let host = self.dup_part(&mut pos, HOSTNAME_END).ok_or_else(|| {
            HostsError::SshHostnameRequired {
                text: self.s[start..].to_owned(),
            }
        })?;
        self.multiplier(&mut pos, slots)?;
        let mut command = None;
        if self.at(pos) == b':' {
            pos += 1;
            command = self.dup_part(&mut pos, COMMAND_END).map(str::to_owned);
        }
        let options = self.options(&mut pos)?;
        Ok(HostKind::Ssh {
            user,
            host: host.to_owned(),
            command,
            options,
        })
    }

    fn tcp(&self, start: usize, slots: &mut i32) -> Result<HostKind, HostsError> {
        let mut pos = start;
        let host = if self.at(pos) == b'[' {
            pos += 1;
            let host = self.dup_part(&mut pos, IPV6_END);
            if self.at(pos) != b']' {
                return Err(HostsError::UnclosedIpv6 {
                    text: self.s[start..].to_owned(),
                });
            }
            pos += 1;
            host
        } else {
            self.dup_part(&mut pos, HOSTNAME_END)
        };
        let host = host.ok_or_else(|| HostsError::TcpHostnameRequired {
            text: self.s[start..].to_owned(),
        })?;
        self.multiplier(&mut pos, slots)?;
        let mut port = DEFAULT_PORT;
        if self.at(pos) == b':' {
            pos += 1;
            let (value, tail) = self.strtol(pos);
            let next = self.at(tail);
            if next != 0 && !is_c_space(next) && next != b'/' && next != b',' {
                return Err(HostsError::InvalidPort {
                    text: self.s[pos..].to_owned(),
                });
            }
            port = value as i32;
            pos = tail;
        }
        self.multiplier(&mut pos, slots)?;
        let options = self.options(&mut pos)?;
        Ok(HostKind::Tcp {
            host: host.to_owned(),
            port,
            options,
        })
    }

    /// A `--localslots*` keyword at `start`: true if it was consumed, false if its bad
    /// multiplier (recorded in `warnings`) makes it fall through to the next check.
    fn keyword_slots(
        &self,
        start: usize,
        keyword: &str,
        slots: &mut i32,
        warnings: &mut Vec<HostsError>,
    ) -> bool {
        if !self.s[start..].starts_with(keyword) {
            return false;
        }
        let mut pos = start + keyword.len();
        match self.multiplier(&mut pos, slots) {
            Ok(()) => true,
            Err(e) => {
                warnings.push(e);
                false
            }
        }
    }

    fn parse_list(&self, source: &HostSource) -> Result<HostList, HostsError> {
        let mut list = HostList {
            hosts: Vec::new(),
            randomize: false,
            localslots: DEFAULT_LOCALSLOTS,
            localslots_cpp: DEFAULT_LOCALSLOTS_CPP,
            warnings: Vec::new(),
        };
        let mut pos = 0;
        loop {
            let c = self.at(pos);
            if c == 0 {
                break;
            }
            if c == b'#' {
                pos += 1;
                while !matches!(self.at(pos), b'\n' | b'\r' | 0) {
                    pos += 1;
                }
                continue;
            }
            if is_c_space(c) {
                pos += 1;
                continue;
            }
            let start = pos;
            let end = self.span_until(start, TOKEN_END);
            let token = &self.s[start..end];
            pos = end;

            if self.s[start..].starts_with("--randomize") {
                list.randomize = true;
                continue;
            }
            if self.keyword_slots(
                start,
                "--localslots_cpp",
                &mut list.localslots_cpp,
                &mut list.warnings,
            ) || self.keyword_slots(
                start,
                "--localslots",
                &mut list.localslots,
                &mut list.warnings,
            ) {
                continue;
            }
            let mut slots = DEFAULT_REMOTE_SLOTS;
            let kind = if token == "+zeroconf" {
                slots = 0;
                HostKind::Zeroconf
            } else if token.starts_with("localhost")
                && (token.len() == 9 || self.at(start + 9) == b'/')
            {
                self.local(start, &mut slots)?
            } else if token.contains('@') {
                self.ssh(start, &mut slots)?
            } else {
                self.tcp(start, &mut slots)?
            };
            list.hosts.push(HostSpec {
                text: token.to_owned(),
                slots,
                kind,
            });
        }
        if list.hosts.is_empty() {
            return Err(HostsError::NoHosts {
                source_name: source.name(),
            });
        }
        Ok(list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Parser<'_> {
        Parser { s }
    }

    #[test]
    fn strtol_follows_c() {
        // (input, value, tail offset)
        let cases: &[(&str, i64, usize)] = &[
            ("", 0, 0),
            ("12x", 12, 2),
            ("  7", 7, 3),
            ("\x0b7", 7, 2),
            ("-5", -5, 2),
            ("+3", 3, 2),
            ("+", 0, 0),
            ("-", 0, 0),
            (" x", 0, 0),
            ("99999999999999999999", i64::MAX, 20),
            ("-99999999999999999999", i64::MIN, 21),
        ];
        for &(s, value, tail) in cases {
            assert_eq!(p(s).strtol(0), (value, tail), "strtol({s:?})");
        }
    }

    #[test]
    fn atoi_truncates_to_int_like_glibc() {
        for (s, want) in [
            ("4294967297", 1),
            ("4294967296", 0),
            ("2147483648", i32::MIN),
            ("99999999999999999999", -1),
            ("-99999999999999999999", 0),
            ("abc", 0),
        ] {
            assert_eq!(p(s).atoi(0), want, "atoi({s:?})");
        }
    }

    #[test]
    fn dup_part_leaves_the_cursor_on_empty_parts() {
        let parser = p("host:1");
        let mut pos = 0;
        assert_eq!(parser.dup_part(&mut pos, HOSTNAME_END), Some("host"));
        assert_eq!(pos, 4);
        assert_eq!(parser.dup_part(&mut pos, HOSTNAME_END), None);
        assert_eq!(pos, 4);
        assert_eq!(parser.at(pos), b':');
        assert_eq!(parser.at(100), 0);
    }

    #[test]
    fn multiplier_keeps_slots_on_absence_and_reports_the_rest_on_zero() {
        let mut slots = 4;
        let mut pos = 1;
        p("a:1").multiplier(&mut pos, &mut slots).unwrap();
        assert_eq!((slots, pos), (4, 1));
        let mut pos = 1;
        p("a=-2x").multiplier(&mut pos, &mut slots).unwrap();
        assert_eq!((slots, pos), (-2, 2), "the digit skipper stops at '-'");
        let mut pos = 1;
        let e = p("a/0 rest").multiplier(&mut pos, &mut slots).unwrap_err();
        assert_eq!(
            e,
            HostsError::BadMultiplier {
                text: "/0 rest".into()
            }
        );
        assert_eq!(slots, -2);
    }
}
