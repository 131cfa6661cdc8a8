//! `-v` / `-w`: checking a computed closure against the real preprocessor.
//!
//! With `-v` the server runs the request's compiler with `-M` (the compile command with
//! its output, dependency-file and compile-mode options removed), reads the make-style
//! dependency list, and fails the request if a dependency outside the compiler's system
//! directories is missing from the closure. With `-w` it writes the closure next to the
//! object as `<object without extension>.d_approx` (one realpath per line), and with `-v`
//! also the preprocessor's list as `.d_exact`. This is how distcc's later versions fixed
//! the two options (in 3.4 they crash the server).

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::analysis::Closure;

/// Options removed from the compile command, with the number of following arguments
/// they consume.
const DROPPED: &[(&str, usize)] = &[
    ("-c", 0),
    ("-S", 0),
    ("-E", 0),
    ("-M", 0),
    ("-MM", 0),
    ("-MD", 0),
    ("-MMD", 0),
    ("-MP", 0),
    ("-MG", 0),
    ("-o", 1),
    ("-MF", 1),
    ("-MT", 1),
    ("-MQ", 1),
];

/// Joined forms (`-ofile`, `-MFfile`, ...) removed as well.
const DROPPED_PREFIXES: &[&str] = &["-MF", "-MT", "-MQ", "-o"];

/// The preprocessor's dependencies of the compile `argv` run in `cwd`, as written.
pub fn exact_dependencies(
    cwd: &Path,
    argv: &[Vec<u8>],
    path_env: Option<&OsStr>,
) -> Result<Vec<PathBuf>, String> {
    let (compiler, args) = argv.split_first().ok_or("empty command line")?;
    let mut cmd = Command::new(OsStr::from_bytes(compiler));
    let mut skip = 0;
    for arg in args {
        if skip > 0 {
            skip -= 1;
            continue;
        }
        if let Some(&(_, n)) = DROPPED.iter().find(|(o, _)| o.as_bytes() == &arg[..]) {
            skip = n;
            continue;
        }
        if DROPPED_PREFIXES
            .iter()
            .any(|p| arg.starts_with(p.as_bytes()))
        {
            continue;
        }
        cmd.arg(OsStr::from_bytes(arg));
    }
    cmd.arg("-M")
        .current_dir(cwd)
        .env_clear()
        .stdin(Stdio::null());
    if let Some(path) = path_env {
        cmd.env("PATH", path);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run '{}': {e}", String::from_utf8_lossy(compiler)))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "the preprocessor failed ({}): {}",
            out.status,
            err.lines().next().unwrap_or("")
        ));
    }
    Ok(parse_make_deps(&out.stdout))
}

/// The prerequisites of a make rule as `gcc -M` writes it (escaped spaces, `$$`,
/// backslash-newline continuations); the target is dropped.
pub fn parse_make_deps(text: &[u8]) -> Vec<PathBuf> {
    let mut words: Vec<Vec<u8>> = Vec::new();
    let mut cur = Vec::new();
    let mut i = 0;
    let mut in_target = true;
    while i < text.len() {
        let b = text[i];
        match b {
            b'\\' if text.get(i + 1) == Some(&b'\n') => i += 1,
            b'\\' if text.get(i + 1) == Some(&b' ') => {
                cur.push(b' ');
                i += 1;
            }
            b'$' if text.get(i + 1) == Some(&b'$') => {
                cur.push(b'$');
                i += 1;
            }
            b':' if in_target && text.get(i + 1).map_or(true, |c| c.is_ascii_whitespace()) => {
                in_target = false;
                cur.clear();
            }
            b' ' | b'\t' | b'\n' | b'\r' => {
                if !in_target && !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
                if b == b'\n' && !in_target {
                    // `-M` writes one rule; a second line would be another rule.
                    in_target = true;
                }
                if in_target {
                    cur.clear();
                }
            }
            _ => cur.push(b),
        }
        i += 1;
    }
    if !in_target && !cur.is_empty() {
        words.push(cur);
    }
    words
        .into_iter()
        .map(|w| PathBuf::from(OsString::from_vec(w)))
        .collect()
}

/// The dependencies (made absolute against `cwd` and resolved) that are neither in the
/// closure nor under one of its system directories.
pub fn missing_from(closure: &Closure, cwd: &Path, deps: &[PathBuf]) -> Vec<PathBuf> {
    let have: HashSet<&Path> = closure.files.iter().map(|f| f.realpath.as_path()).collect();
    deps.iter()
        .filter_map(|d| {
            let abs = cwd.join(d);
            let real = std::fs::canonicalize(&abs).unwrap_or(abs);
            let system = closure.system_dirs.iter().any(|s| real.starts_with(s));
            (!system && !have.contains(real.as_path())).then_some(real)
        })
        .collect()
}

/// `<object without extension>` for `-w`, from the command's `-o`; `None` without one.
pub fn closure_file_prefix(cwd: &Path, argv: &[Vec<u8>]) -> Option<PathBuf> {
    let mut out = None;
    let mut it = argv.iter().skip(1);
    while let Some(a) = it.next() {
        if a == b"-o" {
            out = it.next().cloned();
        } else if let Some(rest) = a.strip_prefix(b"-o") {
            out = Some(rest.to_vec());
        }
    }
    let out = cwd.join(OsStr::from_bytes(&out?));
    Some(out.with_extension(""))
}

/// Writes one path per line to `path`.
pub fn write_list(path: &Path, list: &[PathBuf]) -> std::io::Result<()> {
    let mut text = Vec::new();
    for p in list {
        text.extend_from_slice(p.as_os_str().as_bytes());
        text.push(b'\n');
    }
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::ClosureFile;

    #[test]
    fn make_rules_are_parsed() {
        let text = b"x.o: x.c /usr/include/stdio.h a\\ b.h \\\n  inc/c$$.h\n";
        assert_eq!(
            parse_make_deps(text),
            ["x.c", "/usr/include/stdio.h", "a b.h", "inc/c$.h"]
                .iter()
                .map(PathBuf::from)
                .collect::<Vec<_>>()
        );
        assert!(parse_make_deps(b"x.o:\n").is_empty());
    }

    #[test]
    fn real_preprocessor_dependencies_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir(cwd.join("inc")).unwrap();
        std::fs::write(
            cwd.join("x.c"),
            "#include <stddef.h>\n#include \"inc/a.h\"\n#include \"b.h\"\n",
        )
        .unwrap();
        std::fs::write(cwd.join("inc/a.h"), "").unwrap();
        std::fs::write(cwd.join("b.h"), "").unwrap();
        let argv: Vec<Vec<u8>> = ["gcc", "-c", "x.c", "-o", "out/x.o", "-MD", "-MFx.d"]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        let deps = exact_dependencies(&cwd, &argv, Some(OsStr::new("/usr/bin:/bin"))).unwrap();
        assert!(deps.contains(&PathBuf::from("inc/a.h")), "{deps:?}");
        let mut closure = Closure {
            files: ["x.c", "inc/a.h"]
                .iter()
                .map(|f| ClosureFile {
                    realpath: cwd.join(f),
                    abs_spelling: None,
                })
                .collect::<Vec<_>>()
                .into(),
            paths_used: Vec::new(),
            system_dirs: Default::default(),
            ids: None,
        };
        // stddef.h lives in gcc's own directory: without system dirs it is missing too.
        let missing = missing_from(&closure, &cwd, &deps);
        assert!(missing.contains(&cwd.join("b.h")), "{missing:?}");
        closure.system_dirs = std::sync::Arc::new(vec![PathBuf::from("/usr")]);
        assert_eq!(missing_from(&closure, &cwd, &deps), vec![cwd.join("b.h")]);
        assert_eq!(closure_file_prefix(&cwd, &argv), Some(cwd.join("out/x")));
        let err = exact_dependencies(
            &cwd,
            &[b"gcc".to_vec(), b"-c".to_vec(), b"nonexist.c".to_vec()],
            Some(OsStr::new("/usr/bin:/bin")),
        )
        .unwrap_err();
        assert!(err.starts_with("the preprocessor failed"), "{err}");
    }
}
