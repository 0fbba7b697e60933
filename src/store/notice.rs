//! Things an operation that succeeded has to tell: the user should know
//! them, but none of them makes the operation fail.

use std::time::Duration;

use crate::lease::LockRecord;

/// One thing worth telling about an operation that succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The remote accepted the change, but the local mirror of its lock
    /// refs could not follow; the next command against the remote (or
    /// `grite lock sync`) brings it up to date.
    MirrorBehind {
        /// Why the local refs could not be updated.
        reason: String,
    },
    /// A live lock that existed only in the local refs was removed to mirror
    /// the remote, which is the authority and does not have it.
    PrunedLiveLock {
        /// The record that was removed.
        lock: LockRecord,
        /// The ref it lived under.
        ref_name: String,
        /// The commit the ref pointed at, to restore it with
        /// `git update-ref <ref> <commit>`.
        commit: String,
    },
    /// A lock was acquired or renewed at a time ahead of this machine's
    /// clock by more than the grace period: one of the two clocks is wrong.
    ClockSkew {
        /// The record written in our future.
        lock: LockRecord,
        /// How far ahead of our clock it was written.
        ahead: Duration,
    },
    /// What the remote said while it took a push (its hooks' output, over
    /// `side-band-64k`), a line each, as `git push` shows it.
    RemoteSaid {
        /// Its lines.
        lines: Vec<String>,
    },
    /// A key of `.git/grite/config.toml` that is probably a misspelling of
    /// one of ours, and so is not read.
    MistypedSetting {
        /// The key as written.
        key: String,
        /// The key it probably means.
        nearest: &'static str,
    },
}
