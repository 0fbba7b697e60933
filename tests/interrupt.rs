//! A process interrupted while it holds ref lock files removes them on its
//! way out, so the next one is not told the repository is busy.

mod support;

use std::time::Duration;

use support::{A, Repo, T0, lock_files};

#[test]
fn a_terminated_grite_leaves_no_lock_file_behind() {
    let repo = Repo::new();
    // Another process holds the version ref's lock file: grite keeps
    // retrying, holding the lock file of the lock ref while it waits.
    let planted = repo.dir.join(".git/refs/grite/lock-version.lock");
    std::fs::create_dir_all(planted.parent().expect("parent")).expect("mkdir");
    std::fs::write(&planted, "").expect("write");
    let lock_dir = repo.dir.join(".git/refs/grite/locks");

    for signal in ["TERM", "INT"] {
        let mut child = support::grite_command(&repo.dir)
            .args([
                "--actor",
                A,
                "--now-ms",
                &T0.to_string(),
                "lock",
                "acquire",
                "issue:1",
            ])
            .spawn()
            .expect("grite starts");
        // Wait until it holds the ref's lock file, then interrupt it.
        let mut held = false;
        for _ in 0..400 {
            if lock_files(&lock_dir) > 0 {
                held = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(held, "grite never took the ref lock");
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let exit = child.wait().expect("grite ends");
        assert!(
            !exit.success(),
            "SIG{signal}: grite finished instead of being interrupted"
        );
        assert_eq!(lock_files(&lock_dir), 0, "SIG{signal} left a lock file");
    }
    assert!(planted.exists(), "only its own lock files are removed");
}
