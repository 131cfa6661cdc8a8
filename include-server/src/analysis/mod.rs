//! Include analysis: from one compile command to the conservative set of files it needs.
//!
//! This is the contract between the analysis engine and the serving side (`server`,
//! `mirror`). The serving side owns sockets, client roots, compression, the shadow tree
//! and statistics; the analysis owns command-line parsing, compiler probes, directive
//! scanning, macro evaluation, include resolution and its caches.
//!
//! [`Analyzer`] is shared by all serving threads (`Send + Sync`); every method takes
//! `&self`. All state it keeps assumes files do not change during a build, until
//! [`Analyzer::reset`] drops it.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Options of the analysis, from the launcher's command line.
#[derive(Clone, Debug, Default)]
pub struct AnalyzerConfig {
    /// `--unsafe_absolute_includes`: ignore (with a warning) absolute `#include` names
    /// instead of failing the request.
    pub unsafe_absolute_includes: bool,
    /// `--unsafe_no_unexpanded_functions` (distcc HEAD).
    pub no_unexpanded_functions: bool,
    /// The only environment passed to the compiler probe: `PATH`.
    pub probe_path: Option<std::ffi::OsString>,
}

/// One file of a closure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClosureFile {
    /// The file's absolute realpath on the client.
    pub realpath: PathBuf,
    /// `Some(p)` when the file was reached through an absolute search directory; `p` is
    /// the textual path for the `#line 1 "p"` prefix (search dir joined with the include
    /// string, not the realpath), and the file is shipped as `.lzo.abs`.
    pub abs_spelling: Option<PathBuf>,
}

/// What one request needs on the server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Closure {
    /// Every non-system file the translation unit may read, the source first, each once.
    pub files: Vec<ClosureFile>,
    /// Every textual absolute path (may hold symlinks and `..`) by which a file of the
    /// closure, or a directory on the way to one, was reached: the command-line files as
    /// `cwd/arg` and each successful resolution as `cwd/searchdir/include`. The serving
    /// side builds the shadow tree (links, forced directories) from these.
    pub paths_used: Vec<PathBuf>,
    /// The compiler's default include directories (absolute realpaths) in the order the
    /// compiler printed them; files under them are not shipped.
    pub system_dirs: Vec<PathBuf>,
}

/// Why a request cannot be covered. Each variant is one counted fall-back reason.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// The command line could not be understood (too few arguments, missing option
    /// argument, no source file, not a compile, ...).
    #[error("command line: {0}")]
    CommandLine(String),
    /// Running the compiler to learn its default include directories failed.
    #[error("compiler probe: {0}")]
    CompilerProbe(String),
    /// The source or an `-include` file does not exist.
    #[error("{0}")]
    FileNotFound(String),
    /// An absolute `#include` without `--unsafe_absolute_includes`.
    #[error("{0}")]
    AbsoluteInclude(String),
    /// A file could not be read.
    #[error("parse file: '{path}': {error}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// The CPU budget ran out.
    #[error("include server spent more than {0:?} CPU time handling request")]
    Budget(Duration),
}

impl AnalysisError {
    /// A short stable name for counters and `stats.json`.
    pub fn reason(&self) -> &'static str {
        match self {
            AnalysisError::CommandLine(_) => "command_line",
            AnalysisError::CompilerProbe(_) => "compiler_probe",
            AnalysisError::FileNotFound(_) => "file_not_found",
            AnalysisError::AbsoluteInclude(_) => "absolute_include",
            AnalysisError::Unreadable { .. } => "unreadable_file",
            AnalysisError::Budget(_) => "cpu_budget",
        }
    }
}

/// Counters the analysis keeps; the serving side reports them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnalysisStats {
    /// Files scanned for directives.
    pub files_parsed: u64,
    /// Scans answered from the parse cache.
    pub parse_cache_hits: u64,
    /// Compiler probes run.
    pub compiler_probes: u64,
}

/// The shared analysis engine.
#[derive(Debug, Default)]
pub struct Analyzer {
    config: AnalyzerConfig,
}

impl Analyzer {
    /// A fresh engine with empty caches.
    pub fn new(config: AnalyzerConfig) -> Analyzer {
        Analyzer { config }
    }

    /// The include closure of the compile command `argv` (argv[0] is the compiler) run in
    /// the absolute directory `cwd`. `cpu_budget` bounds the CPU time of this call,
    /// compiler probes excluded.
    pub fn analyze(
        &self,
        cwd: &Path,
        argv: &[Vec<u8>],
        cpu_budget: Duration,
    ) -> Result<Closure, AnalysisError> {
        let _ = (cwd, argv, cpu_budget, &self.config);
        Err(AnalysisError::CommandLine(
            "the analysis engine is not written yet".into(),
        ))
    }

    /// Drops every cache (a `--stat_reset_triggers` change or a new generation).
    pub fn reset(&self) {}

    /// Counters so far.
    pub fn stats(&self) -> AnalysisStats {
        AnalysisStats::default()
    }
}
