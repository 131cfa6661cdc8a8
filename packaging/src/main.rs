//! `packaging`: the packaging task's generator, run by `packaging/Makefile`.
//!
//! - `packaging man DIR`: man pages of every tool in [`packaging::TOOLS`] into `DIR`;
//! - `packaging completions DIR`: bash, zsh and fish completions into `DIR/{bash,zsh,fish}`;
//! - `packaging version`: the workspace version (for the `.deb`'s control file).
//!
//! Each generating command prints the files it wrote, one per line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Generates the man pages and shell completions of the installed tools.
#[derive(Parser)]
#[command(name = "packaging", version)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Write the man pages (NAME.1) into DIR.
    Man {
        /// Output directory (created if missing).
        dir: PathBuf,
    },
    /// Write bash, zsh and fish completions into DIR/bash, DIR/zsh and DIR/fish.
    Completions {
        /// Output directory (created if missing).
        dir: PathBuf,
    },
    /// Print the version the packages carry.
    Version,
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("packaging: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<ExitCode> {
    let cli = Cli::parse();
    let written = match cli.task {
        Task::Man { dir } => packaging::write_man_pages(packaging::TOOLS, &dir)?,
        Task::Completions { dir } => packaging::write_completions(packaging::TOOLS, &dir)?,
        Task::Version => {
            println!("{}", packaging::VERSION);
            return Ok(ExitCode::SUCCESS);
        }
    };
    for path in written {
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
