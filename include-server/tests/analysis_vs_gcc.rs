//! The analysis against GCC itself: for every fixture translation unit, the closure holds
//! every non-system file `gcc -MM` lists with the same flags, and every file `gcc -M`
//! reads is either in the closure or was reached by the walk (system files; a system file
//! only an approximated computed include opens may be left unwalked).
//!
//! The fixture (`tests/fixtures/analysis/proj`) is copied to a temp dir per run; the
//! absolute `-I` dir and the symlinked include dir are made there at test time.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use include_server::analysis::{Analyzer, AnalyzerConfig, Closure};

/// distcc's budget (spec 2.5), for optimized builds; an unoptimized test build runs the
/// same analysis about eight times slower, so it gets ten times the budget.
const BUDGET: Duration = Duration::from_millis(if cfg!(debug_assertions) {
    38_000
} else {
    3_800
});

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            fs::copy(e.path(), dst).unwrap();
        }
    }
}

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    analyzer: Analyzer,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fs::canonicalize(tmp.path()).unwrap().join("proj");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/analysis/proj");
    copy_tree(&src, &dir);
    std::os::unix::fs::symlink("real_linked", dir.join("linkdir")).unwrap();
    let path = common::env::Env::from_process()
        .get(common::env::PATH)
        .map(|p| p.to_os_string());
    let analyzer = Analyzer::new(AnalyzerConfig {
        probe_path: path,
        // As the launcher runs it: with a helper reading ahead of the walk.
        prefetch_helpers: Some(1),
        ..Default::default()
    });
    Fixture {
        _tmp: tmp,
        dir,
        analyzer,
    }
}

fn words(s: &str, dir: &Path) -> Vec<String> {
    s.split(' ')
        .map(|w| w.replace("@DIR@", &dir.display().to_string()))
        .collect()
}

/// The files of a `gcc -M`/`-MM` rule, realpathed.
fn make_deps(compiler: &str, mode: &str, args: &[String], cwd: &Path) -> BTreeSet<PathBuf> {
    let out = Command::new(compiler)
        .arg(mode)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{compiler} {mode} {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap().replace("\\\n", " ");
    let (_, deps) = text.split_once(':').expect("a make rule");
    deps.split_whitespace()
        .map(|d| fs::canonicalize(cwd.join(d)).unwrap())
        .collect()
}

fn realpaths(c: &Closure) -> BTreeSet<PathBuf> {
    c.files.iter().map(|f| f.realpath.clone()).collect()
}

fn reached(c: &Closure) -> BTreeSet<PathBuf> {
    let mut s = realpaths(c);
    s.extend(
        c.all_paths_used()
            .iter()
            .filter_map(|p| fs::canonicalize(p).ok()),
    );
    s
}

/// Analyses `args` and checks the closure against GCC; returns it.
fn check(fx: &Fixture, compiler: &str, args: &[String]) -> Closure {
    let mut argv = vec![compiler.as_bytes().to_vec()];
    argv.extend(args.iter().map(|a| a.as_bytes().to_vec()));
    argv.push(b"-c".to_vec());
    let started = Instant::now();
    let closure = fx
        .analyzer
        .analyze(&fx.dir, &argv, BUDGET)
        .unwrap_or_else(|e| panic!("{compiler} {args:?}: {e}"));
    let took = started.elapsed();
    let have = realpaths(&closure);
    let mm = make_deps(compiler, "-MM", args, &fx.dir);
    let missing: Vec<_> = mm.difference(&have).collect();
    assert!(
        missing.is_empty(),
        "{compiler} {args:?}: closure misses {missing:?}\nclosure: {have:?}"
    );
    let all = make_deps(compiler, "-M", args, &fx.dir);
    let seen = reached(&closure);
    // An approximated computed include ships every file it could open outside the
    // system dirs instead of walking into the system files it names.
    let approximated = fx.analyzer.stats().approximated_evaluations > 0;
    let unreached: Vec<_> = all
        .difference(&seen)
        .filter(|f| !(approximated && closure.system_dirs.iter().any(|d| f.starts_with(d))))
        .collect();
    assert!(
        unreached.is_empty(),
        "{compiler} {args:?}: walk never reached {unreached:?}"
    );
    for f in closure.files.iter() {
        assert!(
            !closure
                .system_dirs
                .iter()
                .any(|d| f.realpath.starts_with(d)),
            "system file shipped: {}",
            f.realpath.display()
        );
    }
    eprintln!(
        "{compiler} {}: {} files shipped, {} paths, {took:?}",
        args.last().unwrap(),
        closure.files.len(),
        closure.all_paths_used().len()
    );
    closure
}

const C_FLAGS: &str = "-include forced.h -I@DIR@/absdir -Ilinkdir -Inext1 -Inext2 -iquote qdir \
                       -isystem sysdir -idirafter afterdir -DPLAT=posix c_main.c";
const CXX_FLAGS: &str = "-include forced.h -I@DIR@/absdir -Ilinkdir -Inext1 -Inext2 cxx_main.cpp";

fn shipped(c: &Closure, dir: &Path) -> BTreeSet<String> {
    c.files
        .iter()
        .map(|f| {
            f.realpath
                .strip_prefix(dir)
                .unwrap_or(&f.realpath)
                .display()
                .to_string()
        })
        .collect()
}

#[test]
fn c_translation_unit() {
    let fx = fixture();
    let c = check(&fx, "gcc", &words(C_FLAGS, &fx.dir));
    let names = shipped(&c, &fx.dir);
    // Precision: comments, raw strings and unused macro values bring nothing in.
    for absent in ["in_comment.h", "platform/win/impl.h"] {
        assert!(!names.contains(absent), "{absent} shipped: {names:?}");
    }
    // `#if 0` is not evaluated: conservative.
    assert!(names.contains("dead_branch.h"));
    // -isystem files are not compiler defaults: shipped.
    assert!(names.contains("sysdir/sys_like.h") && names.contains("sysdir/sys_helper.h"));
    assert_eq!(c.files[0].realpath, fx.dir.join("c_main.c"));
    // The absolute -I dir gives `.abs` spellings (the #line rule); the others do not.
    let spelling = |rel: &str| {
        c.files
            .iter()
            .find(|f| f.realpath == fx.dir.join(rel))
            .unwrap()
            .abs_spelling
            .clone()
    };
    assert_eq!(
        spelling("absdir/abs_helper.h"),
        Some(fx.dir.join("absdir/abs_helper.h"))
    );
    assert_eq!(spelling("real_linked/linked.h"), None);
    // Textual paths keep `..` and the symlink, for the shadow tree.
    assert!(c.all_paths_used().contains(&fx.dir.join("sub/../x.h")));
    assert!(c
        .all_paths_used()
        .contains(&fx.dir.join("linkdir/linked_helper.h")));
}

#[test]
fn cxx_translation_unit() {
    let fx = fixture();
    let c = check(&fx, "g++", &words(CXX_FLAGS, &fx.dir));
    let names = shipped(&c, &fx.dir);
    assert!(!names.contains("raw_string.h"), "{names:?}");
    assert!(names.contains("modules/alpha.hpp"), "{names:?}");
}

#[test]
fn nostdinc_translation_unit() {
    // As the Linux kernel compiles: no default directories, GCC's own headers through
    // -isystem, the tree's headers through -I, and a header forced with -include.
    let fx = fixture();
    let out = Command::new("gcc")
        .arg("-print-file-name=include")
        .output()
        .unwrap();
    let gcc_include = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let args: Vec<String> = [
        "-nostdinc",
        "-isystem",
        &gcc_include,
        "-Inostd/include",
        "-include",
        "nostd/include/linux/kconfig.h",
        "nostd/k.c",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let c = check(&fx, "gcc", &args);
    let names = shipped(&c, &fx.dir);
    for f in [
        "nostd/k.c",
        "nostd/include/linux/kconfig.h",
        "nostd/include/generated/autoconf.h",
        "nostd/include/linux/types.h",
        "nostd/local.h",
    ] {
        assert!(names.contains(f), "{f} not shipped: {names:?}");
    }
    // No compiler defaults: nothing is taken as present on the server. distccd moves an
    // absolute -isystem directory under its temp root, so GCC's headers are shipped too.
    assert!(c.system_dirs.is_empty(), "{:?}", c.system_dirs);
    let gcc_dir = fs::canonicalize(&gcc_include).unwrap();
    for h in ["stddef.h", "stdarg.h"] {
        let real = fs::canonicalize(gcc_dir.join(h)).unwrap();
        assert!(
            c.files.iter().any(|f| f.realpath == real),
            "{h} not shipped: {names:?}"
        );
    }
}

/// A closure as sets (the order of files after the source may differ between a cold
/// request, whose computed includes resolve in a later fixpoint round, and a warm one).
type ClosureSets = (
    PathBuf,
    BTreeSet<(PathBuf, Option<PathBuf>)>,
    BTreeSet<PathBuf>,
    Vec<PathBuf>,
);

fn sets(c: &Closure) -> ClosureSets {
    (
        c.files[0].realpath.clone(),
        c.files
            .iter()
            .map(|f| (f.realpath.clone(), f.abs_spelling.clone()))
            .collect(),
        c.all_paths_used().iter().cloned().collect(),
        c.system_dirs.to_vec(),
    )
}

#[test]
fn requests_share_and_survive_resets() {
    let fx = fixture();
    let first = sets(&check(&fx, "gcc", &words(C_FLAGS, &fx.dir)));
    let parsed = fx.analyzer.stats().files_parsed;
    let again = sets(&check(&fx, "gcc", &words(C_FLAGS, &fx.dir)));
    assert_eq!(first, again);
    assert_eq!(
        fx.analyzer.stats().files_parsed,
        parsed,
        "warm request re-parsed"
    );
    fx.analyzer.reset();
    let after = sets(&check(&fx, "gcc", &words(C_FLAGS, &fx.dir)));
    assert_eq!(first, after);
}

/// Boost.Function (`BOOST_PP_ITERATE()`), Variant and MPL (`BOOST_PP_FILENAME_n` with
/// dozens of `BOOST_PP_ITERATION_PARAMS_n` definitions), Preprocessor and Bind: about
/// 1,600 headers, many computed includes; it must finish within the budget and reach every
/// header GCC opens. Needs `libboost-dev` (Boost 1.74 on bookworm).
#[test]
fn boost_heavy_translation_unit() {
    if !Path::new("/usr/include/boost/function.hpp").exists() {
        eprintln!("no /usr/include/boost: install libboost-dev to run this case");
        return;
    }
    let fx = fixture();
    fs::write(
        fx.dir.join("boost_main.cpp"),
        b"#include \"x.h\"\n#include <boost/function.hpp>\n#include <boost/variant.hpp>\n\
          #include <boost/preprocessor.hpp>\n#include <boost/mpl/vector.hpp>\n\
          #include <boost/bind/bind.hpp>\n#include <boost/optional.hpp>\n\
          int main() { boost::function<int(int)> f = [](int x) { return x + x_value; };\n\
          return f(0); }\n",
    )
    .unwrap();
    let args = vec!["boost_main.cpp".to_string()];
    let started = Instant::now();
    let c = check(&fx, "g++", &args);
    eprintln!(
        "boost cold: {:?} wall, {} paths reached, stats {:?}",
        started.elapsed(),
        c.all_paths_used().len(),
        fx.analyzer.stats()
    );
    let started = Instant::now();
    check(&fx, "g++", &args);
    eprintln!("boost warm: {:?} wall", started.elapsed());
    assert!(c
        .all_paths_used()
        .iter()
        .any(|p| p.as_os_str().as_bytes().ends_with(b"forward1.hpp")));
}
