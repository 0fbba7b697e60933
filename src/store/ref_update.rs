//! Making ref changes in a repository on this machine, as one transaction,
//! as git's files backend makes them: the lock file (`<ref>.lock`) of
//! every ref created or moved, and of every deleted ref that has a loose
//! file, taken; `packed-refs.lock` too if the transaction deletes a ref;
//! then what each ref holds read under the locks (its loose file, else
//! packed-refs as it is then) and checked against what the writer
//! expects; the new values written into the lock files, and packed-refs
//! without the deleted refs into a new file beside it; and, once all are
//! checked, each ref's lock file renamed over it in the order given (the
//! lock refs before the version shards, `docs/PROTOCOL.md` §7), then the
//! new packed-refs renamed over the old, then the deleted loose files
//! removed, and only then `packed-refs.lock` released.
//!
//! This differs from gix's transaction, which it replaces except where a
//! reflog would be written, in three ways. gix releases
//! `packed-refs.lock` before it removes the loose files (see
//! [`transact`]). gix takes `packed-refs.lock` for any update in a
//! repository that has a packed-refs file (every clone has one), to read
//! packed values under it: every write of every process then queues on
//! that one file, and a `git gc`, `git pack-refs` or `git fetch --prune`
//! holding it, or the lock file of a killed git, stops every acquire.
//! Here, as in git, only a deletion takes it. And a packed
//! ref without a loose file is deleted under `packed-refs.lock` alone,
//! where git and gix also create and remove its `<ref>.lock`: for a `gc`
//! of 100,000 packed locks that is 100,000 files created and removed in
//! one folder, most of the time either tool takes. The ref's lock is not
//! needed: a concurrent writer holding it can only write a loose file,
//! which hides the packed value whether it is removed or not (a loose
//! file already there is seen under `packed-refs.lock`, and the deletion
//! is lost to that writer). A ref's own lock is still enough to read its
//! packed value for an update: the only change to that value it does not
//! exclude is such a removal, which the loose file the update writes
//! hides.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use gix::ObjectId;
use gix_lock::acquire::Fail;

use super::changes::{ApplyError, RefChange};
use super::clock::{Clock, SystemClock};
use super::gate;
use super::objects::signature;
use super::packed_refs::Rewrite;
use super::ref_file::Held;
use super::ref_names::ListedRefs;

/// The longest a lock file is waited for when `core.filesRefLockTimeout`
/// or `core.packedRefsTimeout` asks to wait without end: a deadline on
/// every wait. The writer's own pacing of busy refs takes over from there.
const LONGEST_LOCK_WAIT: Duration = Duration::from_secs(60);

/// Makes `changes` in `repo` as one transaction: every expectation is
/// checked, under the locks, before anything is written. Made as the
/// module doc says, or by gix where a reflog would be written. The
/// transaction holds the process's ref-write gate (see [`gate`]), so a
/// termination signal never cuts it between two renames.
pub(super) fn apply_changes(
    repo: &gix::Repository,
    changes: &[RefChange],
) -> Result<(), ApplyError> {
    if changes.is_empty() {
        return Ok(());
    }
    let _transaction = gate::transaction();
    if writes_reflogs(repo) {
        return through_gix(repo, changes);
    }
    transact(repo, changes)
}

/// Makes `changes` through gix's transaction, which writes reflogs.
fn through_gix(repo: &gix::Repository, changes: &[RefChange]) -> Result<(), ApplyError> {
    let edits = changes
        .iter()
        .map(RefChange::edit)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApplyError::classify(e, repo, changes))?;
    // Reflogs are written only where the repository asks for them for
    // every ref (core.logAllRefUpdates=always); they need a committer.
    let signature = signature(SystemClock.now());
    let mut time = gix::date::parse::TimeBuf::default();
    repo.edit_references_as(edits, Some(signature.to_ref(&mut time)))
        .map(drop)
        .map_err(|e| ApplyError::classify(e, repo, changes))
}

/// Whether gix would write a reflog for a lock ref: with
/// `core.logAllRefUpdates = always`, or where one was written before
/// (gix appends to a reflog that exists, and removes it with its ref).
fn writes_reflogs(repo: &gix::Repository) -> bool {
    repo.refs.write_reflog == gix::refs::store::WriteReflog::Always
        || repo.common_dir().join("logs/refs/grite").exists()
}

/// One change of a transaction, with the lock it takes.
enum Edit<'a> {
    /// A ref created or moved, under its lock file.
    Update(&'a RefChange, ObjectId, gix_lock::File),
    /// A ref with a loose file deleted, under its lock file (and
    /// packed-refs.lock).
    DeleteLoose(&'a RefChange, gix_lock::File),
    /// A packed ref without a loose file deleted, under packed-refs.lock
    /// alone.
    DeletePacked(&'a RefChange),
}

impl Edit<'_> {
    fn change(&self) -> &RefChange {
        match self {
            Edit::Update(change, ..)
            | Edit::DeleteLoose(change, _)
            | Edit::DeletePacked(change) => change,
        }
    }
}

/// Makes `changes` as the module doc says.
fn transact(repo: &gix::Repository, changes: &[RefChange]) -> Result<(), ApplyError> {
    let common = repo.common_dir();
    check_names(changes)?;
    let ref_wait = lock_wait(repo, "core.filesRefLockTimeout", 100);
    let lock_ref = |path: &Path| {
        gix_lock::File::acquire_to_update_resource(path, ref_wait, Some(common.to_owned()), 0)
            .map_err(|e| ApplyError::classify(e, repo, changes))
    };
    let mut edits = Vec::with_capacity(changes.len());
    for change in changes {
        let path = common.join(&change.name);
        edits.push(match change.new {
            Some(new) => Edit::Update(change, new, lock_ref(&path)?),
            None if has_loose_file(&path)? => Edit::DeleteLoose(change, lock_ref(&path)?),
            None => Edit::DeletePacked(change),
        });
    }
    let deleted: HashSet<&[u8]> = changes
        .iter()
        .filter(|c| c.new.is_none())
        .map(|c| c.name.as_bytes())
        .collect();
    // A deletion takes packed-refs.lock, and reads packed-refs once under
    // it: what each deleted ref holds there, and what the file becomes.
    let (packed_lock, packed_refs) = if deleted.is_empty() {
        (None, None)
    } else {
        let wait = lock_wait(repo, "core.packedRefsTimeout", 1000);
        let lock =
            gix_lock::File::acquire_to_update_resource(common.join("packed-refs"), wait, None, 0)
                .map_err(|e| ApplyError::classify(e, repo, changes))?;
        (Some(lock), Some(Rewrite::of(common, &deleted)?))
    };
    // Read once every lock is held: a packed value read before a ref is
    // locked may be deleted before the lock is taken.
    let mut refs = ListedRefs::unlisted(repo);
    for edit in &edits {
        let change = edit.change();
        let now = match (edit, &packed_refs) {
            (Edit::DeletePacked(_), Some(packed_refs)) => {
                // A loose file written since it was looked for: that
                // write moved the ref first.
                if has_loose_file(&common.join(&change.name))? {
                    return Err(ApplyError::Lost);
                }
                packed_refs.held(&change.name)?
            }
            _ => value(repo, &mut refs, &change.name)?,
        };
        if now != change.old {
            return Err(ApplyError::Lost);
        }
    }
    let mut updates = Vec::new();
    let mut loose_deletions = Vec::new();
    for edit in edits {
        match edit {
            Edit::Update(_, new, mut lock) => {
                lock.with_mut(|file| file.write_all(format!("{new}\n").as_bytes()))
                    .map_err(|e| {
                        ApplyError::Failed(format!("writing {}: {e}", lock.lock_path().display()))
                    })?;
                updates.push(lock);
            }
            Edit::DeleteLoose(_, lock) => loose_deletions.push(lock),
            Edit::DeletePacked(_) => {}
        }
    }
    let packed_refs = match packed_refs {
        Some(rewrite) => rewrite.write(common)?,
        None => None,
    };
    for lock in updates {
        commit(lock)?;
    }
    // As git does, packed-refs is replaced while packed-refs.lock stays
    // held, until the loose files are gone too: a `git pack-refs` between
    // the two would pack a loose file about to be removed, and its value
    // would show through.
    if let Some(file) = packed_refs {
        let path = common.join("packed-refs");
        file.persist(&path).map_err(|e| {
            ApplyError::Failed(format!(
                "moving a new {} into place: {}",
                path.display(),
                e.error
            ))
        })?;
        // gix's lookups in this process trust the copy they read while the
        // file's time is unchanged, which a rewrite within one tick of the
        // clock leaves so; as gix's transaction does, read it again.
        repo.refs.force_refresh_packed_buffer().ok();
    }
    // Each loose file goes once packed-refs no longer holds its ref, so
    // that no packed value shows through; its lock file (and any folder
    // left empty) goes with the lock.
    for lock in loose_deletions {
        match std::fs::remove_file(lock.resource_path()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(ApplyError::Failed(format!(
                    "deleting {}: {e}",
                    lock.resource_path().display()
                )));
            }
        }
    }
    drop(packed_lock);
    Ok(())
}

/// Refuses a name that is no valid ref name, or one changed twice.
fn check_names(changes: &[RefChange]) -> Result<(), ApplyError> {
    for change in changes {
        gix::refs::FullName::try_from(change.name.as_str())
            .map_err(|e| ApplyError::Failed(format!("{}: {e}", change.name)))?;
    }
    let mut names: Vec<&str> = changes.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    match names.windows(2).find(|pair| pair[0] == pair[1]) {
        Some(pair) => Err(ApplyError::Failed(format!(
            "{} is changed twice in one transaction",
            pair[0]
        ))),
        None => Ok(()),
    }
}

/// Whether anything is at the loose ref path `path`.
fn has_loose_file(path: &Path) -> Result<bool, ApplyError> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(ApplyError::Failed(format!("{}: {e}", path.display()))),
    }
}

fn commit(lock: gix_lock::File) -> Result<(), ApplyError> {
    lock.commit().map(drop).map_err(|e| {
        ApplyError::Failed(format!(
            "moving {} into place: {}",
            e.instance.lock_path().display(),
            e.error
        ))
    })
}

/// The object id ref `name` holds (its loose file, else packed-refs read
/// from disk then), `None` if there is no such ref.
fn value(
    repo: &gix::Repository,
    refs: &mut ListedRefs,
    name: &str,
) -> Result<Option<ObjectId>, ApplyError> {
    let read = refs
        .read_full(repo, name.to_owned())
        .map_err(|e| ApplyError::Failed(e.to_string()))?;
    match read.map(|r| r.held) {
        None => Ok(None),
        Some(Held::Id(id)) => Ok(Some(id)),
        Some(Held::Symbolic | Held::Garbage) => Err(ApplyError::Failed(format!(
            "{name} does not hold an object id"
        ))),
    }
}

/// How long a lock file is waited for: the `key` setting's milliseconds
/// (`default` if unset, as in git), at most [`LONGEST_LOCK_WAIT`].
fn lock_wait(repo: &gix::Repository, key: &str, default: i64) -> Fail {
    let millis = repo.config_snapshot().integer(key).unwrap_or(default);
    match u64::try_from(millis) {
        Ok(0) => Fail::Immediately,
        Ok(millis) => {
            Fail::AfterDurationWithBackoff(Duration::from_millis(millis).min(LONGEST_LOCK_WAIT))
        }
        Err(_) => Fail::AfterDurationWithBackoff(LONGEST_LOCK_WAIT),
    }
}

#[cfg(test)]
mod tests;
