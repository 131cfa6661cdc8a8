//! The pump-mode include server engine.
//!
//! - [`analysis`]: from a compile command to its include closure.
pub mod analysis;
