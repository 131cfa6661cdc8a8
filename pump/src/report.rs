//! What pump says when the include server stops: the discrepancy report (as distcc's
//! pump words it) and a short summary of the include server's `stats.json`.

use std::path::Path;

use serde::Deserialize;

/// The discrepancy report for a counter file of `count` bytes: nothing when zero.
pub fn discrepancies(count: u64, max: i64) -> Vec<String> {
    if count == 0 {
        return Vec::new();
    }
    let mut lines = vec![format!(
        "__________Warning: {count} pump-mode compilation(s) failed on server, but succeeded locally."
    )];
    if i64::try_from(count).unwrap_or(i64::MAX) >= max {
        lines.push("__________Distcc-pump was demoted to plain mode.".to_owned());
    }
    lines.push(
        "See the Distcc Discrepancy Symptoms section in the include_server(1) man page.".to_owned(),
    );
    lines
}

/// The byte count of the discrepancy counter file (0 if missing).
pub fn discrepancy_count(counter: &Path) -> u64 {
    std::fs::metadata(counter).map(|m| m.len()).unwrap_or(0)
}

/// The part of the include server's `stats.json` pump summarises. Unknown keys are
/// ignored and missing ones count as zero, so the server may add fields freely.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Stats {
    /// Requests received.
    pub requests: u64,
    /// Requests answered with a closure (the translation unit went remote in pump mode).
    pub served: u64,
    /// Requests answered with the empty list, by reason.
    pub fallback_reasons: std::collections::BTreeMap<String, u64>,
    /// Distinct files compressed into the client root.
    pub files_compressed: u64,
    /// Bytes of those files before compression.
    pub bytes_read: u64,
    /// Bytes written compressed.
    pub bytes_compressed: u64,
}

impl Stats {
    /// Reads `stats.json`; `None` if it is missing or unreadable.
    pub fn load(path: &Path) -> Option<Stats> {
        let text = std::fs::read(path).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// One line: translation units served, fall-backs by reason, files shipped.
    pub fn summary(&self) -> String {
        let fell_back: u64 = self.fallback_reasons.values().sum();
        let mut s = format!(
            "__________Include server: {} of {} translation unit(s) served for remote preprocessing",
            self.served, self.requests
        );
        if fell_back > 0 {
            let reasons: Vec<String> = self
                .fallback_reasons
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(r, n)| format!("{r}: {n}"))
                .collect();
            s.push_str(&format!(
                "; {fell_back} preprocessed locally ({})",
                reasons.join(", ")
            ));
        }
        s.push_str(&format!(
            "; {} file(s) shipped, {} compressed",
            self.files_compressed,
            human_bytes(self.bytes_compressed)
        ));
        s
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discrepancy_report_table() {
        assert!(discrepancies(0, 1).is_empty());
        assert_eq!(
            discrepancies(3, 1),
            [
                "__________Warning: 3 pump-mode compilation(s) failed on server, but succeeded locally.",
                "__________Distcc-pump was demoted to plain mode.",
                "See the Distcc Discrepancy Symptoms section in the include_server(1) man page.",
            ]
        );
        assert_eq!(discrepancies(1, 2).len(), 2);
    }

    #[test]
    fn summary_names_reasons_and_sizes() {
        let stats: Stats = serde_json::from_str(
            r#"{"requests": 10, "served": 8, "fallbacks": 2, "fallback_reasons": {"cpu_budget": 1, "command_line": 1, "none": 0},
                "files_compressed": 40, "bytes_compressed": 123456, "extra": [1,2]}"#,
        )
        .unwrap();
        assert_eq!(
            stats.summary(),
            "__________Include server: 8 of 10 translation unit(s) served for remote preprocessing; 2 preprocessed locally (command_line: 1, cpu_budget: 1); 40 file(s) shipped, 120.6 KiB compressed"
        );
        assert_eq!(
            Stats::default().summary(),
            "__________Include server: 0 of 0 translation unit(s) served for remote preprocessing; 0 file(s) shipped, 0 B compressed"
        );
    }
}
