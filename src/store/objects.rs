//! The objects behind a lock ref: a commit whose tree holds one blob,
//! `lock.json`, and whose parent is the ref's previous commit, so that the
//! ref's history is the lock's audit trail. Objects are written here, by
//! hand, so that every byte is ours and the same inputs give the same ids.

use gix::ObjectId;
use gix::objs::tree::{Entry, EntryKind};

use super::{Error, loose_object};
use crate::lease::{LockRecord, UnixMillis};

/// The file of a lock commit's tree.
pub const LOCK_FILE: &str = "lock.json";

/// Writes blob, tree and commit for `record`; returns the commit id and the
/// ids of the three objects (which a push must send).
pub(crate) fn write_lock_commit(
    repo: &gix::Repository,
    record: &LockRecord,
    parent: Option<ObjectId>,
    message: &str,
    at: UnixMillis,
) -> Result<(ObjectId, Vec<ObjectId>), Error> {
    write_commit(repo, LOCK_FILE, &record.to_json(), parent, message, at)
}

/// Writes a commit whose tree holds one file, `name` with `content`, and
/// whose parent is `parent`; returns the commit id and the ids of the
/// commit, its tree and the blob.
pub(crate) fn write_commit(
    repo: &gix::Repository,
    name: &str,
    content: &[u8],
    parent: Option<ObjectId>,
    message: &str,
    at: UnixMillis,
) -> Result<(ObjectId, Vec<ObjectId>), Error> {
    let write = |e: std::io::Error| Error::repository("writing lock objects", e);
    let blob = gix::objs::BlobRef { data: content };
    let blob = again(|| loose_object::write(repo, &blob)).map_err(write)?;
    let tree = gix::objs::Tree {
        entries: vec![Entry {
            mode: EntryKind::Blob.into(),
            filename: name.into(),
            oid: blob,
        }],
    };
    let tree = again(|| loose_object::write(repo, &tree)).map_err(write)?;
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
    let commit = again(|| loose_object::write(repo, &commit)).map_err(write)?;
    Ok((commit, vec![commit, tree, blob]))
}

/// Runs `write` once more after a failure, as git does when it finalises a
/// loose object: a `git gc` running beside us removes the fan-out folders
/// it emptied, and one can vanish between its creation and our rename.
fn again<T>(write: impl Fn() -> std::io::Result<T>) -> std::io::Result<T> {
    write().or_else(|_| write())
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

/// Reads the record of the lock commit `id` found under `ref_hash`, using
/// `buf` for object data (status reads thousands of locks; one buffer
/// serves them all). Every way the objects can be wrong is a reason, named
/// for the user.
pub(crate) fn read_lock(
    repo: &gix::Repository,
    id: ObjectId,
    ref_hash: &str,
    buf: &mut Vec<u8>,
) -> Result<LockRecord, String> {
    let json = read_lock_json(repo, id, buf)?;
    LockRecord::from_json(json, ref_hash).map_err(|e| e.to_string())
}

/// The bytes of `lock.json` in the lock commit `id`, as stored.
pub(crate) fn read_lock_json<'a>(
    repo: &gix::Repository,
    id: ObjectId,
    buf: &'a mut Vec<u8>,
) -> Result<&'a [u8], String> {
    let (tree_id, _, _) = read_commit(repo, id, buf)?;
    lock_json(repo, id, tree_id, buf)
}

/// A lock commit as a lock's history needs it.
pub(crate) struct LockCommit {
    /// Its record, or why it cannot be read.
    pub record: Result<LockRecord, String>,
    /// Its first parent: the commit the ref held before.
    pub parent: Option<ObjectId>,
    /// Its committer's time (whole seconds).
    pub time: UnixMillis,
}

/// Reads the lock commit `id` found under `ref_hash`; fails only when the
/// commit itself cannot be read, and otherwise says in `record` why its
/// record cannot be.
pub(crate) fn read_lock_commit(
    repo: &gix::Repository,
    id: ObjectId,
    ref_hash: &str,
    buf: &mut Vec<u8>,
) -> Result<LockCommit, String> {
    let (tree_id, parent, time) = read_commit(repo, id, buf)?;
    let record = lock_json(repo, id, tree_id, buf)
        .and_then(|json| LockRecord::from_json(json, ref_hash).map_err(|e| e.to_string()));
    Ok(LockCommit {
        record,
        parent,
        time,
    })
}

/// The tree, first parent and committer time of the commit `id`.
fn read_commit(
    repo: &gix::Repository,
    id: ObjectId,
    buf: &mut Vec<u8>,
) -> Result<(ObjectId, Option<ObjectId>, UnixMillis), String> {
    let commit = find(repo, &id, buf, "its object")?;
    if commit.kind != gix::object::Kind::Commit {
        return Err(format!(
            "it points at a {} ({id}), not a lock commit",
            commit.kind
        ));
    }
    let commit = gix::objs::CommitRef::from_bytes(commit.data, repo.object_hash())
        .map_err(|e| format!("commit {id} cannot be parsed: {e}"))?;
    let seconds = commit.committer().map_or(0, |c| c.seconds());
    let time = UnixMillis(u64::try_from(seconds).unwrap_or(0).saturating_mul(1000));
    Ok((commit.tree(), commit.parents().next(), time))
}

/// The content of `lock.json` in the tree `tree_id` of lock commit `id`.
fn lock_json<'a>(
    repo: &gix::Repository,
    id: ObjectId,
    tree_id: ObjectId,
    buf: &'a mut Vec<u8>,
) -> Result<&'a [u8], String> {
    let kind = repo.object_hash();
    let blob_id = {
        let tree = find(repo, &tree_id, buf, "the tree of the commit")?;
        if tree.kind != gix::object::Kind::Tree {
            return Err(format!("commit {id} has a {} for a tree", tree.kind));
        }
        let mut found = None;
        for entry in gix::objs::TreeRefIter::from_bytes(tree.data, kind) {
            let entry =
                entry.map_err(|e| format!("the tree of commit {id} cannot be parsed: {e}"))?;
            if entry.filename == LOCK_FILE {
                found = Some(entry.oid.to_owned());
                break;
            }
        }
        found.ok_or_else(|| format!("commit {id} has no {LOCK_FILE}"))?
    };
    let blob = find(repo, &blob_id, buf, LOCK_FILE)?;
    if blob.kind != gix::object::Kind::Blob {
        return Err(format!(
            "{LOCK_FILE} in commit {id} is a {}, not a file",
            blob.kind
        ));
    }
    Ok(blob.data)
}

fn find<'a>(
    repo: &gix::Repository,
    id: &gix::oid,
    buf: &'a mut Vec<u8>,
    what: &str,
) -> Result<gix::objs::Data<'a>, String> {
    use gix::objs::Find as _;
    match repo.objects.try_find(id, buf) {
        Ok(Some(data)) => Ok(data),
        Ok(None) => Err(format!("{what} ({id}) is missing from the object database")),
        Err(e) => Err(format!(
            "{what} ({id}) cannot be read: {}",
            crate::remote::error_chain(&e)
        )),
    }
}
