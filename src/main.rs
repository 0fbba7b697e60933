//! `grite`: parse, run, exit. Everything else is in the library.

fn main() -> std::process::ExitCode {
    grite_locks::cli::run(std::env::args_os())
}
