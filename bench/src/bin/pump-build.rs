//! `pump-build`: builds a whole code base three times in the same directory, locally and
//! then with each given pump (`pump make`) against a fresh loopback `distccd` with
//! `DISTCC_FALLBACK=0`, and reports, per pump: translation units compiled remotely in pump
//! mode (told apart in distccd's log by its debug-info fix-up step), fall-backs (units
//! compiled without the include server's closure), discrepancies (pump's shutdown
//! warning), wall time, and every object compared with the local one after
//! `objcopy --strip-debug`.
//!
//! Corpora (as prepared by `bench/corpora.sh ROOT`): `git` (libgit.a, xdiff, reftable and
//! the `git` binary: `make`), `leveldb` and `ninja` (cmake, `CMAKE_<LANG>_COMPILER_LAUNCHER=distcc`), and
//! `boost` (the Boost set, one `g++ -std=c++17 -O1 -c` per source, through a generated
//! Makefile). Building in one directory keeps `__FILE__` and the like equal between builds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use e2e::{Distccd, DistccdOptions};
use pump_bench::results::BuildReport;

#[derive(Parser, Debug)]
#[command(about = "Build a code base locally and with pumps against a loopback distccd")]
struct Cli {
    /// The corpus: git, leveldb, ninja or boost.
    #[arg(long)]
    corpus: String,
    /// The corpora root made by bench/corpora.sh.
    #[arg(long)]
    root: PathBuf,
    /// The Boost set's directory (for `--corpus boost`).
    #[arg(long, default_value = "tests/boost-set")]
    boost_set: PathBuf,
    /// A pump to build with, as NAME=PATH (repeatable; e.g. rust=target/release/pump).
    #[arg(long = "pump", required = true)]
    pumps: Vec<String>,
    /// make -j and distccd --jobs.
    #[arg(long, default_value_t = 4)]
    jobs: u32,
    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// How a corpus is built.
enum Recipe {
    /// `make TARGETS` with `CC=...` in the tree.
    Make {
        var: &'static str,
        targets: Vec<String>,
    },
    /// cmake configure into `build-suite`, then `make -C build-suite`.
    Cmake { defs: Vec<String> },
}

struct Corpus {
    name: String,
    /// The working tree (a copy of the fetched sources).
    tree: PathBuf,
    recipe: Recipe,
}

impl Corpus {
    fn prepare(cli: &Cli, work: &Path) -> Result<Corpus> {
        let tree = work.join(&cli.corpus);
        let (src, recipe) = match cli.corpus.as_str() {
            "git" => (
                cli.root.join("git"),
                Recipe::Make {
                    var: "CC",
                    targets: ["libgit.a", "xdiff/lib.a", "reftable/libreftable.a", "git"]
                        .map(str::to_owned)
                        .to_vec(),
                },
            ),
            "leveldb" => (
                cli.root.join("leveldb"),
                Recipe::Cmake {
                    defs: [
                        "-DLEVELDB_BUILD_TESTS=OFF",
                        "-DLEVELDB_BUILD_BENCHMARKS=OFF",
                    ]
                    .map(str::to_owned)
                    .to_vec(),
                },
            ),
            "ninja" => (
                cli.root.join("ninja"),
                Recipe::Cmake {
                    defs: vec!["-DBUILD_TESTING=OFF".to_owned()],
                },
            ),
            "boost" => {
                std::fs::create_dir_all(&tree)?;
                let mut objs = Vec::new();
                for e in std::fs::read_dir(&cli.boost_set)
                    .with_context(|| format!("reading {}", cli.boost_set.display()))?
                {
                    let name = e?.file_name().to_string_lossy().into_owned();
                    if let Some(stem) = name.strip_suffix(".cpp") {
                        std::fs::copy(cli.boost_set.join(&name), tree.join(&name))?;
                        objs.push(format!("{stem}.o"));
                    }
                }
                objs.sort();
                std::fs::write(
                    tree.join("Makefile"),
                    "CXX = g++\n%.o: %.cpp\n\t$(CXX) -std=c++17 -O1 -c $< -o $@\n",
                )?;
                return Ok(Corpus {
                    name: cli.corpus.clone(),
                    tree,
                    recipe: Recipe::Make {
                        var: "CXX",
                        targets: objs,
                    },
                });
            }
            other => bail!("unknown corpus {other:?}: give git, leveldb, ninja or boost"),
        };
        if !src.is_dir() {
            bail!("{} is missing: run bench/corpora.sh first", src.display());
        }
        let st = Command::new("cp").arg("-a").arg(&src).arg(&tree).status()?;
        if !st.success() {
            bail!("copying {} failed", src.display());
        }
        // The fetched tree may hold objects and a cmake build dir of its own.
        remove_objects(&tree)?;
        Ok(Corpus {
            name: cli.corpus.clone(),
            tree,
            recipe,
        })
    }

    /// The command that builds it (`distcc` as compiler wrapper when `remote`), after any
    /// configure step, to be run under `pump` when remote.
    fn build_command(&self, remote: bool, jobs: u32) -> Result<Vec<String>> {
        let j = format!("-j{jobs}");
        match &self.recipe {
            Recipe::Make { var, targets } => {
                let cc = match (*var, remote) {
                    ("CC", false) => "gcc",
                    ("CC", true) => "distcc gcc",
                    (_, false) => "g++",
                    (_, true) => "distcc g++",
                };
                let mut v = vec!["make".to_owned(), j, format!("{var}={cc}")];
                v.extend(targets.iter().cloned());
                Ok(v)
            }
            Recipe::Cmake { defs } => {
                let build = self.tree.join("build-suite");
                if build.exists() {
                    std::fs::remove_dir_all(&build)?;
                }
                let mut c = Command::new("cmake");
                c.arg("-S").arg(&self.tree).arg("-B").arg(&build).args(defs);
                if remote {
                    c.args([
                        "-DCMAKE_C_COMPILER_LAUNCHER=distcc",
                        "-DCMAKE_CXX_COMPILER_LAUNCHER=distcc",
                    ]);
                }
                let out = c.output().context("running cmake")?;
                if !out.status.success() {
                    bail!(
                        "cmake failed in {}: {}",
                        self.tree.display(),
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                Ok(vec![
                    "make".to_owned(),
                    j,
                    "-C".to_owned(),
                    build.display().to_string(),
                ])
            }
        }
    }
}

/// Every `*.o` under `dir`, relative, sorted.
fn objects(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let p = e.path();
            if e.file_type()?.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "o") {
                out.push(p.strip_prefix(dir)?.to_owned());
            }
        }
    }
    out.sort();
    Ok(out)
}

fn remove_objects(dir: &Path) -> Result<()> {
    for o in objects(dir)? {
        std::fs::remove_file(dir.join(o))?;
    }
    for a in ["libgit.a", "xdiff/lib.a", "reftable/libreftable.a", "git"] {
        let _ = std::fs::remove_file(dir.join(a));
    }
    Ok(())
}

/// `objcopy --strip-debug SRC DST`.
fn strip(src: &Path, dst: &Path) -> Result<()> {
    if let Some(p) = dst.parent() {
        std::fs::create_dir_all(p)?;
    }
    let st = Command::new("objcopy")
        .arg("--strip-debug")
        .arg(src)
        .arg(dst)
        .status()
        .context("running objcopy")?;
    if !st.success() {
        bail!("objcopy --strip-debug {} failed", src.display());
    }
    Ok(())
}

/// Runs `argv` in `dir` with `env`, returning (success, combined output, seconds).
fn run_build(
    argv: &[String],
    dir: &Path,
    env: &BTreeMap<&str, String>,
) -> Result<(bool, String, f64)> {
    let mut c = Command::new(&argv[0]);
    c.args(&argv[1..])
        .current_dir(dir)
        .env_clear()
        .envs(env)
        .stdin(Stdio::null());
    let t = Instant::now();
    let out = c
        .output()
        .with_context(|| format!("running {}", argv.join(" ")))?;
    let secs = t.elapsed().as_secs_f64();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok((out.status.success(), text, secs))
}

/// The count in pump's "N pump-mode compilation(s) failed on server" warning.
fn discrepancies(output: &str) -> usize {
    output
        .lines()
        .filter_map(|l| {
            let i = l.find(" pump-mode compilation(s) failed on server")?;
            l[..i]
                .rsplit(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<usize>()
                .ok()
        })
        .sum()
}

fn run() -> Result<ExitCode> {
    let cli = Cli::parse();
    let work = tempfile::Builder::new()
        .prefix("pump-build.")
        .tempdir_in(&cli.root)
        .context("work dir")?;
    let corpus = Corpus::prepare(&cli, work.path())?;
    let home = work.path().join("home");
    let tmp = work.path().join("tmp");
    std::fs::create_dir_all(home.join(".distcc"))?;
    std::fs::create_dir_all(&tmp)?;
    let base_env: BTreeMap<&str, String> = [
        ("PATH", "/usr/local/bin:/usr/bin:/bin".to_owned()),
        ("HOME", home.display().to_string()),
        ("TMPDIR", tmp.display().to_string()),
        ("DISTCC_DIR", home.join(".distcc").display().to_string()),
        ("LC_ALL", "C".to_owned()),
    ]
    .into_iter()
    .collect();

    // The local build: the reference objects, stripped.
    eprintln!("pump-build: {}: local build", corpus.name);
    let argv = corpus.build_command(false, cli.jobs)?;
    // Objects made by cmake's configure checks are not the code base's.
    let configured = objects(&corpus.tree)?;
    let (ok, out, local_secs) = run_build(&argv, &corpus.tree, &base_env)?;
    if !ok {
        bail!("the local build of {} failed:\n{}", corpus.name, tail(&out));
    }
    let local_objs: Vec<PathBuf> = objects(&corpus.tree)?
        .into_iter()
        .filter(|o| !configured.contains(o))
        .collect();
    let reference = work.path().join("local-objects");
    for o in &local_objs {
        strip(&corpus.tree.join(o), &reference.join(o))?;
    }
    let mut reports = vec![BuildReport {
        corpus: corpus.name.clone(),
        implementation: "local".into(),
        tus: local_objs.len(),
        wall_seconds: local_secs,
        exit_ok: true,
        ..Default::default()
    }];

    for spec in &cli.pumps {
        let (name, pump) = spec
            .split_once('=')
            .with_context(|| format!("--pump {spec:?}: expected NAME=PATH"))?;
        let pump = std::fs::canonicalize(pump).with_context(|| format!("pump {pump}"))?;
        eprintln!("pump-build: {}: pump make with {name}", corpus.name);
        remove_objects(&corpus.tree)?;
        let d = Distccd::start_with(DistccdOptions {
            jobs: cli.jobs,
            ..Default::default()
        });
        let mut env = base_env.clone();
        env.insert("DISTCC_HOSTS", format!("{}/{},cpp,lzo", d.host(), cli.jobs));
        env.insert("DISTCC_FALLBACK", "0".into());
        let mut argv = vec![pump.display().to_string()];
        argv.extend(corpus.build_command(true, cli.jobs)?);
        let (ok, out, secs) = run_build(&argv, &corpus.tree, &env)?;
        // distccd logs a job after its client has the result: the build can end before
        // the last jobs are logged. A TU that never reached distccd leaves the count
        // short, and only costs this wait.
        d.jobs_logged_within(local_objs.len(), Duration::from_secs(10));
        let log = d.log();
        drop(d);
        let pump_jobs = e2e::pump_mode_jobs(&log).len();
        let compiled = log.lines().filter(|l| l.contains(" COMPILE_OK ")).count();
        let mut r = BuildReport {
            corpus: corpus.name.clone(),
            implementation: name.to_owned(),
            tus: local_objs.len(),
            wall_seconds: secs,
            exit_ok: ok,
            pump_mode_jobs: pump_jobs,
            plain_remote_jobs: compiled.saturating_sub(pump_jobs),
            fallbacks: local_objs.len().saturating_sub(pump_jobs),
            discrepancies: discrepancies(&out),
            pump_summary: out
                .lines()
                .filter(|l| l.starts_with("__________"))
                .map(str::to_owned)
                .collect(),
            failure_tail: if ok { String::new() } else { tail(&out) },
            ..Default::default()
        };
        let scratch = work.path().join("scratch.o");
        for o in &local_objs {
            r.objects_compared += 1;
            let built = corpus.tree.join(o);
            let same = built.is_file()
                && strip(&built, &scratch).is_ok()
                && std::fs::read(&scratch)? == std::fs::read(reference.join(o))?;
            if same {
                r.objects_identical += 1;
            } else if r.objects_differing.len() < 20 {
                r.objects_differing.push(o.display().to_string());
            }
        }
        eprintln!(
            "pump-build: {} {name}: {} of {} in pump mode, {} discrepancies, {} of {} objects identical, {secs:.1} s",
            corpus.name, r.pump_mode_jobs, r.tus, r.discrepancies, r.objects_identical, r.objects_compared
        );
        reports.push(r);
    }
    if let Some(p) = &cli.json {
        std::fs::write(p, serde_json::to_vec_pretty(&reports)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The last 40 lines of a build's output.
fn tail(out: &str) -> String {
    let lines: Vec<&str> = out.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn main() -> ExitCode {
    match run() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pump-build: {e:#}");
            ExitCode::from(2)
        }
    }
}
