//! The shared version ref, `refs/grite/lock-version`: the one value every
//! transition that makes a lease live must advance, expecting the value it
//! read before it listed the locks. See the module doc of [`crate::store`].
//!
//! It points at a commit without parents whose tree holds one blob,
//! `version.json`: `{"version": N, "highest_token": T, "writer": W}`.
//! `version` strictly increases, `highest_token` is the highest fencing
//! token ever issued in the repository (the floor for the next one, so
//! tokens keep increasing after gc deletes a lock's ref), and `writer` is
//! the nonce of the lease that wrote it. The writer makes every new commit
//! unique: two racers that read the same version would otherwise write
//! identical objects, and a create that finds exactly its own new value
//! already there counts as success.
//!
//! A commit, because other grite tools treat every ref under `refs/grite/`
//! as a commit (a blob there stops their sync); without parents, because
//! its history means nothing and would only grow. Earlier versions of this
//! tool wrote the blob itself as the ref's value: that is still read, and
//! the next write replaces it, expecting it, as any write does.

use gix::ObjectId;
use serde::{Deserialize, Serialize};

use super::Error;
use super::changes::RefChange;
use super::objects::write_commit;
use crate::lease::UnixMillis;

/// The file of a version commit's tree.
const FILE: &str = "version.json";

/// The ref, outside `refs/grite/locks/` so that lock listings and other
/// grite tools never mistake it for a lock.
pub const VERSION_REF: &str = "refs/grite/lock-version";

/// The content of the version blob.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Version {
    pub version: u64,
    pub highest_token: u64,
    #[serde(default)]
    pub writer: String,
}

/// The version as read: the blob id the next write must expect (none when
/// the ref does not exist yet) and its content.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReadVersion {
    pub id: Option<ObjectId>,
    pub value: Version,
}

impl ReadVersion {
    /// The version that follows this one after a lease with `token` and
    /// `writer` nonce was made live.
    pub fn next(&self, token: u64, writer: &str) -> Version {
        Version {
            version: self.value.version.saturating_add(1),
            highest_token: self.value.highest_token.max(token),
            writer: writer.to_owned(),
        }
    }
}

pub(crate) fn read(repo: &gix::Repository) -> Result<ReadVersion, Error> {
    let reference = repo
        .try_find_reference(VERSION_REF)
        .map_err(|e| Error::repository("reading the lock version", e))?;
    let Some(reference) = reference else {
        return Ok(ReadVersion::default());
    };
    let id = reference
        .target()
        .try_id()
        .map(ToOwned::to_owned)
        .ok_or_else(|| corrupt("it is a symbolic ref".to_owned()))?;
    read_at(repo, id)
}

/// The version the ref would hold at `id`: a version commit, or the bare
/// blob of earlier versions.
pub(crate) fn read_at(repo: &gix::Repository, id: ObjectId) -> Result<ReadVersion, Error> {
    let object = repo
        .find_object(id)
        .map_err(|e| corrupt(format!("its object {id} cannot be read: {e}")))?;
    let blob = match object.kind {
        gix::object::Kind::Blob => object,
        gix::object::Kind::Commit => {
            let tree = object
                .into_commit()
                .tree()
                .map_err(|e| corrupt(format!("the tree of commit {id} cannot be read: {e}")))?;
            let entry = tree
                .find_entry(FILE)
                .ok_or_else(|| corrupt(format!("commit {id} has no {FILE}")))?;
            entry
                .object()
                .map_err(|e| corrupt(format!("{FILE} of commit {id} cannot be read: {e}")))?
        }
        kind => {
            return Err(corrupt(format!(
                "it points at a {kind}, not a version commit"
            )));
        }
    };
    let value = serde_json::from_slice(&blob.data)
        .map_err(|e| corrupt(format!("its content is not a lock version: {e}")))?;
    Ok(ReadVersion {
        id: Some(id),
        value,
    })
}

fn corrupt(reason: String) -> Error {
    Error::CorruptLock {
        ref_name: VERSION_REF.to_owned(),
        reason,
        remove_with: format!("git update-ref -d {VERSION_REF}"),
    }
}

/// Writes the version commit for `version` at `at`, and returns the edit
/// that moves the version ref to it from `read` (the value the decision
/// was made on) with the ids of its three objects (which a push must send).
pub(crate) fn advance(
    repo: &gix::Repository,
    read: &ReadVersion,
    version: &Version,
    at: UnixMillis,
) -> Result<(RefChange, Vec<ObjectId>), Error> {
    let bytes = serde_json::to_vec(version).expect("integers and a string serialise");
    let message = format!("lock version {}\n", version.version);
    let (commit, objects) = write_commit(repo, FILE, &bytes, None, &message, at)?;
    let change = RefChange {
        name: VERSION_REF.to_owned(),
        old: read.id,
        new: Some(commit),
    };
    Ok((change, objects))
}
