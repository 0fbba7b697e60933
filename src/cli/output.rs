//! What the commands print: the human text of the protocol notes
//! (docs/PROTOCOL.md) and the JSON envelope (`schema_version` 1), for
//! success and failure. Text from outside (owners, resources, reasons)
//! reaches the terminal only through [`esc`].

use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::{Value, json};

use super::error::{CliError, Snippet, blocked_json};
use super::fields::{esc, lock_json, plural};
use super::history::{log_human, log_json};
use super::hooks::HookChange;
use super::notices::{notice_human, notice_json};
use super::run::Ran;
use super::status_view::{StatusJson, check_human, status_human};
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

/// One resource's acquisition, as JSON.
fn acquired_json(acquired: &Acquired) -> Value {
    let (outcome, previous_owner) = match &acquired.how {
        Acquisition::New => ("acquired", None),
        Acquisition::AlreadyHeld => ("already_held", None),
        Acquisition::Reacquired => ("reacquired", None),
        Acquisition::Stolen { from } => ("stolen", Some(from.clone())),
    };
    json!({
        "lock": lock_json(&acquired.lock),
        "outcome": outcome,
        "previous_owner": previous_owner,
    })
}

/// One resource's release, as JSON.
fn released_json(resource: &Resource, outcome: &Released) -> Value {
    match outcome {
        Released::Released(lock) => {
            json!({ "resource": resource.to_string(), "released": true, "lock": lock_json(lock) })
        }
        Released::NotHeld => {
            json!({ "resource": resource.to_string(), "released": false, "lock": null })
        }
    }
}

/// A request for one resource answers as it always has; one for several
/// lists an answer each under `key`.
fn one_or_all<T>(items: &[T], key: &str, each: impl Fn(&T) -> Value) -> Value {
    match items {
        [one] => each(one),
        all => json!({ key: all.iter().map(each).collect::<Vec<_>>() }),
    }
}

/// What a successful command answers under `data`: a value, or the
/// status, which is written as it is serialized.
enum Data<'a> {
    Value(Value),
    Status(StatusJson<'a>),
}

impl serde::Serialize for Data<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Data::Value(value) => value.serialize(serializer),
            Data::Status(status) => status.serialize(serializer),
        }
    }
}

/// The envelope of a success, in the order of its keys.
#[derive(serde::Serialize)]
struct Success<'a> {
    schema_version: u32,
    ok: bool,
    data: Data<'a>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<Value>,
}

/// Writes the JSON answer of a success to `out`, one line.
pub fn write_success_json(
    out: &mut impl std::io::Write,
    report: &Report,
    notices: &[Notice],
) -> std::io::Result<()> {
    let success = Success {
        schema_version: SCHEMA_VERSION,
        ok: true,
        data: data_json(report),
        warnings: notices.iter().filter_map(notice_json).collect(),
    };
    serde_json::to_writer(&mut *out, &success)?;
    out.write_all(b"\n")
}

fn data_json(report: &Report) -> Data<'_> {
    let data = match report {
        Report::Acquired(acquired) => one_or_all(acquired, "acquired", acquired_json),
        Report::Renewed(locks) => {
            one_or_all(locks, "renewed", |lock| json!({ "lock": lock_json(lock) }))
        }
        Report::Released(released) => one_or_all(released, "releases", |(resource, outcome)| {
            released_json(resource, outcome)
        }),
        Report::Ran(ran) => json!({
            "locks": ran.locks.iter().map(lock_json).collect::<Vec<_>>(),
            "exit_code": ran.code,
            "signal": ran.signal,
            "released": ran.release_failed.is_none(),
            "release_error": ran.release_failed,
        }),
        Report::Actor {
            actor,
            source,
            config,
        } => json!({
            "actor": actor.as_str(),
            "source": source_name(*source),
            "config": config,
        }),
        Report::ConfigSet { key, value, path } => json!({
            "key": key,
            "value": value,
            "file": path,
        }),
        Report::Status { status, me } => {
            return Data::Status(StatusJson {
                status,
                me: me.as_ref(),
            });
        }
        Report::Log { resource, entries } => json!({
            "resource": resource.as_ref().map(ToString::to_string),
            "entries": log_json(entries),
        }),
        Report::Gc(report) => json!({
            "removed": report.removed.len(),
            "kept": report.kept,
            "unreadable": report.unreadable,
            "removed_locks": report.removed.iter().map(lock_json).collect::<Vec<_>>(),
        }),
        Report::Check {
            single: Some(resource),
            policy,
            blocked,
            ..
        } => json!({
            "resource": resource.to_string(),
            "policy": policy_name(*policy),
            "conflicts": blocked.first().map(|(_, holders)| holders.iter().map(lock_json).collect::<Vec<_>>()).unwrap_or_default(),
        }),
        Report::Check {
            single: None,
            checked,
            policy,
            blocked,
        } => json!({
            "policy": policy_name(*policy),
            "checked": checked,
            "blocked": blocked_json(blocked),
        }),
        Report::Hooks(changes) => json!({
            "hooks": changes.iter().map(|c| json!({
                "hook": c.hook,
                "path": c.path,
                "action": c.action.name(),
            })).collect::<Vec<_>>(),
        }),
        Report::Synced { remote, fetched } => json!({
            "remote": remote,
            "updated": fetched.updated,
            "pruned": fetched.pruned.iter().map(|(name, _)| name).collect::<Vec<_>>(),
        }),
    };
    Data::Value(data)
}

pub fn error_json(error: &CliError) -> Value {
    let message = std::iter::once(error.title.clone())
        .chain(error.lines.iter().map(|(k, v)| format!("{k}: {v}")))
        .collect::<Vec<_>>()
        .join("; ");
    json!({
        "schema_version": SCHEMA_VERSION,
        "ok": false,
        "error": {
            "code": error.code,
            "message": message,
            "help": error.help,
            "details": error.details,
        },
    })
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

fn source_name(source: ActorSource) -> &'static str {
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
