//! The socket server against hostile and concurrent clients, in process: garbage,
//! truncated and oversized requests, clients that vanish, 200 clients at once, a peer
//! with another uid. After each, the server must still answer a good request.
//!
//! The launcher's own life cycle (fork, pid file, signals) is tested in
//! `include-server-launcher/tests/`.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use common::wire::{self, tags, ArgvLimits};
use include_server::analysis::AnalyzerConfig;
use include_server::client_root::ClientTmp;
use include_server::server::{Options, Server, ServerConfig};

/// A server serving on a thread, with its own socket directory, client-root base and a
/// small project to compile.
struct Running {
    server: Arc<Server>,
    stop: UnixStream,
    thread: Option<JoinHandle<std::io::Result<usize>>>,
    dir: tempfile::TempDir,
    base: tempfile::TempDir,
}

impl Running {
    fn start() -> Running {
        let dir = tempfile::tempdir().unwrap();
        // In /tmp whatever TMPDIR says: a client-root base is at most two levels deep.
        let base = tempfile::tempdir_in("/tmp").unwrap();
        std::fs::write(dir.path().join("x.c"), "#include \"x.h\"\nint x;\n").unwrap();
        std::fs::write(dir.path().join("x.h"), "#define X 1\n").unwrap();
        let config = ServerConfig {
            socket: dir.path().join("socket"),
            client_tmp: ClientTmp::from_env(Some(base.path().as_os_str())).unwrap(),
            analyzer: AnalyzerConfig {
                probe_path: Some("/usr/bin:/bin".into()),
                ..AnalyzerConfig::default()
            },
            options: Options {
                debug: 0,
                io_timeout: std::time::Duration::from_secs(60),
                ..Options::default()
            },
        };
        let server = Arc::new(Server::start(config).unwrap());
        let (stop, stop_rx) = UnixStream::pair().unwrap();
        let s = server.clone();
        let thread = std::thread::spawn(move || s.serve(&[stop_rx.as_fd()]));
        Running {
            server,
            stop,
            thread: Some(thread),
            dir,
            base,
        }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("socket")
    }

    fn connect(&self) -> UnixStream {
        UnixStream::connect(self.socket()).unwrap()
    }

    /// Sends raw bytes, half-closes, and returns everything the server sent back.
    fn exchange(&self, request: &[u8]) -> Vec<u8> {
        let mut s = self.connect();
        // The server may answer and close before reading everything we send.
        let _ = s.write_all(request);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        out
    }

    /// A well-formed request for `gcc -c x.c -o x.o` in the project directory.
    fn good_request(&self) -> Vec<u8> {
        let cwd = std::fs::canonicalize(self.dir.path()).unwrap();
        let mut req = Vec::new();
        wire::write_bytes(&mut req, tags::CDIR, cwd.as_os_str().as_encoded_bytes()).unwrap();
        wire::write_argv(&mut req, &["gcc", "-c", "x.c", "-o", "x.o"]).unwrap();
        req
    }

    /// Sends a good request and checks the reply is a well-formed, non-empty list
    /// whose every path exists under the current client root.
    fn check_alive(&self) -> Vec<PathBuf> {
        let before = self.server.stats().requests;
        let reply = self.exchange(&self.good_request());
        let paths = parse_reply(&reply);
        assert!(
            paths.iter().any(|p| p.ends_with("x.h.lzo")),
            "x.h is not in the reply {paths:?}"
        );
        let root = self.server.client_root();
        for p in &paths {
            assert!(p.starts_with(&root), "{p:?} not under {root:?}");
            assert!(std::fs::symlink_metadata(p).is_ok(), "{p:?} does not exist");
        }
        // Other connections may still be counted concurrently.
        assert!(self.server.stats().requests > before);
        paths
    }

    fn stop(mut self) -> (tempfile::TempDir, tempfile::TempDir) {
        self.stop.write_all(b"x").unwrap();
        let which = self.thread.take().unwrap().join().unwrap().unwrap();
        assert_eq!(which, 0);
        self.server.shutdown().unwrap();
        (self.dir, self.base)
    }
}

/// The paths of a complete reply; panics on anything malformed.
fn parse_reply(bytes: &[u8]) -> Vec<PathBuf> {
    let mut r = bytes;
    let argv = wire::read_argv(&mut r, ArgvLimits::default())
        .unwrap_or_else(|e| panic!("bad reply {:?}: {e}", String::from_utf8_lossy(bytes)));
    assert!(r.is_empty(), "trailing bytes after the reply");
    argv.into_iter()
        .map(|a| PathBuf::from(OsString::from_vec(a)))
        .collect()
}

const EMPTY: &[u8] = b"ARGC00000000";

#[test]
fn bad_requests_fail_alone() {
    let srv = Running::start();
    let cases: &[(&str, &[u8])] = &[
        ("garbage", b"XXXX00000003abc"),
        ("empty", b""),
        ("truncated header", b"CDIR0000"),
        ("truncated cwd", b"CDIR00000010/tm"),
        ("bad hex", b"CDIR0000000g/"),
        ("relative cwd", b"CDIR00000003tmpARGC00000000"),
        ("missing CDIR", b"ARGC00000001ARGV00000003gcc"),
        ("oversized argc", b"CDIR00000001/ARGCffffffff"),
        ("oversized argv", b"CDIR00000001/ARGC00000001ARGVffffffff"),
        ("oversized cwd", b"CDIRffffffff/"),
        (
            "truncated argv",
            b"CDIR00000001/ARGC00000002ARGV00000003gcc",
        ),
        ("empty argv", b"CDIR00000001/ARGC00000000"),
        (
            "empty argument",
            b"CDIR00000001/ARGC00000002ARGV00000003gccARGV00000000",
        ),
        (
            "non-utf8",
            b"CDIR00000001/ARGC00000002ARGV00000003gccARGV00000002\xff\xfe",
        ),
    ];
    for (what, request) in cases {
        let reply = srv.exchange(request);
        assert_eq!(
            reply,
            EMPTY,
            "{what}: {:?}",
            String::from_utf8_lossy(&reply)
        );
        srv.check_alive();
    }
    let stats = srv.server.stats();
    assert_eq!(stats.fallback_reasons["bad_request"], 10, "{stats:?}");
    // The connection that sent nothing (a readiness probe) is not counted.
    assert!(
        !stats.fallback_reasons.contains_key("no_request"),
        "{stats:?}"
    );
    srv.stop();
}

/// A client that keeps its side open and reads to the end. With `pieces`, it writes the
/// request one wire token at a time, as the distcc client does (a 12-byte header, then
/// its value), so the server may find any part of it.
fn ask_and_read_to_end(srv: &Running, request: &[u8], pieces: bool) -> std::io::Result<Vec<u8>> {
    let mut s = srv.connect();
    if pieces {
        let mut rest = request;
        while !rest.is_empty() {
            let (header, after) = rest.split_at(12);
            s.write_all(header)?;
            // An ARGC header's value is the count that follows, not bytes.
            let len = match &header[..4] {
                b"ARGC" => 0,
                _ => usize::from_str_radix(std::str::from_utf8(&header[4..]).unwrap(), 16).unwrap(),
            };
            let (value, after) = after.split_at(len);
            if !value.is_empty() {
                s.write_all(value)?;
            }
            rest = after;
        }
    } else {
        s.write_all(request)?;
    }
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(out)
}

#[test]
fn requests_end_in_an_orderly_close_whatever_their_size() {
    let srv = Running::start();
    // The server reads a request that has wholly arrived by peeking, and takes it off
    // the socket after the reply; the rest of one that arrives in pieces, or is larger
    // than its 8 KiB read buffer, is read the usual way. Each way the client reads its
    // reply and then an orderly end, not a reset (what closing a socket with unread
    // bytes gives the peer). The huge request written in pieces (1,000 writes) is more
    // than the client's send buffer holds unread: a server that held it would stop its
    // writer.
    let cwd = std::fs::canonicalize(srv.dir.path()).unwrap();
    let with_defines = |n: usize| {
        let mut argv: Vec<String> = ["gcc", "-c", "x.c", "-o", "x.o"]
            .iter()
            .map(|a| a.to_string())
            .collect();
        argv.extend((0..n).map(|i| format!("-DLONG_{i}={}", "v".repeat(200))));
        let mut req = Vec::new();
        wire::write_bytes(&mut req, tags::CDIR, cwd.as_os_str().as_encoded_bytes()).unwrap();
        wire::write_argv(&mut req, &argv).unwrap();
        req
    };
    let (large, huge) = (with_defines(100), with_defines(500));
    assert!(large.len() > 16 << 10, "{} bytes", large.len());
    assert!(huge.len() > 96 << 10, "{} bytes", huge.len());
    for (what, request) in [
        ("small", srv.good_request()),
        ("large", large),
        ("huge", huge),
    ] {
        for pieces in [false, true] {
            for _ in 0..10 {
                let reply = ask_and_read_to_end(&srv, &request, pieces)
                    .unwrap_or_else(|e| panic!("{what} request, pieces {pieces}: {e}"));
                let paths = parse_reply(&reply);
                assert!(
                    paths.iter().any(|p| p.ends_with("x.h.lzo")),
                    "{what} request, pieces {pieces}: x.h is not in the reply {paths:?}"
                );
            }
        }
    }
    // A bad request gets the empty list, with the same orderly end.
    let reply = ask_and_read_to_end(&srv, b"CDIR00000003tmpARGC00000000", false).unwrap();
    assert_eq!(reply, EMPTY);
    assert_eq!(srv.server.stats().fallback_reasons["bad_request"], 1);
    srv.check_alive();
    srv.stop();
}

#[test]
fn clients_that_vanish_do_not_matter() {
    let srv = Running::start();
    let good = srv.good_request();
    // Connect and leave at once; send half a request and leave; send a whole request
    // and leave without reading the reply.
    drop(srv.connect());
    let mut s = srv.connect();
    s.write_all(&good[..good.len() / 2]).unwrap();
    drop(s);
    for _ in 0..20 {
        let mut s = srv.connect();
        s.write_all(&good).unwrap();
        drop(s);
    }
    srv.check_alive();
    srv.stop();
}

#[test]
fn silent_clients_do_not_delay_others() {
    let srv = Running::start();
    // More silent clients than the workers started up front; each holds a worker until
    // the I/O timeout (60 s here), but new workers answer the others at once.
    let silent: Vec<UnixStream> = (0..40).map(|_| srv.connect()).collect();
    let started = std::time::Instant::now();
    for _ in 0..5 {
        srv.check_alive();
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "good requests waited {:?} behind silent clients",
        started.elapsed()
    );
    drop(silent);
    srv.stop();
}

#[test]
fn client_gone_in_the_middle_of_a_long_reply() {
    let srv = Running::start();
    // 3000 headers with long names make a reply far larger than the socket buffer.
    let hdrs = srv.dir.path().join("many");
    std::fs::create_dir(&hdrs).unwrap();
    let mut src = String::new();
    for i in 0..3000 {
        let name = format!("header_with_a_rather_long_name_to_make_the_reply_big_{i:04}.h");
        std::fs::write(hdrs.join(&name), "").unwrap();
        src.push_str(&format!("#include \"many/{name}\"\n"));
    }
    std::fs::write(srv.dir.path().join("big.c"), src).unwrap();
    let cwd = std::fs::canonicalize(srv.dir.path()).unwrap();
    let mut req = Vec::new();
    wire::write_bytes(&mut req, tags::CDIR, cwd.as_os_str().as_encoded_bytes()).unwrap();
    wire::write_argv(&mut req, &["gcc", "-c", "big.c", "-o", "big.o"]).unwrap();

    // A full read first: the reply is big.
    let mut s = srv.connect();
    s.write_all(&req).unwrap();
    let mut whole = Vec::new();
    s.read_to_end(&mut whole).unwrap();
    assert!(parse_reply(&whole).len() > 3000);
    assert!(whole.len() > 400_000, "{} bytes", whole.len());

    // Then a client that reads a little and leaves.
    let mut s = srv.connect();
    s.write_all(&req).unwrap();
    let mut some = [0u8; 100];
    s.read_exact(&mut some).unwrap();
    drop(s);
    srv.check_alive();
    srv.stop();
}

#[test]
fn two_hundred_concurrent_clients_are_all_answered() {
    let srv = Running::start();
    let good = srv.good_request();
    let socket = srv.socket();
    let handles: Vec<_> = (0..200)
        .map(|_| {
            let good = good.clone();
            let socket = socket.clone();
            std::thread::spawn(move || {
                let mut s = UnixStream::connect(&socket).unwrap();
                s.write_all(&good).unwrap();
                let mut reply = Vec::new();
                s.read_to_end(&mut reply).unwrap();
                parse_reply(&reply)
            })
        })
        .collect();
    let replies: Vec<Vec<PathBuf>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    // The same request gets the same answer however many run at once.
    assert!(!replies[0].is_empty());
    assert!(replies.windows(2).all(|w| w[0] == w[1]));
    let stats = srv.server.stats();
    assert_eq!(stats.requests, 200);
    assert_eq!(stats.served, 200, "{stats:?}");
    srv.check_alive();
    srv.stop();
}

#[test]
fn concurrent_different_requests_get_complete_exact_files() {
    let srv = Running::start();
    let cwd = std::fs::canonicalize(srv.dir.path()).unwrap();
    // 20 sources sharing two large headers, each with its own header too.
    std::fs::create_dir(cwd.join("common")).unwrap();
    let big: String = (0..20_000).map(|i| format!("int v{i} = {i};\n")).collect();
    std::fs::write(cwd.join("common/big.h"), &big).unwrap();
    std::fs::write(cwd.join("common/bytes.h"), b"/* caf\xe9 \xff */\n").unwrap();
    for i in 0..20 {
        std::fs::write(
            cwd.join(format!("s{i}.c")),
            format!(
                "#include \"common/big.h\"\n#include \"common/bytes.h\"\n#include \"own{i}.h\"\n"
            ),
        )
        .unwrap();
        std::fs::write(cwd.join(format!("own{i}.h")), format!("#define OWN {i}\n")).unwrap();
    }
    let root = srv.server.client_root();
    let handles: Vec<_> = (0..100)
        .map(|k| {
            let socket = srv.socket();
            let cwd = cwd.clone();
            let root = root.clone();
            std::thread::spawn(move || {
                let i = k % 20;
                let mut req = Vec::new();
                wire::write_bytes(&mut req, tags::CDIR, cwd.as_os_str().as_encoded_bytes())
                    .unwrap();
                let src = format!("s{i}.c");
                let obj = format!("s{i}.o");
                wire::write_argv(&mut req, &["gcc", "-c", &src, "-o", &obj]).unwrap();
                let mut s = UnixStream::connect(&socket).unwrap();
                s.write_all(&req).unwrap();
                let mut reply = Vec::new();
                s.read_to_end(&mut reply).unwrap();
                let paths = parse_reply(&reply);
                let files: Vec<&PathBuf> = paths
                    .iter()
                    .filter(|p| p.extension().is_some_and(|e| e == "lzo"))
                    .collect();
                assert_eq!(files.len(), 4, "{paths:?}");
                // Every listed file is complete and decompresses to the exact bytes.
                for f in files {
                    let original =
                        Path::new("/").join(f.strip_prefix(&root).unwrap().with_extension(""));
                    let want = std::fs::read(&original).unwrap();
                    let packed = std::fs::read(f).unwrap();
                    let mut out = vec![0u8; want.len()];
                    lzo1x::decompress(&packed, &mut out).unwrap_or_else(|e| panic!("{f:?}: {e:?}"));
                    assert_eq!(out, want, "{f:?}");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let stats = srv.server.stats();
    assert_eq!(stats.served, 100, "{stats:?}");
    // Each distinct file was compressed once: 20 sources, 20 own headers, 2 common.
    assert_eq!(stats.files_compressed, 42, "{stats:?}");
    srv.stop();
}

#[test]
fn socket_is_private_and_other_uids_are_refused() {
    use std::os::unix::fs::MetadataExt;
    let srv = Running::start();
    let mode = std::fs::metadata(srv.socket()).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let root_dir = srv.server.client_root();
    let mode = std::fs::metadata(&root_dir).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o700);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // Open the way for uid 65534, then connect as that uid: the kernel's peer
        // credentials must make the server refuse it.
        std::fs::set_permissions(srv.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(srv.socket(), std::fs::Permissions::from_mode(0o666)).unwrap();
        let script = "import socket,sys\n\
            s=socket.socket(socket.AF_UNIX)\n\
            s.connect(sys.argv[1])\n\
            d=b''\n\
            try:\n  s.sendall(bytes.fromhex(sys.argv[2]))\n  \
            while True:\n    b=s.recv(4096)\n    if not b: break\n    d+=b\n\
            except OSError: pass\n\
            print(len(d))\n";
        let hex: String = srv
            .good_request()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let out = std::process::Command::new("python3")
            .args(["-c", script])
            .arg(srv.socket())
            .arg(hex)
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0", "{out:?}");
        assert_eq!(srv.server.stats().fallback_reasons["peer_uid"], 1);
    }
    srv.check_alive();
    srv.stop();
}

#[test]
fn shutdown_removes_roots_and_socket_and_writes_stats() {
    let srv = Running::start();
    srv.check_alive();
    let socket = srv.socket();
    let (dir, base) = srv.stop();
    assert!(!socket.exists());
    assert_eq!(std::fs::read_dir(base.path()).unwrap().count(), 0);
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("stats.json")).unwrap()).unwrap();
    assert_eq!(stats["requests"], 1);
    assert_eq!(stats["generation"], 1);
}

#[test]
fn unusable_socket_path_fails_to_start_and_leaves_nothing() {
    let base = tempfile::tempdir_in("/tmp").unwrap();
    for socket in [
        PathBuf::from("/nonexistent-dir/socket"),
        Path::new("/tmp").join("x".repeat(120)),
    ] {
        let config = ServerConfig {
            socket: socket.clone(),
            client_tmp: ClientTmp::from_env(Some(base.path().as_os_str())).unwrap(),
            analyzer: AnalyzerConfig::default(),
            options: Options::default(),
        };
        let err = Server::start(config).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("cannot listen on '{}'", socket.display())),
            "{err}"
        );
        assert_eq!(std::fs::read_dir(base.path()).unwrap().count(), 0);
    }
}
