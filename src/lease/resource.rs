//! Resources (`namespace:name`), their validation and the conflict rules of
//! `docs/PROTOCOL.md` §2.
//!
//! A resource is parsed once, at the edge, into a [`Resource`] whose name is
//! canonical: two spellings of one thing (`path:src`, `path:src/`,
//! `path:./src`) become one value, so they hash to one ref and compare equal.

use std::fmt;

use sha2::{Digest, Sha256};

pub use super::resource_error::ResourceError;

/// Longest resource accepted, in bytes of the text as typed (namespace,
/// colon and name). Long enough for any real path in a repository, short
/// enough that a lock record stays small.
pub const MAX_RESOURCE_LEN: usize = 512;

/// Where lock refs live; the rest of the ref name is [`Resource::ref_hash`].
pub const LOCK_REF_PREFIX: &str = "refs/grite/locks/";

/// How many hex characters of SHA-256 name a lock ref (`docs/PROTOCOL.md` §3).
pub const REF_HASH_LEN: usize = 16;

/// The kinds of thing a lock can be taken on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Namespace {
    /// An issue of the tracker, by id.
    Issue,
    /// A file or a directory of the repository, relative to its top.
    Path,
    /// The whole repository, for an operation such as a deploy or a migration.
    Repo,
}

impl Namespace {
    /// The prefix as written before the colon.
    pub fn as_str(self) -> &'static str {
        match self {
            Namespace::Issue => "issue",
            Namespace::Path => "path",
            Namespace::Repo => "repo",
        }
    }

    pub(super) fn parse(text: &str) -> Option<Self> {
        match text {
            "issue" => Some(Namespace::Issue),
            "path" => Some(Namespace::Path),
            "repo" => Some(Namespace::Repo),
            _ => None,
        }
    }
}

/// A validated, canonical resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Resource {
    namespace: Namespace,
    name: String,
}

impl Resource {
    /// Parses and validates `namespace:name`, returning the canonical
    /// resource. Checks run cheapest first and the length check before any
    /// work proportional to the input.
    pub fn parse(input: &str) -> Result<Self, ResourceError> {
        let (namespace, name) = split(input)?;
        let name = match namespace {
            Namespace::Path => canonical_path(name)?,
            Namespace::Issue | Namespace::Repo => name.to_owned(),
        };
        // Checked on the canonical name: `path:x /` would otherwise become
        // `path:x `, which does not parse again.
        if name.trim() != name {
            return Err(ResourceError::SurroundingWhitespace {
                namespace: namespace.as_str(),
            });
        }
        Ok(Resource { namespace, name })
    }

    /// Whether `text` parses as an `issue:` resource, without building one
    /// (an issue's name is canonical as written).
    pub fn is_issue(text: &str) -> bool {
        matches!(split(text), Ok((Namespace::Issue, name)) if name.trim() == name)
    }

    /// The namespace of this resource.
    pub fn namespace(&self) -> Namespace {
        self.namespace
    }

    /// The canonical name after the colon.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The first [`REF_HASH_LEN`] lowercase hex characters of SHA-256 of the
    /// canonical text, as every grite tool names lock refs.
    pub fn ref_hash(&self) -> String {
        ref_hash_of(&self.to_string())
    }

    /// The full ref name of this resource's lock.
    pub fn ref_name(&self) -> String {
        format!("{LOCK_REF_PREFIX}{}", self.ref_hash())
    }

    /// Whether a lock on `self` and a lock on `other`, held by different
    /// actors, may not both be live (`docs/PROTOCOL.md` §2). Symmetric, and true for
    /// equal resources.
    pub fn conflicts_with(&self, other: &Resource) -> bool {
        use Namespace::{Issue, Path, Repo};
        match (self.namespace, other.namespace) {
            (Repo, _) | (_, Repo) => true,
            (Issue, Issue) => self.name == other.name,
            (Path, Path) => paths_overlap(&self.name, &other.name),
            (Issue, Path) | (Path, Issue) => false,
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.namespace.as_str(), self.name)
    }
}

impl std::str::FromStr for Resource {
    type Err = ResourceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Resource::parse(s)
    }
}

/// The ref hash of any resource text, canonical or not. Records written by
/// other tools are checked against the ref they were found under with this,
/// on the text exactly as they stored it.
pub fn ref_hash_of(resource_text: &str) -> String {
    ref_hash_of_key(ref_key_of(resource_text))
}

/// The ref hash that spells `key` (see [`ref_key`]).
pub fn ref_hash_of_key(key: u64) -> String {
    format!("{key:0REF_HASH_LEN$x}")
}

/// The number the ref hash of `resource_text` spells: what a table of
/// many ref names is keyed by, without formatting each one.
pub fn ref_key_of(resource_text: &str) -> u64 {
    let digest = Sha256::digest(resource_text.as_bytes());
    let mut key = [0; REF_HASH_LEN / 2];
    key.copy_from_slice(&digest[..REF_HASH_LEN / 2]);
    u64::from_be_bytes(key)
}

/// The number a ref hash spells (see [`ref_key_of`]), if `hash` is one as
/// grite writes them: [`REF_HASH_LEN`] lowercase hex characters.
pub fn ref_key(hash: impl AsRef<[u8]>) -> Option<u64> {
    // A read among 100,000 packed locks asks this of every name. Hex digits
    // of hashes are random, so a branch on digit or letter is mispredicted
    // for about every other character: a table and one check at the end
    // cost a fraction of that (perf had the branching parse at an eighth
    // of an acquire).
    let digits: &[u8; REF_HASH_LEN] = hash.as_ref().try_into().ok()?;
    let (key, invalid) = digits.iter().fold((0u64, 0u8), |(key, invalid), digit| {
        let value = HEX_VALUE[usize::from(*digit)];
        (key << 4 | u64::from(value & 0x0f), invalid | value)
    });
    (invalid & NOT_HEX == 0).then_some(key)
}

/// Set in [`HEX_VALUE`] for a byte that is not a lowercase hex digit.
const NOT_HEX: u8 = 0x80;

/// The value of each byte as a lowercase hex digit, else [`NOT_HEX`].
const HEX_VALUE: [u8; 256] = {
    let mut table = [NOT_HEX; 256];
    let mut digit = 0;
    while digit < 16 {
        table[b"0123456789abcdef"[digit] as usize] = digit as u8;
        digit += 1;
    }
    table
};

/// The namespace and name of `input`, checked as far as they can be
/// without building a name: cheapest first, and the length before any
/// work proportional to the input.
fn split(input: &str) -> Result<(Namespace, &str), ResourceError> {
    if input.is_empty() {
        return Err(ResourceError::Empty);
    }
    if input.len() > MAX_RESOURCE_LEN {
        return Err(ResourceError::TooLong {
            len: input.len(),
            limit: MAX_RESOURCE_LEN,
        });
    }
    if let Some((offset, c)) = input.char_indices().find(|(_, c)| c.is_control()) {
        return Err(ResourceError::ControlCharacter {
            code: u32::from(c),
            offset,
        });
    }
    let Some((prefix, name)) = input.split_once(':') else {
        return Err(ResourceError::MissingNamespace {
            input: input.to_owned(),
        });
    };
    let namespace = Namespace::parse(prefix).ok_or_else(|| ResourceError::UnknownNamespace {
        namespace: prefix.to_owned(),
    })?;
    if name.is_empty() {
        return Err(ResourceError::EmptyName {
            namespace: namespace.as_str(),
        });
    }
    Ok((namespace, name))
}

/// Canonical form of a repository path: `/`-separated segments with empty
/// and `.` segments dropped and no trailing slash, so that `src`, `src/`,
/// `./src` and `src//` are one directory.
fn canonical_path(path: &str) -> Result<String, ResourceError> {
    if path.starts_with('/') {
        return Err(ResourceError::AbsolutePath {
            path: path.to_owned(),
        });
    }
    let mut segments = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                return Err(ResourceError::ParentSegment {
                    path: path.to_owned(),
                });
            }
            _ => segments.push(segment),
        }
    }
    if segments.is_empty() {
        return Err(ResourceError::RepositoryRoot {
            path: path.to_owned(),
        });
    }
    Ok(segments.join("/"))
}

/// Equal paths, or one a directory that contains the other, segment by
/// segment: `src` overlaps `src/a.rs` but not `srcx`.
pub(super) fn paths_overlap(a: &str, b: &str) -> bool {
    let (shorter, longer) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    match longer.strip_prefix(shorter) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(text: &str) -> Resource {
        Resource::parse(text).expect("valid resource in test")
    }

    #[test]
    fn ref_name_is_the_first_16_hex_of_sha256_of_the_resource() {
        // Expected values from `printf 'repo:global' | sha256sum` (coreutils).
        assert_eq!(
            r("repo:global").ref_name(),
            "refs/grite/locks/4fa20104a646a633"
        );
        assert_eq!(r("issue:8057324b").ref_hash(), "a02e999268bbd49c");
    }

    #[test]
    fn ref_keys_are_the_numbers_ref_hashes_spell() {
        assert_eq!(ref_key_of("issue:8057324b"), 0xa02e_9992_68bb_d49c);
        assert_eq!(ref_key("a02e999268bbd49c"), Some(0xa02e_9992_68bb_d49c));
        assert_eq!(ref_key("000000000000000f"), Some(15));
        for not_ours in [
            "A02E999268BBD49C",
            "a02e999268bbd49",
            "a02e999268bbd49c0",
            "+02e999268bbd49c",
        ] {
            assert_eq!(ref_key(not_ours), None, "{not_ours}");
        }
    }

    proptest::proptest! {
        /// A name is a key exactly when it is 16 lowercase hex digits, and
        /// then it is the number they spell.
        #[test]
        fn ref_key_reads_exactly_the_names_grite_writes(name in "[0-9a-fA-F+g]{15,17}") {
            let lowercase_hex = name.len() == REF_HASH_LEN
                && name.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            let expected = lowercase_hex.then(|| u64::from_str_radix(&name, 16).ok()).flatten();
            proptest::prop_assert_eq!(ref_key(&name), expected);
        }

        #[test]
        fn ref_key_reads_back_every_ref_hash(key: u64) {
            proptest::prop_assert_eq!(ref_key(ref_hash_of_key(key)), Some(key));
        }
    }

    #[test]
    fn path_spellings_of_one_directory_are_one_resource() {
        for spelling in ["path:src/", "path:./src", "path:src//", "path:src/./"] {
            assert_eq!(r(spelling), r("path:src"), "{spelling}");
            assert_eq!(r(spelling).ref_name(), r("path:src").ref_name());
        }
        assert_eq!(r("path:a//b/./c").to_string(), "path:a/b/c");
    }

    #[test]
    fn white_space_left_at_an_end_by_canonicalisation_is_refused() {
        // Found by the `resource` fuzz target: `x /` canonicalised to `x `.
        for input in ["path:x /", "path:./ x", "path:'/th: /"] {
            assert_eq!(
                Resource::parse(input),
                Err(ResourceError::SurroundingWhitespace { namespace: "path" }),
                "{input}"
            );
        }
        assert_eq!(r("path:a /b").name(), "a /b");
    }

    #[test]
    fn issue_and_repo_names_are_kept_as_written() {
        assert_eq!(r("issue:8057324b").name(), "8057324b");
        assert_eq!(r("repo:deploy/prod").name(), "deploy/prod");
    }

    #[test]
    fn paths_overlap_only_on_whole_segments() {
        assert!(r("path:src").conflicts_with(&r("path:src/a.rs")));
        assert!(r("path:src/a.rs").conflicts_with(&r("path:src")));
        assert!(r("path:src/a.rs").conflicts_with(&r("path:src/a.rs")));
        assert!(!r("path:src").conflicts_with(&r("path:srcx/a.rs")));
        assert!(!r("path:src/a.rs").conflicts_with(&r("path:src/b.rs")));
    }

    #[test]
    fn repo_conflicts_with_everything_and_issues_only_with_themselves() {
        assert!(r("repo:deploy").conflicts_with(&r("issue:1")));
        assert!(r("path:x").conflicts_with(&r("repo:deploy")));
        assert!(r("repo:deploy").conflicts_with(&r("repo:migrate")));
        assert!(r("issue:1").conflicts_with(&r("issue:1")));
        assert!(!r("issue:1").conflicts_with(&r("issue:2")));
        assert!(!r("issue:1").conflicts_with(&r("path:1")));
    }

    #[test]
    fn length_limit_is_inclusive() {
        let at_limit = format!("issue:{}", "x".repeat(MAX_RESOURCE_LEN - 6));
        assert!(Resource::parse(&at_limit).is_ok());
        let over = format!("{at_limit}x");
        assert_eq!(
            Resource::parse(&over),
            Err(ResourceError::TooLong {
                len: MAX_RESOURCE_LEN + 1,
                limit: MAX_RESOURCE_LEN,
            })
        );
    }
}
