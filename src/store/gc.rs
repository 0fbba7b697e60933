//! Garbage collection: removing the locks nobody holds any more, with the
//! fencing-token floor kept (`docs/PROTOCOL.md` §5, §6).

use std::collections::BTreeSet;

use super::Error;
use super::changes::{RefChange, Step};
use super::clock::Clock;
use super::locks::Locks;
use super::report::{GcReport, Progress};
use crate::lease::{
    Change, Context, Decision, Request, Resource, Scope, Shards, Transition, decide,
};

impl Locks {
    /// Removes every released lock and every lock expired for at least the
    /// grace period, in one transaction whose every delete expects the
    /// record it was decided on.
    ///
    /// The fencing token of each removed record is first carried into its
    /// version shards, in the same transaction and committed before any
    /// delete, so the floor of future tokens never goes below a token that
    /// was handed out, whatever instant a process dies at.
    pub fn gc(&self, clock: &dyn Clock) -> Result<GcReport, Error> {
        let any_resource = Resource::parse("repo:global").expect("valid resource");
        self.run(clock, &Scope::everything(), |snapshot, now| {
            let observations = self.observe(snapshot, now)?;
            let mut report = GcReport {
                removed: Vec::new(),
                kept: 0,
                unreadable: 0,
            };
            let mut changes = Vec::new();
            for entry in &snapshot.entries {
                let (Ok(record), Some(id)) = (&entry.record, entry.id) else {
                    report.unreadable += 1;
                    continue;
                };
                // Gc builds no record, so a resource we cannot parse (another
                // tool's namespace) is decided on by its expiry alone.
                let resource = Resource::parse(&record.resource);
                let ctx = Context {
                    resource: resource.as_ref().unwrap_or(&any_resource),
                    now,
                    takeover: self.takeover(&observations),
                    token_floor: 0,
                    others: &[],
                };
                match decide(Some(record), &Request::Gc, &ctx) {
                    Decision::Apply(Transition {
                        change: Change::Remove,
                        ..
                    }) => {
                        changes.push(RefChange {
                            name: entry.ref_name.clone(),
                            old: Some(id),
                            new: None,
                        });
                        report.removed.push(record.clone());
                    }
                    _ => report.kept += 1,
                }
            }
            if changes.is_empty() {
                return Ok(Step::Done(report));
            }
            self.tell(Progress::Removing(changes.len()));
            let mut objects = Vec::new();
            // Each removed token above its shards' floor is carried into
            // them, all in one version commit.
            let mut carried = BTreeSet::new();
            let mut highest = 0;
            for record in &report.removed {
                let shards = Shards::of_text(&record.resource);
                if record.fencing_token > snapshot.versions.highest(shards) {
                    carried.extend(shards.iter());
                    highest = highest.max(record.fencing_token);
                }
            }
            if !carried.is_empty() {
                let (moved, written) = snapshot.versions.advance(
                    &self.repo,
                    &carried,
                    highest,
                    &(self.nonces)(),
                    now,
                )?;
                objects.extend(written);
                changes.splice(0..0, moved);
            }
            Ok(Step::Write {
                changes,
                objects,
                outcome: report,
            })
        })
    }
}
