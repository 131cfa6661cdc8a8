//! `pump-startup`: times `pump --startup` (until the include server is ready) and
//! `pump true` for two pump implementations side by side, alternating runs, and prints
//! medians and the ratio. The two alternate in ABBA order.
//!
//! `pump-startup --runs 21 RUST_PUMP PYTHON_PUMP`. Each `--startup` is followed by an
//! untimed `--shutdown` with the exported variables. `DISTCC_HOSTS` is set to a
//! loopback pump host (no connection is made to it).

use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;

#[derive(Parser)]
#[command(about = "Time pump --startup and pump true for two pumps side by side")]
struct Cli {
    /// Runs per measurement (medians are reported).
    #[arg(long, default_value_t = 21)]
    runs: usize,
    /// Our pump.
    ours: String,
    /// The reference pump (reference-pump.sh's distcc-pump).
    reference: String,
    /// Also write the medians as JSON here.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

/// One measurement's medians, in milliseconds.
#[derive(serde::Serialize)]
struct Row {
    what: &'static str,
    runs: usize,
    rust_ms: f64,
    python_ms: f64,
}

fn pump_cmd(pump: &str, tmp: &std::path::Path) -> Command {
    let mut c = Command::new(pump);
    c.env("DISTCC_HOSTS", "127.0.0.1:1,cpp,lzo")
        .env("TMPDIR", tmp)
        .env_remove("DISTCC_POTENTIAL_HOSTS")
        .env_remove("INCLUDE_SERVER_ARGS")
        .stdin(Stdio::null());
    c
}

/// Seconds for `pump --startup`, then shuts the server down (untimed).
fn startup(pump: &str, tmp: &std::path::Path) -> Result<f64> {
    let t = Instant::now();
    let out = pump_cmd(pump, tmp)
        .arg("--startup")
        .stderr(Stdio::inherit())
        .output()?;
    let secs = t.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!("{pump} --startup failed: {}", out.status);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut stop = pump_cmd(pump, tmp);
    stop.arg("--shutdown").stdout(Stdio::null());
    for line in text.lines() {
        if let Some((k, v)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
            if k.starts_with("INCLUDE_SERVER_") {
                stop.env(k, v.trim_matches('\''));
            }
        }
    }
    let st = stop.status()?;
    if !st.success() {
        bail!("{pump} --shutdown failed: {st}");
    }
    Ok(secs)
}

fn run_true(pump: &str, tmp: &std::path::Path) -> Result<f64> {
    let t = Instant::now();
    let st = pump_cmd(pump, tmp)
        .arg("true")
        .stdout(Stdio::null())
        .status()?;
    let secs = t.elapsed().as_secs_f64();
    if !st.success() {
        bail!("{pump} true failed: {st}");
    }
    Ok(secs)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    let tmp = tempfile::tempdir().context("temp dir")?;
    let mut results = Vec::new();
    for (what, f) in [
        (
            "pump --startup",
            startup as fn(&str, &std::path::Path) -> Result<f64>,
        ),
        ("pump true", run_true),
    ] {
        let (mut ours, mut reference) = (Vec::new(), Vec::new());
        // ABBA order: each pump runs as often right after the other one's run (whose
        // exiting processes may still hold a core) as right after its own.
        for i in 0..cli.runs.max(1) {
            if i % 2 == 0 {
                ours.push(f(&cli.ours, tmp.path())?);
                reference.push(f(&cli.reference, tmp.path())?);
            } else {
                reference.push(f(&cli.reference, tmp.path())?);
                ours.push(f(&cli.ours, tmp.path())?);
            }
        }
        results.push((what, median(ours), median(reference)));
    }
    println!(
        "| measurement ({} runs, medians) | rust | python | ratio |",
        cli.runs
    );
    println!("|---|---|---|---|");
    let mut rows = Vec::new();
    for (what, o, r) in results {
        println!(
            "| {what} | {:.1} ms | {:.1} ms | {:.1}x |",
            o * 1e3,
            r * 1e3,
            r / o
        );
        rows.push(Row {
            what,
            runs: cli.runs,
            rust_ms: o * 1e3,
            python_ms: r * 1e3,
        });
    }
    if let Some(p) = &cli.json {
        std::fs::write(p, serde_json::to_vec_pretty(&rows)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    let left: Vec<_> = std::fs::read_dir(tmp.path())?.collect();
    if !left.is_empty() {
        bail!("{} temp objects left behind", left.len());
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pump-startup: {e:#}");
            ExitCode::from(2)
        }
    }
}
