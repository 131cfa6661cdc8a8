//! Compiler probes saved on disk, so that a new include server (every `pump` build starts
//! one) does not run the compiler again for defaults it already knows.
//!
//! An entry holds the probe's key and `PATH`, the compiler's raw output, and a stamp of
//! every file and directory that output depends on:
//! - the executable that `argv[0]` resolved to (through `PATH` for a bare name), and every
//!   earlier `PATH` candidate, which must still be absent;
//! - the programs the driver ran and the specs files it read, as its `-v` output names
//!   them (`cc1`, `cc1plus`, `clang -cc1`);
//! - the directories of both search lists, and the ones it ignored as nonexistent, which
//!   must still not exist.
//!
//! A file is identified by device, inode, size, modification and change times: a package
//! upgrade, an `update-alternatives` switch or a newly created include directory each
//! change some stamp, and the compiler is probed again. An entry is written only when no
//! stamped file changed in the second before the probe ended (a compiler being installed
//! while it was probed is not trusted), atomically (temporary file and rename), into a
//! directory only its owner can read.
//!
//! The entry's text is the raw output, interpreted again on every load: the search
//! directories are realpathed then, as for a fresh probe.

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::probe::ProbeKey;

const MAGIC: &[u8] = b"distcc-pump compiler probe 1\n";

/// The probe's raw output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// What a path was when the probe ran.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Stamp {
    /// A file: device, inode, size, mtime and ctime (seconds and nanoseconds).
    File([i64; 7]),
    /// A directory: device and inode.
    Dir([i64; 2]),
    Absent,
}

impl Stamp {
    fn of(path: &Path) -> Stamp {
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => Stamp::Dir([m.dev() as i64, m.ino() as i64]),
            Ok(m) => Stamp::File([
                m.dev() as i64,
                m.ino() as i64,
                m.size() as i64,
                m.mtime(),
                m.mtime_nsec(),
                m.ctime(),
                m.ctime_nsec(),
            ]),
            Err(_) => Stamp::Absent,
        }
    }

    fn encode(&self) -> Vec<u8> {
        let (tag, nums): (&str, &[i64]) = match self {
            Stamp::File(n) => ("f", n),
            Stamp::Dir(n) => ("d", n),
            Stamp::Absent => ("-", &[]),
        };
        let mut s = tag.to_string();
        for n in nums {
            s.push_str(&format!(" {n}"));
        }
        s.into_bytes()
    }

    fn decode(b: &[u8]) -> Option<Stamp> {
        let text = std::str::from_utf8(b).ok()?;
        let mut words = text.split(' ');
        let tag = words.next()?;
        let nums: Vec<i64> = words.map(|w| w.parse().ok()).collect::<Option<_>>()?;
        match tag {
            "f" => Some(Stamp::File(nums.try_into().ok()?)),
            "d" => Some(Stamp::Dir(nums.try_into().ok()?)),
            "-" if nums.is_empty() => Some(Stamp::Absent),
            _ => None,
        }
    }

    /// The change time, for files.
    fn ctime(&self) -> Option<i64> {
        match self {
            Stamp::File(n) => Some(n[5]),
            _ => None,
        }
    }
}

/// A directory of saved probes.
#[derive(Clone, Debug)]
pub struct ProbeCache {
    dir: PathBuf,
}

impl ProbeCache {
    pub fn new(dir: PathBuf) -> ProbeCache {
        ProbeCache { dir }
    }

    /// The saved output for `key`, if every stamp still holds.
    pub fn load(&self, key: &ProbeKey, cwd: &Path, path_env: Option<&OsStr>) -> Option<Output> {
        let head = key_fields(key, cwd, path_env);
        let bytes = std::fs::read(self.file(&head)).ok()?;
        let fields = decode(bytes.strip_prefix(MAGIC)?)?;
        let (saved_head, rest) = fields.split_at_checked(head.len())?;
        if saved_head != head.as_slice() {
            return None;
        }
        let [stdout, stderr, stamps @ ..] = rest else {
            return None;
        };
        for pair in stamps.chunks(2) {
            let [path, stamp] = pair else { return None };
            if Stamp::of(Path::new(OsStr::from_bytes(path))) != Stamp::decode(stamp)? {
                return None;
            }
        }
        Some(Output {
            stdout: stdout.clone(),
            stderr: stderr.clone(),
        })
    }

    /// Saves a probe's output with the stamps it depends on; `started` is when the probe
    /// began (seconds since the epoch). Failures are ignored: it is only a cache.
    pub fn store(
        &self,
        key: &ProbeKey,
        cwd: &Path,
        path_env: Option<&OsStr>,
        out: &Output,
        started: i64,
    ) {
        let stamps: Vec<(PathBuf, Stamp)> = depends_on(key, cwd, path_env, &out.stderr)
            .into_iter()
            .map(|p| {
                let s = Stamp::of(&p);
                (p, s)
            })
            .collect();
        // Something changed while the compiler ran (or just before): do not trust it.
        if stamps
            .iter()
            .any(|(_, s)| s.ctime().is_some_and(|c| c >= started - 1))
        {
            return;
        }
        let head = key_fields(key, cwd, path_env);
        let mut fields = head.clone();
        fields.push(out.stdout.clone());
        fields.push(out.stderr.clone());
        for (p, s) in stamps {
            fields.push(p.as_os_str().as_bytes().to_vec());
            fields.push(s.encode());
        }
        let mut bytes = MAGIC.to_vec();
        bytes.extend(encode(&fields));
        let _ = self.write_atomically(&self.file(&head), &bytes);
    }

    fn write_atomically(&self, to: &Path, bytes: &[u8]) -> std::io::Result<()> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        tmp.write_all(bytes)?;
        tmp.persist(to).map_err(|e| e.error)?;
        Ok(())
    }

    fn file(&self, head: &[Vec<u8>]) -> PathBuf {
        // FNV-1a: stable across builds, unlike std's hasher.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in encode(head) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.dir.join(format!("{h:016x}"))
    }
}

/// The probe's identity: its key, its cwd when that matters, and `PATH`. The cwd matters
/// for a relative compiler path, and for a bare name when `PATH` holds a relative (or
/// empty) entry, which names another directory in another cwd.
fn key_fields(key: &ProbeKey, cwd: &Path, path_env: Option<&OsStr>) -> Vec<Vec<u8>> {
    let relative_path_entry = !key.compiler.contains(&b'/')
        && std::env::split_paths(path_env.unwrap_or_default()).any(|d| !d.is_absolute());
    let cwd_matters = key.cwd.is_some() || relative_path_entry;
    let mut f = vec![
        key.compiler.clone(),
        if cwd_matters {
            cwd.as_os_str().as_bytes().to_vec()
        } else {
            b"-".to_vec()
        },
        key.language.clone(),
        path_env.map_or(b"-".to_vec(), |p| p.as_bytes().to_vec()),
        key.flags.len().to_string().into_bytes(),
    ];
    f.extend(key.flags.iter().cloned());
    f
}

/// The paths whose state the probe's output depends on.
fn depends_on(key: &ProbeKey, cwd: &Path, path_env: Option<&OsStr>, stderr: &[u8]) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    let compiler = OsStr::from_bytes(&key.compiler);
    if key.compiler.contains(&b'/') {
        paths.push(cwd.join(compiler));
    } else {
        // Every PATH entry up to the one that holds it: an earlier one must stay empty.
        for dir in std::env::split_paths(path_env.unwrap_or_default()) {
            let candidate = cwd.join(dir).join(compiler);
            let found = std::fs::metadata(&candidate).is_ok_and(|m| m.is_file());
            paths.push(candidate);
            if found {
                break;
            }
        }
    }
    for line in stderr.split(|&c| c == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let trimmed = trim_start(line);
        if let Some(rest) = trimmed.strip_prefix(b"ignoring nonexistent directory ") {
            paths.push(unquote(rest));
        } else if let Some(rest) = trimmed.strip_prefix(b"Reading specs from ") {
            paths.push(unquote(rest));
        } else if trimmed.len() < line.len() || trimmed.starts_with(b"\"/") {
            // An indented line: a search directory, or a program the driver ran.
            let word = trimmed.strip_prefix(b"\"").unwrap_or(trimmed);
            let end = word
                .iter()
                .position(|&c| c == b' ' || c == b'"')
                .unwrap_or(word.len());
            if word.starts_with(b"/") {
                paths.push(PathBuf::from(OsStr::from_bytes(&word[..end])));
            }
        }
    }
    paths.dedup();
    paths
}

fn trim_start(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    s
}

fn unquote(s: &[u8]) -> PathBuf {
    let s = s.strip_prefix(b"\"").unwrap_or(s);
    let s = s.strip_suffix(b"\"").unwrap_or(s);
    PathBuf::from(OsStr::from_bytes(s))
}

/// Fields as `<length>\n<bytes>\n`.
fn encode(fields: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in fields {
        out.extend_from_slice(f.len().to_string().as_bytes());
        out.push(b'\n');
        out.extend_from_slice(f);
        out.push(b'\n');
    }
    out
}

fn decode(mut b: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut fields = Vec::new();
    while !b.is_empty() {
        let nl = b.iter().position(|&c| c == b'\n')?;
        let len: usize = std::str::from_utf8(&b[..nl]).ok()?.parse().ok()?;
        let body = b.get(nl + 1..nl + 1 + len)?;
        if b.get(nl + 1 + len) != Some(&b'\n') {
            return None;
        }
        fields.push(body.to_vec());
        b = &b[nl + 2 + len..];
    }
    Some(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    fn gcc_key() -> ProbeKey {
        ProbeKey {
            compiler: b"gcc".to_vec(),
            cwd: None,
            language: b"c".to_vec(),
            flags: vec![],
        }
    }

    #[test]
    fn a_saved_probe_is_used_until_a_file_it_depends_on_changes() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        let inc = dir.path().join("inc");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(&inc).unwrap();
        let cc = bin.join("gcc");
        std::fs::write(&cc, "#!/bin/sh\n").unwrap();
        let missing = dir.path().join("later");
        let stderr = format!(
            "ignoring nonexistent directory \"{}\"\n#include <...> search starts here:\n {}\nEnd of search list.\n",
            missing.display(),
            inc.display()
        )
        .into_bytes();
        let out = Output {
            stdout: b"#define __GNUC__ 12\n".to_vec(),
            stderr,
        };
        let cache = ProbeCache::new(dir.path().join("cache"));
        let path = bin.as_os_str();
        let cwd = Path::new("/");
        // As if probed two seconds after the files above were written (an entry is
        // written only when nothing changed in the second before the probe).
        cache.store(&gcc_key(), cwd, Some(path), &out, now() + 2);
        assert_eq!(cache.load(&gcc_key(), cwd, Some(path)), Some(out.clone()));
        let mode = std::fs::metadata(dir.path().join("cache")).unwrap().mode();
        assert_eq!(mode & 0o777, 0o700);
        // Another key, another PATH: not this entry.
        let mut cxx = gcc_key();
        cxx.language = b"c++".to_vec();
        assert_eq!(cache.load(&cxx, cwd, Some(path)), None);
        assert_eq!(cache.load(&gcc_key(), cwd, Some(OsStr::new("/x"))), None);
        // A directory the compiler ignored now exists.
        std::fs::create_dir(&missing).unwrap();
        assert_eq!(cache.load(&gcc_key(), cwd, Some(path)), None);
        std::fs::remove_dir(&missing).unwrap();
        assert!(cache.load(&gcc_key(), cwd, Some(path)).is_some());
        // The compiler was replaced.
        std::fs::remove_file(&cc).unwrap();
        std::fs::write(&cc, "#!/bin/sh\n# new\n").unwrap();
        assert_eq!(cache.load(&gcc_key(), cwd, Some(path)), None);
    }

    #[test]
    fn a_probe_racing_a_change_is_not_saved() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("gcc"), "x").unwrap();
        let cache = ProbeCache::new(dir.path().join("cache"));
        let out = Output {
            stdout: vec![],
            stderr: vec![],
        };
        cache.store(
            &gcc_key(),
            Path::new("/"),
            Some(dir.path().as_os_str()),
            &out,
            now(),
        );
        assert_eq!(
            cache.load(&gcc_key(), Path::new("/"), Some(dir.path().as_os_str())),
            None
        );
    }

    #[test]
    fn what_gcc_and_clang_output_depends_on() {
        let stderr = b"Reading specs from /opt/specs\n\
            COLLECT_GCC=gcc\n \
            /usr/lib/gcc/x86_64-linux-gnu/12/cc1 -E -quiet -v /dev/null\n\
            ignoring nonexistent directory \"/usr/local/include/x86_64-linux-gnu\"\n\
            \x20\"/usr/lib/llvm-14/bin/clang\" -cc1 -triple x86_64\n\
            #include <...> search starts here:\n \
            /usr/include\n\
            End of search list.\n";
        let got = depends_on(&gcc_key(), Path::new("/"), Some(OsStr::new("")), stderr);
        let want: Vec<PathBuf> = [
            "/gcc",
            "/opt/specs",
            "/usr/lib/gcc/x86_64-linux-gnu/12/cc1",
            "/usr/local/include/x86_64-linux-gnu",
            "/usr/lib/llvm-14/bin/clang",
            "/usr/include",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_relative_path_entry_makes_the_cwd_part_of_the_key() {
        let abs = key_fields(&gcc_key(), Path::new("/a"), Some(OsStr::new("/usr/bin")));
        let abs_b = key_fields(&gcc_key(), Path::new("/b"), Some(OsStr::new("/usr/bin")));
        assert_eq!(abs, abs_b);
        let rel = key_fields(
            &gcc_key(),
            Path::new("/a"),
            Some(OsStr::new("bin:/usr/bin")),
        );
        let rel_b = key_fields(
            &gcc_key(),
            Path::new("/b"),
            Some(OsStr::new("bin:/usr/bin")),
        );
        assert_ne!(rel, rel_b);
    }

    #[test]
    fn fields_round_trip_with_any_bytes() {
        let f = vec![b"".to_vec(), b"a\nb".to_vec(), vec![0, 255, b'\n']];
        assert_eq!(decode(&encode(&f)), Some(f));
        assert_eq!(decode(b"5\nab\n"), None);
    }
}
