//! The `turnpike` binary: everything is in the library; see `cli`.
fn main() -> std::process::ExitCode {
    turnpike::cli::main()
}
