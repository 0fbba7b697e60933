//! The JSON answers (`schema_version` 1), for success and failure: one
//! object on standard output, the status written as it is serialized.

use serde_json::{Value, json};

use super::error::{CliError, blocked_json};
use super::fields::{Each, each, lock_json};
use super::history::log_json;
use super::notices::notice_json;
use super::output::{Report, SCHEMA_VERSION, policy_name, source_name};
use super::status_view::StatusJson;
use crate::lease::{LockRecord, Resource};
use crate::store::{Acquired, Acquisition, Notice, Released};

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

/// What a successful command answers under `data`: a value, or one of the
/// answers that can list a hundred thousand locks (the status, what gc
/// removed), which are written as they are serialized.
enum Data<'a> {
    Value(Value),
    Status(StatusJson<'a>),
    Gc(GcJson<'a>),
}

impl serde::Serialize for Data<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Data::Value(value) => value.serialize(serializer),
            Data::Status(status) => status.serialize(serializer),
            Data::Gc(gc) => gc.serialize(serializer),
        }
    }
}

/// What gc did, in the order of its keys.
#[derive(serde::Serialize)]
struct GcJson<'a> {
    removed: usize,
    kept: usize,
    unreadable: usize,
    removed_locks: Each<'a, LockRecord, fn(&LockRecord) -> Value>,
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
        Report::Gc(report) => {
            return Data::Gc(GcJson {
                removed: report.removed.len(),
                kept: report.kept,
                unreadable: report.unreadable,
                removed_locks: each(&report.removed, lock_json),
            });
        }
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
