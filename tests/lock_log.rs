//! `grite lock log`: the history of a lock, and of every lock, read from
//! the commit chains of the lock refs (`docs/PROTOCOL.md` §9), including
//! records other tools wrote and records that cannot be read, locally and
//! through a remote.

mod support;

use support::{
    A, B, Repo, T0, code, git_with_input, grite_in, json, plant_with_git, stderr, stdout,
};

/// (event, owner's first 8, token, at) of every step in a log's JSON.
fn steps(out: &std::process::Output) -> Vec<(String, String, u64, u64)> {
    assert_eq!(code(out), 0, "{}", stderr(out));
    json(out)["data"]["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["event"].as_str().expect("event").to_owned(),
                e["lock"]["owner"].as_str().expect("owner")[..8].to_owned(),
                e["lock"]["fencing_token"].as_u64().expect("token"),
                e["at_unix_ms"].as_u64().expect("at"),
            )
        })
        .collect()
}

fn run_ok(repo: &Repo, actor: &str, at: u64, args: &[&str]) {
    let out = repo.grite_as(actor, at, args);
    assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
}

/// issue:1 acquired, renewed, stolen after expiry, released, taken again;
/// path:src acquired in between.
fn busy_repository() -> Repo {
    let repo = Repo::new();
    run_ok(&repo, A, T0, &["lock", "acquire", "issue:1", "--ttl", "1m"]);
    run_ok(
        &repo,
        A,
        T0 + 30_000,
        &["lock", "renew", "issue:1", "--ttl", "1m"],
    );
    run_ok(
        &repo,
        A,
        T0 + 40_000,
        &["lock", "acquire", "path:src/", "--ttl", "1h"],
    );
    run_ok(&repo, B, T0 + 200_000, &["lock", "acquire", "issue:1"]);
    run_ok(&repo, B, T0 + 300_000, &["lock", "release", "issue:1"]);
    run_ok(&repo, B, T0 + 400_000, &["lock", "acquire", "issue:1"]);
    run_ok(&repo, B, T0 + 3_000_000, &["lock", "acquire", "issue:1"]);
    repo
}

#[test]
fn one_lock_s_history_reads_newest_first_with_every_kind_of_step() {
    let repo = busy_repository();
    let log = steps(&repo.grite_as(A, T0 + 4_000_000, &["--json", "lock", "log", "issue:1"]));
    let a = &A[..8];
    let b = &B[..8];
    // Tokens count up along issue:1's own version shard: path:src, on
    // another one, takes none of them.
    assert_eq!(
        log,
        [
            ("reacquire".into(), b.into(), 4, T0 + 3_000_000),
            ("acquire".into(), b.into(), 3, T0 + 400_000),
            ("release".into(), b.into(), 2, T0 + 300_000),
            ("steal".into(), b.into(), 2, T0 + 200_000),
            ("renew".into(), a.into(), 1, T0 + 30_000),
            ("acquire".into(), a.into(), 1, T0),
        ]
    );
    let out = repo.grite_as(
        A,
        T0,
        &["--json", "lock", "log", "-r", "issue:1", "-n", "4"],
    );
    let v = json(&out);
    let entries = v["data"]["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 4);
    assert_eq!(entries[3]["event"], "steal");
    assert_eq!(entries[3]["previous_owner"], A);
    assert_eq!(v["data"]["resource"], "issue:1");

    let human = stdout(&repo.grite_as(A, T0, &["lock", "log", "issue:1", "-n", "4"]));
    let lines: Vec<&str> = human.lines().collect();
    assert_eq!(lines.len(), 4, "{human}");
    assert_eq!(
        lines[3],
        "2024-01-15 11:03:20 UTC  steal      issue:1  bbbbbbbb  token 2  until 2024-01-15 11:33:20 UTC  (from aaaaaaaa)"
    );
    assert_eq!(
        lines[1],
        "2024-01-15 11:06:40 UTC  acquire    issue:1  bbbbbbbb  token 3  until 2024-01-15 11:36:40 UTC"
    );
    assert!(
        lines[2].starts_with("2024-01-15 11:05:00 UTC  release    issue:1  bbbbbbbb  token 2"),
        "{human}"
    );
    assert!(
        !lines[2].contains("until"),
        "a released lease goes on until nothing"
    );
}

#[test]
fn the_log_of_every_lock_interleaves_them_by_time_and_stops_at_n() {
    let repo = busy_repository();
    let out = repo.grite_as(A, T0, &["--json", "lock", "log", "-n", "5"]);
    let v = json(&out);
    let resources: Vec<&str> = v["data"]["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["lock"]["resource"].as_str().expect("resource"))
        .collect();
    assert_eq!(
        resources,
        ["issue:1", "issue:1", "issue:1", "issue:1", "path:src"]
    );
    assert_eq!(v["data"]["resource"], serde_json::Value::Null);
    let all = steps(&repo.grite_as(A, T0, &["--json", "lock", "log"]));
    assert_eq!(all.len(), 7);
    assert!(all.windows(2).all(|w| w[0].3 >= w[1].3), "{all:?}");
}

#[test]
fn records_of_other_tools_and_unreadable_ones_are_history_too() {
    let repo = Repo::new();
    // Another tool's root commit: four fields, no token, no times.
    let foreign = r#"{"owner":"cccccccccccccccccccccccccccccccc","nonce":"n1","expires_unix_ms":1705318200000,"resource":"issue:7"}"#;
    let name = grite_locks::lease::Resource::parse("issue:7")
        .expect("valid")
        .ref_name();
    let root = plant_with_git(&repo, &name, foreign, true);
    // Then a commit on top of it whose record is not JSON.
    let blob = git_with_input(&repo.dir, &["hash-object", "-w", "--stdin"], "not json");
    let tree = git_with_input(
        &repo.dir,
        &["mktree"],
        &format!("100644 blob {blob}\tlock.json\n"),
    );
    let broken = repo
        .git(&["commit-tree", &tree, "-p", &root, "-m", "oops"])
        .trim()
        .to_owned();
    repo.git(&["update-ref", &name, &broken]);

    let out = repo.grite_as(A, T0, &["--json", "lock", "log", "issue:7"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v = json(&out);
    let entries = v["data"]["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 2, "{v}");
    assert_eq!(entries[0]["commit"], broken.as_str());
    assert_eq!(entries[0]["event"], serde_json::Value::Null);
    assert!(
        entries[0]["unreadable"]
            .as_str()
            .expect("reason")
            .contains("not a valid lock record")
    );
    assert_eq!(entries[1]["event"], "acquire");
    assert_eq!(entries[1]["lock"]["fencing_token"], 0);
    // No time in the record: the commit's (git_command fixes it).
    assert_eq!(entries[1]["at_unix_ms"], 1_705_316_400_000u64);

    let human = stdout(&repo.grite_as(A, T0, &["lock", "log", "issue:7"]));
    assert!(
        human
            .lines()
            .next()
            .is_some_and(|l| l.contains("unreadable")),
        "{human}"
    );
}

#[test]
fn a_resource_without_history_or_a_bad_one_is_refused_changing_nothing() {
    let repo = busy_repository();
    let before = repo.refs();
    let out = repo.grite_as(A, T0, &["--json", "lock", "log", "issue:2"]);
    assert_eq!(code(&out), 3, "{}", stdout(&out));
    assert_eq!(json(&out)["error"]["code"], "not_found");
    let out = repo.grite_as(A, T0, &["lock", "log", "issue:2"]);
    assert!(stderr(&out).contains("No lock history"), "{}", stderr(&out));
    let out = repo.grite_as(A, T0, &["lock", "log", "bug:2"]);
    assert_eq!(code(&out), 2);
    let out = repo.grite_as(A, T0, &["lock", "log", "-n", "many"]);
    assert_eq!(code(&out), 2);
    let out = repo.grite_as(A, T0, &["lock", "log", "issue:1", "-r", "issue:2"]);
    assert_eq!(code(&out), 2);
    assert_eq!(repo.refs(), before);

    let empty = Repo::new();
    let out = empty.grite_as(A, T0, &["lock", "log"]);
    assert_eq!(
        (code(&out), stdout(&out)),
        (0, "No lock history\n".to_owned())
    );
}

#[test]
fn through_a_remote_the_log_is_the_remote_s_history() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let remote = support::seeded_remote(tmp.path());
    let remote = remote.to_str().expect("utf-8 path");
    let clone = |name: &str| {
        support::git(tmp.path(), &["clone", "-q", remote, name]);
        tmp.path().join(name)
    };
    let (one, two) = (clone("one"), clone("two"));
    for (at, args) in [
        (T0, ["lock", "acquire", "issue:1"]),
        (T0 + 1_000, ["lock", "renew", "issue:1"]),
        (T0 + 2_000, ["lock", "release", "issue:1"]),
    ] {
        let out = grite_in(&one, A, at, &[&["--remote", "origin"], &args[..]].concat());
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
    // The second clone has never seen the lock...
    let out = grite_in(
        &two,
        B,
        T0 + 3_000,
        &["--no-remote", "lock", "log", "issue:1"],
    );
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    // ...the remote has its whole history...
    let out = grite_in(
        &two,
        B,
        T0 + 3_000,
        &["--json", "--remote", "origin", "lock", "log", "issue:1"],
    );
    let events: Vec<String> = steps(&out).into_iter().map(|s| s.0).collect();
    assert_eq!(events, ["release", "renew", "acquire"]);
    // ...which the local mirror now follows.
    let out = grite_in(
        &two,
        B,
        T0 + 3_000,
        &["--json", "--no-remote", "lock", "log", "issue:1"],
    );
    assert_eq!(steps(&out).len(), 3);
}
