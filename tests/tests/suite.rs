//! The CI subset of the verification suite (`bench/suite.sh` runs the whole, side by side
//! with distcc's Python include server): a fixed few dozen of git's translation units and
//! the whole Boost set (`tests/boost-set`), each asked of our include server over its Unix
//! socket exactly as the distcc client asks, and each reply checked against `gcc -MM` with
//! the same flags: every non-system file the preprocessor opens must be shipped (recall
//! 100%), and no translation unit may fall back (an empty reply), Boost included.
//!
//! Correctness only: no timing is asserted. The corpora come from the distro's source
//! packages through `bench/corpora.sh` (fetched once per machine).

use std::path::{Path, PathBuf};
use std::process::Command;

use e2e::{shipped, IncludeServer, Run};

/// One compile command: its working directory and argv.
struct Compile {
    directory: PathBuf,
    argv: Vec<String>,
}

impl Compile {
    fn source(&self) -> &str {
        let exts = [".c", ".cc", ".cpp", ".cxx"];
        self.argv
            .iter()
            .find(|a| exts.iter().any(|e| a.ends_with(e)))
            .map(String::as_str)
            .unwrap_or("?")
    }
}

/// Prepares the corpora (fetched once per machine) and returns their root.
fn corpora_root() -> PathBuf {
    let root = std::env::temp_dir().join("pumpbench");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/corpora.sh");
    Run::of(Command::new("bash").arg(script).arg(&root)).expect_success();
    root
}

/// Splits a `make -n` command line with the shell's quoting rules (single quotes, double
/// quotes with `\"`-style escapes, backslashes); no expansion.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    w.push(c);
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some(n @ ('"' | '\\' | '$' | '`')) => w.push(n),
                            Some(n) => {
                                w.push('\\');
                                w.push(n);
                            }
                            None => w.push('\\'),
                        },
                        c => w.push(c),
                    }
                }
            }
            '\\' => {
                let w = word.get_or_insert_with(String::new);
                if let Some(n) = chars.next() {
                    w.push(n);
                }
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

/// Every 9th of git's compile commands (libgit.a, xdiff, reftable), in `make -n` order.
fn git_subset(root: &Path) -> Vec<Compile> {
    let git = root.join("git");
    let text = std::fs::read_to_string(git.join("git-make-n.txt")).expect("git-make-n.txt");
    let all: Vec<Compile> = text
        .lines()
        .filter(|l| l.starts_with("cc "))
        .map(shell_words)
        .filter(|w| w.iter().any(|a| a == "-c"))
        .map(|argv| Compile {
            directory: git.clone(),
            argv,
        })
        .collect();
    assert!(all.len() > 250, "only {} git compile commands", all.len());
    all.into_iter().step_by(9).collect()
}

/// The Boost set, compiled as the benchmark compiles it.
fn boost_set() -> Vec<Compile> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("boost-set");
    let dir = std::fs::canonicalize(&dir).expect("tests/boost-set");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("tests/boost-set")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".cpp"))
        .collect();
    names.sort();
    assert!(
        names.len() >= 5,
        "the Boost set has {} sources",
        names.len()
    );
    names
        .into_iter()
        .map(|n| Compile {
            directory: dir.clone(),
            argv: vec![
                "g++".into(),
                "-std=c++17".into(),
                "-O1".into(),
                "-c".into(),
                n.clone(),
                "-o".into(),
                format!("{n}.o"),
            ],
        })
        .collect()
}

/// The non-system files `gcc -MM` lists for a compile command, as realpaths.
fn gcc_deps(c: &Compile) -> Vec<PathBuf> {
    let mut args = Vec::new();
    let mut it = c.argv.iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "-o" | "-MF" | "-MT" | "-MQ" => {
                it.next();
            }
            "-c" | "-MD" | "-MMD" | "-MP" => {}
            _ => args.push(a.clone()),
        }
    }
    let run = Run::of(
        Command::new(&c.argv[0])
            .args(&args)
            .args(["-MM", "-MF", "-"])
            .current_dir(&c.directory),
    );
    run.expect_success();
    run.stdout
        .replace("\\\n", " ")
        .split_once(':')
        .map(|(_, d)| d.to_owned())
        .unwrap_or_default()
        .split_whitespace()
        .map(|d| {
            let p = c.directory.join(d);
            std::fs::canonicalize(&p).unwrap_or(p)
        })
        .collect()
}

/// Asks for every command on one fresh server; returns one line per failure.
fn check(commands: &[Compile]) -> Vec<String> {
    let server = IncludeServer::start();
    let mut failures = Vec::new();
    for c in commands {
        let paths = match server.ask(&c.directory, &c.argv) {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("{}: request failed: {e}", c.source()));
                continue;
            }
        };
        if paths.is_empty() {
            failures.push(format!("{}: fell back (empty reply)", c.source()));
            continue;
        }
        let got = shipped(&paths);
        let missed: Vec<String> = gcc_deps(c)
            .into_iter()
            .filter(|d| !got.contains(d))
            .map(|d| d.display().to_string())
            .collect();
        if !missed.is_empty() {
            failures.push(format!(
                "{}: missed {} file(s) gcc -MM lists: {}",
                c.source(),
                missed.len(),
                missed.join(", ")
            ));
        }
    }
    failures
}

#[test]
fn shell_words_follow_make_n_quoting() {
    assert_eq!(
        shell_words(r#"cc -DA="\"x86\"" '-DB="/p"' -DC='"/bin/sh"' a\ b.c  x.c"#),
        [
            "cc",
            r#"-DA="x86""#,
            r#"-DB="/p""#,
            r#"-DC="/bin/sh""#,
            "a b.c",
            "x.c"
        ]
    );
}

#[test]
fn git_subset_ships_every_file_gcc_lists() {
    let commands = git_subset(&corpora_root());
    assert!(commands.len() >= 25, "{} git TUs", commands.len());
    let failures = check(&commands);
    assert!(
        failures.is_empty(),
        "{} of {} git TUs failed:\n{}",
        failures.len(),
        commands.len(),
        failures.join("\n")
    );
}

#[test]
fn boost_set_ships_every_file_gcc_lists_and_never_falls_back() {
    let commands = boost_set();
    let failures = check(&commands);
    assert!(
        failures.is_empty(),
        "{} of {} Boost TUs failed:\n{}",
        failures.len(),
        commands.len(),
        failures.join("\n")
    );
}
