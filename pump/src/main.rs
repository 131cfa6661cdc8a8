//! `pump`: see the library documentation. Thin: parse nothing, run, map the outcome to
//! an exit status (or death by the signal pump received).

use std::process::ExitCode;

use common::env::Env;
use pump::Exit;

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_default();
    let rest: Vec<_> = args.collect();
    match pump::run(&argv0, &rest, Env::from_process()) {
        Ok(Exit::Code(code)) => ExitCode::from(code.clamp(0, 255) as u8),
        Ok(Exit::Signal(sig)) => {
            // Die as a shell killed by this signal would; if the default action does
            // not end the process, exit with the shell's status for it.
            let _ = signal_hook::low_level::emulate_default_handler(sig);
            ExitCode::from((128 + sig).clamp(0, 255) as u8)
        }
        Err(failure) => {
            for line in failure.lines() {
                eprintln!("{line}");
            }
            ExitCode::from(1)
        }
    }
}
