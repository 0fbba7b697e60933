//! What [`Locks`] answers without writing a lock: status, history and the
//! lock policy's check.

use super::Error;
use super::clock::Clock;
use super::history::{self, LogEntry};
use super::lockfiles;
use super::locks::Locks;
use super::report::{Status, Unreadable};
use crate::lease::{
    ActorId, LOCK_REF_PREFIX, LockRecord, Resource, Scope, live_conflicts, locks_in_the_way,
    ref_hash_of,
};

impl Locks {
    /// Every lock, sorted into live, expired and released, with the
    /// conflicts among live locks, the refs that cannot be read and the
    /// lock files that killed processes left behind.
    pub fn status(&self, clock: &dyn Clock) -> Result<Status, Error> {
        let now = clock.now();
        let snapshot = self.read(now, &Scope::everything())?.snapshot;
        self.observe(&snapshot, now)?;
        self.note_skew(snapshot.records(), now);
        let mut status = Status {
            now,
            locks: Vec::new(),
            expired: Vec::new(),
            released: Vec::new(),
            conflicts: Vec::new(),
            unreadable: Vec::new(),
            stale_lock_files: lockfiles::stale(self.repo.common_dir()),
        };
        for entry in snapshot.entries {
            match entry.record {
                Ok(record) if record.released => status.released.push(record),
                Ok(record) if record.is_live(now) => status.locks.push(record),
                Ok(record) => status.expired.push(record),
                Err(ref reason) => status.unreadable.push(Unreadable {
                    remove_with: entry.removal(self.repo.common_dir()),
                    reason: reason.clone(),
                    ref_name: entry.ref_name,
                }),
            }
        }
        for list in [&mut status.locks, &mut status.expired, &mut status.released] {
            list.sort_by(|a, b| a.resource.cmp(&b.resource));
        }
        status.conflicts = live_conflicts(&status.locks, now)
            .into_iter()
            .map(|(a, b)| (a.clone(), b.clone()))
            .collect();
        Ok(status)
    }

    /// The history of `resource`'s lock, or of every lock, newest first,
    /// at most `limit` steps: from the authority's refs (the remote's, with
    /// one), each followed down its chain of commits.
    pub fn log(
        &self,
        resource: Option<&Resource>,
        limit: Option<usize>,
        clock: &dyn Clock,
    ) -> Result<Vec<LogEntry>, Error> {
        let scope = match resource {
            Some(resource) => Scope::of([resource]),
            None => Scope::everything(),
        };
        let snapshot = self.read(clock.now(), &scope)?.snapshot;
        let entries = match resource {
            None => snapshot.entries,
            Some(resource) => {
                let ref_name = resource.ref_name();
                let entry = snapshot.entry(&ref_name).ok_or_else(|| Error::NoHistory {
                    resource: resource.to_string(),
                    ref_name: ref_name.clone(),
                })?;
                vec![entry.clone()]
            }
        };
        Ok(history::log(&self.repo, &entries, limit))
    }

    /// Other actors' locks that stand in the way of `actor` working on
    /// `resource` now: the resource's own lock and conflicting ones.
    pub fn check(
        &self,
        actor: &ActorId,
        resource: &Resource,
        clock: &dyn Clock,
    ) -> Result<Vec<LockRecord>, Error> {
        let mut checked = self.check_all(actor, std::slice::from_ref(resource), clock)?;
        Ok(checked
            .pop()
            .map(|(_, holders)| holders)
            .unwrap_or_default())
    }

    /// [`Locks::check`] of each of `resources`, on one read of the locks:
    /// the resources something stands in the way of, in the order given,
    /// each with the locks in its way.
    pub fn check_all(
        &self,
        actor: &ActorId,
        resources: &[Resource],
        clock: &dyn Clock,
    ) -> Result<Vec<(Resource, Vec<LockRecord>)>, Error> {
        let now = clock.now();
        let snapshot = self.read(now, &Scope::of(resources))?.snapshot;
        let observations = self.observe(&snapshot, now)?;
        let takeover = self.takeover(&observations);
        // Only other actors' locks can stand in anyone's way: with none
        // (the usual case for a commit), thousands of paths cost nothing.
        let others: Vec<&LockRecord> = snapshot
            .records()
            .filter(|r| r.owner != actor.as_str())
            .collect();
        Ok(resources
            .iter()
            .filter_map(|resource| {
                let in_the_way =
                    locks_in_the_way(resource, actor, others.iter().copied(), now, takeover);
                (!in_the_way.is_empty())
                    .then(|| (resource.clone(), in_the_way.into_iter().cloned().collect()))
            })
            .collect())
    }

    /// What the local lock refs of `resources` (texts as records hold
    /// them) point at now: a few ref reads, cheap enough to ask every few
    /// milliseconds while waiting for one of them to change.
    pub fn local_values(&self, resources: &[&str]) -> Vec<Option<String>> {
        resources
            .iter()
            .map(|resource| {
                let name = format!("{LOCK_REF_PREFIX}{}", ref_hash_of(resource));
                self.repo
                    .try_find_reference(name.as_str())
                    .ok()
                    .flatten()
                    .and_then(|r| r.target().try_id().map(|id| id.to_hex().to_string()))
            })
            .collect()
    }
}
