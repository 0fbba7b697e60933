//! What the commands print: the reports they make and their human text,
//! for success and failure (the JSON is in `output_json.rs`). Text from
//! outside (owners, resources, reasons) reaches the terminal only through
//! [`esc`].

use std::fmt::Write as _;
use std::path::PathBuf;

use super::error::{CliError, Snippet};
use super::fields::{esc, plural};
use super::history::log_human;
use super::hooks::HookChange;
use super::notices::notice_human;
use super::run::Ran;
use super::status_view::{check_human, status_human};
use crate::lease::{ActorId, LockRecord, Resource, UnixMillis};
use crate::remote::fetch::Fetched;
use crate::store::{
    Acquired, Acquisition, GcReport, LockPolicy, LogEntry, Notice, Released, Status,
};

pub const SCHEMA_VERSION: u32 = 1;

/// Where the actor in use came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorSource {
    Flag,
    Env,
    Config,
    Created,
}

/// A successful command's result.
pub enum Report {
    /// One outcome a resource asked for, in the order asked.
    Acquired(Vec<Acquired>),
    Renewed(Vec<LockRecord>),
    Released(Vec<(Resource, Released)>),
    Ran(Ran),
    Actor {
        actor: ActorId,
        source: ActorSource,
        config: PathBuf,
    },
    ConfigSet {
        key: String,
        value: String,
        path: PathBuf,
    },
    Status {
        status: Status,
        /// The actor asking, whose locks are marked; none when no actor
        /// was given or configured yet.
        me: Option<ActorId>,
    },
    Log {
        /// The resource asked about; none for every lock.
        resource: Option<Resource>,
        entries: Vec<LogEntry>,
    },
    Gc(GcReport),
    Check {
        /// The one resource asked about, when exactly one was named and
        /// no paths were added: the output then keeps its single shape.
        single: Option<Resource>,
        /// How many resources were checked.
        checked: usize,
        policy: LockPolicy,
        /// The resources something stands in the way of, with what.
        blocked: Vec<(Resource, Vec<LockRecord>)>,
    },
    Hooks(Vec<HookChange>),
    Synced {
        remote: String,
        fetched: Fetched,
    },
}

/// Human text for standard output, and warnings for standard error.
pub struct Human {
    pub out: String,
    pub warn: String,
}

impl Report {
    /// grite's exit code after this success: 0, or the status `lock run`'s
    /// command ended with.
    pub fn exit_code(&self) -> u8 {
        match self {
            Report::Ran(ran) => ran.exit_code(),
            _ => 0,
        }
    }
}

/// `Error: <title>`, indented detail lines, then the help line.
pub fn error_human(error: &CliError) -> String {
    let mut text = format!("Error: {}\n", esc(&error.title));
    for (key, value) in &error.lines {
        let _ = writeln!(text, "  {key}: {}", esc(value));
    }
    if let Some(snippet) = &error.snippet {
        text.push_str(&snippet_human(snippet));
    }
    if let Some(help) = &error.help {
        let _ = writeln!(text, "help: {}", esc(help));
    }
    text
}

/// The snippet as miette draws it, without the message line miette puts
/// above it (the error's own lines are that).
fn snippet_human(snippet: &Snippet) -> String {
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_width(120)
            .with_context_lines(1);
    let mut drawn = String::new();
    if handler.render_report(&mut drawn, snippet).is_err() {
        return String::new();
    }
    let mut lines: Vec<&str> = drawn
        .lines()
        .skip_while(|line| !line.contains('╭'))
        .collect();
    while lines.last().is_some_and(|line| line.trim().is_empty()) {
        lines.pop();
    }
    lines.iter().map(|line| format!("{line}\n")).collect()
}

pub fn success_human(report: &Report, notices: &[Notice], now: UnixMillis) -> Human {
    let mut out = String::new();
    let mut warn = String::new();
    match report {
        Report::Acquired(acquired) => {
            for acquired in acquired {
                let title = match acquired.how {
                    Acquisition::AlreadyHeld => "Lock already held",
                    _ => "Lock acquired",
                };
                lease_block(&mut out, title, &acquired.lock);
                match &acquired.how {
                    Acquisition::Stolen { from } => {
                        let _ = writeln!(out, "  Taken over from: {} (lease expired)", esc(from));
                    }
                    Acquisition::Reacquired => {
                        let _ = writeln!(
                            out,
                            "  Note: your previous lease had expired; this is a new one"
                        );
                    }
                    Acquisition::New | Acquisition::AlreadyHeld => {}
                }
            }
        }
        Report::Renewed(locks) => {
            for lock in locks {
                lease_block(&mut out, "Lock renewed", lock);
            }
        }
        Report::Released(released) => {
            for (resource, outcome) in released {
                let title = match outcome {
                    Released::Released(_) => "Lock released",
                    Released::NotHeld => "No lock to release",
                };
                let _ = writeln!(out, "{title}\n  Resource: {resource}");
            }
        }
        // The command's own output is what a person reads; grite speaks
        // only if it could not release.
        Report::Ran(ran) => {
            if let Some(reason) = &ran.release_failed {
                let _ = writeln!(
                    warn,
                    "Warning: the command ended, but its locks could not be released: {}\n  they expire by themselves; release them with `grite lock release`",
                    esc(reason)
                );
            }
        }
        Report::Status { status, me } => status_human(&mut out, status, me.as_ref()),
        Report::Actor {
            actor,
            source,
            config,
        } => {
            let from = match source {
                ActorSource::Flag => "--actor".to_owned(),
                ActorSource::Env => "the GRITE_ACTOR environment variable".to_owned(),
                ActorSource::Config => format!("default_actor in {}", config.display()),
                ActorSource::Created => {
                    format!("new; saved as default_actor in {}", config.display())
                }
            };
            let _ = writeln!(out, "Actor: {actor}\n  From: {}", esc(&from));
        }
        Report::ConfigSet { key, value, path } => {
            let _ = writeln!(
                out,
                "Set {key} = {}\n  File: {}",
                esc(value),
                esc(&path.display().to_string())
            );
        }
        Report::Log { entries, .. } => log_human(&mut out, entries),
        Report::Gc(report) => {
            let _ = writeln!(
                out,
                "Removed {} expired or released lock{}, kept {}",
                report.removed.len(),
                plural(report.removed.len()),
                report.kept
            );
            if report.unreadable > 0 {
                let _ = writeln!(
                    out,
                    "Left {} unreadable lock ref{} alone (see `grite lock status`)",
                    report.unreadable,
                    plural(report.unreadable)
                );
            }
        }
        Report::Synced { remote, fetched } => {
            let _ = writeln!(
                out,
                "Synced with {}\n  Updated: {}\n  Pruned: {}",
                esc(remote),
                fetched.updated.len(),
                fetched.pruned.len()
            );
        }
        Report::Check {
            single,
            checked,
            policy,
            blocked,
        } => check_human(
            &mut out,
            &mut warn,
            single.as_ref(),
            *checked,
            *policy,
            blocked,
            now,
        ),
        Report::Hooks(changes) => {
            for change in changes {
                let _ = writeln!(
                    out,
                    "{}\n  File: {}",
                    change.action.describe(change.hook),
                    esc(&change.path.display().to_string())
                );
            }
        }
    }
    for notice in notices {
        notice_human(&mut warn, notice);
    }
    Human { out, warn }
}

fn lease_block(out: &mut String, title: &str, lock: &LockRecord) {
    let _ = writeln!(
        out,
        "{title}\n  Resource: {}\n  Expires: {}\n  Fencing token: {}",
        esc(&lock.resource),
        lock.expires(),
        lock.fencing_token
    );
}

pub(super) fn source_name(source: ActorSource) -> &'static str {
    match source {
        ActorSource::Flag => "flag",
        ActorSource::Env => "environment",
        ActorSource::Config => "config",
        ActorSource::Created => "created",
    }
}

pub fn policy_name(policy: LockPolicy) -> &'static str {
    match policy {
        LockPolicy::Off => "off",
        LockPolicy::Warn => "warn",
        LockPolicy::Require => "require",
    }
}
