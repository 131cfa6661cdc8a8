//! The analysis on the Boost set (`tests/boost-set`, Boost from the distro's
//! `libboost-dev`): each translation unit, on a cold engine of its own, gets a closure
//! within the CPU budget that holds every file `g++ -MM` lists and no system file. These
//! are the heaviest computed includes we know (Boost.Preprocessor iteration, MPL and
//! Phoenix preprocessed headers); the ones too heavy to evaluate are approximated.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use include_server::analysis::{Analyzer, AnalyzerConfig, Closure};

/// distcc's budget (spec 2.5), for optimized builds; an unoptimized test build runs the
/// same analysis about eight times slower, so it gets ten times the budget.
const BUDGET: Duration = Duration::from_millis(if cfg!(debug_assertions) {
    38_000
} else {
    3_800
});

const UNITS: &[&str] = &[
    "pp_repeat.cpp",
    "mpl_vector.cpp",
    "fusion_adapt.cpp",
    "spirit_calc.cpp",
    "variant_any.cpp",
];

fn set_dir() -> PathBuf {
    fs::canonicalize(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/boost-set")).unwrap()
}

/// The files of the `g++ -MM` rule, realpathed.
fn gcc_mm(dir: &Path, tu: &str) -> BTreeSet<PathBuf> {
    let out = Command::new("g++")
        .args(["-std=c++17", "-O1", "-MM", tu])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "g++ -MM {tu} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap().replace("\\\n", " ");
    let (_, deps) = text.split_once(':').expect("a make rule");
    deps.split_whitespace()
        .map(|d| fs::canonicalize(dir.join(d)).unwrap())
        .collect()
}

fn analyze_cold(dir: &Path, tu: &str) -> (Closure, u64) {
    let path = common::env::Env::from_process()
        .get(common::env::PATH)
        .map(|p| p.to_os_string());
    let a = Analyzer::new(AnalyzerConfig {
        probe_path: path,
        // As the launcher runs it: with a helper reading ahead of the walk.
        prefetch_helpers: Some(1),
        ..Default::default()
    });
    let obj = tu.replace(".cpp", ".o");
    let argv: Vec<Vec<u8>> = ["g++", "-std=c++17", "-O1", "-c", tu, "-o", &obj]
        .iter()
        .map(|w| w.as_bytes().to_vec())
        .collect();
    let c = a
        .analyze(dir, &argv, BUDGET)
        .unwrap_or_else(|e| panic!("{tu}: {e}"));
    (c, a.stats().approximated_evaluations)
}

#[test]
fn every_boost_unit_is_covered_cold_within_the_budget() {
    let dir = set_dir();
    let handles: Vec<_> = UNITS
        .iter()
        .map(|tu| {
            let dir = dir.clone();
            std::thread::spawn(move || (tu, analyze_cold(&dir, tu)))
        })
        .collect();
    let mut approximated = 0;
    for h in handles {
        let (tu, (c, approx)) = h.join().unwrap();
        approximated += approx;
        let have: BTreeSet<PathBuf> = c.files.iter().map(|f| f.realpath.clone()).collect();
        assert_eq!(c.files[0].realpath, dir.join(tu));
        let missing: Vec<_> = gcc_mm(&dir, tu)
            .into_iter()
            .filter(|f| !have.contains(f))
            .collect();
        assert!(missing.is_empty(), "{tu}: closure misses {missing:?}");
        for f in &have {
            assert!(
                !c.system_dirs.iter().any(|d| f.starts_with(d)),
                "{tu}: system file shipped: {}",
                f.display()
            );
        }
    }
    // The heaviest computed includes (BOOST_PP_FILENAME_2 and friends) are approximated.
    assert!(approximated > 0);
}
