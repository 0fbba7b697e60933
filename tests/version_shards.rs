//! The version shards (`docs/PROTOCOL.md` §7): an acquire advances only the
//! shard of its resource, so acquires of resources that cannot conflict do
//! not queue on one ref; a `repo:` acquire advances them all; the single
//! version ref of earlier versions becomes a marker that such versions
//! cannot read, with its highest token kept as the floor of every shard.

mod support;

use serde_json::Value;
use support::{A, B, Repo, T0, code, json, shard_ref_of};

const C: &str = "cccccccccccccccccccccccccccccccc";

fn acquire(repo: &Repo, actor: &str, resource: &str) -> Value {
    let out = repo.grite_as(actor, T0, &["--json", "lock", "acquire", resource]);
    assert_eq!(code(&out), 0, "{resource}: {}", support::stderr(&out));
    json(&out)["data"]["lock"].clone()
}

fn token(lock: &Value) -> u64 {
    lock["fencing_token"].as_u64().expect("a token")
}

/// The value of `name`, or "" when it does not exist.
fn value_of(repo: &Repo, name: &str) -> String {
    repo.git(&["for-each-ref", "--format=%(objectname)", name])
        .trim()
        .to_owned()
}

fn shard_refs(repo: &Repo) -> Vec<(String, String)> {
    repo.git(&[
        "for-each-ref",
        "--format=%(refname) %(objectname)",
        "refs/grite/lock-versions/",
    ])
    .lines()
    .filter_map(|l| l.split_once(' '))
    .map(|(name, id)| (name.to_owned(), id.to_owned()))
    .collect()
}

/// `version.json` of what `name` points at.
fn version_json(repo: &Repo, name: &str) -> Value {
    let text = repo.git(&["cat-file", "-p", &format!("{name}:version.json")]);
    serde_json::from_str(&text).expect("version.json is JSON")
}

#[test]
fn unrelated_acquires_advance_their_own_shard_and_a_repo_acquire_advances_all() {
    let repo = Repo::new();
    let first = shard_ref_of("issue:1");
    let other = (2..)
        .map(|i| format!("issue:{i}"))
        .find(|r| shard_ref_of(r) != first)
        .expect("an issue on another shard");
    let second = shard_ref_of(&other);

    acquire(&repo, A, "issue:1");
    let moved = value_of(&repo, &first);
    assert!(!moved.is_empty(), "issue:1 advanced no shard");
    assert_eq!(shard_refs(&repo).len(), 1, "{:?}", shard_refs(&repo));
    acquire(&repo, B, &other);
    assert_eq!(
        value_of(&repo, &first),
        moved,
        "{other} moved issue:1's shard"
    );
    assert!(!value_of(&repo, &second).is_empty());

    // A path and everything under its top directory share one shard.
    let src = shard_ref_of("path:src");
    acquire(&repo, A, "path:src/a.rs");
    let after_a = value_of(&repo, &src);
    acquire(&repo, B, "path:src/b.rs");
    assert_ne!(value_of(&repo, &src), after_a);
    assert_eq!(shard_ref_of("path:src/deep/c.rs"), src);

    let out = repo.grite_as(A, T0, &["lock", "release", "issue:1", "path:src/a.rs"]);
    assert_eq!(code(&out), 0, "{}", support::stderr(&out));
    let out = repo.grite_as(B, T0, &["lock", "release", &other, "path:src/b.rs"]);
    assert_eq!(code(&out), 0, "{}", support::stderr(&out));
    let repo_lock = acquire(&repo, C, "repo:deploy");
    let shards = shard_refs(&repo);
    assert_eq!(shards.len(), 64, "{shards:?}");
    assert!(
        shards.iter().all(|(_, id)| *id == shards[0].1),
        "one version commit for every shard: {shards:?}"
    );
    let version = version_json(&repo, &shards[0].0);
    assert_eq!(version["highest_token"], token(&repo_lock));
    // Above every token issued on any shard.
    assert!(token(&repo_lock) > 1, "{repo_lock}");
    repo.fsck();
}

#[test]
fn the_single_version_becomes_a_marker_whose_floor_holds_on_every_shard() {
    let repo = Repo::new();
    support::plant_single_version(&repo, 41);
    let lock = acquire(&repo, A, "issue:1");
    assert_eq!(token(&lock), 42, "{lock}");

    let marker = version_json(&repo, "refs/grite/lock-version");
    assert_eq!(marker["highest_token"], 41, "{marker}");
    assert_eq!(marker["shards"], 64, "{marker}");
    // A grite that knows only the single version reads `version` as a
    // number: it must fail on the marker, and say why.
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)] // read only to be refused
    struct SingleVersion {
        version: u64,
        highest_token: u64,
    }
    let error = serde_json::from_value::<SingleVersion>(marker.clone())
        .expect_err("an old grite must not read the marker as a version");
    assert!(error.to_string().contains("upgrade"), "{error}");

    // A shard no lease has touched yet starts from the marker's floor.
    let other = (2..)
        .map(|i| format!("issue:{i}"))
        .find(|r| shard_ref_of(r) != shard_ref_of("issue:1"))
        .expect("an issue on another shard");
    assert_eq!(token(&acquire(&repo, B, &other)), 42);
    assert_eq!(value_of(&repo, "refs/grite/lock-version").len(), 40);
    let unchanged = version_json(&repo, "refs/grite/lock-version");
    assert_eq!(unchanged, marker, "the marker is written once");
    repo.fsck();
}

#[test]
fn gc_carries_a_removed_token_into_the_shard_of_its_resource() {
    let repo = Repo::new();
    acquire(&repo, A, "issue:2");
    // Another tool's released record, with a token above the shard's.
    let ref_name = grite_locks::lease::Resource::parse("issue:1")
        .expect("valid")
        .ref_name();
    let record = serde_json::json!({
        "owner": B, "nonce": "n", "expires_unix_ms": T0 - 1_000,
        "resource": "issue:1", "fencing_token": 50, "released": true,
    });
    support::plant_with_git(&repo, &ref_name, &record.to_string(), true);
    let out = repo.grite_as(A, T0, &["--json", "lock", "gc"]);
    assert_eq!(
        json(&out)["data"]["removed"],
        1,
        "{}",
        support::stdout(&out)
    );
    assert_eq!(value_of(&repo, &ref_name), "", "gc deleted the ref");
    let shard = version_json(&repo, &shard_ref_of("issue:1"));
    assert_eq!(shard["highest_token"], 50, "{shard}");
    assert_eq!(token(&acquire(&repo, B, "issue:1")), 51);
    repo.fsck();
}
