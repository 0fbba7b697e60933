//! Which version shards a lock advances (`docs/PROTOCOL.md` §7): the
//! cross-resource check of an acquire is one atomic step with its write
//! because the write advances a version ref that every conflicting acquire
//! also advances. Any two resources that conflict (§2) must therefore share
//! a shard, and resources that cannot conflict should mostly not, so that
//! a fleet taking unrelated locks does not queue on one ref:
//!
//! - an `issue:` lock advances the shard of its own text: issues conflict
//!   only with themselves (and `repo:`, below);
//! - a `path:` lock advances the shard of `path:` and its first segment:
//!   a path and its ancestors and descendants all share that segment (the
//!   top itself, `path:.`, is not a resource);
//! - a `repo:` lock conflicts with everything, and advances every shard.
//!
//! A shard is the first six bits of SHA-256 of that text, the hash that
//! names lock refs.

use super::placement::Placement;
use super::resource::{Namespace, Resource, ref_key_of};

/// How many version shards there are: each one a ref, written whole by
/// every `repo:` acquire.
pub const VERSION_SHARDS: u8 = 64;

/// The version shards one lock advances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shards {
    /// Every shard: a `repo:` lock.
    All,
    /// One shard, `0..VERSION_SHARDS`.
    One(u8),
}

impl Shards {
    /// The shards a lock on `resource` advances.
    pub fn of(resource: &Resource) -> Shards {
        Shards::of_placement(&Placement::from(resource))
    }

    /// The shards of a lock on a stored resource text, valid or not (as
    /// placed for conflicts: a text another tool wrote lands where the
    /// resource it conflicts like would).
    pub fn of_text(text: &str) -> Shards {
        Shards::of_placement(&Placement::of(text))
    }

    fn of_placement(place: &Placement) -> Shards {
        let key = match place.namespace() {
            Some(Namespace::Repo) => return Shards::All,
            Some(Namespace::Path) => {
                let top = place.name().split('/').next().unwrap_or_default();
                format!("path:{top}")
            }
            Some(Namespace::Issue) => format!("issue:{}", place.name()),
            None => place.name().to_owned(),
        };
        let shard = ref_key_of(&key) >> (64 - VERSION_SHARDS.trailing_zeros());
        Shards::One(u8::try_from(shard).expect("six bits fit a byte"))
    }

    /// The shards, in order.
    pub fn iter(self) -> impl Iterator<Item = u8> {
        match self {
            Shards::All => 0..VERSION_SHARDS,
            Shards::One(shard) => shard..shard + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(text: &str) -> Resource {
        Resource::parse(text).expect("valid resource")
    }

    #[test]
    fn a_shard_is_the_top_six_bits_of_the_keys_hash() {
        // printf 'issue:8057324b' | sha256sum: a02e99…; 0xa0 >> 2 = 40.
        assert_eq!(Shards::of(&r("issue:8057324b")), Shards::One(40));
        // printf 'path:src' | sha256sum: 85d794…; 0x85 >> 2 = 33.
        assert_eq!(Shards::of(&r("path:src/auth.rs")), Shards::One(33));
        assert_eq!(Shards::of(&r("repo:deploy")), Shards::All);
        assert_eq!(Shards::All.iter().count(), usize::from(VERSION_SHARDS));
    }

    #[test]
    fn unrelated_issues_spread_over_the_shards() {
        let used: std::collections::HashSet<Shards> = (0..1000)
            .map(|i| Shards::of(&r(&format!("issue:{i}"))))
            .collect();
        assert_eq!(used.len(), usize::from(VERSION_SHARDS));
    }

    proptest::proptest! {
        /// Conflicting resources share a shard: the reason shards exist.
        #[test]
        fn conflicting_resources_share_a_shard(
            a in "(issue|path|repo):[ab]{1,2}(/[ab]{1,2}){0,2}",
            b in "(issue|path|repo):[ab]{1,2}(/[ab]{1,2}){0,2}",
        ) {
            let (a, b) = (r(&a), r(&b));
            if a.conflicts_with(&b) {
                let shared = Shards::of(&a).iter().any(|s| Shards::of(&b).iter().any(|t| s == t));
                proptest::prop_assert!(shared, "{a} and {b}");
            }
        }
    }
}
