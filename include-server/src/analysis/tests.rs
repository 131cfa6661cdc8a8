//! Engine-level tests on small trees built in temp dirs.

use super::*;
use std::fs;

fn argv(s: &str) -> Vec<Vec<u8>> {
    s.split(' ').map(|w| w.as_bytes().to_vec()).collect()
}

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

fn engine() -> Analyzer {
    Analyzer::new(AnalyzerConfig {
        probe_path: Some("/usr/bin:/bin".into()),
        ..Default::default()
    })
}

fn names(c: &Closure, root: &Path) -> Vec<String> {
    let root = fs::canonicalize(root).unwrap();
    c.files
        .iter()
        .map(|f| {
            f.realpath
                .strip_prefix(&root)
                .unwrap_or(&f.realpath)
                .display()
                .to_string()
        })
        .collect()
}

const BUDGET: Duration = Duration::from_secs(10);

#[test]
fn quote_angle_next_and_computed() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    write(r, "x.c", "#include \"a.h\"\n#include <b.h>\n#define H(n) STR(n.h)\n#define STR(x) #x\n#include H(c)\n#include <stdio.h>\n");
    write(r, "a.h", "#include \"sub/../d.h\"\n");
    write(r, "d.h", "");
    write(r, "inc/b.h", "#include_next <b.h>\n");
    write(r, "inc2/b.h", "");
    write(r, "c.h", "#include \"a.h\"\n");
    write(r, "sub/keep", "");
    let a = engine();
    let c = a
        .analyze(r, &argv("gcc -Iinc -Iinc2 -c x.c"), BUDGET)
        .unwrap();
    let mut n = names(&c, r);
    assert_eq!(n[0], "x.c");
    n.sort();
    assert_eq!(n, vec!["a.h", "c.h", "d.h", "inc/b.h", "inc2/b.h", "x.c"]);
    let root = fs::canonicalize(r).unwrap();
    assert!(
        c.paths_used.contains(&r.join("sub/../d.h")),
        "{:?}",
        c.paths_used
    );
    assert!(c.system_dirs.iter().any(|d| d == Path::new("/usr/include")));
    assert!(c.files.iter().all(|f| f.abs_spelling.is_none()));
    assert!(c.files.iter().all(|f| f.realpath.starts_with(&root)));
    let s = a.stats();
    assert_eq!(s.compiler_probes, 1);
    // A second request is answered from the caches.
    let c2 = a
        .analyze(r, &argv("gcc -Iinc -Iinc2 -c x.c"), BUDGET)
        .unwrap();
    assert_eq!(c2, c);
    assert_eq!(a.stats().compiler_probes, 1);
    assert_eq!(a.stats().files_parsed, s.files_parsed);
    assert!(a.stats().graph_cache_hits > 0);
    a.reset();
    let c3 = a
        .analyze(r, &argv("gcc -Iinc -Iinc2 -c x.c"), BUDGET)
        .unwrap();
    assert_eq!(c3, c);
    assert_eq!(a.stats().compiler_probes, 2);
}

#[test]
fn absolute_source_gives_abs_spellings() {
    let t = tempfile::tempdir().unwrap();
    let r = fs::canonicalize(t.path()).unwrap();
    write(&r, "p/x.c", "#include \"y.h\"\n");
    write(&r, "p/y.h", "");
    let a = engine();
    let src = r.join("p/x.c");
    let argv = vec![b"gcc".to_vec(), b"-c".to_vec(), bytes_of(&src).to_vec()];
    let c = a.analyze(&r, &argv, BUDGET).unwrap();
    assert_eq!(c.files[0].abs_spelling.as_deref(), Some(src.as_path()));
    assert_eq!(
        c.files[1].abs_spelling.as_deref(),
        Some(r.join("p/y.h").as_path())
    );
}

#[test]
fn absolute_includes() {
    let t = tempfile::tempdir().unwrap();
    let r = fs::canonicalize(t.path()).unwrap();
    write(&r, "abs.h", "");
    write(
        &r,
        "x.c",
        &format!(
            "#include \"{}\"\n#include \"/nonexistent/zz.h\"\n#include </usr/include/stdio.h>\n",
            r.join("abs.h").display()
        ),
    );
    let a = engine();
    let e = a.analyze(&r, &argv("gcc -c x.c"), BUDGET).unwrap_err();
    assert_eq!(e.reason(), "absolute_include");
    let a2 = Analyzer::new(AnalyzerConfig {
        unsafe_absolute_includes: true,
        probe_path: Some("/usr/bin:/bin".into()),
        ..Default::default()
    });
    let c = a2.analyze(&r, &argv("gcc -c x.c"), BUDGET).unwrap();
    assert_eq!(names(&c, &r), vec!["x.c"]);
    assert_eq!(a2.stats().ignored_absolute_includes, 1);
}

#[test]
fn failures_are_per_request() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    write(r, "x.c", "#include \"missing.h\"\n");
    let a = engine();
    let cases: &[(&str, &str)] = &[
        ("gcc -c nonexist.c", "file_not_found"),
        ("gcc -c x.xyz", "command_line"),
        ("gcc -include nope.h -c x.c", "file_not_found"),
        ("/nonexistent/gcc -c x.c", "compiler_probe"),
        ("gcc -D=x -c", "command_line"),
    ];
    for (cmd, reason) in cases {
        let e = a.analyze(r, &argv(cmd), BUDGET).unwrap_err();
        assert_eq!(e.reason(), *reason, "{cmd}: {e}");
    }
    let c = a.analyze(r, &argv("gcc -D=x -c x.c"), BUDGET).unwrap();
    assert_eq!(names(&c, r), vec!["x.c"]);
}

#[test]
fn budget_and_macro_limit() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    let mut src = String::new();
    let mut expr = String::from("#define S(x) STR(x)\n#define STR(x) #x\n#include S(");
    for i in 0..14 {
        for v in ["a", "b", "c"] {
            src.push_str(&format!("#define A{i} {v}{i}\n"));
        }
        expr.push_str(&format!("A{i} "));
    }
    expr.push_str(")\n");
    src.push_str(&expr);
    write(r, "x.c", &src);
    let a = engine();
    let e = a.analyze(r, &argv("gcc -c x.c"), BUDGET).unwrap_err();
    assert_eq!(e.reason(), "macro_limit", "{e}");
    assert_eq!(a.stats().capped_evaluations, 1);
    // The failure is remembered: the next request fails fast without re-evaluating.
    let e = a.analyze(r, &argv("gcc -c x.c"), BUDGET).unwrap_err();
    assert_eq!(e.reason(), "macro_limit", "{e}");
    assert_eq!(a.stats().capped_evaluations, 1);
    let e = a
        .analyze(r, &argv("gcc -c x.c"), Duration::from_nanos(1))
        .unwrap_err();
    assert_eq!(e.reason(), "cpu_budget", "{e}");
    // Nothing was poisoned: a plain file still works on the same engine.
    write(r, "y.c", "#include \"y.h\"\n");
    write(r, "y.h", "");
    let c = a.analyze(r, &argv("gcc -c y.c"), BUDGET).unwrap();
    assert_eq!(names(&c, r), vec!["y.c", "y.h"]);
}

#[test]
fn macro_accumulation_and_fixpoint() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    // The computed include is evaluated before the header defining its macro is parsed.
    write(r, "x.c", "#include CFG\n#include \"defs.h\"\n");
    write(r, "defs.h", "#define CFG \"cfg.h\"\n");
    write(r, "cfg.h", "");
    write(r, "other.c", "#include CFG\n");
    write(r, "dash.c", "#include DASH\n");
    write(r, "dash.h", "");
    let a = engine();
    let c = a.analyze(r, &argv("gcc -c x.c"), BUDGET).unwrap();
    let mut n = names(&c, r);
    n.sort();
    assert_eq!(n, vec!["cfg.h", "defs.h", "x.c"]);
    // A later request sees the accumulated table.
    let c = a.analyze(r, &argv("gcc -c other.c"), BUDGET).unwrap();
    assert_eq!(names(&c, r), vec!["other.c", "cfg.h"]);
    let c = a
        .analyze(
            r,
            &[
                b"gcc".to_vec(),
                b"-DDASH=\"dash.h\"".to_vec(),
                b"dash.c".to_vec(),
            ],
            BUDGET,
        )
        .unwrap();
    assert_eq!(names(&c, r), vec!["dash.c", "dash.h"]);
}

#[test]
fn concurrent_requests_share_caches() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path().to_path_buf();
    for i in 0..8 {
        write(
            &r,
            &format!("s{i}.c"),
            &format!("#include \"h{i}.h\"\n#include \"common.h\"\n"),
        );
        write(&r, &format!("h{i}.h"), "#include <stdlib.h>\n");
    }
    write(&r, "common.h", "#include <string.h>\n");
    let a = Arc::new(engine());
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let a = a.clone();
            let r = r.clone();
            std::thread::spawn(move || {
                for _ in 0..5 {
                    let c = a
                        .analyze(&r, &argv(&format!("gcc -c s{i}.c")), BUDGET)
                        .unwrap();
                    assert_eq!(c.files.len(), 3);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert!(a.stats().compiler_probes >= 1);
}

#[test]
fn engine_is_shareable_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Analyzer>();
    shareable::<Closure>();
    shareable::<AnalysisError>();
}
