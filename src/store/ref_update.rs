//! Making ref changes in a repository on this machine, as one transaction.
//! A transaction that deletes no ref moves them as git's files backend
//! does: every ref's lock file (`<ref>.lock`) taken; then what each
//! ref holds read under its lock (its loose file, else packed-refs as it is
//! then) and checked against what the writer expects; the new values
//! written into the lock files; and, once all are checked, each lock file
//! renamed over its ref. All in the order given, as gix and git do: the
//! lock refs before the version shards (`docs/PROTOCOL.md` §7).
//!
//! gix's transaction also takes `packed-refs.lock` for any update in a
//! repository that has a packed-refs file (every clone has one), to read
//! packed values under it. Every write of every process then queues on that
//! one file, and a `git gc`, `git pack-refs` or `git fetch --prune` holding
//! it, or the lock file of a killed git, stops every acquire. git takes it
//! only to delete a packed ref (here deletions are gix's): a ref's own lock
//! is enough to read its packed value, which only a write holding
//! packed-refs.lock changes, and such a write either deletes the ref,
//! taking the ref's lock first, or packs loose values (`git pack-refs`),
//! which leaves a ref without a loose file as it was.

use std::io::Write as _;
use std::time::Duration;

use gix::ObjectId;
use gix_lock::acquire::Fail;

use super::changes::{ApplyError, RefChange};
use super::clock::{Clock, SystemClock};
use super::gate;
use super::objects::signature;
use super::ref_file::Held;
use super::ref_names::ListedRefs;

/// The longest a ref's lock is waited for when `core.filesRefLockTimeout`
/// asks to wait without end: a deadline on every wait. The writer's own
/// pacing of busy refs takes over from there.
const LONGEST_LOCK_WAIT: Duration = Duration::from_secs(60);

/// Makes `changes` in `repo` as one transaction: every expectation is
/// checked, under every ref's lock, before anything is written. Changes
/// that delete no ref are made as git makes them (the module doc); the
/// others by gix. The transaction holds the process's ref-write gate (see
/// [`gate`]), so a termination signal never cuts it between two renames.
pub(super) fn apply_changes(
    repo: &gix::Repository,
    changes: &[RefChange],
) -> Result<(), ApplyError> {
    if changes.is_empty() {
        return Ok(());
    }
    let _transaction = gate::transaction();
    if let Some(updated) = update(repo, changes) {
        return updated;
    }
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

/// Makes `changes` in `repo` as one transaction; `None`, for gix's
/// transaction to make them, if one deletes a ref or a reflog would be
/// written.
fn update(repo: &gix::Repository, changes: &[RefChange]) -> Option<Result<(), ApplyError>> {
    let updates: Option<Vec<(&RefChange, ObjectId)>> =
        changes.iter().map(|c| Some((c, c.new?))).collect();
    match updates {
        Some(updates) if !writes_reflogs(repo) => Some(update_refs(repo, &updates, changes)),
        _ => None,
    }
}

/// Whether gix would write a reflog for a lock ref: with
/// `core.logAllRefUpdates = always`, or where one was written before
/// (gix appends to a reflog that exists).
fn writes_reflogs(repo: &gix::Repository) -> bool {
    repo.refs.write_reflog == gix::refs::store::WriteReflog::Always
        || repo.common_dir().join("logs/refs/grite").exists()
}

/// Makes `updates` (each of `changes` with its new value) as the module
/// doc says; `changes` tell a lost race from a failure.
fn update_refs(
    repo: &gix::Repository,
    updates: &[(&RefChange, ObjectId)],
    changes: &[RefChange],
) -> Result<(), ApplyError> {
    let common = repo.common_dir();
    let wait = lock_wait(repo);
    let mut names: Vec<&str> = updates.iter().map(|(c, _)| c.name.as_str()).collect();
    names.sort_unstable();
    if let Some(pair) = names.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(ApplyError::Failed(format!(
            "{} is changed twice in one transaction",
            pair[0]
        )));
    }
    let mut locks = Vec::with_capacity(updates.len());
    for (change, _) in updates {
        gix::refs::FullName::try_from(change.name.as_str())
            .map_err(|e| ApplyError::Failed(format!("{}: {e}", change.name)))?;
        let lock = gix_lock::File::acquire_to_update_resource(
            common.join(&change.name),
            wait,
            Some(common.to_owned()),
            0,
        )
        .map_err(|e| ApplyError::classify(e, repo, changes))?;
        locks.push(lock);
    }
    // Read once every lock is held: a packed value read before a ref is
    // locked may be deleted before the lock is taken.
    let mut refs = ListedRefs::unlisted(repo);
    for (change, _) in updates {
        if value(repo, &mut refs, &change.name)? != change.old {
            return Err(ApplyError::Lost);
        }
    }
    let mut ready = Vec::with_capacity(updates.len());
    for ((_, new), mut lock) in updates.iter().zip(locks) {
        lock.with_mut(|file| file.write_all(format!("{new}\n").as_bytes()))
            .map_err(|e| {
                ApplyError::Failed(format!("writing {}: {e}", lock.lock_path().display()))
            })?;
        ready.push(lock);
    }
    for lock in ready {
        lock.commit().map_err(|e| {
            ApplyError::Failed(format!(
                "moving {} into place: {}",
                e.instance.lock_path().display(),
                e.error
            ))
        })?;
    }
    Ok(())
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

/// How long a ref's lock is waited for: `core.filesRefLockTimeout`
/// milliseconds (100 by default, as in git), at most
/// [`LONGEST_LOCK_WAIT`].
fn lock_wait(repo: &gix::Repository) -> Fail {
    let millis = repo
        .config_snapshot()
        .integer("core.filesRefLockTimeout")
        .unwrap_or(100);
    match u64::try_from(millis) {
        Ok(0) => Fail::Immediately,
        Ok(millis) => {
            Fail::AfterDurationWithBackoff(Duration::from_millis(millis).min(LONGEST_LOCK_WAIT))
        }
        Err(_) => Fail::AfterDurationWithBackoff(LONGEST_LOCK_WAIT),
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    const X: &str = "0123456789abcdef0123456789abcdef01234567";
    const Y: &str = "89abcdef0123456789abcdef0123456789abcdef";
    const LOCK: &str = "refs/grite/locks/0123456789abcdef";
    const SHARD: &str = "refs/grite/lock-versions/07";

    fn id(hex: &str) -> ObjectId {
        ObjectId::from_hex(hex.as_bytes()).expect("an id")
    }

    fn change(name: &str, old: Option<&str>, new: &str) -> RefChange {
        RefChange {
            name: name.to_owned(),
            old: old.map(id),
            new: Some(id(new)),
        }
    }

    /// A bare repository whose packed-refs holds `packed`, with
    /// `packed-refs.lock` held as a running `git gc` holds it.
    fn repo(packed: &[(&str, &str)]) -> (tempfile::TempDir, gix::Repository) {
        let dir = tempfile::tempdir().expect("temp dir");
        let repo = gix::init_bare(dir.path()).expect("a repository");
        let mut text = String::from("# pack-refs with: peeled fully-peeled sorted \n");
        for (name, hex) in packed {
            text.push_str(&format!("{hex} {name}\n"));
        }
        std::fs::write(dir.path().join("packed-refs"), text).expect("packed-refs");
        std::fs::write(dir.path().join("packed-refs.lock"), "").expect("packed-refs.lock");
        (dir, repo)
    }

    fn apply(repo: &gix::Repository, changes: &[RefChange]) -> Result<(), ApplyError> {
        update(repo, changes).expect("made here, not by gix")
    }

    /// What `name` holds now, as git reads it.
    fn now_holds(repo: &gix::Repository, name: &str) -> Option<ObjectId> {
        value(repo, &mut ListedRefs::unlisted(repo), name).expect("readable")
    }

    /// Every file under the repository whose name ends in `.lock`, but
    /// the planted packed-refs.lock.
    fn lock_files(dir: &Path) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut pending = vec![dir.to_owned()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).expect("a folder") {
                let path = entry.expect("an entry").path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.extension().is_some_and(|e| e == "lock")
                    && !path.ends_with("packed-refs.lock")
                {
                    found.push(path);
                }
            }
        }
        found
    }

    #[test]
    fn a_packed_ref_is_compared_and_moved_without_packed_refs_lock() {
        let (dir, repo) = repo(&[(LOCK, X)]);
        assert!(matches!(
            apply(&repo, &[change(LOCK, None, Y)]),
            Err(ApplyError::Lost)
        ));
        assert!(matches!(
            apply(&repo, &[change(LOCK, Some(Y), Y)]),
            Err(ApplyError::Lost)
        ));
        assert_eq!(now_holds(&repo, LOCK), Some(id(X)), "unchanged");
        apply(&repo, &[change(LOCK, Some(X), Y), change(SHARD, None, X)]).expect("moved");
        assert_eq!(
            now_holds(&repo, LOCK),
            Some(id(Y)),
            "the loose file hides the packed value"
        );
        assert_eq!(now_holds(&repo, SHARD), Some(id(X)));
        assert!(matches!(
            apply(&repo, &[change(LOCK, Some(X), X)]),
            Err(ApplyError::Lost)
        ));
        assert_eq!(lock_files(dir.path()), Vec::<PathBuf>::new());
    }

    #[test]
    fn one_failed_expectation_leaves_every_ref_as_it_was() {
        let (dir, repo) = repo(&[(SHARD, X)]);
        let changes = [change(LOCK, None, X), change(SHARD, Some(Y), Y)];
        assert!(matches!(apply(&repo, &changes), Err(ApplyError::Lost)));
        assert_eq!(now_holds(&repo, LOCK), None, "not created");
        assert_eq!(now_holds(&repo, SHARD), Some(id(X)));
        assert_eq!(lock_files(dir.path()), Vec::<PathBuf>::new());
    }

    #[test]
    fn a_held_lock_file_is_busy_and_a_ref_without_an_id_or_a_bad_name_fails() {
        let (dir, repo) = repo(&[]);
        let mut config = std::fs::read_to_string(dir.path().join("config")).expect("config");
        config.push_str("[core]\n\tfilesRefLockTimeout = 0\n");
        std::fs::write(dir.path().join("config"), config).expect("config");
        let repo = gix::open(repo.path()).expect("opened again");
        let held = dir.path().join(format!("{LOCK}.lock"));
        std::fs::create_dir_all(held.parent().expect("a folder")).expect("mkdir");
        std::fs::write(&held, "").expect("a held lock");
        let busy = apply(&repo, &[change(SHARD, None, X), change(LOCK, None, X)]);
        assert!(matches!(&busy, Err(ApplyError::Busy(_))), "{busy:?}");
        assert_eq!(now_holds(&repo, SHARD), None, "nothing written");
        std::fs::remove_file(&held).expect("released");
        assert_eq!(lock_files(dir.path()), Vec::<PathBuf>::new());

        std::fs::write(dir.path().join(LOCK), "ref: refs/heads/main\n").expect("symbolic");
        let failed = apply(&repo, &[change(LOCK, Some(X), Y)]);
        assert!(
            matches!(&failed, Err(ApplyError::Failed(reason)) if reason.contains("does not hold an object id")),
            "{failed:?}"
        );
        let twice = apply(&repo, &[change(SHARD, None, X), change(SHARD, None, Y)]);
        assert!(
            matches!(&twice, Err(ApplyError::Failed(reason)) if reason.contains("changed twice")),
            "{twice:?}"
        );
        let failed = apply(&repo, &[change("refs/grite/../../hooks/x", None, X)]);
        assert!(matches!(&failed, Err(ApplyError::Failed(_))), "{failed:?}");
        assert!(!dir.path().join("hooks/x").exists());
        assert_eq!(lock_files(dir.path()), Vec::<PathBuf>::new());
    }

    #[test]
    fn deletions_and_reflogs_are_left_to_gix() {
        let (dir, repo) = repo(&[]);
        let delete = RefChange {
            name: LOCK.to_owned(),
            old: Some(id(X)),
            new: None,
        };
        assert!(update(&repo, &[change(SHARD, None, X), delete]).is_none());
        std::fs::create_dir_all(dir.path().join("logs/refs/grite")).expect("mkdir");
        assert!(update(&repo, &[change(SHARD, None, X)]).is_none());
    }
}
