//! What the commands print: the human text of SPEC section 5 and the JSON
//! envelope (`schema_version` 1), for success and failure.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::error::CliError;
use crate::lease::{LockRecord, Resource, UnixMillis};
use crate::remote::fetch::Fetched;
use crate::store::{Acquired, Acquisition, GcReport, LockPolicy, Released, Status};

pub const SCHEMA_VERSION: u32 = 1;

/// A successful command's result.
pub enum Report {
    Acquired(Acquired),
    Renewed(LockRecord),
    Released {
        resource: Resource,
        outcome: Released,
    },
    Status(Status),
    Gc(GcReport),
    Check {
        resource: Resource,
        policy: LockPolicy,
        in_the_way: Vec<LockRecord>,
    },
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

/// The first eight characters of an owner, as status shows it.
pub fn short(owner: &str) -> &str {
    owner
        .char_indices()
        .nth(8)
        .map_or(owner, |(end, _)| &owner[..end])
}

/// A lock as it appears in JSON output.
pub fn lock_json(record: &LockRecord) -> Value {
    let mut value = json!({
        "resource": record.resource,
        "owner": record.owner,
        "nonce": record.nonce,
        "expires_unix_ms": record.expires_unix_ms,
        "fencing_token": record.fencing_token,
        "ref": Resource::parse(&record.resource).map(|r| r.ref_name()).ok(),
    });
    if let Some(acquired) = record.acquired_unix_ms {
        value["acquired_unix_ms"] = json!(acquired);
    }
    value
}

pub fn success_json(report: &Report) -> Value {
    let data = match report {
        Report::Acquired(acquired) => {
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
        Report::Renewed(lock) => json!({ "lock": lock_json(lock) }),
        Report::Released { resource, outcome } => match outcome {
            Released::Released(lock) => {
                json!({ "resource": resource.to_string(), "released": true, "lock": lock_json(lock) })
            }
            Released::NotHeld => {
                json!({ "resource": resource.to_string(), "released": false, "lock": null })
            }
        },
        Report::Status(status) => json!({
            "now_unix_ms": status.now.0,
            "locks": status.locks.iter().map(lock_json).collect::<Vec<_>>(),
            "expired": status.expired.iter().map(lock_json).collect::<Vec<_>>(),
            "released": status.released.iter().map(lock_json).collect::<Vec<_>>(),
            "conflicts": status.conflicts.iter().map(|(a, b)| json!([lock_json(a), lock_json(b)])).collect::<Vec<_>>(),
            "unreadable": status.unreadable.iter().map(|u| json!({ "ref": u.ref_name, "reason": u.reason })).collect::<Vec<_>>(),
        }),
        Report::Gc(report) => json!({
            "removed": report.removed.len(),
            "kept": report.kept,
            "unreadable": report.unreadable,
            "removed_locks": report.removed.iter().map(lock_json).collect::<Vec<_>>(),
        }),
        Report::Check {
            resource,
            policy,
            in_the_way,
        } => json!({
            "resource": resource.to_string(),
            "policy": policy_name(*policy),
            "conflicts": in_the_way.iter().map(lock_json).collect::<Vec<_>>(),
        }),
        Report::Synced { remote, fetched } => json!({
            "remote": remote,
            "updated": fetched.updated,
            "pruned": fetched.pruned,
        }),
    };
    json!({ "schema_version": SCHEMA_VERSION, "ok": true, "data": data })
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
    let mut text = format!("Error: {}\n", error.title);
    for (key, value) in &error.lines {
        let _ = writeln!(text, "  {key}: {value}");
    }
    if let Some(help) = &error.help {
        let _ = writeln!(text, "help: {help}");
    }
    text
}

pub fn success_human(report: &Report, now: UnixMillis) -> Human {
    let mut out = String::new();
    let mut warn = String::new();
    match report {
        Report::Acquired(acquired) => {
            let title = match acquired.how {
                Acquisition::AlreadyHeld => "Lock already held",
                _ => "Lock acquired",
            };
            lease_block(&mut out, title, &acquired.lock);
            match &acquired.how {
                Acquisition::Stolen { from } => {
                    let _ = writeln!(out, "  Taken over from: {from} (lease expired)");
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
        Report::Renewed(lock) => lease_block(&mut out, "Lock renewed", lock),
        Report::Released { resource, outcome } => {
            let title = match outcome {
                Released::Released(_) => "Lock released",
                Released::NotHeld => "No lock to release",
            };
            let _ = writeln!(out, "{title}\n  Resource: {resource}");
        }
        Report::Status(status) => status_human(&mut out, status),
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
                "Synced with {remote}\n  Updated: {}\n  Pruned: {}",
                fetched.updated.len(),
                fetched.pruned.len()
            );
        }
        Report::Check {
            resource,
            policy,
            in_the_way,
        } => {
            if *policy == LockPolicy::Off {
                let _ = writeln!(out, "Lock policy is off\n  Resource: {resource}");
            } else if in_the_way.is_empty() {
                let _ = writeln!(out, "No conflicting locks\n  Resource: {resource}");
            } else {
                let _ = writeln!(
                    warn,
                    "Warning: locked by another actor\n  Resource: {resource}"
                );
                for holder in in_the_way {
                    let _ = writeln!(
                        warn,
                        "  Locked: {}\n  Owner: {}\n  Expires: {} ({})",
                        holder.resource,
                        holder.owner,
                        holder.expires(),
                        relative(holder.expires(), now)
                    );
                }
            }
        }
    }
    Human { out, warn }
}

fn lease_block(out: &mut String, title: &str, lock: &LockRecord) {
    let _ = writeln!(
        out,
        "{title}\n  Resource: {}\n  Expires: {}\n  Fencing token: {}",
        lock.resource,
        lock.expires(),
        lock.fencing_token
    );
}

fn status_human(out: &mut String, status: &Status) {
    if status.locks.is_empty() {
        let _ = writeln!(out, "No active locks");
    } else {
        let _ = writeln!(out, "Active Locks:");
        lock_lines(out, &status.locks, status.now);
    }
    if !status.expired.is_empty() {
        let _ = writeln!(out, "Expired Locks:");
        lock_lines(out, &status.expired, status.now);
    }
    if !status.released.is_empty() {
        let _ = writeln!(out, "Released Locks:");
        for lock in &status.released {
            let _ = writeln!(out, "  {}  {}", lock.resource, short(&lock.owner));
        }
    }
    if !status.conflicts.is_empty() {
        let _ = writeln!(out, "Conflicts:");
        for (a, b) in &status.conflicts {
            let _ = writeln!(
                out,
                "  {} ({}) conflicts with {} ({})",
                a.resource,
                short(&a.owner),
                b.resource,
                short(&b.owner)
            );
        }
    }
    if !status.unreadable.is_empty() {
        let _ = writeln!(out, "Unreadable lock refs:");
        for u in &status.unreadable {
            let _ = writeln!(out, "  {}: {}", u.ref_name, u.reason);
        }
    }
}

fn lock_lines(out: &mut String, locks: &[LockRecord], now: UnixMillis) {
    let width = locks
        .iter()
        .map(|l| l.resource.chars().count())
        .max()
        .unwrap_or(0);
    for lock in locks {
        let _ = writeln!(
            out,
            "  {:<width$}  {}  {}",
            lock.resource,
            short(&lock.owner),
            relative(lock.expires(), now)
        );
    }
}

/// `expires in 25m`, `expired 3m ago`.
pub fn relative(expires: UnixMillis, now: UnixMillis) -> String {
    if expires > now {
        format!("expires in {}", span(expires.0 - now.0))
    } else {
        format!("expired {} ago", span(now.0 - expires.0))
    }
}

/// A duration in its two largest units, rounded up to the second.
fn span(millis: u64) -> String {
    let secs = millis.div_ceil(1000);
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) if s == 0 => format!("{m}m"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, 0) => format!("{h}h"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

pub fn policy_name(policy: LockPolicy) -> &'static str {
    match policy {
        LockPolicy::Off => "off",
        LockPolicy::Warn => "warn",
        LockPolicy::Require => "require",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_read_like_the_spec() {
        let now = UnixMillis(1_000_000);
        assert_eq!(
            relative(UnixMillis(now.0 + 25 * 60_000), now),
            "expires in 25m"
        );
        assert_eq!(relative(UnixMillis(now.0 + 1), now), "expires in 1s");
        assert_eq!(
            relative(UnixMillis(now.0 + 90_000), now),
            "expires in 1m 30s"
        );
        assert_eq!(
            relative(UnixMillis(now.0 + 2 * 3_600_000 + 60_000), now),
            "expires in 2h 1m"
        );
        assert_eq!(relative(now, now), "expired 0s ago");
        assert_eq!(relative(UnixMillis(now.0 - 180_000), now), "expired 3m ago");
    }

    #[test]
    fn short_owner_is_eight_characters_at_most() {
        assert_eq!(short("e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0"), "e5f6a7b8");
        assert_eq!(short("bob"), "bob");
    }
}
