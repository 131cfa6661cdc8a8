//! The packaging: `make -C packaging install` into a `DESTDIR`, the installed `pump` running
//! a real pump-mode build, and the `.deb` (control, contents, and `dpkg -i`/`dpkg -r`).
//!
//! The binaries come from the test build (`BUILD_DIR=<target>/debug`), so no release build
//! runs here. Nothing is installed into the live system: the `.deb` goes into a private
//! dpkg root (`dpkg --root=<tmp> --force-script-chrootless`), where its maintainer scripts
//! run against that root (`DPKG_ROOT`). That root first gets the distro's own `distcc` and
//! `distcc-pump` packages, rebuilt from the files this machine has installed (see
//! [`repack_installed`]), so dpkg sees the same ownership conflicts as on a real system:
//! `/usr/bin/lsdistcc` owned by `distcc`, `distcc-pump` to be replaced.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use e2e::{bin, sample_project, target_dir, Distccd, Run, TestEnv, DISTCC, DISTRO_LSDISTCC};

/// The workspace root.
fn top() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `make -C packaging TARGET VARS...` with the test build's binaries, generating into
/// `gendir` (each test its own, so parallel tests do not share generated files).
fn make(env: &TestEnv, target: &str, gendir: &Path, vars: &[String]) -> Run {
    Run::of(
        env.cmd("make")
            .arg("-s")
            .arg("-C")
            .arg(top().join("packaging"))
            .arg(target)
            .arg(format!("BUILD_DIR={}", target_dir().display()))
            .arg(format!("GENDIR={}", gendir.display()))
            .args(vars),
    )
}

/// Installs into `<env>/stage` with `prefix=/usr` plus `extra`; returns the DESTDIR.
fn install(env: &TestEnv, extra: &[&str]) -> PathBuf {
    let destdir = env.path().join("stage");
    let mut vars = vec![
        format!("DESTDIR={}", destdir.display()),
        "prefix=/usr".to_owned(),
        "sysconfdir=/etc".to_owned(),
    ];
    vars.extend(extra.iter().map(|s| s.to_string()));
    make(env, "install", &env.path().join("gen"), &vars).expect_success();
    destdir
}

/// Files (not directories) under `root`, as `/`-rooted paths, sorted; symlinks included.
fn files_under(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                walk(root, &p, out);
            } else {
                out.push(format!("/{}", p.strip_prefix(root).unwrap().display()));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn gunzip(p: &Path) -> String {
    let out = Command::new("gzip")
        .arg("-dc")
        .arg(p)
        .output()
        .expect("gzip");
    assert!(out.status.success(), "gzip -dc {}", p.display());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What `make install prefix=/usr` lays out today (pump is the only tool with a clap
/// definition the generator knows; lsdistcc and include_server get pages once theirs land).
const LAYOUT: &[&str] = &[
    "/usr/bin/distcc-pump",
    "/usr/bin/include_server",
    "/usr/bin/lsdistcc",
    "/usr/bin/pump",
    "/usr/share/bash-completion/completions/distcc-pump",
    "/usr/share/bash-completion/completions/pump",
    "/usr/share/fish/vendor_completions.d/distcc-pump.fish",
    "/usr/share/fish/vendor_completions.d/pump.fish",
    "/usr/share/man/man1/distcc-pump.1.gz",
    "/usr/share/man/man1/pump.1.gz",
    "/usr/share/zsh/site-functions/_distcc-pump",
    "/usr/share/zsh/site-functions/_pump",
];

#[test]
fn install_lays_out_the_tree_under_a_destdir_it_creates_and_uninstall_removes_it() {
    let env = TestEnv::new();
    let destdir = env.path().join("stage");
    assert!(!destdir.exists());
    install(&env, &[]);
    let got = files_under(&destdir);
    for want in LAYOUT {
        assert!(
            got.contains(&want.to_string()),
            "{want} missing from {got:#?}"
        );
    }
    // Nothing else but pages and completions of tools the generator learns about later.
    for extra in got.iter().filter(|f| !LAYOUT.contains(&f.as_str())) {
        assert!(
            [
                "/usr/share/man/man1/",
                "/usr/share/bash-completion/",
                "/usr/share/zsh/",
                "/usr/share/fish/"
            ]
            .iter()
            .any(|d| extra.starts_with(d)),
            "unexpected {extra}"
        );
    }
    let bindir = destdir.join("usr/bin");
    for p in ["pump", "lsdistcc", "include_server"] {
        assert_eq!(mode(&bindir.join(p)), 0o755, "{p}");
        assert_eq!(
            std::fs::read(bindir.join(p)).unwrap(),
            std::fs::read(bin(p)).unwrap(),
            "{p} is not the built binary"
        );
    }
    assert_eq!(
        std::fs::read_link(bindir.join("distcc-pump")).unwrap(),
        Path::new("pump")
    );
    let man1 = destdir.join("usr/share/man/man1");
    assert_eq!(mode(&man1.join("pump.1.gz")), 0o644);
    let page = gunzip(&man1.join("pump.1.gz"));
    assert!(page.contains(".TH pump 1 "), "{page}");
    assert!(page.contains("\\-\\-startup"), "{page}");
    let alias = gunzip(&man1.join("distcc-pump.1.gz"));
    assert!(alias.contains(".TH distcc-pump 1 "), "{alias}");
    let bash =
        std::fs::read_to_string(destdir.join("usr/share/bash-completion/completions/distcc-pump"))
            .unwrap();
    assert!(bash.contains("distcc-pump"), "{bash}");

    let vars = [
        format!("DESTDIR={}", destdir.display()),
        "prefix=/usr".to_owned(),
    ];
    make(&env, "uninstall", &env.path().join("gen"), &vars).expect_success();
    assert_eq!(files_under(&destdir), Vec::<String>::new());
}

#[test]
fn install_variables_move_and_trim_the_layout() {
    let env = TestEnv::new();
    let destdir = install(
        &env,
        &[
            "prefix=/opt/d",
            "bindir=/opt/d/libexec/pump",
            "mandir=/opt/d/man",
            "INSTALL_LSDISTCC=no",
            "DISTCC_CLIENT=/usr/bin/distcc",
        ],
    );
    let got = files_under(&destdir);
    for want in [
        "/opt/d/libexec/pump/pump",
        "/opt/d/libexec/pump/distcc-pump",
        "/opt/d/libexec/pump/include_server",
        "/opt/d/libexec/pump/distcc",
        "/opt/d/man/man1/pump.1.gz",
        "/opt/d/share/bash-completion/completions/pump",
    ] {
        assert!(
            got.contains(&want.to_string()),
            "{want} missing from {got:#?}"
        );
    }
    assert!(
        !got.iter().any(|f| f.contains("lsdistcc")),
        "INSTALL_LSDISTCC=no still installed lsdistcc files: {got:#?}"
    );
    assert_eq!(
        std::fs::read_link(destdir.join("opt/d/libexec/pump/distcc")).unwrap(),
        Path::new(DISTCC)
    );
}

#[test]
fn installing_over_files_of_the_distro_packages_is_refused() {
    // Only the check runs (no install): with an empty DESTDIR and prefix=/usr, the distro's
    // distcc owns /usr/bin/lsdistcc.
    let env = TestEnv::new();
    let run = make(
        &env,
        "dpkg-check",
        &env.path().join("gen"),
        &["prefix=/usr".to_owned()],
    );
    run.expect_code(2);
    assert!(
        run.stderr
            .starts_with("error: these files belong to dpkg packages;"),
        "{run}"
    );
    assert!(
        run.stderr.contains("  distcc: /usr/bin/lsdistcc\n"),
        "{run}"
    );
    // /usr/local belongs to no package.
    make(&env, "dpkg-check", &env.path().join("gen"), &[]).expect_success();
}

/// The sample project's translation units, as distccd logs them, sorted.
const SOURCES: &[&str] = &[
    "lib/strbuf.c",
    "src/greet.c",
    "src/main.c",
    "src/shapes.cpp",
    "src/stats.cpp",
    "src/table.c",
];

/// Runs `program make -j4` over a fresh copy of the sample project with `PATH` =
/// `bindir:/usr/bin:/bin` (no build tree on it) against a loopback distccd, and checks
/// that pump used `location` and that every translation unit compiled remotely in pump
/// mode.
fn pump_make_with(env: &mut TestEnv, bindir: &Path, program: &str, location: &Path) {
    let d = Distccd::start();
    let path = std::env::join_paths([bindir, Path::new("/usr/bin"), Path::new("/bin")]).unwrap();
    env.set_path(path)
        .set("DISTCC_HOSTS", format!("{}/4,cpp,lzo", d.host()))
        .set("DISTCC_FALLBACK", "0");
    let project = sample_project(env.path());
    let run = Run::of(env.cmd(program).args(["make", "-j4"]).current_dir(&project));
    run.expect_success();
    assert!(
        run.stdout.contains(&format!(
            "__________Using distcc-pump from {}\n",
            location.display()
        )),
        "{run}"
    );
    let sample = Run::of(&mut env.cmd(project.join("sample")));
    sample.expect_success();
    assert!(sample.stdout.starts_with("hello from posix"), "{sample}");
    d.wait_for_jobs(SOURCES.len());
    assert_eq!(
        d.pump_mode_jobs(),
        SOURCES,
        "distccd log:\n{}\n{run}",
        d.log()
    );
    let left: Vec<_> = std::fs::read_dir(env.tmp()).unwrap().collect();
    assert!(left.is_empty(), "left in TMPDIR: {left:?}");
}

#[test]
fn the_installed_pump_finds_distcc_beside_it_and_builds_in_pump_mode() {
    let mut env = TestEnv::new();
    // DISTCC_CLIENT puts a link to the distro's client beside pump, as in /usr/bin.
    let destdir = install(&env, &["DISTCC_CLIENT=/usr/bin/distcc"]);
    // Started by its Debian name through PATH: argv[0] is the bare `distcc-pump`, a
    // symlink to `pump`, so the location is the staged bin directory (`<dir>/.`: the
    // link's target has no directory part).
    let bindir = destdir.join("usr/bin");
    pump_make_with(&mut env, &bindir, "distcc-pump", &bindir.join("."));
}

/// The `.deb`, built once per test run from the test build's binaries.
fn deb() -> &'static Path {
    static DEB: OnceLock<PathBuf> = OnceLock::new();
    DEB.get_or_init(|| {
        let env = TestEnv::new();
        let outdir = target_dir().join("packaging-e2e");
        let run = Run::of(
            env.cmd("sh")
                .arg(top().join("packaging/deb.sh"))
                .arg(&outdir)
                .env("BUILD_DIR", target_dir()),
        );
        run.expect_success();
        let deb = PathBuf::from(run.stdout.trim_end());
        assert!(deb.is_file(), "{run}");
        deb
    })
}

fn control_field(control: &str, name: &str) -> String {
    let prefix = format!("{name}: ");
    control
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name} in\n{control}"))
        .to_owned()
}

#[test]
fn the_deb_declares_what_it_replaces_and_ships_the_layout() {
    let deb = deb();
    let arch = Run::of(Command::new("dpkg").arg("--print-architecture"));
    arch.expect_success();
    let info = Run::of(Command::new("dpkg-deb").arg("-I").arg(deb));
    info.expect_success();
    let control = Run::of(Command::new("dpkg-deb").arg("-f").arg(deb));
    control.expect_success();
    let c = &control.stdout;
    assert_eq!(control_field(c, "Package"), "distcc-pump-rs");
    assert_eq!(
        control_field(c, "Version"),
        format!("{}-1", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(control_field(c, "Architecture"), arch.stdout.trim());
    assert!(
        control_field(c, "Depends").starts_with("distcc (>= 3.4), libc6 (>= "),
        "{c}"
    );
    for f in ["Provides", "Conflicts", "Replaces"] {
        assert_eq!(control_field(c, f), "distcc-pump", "{f}");
    }
    assert_eq!(control_field(c, "Section"), "devel");
    for script in ["preinst", "postrm", "md5sums"] {
        assert!(info.stdout.contains(script), "{script} missing\n{info}");
    }
    let preinst = Run::of(Command::new("dpkg-deb").arg("-I").arg(deb).arg("preinst"));
    preinst.expect_success();
    assert!(
        preinst.stdout.contains(
            "    for f in /usr/bin/lsdistcc /usr/share/man/man1/lsdistcc.1.gz; do\n        \
             dpkg-divert --package distcc-pump-rs --divert \"$f.distrib\" --rename --add \"$f\"\n"
        ),
        "{preinst}"
    );

    let contents = Run::of(Command::new("dpkg-deb").arg("-c").arg(deb));
    contents.expect_success();
    for want in LAYOUT {
        let want = want.replace("/zsh/site-functions/", "/zsh/vendor-completions/");
        assert!(
            contents.stdout.contains(&format!(" .{want}")),
            "{want} missing\n{contents}"
        );
    }
    assert!(
        contents
            .stdout
            .contains(" ./usr/share/doc/distcc-pump-rs/copyright\n"),
        "{contents}"
    );
    assert!(
        contents.stdout.contains("./usr/bin/distcc-pump -> pump\n"),
        "{contents}"
    );
    assert!(
        contents.lines().iter().all(|l| l.contains(" root/root ")),
        "files not owned by root\n{contents}"
    );
}

/// The distro package `name` as installed on this machine, rebuilt into a `.deb` in `dir`
/// from its installed files (`dpkg-query -L`), with its identity, its md5sums, and no
/// maintainer scripts (those would act on the live system). Panics with a hint if the
/// package is not installed.
fn repack_installed(name: &str, dir: &Path) -> PathBuf {
    let q = Run::of(Command::new("dpkg-query").args([
        "-W",
        "-f=${Status}\n${Version}\n${Architecture}\n${Maintainer}\n",
        name,
    ]));
    let fields = q.lines();
    assert!(
        q.status.success() && fields.first() == Some(&"install ok installed"),
        "the distro's {name} package is not installed (apt-get install {name})\n{q}"
    );
    let root = dir.join(format!("{name}-repack"));
    let list = Run::of(Command::new("dpkg-query").args(["-L", name]));
    list.expect_success();
    let mut md5 = Command::new("md5sum");
    md5.current_dir(&root);
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    let mut any_file = false;
    for path in list.lines().into_iter().filter(|l| l.starts_with('/')) {
        let src = Path::new(path);
        let dst = root.join(path.trim_start_matches('/'));
        let meta = std::fs::symlink_metadata(src).unwrap();
        if meta.is_dir() {
            std::fs::create_dir_all(&dst).unwrap();
            std::fs::set_permissions(&dst, meta.permissions()).unwrap();
        } else if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(src).unwrap(), &dst).unwrap();
        } else {
            std::fs::copy(src, &dst).unwrap();
            md5.arg(path.trim_start_matches('/'));
            any_file = true;
        }
    }
    assert!(any_file, "{name} has no files\n{list}");
    let sums = Run::of(&mut md5);
    sums.expect_success();
    std::fs::write(root.join("DEBIAN/md5sums"), &sums.stdout).unwrap();
    std::fs::write(
        root.join("DEBIAN/control"),
        format!(
            "Package: {name}\nVersion: {}\nArchitecture: {}\nMaintainer: {}\n\
             Description: {name} as installed on the test machine\n",
            fields[1], fields[2], fields[3]
        ),
    )
    .unwrap();
    let deb = dir.join(format!("{name}.deb"));
    Run::of(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zgzip", "--build"])
            .arg(&root)
            .arg(&deb),
    )
    .expect_success();
    deb
}

/// `dpkg --root=ROOT ARGS...`: maintainer scripts run without chroot, with
/// `DPKG_ROOT=ROOT` (which `dpkg-divert` honours); dependencies outside this test's
/// packages (libc6, ...) are not in the private database, hence `--force-depends`. dpkg
/// wants the sbin directories on `PATH` (it checks for `ldconfig`).
fn dpkg(env: &TestEnv, root: &Path, args: &[&str]) -> Run {
    Run::of(
        env.cmd("dpkg")
            .env("PATH", SBIN_PATH)
            .arg(format!("--root={}", root.display()))
            .args([
                "--force-script-chrootless",
                "--force-not-root",
                "--force-depends",
            ])
            .args(args),
    )
}

const SBIN_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn divert_list(env: &TestEnv, root: &Path) -> String {
    let run = Run::of(
        env.cmd("dpkg-divert")
            .env("PATH", SBIN_PATH)
            .arg(format!("--root={}", root.display()))
            .arg("--list"),
    );
    run.expect_success();
    run.stdout
}

#[test]
fn the_deb_installs_beside_distcc_replaces_distcc_pump_builds_and_removes_cleanly() {
    let mut env = TestEnv::new();
    let root = env.path().join("root");
    for d in ["var/lib/dpkg/info", "var/lib/dpkg/updates"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    let debs = env.path().join("debs");
    std::fs::create_dir_all(&debs).unwrap();
    for name in ["distcc", "distcc-pump"] {
        let deb = repack_installed(name, &debs);
        dpkg(&env, &root, &["-i", deb.to_str().unwrap()]).expect_success();
    }
    let distro_lsdistcc = std::fs::read(DISTRO_LSDISTCC).unwrap();
    let lsdistcc = root.join("usr/bin/lsdistcc");
    assert_eq!(std::fs::read(&lsdistcc).unwrap(), distro_lsdistcc);

    let ours = deb().to_str().unwrap().to_owned();
    let run = dpkg(&env, &root, &["-i", &ours]);
    run.expect_success();
    assert!(
        run.stderr
            .contains("dpkg: yes, will remove distcc-pump in favour of distcc-pump-rs\n"),
        "{run}"
    );
    assert!(
        run.stdout.contains(
            "Adding 'diversion of /usr/bin/lsdistcc to /usr/bin/lsdistcc.distrib by distcc-pump-rs'"
        ),
        "{run}"
    );
    let status = dpkg(
        &env,
        &root,
        &["-l", "distcc", "distcc-pump", "distcc-pump-rs"],
    );
    let installed: Vec<&str> = status
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("ii "))
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(installed, ["distcc", "distcc-pump-rs"], "{status}");
    assert_eq!(
        std::fs::read(root.join("usr/bin/lsdistcc.distrib")).unwrap(),
        distro_lsdistcc
    );
    assert_ne!(std::fs::read(&lsdistcc).unwrap(), distro_lsdistcc);
    let bindir = root.join("usr/bin");
    assert_eq!(
        std::fs::read_link(bindir.join("distcc-pump")).unwrap(),
        Path::new("pump")
    );
    let help = Run::of(env.cmd(bindir.join("distcc-pump")).arg("--help"));
    help.expect_success();
    assert!(help.stdout.starts_with("Usage:\n"), "{help}");
    // distcc-pump's own files went with it (ours replaced its /usr/bin/distcc-pump).
    assert!(!root
        .join("usr/lib/python3/dist-packages/include_server/include_server.py")
        .exists());

    // The packaged pump, beside the (repacked) distro distcc client in the same
    // directory, runs a real build.
    pump_make_with(
        &mut env,
        &bindir,
        bindir.join("pump").to_str().unwrap(),
        &bindir,
    );

    dpkg(&env, &root, &["-r", "distcc-pump-rs"]).expect_success();
    assert_eq!(divert_list(&env, &root), "");
    assert_eq!(std::fs::read(&lsdistcc).unwrap(), distro_lsdistcc);
    assert!(!root.join("usr/bin/lsdistcc.distrib").exists());
    assert!(!bindir.join("pump").exists());
    let verify = dpkg(&env, &root, &["-V", "distcc"]);
    verify.expect_success();
    assert_eq!(verify.stdout, "", "{verify}");
}

/// The spec's `Name:`/`Version:` and the `/usr/bin/distcc-pump` link target it makes.
fn spec() -> (String, String, String) {
    let text = std::fs::read_to_string(top().join("packaging/rpm/distcc-pump-rs.spec")).unwrap();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no {name}: in the spec"))
            .trim()
            .to_owned()
    };
    let (name, version) = (field("Name"), field("Version"));
    let link = text
        .lines()
        .find_map(|l| l.strip_prefix("ln -s "))
        .and_then(|l| l.split_whitespace().next())
        .expect("the spec links /usr/bin/distcc-pump")
        .replace("%{name}", &name);
    (name, version, link)
}

#[test]
fn the_rpm_layout_runs_pump_through_the_distcc_pump_link_into_its_private_dir() {
    let (name, version, link) = spec();
    assert_eq!(name, "distcc-pump-rs");
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
    assert_eq!(link, "../libexec/distcc-pump-rs/pump");
    // The spec's %install: the tools in a private directory beside a link to the client,
    // and only /usr/bin/distcc-pump on PATH.
    let mut env = TestEnv::new();
    let destdir = install(
        &env,
        &[
            "bindir=/usr/libexec/distcc-pump-rs",
            "DISTCC_CLIENT=/usr/bin/distcc",
        ],
    );
    let bindir = destdir.join("usr/bin");
    std::fs::create_dir_all(&bindir).unwrap();
    std::os::unix::fs::symlink(&link, bindir.join("distcc-pump")).unwrap();
    // One hop, unnormalised, as distcc's script: <stage>/usr/bin/../libexec/distcc-pump-rs.
    let location = bindir.join("../libexec/distcc-pump-rs");
    pump_make_with(&mut env, &bindir, "distcc-pump", &location);
}
