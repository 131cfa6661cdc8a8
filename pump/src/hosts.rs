//! Which hosts a pumped build uses.
//!
//! Two paths, as in distcc's pump:
//! - **probe**: `DISTCC_POTENTIAL_HOSTS` (or `[hosts] potential` in pump.toml) is set.
//!   `lsdistcc -c150 $LSDISTCC_ARGS $DISTCC_POTENTIAL_HOSTS` runs while the include server
//!   starts, and `DISTCC_HOSTS` becomes `--randomize` plus each live host with `,cpp,lzo`
//!   (`,lzo` alone if the include server failed), on **one line**.
//! - **static**: otherwise a host configuration must exist (`DISTCC_HOSTS`, or a hosts
//!   file) and list at least one host with `,cpp`: the list `distcc --show-hosts` would
//!   print, read in this process with the client's rules (`common::hosts`) instead of by
//!   starting the client (3 ms on the way to every build).
//!
//! Differences from the original, on purpose: lsdistcc lines are reduced to the host
//! (a latency from `-l` is dropped, an existing `,lzo`/`,cpp` suffix from `-P2`/`-P3` is
//! not doubled), and hosts lsdistcc reports `,down` (with `-x`) are left out instead of
//! being used anyway.

use std::path::{Path, PathBuf};

use common::env::{self, Env};

/// How many hosts the static list has, and how many of them are pump hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticHosts {
    /// Every host token of the list (as `distcc --show-hosts` prints them).
    pub total: usize,
    /// Those whose token contains `,cpp`.
    pub pump: usize,
}

impl StaticHosts {
    /// Counts a `distcc --show-hosts` listing as the original does (a substring
    /// match for `,cpp` on each verbatim token).
    pub fn count(show_hosts: &str) -> StaticHosts {
        let lines: Vec<&str> = show_hosts
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        StaticHosts {
            total: lines.len(),
            pump: lines.iter().filter(|l| l.contains(",cpp")).count(),
        }
    }

    /// The verbose line pump prints for this list.
    pub fn message(&self) -> String {
        if self.total == self.pump {
            let noun = if self.total == 1 { "server" } else { "servers" };
            format!("__________Using {} distcc {noun} in pump mode", self.total)
        } else {
            format!(
                "__________Using {} distcc servers, of which only {} support(s) pump mode",
                self.total, self.pump
            )
        }
    }
}

/// True if some host configuration exists, by pump's (looser than the client's) rule:
/// a non-empty `DISTCC_HOSTS`, or a regular file at `$DISTCC_DIR/hosts`,
/// `$HOME/.distcc/hosts` or `<sysconfdir>/distcc/hosts`.
pub fn configured(env: &Env, sysconfdir: &Path) -> bool {
    if env.non_empty(env::DISTCC_HOSTS).is_some() {
        return true;
    }
    let mut files: Vec<PathBuf> = Vec::new();
    if let Some(d) = env.non_empty(env::DISTCC_DIR) {
        files.push(Path::new(d).join("hosts"));
    }
    if let Some(h) = env.home() {
        files.push(h.join(".distcc/hosts"));
    }
    files.push(sysconfdir.join("distcc/hosts"));
    files.iter().any(|f| f.is_file())
}

/// The message for [`configured`] being false.
pub fn not_configured_message(argv0: &str, sysconfdir: &Path) -> String {
    format!(
        "{argv0}: expected environment variables \"DISTCC_HOSTS\" or \"DISTCC_POTENTIAL_HOSTS\" to be set, or to find a distcc hosts file in \"$DISTCC_DIR/hosts\", \"$HOME/.distcc/hosts\", or \"{}/distcc/hosts\".",
        sysconfdir.display()
    )
}

/// The hosts of lsdistcc's output, one per line, reduced to the host spec itself.
pub fn live_hosts(lsdistcc_stdout: &str) -> Vec<String> {
    lsdistcc_stdout
        .lines()
        .filter_map(|l| l.split_ascii_whitespace().next())
        .filter(|h| !h.split(',').any(|o| o == "down"))
        .map(|h| {
            let mut host = h;
            while let Some(stripped) = host
                .strip_suffix(",lzo")
                .or_else(|| host.strip_suffix(",cpp"))
            {
                host = stripped;
            }
            host.to_owned()
        })
        .collect()
}

/// `DISTCC_HOSTS` for the probe path: `--randomize` then each host with its suffix, on
/// one line.
pub fn probed_hosts_value(hosts: &[String], include_server_up: bool) -> String {
    let suffix = if include_server_up {
        ",cpp,lzo"
    } else {
        ",lzo"
    };
    let mut v = String::from("--randomize");
    for h in hosts {
        v.push(' ');
        v.push_str(h);
        v.push_str(suffix);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_counts_and_messages() {
        let cases = [
            (
                "a,cpp,lzo\n",
                1,
                1,
                "__________Using 1 distcc server in pump mode",
            ),
            (
                "a,cpp,lzo\nb,lzo,cpp\n",
                2,
                2,
                "__________Using 2 distcc servers in pump mode",
            ),
            (
                "a,cpp,lzo\nb\nlocalhost/2,cpp,lzo\n",
                3,
                2,
                "__________Using 3 distcc servers, of which only 2 support(s) pump mode",
            ),
            (
                "a\n",
                1,
                0,
                "__________Using 1 distcc servers, of which only 0 support(s) pump mode",
            ),
            ("", 0, 0, "__________Using 0 distcc servers in pump mode"),
        ];
        for (out, total, pump, msg) in cases {
            let c = StaticHosts::count(out);
            assert_eq!((c.total, c.pump), (total, pump), "{out:?}");
            assert_eq!(c.message(), msg);
        }
    }

    #[test]
    fn lsdistcc_lines_become_hosts() {
        let out = "127.0.0.1:3633\nhostb,lzo,cpp\nhostc 12\nhostd,down\nhoste,lzo,down 3\n\n";
        assert_eq!(live_hosts(out), ["127.0.0.1:3633", "hostb", "hostc"]);
        assert_eq!(
            probed_hosts_value(&live_hosts(out), true),
            "--randomize 127.0.0.1:3633,cpp,lzo hostb,cpp,lzo hostc,cpp,lzo"
        );
        assert_eq!(
            probed_hosts_value(&["a".into()], false),
            "--randomize a,lzo"
        );
        assert_eq!(probed_hosts_value(&[], true), "--randomize");
    }

    #[test]
    fn configuration_lookup() {
        let t = tempfile::tempdir().unwrap();
        let sys = t.path().join("etc");
        let env = Env::from_pairs([(env::HOME, t.path().join("home"))]);
        assert!(!configured(&env, &sys));
        assert!(configured(&env.clone().with(env::DISTCC_HOSTS, "a"), &sys));
        assert!(!configured(&env.clone().with(env::DISTCC_HOSTS, ""), &sys));
        std::fs::create_dir_all(sys.join("distcc")).unwrap();
        std::fs::write(sys.join("distcc/hosts"), "a\n").unwrap();
        assert!(configured(&env, &sys));
        assert_eq!(
            not_configured_message("pump", Path::new("/etc")),
            "pump: expected environment variables \"DISTCC_HOSTS\" or \"DISTCC_POTENTIAL_HOSTS\" to be set, or to find a distcc hosts file in \"$DISTCC_DIR/hosts\", \"$HOME/.distcc/hosts\", or \"/etc/distcc/hosts\"."
        );
    }
}
