//! Reproducible lock objects: with a fixed actor, nonce and clock, the blob,
//! tree and commit of a lock are byte-identical from run to run, and their
//! ids match ones computed from git's object encoding without gix.

mod support;

use grite_locks::Locks;
use grite_locks::lease::{ActorId, Resource, Ttl, UnixMillis};
use grite_locks::store::FixedClock;
use support::{A, Repo, T0};

fn git_object_id(kind: &str, body: &[u8]) -> String {
    let mut hasher = sha1_smol::Sha1::new();
    hasher.update(format!("{kind} {}\0", body.len()).as_bytes());
    hasher.update(body);
    hasher.digest().to_string()
}

fn hex_to_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Acquires `issue:8057324b` as A at T0 with nonce `fixture-nonce`; returns
/// the ids of the commit, tree and blob.
fn fixture_lock() -> (String, String, String) {
    let repo = Repo::new();
    let locks = Locks::open(&repo.dir)
        .expect("repository opens")
        .with_nonces(|| "fixture-nonce".to_owned());
    let actor = ActorId::parse(A).expect("valid actor");
    let resource = Resource::parse("issue:8057324b").expect("valid resource");
    let ttl = Ttl::parse("30m").expect("valid ttl");
    locks
        .acquire(&actor, &resource, ttl, &FixedClock(UnixMillis(T0)))
        .expect("acquired");
    let name = resource.ref_name();
    let id = |rev: &str| repo.git(&["rev-parse", rev]).trim().to_owned();
    (
        id(&name),
        id(&format!("{name}^{{tree}}")),
        id(&format!("{name}:lock.json")),
    )
}

#[test]
fn lock_objects_are_byte_identical_from_run_to_run() {
    assert_eq!(fixture_lock(), fixture_lock());
}

#[test]
fn lock_object_ids_match_gits_encoding_computed_without_gix() {
    let (commit, tree, blob) = fixture_lock();

    let json = format!(
        "{{\n  \"owner\": \"{A}\",\n  \"nonce\": \"fixture-nonce\",\n  \"expires_unix_ms\": {},\n  \"resource\": \"issue:8057324b\",\n  \"fencing_token\": 1,\n  \"acquired_unix_ms\": {T0},\n  \"ttl_ms\": 1800000\n}}\n",
        T0 + 30 * 60_000
    );
    assert_eq!(blob, git_object_id("blob", json.as_bytes()));

    let mut tree_body = b"100644 lock.json\0".to_vec();
    tree_body.extend(hex_to_bytes(&blob));
    assert_eq!(tree, git_object_id("tree", &tree_body));

    let seconds = T0 / 1000;
    let commit_body = format!(
        "tree {tree}\nauthor grite <grite@localhost> {seconds} +0000\ncommitter grite <grite@localhost> {seconds} +0000\n\nlock acquire: issue:8057324b\n\nowner: {A}\nfencing-token: 1\nexpires: 2024-01-15 11:30:00 UTC\n"
    );
    assert_eq!(commit, git_object_id("commit", commit_body.as_bytes()));

    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        insta::assert_snapshot!(
            "fixture_object_ids",
            format!("commit {commit}\ntree {tree}\nblob {blob}\n")
        );
    });
}
