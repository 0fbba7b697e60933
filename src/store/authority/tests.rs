//! Unit tests of `authority.rs`: objects copied with what they reach, and
//! which failures of a fetch are the remote's.

use super::*;
use crate::store::Error;

#[test]
fn a_commit_is_copied_with_what_it_reaches_and_a_damaged_object_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let from = gix::init_bare(dir.path().join("from")).expect("init");
    let to = gix::init_bare(dir.path().join("to")).expect("init");
    let record = crate::lease::LockRecord::from_json(
        br#"{"owner":"a","nonce":"n","expires_unix_ms":1,"resource":"issue:1","fencing_token":1}"#,
        &crate::lease::ref_hash_of("issue:1"),
    )
    .expect("a record");
    let at = crate::lease::UnixMillis(1_705_316_400_000);
    let (first, _) = super::super::objects::write_lock_commit(&from, &record, None, "one\n", at)
        .expect("written");
    let (second, objects) =
        super::super::objects::write_lock_commit(&from, &record, Some(first), "two\n", at)
            .expect("written");
    // Two commits of one record: four objects, the tree and blob shared.
    let short = gix::init_bare(dir.path().join("short")).expect("init");
    let error = copy_objects(&from, &short, second, &mut 3).expect_err("over budget");
    assert!(error.contains("more objects to copy"), "{error}");
    for id in objects.iter().chain([&first]) {
        if let Ok(commit) = short.find_commit(*id) {
            let tree = commit.tree_id().expect("a tree id");
            assert!(short.has_object(tree), "a commit cut short has its tree");
        }
    }
    assert!(!short.has_object(second), "nor was the tip written");
    let mut budget = 4;
    copy_objects(&from, &to, second, &mut budget).expect("copied");
    assert_eq!(budget, 0, "four objects read");
    for id in objects.iter().chain([&first]) {
        assert!(to.has_object(id), "{id} reached from the copied commit");
    }

    // The blob of a new commit, its file replaced by another object's.
    let other = from.write_blob(b"other content").expect("blob").detach();
    let blob = from.write_blob(b"lock content").expect("blob").detach();
    let tree = gix::objs::Tree {
        entries: vec![gix::objs::tree::Entry {
            mode: gix::objs::tree::EntryKind::Blob.into(),
            filename: "lock.json".into(),
            oid: blob,
        }],
    };
    let tree = from.write_object(&tree).expect("tree").detach();
    std::fs::remove_file(loose_object::path(&from, blob)).expect("removed");
    std::fs::copy(
        loose_object::path(&from, other),
        loose_object::path(&from, blob),
    )
    .expect("copied over");
    let mut unbounded = usize::MAX;
    let error = copy_objects(&from, &to, tree, &mut unbounded).expect_err("refused");
    assert!(
        error.contains(&format!("object {blob} is damaged")),
        "{error}"
    );
    assert!(
        !to.has_object(blob),
        "nothing was filed under the damaged id"
    );
    assert!(!to.has_object(tree), "nor the tree that reaches it");
}

fn remote() -> RemoteTarget {
    RemoteTarget {
        url: "git://127.0.0.1:9/remote.git".to_owned(),
        endpoint: Endpoint::Local(PathBuf::from("/nowhere")),
        direct: None,
    }
}

/// A fetch that failed because our own refs kept vanishing is a
/// repository error naming what gix said, not a remote error telling
/// the user to check the remote.
#[test]
fn a_fetch_failed_by_our_own_refs_is_not_blamed_on_the_remote() {
    let failed = |ours| FetchError {
        url: "git://127.0.0.1:9/remote.git".to_owned(),
        reason: "refs/heads/x: No such file or directory".to_owned(),
        ours,
    };
    match remote().fetch_error(failed(true)) {
        Error::Repository { action, reason } => {
            assert!(action.contains("this repository's refs"), "{action}");
            assert!(reason.starts_with("refs/heads/x: No such file"), "{reason}");
            assert!(reason.contains("another process"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    match remote().fetch_error(failed(false)) {
        Error::Remote { remote, reason } => {
            assert_eq!(remote, "git://127.0.0.1:9/remote.git");
            assert_eq!(reason, "refs/heads/x: No such file or directory");
        }
        other => panic!("{other:?}"),
    }
}
