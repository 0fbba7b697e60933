//! End to end, through the `grite` binary on real repositories: every cell of
//! The table of `docs/PROTOCOL.md` §5 with two actors, steals, lost leases, gc, and
//! fencing tokens across release and gc. Time is the hidden `--now-ms`.

mod support;

use serde_json::Value;
use support::{A, B, Repo, T0, code, json, stored_record};

const TTL_MS: u64 = 60_000;
const GRACE_MS: u64 = 5_000;
const R: &str = "issue:8057324b";

fn run(repo: &Repo, actor: &str, at: u64, args: &[&str]) -> (i32, Value) {
    let mut full = vec!["--json", "lock"];
    full.extend_from_slice(args);
    let out = repo.grite_as(actor, at, &full);
    (code(&out), json(&out))
}

fn acquire(repo: &Repo, actor: &str, at: u64) -> (i32, Value) {
    run(
        repo,
        actor,
        at,
        &["acquire", "--resource", R, "--ttl", "60s"],
    )
}

fn renew(repo: &Repo, actor: &str, at: u64) -> (i32, Value) {
    run(repo, actor, at, &["renew", "--resource", R, "--ttl", "60s"])
}

fn release(repo: &Repo, actor: &str, at: u64) -> (i32, Value) {
    run(repo, actor, at, &["release", "--resource", R])
}

/// A repository where `owner` acquired `R` at T0 (expiring at T0 + 60 s).
fn held_by(owner: &str) -> (Repo, Value) {
    let repo = Repo::new();
    let (c, v) = acquire(&repo, owner, T0);
    assert_eq!(c, 0, "{v}");
    let lock = v["data"]["lock"].clone();
    (repo, lock)
}

fn assert_refused(c: i32, v: &Value, code: &str, exit: i32) {
    assert_eq!(c, exit, "{v}");
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["code"], code, "{v}");
}

#[test]
fn acquire_of_a_free_lock_holds_it() {
    let repo = Repo::new();
    let (c, v) = acquire(&repo, A, T0);
    assert_eq!(c, 0);
    assert_eq!(v["data"]["outcome"], "acquired");
    let lock = &v["data"]["lock"];
    assert_eq!(lock["owner"], A);
    assert_eq!(lock["expires_unix_ms"], T0 + TTL_MS);
    assert_eq!(lock["fencing_token"], 1);
    let stored = stored_record(&repo.dir, R).expect("lock stored");
    assert_eq!(stored["owner"], A);
    assert_eq!(stored["nonce"], lock["nonce"]);
    repo.fsck();
}

#[test]
fn acquire_of_ones_own_live_lock_is_idempotent_and_writes_nothing() {
    let (repo, first) = held_by(A);
    let before = repo.refs();
    let (c, v) = acquire(&repo, A, T0 + 30_000);
    assert_eq!(c, 0);
    assert_eq!(v["data"]["outcome"], "already_held");
    assert_eq!(v["data"]["lock"], first);
    assert_eq!(repo.refs(), before);
}

#[test]
fn acquire_of_anothers_live_lock_is_refused_naming_the_holder() {
    let (repo, first) = held_by(B);
    let before = repo.refs();
    let (c, v) = acquire(&repo, A, T0 + 59_999);
    assert_refused(c, &v, "conflict", 4);
    assert_eq!(v["error"]["details"]["holder"]["owner"], B);
    assert_eq!(v["error"]["details"]["holder"]["nonce"], first["nonce"]);
    assert_eq!(
        v["error"]["details"]["takeable_at_unix_ms"],
        T0 + TTL_MS + GRACE_MS
    );
    assert_eq!(repo.refs(), before);
}

#[test]
fn acquire_of_ones_own_expired_lock_is_a_new_lease() {
    let (repo, first) = held_by(A);
    let (c, v) = acquire(&repo, A, T0 + TTL_MS);
    assert_eq!(c, 0, "{v}");
    assert_eq!(v["data"]["outcome"], "reacquired");
    let lock = &v["data"]["lock"];
    assert_ne!(lock["nonce"], first["nonce"]);
    assert_eq!(lock["fencing_token"], 2);
}

#[test]
fn anothers_expired_lock_is_stolen_only_after_the_grace_period() {
    let (repo, first) = held_by(B);
    let before = repo.refs();
    let (c, v) = acquire(&repo, A, T0 + TTL_MS + GRACE_MS - 1);
    assert_refused(c, &v, "conflict", 4);
    assert_eq!(repo.refs(), before);

    let (c, v) = acquire(&repo, A, T0 + TTL_MS + GRACE_MS);
    assert_eq!(c, 0, "{v}");
    assert_eq!(v["data"]["outcome"], "stolen");
    assert_eq!(v["data"]["previous_owner"], B);
    assert_eq!(v["data"]["lock"]["owner"], A);
    assert!(v["data"]["lock"]["fencing_token"].as_u64() > first["fencing_token"].as_u64());
    repo.fsck();
}

#[test]
fn the_old_holder_can_neither_renew_nor_release_after_a_steal() {
    let (repo, _) = held_by(B);
    let steal_at = T0 + TTL_MS + GRACE_MS;
    let (c, stolen) = acquire(&repo, A, steal_at);
    assert_eq!(c, 0);
    let after_steal = repo.refs();

    let (c, v) = renew(&repo, B, steal_at + 1);
    assert_refused(c, &v, "conflict", 4);
    assert_eq!(v["error"]["details"]["holder"]["owner"], A);
    let (c, v) = release(&repo, B, steal_at + 2);
    assert_refused(c, &v, "conflict", 4);
    assert_eq!(repo.refs(), after_steal, "the stealer's lock was touched");
    assert_eq!(
        stored_record(&repo.dir, R).expect("stored")["nonce"],
        stolen["data"]["lock"]["nonce"]
    );
}

#[test]
fn renew_of_a_free_lock_is_not_found() {
    let repo = Repo::new();
    let (c, v) = renew(&repo, A, T0);
    assert_refused(c, &v, "not_found", 3);
    assert_eq!(repo.lock_refs(), "");
}

#[test]
fn renew_of_ones_own_lock_extends_it_with_the_same_token_and_nonce() {
    let (repo, first) = held_by(A);
    let (c, v) = renew(&repo, A, T0 + 30_000);
    assert_eq!(c, 0, "{v}");
    let lock = &v["data"]["lock"];
    assert_eq!(lock["expires_unix_ms"], T0 + 30_000 + TTL_MS);
    assert_eq!(lock["nonce"], first["nonce"]);
    assert_eq!(lock["fencing_token"], first["fencing_token"]);
    let history = repo.git(&[
        "rev-list",
        "--count",
        &grite_locks::lease::Resource::parse(R)
            .expect("valid")
            .ref_name(),
    ]);
    assert_eq!(
        history.trim(),
        "2",
        "renew is a new commit on the lock's history"
    );
}

#[test]
fn renew_of_anothers_lock_is_refused() {
    let (repo, _) = held_by(B);
    let before = repo.refs();
    let (c, v) = renew(&repo, A, T0 + 1);
    assert_refused(c, &v, "conflict", 4);
    assert_eq!(repo.refs(), before);
}

#[test]
fn renew_of_ones_own_expired_lock_works_if_nobody_took_it() {
    let (repo, first) = held_by(A);
    let (c, v) = renew(&repo, A, T0 + TTL_MS + GRACE_MS + 10_000);
    assert_eq!(c, 0, "{v}");
    assert_eq!(v["data"]["lock"]["fencing_token"], first["fencing_token"]);
    assert_eq!(
        v["data"]["lock"]["expires_unix_ms"],
        T0 + TTL_MS + GRACE_MS + 10_000 + TTL_MS
    );
}

/// A renewal is first decided on the lock's own record alone; one that
/// turns out to make an expired lease live again is decided on the
/// conflicting locks too.
#[test]
fn renew_of_ones_own_expired_lock_is_refused_if_a_conflicting_lock_was_taken_since() {
    let (repo, _) = held_by(A);
    let after = T0 + TTL_MS + GRACE_MS + 1;
    let (c, v) = run(
        &repo,
        B,
        after,
        &["acquire", "--resource", "repo:deploy", "--ttl", "60s"],
    );
    assert_eq!(c, 0, "{v}");
    let before = repo.refs();
    let (c, v) = renew(&repo, A, after + 1);
    assert_refused(c, &v, "conflict", 4);
    assert!(v.to_string().contains("repo:deploy"), "{v}");
    assert_eq!(repo.refs(), before);
    // Released, the repository lock no longer stands in the way.
    let (c, v) = run(
        &repo,
        B,
        after + 2,
        &["release", "--resource", "repo:deploy"],
    );
    assert_eq!(c, 0, "{v}");
    let (c, v) = renew(&repo, A, after + 3);
    assert_eq!(c, 0, "{v}");
}

#[test]
fn renew_of_anothers_expired_lock_is_refused() {
    let (repo, _) = held_by(B);
    let before = repo.refs();
    let (c, v) = renew(&repo, A, T0 + TTL_MS + GRACE_MS + 1);
    assert_refused(c, &v, "conflict", 4);
    assert_eq!(repo.refs(), before);
}

#[test]
fn release_of_a_free_lock_is_a_no_op_that_says_so() {
    let repo = Repo::new();
    let (c, v) = release(&repo, A, T0);
    assert_eq!(c, 0);
    assert_eq!(v["data"]["released"], false);
    assert_eq!(repo.lock_refs(), "");
    let out = repo.grite_as(A, T0, &["lock", "release", R]);
    assert_eq!(
        support::stdout(&out),
        format!("No lock to release\n  Resource: {R}\n")
    );
}

#[test]
fn release_of_ones_own_lock_frees_it_for_anyone() {
    let (repo, first) = held_by(A);
    let (c, v) = release(&repo, A, T0 + 1_000);
    assert_eq!(c, 0);
    assert_eq!(v["data"]["released"], true);
    let stored = stored_record(&repo.dir, R).expect("released record kept");
    assert_eq!(stored["released"], true);
    assert_eq!(stored["expires_unix_ms"], T0 + 1_000);
    let (c, v) = acquire(&repo, B, T0 + 1_001);
    assert_eq!(c, 0, "{v}");
    assert_eq!(v["data"]["outcome"], "acquired");
    assert!(v["data"]["lock"]["fencing_token"].as_u64() > first["fencing_token"].as_u64());
}

#[test]
fn release_of_anothers_lock_is_refused() {
    let (repo, _) = held_by(B);
    let before = repo.refs();
    let (c, v) = release(&repo, A, T0 + 1);
    assert_refused(c, &v, "conflict", 4);
    assert_eq!(repo.refs(), before);
}

#[test]
fn release_of_ones_own_expired_lock_frees_it() {
    let (repo, _) = held_by(A);
    let (c, v) = release(&repo, A, T0 + TTL_MS + 1);
    assert_eq!(c, 0);
    assert_eq!(v["data"]["released"], true);
}

#[test]
fn release_of_anothers_expired_lock_is_refused() {
    let (repo, _) = held_by(B);
    let before = repo.refs();
    let (c, v) = release(&repo, A, T0 + TTL_MS + GRACE_MS + 1);
    assert_refused(c, &v, "conflict", 4);
    assert_eq!(repo.refs(), before);
}

#[test]
fn gc_removes_released_and_long_expired_locks_and_keeps_the_rest() {
    let repo = Repo::new();
    for (actor, resource, at) in [
        (A, "issue:1", T0),
        (A, "issue:2", T0 + 50_000),
        (B, "issue:3", T0),
        (B, "issue:4", T0),
    ] {
        let (c, _) = run(&repo, actor, at, &["acquire", resource, "--ttl", "60s"]);
        assert_eq!(c, 0);
    }
    let (c, _) = run(&repo, B, T0, &["release", "issue:4"]);
    assert_eq!(c, 0);
    // issue:1 and issue:3 expired at T0+60s; at T0+64s they are in grace.
    let (c, v) = run(&repo, A, T0 + TTL_MS + GRACE_MS - 1, &["gc"]);
    assert_eq!(c, 0);
    assert_eq!(
        (v["data"]["removed"].as_u64(), v["data"]["kept"].as_u64()),
        (Some(1), Some(3))
    );
    let (c, v) = run(&repo, A, T0 + TTL_MS + GRACE_MS, &["gc"]);
    assert_eq!(c, 0);
    assert_eq!(
        (v["data"]["removed"].as_u64(), v["data"]["kept"].as_u64()),
        (Some(2), Some(1))
    );
    assert!(stored_record(&repo.dir, "issue:2").is_some());
    assert_eq!(repo.lock_refs().lines().count(), 1);
    repo.fsck();
}

#[test]
fn fencing_tokens_keep_increasing_across_release_steal_and_gc() {
    let repo = Repo::new();
    let mut tokens = Vec::new();
    let mut at = T0;
    let mut take = |repo: &Repo, actor: &str, at: u64| {
        let (c, v) = acquire(repo, actor, at);
        assert_eq!(c, 0, "{v}");
        tokens.push(v["data"]["lock"]["fencing_token"].as_u64().expect("token"));
    };
    take(&repo, A, at);
    release(&repo, A, at + 1);
    take(&repo, B, at + 2);
    at += 2 + TTL_MS + GRACE_MS;
    take(&repo, A, at); // steal
    let (c, _) = run(&repo, A, at + TTL_MS + GRACE_MS, &["gc"]);
    assert_eq!(c, 0);
    assert_eq!(repo.lock_refs(), "", "gc deleted the ref and its token");
    take(&repo, B, at + TTL_MS + GRACE_MS + 1);
    assert_eq!(tokens, [1, 2, 3, 4]);
}

#[test]
fn conflicting_resources_of_other_actors_are_refused() {
    let repo = Repo::new();
    let (c, _) = run(&repo, A, T0, &["acquire", "path:src/", "--ttl", "60s"]);
    assert_eq!(c, 0);
    let before = repo.refs();
    for resource in ["path:src/a.rs", "path:src", "repo:deploy"] {
        let (c, v) = run(&repo, B, T0 + 1, &["acquire", resource]);
        assert_refused(c, &v, "conflict", 4);
    }
    assert_eq!(repo.refs(), before);
    let (c, v) = run(&repo, B, T0 + 1, &["acquire", "path:srcx/a.rs"]);
    assert_eq!(c, 0, "{v}");
    let (c, v) = run(&repo, A, T0 + 1, &["acquire", "path:src/a.rs"]);
    assert_eq!(c, 0, "an actor's own locks never conflict: {v}");
}

#[test]
fn quiet_prints_nothing_on_success_but_still_reports_errors() {
    let repo = Repo::new();
    let out = repo.grite_as(A, T0, &["--quiet", "lock", "acquire", R]);
    assert_eq!(code(&out), 0);
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    let out = repo.grite_as(B, T0, &["-q", "lock", "acquire", R]);
    assert_eq!(code(&out), 4);
    assert!(out.stdout.is_empty());
    assert!(support::stderr(&out).starts_with("Error: Lock conflict\n"));
}
