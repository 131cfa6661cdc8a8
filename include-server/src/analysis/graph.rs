//! The include graph (spec 5.8, 5.9): search configurations, resolution and the memoized
//! edges of each file per configuration (closures are in [`super::closure`]).
//!
//! A *node* is a file reached with a given directory: its realpath and the realpath of
//! the directory its quote includes start in (the textual dir of the spelling that reached
//! it). Nodes are deduplicated by that pair while a closure is computed (see
//! [`super::closure`]), which ends cycles and `D/../D/../` chains. A node's *edges* (its
//! resolved includes) depend only on the search configuration, the node and, for
//! computed includes, the macro table; they are memoized per (configuration, node) for
//! every request of the generation, and a memo that used macros is revalidated against
//! the versions of the symbols its evaluations looked up.
//! Textual spellings (for `paths_used` and `.abs`) are rebuilt from [`DirRef`]s, so one
//! memo of edges serves any spelling of the same node.

use rustc_hash::FxHashSet as HashSet;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use super::aside::Task;
use super::cputime::Budget;
use super::fscache::FsCache;
use super::macros::{self, Checked, EvalError, Evaluation, HeaderName, MacroDef, MacroTable, Sym};
use super::probe::{Defaults, Pending, ProbeKey};
use super::scan::{self, IncludeForm};
use super::shard::ShardedMap;
use super::AnalysisError;

/// Bytes to a path.
pub fn path_of(b: &[u8]) -> &Path {
    Path::new(std::ffi::OsStr::from_bytes(b))
}

/// A path to bytes.
pub fn bytes_of(p: &Path) -> &[u8] {
    p.as_os_str().as_bytes()
}

/// `base` joined with the relative `rel` textually (`base` absolute).
pub fn join(base: &Path, rel: &[u8]) -> PathBuf {
    let mut v = Vec::with_capacity(bytes_of(base).len() + 1 + rel.len());
    join_into(&mut v, base, rel);
    PathBuf::from(std::ffi::OsString::from_vec(v))
}

/// [`join`] into `out` (cleared first).
fn join_into(out: &mut Vec<u8>, base: &Path, rel: &[u8]) {
    out.clear();
    out.extend_from_slice(bytes_of(base));
    if !rel.is_empty() {
        if !out.ends_with(b"/") {
            out.push(b'/');
        }
        out.extend_from_slice(rel);
    }
}

/// The directory part of a textual path, with its trailing `/` (`""` when none).
pub fn dir_text(p: &[u8]) -> &[u8] {
    match p.iter().rposition(|&c| c == b'/') {
        Some(k) => &p[..=k],
        None => b"",
    }
}

/// One search directory.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Dir {
    /// As spelled after normalisation, with a trailing `/` unless `""` or `/`.
    pub text: Vec<u8>,
    /// Absolute textual location (cwd-joined).
    pub abs: PathBuf,
}

/// A search configuration (spec 5.2): what a graph's edges depend on.
#[derive(Debug, PartialEq, Eq, Hash, Clone)]
pub struct ConfigKey {
    /// The client cwd.
    pub cwd: PathBuf,
    /// Quote chain, in order; the angle chain is its suffix from `angle_start`.
    pub dirs: Vec<Dir>,
    /// Where the angle chain starts in `dirs`.
    pub angle_start: usize,
    /// `-I-`.
    pub no_current_dir: bool,
    /// Realpaths of the compiler's default dirs: files under them are system files.
    pub system: Vec<PathBuf>,
}

/// An interned configuration.
#[derive(Debug)]
pub struct Config {
    /// Unique within the generation.
    pub id: u64,
    /// The configuration.
    pub key: ConfigKey,
}

impl Config {
    /// Whether a realpath is under a compiler default dir.
    pub fn is_system(&self, real: &Path) -> bool {
        self.key.system.iter().any(|d| path_has_prefix(real, d))
    }
}

/// `real.starts_with(dir)` for normalised absolute paths, over bytes (the component-wise
/// `Path::starts_with` dominated warm requests): `dir` is a prefix ending at a `/`.
fn path_has_prefix(real: &Path, dir: &Path) -> bool {
    let (r, d) = (
        real.as_os_str().as_encoded_bytes(),
        dir.as_os_str().as_encoded_bytes(),
    );
    let d = d.strip_suffix(b"/").unwrap_or(d);
    r.starts_with(d) && (r.len() == d.len() || r[d.len()] == b'/' || d.is_empty())
}

/// A path hashed and compared by its bytes: the walk's paths are realpaths (no `.`, `..`
/// or doubled `/`), for which byte equality is path equality, and hashing bytes is much
/// cheaper than `Path`'s component-wise hash.
#[derive(Clone, Debug)]
pub struct PathBytes(pub Arc<Path>);

impl PartialEq for PathBytes {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_os_str().as_encoded_bytes() == other.0.as_os_str().as_encoded_bytes()
    }
}

impl Eq for PathBytes {}

impl std::hash::Hash for PathBytes {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.as_os_str().as_encoded_bytes().hash(state)
    }
}

/// Where a resolved include was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirRef {
    /// The including file's directory.
    Current,
    /// `dirs[i]` of the configuration.
    List(u32),
    /// An absolute name (only system files get here).
    Absolute,
}

/// One edge.
#[derive(Clone, Debug)]
pub struct Child {
    /// Where it was found.
    pub dir: DirRef,
    /// The include string (leading `./` removed).
    pub name: Arc<[u8]>,
    /// The file's realpath.
    pub real: Arc<Path>,
    /// The realpath of the directory of `dir` + `name`.
    pub dir_real: Arc<Path>,
    /// `#embed`: shipped, not scanned.
    pub embed: bool,
}

/// A node's memoized edges.
#[derive(Debug)]
pub struct Edges {
    /// Children in directive order.
    pub children: Vec<Child>,
    /// Macro symbols the computed includes looked up, with their versions.
    pub deps: Vec<(Sym, u64)>,
    /// A computed include was approximated.
    pub approximated: bool,
    /// A computed include was evaluated exactly.
    pub exact_computed: bool,
    /// When `deps` were last found current.
    pub checked: Checked,
}

impl Edges {
    fn valid(&self, table: &MacroTable) -> bool {
        table.current(&self.deps, &self.checked)
    }
}

/// A file's scan, cached per realpath.
#[derive(Debug)]
pub struct Parsed {
    /// Include-like directives.
    pub includes: Vec<scan::Include>,
    /// The file's `#define`s, `#undef`s and key, until the first request that visits the
    /// file queues them for the macro table ([`Parsed::publish`]). A read-ahead helper
    /// only scans: the table never holds a file no request visited, and what a request
    /// evaluates does not depend on how far ahead the helpers got.
    macros: Mutex<Option<FileMacros>>,
}

/// One file's definitions, undefinitions and key, for [`MacroTable::define_later`].
type FileMacros = (Vec<scan::Define>, Vec<Vec<u8>>, u64);

impl Parsed {
    /// Queues the file's macros for the table, the first time. Done under the lock, so
    /// that a request that finds them taken knows they are queued.
    fn publish(&self, table: &super::macros::MacroTable) {
        let mut m = self.macros.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((defines, undefs, key)) = m.take() {
            table.define_later(defines, undefs, key);
        }
    }
}

/// Counters shared by the generations.
#[derive(Debug, Default)]
pub struct Counters {
    /// Files scanned.
    pub files_parsed: AtomicU64,
    /// Scans answered from the cache.
    pub parse_cache_hits: AtomicU64,
    /// Compiler probes run.
    pub compiler_probes: AtomicU64,
    /// Compiler defaults read from saved probes.
    pub probe_cache_hits: AtomicU64,
    /// Requests that waited for a compiler's predefined macros after its directories.
    pub macro_waits: AtomicU64,
    /// Requests that needed a compiler another request was already probing, and took
    /// that probe's outcome instead of starting the compiler again.
    pub probe_joins: AtomicU64,
    /// Edge lists answered from the memo.
    pub graph_cache_hits: AtomicU64,
    /// Evaluations stopped by the evaluator's hard bound (each failed its request unless
    /// it was approximated).
    pub capped_evaluations: AtomicU64,
    /// Absolute includes ignored under `--unsafe_absolute_includes`.
    pub ignored_absolute_includes: AtomicU64,
    /// Evaluations whose "possibly undefined" pass hit its bound (names assume every
    /// macro used is defined).
    pub incomplete_evaluations: AtomicU64,
    /// Computed includes replaced by their sound approximation (see [`Ctx::edges`]).
    pub approximated_evaluations: AtomicU64,
}

/// How one computed include is covered.
enum Computed {
    /// Its evaluation: resolve every name.
    Exact(Arc<Evaluation>),
    /// Its approximation: every shipped file it could open.
    Approximate,
}

/// A request's search configuration, the compiler's default directories (angle first,
/// then the quote-only ones) as a closure lists them, and the compiler's predefined
/// macros while they are still coming.
pub type Setup = (Arc<Config>, Arc<Vec<PathBuf>>, Option<Arc<Pending>>);

/// A probe's directories, and its predefined macros while they are still coming (the
/// compiler printed its search lists and has not ended yet).
pub type Probed = (Arc<Defaults>, Option<Arc<Pending>>);

/// A compiler probe in progress: the requests that need the same compiler meanwhile
/// wait for its outcome instead of starting the compiler again (a `make -j80` starts
/// with many requests at once, all for one compiler).
#[derive(Debug, Default)]
pub struct Flight {
    outcome: Mutex<Option<Result<Probed, String>>>,
    cv: Condvar,
}

impl Flight {
    /// Records the outcome and wakes the waiters; the first outcome stays.
    pub fn land(&self, outcome: Result<Probed, String>) {
        let mut o = self.outcome.lock().unwrap_or_else(|e| e.into_inner());
        if o.is_none() {
            *o = Some(outcome);
        }
        self.cv.notify_all();
    }

    /// Whether the outcome is there.
    pub fn landed(&self) -> bool {
        self.outcome
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// The outcome, once there is one.
    pub fn wait(&self) -> Result<Probed, String> {
        let mut o = self.outcome.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(outcome) = o.as_ref() {
                return outcome.clone();
            }
            o = self.cv.wait(o).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// All state of one cache generation.
#[derive(Debug, Default)]
pub struct Generation {
    /// Stat/realpath cache (the mirror's shadow-tree walk looks up the same directories:
    /// closures hand it on, [`super::ClosureIds::fs`]).
    pub fs: Arc<FsCache>,
    /// Scans by realpath.
    pub parses: ShardedMap<PathBytes, Arc<Parsed>>,
    /// The global macro table.
    pub macros: MacroTable,
    /// Compiler defaults by probe key.
    pub probes: ShardedMap<ProbeKey, Probed>,
    /// The probes in progress, by key (a probe leaves once its outcome is in `probes`,
    /// or is known to have failed).
    pub flights: Mutex<rustc_hash::FxHashMap<ProbeKey, Arc<Flight>>>,
    /// Compilers stopped at their deadline before they printed their search lists, with
    /// the error: the requests that need them fail at once for the rest of the
    /// generation, instead of each waiting out a deadline of its own.
    pub probes_stopped: ShardedMap<ProbeKey, String>,
    /// Interned configurations.
    pub configs: ShardedMap<ConfigKey, Arc<Config>>,
    next_config: AtomicU64,
    /// Edges by (configuration, node realpath, node dir realpath).
    pub edges: ShardedMap<(u64, PathBytes, PathBytes), Arc<Edges>>,
    /// Evaluations by expression.
    pub evals: ShardedMap<Arc<[u8]>, Arc<Evaluation>>,
    /// Evaluations that hit a bound (or most of a budget), with the symbol versions
    /// they saw.
    pub eval_failures: ShardedMap<Arc<[u8]>, Arc<Deps>>,
    /// Expressions whose evaluation went over [`SOFT_STEPS`]: where a cheap approximation
    /// exists they are approximated at once. An evaluation only grows with the table, so
    /// this holds for the whole generation.
    pub heavy: ShardedMap<Arc<[u8]>, ()>,
    /// The shipped files under one directory, by (configuration id, directory realpath):
    /// names relative to the directory, `None` when over [`MAX_APPROX_FILES`].
    pub listings: ShardedMap<(u64, Arc<Path>), Option<Listing>>,
    /// Memoized closures.
    pub closures: Arc<super::closure::Closures>,
    /// Search configuration and compiler defaults by command-line setup (see
    /// `analysis::setup_key`).
    pub setups: ShardedMap<Box<[u8]>, Setup>,
    /// Relative include names resolved ([`resolve_relative`]), by configuration, form
    /// and name (and the includer's directory when it is searched).
    pub resolutions: ShardedMap<Box<[u8]>, Arc<Resolved>>,
}

/// Where a relative include name resolves: each hit with where it was found, the file's
/// realpath and the realpath of its name's directory.
#[derive(Debug)]
pub struct Resolved {
    /// The name (leading `./` removed).
    pub name: Arc<[u8]>,
    /// The hits in search order: the first only, unless `#include_next`.
    pub hits: Box<[Hit]>,
}

/// A hit of a resolution: where it was found, the file's realpath and the realpath of
/// its name's directory.
pub type Hit = (DirRef, Arc<Path>, Arc<Path>);

/// The files a relative include `name` (leading `./` removed) names from a file in
/// `includer_dir`, in the search order of `cfg`; memoized per generation. The walk and
/// the read-ahead helpers resolve the same names in file after file (every libstdc++
/// header includes `<bits/c++config.h>`), each trying several directories: one lookup
/// replaces those.
pub fn resolve_relative(
    gen: &Generation,
    cfg: &Config,
    includer_dir: &Path,
    name: &[u8],
    angle: bool,
    next: bool,
) -> Arc<Resolved> {
    // The includer's directory is searched first for a quoted name only.
    let current = !next && !angle && !cfg.key.no_current_dir;
    thread_local! {
        static KEY: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    KEY.with(|key| {
        let mut key = key.borrow_mut();
        key.clear();
        key.extend_from_slice(&cfg.id.to_le_bytes());
        key.push(u8::from(angle) | (u8::from(next) << 1) | (u8::from(current) << 2));
        if current {
            key.extend_from_slice(bytes_of(includer_dir));
            key.push(0);
        }
        key.extend_from_slice(name);
        if let Some(r) = gen.resolutions.get(&key[..]) {
            return r;
        }
        let mut hits = Vec::new();
        for (base, dir) in search_order(cfg, includer_dir, angle, next) {
            if let Some((real, dir_real)) = lookup(&gen.fs, base, name) {
                hits.push((dir, real, dir_real));
                if !next {
                    break;
                }
            }
        }
        let r = Arc::new(Resolved {
            name: Arc::from(name),
            hits: hits.into_boxed_slice(),
        });
        gen.resolutions.insert_if_absent(key.as_slice().into(), r)
    })
}

/// Reads and scans `real` into the generation's scan cache (its macros wait in the scan
/// until a request visits the file: [`Parsed::publish`]).
fn parse_into(
    gen: &Generation,
    counters: &Counters,
    real: &Arc<Path>,
) -> std::io::Result<Arc<Parsed>> {
    crate::prime_malloc_arena();
    // One read buffer per thread, reused: a fresh one per file cost an allocation and
    // page faults for every header of a cold request.
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let s = BUF.with(|buf| -> std::io::Result<scan::Scan> {
        let mut buf = buf.borrow_mut();
        // The buffer stays initialized to its full length; `filled` bytes are the file's.
        // Reading straight into it takes one `read` per file (`read_to_end` on a `File`
        // adds an `fstat` and an `lseek` for its size hint). A read that stops short at
        // the size the lookup saw has read the file; otherwise reading goes on until a
        // read returns nothing.
        let (mut file, size) = gen.fs.open_file(real)?;
        if let Some(size) = size {
            let want = usize::try_from(size)
                .unwrap_or(usize::MAX)
                .saturating_add(1);
            if buf.len() < want {
                buf.resize(want.max(256 << 10), 0);
            }
        }
        let mut filled = 0;
        loop {
            if buf.len() - filled < 4096 {
                let grown = (buf.len() * 2).max(256 << 10);
                buf.resize(grown, 0);
            }
            match std::io::Read::read(&mut file, &mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => {
                    filled += n;
                    // The buffer holds one byte more than `size`: this read stopped short.
                    if size == Some(filled as u64) {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let s = scan::scan(&buf[..filled]);
        if buf.len() > 4 << 20 {
            // Do not keep a huge file's buffer around.
            *buf = Vec::new();
        }
        Ok(s)
    })?;
    let file_key = {
        let mut h = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(&**real, &mut h);
        std::hash::Hasher::finish(&h) | 1
    };
    let parsed = Arc::new(Parsed {
        includes: s.includes,
        macros: Mutex::new(Some((s.defines, s.undefs, file_key))),
    });
    let kept = gen
        .parses
        .insert_if_absent(PathBytes(real.clone()), parsed.clone());
    // Two threads may scan one file (a request and a prefetch helper, or two requests);
    // it counts once, for the scan kept.
    if Arc::ptr_eq(&kept, &parsed) {
        counters.files_parsed.fetch_add(1, Ordering::Relaxed);
    }
    Ok(kept)
}

/// An include name without its leading `./` (any number of them).
fn without_dot_slash(mut name: &[u8]) -> &[u8] {
    while let Some(r) = name.strip_prefix(b"./") {
        name = r;
    }
    name
}

/// The realpaths of `base/name`, when it is a file, and of its directory.
fn lookup(fs: &FsCache, base: &Path, name: &[u8]) -> Option<(Arc<Path>, Arc<Path>)> {
    // Each include is tried in several directories: the candidate paths are joined in
    // one buffer per thread (the caches copy a path only when they add it).
    thread_local! {
        static PATH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    PATH.with(|path| {
        let mut path = path.borrow_mut();
        join_into(&mut path, base, name);
        let real = fs.file(path_of(&path))?;
        let d = dir_text(name);
        let dir_real = if d.is_empty() {
            fs.dir(base)?
        } else {
            join_into(&mut path, base, d);
            fs.dir(path_of(&path))?
        };
        Some((real, dir_real))
    })
}

/// Where a relative header name is looked for, in order, with how a hit records its
/// directory. `#include_next` looks in every directory of the chain (GCC starts after
/// the includer's; over-approximated) and takes every hit; the others take the first.
fn search_order<'c>(
    cfg: &'c Config,
    includer_dir: &'c Path,
    angle: bool,
    next: bool,
) -> impl Iterator<Item = (&'c Path, DirRef)> + 'c {
    let current =
        (!next && !angle && !cfg.key.no_current_dir).then_some((includer_dir, DirRef::Current));
    let start = if angle && !next {
        cfg.key.angle_start
    } else {
        0
    };
    let list = cfg
        .key
        .dirs
        .iter()
        .enumerate()
        .skip(start)
        .map(|(i, d)| (d.abs.as_path(), DirRef::List(i as u32)));
    current.into_iter().chain(list)
}

/// Helper threads that read, scan and resolve the files a cold request will visit, while
/// the request's own thread walks the graph (which stays in one thread: its order decides
/// the macro table's evolution within the request, see [`Ctx::edges`]).
///
/// When the walk computes a node's edges, it queues the children it will visit last (all
/// but the first, which it visits at once), farthest first. A helper takes the oldest
/// entry, the part of the graph the walk reaches last, and crawls on from it depth first
/// on its own: it scans each file, resolves its includes as the walk will (filling the
/// stat cache) and goes on with the files they name, stopping at files already scanned.
/// The walk and the helpers thus mostly work in different places, and the walk finds
/// what a helper did in the caches. Only files the walk visits too are scanned: the
/// helpers skip computed includes, and every other include resolves as in the walk; so
/// no file's macros enter the table that the request would not enter itself.
#[derive(Debug, Default)]
pub struct Prefetcher {
    state: Mutex<PrefetchState>,
    wake: Condvar,
    stopping: std::sync::atomic::AtomicBool,
    /// Whether a hold is in force ([`Prefetcher::hold`]), read between files.
    held: std::sync::atomic::AtomicBool,
    /// The helper threads started.
    helpers: usize,
}

#[derive(Debug, Default)]
struct PrefetchState {
    queue: std::collections::VecDeque<Ahead>,
    /// Work handed to an idle helper ([`Prefetcher::hand`]), before any reading ahead.
    tasks: std::collections::VecDeque<Task>,
    /// Helpers waiting for work (a wake-up is a system call: only for them).
    idle: usize,
    /// Holds in force: the helpers take no work meanwhile.
    holds: usize,
}

/// What a helper takes next.
enum Job {
    Ahead(Ahead),
    Task(Task),
}

/// A [`Prefetcher::hold`] in force; it ends when dropped.
#[derive(Debug)]
pub struct Hold<'a>(&'a Prefetcher);

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// How long [`Prefetcher::help_until`] spins on an empty queue before napping, and how
/// long it naps.
const HELP_SPIN: std::time::Duration = std::time::Duration::from_micros(200);
const HELP_NAP: std::time::Duration = std::time::Duration::from_micros(100);

/// A file to read ahead, with what resolving its includes takes.
#[derive(Debug)]
struct Ahead {
    gen: Arc<Generation>,
    cfg: Arc<Config>,
    real: Arc<Path>,
    dir_real: Arc<Path>,
}

/// At most this many files wait for a helper; more are dropped (the walk parses them).
const PREFETCH_DEPTH: usize = 4096;

impl Prefetcher {
    /// Starts `helpers` threads serving a new prefetcher.
    pub fn start(helpers: usize, counters: Arc<Counters>) -> Arc<Prefetcher> {
        let p = Arc::new(Prefetcher {
            helpers,
            ..Prefetcher::default()
        });
        for i in 0..helpers {
            let (p, counters) = (p.clone(), counters.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("prefetch-{i}"))
                .spawn(move || p.serve(&counters));
            if spawned.is_err() {
                break;
            }
        }
        p
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// The helper threads started.
    pub fn helpers(&self) -> usize {
        self.helpers
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PrefetchState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps the helpers from reading ahead until the guard is dropped: they take no new
    /// work, and one crawling hands its files back to the queue at the next file.
    pub fn hold(&self) -> Hold<'_> {
        self.lock().holds += 1;
        self.held.store(true, Ordering::Relaxed);
        Hold(self)
    }

    fn release(&self) {
        let mut s = self.lock();
        s.holds = s.holds.saturating_sub(1);
        self.held.store(s.holds > 0, Ordering::Relaxed);
        let wake = s.holds == 0 && s.idle > 0 && !s.queue.is_empty();
        drop(s);
        if wake {
            self.wake.notify_all();
        }
    }

    /// Reads ahead on the calling thread (holds or not) until `done` is set. With the
    /// queue empty it spins for a moment, then naps: it stays on its core, where a
    /// helper woken by the walk's next files could be put beside the walk.
    pub fn help_until(&self, counters: &Counters, done: &std::sync::atomic::AtomicBool) {
        let mut idle_since = None;
        while !done.load(Ordering::Relaxed) && !self.stopping() {
            let job = self.lock().queue.pop_front();
            let Some(job) = job else {
                let since = *idle_since.get_or_insert_with(std::time::Instant::now);
                if since.elapsed() < HELP_SPIN {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(HELP_NAP);
                }
                continue;
            };
            idle_since = None;
            let mut crawl = vec![job];
            while let Some(job) = crawl.pop() {
                if done.load(Ordering::Relaxed) || self.stopping() {
                    return;
                }
                Self::ahead(&job, counters, &mut crawl);
            }
        }
    }

    fn serve(&self, counters: &Counters) {
        while let Some(job) = self.next_job() {
            let job = match job {
                Job::Task(task) => {
                    task.run();
                    continue;
                }
                Job::Ahead(job) => job,
            };
            let gen = job.gen.clone();
            let mut crawl = vec![job];
            while let Some(job) = crawl.pop() {
                if self.stopping() {
                    return;
                }
                if self.held.load(Ordering::Relaxed) {
                    // Back to the queue, for the thread that holds the helpers.
                    let mut s = self.lock();
                    s.queue.push_front(job);
                    for j in crawl.drain(..) {
                        s.queue.push_front(j);
                    }
                    break;
                }
                Self::ahead(&job, counters, &mut crawl);
            }
            if self.is_idle() {
                // Nothing left to read ahead: sort the scanned files' macros by name
                // before a computed include's evaluation has to.
                gen.macros.sort_files();
            }
        }
    }

    fn is_idle(&self) -> bool {
        self.lock().queue.is_empty()
    }

    fn next_job(&self) -> Option<Job> {
        let mut s = self.lock();
        loop {
            if self.stopping() {
                return None;
            }
            if let Some(task) = s.tasks.pop_front() {
                return Some(Job::Task(task));
            }
            if s.holds == 0 {
                if let Some(job) = s.queue.pop_front() {
                    return Some(Job::Ahead(job));
                }
            }
            s.idle += 1;
            s = self.wake.wait(s).unwrap_or_else(|e| e.into_inner());
            s.idle -= 1;
        }
    }

    /// Scans one file and resolves its includes; pushes the files they name on `crawl`
    /// (the first include on top).
    fn ahead(job: &Ahead, counters: &Counters, crawl: &mut Vec<Ahead>) {
        if job.gen.parses.get(&PathBytes(job.real.clone())).is_some() {
            return;
        }
        // A file that cannot be read is the walk's error to report.
        let Ok(parsed) = parse_into(&job.gen, counters, &job.real) else {
            return;
        };
        for inc in parsed.includes.iter().rev() {
            let (name, angle) = match &inc.form {
                IncludeForm::Quote(n) => (n.as_slice(), false),
                IncludeForm::Angle(n) => (n.as_slice(), true),
                IncludeForm::Computed(_) => continue,
            };
            let name = without_dot_slash(name);
            if name.is_empty() || name[0] == b'/' {
                continue;
            }
            if inc.embed {
                continue;
            }
            let r = resolve_relative(&job.gen, &job.cfg, &job.dir_real, name, angle, inc.next);
            for (_, real, dir_real) in r.hits.iter() {
                if job.gen.parses.get(&PathBytes(real.clone())).is_none() {
                    crawl.push(Ahead {
                        gen: job.gen.clone(),
                        cfg: job.cfg.clone(),
                        real: real.clone(),
                        dir_real: dir_real.clone(),
                    });
                }
            }
        }
    }

    /// Queues files for the helpers, the first to be taken first.
    pub fn push(
        &self,
        gen: &Arc<Generation>,
        cfg: &Arc<Config>,
        files: impl Iterator<Item = (Arc<Path>, Arc<Path>)>,
    ) {
        let mut s = self.lock();
        let before = s.queue.len();
        for (real, dir_real) in files {
            if s.queue.len() >= PREFETCH_DEPTH {
                break;
            }
            if gen.parses.get(&PathBytes(real.clone())).is_some() {
                continue;
            }
            s.queue.push_back(Ahead {
                gen: gen.clone(),
                cfg: cfg.clone(),
                real,
                dir_real,
            });
        }
        if s.queue.len() > before && s.idle > 0 && s.holds == 0 {
            drop(s);
            self.wake.notify_one();
        }
    }

    /// Hands `task` to a helper waiting for work, which runs it before it reads ahead
    /// again; gives it back when none is waiting (all are reading ahead, or none was
    /// started), for the caller to run it some other way.
    pub fn hand(&self, task: Task) -> Result<(), Task> {
        let mut s = self.lock();
        if s.idle <= s.tasks.len() {
            return Err(task);
        }
        s.tasks.push_back(task);
        drop(s);
        self.wake.notify_one();
        Ok(())
    }

    /// Ends the helpers (they finish the file in hand).
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        let mut s = self.lock();
        s.queue.clear();
        drop(s);
        self.wake.notify_all();
    }
}

/// Token steps a computed include may take before it is approximated, when its
/// approximation ships at most [`CHEAP_APPROX_FILES`] files: about 10 ms of CPU time in an
/// optimized build. Boost's heaviest expressions (`BOOST_PP_FILENAME_2` and friends, with
/// every definition ever seen as a possible value) take seconds.
pub const SOFT_STEPS: u64 = 100_000;
/// An approximation shipping at most this many files is cheap: it is preferred to a
/// heavy evaluation.
pub const CHEAP_APPROX_FILES: usize = 256;
/// An approximation would ship more files than this: a computed include that hits the
/// evaluator's hard bound then fails its request (`macro_limit`), as shipping that many
/// files with every compile costs more than preprocessing locally.
pub const MAX_APPROX_FILES: usize = 1_000;

/// Per-request context.
pub struct Ctx<'a> {
    /// The generation.
    pub gen: &'a Arc<Generation>,
    /// Helpers that parse files ahead of the walk, if any.
    pub prefetch: Option<&'a Prefetcher>,
    /// Counters.
    pub counters: &'a Counters,
    /// The configuration.
    pub cfg: Arc<Config>,
    /// CPU budget.
    pub budget: Budget,
    /// `--unsafe_absolute_includes`.
    pub unsafe_absolute: bool,
    /// `--unsafe_no_unexpanded_functions`: skip the "possibly undefined" pass.
    pub no_unexpanded: bool,
}

/// The shipped files under a directory, as names relative to it.
pub type Listing = Arc<Vec<Vec<u8>>>;

/// Symbols looked up by an evaluation, with their versions.
pub type Deps = Vec<(Sym, u64)>;

/// A node being walked.
#[derive(Clone, Debug)]
pub struct Node {
    /// Realpath.
    pub real: Arc<Path>,
    /// Realpath of its quote dir.
    pub dir_real: Arc<Path>,
    /// Textual spelling (relative to the cwd, or absolute).
    pub text: Arc<[u8]>,
    /// Not scanned (`#embed`).
    pub embed: bool,
}

impl Generation {
    /// Interns a configuration.
    pub fn config(&self, key: ConfigKey) -> Arc<Config> {
        if let Some(c) = self.configs.get(&key) {
            return c;
        }
        let id = self.next_config.fetch_add(1, Ordering::Relaxed);
        self.configs
            .insert_if_absent(key.clone(), Arc::new(Config { id, key }))
    }

    /// Adds a definition from the file identified by `file_key` (0: the command line or
    /// the compiler).
    pub fn define(&self, d: &scan::Define, file_key: u64) {
        self.macros
            .define(d.name(), MacroDef::from_define(d, file_key));
    }
}

fn limit_error(expr: &[u8]) -> AnalysisError {
    AnalysisError::MacroLimit(format!(
        "computed include '{}' has too many possible expansions",
        String::from_utf8_lossy(expr)
    ))
}

fn budget_err(b: &Budget) -> AnalysisError {
    AnalysisError::Budget(b.limit())
}

impl Ctx<'_> {
    fn check_budget(&mut self) -> Result<(), AnalysisError> {
        if self.budget.tick() {
            return Err(budget_err(&self.budget));
        }
        Ok(())
    }

    /// The scan of a file, from the cache or by reading it (its macros enter the table).
    pub fn parse(&mut self, real: &Arc<Path>) -> Result<Arc<Parsed>, AnalysisError> {
        let parsed = match self.gen.parses.get(&PathBytes(real.clone())) {
            Some(p) => {
                self.counters
                    .parse_cache_hits
                    .fetch_add(1, Ordering::Relaxed);
                p
            }
            None => parse_into(self.gen, self.counters, real).map_err(|error| {
                AnalysisError::Unreadable {
                    path: real.to_path_buf(),
                    error,
                }
            })?,
        };
        parsed.publish(&self.gen.macros);
        Ok(parsed)
    }

    fn hit(&self, base: &Path, name: &[u8], dir: DirRef, embed: bool) -> Option<Child> {
        let (real, dir_real) = lookup(&self.gen.fs, base, name)?;
        Some(Child {
            dir,
            name: Arc::from(name),
            real,
            dir_real,
            embed,
        })
    }

    /// Resolves one include name from a node; pushes the hits.
    fn resolve(
        &mut self,
        node: &Node,
        form: &HeaderName,
        next: bool,
        embed: bool,
        out: &mut Vec<Child>,
    ) -> Result<(), AnalysisError> {
        let (mut name, angle) = match form {
            HeaderName::Quote(n) => (n.as_slice(), false),
            HeaderName::Angle(n) => (n.as_slice(), true),
        };
        name = without_dot_slash(name);
        if name.is_empty() {
            return Ok(());
        }
        if name[0] == b'/' {
            return self.absolute(node, name, embed, out);
        }
        let r = resolve_relative(self.gen, &self.cfg, &node.dir_real, name, angle, next);
        out.extend(r.hits.iter().map(|(dir, real, dir_real)| Child {
            dir: *dir,
            name: r.name.clone(),
            real: real.clone(),
            dir_real: dir_real.clone(),
            embed,
        }));
        Ok(())
    }

    fn absolute(
        &mut self,
        node: &Node,
        name: &[u8],
        embed: bool,
        out: &mut Vec<Child>,
    ) -> Result<(), AnalysisError> {
        let p = path_of(name);
        let Some(real) = self.gen.fs.file(p) else {
            return Ok(()); // Absent on the client: a successful compile cannot read it.
        };
        if self.cfg.is_system(&real) {
            // The server has the same system headers; traverse without shipping.
            if let Some(dir_real) = self.gen.fs.dir(path_of(dir_text(name))) {
                out.push(Child {
                    dir: DirRef::Absolute,
                    name: Arc::from(name),
                    real,
                    dir_real,
                    embed,
                });
            }
            return Ok(());
        }
        if self.unsafe_absolute {
            self.counters
                .ignored_absolute_includes
                .fetch_add(1, Ordering::Relaxed);
            eprintln!(
                "WARNING include server: absolute filepath '{}' was IGNORED (correctness of build may be affected)",
                String::from_utf8_lossy(name)
            );
            return Ok(());
        }
        Err(AnalysisError::AbsoluteInclude(format!(
            "file: '{}': filepath must be relative but isn't: '{}'; consider setting \
             INCLUDE_SERVER_ARGS='--unsafe_absolute_includes'",
            node.real.display(),
            String::from_utf8_lossy(name)
        )))
    }

    /// Evaluates `expr`, stopping at `max_steps` (first pass) when `soft`; a soft stop
    /// returns `Ok(None)` and marks the expression heavy.
    fn evaluate(
        &mut self,
        expr: &[u8],
        soft: bool,
    ) -> Result<Option<Arc<Evaluation>>, AnalysisError> {
        if let Some(e) = self.gen.evals.get(expr) {
            if self.gen.macros.current(&e.deps, &e.checked) && (e.complete || !soft) {
                return Ok(Some(e));
            }
        }
        if soft && self.gen.heavy.get(expr).is_some() {
            return Ok(None);
        }
        // A remembered failure fails fast until a symbol it looked up changes.
        if let Some(deps) = self.gen.eval_failures.get(expr) {
            if soft {
                return Ok(None);
            }
            // A failure is checked afresh each time (it is kept without an epoch).
            if self.gen.macros.current(&deps, &Checked::default()) {
                return Err(limit_error(expr));
            }
        }
        let used_before = self.budget.used();
        let (steps, steps_undefined) = if soft {
            (SOFT_STEPS, SOFT_STEPS.min(macros::MAX_STEPS_UNDEFINED_PASS))
        } else {
            (macros::MAX_STEPS, macros::MAX_STEPS_UNDEFINED_PASS)
        };
        let r = macros::evaluate_bounded(
            expr,
            &self.gen.macros,
            &mut self.budget,
            !self.no_unexpanded,
            steps,
            steps_undefined,
        );
        match r {
            Ok(e) if soft && !e.complete => {
                self.gen.heavy.insert(Arc::from(expr), ());
                Ok(None)
            }
            Ok(e) => {
                if !e.complete {
                    self.counters
                        .incomplete_evaluations
                        .fetch_add(1, Ordering::Relaxed);
                }
                let e = Arc::new(e);
                self.gen.evals.insert(Arc::from(expr), e.clone());
                Ok(Some(e))
            }
            Err(f) if f.error == EvalError::Budget => {
                // An evaluation that alone took most of a request's budget would do so
                // again: remember it like a bound.
                if self.budget.used().saturating_sub(used_before) > self.budget.limit() / 2 {
                    self.gen
                        .eval_failures
                        .insert(Arc::from(expr), Arc::new(f.deps));
                }
                Err(budget_err(&self.budget))
            }
            Err(_) if soft => {
                self.gen.heavy.insert(Arc::from(expr), ());
                Ok(None)
            }
            Err(f) => {
                self.counters
                    .capped_evaluations
                    .fetch_add(1, Ordering::Relaxed);
                self.gen
                    .eval_failures
                    .insert(Arc::from(expr), Arc::new(f.deps));
                Err(limit_error(expr))
            }
        }
    }

    /// The directories an approximated computed include of `node` could open a shipped
    /// file in, with where each was found: the node's own directory (for a quote form)
    /// and every search directory, each when it is not a system directory, each
    /// directory once.
    fn approx_dirs(&self, node: &Node) -> Vec<(DirRef, Arc<Path>)> {
        let mut out = Vec::new();
        if !self.cfg.key.no_current_dir && !self.cfg.is_system(&node.dir_real) {
            out.push((DirRef::Current, node.dir_real.clone()));
        }
        for (i, d) in self.cfg.key.dirs.iter().enumerate() {
            if let Some(real) = self.gen.fs.dir(&d.abs) {
                if !self.cfg.is_system(&real) && !out.iter().any(|(_, o)| *o == real) {
                    out.push((DirRef::List(i as u32), real));
                }
            }
        }
        out
    }

    /// The shipped files under `dir` (relative names), `None` when there are more than
    /// [`MAX_APPROX_FILES`]. Memoized per configuration.
    fn listing(&self, dir: &Arc<Path>) -> Option<Listing> {
        let key = (self.cfg.id, dir.clone());
        if let Some(l) = self.gen.listings.get(&key) {
            return l;
        }
        let l = list_tree(dir, &self.cfg, &self.gen.fs, MAX_APPROX_FILES).map(Arc::new);
        self.gen.listings.insert_if_absent(key, l)
    }

    /// How many files approximating a computed include of `node` ships, `None` when over
    /// [`MAX_APPROX_FILES`].
    fn approx_size(&self, node: &Node) -> Option<usize> {
        let mut n = 0;
        for (_, d) in self.approx_dirs(node) {
            n += self.listing(&d)?.len();
            if n > MAX_APPROX_FILES {
                return None;
            }
        }
        Some(n)
    }

    /// The sound substitute for a computed include of `node` whose names are not known:
    /// every shipped file it could open. The preprocessor resolves the include's name in
    /// the node's directory or a search directory; any file it opens outside the system
    /// directories is therefore one of those listed here, and a system file it opens
    /// (not traversed) can in turn only open a shipped file the same way, so listing
    /// these directories once covers the whole subtree below the include (see
    /// [`super::closure`] for the definitions those system files would have given). Not
    /// covered: names that climb out of a listed directory with `..`, hidden (`.`)
    /// directories.
    pub fn approximate(&mut self, node: &Node, embed: bool, out: &mut Vec<Child>) {
        for (dref, dir) in self.approx_dirs(node) {
            let Some(names) = self.listing(&dir) else {
                continue;
            };
            for name in names.iter() {
                if let Some(c) = self.hit(&dir, name, dref, embed) {
                    out.push(c);
                }
            }
        }
    }

    /// Decides how a computed include is covered: evaluated exactly when that takes at
    /// most [`SOFT_STEPS`]; otherwise approximated when the approximation is cheap, else
    /// evaluated up to the evaluator's hard bound and approximated only if that is hit
    /// and the approximation is not over [`MAX_APPROX_FILES`]. The directories are only
    /// listed for heavy expressions.
    fn computed(&mut self, node: &Node, expr: &[u8]) -> Result<Computed, AnalysisError> {
        if let Some(e) = self.evaluate(expr, true)? {
            return Ok(Computed::Exact(e));
        }
        let size = self.approx_size(node);
        if size.is_some_and(|n| n <= CHEAP_APPROX_FILES) {
            return Ok(Computed::Approximate);
        }
        match self.evaluate(expr, false) {
            Ok(e) => Ok(Computed::Exact(
                e.expect("a hard evaluation always has a result"),
            )),
            Err(AnalysisError::MacroLimit(_)) if size.is_some() => Ok(Computed::Approximate),
            Err(e) => Err(e),
        }
    }

    /// A node's edges, from the memo or computed.
    pub fn edges(&mut self, node: &Node) -> Result<Arc<Edges>, AnalysisError> {
        let key = (
            self.cfg.id,
            PathBytes(node.real.clone()),
            PathBytes(node.dir_real.clone()),
        );
        if let Some(e) = self.gen.edges.get(&key) {
            if e.valid(&self.gen.macros) {
                self.counters
                    .graph_cache_hits
                    .fetch_add(1, Ordering::Relaxed);
                return Ok(e);
            }
        }
        let parsed = self.parse(&node.real)?;
        let mut children = Vec::new();
        let mut deps: Vec<(Sym, u64)> = Vec::new();
        let (mut approximated, mut exact_computed) = (false, false);
        for inc in &parsed.includes {
            self.check_budget()?;
            match &inc.form {
                IncludeForm::Quote(n) => self.resolve(
                    node,
                    &HeaderName::Quote(n.clone()),
                    inc.next,
                    inc.embed,
                    &mut children,
                )?,
                IncludeForm::Angle(n) => self.resolve(
                    node,
                    &HeaderName::Angle(n.clone()),
                    inc.next,
                    inc.embed,
                    &mut children,
                )?,
                IncludeForm::Computed(expr) => match self.computed(node, expr)? {
                    Computed::Exact(ev) => {
                        exact_computed = true;
                        deps.extend(ev.deps.iter().cloned());
                        for name in &ev.names {
                            self.resolve(node, name, inc.next, inc.embed, &mut children)?;
                        }
                    }
                    Computed::Approximate => {
                        approximated = true;
                        self.counters
                            .approximated_evaluations
                            .fetch_add(1, Ordering::Relaxed);
                        self.approximate(node, inc.embed, &mut children);
                    }
                },
            }
        }
        if let Some(p) = self.prefetch {
            let ahead = children
                .iter()
                .skip(1)
                .rev()
                .filter(|c| !c.embed)
                .map(|c| (c.real.clone(), c.dir_real.clone()));
            p.push(self.gen, &self.cfg, ahead);
        }
        deps.sort();
        deps.dedup();
        let e = Arc::new(Edges {
            children,
            deps,
            approximated,
            exact_computed,
            checked: Checked::default(),
        });
        self.gen.edges.insert(key, e.clone());
        Ok(e)
    }

    /// The textual spelling of a child of `parent`.
    pub fn child_text(&self, parent: &Node, c: &Child) -> Arc<[u8]> {
        let mut t = match c.dir {
            DirRef::Current => dir_text(&parent.text).to_vec(),
            DirRef::List(i) => self.cfg.key.dirs[i as usize].text.clone(),
            DirRef::Absolute => Vec::new(),
        };
        t.extend_from_slice(&c.name);
        Arc::from(t)
    }
}

/// Every regular file under `root` (symlinks followed, each directory once), as names
/// relative to `root`, skipping hidden entries and system directories; `None` when there
/// are more than `max`.
pub fn list_tree(root: &Path, cfg: &Config, fs: &FsCache, max: usize) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut seen: HashSet<Arc<Path>> = HashSet::default();
    let mut stack: Vec<(PathBuf, Vec<u8>)> = vec![(root.to_path_buf(), Vec::new())];
    while let Some((dir, rel)) = stack.pop() {
        let Some(real) = fs.dir(&dir) else {
            continue;
        };
        if cfg.is_system(&real) || !seen.insert(real) {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut names: Vec<Vec<u8>> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().as_bytes().to_vec())
            .filter(|n| !n.starts_with(b"."))
            .collect();
        names.sort();
        for n in names {
            let path = join(&dir, &n);
            let md = match std::fs::metadata(&path) {
                Ok(md) => md,
                Err(_) => continue,
            };
            let mut r = rel.clone();
            r.extend_from_slice(&n);
            if md.is_dir() {
                r.push(b'/');
                stack.push((path, r));
            } else if md.is_file() {
                out.push(r);
                if out.len() > max {
                    return None;
                }
            }
        }
    }
    out.sort();
    Some(out)
}

#[cfg(test)]
mod prefix_tests {
    use super::path_has_prefix;
    use std::path::Path;

    #[test]
    fn byte_prefix_matches_path_starts_with() {
        for (r, d) in [
            ("/usr/include/stdio.h", "/usr/include"),
            ("/usr/include", "/usr/include"),
            ("/usr/includes/x.h", "/usr/include"),
            ("/usr/include/x.h", "/usr/include/"),
            ("/usr/lib/gcc/x", "/usr/include"),
            ("/a", "/"),
        ] {
            assert_eq!(
                path_has_prefix(Path::new(r), Path::new(d)),
                Path::new(r).starts_with(d),
                "{r} {d}"
            );
        }
    }
}

#[cfg(test)]
mod read_tests {
    use super::*;

    /// The names `parse_into` found in `real`.
    fn names(gen: &Generation, real: &Arc<Path>) -> Vec<Vec<u8>> {
        let parsed = parse_into(gen, &Counters::default(), real).unwrap();
        parsed
            .includes
            .iter()
            .map(|i| match &i.form {
                scan::IncludeForm::Quote(n) | scan::IncludeForm::Angle(n) => n.clone(),
                scan::IncludeForm::Computed(e) => e.clone(),
            })
            .collect()
    }

    #[test]
    fn a_file_is_read_whole_whatever_size_its_lookup_saw() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("x.h");
        std::fs::write(&path, "#include \"a.h\"\n").unwrap();
        // Exactly the size seen: one read.
        let gen = Generation::default();
        let real = gen.fs.file(&path).unwrap();
        assert_eq!(names(&gen, &real), [b"a.h".to_vec()]);
        // Grown after the lookup (past the buffer a smaller file would get): read to its
        // end all the same.
        let gen = Generation::default();
        let real = gen.fs.file(&path).unwrap();
        let mut text = String::from("#include \"a.h\"\n");
        text.push_str(&" ".repeat(300 << 10));
        text.push_str("\n#include <b.h>\n");
        std::fs::write(&path, &text).unwrap();
        assert_eq!(names(&gen, &real), [b"a.h".to_vec(), b"b.h".to_vec()]);
        // Shrunk after the lookup: what is there now.
        let gen = Generation::default();
        let real = gen.fs.file(&path).unwrap();
        std::fs::write(&path, "#include <c.h>\n").unwrap();
        assert_eq!(names(&gen, &real), [b"c.h".to_vec()]);
    }
}
