//! A real third-party code base (git, from the distro's source package) compiled in pump
//! mode through `pump make`, the distro's `distcc` client and a loopback `distccd`, with
//! local fall-back forbidden: every translation unit must compile remotely in pump mode,
//! with no fall-back and no discrepancy, and each object must equal the local build's
//! after `objcopy --strip-debug`.
//!
//! CI runs a fixed subset of git's `libgit.a` objects (every 6th, sorted by name); the
//! whole library is the ignored test, run by `tests/corpus.sh`.

use std::path::{Path, PathBuf};
use std::process::Command;

use e2e::{bin, Distccd, Run, TestEnv};

/// Prepares the corpora (fetched once per machine) and returns git's source tree.
fn git_source() -> PathBuf {
    let root = std::env::temp_dir().join("pumpbench");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/corpora.sh");
    let run = Run::of(Command::new("bash").arg(script).arg(&root));
    run.expect_success();
    root.join("git")
}

/// The objects of libgit.a, sorted.
fn libgit_objects(git: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(git.join("git-make-n.txt")).expect("git-make-n.txt");
    let mut objs: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("cc "))
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let i = words.iter().position(|w| *w == "-o")?;
            let o = words.get(i + 1)?;
            (!o.contains('/')).then(|| o.to_string())
        })
        .collect();
    objs.sort();
    objs.dedup();
    objs
}

fn copy_tree(src: &Path, dst: &Path) {
    let run = Run::of(Command::new("cp").arg("-a").arg(src).arg(dst));
    run.expect_success();
}

fn strip_debug(obj: &Path, out: &Path) -> Vec<u8> {
    Run::of(
        Command::new("objcopy")
            .arg("--strip-debug")
            .arg(obj)
            .arg(out),
    )
    .expect_success();
    std::fs::read(out).unwrap()
}

fn build_in_pump_mode(objects: &[String]) {
    let git = git_source();
    let env = TestEnv::new();
    let local = env.path().join("local");
    let remote = env.path().join("remote");
    copy_tree(&git, &local);
    copy_tree(&git, &remote);

    // The local build: the reference objects.
    let run = Run::of(
        env.cmd("make")
            .arg("-j2")
            .arg("CC=gcc")
            .args(objects)
            .current_dir(&local),
    );
    run.expect_success();

    let d = Distccd::start();
    let mut env = env;
    env.set("DISTCC_HOSTS", format!("{}/4,cpp,lzo", d.host()))
        .set("DISTCC_FALLBACK", "0")
        .set("DISTCC_TESTING_INCLUDE_SERVER", "0");
    let run = Run::of(
        env.cmd(bin("pump"))
            .args(["make", "-j4", "CC=distcc gcc"])
            .args(objects)
            .current_dir(&remote),
    );
    run.expect_success();
    let n = objects.len();
    assert!(
        run.stdout.contains(&format!(
            "__________Include server: {n} of {n} translation unit(s) served"
        )),
        "not every request was served\n{run}"
    );
    assert!(
        !run.stderr
            .contains("pump-mode compilation(s) failed on server"),
        "discrepancies\n{run}"
    );
    d.wait_for_jobs(n);
    let mut want: Vec<String> = objects.iter().map(|o| o.replace(".o", ".c")).collect();
    want.sort();
    assert_eq!(
        d.pump_mode_jobs(),
        want,
        "not all compiled remotely in pump mode\n{run}"
    );

    let scratch = env.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    for o in objects {
        let a = strip_debug(&local.join(o), &scratch.join("a.o"));
        let b = strip_debug(&remote.join(o), &scratch.join("b.o"));
        assert!(
            a == b,
            "{o} differs from the local build after objcopy --strip-debug"
        );
    }
}

#[test]
fn git_subset_compiles_in_pump_mode_and_matches_local_objects() {
    let all = libgit_objects(&git_source());
    assert!(all.len() > 200, "only {} libgit objects found", all.len());
    let subset: Vec<String> = all.iter().step_by(6).cloned().collect();
    build_in_pump_mode(&subset);
}

#[test]
#[ignore = "the whole of libgit.a: run by tests/corpus.sh"]
fn git_libgit_compiles_in_pump_mode_and_matches_local_objects() {
    let all = libgit_objects(&git_source());
    build_in_pump_mode(&all);
}
