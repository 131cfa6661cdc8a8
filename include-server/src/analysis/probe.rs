//! The compiler's default include directories (spec 5.3, improved): the compiler is run
//! once per (compiler, cwd when the compiler path is relative, language, flags that change
//! the defaults) as `<cc> <flags> -x <lang> -v -dM -E /dev/null`, with only
//! `PATH` in its environment, and the `#include "..."` and `#include <...>` sections of its
//! output are read and realpathed. The same run uses `-dM`, so its standard output holds
//! the compiler's predefined macros (`__x86_64__`, `linux`, `__cplusplus`, ...), which
//! enter the macro table: computed includes that use them expand as the compiler would.
//!
//! The flags passed are the ones that select another set of default directories:
//! `--sysroot`, `-isysroot`, `-nostdinc`, `-nostdinc++`, `-target`/`--target=`, `-B`,
//! `-m*` (multilib), `-specs=`, `-stdlib=`, `--gcc-toolchain`, `-resource-dir`,
//! `-imultilib`, `-std=`, `--config` and friends ([`super::command`] collects them).

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use super::probe_cache::Output;
use super::scan::{self, Define};

/// What one probe found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Defaults {
    /// Realpaths of the `#include "..."` section (searched for quote includes only, after
    /// `-iquote` dirs).
    pub quote: Vec<PathBuf>,
    /// Realpaths of the `#include <...>` section, in order.
    pub angle: Vec<PathBuf>,
    /// The predefined macros.
    pub macros: Vec<Define>,
}

/// The cache key of a probe.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProbeKey {
    /// argv[0] as received.
    pub compiler: Vec<u8>,
    /// The cwd, only when argv[0] is a relative path with a `/`.
    pub cwd: Option<PathBuf>,
    /// The `-x` language.
    pub language: Vec<u8>,
    /// Flags that change the defaults.
    pub flags: Vec<Vec<u8>>,
}

impl ProbeKey {
    /// The probe's argv (without argv[0]).
    pub fn args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = self
            .flags
            .iter()
            .map(|f| std::ffi::OsStr::from_bytes(f).to_os_string())
            .collect();
        a.push("-x".into());
        a.push(std::ffi::OsStr::from_bytes(&self.language).to_os_string());
        for s in ["-v", "-dM", "-E", "/dev/null"] {
            a.push(s.into());
        }
        a
    }

    fn command_text(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.compiler).into_owned();
        for a in self.args() {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    }
}

/// Runs the probe in `cwd`. The error text follows `compiler_defaults.py`'s messages.
pub fn probe(
    key: &ProbeKey,
    cwd: &Path,
    path_env: Option<&std::ffi::OsStr>,
) -> Result<Arc<Defaults>, String> {
    interpret(key, &run(key, cwd, path_env)?)
}

fn error_head(key: &ProbeKey) -> String {
    format!(
        "couldn't determine default system include directories\nfor compiler '{}', language '{}':\n",
        String::from_utf8_lossy(&key.compiler),
        String::from_utf8_lossy(&key.language)
    )
}

/// Runs the compiler; its output if it succeeded.
pub fn run(
    key: &ProbeKey,
    cwd: &Path,
    path_env: Option<&std::ffi::OsStr>,
) -> Result<Output, String> {
    let compiler = std::ffi::OsStr::from_bytes(&key.compiler);
    let mut cmd = Command::new(compiler);
    cmd.args(key.args())
        .env_clear()
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(p) = path_env {
        cmd.env("PATH", p);
    }
    let out = cmd.output().map_err(|e| {
        format!(
            "{}error executing '{}': {e}.",
            error_head(key),
            key.command_text()
        )
    })?;
    if !out.status.success() {
        let mut text = out.stderr;
        text.extend_from_slice(&out.stdout);
        return Err(format!(
            "{}command '{}' exited with status '{}'.\n Command output:\n{}",
            error_head(key),
            key.command_text(),
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&text)
        ));
    }
    Ok(Output {
        stdout: out.stdout,
        stderr: out.stderr,
    })
}

/// Reads a successful probe's output: the search lists and the predefined macros.
pub fn interpret(key: &ProbeKey, out: &Output) -> Result<Arc<Defaults>, String> {
    let mut text = out.stderr.clone();
    text.extend_from_slice(&out.stdout);
    let macros = scan::scan(&out.stdout).defines;
    parse(&text)
        .map(|d| Arc::new(Defaults { macros, ..d }))
        .ok_or_else(|| {
            format!(
                "{}couldn't parse output of '{}'.\nReceived:\n{}",
                error_head(key),
                key.command_text(),
                String::from_utf8_lossy(&text)
            )
        })
}

/// A guess at a GCC-style compiler's default `#include <...>` directories for `language`,
/// from the directories that exist (the newest GCC and libstdc++ versions, the first
/// multiarch triplet). It is only used to read ahead while the compiler is probed: the
/// analysis itself always uses the probe.
pub fn guess_defaults(language: &[u8]) -> Defaults {
    fn newest(pattern: &str) -> Option<PathBuf> {
        let mut found: Vec<PathBuf> = glob::glob(pattern)
            .ok()?
            .flatten()
            .filter(|p| p.is_dir())
            .collect();
        // By version number: 12 after 9.
        found.sort_by_key(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .map(|n| {
                    n.split('.')
                        .map(|c| c.parse::<u32>().unwrap_or(0))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        });
        found.pop()
    }
    let mut angle = Vec::new();
    let gcc = newest("/usr/lib/gcc/*-linux-*/*");
    let triplet = gcc
        .as_ref()
        .and_then(|g| g.parent()?.file_name()?.to_str().map(str::to_owned));
    let cxx = language.starts_with(b"c++") || language.starts_with(b"objective-c++");
    if cxx {
        if let Some(lib) = newest("/usr/include/c++/*") {
            if let (Some(t), Some(v)) = (&triplet, lib.file_name().and_then(|v| v.to_str())) {
                angle.push(PathBuf::from(format!("/usr/include/{t}/c++/{v}")));
            }
            angle.insert(0, lib.clone());
            angle.push(lib.join("backward"));
        }
    }
    if let Some(g) = &gcc {
        angle.push(g.join("include"));
    }
    angle.push(PathBuf::from("/usr/local/include"));
    if let Some(t) = &triplet {
        angle.push(PathBuf::from(format!("/usr/include/{t}")));
    }
    angle.push(PathBuf::from("/usr/include"));
    angle.retain(|d| d.is_dir());
    Defaults {
        angle,
        ..Defaults::default()
    }
}

/// Reads the search-list sections of `-v` output; `None` if the `<...>` section is
/// missing.
pub fn parse(text: &[u8]) -> Option<Defaults> {
    let mut d = Defaults::default();
    let mut section = 0u8; // 1: quote, 2: angle
    let mut saw_angle = false;
    for line in text.split(|&c| c == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.starts_with(b"#include \"...\" search starts here:") {
            section = 1;
            continue;
        }
        if line.starts_with(b"#include <...> search starts here:") {
            section = 2;
            saw_angle = true;
            continue;
        }
        if line.starts_with(b"End of search list") {
            if section == 2 {
                break;
            }
            section = 0;
            continue;
        }
        if section == 0 || line.ends_with(b" (framework directory)") {
            continue;
        }
        for word in line
            .split(|c| c.is_ascii_whitespace())
            .filter(|w| !w.is_empty())
        {
            let p = Path::new(std::ffi::OsStr::from_bytes(word));
            let real = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
            let list = if section == 1 {
                &mut d.quote
            } else {
                &mut d.angle
            };
            if !list.contains(&real) {
                list.push(real);
            }
        }
    }
    saw_angle.then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_gcc_output() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("a");
        std::fs::create_dir(&a).unwrap();
        let text = format!(
            "ignoring nonexistent directory \"/nope\"\n#include \"...\" search starts here:\n \
             {q}\n#include <...> search starts here:\n {a}\n /usr/include\n \
             /Library/Frameworks (framework directory)\nEnd of search list.\n",
            q = t.path().display(),
            a = a.join("../a").display()
        );
        let d = parse(text.as_bytes()).unwrap();
        assert_eq!(d.quote, vec![std::fs::canonicalize(t.path()).unwrap()]);
        assert_eq!(
            d.angle,
            vec![
                std::fs::canonicalize(&a).unwrap(),
                PathBuf::from("/usr/include")
            ]
        );
        assert!(parse(b"garbage\n").is_none());
    }

    #[test]
    fn probes_the_real_gcc() {
        let key = ProbeKey {
            compiler: b"gcc".to_vec(),
            cwd: None,
            language: b"c".to_vec(),
            flags: vec![],
        };
        let d = probe(
            &key,
            Path::new("/"),
            Some(std::ffi::OsStr::new("/usr/bin:/bin")),
        )
        .unwrap();
        assert!(
            d.angle.iter().any(|p| p == Path::new("/usr/include")),
            "{d:?}"
        );
        assert!(
            d.macros.iter().any(|m| m.name == b"__GNUC__"),
            "{:?}",
            d.macros
        );
        let nostd = ProbeKey {
            flags: vec![b"-nostdinc".to_vec()],
            ..key.clone()
        };
        let d = probe(
            &nostd,
            Path::new("/"),
            Some(std::ffi::OsStr::new("/usr/bin:/bin")),
        )
        .unwrap();
        assert!(d.angle.is_empty(), "{d:?}");
        let bad = ProbeKey {
            compiler: b"/nonexistent/cc".to_vec(),
            ..key
        };
        let e = probe(&bad, Path::new("/"), None).unwrap_err();
        assert!(e.contains("error executing"), "{e}");
    }
}
#[cfg(test)]
mod guess_tests {
    #[test]
    fn guessed_directories_exist() {
        for lang in [&b"c"[..], b"c++"] {
            let g = super::guess_defaults(lang);
            assert!(g.angle.iter().all(|d| d.is_dir()), "{g:?}");
            if std::path::Path::new("/usr/include").is_dir() {
                assert_eq!(
                    g.angle.last().unwrap(),
                    std::path::Path::new("/usr/include")
                );
            }
        }
    }
}
