//! Which stored locks a decision about some resources depends on
//! (`docs/PROTOCOL.md` §7): the locks whose resource conflicts with one of
//! them (§2), their own locks among them. A lock's resource text fixes its
//! ref name, so a reader that already knows which text a ref holds can
//! leave the records of every other lock unread. The version shards of
//! the resources (`shard`) are the ones a write on them advances, and so
//! the ones a read for that write must read first.

use std::collections::{BTreeSet, HashSet};

use super::placement::Placement;
use super::resource::{Namespace, Resource};
use super::shard::Shards;

/// The stored resource texts a decision about some resources depends on.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// A `repo:` resource conflicts with every lock, as `status` and `gc`
    /// read them all.
    everything: bool,
    /// Only the locks of these resources (canonical texts), none that
    /// conflicts with them: for decisions that depend on no other lock
    /// ([`Scope::own`]).
    own: Option<BTreeSet<String>>,
    /// A few names, asked about for every stored issue: compared, not
    /// hashed.
    issues: BTreeSet<Vec<u8>>,
    paths: HashSet<String>,
    /// Every asked path and each of its ancestors.
    path_lines: HashSet<String>,
    /// The version shards of the asked resources.
    shards: BTreeSet<u8>,
}

impl Scope {
    /// Every lock.
    pub fn everything() -> Scope {
        Scope {
            everything: true,
            ..Scope::default()
        }
    }

    /// The locks that conflict with one of `resources` (each conflicts with
    /// itself).
    pub fn of<'a>(resources: impl IntoIterator<Item = &'a Resource>) -> Scope {
        let mut scope = Scope::default();
        for resource in resources {
            scope.shards.extend(Shards::of(resource).iter());
            let place = Placement::from(resource);
            let name = place.name();
            match place.namespace() {
                Some(Namespace::Repo) => return Scope::everything(),
                Some(Namespace::Issue) => {
                    scope.issues.insert(name.as_bytes().to_vec());
                }
                Some(Namespace::Path) => {
                    scope.path_lines.extend(lineage(name).map(str::to_owned));
                    scope.paths.insert(name.to_owned());
                }
                None => unreachable!("a parsed resource has a namespace"),
            }
        }
        scope
    }

    /// The locks of `resources` themselves and no other: enough for a
    /// decision that depends on no other record (a release, the renewal
    /// of a live lease, the acquire of a lease held already;
    /// [`crate::lease::Transition::depends_on_others`]), which advances no
    /// version shard either.
    pub fn own<'a>(resources: impl IntoIterator<Item = &'a Resource>) -> Scope {
        Scope {
            own: Some(resources.into_iter().map(Resource::to_string).collect()),
            ..Scope::default()
        }
    }

    /// The resource texts of a [`Scope::own`], whose locks are all it
    /// reads.
    pub fn own_only(&self) -> Option<&BTreeSet<String>> {
        self.own.as_ref()
    }

    /// Whether this is every lock.
    pub fn is_everything(&self) -> bool {
        self.everything
    }

    /// The version shards a write on the asked resources may advance:
    /// every one for every lock (a `repo:` resource, status, gc), none
    /// for their own locks alone.
    pub fn shards(&self) -> Vec<u8> {
        if self.everything {
            Shards::All.iter().collect()
        } else {
            self.shards.iter().copied().collect()
        }
    }

    /// The texts of the [`solitary`] locks this scope touches: its asked
    /// issues, canonical. A solitary text touches a scope that is not
    /// everything or [`Scope::own`] exactly when it is one of these.
    pub fn solitary_texts(&self) -> impl Iterator<Item = String> {
        self.issues
            .iter()
            .map(|name| format!("issue:{}", String::from_utf8_lossy(name)))
    }

    /// Whether a lock on the stored resource `text` conflicts with one of
    /// the resources of this scope: `Placement::conflicts_with`, without
    /// comparing `text` with each of them, and for most texts without
    /// parsing it, or checking that it is UTF-8 (a read among 100,000
    /// locks asks this of every text it knows, as bytes). A text that is
    /// not UTF-8, which no record holds, is taken to conflict.
    pub fn touches(&self, text: &(impl AsRef<[u8]> + ?Sized)) -> bool {
        let text = text.as_ref();
        if self.everything {
            return true;
        }
        let as_str = || std::str::from_utf8(text).ok();
        if let Some(own) = &self.own {
            return as_str().is_none_or(|text| own.contains(text));
        }
        // The namespace is what comes before the first colon, whether the
        // text is a valid resource or not (`Placement::of`): a known one
        // is a prefix without a colon, so the text starts with it and a
        // colon. (Splitting at the colon first cost twice as much.)
        let Some((namespace, name)) = [
            (Namespace::Issue, b"issue:".as_slice()),
            (Namespace::Path, b"path:"),
            (Namespace::Repo, b"repo:"),
        ]
        .into_iter()
        .find_map(|(namespace, prefix)| Some((namespace, text.strip_prefix(prefix)?))) else {
            return false;
        };
        match namespace {
            Namespace::Repo => !self.issues.is_empty() || !self.paths.is_empty(),
            // An issue's name is kept as written, trailing slashes aside
            // when the text is not valid: neither in the set, no conflict.
            Namespace::Issue => {
                let trimmed = name
                    .iter()
                    .rposition(|byte| *byte != b'/')
                    .map_or(&name[..0], |last| &name[..=last]);
                (self.issues.contains(trimmed)
                    || (trimmed.len() < name.len() && self.issues.contains(name)))
                    && as_str().is_none_or(|text| {
                        self.issues.contains(Placement::of(text).name().as_bytes())
                    })
            }
            // Two paths overlap when one is the other or one of its
            // ancestors (`paths_overlap`).
            Namespace::Path => {
                if self.paths.is_empty() {
                    return false;
                }
                let Some(text) = as_str() else {
                    return true;
                };
                let place = Placement::of(text);
                self.path_lines.contains(place.name())
                    || lineage(place.name()).any(|p| self.paths.contains(p))
            }
        }
    }
}

/// Whether a lock on the stored resource `text` conflicts only with
/// locks on the same text and with `repo:` locks: a valid `issue:`
/// resource, which is canonical as written. Most locks are, and a reader
/// that knows which stored texts are not can find every lock a decision
/// on issues depends on without listing the others (`docs/PROTOCOL.md`
/// §7).
pub fn solitary(text: &[u8]) -> bool {
    text.starts_with(b"issue:") && std::str::from_utf8(text).is_ok_and(Resource::is_issue)
}

/// `name` and each of its ancestors: every prefix that ends before a `/`.
fn lineage(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices('/')
        .map(|(at, _)| &name[..at])
        .chain(std::iter::once(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(text: &str) -> Resource {
        Resource::parse(text).expect("valid resource")
    }

    #[test]
    fn an_issue_reaches_itself_and_repo_locks_only() {
        let scope = Scope::of([&r("issue:7")]);
        assert!(scope.touches("issue:7"));
        assert!(scope.touches("repo:deploy"));
        assert!(!scope.touches("issue:8"));
        assert!(!scope.touches("path:7"));
        assert!(!scope.touches("no namespace"));
    }

    #[test]
    fn a_path_reaches_its_ancestors_and_descendants() {
        let scope = Scope::of([&r("path:src/a")]);
        for text in ["path:src", "path:src/a", "path:src/a/b.rs", "path:src/a/"] {
            assert!(scope.touches(text), "{text}");
        }
        for text in ["path:src/ab", "path:src/b", "path:srca", "issue:src/a"] {
            assert!(!scope.touches(text), "{text}");
        }
    }

    #[test]
    fn a_repo_resource_reaches_everything() {
        let scope = Scope::of([&r("issue:1"), &r("repo:gc")]);
        assert!(scope.is_everything());
        assert!(scope.touches("weird text"));
        assert!(!Scope::of([&r("issue:1")]).is_everything());
    }

    #[test]
    fn an_own_scope_reaches_the_asked_resources_alone_and_no_shard() {
        let scope = Scope::own([&r("path:src/a"), &r("issue:1"), &r("repo:deploy")]);
        for text in ["path:src/a", "issue:1", "repo:deploy"] {
            assert!(scope.touches(text), "{text}");
        }
        for text in ["path:src", "path:src/a/b", "repo:global", "issue:2", "x"] {
            assert!(!scope.touches(text), "{text}");
        }
        assert!(!scope.is_everything());
        assert_eq!(scope.shards(), Vec::<u8>::new());
        assert_eq!(scope.own_only().map(|own| own.len()), Some(3));
        assert_eq!(Scope::of([&r("issue:1")]).own_only(), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]

        /// The sets give exactly the answer of comparing with each asked
        /// resource, stored texts of other tools (invalid, unknown
        /// namespaces, stray slashes, control characters) included. And a
        /// solitary text, exactly one that parses as an issue, touches a
        /// scope exactly when the scope asked for it: what lets a reader
        /// leave solitary locks unlisted.
        #[test]
        fn touches_exactly_what_conflicts(
            asked in proptest::collection::vec(0..13usize, 0..4),
            stored in "(issue|path|repo|other)?:?[ab/. \\t\\x7f\u{85}\u{a0}é]{0,6}",
        ) {
            const ASKED: [&str; 13] = [
                "issue:a", "issue:b", "path:a", "path:a/b", "path:b/a/b", "path:ab",
                "path:a/b/a", "repo:x", "issue:a/b", "path:b", "issue:a/", "issue:é",
                "issue:a.b",
            ];
            let asked: Vec<Resource> = asked.iter().map(|&i| r(ASKED[i])).collect();
            let place = Placement::of(&stored);
            let expected = asked.iter().any(|a| place.conflicts_with(&Placement::from(a)));
            let scope = Scope::of(&asked);
            proptest::prop_assert_eq!(scope.touches(&stored), expected);
            let parsed = Resource::parse(&stored);
            let solitary = solitary(stored.as_bytes());
            proptest::prop_assert_eq!(
                solitary,
                parsed.as_ref().is_ok_and(|r| r.namespace() == Namespace::Issue),
                "{:?}", parsed
            );
            if solitary && !scope.is_everything() {
                let named = scope.solitary_texts().any(|text| text == stored);
                proptest::prop_assert_eq!(expected, named);
            }
        }
    }

    #[test]
    fn issues_are_solitary_when_they_parse() {
        for text in ["issue:7", "issue:a/", "issue:a b", "issue:é"] {
            assert!(solitary(text.as_bytes()), "{text}");
        }
        let long = format!("issue:{}", "x".repeat(crate::lease::MAX_RESOURCE_LEN));
        for text in [
            "issue:",
            "issue: 7",
            "issue:7 ",
            "issue:\u{7}",
            "repo:x",
            "path:a",
            "x",
            &long,
        ] {
            assert!(!solitary(text.as_bytes()), "{text}");
        }
        assert!(!solitary(b"issue:\xff"));
    }
}
