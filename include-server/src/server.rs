//! The socket server: accepts the distcc client's requests and answers them in parallel.
//!
//! One request per connection (spec 3): the client sends `CDIR` and its argv, the
//! server answers with the list of paths under the current client root, or
//! `ARGC00000000` when it cannot cover the compile. Every failure is that request's
//! alone: a malformed, truncated or oversized request, a peer with another uid, an
//! analysis error, an unreadable file, a client gone mid-reply. The reason is counted
//! and, with debug bit 1, printed as one `WARNING include server: ...` line.
//!
//! Threads: a pool of workers blocks in `accept` on the socket, and the worker that gets
//! a connection answers it; when no worker is left idle another is started, up to a
//! limit, so a slow or silent client never delays the others. Workers share one
//! [`Analyzer`] and the current generation's [`Mirror`]. A cache reset
//! (`--stat_reset_triggers`) starts a new generation with a new client root; requests
//! in flight finish with the generation they started with, and old roots stay until
//! exit.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, BufRead, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use common::wire::{self, tags, ArgvLimits};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{self as sock, sockopt, AddressFamily, SockFlag, SockType, UnixAddr};
use regex_lite::Regex;

use crate::analysis::{Analyzer, AnalyzerConfig, Closure};
use crate::client_root::{ClientTmp, RootError};
use crate::mirror::{Mirror, MirrorStats};
use crate::stats::Stats;
use crate::triggers::StatResetTriggers;
use crate::verify;

/// distcc's per-request CPU budget.
pub const DEFAULT_CPU_BUDGET: Duration = Duration::from_millis(3800);

/// Longest `CDIR` accepted.
const MAX_CWD: u32 = 1 << 16;
/// Most bytes read for one request.
const MAX_REQUEST: u64 = 64 << 20;
/// How long shutdown waits for requests being answered.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// The text used before a command line names its source file.
const UNKNOWN_TU: &str = "unknown translation unit";

/// Debug bit 1: warnings (`-d1`, pump's default).
pub const DEBUG_WARNINGS: u32 = 1;
/// Debug bit 2: one trace line per request.
pub const DEBUG_TRACE: u32 = 2;

/// How the server serves, from the launcher's options.
#[derive(Debug)]
pub struct Options {
    /// `-d`: debug bit mask; bit 1 prints warnings.
    pub debug: u32,
    /// `-s`: print a statistics block to stdout after each request.
    pub statistics: bool,
    /// Not `--no_force_dirs`: list and create forcing files.
    pub force_dirs: bool,
    /// `-v`: check each closure against the real preprocessor.
    pub verify: bool,
    /// `-w`: write `.d_approx` (and with `-v`, `.d_exact`) next to each object.
    pub write_include_closure: bool,
    /// `--path_observation_re`.
    pub path_observation: Option<Regex>,
    /// `--stat_reset_triggers`, already stamped.
    pub stat_reset_triggers: Option<StatResetTriggers>,
    /// CPU budget of one analysis.
    pub cpu_budget: Duration,
    /// Read and write timeout of one connection.
    pub io_timeout: Duration,
    /// Worker threads started up front: two, so that the first request's worker finds
    /// another one waiting for connections and does not start one before it answers.
    pub workers: usize,
    /// Most worker threads: more are started while all are busy (a client that sends
    /// nothing holds one until the I/O timeout), up to this many.
    pub max_workers: usize,
    /// `PATH` for the preprocessor run by `-v`.
    pub path_env: Option<OsString>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            debug: DEBUG_WARNINGS,
            statistics: false,
            force_dirs: true,
            verify: false,
            write_include_closure: false,
            path_observation: None,
            stat_reset_triggers: None,
            cpu_budget: DEFAULT_CPU_BUDGET,
            io_timeout: Duration::from_secs(60),
            workers: 2,
            max_workers: 256,
            path_env: None,
        }
    }
}

/// Everything needed to start a server.
#[derive(Debug)]
pub struct ServerConfig {
    /// The Unix socket path (`--port`).
    pub socket: PathBuf,
    /// Where client roots go.
    pub client_tmp: ClientTmp,
    /// The analysis options.
    pub analyzer: AnalyzerConfig,
    /// The serving options.
    pub options: Options,
}

/// Why a server could not start. Nothing is left behind when this is returned.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The first client root could not be created.
    #[error(transparent)]
    Root(#[from] RootError),
    /// The socket could not be created, bound or listened on.
    #[error("cannot listen on '{}': {error}", path.display())]
    Listen {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        error: io::Error,
    },
}

/// A started server: the socket accepts connections.
#[derive(Debug)]
pub struct Server {
    listener: UnixListener,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    analyzer: Analyzer,
    client_tmp: ClientTmp,
    pid: u32,
    uid: u32,
    socket: PathBuf,
    options: Options,
    triggers: Mutex<Option<StatResetTriggers>>,
    current: RwLock<Arc<Mirror>>,
    generations: Mutex<Vec<Arc<Mirror>>>,
    stats: Mutex<Stats>,
    observed: Mutex<HashSet<PathBuf>>,
    started: Instant,
    /// Requests between reading and replying, and its condition.
    busy: Mutex<usize>,
    idle: Condvar,
    /// Set by shutdown: requests still queued are answered with the empty list.
    stopping: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// How many descriptors the process's table is grown to hold before serving.
const FD_TABLE: i32 = 1024;

/// Grows the descriptor table to [`FD_TABLE`] slots (or the `RLIMIT_NOFILE` soft limit)
/// while the process has one thread. Linux grows a table shared by several threads only
/// after an RCU grace period, and the serving threads would meet that: a request that
/// opened the 65th descriptor (connections, files being read, the caches' directory
/// descriptors) waited about 12 ms in `open`. A single-threaded process grows it at once,
/// and a table never shrinks.
fn grow_fd_table() {
    use nix::fcntl::{fcntl, FcntlArg};
    use nix::sys::resource::{getrlimit, Resource};
    let soft = getrlimit(Resource::RLIMIT_NOFILE).map_or(0, |(soft, _)| soft);
    let top = i32::try_from(soft).unwrap_or(i32::MAX).min(FD_TABLE) - 1;
    if top < 64 {
        return;
    }
    let flags = nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC;
    let Ok(some) = nix::fcntl::open("/", flags, nix::sys::stat::Mode::empty()) else {
        return;
    };
    // A copy at the lowest free descriptor from `top` on: none in use is touched.
    if let Ok(fd) = fcntl(some, FcntlArg::F_DUPFD_CLOEXEC(top)) {
        let _ = nix::unistd::close(fd);
    }
    let _ = nix::unistd::close(some);
}

impl Server {
    /// Creates generation 1's root and listens on the socket (an old socket file there
    /// is replaced). On error nothing is left behind. [`Server::serve`] then removes
    /// the roots of dead servers.
    pub fn start(mut config: ServerConfig) -> Result<Server, StartError> {
        grow_fd_table();
        let pid = std::process::id();
        let listen_err = |path: &Path| {
            let path = path.to_path_buf();
            move |error: io::Error| StartError::Listen { path, error }
        };
        if fs::symlink_metadata(&config.socket).is_ok_and(|m| m.file_type().is_socket()) {
            fs::remove_file(&config.socket).map_err(listen_err(&config.socket))?;
        }
        let root = config.client_tmp.create_root(pid, 1)?;
        let listener = match listen(&config.socket) {
            Ok(l) => l,
            Err(error) => {
                let _ = crate::client_root::remove_tree(root.dir());
                return Err(StartError::Listen {
                    path: config.socket,
                    error,
                });
            }
        };
        let mirror = Arc::new(Mirror::new(root, config.options.force_dirs));
        let triggers = config.options.stat_reset_triggers.take();
        let shared = Shared {
            analyzer: Analyzer::new(config.analyzer),
            client_tmp: config.client_tmp,
            pid,
            uid: nix::unistd::getuid().as_raw(),
            socket: config.socket,
            options: config.options,
            triggers: Mutex::new(triggers),
            current: RwLock::new(mirror.clone()),
            generations: Mutex::new(vec![mirror]),
            stats: Mutex::new(Stats {
                generation: 1,
                ..Stats::default()
            }),
            observed: Mutex::new(HashSet::new()),
            started: Instant::now(),
            busy: Mutex::new(0),
            idle: Condvar::new(),
            stopping: AtomicBool::new(false),
        };
        Ok(Server {
            listener,
            shared: Arc::new(shared),
        })
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.shared.socket
    }

    /// The current generation's client root prefix.
    pub fn client_root(&self) -> PathBuf {
        self.shared.current().root().prefix().to_path_buf()
    }

    /// Serves until one of `stop` becomes readable; returns its index. Starts the
    /// worker threads; they finish the requests they hold and then exit.
    ///
    /// Idle workers block in `accept` on the socket itself: the kernel gives each
    /// connection to one of them, which answers it, so that no thread hand-off and no
    /// readiness system call sits between a client's connect and its answer. When no
    /// worker is left idle, one more is started (up to `max_workers`), so a slow request
    /// never holds up the others. To stop, the socket is shut down for reading, which
    /// makes every pending and later `accept` fail at once.
    pub fn serve(&self, stop: &[BorrowedFd<'_>]) -> io::Result<usize> {
        self.listener.set_nonblocking(false)?;
        let pool = Arc::new(Pool {
            listener: self.listener.try_clone()?,
            stopped: AtomicBool::new(false),
            idle: AtomicUsize::new(0),
            started: AtomicUsize::new(0),
        });
        for _ in 0..self.shared.options.workers.max(1) {
            spawn_worker(&self.shared, &pool)?;
        }
        // What the first request would set up on its way.
        self.shared.analyzer.warm_up();
        // Housekeeping that need not delay readiness: roots left by dead servers.
        self.shared.client_tmp.remove_dead_servers();
        let result = loop {
            let mut fds: Vec<PollFd> = stop
                .iter()
                .map(|fd| PollFd::new(*fd, PollFlags::POLLIN))
                .collect();
            match nix::poll::poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => break Err(e.into()),
            }
            if let Some(i) = fds
                .iter()
                .position(|f| f.revents().is_some_and(|r| !r.is_empty()))
            {
                break Ok(i);
            }
        };
        pool.stopped.store(true, Ordering::SeqCst);
        sock::shutdown(self.listener.as_raw_fd(), sock::Shutdown::Read)?;
        result
    }

    /// The statistics so far.
    pub fn stats(&self) -> Stats {
        self.shared.stats_snapshot()
    }

    /// Waits up to 2 s for requests being answered and for the compilers they probed to
    /// end, then removes every client root of this server, unlinks the socket and writes
    /// `<socket dir>/stats.json`. Does all three and reports the first error.
    pub fn shutdown(&self) -> io::Result<()> {
        let shared = &self.shared;
        // Requests being answered get a moment to finish, so that their files are not
        // removed under them and they are counted; queued ones are refused.
        shared.stopping.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        let mut busy = lock(&shared.busy);
        while *busy > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            busy = shared
                .idle
                .wait_timeout(busy, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        drop(busy);
        // Compilers probed for requests already answered: their probes are saved for the
        // next server when they end.
        shared.analyzer.settle(deadline);
        let mut result = Ok(());
        let mut keep = |r: io::Result<()>| {
            if let Err(e) = r {
                if result.is_ok() {
                    result = Err(e);
                }
            }
        };
        for mirror in lock(&shared.generations).iter() {
            keep(crate::client_root::remove_tree(mirror.root().dir()));
        }
        keep(shared.client_tmp.remove_roots_of(shared.pid));
        keep(
            fs::remove_file(&shared.socket)
                .or_else(|e| (e.kind() == io::ErrorKind::NotFound).then_some(()).ok_or(e)),
        );
        if let Some(dir) = shared.socket.parent() {
            keep(shared.stats_snapshot().write_json(&dir.join("stats.json")));
        }
        result
    }
}

/// A Unix stream socket at `path`, owner-only, with a large backlog.
fn listen(path: &Path) -> io::Result<UnixListener> {
    let fd: OwnedFd = sock::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let addr = UnixAddr::new(path)?;
    // On Linux the socket file takes the socket's own mode (less the umask) when it is
    // bound: made owner-only first, it is never accessible to others, even briefly.
    let owner_only = nix::sys::stat::fchmod(
        fd.as_raw_fd(),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .is_ok();
    sock::bind(fd.as_raw_fd(), &addr)?;
    let ready = if owner_only {
        Ok(())
    } else {
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
    };
    let ready = ready
        .and_then(|()| sock::listen(&fd, sock::Backlog::MAXALLOWABLE).map_err(io::Error::from));
    if let Err(e) = ready {
        let _ = fs::remove_file(path);
        return Err(e);
    }
    Ok(UnixListener::from(fd))
}

/// What the workers share: the listening socket, the stop flag and their counts.
struct Pool {
    listener: UnixListener,
    /// Set (before the socket is shut down) once serving stops.
    stopped: AtomicBool,
    /// Workers not answering a request.
    idle: AtomicUsize,
    /// Workers started.
    started: AtomicUsize,
}

fn spawn_worker(shared: &Arc<Shared>, pool: &Arc<Pool>) -> io::Result<()> {
    let n = pool.started.fetch_add(1, Ordering::Relaxed);
    let (shared, pool) = (shared.clone(), pool.clone());
    std::thread::Builder::new()
        .name(format!("include-server-{n}"))
        .spawn(move || worker(&shared, &pool))
        .map(drop)
}

fn worker(shared: &Arc<Shared>, pool: &Arc<Pool>) {
    loop {
        pool.idle.fetch_add(1, Ordering::SeqCst);
        let Some(stream) = next_connection(shared, pool) else {
            pool.idle.fetch_sub(1, Ordering::SeqCst);
            return;
        };
        // Someone must wait for connections while this one answers.
        if pool.idle.fetch_sub(1, Ordering::SeqCst) == 1
            && pool.started.load(Ordering::Relaxed) < shared.options.max_workers
        {
            if let Err(e) = spawn_worker(shared, pool) {
                shared.warn(&format!("cannot start a worker thread: {e}"));
            }
        }
        shared.handle(stream);
    }
}

/// The next connection, or `None` once serving stops.
fn next_connection(shared: &Shared, pool: &Pool) -> Option<UnixStream> {
    loop {
        if pool.stopped.load(Ordering::SeqCst) {
            return None;
        }
        match pool.listener.accept() {
            Ok((stream, _)) => return Some(stream),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // The socket was shut down: serving stops (checked above).
            Err(_) if pool.stopped.load(Ordering::SeqCst) => return None,
            Err(e) => {
                // EMFILE and friends: leave the connection in the backlog a moment.
                shared.warn(&format!("accept failed: {e}"));
                let mut none: [PollFd; 0] = [];
                let _ = nix::poll::poll(&mut none, PollTimeout::from(10u8));
            }
        }
    }
}

/// One request as read from the socket.
#[derive(Debug)]
struct Request {
    cwd: PathBuf,
    argv: Vec<Vec<u8>>,
}

/// The reason of a refused peer (another uid).
const PEER_UID: &str = "peer_uid";

/// The reason of a connection closed before it sent a byte (a readiness probe): it is
/// neither counted nor warned about.
const NO_REQUEST: &str = "no_request";

/// One connection's socket with its I/O timeout, which is armed only when a read or a
/// write would block: a request that has already arrived is read, and a reply that fits
/// in the socket buffer is sent, without the two `setsockopt` calls.
///
/// A request that has wholly arrived is read with `MSG_PEEK` and taken off the socket
/// only after the reply is sent ([`Conn::finish`]). Taking bytes off a Unix socket
/// wakes the peer's waiters, and by then the client is waiting for its reply: reading
/// the request the usual way woke it for nothing, once per request, before the reply
/// woke it again. The distcc client writes its request one token at a time, so the
/// first read often finds only part of it; the rest is then read the usual way (holding
/// unread bytes while waiting for more could stop the writer: they count against its
/// send buffer).
struct Conn<'a> {
    stream: &'a UnixStream,
    timeout: Duration,
    read_armed: bool,
    write_armed: bool,
    /// Whether the first read (the one that peeks) has been made.
    peek_tried: bool,
    /// Bytes returned by that peek and still on the socket.
    peeked: usize,
}

impl<'a> Conn<'a> {
    fn new(stream: &'a UnixStream, timeout: Duration) -> Conn<'a> {
        Conn {
            stream,
            timeout,
            read_armed: false,
            write_armed: false,
            peek_tried: false,
            peeked: 0,
        }
    }

    /// Takes the peeked bytes off the socket, using `scratch` (they were read already).
    fn drop_peeked(&mut self, scratch: &mut [u8]) -> io::Result<()> {
        while self.peeked > 0 {
            let n = self.peeked.min(scratch.len());
            match sock::recv(
                self.stream.as_raw_fd(),
                &mut scratch[..n],
                sock::MsgFlags::MSG_DONTWAIT,
            ) {
                // They are on the socket: nothing else can take them.
                Ok(0) | Err(nix::errno::Errno::EAGAIN) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "peeked bytes left the socket",
                    ))
                }
                Ok(got) => self.peeked -= got,
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// After the reply: takes a request read by peeking off the socket, so that closing
    /// it is an orderly end for the client (unread bytes would make it a reset).
    fn finish(&mut self) {
        if self.peeked > 0 {
            let mut scratch = [0u8; 4096];
            let _ = self.drop_peeked(&mut scratch);
        }
    }

    /// Sends all of `bytes`.
    fn send_all(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        let flags = sock::MsgFlags::MSG_NOSIGNAL | sock::MsgFlags::MSG_DONTWAIT;
        while !self.write_armed && !bytes.is_empty() {
            match sock::send(self.stream.as_raw_fd(), bytes, flags) {
                Ok(n) => bytes = &bytes[n..],
                Err(nix::errno::Errno::EAGAIN) => {
                    self.stream.set_write_timeout(Some(self.timeout))?;
                    self.write_armed = true;
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let mut w = self.stream;
        w.write_all(bytes)
    }
}

impl Read for Conn<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Asked for more: the peeked bytes were not the whole request.
        self.drop_peeked(buf)?;
        if !self.read_armed {
            // The first read peeks; one that finds nothing arms the timeout as any does.
            let peek = !std::mem::replace(&mut self.peek_tried, true);
            let mut flags = sock::MsgFlags::MSG_DONTWAIT;
            if peek {
                flags |= sock::MsgFlags::MSG_PEEK;
            }
            match sock::recv(self.stream.as_raw_fd(), buf, flags) {
                Err(nix::errno::Errno::EAGAIN) => {
                    self.stream.set_read_timeout(Some(self.timeout))?;
                    self.read_armed = true;
                }
                Ok(n) if peek => {
                    self.peeked = n;
                    return Ok(n);
                }
                other => return other.map_err(io::Error::from),
            }
        }
        let mut r = self.stream;
        r.read(buf)
    }
}

thread_local! {
    /// Each worker's read buffer and reply buffer, kept between its requests: an 8 KiB
    /// allocation per request costs more than its copy (it makes malloc consolidate the
    /// small blocks the previous request freed).
    static BUFFERS: std::cell::RefCell<(Vec<u8>, Vec<u8>)> =
        std::cell::RefCell::new((vec![0; 8 << 10], Vec::new()));
}

/// Reply buffers larger than this are not kept for the next request.
const KEEP_REPLY_BUFFER: usize = 256 << 10;

fn read_request(conn: &mut Conn<'_>) -> Result<Request, Fallback> {
    BUFFERS.with(|b| {
        let mut b = b.borrow_mut();
        let mut r = Buffered {
            inner: conn.take(MAX_REQUEST),
            buf: &mut b.0,
            pos: 0,
            end: 0,
        };
        if r.fill_buf().is_ok_and(|b| b.is_empty()) {
            return Err(Fallback::new(NO_REQUEST, "no request"));
        }
        read_items(&mut r).map_err(|e| Fallback::new("bad_request", format!("bad request: {e}")))
    })
}

/// A buffered reader over a buffer that outlives it.
struct Buffered<'b, R> {
    inner: R,
    buf: &'b mut [u8],
    pos: usize,
    end: usize,
}

impl<R: Read> Read for Buffered<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.end && out.len() >= self.buf.len() {
            return self.inner.read(out);
        }
        let n = {
            let have = self.fill_buf()?;
            let n = have.len().min(out.len());
            out[..n].copy_from_slice(&have[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for Buffered<'_, R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.end {
            self.end = self.inner.read(self.buf)?;
            self.pos = 0;
        }
        Ok(&self.buf[self.pos..self.end])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.end);
    }
}

fn read_items(r: &mut impl Read) -> Result<Request, String> {
    let cwd = wire::read_bytes(r, tags::CDIR, MAX_CWD).map_err(|e| e.to_string())?;
    if !cwd.starts_with(b"/") {
        return Err(format!(
            "CDIR {:?} is not an absolute path",
            String::from_utf8_lossy(&cwd)
        ));
    }
    let limits = ArgvLimits {
        max_args: 1 << 16,
        max_arg_len: 1 << 20,
    };
    let argv = wire::read_argv(r, limits).map_err(|e| e.to_string())?;
    Ok(Request {
        cwd: PathBuf::from(OsStr::from_bytes(&cwd)),
        argv,
    })
}

/// Marks a request between reading and replying, when it may write into a client
/// root; shutdown waits (a little) for these.
struct Busy<'a>(&'a Shared);

impl<'a> Busy<'a> {
    fn new(shared: &'a Shared) -> Busy<'a> {
        *lock(&shared.busy) += 1;
        Busy(shared)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        let mut busy = lock(&self.0.busy);
        *busy -= 1;
        // Only shutdown waits (it sets `stopping` before it takes the lock); a wake-up
        // nobody waits for still costs a system call.
        if self.0.stopping.load(Ordering::SeqCst) {
            self.0.idle.notify_all();
        }
    }
}

/// A request that could not be covered.
struct Fallback {
    reason: &'static str,
    text: String,
}

impl Fallback {
    fn new(reason: &'static str, text: impl Into<String>) -> Fallback {
        Fallback {
            reason,
            text: text.into(),
        }
    }
}

impl Shared {
    fn current(&self) -> Arc<Mirror> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn warn(&self, text: &str) {
        if self.options.debug & DEBUG_WARNINGS != 0 {
            eprintln!("WARNING include server: {text}");
        }
    }

    fn stats_snapshot(&self) -> Stats {
        let mut mirrors = MirrorStats::default();
        for m in lock(&self.generations).iter() {
            let s = m.stats();
            mirrors.files_compressed += s.files_compressed;
            mirrors.compression_hits += s.compression_hits;
            mirrors.bytes_read += s.bytes_read;
            mirrors.bytes_written += s.bytes_written;
        }
        let mut stats = lock(&self.stats).clone();
        stats.absorb(&self.analyzer.stats(), &mirrors);
        stats.uptime_seconds = self.started.elapsed().as_secs_f64();
        stats
    }

    fn handle(&self, stream: UnixStream) {
        let started = Instant::now();
        let mut conn = Conn::new(&stream, self.options.io_timeout);
        let mut tu = UNKNOWN_TU.to_string();
        let mut busy = None;
        let result = self.answer(&mut conn, &mut tu, &mut busy);
        let outcome = match &result {
            Ok(_) => Ok(()),
            Err(f) if f.reason == NO_REQUEST => {
                let _ = write_reply(&mut conn, &[]);
                return;
            }
            Err(f) => {
                self.warn(&format!(
                    "Preprocessing locally. Include server not covering: {} for translation unit '{tu}' ",
                    f.text
                ));
                Err(f.reason)
            }
        };
        // Counted before the client has its answer, so that statistics written at
        // shutdown include every answered request.
        lock(&self.stats).record(started.elapsed(), outcome);
        let paths = result.unwrap_or_default();
        // A stranger gets nothing, not even the empty list.
        let reply = if outcome == Err(PEER_UID) {
            Ok(())
        } else {
            write_reply(&mut conn, &paths)
        };
        conn.finish();
        if let Err(e) = reply {
            if !paths.is_empty() {
                self.warn(&format!(
                    "cannot send the reply for translation unit '{tu}': {e}"
                ));
                lock(&self.stats).reclassify_served("reply_write");
            }
        }
        drop(busy);
        if self.options.debug & DEBUG_TRACE != 0 {
            eprintln!(
                "TRACE: request for '{tu}' took {:.3}s: {}",
                started.elapsed().as_secs_f64(),
                outcome.err().unwrap_or("served")
            );
        }
        if self.options.statistics {
            let block = self.stats_snapshot().block(&tu);
            let mut out = io::stdout().lock();
            let _ = out.write_all(block.as_bytes());
            let _ = out.flush();
        }
    }

    /// The reply paths for one connection's request. `busy` is set once the request
    /// is read, for the time it writes into the client root.
    fn answer<'a>(
        &'a self,
        conn: &mut Conn<'_>,
        tu: &mut String,
        busy: &mut Option<Busy<'a>>,
    ) -> Result<Vec<Arc<Path>>, Fallback> {
        match sock::getsockopt(conn.stream, sockopt::PeerCredentials) {
            Ok(cred) if cred.uid() == self.uid => {}
            Ok(cred) => {
                return Err(Fallback::new(
                    PEER_UID,
                    format!("refusing a client with uid {}", cred.uid()),
                ));
            }
            Err(e) => {
                return Err(Fallback::new(
                    PEER_UID,
                    format!("cannot read the client's credentials: {e}"),
                ))
            }
        }
        let request = read_request(conn)?;
        *tu = translation_unit(&request.argv);
        *busy = Some(Busy::new(self));
        if self.stopping.load(Ordering::SeqCst) {
            return Err(Fallback::new(
                "shutting_down",
                "the server is shutting down",
            ));
        }
        // A bug must cost one request, not the server.
        let tu: &str = tu;
        std::panic::catch_unwind(AssertUnwindSafe(|| self.cover(&request, tu))).unwrap_or_else(
            |panic| {
                let what = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("a panic");
                Err(Fallback::new(
                    "internal_error",
                    format!("include server internal error: {what}"),
                ))
            },
        )
    }

    /// The reply paths for a request.
    fn cover(&self, request: &Request, tu: &str) -> Result<Vec<Arc<Path>>, Fallback> {
        self.check_triggers();
        let shared_mirror = self.current();
        let mirror = &*shared_mirror;
        // A first request's files are compressed aside (on an idle read-ahead helper,
        // else on another thread): from the closure of the walk with guessed
        // directories when the compiler is probed (the rest of the analysis and the
        // reply's shadow-tree walk go on meanwhile), otherwise from the closure,
        // while the reply walks the shadow tree. Both are the serial end of a first
        // request, with a core to spare. The reply waits for a file being compressed
        // aside, not for the rest.
        let mut ahead = false;
        let compress_ahead = |closure: &Closure| {
            let todo = mirror.to_compress(closure);
            if todo.len() < crate::mirror::FILES_PER_COMPRESSING_THREAD {
                return false;
            }
            let (mirror, closure) = (shared_mirror.clone(), closure.clone());
            self.analyzer
                .run_aside(crate::analysis::aside::Task::new(move || {
                    mirror.compress_ahead(&closure, &todo)
                }));
            true
        };
        let closure = self
            .analyzer
            .analyze_while(
                &request.cwd,
                &request.argv,
                self.options.cpu_budget,
                &mut |guess| ahead |= compress_ahead(guess),
            )
            .map_err(|e| Fallback::new(e.reason(), e.to_string()))?;
        if !ahead {
            compress_ahead(&closure);
        }
        self.verify(request, &closure)?;
        let reply = mirror
            .reply_for(&closure)
            .map_err(|e| Fallback::new(e.reason(), e.to_string()))?;
        if reply.paths.is_empty() {
            return Err(Fallback::new("empty_closure", "the closure is empty"));
        }
        self.observe(&closure, tu);
        Ok(reply.paths)
    }

    /// `--stat_reset_triggers`: a change starts a new generation.
    fn check_triggers(&self) {
        let mut triggers = lock(&self.triggers);
        let Some(message) = triggers.as_mut().and_then(|t| t.check()) else {
            return;
        };
        self.warn(&message);
        let mut generations = lock(&self.generations);
        let next = generations.last().map_or(1, |m| m.root().generation() + 1);
        match self.client_tmp.create_root(self.pid, next) {
            Ok(root) => {
                self.analyzer.reset();
                let mirror = Arc::new(Mirror::new(root, self.options.force_dirs));
                generations.push(mirror.clone());
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = mirror;
                lock(&self.stats).generation = next;
            }
            Err(e) => self.warn(&format!("keeping generation {}: {e}", next - 1)),
        }
    }

    /// `-v` and `-w`.
    fn verify(&self, request: &Request, closure: &Closure) -> Result<(), Fallback> {
        if !self.options.verify && !self.options.write_include_closure {
            return Ok(());
        }
        let exact = if self.options.verify {
            let deps = verify::exact_dependencies(
                &request.cwd,
                &request.argv,
                self.options.path_env.as_deref(),
            )
            .map_err(|e| Fallback::new("verify", format!("verification: {e}")))?;
            Some(deps)
        } else {
            None
        };
        if self.options.write_include_closure {
            if let Some(prefix) = verify::closure_file_prefix(&request.cwd, &request.argv) {
                let approx: Vec<PathBuf> =
                    closure.files.iter().map(|f| f.realpath.clone()).collect();
                let mut written = verify::write_list(&prefix.with_extension("d_approx"), &approx);
                if let Some(deps) = &exact {
                    written = written
                        .and_then(|()| verify::write_list(&prefix.with_extension("d_exact"), deps));
                }
                if let Err(e) = written {
                    self.warn(&format!("cannot write the include closure: {e}"));
                }
            }
        }
        if let Some(deps) = exact {
            let missing = verify::missing_from(closure, &request.cwd, &deps);
            if let Some(first) = missing.first() {
                return Err(Fallback::new(
                    "verify",
                    format!(
                        "verification: the closure misses {} dependenc{} of the preprocessor, first '{}'",
                        missing.len(),
                        if missing.len() == 1 { "y" } else { "ies" },
                        first.display()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `--path_observation_re`: report first-seen paths whose realpath matches.
    fn observe(&self, closure: &Closure, tu: &str) {
        let Some(re) = &self.options.path_observation else {
            return;
        };
        let mut observed = lock(&self.observed);
        for path in &closure.all_paths_used() {
            if !observed.insert(path.clone()) {
                continue;
            }
            let real = fs::canonicalize(path).unwrap_or_else(|_| path.clone());
            if re.is_match(&real.to_string_lossy()) {
                self.warn(&format!(
                    "For translation unit '{tu}', lookup of file '{}' resolved to '{}' whose realpath is '{}'.",
                    path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
                    path.display(),
                    real.display()
                ));
            }
        }
    }
}

fn write_reply(conn: &mut Conn<'_>, paths: &[Arc<Path>]) -> io::Result<()> {
    BUFFERS.with(|b| {
        let bytes = &mut b.borrow_mut().1;
        bytes.clear();
        wire::write_argv(bytes, paths.iter().map(|p| p.as_os_str().as_bytes()))?;
        let sent = conn.send_all(bytes);
        if bytes.capacity() > KEEP_REPLY_BUFFER {
            *bytes = Vec::new();
        }
        sent
    })
}

/// The source file of a compile command, for messages: the last argument that is not an
/// option, not an option's value, and has a source-file extension.
pub fn translation_unit(argv: &[Vec<u8>]) -> String {
    const WITH_VALUE: &[&str] = &[
        "-o",
        "-I",
        "-include",
        "-imacros",
        "-isystem",
        "-iquote",
        "-idirafter",
        "-iprefix",
        "-iwithprefix",
        "-iwithprefixbefore",
        "-isysroot",
        "--sysroot",
        "-MF",
        "-MT",
        "-MQ",
        "-x",
        "-D",
        "-U",
        "-Xclang",
        "-Xpreprocessor",
        "-Xassembler",
        "-Xlinker",
        "-target",
        "-arch",
        "-L",
        "-l",
        "-aux-info",
    ];
    const EXTENSIONS: &[&str] = &[
        "c", "cc", "cp", "cpp", "cxx", "c++", "C", "CC", "CPP", "m", "mm", "M", "i", "ii", "mi",
        "mii", "s", "S", "sx",
    ];
    let mut found = None;
    let mut skip = false;
    for arg in argv.iter().skip(1) {
        if skip {
            skip = false;
            continue;
        }
        if arg.starts_with(b"-") {
            skip = WITH_VALUE.iter().any(|o| o.as_bytes() == &arg[..]);
            continue;
        }
        let text = String::from_utf8_lossy(arg);
        let ext = text.rsplit_once('.').map(|(_, e)| e);
        if ext.is_some_and(|e| EXTENSIONS.contains(&e)) {
            found = Some(text.into_owned());
        }
    }
    found.unwrap_or_else(|| UNKNOWN_TU.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &[&str]) -> Vec<Vec<u8>> {
        s.iter().map(|a| a.as_bytes().to_vec()).collect()
    }

    #[test]
    fn translation_unit_of_commands() {
        let cases: &[(&[&str], &str)] = &[
            (&["gcc", "-c", "hello.c", "-o", "hello.o"], "hello.c"),
            (&["g++", "-o", "x.c", "-c", "src/y.cc"], "src/y.cc"),
            (&["gcc", "-include", "pre.h", "-c", "a.cpp"], "a.cpp"),
            (&["gcc", "-c"], UNKNOWN_TU),
            (&[], UNKNOWN_TU),
        ];
        for (args, want) in cases {
            assert_eq!(translation_unit(&argv(args)), *want, "{args:?}");
        }
    }
}
