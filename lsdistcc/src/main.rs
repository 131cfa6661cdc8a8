//! `lsdistcc`: finds live distcc servers (being written: issue 2).
fn main() -> std::process::ExitCode {
    eprintln!("lsdistcc: not built yet");
    std::process::ExitCode::FAILURE
}
