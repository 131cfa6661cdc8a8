//! Probing one resolved host (spec B.4, B.5): a non-blocking TCP connect, then optionally
//! a canned compile request whose reply must be `DONE<P>`, `STAT00000000` and end of file.
//!
//! A [`Probe`] is a small state machine over one non-blocking socket; the scan's `poll`
//! loop drives it ([`Probe::events`], [`Probe::ready`]) and ends it at its deadline
//! ([`Probe::expire`]): the connect timeout while connecting, then the compile timeout
//! counted from the moment the request is sent. A peer that sends garbage, closes early or
//! stays silent makes the host down with a [`DownReason`] saying what was received; nothing
//! ever blocks.
//!
//! The request bytes are exactly distcc 3.4's (captured from the real binary): argv
//! `COMPILER -c hello.c -o hello.o`, the 20-byte source `int foo(){return 0;}`, sent raw
//! with protocol 1 and as a fixed 24-byte LZO1X-1 block with protocols 2 and 3. The whole
//! request goes out in one `write`; a short write means down, as in the original.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::time::{Duration, Instant};

use common::wire::{tags, write_argv, write_bytes, write_int, Token, HEADER_LEN};

use crate::cli::Protocol;

/// The source text of the compile probe.
pub const PROBE_SOURCE: &[u8] = b"int foo(){return 0;}";

/// [`PROBE_SOURCE`] as LZO1X-1 compresses it, byte for byte what distcc 3.4 sends: the
/// first-literal-run opcode for 20 bytes (`17 + 20 = 0x25`), the 20 bytes, and the
/// end-of-stream marker `0x11 0x00 0x00`.
pub const PROBE_SOURCE_LZO: [u8; 24] = [
    0x25, b'i', b'n', b't', b' ', b'f', b'o', b'o', b'(', b')', b'{', b'r', b'e', b't', b'u', b'r',
    b'n', b' ', b'0', b';', b'}', 0x11, 0x00, 0x00,
];

/// The compile request distcc 3.4's lsdistcc sends for `compiler` and `protocol`.
pub fn compile_request(compiler: &[u8], protocol: Protocol) -> Vec<u8> {
    let argv: [&[u8]; 5] = [compiler, b"-c", b"hello.c", b"-o", b"hello.o"];
    let mut out = Vec::new();
    let w = &mut out;
    // Writing into a Vec cannot fail; the results are unwrapped once at the end.
    let result = (|| -> io::Result<()> {
        write_int(w, tags::DIST, protocol.number())?;
        match protocol {
            Protocol::P1 => {
                write_argv(w, &argv)?;
                write_bytes(w, tags::DOTI, PROBE_SOURCE)
            }
            Protocol::P2 => {
                write_argv(w, &argv)?;
                write_bytes(w, tags::DOTI, &PROBE_SOURCE_LZO)
            }
            Protocol::P3 => {
                write_bytes(w, tags::CDIR, b"/")?;
                write_argv(w, &argv)?;
                write_int(w, tags::NFIL, 1)?;
                write_bytes(w, tags::NAME, b"/hello.c")?;
                write_bytes(w, tags::FILE, &PROBE_SOURCE_LZO)
            }
        }
    })();
    result.expect("writing to a Vec cannot fail");
    out
}

/// What to do to one host.
#[derive(Debug, Clone)]
pub struct ProbeSpec {
    /// TCP port.
    pub port: u16,
    /// Connect timeout; `None` skips the connect and counts the host as up.
    pub connect_timeout: Option<Duration>,
    /// The compile request and the reply's deadline, if the compile probe runs.
    pub compile: Option<CompileProbe>,
}

/// The compile probe's request and limits.
#[derive(Debug, Clone)]
pub struct CompileProbe {
    /// The bytes sent (see [`compile_request`]).
    pub request: Vec<u8>,
    /// The protocol number expected in `DONE`.
    pub protocol: u32,
    /// How long the reply may take, counted from sending.
    pub timeout: Duration,
}

/// How one probe ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The host answers (connect succeeded, and the compile probe if any).
    Up,
    /// The host is down, and why.
    Down(DownReason),
}

/// Why a host counts as down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    /// The connect failed at once or when it completed (errno and its text).
    ConnectFailed {
        /// The OS error number, if there was one.
        errno: Option<i32>,
        /// The error's text.
        message: String,
    },
    /// Nothing answered the connect within the timeout.
    ConnectTimedOut(Duration),
    /// The request could not be sent in one write.
    SendFailed(String),
    /// The reply did not complete within the compile timeout.
    CompileTimedOut {
        /// The timeout.
        after: Duration,
        /// What had arrived by then.
        received: Vec<u8>,
    },
    /// The server closed before sending both reply headers.
    PrematureEof {
        /// What had arrived.
        received: Vec<u8>,
    },
    /// The first reply header is not `DONE` with the probe's protocol.
    WrongDone {
        /// The protocol expected.
        expected: u32,
        /// The 12 header bytes received.
        header: Vec<u8>,
    },
    /// The second reply header is not `STAT00000000`.
    WrongStat {
        /// The 12 header bytes received.
        header: Vec<u8>,
    },
    /// Reading the reply failed.
    ReadFailed(String),
}

impl fmt::Display for DownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownReason::ConnectFailed {
                errno: Some(n),
                message,
            } => write!(f, "connect failed with errno {n} = {message}"),
            DownReason::ConnectFailed {
                errno: None,
                message,
            } => write!(f, "connect failed: {message}"),
            DownReason::ConnectTimedOut(t) => {
                write!(f, "timed out while connecting ({} ms)", t.as_millis())
            }
            DownReason::SendFailed(m) => write!(f, "sending the compile request failed: {m}"),
            DownReason::CompileTimedOut { after, received } => write!(
                f,
                "timed out while compiling ({} ms); received {}",
                after.as_millis(),
                shown(received)
            ),
            DownReason::PrematureEof { received } => write!(
                f,
                "bad reply to the compile probe: connection closed after {}",
                shown(received)
            ),
            DownReason::WrongDone { expected, header } => write!(
                f,
                "bad reply to the compile probe: expected DONE{expected:08x}, got {}",
                shown(header)
            ),
            DownReason::WrongStat { header } => write!(
                f,
                "bad reply to the compile probe: expected STAT00000000, got {}",
                shown(header)
            ),
            DownReason::ReadFailed(m) => write!(f, "reading the compile reply failed: {m}"),
        }
    }
}

/// An I/O error's text without std's ` (os error N)` tail (the errno is shown apart).
pub fn os_message(e: &io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Bytes as an escaped quoted string, or "nothing".
fn shown(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "nothing".into();
    }
    format!("\"{}\"", bytes.escape_ascii())
}

/// The result of probing one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    /// Up or down.
    pub outcome: Outcome,
    /// From the start of the connect to the end of the probe; zero with no connect.
    pub latency: Duration,
}

/// One host's probe in progress: a non-blocking socket driven by the caller's `poll`
/// loop ([`Probe::events`] says what to wait for, [`Probe::deadline`] until when).
#[derive(Debug)]
pub struct Probe {
    stream: TcpStream,
    phase: Phase,
    start: Instant,
    deadline: Instant,
}

#[derive(Debug)]
enum Phase {
    Connecting,
    Reading { received: Vec<u8>, headers_ok: bool },
}

/// What a probe did with a readiness event.
#[derive(Debug)]
pub enum Step {
    /// Still waiting.
    Pending,
    /// Finished.
    Done(ProbeResult),
}

impl Probe {
    /// Starts probing `addr`: begins a non-blocking connect. Returns the result at once
    /// when there is nothing to wait for (no connect with `-c0`, or an immediate error).
    pub fn start(addr: Ipv4Addr, spec: &ProbeSpec) -> Result<Probe, ProbeResult> {
        let Some(timeout) = spec.connect_timeout else {
            return Err(ProbeResult {
                outcome: Outcome::Up,
                latency: Duration::ZERO,
            });
        };
        let start = Instant::now();
        let down = |e: io::Error| ProbeResult {
            outcome: Outcome::Down(DownReason::ConnectFailed {
                errno: e.raw_os_error(),
                message: os_message(&e),
            }),
            latency: start.elapsed(),
        };
        let stream = connect_nonblocking(addr, spec.port).map_err(down)?;
        Ok(Probe {
            stream,
            phase: Phase::Connecting,
            start,
            deadline: start + timeout,
        })
    }

    /// The socket to poll.
    pub fn fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }

    /// The `poll` events to wait for: writable while connecting, readable afterwards.
    pub fn events(&self) -> i16 {
        match self.phase {
            Phase::Connecting => libc::POLLOUT,
            Phase::Reading { .. } => libc::POLLIN,
        }
    }

    /// When the current phase times out.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Handles a readiness event (any `revents`, including errors and hang-ups).
    pub fn ready(&mut self, spec: &ProbeSpec) -> Step {
        let outcome = match &mut self.phase {
            Phase::Connecting => self.connected(spec),
            Phase::Reading {
                received,
                headers_ok,
            } => read_reply(&mut self.stream, received, headers_ok, spec),
        };
        match outcome {
            None => Step::Pending,
            Some(outcome) => Step::Done(ProbeResult {
                outcome,
                latency: self.start.elapsed(),
            }),
        }
    }

    /// The result when the deadline has passed without an answer.
    pub fn expire(self, spec: &ProbeSpec) -> ProbeResult {
        let reason = match self.phase {
            Phase::Connecting => {
                DownReason::ConnectTimedOut(spec.connect_timeout.unwrap_or_default())
            }
            Phase::Reading { received, .. } => DownReason::CompileTimedOut {
                after: spec.compile.as_ref().map(|c| c.timeout).unwrap_or_default(),
                received,
            },
        };
        ProbeResult {
            outcome: Outcome::Down(reason),
            latency: self.start.elapsed(),
        }
    }

    /// The connect finished: check it, then send the compile request if there is one.
    fn connected(&mut self, spec: &ProbeSpec) -> Option<Outcome> {
        match self.stream.take_error() {
            Ok(None) => {}
            Ok(Some(e)) | Err(e) => {
                return Some(Outcome::Down(DownReason::ConnectFailed {
                    errno: e.raw_os_error(),
                    message: os_message(&e),
                }))
            }
        }
        let Some(compile) = &spec.compile else {
            return Some(Outcome::Up);
        };
        // One write, as the original; anything short of the whole request is down.
        match self.stream.write(&compile.request) {
            Ok(n) if n == compile.request.len() => {}
            Ok(n) => {
                return Some(Outcome::Down(DownReason::SendFailed(format!(
                    "sent {n} of {} bytes",
                    compile.request.len()
                ))))
            }
            Err(e) => return Some(Outcome::Down(DownReason::SendFailed(os_message(&e)))),
        }
        self.phase = Phase::Reading {
            received: Vec::new(),
            headers_ok: false,
        };
        self.deadline = Instant::now() + compile.timeout;
        None
    }
}

/// A non-blocking IPv4 TCP socket with its connect started.
fn connect_nonblocking(addr: Ipv4Addr, port: u16) -> io::Result<TcpStream> {
    // SAFETY: socket(2) has no memory preconditions; the fd is owned by the TcpStream at
    // once, so it is closed on every path.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh socket nobody else owns.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    // SAFETY: an all-zero sockaddr_in is valid; the fields are set below.
    let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    sa.sin_family = libc::AF_INET as libc::sa_family_t;
    sa.sin_port = port.to_be();
    sa.sin_addr.s_addr = u32::from(addr).to_be();
    // SAFETY: sa is a valid sockaddr_in of the length passed.
    let rc = unsafe {
        libc::connect(
            fd,
            (&sa as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(e);
        }
    }
    Ok(stream)
}

/// Reads what is available of the reply; `Some` once the verdict is known.
fn read_reply(
    stream: &mut TcpStream,
    received: &mut Vec<u8>,
    headers_ok: &mut bool,
    spec: &ProbeSpec,
) -> Option<Outcome> {
    let protocol = spec.compile.as_ref().map_or(1, |c| c.protocol);
    let mut buf = [0u8; 1024];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // After valid headers the original ignores read errors and ends at the EOF
            // that follows a reset: the host is up.
            Err(_) if *headers_ok => return Some(Outcome::Up),
            Err(e) => return Some(Outcome::Down(DownReason::ReadFailed(os_message(&e)))),
        };
        if n == 0 {
            return Some(if *headers_ok {
                Outcome::Up
            } else {
                Outcome::Down(DownReason::PrematureEof {
                    received: std::mem::take(received),
                })
            });
        }
        if *headers_ok {
            continue; // The rest of the reply is drained and ignored.
        }
        received.extend_from_slice(&buf[..n]);
        if received.len() >= HEADER_LEN {
            if let Some(reason) = check_done(&received[..HEADER_LEN], protocol) {
                return Some(Outcome::Down(reason));
            }
        }
        if received.len() >= 2 * HEADER_LEN {
            if let Some(reason) = check_stat(&received[HEADER_LEN..2 * HEADER_LEN]) {
                return Some(Outcome::Down(reason));
            }
            *headers_ok = true;
        }
    }
}

/// Reads a header's value as the original does (`strtol(…, 16)` on the 8 characters);
/// `None` when it is not hex at all.
fn header_value(header: &[u8]) -> Option<u32> {
    let mut bytes = [0u8; HEADER_LEN];
    bytes.copy_from_slice(header);
    Token::decode(&bytes).ok().map(|t| t.value)
}

fn check_done(header: &[u8], protocol: u32) -> Option<DownReason> {
    let ok = &header[..4] == tags::DONE.as_bytes() && header_value(header) == Some(protocol);
    (!ok).then(|| DownReason::WrongDone {
        expected: protocol,
        header: header.to_vec(),
    })
}

fn check_stat(header: &[u8]) -> Option<DownReason> {
    let ok = &header[..4] == tags::STAT.as_bytes() && header_value(header) == Some(0);
    (!ok).then(|| DownReason::WrongStat {
        header: header.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// B.5's captures, byte for byte.
    const P1: &[u8] = b"DIST00000001ARGC00000005ARGV00000003gccARGV00000002-cARGV00000007hello.cARGV00000002-oARGV00000007hello.oDOTI00000014int foo(){return 0;}";

    #[test]
    fn requests_match_the_capture() {
        assert_eq!(compile_request(b"gcc", Protocol::P1), P1);

        let mut p2 = P1[..P1.len() - 32].to_vec();
        p2[11] = b'2';
        p2.extend_from_slice(b"DOTI00000018");
        p2.extend_from_slice(&PROBE_SOURCE_LZO);
        assert_eq!(compile_request(b"gcc", Protocol::P2), p2);

        let mut p3 = b"DIST00000003CDIR00000001/".to_vec();
        p3.extend_from_slice(&P1[12..P1.len() - 32]);
        p3.extend_from_slice(b"NFIL00000001NAME00000008/hello.cFILE00000018");
        p3.extend_from_slice(&PROBE_SOURCE_LZO);
        assert_eq!(compile_request(b"gcc", Protocol::P3), p3);
    }

    #[test]
    fn lzo_block_is_a_literal_run_of_the_source() {
        assert_eq!(PROBE_SOURCE_LZO[0], 17 + 20);
        assert_eq!(&PROBE_SOURCE_LZO[1..21], PROBE_SOURCE);
        assert_eq!(&PROBE_SOURCE_LZO[21..], [0x11, 0, 0]);
    }

    #[test]
    fn compiler_length_is_hex() {
        let r = compile_request(b"x86_64-linux-gnu-gcc-12", Protocol::P1);
        assert!(r.starts_with(b"DIST00000001ARGC00000005ARGV00000017x86_64-linux-gnu-gcc-12ARGV"));
    }

    #[test]
    fn reply_headers() {
        assert_eq!(check_done(b"DONE00000001", 1), None);
        assert!(check_done(b"DONE00000002", 1).is_some());
        assert!(check_done(b"DONX00000001", 1).is_some());
        assert!(check_done(b"DONEzzzzzzzz", 1).is_some());
        assert_eq!(check_stat(b"STAT00000000"), None);
        assert!(check_stat(b"STAT00000100").is_some());
        assert!(check_stat(b"SERR00000000").is_some());
    }

    #[test]
    fn reasons_name_what_was_received() {
        let r = DownReason::WrongDone {
            expected: 1,
            header: b"DONE00000002".to_vec(),
        };
        assert_eq!(
            r.to_string(),
            "bad reply to the compile probe: expected DONE00000001, got \"DONE00000002\""
        );
        let r = DownReason::PrematureEof { received: vec![] };
        assert_eq!(
            r.to_string(),
            "bad reply to the compile probe: connection closed after nothing"
        );
    }

    #[test]
    fn no_connect_means_up_at_once() {
        let spec = ProbeSpec {
            port: 1,
            connect_timeout: None,
            compile: None,
        };
        let r = Probe::start(Ipv4Addr::LOCALHOST, &spec).unwrap_err();
        assert_eq!(r.outcome, Outcome::Up);
        assert_eq!(r.latency, Duration::ZERO);
    }
}
