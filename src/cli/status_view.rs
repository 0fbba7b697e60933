//! How `status` and `check` show what they found: your own locks marked,
//! holders named once with what they block.

use std::fmt::Write as _;

use serde::ser::{Serialize, SerializeMap as _, Serializer};
use serde_json::{Value, json};

use super::fields::{blocks_line, by_holder, each, esc, lock_json, plural, relative, short, span};
use crate::lease::{ActorId, LockRecord, Resource, UnixMillis};
use crate::store::{LockPolicy, Status};

/// Status as JSON: every lock marked `mine` or not. Serialized as it is
/// written, one lock at a time: a document of a hundred thousand locks is
/// never held whole in memory.
pub(super) struct StatusJson<'a> {
    pub status: &'a Status,
    pub me: Option<&'a ActorId>,
}

impl Serialize for StatusJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let status = self.status;
        let mut map = serializer.serialize_map(Some(7))?;
        map.serialize_entry("now_unix_ms", &status.now.0)?;
        map.serialize_entry("locks", &Marked(&status.locks, self.me))?;
        map.serialize_entry("expired", &Marked(&status.expired, self.me))?;
        map.serialize_entry("released", &Marked(&status.released, self.me))?;
        map.serialize_entry(
            "conflicts",
            &each(&status.conflicts, |(a, b)| {
                json!([lock_json(a), lock_json(b)])
            }),
        )?;
        map.serialize_entry(
            "unreadable",
            &each(&status.unreadable, |u| {
                json!({
                    "ref": u.ref_name,
                    "reason": u.reason,
                    "remove_with": u.remove_with,
                })
            }),
        )?;
        map.serialize_entry(
            "stale_lock_files",
            &each(&status.stale_lock_files, |f| {
                json!({
                    "path": f.path,
                    "age_ms": u64::try_from(f.age.as_millis()).unwrap_or(u64::MAX),
                    "remove_with": f.removal(),
                })
            }),
        )?;
        map.end()
    }
}

/// Locks, each marked `mine` or not, as a JSON list built item by item.
struct Marked<'a>(&'a [LockRecord], Option<&'a ActorId>);

impl Serialize for Marked<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|lock| marked_json(lock, self.1)))
    }
}

/// Status as lines: live locks, expired, released, conflicts, and what
/// cannot be read or was left behind.
pub(super) fn status_human(out: &mut String, status: &Status, me: Option<&ActorId>) {
    if status.locks.is_empty() {
        let _ = writeln!(out, "No active locks");
    } else {
        let _ = writeln!(out, "Active Locks:");
        lock_lines(out, &status.locks, status.now, me);
    }
    if !status.expired.is_empty() {
        let _ = writeln!(out, "Expired Locks:");
        lock_lines(out, &status.expired, status.now, me);
    }
    if !status.released.is_empty() {
        let _ = writeln!(out, "Released Locks:");
        for lock in &status.released {
            let _ = writeln!(
                out,
                "  {}  {}{}",
                esc(&lock.resource),
                short(&lock.owner),
                you(lock, me)
            );
        }
    }
    if !status.conflicts.is_empty() {
        let _ = writeln!(out, "Conflicts:");
        for (a, b) in &status.conflicts {
            let _ = writeln!(
                out,
                "  {} ({}) conflicts with {} ({})",
                esc(&a.resource),
                short(&a.owner),
                esc(&b.resource),
                short(&b.owner)
            );
        }
    }
    if !status.unreadable.is_empty() {
        let _ = writeln!(out, "Unreadable lock refs:");
        for u in &status.unreadable {
            let _ = writeln!(
                out,
                "  {}: {}\n    remove with: {}",
                esc(&u.ref_name),
                esc(&u.reason),
                esc(&u.remove_with)
            );
        }
    }
    if !status.stale_lock_files.is_empty() {
        let _ = writeln!(
            out,
            "Stale lock files (left by killed processes; each blocks writes to its ref):"
        );
        for file in &status.stale_lock_files {
            let _ = writeln!(
                out,
                "  {} ({} old)\n    if no git or grite process is running here, remove with: {}",
                esc(&file.path.display().to_string()),
                span(u64::try_from(file.age.as_millis()).unwrap_or(u64::MAX)),
                esc(&file.removal())
            );
        }
    }
}

fn lock_lines(out: &mut String, locks: &[LockRecord], now: UnixMillis, me: Option<&ActorId>) {
    let shown: Vec<_> = locks.iter().map(|l| esc(&l.resource)).collect();
    let width = shown.iter().map(|r| r.chars().count()).max().unwrap_or(0);
    for (lock, resource) in locks.iter().zip(&shown) {
        let _ = writeln!(
            out,
            "  {resource:<width$}  {}{}  {}",
            short(&lock.owner),
            you(lock, me),
            relative(lock.expires(), now)
        );
    }
}

pub(super) fn check_human(
    out: &mut String,
    warn: &mut String,
    single: Option<&Resource>,
    checked: usize,
    policy: LockPolicy,
    blocked: &[(Resource, Vec<LockRecord>)],
    now: UnixMillis,
) {
    let what = match single {
        Some(resource) => format!("  Resource: {}", esc(&resource.to_string())),
        None => format!("  Checked: {checked} resource{}", plural(checked)),
    };
    if policy == LockPolicy::Off {
        let _ = writeln!(out, "Lock policy is off\n{what}");
        return;
    }
    if blocked.is_empty() {
        let _ = writeln!(out, "No conflicting locks\n{what}");
        return;
    }
    let _ = writeln!(warn, "Warning: locked by another actor\n{what}");
    for (holder, blocks) in by_holder(blocked) {
        let _ = writeln!(
            warn,
            "  Locked: {}\n  Owner: {}\n  Expires: {} ({})",
            esc(&holder.resource),
            esc(&holder.owner),
            holder.expires(),
            relative(holder.expires(), now)
        );
        if single.is_none() {
            let _ = writeln!(warn, "  Blocks: {}", blocks_line(&blocks));
        }
    }
}

/// ` (you)` after an owner who is the actor asking.
fn you(lock: &LockRecord, me: Option<&ActorId>) -> &'static str {
    if is_mine(lock, me) { " (you)" } else { "" }
}

/// A lock in status JSON: marked `mine` when the actor asking holds it.
fn marked_json(lock: &LockRecord, me: Option<&ActorId>) -> Value {
    let mut value = lock_json(lock);
    value["mine"] = json!(is_mine(lock, me));
    value
}

fn is_mine(lock: &LockRecord, me: Option<&ActorId>) -> bool {
    me.is_some_and(|me| lock.owner == me.as_str())
}
