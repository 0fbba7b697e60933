//! Every failure the command line reports, with its JSON code, exit code,
//! the detail lines people read and a help line. The exit codes are here
//! (the README's table); the store's errors are mapped to them in
//! `store_error.rs`.

use std::process::ExitCode;

use serde_json::{Value, json};

use super::fields::{blocks_line, by_holder, lock_json, printable};
use crate::lease::{LockRecord, Resource};

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
    pub(super) fn new(code: &'static str, exit: u8, title: impl Into<String>) -> CliError {
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

    pub(super) fn line(mut self, key: &'static str, value: impl Into<String>) -> CliError {
        self.lines.push((key, value.into()));
        self
    }

    pub(super) fn help(mut self, help: impl Into<String>) -> CliError {
        self.help = Some(help.into());
        self
    }

    pub(super) fn details(mut self, details: Value) -> CliError {
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
