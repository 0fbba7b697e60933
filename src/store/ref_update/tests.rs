//! Unit tests of the ref writer in `ref_update.rs`: compare-and-swap on
//! loose and packed refs, all or nothing, lock files in the way, and
//! deletions with and without a loose file.

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
fn a_new_packed_refs_left_by_a_killed_writer_goes_with_the_next_deletion() {
    let (dir, repo) = repo(&[]);
    let left = dir.path().join("packed-refs.grite-Ab12Cd");
    std::fs::write(&left, packed_text(Y)).expect("a killed writer's file");
    let gits = dir.path().join("packed-refs.new");
    std::fs::write(&gits, "").expect("git's");
    let loose = dir.path().join(LOCK);
    std::fs::create_dir_all(loose.parent().expect("a folder")).expect("mkdir");
    std::fs::write(&loose, format!("{X}\n")).expect("a loose ref");

    let busy = apply(&repo, &[delete(LOCK, X)]);
    assert!(matches!(&busy, Err(ApplyError::Busy(_))), "{busy:?}");
    assert!(left.exists(), "not touched without packed-refs.lock");
    std::fs::remove_file(dir.path().join("packed-refs.lock")).expect("released");
    apply(&repo, &[change(SHARD, None, Y)]).expect("an update");
    assert!(left.exists(), "an update does not take packed-refs.lock");

    apply(&repo, &[delete(LOCK, X)]).expect("deleted");
    assert!(!left.exists(), "removed under packed-refs.lock");
    assert!(gits.exists(), "git's own file is git's");
    assert_eq!(now_holds(&repo, LOCK), None);
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
