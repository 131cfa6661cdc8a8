//! `lsdistcc`'s engine: finds live distcc servers, as distcc 3.4's `lsdistcc` does, and
//! returns what it found; the binary (`main.rs`) does all the printing.
//!
//! - [`cli`]: the command line, with the original's attached-value syntax.
//! - [`names`]: the names to probe (a `%d` format or a host list, plus `-d`'s domain).
//! - [`resolve`]: IPv4-only lookups.
//! - [`probe`]: the connect and compile probes of one host.
//! - [`report`]: result lines and their stable order.
//! - [`scan`]: the concurrent scan with the original's DNS overlap, retry and gap rules.
//!
//! Behaviour and the deliberate differences from the original are described in
//! `docs/lsdistcc.md`.

pub mod cli;
pub mod names;
pub mod probe;
pub mod report;
pub mod resolve;
pub mod scan;
