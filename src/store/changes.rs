//! The ref changes of one transition, made either as a local gix
//! transaction or as receive-pack commands: the same compare-and-swap.

use gix::ObjectId;
use gix::refs::transaction::{PreviousValue, RefEdit};
use gix::refs::{FullName, Target};

use super::Error;
use crate::remote::protocol::Command;

/// One ref edit of a transition, for a local transaction or a push: `old`
/// `None` means the ref must not exist, `new` `None` deletes it.
#[derive(Debug, Clone)]
pub(super) struct RefChange {
    pub name: String,
    pub old: Option<ObjectId>,
    pub new: Option<ObjectId>,
}

impl RefChange {
    pub fn edit(&self) -> Result<RefEdit, Error> {
        let name = FullName::try_from(self.name.as_str())
            .map_err(|e| Error::repository("naming a lock ref", e))?;
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
