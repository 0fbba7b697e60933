//! Stage one of the command line: what the user typed, as clap parses it.
//! Values stay text here; stage two ([`super::commands`]) validates them
//! into resources, TTLs and actors with our own messages and exit codes.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "grite",
    version,
    about = "Lease locks kept as git refs",
    after_help = "Example: grite lock acquire issue:8057324b --ttl 30m"
)]
pub struct Cli {
    /// Run as if started in DIR (any worktree or subdirectory of the repository).
    #[arg(short = 'C', value_name = "DIR", global = true)]
    pub dir: Option<PathBuf>,

    /// Print one JSON object on standard output, for success and failure alike.
    #[arg(long, global = true)]
    pub json: bool,

    /// Print nothing on success.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,

    /// Act as this actor (32 lowercase hex characters). Default: $GRITE_ACTOR,
    /// then `default_actor` in .git/grite/config.toml, created on first use.
    #[arg(long, value_name = "ID", global = true)]
    pub actor: Option<String>,

    /// Make this remote (a name, URL or path) the authority: read locks from
    /// it and push every change to it. Default: `lock_remote` in
    /// .git/grite/config.toml.
    #[arg(long, value_name = "REMOTE", global = true)]
    pub remote: Option<String>,

    /// Work on the local refs only, even if `lock_remote` is configured.
    #[arg(long, global = true, conflicts_with = "remote")]
    pub no_remote: bool,

    /// Decide as if the time were this many milliseconds since the Unix
    /// epoch. Only in builds with the `test-clock` feature, which the tests
    /// and benchmarks turn on: a fake clock in a real binary would let
    /// anyone take a live lease, through the remote too.
    #[cfg(feature = "test-clock")]
    #[arg(long = "now-ms", value_name = "MS", global = true, hide = true)]
    pub now_ms: Option<u64>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Lease locks on issues, paths and the whole repository.
    #[command(subcommand, after_help = "Example: grite lock status")]
    Lock(LockCommand),
    /// Who you are to the locks.
    #[command(subcommand, after_help = "Example: grite actor current --json")]
    Actor(ActorCommand),
    /// The lock settings of this repository (.git/grite/config.toml).
    #[command(
        subcommand,
        after_help = "Example: grite config set lock_policy require"
    )]
    Config(ConfigCommand),
    /// Print a completion script for a shell.
    #[command(
        after_help = "Example: grite completions bash > ~/.local/share/bash-completion/completions/grite"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff).
    #[command(after_help = "Example: grite man | man -l -")]
    Man,
}

#[derive(Debug, Subcommand)]
pub enum ActorCommand {
    /// The actor id in use, and where it came from.
    #[command(after_help = "Example: grite actor current")]
    Current,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Set a setting, creating the file if need be; comments and other
    /// keys stay as they are.
    #[command(after_help = "Example: grite config set lock_remote origin")]
    Set {
        /// lock_policy, default_actor, lock_grace, lock_steal, lock_remote
        /// or lock_remote_timeout.
        key: String,
        /// Its value.
        value: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum LockCommand {
    /// Take locks, or say who holds them; several resources are granted all
    /// together or not at all.
    #[command(
        after_help = "Example: grite lock acquire issue:8057324b path:src/auth.rs --ttl 30m --wait=5m"
    )]
    Acquire(AcquireArgs),
    /// Extend your leases.
    #[command(after_help = "Example: grite lock renew issue:8057324b --ttl 30m")]
    Renew(WithTtl),
    /// End your leases.
    #[command(after_help = "Example: grite lock release issue:8057324b")]
    Release(Resources),
    /// List live, expired and released locks and conflicts between them.
    #[command(after_help = "Example: grite lock status --mine --json")]
    Status(StatusArgs),
    /// The history of a lock, or of every lock, newest first: acquires,
    /// renewals, steals and releases, with owner, token and expiry.
    #[command(after_help = "Example: grite lock log issue:8057324b -n 10")]
    Log(LogArgs),
    /// Remove released locks and locks expired past the grace period.
    #[command(after_help = "Example: grite lock gc")]
    Gc,
    /// Apply the lock policy to resources you are about to work on: named,
    /// the paths staged for commit, or paths read from standard input.
    #[command(after_help = "Example: grite lock check path:src/auth.rs")]
    Check(CheckArgs),
    /// Install or remove the git hooks that apply the lock policy to what
    /// is committed and pushed.
    #[command(subcommand, after_help = "Example: grite lock hooks install")]
    Hooks(HooksCommand),
    /// Make the local lock refs what the remote has (fetch, and prune those
    /// it no longer has).
    #[command(after_help = "Example: grite --remote origin lock sync")]
    Sync,
    /// Hold locks while a command runs: acquire, renew in the background,
    /// stop the command if the lease is lost, release when it ends.
    #[command(after_help = "Example: grite lock run issue:8057324b --ttl 10m -- make deploy")]
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only your own locks.
    #[arg(long)]
    pub mine: bool,

    /// Only the locks of these resources (repeat for more).
    #[arg(long = "resource", short = 'r', value_name = "RESOURCE", action = clap::ArgAction::Append)]
    pub resources: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A resource: issue:ID, path:PATH or repo:NAME (repeat for more).
    #[arg(long = "resource", short = 'r', value_name = "RESOURCE", action = clap::ArgAction::Append)]
    pub flagged: Vec<String>,

    /// Resources, as arguments.
    #[arg(value_name = "RESOURCE")]
    pub positional: Vec<String>,

    /// Also every path staged for commit (`git diff --cached`), as
    /// `path:` resources.
    #[arg(long)]
    pub staged: bool,

    /// Also paths read from standard input, one a line, relative to the
    /// top of the repository.
    #[arg(long)]
    pub paths_from_stdin: bool,

    /// The paths on standard input end with NUL, not newline.
    #[arg(short = 'z', requires = "paths_from_stdin")]
    pub nul: bool,
}

impl CheckArgs {
    /// The resources named, flagged first.
    pub fn texts(&self) -> impl Iterator<Item = &str> {
        self.flagged
            .iter()
            .chain(&self.positional)
            .map(String::as_str)
    }
}

#[derive(Debug, Subcommand)]
pub enum HooksCommand {
    /// Install the hooks (both, unless one is named), in `core.hooksPath`
    /// or .git/hooks; an existing hook of another tool is refused, or kept
    /// and run first with --chain.
    #[command(after_help = "Example: grite lock hooks install --pre-commit")]
    Install(InstallArgs),
    /// Remove the hooks this tool installed, putting back hooks chained.
    #[command(after_help = "Example: grite lock hooks uninstall")]
    Uninstall(HookKinds),
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    #[command(flatten)]
    pub kinds: HookKinds,

    /// Keep an existing hook of another tool and run it first.
    #[arg(long)]
    pub chain: bool,
}

/// Which hooks; both when neither is named.
#[derive(Debug, Args)]
pub struct HookKinds {
    /// The pre-commit hook: the lock policy on the staged paths.
    #[arg(long)]
    pub pre_commit: bool,

    /// The pre-push hook: the lock policy on the paths the pushed commits
    /// change.
    #[arg(long)]
    pub pre_push: bool,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Only this resource's lock (default: every lock).
    #[arg(
        long = "resource",
        short = 'r',
        value_name = "RESOURCE",
        conflicts_with = "positional"
    )]
    pub resource: Option<String>,

    /// The resource, as a positional argument.
    #[arg(value_name = "RESOURCE")]
    pub positional: Option<String>,

    /// At most this many steps, the newest.
    #[arg(short = 'n', long = "max-count", value_name = "N")]
    pub limit: Option<usize>,
}

/// Resources, as `--resource R` (again for more) or as arguments.
#[derive(Debug, Args)]
#[group(required = true, multiple = true)]
pub struct Resources {
    /// A resource: issue:ID, path:PATH or repo:NAME (repeat for more).
    #[arg(long = "resource", short = 'r', value_name = "RESOURCE", action = clap::ArgAction::Append)]
    pub flagged: Vec<String>,

    /// Resources, as arguments.
    #[arg(value_name = "RESOURCE")]
    pub positional: Vec<String>,
}

impl Resources {
    pub fn texts(&self) -> impl Iterator<Item = &str> {
        self.flagged
            .iter()
            .chain(&self.positional)
            .map(String::as_str)
    }
}

#[derive(Debug, Args)]
pub struct WithTtl {
    #[command(flatten)]
    pub resources: Resources,

    /// How long the lease lasts: 30s, 15m, 1h, 2h30m, 1d or a number of
    /// seconds; at most 7d.
    #[arg(
        long,
        value_name = "TTL",
        default_value = "30m",
        allow_hyphen_values = true
    )]
    pub ttl: String,
}

#[derive(Debug, Args)]
pub struct AcquireArgs {
    #[command(flatten)]
    pub lease: WithTtl,

    /// Wait for locks others hold, at most this long (`--wait=5m`), or
    /// without a limit (`--wait`).
    #[arg(long, value_name = "DURATION", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    pub wait: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub acquire: AcquireArgs,

    /// Renew this often (default: a third of the TTL).
    #[arg(long, value_name = "DURATION")]
    pub renew_every: Option<String>,

    /// After asking the command to stop (SIGTERM), kill it (SIGKILL) this
    /// much later.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub kill_after: String,

    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<std::ffi::OsString>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::Cli;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    /// `--help` of every command, down to the leaves, ends with an example
    /// that names the command itself.
    #[test]
    fn every_command_shows_an_example_of_itself() {
        fn walk(command: &clap::Command, path: &str) {
            if command.get_name() == "help" {
                return;
            }
            let example = command
                .get_after_help()
                .map(ToString::to_string)
                .unwrap_or_default();
            assert!(
                example.starts_with("Example: grite ") && example.contains(command.get_name()),
                "`{path}` shows no example of itself: {example:?}"
            );
            for sub in command.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()));
            }
        }
        walk(&Cli::command(), "grite");
    }
}
