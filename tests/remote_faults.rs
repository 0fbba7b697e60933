//! A remote that cannot do what is asked, or a local copy that cannot
//! follow it: a ref lock file left on the remote is told apart from a lost
//! race and named at once (or, where its age cannot be seen, after a short
//! wait) instead of pushing again and again; a local version ref the
//! remote lacks is put right instead of retried forever; a live lock that
//! existed only locally is reported when the remote's state replaces it;
//! and a change the remote accepted is a success even when the local copy
//! cannot follow.

mod support;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use serde_json::Value;
use support::{A, B, Daemon, T0, code, git, grite_command, json};

fn grite(dir: &Path, remote: Option<&str>, actor: &str, args: &[&str]) -> (i32, Value) {
    let mut command = grite_command(dir);
    command.args(["--json", "--actor", actor, "--now-ms", &T0.to_string()]);
    if let Some(remote) = remote {
        command.args(["--remote", remote]);
    }
    let out = command.arg("lock").args(args).output().expect("grite runs");
    (code(&out), json(&out))
}

fn plant_old_file(path: &Path) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let file = std::fs::File::create(path).expect("create");
    file.set_modified(SystemTime::now() - Duration::from_secs(60))
        .expect("set mtime");
}

fn ref_name(resource: &str) -> String {
    grite_locks::lease::Resource::parse(resource)
        .expect("valid")
        .ref_name()
}

/// Objects in the remote's object database, loose and packed.
fn object_count(remote: &Path) -> u64 {
    let out = git(remote, &["count-objects", "-v"]);
    out.lines()
        .filter_map(|l| l.split_once(": "))
        .filter(|(k, _)| *k == "count" || *k == "in-pack")
        .map(|(_, v)| v.trim().parse::<u64>().expect("a number"))
        .sum()
}

#[test]
fn a_lock_file_left_on_a_path_remote_is_named_at_once_and_nothing_is_pushed_again() {
    let (_tmp, remote, clone) = support::remote_and_clone();
    let leftover = remote.join(format!("{}.lock", ref_name("issue:1")));
    plant_old_file(&leftover);
    let path = remote.display().to_string();
    for url in [path.clone(), format!("file://{path}")] {
        let objects = object_count(&remote);
        let (c, v) = grite(&clone, Some(&url), A, &["acquire", "issue:1"]);
        assert_eq!(
            (c, v["error"]["code"].as_str()),
            (5, Some("stale_lock_file")),
            "{url}: {v}"
        );
        let listed = &v["error"]["details"]["files"][0];
        assert_eq!(listed["path"], leftover.display().to_string(), "{v}");
        assert_eq!(
            listed["remove_with"],
            format!("rm -f -- {}", leftover.display()),
            "{v}"
        );
        // One push was refused (a lock, its version shard and the marker a
        // first shard write brings, three objects each); it was not sent
        // again and again.
        assert!(
            object_count(&remote) <= objects + 9,
            "{url}: {} objects after, {objects} before",
            object_count(&remote)
        );
        assert!(support::stored_record(&remote, "issue:1").is_none());
    }
    // Without the file the same command succeeds.
    std::fs::remove_file(&leftover).expect("remove");
    let (c, v) = grite(&clone, Some(&path), A, &["acquire", "issue:1"]);
    assert_eq!(c, 0, "{v}");
    support::fsck(&remote);
}

#[test]
fn a_lock_file_left_on_a_served_remote_is_named_after_a_short_wait() {
    let (tmp, remote, clone) = support::remote_and_clone();
    let daemon = Daemon::start(tmp.path());
    let url = format!("git://127.0.0.1:{}/remote.git", daemon.port);
    let name = ref_name("issue:1");
    plant_old_file(&remote.join(format!("{name}.lock")));
    let objects = object_count(&remote);
    let started = std::time::Instant::now();
    let (c, v) = grite(&clone, Some(&url), A, &["acquire", "issue:1"]);
    support::assert_remote_error(c, &v, &format!("{name}.lock"), "acquire");
    // Its age cannot be seen from here: grite waits a little (5 s) for a
    // process that might hold it, pushing a few times, not thousands.
    assert!(started.elapsed() < Duration::from_secs(60));
    let pushed = object_count(&remote) - objects;
    assert!(pushed <= 40, "{pushed} objects pushed");
    assert!(support::stored_record(&remote, "issue:1").is_none());
}

#[test]
fn switching_to_a_remote_replaces_local_lock_state_and_reports_a_live_lock_it_drops() {
    let (_tmp, remote, clone) = support::remote_and_clone();
    let url = remote.display().to_string();
    // Work without the remote first: a live lock and a version ref that
    // exist only here.
    let (c, local) = grite(&clone, None, A, &["acquire", "issue:local", "--ttl", "1h"]);
    assert_eq!(c, 0, "{local}");
    let local_commit = git(&clone, &["rev-parse", &ref_name("issue:local")]);

    let (c, v) = grite(&clone, Some(&url), B, &["acquire", "issue:2"]);
    assert_eq!(c, 0, "{v}");
    let warning = &v["warnings"][0];
    assert_eq!(warning["code"], "pruned_live_lock", "{v}");
    assert_eq!(warning["details"]["lock"]["resource"], "issue:local");
    assert_eq!(warning["details"]["commit"], local_commit.trim());
    // The local copy is now exactly the remote's, version ref included.
    let lock_state = |dir: &Path| git(dir, &["for-each-ref", "refs/grite/"]);
    assert_eq!(lock_state(&clone), lock_state(&remote));

    // The remote's version ref deleted behind our back: still no retries
    // without end.
    git(&remote, &["update-ref", "-d", "refs/grite/lock-version"]);
    let (c, v) = grite(&clone, Some(&url), B, &["acquire", "issue:3"]);
    assert_eq!(c, 0, "{v}");
    let (c, v) = grite(&clone, Some(&url), B, &["sync"]);
    assert_eq!(c, 0, "{v}");
    assert_eq!(lock_state(&clone), lock_state(&remote));
    support::fsck(&clone);
}

#[test]
fn a_change_the_remote_accepted_succeeds_even_if_the_local_copy_cannot_follow() {
    let (_tmp, remote, clone) = support::remote_and_clone();
    let url = remote.display().to_string();
    let (c, v) = grite(&clone, Some(&url), A, &["acquire", "issue:0"]);
    assert_eq!(c, 0, "{v}");
    // A killed process left the local version shard of issue:1 locked.
    let shard = support::shard_ref_of("issue:1");
    let leftover = clone.join(".git").join(format!("{shard}.lock"));
    plant_old_file(&leftover);

    let (c, v) = grite(&clone, Some(&url), A, &["acquire", "issue:1"]);
    assert_eq!(c, 0, "the remote holds the lock, so this succeeded: {v}");
    assert_eq!(v["warnings"][0]["code"], "mirror_behind", "{v}");
    assert_eq!(
        support::stored_record(&remote, "issue:1").expect("on the remote")["owner"],
        A
    );
    // The next command decides on what the remote advertises, so it works
    // too, and says why the copy still lags and what to do.
    let (c, v) = grite(&clone, Some(&url), B, &["acquire", "issue:2"]);
    assert_eq!(c, 0, "{v}");
    let warnings = v["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "told once: {v}");
    assert_eq!(warnings[0]["code"], "mirror_behind");
    let reason = warnings[0]["details"]["reason"].as_str().expect("a reason");
    assert!(
        reason.contains(&format!("rm -f -- {}", leftover.display())),
        "{reason}"
    );

    std::fs::remove_file(&leftover).expect("remove");
    let (c, v) = grite(&clone, Some(&url), A, &["sync"]);
    assert_eq!(c, 0, "{v}");
    assert_eq!(
        git(&clone, &["for-each-ref", "refs/grite/"]),
        git(&remote, &["for-each-ref", "refs/grite/"])
    );
}

/// Until `stop`, writes `count` loose refs under `refs/heads/churn/` of
/// `clone` (each as git writes one: a file renamed into place) and packs
/// them with `git pack-refs --all`, which deletes the loose files, as a
/// `git gc` running beside grite does. Says how many times it packed.
fn pack_refs_again_and_again(clone: &Path, count: usize, stop: &AtomicBool) -> usize {
    let id = git(clone, &["rev-parse", "HEAD"]).trim().to_owned();
    let dir = clone.join(".git/refs/heads/churn");
    let staged = clone.join(".git/churn.tmp");
    let mut packings = 0;
    while !stop.load(Ordering::Relaxed) {
        // Packing removes the folder it emptied.
        std::fs::create_dir_all(&dir).expect("mkdir");
        for i in 0..count {
            std::fs::write(&staged, format!("{id}\n")).expect("write");
            std::fs::rename(&staged, dir.join(i.to_string())).expect("rename");
        }
        // It may find packed-refs.lock held by grite, and try again.
        let _ = support::git_command(clone)
            .args(["pack-refs", "--all"])
            .output();
        packings += 1;
    }
    packings
}

#[test]
fn a_fetch_through_git_daemon_is_not_failed_by_local_refs_vanishing_under_it() {
    let tmp = tempfile::tempdir().expect("temp dir");
    support::seeded_remote(tmp.path());
    for name in ["a", "b"] {
        git(tmp.path(), &["clone", "-q", "remote.git", name]);
    }
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let daemon = Daemon::start(tmp.path());
    let url = format!("git://127.0.0.1:{}/remote.git", daemon.port);
    let rounds = support::rounds_from_env("GRITE_FAULT_ROUNDS", 40);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let packer = scope.spawn(|| pack_refs_again_and_again(&a, 300, &stop));
        let outcome = std::panic::catch_unwind(|| {
            for round in 0..rounds {
                // a takes the lock b has just released, whose record is
                // not in a: a's acquire fetches it, and gix lists a's
                // refs to tell the remote what a has.
                let resource = format!("issue:{round}");
                for op in ["acquire", "release"] {
                    let (c, v) = grite(&b, Some(&url), B, &[op, &resource]);
                    assert_eq!(c, 0, "round {round}: b: {v}");
                }
                let (c, v) = grite(&a, Some(&url), A, &["acquire", &resource]);
                assert_eq!(c, 0, "round {round}: a: {v}");
            }
        });
        stop.store(true, Ordering::Relaxed);
        let packings = packer.join().expect("packing thread");
        assert!(packings > 0, "the refs were packed");
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    });
    assert_eq!(
        git(&a, &["for-each-ref", "refs/grite/"]),
        git(
            &tmp.path().join("remote.git"),
            &["for-each-ref", "refs/grite/"]
        )
    );
    support::fsck(&a);
}
