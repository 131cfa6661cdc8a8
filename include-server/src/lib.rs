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
