//! Every failure the command line reports, with its JSON code, exit code,
//! the detail lines people read and a help line. This is the one place
//! that maps errors to exit codes (the README's table).

use std::process::ExitCode;

use serde_json::{Value, json};

use super::fields::{blocks_line, by_holder, lock_json, printable, short, span};
use crate::lease::{LockRecord, Resource};
use crate::store::Error;

/// Exit codes, as the README's table lists them.
pub mod exit {
    pub const OTHER: u8 = 1;
    pub const INVALID_ARGS: u8 = 2;
    pub const NOT_FOUND: u8 = 3;
    pub const CONFLICT: u8 = 4;
    pub const ENVIRONMENT: u8 = 5;
    pub const LEASE_LOST: u8 = 6;
}

/// A failure, ready to print.
#[derive(Debug, thiserror::Error)]
#[error("{title}")]
pub struct CliError {
    /// The JSON `error.code`.
    pub code: &'static str,
    pub exit: u8,
    /// The first line: `Error: <title>`.
    pub title: String,
    /// `Key: value` lines under the title.
    pub lines: Vec<(&'static str, String)>,
    pub help: Option<String>,
    /// The JSON `error.details` (boxed: errors travel in `Result`s).
    pub details: Box<Value>,
    /// What was typed or read, with the part to blame, shown under the
    /// lines in human output (never in JSON).
    pub snippet: Option<Box<Snippet>>,
}

/// A text shown with the part to blame underlined and labelled, by miette.
#[derive(Debug)]
pub struct Snippet {
    /// The text, named for what it is: a file, or the argument it was
    /// typed as.
    pub source: miette::NamedSource<String>,
    pub span: std::ops::Range<usize>,
    pub label: String,
}

impl std::fmt::Display for Snippet {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        Ok(())
    }
}

impl std::error::Error for Snippet {}

/// The snippet alone, without a message of its own: it is rendered under
/// the error's own lines.
impl miette::Diagnostic for Snippet {
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        let label = miette::LabeledSpan::new_with_span(Some(self.label.clone()), self.span.clone());
        Some(Box::new(std::iter::once(label)))
    }
}

impl miette::Diagnostic for CliError {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn std::fmt::Display + 'a>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.snippet.as_ref()?.source_code()
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        self.snippet.as_ref()?.labels()
    }
}

impl CliError {
    fn new(code: &'static str, exit: u8, title: impl Into<String>) -> CliError {
        CliError {
            code,
            exit,
            title: title.into(),
            lines: Vec::new(),
            help: None,
            details: Box::new(json!({})),
            snippet: None,
        }
    }

    /// Shows `text` (named `name`) under the error, `span` labelled.
    /// Text a terminal would act on is not shown: the lines say it all.
    pub fn snippet(
        mut self,
        name: &str,
        text: &str,
        span: std::ops::Range<usize>,
        label: &str,
    ) -> CliError {
        // A snippet is for a line a person can read: a huge one (a
        // 100 kB resource) is left to the shortened text of the lines.
        const LONGEST_LINE: usize = 512;
        let printable = printable(text)
            && printable(label)
            && span.end <= text.len()
            && text.is_char_boundary(span.start)
            && text.is_char_boundary(span.end)
            && {
                let start = text[..span.start].rfind('\n').map_or(0, |i| i + 1);
                let end = text[span.end..]
                    .find('\n')
                    .map_or(text.len(), |i| span.end + i);
                end - start <= LONGEST_LINE
            };
        if printable {
            self.snippet = Some(Box::new(Snippet {
                source: miette::NamedSource::new(name, text.to_owned()),
                span,
                label: label.to_owned(),
            }));
        }
        self
    }

    fn line(mut self, key: &'static str, value: impl Into<String>) -> CliError {
        self.lines.push((key, value.into()));
        self
    }

    fn help(mut self, help: impl Into<String>) -> CliError {
        self.help = Some(help.into());
        self
    }

    fn details(mut self, details: Value) -> CliError {
        *self.details = details;
        self
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.exit)
    }

    /// A value the user typed is wrong.
    pub fn invalid_args(what: &str, reason: impl std::fmt::Display, help: &str) -> CliError {
        CliError::new(
            "invalid_args",
            exit::INVALID_ARGS,
            format!("Invalid {what}"),
        )
        .line("Reason", reason.to_string())
        .help(help)
        .details(json!({ "argument": what, "reason": reason.to_string() }))
    }

    /// The command line itself did not parse (clap's message).
    pub fn usage(message: &str) -> CliError {
        CliError::new("invalid_args", exit::INVALID_ARGS, "Invalid arguments")
            .line("Reason", message.to_owned())
            .help("run `grite lock --help` for the commands and their flags")
            .details(json!({ "reason": message }))
    }

    /// Another actor holds a lock that the lock policy says to respect.
    pub fn policy_conflict(resource: &str, holders: &[LockRecord]) -> CliError {
        let mut error = CliError::new("conflict", exit::CONFLICT, "Lock conflict")
            .line("Resource", resource.to_owned());
        for holder in holders {
            error = error
                .line("Locked", holder.resource.clone())
                .line("Owner", holder.owner.clone())
                .line("Expires", holder.expires().to_string());
        }
        error
            .help("lock_policy is \"require\": wait for these locks to be released or to expire")
            .details(json!({
                "resource": resource,
                "policy": "require",
                "conflicts": holders.iter().map(lock_json).collect::<Vec<_>>(),
            }))
    }
}

impl CliError {
    /// Other actors hold locks that the lock policy says to respect, in
    /// the way of several resources: each holder once, with what it blocks.
    pub fn policy_conflicts(blocked: &[(Resource, Vec<LockRecord>)]) -> CliError {
        let mut error = CliError::new("conflict", exit::CONFLICT, "Locked by other actors");
        for (holder, blocks) in by_holder(blocked) {
            error = error
                .line("Locked", holder.resource.clone())
                .line("Owner", holder.owner.clone())
                .line("Expires", holder.expires().to_string())
                .line("Blocks", blocks_line(&blocks));
        }
        error
            .help("lock_policy is \"require\": wait for these locks to be released or to expire, or ask their owners (`git commit --no-verify` skips the hook)")
            .details(json!({
                "policy": "require",
                "blocked": blocked_json(blocked),
            }))
    }

    /// `check --staged`: git could not list the staged paths.
    pub fn staged(reason: &str) -> CliError {
        CliError::new(
            "repository_error",
            exit::ENVIRONMENT,
            "Cannot list the staged paths",
        )
        .line("Reason", reason.to_owned())
        .help("run it in a worktree, where `git diff --cached --name-only` works")
        .details(json!({ "reason": reason }))
    }

    /// A hook cannot be installed or removed as asked.
    pub fn hook(title: &str, path: &std::path::Path, reason: &str, help: &str) -> CliError {
        CliError::new("hook_error", exit::ENVIRONMENT, title)
            .line("File", path.display().to_string())
            .line("Reason", reason.to_owned())
            .help(help)
            .details(json!({ "path": path, "reason": reason }))
    }

    /// `lock run`: the command could not be started (127: not found, 126:
    /// not runnable, as shells say); nothing is left locked.
    pub fn not_runnable(command: &str, reason: &str, exit: u8) -> CliError {
        CliError::new("command_failed", exit, "Command not started")
            .line("Command", command.to_owned())
            .line("Reason", reason.to_owned())
            .help("check the command after `--`; the locks were released")
            .details(json!({ "command": command, "reason": reason }))
    }

    /// `lock run`: waiting for the command failed.
    pub fn child(reason: String) -> CliError {
        CliError::new("command_failed", exit::OTHER, "Command lost")
            .line("Reason", reason.clone())
            .help("the command's state is unknown; check it before relying on the locks")
            .details(json!({ "reason": reason }))
    }

    /// `lock run`: the lease was lost (or about to end unrenewed) while the
    /// command ran, so the command was stopped.
    pub fn lease_lost(
        reason: String,
        taker: Option<&LockRecord>,
        held: &[LockRecord],
        code: Option<i32>,
        signal: Option<i32>,
    ) -> CliError {
        let mut error = CliError::new("lease_lost", exit::LEASE_LOST, "Lease lost")
            .line("Reason", reason.clone());
        for lock in held {
            error = error.line("Resource", lock.resource.clone());
        }
        if let Some(taker) = taker {
            error = error
                .line("Taken by", taker.owner.clone())
                .line("Their token", taker.fencing_token.to_string());
        }
        error
            .help("the command was stopped (SIGTERM, then SIGKILL) so that it does not run without the lock; what it did may be incomplete")
            .details(json!({
                "reason": reason,
                "locks": held.iter().map(lock_json).collect::<Vec<_>>(),
                "taken_by": taker.map(lock_json),
                "exit_code": code,
                "signal": signal,
            }))
    }
}

impl From<Error> for CliError {
    fn from(error: Error) -> CliError {
        let message = error.to_string();
        match error {
            Error::NotARepository { path, reason } => CliError::new(
                "not_a_repository",
                exit::ENVIRONMENT,
                "Not a git repository",
            )
            .line("Directory", path.display().to_string())
            .line("Reason", reason)
            .help("run grite inside a git repository or a worktree of one, or name one with -C DIR")
            .details(json!({ "path": path })),
            Error::Repository { action, reason } => {
                CliError::new("repository_error", exit::ENVIRONMENT, "Repository error")
                    .line("While", action)
                    .line("Reason", reason.clone())
                    .help("check that the repository is writable and healthy (`git fsck`)")
                    .details(json!({ "action": action, "reason": reason }))
            }
            Error::Busy { waited_ms, reason } => {
                CliError::new("repository_busy", exit::ENVIRONMENT, "Repository busy")
                    .line("Reason", reason.clone())
                    .help("another git process is writing these refs: try again; if none is running, a killed one left the `.lock` files named above, which `grite lock status` lists once they are old")
                    .details(json!({ "waited_ms": waited_ms, "reason": reason }))
            }
            Error::StaleLockFiles { files } => {
                let mut error = CliError::new(
                    "stale_lock_file",
                    exit::ENVIRONMENT,
                    "Stale lock file",
                );
                for file in &files {
                    error = error.line(
                        "File",
                        format!(
                            "{} ({} old)",
                            file.path.display(),
                            span(u64::try_from(file.age.as_millis()).unwrap_or(u64::MAX))
                        ),
                    );
                }
                let removal = files
                    .iter()
                    .map(|f| f.removal())
                    .collect::<Vec<_>>()
                    .join(" && ");
                error
                    .help(format!("a process that was killed while writing refs left these behind, and no write can take their refs until they are gone; if no git or grite process is running in that repository, remove them: {removal}"))
                    .details(json!({
                        "files": files.iter().map(|f| json!({
                            "path": f.path,
                            "age_ms": u64::try_from(f.age.as_millis()).unwrap_or(u64::MAX),
                            "remove_with": f.removal(),
                        })).collect::<Vec<_>>(),
                    }))
            }
            Error::Config { path, reason, at } => {
                let error = CliError::new("invalid_config", exit::ENVIRONMENT, "Invalid configuration")
                    .line("File", path.display().to_string())
                    .line("Reason", reason.clone())
                    .help("fix or remove the file; its keys are lock_policy (\"off\", \"warn\" or \"require\"), default_actor, lock_grace, lock_steal (\"clock\" or \"observed\"), lock_remote and lock_remote_timeout")
                    .details(json!({ "path": path, "reason": reason }));
                match at {
                    Some(at) => error.snippet(&path.display().to_string(), &at.text, at.span.clone(), &at.label),
                    None => error,
                }
            }
            Error::Remote { remote, reason } => {
                CliError::new("remote_error", exit::ENVIRONMENT, "Remote error")
                    .line("Remote", remote.clone())
                    .line("Reason", reason.clone())
                    .help("check that the remote is reachable and that you may push to it (`git ls-remote` and `git push` to it should work); nothing was changed")
                    .details(json!({ "remote": remote, "reason": reason }))
            }
            Error::BadRemote { remote, reason } => {
                CliError::new("invalid_args", exit::INVALID_ARGS, "Invalid remote")
                    .line("Remote", remote.clone())
                    .line("Reason", reason.clone())
                    .help("name a configured remote (`git remote -v`), a path, or a file://, ssh:// or git:// URL")
                    .details(json!({ "remote": remote, "reason": reason }))
            }
            Error::CorruptLock {
                ref_name,
                reason,
                remove_with,
            } => CliError::new("corrupt_lock", exit::OTHER, "Corrupt lock")
                .line("Ref", ref_name.clone())
                .line("Reason", reason.clone())
                .help(format!(
                    "no lock can be taken on it until the ref is repaired or deleted; inspect it with `git cat-file -p {ref_name}` and, if it holds nothing worth keeping, delete it with `{remove_with}`"
                ))
                .details(json!({ "ref": ref_name, "reason": reason, "remove_with": remove_with })),
            Error::Held {
                holder,
                takeable_at,
            } => CliError::new("conflict", exit::CONFLICT, "Lock conflict")
                .line("Resource", holder.resource.clone())
                .line("Owner", holder.owner.clone())
                .line("Expires", holder.expires().to_string())
                .help(format!(
                    "the lock can be taken over from {takeable_at} if not renewed; or ask {} to release it",
                    short(&holder.owner)
                ))
                .details(json!({
                    "resource": holder.resource,
                    "holder": lock_json(&holder),
                    "takeable_at_unix_ms": takeable_at.0,
                })),
            Error::NotOwner { holder } => {
                CliError::new("conflict", exit::CONFLICT, "Lock held by another actor")
                    .line("Resource", holder.resource.clone())
                    .line("Owner", holder.owner.clone())
                    .line("Expires", holder.expires().to_string())
                    .help("if you held this lock, your lease expired and another actor took it over: stop the protected work")
                    .details(json!({ "resource": holder.resource, "holder": lock_json(&holder) }))
            }
            Error::Blocked { resource, by } => {
                let mut error = CliError::new("conflict", exit::CONFLICT, "Lock conflict")
                    .line("Resource", resource.clone());
                for holder in &by {
                    error = error
                        .line("Conflicts with", holder.resource.clone())
                        .line("Owner", holder.owner.clone())
                        .line("Expires", holder.expires().to_string());
                }
                error
                    .help("a repo: lock conflicts with every lock, and a path lock with the paths inside it and around it; wait for these to be released")
                    .details(json!({
                        "resource": resource,
                        "conflicts": by.iter().map(lock_json).collect::<Vec<_>>(),
                    }))
            }
            Error::Refused { errors } => {
                let parts: Vec<CliError> = errors.into_iter().map(CliError::from).collect();
                let conflict = parts.iter().any(|p| p.exit == exit::CONFLICT);
                let (code, exit) = if conflict {
                    ("conflict", exit::CONFLICT)
                } else {
                    (parts[0].code, parts[0].exit)
                };
                let mut error = CliError::new(code, exit, "Locks refused; none was taken");
                let mut details = Vec::new();
                for part in &parts {
                    error = error.line("Refused", part.title.clone());
                    for (key, value) in &part.lines {
                        error = error.line(key, value.clone());
                    }
                    details.push(json!({ "code": part.code, "details": part.details }));
                }
                let help = parts[0].help.clone().unwrap_or_default();
                error
                    .help(format!("resources asked for together are granted all or none; {help}"))
                    .details(json!({ "refusals": details }))
            }
            Error::NoHistory { resource, ref_name } => {
                CliError::new("not_found", exit::NOT_FOUND, "No lock history")
                    .line("Resource", resource.clone())
                    .line("Ref", ref_name.clone())
                    .help("this resource was never locked here, or gc removed its lock and its history; `grite lock log` lists the history of every lock")
                    .details(json!({ "resource": resource, "ref": ref_name }))
            }
            Error::NotHeld { resource } => CliError::new("not_found", exit::NOT_FOUND, "Lock not held")
                .line("Resource", resource.clone())
                .help("nobody holds this lock; take it with `grite lock acquire`")
                .details(json!({ "resource": resource })),
            Error::OutOfRange { resource } => {
                CliError::new("out_of_range", exit::OTHER, "Time out of range")
                    .line("Resource", resource.clone())
                    .line("Reason", message.clone())
                    .help("check the system clock (`date -u`) and the stored record (`git cat-file -p <ref>:lock.json`)")
                    .details(json!({ "resource": resource }))
            }
        }
    }
}

/// Resources and the locks in their way, as JSON.
pub fn blocked_json(blocked: &[(Resource, Vec<LockRecord>)]) -> Value {
    blocked
        .iter()
        .map(|(resource, holders)| {
            json!({
                "resource": resource.to_string(),
                "conflicts": holders.iter().map(lock_json).collect::<Vec<_>>(),
            })
        })
        .collect()
}
