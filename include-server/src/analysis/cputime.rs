//! The per-request CPU budget (spec 2.5), measured on the calling thread's own CPU clock
//! so concurrent requests do not charge each other; compiler probes are excluded by
//! [`Budget::exclude`].

use std::time::Duration;

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

/// A running budget for one request on one thread.
#[derive(Debug)]
pub struct Budget {
    limit: Duration,
    start: Duration,
    excluded: Duration,
    ticks: u32,
}

impl Budget {
    /// Starts charging the current thread against `limit`.
    pub fn start(limit: Duration) -> Budget {
        Budget {
            limit,
            start: thread_cpu_time(),
            excluded: Duration::ZERO,
            ticks: 0,
        }
    }

    /// CPU time charged so far.
    pub fn used(&self) -> Duration {
        thread_cpu_time()
            .saturating_sub(self.start)
            .saturating_sub(self.excluded)
    }

    /// Whether the budget is spent (checks the clock every call).
    pub fn exceeded(&self) -> bool {
        self.used() > self.limit
    }

    /// A cheap check for hot loops: reads the clock every 64 calls.
    pub fn tick(&mut self) -> bool {
        self.ticks = self.ticks.wrapping_add(1);
        self.ticks % 64 == 0 && self.exceeded()
    }

    /// Runs `f` without charging its CPU time.
    pub fn exclude<R>(&mut self, f: impl FnOnce() -> R) -> R {
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
}
