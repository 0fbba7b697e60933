//! One transition of one resource: read, decide with the lease machine,
//! and plan the writes that apply the decision as one compare-and-swap.

use gix::ObjectId;

use super::Error;
use super::changes::RefChange;
use super::changes::Step;
use super::clock::Clock;
use super::locks::{Done, Locks};
use super::objects::write_lock_commit;
use super::snapshot::{Entry, Snapshot};
use super::version::{self, VERSION_REF};
use crate::lease::{
    Change, Context, Decision, LockRecord, Refusal, Request, Resource, Transition, TransitionKind,
    UnixMillis, decide,
};

impl Locks {
    /// Reads, decides and writes until the decision is written, needs no
    /// write, or is a refusal.
    pub(super) fn transact(
        &self,
        resource: &Resource,
        request: &Request,
        clock: &dyn Clock,
    ) -> Result<Done, Error> {
        let ref_name = resource.ref_name();
        self.run(clock, |snapshot, now| {
            let entry = snapshot.entry(&ref_name);
            let current = match entry {
                None => None,
                Some(entry) => match &entry.record {
                    Ok(record) => Some(record),
                    Err(reason) => {
                        return Err(Error::CorruptLock {
                            ref_name: ref_name.clone(),
                            reason: reason.clone(),
                            remove_with: entry.removal(self.repo.common_dir()),
                        });
                    }
                },
            };
            self.note_skew(current, now);
            let observations = self.observe(snapshot, now)?;
            let others: Vec<LockRecord> = snapshot
                .entries
                .iter()
                .filter(|e| e.ref_name != ref_name)
                .filter_map(|e| e.record.as_ref().ok().cloned())
                .collect();
            let ctx = Context {
                resource,
                now,
                takeover: self.takeover(&observations),
                token_floor: snapshot.version.value.highest_token.saturating_add(1),
                others: &others,
            };
            let transition = match decide(current, request, &ctx) {
                Decision::Refused(refusal) => return Err(refusal_error(resource, refusal)),
                Decision::Unchanged(unchanged) => {
                    return Ok(Step::Done(Done::Unchanged(unchanged)));
                }
                Decision::Apply(transition) => transition,
            };
            let (lock, changes, objects) =
                self.plan(snapshot, entry, &ref_name, &transition, now)?;
            Ok(Step::Write {
                changes,
                objects,
                outcome: Done::Applied(transition.kind, lock),
            })
        })
    }

    /// Writes the objects of one transition and returns the new record, the
    /// ref changes to make as one transaction, and the new objects: the lock
    /// ref expecting exactly what was read and, when the decision looked at
    /// other locks, the version ref expecting the version read before them.
    /// The lock ref comes first: edits are committed in order, so a reader
    /// that sees the new version also sees the new lock.
    fn plan(
        &self,
        snapshot: &Snapshot,
        entry: Option<&Entry>,
        ref_name: &str,
        transition: &Transition,
        now: UnixMillis,
    ) -> Result<(LockRecord, Vec<RefChange>, Vec<ObjectId>), Error> {
        let record = match &transition.change {
            Change::Put(record) => record.clone(),
            Change::Remove => unreachable!("only gc removes, and it plans its own changes"),
        };
        let previous_id = entry.and_then(|e| e.id);
        let message = commit_message(transition, &record);
        let (commit, mut objects) =
            write_lock_commit(&self.repo, &record, previous_id, &message, now)?;
        let mut changes = vec![RefChange {
            name: ref_name.to_owned(),
            old: previous_id,
            new: Some(commit),
        }];
        if transition.depends_on_others {
            let next = snapshot.version.next(record.fencing_token, &record.nonce);
            let (commit, written) = version::write(&self.repo, &next, now)?;
            objects.extend(written);
            changes.push(RefChange {
                name: VERSION_REF.to_owned(),
                old: snapshot.version.id,
                new: Some(commit),
            });
        }
        Ok((record, changes, objects))
    }
}

fn refusal_error(resource: &Resource, refusal: Refusal) -> Error {
    match refusal {
        Refusal::Held {
            holder,
            takeable_at,
        } => Error::Held {
            holder: Box::new(holder),
            takeable_at,
        },
        Refusal::NotOwner { holder } => Error::NotOwner {
            holder: Box::new(holder),
        },
        Refusal::Blocked { by } => Error::Blocked {
            resource: resource.to_string(),
            by,
        },
        Refusal::NotHeld => Error::NotHeld {
            resource: resource.to_string(),
        },
        Refusal::OutOfRange => Error::OutOfRange {
            resource: resource.to_string(),
        },
    }
}

fn commit_message(transition: &Transition, record: &LockRecord) -> String {
    let verb = match &transition.kind {
        TransitionKind::Acquire => "acquire".to_owned(),
        TransitionKind::Reacquire => "reacquire".to_owned(),
        TransitionKind::Steal { from } => format!("steal from {from}"),
        TransitionKind::Renew => "renew".to_owned(),
        TransitionKind::Release => "release".to_owned(),
        TransitionKind::Collect => "collect".to_owned(),
    };
    format!(
        "lock {verb}: {}\n\nowner: {}\nfencing-token: {}\nexpires: {}\n",
        record.resource,
        record.owner,
        record.fencing_token,
        record.expires()
    )
}
