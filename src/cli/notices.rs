//! What an operation had to tell besides its result: warnings in the JSON
//! envelope, `Warning:` lines (and what the remote said) on standard error.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::fields::{esc, lock_json, short, span};
use crate::store::Notice;

/// A notice as a JSON warning; what a remote said is for people only.
pub(super) fn notice_json(notice: &Notice) -> Option<Value> {
    let (code, details) = match notice {
        Notice::RemoteSaid { .. } => return None,
        Notice::MistypedSetting { key, nearest } => (
            "mistyped_setting",
            json!({ "key": key, "nearest": nearest }),
        ),
        Notice::MirrorBehind { reason } => ("mirror_behind", json!({ "reason": reason })),
        Notice::PrunedLiveLock {
            lock,
            ref_name,
            commit,
        } => (
            "pruned_live_lock",
            json!({ "lock": lock_json(lock), "ref": ref_name, "commit": commit }),
        ),
        Notice::ClockSkew { lock, ahead } => (
            "clock_skew",
            json!({ "lock": lock_json(lock), "ahead_ms": u64::try_from(ahead.as_millis()).unwrap_or(u64::MAX) }),
        ),
    };
    let mut text = String::new();
    notice_human(&mut text, notice);
    Some(
        json!({ "code": code, "message": text.trim_start_matches("Warning: ").trim_end(), "details": details }),
    )
}

pub(super) fn notice_human(out: &mut String, notice: &Notice) {
    match notice {
        Notice::RemoteSaid { lines } => {
            for line in lines {
                let _ = writeln!(out, "remote: {}", esc(line));
            }
        }
        Notice::MistypedSetting { key, nearest } => {
            let _ = writeln!(
                out,
                "Warning: .git/grite/config.toml sets `{}`, which grite does not read; did you mean `{nearest}`? (`grite config set {nearest} VALUE`)",
                esc(key)
            );
        }
        Notice::MirrorBehind { reason } => {
            let _ = writeln!(
                out,
                "Warning: the remote holds the change, but the local copy of its lock refs could not follow: {}\n  the next command through the remote, or `grite lock sync`, brings it up to date",
                esc(reason)
            );
        }
        Notice::PrunedLiveLock {
            lock,
            ref_name,
            commit,
        } => {
            let _ = writeln!(
                out,
                "Warning: the live lock on {} of {} existed only in this repository and was removed to match the remote, which does not have it\n  to restore the local ref: git update-ref {ref_name} {commit}; to hold the lock, acquire it through the remote",
                esc(&lock.resource),
                esc(&lock.owner)
            );
        }
        Notice::ClockSkew { lock, ahead } => {
            let _ = writeln!(
                out,
                "Warning: the lock on {} was written by {} at a time {} ahead of this machine's clock: one of the two clocks is wrong (compare `date -u` on both machines)",
                esc(&lock.resource),
                short(&lock.owner),
                span(u64::try_from(ahead.as_millis()).unwrap_or(u64::MAX))
            );
        }
    }
}
