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
use std::process::{Child, Command, Stdio};
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
    finish(key, spawn(key, cwd, path_env)?)
}

/// Starts the compiler; [`finish`] collects its output. Its pipes are read only then, so
/// a compiler that writes more than a pipe holds waits for [`finish`] (it never blocks
/// for good).
pub fn spawn(
    key: &ProbeKey,
    cwd: &Path,
    path_env: Option<&std::ffi::OsStr>,
) -> Result<Child, String> {
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
    cmd.spawn().map_err(|e| exec_error(key, &e))
}

fn exec_error(key: &ProbeKey, e: &std::io::Error) -> String {
    format!(
        "{}error executing '{}': {e}.",
        error_head(key),
        key.command_text()
    )
}

/// Waits for a compiler [`spawn`] started; its output if it succeeded.
pub fn finish(key: &ProbeKey, child: Child) -> Result<Output, String> {
    let out = child.wait_with_output().map_err(|e| exec_error(key, &e))?;
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

/// The executable `compiler` (argv[0]) names, as a realpath: looked up in `path_env`
/// when it has no `/`, else taken relative to `cwd`.
pub fn resolve_compiler(
    compiler: &[u8],
    cwd: &Path,
    path_env: Option<&std::ffi::OsStr>,
) -> Option<PathBuf> {
    use common::location::is_executable;
    let name = Path::new(std::ffi::OsStr::from_bytes(compiler));
    let found = if compiler.contains(&b'/') {
        Some(cwd.join(name)).filter(|p| is_executable(p))
    } else {
        std::env::split_paths(path_env?)
            .map(|d| cwd.join(d).join(name))
            .find(|p| is_executable(p))
    };
    std::fs::canonicalize(found?).ok()
}

/// A guess at the default `#include <...>` directories of the GCC whose executable is
/// `compiler` (a realpath, such as `/usr/bin/x86_64-linux-gnu-g++-12`) for `language`:
/// the directories of the version and target its name gives (else the newest installed
/// GCC and libstdc++, and the first multiarch target), as realpaths. `None` when the name
/// is not a GCC driver's (`gcc`, `g++`, `cc`, `c++`, `cpp`, with an optional `<target>-`
/// prefix and `-<version>` suffix): clang and others keep their directories elsewhere.
///
/// It is only a guess: the analysis may walk with it while the compiler is probed, and
/// keeps that work only where the probe gives the same directories.
pub fn guess_defaults(compiler: &Path, language: &[u8]) -> Option<Defaults> {
    fn version_key(p: &Path) -> Vec<u32> {
        p.file_name()
            .and_then(|n| n.to_str())
            .map(|n| {
                n.split('.')
                    .map(|c| c.parse::<u32>().unwrap_or(0))
                    .collect()
            })
            .unwrap_or_default()
    }
    fn newest(pattern: &str) -> Option<PathBuf> {
        let mut found: Vec<PathBuf> = glob::glob(pattern)
            .ok()?
            .flatten()
            .filter(|p| p.is_dir())
            .collect();
        // By version number: 12 after 9.
        found.sort_by_key(|p| version_key(p));
        found.pop()
    }
    let name = compiler.file_name()?.to_str()?;
    // `<target>-<driver>-<version>`, each part but the driver optional.
    let (rest, version) = match name.rsplit_once('-') {
        Some((r, v)) if v.starts_with(|c: char| c.is_ascii_digit()) => (r, Some(v)),
        _ => (name, None),
    };
    let (target, driver) = match rest.rsplit_once('-') {
        Some((t, d)) => (Some(t), d),
        None => (None, rest),
    };
    if !matches!(driver, "gcc" | "g++" | "cc" | "c++" | "cpp") {
        return None;
    }
    let pick = |dir: &str, pattern: &str| -> Option<PathBuf> {
        version
            .map(|v| PathBuf::from(format!("{dir}/{v}")))
            .filter(|p| p.is_dir())
            .or_else(|| newest(pattern))
    };
    let gcc = match target {
        Some(t) => pick(&format!("/usr/lib/gcc/{t}"), &format!("/usr/lib/gcc/{t}/*")),
        None => None,
    }
    .or_else(|| newest("/usr/lib/gcc/*-linux-*/*"));
    let target = gcc
        .as_ref()
        .and_then(|g| g.parent()?.file_name()?.to_str().map(str::to_owned));
    let mut angle = Vec::new();
    let cxx = language.starts_with(b"c++") || language.starts_with(b"objective-c++");
    if cxx {
        if let Some(lib) = pick("/usr/include/c++", "/usr/include/c++/*") {
            angle.push(lib.clone());
            if let (Some(t), Some(v)) = (&target, lib.file_name().and_then(|v| v.to_str())) {
                angle.push(PathBuf::from(format!("/usr/include/{t}/c++/{v}")));
            }
            angle.push(lib.join("backward"));
        }
    }
    if let Some(g) = &gcc {
        angle.push(g.join("include"));
    }
    angle.push(PathBuf::from("/usr/local/include"));
    if let Some(t) = &target {
        angle.push(PathBuf::from(format!("/usr/include/{t}")));
    }
    angle.push(PathBuf::from("/usr/include"));
    let angle = angle
        .iter()
        .filter_map(|d| std::fs::canonicalize(d).ok().filter(|d| d.is_dir()))
        .collect();
    Some(Defaults {
        angle,
        ..Defaults::default()
    })
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
            d.macros.iter().any(|m| m.name() == b"__GNUC__"),
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
    use super::*;

    #[test]
    fn the_guess_for_the_installed_gcc_is_what_its_probe_finds() {
        let path = std::ffi::OsStr::new("/usr/bin:/bin");
        for (cc, lang) in [
            ("gcc", &b"c"[..]),
            ("g++", b"c++"),
            ("cc", b"c"),
            ("c++", b"c++"),
        ] {
            let Some(real) = resolve_compiler(cc.as_bytes(), Path::new("/"), Some(path)) else {
                continue;
            };
            let key = ProbeKey {
                compiler: cc.as_bytes().to_vec(),
                cwd: None,
                language: lang.to_vec(),
                flags: vec![],
            };
            let probed = probe(&key, Path::new("/"), Some(path)).unwrap();
            if real.to_string_lossy().contains("clang") {
                assert!(guess_defaults(&real, lang).is_none());
                continue;
            }
            let guess = guess_defaults(&real, lang).expect("a GCC driver");
            assert_eq!(guess.angle, probed.angle, "{cc} ({})", real.display());
        }
    }

    #[test]
    fn only_gcc_driver_names_are_guessed() {
        for name in [
            "clang",
            "clang++-14",
            "icc",
            "tcc",
            "x86_64-linux-gnu-clang",
            "gcc-ar",
        ] {
            assert!(
                guess_defaults(&Path::new("/usr/bin").join(name), b"c").is_none(),
                "{name}"
            );
        }
        for name in [
            "gcc",
            "g++-12",
            "x86_64-linux-gnu-g++-12",
            "cc",
            "c++",
            "cpp-12",
        ] {
            assert!(
                guess_defaults(&Path::new("/usr/bin").join(name), b"c").is_some(),
                "{name}"
            );
        }
        assert!(resolve_compiler(b"no-such-compiler", Path::new("/"), None).is_none());
    }

    #[test]
    fn guessed_directories_exist() {
        for lang in [&b"c"[..], b"c++"] {
            let Some(g) = guess_defaults(Path::new("/usr/bin/gcc"), lang) else {
                panic!("gcc is a GCC driver's name");
            };
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
