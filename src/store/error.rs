//! Errors of the git backend. A lost compare-and-swap is not among them: the
//! backend re-reads and re-decides, and what the user finally sees is a
//! refusal naming the winner.

use std::path::PathBuf;

use super::lockfiles::LockFile;
use crate::lease::{LockRecord, UnixMillis};

/// Everything an operation of [`crate::Locks`] can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The directory is not inside a git repository.
    #[error("{path} is not in a git repository: {reason}")]
    NotARepository {
        /// The directory searched from.
        path: PathBuf,
        /// What the search said.
        reason: String,
    },

    /// Reading or writing the repository failed (permissions, disk, a
    /// broken object database).
    #[error("{action} failed: {reason}")]
    Repository {
        /// What was being done.
        action: &'static str,
        /// What went wrong.
        reason: String,
    },

    /// Another process kept a ref lock file (`<ref>.lock`, `packed-refs.lock`)
    /// for longer than we wait.
    #[error("the repository stayed locked by another process for {waited_ms} ms: {reason}")]
    Busy {
        /// How long we waited.
        waited_ms: u64,
        /// What stood in the way, with the lock files found.
        reason: String,
    },

    /// `.git/grite/config.toml` could not be read or written.
    #[error("{}: {reason}", path.display())]
    Config {
        /// The settings file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
        /// The place in the file to blame, when one is.
        at: Option<Box<Spot>>,
    },

    /// The remote could not be reached, read or written.
    #[error("remote {remote}: {reason}")]
    Remote {
        /// The remote's URL.
        remote: String,
        /// What went wrong.
        reason: String,
    },

    /// The remote advertises one of its lock state's refs (a lock ref, a
    /// version shard) without an object: git does so for a ref whose file
    /// it cannot read, a lock no one can read.
    #[error("remote {remote}: it advertises {ref_name} without an object")]
    BrokenRemoteRef {
        /// The remote's URL.
        remote: String,
        /// The broken ref.
        ref_name: String,
    },

    /// The remote named is not one we can use.
    #[error("remote {remote}: {reason}")]
    BadRemote {
        /// The remote as given.
        remote: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The lock ref of the requested resource holds something that is not a
    /// lock we can read.
    #[error("the lock ref {ref_name} is corrupt: {reason}")]
    CorruptLock {
        /// The full ref name.
        ref_name: String,
        /// What is wrong with it.
        reason: String,
        /// A shell command that deletes it.
        remove_with: String,
    },

    /// Ref lock files left behind by killed processes stand in the way of
    /// the write; waiting for them is pointless.
    #[error("{} lock file(s) left behind by a killed process", files.len())]
    StaleLockFiles {
        /// The lock files, with their ages.
        files: Vec<LockFile>,
    },

    /// Acquire of a lock another actor holds (or whose expiry is within the
    /// grace period).
    #[error("lock conflict on {}", holder.resource)]
    Held {
        /// The holder's record.
        holder: Box<LockRecord>,
        /// When another actor may take the lock over if it is not renewed.
        takeable_at: UnixMillis,
    },

    /// Renew or release of a lock whose record belongs to another actor: if
    /// the caller held it before, its lease was lost.
    #[error("{} is held by another actor", holder.resource)]
    NotOwner {
        /// The record of the actor it belongs to.
        holder: Box<LockRecord>,
    },

    /// A new lease that conflicts with other actors' locks on other
    /// resources.
    #[error("{resource} conflicts with {} lock(s) of other actors", by.len())]
    Blocked {
        /// The resource asked for.
        resource: String,
        /// The conflicting locks.
        by: Vec<LockRecord>,
    },

    /// Renew of a lock nobody holds.
    #[error("{resource} is not locked")]
    NotHeld {
        /// The resource asked for.
        resource: String,
    },

    /// `log` of a resource that has no lock ref.
    #[error("{resource} has no lock history here")]
    NoHistory {
        /// The resource asked for.
        resource: String,
        /// The ref its history would be under.
        ref_name: String,
    },

    /// Several resources asked for together, and some refused: nothing was
    /// written. Each refusal is one of the errors above.
    #[error("{} of the resources asked for together were refused", errors.len())]
    Refused {
        /// Why each refused resource was refused.
        errors: Vec<Error>,
    },

    /// The clock or a stored record is so far off that an expiry or a
    /// fencing token does not fit in 64 bits.
    #[error(
        "the expiry or fencing token of {resource} is out of range; check the system clock and the stored record"
    )]
    OutOfRange {
        /// The resource asked for.
        resource: String,
    },
}

/// A place in a text to blame for an error: the text, the bytes, and a few
/// words for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spot {
    /// The whole text.
    pub text: String,
    /// The bytes to blame.
    pub span: std::ops::Range<usize>,
    /// What to say under them.
    pub label: String,
}

impl Error {
    /// The refusals of a request: the one, or all of several together.
    pub(crate) fn refused(mut errors: Vec<Error>) -> Error {
        if errors.len() == 1 {
            errors.remove(0)
        } else {
            Error::Refused { errors }
        }
    }

    /// The repository could not do `action`: the reason with every cause
    /// under it, since gix's top messages alone ("Could not prepare
    /// reference edit") do not say what to do.
    pub(crate) fn repository(action: &'static str, error: impl std::error::Error) -> Error {
        Error::Repository {
            action,
            reason: crate::remote::error_chain(&error),
        }
    }
}
