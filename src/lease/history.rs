//! What one step of a lock's history was, read from its record against the
//! record before it (`docs/PROTOCOL.md` §9). Decided from the records alone,
//! never from commit messages, so that the history of records written by
//! other tools reads the same way.

use super::record::LockRecord;
use super::time::UnixMillis;

/// One step of a lock's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new lease on a free lock (or the first record of the ref).
    Acquire,
    /// A new lease of the same owner replacing its own unreleased one.
    Reacquire,
    /// A new lease replacing another owner's unreleased one.
    Steal {
        /// The owner of the replaced lease.
        from: String,
    },
    /// The same lease with a new expiry.
    Renew,
    /// The lease ended by its holder.
    Release,
    /// The same lease, rewritten without a new expiry or a release (a tool
    /// with other rules).
    Rewrite,
}

impl Event {
    /// What happened between `previous` (the record of the parent commit,
    /// if any) and `record`.
    pub fn between(previous: Option<&LockRecord>, record: &LockRecord) -> Event {
        let Some(previous) = previous else {
            return if record.released {
                Event::Release
            } else {
                Event::Acquire
            };
        };
        if previous.nonce != record.nonce {
            return if previous.released {
                Event::Acquire
            } else if previous.owner == record.owner {
                Event::Reacquire
            } else {
                Event::Steal {
                    from: previous.owner.clone(),
                }
            };
        }
        if record.released && !previous.released {
            Event::Release
        } else if record.expires_unix_ms != previous.expires_unix_ms {
            Event::Renew
        } else {
            Event::Rewrite
        }
    }

    /// The word for it, as output shows it.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Acquire => "acquire",
            Event::Reacquire => "reacquire",
            Event::Steal { .. } => "steal",
            Event::Renew => "renew",
            Event::Release => "release",
            Event::Rewrite => "rewrite",
        }
    }

    /// When it happened, on its writer's clock, as far as the record says:
    /// a new lease at its start, a renew when it was granted, a release at
    /// the instant a released record gives as its expiry.
    pub fn time(&self, record: &LockRecord) -> Option<UnixMillis> {
        match self {
            Event::Acquire | Event::Reacquire | Event::Steal { .. } => {
                record.acquired_unix_ms.map(UnixMillis)
            }
            Event::Renew => record.written_at(),
            Event::Release => Some(record.expires()),
            Event::Rewrite => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(owner: &str, nonce: &str, expires: u64) -> LockRecord {
        LockRecord {
            owner: owner.into(),
            nonce: nonce.into(),
            expires_unix_ms: expires,
            resource: "issue:1".into(),
            fencing_token: 1,
            acquired_unix_ms: Some(100),
            ttl_ms: Some(expires - 100),
            released: false,
        }
    }

    #[test]
    fn each_transition_reads_back_as_what_it_was() {
        let first = lease("a", "n1", 1_000);
        assert_eq!(Event::between(None, &first), Event::Acquire);
        let renewed = LockRecord {
            expires_unix_ms: 2_000,
            ttl_ms: Some(1_500),
            ..first.clone()
        };
        assert_eq!(Event::between(Some(&first), &renewed), Event::Renew);
        assert_eq!(Event::Renew.time(&renewed), Some(UnixMillis(500)));
        let released = LockRecord {
            expires_unix_ms: 700,
            released: true,
            ..renewed.clone()
        };
        assert_eq!(Event::between(Some(&renewed), &released), Event::Release);
        assert_eq!(Event::Release.time(&released), Some(UnixMillis(700)));
        let again = lease("b", "n2", 3_000);
        assert_eq!(Event::between(Some(&released), &again), Event::Acquire);
        let stolen = lease("c", "n3", 9_000);
        assert_eq!(
            Event::between(Some(&again), &stolen),
            Event::Steal { from: "b".into() }
        );
        let reacquired = lease("c", "n4", 9_500);
        assert_eq!(Event::between(Some(&stolen), &reacquired), Event::Reacquire);
        assert_eq!(Event::Reacquire.time(&reacquired), Some(UnixMillis(100)));
        assert_eq!(
            Event::between(Some(&reacquired), &reacquired),
            Event::Rewrite
        );
    }

    #[test]
    fn records_of_other_tools_have_no_times_of_their_own() {
        let foreign = LockRecord {
            acquired_unix_ms: None,
            ttl_ms: None,
            fencing_token: 0,
            ..lease("a", "n1", 1_000)
        };
        assert_eq!(Event::between(None, &foreign), Event::Acquire);
        assert_eq!(Event::Acquire.time(&foreign), None);
    }
}
