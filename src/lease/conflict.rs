//! Conflicts across resources (`docs/PROTOCOL.md` §2): which locks of other actors
//! stand in the way of a lock on a given resource.

use std::collections::{BTreeSet, HashMap};

use super::actor::ActorId;
use super::placement::Placement;
use super::record::LockRecord;
use super::resource::{Namespace, Resource};
use super::takeover::Takeover;
use super::time::UnixMillis;

/// The records among `records` that forbid `actor` from holding a live lock
/// on `resource` at `now`.
///
/// A record blocks when it belongs to another actor, is on a different
/// resource that conflicts with `resource`, and could not be taken over
/// itself: not released, and not expired for the grace period. A lock in
/// its grace period still blocks, for the reason it cannot be stolen yet:
/// its holder's clock may be behind ours.
///
/// The record stored under `resource`'s own ref (whose text is the
/// canonical resource) is the state machine's business, not this
/// function's. Another spelling of the same resource written by another
/// tool (`path:src/` for `path:src`) lives under another ref and does
/// block. Records whose resource we cannot parse conflict as their
/// `Placement` (`placement.rs`) says.
pub fn blocking_locks<'a>(
    resource: &Resource,
    actor: &ActorId,
    records: impl IntoIterator<Item = &'a LockRecord>,
    now: UnixMillis,
    takeover: Takeover<'_>,
) -> Vec<&'a LockRecord> {
    in_the_way(resource, actor, records, now, takeover, false)
}

/// Like [`blocking_locks`], but also the record of `resource` itself when
/// another actor holds it: everything that should stop `actor` from working
/// on `resource` now. This is what `grite lock check` and the lock policy
/// look at.
pub fn locks_in_the_way<'a>(
    resource: &Resource,
    actor: &ActorId,
    records: impl IntoIterator<Item = &'a LockRecord>,
    now: UnixMillis,
    takeover: Takeover<'_>,
) -> Vec<&'a LockRecord> {
    in_the_way(resource, actor, records, now, takeover, true)
}

fn in_the_way<'a>(
    resource: &Resource,
    actor: &ActorId,
    records: impl IntoIterator<Item = &'a LockRecord>,
    now: UnixMillis,
    takeover: Takeover<'_>,
    same_resource: bool,
) -> Vec<&'a LockRecord> {
    let own_text = resource.to_string();
    let own = Placement::from(resource);
    records
        .into_iter()
        .filter(|record| {
            (same_resource || record.resource != own_text)
                && record.owner != actor.as_str()
                && !takeover.allows(record, now)
                && Placement::of(&record.resource).conflicts_with(&own)
        })
        .collect()
}

/// Pairs of live locks, held by different actors, that conflict with each
/// other, in the order of `records`. The machine never creates one, but two
/// repositories that worked apart and were then synced can hold such a
/// pair; status shows them.
///
/// Only locks that share a name, or a path and its ancestor, are compared,
/// so the cost grows with the number of locks times the depth of their
/// paths (plus the pairs of any `repo:` lock, which conflicts with every
/// other), not with the square of the number of locks.
pub fn live_conflicts(records: &[LockRecord], now: UnixMillis) -> Vec<(&LockRecord, &LockRecord)> {
    let live: Vec<(Placement, &LockRecord)> = records
        .iter()
        .filter(|record| record.is_live(now))
        .map(|record| (Placement::of(&record.resource), record))
        .collect();
    let mut by_name: HashMap<(Namespace, &str), Vec<usize>> = HashMap::new();
    for (i, (place, _)) in live.iter().enumerate() {
        if let Some(namespace @ (Namespace::Issue | Namespace::Path)) = place.namespace() {
            by_name
                .entry((namespace, place.name()))
                .or_default()
                .push(i);
        }
    }
    let mut pairs = BTreeSet::new();
    let mut add = |i: usize, j: usize| {
        if i != j && live[i].1.owner != live[j].1.owner {
            pairs.insert((i.min(j), i.max(j)));
        }
    };
    for (i, (place, _)) in live.iter().enumerate() {
        let name = place.name();
        let mut keys = Vec::new();
        match place.namespace() {
            Some(Namespace::Repo) => (0..live.len()).for_each(|j| add(i, j)),
            Some(Namespace::Issue) => keys.push((Namespace::Issue, name)),
            Some(Namespace::Path) => keys.extend(
                name.match_indices('/')
                    .map(|(at, _)| (Namespace::Path, &name[..at]))
                    .chain(std::iter::once((Namespace::Path, name))),
            ),
            None => {}
        }
        for key in keys {
            for &j in by_name.get(&key).into_iter().flatten() {
                add(i, j);
            }
        }
    }
    pairs
        .into_iter()
        .map(|(i, j)| (live[i].1, live[j].1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease::Grace;

    fn record(owner: &str, resource: &str, expires: u64) -> LockRecord {
        LockRecord {
            owner: owner.into(),
            nonce: format!("{owner}-{resource}"),
            expires_unix_ms: expires,
            resource: resource.into(),
            fencing_token: 1,
            acquired_unix_ms: None,
            ttl_ms: None,
            released: false,
        }
    }

    fn actor(c: char) -> ActorId {
        ActorId::parse(&c.to_string().repeat(32)).expect("valid actor")
    }

    #[test]
    fn other_actors_overlapping_and_repo_locks_block() {
        let b = actor('b').to_string();
        let records = vec![
            record(&b, "path:src", 100),
            record(&b, "path:docs", 100),
            record(&b, "repo:deploy", 100),
            record(&b, "issue:1", 100),
        ];
        let wanted = Resource::parse("path:src/a.rs").expect("valid");
        let blocking = blocking_locks(
            &wanted,
            &actor('a'),
            &records,
            UnixMillis(50),
            Takeover::by_clock(Grace(0)),
        );
        let names: Vec<&str> = blocking.iter().map(|r| r.resource.as_str()).collect();
        assert_eq!(names, ["path:src", "repo:deploy"]);
    }

    #[test]
    fn own_locks_released_locks_and_takeable_locks_do_not_block() {
        let a = actor('a').to_string();
        let b = actor('b').to_string();
        let mut released = record(&b, "repo:x", 1_000);
        released.released = true;
        let records = vec![
            record(&a, "repo:mine", 1_000),
            released,
            record(&b, "repo:old", 40),
            record(&b, "path:src", 46),
        ];
        let wanted = Resource::parse("path:src/a.rs").expect("valid");
        let blocking = blocking_locks(
            &wanted,
            &actor('a'),
            &records,
            UnixMillis(50),
            Takeover::by_clock(Grace(5)),
        );
        let names: Vec<&str> = blocking.iter().map(|r| r.resource.as_str()).collect();
        // repo:old expired at 40 and its grace ended at 45; path:src expired
        // at 46 and is in its grace period until 51.
        assert_eq!(names, ["path:src"]);
    }

    #[test]
    fn another_spelling_of_the_same_path_blocks() {
        let records = vec![record(&actor('b').to_string(), "path:src/", 100)];
        let wanted = Resource::parse("path:src").expect("valid");
        assert_eq!(
            blocking_locks(
                &wanted,
                &actor('a'),
                &records,
                UnixMillis(50),
                Takeover::by_clock(Grace(0))
            )
            .len(),
            1
        );
    }

    #[test]
    fn locks_in_the_way_include_the_resource_itself() {
        let b = actor('b').to_string();
        let records = vec![record(&b, "path:src/a.rs", 100), record(&b, "issue:1", 100)];
        let wanted = Resource::parse("path:src/a.rs").expect("valid");
        let a = actor('a');
        assert!(
            blocking_locks(
                &wanted,
                &a,
                &records,
                UnixMillis(50),
                Takeover::by_clock(Grace(0))
            )
            .is_empty()
        );
        let in_the_way = locks_in_the_way(
            &wanted,
            &a,
            &records,
            UnixMillis(50),
            Takeover::by_clock(Grace(0)),
        );
        assert_eq!(in_the_way, [&records[0]]);
    }

    #[test]
    fn a_live_record_that_is_not_a_resource_is_checked_as_status_shows_it() {
        let b = actor('b').to_string();
        let hostile = record(&b, "path:src\u{1b}[2J", 100);
        let repo = Resource::parse("repo:deploy").expect("valid");
        let records = [hostile.clone()];
        assert_eq!(
            blocking_locks(
                &repo,
                &actor('a'),
                &records,
                UnixMillis(50),
                Takeover::by_clock(Grace(0))
            ),
            [&hostile]
        );
        let other = Resource::parse("issue:1").expect("valid");
        assert!(
            blocking_locks(
                &other,
                &actor('a'),
                &records,
                UnixMillis(50),
                Takeover::by_clock(Grace(0))
            )
            .is_empty()
        );
        let pair = [
            hostile.clone(),
            record(&actor('a').to_string(), "repo:x", 100),
        ];
        assert_eq!(live_conflicts(&pair, UnixMillis(50)).len(), 1);
    }

    #[test]
    fn live_conflicts_pairs_only_different_actors() {
        let a = actor('a').to_string();
        let b = actor('b').to_string();
        let records = vec![
            record(&a, "repo:x", 100),
            record(&a, "path:src", 100),
            record(&b, "path:src/a.rs", 100),
            record(&b, "issue:1", 10),
        ];
        let pairs = live_conflicts(&records, UnixMillis(50));
        let names: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(x, y)| (x.resource.as_str(), y.resource.as_str()))
            .collect();
        assert_eq!(
            names,
            [("repo:x", "path:src/a.rs"), ("path:src", "path:src/a.rs")]
        );
    }

    proptest::proptest! {
        #[test]
        fn live_conflicts_finds_exactly_the_conflicting_pairs(
            locks in proptest::collection::vec((0..3usize, 0..12usize, 0..2u64), 0..24)
        ) {
            const NAMES: [&str; 12] = [
                "issue:1", "issue:2", "path:a", "path:a/b", "path:a/b/c", "path:ab",
                "path:a/bc", "path:b", "path:b/a", "repo:x", "repo:y", "path:a/b/c/d",
            ];
            let records: Vec<LockRecord> = locks
                .iter()
                .map(|&(owner, name, expires)| record(&owner.to_string(), NAMES[name], 50 + expires * 100))
                .collect();
            let now = UnixMillis(100);
            let live: Vec<&LockRecord> = records.iter().filter(|r| r.is_live(now)).collect();
            let mut expected = Vec::new();
            for (i, a) in live.iter().enumerate() {
                for b in &live[i + 1..] {
                    let (ra, rb) = (Resource::parse(&a.resource).expect("valid"), Resource::parse(&b.resource).expect("valid"));
                    if a.owner != b.owner && ra.conflicts_with(&rb) {
                        expected.push((*a, *b));
                    }
                }
            }
            proptest::prop_assert_eq!(live_conflicts(&records, now), expected);
        }
    }
}
