//! The transitions of one request, for one resource or several: read,
//! decide with the lease machine, and plan the writes that apply every
//! decision as one compare-and-swap.

use std::collections::BTreeSet;

use super::Error;
use super::changes::RefChange;
use super::changes::Step;
use super::clock::Clock;
use super::locks::{Done, Locks};
use super::objects::write_lock_commit;
use super::snapshot::{Entry, Snapshot};
use crate::lease::{
    Change, Context, Decision, LockRecord, Refusal, Request, Resource, Scope, Shards, Transition,
    TransitionKind, Unchanged, UnixMillis, decide,
};

/// One decided request: the entry it was decided on, its lock ref, the
/// version shards of its resource, and what to write or why nothing.
type Decided<'s> = (
    Option<&'s Entry>,
    String,
    Shards,
    Result<Transition, Unchanged>,
);

impl Locks {
    /// Reads, decides every request on the same state, and writes the
    /// decisions as one compare-and-swap (or makes no write at all), until
    /// that is written, needs no write, or a request is refused: several
    /// resources are granted all together or not at all.
    ///
    /// A release, the renewal of a live lease, and the acquire of a lease
    /// the actor holds already, depend on the lock's own record alone:
    /// they are first decided on a read of their own locks
    /// ([`Scope::own`]), and again on a read of every conflicting lock
    /// only when a decision turns out to make a lease live (the renewal of
    /// an expired one, any other acquire). Acquires are refused (or fail)
    /// on that second read, which names every conflict. Through a remote, where a
    /// read is a session with it, acquires go to the second read at once:
    /// most make a lease live, and would pay for two sessions.
    pub(super) fn transact(
        &self,
        requests: &[(Resource, Request)],
        clock: &dyn Clock,
    ) -> Result<Vec<Done>, Error> {
        let resources = || requests.iter().map(|(resource, _)| resource);
        let any_acquire = requests
            .iter()
            .any(|(_, request)| matches!(request, Request::Acquire { .. }));
        if !any_acquire || self.remote.is_none() {
            let own = self.run(clock, &Scope::own(resources()), |snapshot, now| {
                let decided = match self.decide_all(requests, snapshot, now) {
                    Err(_) if any_acquire => return Ok(Step::Done(None)),
                    decided => decided?,
                };
                if decided
                    .iter()
                    .any(|(.., decision)| matches!(decision, Ok(t) if t.depends_on_others))
                {
                    return Ok(Step::Done(None));
                }
                Ok(self.plan(snapshot, decided, now)?.map(Some))
            })?;
            if let Some(done) = own {
                return Ok(done);
            }
        }
        self.run(clock, &Scope::of(resources()), |snapshot, now| {
            let decided = self.decide_all(requests, snapshot, now)?;
            self.plan(snapshot, decided, now)
        })
    }

    /// Decides every request on `snapshot`, or refuses them all if one is
    /// refused.
    fn decide_all<'s>(
        &self,
        requests: &[(Resource, Request)],
        snapshot: &'s Snapshot,
        now: UnixMillis,
    ) -> Result<Vec<Decided<'s>>, Error> {
        let observations = self.observe(snapshot, now)?;
        let takeover = self.takeover(&observations);
        // Each new lease of the request carries a token above the
        // previous one's, as well as above its shards' highest.
        let mut issued = 0;
        let mut refusals = Vec::new();
        let mut decided = Vec::with_capacity(requests.len());
        for (resource, request) in requests {
            let ref_name = resource.ref_name();
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
            let others: Vec<LockRecord> = snapshot
                .entries
                .iter()
                .filter(|e| e.ref_name != ref_name)
                .filter_map(|e| e.record.as_ref().ok().cloned())
                .collect();
            let shards = Shards::of(resource);
            let floor = snapshot.versions.highest(shards).max(issued);
            let ctx = Context {
                resource,
                now,
                takeover,
                token_floor: floor.saturating_add(1),
                others: &others,
            };
            match decide(current, request, &ctx) {
                Decision::Refused(refusal) => refusals.push(refusal_error(resource, refusal)),
                Decision::Unchanged(unchanged) => {
                    decided.push((entry, ref_name, shards, Err(unchanged)))
                }
                Decision::Apply(transition) => {
                    if let Change::Put(record) = &transition.change {
                        issued = issued.max(record.fencing_token);
                    }
                    decided.push((entry, ref_name, shards, Ok(transition)));
                }
            }
        }
        if !refusals.is_empty() {
            return Err(Error::refused(refusals));
        }
        Ok(decided)
    }

    /// Writes the objects of the decided transitions and returns the ref
    /// changes to make as one transaction: each lock ref expecting exactly
    /// what was read and, when a decision looked at other locks, the
    /// version shards of its resource expecting the versions read before
    /// them. The versions come last: edits are committed in order, so a
    /// reader that sees a new version also sees the new locks.
    fn plan(
        &self,
        snapshot: &Snapshot,
        decided: Vec<Decided<'_>>,
        now: UnixMillis,
    ) -> Result<Step<Vec<Done>>, Error> {
        let mut changes = Vec::new();
        let mut objects = Vec::new();
        let mut outcomes = Vec::with_capacity(decided.len());
        let mut advanced = BTreeSet::new();
        // The highest token made live, and the nonce of the first such
        // lease, which names the version commit's writer.
        let mut live: Option<(u64, String)> = None;
        for (entry, ref_name, shards, decision) in decided {
            let transition = match decision {
                Err(unchanged) => {
                    outcomes.push(Done::Unchanged(unchanged));
                    continue;
                }
                Ok(transition) => transition,
            };
            let record = match &transition.change {
                Change::Put(record) => record.clone(),
                Change::Remove => unreachable!("only gc removes, and it plans its own changes"),
            };
            let previous_id = entry.and_then(|e| e.id);
            let message = commit_message(&transition, &record);
            let (commit, written) =
                write_lock_commit(&self.repo, &record, previous_id, &message, now)?;
            objects.extend(written);
            changes.push(RefChange {
                name: ref_name,
                old: previous_id,
                new: Some(commit),
            });
            if transition.depends_on_others {
                advanced.extend(shards.iter());
                let (token, _) = live.get_or_insert_with(|| (0, record.nonce.clone()));
                *token = (*token).max(record.fencing_token);
            }
            outcomes.push(Done::Applied(transition.kind, record));
        }
        if changes.is_empty() {
            return Ok(Step::Done(outcomes));
        }
        if let Some((token, writer)) = live {
            let (moved, written) = snapshot
                .versions
                .advance(&self.repo, &advanced, token, &writer, now)?;
            objects.extend(written);
            changes.extend(moved);
        }
        Ok(Step::Write {
            changes,
            objects,
            outcome: outcomes,
        })
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
