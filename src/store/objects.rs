//! The objects behind a lock ref: a commit whose tree holds one blob,
//! `lock.json`, and whose parent is the ref's previous commit, so that the
//! ref's history is the lock's audit trail. Objects are written here, by
//! hand, so that every byte is ours and the same inputs give the same ids.

use gix::ObjectId;
use gix::objs::tree::{Entry, EntryKind};

use super::Error;
use crate::lease::{LockRecord, UnixMillis};

/// The file of a lock commit's tree.
pub const LOCK_FILE: &str = "lock.json";

/// Writes blob, tree and commit for `record` and returns the commit id.
pub(crate) fn write_lock_commit(
    repo: &gix::Repository,
    record: &LockRecord,
    parent: Option<ObjectId>,
    message: &str,
    at: UnixMillis,
) -> Result<ObjectId, Error> {
    let write = |e: gix::Error| Error::repository("writing lock objects", e);
    let blob = repo.write_blob(record.to_json()).map_err(write)?.detach();
    let tree = gix::objs::Tree {
        entries: vec![Entry {
            mode: EntryKind::Blob.into(),
            filename: LOCK_FILE.into(),
            oid: blob,
        }],
    };
    let tree = repo.write_object(&tree).map_err(write)?.detach();
    let signature = signature(at);
    let commit = gix::objs::Commit {
        tree,
        parents: parent.into_iter().collect(),
        author: signature.clone(),
        committer: signature,
        encoding: None,
        message: message.into(),
        extra_headers: Vec::new(),
    };
    Ok(repo.write_object(&commit).map_err(write)?.detach())
}

/// The author and committer of lock commits: the tool, at the decision's
/// time (whole seconds, UTC), so that fixed inputs give fixed ids.
pub(crate) fn signature(at: UnixMillis) -> gix::actor::Signature {
    let seconds = i64::try_from(at.0 / 1000).unwrap_or(i64::MAX);
    gix::actor::Signature {
        name: "grite".into(),
        email: "grite@localhost".into(),
        time: gix::date::Time::new(seconds, 0),
    }
}

/// Reads the record of the lock commit `id` found under `ref_hash`. Every
/// way the objects can be wrong is a reason for [`Error::CorruptLock`],
/// named for the user.
pub(crate) fn read_lock(
    repo: &gix::Repository,
    id: ObjectId,
    ref_hash: &str,
) -> Result<LockRecord, String> {
    let object = repo
        .find_object(id)
        .map_err(|e| format!("its object {id} cannot be read: {e}"))?;
    if object.kind != gix::object::Kind::Commit {
        return Err(format!(
            "it points at a {} ({id}), not a lock commit",
            object.kind
        ));
    }
    let commit = object.into_commit();
    let tree = commit
        .tree()
        .map_err(|e| format!("the tree of commit {id} cannot be read: {e}"))?;
    let entry = tree
        .find_entry(LOCK_FILE)
        .ok_or_else(|| format!("commit {id} has no {LOCK_FILE}"))?;
    let blob_id = entry.oid().to_owned();
    let blob = repo
        .find_object(blob_id)
        .map_err(|e| format!("{LOCK_FILE} ({blob_id}) cannot be read: {e}"))?;
    if blob.kind != gix::object::Kind::Blob {
        return Err(format!(
            "{LOCK_FILE} in commit {id} is a {}, not a file",
            blob.kind
        ));
    }
    LockRecord::from_json(&blob.data, ref_hash).map_err(|e| e.to_string())
}
