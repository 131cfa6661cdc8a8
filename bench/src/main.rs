//! `pump-bench`: measures include servers side by side over their Unix socket, with the
//! requests the distcc client would send for a real code base's compile commands.
//!
//! For each server (ours: the `include_server` launcher; the reference: distcc 3.4's
//! Python `include_server.py`, see `../shared/bench/reference-pump.sh`), in one run:
//! - start-up: the launcher's wall time until it returns (socket accepting);
//! - cold: the first request's latency on a fresh server (median over `--cold-runs`
//!   fresh starts); with `--cold-burst N`, also N first requests at once;
//! - warm: the median and 90th percentile of the sequential passes after the first over
//!   every command (on `--warm-servers` fresh servers, each with a first pass of its own);
//! - throughput with 1, 4 and 16 concurrent clients (requests per second, wall time;
//!   the median of three rounds of a second or more per level);
//! - the server's CPU time and peak memory (`VmHWM`), files per reply, fall-backs.
//!
//! The two servers take turns, so that a slow stretch of a shared machine falls on both
//! alike: the cold starts alternate start by start and the sequential passes pass by
//! pass (A B, B A, A B, ...).
//!
//! Compile commands come from a `compile_commands.json` (cmake) or from `make -n` output
//! (`--make-dry-run`), whose compiler lines are split with shell quoting rules.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use common::wire::{self, tags, ArgvLimits};
use pump_bench::results::BenchReport as Report;
use serde::Deserialize;

/// Command line.
#[derive(Parser, Debug)]
#[command(about = "Benchmark include servers side by side on real compile commands")]
struct Cli {
    /// compile_commands.json of the code base.
    #[arg(long, conflicts_with = "make_dry_run")]
    compile_commands: Option<PathBuf>,
    /// `make -n` output of the code base (compiler lines are used).
    #[arg(long, requires = "directory")]
    make_dry_run: Option<PathBuf>,
    /// The directory the `make -n` commands run in.
    #[arg(long)]
    directory: Option<PathBuf>,
    /// A directory of C++ sources, each compiled as `g++ -std=c++17 -O1 -c F -o F.o`
    /// (the Boost set in tests/boost-set).
    #[arg(long)]
    sources: Option<PathBuf>,
    /// Our launcher (`target/release/include_server`).
    #[arg(long)]
    ours: Option<PathBuf>,
    /// Directory made by reference-pump.sh (holding include_server/include_server.py).
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Fresh starts for the cold-request median.
    #[arg(long, default_value_t = 3)]
    cold_runs: usize,
    /// Concurrency levels for the throughput test.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
    clients: Vec<usize>,
    /// Label for the corpus in the report.
    #[arg(long, default_value = "corpus")]
    label: String,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Check each reply against `gcc -MM` (recall: every non-system dependency shipped).
    #[arg(long)]
    recall: bool,
    /// Sequential passes over every command for the warm medians (the first also
    /// checks the replies; more passes steady the medians and give a profiler a
    /// long warm-only stretch).
    #[arg(long, default_value_t = 1)]
    warm_passes: usize,
    /// At least this many warm requests per implementation: more passes are made when
    /// `--warm-passes` gives fewer (a code base of a few translation units).
    #[arg(long, default_value_t = 0)]
    min_warm_samples: usize,
    /// Fresh servers (of each implementation) over which the warm passes are made: each
    /// after the first gets a first pass of its own, not counted, then the same warm
    /// passes. The warm median and p90 are over all of them.
    #[arg(long, default_value_t = 1)]
    warm_servers: usize,
    /// Also send this many first requests at once (the first N commands, round and
    /// round) to a fresh server with nothing saved, as `pump make -jN` starts, and
    /// time them until the last is answered (over `--burst-runs` servers); 0: not done.
    #[arg(long, default_value_t = 0)]
    cold_burst: usize,
    /// Fresh servers for the `--cold-burst` median (default: `--cold-runs`).
    #[arg(long)]
    burst_runs: Option<usize>,
    /// Internal: serve as the round-trip floor's stand-in server on this socket, in a
    /// process of its own, answering each request at once with `--stand-in-paths` paths.
    #[arg(long, hide = true)]
    stand_in: Option<PathBuf>,
    #[arg(long, hide = true, default_value_t = 1)]
    stand_in_paths: usize,
}

/// One compile command.
#[derive(Debug, Clone)]
struct Compile {
    directory: PathBuf,
    argv: Vec<String>,
}

#[derive(Deserialize)]
struct CcjEntry {
    directory: PathBuf,
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    arguments: Option<Vec<String>>,
}

fn load_ccj(path: &Path) -> Result<Vec<Compile>> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let entries: Vec<CcjEntry> =
        serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))?;
    entries
        .into_iter()
        .map(|e| {
            let argv = match (e.arguments, e.command) {
                (Some(a), _) => a,
                (None, Some(c)) => shlex::split(&c).context("unbalanced quotes in a command")?,
                (None, None) => bail!("entry without command or arguments"),
            };
            Ok(Compile {
                directory: e.directory,
                argv,
            })
        })
        .collect()
}

fn load_make_dry_run(path: &Path, directory: &Path) -> Result<Vec<Compile>> {
    // Asked as the distcc client asks: from its getcwd(), absolute and without symlinks
    // (a relative directory made every request a fall-back).
    let directory = std::fs::canonicalize(directory)
        .with_context(|| format!("--directory {}", directory.display()))?;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let compilers = ["cc", "gcc", "c++", "g++", "clang", "clang++"];
    Ok(text
        .lines()
        .filter_map(shlex::split)
        .filter(|w| {
            w.first().is_some_and(|c| compilers.contains(&c.as_str()))
                && w.iter().any(|a| a == "-c")
        })
        .map(|argv| Compile {
            directory: directory.clone(),
            argv,
        })
        .collect())
}

fn load_sources(dir: &Path) -> Result<Vec<Compile>> {
    let dir = std::fs::canonicalize(dir).with_context(|| format!("{}", dir.display()))?;
    let mut names: Vec<String> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".cpp"))
        .collect();
    names.sort();
    Ok(names
        .into_iter()
        .map(|n| Compile {
            directory: dir.clone(),
            argv: [
                "g++",
                "-std=c++17",
                "-O1",
                "-c",
                &n,
                "-o",
                &format!("{n}.o"),
            ]
            .map(str::to_owned)
            .to_vec(),
        })
        .collect())
}

/// A running include server.
struct Server {
    socket: PathBuf,
    pid: i32,
    startup: Duration,
    _dir: tempfile::TempDir,
}

#[derive(Clone, Debug)]
enum Impl {
    Ours(PathBuf),
    Python(PathBuf),
}

impl Impl {
    fn name(&self) -> &'static str {
        match self {
            Impl::Ours(_) => "rust",
            Impl::Python(_) => "python",
        }
    }

    /// Starts a server; ours saves and reads compiler probes in `probe_cache` (`None`:
    /// nowhere).
    fn start(&self, probe_cache: Option<&Path>) -> Result<Server> {
        let dir = tempfile::Builder::new().prefix("pump-bench.").tempdir()?;
        let socket = dir.path().join("socket");
        let pid_file = dir.path().join("pid");
        let mut cmd = match self {
            Impl::Ours(launcher) => {
                let mut c = Command::new(launcher);
                c.env(
                    "INCLUDE_SERVER_PROBE_CACHE",
                    probe_cache.map_or(Default::default(), |p| p.as_os_str().to_owned()),
                );
                c
            }
            Impl::Python(root) => {
                let pkg = root.join("include_server");
                let mut c = Command::new("python3");
                c.arg(pkg.join("include_server.py"))
                    .env("PYTHONPATH", &pkg)
                    .env("PYTHONOPTIMIZE", "1");
                c
            }
        };
        cmd.arg("--port")
            .arg(&socket)
            .arg("--pid_file")
            .arg(&pid_file);
        let t = Instant::now();
        let status = cmd.status().with_context(|| format!("starting {self:?}"))?;
        let startup = t.elapsed();
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap_or_default()
            .trim()
            .parse()
            .with_context(|| format!("{self:?} wrote no pid (exit {status})"))?;
        if !socket.exists() {
            bail!("{self:?} made no socket (exit {status})");
        }
        Ok(Server {
            socket,
            pid,
            startup,
            _dir: dir,
        })
    }
}

impl Server {
    /// One request; returns the number of entries in the reply.
    fn request(&self, c: &Compile) -> Result<usize> {
        Ok(self.request_paths(c)?.len())
    }

    /// One request; returns the reply's paths.
    fn request_paths(&self, c: &Compile) -> Result<Vec<Vec<u8>>> {
        round_trip(&self.socket, c)
    }

    fn proc_status(&self, key: &str) -> Option<u64> {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    }

    /// User + system CPU seconds of the server process (and its reaped children).
    fn cpu_seconds(&self) -> f64 {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) else {
            return 0.0;
        };
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, r)| r.split_whitespace().collect())
            .unwrap_or_default();
        // After the command name: state is field 3, utime 14, stime 15, cutime 16, cstime 17.
        let get = |i: usize| {
            fields
                .get(i - 3)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        (get(14) + get(15) + get(16) + get(17)) / hz
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: signalling the server we started.
        unsafe { libc::kill(self.pid, libc::SIGTERM) };
        for _ in 0..1000 {
            // SAFETY: signal 0 only checks existence.
            if unsafe { libc::kill(self.pid, 0) } != 0 {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// What one run collects for one implementation.
#[derive(Default)]
struct Tally {
    startups: Vec<f64>,
    colds: Vec<f64>,
    colds_saved: Vec<f64>,
    bursts: Vec<f64>,
    first_pass: f64,
    warm: Vec<f64>,
    files: Vec<f64>,
    fallbacks: usize,
    recall_misses: usize,
    missed: Vec<String>,
    files_shipped: usize,
    per_request: Vec<usize>,
    errors: usize,
}

/// The implementations' indices in the order of round `round`: which goes first
/// alternates from one round to the next (A B, B A, A B, ...), so that neither always
/// runs right after the other and a slow stretch of a shared machine falls on both.
fn order(n: usize, round: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    if round % 2 == 1 {
        v.reverse();
    }
    v
}

/// Measures every implementation. The cold starts alternate between them start by start,
/// the sequential passes pass by pass (each pass over every command runs on one server
/// alone: requests that alternate between servers would each find the other's
/// footprint in the CPU caches); the throughput test runs each alone (its clients load
/// the whole machine).
fn measure(
    impls: &[Impl],
    commands: &[Compile],
    deps: &[Vec<PathBuf>],
    cli: &Cli,
) -> Result<Vec<Report>> {
    let n = impls.len();
    let mut tally: Vec<Tally> = (0..n).map(|_| Tally::default()).collect();
    let cold = |imp: &Impl, probe_cache: Option<&Path>| -> Result<(f64, f64)> {
        let s = imp.start(probe_cache)?;
        let t = Instant::now();
        s.request(&commands[0])?;
        Ok((ms(s.startup), ms(t.elapsed())))
    };
    for round in 0..cli.cold_runs.max(1) {
        for k in order(n, round) {
            let (startup, first) = cold(&impls[k], None)?;
            tally[k].startups.push(startup);
            tally[k].colds.push(first);
        }
    }
    if cli.cold_burst > 0 {
        for round in 0..cli.burst_runs.unwrap_or(cli.cold_runs).max(1) {
            for k in order(n, round) {
                let s = impls[k].start(None)?;
                tally[k]
                    .bursts
                    .push(cold_burst(&s, commands, cli.cold_burst)?);
            }
        }
    }
    // The same, with the probes saved by a first server (ours only: Python saves none).
    let saved = tempfile::Builder::new()
        .prefix("pump-bench-probes.")
        .tempdir()?;
    for (k, imp) in impls.iter().enumerate() {
        if let Impl::Ours(_) = imp {
            cold(imp, Some(saved.path()))?;
            for _ in 0..cli.cold_runs.max(1) {
                tally[k].colds_saved.push(cold(imp, Some(saved.path()))?.1);
            }
        } else {
            tally[k].colds_saved = tally[k].colds.clone();
        }
    }
    let servers: Vec<Server> = impls
        .iter()
        .map(|imp| imp.start(Some(saved.path())))
        .collect::<Result<_>>()?;
    // The first pass: each command's first request, analysed from scratch.
    for k in order(n, 0) {
        for c in commands {
            let t = Instant::now();
            if let Err(e) = servers[k].request(c) {
                tally[k].errors += 1;
                eprintln!("pump-bench: {}: request failed: {e:#}", impls[k].name());
            }
            tally[k].first_pass += ms(t.elapsed());
        }
    }
    // The second pass, warm, checks the replies.
    for k in order(n, 1) {
        for (i, c) in commands.iter().enumerate() {
            let t = Instant::now();
            let paths = servers[k].request_paths(c);
            let took = ms(t.elapsed());
            let tk = &mut tally[k];
            tk.warm.push(took);
            let paths = paths.unwrap_or_else(|e| {
                tk.errors += 1;
                eprintln!("pump-bench: {}: request failed: {e:#}", impls[k].name());
                Vec::new()
            });
            let count = paths.len();
            tk.files.push(count as f64);
            if count == 0 {
                tk.fallbacks += 1;
            }
            let shipped = shipped_files(&paths);
            tk.files_shipped += shipped.len();
            tk.per_request.push(shipped.len());
            if let Some(deps) = deps.get(i) {
                let miss: Vec<&PathBuf> = deps.iter().filter(|d| !shipped.contains(*d)).collect();
                if !miss.is_empty() && count > 0 {
                    tk.recall_misses += 1;
                    for m in miss {
                        if tk.missed.len() < 20 {
                            tk.missed.push(m.display().to_string());
                        }
                    }
                }
            }
        }
    }
    let warm_ms: Vec<Vec<f64>> = tally.iter().map(|t| t.warm.clone()).collect();
    let passes = cli
        .warm_passes
        .max(cli.min_warm_samples.div_ceil(commands.len().max(1)));
    // One timed pass over every command on each of `servers`, in the order of `round`.
    let timed_pass = |servers: &[Server], round: usize, tally: &mut [Tally]| {
        for k in order(n, round) {
            for c in commands {
                let t = Instant::now();
                if servers[k].request(c).is_err() {
                    tally[k].errors += 1;
                }
                tally[k].warm.push(ms(t.elapsed()));
            }
        }
    };
    for pass in 1..passes {
        timed_pass(&servers, pass + 1, &mut tally);
    }
    // The same warm passes on more servers. Where the kernel runs a server's threads
    // against the client's core is settled early in the server's life and holds for it:
    // one server gives one draw of it, several give its spread.
    for extra in 1..cli.warm_servers.max(1) {
        let more: Vec<Server> = impls
            .iter()
            .map(|imp| imp.start(Some(saved.path())))
            .collect::<Result<_>>()?;
        // A first pass, not counted, analyses every command.
        for k in order(n, extra) {
            for c in commands {
                if more[k].request(c).is_err() {
                    tally[k].errors += 1;
                }
            }
        }
        for pass in 0..passes {
            timed_pass(&more, extra + pass + 1, &mut tally);
        }
    }
    let mut reports = Vec::new();
    for ((imp, server), (mut t, warm_ms)) in impls
        .iter()
        .zip(servers)
        .zip(tally.into_iter().zip(warm_ms))
    {
        // The CPU of the same work for both: the throughput test runs for a time, not
        // for a number of requests.
        let cpu_seconds = server.cpu_seconds();
        eprintln!("pump-bench: {}: throughput", imp.name());
        let server = Arc::new(server);
        let throughput = throughput(&server, commands, &cli.clients)?;
        let mut sorted = t.warm.clone();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let p90 = sorted.get(sorted.len() * 9 / 10).copied().unwrap_or(0.0);
        reports.push(Report {
            implementation: imp.name().into(),
            requests: commands.len(),
            startup_ms: median(&mut t.startups),
            cold_first_ms: median(&mut t.colds),
            cold_saved_probes_ms: median(&mut t.colds_saved),
            first_pass_total_ms: t.first_pass,
            cold_burst_ms: if t.bursts.is_empty() {
                0.0
            } else {
                median(&mut t.bursts)
            },
            cold_burst_clients: cli.cold_burst,
            warm_median_ms: median(&mut t.warm),
            warm_p90_ms: p90,
            round_trip_floor_ms: 0.0,
            round_trip_floor_process_ms: 0.0,
            throughput,
            cpu_seconds,
            peak_rss_mib: server.proc_status("VmHWM:").unwrap_or(0) as f64 / 1024.0,
            median_files: median(&mut t.files) as usize,
            fallbacks: t.fallbacks,
            recall_misses: t.recall_misses,
            missed: t.missed,
            files_shipped: t.files_shipped,
            gcc_mm_files: deps.iter().map(Vec::len).sum(),
            errors: t.errors,
            warm_ms,
            files: t.per_request,
        });
    }
    Ok(reports)
}

/// `n` first requests sent at once to the fresh server `s` (each client its own
/// command, the first `n` round and round), from a barrier; ms until the last is
/// answered. A failed request fails the measurement.
fn cold_burst(s: &Server, commands: &[Compile], n: usize) -> Result<f64> {
    let barrier = std::sync::Barrier::new(n + 1);
    std::thread::scope(|scope| {
        let clients: Vec<_> = (0..n)
            .map(|i| {
                let (barrier, c) = (&barrier, &commands[i % commands.len()]);
                scope.spawn(move || {
                    barrier.wait();
                    s.request(c)
                })
            })
            .collect();
        barrier.wait();
        let t = Instant::now();
        for c in clients {
            c.join().expect("client thread")?;
        }
        Ok(ms(t.elapsed()))
    })
}

/// Rounds of the throughput test: every level runs once per round, and each level's
/// figure is its median over the rounds, so that one busy second of a shared machine
/// does not decide it.
const THROUGHPUT_ROUNDS: usize = 3;
/// How long one measurement keeps its clients sending requests (at least
/// `THROUGHPUT_MIN_REQUESTS` of them, at most `THROUGHPUT_CAP`).
const THROUGHPUT_SPAN: Duration = Duration::from_secs(1);
const THROUGHPUT_MIN_REQUESTS: usize = 200;
const THROUGHPUT_CAP: Duration = Duration::from_secs(20);

/// Requests per second with each number of concurrent `clients`: the median of
/// `THROUGHPUT_ROUNDS` rounds, the levels' order alternating from round to round
/// (1 4 16, 16 4 1, ...). A server that served nothing in a whole round (the reference
/// on Boost, which gives up on every request) is not given more rounds.
fn throughput(
    server: &Arc<Server>,
    commands: &[Compile],
    clients: &[usize],
) -> Result<Vec<(usize, f64)>> {
    let commands = Arc::new(commands.to_vec());
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); clients.len()];
    for round in 0..THROUGHPUT_ROUNDS {
        let mut served = 0.0;
        for k in order(clients.len(), round) {
            let rate = throughput_once(server, &commands, clients[k])?;
            served += rate;
            rates[k].push(rate);
        }
        if served == 0.0 {
            break;
        }
    }
    Ok(clients
        .iter()
        .zip(&mut rates)
        .map(|(&n, r)| (n, median(r)))
        .collect())
}

/// One throughput measurement: `n` clients send the commands again and again until
/// `THROUGHPUT_SPAN` has passed and `THROUGHPUT_MIN_REQUESTS` were sent, or
/// `THROUGHPUT_CAP` has passed; requests served per second of wall time.
fn throughput_once(server: &Arc<Server>, commands: &Arc<Vec<Compile>>, n: usize) -> Result<f64> {
    let done = Arc::new(AtomicUsize::new(0));
    let next = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (server, next, commands) = (server.clone(), next.clone(), commands.clone());
            let done = done.clone();
            std::thread::spawn(move || -> Result<()> {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let spent = t.elapsed();
                    if (i >= THROUGHPUT_MIN_REQUESTS && spent >= THROUGHPUT_SPAN)
                        || spent >= THROUGHPUT_CAP
                    {
                        return Ok(());
                    }
                    // A failed request is not counted as served.
                    if server.request(&commands[i % commands.len()]).is_ok() {
                        done.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("client thread")?;
    }
    let done = done.load(Ordering::SeqCst);
    Ok(done as f64 / t.elapsed().as_secs_f64())
}

/// The realpaths of the files a reply ships: `.lzo`/`.lzo.abs` entries with the client
/// root's three components removed, as the distcc client maps them.
fn shipped_files(paths: &[Vec<u8>]) -> std::collections::HashSet<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    paths
        .iter()
        .filter_map(|p| {
            let p = p.strip_suffix(b".abs").unwrap_or(p);
            let p = p.strip_suffix(b".lzo")?;
            let mut slashes = p.iter().enumerate().filter(|(_, b)| **b == b'/');
            let (i, _) = slashes.nth(3)?;
            Some(PathBuf::from(std::ffi::OsStr::from_bytes(&p[i..])))
        })
        .collect()
}

/// The non-system files `gcc -MM` lists for a compile command, as realpaths.
fn gcc_deps(c: &Compile) -> Result<Vec<PathBuf>> {
    let mut args: Vec<String> = Vec::new();
    let mut it = c.argv.iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "-o" | "-MF" | "-MT" | "-MQ" => {
                it.next();
            }
            "-c" | "-MD" | "-MMD" | "-MP" | "-M" | "-MM" => {}
            _ => args.push(a.clone()),
        }
    }
    let out = Command::new(&c.argv[0])
        .args(&args)
        .args(["-MM", "-MF", "-"])
        .current_dir(&c.directory)
        .output()
        .with_context(|| format!("running {} -MM", c.argv[0]))?;
    if !out.status.success() {
        bail!(
            "{} -MM failed in {}: {}",
            c.argv[0],
            c.directory.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout).replace("\\\n", " ");
    let deps = text.split_once(':').map(|(_, d)| d).unwrap_or("");
    Ok(deps
        .split_whitespace()
        .map(|d| {
            let p = c.directory.join(d);
            std::fs::canonicalize(&p).unwrap_or(p)
        })
        .collect())
}

fn run() -> Result<ExitCode> {
    let cli = Cli::parse();
    if let Some(socket) = &cli.stand_in {
        stand_in(socket, cli.stand_in_paths)?;
        return Ok(ExitCode::SUCCESS);
    }
    let commands = match (&cli.compile_commands, &cli.make_dry_run, &cli.directory) {
        (Some(p), _, _) => load_ccj(p)?,
        (None, Some(p), Some(d)) => load_make_dry_run(p, d)?,
        _ => match &cli.sources {
            Some(d) => load_sources(d)?,
            None => bail!(
                "give --compile-commands FILE, --make-dry-run FILE --directory DIR, or --sources DIR"
            ),
        },
    };
    if commands.is_empty() {
        bail!("no compile commands found");
    }
    let mut impls = Vec::new();
    if let Some(p) = &cli.ours {
        impls.push(Impl::Ours(p.clone()));
    }
    if let Some(p) = &cli.reference {
        impls.push(Impl::Python(p.clone()));
    }
    if impls.is_empty() {
        bail!("give --ours and/or --reference");
    }
    let deps: Vec<Vec<PathBuf>> = if cli.recall {
        commands.iter().map(gcc_deps).collect::<Result<_>>()?
    } else {
        Vec::new()
    };
    eprintln!(
        "pump-bench: {} on {} ({} requests)",
        impls
            .iter()
            .map(Impl::name)
            .collect::<Vec<_>>()
            .join(" and "),
        cli.label,
        commands.len()
    );
    let mut reports = measure(&impls, &commands, &deps, &cli)?;
    let floor = round_trip_floor(&commands, reports[0].median_files)?;
    let floor_process = round_trip_floor_process(&commands, reports[0].median_files)?;
    for r in &mut reports {
        r.round_trip_floor_ms = floor;
        r.round_trip_floor_process_ms = floor_process;
    }
    print_table(&cli.label, &reports);
    if let Some(p) = &cli.json {
        std::fs::write(p, serde_json::to_vec_pretty(&reports)?)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// One request over `socket`, as the distcc client sends it; returns the reply's paths.
/// The reply is read through a buffer, so that the harness's own syscalls do not
/// dominate what is measured (distcc's client makes two `read(2)` calls per path, the
/// same fixed cost for any server).
fn round_trip(socket: &Path, c: &Compile) -> Result<Vec<Vec<u8>>> {
    let mut s = UnixStream::connect(socket).context("connect")?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut buf = Vec::new();
    wire::write_bytes(
        &mut buf,
        tags::CDIR,
        c.directory.as_os_str().as_encoded_bytes(),
    )?;
    wire::write_argv(&mut buf, &c.argv)?;
    s.write_all(&buf)?;
    let mut r = std::io::BufReader::with_capacity(64 * 1024, s);
    Ok(wire::read_argv(&mut r, ArgvLimits::default())?)
}

/// The reply of the round-trip floor's stand-in: `paths` made-up paths.
fn stand_in_reply(paths: usize) -> Result<Vec<u8>> {
    let reply: Vec<String> = (0..paths.max(1))
        .map(|i| {
            format!(
                "/dev/shm/tmp.floor/include-server-1-1/usr/src/project/include/header-{i:04}.h.lzo"
            )
        })
        .collect();
    let mut reply_bytes = Vec::new();
    wire::write_argv(&mut reply_bytes, &reply)?;
    Ok(reply_bytes)
}

/// Answers one stand-in connection: reads the request, writes `reply`.
fn stand_in_answer(s: &std::os::unix::net::UnixStream, reply: &[u8]) -> Result<()> {
    let mut r = std::io::BufReader::new(s);
    wire::read_bytes(&mut r, tags::CDIR, 1 << 16)?;
    wire::read_argv(&mut r, ArgvLimits::default())?;
    let mut s = s;
    s.write_all(reply)?;
    Ok(())
}

/// The median round trip of `n` of `commands` (in turn) against `socket`.
fn floor_median(socket: &Path, commands: &[Compile], n: usize) -> Result<f64> {
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        round_trip(socket, &commands[i % commands.len()])?;
        times.push(ms(t.elapsed()));
    }
    Ok(median(&mut times))
}

/// The round-trip floor: the median latency of the same requests against a stand-in
/// server (a thread of this process) that reads each request and answers at once with
/// `paths` made-up paths. What the socket, the kernel and this client cost any include
/// server, before it does any work.
fn round_trip_floor(commands: &[Compile], paths: usize) -> Result<f64> {
    let dir = tempfile::tempdir()?;
    let socket = dir.path().join("floor.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket)?;
    let reply_bytes = stand_in_reply(paths)?;
    let n = commands.len().clamp(300, 2000);
    let server = std::thread::spawn(move || -> Result<()> {
        for _ in 0..n {
            let (s, _) = listener.accept()?;
            stand_in_answer(&s, &reply_bytes)?;
        }
        Ok(())
    });
    let floor = floor_median(&socket, commands, n)?;
    server.join().expect("stand-in server thread")?;
    Ok(floor)
}

/// The same floor with the stand-in in a process of its own (this program again, with
/// `--stand-in`), as every include server is: waking another process costs more than
/// waking a thread of the client's own on some machines (virtual ones especially).
fn round_trip_floor_process(commands: &[Compile], paths: usize) -> Result<f64> {
    let dir = tempfile::tempdir()?;
    let socket = dir.path().join("floor.sock");
    let mut child = Command::new(std::env::current_exe()?)
        .arg("--stand-in")
        .arg(&socket)
        .arg("--stand-in-paths")
        .arg(paths.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("starting the stand-in server")?;
    // It prints a line once it listens.
    let mut line = String::new();
    let ready = std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().context("stand-in stdout")?),
        &mut line,
    );
    let floor = match ready {
        Ok(n) if n > 0 => floor_median(&socket, commands, commands.len().clamp(300, 2000)),
        _ => Err(anyhow::anyhow!("the stand-in server did not start")),
    };
    let _ = child.kill();
    let _ = child.wait();
    floor
}

/// `--stand-in`: serves until killed.
fn stand_in(socket: &Path, paths: usize) -> Result<()> {
    let listener = std::os::unix::net::UnixListener::bind(socket)?;
    let reply = stand_in_reply(paths)?;
    println!("listening");
    std::io::stdout().flush()?;
    loop {
        let (s, _) = listener.accept()?;
        stand_in_answer(&s, &reply)?;
    }
}

fn print_table(label: &str, reports: &[Report]) {
    println!("\n### {label} ({} requests)\n", reports[0].requests);
    let mut header = "| metric |".to_owned();
    let mut rule = "|---|".to_owned();
    for r in reports {
        header.push_str(&format!(" {} |", r.implementation));
        rule.push_str("---|");
    }
    if reports.len() == 2 {
        header.push_str(" ratio (python / rust) |");
        rule.push_str("---|");
    }
    println!("{header}\n{rule}");
    let row = |name: &str, f: &dyn Fn(&Report) -> f64, unit: &str, higher_better: bool| {
        let mut line = format!("| {name} |");
        for r in reports {
            line.push_str(&format!(" {:.2} {unit} |", f(r)));
        }
        if reports.len() == 2 {
            let (a, b) = (f(&reports[0]), f(&reports[1]));
            let ratio = if higher_better { a / b } else { b / a };
            if ratio.is_finite() {
                line.push_str(&format!(" {ratio:.1}x |"));
            } else {
                line.push_str(" – |");
            }
        }
        println!("{line}");
    };
    row("launcher start-up", &|r| r.startup_ms, "ms", false);
    row("cold first request", &|r| r.cold_first_ms, "ms", false);
    row(
        "cold first request, probes saved",
        &|r| r.cold_saved_probes_ms,
        "ms",
        false,
    );
    if reports.iter().any(|r| r.cold_burst_clients > 0) {
        row(
            &format!(
                "cold burst, {} first requests at once",
                reports[0].cold_burst_clients
            ),
            &|r| r.cold_burst_ms,
            "ms",
            false,
        );
    }
    row(
        "first pass, all requests",
        &|r| r.first_pass_total_ms,
        "ms",
        false,
    );
    row("warm request, median", &|r| r.warm_median_ms, "ms", false);
    row("warm request, p90", &|r| r.warm_p90_ms, "ms", false);
    row(
        "round-trip floor (stand-in server)",
        &|r| r.round_trip_floor_ms,
        "ms",
        false,
    );
    row(
        "round-trip floor (stand-in server process)",
        &|r| r.round_trip_floor_process_ms,
        "ms",
        false,
    );
    for (i, (n, _)) in reports[0].throughput.iter().enumerate() {
        row(
            &format!("throughput, {n} client(s)"),
            &|r| r.throughput.get(i).map(|t| t.1).unwrap_or(0.0),
            "req/s",
            true,
        );
    }
    row(
        "server CPU, the sequential passes",
        &|r| r.cpu_seconds,
        "s",
        false,
    );
    row("peak memory (VmHWM)", &|r| r.peak_rss_mib, "MiB", false);
    row(
        "files per reply, median",
        &|r| r.median_files as f64,
        "",
        false,
    );
    row(
        "fall-backs (empty replies)",
        &|r| r.fallbacks as f64,
        "",
        false,
    );
    row(
        "files shipped, all replies",
        &|r| r.files_shipped as f64,
        "",
        false,
    );
    row(
        "files gcc -MM lists, all requests",
        &|r| r.gcc_mm_files as f64,
        "",
        false,
    );
    row("failed requests", &|r| r.errors as f64, "", false);
    row(
        "replies missing a gcc -MM file",
        &|r| r.recall_misses as f64,
        "",
        false,
    );
    for r in reports {
        for m in &r.missed {
            println!("- {} missed {m}", r.implementation);
        }
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pump-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}
