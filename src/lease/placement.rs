//! Where a stored resource text stands under the conflict rules of
//! `docs/PROTOCOL.md` §2, whether or not it parses as a [`Resource`]: a
//! record read from a ref may come from a tool with other rules, or a
//! hostile one, and must still take part in every conflict check.

use super::resource::{Namespace, Resource, paths_overlap};

/// Where a stored resource text stands under the conflict rules: its
/// namespace and name, canonical when the text is a valid resource, as
/// written (trailing slashes aside) when it is not, as in a record of a
/// tool with other rules or a hostile one. Every live lock thus takes part
/// in the conflict check that status shows it in; a text without a known
/// namespace conflicts only with `repo:` locks, which conflict with all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    namespace: Option<Namespace>,
    name: String,
}

impl Placement {
    /// The placement of a resource as stored.
    pub fn of(text: &str) -> Placement {
        if let Ok(resource) = Resource::parse(text) {
            return Placement::from(&resource);
        }
        match text.split_once(':') {
            Some((prefix, name)) => Placement {
                namespace: Namespace::parse(prefix),
                name: name.trim_end_matches('/').to_owned(),
            },
            None => Placement {
                namespace: None,
                name: text.to_owned(),
            },
        }
    }

    /// The namespace, if the text names one we know.
    pub fn namespace(&self) -> Option<Namespace> {
        self.namespace
    }

    /// The name: canonical for a valid resource, else as written.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The rules of [`Resource::conflicts_with`], on placements.
    pub fn conflicts_with(&self, other: &Placement) -> bool {
        use Namespace::{Issue, Path, Repo};
        match (self.namespace, other.namespace) {
            (Some(Repo), _) | (_, Some(Repo)) => true,
            (Some(Issue), Some(Issue)) => self.name == other.name,
            (Some(Path), Some(Path)) => paths_overlap(&self.name, &other.name),
            _ => false,
        }
    }
}

impl From<&Resource> for Placement {
    fn from(resource: &Resource) -> Placement {
        Placement {
            namespace: Some(resource.namespace()),
            name: resource.name().to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_that_are_not_resources_still_conflict_by_their_namespace() {
        let place = |t: &str| Placement::of(t);
        // A control character makes these invalid, but not harmless.
        assert!(place("path:src\u{1b}/a.rs").conflicts_with(&place("path:src\u{1b}")));
        assert!(place("issue:x\u{7}").conflicts_with(&place("issue:x\u{7}")));
        assert!(place("repo:x\u{7}").conflicts_with(&place("issue:1")));
        assert!(place("branch:main").conflicts_with(&place("repo:deploy")));
        assert!(!place("branch:main").conflicts_with(&place("branch:main")));
        assert!(!place("branch:main").conflicts_with(&place("path:src")));
        assert!(place("path:src//").conflicts_with(&place("path:src/a.rs")));
        assert_eq!(
            place("path:./src/"),
            Placement::from(&Resource::parse("path:src").expect("valid"))
        );
    }
}
