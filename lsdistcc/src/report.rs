//! Result lines and the order they are released in (spec B.6).
//!
//! A line is `<name or a.b.c.d>[:<port> if not 3632]<suffix of -P>[,down if -x and down]
//! [ <latency ms> if -l]`. Hosts dropped at the DNS stage get no line, even with `-x`.
//!
//! Deliberate difference from the original: lines come out in the order the names were
//! given or generated, not in completion order. [`Ordered`] holds each finished line until
//! every earlier name is settled (printed, dropped or never scanned); at the global
//! timeout, [`Ordered::drain_finished`] releases the finished lines and skips the rest.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::cli::{Options, DEFAULT_PORT};
use crate::probe::Outcome;

/// The output line for one probed host, with its newline; `None` when a down host is not
/// shown (no `-x`).
pub fn line(
    opts: &Options,
    name: &[u8],
    addr: Ipv4Addr,
    outcome: &Outcome,
    latency: Duration,
) -> Option<Vec<u8>> {
    let up = matches!(outcome, Outcome::Up);
    if !up && !opts.show_down {
        return None;
    }
    let mut out = Vec::new();
    if opts.numeric {
        out.extend_from_slice(addr.to_string().as_bytes());
    } else {
        out.extend_from_slice(name);
    }
    if opts.port != DEFAULT_PORT {
        out.extend_from_slice(format!(":{}", opts.port).as_bytes());
    }
    out.extend_from_slice(opts.protocol.suffix().as_bytes());
    if !up {
        out.extend_from_slice(b",down");
    }
    if opts.latency {
        out.extend_from_slice(format!(" {}", latency.as_millis()).as_bytes());
    }
    out.push(b'\n');
    Some(out)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    Pending,
    Settled(Option<Vec<u8>>),
    Released,
}

/// Holds finished lines until all earlier positions are settled.
#[derive(Debug, Clone)]
pub struct Ordered {
    slots: Vec<Slot>,
    next: usize,
}

impl Ordered {
    /// A buffer for `n` positions, all pending.
    pub fn new(n: usize) -> Ordered {
        Ordered {
            slots: vec![Slot::Pending; n],
            next: 0,
        }
    }

    /// Settles position `index` with its line, or with nothing to print.
    pub fn settle(&mut self, index: usize, line: Option<Vec<u8>>) {
        if let Some(s) = self.slots.get_mut(index) {
            if *s == Slot::Pending {
                *s = Slot::Settled(line);
            }
        }
    }

    /// Settles every position from `start` on with nothing (the scan will not reach them).
    pub fn skip_from(&mut self, start: usize) {
        for i in start..self.slots.len() {
            self.settle(i, None);
        }
    }

    /// The lines now ready, in order.
    pub fn ready(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(s) = self.slots.get_mut(self.next) {
            match std::mem::replace(s, Slot::Released) {
                Slot::Pending => {
                    *s = Slot::Pending;
                    break;
                }
                Slot::Settled(Some(l)) => out.push(l),
                Slot::Settled(None) | Slot::Released => {}
            }
            self.next += 1;
        }
        out
    }

    /// Every finished line not yet released, in order, skipping pending positions.
    pub fn drain_finished(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for s in &mut self.slots[self.next..] {
            if let Slot::Settled(Some(l)) = std::mem::replace(s, Slot::Released) {
                out.push(l);
            }
        }
        self.next = self.slots.len();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{parse, Protocol};
    use crate::probe::DownReason;

    fn text(l: Option<Vec<u8>>) -> Option<String> {
        l.map(|l| String::from_utf8(l).unwrap())
    }

    #[test]
    fn line_formats() {
        let addr = Ipv4Addr::new(127, 0, 0, 1);
        let down = Outcome::Down(DownReason::ConnectTimedOut(Duration::from_millis(5)));
        let ms = Duration::from_millis(12);
        let rows: &[(&[&str], &Outcome, Option<&str>)] = &[
            (&[], &Outcome::Up, Some("h\n")),
            (&[], &down, None),
            (&["-x"], &down, Some("h,down\n")),
            (&["-r42000"], &Outcome::Up, Some("h:42000\n")),
            (&["-r3632"], &Outcome::Up, Some("h\n")),
            (&["-P2"], &Outcome::Up, Some("h,lzo\n")),
            (&["-P3", "-x"], &down, Some("h,lzo,cpp,down\n")),
            (&["-l"], &Outcome::Up, Some("h 12\n")),
            (
                &["-n", "-l", "-x", "-r1"],
                &down,
                Some("127.0.0.1:1,down 12\n"),
            ),
        ];
        for (args, outcome, want) in rows {
            let opts = parse(args.iter()).unwrap();
            let got = text(line(&opts, b"h", addr, outcome, ms));
            assert_eq!(got.as_deref(), *want, "{args:?}");
        }
        assert_eq!(parse(["-P3"]).unwrap().protocol, Protocol::P3);
    }

    #[test]
    fn lines_come_out_in_position_order() {
        let mut o = Ordered::new(4);
        o.settle(2, Some(b"c\n".to_vec()));
        assert!(o.ready().is_empty());
        o.settle(0, Some(b"a\n".to_vec()));
        assert_eq!(o.ready(), [b"a\n".to_vec()]);
        o.settle(1, None);
        assert_eq!(o.ready(), [b"c\n".to_vec()]);
        o.skip_from(3);
        assert!(o.ready().is_empty());
    }

    #[test]
    fn timeout_releases_finished_lines_and_skips_pending() {
        let mut o = Ordered::new(3);
        o.settle(1, Some(b"b\n".to_vec()));
        o.settle(2, Some(b"c\n".to_vec()));
        assert_eq!(o.drain_finished(), [b"b\n".to_vec(), b"c\n".to_vec()]);
        o.settle(0, Some(b"late\n".to_vec()));
        assert!(o.ready().is_empty());
    }
}
