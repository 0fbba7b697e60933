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
use gix::bstr::ByteSlice as _;
use gix_lock::acquire::Fail;

use super::changes::{ApplyError, RefChange};
use super::clock::{Clock, SystemClock};
use super::gate;
use super::objects::signature;
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
    let packed_lock = if changes.iter().any(|c| c.new.is_none()) {
        let wait = lock_wait(repo, "core.packedRefsTimeout", 1000);
        let lock =
            gix_lock::File::acquire_to_update_resource(common.join("packed-refs"), wait, None, 0)
                .map_err(|e| ApplyError::classify(e, repo, changes))?;
        Some(lock)
    } else {
        None
    };
    // Read once every lock is held: a packed value read before a ref is
    // locked may be deleted before the lock is taken.
    let mut refs = ListedRefs::unlisted(repo);
    for edit in &edits {
        let change = edit.change();
        let now = match edit {
            Edit::Update(..) | Edit::DeleteLoose(..) => value(repo, &mut refs, &change.name)?,
            // A loose file written since it was looked for: that write
            // moved the ref first.
            Edit::DeletePacked(_) if has_loose_file(&common.join(&change.name))? => {
                return Err(ApplyError::Lost);
            }
            Edit::DeletePacked(_) => refs
                .packed(repo, &change.name)
                .map_err(|e| ApplyError::Failed(e.to_string()))?,
        };
        if now != change.old {
            return Err(ApplyError::Lost);
        }
    }
    let mut updates = Vec::new();
    let mut loose_deletions = Vec::new();
    let mut deleted = HashSet::new();
    for edit in edits {
        match edit {
            Edit::Update(_, new, mut lock) => {
                lock.with_mut(|file| file.write_all(format!("{new}\n").as_bytes()))
                    .map_err(|e| {
                        ApplyError::Failed(format!("writing {}: {e}", lock.lock_path().display()))
                    })?;
                updates.push(lock);
            }
            Edit::DeleteLoose(change, lock) => {
                deleted.insert(change.name.as_bytes());
                loose_deletions.push(lock);
            }
            Edit::DeletePacked(change) => {
                deleted.insert(change.name.as_bytes());
            }
        }
    }
    let packed_refs = match &packed_lock {
        Some(_) => packed_refs_without(common, &deleted)?,
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

/// A new packed-refs for the repository whose common folder is `common`,
/// written beside it: packed-refs as it is, without the refs named
/// `deleted`; `None` when it holds none of them.
fn packed_refs_without(
    common: &Path,
    deleted: &HashSet<&[u8]>,
) -> Result<Option<tempfile::NamedTempFile>, ApplyError> {
    let path = common.join("packed-refs");
    let failed = |e: std::io::Error| ApplyError::Failed(format!("{}: {e}", path.display()));
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(failed(e)),
    };
    let Some(kept) = without(&text, deleted) else {
        return Ok(None);
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix("packed-refs.");
    // What git creates packed-refs with (less the umask), where a
    // temporary file would be the owner's alone.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut file = builder.tempfile_in(common).map_err(failed)?;
    file.write_all(&kept).map_err(failed)?;
    Ok(Some(file))
}

/// packed-refs `text` without the lines of the refs named `deleted` (each
/// `<id> <name>`, and the `^<id>` of its peeled id after it), or `None`
/// if it holds none of them. The header and every other line are kept
/// as they are.
fn without(text: &[u8], deleted: &HashSet<&[u8]>) -> Option<Vec<u8>> {
    let mut kept = Vec::with_capacity(text.len());
    let mut removed = false;
    let mut dropping = false;
    for line in text.lines_with_terminator() {
        if !line.starts_with(b"^") {
            dropping = !line.starts_with(b"#")
                && line
                    .find_byte(b' ')
                    .is_some_and(|at| deleted.contains(line[at + 1..].trim_end()));
            removed |= dropping;
        }
        if !dropping {
            kept.extend_from_slice(line);
        }
    }
    removed.then_some(kept)
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
        assert!(!writes_reflogs(repo), "made here, not by gix");
        apply_changes(repo, changes)
    }

    fn delete(name: &str, old: &str) -> RefChange {
        RefChange {
            name: name.to_owned(),
            old: Some(id(old)),
            new: None,
        }
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

    const MAIN: &str = "refs/heads/main";

    /// packed-refs holding a shard, the lock ref and a branch with its
    /// peeled id, sorted as `git pack-refs` writes them.
    fn packed_text(lock: &str) -> String {
        format!(
            "# pack-refs with: peeled fully-peeled sorted \n\
             {X} {SHARD}\n\
             {lock} {LOCK}\n\
             {Y} {MAIN}\n\
             ^{X}\n"
        )
    }

    #[test]
    fn a_packed_ref_without_a_loose_file_is_deleted_under_packed_refs_lock_alone() {
        let (dir, repo) = repo(&[]);
        let packed = dir.path().join("packed-refs");
        std::fs::write(&packed, packed_text(X)).expect("packed-refs");
        let busy = apply(&repo, &[delete(LOCK, X)]);
        assert!(matches!(&busy, Err(ApplyError::Busy(_))), "{busy:?}");
        std::fs::remove_file(dir.path().join("packed-refs.lock")).expect("released");
        // Another writer holds the ref's lock file: it can only write a
        // loose file, which would hide the packed value anyway.
        let held = dir.path().join(format!("{LOCK}.lock"));
        std::fs::create_dir_all(held.parent().expect("a folder")).expect("mkdir");
        std::fs::write(&held, "").expect("a held lock");

        assert!(matches!(
            apply(&repo, &[change(SHARD, Some(X), Y), delete(LOCK, Y)]),
            Err(ApplyError::Lost)
        ));
        let before = std::fs::read_to_string(&packed).expect("packed-refs");
        assert_eq!(before, packed_text(X), "unchanged");
        assert!(!dir.path().join(SHARD).exists(), "the shard did not move");

        apply(&repo, &[change(SHARD, Some(X), Y), delete(LOCK, X)]).expect("deleted");
        assert_eq!(now_holds(&repo, LOCK), None);
        assert_eq!(now_holds(&repo, SHARD), Some(id(Y)));
        let after = std::fs::read_to_string(&packed).expect("packed-refs");
        assert_eq!(
            after,
            format!(
                "# pack-refs with: peeled fully-peeled sorted \n\
                 {X} {SHARD}\n\
                 {Y} {MAIN}\n\
                 ^{X}\n"
            ),
            "every other line, the peeled id of the branch too, as it was"
        );
        assert_eq!(
            lock_files(dir.path()),
            vec![held],
            "the other writer's lock is its own"
        );
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("the repository")
            .map(|e| {
                e.expect("an entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .filter(|name| name.starts_with("packed-refs") || name.starts_with('.'))
            .collect();
        assert_eq!(names, ["packed-refs"], "no file left beside packed-refs");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |path: &Path| {
                let mode = std::fs::metadata(path).expect("there").permissions().mode();
                mode & 0o777
            };
            let plain = dir.path().join("plain");
            std::fs::write(&plain, "").expect("a file");
            assert_eq!(
                mode(&packed),
                mode(&plain),
                "as readable as any file created here"
            );
        }
    }

    #[test]
    fn a_deleted_loose_ref_takes_its_lock_and_leaves_no_packed_value_behind() {
        let (dir, repo) = repo(&[]);
        std::fs::remove_file(dir.path().join("packed-refs.lock")).expect("no packed lock");
        let packed = dir.path().join("packed-refs");
        std::fs::write(&packed, packed_text(X)).expect("packed-refs");
        let loose = dir.path().join(LOCK);
        std::fs::create_dir_all(loose.parent().expect("a folder")).expect("mkdir");
        std::fs::write(&loose, format!("{Y}\n")).expect("a loose ref");

        assert!(
            matches!(apply(&repo, &[delete(LOCK, X)]), Err(ApplyError::Lost)),
            "the loose file hides the packed value"
        );
        let held = dir.path().join(format!("{LOCK}.lock"));
        std::fs::write(&held, "").expect("a held lock");
        let busy = apply(&repo, &[delete(LOCK, Y)]);
        assert!(matches!(&busy, Err(ApplyError::Busy(_))), "{busy:?}");
        std::fs::remove_file(&held).expect("released");
        assert_eq!(now_holds(&repo, LOCK), Some(id(Y)), "unchanged");
        assert_eq!(
            std::fs::read_to_string(&packed).expect("packed"),
            packed_text(X)
        );

        apply(&repo, &[delete(LOCK, Y)]).expect("deleted");
        assert_eq!(
            now_holds(&repo, LOCK),
            None,
            "no packed value shows through"
        );
        assert!(!loose.exists());
        assert!(
            !dir.path().join("refs/grite/locks").exists(),
            "the emptied folder went with the lock"
        );
        assert!(
            !std::fs::read_to_string(&packed)
                .expect("packed-refs")
                .contains(LOCK)
        );
        assert_eq!(lock_files(dir.path()), Vec::<PathBuf>::new());
        assert!(!dir.path().join("packed-refs.lock").exists());
    }

    #[test]
    fn packed_refs_loses_only_the_lines_of_deleted_refs() {
        let text = format!("# header\n{X} refs/a\n^{Y}\n{Y} refs/b\n{X} refs/c");
        let deleted = |names: &[&'static str]| -> HashSet<&'static [u8]> {
            names.iter().map(|n| n.as_bytes()).collect()
        };
        let kept = |names| without(text.as_bytes(), &deleted(names)).map(String::from_utf8);
        assert_eq!(
            kept(&["refs/a"]),
            Some(Ok(format!("# header\n{Y} refs/b\n{X} refs/c")))
        );
        assert_eq!(
            kept(&["refs/c", "refs/b"]),
            Some(Ok(format!("# header\n{X} refs/a\n^{Y}\n")))
        );
        assert_eq!(kept(&["refs/d", "# header"]), None, "nothing to remove");
    }

    #[test]
    fn a_repository_that_keeps_reflogs_has_them_written() {
        let (dir, repo) = repo(&[]);
        std::fs::remove_file(dir.path().join("packed-refs.lock")).expect("no packed lock");
        let mut config = std::fs::read_to_string(dir.path().join("config")).expect("config");
        config.push_str("[core]\n\tlogAllRefUpdates = always\n");
        std::fs::write(dir.path().join("config"), config).expect("config");
        let repo = gix::open(repo.path()).expect("opened again");
        apply_changes(&repo, &[change(SHARD, None, X)]).expect("written");
        assert_eq!(now_holds(&repo, SHARD), Some(id(X)));
        let log = std::fs::read_to_string(dir.path().join("logs").join(SHARD)).expect("a reflog");
        assert!(log.contains(X), "{log}");
    }
}
