//! `pump`: see the library documentation. Thin: parse nothing, run, map the outcome to
//! an exit status (or death by the signal pump received).

#![cfg_attr(not(test), no_main)]
// The test harness brings its own `main`; this one is not built for it.
#![cfg_attr(test, allow(dead_code))]

use common::env::Env;
use pump::Exit;

/// Started without Rust's runtime set-up (see [`common::start`]): `pump --startup` runs
/// this program every time.
#[cfg(not(test))]
#[no_mangle]
pub extern "C" fn main(_argc: std::os::raw::c_int, _argv: *const *const u8) -> std::os::raw::c_int {
    common::start::run(pump_main)
}

fn pump_main() -> u8 {
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_default();
    let rest: Vec<_> = args.collect();
    match pump::run(&argv0, &rest, Env::from_process()) {
        Ok(Exit::Code(code)) => code.clamp(0, 255) as u8,
        Ok(Exit::Signal(sig)) => {
            // Die as a shell killed by this signal would; if the default action does
            // not end the process, exit with the shell's status for it.
            let _ = signal_hook::low_level::emulate_default_handler(sig);
            (128 + sig).clamp(0, 255) as u8
        }
        Err(failure) => {
            for line in failure.lines() {
                eprintln!("{line}");
            }
            1
        }
    }
}
