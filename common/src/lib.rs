//! Pieces shared by every binary of the pump-mode tools.
//!
//! - [`env`]: the one typed snapshot of the process environment. Nothing else in the
//!   workspace reads the environment (clippy's `disallowed-methods` enforces it).
//! - [`hosts`]: the `DISTCC_HOSTS` grammar, parsed as the distcc 3.4 client parses it,
//!   and the lookup order of the host list.
//! - [`wire`]: distcc's RPC token codec (4 ASCII letters, 8 hex digits, payload).
//! - [`location`]: where the installed tools live (`DISTCC_LOCATION`, `argv[0]`).

pub mod env;
pub mod hosts;
pub mod location;
pub mod start;
pub mod wire;
