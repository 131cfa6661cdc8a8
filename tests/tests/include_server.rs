//! Our `include_server` with the distro's real distcc 3.4 client and a real loopback
//! distccd: the `--scan-includes` listing of the spec's `proj` example (spec 4.9), and
//! pump-mode compiles whose objects equal the local build's.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use e2e::{bin, wait_pid_gone, Distccd, Run, TestEnv, DISTCC};

/// A running include server, stopped (SIGTERM) on drop.
struct IncludeServer {
    pid: u32,
    socket: PathBuf,
    logs: PathBuf,
}

impl IncludeServer {
    /// Starts `include_server` as pump does, with a socket in its own private directory.
    fn start(env: &TestEnv, extra: &[&str]) -> IncludeServer {
        Self::start_in(env, extra, None)
    }

    /// As [`IncludeServer::start`], with `DISTCC_CLIENT_TMP` set to `client_tmp`.
    fn start_in(env: &TestEnv, extra: &[&str], client_tmp: Option<&str>) -> IncludeServer {
        let dir = env.path().join("pump");
        std::fs::create_dir(&dir).unwrap();
        let socket = dir.join("socket");
        let pid_file = dir.join("pid");
        let logs = env.path().join("include-server.log");
        let log = std::fs::File::create(&logs).unwrap();
        // stdout and stderr go to a file: the serving process inherits them.
        let mut cmd = env.cmd(bin("include_server"));
        if let Some(t) = client_tmp {
            cmd.env("DISTCC_CLIENT_TMP", t);
        }
        let status = cmd
            .arg("--port")
            .arg(&socket)
            .arg("--pid_file")
            .arg(&pid_file)
            .arg("-d1")
            .args(extra)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "include_server failed to start: {}",
            std::fs::read_to_string(&logs).unwrap_or_default()
        );
        let pid = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        IncludeServer { pid, socket, logs }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.logs).unwrap_or_default()
    }

    /// Client roots of this server.
    fn roots(&self) -> Vec<PathBuf> {
        let mark = format!(".include_server-{}-", self.pid);
        std::fs::read_dir("/dev/shm")
            .into_iter()
            .chain(std::fs::read_dir("/tmp"))
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(&mark))
            .map(|e| e.path())
            .collect()
    }

    fn stop(&self) {
        // SAFETY: kill with a pid and a signal number.
        unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGTERM) };
        assert!(
            wait_pid_gone(self.pid, Duration::from_secs(10)),
            "include server {} still running after SIGTERM",
            self.pid
        );
    }
}

impl Drop for IncludeServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `proj` example of spec 4.9, plus a header with a non-ASCII byte and `__FILE__`
/// in a header reached through an absolute `-I` (the `.lzo.abs` `#line` rule).
fn proj(env: &TestEnv) -> PathBuf {
    let p = std::fs::canonicalize(env.path()).unwrap().join("proj");
    for d in ["realinc", "absinc", "sub"] {
        std::fs::create_dir_all(p.join(d)).unwrap();
    }
    symlink("realinc", p.join("inc")).unwrap();
    let files: &[(&str, &[u8])] = &[
        (
            "main.c",
            b"#include \"inc/a.h\"\n#include <stdio.h>\n#include \"sub/../b.h\"\n\
              #include <c.h>\n#define HDR \"d.h\"\n#include HDR\n\
              int main(void) { printf(\"%s %s %d\\n\", cafe, cfile, A2 + B + D); return 0; }\n",
        ),
        ("realinc/a.h", b"#include \"a2.h\"\n"),
        ("realinc/a2.h", b"#define A2 2\n"),
        (
            "b.h",
            b"#define B 3\nstatic const char cafe[] = \"caf\xe9\";\n",
        ),
        (
            "absinc/c.h",
            b"#include \"other.h\"\nstatic const char cfile[] = __FILE__;\n",
        ),
        ("absinc/other.h", b"/* other */\n"),
        ("d.h", b"#define D 4\n"),
    ];
    for (name, text) in files {
        std::fs::write(p.join(name), text).unwrap();
    }
    p
}

fn scan_includes(env: &TestEnv, is: &IncludeServer, proj: &Path) -> Run {
    Run::of(
        env.cmd(DISTCC)
            .current_dir(proj)
            .env("INCLUDE_SERVER_PORT", &is.socket)
            .env("DISTCC_HOSTS", "127.0.0.1,cpp,lzo")
            .arg("--scan-includes")
            .arg("gcc")
            .arg(format!("-I{}", proj.join("absinc").display()))
            .args(["-c", "main.c", "-o", "main.o"]),
    )
}

#[test]
fn scan_includes_lists_the_spec_example() {
    // The default base (/dev/shm), a one-level base (roots padded to three components)
    // and a two-level one.
    for client_tmp in [None, Some("/tmp"), Some("/dev/shm")] {
        let env = TestEnv::new();
        let p = proj(&env);
        let is = IncludeServer::start_in(&env, &[], client_tmp);
        let run = scan_includes(&env, &is, &p);
        run.expect_success();
        let d = p.display();
        let mut want = vec![
            format!("FILE      {d}/main.c"),
            format!("FILE      {d}/d.h"),
            format!("FILE      {d}/absinc/c.h"),
            format!("FILE      {d}/absinc/other.h"),
            format!("FILE      {d}/b.h"),
            format!("FILE      {d}/realinc/a.h"),
            format!("FILE      {d}/realinc/a2.h"),
            "SYSTEMDIR /usr/include".to_string(),
            "SYSTEMDIR /usr/local/include".to_string(),
            format!("SYMLINK   {d}/inc"),
            format!("DIRECTORY {d}"),
            format!("DIRECTORY {d}/realinc"),
            format!("DIRECTORY {d}/sub"),
            format!("DIRECTORY {d}/absinc"),
        ];
        // gcc's own include directory, whatever its version.
        let gcc_dir = run
            .lines()
            .into_iter()
            .find(|l| l.starts_with("SYSTEMDIR /usr/lib/gcc/"))
            .unwrap_or_else(|| panic!("no gcc system dir\n{run}\n{}", is.log()))
            .to_string();
        want.push(gcc_dir);
        want.sort();
        assert_eq!(
            run.sorted_lines(),
            want,
            "DISTCC_CLIENT_TMP={client_tmp:?}\n{run}\n{}",
            is.log()
        );

        // The same request again: the same answer, from the caches.
        let again = scan_includes(&env, &is, &p);
        assert_eq!(again.sorted_lines(), want);

        let roots = is.roots();
        assert_eq!(roots.len(), 1, "{roots:?}");
        is.stop();
        assert!(is.roots().is_empty(), "roots left: {:?}", is.roots());
        assert!(!is.socket.exists());
        let stats: String =
            std::fs::read_to_string(is.socket.parent().unwrap().join("stats.json")).unwrap();
        assert!(stats.contains("\"served\": 2"), "{stats}");
    }
}

#[test]
fn cpp_compiles_in_pump_mode() {
    let d = Distccd::start();
    let env = TestEnv::new();
    let p = std::fs::canonicalize(env.path()).unwrap().join("cpp");
    std::fs::create_dir_all(p.join("include/shapes")).unwrap();
    std::fs::write(
        p.join("include/shapes/area.hpp"),
        "#pragma once\n#include <vector>\n#include <numeric>\n\
         inline double total(const std::vector<double>& v) {\n\
           return std::accumulate(v.begin(), v.end(), 0.0);\n}\n",
    )
    .unwrap();
    std::fs::write(
        p.join("main.cpp"),
        "#include <shapes/area.hpp>\n#include <string>\n\
         int main() { std::string s = \"x\"; return total({1.0, 2.0}) > 2 ? 0 : s.size(); }\n",
    )
    .unwrap();
    let is = IncludeServer::start(&env, &[]);
    fn build(compiler: Option<&'static str>, out: &'static str) -> Vec<&'static str> {
        let mut args: Vec<&str> = compiler.into_iter().collect();
        args.extend(["-Iinclude", "-O1", "-c", "main.cpp", "-o", out]);
        args
    }
    let run = Run::of(
        env.cmd(DISTCC)
            .current_dir(&p)
            .env("INCLUDE_SERVER_PORT", &is.socket)
            .env("DISTCC_HOSTS", format!("{}/2,cpp,lzo", d.host()))
            .env("DISTCC_FALLBACK", "0")
            .args(build(Some("g++"), "main.o")),
    );
    run.expect_success();
    d.wait_for_log("COMPILE_OK");
    assert_eq!(
        d.pump_mode_jobs(),
        ["main.cpp"],
        "\n{run}\ndistccd:\n{}\ninclude server:\n{}",
        d.log(),
        is.log()
    );
    Run::of(env.cmd("g++").current_dir(&p).args(build(None, "local.o"))).expect_success();
    for o in ["main.o", "local.o"] {
        Run::of(
            env.cmd("objcopy")
                .current_dir(&p)
                .args(["--strip-debug", o, &format!("{o}.s")]),
        )
        .expect_success();
    }
    assert_eq!(
        std::fs::read(p.join("main.o.s")).unwrap(),
        std::fs::read(p.join("local.o.s")).unwrap(),
        "the pump-mode object differs from the local one"
    );
}

/// Builds `main.c` with `distcc` in pump mode against `d`, and locally with gcc;
/// returns (the distcc run, whether the objects are equal after `--strip-debug`).
fn compile_both(env: &TestEnv, d: &Distccd, is: &IncludeServer, p: &Path) -> (Run, bool) {
    let absinc = format!("-I{}", p.join("absinc").display());
    let run = Run::of(
        env.cmd(DISTCC)
            .current_dir(p)
            .env("INCLUDE_SERVER_PORT", &is.socket)
            .env("DISTCC_HOSTS", format!("{}/2,cpp,lzo", d.host()))
            .env("DISTCC_FALLBACK", "0")
            .env("DISTCC_VERBOSE", "1")
            .args(["gcc", &absinc, "-c", "main.c", "-o", "main.o"]),
    );
    Run::of(
        env.cmd("gcc")
            .current_dir(p)
            .args([&absinc, "-c", "main.c", "-o", "local.o"]),
    )
    .expect_success();
    let strip = |o: &str| {
        Run::of(
            env.cmd("objcopy")
                .current_dir(p)
                .args(["--strip-debug", o, &format!("{o}.stripped")])
                .stdin(Stdio::null()),
        )
        .expect_success();
        std::fs::read(p.join(format!("{o}.stripped"))).unwrap()
    };
    let same = p.join("main.o").is_file() && strip("main.o") == strip("local.o");
    (run, same)
}

#[test]
fn pump_mode_compile_with_real_distccd_equals_local_build() {
    let d = Distccd::start();
    let env = TestEnv::new();
    let p = proj(&env);
    let is = IncludeServer::start(&env, &[]);
    let (run, same) = compile_both(&env, &d, &is, &p);
    run.expect_success();
    d.wait_for_log("COMPILE_OK");
    assert_eq!(
        d.pump_mode_jobs(),
        ["main.c"],
        "\n{run}\ndistccd:\n{}\ninclude server:\n{}",
        d.log(),
        is.log()
    );
    assert!(
        same,
        "the pump-mode object differs from the local one\n{run}"
    );
}

#[test]
fn forcing_files_are_what_makes_sub_dotdot_resolve() {
    // spec 8.4 item 7: without forcing files, `sub` does not exist on distccd and
    // `sub/../b.h` cannot be found there.
    let d = Distccd::start();
    let env = TestEnv::new();
    let p = proj(&env);
    let is = IncludeServer::start(&env, &["--no_force_dirs"]);
    let (run, _) = compile_both(&env, &d, &is, &p);
    d.wait_for_log("main.c");
    assert!(
        d.pump_mode_jobs().is_empty(),
        "compiled in pump mode without forcing files?\n{run}\n{}",
        d.log()
    );
    assert!(
        run.stderr.contains("sub/../b.h") || d.log().contains("sub/../b.h"),
        "\n{run}\n{}",
        d.log()
    );
}

#[test]
fn stat_reset_trigger_picks_up_a_header_made_later() {
    // spec 8.4 item 9: after a trigger changes, a new generation (a new client root,
    // fresh caches) sees the header generated in the meantime.
    let env = TestEnv::new();
    let p = std::fs::canonicalize(env.path()).unwrap().join("gen");
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(p.join("x.c"), "#include \"made_later.h\"\nint x;\n").unwrap();
    std::fs::write(env.path().join("trigger"), "1").unwrap();
    let is = IncludeServer::start(&env, &["--stat_reset_triggers=trigger"]);
    let scan = || {
        Run::of(
            env.cmd(DISTCC)
                .current_dir(&p)
                .env("INCLUDE_SERVER_PORT", &is.socket)
                .env("DISTCC_HOSTS", "127.0.0.1,cpp,lzo")
                .args(["--scan-includes", "gcc", "-c", "x.c", "-o", "x.o"]),
        )
    };
    let header = format!("FILE      {}/made_later.h", p.display());
    let before = scan();
    assert!(!before.lines().contains(&header.as_str()), "{before}");
    std::fs::write(p.join("made_later.h"), "#define LATER 1\n").unwrap();
    // A new inode is a change whatever the clock's resolution.
    std::fs::write(env.path().join("trigger.new"), "2").unwrap();
    std::fs::rename(env.path().join("trigger.new"), env.path().join("trigger")).unwrap();
    let after = scan();
    after.expect_success();
    assert!(
        after.lines().contains(&header.as_str()),
        "{after}\n{}",
        is.log()
    );
    assert!(
        is.log().contains("changed. Clearing caches."),
        "{}",
        is.log()
    );
    let roots = is.roots();
    assert_eq!(roots.len(), 2, "{roots:?}");
    assert!(roots
        .iter()
        .any(|r| r.to_string_lossy().ends_with(&format!("-{}-2", is.pid))));
}
