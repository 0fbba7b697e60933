//! Many clones through one remote at once, each taking and releasing locks
//! on resources of its own: every command succeeds (none fails for want
//! of object database slots, pack files or patience), and `git fsck` of
//! the remote and of every clone is clean. Through a path and through
//! `git daemon`.
//!
//! Cycles per clone: `GRITE_LOAD_CYCLES` (default 5, 100 in `.ci/run`;
//! each is an acquire and a release). Every acquire advances a version
//! shard, and 16 clones at once often advance the same one, lose the race
//! and read again.

mod support;

use std::path::{Path, PathBuf};

use support::{Daemon, T0, actor, code, git, grite_command};

const CLONES: usize = 16;

fn cycles() -> usize {
    support::rounds_from_env("GRITE_LOAD_CYCLES", 5)
}

fn clones(base: &Path) -> Vec<PathBuf> {
    (0..CLONES)
        .map(|i| {
            let name = format!("clone{i}");
            git(base, &["clone", "-q", "remote.git", &name]);
            base.join(name)
        })
        .collect()
}

fn pack_count(repo: &Path) -> usize {
    std::fs::read_dir(repo.join(".git/objects/pack"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
                .count()
        })
        .unwrap_or(0)
}

/// Waits for a `git gc` that grite started in the background (as git
/// starts one after a fetch) to finish, so that fsck sees a quiet
/// repository.
fn wait_for_maintenance(repo: &Path) {
    let pid = if repo.join(".git").is_dir() {
        repo.join(".git/gc.pid")
    } else {
        repo.join("gc.pid")
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while pid.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Every clone at once, `cycles` acquire/release pairs each.
fn load(label: &str, url: &str, remote: &Path, clones: &[PathBuf]) {
    let started = std::time::Instant::now();
    let cycles = cycles();
    std::thread::scope(|scope| {
        for (i, clone) in clones.iter().enumerate() {
            scope.spawn(move || {
                let me = actor(i + 1);
                for cycle in 0..cycles {
                    let resource = format!("issue:{label}-{i}-{cycle}");
                    let at = (T0 + cycle as u64 * 1_000).to_string();
                    for op in ["acquire", "release"] {
                        let out = grite_command(clone)
                            // git's automatic maintenance on, as for users.
                            .env_remove("GIT_CONFIG_COUNT")
                            .args(["--json", "--remote", url, "--actor", &me, "--now-ms", &at])
                            .args(["lock", op, &resource])
                            .output()
                            .expect("grite runs");
                        assert_eq!(
                            code(&out),
                            0,
                            "{label}: clone {i} {op} {resource}: {}",
                            support::stdout(&out)
                        );
                    }
                }
            });
        }
    });
    let packs: Vec<usize> = clones.iter().map(|c| pack_count(c)).collect();
    // git's automatic maintenance, which grite runs as git does, keeps
    // the packs of a clone near gc.autoPackLimit (50), whatever the load.
    assert!(
        packs.iter().all(|p| *p <= 2 * 50),
        "{label}: packs per clone: {packs:?}"
    );
    eprintln!(
        "{label}: {} clones x {cycles} cycles in {:.1} s ({:.1} commands/s); packs per clone at the end: {packs:?}",
        clones.len(),
        started.elapsed().as_secs_f64(),
        (clones.len() * cycles * 2) as f64 / started.elapsed().as_secs_f64()
    );
    for repo in std::iter::once(remote).chain(clones.iter().map(PathBuf::as_path)) {
        wait_for_maintenance(repo);
        support::fsck(repo);
    }
}

#[test]
fn sixteen_clones_through_a_path_remote_never_fail() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let remote = support::seeded_remote(tmp.path());
    let clones = clones(tmp.path());
    load("path", &remote.display().to_string(), &remote, &clones);
}

#[test]
fn sixteen_clones_through_git_daemon_never_fail() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let remote = support::seeded_remote(tmp.path());
    let clones = clones(tmp.path());
    let daemon = Daemon::start(tmp.path());
    let url = format!("git://127.0.0.1:{}/remote.git", daemon.port);
    load("daemon", &url, &remote, &clones);
}
