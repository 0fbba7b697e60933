//! When another actor may take a lock over (steal it, or gc remove it).
//!
//! By the clock (the default), once `now >= expires + grace`: every actor
//! compares the record's expiry with its own clock, so a clock that runs
//! ahead steals early. By observation (as Kubernetes' leader election
//! does), once the observer has seen the lease unchanged for its whole
//! length on its own clock, plus the grace: skew between clocks no longer
//! matters, only their rate, at the price of waiting a full lease after
//! first seeing a lock that had long expired. A record that does not say
//! how long its lease is (other tools' records) can only be judged by the
//! clock.

use std::collections::HashMap;

use super::record::LockRecord;
use super::scope::Scope;
use super::time::{Grace, UnixMillis};

/// One lease as an observer saw it: a renew (new expiry) or a new lease
/// (new nonce) is a new observation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sighting {
    /// The record's resource.
    pub resource: String,
    /// The lease's nonce.
    pub nonce: String,
    /// The lease's expiry.
    pub expires_unix_ms: u64,
}

impl Sighting {
    /// The sighting of `record`.
    pub fn of(record: &LockRecord) -> Sighting {
        Sighting {
            resource: record.resource.clone(),
            nonce: record.nonce.clone(),
            expires_unix_ms: record.expires_unix_ms,
        }
    }
}

/// When this observer first saw each lease, on its own clock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observations {
    first_seen: HashMap<Sighting, UnixMillis>,
}

impl Observations {
    /// Observations as stored.
    pub fn from_entries(entries: impl IntoIterator<Item = (Sighting, UnixMillis)>) -> Observations {
        Observations {
            first_seen: entries.into_iter().collect(),
        }
    }

    /// Every observation, sorted, to be stored.
    pub fn entries(&self) -> Vec<(Sighting, UnixMillis)> {
        let mut entries: Vec<_> = self
            .first_seen
            .iter()
            .map(|(s, t)| (s.clone(), *t))
            .collect();
        entries.sort();
        entries
    }

    /// When `record`'s lease was first seen, if it was.
    pub fn first_seen(&self, record: &LockRecord) -> Option<UnixMillis> {
        self.first_seen.get(&Sighting::of(record)).copied()
    }

    /// Notes every lease of `records` not seen before as seen at `now`, and
    /// forgets the leases that are gone among those of resources `read`
    /// covers: `records` are what a read of that scope found, and say
    /// nothing of the locks it left unread, whose sightings stay. Returns
    /// whether anything changed.
    pub fn observe<'r>(
        &mut self,
        records: impl IntoIterator<Item = &'r LockRecord>,
        read: &Scope,
        now: UnixMillis,
    ) -> bool {
        let current: HashMap<Sighting, ()> = records
            .into_iter()
            .filter(|r| !r.released)
            .map(|r| (Sighting::of(r), ()))
            .collect();
        let before = self.first_seen.len();
        self.first_seen
            .retain(|s, _| current.contains_key(s) || !read.touches(&s.resource));
        let mut changed = self.first_seen.len() != before;
        for sighting in current.into_keys() {
            self.first_seen.entry(sighting).or_insert_with(|| {
                changed = true;
                now
            });
        }
        changed
    }
}

/// The rule that says when another actor may take a record over.
#[derive(Debug, Clone, Copy)]
pub struct Takeover<'a> {
    /// Allowance added to the lease before a takeover.
    pub grace: Grace,
    /// By observation with these sightings; `None`: by the clock.
    pub observed: Option<&'a Observations>,
}

impl Takeover<'_> {
    /// By the clock, with `grace`.
    pub fn by_clock(grace: Grace) -> Takeover<'static> {
        Takeover {
            grace,
            observed: None,
        }
    }

    /// The first instant (of this observer's clock) at which another actor
    /// may take `record` over.
    pub fn at(&self, record: &LockRecord) -> UnixMillis {
        if record.released {
            return UnixMillis(0);
        }
        let by_clock = record.expires().saturating_add(self.grace.as_millis());
        let (Some(observed), Some(length)) = (self.observed, record.lease_length()) else {
            return by_clock;
        };
        match observed.first_seen(record) {
            Some(seen) => seen
                .saturating_add(length)
                .saturating_add(self.grace.as_millis()),
            // Not seen yet: it cannot have been seen for its whole lease.
            None => UnixMillis(u64::MAX),
        }
    }

    /// Whether another actor may take `record` over at `now`.
    pub fn allows(&self, record: &LockRecord, now: UnixMillis) -> bool {
        now >= self.at(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(expires: u64, ttl: Option<u64>) -> LockRecord {
        LockRecord {
            owner: "o".into(),
            nonce: "n".into(),
            expires_unix_ms: expires,
            resource: "issue:1".into(),
            fencing_token: 1,
            acquired_unix_ms: None,
            ttl_ms: ttl,
            released: false,
        }
    }

    #[test]
    fn by_the_clock_a_lease_is_taken_over_after_its_expiry_and_the_grace() {
        let rule = Takeover::by_clock(Grace(5));
        assert_eq!(rule.at(&lease(100, Some(50))), UnixMillis(105));
        assert!(!rule.allows(&lease(100, Some(50)), UnixMillis(104)));
        assert!(rule.allows(&lease(100, Some(50)), UnixMillis(105)));
    }

    #[test]
    fn by_observation_a_clock_far_ahead_still_waits_a_whole_lease() {
        // Written at 1,000 for 600 on its writer's clock; first seen at
        // 10,000 on ours, which runs far ahead.
        let record = lease(1_600, Some(600));
        let mut observations = Observations::default();
        assert!(observations.observe([&record], &Scope::everything(), UnixMillis(10_000)));
        assert!(!observations.observe([&record], &Scope::everything(), UnixMillis(10_300)));
        let rule = Takeover {
            grace: Grace(5),
            observed: Some(&observations),
        };
        assert_eq!(rule.at(&record), UnixMillis(10_605));
        assert!(!rule.allows(&record, UnixMillis(10_604)));
        assert!(rule.allows(&record, UnixMillis(10_605)));
        // A renew is a new lease to observe; the old sighting is forgotten.
        let renewed = lease(2_200, Some(600));
        assert!(observations.observe([&renewed], &Scope::everything(), UnixMillis(10_400)));
        assert_eq!(observations.entries().len(), 1);
        assert_eq!(observations.first_seen(&renewed), Some(UnixMillis(10_400)));
    }

    #[test]
    fn a_read_of_some_locks_forgets_only_what_it_read() {
        let one = lease(1_600, Some(600));
        let two = LockRecord {
            resource: "issue:2".into(),
            ..lease(1_600, Some(600))
        };
        let mut observations = Observations::default();
        assert!(observations.observe([&one, &two], &Scope::everything(), UnixMillis(10_000)));
        // A read for issue:2 finds it gone; issue:1 it did not read.
        let issue_two = crate::lease::Resource::parse("issue:2").expect("a resource");
        let scope = Scope::of([&issue_two]);
        assert!(observations.observe([], &scope, UnixMillis(10_100)));
        assert_eq!(observations.first_seen(&one), Some(UnixMillis(10_000)));
        assert_eq!(observations.first_seen(&two), None);
        // A read of everything forgets what it does not find.
        assert!(observations.observe([], &Scope::everything(), UnixMillis(10_200)));
        assert_eq!(observations.entries(), []);
    }

    #[test]
    fn by_observation_what_was_never_seen_is_never_taken_and_released_is_free() {
        let observations = Observations::default();
        let rule = Takeover {
            grace: Grace(0),
            observed: Some(&observations),
        };
        assert!(!rule.allows(&lease(1, Some(1)), UnixMillis(u64::MAX - 1)));
        // Without a lease length only the clock can say.
        assert_eq!(rule.at(&lease(100, None)), UnixMillis(100));
        let released = LockRecord {
            released: true,
            ..lease(100, Some(50))
        };
        assert!(rule.allows(&released, UnixMillis(0)));
    }
}
