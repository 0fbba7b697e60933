//! What the operations of [`crate::Locks`] return.

use super::lockfiles::LockFile;
use crate::lease::{LockRecord, UnixMillis};

/// How far a long read or write has come, for an indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Lock refs read so far.
    Read(usize),
    /// Refs about to be removed in one transaction.
    Removing(usize),
}

/// How an acquire succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquisition {
    /// A new lease on a free lock.
    New,
    /// The actor already held the lock: the same lease stands, unchanged.
    AlreadyHeld,
    /// A new lease replacing the actor's own expired one.
    Reacquired,
    /// A new lease replacing another actor's, which had expired past the
    /// grace period.
    Stolen {
        /// The owner of the replaced lease.
        from: String,
    },
}

/// The outcome of [`crate::Locks::acquire`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acquired {
    /// The lease the actor now holds, with its fencing token.
    pub lock: LockRecord,
    /// How it was acquired.
    pub how: Acquisition,
}

/// The outcome of [`crate::Locks::release`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Released {
    /// The lease ended; this is the released record now stored.
    Released(LockRecord),
    /// Nobody held the lock; nothing was written.
    NotHeld,
}

/// A lock ref that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// The full ref name.
    pub ref_name: String,
    /// What is wrong with it.
    pub reason: String,
    /// A shell command that deletes it.
    pub remove_with: String,
}

/// What [`crate::Locks::status`] reports, each list sorted by resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The instant the status was taken at.
    pub now: UnixMillis,
    /// Live locks.
    pub locks: Vec<LockRecord>,
    /// Locks whose lease ran out and that nobody has taken or collected.
    pub expired: Vec<LockRecord>,
    /// Released locks not yet collected.
    pub released: Vec<LockRecord>,
    /// Pairs of live locks of different actors that conflict (possible only
    /// after repositories that worked apart were synced).
    pub conflicts: Vec<(LockRecord, LockRecord)>,
    /// Lock refs whose content is not a readable lock.
    pub unreadable: Vec<Unreadable>,
    /// Ref lock files of this repository that killed processes left behind
    /// (older than any live process holds one); each blocks writes to its
    /// ref until it is removed.
    pub stale_lock_files: Vec<LockFile>,
}

/// What [`crate::Locks::gc`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcReport {
    /// Removed records: released, or expired for at least the grace period.
    pub removed: Vec<LockRecord>,
    /// Records kept because they are live or within their grace period.
    pub kept: usize,
    /// Lock refs left alone because they cannot be read.
    pub unreadable: usize,
}
