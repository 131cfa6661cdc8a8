//! Threads kept waiting for work a request hands off, so that the request does not start
//! a thread for it on its way (about 0.1 ms on a virtual machine): the compiler probe's
//! start and the reading of its output ([`super::Analyzer`]'s probe), which must not wait
//! behind other work, and a first request's compressing ahead when no read-ahead helper
//! waits ([`super::Analyzer::run_aside`]). A thread that finishes its task waits for the
//! next one, up to [`KEEP_IDLE`] of them; when none is waiting, a task gets a thread of
//! its own.
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Work for another thread.
pub struct Task(Box<dyn FnOnce() + Send>);

impl Task {
    pub fn new(f: impl FnOnce() + Send + 'static) -> Task {
        Task(Box::new(f))
    }

    /// Runs it on the calling thread; a panic ends the task, not the thread.
    pub fn run(self) {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(self.0));
    }
}

impl std::fmt::Debug for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Task")
    }
}

/// At most this many threads wait for work; one more that finishes a task ends.
pub const KEEP_IDLE: usize = 2;

/// The threads waiting for handed-off work.
#[derive(Debug, Default)]
pub struct Aside {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Debug, Default)]
struct State {
    tasks: VecDeque<Task>,
    idle: usize,
    stopping: bool,
    /// Threads started so far (for their names).
    started: usize,
}

impl Aside {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts threads until `n` wait for work.
    pub fn keep(self: &Arc<Self>, n: usize) {
        while self.lock().idle < n.min(KEEP_IDLE) {
            if self.spawn(None).is_err() {
                return;
            }
        }
    }

    /// Runs `task` on a waiting thread, else on a new one; gives it back when no thread
    /// could be started.
    pub fn run(self: &Arc<Self>, task: Task) -> Result<(), Task> {
        let mut s = self.lock();
        if s.idle > s.tasks.len() {
            s.tasks.push_back(task);
            drop(s);
            self.wake.notify_one();
            return Ok(());
        }
        drop(s);
        self.spawn(Some(task))
    }

    /// Stops the waiting threads (a task being run is finished).
    pub fn stop(&self) {
        self.lock().stopping = true;
        self.wake.notify_all();
    }

    /// A new thread that runs `first`, if any, and then waits for work.
    fn spawn(self: &Arc<Self>, first: Option<Task>) -> Result<(), Task> {
        let n = {
            let mut s = self.lock();
            s.started += 1;
            // Counted as waiting at once, so that `keep` does not start too many.
            if first.is_none() {
                s.idle += 1;
            }
            s.started
        };
        let counted = first.is_none();
        // Taken by the thread, or given back if it could not start.
        let slot = Arc::new(Mutex::new(first));
        let (me, theirs) = (self.clone(), slot.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("aside-{n}"))
            .spawn(move || {
                let first = theirs.lock().unwrap_or_else(|e| e.into_inner()).take();
                me.serve(first, counted);
            });
        if spawned.is_ok() {
            return Ok(());
        }
        if counted {
            self.lock().idle -= 1;
        }
        let task = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        task.map_or(Ok(()), Err)
    }

    /// Runs `first`, then the tasks handed to it, until stopped or [`KEEP_IDLE`] others
    /// wait. `counted`: already counted as waiting.
    fn serve(&self, first: Option<Task>, counted: bool) {
        if let Some(task) = first {
            task.run();
        }
        let mut s = self.lock();
        if !counted {
            if s.idle >= KEEP_IDLE {
                return;
            }
            s.idle += 1;
        }
        loop {
            if s.stopping {
                s.idle -= 1;
                return;
            }
            let Some(task) = s.tasks.pop_front() else {
                s = self.wake.wait(s).unwrap_or_else(|e| e.into_inner());
                continue;
            };
            s.idle -= 1;
            drop(s);
            task.run();
            s = self.lock();
            if s.idle >= KEEP_IDLE {
                return;
            }
            s.idle += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn tasks_run_on_kept_threads_or_new_ones() {
        let aside = Arc::new(Aside::default());
        aside.keep(1);
        let (tx, rx) = std::sync::mpsc::channel();
        // More tasks than waiting threads, each blocked until all have started: every
        // one gets a thread.
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        for _ in 0..3 {
            let (tx, gate) = (tx.clone(), gate.clone());
            let task = Task::new(move || {
                tx.send(std::thread::current().name().map(str::to_owned))
                    .expect("the test waits");
                let mut open = gate.0.lock().unwrap();
                while !*open {
                    open = gate.1.wait(open).unwrap();
                }
            });
            assert!(aside.run(task).is_ok());
        }
        let mut names: Vec<String> = (0..3)
            .map(|_| {
                rx.recv_timeout(Duration::from_secs(20))
                    .expect("each task runs at once")
                    .expect("named")
            })
            .collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 3, "three threads: {names:?}");
        assert!(names.iter().all(|n| n.starts_with("aside-")));
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        // A panicking task leaves its thread serving.
        assert!(aside.run(Task::new(|| panic!("a task's panic"))).is_ok());
        let (tx2, rx2) = std::sync::mpsc::channel();
        assert!(aside
            .run(Task::new(move || tx2.send(()).expect("the test waits")))
            .is_ok());
        rx2.recv_timeout(Duration::from_secs(20))
            .expect("the next task runs");
        aside.stop();
    }
}
