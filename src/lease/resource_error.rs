//! Why a resource was refused, in words a user can act on, and which part
//! of what they typed is at fault.

const EXAMPLES: &str =
    "valid resources look like `issue:8057324b`, `path:src/auth.rs`, `path:src/` or `repo:deploy`";

/// Why a resource was refused. Every message says what is wrong and what a
/// valid resource looks like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    /// Nothing was given.
    #[error("the resource is empty; {EXAMPLES}")]
    Empty,
    #[error(
        "the resource is {len} bytes long, more than the limit of {limit}; name a shorter path or id"
    )]
    /// Longer than the limit on a resource's length.
    TooLong {
        /// Length in bytes.
        len: usize,
        /// The limit, in bytes.
        limit: usize,
    },
    /// No `namespace:` prefix.
    #[error("`{input}` has no namespace; write `namespace:name` ({EXAMPLES})")]
    MissingNamespace {
        /// The text as given.
        input: String,
    },
    #[error(
        "unknown namespace `{namespace}`; the namespaces are `issue:`, `path:` and `repo:` ({EXAMPLES})"
    )]
    /// A prefix other than `issue`, `path` or `repo`.
    UnknownNamespace {
        /// The prefix as given.
        namespace: String,
    },
    /// Nothing after the colon.
    #[error("the name after `{namespace}:` is empty; {EXAMPLES}")]
    EmptyName {
        /// The namespace.
        namespace: &'static str,
    },
    #[error(
        "the resource contains a control character (U+{code:04X}) at byte {offset}; use printable text only"
    )]
    /// A control character anywhere.
    ControlCharacter {
        /// Its code point.
        code: u32,
        /// Its byte offset in the input.
        offset: usize,
    },
    #[error(
        "the name after `{namespace}:` starts or ends with white space; write it without the surrounding spaces"
    )]
    /// White space before or after the name.
    SurroundingWhitespace {
        /// The namespace.
        namespace: &'static str,
    },
    #[error(
        "`path:{path}` is absolute; paths are relative to the top of the repository, as in `path:src/auth.rs`"
    )]
    /// A path starting with `/`.
    AbsolutePath {
        /// The path as given.
        path: String,
    },
    #[error(
        "`path:{path}` has a `..` segment and could name something outside the repository; write the path from the top of the repository, as in `path:src/auth.rs`"
    )]
    /// A path with a `..` segment.
    ParentSegment {
        /// The path as given.
        path: String,
    },
    #[error(
        "`path:{path}` names the top of the repository itself; to lock the whole repository use a `repo:` resource such as `repo:global`"
    )]
    /// A path that names the top of the repository (`.`, `./`).
    RepositoryRoot {
        /// The path as given.
        path: String,
    },
}

impl ResourceError {
    /// The part of `input` (the text that was refused) this error is about,
    /// with a few words for it, for showing under the error; `None` when no
    /// one part is to blame (nothing typed, too long, a control character).
    pub fn blame(&self, input: &str) -> Option<(std::ops::Range<usize>, &'static str)> {
        let name = input.find(':').map_or(0..0, |colon| colon + 1..input.len());
        match self {
            ResourceError::Empty
            | ResourceError::TooLong { .. }
            | ResourceError::ControlCharacter { .. } => None,
            ResourceError::MissingNamespace { .. } => {
                Some((0..input.len(), "no `namespace:` in front"))
            }
            ResourceError::UnknownNamespace { .. } => {
                Some((0..name.start.saturating_sub(1), "not issue, path or repo"))
            }
            ResourceError::EmptyName { .. } => Some((name, "nothing after the colon")),
            ResourceError::SurroundingWhitespace { .. } => {
                Some((name, "white space around the name"))
            }
            ResourceError::AbsolutePath { .. } => {
                Some((name.start..name.start + 1, "starts at the root"))
            }
            ResourceError::ParentSegment { .. } => {
                let text = &input[name.clone()];
                let at = text
                    .split('/')
                    .scan(0, |offset, segment| {
                        let start = *offset;
                        *offset += segment.len() + 1;
                        Some((start, segment))
                    })
                    .find(|(_, segment)| *segment == "..")
                    .map_or(0, |(start, _)| start);
                let start = name.start + at;
                Some((start..start + 2, "leaves the repository"))
            }
            ResourceError::RepositoryRoot { .. } => Some((name, "the top of the repository")),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lease::Resource;

    #[test]
    fn a_refusal_blames_the_part_of_the_input_at_fault() {
        fn blame(input: &str) -> Option<(&str, &'static str)> {
            let error = Resource::parse(input).expect_err("refused");
            error
                .blame(input)
                .map(|(span, label)| (&input[span], label))
        }
        assert_eq!(blame("bug:1"), Some(("bug", "not issue, path or repo")));
        assert_eq!(
            blame("nocolon"),
            Some(("nocolon", "no `namespace:` in front"))
        );
        assert_eq!(
            blame("path:a/../../b"),
            Some(("..", "leaves the repository"))
        );
        assert_eq!(blame("path:/etc"), Some(("/", "starts at the root")));
        assert_eq!(
            blame("issue: x"),
            Some((" x", "white space around the name"))
        );
        assert_eq!(blame("path:./"), Some(("./", "the top of the repository")));
        assert_eq!(blame("repo:"), Some(("", "nothing after the colon")));
        assert_eq!(blame("issue:a\u{7}"), None);
        assert_eq!(blame(""), None);
    }
}
