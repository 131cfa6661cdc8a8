//! Include analysis: from one compile command to the conservative set of files it needs.
//!
//! This is the contract between the analysis engine and the serving side (`server`,
//! `mirror`). The serving side owns sockets, client roots, compression, the shadow tree
//! and statistics; the analysis owns command-line parsing, compiler probes, directive
//! scanning, macro evaluation, include resolution and its caches.
//!
//! [`Analyzer`] is shared by all serving threads (`Send + Sync`); every method takes
//! `&self`. All state it keeps assumes files do not change during a build, until
//! [`Analyzer::reset`] drops it. A reset swaps in a fresh [`graph::Generation`]; requests
//! already running finish on the generation they started with.
//!
//! Modules: [`command`] (argv to `CompileCommand`), [`probe`] (compiler default dirs),
//! [`scan`] (directive scanner), [`macros`] (macro table and evaluator), [`graph`]
//! (configurations, resolution, memoized edges, the closure walk), [`fscache`] (stat and
//! realpath caches), [`cputime`] (the per-thread CPU budget), [`shard`] (the concurrent
//! map under every shared cache).
//!
//! Where this engine does better than `include_server.py` v3.4 (spec 7):
//! - Command line (7.3, 7.5, 7.8): `-D=x`, empty and non-UTF-8 arguments fail one request
//!   or work, never the server; `-DFOO` defines `FOO` as `1`; `-U` makes a symbol possibly
//!   undefined; `--sysroot X`, `=`/`$SYSROOT` dir prefixes, longest-match glued options,
//!   `-I-` (GCC's semantics), `-Xclang`/`-Xpreprocessor`/`-Wp,` payloads, `.cp`/`.c++`/`.S`
//!   sources, `-x` honoured per file; `-I/` is the root, not the cwd; `-include-pch` is
//!   refused instead of misread.
//! - Compiler probe (7.11): flags that change the default dirs (`-target`, `-m*`, `-B`,
//!   `-specs`, `-stdlib=`, `-nostdinc++`, sysroots, ...) are passed and are part of the
//!   key; a relative compiler path is keyed with its cwd; the `#include "..."` section is
//!   read too; system files are decided by path components (`/usr/include2` is not under
//!   `/usr/include`) and by this request's compiler only.
//! - Search lists: GCC's duplicate removal (a `-I` dir that is also a system dir is
//!   searched at the system position), so first-hit resolution matches GCC's.
//! - Scanner (7.9): real comment/literal/raw-string lexing; any bytes in names
//!   (`"foo bar.h"`, `"a~b.h"`); trailing tokens tolerated; `//` inside string literals
//!   kept; splices anywhere (also in directive names); computed `#include_next` resolved;
//!   `__has_include`/`__has_include_next` operands shipped (their files change
//!   preprocessing), `#embed` files shipped.
//! - Macros (7.5, 7.10): a token-based evaluator with hide sets, `__VA_ARGS__`,
//!   `__VA_OPT__`, proper `#` and `##` (placemarkers, re-lexing), rescanning into the rest
//!   of the line; definitions are a set; the compiler's predefined macros (`-dM`) are in
//!   the table, so `linux`, `__x86_64__` and friends expand as they would; `-U`/`#undef`
//!   make "undefined" a possibility (Python ignores them). Along one expansion a symbol
//!   keeps one definition, and definitions from different branches of one `#if` chain are
//!   not mixed; counters with many numeric values are widened to one opaque value unless
//!   the value reaches a header name. This is what lets Boost.Preprocessor iteration
//!   (`BOOST_PP_ITERATE()`, `BOOST_PP_FILENAME_1`) resolve exactly where Python times out.
//! - Approximated computed includes: an evaluation that grows heavy is replaced by a
//!   sound superset, every shipped file the include could open: each file under the
//!   includer's directory (when it is not a system directory) and under every non-system
//!   search directory. A system file it might open is not traversed: any shipped file
//!   that one could open in turn is in that same superset. When the superset is small
//!   (the usual case for Boost headers, whose includes live in system directories) the
//!   evaluation is cut short after [`graph::SOFT_STEPS`] and the expression remembered
//!   as heavy; otherwise it runs to the evaluator's hard bound, and only if that is hit is
//!   it approximated, or, when the superset is over [`graph::MAX_APPROX_FILES`], the
//!   request fails cleanly (`macro_limit`) instead of burning the CPU budget. Counted as
//!   `approximated_evaluations`. The system files left unwalked may hold definitions an
//!   exactly evaluated computed include of a shipped file would need, so once a request
//!   approximates, each such shipped file's own directory is added too (when it is not
//!   over the bound). Not covered by the superset: names climbing out of a listed
//!   directory with `..`, hidden (`.`) directories.
//! - Graph (5.8): a fixpoint re-evaluates computed includes whose macros gained
//!   definitions during the walk, so a request never misses an expansion because of the
//!   order files were parsed in.
//! - Absolute includes (5.12): a name that does not exist on the client is ignored, one
//!   that is a system file is traversed (the server has it); only a non-system file fails.
//! - `.abs` (7.15): the first absolute spelling of a file wins whatever the order of the
//!   command-line files.
//! - Budget (2.5, 7.16): measured on the request's own thread (`CLOCK_THREAD_CPUTIME_ID`),
//!   compiler probes excluded; exceeding it fails that request only and leaves every
//!   shared cache valid (only complete results are ever stored).
//!
//! Known over-approximations kept on purpose: conditionals are not evaluated;
//! `#include_next` yields every later-or-earlier directory in which the name exists;
//! every definition ever seen of a macro is a possible value.

pub mod aside;
pub mod closure;
pub mod command;
pub mod cputime;
pub mod fscache;
pub mod graph;
pub mod macros;
pub mod probe;
pub mod probe_cache;
pub mod scan;
pub mod shard;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use closure::Summary;
use graph::{bytes_of, dir_text, join, path_of, ConfigKey, Ctx, Dir, Generation, Node, PathBytes};
use rustc_hash::{FxHashMap, FxHashSet};

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
    /// Where probes are saved between include servers ([`probe_cache`]); `None`: nowhere.
    pub probe_cache: Option<PathBuf>,
    /// Threads that read and scan files ahead of a cold request's walk
    /// ([`graph::Prefetcher`]); 0: none. `None`: one less than the available cores, at
    /// most 2 (one core reads ahead for a cold request while another walks its graph;
    /// more helpers only compete with the other requests), worked out when the first
    /// request starts them.
    pub prefetch_helpers: Option<usize>,
    /// How long a compiler probe may run before it is stopped and the requests that
    /// need it fall back; `None`: [`probe::PROBE_DEADLINE`].
    pub probe_deadline: Option<Duration>,
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
    pub files: Arc<Vec<ClosureFile>>,
    /// Every textual absolute path (may hold symlinks and `..`) by which a file of the
    /// closure, or a directory on the way to one, was reached: the command-line files as
    /// `cwd/arg` and each successful resolution as `cwd/searchdir/include`. The serving
    /// side builds the shadow tree (links, forced directories) from these.
    pub paths_used: Vec<PathBuf>,
    /// The compiler's default include directories (absolute realpaths) in the order the
    /// compiler printed them; files under them are not shipped.
    pub system_dirs: Arc<Vec<PathBuf>>,
    /// From the analysis: the same texts and files by id, so that the mirror skips what
    /// it already did for an earlier request (the analysis leaves `paths_used` empty).
    pub ids: Option<ClosureIds>,
}

impl Closure {
    /// Every textual path: `paths_used` and those of `ids`.
    pub fn all_paths_used(&self) -> Vec<PathBuf> {
        let mut v = self.paths_used.clone();
        if let Some(ids) = &self.ids {
            v.extend(
                ids.table
                    .texts
                    .values(&ids.summary.texts)
                    .iter()
                    .map(|t| t.joined.to_path_buf()),
            );
        }
        v
    }
}

/// The ids of a closure's texts and files in its generation's tables.
#[derive(Clone)]
pub struct ClosureIds {
    /// The generation's tables.
    pub table: Arc<closure::Closures>,
    /// The closure's sets: its text ids ([`closure::TextEntry`]) are walked into the
    /// shadow tree. Held by the generation (a node's memoized closure or a union of
    /// closures), not made for this request alone.
    pub summary: Arc<Summary>,
    /// The file id ([`closure::FileEntry`]) of each of [`Closure::files`].
    pub files: Arc<Vec<u32>>,
    /// The generation's `stat`/realpath cache, which holds every directory on the way to
    /// the closure's files and texts: the shadow-tree walk looks them up there.
    pub fs: Arc<fscache::FsCache>,
}

impl PartialEq for ClosureIds {
    fn eq(&self, other: &Self) -> bool {
        self.table.serial == other.table.serial
            && self.summary.texts == other.summary.texts
            && self.files == other.files
    }
}

impl Eq for ClosureIds {}

impl std::fmt::Debug for ClosureIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClosureIds")
            .field("serial", &self.table.serial)
            .field("texts", &self.summary.texts.len())
            .field("files", &self.files)
            .finish()
    }
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
    /// A computed include has more possible expansions than the evaluator's bounds.
    #[error("{0}")]
    MacroLimit(String),
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
            AnalysisError::MacroLimit(_) => "macro_limit",
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
    /// Compiler defaults read from probes saved on disk instead.
    pub probe_cache_hits: u64,
    /// Requests that waited for a compiler's predefined macros: their closure looked up a
    /// macro while the compiler, which had printed its directories, was still running.
    pub macro_waits: u64,
    /// Requests that needed a compiler another request was probing at the time, and
    /// took that probe's outcome instead of starting the compiler again.
    pub probe_joins: u64,
    /// Edge lists answered from the include-graph memo.
    pub graph_cache_hits: u64,
    /// Computed-include evaluations stopped by the evaluator's hard bound (each failed
    /// its request unless its approximation was small enough to use).
    pub capped_evaluations: u64,
    /// Absolute includes ignored under `--unsafe_absolute_includes`.
    pub ignored_absolute_includes: u64,
    /// Computed includes whose "possibly undefined" evaluation pass hit its bound: their
    /// names assume every macro used is defined (see [`macros`]).
    pub incomplete_evaluations: u64,
    /// Computed includes covered by their sound approximation (every shipped file they
    /// could open) instead of their evaluation.
    pub approximated_evaluations: u64,
    /// Cache generations dropped by [`Analyzer::reset`].
    pub resets: u64,
}

/// The shared analysis engine.
#[derive(Debug, Default)]
pub struct Analyzer {
    config: AnalyzerConfig,
    generation: RwLock<Arc<Generation>>,
    counters: Arc<graph::Counters>,
    resets: std::sync::atomic::AtomicU64,
    /// The read-ahead helpers, started by [`Analyzer::warm_up`] once the server is ready
    /// (not before it reports readiness), or else by the first request.
    prefetch: std::sync::OnceLock<Option<Arc<graph::Prefetcher>>>,
    /// Probes whose compiler had not ended when their request went on.
    pending: Mutex<Vec<Arc<probe::Pending>>>,
    /// Threads for the compiler probes' start and output.
    aside: Arc<aside::Aside>,
}

impl Drop for Analyzer {
    fn drop(&mut self) {
        if let Some(Some(p)) = self.prefetch.get() {
            p.stop();
        }
        self.aside.stop();
    }
}

impl Analyzer {
    /// A fresh engine with empty caches.
    pub fn new(config: AnalyzerConfig) -> Analyzer {
        let counters = Arc::new(graph::Counters::default());
        Analyzer {
            config,
            generation: RwLock::default(),
            counters,
            resets: Default::default(),
            prefetch: std::sync::OnceLock::new(),
            pending: Mutex::default(),
            aside: Arc::default(),
        }
    }

    /// Sets up what a first request would otherwise set up on its way (about 0.3 ms of
    /// its critical path): starts the read-ahead helpers and the thread that starts
    /// compiler probes ([`aside::Aside`]), counts the cores (reading the cgroup's CPU
    /// quota files) and detects the CPU's features for the scanner's
    /// `memchr` (a dozen `cpuid` instructions, each a trap to the hypervisor on a virtual
    /// machine, 6 to 7 µs apiece on the one measured). The server calls it once it is
    /// ready, beside its first request if that comes at once: a request that needs the
    /// helpers meanwhile waits for them to be started, as it would start them itself.
    pub fn warm_up(&self) {
        std::hint::black_box(memchr::memchr(b'#', std::hint::black_box(b"warm up: #")));
        self.prefetch();
        self.aside.keep(1);
    }

    /// Runs `task` on an idle read-ahead helper, or else on another thread
    /// ([`aside::Aside`]), or else here.
    pub fn run_aside(&self, task: aside::Task) {
        let task = match self.prefetch() {
            Some(p) => match p.hand(task) {
                Ok(()) => return,
                Err(task) => task,
            },
            None => task,
        };
        if let Err(task) = self.aside.run(task) {
            task.run();
        }
    }

    /// The read-ahead helpers, started on first use (or by [`Analyzer::warm_up`]).
    fn prefetch(&self) -> Option<&Arc<graph::Prefetcher>> {
        self.prefetch
            .get_or_init(|| {
                let n = self
                    .config
                    .prefetch_helpers
                    .unwrap_or_else(|| crate::available_cores().saturating_sub(1).min(2));
                (n > 0).then(|| graph::Prefetcher::start(n, self.counters.clone()))
            })
            .as_ref()
    }

    fn current(&self) -> Arc<Generation> {
        self.generation
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
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
        self.analyze_while(cwd, argv, cpu_budget, &mut |_| {})
    }

    /// [`Analyzer::analyze`]; when the compiler must be probed, `guessed` gets the
    /// closure of the walk made with guessed directories while it runs (its
    /// `system_dirs` the guessed ones, no ids): work for the reply may start before the
    /// probe ends, as the closure is usually the same.
    pub fn analyze_while(
        &self,
        cwd: &Path,
        argv: &[Vec<u8>],
        cpu_budget: Duration,
        guessed: &mut dyn FnMut(&Closure),
    ) -> Result<Closure, AnalysisError> {
        let mut budget = cputime::Budget::start(cpu_budget);
        let cmd = command::parse(argv).map_err(AnalysisError::CommandLine)?;
        if !cwd.is_absolute() {
            return Err(AnalysisError::CommandLine(format!(
                "cwd '{}' is not absolute",
                cwd.display()
            )));
        }
        let gen = self.current();
        // Everything but the files: requests with the same flags in the same directory
        // share their macros, probe and search configuration.
        let setup_key = setup_key(cwd, &cmd);
        let (cfg, system_dirs, pending) = match gen.setups.get(&setup_key[..]) {
            Some(hit) => hit,
            None => {
                let setup = self.setup(&gen, cwd, &cmd, &mut budget, guessed)?;
                gen.setups.insert_if_absent(setup_key.into(), setup)
            }
        };
        let mut ctx = self.ctx(&gen, cfg.clone(), budget);
        let (roots, total) = loop {
            // The probe still running before this walk, if the request was set up while
            // its compiler had printed its directories but not ended.
            let running = match pending.as_deref() {
                Some(p) => match p.outcome() {
                    Some(Err(e)) => return Err(AnalysisError::CompilerProbe(e.clone())),
                    Some(Ok(())) => None,
                    None => Some(p),
                },
                None => None,
            };
            let walked = walk(&mut ctx, cwd, &cmd)?;
            // Its predefined macros can only change a closure that looked up macros.
            if let Some(p) = running {
                if !walked.1.deps.is_empty() || walked.1.approximated {
                    self.counters.macro_waits.fetch_add(1, Ordering::Relaxed);
                    p.wait();
                    continue;
                }
            }
            break walked;
        };
        let source_real = roots.last().expect("the source is a root").real.clone();
        let cached = total
            .materialized
            .get()
            .filter(|m| bytes_of(&m.source) == bytes_of(&source_real))
            .cloned();
        let m = match cached {
            Some(m) => m,
            None => {
                let m = materialize(&gen, &total, source_real);
                let _ = total.materialized.set(m.clone());
                m
            }
        };
        Ok(Closure {
            files: m.files,
            paths_used: Vec::new(),
            system_dirs: system_dirs.clone(),
            ids: Some(ClosureIds {
                table: gen.closures.clone(),
                summary: total,
                files: m.ids,
                fs: gen.fs.clone(),
            }),
        })
    }

    /// While the compiler is probed (a `cc1` run of about 10 ms, on another core), the
    /// request is walked with a guess at the compiler's default directories
    /// ([`probe::guess_defaults`]): the guess and the probe usually agree, and the walk
    /// after the probe then reuses the closures this one memoized. It is correct either
    /// way, as the memoized closures are keyed by the whole search configuration and
    /// record the macros their evaluation looked up: the probe's predefined macros,
    /// entered once the compiler exits (while this walk may still run), invalidate
    /// those whose evaluation looked them up before, and a wrong guess
    /// is another configuration, never reused. A wrong guess costs the walk's time and
    /// can only add definitions to the macro table (computed includes then have more
    /// possible expansions, never fewer).
    ///
    /// The walk has a budget of its own, `limit`, the request's.
    fn walk_while_probing(
        &self,
        gen: &Arc<Generation>,
        cwd: &Path,
        cmd: &command::CompileCommand,
        limit: Duration,
        guessed: &mut dyn FnMut(&Closure),
    ) {
        let path_env = self.config.probe_path.as_deref();
        let Some(guess) = probe::resolve_compiler(&cmd.compiler, cwd, path_env)
            .and_then(|real| probe::guess_defaults(&real, &cmd.language))
        else {
            return;
        };
        let cfg = gen.config(search_config(gen, cwd, cmd, &guess));
        let walked = walk(
            &mut self.ctx(gen, cfg, cputime::Budget::start(limit)),
            cwd,
            cmd,
        );
        let Ok((roots, total)) = walked else { return };
        let source_real = roots.last().expect("the source is a root").real.clone();
        let m = materialize(gen, &total, source_real);
        guessed(&Closure {
            files: m.files,
            paths_used: Vec::new(),
            system_dirs: Arc::new(system_dirs(&guess)),
            ids: None,
        });
    }

    /// A walk's context in `gen` with the search configuration `cfg`.
    fn ctx<'a>(
        &'a self,
        gen: &'a Arc<Generation>,
        cfg: Arc<graph::Config>,
        budget: cputime::Budget,
    ) -> Ctx<'a> {
        Ctx {
            gen,
            prefetch: self.prefetch().map(|p| &**p),
            counters: &self.counters,
            cfg,
            budget,
            unsafe_absolute: self.config.unsafe_absolute_includes,
            no_unexpanded: self.config.no_unexpanded_functions,
        }
    }

    /// The compiler's defaults: saved on disk by an earlier server, or probed (and saved).
    /// `while_running` is called while the compiler runs. The directories are returned as
    /// soon as the compiler has printed its search lists, about half-way through its run;
    /// its predefined macros are entered into `gen`'s table when it ends, which the
    /// returned [`probe::Pending`] tells.
    fn probe(
        &self,
        gen: &Arc<Generation>,
        key: &probe::ProbeKey,
        cwd: &Path,
        while_running: impl FnOnce(),
    ) -> Result<graph::Probed, String> {
        let path_env = self.config.probe_path.as_deref();
        let cache = self
            .config
            .probe_cache
            .clone()
            .map(probe_cache::ProbeCache::new);
        if let Some(out) = cache.as_ref().and_then(|c| c.load(key, cwd, path_env)) {
            if let Ok(d) = probe::interpret(key, &out) {
                self.counters
                    .probe_cache_hits
                    .fetch_add(1, Ordering::Relaxed);
                enter_macros(gen, &d);
                return Ok((d, None));
            }
        }
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let pending = Arc::new(probe::Pending::default());
        {
            let mut all = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            all.retain(|p| !p.done());
            all.push(pending.clone());
        }
        let ending = Ending {
            key: key.clone(),
            gen: gen.clone(),
            cache: cache.map(|c| {
                (
                    c,
                    cwd.to_path_buf(),
                    path_env.map(|p| p.to_os_string()),
                    started,
                )
            }),
            pending: pending.clone(),
            limit: self.config.probe_deadline.unwrap_or(probe::PROBE_DEADLINE),
        };
        let start = Start {
            cwd: cwd.to_path_buf(),
            path_env: path_env.map(|p| p.to_os_string()),
            counters: self.counters.clone(),
        };
        let d = self.probe_while(ending, start, while_running)?;
        match pending.outcome() {
            Some(Ok(())) => Ok((d, None)),
            _ => Ok((d, Some(pending))),
        }
    }

    /// [`Analyzer::probe`], once for all the requests that need the same compiler at the
    /// same time: the first starts it; each of the others runs `while_running` (its own
    /// walk with guessed directories), unless the outcome is already there, and takes
    /// that outcome. The outcome is in `gen.probes` before the probe leaves
    /// `gen.flights`, so a later request finds the one or the other. A failure is not
    /// kept (the next request after it probes again), except a compiler stopped at its
    /// deadline ([`Ending::run`]): a compiler that hangs costs the build one deadline,
    /// not one per wave of requests.
    fn probe_once(
        &self,
        gen: &Arc<Generation>,
        key: &probe::ProbeKey,
        cwd: &Path,
        while_running: impl FnOnce(),
    ) -> Result<graph::Probed, String> {
        let (flight, first) = {
            let mut flights = gen.flights.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(probed) = gen.probes.get(key) {
                return Ok(probed);
            }
            if let Some(e) = gen.probes_stopped.get(key) {
                return Err(e);
            }
            match flights.get(key) {
                Some(flight) => (flight.clone(), false),
                None => {
                    let flight = Arc::new(graph::Flight::default());
                    flights.insert(key.clone(), flight.clone());
                    (flight, true)
                }
            }
        };
        if !first {
            self.counters.probe_joins.fetch_add(1, Ordering::Relaxed);
            if !flight.landed() {
                while_running();
            }
            return flight.wait();
        }
        // Lands and leaves even if the probe panics: no request waits for good.
        struct Leave<'a> {
            gen: &'a Generation,
            key: &'a probe::ProbeKey,
            flight: Option<Arc<graph::Flight>>,
        }
        impl Leave<'_> {
            fn land(&mut self, outcome: Result<graph::Probed, String>) {
                let Some(flight) = self.flight.take() else {
                    return;
                };
                {
                    let mut flights = self.gen.flights.lock().unwrap_or_else(|e| e.into_inner());
                    if flights
                        .get(self.key)
                        .is_some_and(|f| Arc::ptr_eq(f, &flight))
                    {
                        flights.remove(self.key);
                    }
                }
                flight.land(outcome);
            }
        }
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                self.land(Err("the compiler's probe ended without an outcome".into()));
            }
        }
        let mut leave = Leave {
            gen,
            key,
            flight: Some(flight),
        };
        let outcome = self
            .probe(gen, key, cwd, while_running)
            .map(|probed| gen.probes.insert_if_absent(key.clone(), probed));
        leave.land(outcome.clone());
        outcome
    }

    /// Runs `while_running` (the walk with guessed directories) while another thread
    /// ([`aside::Aside`], waiting for it since the server started) starts the compiler
    /// and reads its output: the directories, once it has printed its search lists (or
    /// its error, if it fails first). That thread goes on alone: it waits for the
    /// compiler to end and does the rest of `ending`. The request's thread thus walks at
    /// once, instead of waiting while the compiler is started (`posix_spawn` returns once
    /// the compiler's driver is loaded: 0.2 to 0.3 ms on a virtual machine).
    ///
    /// When the compiler has ended before the walk, that thread reads ahead for the walk
    /// until it ends, on the core the compiler leaves. While the compiler ran (about 10
    /// ms of `cc1plus`), the walk and the read-ahead helpers shared the other cores; on
    /// two cores, the walk and its one helper shared one. Linux then often leaves the two
    /// stacked on that core for several milliseconds after the compiler's core goes
    /// idle: it moves a running thread only at a balancing tick, and a helper that sleeps
    /// and wakes may be put back beside the walk. The thread woken by the compiler's exit
    /// is already on the free core. When the helpers cannot all have a core of their own
    /// next to the walk and this thread, they are held (they hand back what they were
    /// reading) while it reads ahead in their place.
    fn probe_while(
        &self,
        ending: Ending,
        start: Start,
        while_running: impl FnOnce(),
    ) -> Result<Arc<probe::Defaults>, String> {
        // Set even if the walk panics: the reading-ahead thread must stop.
        struct Walked(Arc<AtomicBool>);
        impl Drop for Walked {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let walked = Walked(Arc::new(AtomicBool::new(false)));
        let name = String::from_utf8_lossy(&ending.key.compiler).into_owned();
        let failed = || format!("waiting for the probe of '{name}' failed");
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let prefetch = self.prefetch().cloned();
        let counters = self.counters.clone();
        let done = walked.0.clone();
        let task = aside::Task::new(move || {
            ending.start_and_run(&start, |d| {
                let _ = tx.send(d);
            });
            if let Some(p) = prefetch {
                let _hold = (p.helpers() + 2 > crate::available_cores()).then(|| p.hold());
                p.help_until(&counters, &done);
            }
        });
        match self.aside.run(task) {
            Ok(()) => {
                let _walked = walked;
                while_running();
            }
            // No thread: the compiler is started here, and its output read after the walk.
            Err(task) => {
                drop(walked);
                while_running();
                task.run();
            }
        }
        rx.recv().unwrap_or_else(|_| Err(failed()))
    }

    /// The command line's macros entered into the table, the search configuration and
    /// the compiler's default directories (probed on first use).
    fn setup(
        &self,
        gen: &Arc<Generation>,
        cwd: &Path,
        cmd: &command::CompileCommand,
        budget: &mut cputime::Budget,
        guessed: &mut dyn FnMut(&Closure),
    ) -> Result<graph::Setup, AnalysisError> {
        for d in &cmd.defines {
            let text = [d.lhs.as_slice(), b" ", d.value.as_slice()].concat();
            if let Some(def) = scan::define(&text) {
                gen.define(&def, 0);
            }
        }
        for u in &cmd.undefs {
            gen.macros.undefine(u);
        }
        let (defaults, pending) = if cmd.nostdinc {
            (Arc::new(probe::Defaults::default()), None)
        } else {
            let relative_path = !cmd.compiler.starts_with(b"/") && cmd.compiler.contains(&b'/');
            let key = probe::ProbeKey {
                compiler: cmd.compiler.clone(),
                cwd: relative_path.then(|| cwd.to_path_buf()),
                language: cmd.language.clone(),
                flags: cmd.probe_flags.clone(),
            };
            match gen.probes.get(&key) {
                Some(probed) => probed,
                None => {
                    let limit = budget.limit();
                    let walk = || self.walk_while_probing(gen, cwd, cmd, limit, guessed);
                    budget
                        .exclude(|| self.probe_once(gen, &key, cwd, walk))
                        .map_err(AnalysisError::CompilerProbe)?
                }
            }
        };
        let key = search_config(gen, cwd, cmd, &defaults);
        Ok((gen.config(key), Arc::new(system_dirs(&defaults)), pending))
    }

    /// Waits, at most until `deadline`, for the compilers probed for requests already
    /// answered to end and their probes to be saved; whether all have. The compilers
    /// still running then are killed.
    pub fn settle(&self, deadline: std::time::Instant) -> bool {
        let all = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut settled = true;
        for p in &all {
            if !p.wait_done(deadline) {
                // Its compiler is in a process group of its own, which a signal to the
                // server's group does not reach: it is not left running.
                p.stop();
                settled = false;
            }
        }
        settled
    }

    /// Drops every cache (a `--stat_reset_triggers` change or a new generation).
    pub fn reset(&self) {
        *self.generation.write().unwrap_or_else(|e| e.into_inner()) =
            Arc::new(Generation::default());
        self.resets.fetch_add(1, Ordering::Relaxed);
    }

    /// Counters so far.
    pub fn stats(&self) -> AnalysisStats {
        let c = &self.counters;
        let l = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        AnalysisStats {
            files_parsed: l(&c.files_parsed),
            parse_cache_hits: l(&c.parse_cache_hits),
            compiler_probes: l(&c.compiler_probes),
            probe_cache_hits: l(&c.probe_cache_hits),
            macro_waits: l(&c.macro_waits),
            probe_joins: l(&c.probe_joins),
            graph_cache_hits: l(&c.graph_cache_hits),
            capped_evaluations: l(&c.capped_evaluations),
            ignored_absolute_includes: l(&c.ignored_absolute_includes),
            incomplete_evaluations: l(&c.incomplete_evaluations),
            approximated_evaluations: l(&c.approximated_evaluations),
            resets: l(&self.resets),
        }
    }
}

/// The predefined macros `defaults` holds, entered into `gen`'s table.
fn enter_macros(gen: &Generation, defaults: &probe::Defaults) {
    for m in &defaults.macros {
        gen.define(m, 0);
    }
}

/// What is left to do once a probe's compiler has started.
struct Ending {
    key: probe::ProbeKey,
    gen: Arc<Generation>,
    /// Where to save it: the cache, the cwd, `PATH`, when the compiler started.
    cache: Option<(
        probe_cache::ProbeCache,
        PathBuf,
        Option<std::ffi::OsString>,
        i64,
    )>,
    pending: Arc<probe::Pending>,
    /// How long the compiler may run.
    limit: Duration,
}

/// What starting a probe's compiler needs besides its key.
struct Start {
    cwd: PathBuf,
    /// `PATH` to look the compiler up in.
    path_env: Option<std::ffi::OsString>,
    counters: Arc<graph::Counters>,
}

impl Ending {
    /// Starts the compiler, then [`Ending::run`]; a compiler that cannot be started
    /// settles the probe with its error, which goes to `dirs`.
    fn start_and_run(self, start: &Start, dirs: impl FnOnce(Result<Arc<probe::Defaults>, String>)) {
        match probe::spawn(&self.key, &start.cwd, start.path_env.as_deref()) {
            Ok(child) => {
                start
                    .counters
                    .compiler_probes
                    .fetch_add(1, Ordering::Relaxed);
                self.pending.set_group(child.id());
                self.run(child, dirs);
            }
            Err(e) => {
                self.pending.settle(Err(e.clone()));
                self.pending.finish();
                dirs(Err(e));
            }
        }
    }

    /// Reads the compiler's output: its directories go to `dirs` as soon as its search
    /// lists are complete (or when it ends, with its error if it failed). Once it has
    /// ended, enters its predefined macros, settles [`Ending::pending`] and saves the
    /// probe.
    fn run(
        self,
        child: std::process::Child,
        dirs: impl FnOnce(Result<Arc<probe::Defaults>, String>),
    ) {
        let mut running = probe::Running::new(&self.key, child, self.limit);
        let mut dirs = Some(dirs);
        let lists = running.search_lists();
        let stopped_before_lists = lists.is_none() && running.stopped();
        if let Some(d) = lists {
            if let Some(f) = dirs.take() {
                f(Ok(Arc::new(d)));
            }
        }
        let ended = running
            .finish()
            .and_then(|out| Ok((probe::interpret(&self.key, &out)?, out)));
        match ended {
            Ok((d, out)) => {
                enter_macros(&self.gen, &d);
                self.pending.settle(Ok(()));
                if let Some(f) = dirs.take() {
                    f(Ok(d));
                }
                if let Some((cache, cwd, path_env, started)) = &self.cache {
                    cache.store(&self.key, cwd, path_env.as_deref(), &out, *started);
                }
            }
            Err(e) => {
                // Kept before the requests waiting for it hear of it (a stop after the
                // lists is kept by the pending macros).
                if stopped_before_lists {
                    self.gen.probes_stopped.insert(self.key.clone(), e.clone());
                }
                self.pending.settle(Err(e.clone()));
                if let Some(f) = dirs.take() {
                    f(Err(e));
                }
            }
        }
        self.pending.finish();
    }
}

/// A compiler's default directories as a closure lists them: angle first, then the
/// quote-only ones.
fn system_dirs(defaults: &probe::Defaults) -> Vec<PathBuf> {
    let mut dirs = defaults.angle.clone();
    for q in &defaults.quote {
        if !dirs.contains(q) {
            dirs.push(q.clone());
        }
    }
    dirs
}

/// A closure's files as the reply lists them: one entry per realpath (a file reached by an
/// absolute spelling too is shipped as `.abs`), the source first, with their ids.
fn materialize(gen: &Generation, total: &Summary, source_real: Arc<Path>) -> closure::Materialized {
    let mut files: Vec<ClosureFile> = Vec::with_capacity(total.files.len() as usize);
    let mut file_ids: Vec<u32> = Vec::with_capacity(files.capacity());
    // A file reached by an absolute spelling too has two ids: one entry, `.abs`.
    let mut index: FxHashMap<PathBytes, usize> = FxHashMap::default();
    let mut with_abs = false;
    gen.closures.files.with_values(&total.files, |id, f| {
        if f.abs.is_some() {
            with_abs = true;
        }
        files.push(ClosureFile {
            realpath: f.real.to_path_buf(),
            abs_spelling: f.abs.as_ref().map(|a| path_of(a).to_path_buf()),
        });
        file_ids.push(id);
    });
    if with_abs {
        let mut k = 0;
        while k < files.len() {
            match index.get(&PathBytes(Arc::from(files[k].realpath.as_path()))) {
                Some(&first) => {
                    let f = files.remove(k);
                    let id = file_ids.remove(k);
                    if files[first].abs_spelling.is_none() && f.abs_spelling.is_some() {
                        files[first].abs_spelling = f.abs_spelling;
                        file_ids[first] = id;
                    }
                }
                None => {
                    index.insert(PathBytes(Arc::from(files[k].realpath.as_path())), k);
                    k += 1;
                }
            }
        }
    }
    {
        let src = source_real.clone();
        let src = bytes_of(&src);
        if let Some(k) = files.iter().position(|f| bytes_of(&f.realpath) == src) {
            let f = files.remove(k);
            files.insert(0, f);
            let id = file_ids.remove(k);
            file_ids.insert(0, id);
        }
    }
    closure::Materialized {
        source: source_real,
        files: Arc::new(files),
        ids: Arc::new(file_ids),
    }
}

/// What [`Analyzer::setup`] depends on, as bytes: the cwd and every part of the command
/// line but the files (each field length-prefixed).
fn setup_key(cwd: &Path, cmd: &command::CompileCommand) -> Vec<u8> {
    let mut k = Vec::with_capacity(1024);
    let mut put = |b: &[u8]| {
        k.extend_from_slice(&(b.len() as u32).to_le_bytes());
        k.extend_from_slice(b);
    };
    put(bytes_of(cwd));
    put(&cmd.compiler);
    put(&cmd.language);
    put(&[u8::from(cmd.nostdinc), u8::from(cmd.no_current_dir)]);
    for (tag, list) in [
        (b"q", &cmd.quote_dirs),
        (b"a", &cmd.angle_dirs),
        (b"s", &cmd.system_dirs),
        (b"f", &cmd.after_dirs),
        (b"u", &cmd.undefs),
        (b"p", &cmd.probe_flags),
    ] {
        put(tag);
        put(&(list.len() as u32).to_le_bytes());
        for d in list.iter() {
            put(d);
        }
    }
    put(b"d");
    for d in &cmd.defines {
        put(&d.lhs);
        put(&d.value);
    }
    k
}

/// The nodes of a request's roots (its `-include` files, then the source) and the union
/// of their closures.
fn walk(
    ctx: &mut Ctx<'_>,
    cwd: &Path,
    cmd: &command::CompileCommand,
) -> Result<(Vec<Node>, Arc<Summary>), AnalysisError> {
    let mut roots = Vec::new();
    let n_includes = cmd.include_files.len();
    for (k, f) in cmd.include_files.iter().chain([&cmd.source]).enumerate() {
        let is_source = k == n_includes;
        let node = command_line_node(ctx, cwd, f, !is_source).ok_or_else(|| {
            AnalysisError::FileNotFound(if is_source {
                format!(
                    "could not find translation unit '{}'",
                    String::from_utf8_lossy(f)
                )
            } else {
                format!(
                    "could not find include file '{}'",
                    String::from_utf8_lossy(f)
                )
            })
        })?;
        roots.push(node);
    }
    let total: Arc<Summary> = loop {
        let total = union_of(ctx, &roots)?;
        // A definition parsed late may have changed what an earlier evaluation
        // yields: go again (memoized closures still valid are reused).
        if total.valid(&ctx.gen.macros) {
            break total;
        }
        if ctx.budget.exceeded() {
            return Err(AnalysisError::Budget(ctx.budget.limit()));
        }
    };
    Ok((roots, total))
}

/// The union of the closures of `roots`, widened where a computed include was
/// approximated: each shipped file with an exactly evaluated computed include then also
/// gets its approximation (see [`graph::Ctx::approximate`]), as the definitions of the
/// system headers the approximation did not walk are missing from the table.
fn union_of(ctx: &mut Ctx<'_>, roots: &[Node]) -> Result<Arc<Summary>, AnalysisError> {
    if let [root] = roots {
        let s = closure::closure(ctx, root.clone())?;
        if !s.approximated {
            return Ok(s);
        }
    }
    // Kept by the generation, like a node's closure: a warm request checks its
    // dependencies instead of merging and widening again (the listings and resolutions
    // widening uses are the generation's, fixed).
    let key: Box<[closure::MemoKey]> = roots.iter().map(|r| closure::memo_key(ctx, r)).collect();
    if let Some(s) = ctx.gen.closures.unions.get(&key) {
        if s.valid(&ctx.gen.macros) {
            return Ok(s);
        }
    }
    let total = Arc::new(widened_union(ctx, roots)?);
    ctx.gen.closures.unions.insert(key, total.clone());
    Ok(total)
}

/// [`union_of`], computed.
fn widened_union(ctx: &mut Ctx<'_>, roots: &[Node]) -> Result<Summary, AnalysisError> {
    let mut total = Summary::default();
    for r in roots {
        total.merge(&*closure::closure(ctx, r.clone())?);
    }
    if !total.approximated {
        return Ok(total);
    }
    let mut widened: FxHashSet<(PathBytes, PathBytes)> = FxHashSet::default();
    loop {
        let pending: Vec<Node> = total
            .exact_nodes
            .iter()
            .filter(|n| widened.insert((PathBytes(n.real.clone()), PathBytes(n.dir_real.clone()))))
            .cloned()
            .collect();
        if pending.is_empty() {
            return Ok(total);
        }
        for n in pending {
            let mut children = Vec::new();
            ctx.approximate(&n, false, &mut children);
            for c in children {
                let node = Node {
                    real: c.real.clone(),
                    dir_real: c.dir_real.clone(),
                    text: ctx.child_text(&n, &c),
                    embed: c.embed,
                };
                total.merge(&*closure::closure(ctx, node)?);
            }
        }
    }
}

/// The node of a command-line file: an absolute name as is; a relative one in the cwd,
/// then (for `-include`/`-imacros`, as GCC does) along the quote chain.
fn command_line_node(ctx: &Ctx<'_>, cwd: &Path, f: &[u8], use_chain: bool) -> Option<Node> {
    let fs = &ctx.gen.fs;
    let make = |text: Vec<u8>, abs: PathBuf| -> Option<Node> {
        let real = fs.file(&abs)?;
        let dir_abs = {
            let b = bytes_of(&abs);
            let d = dir_text(b);
            path_of(if d.len() > 1 { &d[..d.len() - 1] } else { d }).to_path_buf()
        };
        let dir_real = fs.dir(&dir_abs)?;
        Some(Node {
            real,
            dir_real,
            text: Arc::from(text),
            embed: false,
        })
    };
    if f.starts_with(b"/") {
        return make(f.to_vec(), path_of(f).to_path_buf());
    }
    if let Some(n) = make(f.to_vec(), join(cwd, f)) {
        return Some(n);
    }
    if !use_chain {
        return None;
    }
    for d in &ctx.cfg.key.dirs {
        let text = [d.text.as_slice(), f].concat();
        if let Some(n) = make(text, join(&d.abs, f)) {
            return Some(n);
        }
    }
    None
}

/// Builds the search configuration (spec 5.2) with GCC's duplicate removal: the system
/// chain (`-isystem`, defaults, `-idirafter`) keeps first occurrences; a `-I` or quote
/// dir that duplicates an earlier dir of its chain or any system dir is dropped.
fn search_config(
    gen: &Generation,
    cwd: &Path,
    cmd: &command::CompileCommand,
    defaults: &probe::Defaults,
) -> ConfigKey {
    let mk = |text: &[u8]| -> Dir {
        let mut t = text.to_vec();
        if !t.is_empty() && !t.ends_with(b"/") {
            t.push(b'/');
        }
        let abs = if t.is_empty() {
            cwd.to_path_buf()
        } else if t.starts_with(b"/") {
            path_of(&t).to_path_buf()
        } else {
            join(cwd, &t[..t.len() - 1])
        };
        Dir { text: t, abs }
    };
    let identity = |d: &Dir| -> PathBuf {
        gen.fs
            .dir(&d.abs)
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| d.abs.clone())
    };
    let mut system: Vec<Dir> = Vec::new();
    let mut system_ids: Vec<PathBuf> = Vec::new();
    let system_src = cmd
        .system_dirs
        .iter()
        .map(|d| mk(d))
        .chain(defaults.angle.iter().map(|p| mk(bytes_of(p))))
        .chain(cmd.after_dirs.iter().map(|d| mk(d)));
    for d in system_src {
        let id = identity(&d);
        if !system_ids.contains(&id) {
            system_ids.push(id);
            system.push(d);
        }
    }
    let dedup = |src: Vec<Dir>| -> Vec<Dir> {
        let mut out: Vec<Dir> = Vec::new();
        let mut ids: Vec<PathBuf> = Vec::new();
        for d in src {
            let id = identity(&d);
            if ids.contains(&id) || system_ids.contains(&id) {
                continue;
            }
            ids.push(id);
            out.push(d);
        }
        out
    };
    let bracket = dedup(cmd.angle_dirs.iter().map(|d| mk(d)).collect());
    let quote = dedup(
        cmd.quote_dirs
            .iter()
            .map(|d| mk(d))
            .chain(defaults.quote.iter().map(|p| mk(bytes_of(p))))
            .collect(),
    );
    let angle_start = quote.len();
    let mut dirs = quote;
    dirs.extend(bracket);
    dirs.extend(system);
    let mut sys: Vec<PathBuf> = defaults.angle.clone();
    sys.extend(defaults.quote.iter().cloned());
    ConfigKey {
        cwd: cwd.to_path_buf(),
        dirs,
        angle_start,
        no_current_dir: cmd.no_current_dir,
        system: sys,
    }
}

#[cfg(test)]
mod tests;
