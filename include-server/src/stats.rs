//! Statistics of a serving process: what `-s` prints after each request and what is
//! written to `<socket dir>/stats.json` at exit (pump reads it for its summary).
//!
//! Every request ends in exactly one of: served (a non-empty reply) or one fall-back
//! reason (the reply is `ARGC00000000`, or no reply for a refused peer); a connection
//! closed before sending a byte (a readiness probe) is not a request. The JSON keys
//! are stable: `requests`, `served`, `fallbacks`, `fallback_reasons` (reason -> count),
//! `files_parsed`, `parse_cache_hits`, `compiler_probes`, `probe_cache_hits`, `macro_waits`,
//! `probe_joins`, `files_compressed`,
//! `compression_cache_hits`, `bytes_read`, `bytes_compressed`, `generation`,
//! `request_seconds_total`, `request_seconds_max`, `uptime_seconds`.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::analysis::AnalysisStats;
use crate::mirror::MirrorStats;

/// Cumulative counters of the serving process.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Stats {
    /// Connections whose request was handled (answered or refused).
    pub requests: u64,
    /// Requests answered with a non-empty reply.
    pub served: u64,
    /// Requests that fell back (empty reply or refused).
    pub fallbacks: u64,
    /// Fall-backs by reason.
    pub fallback_reasons: BTreeMap<String, u64>,
    /// Files scanned for directives (from the analysis).
    pub files_parsed: u64,
    /// Scans answered from the parse cache (from the analysis).
    pub parse_cache_hits: u64,
    /// Compiler probes run (from the analysis).
    pub compiler_probes: u64,
    /// Compiler defaults read from probes saved by an earlier server (from the analysis).
    pub probe_cache_hits: u64,
    /// Requests that waited for a compiler's predefined macros after its directories
    /// (from the analysis).
    pub macro_waits: u64,
    /// Requests that took the outcome of a compiler probe another request had started,
    /// instead of starting the compiler again (from the analysis).
    pub probe_joins: u64,
    /// Include graphs reused across requests (from the analysis).
    pub graph_cache_hits: u64,
    /// Computed includes too heavy to expand exactly, answered with a conservative
    /// superset of the files they could name (from the analysis).
    pub approximated_evaluations: u64,
    /// Computed-include evaluations cut short on their second pass (from the analysis).
    pub incomplete_evaluations: u64,
    /// Absolute includes ignored under `--unsafe_absolute_includes` (from the analysis).
    pub ignored_absolute_includes: u64,
    /// Files compressed into client roots, all generations.
    pub files_compressed: u64,
    /// Compressions answered by an earlier one.
    pub compression_cache_hits: u64,
    /// Input bytes compressed.
    pub bytes_read: u64,
    /// LZO bytes written.
    pub bytes_compressed: u64,
    /// Current generation (1 + cache resets).
    pub generation: u32,
    /// Wall time spent on requests, summed.
    pub request_seconds_total: f64,
    /// The slowest request.
    pub request_seconds_max: f64,
    /// Time since the server started.
    pub uptime_seconds: f64,
    /// Duration of the last request (not written to JSON).
    #[serde(skip)]
    pub last_seconds: f64,
    /// Minimum request time (not written to JSON).
    #[serde(skip)]
    pub min_seconds: f64,
}

impl Stats {
    /// Counts one request that took `elapsed` and ended with `outcome`: `Ok(())` for a
    /// served request, `Err(reason)` for a fall-back.
    pub fn record(&mut self, elapsed: Duration, outcome: Result<(), &str>) {
        let secs = elapsed.as_secs_f64();
        self.requests += 1;
        match outcome {
            Ok(()) => self.served += 1,
            Err(reason) => {
                self.fallbacks += 1;
                *self.fallback_reasons.entry(reason.to_string()).or_default() += 1;
            }
        }
        self.request_seconds_total += secs;
        self.request_seconds_max = self.request_seconds_max.max(secs);
        self.min_seconds = if self.requests == 1 {
            secs
        } else {
            self.min_seconds.min(secs)
        };
        self.last_seconds = secs;
    }

    /// Turns one served request into a fall-back for `reason` (its reply could not be
    /// delivered after it was counted).
    pub fn reclassify_served(&mut self, reason: &str) {
        self.served = self.served.saturating_sub(1);
        self.fallbacks += 1;
        *self.fallback_reasons.entry(reason.to_string()).or_default() += 1;
    }

    /// Copies the analysis and compression counters in.
    pub fn absorb(&mut self, analysis: &AnalysisStats, mirrors: &MirrorStats) {
        self.files_parsed = analysis.files_parsed;
        self.parse_cache_hits = analysis.parse_cache_hits;
        self.compiler_probes = analysis.compiler_probes;
        self.probe_cache_hits = analysis.probe_cache_hits;
        self.macro_waits = analysis.macro_waits;
        self.probe_joins = analysis.probe_joins;
        self.graph_cache_hits = analysis.graph_cache_hits;
        self.approximated_evaluations = analysis.approximated_evaluations;
        self.incomplete_evaluations = analysis.incomplete_evaluations;
        self.ignored_absolute_includes = analysis.ignored_absolute_includes;
        self.files_compressed = mirrors.files_compressed;
        self.compression_cache_hits = mirrors.compression_hits;
        self.bytes_read = mirrors.bytes_read;
        self.bytes_compressed = mirrors.bytes_written;
    }

    /// The `-s` block printed after a request for translation unit `tu`.
    pub fn block(&self, tu: &str) -> String {
        let average = if self.requests == 0 {
            0.0
        } else {
            self.request_seconds_total / self.requests as f64
        };
        let mut out = String::new();
        out.push_str(&format!("TRANSLATION_UNIT: {tu}\n"));
        out.push_str(&format!(
            "TIME:    last {:<2.3}s, min {:<2.3}s, max {:<2.3}s, average {:<2.3}s, #: {:5}, total: {:5.1}s\n",
            self.last_seconds,
            self.min_seconds,
            self.request_seconds_max,
            average,
            self.requests,
            self.request_seconds_total
        ));
        out.push_str(&format!(
            "PARSING: total count: {:4}, cache hits: {}, compiler probes: {} (saved: {}, \
             joined: {}), waits for predefined macros: {}\n",
            self.files_parsed,
            self.parse_cache_hits,
            self.compiler_probes,
            self.probe_cache_hits,
            self.probe_joins,
            self.macro_waits
        ));
        out.push_str(&format!(
            "REPLIES: served: {}, fall-backs: {}{}\n",
            self.served,
            self.fallbacks,
            self.fallback_reasons
                .iter()
                .map(|(r, n)| format!(", {r}: {n}"))
                .collect::<String>()
        ));
        out.push_str(&format!(
            "SIZE:    files compressed: {}, cache hits: {}, bytes read: {}, bytes compressed: {}, generation: {}\n\n",
            self.files_compressed,
            self.compression_cache_hits,
            self.bytes_read,
            self.bytes_compressed,
            self.generation
        ));
        out
    }

    /// Writes the JSON form to `path` atomically (a temporary file, then a rename).
    pub fn write_json(&self, path: &Path) -> io::Result<()> {
        let mut temp = path.as_os_str().to_owned();
        temp.push(format!(".tmp-{}", std::process::id()));
        let temp = std::path::PathBuf::from(temp);
        let mut text = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        text.push(b'\n');
        let result = std::fs::File::create(&temp)
            .and_then(|mut f| f.write_all(&text))
            .and_then(|()| std::fs::rename(&temp, path));
        if result.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_serializes() {
        let mut s = Stats {
            generation: 1,
            ..Stats::default()
        };
        s.record(Duration::from_millis(20), Ok(()));
        s.record(Duration::from_millis(10), Err("bad_request"));
        s.record(Duration::from_millis(30), Err("bad_request"));
        s.record(Duration::from_millis(40), Err("cpu_budget"));
        assert_eq!((s.requests, s.served, s.fallbacks), (4, 1, 3));
        assert_eq!(s.fallback_reasons["bad_request"], 2);
        assert!((s.min_seconds - 0.010).abs() < 1e-9);
        assert!((s.request_seconds_max - 0.040).abs() < 1e-9);
        s.compiler_probes = 1;
        s.probe_joins = 3;
        s.macro_waits = 2;
        let block = s.block("x.c");
        assert!(
            block.contains(
                "compiler probes: 1 (saved: 0, joined: 3), waits for predefined macros: 2\n"
            ),
            "{block}"
        );
        assert!(
            block.starts_with("TRANSLATION_UNIT: x.c\nTIME:    last 0.040s"),
            "{block}"
        );
        assert!(
            block.contains("fall-backs: 3, bad_request: 2, cpu_budget: 1"),
            "{block}"
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stats.json");
        s.write_json(&path).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["requests"], 4);
        assert_eq!(v["served"], 1);
        assert_eq!(v["fallback_reasons"]["cpu_budget"], 1);
        assert_eq!(v["generation"], 1);
        assert!(v.get("last_seconds").is_none());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
