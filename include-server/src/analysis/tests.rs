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
    // The helpers only fill caches ahead of the walk: every result must be the same
    // with them as without.
    engine_with_helpers(1)
}

fn engine_with_helpers(prefetch_helpers: usize) -> Analyzer {
    Analyzer::new(AnalyzerConfig {
        probe_path: Some("/usr/bin:/bin".into()),
        prefetch_helpers: Some(prefetch_helpers),
        ..Default::default()
    })
}

/// [`names`], sorted.
fn sorted_names(c: &Closure, root: &Path) -> Vec<String> {
    let mut n = names(c, root);
    n.sort();
    n
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
        c.all_paths_used().contains(&r.join("sub/../d.h")),
        "{:?}",
        c.all_paths_used()
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
    // The same closure from new tables (ids of another generation).
    assert_eq!(c3.files, c.files);
    assert_eq!(c3.all_paths_used(), c.all_paths_used());
    assert_eq!(c3.system_dirs, c.system_dirs);
    assert_ne!(c3.ids, c.ids);
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

/// A source whose computed include has 3^14 possible expansions.
fn exploding_source() -> String {
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
    src
}

#[test]
fn exploding_computed_include_is_approximated() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    write(r, "x.c", &exploding_source());
    write(r, "a.h", "#include \"sub/b.h\"\n");
    write(r, "sub/b.h", "");
    write(r, ".git/config", "");
    write(r, "inc/c.h", "");
    write(r, "inc/.hidden/d.h", "");
    let a = engine();
    let c = a.analyze(r, &argv("gcc -Iinc -c x.c"), BUDGET).unwrap();
    // Every file the include could open outside the system dirs: the includer's
    // directory tree and each search directory's, hidden directories left out.
    let mut n = names(&c, r);
    assert_eq!(n[0], "x.c");
    n.sort();
    assert_eq!(n, vec!["a.h", "inc/c.h", "sub/b.h", "x.c"]);
    let s = a.stats();
    assert_eq!(s.approximated_evaluations, 1);
    assert_eq!(s.capped_evaluations, 0);
    // The heavy expression is remembered: the next request approximates at once.
    let c2 = a.analyze(r, &argv("gcc -Iinc -c x.c"), BUDGET).unwrap();
    assert_eq!(c2.files, c.files);
    let e = a
        .analyze(r, &argv("gcc -Iinc -c x.c"), Duration::from_nanos(1))
        .unwrap_err();
    assert_eq!(e.reason(), "cpu_budget", "{e}");
    // Nothing was poisoned: a plain file still works on the same engine.
    write(r, "y.c", "#include \"y.h\"\n");
    write(r, "y.h", "");
    let c = a.analyze(r, &argv("gcc -c y.c"), BUDGET).unwrap();
    assert_eq!(names(&c, r), vec!["y.c", "y.h"]);
}

#[test]
fn approximation_widens_exact_includes_of_shipped_files() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    write(r, "src/x.c", "#include \"local.h\"\n#include <heavy.h>\n");
    write(r, "src/local.h", "#define CFG \"cfg.h\"\n#include CFG\n");
    write(r, "src/cfg.h", "");
    write(r, "src/other.h", "");
    write(r, "inc/heavy.h", &exploding_source());
    write(r, "inc/sub/h.h", "");
    write(r, "unrelated/u.h", "");
    let a = engine();
    let c = a.analyze(r, &argv("gcc -Iinc -c src/x.c"), BUDGET).unwrap();
    let n = sorted_names(&c, r);
    // heavy.h's include is approximated by inc/; local.h's exact computed include could
    // then depend on a definition no walked file gave, so its directory is added.
    assert_eq!(
        n,
        vec![
            "inc/heavy.h",
            "inc/sub/h.h",
            "src/cfg.h",
            "src/local.h",
            "src/other.h",
            "src/x.c"
        ]
    );
    assert_eq!(a.stats().approximated_evaluations, 1);
    // Without an approximation nothing is widened.
    write(r, "plain.c", "#include \"src/local.h\"\n");
    let c = a.analyze(r, &argv("gcc -c plain.c"), BUDGET).unwrap();
    assert_eq!(names(&c, r), vec!["plain.c", "src/local.h", "src/cfg.h"]);
}

#[test]
fn hard_bound_then_approximation_when_it_is_not_cheap() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    write(r, "x.c", &exploding_source());
    let extra = graph::CHEAP_APPROX_FILES + 10;
    for i in 0..extra {
        fs::File::create(r.join(format!("f{i}.h"))).unwrap();
    }
    let a = engine();
    let c = a.analyze(r, &argv("gcc -c x.c"), BUDGET).unwrap();
    assert_eq!(c.files.len(), extra + 1);
    let s = a.stats();
    assert_eq!((s.capped_evaluations, s.approximated_evaluations), (1, 1));
    // The remembered failure is approximated at once.
    let c2 = a.analyze(r, &argv("gcc -c x.c"), BUDGET).unwrap();
    assert_eq!(c2.files, c.files);
    assert_eq!(a.stats().capped_evaluations, 1);
}

#[test]
fn macro_limit_when_the_approximation_is_too_large() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    write(r, "x.c", &exploding_source());
    for i in 0..=graph::MAX_APPROX_FILES {
        fs::File::create(r.join(format!("f{i}.h"))).unwrap();
    }
    let a = engine();
    let e = a.analyze(r, &argv("gcc -c x.c"), BUDGET).unwrap_err();
    assert_eq!(e.reason(), "macro_limit", "{e}");
    assert_eq!(a.stats().capped_evaluations, 1);
    assert_eq!(a.stats().approximated_evaluations, 0);
    // The failure is remembered: the next request fails fast without re-evaluating.
    let e = a.analyze(r, &argv("gcc -c x.c"), BUDGET).unwrap_err();
    assert_eq!(e.reason(), "macro_limit", "{e}");
    assert_eq!(a.stats().capped_evaluations, 1);
}

#[test]
fn list_tree_bounds_loops_and_hidden_entries() {
    let t = tempfile::tempdir().unwrap();
    let r = fs::canonicalize(t.path()).unwrap();
    write(&r, "a.h", "");
    write(&r, "d/b.h", "");
    write(&r, ".svn/c.h", "");
    write(&r, "d/.e.h", "");
    std::os::unix::fs::symlink(&r, r.join("d/loop")).unwrap();
    std::os::unix::fs::symlink("a.h", r.join("link.h")).unwrap();
    let gen = Generation::default();
    let cfg = graph::Config {
        id: 0,
        key: ConfigKey {
            cwd: r.clone(),
            dirs: Vec::new(),
            angle_start: 0,
            no_current_dir: false,
            system: vec![r.join("sys")],
        },
    };
    write(&r, "sys/s.h", "");
    let l = graph::list_tree(&r, &cfg, &gen.fs, 10).unwrap();
    let l: Vec<String> = l
        .iter()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    assert_eq!(l, vec!["a.h", "d/b.h", "link.h"]);
    assert!(graph::list_tree(&r, &cfg, &gen.fs, 2).is_none());
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
    let n = sorted_names(&c, r);
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
fn a_union_of_roots_is_kept_until_a_symbol_it_read_changes() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    write(r, "pre.h", "#define CFG \"a.h\"\n");
    write(r, "x.c", "#include CFG\n");
    write(r, "a.h", "");
    write(r, "b.h", "");
    write(r, "other.c", "#include \"more.h\"\n");
    write(r, "more.h", "#define CFG \"b.h\"\n");
    let a = engine();
    let cmd = argv("gcc -include pre.h -c x.c");
    let summary = |c: &Closure| c.ids.as_ref().unwrap().summary.clone();
    let first = a.analyze(r, &cmd, BUDGET).unwrap();
    assert_eq!(sorted_names(&first, r), vec!["a.h", "pre.h", "x.c"]);
    // Two roots: the union is kept, and a warm request gets the same one.
    let again = a.analyze(r, &cmd, BUDGET).unwrap();
    assert!(Arc::ptr_eq(&summary(&first), &summary(&again)));
    // Another definition of CFG (macros accumulate over requests): the kept union is
    // stale, and the next request covers both expansions.
    a.analyze(r, &argv("gcc -c other.c"), BUDGET).unwrap();
    let after = a.analyze(r, &cmd, BUDGET).unwrap();
    assert!(!Arc::ptr_eq(&summary(&first), &summary(&after)));
    assert_eq!(sorted_names(&after, r), vec!["a.h", "b.h", "pre.h", "x.c"]);
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

#[test]
fn a_file_embedded_then_included_is_still_scanned() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    write(r, "x.c", "#embed \"d.h\"\n#include \"d.h\"\n");
    write(r, "d.h", "#include \"e.h\"\n");
    write(r, "e.h", "");
    let a = engine();
    let c = a.analyze(r, &argv("gcc -c x.c"), BUDGET).unwrap();
    let n = sorted_names(&c, r);
    assert_eq!(n, vec!["d.h", "e.h", "x.c"]);
    // And in the other order, from the memo of another request.
    write(r, "y.c", "#include \"d.h\"\n#embed \"d.h\"\n");
    let c = a.analyze(r, &argv("gcc -c y.c"), BUDGET).unwrap();
    let n = sorted_names(&c, r);
    assert_eq!(n, vec!["d.h", "e.h", "y.c"]);
}

#[test]
fn a_task_handed_to_a_waiting_helper_runs_on_it() {
    let p = graph::Prefetcher::start(1, Arc::new(graph::Counters::default()));
    let (tx, rx) = std::sync::mpsc::channel();
    let mut task = aside::Task::new(move || {
        let me = std::thread::current().name().map(str::to_owned);
        tx.send(me).expect("the test waits");
    });
    // Handed back until the helper waits for work.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        match p.hand(task) {
            Ok(()) => break,
            Err(back) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the helper never waited for work"
                );
                task = back;
                std::thread::yield_now();
            }
        }
    }
    let ran_on = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the task ran");
    assert_eq!(ran_on.as_deref(), Some("prefetch-0"));
    p.stop();
    // No helper: the task comes back, not run.
    let none = graph::Prefetcher::start(0, Arc::new(graph::Counters::default()));
    let ran = Arc::new(AtomicBool::new(false));
    let flag = ran.clone();
    let back = none.hand(aside::Task::new(move || flag.store(true, Ordering::SeqCst)));
    let back = back.expect_err("nobody to run it");
    assert!(!ran.load(Ordering::SeqCst));
    back.run();
    assert!(ran.load(Ordering::SeqCst));
}

#[test]
fn helpers_reading_ahead_change_no_closure() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    write(
        r,
        "x.cc",
        "#include \"a.h\"\n#include <string>\n#include <map>\n#include <cstdio>\n\
         #define H(n) <n.h>\n#include H(b)\n#include_next <c.h>\n",
    );
    write(r, "inc/a.h", "#include \"sub/../b.h\"\n#include <vector>\n");
    write(r, "inc/b.h", "#include \"c.h\"\n");
    write(r, "inc/c.h", "");
    write(r, "inc2/c.h", "#include_next <c.h>\n");
    let run = |helpers: usize| {
        let a = engine_with_helpers(helpers);
        let c = a
            .analyze(r, &argv("g++ -Iinc -Iinc2 -c x.cc"), BUDGET)
            .unwrap();
        let files = a.stats().files_parsed;
        (
            c.files.clone(),
            c.all_paths_used(),
            c.system_dirs.clone(),
            files,
        )
    };
    fs::create_dir_all(r.join("inc/sub")).unwrap();
    let alone = run(0);
    assert!(alone.0.len() >= 4, "{:?}", alone.0);
    for _ in 0..5 {
        assert_eq!(run(2), alone);
    }
}

#[test]
fn a_predefined_macro_in_a_computed_include_is_seen_after_the_walk_during_the_probe() {
    // The walk that runs while the compiler is probed does not have the compiler's
    // predefined macros yet; the closures that looked one up must be evaluated again.
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    write(
        r,
        "x.c",
        "#define CAT(a, b) a##b\n#define XCAT(a, b) CAT(a, b)\n#define PICK_8 \"eight.h\"\n#include XCAT(PICK_, __CHAR_BIT__)\n",
    );
    write(r, "eight.h", "");
    let c = engine().analyze(r, &argv("gcc -c x.c"), BUDGET).unwrap();
    assert_eq!(sorted_names(&c, r), vec!["eight.h", "x.c"]);
}

#[test]
fn a_wrong_guess_of_the_default_directories_is_not_used() {
    // A compiler named `gcc` whose defaults are not GCC's usual ones: the guess made
    // while it is probed walks the wrong directories, and the probe's are used.
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    let real = fs::canonicalize(r).unwrap();
    let bin = real.join("bin");
    fs::create_dir_all(&bin).unwrap();
    let gcc = bin.join("gcc");
    fs::write(
        &gcc,
        format!(
            "#!/bin/sh\nexec /usr/bin/gcc -isystem {} \"$@\"\n",
            real.join("sys").display()
        ),
    )
    .unwrap();
    fs::set_permissions(&gcc, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    write(r, "x.c", "#include <stdio.h>\n#include <marker.h>\n");
    // The system headers are not shipped; what they include from elsewhere is.
    write(r, "sys/marker.h", "#include \"../user/inner.h\"\n");
    write(r, "user/inner.h", "");
    let a = Analyzer::new(AnalyzerConfig {
        probe_path: Some(format!("{}:/usr/bin:/bin", bin.display()).into()),
        prefetch_helpers: Some(1),
        ..Default::default()
    });
    let c = a.analyze(r, &argv("gcc -c x.c"), BUDGET).unwrap();
    assert_eq!(sorted_names(&c, r), vec!["user/inner.h", "x.c"]);
    assert!(
        c.system_dirs.contains(&real.join("sys")),
        "{:?}",
        c.system_dirs
    );
}

/// A compiler, `fakecc` in `bin`, that prints search lists naming `sys` on standard
/// error, then runs `then` (shell).
fn fake_compiler(root: &Path, then: &str) -> PathBuf {
    fake_compiler_after(root, "", then)
}

/// [`fake_compiler`] that runs `first` (shell) before it prints anything.
fn fake_compiler_after(root: &Path, first: &str, then: &str) -> PathBuf {
    let bin = root.join("bin");
    fs::create_dir_all(&bin).unwrap();
    fs::create_dir_all(root.join("sys")).unwrap();
    let cc = bin.join("fakecc");
    fs::write(
        &cc,
        format!(
            "#!/bin/sh\n{first}\nprintf '#include \"...\" search starts here:\\n#include <...> search \
             starts here:\\n {}\\nEnd of search list.\\n' >&2\n{then}\n",
            root.join("sys").display()
        ),
    )
    .unwrap();
    fs::set_permissions(&cc, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    bin
}

/// Asks `a`, on a thread of its own, for `fakecc -c file` in `r`; the answer comes on the
/// returned channel.
fn ask_fakecc(
    a: &Arc<Analyzer>,
    r: &Path,
    file: &str,
) -> std::sync::mpsc::Receiver<Result<Closure, AnalysisError>> {
    let (a, r, argv) = (
        a.clone(),
        r.to_path_buf(),
        argv(&format!("fakecc -c {file}")),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(a.analyze(&r, &argv, BUDGET)));
    rx
}

fn engine_on_path(bin: &Path) -> Analyzer {
    Analyzer::new(AnalyzerConfig {
        probe_path: Some(format!("{}:/usr/bin:/bin", bin.display()).into()),
        prefetch_helpers: Some(1),
        ..Default::default()
    })
}

/// [`engine_on_path`] whose compiler probes are stopped after 1 s.
fn engine_with_probe_deadline(bin: &Path) -> Analyzer {
    Analyzer::new(AnalyzerConfig {
        probe_path: Some(format!("{}:/usr/bin:/bin", bin.display()).into()),
        prefetch_helpers: Some(1),
        probe_deadline: Some(Duration::from_secs(1)),
        ..Default::default()
    })
}

/// A FIFO `name` in `root`: opening it for reading blocks until a writer opens it (for
/// good if nobody does).
fn fifo(root: &Path, name: &str) -> PathBuf {
    let path = root.join(name);
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRWXU).unwrap();
    path
}

/// Once the compilers `a` probed have ended, the error of the request `cmd` in `r`.
fn error_once_settled(a: &Analyzer, r: &Path, cmd: &str) -> String {
    assert!(a.settle(std::time::Instant::now() + Duration::from_secs(60)));
    a.analyze(r, &argv(cmd), BUDGET).unwrap_err().to_string()
}

#[test]
fn a_request_goes_on_once_the_compiler_has_printed_its_search_lists() {
    // The compiler prints its search lists, then waits at a gate before it prints its
    // predefined macros and ends.
    let t = tempfile::tempdir().unwrap();
    let r = fs::canonicalize(t.path()).unwrap();
    let gate = fifo(&r, "gate");
    let bin = fake_compiler(
        &r,
        &format!(
            "read line < {}\necho '#define PICKED \"picked.h\"'",
            gate.display()
        ),
    );
    write(&r, "x.c", "#include \"a.h\"\n#include <s.h>\n");
    write(&r, "a.h", "");
    write(&r, "sys/s.h", "#include \"../below.h\"\n");
    write(&r, "below.h", "");
    write(&r, "y.c", "#include PICKED\n");
    write(&r, "picked.h", "");
    let a = Arc::new(engine_on_path(&bin));
    let ask = |file: &str| ask_fakecc(&a, &r, file);
    // No computed include: answered while the compiler waits at its gate.
    let c = ask("x.c")
        .recv_timeout(Duration::from_secs(60))
        .expect("the request waited for the compiler to end")
        .unwrap();
    assert_eq!(sorted_names(&c, &r), vec!["a.h", "below.h", "x.c"]);
    assert_eq!(*c.system_dirs, vec![r.join("sys")]);
    // A computed include needs the macros: the request waits for them, and the gate
    // opens only once it does.
    let later = ask("y.c");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while a.stats().macro_waits == 0 {
        let answered = later.try_recv().ok();
        if answered.is_some() || std::time::Instant::now() > deadline {
            // Let the compiler end before failing.
            fs::write(&gate, "go\n").unwrap();
            panic!("y.c did not wait for the macros: {answered:?}");
        }
        std::thread::yield_now();
    }
    fs::write(&gate, "go\n").unwrap();
    let c = later
        .recv_timeout(Duration::from_secs(60))
        .unwrap()
        .unwrap();
    assert_eq!(sorted_names(&c, &r), vec!["picked.h", "y.c"]);
    assert!(a.settle(std::time::Instant::now() + Duration::from_secs(60)));
    assert_eq!(a.stats().compiler_probes, 1);
    assert_eq!(a.stats().macro_waits, 1);
}

#[test]
fn requests_that_need_one_compiler_at_once_start_it_once() {
    // The compiler notes each run, then waits at a gate before it prints anything.
    let t = tempfile::tempdir().unwrap();
    let r = fs::canonicalize(t.path()).unwrap();
    let gate = fifo(&r, "gate");
    let runs = r.join("runs");
    let bin = fake_compiler_after(
        &r,
        &format!(
            "echo run >> {}\nread line < {}",
            runs.display(),
            gate.display()
        ),
        "",
    );
    write(&r, "sys/s.h", "");
    for i in 0..4 {
        write(
            &r,
            &format!("s{i}.c"),
            &format!("#include \"h{i}.h\"\n#include <s.h>\n"),
        );
        write(&r, &format!("h{i}.h"), "");
    }
    let a = Arc::new(engine_on_path(&bin));
    let answers: Vec<_> = (0..4)
        .map(|i| ask_fakecc(&a, &r, &format!("s{i}.c")))
        .collect();
    let started = || fs::read_to_string(&runs).map_or(0, |t| t.lines().count());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while started() < 1 || a.stats().probe_joins < 3 {
        if std::time::Instant::now() > deadline {
            // Let the compilers end before failing.
            fs::write(&gate, "go\n").unwrap();
            panic!(
                "{} compiler runs, {} requests joined one",
                started(),
                a.stats().probe_joins
            );
        }
        std::thread::yield_now();
    }
    fs::write(&gate, "go\n").unwrap();
    for (i, answer) in answers.into_iter().enumerate() {
        let c = answer
            .recv_timeout(Duration::from_secs(60))
            .unwrap()
            .unwrap();
        let h = format!("h{i}.h");
        assert_eq!(sorted_names(&c, &r), vec![h.as_str(), &format!("s{i}.c")]);
        assert_eq!(*c.system_dirs, vec![r.join("sys")]);
    }
    assert!(a.settle(std::time::Instant::now() + Duration::from_secs(60)));
    assert_eq!(started(), 1);
    assert_eq!(a.stats().compiler_probes, 1);
    assert_eq!(a.stats().probe_joins, 3);
}

#[test]
fn a_compiler_that_fails_after_its_search_lists_fails_the_requests_after() {
    let t = tempfile::tempdir().unwrap();
    let r = fs::canonicalize(t.path()).unwrap();
    let bin = fake_compiler(&r, "echo 'fakecc: broken' >&2\nexit 3");
    write(&r, "x.c", "#include \"a.h\"\n");
    write(&r, "a.h", "");
    let a = engine_on_path(&bin);
    // The first request may be answered before the compiler ends.
    let _ = a.analyze(&r, &argv("fakecc -c x.c"), BUDGET);
    let e = error_once_settled(&a, &r, "fakecc -c x.c");
    assert!(e.contains("exited with status '3'"), "{e}");
    assert!(e.contains("fakecc: broken"), "{e}");
}

#[test]
fn a_compiler_that_does_not_end_is_stopped_at_its_deadline() {
    // The compiler prints nothing and waits for a program it started, as a driver waits
    // for its `cc1`; both hold the output pipes.
    let t = tempfile::tempdir().unwrap();
    let r = fs::canonicalize(t.path()).unwrap();
    let bin = r.join("bin");
    fs::create_dir_all(&bin).unwrap();
    let started = r.join("started");
    let runs = r.join("runs");
    let never = fifo(&r, "never");
    let cc = bin.join("hangcc");
    fs::write(
        &cc,
        format!(
            "#!/bin/sh\necho run >> {}\ncat {} &\necho $! > {}\nwait\n",
            runs.display(),
            never.display(),
            started.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&cc, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    write(&r, "x.c", "#include \"a.h\"\n");
    write(&r, "a.h", "");
    let a = engine_with_probe_deadline(&bin);
    let e = a
        .analyze(&r, &argv("hangcc -c x.c"), BUDGET)
        .unwrap_err()
        .to_string();
    assert!(e.contains("hangcc -x c -v -dM -E /dev/null"), "{e}");
    assert!(e.contains("did not end within 1 s; it was stopped"), "{e}");
    // A later request that needs it fails at once: the compiler is not started again.
    let again = a
        .analyze(&r, &argv("hangcc -c x.c"), BUDGET)
        .unwrap_err()
        .to_string();
    assert_eq!(again, e);
    assert_eq!(fs::read_to_string(&runs).unwrap(), "run\n");
    assert_eq!(a.stats().compiler_probes, 1);
    // The program it started was stopped with it: its pidfd becomes readable when it
    // has exited.
    let pid: i32 = fs::read_to_string(&started)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd >= 0 {
        // SAFETY: the descriptor was just opened and is owned here.
        let fd =
            unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
        let mut fds = [nix::poll::PollFd::new(
            std::os::fd::AsFd::as_fd(&fd),
            nix::poll::PollFlags::POLLIN,
        )];
        let n = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(10_000u16)).unwrap();
        assert_eq!(
            n, 1,
            "the compiler's child {pid} still runs 10 s after its deadline"
        );
    } else {
        // Already gone (and reaped).
        assert_eq!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::ESRCH)
        );
    }
}

#[test]
fn a_compiler_that_stops_after_its_search_lists_is_stopped_at_its_deadline() {
    // The search lists come, the predefined macros never do.
    let t = tempfile::tempdir().unwrap();
    let r = fs::canonicalize(t.path()).unwrap();
    let never = fifo(&r, "never");
    let bin = fake_compiler(&r, &format!("cat {}", never.display()));
    write(&r, "x.c", "#include \"a.h\"\n");
    write(&r, "a.h", "");
    let a = engine_with_probe_deadline(&bin);
    // Answered once the lists are printed: it looks up no macro.
    let c = a.analyze(&r, &argv("fakecc -c x.c"), BUDGET).unwrap();
    assert_eq!(sorted_names(&c, &r), vec!["a.h", "x.c"]);
    // The compiler is stopped at its deadline, and the requests after fall back.
    let e = error_once_settled(&a, &r, "fakecc -c x.c");
    assert!(e.contains("did not end within 1 s; it was stopped"), "{e}");
}

#[test]
fn settling_stops_the_compilers_still_running() {
    // The compiler tells it has started, then waits for good.
    let t = tempfile::tempdir().unwrap();
    let r = fs::canonicalize(t.path()).unwrap();
    let ready = fifo(&r, "ready");
    let never = fifo(&r, "never");
    let bin = fake_compiler(
        &r,
        &format!(
            "echo started > {}\ncat {}",
            ready.display(),
            never.display()
        ),
    );
    write(&r, "x.c", "#include \"a.h\"\n");
    write(&r, "a.h", "");
    // The default deadline (60 s) is not what stops it.
    let a = engine_on_path(&bin);
    std::thread::scope(|s| {
        let request = s.spawn(|| a.analyze(&r, &argv("fakecc -c x.c"), BUDGET));
        // Opening the FIFO waits for the compiler to open it.
        assert_eq!(fs::read_to_string(&ready).unwrap(), "started\n");
        assert!(!a.settle(std::time::Instant::now() + Duration::from_millis(500)));
        // Answered from the search lists; the probe ended when its compiler was killed.
        let c = request.join().unwrap().unwrap();
        assert_eq!(sorted_names(&c, &r), vec!["a.h", "x.c"]);
        // Well before the deadline would stop it.
        assert!(a.settle(std::time::Instant::now() + Duration::from_secs(10)));
    });
}
