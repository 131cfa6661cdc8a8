//! The pump-mode include server: the engine behind the `include_server` launcher.
//!
//! - [`analysis`]: from a compile command to its include closure.
//! - [`server`]: the Unix-socket server, its thread pool and per-request failures.
//! - [`mirror`]: what a generation's client root holds (compressed files, shadow tree,
//!   system links, forcing files) and the reply listing it.
//! - [`client_root`]: client-root directories, their naming and clean-up.
//! - [`lzo`]: LZO1X compression as distccd expects it.
//! - [`triggers`]: the cache-reset triggers of `--stat_reset_triggers`.
//! - [`verify`]: `-v` / `-w`, checking closures against the real preprocessor.
//! - [`stats`]: counters, the `-s` block and `stats.json`.
pub mod analysis;
pub mod client_root;
pub mod lzo;
pub mod mirror;
pub mod server;
pub mod stats;
pub mod triggers;
pub mod verify;

/// The cores this process may use (asked once: the answer reads the cgroup's CPU quota
/// files).
pub(crate) fn available_cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Grows the calling thread's malloc arena to 15 MiB of address space in one go and
/// gives the memory back, once per thread (the first time the thread scans a file: only
/// cold requests need much memory). glibc grows a thread's arena one `mprotect` per page
/// as it is used, and keeps what it made accessible: a cold request's analysis otherwise
/// makes over a thousand such calls on the walk's and the read-ahead helper's threads
/// (git's first request: 1,441). The block is never written, and freed at once it costs
/// no resident memory (glibc returns the pages with `madvise`).
///
/// One block does it in one `mprotect` when it is below glibc's mmap threshold, so the
/// threshold is raised above it (from 128 KiB, before the first priming). Blocks of up to
/// 16 MiB then come from the arenas too, where freed ones are reused instead of being
/// mapped and faulted in afresh (leveldb's first request: 363 to 45 `mprotect` calls and
/// 1,460 to 1,140 page faults; peak memory unchanged).
pub(crate) fn prime_malloc_arena() {
    const PRIME: usize = 15 << 20;
    thread_local! {
        static PRIMED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if PRIMED.with(|p| p.replace(true)) {
        return;
    }
    static THRESHOLD: std::sync::Once = std::sync::Once::new();
    THRESHOLD.call_once(|| {
        // SAFETY: mallopt only sets a tunable of glibc's allocator.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, (PRIME + (1 << 20)) as libc::c_int) };
    });
    drop(std::hint::black_box(Vec::<u8>::with_capacity(PRIME)));
}
