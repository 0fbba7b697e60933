//! The shared version ref, `refs/grite/lock-version`: the one value every
//! transition that makes a lease live must advance, expecting the value it
//! read before it listed the locks. See the module doc of [`crate::store`].
//!
//! It points at a small blob, `{"version": N, "highest_token": T, "writer": W}`:
//! `version` strictly increases, `highest_token` is the highest fencing
//! token ever issued in the repository (the floor for the next one, so
//! tokens keep increasing after gc deletes a lock's ref), and `writer` is
//! the nonce of the lease that wrote it. The writer makes every new blob
//! unique: two racers that read the same version would otherwise write
//! identical blobs, and a create that finds exactly its own new value
//! already there counts as success.

use gix::ObjectId;
use serde::{Deserialize, Serialize};

use super::Error;

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

/// The version the ref would hold at `id`.
pub(crate) fn read_at(repo: &gix::Repository, id: ObjectId) -> Result<ReadVersion, Error> {
    let object = repo
        .find_object(id)
        .map_err(|e| corrupt(format!("its object {id} cannot be read: {e}")))?;
    if object.kind != gix::object::Kind::Blob {
        return Err(corrupt(format!(
            "it points at a {}, not a version blob",
            object.kind
        )));
    }
    let value = serde_json::from_slice(&object.data)
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

pub(crate) fn write(repo: &gix::Repository, version: &Version) -> Result<ObjectId, Error> {
    let bytes = serde_json::to_vec(version).expect("integers and a string serialise");
    super::objects::again(|| repo.write_blob(&bytes))
        .map(gix::Id::detach)
        .map_err(|e| Error::repository("writing the lock version", e))
}
