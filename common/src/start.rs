//! A process start without Rust's runtime set-up, for the tools `pump` runs on every
//! `pump --startup` (`pump` itself and the `include_server` launcher).
//!
//! `fn main` goes through `std::rt::lang_start`, which among other things reads
//! `/proc/self/maps` to find the main thread's stack (for its stack-overflow message):
//! about a tenth of a millisecond per start on this kind of machine, a few percent of
//! `pump --startup`. A binary that declares `#![no_main]` and an `extern "C" fn main`
//! calls [`run`] instead, which keeps what the tools rely on: the standard descriptors
//! are open (as `/dev/null` when they were closed), SIGPIPE is ignored (a write to a
//! closed pipe is an error, not death), a panic exits 101 after its message, and the
//! exit flushes stdout. What is lost is the stack-overflow message: such a crash is a
//! plain SIGSEGV.

use std::os::raw::c_int;

/// Runs `body` as `main` would run, and exits with its status.
pub fn run(body: impl FnOnce() -> u8 + std::panic::UnwindSafe) -> ! {
    open_standard_descriptors();
    // SAFETY: ignoring a signal installs no handler code.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let code = std::panic::catch_unwind(body).map_or(101, c_int::from);
    // Flushes stdout, as returning from `main` would.
    std::process::exit(code)
}

/// Opens `/dev/null` on whichever of descriptors 0, 1 and 2 is closed, so that no file
/// the program opens takes one of their places.
fn open_standard_descriptors() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: fds is a valid array of three pollfds; a zero timeout does not block.
    if unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) } < 0 {
        return;
    }
    for p in fds {
        if p.revents & libc::POLLNVAL != 0 {
            let mode = if p.fd == 0 {
                libc::O_RDONLY
            } else {
                libc::O_RDWR
            };
            // SAFETY: the path is a valid C string; the lowest free descriptor is the
            // closed standard one, which is the point.
            unsafe { libc::open(c"/dev/null".as_ptr(), mode) };
        }
    }
}
