//! The scan: DNS lookups with distcc 3.4's overlap, retry and gap rules (spec B.3), each
//! resolved host probed at once by the same loop (B.4, B.5), and every step reported
//! to the caller as an [`Event`].
//!
//! The scheduling rules, in the order the loop applies them:
//! 1. A lookup sent 1 to 4 times whose retry deadline (`-h`) has passed is sent again; after
//!    the 5th send it just waits. Duplicate answers are ignored.
//! 2. New first-try lookups go out in ascending index order while at most `overlap` lookups
//!    are on their first try and (lookups on tries 1-4) + (answers received) is below the
//!    scan end.
//! 3. An answer counts toward "answers received" whether it resolved or not. With `-m N`,
//!    the first *resolved* address is the reference and a later address whose top N bits
//!    differ counts as a failure (the original takes the very first answer, even a failed
//!    one, and then compares against garbage).
//! 4. When failures exceed `gap`, the scan end drops to just past the highest index ever
//!    sent: no higher index is looked up, lookups in flight still finish and are probed.
//!    This applies to host lists as well as formats.
//! 5. The scan ends when every index below the end is done, or at the global deadline.
//!
//! Lookups run on up to 6 resolver threads, started as lookups need them (the original
//! forks 6 resolver processes); each answer comes back over a channel and wakes the loop
//! through a socket pair. A numeric address (`127.0.0.5`) is answered at once in the loop,
//! in the same order and with the same answer the resolver would give. Probes are non-blocking sockets multiplexed by one `poll(2)` in
//! the caller's thread, as in the original, at most `max_probes` at a time (bounded by
//! the file descriptor limit); the others wait their turn, and their connect timeout only
//! starts when they do.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::probe::{Probe, ProbeResult, ProbeSpec, Step};
use crate::resolve::{numeric_ipv4, resolve_ipv4, ResolveError};

/// Number of resolver threads, as distcc's `rslave_NSLAVES`.
pub const RESOLVER_THREADS: usize = 6;

/// Sends per lookup, as distcc's `MAXTRIES`.
pub const MAX_TRIES: u32 = 5;

/// How the scan runs.
#[derive(Debug, Clone)]
pub struct ScanConfig {
    /// `-h`: resend a lookup that has not been answered after this long.
    pub dns_retry: Duration,
    /// `-o`: extra first-try lookups in flight.
    pub overlap: u32,
    /// `-g`: failed lookups tolerated before the scan stops growing.
    pub dns_gap: u32,
    /// `-m`: leading address bits that must match the first address found.
    pub match_bits: u32,
    /// What to do to each resolved host.
    pub probe: ProbeSpec,
    /// `-t`: when to give up, if ever.
    pub deadline: Option<Instant>,
    /// Probes allowed at the same time (each holds one socket).
    pub max_probes: usize,
}

/// Why a name was dropped at the DNS stage. Such names are never printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupFailure {
    /// The resolver did not give an IPv4 address.
    Unresolvable(ResolveError),
    /// The address is outside the network of the first address found (`-m`).
    MaskMismatch {
        /// The address found.
        addr: Ipv4Addr,
        /// The first address found.
        reference: Ipv4Addr,
        /// The number of leading bits compared.
        bits: u32,
    },
}

impl std::fmt::Display for LookupFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LookupFailure::Unresolvable(e) => write!(f, "unresolvable: {e}"),
            LookupFailure::MaskMismatch {
                addr,
                reference,
                bits,
            } => write!(
                f,
                "address {addr} does not match the first {bits} bits of {reference}"
            ),
        }
    }
}

/// One step of the scan, reported as it happens. `index` is the name's position (0-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A lookup is sent; `attempt` 1 is the first try, 2-5 are resends.
    Lookup {
        /// The name's position.
        index: usize,
        /// Which send this is.
        attempt: u32,
    },
    /// The name was dropped at the DNS stage.
    NotFound {
        /// The name's position.
        index: usize,
        /// Why.
        reason: LookupFailure,
    },
    /// Too many lookups failed: names from `end` on will not be looked up.
    Limited {
        /// The first position that is skipped.
        end: usize,
    },
    /// A resolved host's probe finished.
    Probed {
        /// The name's position.
        index: usize,
        /// Its address.
        addr: Ipv4Addr,
        /// How the probe ended.
        result: ProbeResult,
    },
}

/// How the scan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Names that resolved (and passed `-m`): the original's exit status is 0 iff this is
    /// non-zero.
    pub resolved: usize,
    /// The global deadline stopped the scan; unfinished hosts were not reported.
    pub timed_out: bool,
}

/// A failure of the scan machinery itself (not of a host).
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// `poll(2)` failed.
    #[error("poll failed: {0}")]
    Poll(io::Error),
    /// The wake-up socket pair for the resolver threads could not be made.
    #[error("cannot create the resolver wake-up socket: {0}")]
    Wake(io::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Fresh,
    Lookup { tries: u32, deadline: Instant },
    Probing,
    Done,
}

type Answer = (usize, Result<Ipv4Addr, ResolveError>);

/// Runs the scan over `names`, calling `on_event` for each step, in the caller's thread.
pub fn scan(
    names: &[Vec<u8>],
    cfg: &ScanConfig,
    on_event: &mut dyn FnMut(Event),
) -> Result<Summary, ScanError> {
    let (wake_tx, wake_rx) = UnixStream::pair().map_err(ScanError::Wake)?;
    wake_tx.set_nonblocking(true).map_err(ScanError::Wake)?;
    wake_rx.set_nonblocking(true).map_err(ScanError::Wake)?;
    let (answer_tx, answers) = mpsc::channel::<Answer>();
    let (requests, request_rx) = mpsc::channel::<usize>();
    let mut s = Scheduler {
        cfg,
        names: Arc::new(names.to_vec()),
        states: vec![State::Fresh; names.len()],
        with_tries: [0; MAX_TRIES as usize + 1],
        end: names.len(),
        next_fresh: 0,
        answers_seen: 0,
        failures: 0,
        done: 0,
        resolved: 0,
        reference: None,
        probes: Vec::new(),
        queue: VecDeque::new(),
        requests,
        request_rx: Arc::new(Mutex::new(request_rx)),
        answer_tx,
        wake_tx: Arc::new(wake_tx),
        resolvers: 0,
        in_resolver: 0,
    };
    let timed_out = s.run(&answers, &wake_rx, on_event)?;
    Ok(Summary {
        resolved: s.resolved,
        timed_out,
    })
}

struct Scheduler<'a> {
    cfg: &'a ScanConfig,
    names: Arc<Vec<Vec<u8>>>,
    states: Vec<State>,
    /// Lookups currently on each try (index 1..=5), as the original's `nwithtries`.
    with_tries: [usize; MAX_TRIES as usize + 1],
    /// Positions from `end` on are not scanned.
    end: usize,
    next_fresh: usize,
    /// First answers received (resolved or not), as the original's `ngotaddr`.
    answers_seen: usize,
    failures: usize,
    done: usize,
    resolved: usize,
    reference: Option<Ipv4Addr>,
    probes: Vec<(usize, Ipv4Addr, Probe)>,
    queue: VecDeque<(usize, Ipv4Addr)>,
    requests: Sender<usize>,
    request_rx: Arc<Mutex<Receiver<usize>>>,
    answer_tx: Sender<Answer>,
    wake_tx: Arc<UnixStream>,
    /// Resolver threads started (at most [`RESOLVER_THREADS`], started on demand).
    resolvers: usize,
    /// Requests sent to the resolvers and not answered yet (resends included).
    in_resolver: usize,
}

impl Scheduler<'_> {
    /// The main loop; returns true if the global deadline ended it.
    fn run(
        &mut self,
        answers: &Receiver<Answer>,
        wake_rx: &UnixStream,
        on_event: &mut dyn FnMut(Event),
    ) -> Result<bool, ScanError> {
        let mut pollfds: Vec<libc::pollfd> = Vec::new();
        loop {
            if self.done >= self.end {
                return Ok(false);
            }
            let now = Instant::now();
            if self.cfg.deadline.is_some_and(|d| now >= d) {
                return Ok(true);
            }
            self.send_lookups(now, on_event);
            if self.done >= self.end {
                return Ok(false); // numeric names may all be answered and probed by now
            }

            pollfds.clear();
            pollfds.push(libc::pollfd {
                fd: wake_rx.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
            for (_, _, p) in &self.probes {
                pollfds.push(libc::pollfd {
                    fd: p.fd(),
                    events: p.events(),
                    revents: 0,
                });
            }
            let timeout = self.next_wakeup().map_or(-1, |t| {
                let ms = t.saturating_duration_since(now).as_micros().div_ceil(1000);
                i32::try_from(ms).unwrap_or(i32::MAX)
            });
            // SAFETY: pollfds is a valid, initialised array of its length.
            let rc =
                unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, timeout) };
            if rc < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(ScanError::Poll(e));
            }

            if pollfds[0].revents != 0 {
                let mut buf = [0u8; 256];
                while matches!((&*wake_rx).read(&mut buf), Ok(n) if n > 0) {}
            }
            while let Ok((index, result)) = answers.try_recv() {
                self.in_resolver -= 1;
                self.answer(index, result, on_event);
            }
            // Probes polled this round: newer ones were appended after them, and removal
            // walks backwards, so positions 0..polled still match pollfds[1..].
            let polled = pollfds.len() - 1;
            for k in (0..polled).rev() {
                if pollfds[k + 1].revents == 0 {
                    continue;
                }
                if let Step::Done(result) = self.probes[k].2.ready(&self.cfg.probe) {
                    let (index, addr, _) = self.probes.swap_remove(k);
                    self.finish(index, addr, result, on_event);
                }
            }
            let now = Instant::now();
            for k in (0..self.probes.len()).rev() {
                if self.probes[k].2.deadline() <= now {
                    let (index, addr, probe) = self.probes.swap_remove(k);
                    let result = probe.expire(&self.cfg.probe);
                    self.finish(index, addr, result, on_event);
                }
            }
            while self.probes.len() < self.cfg.max_probes.max(1) {
                let Some((index, addr)) = self.queue.pop_front() else {
                    break;
                };
                self.start_probe(index, addr, on_event);
            }
        }
    }

    fn send(&mut self, index: usize, tries: u32, now: Instant, on_event: &mut dyn FnMut(Event)) {
        on_event(Event::Lookup {
            index,
            attempt: tries,
        });
        self.states[index] = State::Lookup {
            tries,
            deadline: now + self.cfg.dns_retry,
        };
        self.with_tries[tries as usize] += 1;
        if let Some(addr) = numeric_ipv4(&self.names[index]) {
            // A numeric address: the resolver would answer at once, so answer here.
            self.answer(index, Ok(addr), on_event);
            return;
        }
        self.in_resolver += 1;
        if self.in_resolver > self.resolvers && self.resolvers < RESOLVER_THREADS {
            self.start_resolver();
        }
        if self.resolvers == 0 || self.requests.send(index).is_err() {
            // No resolver could be started: answer for it so the scan still ends.
            let _ = self.answer_tx.send((
                index,
                Err(ResolveError::Resolver(
                    "cannot start a resolver thread".into(),
                )),
            ));
            let _ = (&*self.wake_tx).write(&[1]);
        }
    }

    fn start_resolver(&mut self) {
        let requests = Arc::clone(&self.request_rx);
        let names = Arc::clone(&self.names);
        let answers = self.answer_tx.clone();
        let wake = Arc::clone(&self.wake_tx);
        let worker = move || loop {
            let next = requests.lock().map(|rx| rx.recv());
            let Ok(Ok(index)) = next else { return };
            let result = resolve_ipv4(&names[index]);
            if answers.send((index, result)).is_err() {
                return;
            }
            // Wakes the poll loop; a full socket buffer already means "wake up".
            let _ = (&*wake).write(&[1]);
        };
        let spawned = thread::Builder::new()
            .name("lsdistcc-resolver".into())
            .stack_size(256 * 1024)
            .spawn(worker);
        if spawned.is_ok() {
            self.resolvers += 1;
        }
    }

    fn send_lookups(&mut self, now: Instant, on_event: &mut dyn FnMut(Event)) {
        for index in 0..self.next_fresh.min(self.end) {
            if let State::Lookup { tries, deadline } = self.states[index] {
                if tries < MAX_TRIES && deadline <= now {
                    self.with_tries[tries as usize] -= 1;
                    self.send(index, tries + 1, now, on_event);
                }
            }
        }
        while self.next_fresh < self.end
            && self.with_tries[1] <= self.cfg.overlap as usize
            && self.with_tries[1..MAX_TRIES as usize].iter().sum::<usize>() + self.answers_seen
                < self.end
        {
            let index = self.next_fresh;
            self.next_fresh += 1;
            self.send(index, 1, now, on_event);
        }
    }

    fn next_wakeup(&self) -> Option<Instant> {
        let retry = self.states[..self.next_fresh.min(self.end)]
            .iter()
            .filter_map(|s| match s {
                State::Lookup { tries, deadline } if *tries < MAX_TRIES => Some(*deadline),
                _ => None,
            })
            .min();
        let probe = self.probes.iter().map(|(_, _, p)| p.deadline()).min();
        [retry, probe, self.cfg.deadline]
            .into_iter()
            .flatten()
            .min()
    }

    fn answer(
        &mut self,
        index: usize,
        result: Result<Ipv4Addr, ResolveError>,
        on_event: &mut dyn FnMut(Event),
    ) {
        let State::Lookup { tries, .. } = self.states[index] else {
            return; // a duplicate answer
        };
        self.with_tries[tries as usize] -= 1;
        self.answers_seen += 1;
        match self.check(result) {
            Ok(addr) => {
                self.resolved += 1;
                self.states[index] = State::Probing;
                self.start_probe(index, addr, on_event);
            }
            Err(reason) => {
                self.states[index] = State::Done;
                self.done += 1;
                self.failures += 1;
                on_event(Event::NotFound { index, reason });
                if self.failures > self.cfg.dns_gap as usize {
                    let end = self
                        .states
                        .iter()
                        .rposition(|s| *s != State::Fresh)
                        .map_or(0, |i| i + 1);
                    if end < self.end {
                        self.end = end;
                        on_event(Event::Limited { end });
                    }
                }
            }
        }
    }

    fn check(&mut self, result: Result<Ipv4Addr, ResolveError>) -> Result<Ipv4Addr, LookupFailure> {
        let addr = result.map_err(LookupFailure::Unresolvable)?;
        let bits = self.cfg.match_bits;
        if bits == 0 {
            return Ok(addr);
        }
        let reference = *self.reference.get_or_insert(addr);
        let mask = u32::MAX << (32 - bits);
        if u32::from(addr) & mask != u32::from(reference) & mask {
            return Err(LookupFailure::MaskMismatch {
                addr,
                reference,
                bits,
            });
        }
        Ok(addr)
    }

    fn finish(
        &mut self,
        index: usize,
        addr: Ipv4Addr,
        result: ProbeResult,
        on_event: &mut dyn FnMut(Event),
    ) {
        self.states[index] = State::Done;
        self.done += 1;
        on_event(Event::Probed {
            index,
            addr,
            result,
        });
    }

    fn start_probe(&mut self, index: usize, addr: Ipv4Addr, on_event: &mut dyn FnMut(Event)) {
        if self.cfg.probe.connect_timeout.is_some()
            && self.probes.len() >= self.cfg.max_probes.max(1)
        {
            self.queue.push_back((index, addr));
            return;
        }
        match Probe::start(addr, &self.cfg.probe) {
            Ok(p) => self.probes.push((index, addr, p)),
            Err(result) => self.finish(index, addr, result, on_event),
        }
    }
}

/// Raises the soft limit on open files toward `wanted` (capped at the hard limit) and
/// returns the soft limit in force afterwards.
pub fn raise_fd_limit(wanted: u64) -> u64 {
    // SAFETY: an all-zero rlimit is a valid out-parameter.
    let mut rl: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: rl is a valid rlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
        return 256;
    }
    if rl.rlim_cur < wanted {
        let raised = libc::rlimit {
            rlim_cur: wanted.min(rl.rlim_max),
            rlim_max: rl.rlim_max,
        };
        // SAFETY: raised is a valid rlimit; failure leaves the limit unchanged.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            rl = raised;
        }
    }
    rl.rlim_cur
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn cfg(gap: u32, bits: u32) -> ScanConfig {
        ScanConfig {
            dns_retry: Duration::from_millis(500),
            overlap: 1,
            dns_gap: gap,
            match_bits: bits,
            probe: ProbeSpec {
                port: 3632,
                connect_timeout: None,
                compile: None,
            },
            deadline: Some(Instant::now() + Duration::from_secs(20)),
            max_probes: 64,
        }
    }

    fn names(v: &[&str]) -> Vec<Vec<u8>> {
        v.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    fn run(names: &[Vec<u8>], cfg: &ScanConfig) -> (Summary, Vec<Event>) {
        let mut events = Vec::new();
        let summary = scan(names, cfg, &mut |e| events.push(e)).expect("scan");
        // Every scan here ends on its own, long before the 20 s deadline.
        assert!(!summary.timed_out, "{events:?}");
        (summary, events)
    }

    fn probed(events: &[Event]) -> Vec<usize> {
        let mut v: Vec<usize> = events
            .iter()
            .filter_map(|e| match e {
                Event::Probed { index, .. } => Some(*index),
                _ => None,
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn format_scan_stops_after_the_first_failure() {
        let n: Vec<Vec<u8>> = (1..=500)
            .map(|i| format!("127.0.0.{i}").into_bytes())
            .collect();
        let (summary, events) = run(&n, &cfg(0, 0));
        assert_eq!(summary.resolved, 255);
        assert_eq!(probed(&events), (0..255).collect::<Vec<_>>());
        // Index 255 is 127.0.0.256; at most overlap+1 = 2 first tries were in flight.
        let looked_up = events
            .iter()
            .filter(|e| matches!(e, Event::Lookup { attempt: 1, .. }))
            .count();
        assert!((256..=257).contains(&looked_up), "{looked_up} lookups");
        assert!(events.iter().any(|e| matches!(e, Event::Limited { .. })));
    }

    fn first_lookups(events: &[Event]) -> usize {
        events
            .iter()
            .filter(|e| matches!(e, Event::Lookup { attempt: 1, .. }))
            .count()
    }

    #[test]
    fn list_mode_obeys_the_gap() {
        // Four unresolvable names: with -o1 the first two lookups go out together, and
        // the first failure (gap 0) stops the other two from ever being looked up.
        let n = names(&["bad name 1", "bad name 2", "bad name 3", "bad name 4"]);
        let (summary, events) = run(&n, &cfg(0, 0));
        assert_eq!(summary.resolved, 0);
        assert_eq!(first_lookups(&events), 2, "{events:?}");
        assert!(events.contains(&Event::Limited { end: 2 }));
        // A large enough gap looks every name up.
        let (_, events) = run(&n, &cfg(4, 0));
        assert_eq!(first_lookups(&events), 4, "{events:?}");
    }

    #[test]
    fn mask_drops_other_networks() {
        // -o0: one first try at a time, so the answers come in order and 127.0.0.1 is
        // the reference.
        let n = names(&["127.0.0.1", "127.0.1.1", "127.0.0.2"]);
        let mut c = cfg(5, 24);
        c.overlap = 0;
        let (summary, events) = run(&n, &c);
        assert_eq!(summary.resolved, 2);
        assert!(!summary.timed_out);
        assert_eq!(probed(&events), [0, 2]);
        assert!(events.iter().any(|e| matches!(
            e,
            Event::NotFound {
                index: 1,
                reason: LookupFailure::MaskMismatch { bits: 24, .. }
            }
        )));
    }

    #[test]
    fn nothing_resolved_is_reported() {
        let (summary, events) = run(&names(&["a b", "c d"]), &cfg(5, 0));
        assert_eq!(summary.resolved, 0);
        assert!(!summary.timed_out);
        assert!(probed(&events).is_empty());
    }

    #[test]
    fn empty_list_ends_at_once() {
        let (summary, events) = run(&[], &cfg(0, 0));
        assert_eq!(summary.resolved, 0);
        assert!(events.is_empty());
    }

    /// A one-connection peer on 127.0.0.1: reads the request, sends `reply` (or nothing
    /// and waits for the client to close), returns the request bytes.
    fn peer(reply: Option<&'static [u8]>, want: usize) -> (u16, thread::JoinHandle<Vec<u8>>) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let mut got = vec![0u8; want];
            s.read_exact(&mut got).unwrap();
            match reply {
                Some(r) => s.write_all(r).unwrap(),
                None => while matches!(s.read(&mut [0u8; 64]), Ok(n) if n > 0) {},
            }
            got
        });
        (port, h)
    }

    fn compile_cfg(port: u16, timeout_ms: u64) -> ScanConfig {
        let mut c = cfg(0, 0);
        c.probe = ProbeSpec {
            port,
            connect_timeout: Some(Duration::from_secs(5)),
            compile: Some(crate::probe::CompileProbe {
                request: crate::probe::compile_request(b"gcc", crate::cli::Protocol::P2),
                protocol: 2,
                timeout: Duration::from_millis(timeout_ms),
            }),
        };
        c
    }

    fn outcome(events: &[Event]) -> crate::probe::Outcome {
        events
            .iter()
            .find_map(|e| match e {
                Event::Probed { result, .. } => Some(result.outcome.clone()),
                _ => None,
            })
            .expect("a probe result")
    }

    #[test]
    fn compile_probe_up_on_done_stat_eof() {
        let request = crate::probe::compile_request(b"gcc", crate::cli::Protocol::P2);
        let (port, h) = peer(Some(b"DONE00000002STAT00000000SOUT00000000"), request.len());
        let (summary, events) = run(&names(&["127.0.0.1"]), &compile_cfg(port, 5000));
        assert_eq!(h.join().unwrap(), request);
        assert_eq!(summary.resolved, 1);
        assert_eq!(outcome(&events), crate::probe::Outcome::Up);
    }

    #[test]
    fn compile_probe_silence_costs_its_timeout() {
        let request = crate::probe::compile_request(b"gcc", crate::cli::Protocol::P2);
        let (port, h) = peer(None, request.len());
        let start = Instant::now();
        let (_, events) = run(&names(&["127.0.0.1"]), &compile_cfg(port, 200));
        let took = start.elapsed();
        h.join().unwrap();
        assert!(matches!(
            outcome(&events),
            crate::probe::Outcome::Down(crate::probe::DownReason::CompileTimedOut { .. })
        ));
        assert!(took >= Duration::from_millis(200), "{took:?}");
        assert!(took < Duration::from_secs(3), "{took:?}");
    }

    #[test]
    fn fd_limit_is_at_least_what_was_there() {
        assert!(raise_fd_limit(16) >= 16);
    }
}
