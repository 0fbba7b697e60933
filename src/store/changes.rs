//! The ref changes of one transition, made either as a local transaction
//! ([`super::ref_update`]) or as receive-pack commands: the same
//! compare-and-swap; and how a local one fails.

use gix::ObjectId;
use gix::refs::transaction::{PreviousValue, RefEdit};
use gix::refs::{FullName, Target};

use crate::remote::protocol::Command;

/// What one round decided.
pub(super) enum Step<T> {
    /// Nothing to write: this is the outcome.
    Done(T),
    /// Write `changes` (with `objects`, for a remote) as one
    /// compare-and-swap; `outcome` is the result once it is written.
    Write {
        changes: Vec<RefChange>,
        objects: Vec<ObjectId>,
        outcome: T,
    },
}

impl<T> Step<T> {
    /// The same step with its outcome turned by `f`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Step<U> {
        match self {
            Step::Done(outcome) => Step::Done(f(outcome)),
            Step::Write {
                changes,
                objects,
                outcome,
            } => Step::Write {
                changes,
                objects,
                outcome: f(outcome),
            },
        }
    }
}

/// One ref edit of a transition, for a local transaction or a push: `old`
/// `None` means the ref must not exist, `new` `None` deletes it.
#[derive(Debug, Clone)]
pub(super) struct RefChange {
    pub name: String,
    pub old: Option<ObjectId>,
    pub new: Option<ObjectId>,
}

impl RefChange {
    pub fn edit(&self) -> Result<RefEdit, gix::Error> {
        let name = FullName::try_from(self.name.as_str()).map_err(gix::Error::from_error)?;
        let expected = match self.old {
            None => PreviousValue::MustNotExist,
            Some(id) => PreviousValue::MustExistAndMatch(Target::Object(id)),
        };
        Ok(match self.new {
            Some(new) => RefEdit::update(name, new, expected, "grite lock"),
            None => RefEdit::delete(name, expected),
        })
    }

    pub fn command(&self) -> Command {
        let null = ObjectId::null(gix::hash::Kind::Sha1);
        Command {
            old: self.old.unwrap_or(null),
            new: self.new.unwrap_or(null),
            name: self.name.clone(),
        }
    }
}

/// How a transaction of ref changes failed.
#[derive(Debug)]
pub(super) enum ApplyError {
    /// Another writer moved first: an expectation failed, or a ref
    /// vanished, or a folder another writer emptied vanished on the way.
    Lost,
    /// A lock file stands in the way (another process is writing these
    /// refs, or a killed one left it); in gix's words.
    Busy(String),
    /// Anything else, its causes told.
    Failed(String),
}

impl ApplyError {
    /// What `error`, from a transaction of `changes` in `repo`, means.
    pub fn classify(
        error: gix::Error,
        repo: &gix::Repository,
        changes: &[RefChange],
    ) -> ApplyError {
        if lost_race(&error, repo, changes) {
            ApplyError::Lost
        } else if error.is_retryable() {
            ApplyError::Busy(error.to_string())
        } else {
            ApplyError::Failed(crate::remote::error_chain(&error))
        }
    }
}

impl std::fmt::Display for ApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApplyError::Lost => f.write_str("another process moved the refs first"),
            ApplyError::Busy(reason) | ApplyError::Failed(reason) => f.write_str(reason),
        }
    }
}

/// Whether `error`, from a transaction of `changes` in `repo`, means
/// that another writer moved first: an expectation failed or a ref
/// vanished. Also a folder race: gix creates a ref's folders while other
/// writers remove the folders they emptied, and when one vanishes between
/// its creation and the check that it is a folder, gix says "not a
/// directory" (over "File exists"). Only if no folder on the refs' paths
/// is in fact a file is that a race, and the write is decided again.
fn lost_race(error: &gix::Error, repo: &gix::Repository, changes: &[RefChange]) -> bool {
    if error.is_conflict() || error.is_not_found() {
        return true;
    }
    let not_a_folder = error
        .downcast_any_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::NotADirectory);
    not_a_folder
        && changes.iter().all(|change| {
            std::path::Path::new(&change.name)
                .ancestors()
                .skip(1)
                .filter(|folder| !folder.as_os_str().is_empty())
                .all(|folder| {
                    let path = repo.common_dir().join(folder);
                    !path.exists() || path.is_dir()
                })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder_race() -> gix::Error {
        let exists = std::io::Error::from(std::io::ErrorKind::AlreadyExists);
        gix::Error::from_error(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            exists,
        ))
    }

    fn change(name: &str) -> RefChange {
        RefChange {
            name: name.to_owned(),
            old: None,
            new: None,
        }
    }

    #[test]
    fn a_vanished_folder_is_a_lost_race_and_a_file_in_the_way_is_not() {
        let dir = tempfile::tempdir().expect("temp dir");
        let repo = gix::init_bare(dir.path()).expect("a repository");
        let changes = [change("refs/grite/locks/0123456789abcdef")];
        assert!(lost_race(&folder_race(), &repo, &changes), "no folder yet");
        std::fs::create_dir_all(dir.path().join("refs/grite/locks")).expect("mkdir");
        assert!(
            lost_race(&folder_race(), &repo, &changes),
            "the folders are there"
        );
        std::fs::remove_dir(dir.path().join("refs/grite/locks")).expect("rmdir");
        std::fs::write(dir.path().join("refs/grite/locks"), "x").expect("a file");
        assert!(
            !lost_race(&folder_race(), &repo, &changes),
            "a file is in the way"
        );
        let other = gix::Error::from_error(std::io::Error::other("disk on fire"));
        assert!(!lost_race(&other, &repo, &changes));
    }
}
