//! `include_server`: the launcher (being written: issue 3).
fn main() -> std::process::ExitCode {
    eprintln!("include_server: not built yet");
    std::process::ExitCode::FAILURE
}
