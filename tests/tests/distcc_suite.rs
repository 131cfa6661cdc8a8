//! distcc's own test cases, from the distro's source package (fetched and cached by
//! `tests/distcc-suite/source.sh`), run against our tools:
//! - the include analyzer's cases (`include_server/include_analyzer_test.py` and
//!   `include_analyzer_memoizing_node_test.py`, on `include_server/test_data`): each
//!   command is asked of our include server over its socket, as the distcc client asks,
//!   and the files shipped must be the ones the case expects;
//! - the whole integration suite `test/testdistcc.py` in pump mode under our pump
//!   (`tests/distcc-suite/pump_check.sh`, as distcc's `make pump-installcheck`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use e2e::{bin, shipped, IncludeServer, Run};

/// distcc's source tree (`distcc-3.4/`).
fn distcc_source() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("distcc-suite/source.sh");
    let run = Run::of(&mut Command::new(script));
    run.expect_success();
    PathBuf::from(
        run.lines()
            .last()
            .expect("source.sh printed the tree")
            .trim(),
    )
}

/// One case: a command run in the include server's directory of distcc's source, and
/// the files (relative to `test_data`) its closure must hold, no more and no less.
struct Case {
    name: &'static str,
    command: &'static [&'static str],
    expected: &'static [&'static str],
}

const CASES: &[Case] = &[
    // include_analyzer_test.py, test_AdvancedComputedIncludes.
    Case {
        name: "computed include through a macro",
        command: &["gcc", "-c", "test_data/test_computed_includes/src.c"],
        expected: &[
            "test_computed_includes/src.c",
            "test_computed_includes/helper.c",
            "test_computed_includes/incl.h",
        ],
    },
    Case {
        name: "computed include, second definition",
        command: &["gcc", "-c", "test_data/test_computed_includes/srcA.c"],
        expected: &[
            "test_computed_includes/srcA.c",
            "test_computed_includes/helper.c",
            "test_computed_includes/incl.h",
            "test_computed_includes/inclA.h",
        ],
    },
    Case {
        name: "computed include redefined by -D",
        command: &[
            "gcc",
            "-DINCL=\"../dfoo/foo2.h\"",
            "-c",
            "test_data/test_computed_includes/src.c",
        ],
        expected: &[
            "test_computed_includes/src.c",
            "test_computed_includes/helper.c",
            "test_computed_includes/incl.h",
            "test_computed_includes/inclA.h",
            "dfoo/foo2.h",
        ],
    },
    // The Python case expects dfoo/foo.h, dfoo/foo2.h and dbar/dbar1/bar.h too: its
    // evaluator also expands an argument that `#` stringizes. GCC does not: the include
    // names `../MY_TEST_DATA/dfoo/foo.h`, which does not exist (`gcc -M` fails on this
    // file), so the closure is the source alone, as the compiler will read it.
    Case {
        name: "function-like macros from the command line",
        command: &[
            "gcc",
            "-DSTR(X)=# X",
            "-DFINCLUDE(P)=STR(../MY_TEST_DATA/dfoo/P)",
            "-DMY_TEST_DATA=test_data",
            "-c",
            "test_data/func_macro.c",
        ],
        expected: &["func_macro.c"],
    },
    // test_DotdotInInclude: `#include "../foo"` in a file reached through a symlink is
    // resolved from the symlink's directory, and the include cycle ends.
    Case {
        name: "dotdot include through a symlink",
        command: &[
            "gcc",
            "-xc",
            "-c",
            "test_data/symlink_farm/sub_farm/link_to_dd_dd_dfoo_include_dotdot_foo",
        ],
        expected: &["dfoo/include_dotdot_foo", "symlink_farm/foo"],
    },
    // helper_test_IncludeAnalyzer.
    Case {
        name: "quote and angle includes, recursion",
        command: &["gcc", "-Itest_data/dfoo", "-c", "test_data/parse.c"],
        expected: &[
            "parse.c",
            "dfoo/foo2.h",
            "dfoo/foo.h",
            "dfoo/../dbar/dbar1/bar.h",
        ],
    },
    Case {
        name: "computed angle includes not on the path",
        command: &[
            "gcc",
            "-Itest_data/dfoo",
            "-c",
            "test_data/computed_includes.c",
        ],
        expected: &["computed_includes.c", "p1.h"],
    },
    Case {
        name: "computed angle includes on the path",
        command: &[
            "gcc",
            "-Itest_data/dfoo",
            "-Itest_data",
            "-c",
            "test_data/computed_includes.c",
        ],
        expected: &["computed_includes.c", "p1.h", "abc_post.c", "abc_pre.c"],
    },
    Case {
        name: "include_next chain whose last one does not resolve",
        command: &[
            "gcc",
            "-Itest_data/test_include_next/foo",
            "-Itest_data/test_include_next/bar",
            "-Itest_data/test_include_next/baz",
            "-c",
            "test_data/test_include_next/baz/start_x.c",
        ],
        expected: &[
            "test_include_next/baz/start_x.c",
            "test_include_next/baz/x.h",
            "test_include_next/foo/x.h",
            "test_include_next/bar/x.h",
        ],
    },
    Case {
        name: "include_next chain ending in a later directory",
        command: &[
            "gcc",
            "-Itest_data/test_include_next/foo",
            "-Itest_data/test_include_next/bar",
            "-Itest_data/test_include_next/baz",
            "-Itest_data/test_include_next/biz",
            "-c",
            "test_data/test_include_next/baz/start_x.c",
        ],
        expected: &[
            "test_include_next/baz/start_x.c",
            "test_include_next/baz/x.h",
            "test_include_next/foo/x.h",
            "test_include_next/bar/x.h",
            "test_include_next/biz/x.h",
        ],
    },
    Case {
        name: "include_next through dotdot",
        command: &[
            "gcc",
            "-Itest_data/test_include_next/foo",
            "-Itest_data/test_include_next/bar",
            "-Itest_data/test_include_next/baz",
            "-c",
            "test_data/test_include_next/baz/start_y.c",
        ],
        expected: &[
            "test_include_next/baz/start_y.c",
            "test_include_next/baz/../foo/y.h",
            "test_include_next/bar/y.h",
            "test_include_next/foo/y.h",
            "test_include_next/baz/y.h",
        ],
    },
    Case {
        name: "a directory named like the header is not picked",
        command: &[
            "gcc",
            "-Itest_data/dfoo",
            "-c",
            "test_data/test_directory_probing.c",
        ],
        expected: &[
            "test_directory_probing.c",
            "dfoo/i_am_perhaps_a_directory.h",
        ],
    },
    // macro_eval_test.py, test_ResolveExpr: a macro that stringizes through two levels.
    Case {
        name: "computed include stringized through two macros",
        command: &["gcc", "-Itest_data", "-c", "test_data/more_macros.c"],
        expected: &["more_macros.c", "maps/foo.tpl.varnames.h"],
    },
];

/// The shipped files under `dir` (realpaths), for a command run in `cwd`.
fn closure(server: &IncludeServer, cwd: &Path, argv: &[String], dir: &Path) -> BTreeSet<PathBuf> {
    let reply = server
        .ask(cwd, argv)
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    assert!(!reply.is_empty(), "{argv:?}: empty reply (a fall-back)");
    shipped(&reply)
        .into_iter()
        .filter(|p| p.starts_with(dir))
        .collect()
}

#[test]
fn distcc_include_analyzer_cases() {
    let include_server = distcc_source().join("include_server");
    let test_data = std::fs::canonicalize(include_server.join("test_data")).unwrap();
    let server = IncludeServer::start();
    let mut failures = Vec::new();
    for case in CASES {
        let argv: Vec<String> = case.command.iter().map(|a| a.to_string()).collect();
        let got = closure(&server, &include_server, &argv, &test_data);
        let want: BTreeSet<PathBuf> = case
            .expected
            .iter()
            .map(|f| std::fs::canonicalize(test_data.join(f)).unwrap())
            .collect();
        if got != want {
            failures.push(format!(
                "{}: {}\n  missing {:?}\n  extra {:?}",
                case.name,
                case.command.join(" "),
                want.difference(&got).collect::<Vec<_>>(),
                got.difference(&want).collect::<Vec<_>>()
            ));
        }
    }
    // include_analyzer_memoizing_node_test.py, on distcc's own sources (with -include).
    let distcc = test_data.join("distcc");
    let argv: Vec<String> = [
        "gcc",
        "-Isrc",
        "-I./lzo",
        "-include",
        "include_me.h",
        "-o",
        "src/distcc.o",
        "-c",
        "src/distcc.c",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let got = closure(&server, &distcc, &argv, &distcc);
    let want: BTreeSet<PathBuf> = [
        "include_me.h",
        "implicit.h",
        "distcc.c",
        "config.h",
        "distcc.h",
        "state.h",
        "compile.h",
        "trace.h",
        "exitcode.h",
        "util.h",
        "hosts.h",
        "bulk.h",
        "emaillog.h",
    ]
    .iter()
    .map(|f| distcc.join("src").join(f))
    .collect();
    if got != want {
        failures.push(format!(
            "distcc's own sources with -include\n  missing {:?}\n  extra {:?}",
            want.difference(&got).collect::<Vec<_>>(),
            got.difference(&want).collect::<Vec<_>>()
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn distcc_testdistcc_in_pump_mode() {
    // distcc's whole integration suite under our pump (see pump_check.sh for the cases
    // left out and why); every compile it makes is asked of our include server.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("distcc-suite/pump_check.sh");
    let build_dir = bin("pump").parent().unwrap().to_path_buf();
    let run = Run::of(Command::new(&script).arg(&build_dir));
    run.expect_success();
    let text = run.lines().join("\n");
    assert!(text.contains("testdistcc.py --pump OK"), "{text}");
}
