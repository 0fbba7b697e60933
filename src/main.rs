//! The `grite` binary. The lock commands arrive with the git backend; until
//! then it says so instead of pretending to work.

fn main() -> std::process::ExitCode {
    eprintln!("grite: the `lock` commands are not built yet; see README.md");
    std::process::ExitCode::from(1)
}
