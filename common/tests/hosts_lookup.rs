//! Where the host list comes from (spec C.1): `DISTCC_HOSTS`, then `$DISTCC_DIR/hosts` or
//! `$HOME/.distcc/hosts`, then `<sysconfdir>/distcc/hosts`, on real files in temp dirs.

use std::fs;
use std::path::{Path, PathBuf};

use common::env::{self, Env};
use common::hosts::{self, HostSource, HostsError};

/// A temp dir with `home/`, `dir/` (for DISTCC_DIR) and `etc/` (the sysconfdir).
struct Tree {
    root: tempfile::TempDir,
}

impl Tree {
    fn new() -> Self {
        let root = tempfile::tempdir().expect("temp dir");
        for d in ["home", "dir", "etc"] {
            fs::create_dir(root.path().join(d)).expect("mkdir");
        }
        Tree { root }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir -p");
        fs::write(&p, text).expect("write");
        p
    }

    fn sysconfdir(&self) -> PathBuf {
        self.path("etc")
    }

    /// The first host token of the list found, and its source.
    fn found(&self, env: &Env) -> Option<(HostSource, String)> {
        let text = hosts::find_host_list(env, &self.sysconfdir()).expect("lookup")?;
        let list = text.parse().expect("parse");
        Some((text.source().clone(), list.hosts()[0].text().to_owned()))
    }
}

fn file(p: &Path) -> HostSource {
    HostSource::File(p.to_owned())
}

#[test]
fn distcc_hosts_wins_even_when_empty() {
    let t = Tree::new();
    t.write("dir/hosts", "fromdir");
    t.write("etc/distcc/hosts", "frometc");
    let env = Env::from_pairs([
        (env::DISTCC_HOSTS, Path::new("")),
        (env::DISTCC_DIR, &t.path("dir")),
    ]);
    let found = hosts::find_host_list(&env, &t.sysconfdir())
        .expect("lookup")
        .expect("found");
    assert_eq!(found.source(), &HostSource::Environment);
    assert_eq!(found.text(), b"");
    assert_eq!(
        found.parse().unwrap_err().to_string(),
        "$DISTCC_HOSTS contained no hosts; can't distribute work"
    );
    let env = env.with(env::DISTCC_HOSTS, "fromenv");
    assert_eq!(
        t.found(&env),
        Some((HostSource::Environment, "fromenv".into()))
    );
}

#[test]
fn distcc_dir_then_sysconfdir() {
    let t = Tree::new();
    let etc = t.write("etc/distcc/hosts", "frometc");
    let env = Env::from_pairs([
        (env::DISTCC_DIR, t.path("dir")),
        (env::HOME, t.path("home")),
    ]);
    assert_eq!(t.found(&env), Some((file(&etc), "frometc".into())));
    let dir = t.write("dir/hosts", "# a comment\nfromdir\n");
    assert_eq!(t.found(&env), Some((file(&dir), "fromdir".into())));
}

#[test]
fn distcc_dir_set_means_home_is_not_consulted() {
    let t = Tree::new();
    t.write("home/.distcc/hosts", "fromhome");
    let etc = t.write("etc/distcc/hosts", "frometc");
    let env = Env::from_pairs([
        (env::DISTCC_DIR, t.path("dir")),
        (env::HOME, t.path("home")),
    ]);
    assert_eq!(t.found(&env), Some((file(&etc), "frometc".into())));
}

#[test]
fn home_dot_distcc_when_distcc_dir_unset_and_not_created() {
    let t = Tree::new();
    let env = Env::from_pairs([(env::HOME, t.path("home"))]);
    assert_eq!(t.found(&env), None);
    assert!(
        !t.path("home/.distcc").exists(),
        "the lookup must not create ~/.distcc"
    );
    let home = t.write("home/.distcc/hosts", "fromhome");
    assert_eq!(t.found(&env), Some((file(&home), "fromhome".into())));
}

#[test]
fn no_home_and_no_files_is_no_list() {
    let t = Tree::new();
    assert_eq!(t.found(&Env::default()), None);
    let e = hosts::load_host_list(&Env::default(), &t.sysconfdir()).unwrap_err();
    assert_eq!(e, HostsError::NoHostList);
    assert_eq!(e.exit_code(), 106);
    let etc = t.write("etc/distcc/hosts", "frometc/3");
    let (source, list) = hosts::load_host_list(&Env::default(), &t.sysconfdir()).expect("load");
    assert_eq!(source, file(&etc));
    assert_eq!(list.total_slots(), 3);
}

#[test]
fn an_empty_file_names_its_path() {
    let t = Tree::new();
    let dir = t.write("dir/hosts", "\n# nothing\n");
    let env = Env::from_pairs([(env::DISTCC_DIR, t.path("dir"))]);
    let e = hosts::load_host_list(&env, &t.sysconfdir()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{} contained no hosts; can't distribute work",
            dir.display()
        )
    );
}

#[test]
fn a_directory_named_hosts_is_a_read_error() {
    let t = Tree::new();
    fs::create_dir(t.path("dir/hosts")).expect("mkdir");
    let env = Env::from_pairs([(env::DISTCC_DIR, t.path("dir"))]);
    let e = hosts::find_host_list(&env, &t.sysconfdir()).unwrap_err();
    assert!(matches!(e, HostsError::Read { .. }), "{e:?}");
    assert_eq!(e.exit_code(), hosts::EXIT_IO_ERROR);
}

#[test]
fn a_file_over_one_mib_is_refused() {
    let t = Tree::new();
    let big = t.write("etc/distcc/hosts", &"a ".repeat(600_000));
    let e = hosts::find_host_list(&Env::default(), &t.sysconfdir()).unwrap_err();
    assert_eq!(
        e,
        HostsError::TooLarge {
            path: big,
            size: 1_200_000
        }
    );
    assert_eq!(e.exit_code(), hosts::EXIT_OUT_OF_MEMORY);
}

#[test]
fn randomize_from_a_file_is_applied_by_load() {
    let t = Tree::new();
    t.write("etc/distcc/hosts", "--randomize\na\nb\nc\nd\n");
    let (_, list) = hosts::load_host_list(&Env::default(), &t.sysconfdir()).expect("load");
    assert!(list.randomize());
    let mut got: Vec<&str> = list.iter().map(|h| h.text()).collect();
    got.sort_unstable();
    assert_eq!(got, ["a", "b", "c", "d"]);
}
