//! Result records shared by the benchmark binaries: `pump-bench` and `pump-build` write
//! them as JSON, `pump-report` reads them back into tables and plots.

pub mod results {
    //! The JSON records, one definition for writer and reader.
    use serde::{Deserialize, Serialize};

    /// One include server's results on one corpus (`pump-bench --json`).
    #[derive(Serialize, Deserialize, Debug, Default, Clone)]
    #[serde(default)]
    pub struct BenchReport {
        pub implementation: String,
        pub requests: usize,
        pub startup_ms: f64,
        /// The first request on a fresh server that knows nothing: our server with no
        /// saved compiler probes (`INCLUDE_SERVER_PROBE_CACHE=`), so it runs the compiler.
        pub cold_first_ms: f64,
        /// The first request on a fresh server, with the compiler probes an earlier
        /// server saved (ours, as in every `pump` build after the first; the Python
        /// server saves nothing, so its record repeats `cold_first_ms`).
        pub cold_saved_probes_ms: f64,
        pub first_pass_total_ms: f64,
        /// With `--cold-burst N`: N first requests sent at once to a fresh server with
        /// nothing saved (as `pump make -jN` starts), until the last is answered; the
        /// median over `--cold-runs` servers. 0 when not measured.
        pub cold_burst_ms: f64,
        /// The N of `cold_burst_ms`.
        pub cold_burst_clients: usize,
        pub warm_median_ms: f64,
        pub warm_p90_ms: f64,
        /// The median round trip of the same requests against a stand-in server that
        /// answers at once (the socket and client cost every server pays; the same
        /// figure in both implementations' records of one run).
        pub round_trip_floor_ms: f64,
        /// The same with the stand-in in a process of its own, as every include server
        /// is (waking another process can cost more than waking a thread of one's own).
        pub round_trip_floor_process_ms: f64,
        pub throughput: Vec<(usize, f64)>,
        /// The server's CPU seconds over the sequential passes (the first, then the warm
        /// ones), before the throughput test.
        pub cpu_seconds: f64,
        pub peak_rss_mib: f64,
        pub median_files: usize,
        pub fallbacks: usize,
        /// Requests whose reply missed a file `gcc -MM` lists (with --recall).
        pub recall_misses: usize,
        /// The missed files, at most 20.
        pub missed: Vec<String>,
        /// Files (`.lzo`, `.lzo.abs`) shipped over all warm replies.
        pub files_shipped: usize,
        /// Non-system files `gcc -MM` lists, over all requests (with --recall).
        pub gcc_mm_files: usize,
        /// Requests that failed outright (connection refused or reset, malformed reply).
        pub errors: usize,
        /// Each warm request's latency, in command order.
        pub warm_ms: Vec<f64>,
        /// Each warm reply's number of shipped files, in command order.
        pub files: Vec<usize>,
    }

    /// One build's results (`pump-build --json`).
    #[derive(Serialize, Deserialize, Debug, Default, Clone)]
    #[serde(default)]
    pub struct BuildReport {
        pub corpus: String,
        pub implementation: String,
        /// Objects the local build produced (one per translation unit).
        pub tus: usize,
        pub wall_seconds: f64,
        pub exit_ok: bool,
        /// Units distccd compiled in pump mode.
        pub pump_mode_jobs: usize,
        /// Units distccd compiled from locally preprocessed source (the include server fell back).
        pub plain_remote_jobs: usize,
        /// Units not compiled remotely in pump mode: `tus - pump_mode_jobs`.
        pub fallbacks: usize,
        /// Pump-mode compilations that failed on the server but succeeded locally.
        pub discrepancies: usize,
        pub objects_compared: usize,
        pub objects_identical: usize,
        /// Objects that differ after `objcopy --strip-debug` or are missing (at most 20).
        pub objects_differing: Vec<String>,
        /// pump's `__________` lines.
        pub pump_summary: Vec<String>,
        /// The end of the build's output when it failed.
        pub failure_tail: String,
    }
}
