//! The ref changes of one transition, made either as a local gix
//! transaction or as receive-pack commands: the same compare-and-swap.

use gix::ObjectId;
use gix::refs::transaction::{PreviousValue, RefEdit};
use gix::refs::{FullName, Target};

use super::clock::{Clock, SystemClock};
use super::gate;
use super::objects::signature;
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

/// One ref edit of a transition, for a local transaction or a push: `old`
/// `None` means the ref must not exist, `new` `None` deletes it.
#[derive(Debug, Clone)]
pub(super) struct RefChange {
    pub name: String,
    pub old: Option<ObjectId>,
    pub new: Option<ObjectId>,
}

impl RefChange {
    fn edit(&self) -> Result<RefEdit, gix::Error> {
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

/// Makes `changes` in `repo` as one transaction: every expectation is
/// checked, under every ref's lock, before anything is written. The
/// transaction holds the process's ref-write gate (see [`gate`]), so a
/// termination signal never cuts it between two renames.
pub(super) fn apply_changes(
    repo: &gix::Repository,
    changes: &[RefChange],
) -> Result<(), gix::Error> {
    if changes.is_empty() {
        return Ok(());
    }
    let edits = changes
        .iter()
        .map(RefChange::edit)
        .collect::<Result<Vec<_>, _>>()?;
    // Reflogs are written only where the repository asks for them for
    // every ref (core.logAllRefUpdates=always); they need a committer.
    let signature = signature(SystemClock.now());
    let mut time = gix::date::parse::TimeBuf::default();
    let _transaction = gate::transaction();
    repo.edit_references_as(edits, Some(signature.to_ref(&mut time)))
        .map(drop)
}
