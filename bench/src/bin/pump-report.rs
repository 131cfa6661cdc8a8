//! `pump-report`: turns one suite run's JSON results (from `pump-bench`, `pump-build` and
//! `pump-startup`) into Markdown tables, a list of targets met or missed with their
//! numbers, and small hand-written SVG plots (per-request latency, its distribution, and
//! throughput against concurrent clients), for `BENCHMARKS.md`.
//!
//! `pump-report --results DIR --out DIR`: reads `DIR/bench-CORPUS.json`,
//! `DIR/build-CORPUS.json`, `DIR/startup.json`, `DIR/versions.txt` and
//! `DIR/machine.txt` (each optional); writes `OUT/summary.md`, `OUT/latency.svg`,
//! `OUT/latency-cdf.svg` and `OUT/throughput.svg`. Exits 1 when a correctness target
//! (recall, fall-backs, discrepancies, objects) is missed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use pump_bench::results::{BenchReport as Bench, BuildReport as Build};
use serde::de::DeserializeOwned;
use serde::Deserialize;

#[derive(Parser)]
#[command(about = "Tables, targets and SVG plots from a suite run's JSON results")]
struct Cli {
    /// The directory holding the run's JSON files.
    #[arg(long)]
    results: PathBuf,
    /// Where to write summary.md and the SVGs.
    #[arg(long)]
    out: PathBuf,
}

const CORPORA: [&str; 4] = ["git", "leveldb", "ninja", "boost"];
const RUST: &str = "#d9480f";
const PYTHON: &str = "#1c7ed6";

#[derive(Deserialize)]
struct Startup {
    what: String,
    runs: usize,
    rust_ms: f64,
    python_ms: f64,
}

fn load<T: DeserializeOwned>(p: &Path) -> Result<Option<T>> {
    if !p.exists() {
        return Ok(None);
    }
    let text = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
    Ok(Some(
        serde_json::from_slice(&text).with_context(|| format!("parsing {}", p.display()))?,
    ))
}

/// One corpus's results: (rust, python) from the socket benchmark, and the builds.
struct Corpus {
    name: &'static str,
    rust: Option<Bench>,
    python: Option<Bench>,
    local: Option<Build>,
    rust_build: Option<Build>,
    python_build: Option<Build>,
}

fn pick<T: Clone>(v: &Option<Vec<T>>, f: impl Fn(&T) -> bool) -> Option<T> {
    v.as_ref().and_then(|v| v.iter().find(|x| f(x)).cloned())
}

fn ratio(python: f64, rust: f64) -> String {
    if rust > 0.0 && python > 0.0 {
        format!("{:.1}x", python / rust)
    } else {
        "–".into()
    }
}

fn tput(b: &Bench, n: usize) -> f64 {
    b.throughput
        .iter()
        .find(|t| t.0 == n)
        .map(|t| t.1)
        .unwrap_or(0.0)
}

/// A target line: (met, text).
struct Target(bool, String);

fn run() -> Result<ExitCode> {
    let cli = Cli::parse();
    std::fs::create_dir_all(&cli.out)?;
    let mut corpora = Vec::new();
    for name in CORPORA {
        let bench: Option<Vec<Bench>> = load(&cli.results.join(format!("bench-{name}.json")))?;
        let build: Option<Vec<Build>> = load(&cli.results.join(format!("build-{name}.json")))?;
        corpora.push(Corpus {
            name,
            rust: pick(&bench, |b| b.implementation == "rust"),
            python: pick(&bench, |b| b.implementation == "python"),
            local: pick(&build, |b| b.implementation == "local"),
            rust_build: pick(&build, |b| b.implementation == "rust"),
            python_build: pick(&build, |b| b.implementation == "python"),
        });
    }
    let startup: Vec<Startup> = load(&cli.results.join("startup.json"))?.unwrap_or_default();
    let mut md = String::new();
    let text = |f: &str| std::fs::read_to_string(cli.results.join(f)).unwrap_or_default();
    writeln!(md, "### Machine and versions\n")?;
    for l in text("machine.txt")
        .lines()
        .chain(text("versions.txt").lines())
    {
        writeln!(md, "- {l}")?;
    }

    // Correctness over the socket.
    writeln!(
        md,
        "\n### Correctness over the socket (every TU, warm pass)\n\n\
         | corpus | TUs | gcc -MM files | files shipped rust / python | TUs where rust ships more | \
         replies missing a gcc -MM file rust / python | fall-backs rust / python | failed requests rust / python |\n\
         |---|---|---|---|---|---|---|---|"
    )?;
    let mut targets = Vec::new();
    for c in &corpora {
        let (Some(r), Some(p)) = (&c.rust, &c.python) else {
            continue;
        };
        let more = r
            .files
            .iter()
            .zip(&p.files)
            .filter(|(a, b)| **b > 0 && a > b)
            .count();
        writeln!(
            md,
            "| {} | {} | {} | {} / {} | {} | {} / {} | {} / {} | {} / {} |",
            c.name,
            r.requests,
            r.gcc_mm_files,
            r.files_shipped,
            p.files_shipped,
            more,
            r.recall_misses,
            p.recall_misses,
            r.fallbacks,
            p.fallbacks,
            r.errors,
            p.errors
        )?;
        targets.push(Target(
            r.recall_misses == 0 && r.fallbacks == 0 && r.errors == 0,
            format!(
                "{}: recall 100% on every TU (rust: {} replies missing a file, {} fall-backs, {} failed of {})",
                c.name, r.recall_misses, r.fallbacks, r.errors, r.requests
            ),
        ));
        // Compare on the TUs both served: the Python server ships nothing when it gives up.
        let both = |v: &Vec<usize>, w: &Vec<usize>| -> usize {
            v.iter()
                .zip(w)
                .filter(|(a, b)| **a > 0 && **b > 0)
                .map(|(a, _)| a)
                .sum()
        };
        let (rs, ps) = (both(&r.files, &p.files), both(&p.files, &r.files));
        targets.push(Target(
            rs <= ps,
            format!(
                "{}: files shipped no more than Python's on the TUs both served ({rs} vs {ps}; {more} TUs with more)",
                c.name
            ),
        ));
    }
    for c in &corpora {
        for b in [&c.rust, &c.python].into_iter().flatten() {
            for m in &b.missed {
                writeln!(md, "\n- {} {} missed `{m}`", c.name, b.implementation)?;
            }
        }
    }

    // Remote builds.
    writeln!(
        md,
        "\n### Remote build: `pump make` against a loopback distccd, DISTCC_FALLBACK=0\n\n\
         | corpus | TUs | pump | build ok | compiled remotely in pump mode | plain remote (fell back) | \
         fall-backs | discrepancies | objects equal to local (strip-debug) | wall time |\n\
         |---|---|---|---|---|---|---|---|---|---|"
    )?;
    for c in &corpora {
        for b in [&c.rust_build, &c.python_build].into_iter().flatten() {
            writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} / {} | {:.1} s (local {:.1} s) |",
                c.name,
                b.tus,
                b.implementation,
                if b.exit_ok { "yes" } else { "**no**" },
                b.pump_mode_jobs,
                b.plain_remote_jobs,
                b.fallbacks,
                b.discrepancies,
                b.objects_identical,
                b.objects_compared,
                b.wall_seconds,
                c.local.as_ref().map(|l| l.wall_seconds).unwrap_or(0.0)
            )?;
        }
        if let Some(b) = &c.rust_build {
            targets.push(Target(
                b.exit_ok
                    && b.fallbacks == 0
                    && b.discrepancies == 0
                    && b.objects_identical == b.objects_compared,
                format!(
                    "{}: whole build in pump mode ({} of {} TUs), {} fall-backs, {} discrepancies, {} of {} objects equal",
                    c.name,
                    b.pump_mode_jobs,
                    b.tus,
                    b.fallbacks,
                    b.discrepancies,
                    b.objects_identical,
                    b.objects_compared
                ),
            ));
        }
    }
    for c in &corpora {
        for b in [&c.rust_build, &c.python_build].into_iter().flatten() {
            if !b.objects_differing.is_empty() {
                writeln!(
                    md,
                    "\n- {} {}: objects differing or missing: {}",
                    c.name,
                    b.implementation,
                    b.objects_differing.join(", ")
                )?;
            }
            if !b.failure_tail.is_empty() {
                writeln!(
                    md,
                    "\n- {} {} build failed; its output ended:\n\n```\n{}\n```",
                    c.name, b.implementation, b.failure_tail
                )?;
            }
        }
    }
    let correctness_ok = targets.iter().all(|t| t.0);

    // Cost.
    writeln!(
        md,
        "\n### Cost of the include server (medians; ratio = python / rust, higher is better for rust)\n\n\
         | corpus | metric | rust | python | ratio |\n|---|---|---|---|---|"
    )?;
    for c in &corpora {
        let (Some(r), Some(p)) = (&c.rust, &c.python) else {
            continue;
        };
        let rows: [(&str, f64, f64, &str); 10] = [
            ("launcher start-up", r.startup_ms, p.startup_ms, "ms"),
            (
                "cold first request (nothing saved: the compiler is probed)",
                r.cold_first_ms,
                p.cold_first_ms,
                "ms",
            ),
            (
                "cold first request, compiler probes saved by an earlier server (Python saves none)",
                r.cold_saved_probes_ms,
                p.cold_saved_probes_ms,
                "ms",
            ),
            (
                "warm request, median",
                r.warm_median_ms,
                p.warm_median_ms,
                "ms",
            ),
            ("warm request, p90", r.warm_p90_ms, p.warm_p90_ms, "ms"),
            (
                "round-trip floor (stand-in server answering at once)",
                r.round_trip_floor_ms,
                p.round_trip_floor_ms,
                "ms",
            ),
            (
                "round-trip floor, the stand-in in a process of its own",
                r.round_trip_floor_process_ms,
                p.round_trip_floor_process_ms,
                "ms",
            ),
            ("server CPU, the sequential passes", r.cpu_seconds, p.cpu_seconds, "s"),
            ("peak memory (VmHWM)", r.peak_rss_mib, p.peak_rss_mib, "MiB"),
            (
                "files per reply, median",
                r.median_files as f64,
                p.median_files as f64,
                "",
            ),
        ];
        for (what, a, b, unit) in rows {
            writeln!(
                md,
                "| {} | {what} | {a:.2} {unit} | {b:.2} {unit} | {} |",
                c.name,
                ratio(b, a)
            )?;
        }
        if r.cold_burst_clients > 0 && p.cold_burst_clients > 0 {
            writeln!(
                md,
                "| {} | cold burst: {} first requests at once, nothing saved, until the last reply | {:.2} ms | {:.2} ms | {} |",
                c.name,
                r.cold_burst_clients,
                r.cold_burst_ms,
                p.cold_burst_ms,
                ratio(p.cold_burst_ms, r.cold_burst_ms)
            )?;
        }
        for (n, _) in &r.throughput {
            let (a, b) = (tput(r, *n), tput(p, *n));
            writeln!(
                md,
                "| {} | throughput, {n} client(s) | {a:.0} req/s | {b:.0} req/s | {} |",
                c.name,
                ratio(a, b)
            )?;
        }
        targets.push(Target(
            p.cold_first_ms >= 10.0 * r.cold_first_ms,
            format!(
                "{}: cold first request ≥10x faster ({:.2} ms vs {:.2} ms: {})",
                c.name,
                r.cold_first_ms,
                p.cold_first_ms,
                ratio(p.cold_first_ms, r.cold_first_ms)
            ),
        ));
        targets.push(Target(
            p.cold_saved_probes_ms >= 10.0 * r.cold_saved_probes_ms,
            format!(
                "{}: cold first request ≥10x faster with the compiler probes an earlier server saved ({:.2} ms vs {:.2} ms: {})",
                c.name,
                r.cold_saved_probes_ms,
                p.cold_saved_probes_ms,
                ratio(p.cold_saved_probes_ms, r.cold_saved_probes_ms)
            ),
        ));
        targets.push(Target(
            p.warm_median_ms >= 10.0 * r.warm_median_ms,
            format!(
                "{}: warm median ≥10x faster ({:.3} ms vs {:.3} ms: {}; round-trip floor {:.3} ms, a tenth of Python's median {:.3} ms)",
                c.name,
                r.warm_median_ms,
                p.warm_median_ms,
                ratio(p.warm_median_ms, r.warm_median_ms),
                r.round_trip_floor_ms,
                p.warm_median_ms / 10.0
            ),
        ));
        let scale = |b: &Bench, n| {
            if tput(b, 1) > 0.0 {
                tput(b, n) / tput(b, 1)
            } else {
                0.0
            }
        };
        targets.push(Target(
            scale(r, 4) >= 1.4 && scale(r, 16) >= 1.4,
            format!(
                "{}: throughput scales with clients (rust x{:.2} at 4, x{:.2} at 16 over 1 client; python x{:.2}, x{:.2}; 2 cores, ideal x2)",
                c.name,
                scale(r, 4),
                scale(r, 16),
                scale(p, 4),
                scale(p, 16)
            ),
        ));
        targets.push(Target(
            r.peak_rss_mib <= p.peak_rss_mib,
            format!(
                "{}: peak memory no higher ({:.1} MiB vs {:.1} MiB)",
                c.name, r.peak_rss_mib, p.peak_rss_mib
            ),
        ));
    }
    if !startup.is_empty() {
        writeln!(
            md,
            "\n### pump start-up (medians)\n\n| measurement | runs | rust | python | ratio |\n|---|---|---|---|---|"
        )?;
        for s in &startup {
            writeln!(
                md,
                "| `{}` | {} | {:.1} ms | {:.1} ms | {} |",
                s.what,
                s.runs,
                s.rust_ms,
                s.python_ms,
                ratio(s.python_ms, s.rust_ms)
            )?;
            targets.push(Target(
                s.python_ms >= 20.0 * s.rust_ms,
                format!(
                    "`{}` ≥20x faster ({:.1} ms vs {:.1} ms: {})",
                    s.what,
                    s.rust_ms,
                    s.python_ms,
                    ratio(s.python_ms, s.rust_ms)
                ),
            ));
        }
    }
    writeln!(md, "\n### Targets\n")?;
    for t in &targets {
        writeln!(md, "- [{}] {}", if t.0 { "x" } else { " " }, t.1)?;
    }
    std::fs::write(cli.out.join("summary.md"), &md)?;
    print!("{md}");

    std::fs::write(cli.out.join("latency.svg"), latency_svg(&corpora))?;
    std::fs::write(cli.out.join("latency-cdf.svg"), cdf_svg(&corpora))?;
    std::fs::write(cli.out.join("throughput.svg"), throughput_svg(&corpora))?;
    Ok(if correctness_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A tiny SVG writer: coordinates rounded to 0.1 px to keep the files small.
struct Svg(String);

impl Svg {
    fn new(w: u32, h: u32) -> Svg {
        Svg(format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
             viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"11\">\n\
             <rect width=\"{w}\" height=\"{h}\" fill=\"white\"/>\n"
        ))
    }
    fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, stroke: &str) {
        let _ = writeln!(
            self.0,
            "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"{stroke}\"/>"
        );
    }
    fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str) {
        let _ = writeln!(
            self.0,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"{fill}\"/>"
        );
    }
    fn text(&mut self, x: f64, y: f64, anchor: &str, s: &str) {
        let s = s.replace('&', "&amp;").replace('<', "&lt;");
        let _ = writeln!(
            self.0,
            "<text x=\"{x:.1}\" y=\"{y:.1}\" text-anchor=\"{anchor}\">{s}</text>"
        );
    }
    fn polyline(&mut self, pts: &[(f64, f64)], stroke: &str) {
        let mut p = String::new();
        for (x, y) in pts {
            let _ = write!(p, "{x:.1},{y:.1} ");
        }
        let _ = writeln!(
            self.0,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{stroke}\" stroke-width=\"1.5\"/>",
            p.trim_end()
        );
    }
    /// The two implementations' colours, side by side, starting at `x` on the title row.
    fn legend(&mut self, x: f64) {
        for (i, (name, color)) in [("rust", RUST), ("python", PYTHON)].iter().enumerate() {
            let x = x + 60.0 * i as f64;
            self.rect(x, 10.0, 10.0, 10.0, color);
            self.text(x + 14.0, 19.0, "start", name);
        }
    }
    fn finish(mut self) -> String {
        self.0.push_str("</svg>\n");
        self.0
    }
}

/// A log-10 axis from `lo` to `hi` (powers of ten) mapped onto `[a, b]` pixels.
struct LogAxis {
    lo: f64,
    hi: f64,
    a: f64,
    b: f64,
}

impl LogAxis {
    fn fit(values: impl Iterator<Item = f64>, a: f64, b: f64) -> LogAxis {
        let (mut lo, mut hi) = (f64::MAX, f64::MIN);
        for v in values.filter(|v| *v > 0.0) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if lo > hi {
            (lo, hi) = (1.0, 10.0);
        }
        LogAxis {
            lo: 10f64.powf(lo.log10().floor()),
            hi: 10f64.powf(hi.log10().ceil().max(lo.log10().floor() + 1.0)),
            a,
            b,
        }
    }
    fn at(&self, v: f64) -> f64 {
        let t = (v.max(self.lo).log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10());
        self.a + t * (self.b - self.a)
    }
    fn ticks(&self) -> Vec<f64> {
        let mut v = Vec::new();
        let mut t = self.lo;
        while t <= self.hi * 1.0001 {
            v.push(t);
            t *= 10.0;
        }
        v
    }
}

fn label(v: f64) -> String {
    if v >= 1.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// Cold first request and warm median per corpus, both implementations, log scale.
fn latency_svg(corpora: &[Corpus]) -> String {
    let (w, h) = (760.0, 330.0);
    let mut s = Svg::new(w as u32, h as u32);
    s.text(
        w / 2.0,
        18.0,
        "middle",
        "Include server latency per request (ms, log scale; lower is better)",
    );
    let (left, top, bottom) = (60.0, 40.0, h - 50.0);
    let vals = corpora.iter().flat_map(|c| {
        [&c.rust, &c.python]
            .into_iter()
            .flatten()
            .flat_map(|b| [b.cold_first_ms, b.warm_median_ms])
    });
    let y = LogAxis::fit(vals, bottom, top);
    for t in y.ticks() {
        s.line(left, y.at(t), w - 20.0, y.at(t), "#ddd");
        s.text(left - 6.0, y.at(t) + 4.0, "end", &label(t));
    }
    let group = (w - 20.0 - left) / corpora.len() as f64;
    for (i, c) in corpora.iter().enumerate() {
        let gx = left + group * i as f64;
        s.text(gx + group / 2.0, h - 30.0, "middle", c.name);
        for (j, metric) in ["cold", "warm"].iter().enumerate() {
            let mx = gx + 10.0 + j as f64 * (group - 20.0) / 2.0;
            let bw = (group - 20.0) / 2.0 / 2.0 - 4.0;
            s.text(mx + bw + 2.0, h - 42.0, "middle", metric);
            for (k, (b, color)) in [(&c.rust, RUST), (&c.python, PYTHON)].iter().enumerate() {
                let Some(b) = b else { continue };
                let v = if j == 0 {
                    b.cold_first_ms
                } else {
                    b.warm_median_ms
                };
                let x = mx + k as f64 * (bw + 2.0);
                s.rect(x, y.at(v), bw, bottom - y.at(v), color);
            }
        }
    }
    s.line(left, bottom, w - 20.0, bottom, "black");
    s.legend(w - 130.0);
    s.finish()
}

/// The distribution of warm request latencies per corpus (fraction of requests at or
/// below each latency), log-scaled latency axis.
fn cdf_svg(corpora: &[Corpus]) -> String {
    let (pw, ph) = (360.0, 230.0);
    let (w, h) = (pw * 2.0 + 20.0, ph * 2.0 + 40.0);
    let mut s = Svg::new(w as u32, h as u32);
    s.text(
        w / 2.0,
        18.0,
        "middle",
        "Warm requests: fraction served within a latency (ms, log scale)",
    );
    for (i, c) in corpora.iter().enumerate() {
        let (ox, oy) = (10.0 + pw * (i % 2) as f64, 30.0 + ph * (i / 2) as f64);
        let (left, right, top, bottom) = (ox + 45.0, ox + pw - 15.0, oy + 20.0, oy + ph - 35.0);
        s.text((left + right) / 2.0, oy + 12.0, "middle", c.name);
        let x = LogAxis::fit(
            [&c.rust, &c.python]
                .into_iter()
                .flatten()
                .flat_map(|b| b.warm_ms.iter().copied()),
            left,
            right,
        );
        for t in x.ticks() {
            s.line(x.at(t), top, x.at(t), bottom, "#ddd");
            s.text(x.at(t), bottom + 14.0, "middle", &label(t));
        }
        for f in [0.0, 0.5, 1.0] {
            let yy = bottom - f * (bottom - top);
            s.line(left, yy, right, yy, "#ddd");
            s.text(left - 4.0, yy + 4.0, "end", &format!("{f}"));
        }
        for (b, color) in [(&c.rust, RUST), (&c.python, PYTHON)] {
            let Some(b) = b else { continue };
            let mut v = b.warm_ms.clone();
            v.sort_by(|a, b| a.total_cmp(b));
            let n = v.len().max(1) as f64;
            // At most ~120 points per curve.
            let step = (v.len() / 120).max(1);
            let pts: Vec<(f64, f64)> = v
                .iter()
                .enumerate()
                .filter(|(k, _)| k % step == 0 || *k + 1 == v.len())
                .map(|(k, ms)| (x.at(*ms), bottom - (k + 1) as f64 / n * (bottom - top)))
                .collect();
            s.polyline(&pts, color);
        }
        s.line(left, bottom, right, bottom, "black");
    }
    s.legend(w - 130.0);
    s.finish()
}

/// Requests per second against concurrent clients, per corpus.
fn throughput_svg(corpora: &[Corpus]) -> String {
    let (pw, ph) = (360.0, 220.0);
    let (w, h) = (pw * 2.0 + 20.0, ph * 2.0 + 40.0);
    let mut s = Svg::new(w as u32, h as u32);
    s.text(
        w / 2.0,
        18.0,
        "middle",
        "Throughput (requests/s) against concurrent clients; higher is better",
    );
    for (i, c) in corpora.iter().enumerate() {
        let (ox, oy) = (10.0 + pw * (i % 2) as f64, 30.0 + ph * (i / 2) as f64);
        let (left, right, top, bottom) = (ox + 55.0, ox + pw - 20.0, oy + 20.0, oy + ph - 35.0);
        s.text((left + right) / 2.0, oy + 12.0, "middle", c.name);
        let benches: Vec<(&Bench, &str)> = [(&c.rust, RUST), (&c.python, PYTHON)]
            .into_iter()
            .filter_map(|(b, col)| b.as_ref().map(|b| (b, col)))
            .collect();
        let clients: Vec<usize> = benches
            .first()
            .map(|(b, _)| b.throughput.iter().map(|t| t.0).collect())
            .unwrap_or_default();
        let max = benches
            .iter()
            .flat_map(|(b, _)| b.throughput.iter().map(|t| t.1))
            .fold(1.0, f64::max);
        let mag = 10f64.powf(max.log10().floor());
        let top_v = (max / mag).ceil() * mag;
        for k in 0..=4 {
            let v = top_v * k as f64 / 4.0;
            let yy = bottom - v / top_v * (bottom - top);
            s.line(left, yy, right, yy, "#ddd");
            s.text(left - 4.0, yy + 4.0, "end", &format!("{v:.0}"));
        }
        let xs = |k: usize| {
            if clients.len() < 2 {
                (left + right) / 2.0
            } else {
                left + 20.0 + k as f64 * (right - left - 40.0) / (clients.len() - 1) as f64
            }
        };
        for (k, n) in clients.iter().enumerate() {
            let label = if *n == 1 { "client" } else { "clients" };
            s.text(xs(k), bottom + 14.0, "middle", &format!("{n} {label}"));
        }
        for (b, color) in benches {
            let pts: Vec<(f64, f64)> = b
                .throughput
                .iter()
                .enumerate()
                .map(|(k, t)| (xs(k), bottom - t.1 / top_v * (bottom - top)))
                .collect();
            s.polyline(&pts, color);
            for (x, y) in pts {
                s.rect(x - 2.5, y - 2.5, 5.0, 5.0, color);
            }
        }
        s.line(left, bottom, right, bottom, "black");
    }
    s.legend(w - 130.0);
    s.finish()
}

fn main() -> ExitCode {
    match run() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pump-report: {e:#}");
            ExitCode::from(2)
        }
    }
}
