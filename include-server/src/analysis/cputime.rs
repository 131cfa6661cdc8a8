//! The per-request CPU budget (spec 2.5), measured on the calling thread's own CPU clock
//! so concurrent requests do not charge each other; compiler probes are excluded by
//! [`Budget::exclude`].

use std::cell::Cell;
use std::time::{Duration, Instant};

/// The CPU time this thread has used so far.
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Wall time a request may run before its thread's CPU clock is first read. Reading it
/// is a system call; most requests are answered from the caches well within this time,
/// and until then the wall time is an upper bound of the CPU time used.
const FIRST_READ_AFTER: Duration = Duration::from_millis(5);

/// A running budget for one request on one thread.
///
/// The CPU clock is read only once the request has run for [`FIRST_READ_AFTER`] of wall
/// time (or a probe is excluded). The CPU time used before that first read is counted
/// as the wall time then, capped at [`FIRST_READ_AFTER`]: the hot loops check often
/// while they compute, so a request that computes all along is read within a few
/// microseconds of the cap, and one that waited on another thread used less CPU than
/// the wall time says. The budget is thus exact to within a few milliseconds.
#[derive(Debug)]
pub struct Budget {
    limit: Duration,
    wall: Instant,
    /// The thread's CPU clock at its first read, and the CPU time counted before it.
    anchor: Cell<Option<(Duration, Duration)>>,
    excluded: Duration,
    ticks: u32,
}

impl Budget {
    /// Starts charging the current thread against `limit`.
    pub fn start(limit: Duration) -> Budget {
        Budget {
            limit,
            wall: Instant::now(),
            anchor: Cell::new(None),
            excluded: Duration::ZERO,
            ticks: 0,
        }
    }

    /// The CPU clock at the first read and the CPU time counted before it.
    fn anchor(&self) -> (Duration, Duration) {
        if let Some(a) = self.anchor.get() {
            return a;
        }
        let before = self.wall.elapsed().min(FIRST_READ_AFTER);
        let a = (thread_cpu_time(), before);
        self.anchor.set(Some(a));
        a
    }

    /// CPU time charged so far.
    pub fn used(&self) -> Duration {
        if self.anchor.get().is_none() {
            let wall = self.wall.elapsed();
            if wall < FIRST_READ_AFTER {
                return wall;
            }
        }
        let (at, before) = self.anchor();
        (before + thread_cpu_time().saturating_sub(at)).saturating_sub(self.excluded)
    }

    /// Whether the budget is spent.
    pub fn exceeded(&self) -> bool {
        self.used() > self.limit
    }

    /// A cheap check for hot loops: looks at the clocks every 64 calls.
    pub fn tick(&mut self) -> bool {
        self.ticks = self.ticks.wrapping_add(1);
        self.ticks % 64 == 0 && self.exceeded()
    }

    /// Runs `f` without charging its CPU time.
    pub fn exclude<R>(&mut self, f: impl FnOnce() -> R) -> R {
        self.anchor();
        let before = thread_cpu_time();
        let r = f();
        self.excluded += thread_cpu_time().saturating_sub(before);
        r
    }

    /// The limit.
    pub fn limit(&self) -> Duration {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_advances_and_budget_trips() {
        let b = Budget::start(Duration::from_millis(5));
        let mut x: u64 = 1;
        while !b.exceeded() {
            for i in 0..10_000u64 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
            }
        }
        assert!(b.used() > Duration::from_millis(5));
        let mut b2 = Budget::start(Duration::from_millis(1));
        b2.exclude(|| {
            let until = thread_cpu_time() + Duration::from_millis(3);
            while thread_cpu_time() < until {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        });
        assert!(!b2.exceeded(), "excluded time was charged: {:?}", b2.used());
    }

    #[test]
    fn time_spent_waiting_before_the_first_read_is_not_charged() {
        // A request that waited 2 s on another thread's work (no CPU) before its first
        // check: only the cap is counted for the time before the clock's first read.
        let mut b = Budget::start(Duration::from_millis(100));
        b.wall -= Duration::from_secs(2);
        assert!(!b.exceeded(), "charged {:?}", b.used());
        assert!(b.used() >= FIRST_READ_AFTER);
        // Before the cap, the wall time is the charge and the clock is not read.
        let fresh = Budget::start(Duration::from_millis(100));
        assert!(fresh.used() < FIRST_READ_AFTER);
        assert!(fresh.anchor.get().is_none());
    }
}
