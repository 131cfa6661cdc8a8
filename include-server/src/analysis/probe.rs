//! The compiler's default include directories (spec 5.3, improved): the compiler is run
//! once per (compiler, cwd when the compiler path is relative, language, flags that change
//! the defaults) as `<cc> <flags> -x <lang> -v -dM -E /dev/null`, with only
//! `PATH` in its environment, and the `#include "..."` and `#include <...>` sections of its
//! output are read and realpathed. The same run uses `-dM`, so its standard output holds
//! the compiler's predefined macros (`__x86_64__`, `linux`, `__cplusplus`, ...), which
//! enter the macro table: computed includes that use them expand as the compiler would.
//!
//! The output is read as it comes ([`Running`]). The search lists are on standard error
//! about half-way through the compiler's run (`cc1plus` prints them before it sets up
//! the rest of its front end), so a request goes on with them at once; the macros come on
//! standard output when the compiler ends, and only a closure that looked up a macro
//! waits for them ([`Pending`]).
//!
//! The flags passed are the ones that select another set of default directories:
//! `--sysroot`, `-isysroot`, `-nostdinc`, `-nostdinc++`, `-target`/`--target=`, `-B`,
//! `-m*` (multilib), `-specs=`, `-stdlib=`, `--gcc-toolchain`, `-resource-dir`,
//! `-imultilib`, `-std=`, `--config` and friends ([`super::command`] collects them).

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::probe_cache::Output;
use super::scan::{self, Define};

/// What one probe found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Defaults {
    /// Realpaths of the `#include "..."` section (searched for quote includes only, after
    /// `-iquote` dirs).
    pub quote: Vec<PathBuf>,
    /// Realpaths of the `#include <...>` section, in order.
    pub angle: Vec<PathBuf>,
    /// The predefined macros.
    pub macros: Vec<Define>,
}

/// The cache key of a probe.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProbeKey {
    /// argv[0] as received.
    pub compiler: Vec<u8>,
    /// The cwd, only when argv[0] is a relative path with a `/`.
    pub cwd: Option<PathBuf>,
    /// The `-x` language.
    pub language: Vec<u8>,
    /// Flags that change the defaults.
    pub flags: Vec<Vec<u8>>,
}

impl ProbeKey {
    /// The probe's argv (without argv[0]).
    pub fn args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = self
            .flags
            .iter()
            .map(|f| std::ffi::OsStr::from_bytes(f).to_os_string())
            .collect();
        a.push("-x".into());
        a.push(std::ffi::OsStr::from_bytes(&self.language).to_os_string());
        for s in ["-v", "-dM", "-E", "/dev/null"] {
            a.push(s.into());
        }
        a
    }

    fn command_text(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.compiler).into_owned();
        for a in self.args() {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    }
}

/// Runs the probe in `cwd`. The error text follows `compiler_defaults.py`'s messages.
pub fn probe(
    key: &ProbeKey,
    cwd: &Path,
    path_env: Option<&std::ffi::OsStr>,
) -> Result<Arc<Defaults>, String> {
    interpret(key, &run(key, cwd, path_env)?)
}

fn error_head(key: &ProbeKey) -> String {
    format!(
        "couldn't determine default system include directories\nfor compiler '{}', language '{}':\n",
        String::from_utf8_lossy(&key.compiler),
        String::from_utf8_lossy(&key.language)
    )
}

/// Runs the compiler; its output if it succeeded.
pub fn run(
    key: &ProbeKey,
    cwd: &Path,
    path_env: Option<&std::ffi::OsStr>,
) -> Result<Output, String> {
    finish(key, spawn(key, cwd, path_env)?)
}

/// Starts the compiler; [`finish`] collects its output. Its pipes are read only then, so
/// a compiler that writes more than a pipe holds waits for [`finish`] (it never blocks
/// for good).
pub fn spawn(
    key: &ProbeKey,
    cwd: &Path,
    path_env: Option<&std::ffi::OsStr>,
) -> Result<Child, String> {
    let compiler = std::ffi::OsStr::from_bytes(&key.compiler);
    let mut cmd = Command::new(compiler);
    cmd.args(key.args())
        .env_clear()
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(p) = path_env {
        cmd.env("PATH", p);
    }
    // A group of its own: a compiler that runs past its deadline is stopped with the
    // programs it started (the driver's `cc1`, which holds the pipes).
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.spawn().map_err(|e| exec_error(key, &e))
}

/// How long a compiler probe may run before it is stopped and its requests fall back
/// (`c++ -v -dM -E /dev/null` takes about 10 ms; the distcc client itself waits at most
/// `DISTCC_IO_TIMEOUT`, 300 s by default, for the include server's answer).
pub const PROBE_DEADLINE: Duration = Duration::from_secs(60);

fn exec_error(key: &ProbeKey, e: &std::io::Error) -> String {
    format!(
        "{}error executing '{}': {e}.",
        error_head(key),
        key.command_text()
    )
}

/// Waits for a compiler [`spawn`] started; its output if it succeeded.
pub fn finish(key: &ProbeKey, child: Child) -> Result<Output, String> {
    Running::new(key, child, PROBE_DEADLINE).finish()
}

/// A compiler [`spawn`] started, its output read as it comes: the search lists are on
/// standard error near the start (a `cc1plus` prints them after about half of its run),
/// the predefined macros on standard output at the end.
pub struct Running<'a> {
    key: &'a ProbeKey,
    child: Child,
    out: Output,
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    /// When the compiler is stopped if it has not ended, and how long it had.
    deadline: (Instant, Duration),
    /// Whether it was stopped.
    stopped: bool,
}

impl<'a> Running<'a> {
    /// Takes over the pipes of `child`, which may run for `limit`.
    pub fn new(key: &'a ProbeKey, mut child: Child, limit: Duration) -> Running<'a> {
        Running {
            key,
            deadline: (Instant::now() + limit, limit),
            stopped: false,
            stdout: child.stdout.take(),
            stderr: child.stderr.take(),
            child,
            out: Output {
                stdout: Vec::new(),
                stderr: Vec::new(),
            },
        }
    }

    /// Reads until standard error holds the end of the `#include <...>` search list: the
    /// directories (no macros yet). `None` if the output ends first; [`Running::finish`]
    /// then tells why.
    pub fn search_lists(&mut self) -> Option<Defaults> {
        loop {
            if let Some(end) = search_lists_end(&self.out.stderr) {
                return parse(&self.out.stderr[..end]);
            }
            if !self.read_some() {
                return None;
            }
        }
    }

    /// Whether the compiler was stopped at its deadline (so far).
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Reads the rest and waits for the compiler: its whole output if it succeeded.
    pub fn finish(mut self) -> Result<Output, String> {
        while self.read_some() {}
        let key = self.key;
        let status = self.child.wait().map_err(|e| exec_error(key, &e))?;
        if self.stopped {
            return Err(format!(
                "{}command '{}' did not end within {} s; it was stopped.",
                error_head(key),
                key.command_text(),
                self.deadline.1.as_secs_f64()
            ));
        }
        if !status.success() {
            let mut text = self.out.stderr;
            text.extend_from_slice(&self.out.stdout);
            return Err(format!(
                "{}command '{}' exited with status '{}'.\n Command output:\n{}",
                error_head(key),
                key.command_text(),
                status.code().unwrap_or(-1),
                String::from_utf8_lossy(&text)
            ));
        }
        Ok(self.out)
    }

    /// Waits until a pipe has something and reads it; `false` once both are closed, or
    /// once the deadline has passed: the compiler's process group is then killed and
    /// its pipes dropped.
    fn read_some(&mut self) -> bool {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        let ready = {
            let mut fds = Vec::with_capacity(2);
            if let Some(o) = &self.stdout {
                fds.push(PollFd::new(o.as_fd(), PollFlags::POLLIN));
            }
            if let Some(e) = &self.stderr {
                fds.push(PollFd::new(e.as_fd(), PollFlags::POLLIN));
            }
            if fds.is_empty() {
                return false;
            }
            // On another error, reading tells what is wrong with the pipe.
            loop {
                let left = self.deadline.0.saturating_duration_since(Instant::now());
                let wait = PollTimeout::try_from(left.as_millis().saturating_add(1))
                    .unwrap_or(PollTimeout::MAX);
                match poll(&mut fds, wait) {
                    Err(nix::errno::Errno::EINTR) => {}
                    Ok(0) if Instant::now() >= self.deadline.0 => break None,
                    Ok(0) => {}
                    _ => {
                        let ready = |f: &PollFd| f.revents().map_or(true, |r| !r.is_empty());
                        let mut it = fds.iter();
                        let o = self.stdout.is_some() && it.next().is_some_and(ready);
                        let e = self.stderr.is_some() && it.next().is_some_and(ready);
                        break Some((o, e));
                    }
                }
            }
        };
        let Some((ready_out, ready_err)) = ready else {
            // The compiler and what it started: the driver's `cc1` holds the pipes.
            kill_group(self.child.id() as i32);
            self.stopped = true;
            self.stdout = None;
            self.stderr = None;
            return false;
        };
        if ready_out {
            read_into(&mut self.stdout, &mut self.out.stdout);
        }
        if ready_err {
            read_into(&mut self.stderr, &mut self.out.stderr);
        }
        true
    }
}

/// Kills the process group that [`spawn`] made for the compiler whose pid is `pid`.
fn kill_group(pid: i32) {
    let group = nix::unistd::Pid::from_raw(-pid);
    let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
}

/// One read from `pipe` appended to `to`; the pipe is dropped at its end or on an error.
fn read_into(pipe: &mut Option<impl std::io::Read>, to: &mut Vec<u8>) {
    let Some(p) = pipe else { return };
    let mut buf = [0u8; 16 << 10];
    match p.read(&mut buf) {
        Ok(0) => *pipe = None,
        Ok(n) => to.extend_from_slice(&buf[..n]),
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
        Err(_) => *pipe = None,
    }
}

/// Where the text of the `#include <...>` search list's end line ends, once `stderr` holds
/// it (after that list's header).
fn search_lists_end(stderr: &[u8]) -> Option<usize> {
    let header = memchr::memmem::find(stderr, b"#include <...> search starts here:")?;
    let end = header + memchr::memmem::find(&stderr[header..], b"\nEnd of search list")? + 1;
    let eol = memchr::memchr(b'\n', &stderr[end..])?;
    Some(end + eol + 1)
}

/// The end of a probe whose search lists came before its compiler ended: settled once
/// the compiler has ended and its predefined macros are in the table (or it failed),
/// done once the probe is also saved.
#[derive(Debug, Default)]
pub struct Pending {
    outcome: std::sync::OnceLock<Result<(), String>>,
    /// The compiler's process group (its pid); 0 before it is known.
    group: std::sync::atomic::AtomicI32,
    done: std::sync::atomic::AtomicBool,
    lock: std::sync::Mutex<()>,
    cv: std::sync::Condvar,
}

impl Pending {
    /// How the compiler ended, once it has (its macros are then visible); a lock-free
    /// load.
    pub fn outcome(&self) -> Option<&Result<(), String>> {
        self.outcome.get()
    }

    /// Records the compiler's pid, the id of its process group ([`spawn`] makes one).
    pub fn set_group(&self, pid: u32) {
        self.group
            .store(pid as i32, std::sync::atomic::Ordering::Release);
    }

    /// Kills the compiler and what it started if it has not ended.
    pub fn stop(&self) {
        let group = self.group.load(std::sync::atomic::Ordering::Acquire);
        if group > 0 && self.outcome.get().is_none() {
            kill_group(group);
        }
    }

    /// Records how the compiler ended (after its macros are entered); wakes the waiters.
    pub fn settle(&self, outcome: Result<(), String>) {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let _ = self.outcome.set(outcome);
        self.cv.notify_all();
    }

    /// Records that nothing more is left to do (the probe is saved); wakes the waiters.
    pub fn finish(&self) {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.done.store(true, std::sync::atomic::Ordering::Release);
        self.cv.notify_all();
    }

    /// Whether [`Pending::finish`] was called.
    pub fn done(&self) -> bool {
        self.done.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Waits until the compiler has ended ([`Pending::outcome`] then tells how).
    pub fn wait(&self) {
        let mut g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        while self.outcome.get().is_none() {
            g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Waits until [`Pending::finish`], at most until `deadline`; whether it came.
    pub fn wait_done(&self, deadline: std::time::Instant) -> bool {
        let mut g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        while !self.done() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            g = self
                .cv
                .wait_timeout(g, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }
}

/// Reads a successful probe's output: the search lists and the predefined macros.
pub fn interpret(key: &ProbeKey, out: &Output) -> Result<Arc<Defaults>, String> {
    let mut text = out.stderr.clone();
    text.extend_from_slice(&out.stdout);
    let macros = scan::scan(&out.stdout).defines;
    parse(&text)
        .map(|d| Arc::new(Defaults { macros, ..d }))
        .ok_or_else(|| {
            format!(
                "{}couldn't parse output of '{}'.\nReceived:\n{}",
                error_head(key),
                key.command_text(),
                String::from_utf8_lossy(&text)
            )
        })
}

/// The executable `compiler` (argv[0]) names, as a realpath: looked up in `path_env`
/// when it has no `/`, else taken relative to `cwd`.
pub fn resolve_compiler(
    compiler: &[u8],
    cwd: &Path,
    path_env: Option<&std::ffi::OsStr>,
) -> Option<PathBuf> {
    use common::location::is_executable;
    let name = Path::new(std::ffi::OsStr::from_bytes(compiler));
    let found = if compiler.contains(&b'/') {
        Some(cwd.join(name)).filter(|p| is_executable(p))
    } else {
        std::env::split_paths(path_env?)
            .map(|d| cwd.join(d).join(name))
            .find(|p| is_executable(p))
    };
    std::fs::canonicalize(found?).ok()
}

/// A guess at the default `#include <...>` directories of the GCC whose executable is
/// `compiler` (a realpath, such as `/usr/bin/x86_64-linux-gnu-g++-12`) for `language`:
/// the directories of the version and target its name gives (else the newest installed
/// GCC and libstdc++, and the first multiarch target), as realpaths. `None` when the name
/// is not a GCC driver's (`gcc`, `g++`, `cc`, `c++`, `cpp`, with an optional `<target>-`
/// prefix and `-<version>` suffix): clang and others keep their directories elsewhere.
///
/// It is only a guess: the analysis may walk with it while the compiler is probed, and
/// keeps that work only where the probe gives the same directories.
pub fn guess_defaults(compiler: &Path, language: &[u8]) -> Option<Defaults> {
    fn version_key(p: &Path) -> Vec<u32> {
        p.file_name()
            .and_then(|n| n.to_str())
            .map(|n| {
                n.split('.')
                    .map(|c| c.parse::<u32>().unwrap_or(0))
                    .collect()
            })
            .unwrap_or_default()
    }
    fn newest(pattern: &str) -> Option<PathBuf> {
        let mut found: Vec<PathBuf> = glob::glob(pattern)
            .ok()?
            .flatten()
            .filter(|p| p.is_dir())
            .collect();
        // By version number: 12 after 9.
        found.sort_by_key(|p| version_key(p));
        found.pop()
    }
    let name = compiler.file_name()?.to_str()?;
    // `<target>-<driver>-<version>`, each part but the driver optional.
    let (rest, version) = match name.rsplit_once('-') {
        Some((r, v)) if v.starts_with(|c: char| c.is_ascii_digit()) => (r, Some(v)),
        _ => (name, None),
    };
    let (target, driver) = match rest.rsplit_once('-') {
        Some((t, d)) => (Some(t), d),
        None => (None, rest),
    };
    if !matches!(driver, "gcc" | "g++" | "cc" | "c++" | "cpp") {
        return None;
    }
    let pick = |dir: &str, pattern: &str| -> Option<PathBuf> {
        version
            .map(|v| PathBuf::from(format!("{dir}/{v}")))
            .filter(|p| p.is_dir())
            .or_else(|| newest(pattern))
    };
    let gcc = match target {
        Some(t) => pick(&format!("/usr/lib/gcc/{t}"), &format!("/usr/lib/gcc/{t}/*")),
        None => None,
    }
    .or_else(|| newest("/usr/lib/gcc/*-linux-*/*"));
    let target = gcc
        .as_ref()
        .and_then(|g| g.parent()?.file_name()?.to_str().map(str::to_owned));
    let mut angle = Vec::new();
    let cxx = language.starts_with(b"c++") || language.starts_with(b"objective-c++");
    if cxx {
        if let Some(lib) = pick("/usr/include/c++", "/usr/include/c++/*") {
            angle.push(lib.clone());
            if let (Some(t), Some(v)) = (&target, lib.file_name().and_then(|v| v.to_str())) {
                angle.push(PathBuf::from(format!("/usr/include/{t}/c++/{v}")));
            }
            angle.push(lib.join("backward"));
        }
    }
    if let Some(g) = &gcc {
        angle.push(g.join("include"));
    }
    angle.push(PathBuf::from("/usr/local/include"));
    if let Some(t) = &target {
        angle.push(PathBuf::from(format!("/usr/include/{t}")));
    }
    angle.push(PathBuf::from("/usr/include"));
    let angle = angle
        .iter()
        .filter_map(|d| std::fs::canonicalize(d).ok().filter(|d| d.is_dir()))
        .collect();
    Some(Defaults {
        angle,
        ..Defaults::default()
    })
}

/// Reads the search-list sections of `-v` output; `None` if the `<...>` section is
/// missing.
pub fn parse(text: &[u8]) -> Option<Defaults> {
    let mut d = Defaults::default();
    let mut section = 0u8; // 1: quote, 2: angle
    let mut saw_angle = false;
    for line in text.split(|&c| c == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.starts_with(b"#include \"...\" search starts here:") {
            section = 1;
            continue;
        }
        if line.starts_with(b"#include <...> search starts here:") {
            section = 2;
            saw_angle = true;
            continue;
        }
        if line.starts_with(b"End of search list") {
            if section == 2 {
                break;
            }
            section = 0;
            continue;
        }
        if section == 0 || line.ends_with(b" (framework directory)") {
            continue;
        }
        for word in line
            .split(|c| c.is_ascii_whitespace())
            .filter(|w| !w.is_empty())
        {
            let p = Path::new(std::ffi::OsStr::from_bytes(word));
            let real = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
            let list = if section == 1 {
                &mut d.quote
            } else {
                &mut d.angle
            };
            if !list.contains(&real) {
                list.push(real);
            }
        }
    }
    saw_angle.then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_gcc_output() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("a");
        std::fs::create_dir(&a).unwrap();
        let text = format!(
            "ignoring nonexistent directory \"/nope\"\n#include \"...\" search starts here:\n \
             {q}\n#include <...> search starts here:\n {a}\n /usr/include\n \
             /Library/Frameworks (framework directory)\nEnd of search list.\n",
            q = t.path().display(),
            a = a.join("../a").display()
        );
        let d = parse(text.as_bytes()).unwrap();
        assert_eq!(d.quote, vec![std::fs::canonicalize(t.path()).unwrap()]);
        assert_eq!(
            d.angle,
            vec![
                std::fs::canonicalize(&a).unwrap(),
                PathBuf::from("/usr/include")
            ]
        );
        assert!(parse(b"garbage\n").is_none());
    }

    #[test]
    fn probes_the_real_gcc() {
        let key = ProbeKey {
            compiler: b"gcc".to_vec(),
            cwd: None,
            language: b"c".to_vec(),
            flags: vec![],
        };
        let d = probe(
            &key,
            Path::new("/"),
            Some(std::ffi::OsStr::new("/usr/bin:/bin")),
        )
        .unwrap();
        assert!(
            d.angle.iter().any(|p| p == Path::new("/usr/include")),
            "{d:?}"
        );
        assert!(
            d.macros.iter().any(|m| m.name() == b"__GNUC__"),
            "{:?}",
            d.macros
        );
        let nostd = ProbeKey {
            flags: vec![b"-nostdinc".to_vec()],
            ..key.clone()
        };
        let d = probe(
            &nostd,
            Path::new("/"),
            Some(std::ffi::OsStr::new("/usr/bin:/bin")),
        )
        .unwrap();
        assert!(d.angle.is_empty(), "{d:?}");
        let bad = ProbeKey {
            compiler: b"/nonexistent/cc".to_vec(),
            ..key
        };
        let e = probe(&bad, Path::new("/"), None).unwrap_err();
        assert!(e.contains("error executing"), "{e}");
    }

    #[test]
    fn the_search_lists_end_is_found_in_partial_output() {
        let text = b"ignoring nonexistent directory \"/x\"\n#include \"...\" search starts here:\n\
                     End of search list.\n#include <...> search starts here:\n /usr/include\n\
                     End of search list.\nCOMPILER_PATH=/usr/lib\n";
        let end = search_lists_end(text).unwrap();
        assert!(text[..end].ends_with(b"End of search list.\n"));
        assert_eq!(end, text.len() - b"COMPILER_PATH=/usr/lib\n".len());
        // Not yet: the quote list's end, or the angle list's end line cut short.
        assert_eq!(search_lists_end(&text[..80]), None);
        assert_eq!(search_lists_end(&text[..end - 1]), None);
        assert_eq!(
            parse(&text[..end]).unwrap().angle,
            vec![PathBuf::from("/usr/include")]
        );
    }

    #[test]
    fn a_running_probe_gives_its_search_lists_before_its_output_ends() {
        for (compiler, language) in [("gcc", "c"), ("g++", "c++")] {
            let key = ProbeKey {
                compiler: compiler.as_bytes().to_vec(),
                cwd: None,
                language: language.as_bytes().to_vec(),
                flags: vec![],
            };
            let path = Some(std::ffi::OsStr::new("/usr/bin:/bin"));
            let child = spawn(&key, Path::new("/"), path).unwrap();
            let mut running = Running::new(&key, child, PROBE_DEADLINE);
            let early = running.search_lists().unwrap();
            assert!(early.macros.is_empty());
            let out = running.finish().unwrap();
            let whole = interpret(&key, &out).unwrap();
            assert_eq!((&early.quote, &early.angle), (&whole.quote, &whole.angle));
            assert!(whole.macros.iter().any(|m| m.name() == b"__GNUC__"));
        }
    }
}
#[cfg(test)]
mod guess_tests {
    use super::*;

    #[test]
    fn the_guess_for_the_installed_gcc_is_what_its_probe_finds() {
        let path = std::ffi::OsStr::new("/usr/bin:/bin");
        for (cc, lang) in [
            ("gcc", &b"c"[..]),
            ("g++", b"c++"),
            ("cc", b"c"),
            ("c++", b"c++"),
        ] {
            let Some(real) = resolve_compiler(cc.as_bytes(), Path::new("/"), Some(path)) else {
                continue;
            };
            let key = ProbeKey {
                compiler: cc.as_bytes().to_vec(),
                cwd: None,
                language: lang.to_vec(),
                flags: vec![],
            };
            let probed = probe(&key, Path::new("/"), Some(path)).unwrap();
            if real.to_string_lossy().contains("clang") {
                assert!(guess_defaults(&real, lang).is_none());
                continue;
            }
            let guess = guess_defaults(&real, lang).expect("a GCC driver");
            assert_eq!(guess.angle, probed.angle, "{cc} ({})", real.display());
        }
    }

    #[test]
    fn only_gcc_driver_names_are_guessed() {
        for name in [
            "clang",
            "clang++-14",
            "icc",
            "tcc",
            "x86_64-linux-gnu-clang",
            "gcc-ar",
        ] {
            assert!(
                guess_defaults(&Path::new("/usr/bin").join(name), b"c").is_none(),
                "{name}"
            );
        }
        for name in [
            "gcc",
            "g++-12",
            "x86_64-linux-gnu-g++-12",
            "cc",
            "c++",
            "cpp-12",
        ] {
            assert!(
                guess_defaults(&Path::new("/usr/bin").join(name), b"c").is_some(),
                "{name}"
            );
        }
        assert!(resolve_compiler(b"no-such-compiler", Path::new("/"), None).is_none());
    }

    #[test]
    fn guessed_directories_exist() {
        for lang in [&b"c"[..], b"c++"] {
            let Some(g) = guess_defaults(Path::new("/usr/bin/gcc"), lang) else {
                panic!("gcc is a GCC driver's name");
            };
            assert!(g.angle.iter().all(|d| d.is_dir()), "{g:?}");
            if std::path::Path::new("/usr/include").is_dir() {
                assert_eq!(
                    g.angle.last().unwrap(),
                    std::path::Path::new("/usr/include")
                );
            }
        }
    }
}
