//! The `include_server` launcher's command line, as a library so that the packaging task
//! can generate the man page and completions from [`cli::command`].
pub mod cli;
