//! Two clones through one remote, one of them with a clock ten minutes
//! ahead. By the clock (`lock_steal = "clock"`, the default) the fast one
//! steals a lease that has five minutes left, and the other is told its
//! clock and the lock's disagree. By observation (`lock_steal =
//! "observed"`) the fast one waits until it has seen the lease unchanged
//! for its whole length on its own clock.

mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use support::{A, B, T0, code, git, grite_command, json};

const MINUTE: u64 = 60_000;
const SKEW: u64 = 10 * MINUTE;
const GRACE: u64 = 5_000;

/// A bare remote and two clones; `fast`'s settings get `steal`.
fn setup(steal: &str) -> (tempfile::TempDir, PathBuf, PathBuf, String) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let remote = support::seeded_remote(tmp.path());
    let mut clones = Vec::new();
    for (name, extra) in [("right", ""), ("fast", steal)] {
        git(tmp.path(), &["clone", "-q", "remote.git", name]);
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(dir.join(".git/grite")).expect("mkdir");
        std::fs::write(
            dir.join(".git/grite/config.toml"),
            format!("lock_grace = \"5s\"\n{extra}"),
        )
        .expect("config");
        clones.push(dir);
    }
    let fast = clones.pop().expect("two clones");
    let right = clones.pop().expect("two clones");
    (tmp, right, fast, remote.display().to_string())
}

fn grite(dir: &Path, remote: &str, actor: &str, at: u64, args: &[&str]) -> (i32, Value) {
    let out = grite_command(dir)
        .args(["--json", "--remote", remote, "--actor", actor])
        .args(["--now-ms", &at.to_string(), "lock"])
        .args(args)
        .output()
        .expect("grite runs");
    (code(&out), json(&out))
}

/// A, in `right`, takes issue:1 at T0 for fifteen minutes.
fn hold_for_fifteen_minutes(right: &Path, remote: &str) {
    let (c, v) = grite(
        right,
        remote,
        A,
        T0,
        &["acquire", "issue:1", "--ttl", "15m"],
    );
    assert_eq!(c, 0, "{v}");
}

/// B, in `fast`, takes issue:1 over at `at`.
fn steals(fast: &Path, remote: &str, at: u64) {
    let (c, v) = grite(fast, remote, B, at, &["acquire", "issue:1"]);
    assert_eq!(
        (c, v["data"]["outcome"].as_str()),
        (0, Some("stolen")),
        "{v}"
    );
}

#[test]
fn by_the_clock_a_fast_clock_steals_early_and_the_other_side_is_warned() {
    let (_tmp, right, fast, remote) = setup("");
    hold_for_fifteen_minutes(&right, &remote);
    // Ten minutes later in truth: five minutes of the lease are left, but
    // the fast clone's clock says twenty.
    let truth = T0 + 10 * MINUTE;
    steals(&fast, &remote, truth + SKEW);

    let (c, v) = grite(&right, &remote, A, truth, &["status"]);
    assert_eq!(c, 0, "{v}");
    let warning = &v["warnings"][0];
    assert_eq!(warning["code"], "clock_skew", "{v}");
    assert_eq!(warning["details"]["lock"]["owner"], B);
    assert_eq!(warning["details"]["ahead_ms"], SKEW, "{v}");
}

#[test]
fn by_observation_a_fast_clock_waits_until_it_has_seen_the_whole_lease() {
    let (_tmp, right, fast, remote) = setup("lock_steal = \"observed\"\n");
    hold_for_fifteen_minutes(&right, &remote);
    let truth = T0 + 10 * MINUTE;
    // First seen by the fast clone now, on its own clock.
    let seen = truth + SKEW;
    let (c, v) = grite(&fast, &remote, B, seen, &["acquire", "issue:1"]);
    assert_eq!(c, 4, "no steal with five minutes left: {v}");
    let takeable = seen + 15 * MINUTE + GRACE;
    assert_eq!(
        v["error"]["details"]["takeable_at_unix_ms"], takeable,
        "{v}"
    );
    // gc by the fast clone keeps it too.
    let (c, v) = grite(&fast, &remote, B, seen + MINUTE, &["gc"]);
    assert_eq!((c, v["data"]["removed"].as_u64()), (0, Some(0)), "{v}");

    // The holder renews two minutes later (in truth): a new lease to
    // observe, so the wait starts again from when the fast clone sees it.
    let (c, v) = grite(
        &right,
        &remote,
        A,
        truth + 2 * MINUTE,
        &["renew", "issue:1", "--ttl", "15m"],
    );
    assert_eq!(c, 0, "{v}");
    let seen_again = seen + 3 * MINUTE;
    let (c, _) = grite(&fast, &remote, B, seen_again, &["acquire", "issue:1"]);
    assert_eq!(c, 4);
    let (c, v) = grite(
        &fast,
        &remote,
        B,
        seen_again + 15 * MINUTE + GRACE - 1,
        &["acquire", "issue:1"],
    );
    assert_eq!(c, 4, "{v}");
    steals(&fast, &remote, seen_again + 15 * MINUTE + GRACE);
}

/// A sighting is the clone's own record of when it first saw a lease, so
/// work on unrelated resources in between (which reads only their own
/// locks) must not make it forget: the lease is still taken once its
/// whole length has passed since it was first seen.
#[test]
fn by_observation_work_on_other_resources_does_not_restart_the_wait() {
    let (_tmp, right, fast, remote) = setup("lock_steal = \"observed\"\n");
    hold_for_fifteen_minutes(&right, &remote);
    let seen = T0 + SKEW;
    let (c, v) = grite(&fast, &remote, B, seen, &["acquire", "issue:1"]);
    assert_eq!(c, 4, "{v}");
    for (i, at) in [(2, seen + MINUTE), (3, seen + 10 * MINUTE)] {
        let resource = format!("issue:{i}");
        let (c, v) = grite(&fast, &remote, B, at, &["acquire", &resource]);
        assert_eq!(c, 0, "{v}");
        let (c, v) = grite(&fast, &remote, B, at + 1, &["release", &resource]);
        assert_eq!(c, 0, "{v}");
    }
    steals(&fast, &remote, seen + 15 * MINUTE + GRACE);
}
