//! Man pages and shell completions of the installed tools, generated from the same clap
//! definitions the tools describe themselves with (`clap_mangen`, `clap_complete`).
//!
//! The generator is a task run by `packaging/Makefile` (`packaging man DIR`,
//! `packaging completions DIR`), not a `build.rs`: nothing is generated during an ordinary
//! `cargo build`, and the output lands where the Makefile says.
//!
//! [`TOOLS`] is the one list of what gets a page and completions: one line per installed
//! program. An alias (Debian's `distcc-pump` name for `pump`) gets its own full page and
//! completions under its own name, so a package can ship the alias without the original
//! name's files.
//!
//! Layout written (file names follow the installed names; the Makefile copies them as
//! they are, gzipping the pages):
//!
//! ```text
//! DIR/NAME.1              man pages (section 1), one per tool and alias
//! DIR/bash/NAME           bash-completion (completions/ directory, loaded by name)
//! DIR/zsh/_NAME           zsh (#compdef NAME)
//! DIR/fish/NAME.fish      fish (vendor_completions.d)
//! ```
//!
//! Files are written through a temporary name and renamed, so a reader never sees half a
//! page.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap_complete::Shell;

/// The version written in the pages' footer (the workspace version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The package name written in the pages' footer.
pub const PACKAGE: &str = "distcc-pump-rs";

/// One installed program: its name, other names it is installed under, and its clap
/// definition.
#[derive(Clone, Copy)]
pub struct Tool {
    name: &'static str,
    aliases: &'static [&'static str],
    command: fn() -> clap::Command,
}

impl Tool {
    /// A program installed as `name`, described by `command`.
    pub const fn new(name: &'static str, command: fn() -> clap::Command) -> Tool {
        Tool {
            name,
            aliases: &[],
            command,
        }
    }

    /// The same program installed under these names too (symlinks to it).
    pub const fn aliases(self, aliases: &'static [&'static str]) -> Tool {
        Tool { aliases, ..self }
    }

    /// The installed name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The other installed names.
    pub fn alias_names(&self) -> &'static [&'static str] {
        self.aliases
    }

    /// Every installed name: the name, then the aliases.
    pub fn names(&self) -> impl Iterator<Item = &'static str> {
        std::iter::once(self.name).chain(self.aliases.iter().copied())
    }

    /// The clap definition under `name` (the tool's own, or one of its aliases).
    pub fn command_as(&self, name: &'static str) -> clap::Command {
        let cmd = (self.command)();
        if name == self.name {
            cmd
        } else {
            cmd.name(name).bin_name(name).display_name(name)
        }
    }
}

/// Every installed program that has a clap definition: one line per tool.
pub const TOOLS: &[Tool] = &[
    Tool::new("pump", pump::cli::command).aliases(&["distcc-pump"]),
    Tool::new("lsdistcc", lsdistcc::cli::command),
    Tool::new("include_server", include_server_launcher::cli::command),
];

/// The shells completions are generated for, with the directory name used under the
/// output directory.
pub const SHELLS: &[(Shell, &str)] = &[
    (Shell::Bash, "bash"),
    (Shell::Zsh, "zsh"),
    (Shell::Fish, "fish"),
];

/// A generated file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    /// Creating a directory or writing or renaming a file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The file name a completion script for `name` gets in `shell`'s directory.
pub fn completion_file_name(shell: Shell, name: &str) -> String {
    match shell {
        Shell::Zsh => format!("_{name}"),
        Shell::Fish => format!("{name}.fish"),
        _ => name.to_owned(),
    }
}

/// Renders the man page of `name` (a tool or an alias of `tool`).
pub fn man_page(tool: &Tool, name: &'static str) -> Vec<u8> {
    let man = clap_mangen::Man::new(tool.command_as(name))
        .section("1")
        .source(format!("{PACKAGE} {VERSION}"))
        .manual("User Commands");
    let mut out = Vec::new();
    man.render(&mut out)
        .expect("rendering into a Vec cannot fail");
    out
}

/// Renders the `shell` completion script of `name` (a tool or an alias of `tool`).
pub fn completion(tool: &Tool, name: &'static str, shell: Shell) -> Vec<u8> {
    let mut cmd = tool.command_as(name);
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut out);
    out
}

/// Writes `DIR/NAME.1` for every tool and alias in `tools`; returns the files written.
pub fn write_man_pages(tools: &[Tool], dir: &Path) -> Result<Vec<PathBuf>, GenError> {
    create_dir(dir)?;
    let mut written = Vec::new();
    for tool in tools {
        for name in tool.names() {
            let path = dir.join(format!("{name}.1"));
            write_atomically(&path, &man_page(tool, name))?;
            written.push(path);
        }
    }
    Ok(written)
}

/// Writes the completion scripts of every tool and alias in `tools` for every shell in
/// [`SHELLS`] under `dir`; returns the files written.
pub fn write_completions(tools: &[Tool], dir: &Path) -> Result<Vec<PathBuf>, GenError> {
    let mut written = Vec::new();
    for &(shell, sub) in SHELLS {
        let shell_dir = dir.join(sub);
        create_dir(&shell_dir)?;
        for tool in tools {
            for name in tool.names() {
                let path = shell_dir.join(completion_file_name(shell, name));
                write_atomically(&path, &completion(tool, name, shell))?;
                written.push(path);
            }
        }
    }
    Ok(written)
}

fn create_dir(dir: &Path) -> Result<(), GenError> {
    std::fs::create_dir_all(dir).map_err(|source| GenError::Write {
        path: dir.to_path_buf(),
        source,
    })
}

/// Writes `bytes` to `path` through a temporary file in the same directory.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), GenError> {
    let err = |source| GenError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp_name);
    let result = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes))
        .and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(p: &Path) -> String {
        std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    #[test]
    fn every_tool_definition_is_consistent() {
        for tool in TOOLS {
            for name in tool.names() {
                tool.command_as(name).debug_assert();
            }
        }
    }

    #[test]
    fn pump_page_and_its_alias_page_are_full_pages_under_their_own_names() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_man_pages(TOOLS, dir.path()).unwrap();
        assert!(written.contains(&dir.path().join("pump.1")), "{written:?}");
        let pump = read(&dir.path().join("pump.1"));
        assert!(pump.starts_with(".ie \\n(.g .ds Aq"), "{pump}");
        assert!(
            pump.contains(&format!(
                ".TH pump 1  \"{PACKAGE} {VERSION}\" \"User Commands\"\n"
            )),
            "{pump}"
        );
        assert!(pump.contains(".SH NAME\npump \\-"), "{pump}");
        assert!(pump.contains("\\-\\-startup"), "{pump}");
        assert!(pump.contains("\\-\\-shutdown"), "{pump}");
        assert!(pump.contains("DISTCC_POTENTIAL_HOSTS"), "{pump}");
        let alias = read(&dir.path().join("distcc-pump.1"));
        assert!(alias.contains(".SH NAME\ndistcc\\-pump \\-"), "{alias}");
        assert!(alias.contains("\\-\\-startup"), "{alias}");
    }

    #[test]
    fn completions_cover_every_shell_tool_and_alias() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_completions(TOOLS, dir.path()).unwrap();
        let names: usize = TOOLS.iter().map(|t| t.names().count()).sum();
        assert_eq!(written.len(), names * SHELLS.len(), "{written:?}");
        let bash = read(&dir.path().join("bash/pump"));
        assert!(bash.contains("complete -F _pump"), "{bash}");
        assert!(bash.contains("--startup"), "{bash}");
        let bash_alias = read(&dir.path().join("bash/distcc-pump"));
        assert!(bash_alias.contains("distcc-pump"), "{bash_alias}");
        let zsh = read(&dir.path().join("zsh/_distcc-pump"));
        assert!(zsh.starts_with("#compdef distcc-pump"), "{zsh}");
        let fish = read(&dir.path().join("fish/pump.fish"));
        assert!(fish.contains("complete -c pump -l startup"), "{fish}");
    }

    #[test]
    fn rewriting_replaces_files_and_leaves_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        write_man_pages(TOOLS, dir.path()).unwrap();
        let first = read(&dir.path().join("pump.1"));
        write_man_pages(TOOLS, dir.path()).unwrap();
        assert_eq!(read(&dir.path().join("pump.1")), first);
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let mut want: Vec<String> = TOOLS
            .iter()
            .flat_map(|t| t.names())
            .map(|n| format!("{n}.1"))
            .collect();
        want.sort();
        assert_eq!(names, want);
    }

    #[test]
    fn an_unwritable_directory_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, "").unwrap();
        let err = write_man_pages(TOOLS, &file.join("man")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("cannot write {}/man: ", file.display())),
            "{err}"
        );
    }
}
