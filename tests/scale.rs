//! Decisions among many unrelated locks, and whatever state the derived
//! files are in (`docs/PROTOCOL.md` §3): the record cache
//! (`.git/grite/lock-records.cache`, `src/store/record_cache.rs`) and the
//! index of the resource behind each ref name (`.git/grite/lock-names.cache`,
//! `src/store/name_index.rs`). Missing, stale, damaged or garbage, they
//! never change an answer, and locks written by a tool that knows nothing
//! of them are found all the same.
//!
//! Rounds of the race: `GRITE_SCALE_RACE_ROUNDS` (default 24);
//! unrelated locks: `GRITE_SCALE_LOCKS` (default 10,000).

mod support;

use std::path::{Path, PathBuf};

use grite_locks::lease::ref_hash_of;
use serde_json::Value;
use support::{A, B, Repo, T0, actor, code, grite_command, json, plant_locks};

const RACERS: usize = 8;
const FAR_FUTURE: u64 = 4_102_444_800_000;
const PLANTER: &str = "99999999999999999999999999999999";

fn cache_path(repo: &Path) -> PathBuf {
    repo.join(".git/grite/lock-records.cache")
}

fn names_path(repo: &Path) -> PathBuf {
    repo.join(".git/grite/lock-names.cache")
}

fn summary_path(repo: &Path) -> PathBuf {
    repo.join(".git/grite/lock-packed.cache")
}

/// Whether the name index of `repo` holds `text` (its texts are stored as
/// they are, between binary sizes and checksums).
fn index_holds(repo: &Path, text: &str) -> bool {
    let bytes = std::fs::read(names_path(repo)).unwrap_or_default();
    bytes.windows(text.len()).any(|w| w == text.as_bytes())
}

/// Damages the file at `path` as round `round` says: removed, bytes
/// flipped, cut in half, replaced by garbage, put back as it was rounds
/// ago, or left.
fn damage(path: &Path, round: usize, old: &mut Option<Vec<u8>>) {
    let Ok(mut bytes) = std::fs::read(path) else {
        return;
    };
    match round % 6 {
        0 => std::fs::remove_file(path).expect("remove the cache"),
        1 => {
            for k in 1..=16 {
                let at = (round * 7919 + k * 104_729) % bytes.len();
                bytes[at] ^= 0x20;
            }
            std::fs::write(path, &bytes).expect("write the cache");
        }
        2 => std::fs::write(path, &bytes[..bytes.len() / 2]).expect("write the cache"),
        3 => {
            let garbage: Vec<u8> = (0..bytes.len()).map(|i| (i * 31 + round) as u8).collect();
            std::fs::write(path, garbage).expect("write the cache");
        }
        4 => match old.take() {
            Some(stale) => std::fs::write(path, stale).expect("write the cache"),
            None => *old = Some(bytes),
        },
        _ => *old = Some(bytes),
    }
}

#[test]
fn conflicting_resources_among_many_unrelated_locks_are_never_both_held() {
    let repo = Repo::new();
    let unrelated = support::rounds_from_env("GRITE_SCALE_LOCKS", 10_000);
    plant_locks(&repo.dir, "bulk", unrelated, PLANTER, FAR_FUTURE);
    let (mut old_cache, mut old_names, mut old_summary) = (None, None, None);
    let rounds = support::rounds_from_env("GRITE_SCALE_RACE_ROUNDS", 24);
    for round in 0..rounds {
        damage(&cache_path(&repo.dir), round, &mut old_cache);
        // Out of step with each other, so that every pair of states meets.
        damage(&names_path(&repo.dir), round / 6 + round, &mut old_names);
        damage(
            &summary_path(&repo.dir),
            round / 3 + round,
            &mut old_summary,
        );
        if round % 4 == 3 {
            // Moves this round's lock and the last rounds' into
            // packed-refs, which the summary is of.
            repo.git(&["pack-refs", "--all"]);
        }
        let pair = [format!("path:r{round}"), format!("path:r{round}/deep/a.rs")];
        let now = (T0 + round as u64 * 120_000).to_string();
        let children: Vec<_> = (0..RACERS)
            .map(|i| {
                grite_command(&repo.dir)
                    .args(["--json", "--actor", &actor(i + 1), "--now-ms", &now])
                    .args(["lock", "acquire", &pair[i % 2], "--ttl", "60s"])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("grite starts")
            })
            .collect();
        let results: Vec<(i32, Value)> = children
            .into_iter()
            .map(|c| {
                let out = c.wait_with_output().expect("grite finishes");
                (code(&out), json(&out))
            })
            .collect();
        let winners: Vec<&Value> = results
            .iter()
            .filter(|(c, _)| *c == 0)
            .map(|(_, v)| &v["data"]["lock"])
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:#?}");
        for (c, v) in results.iter().filter(|(c, _)| *c != 0) {
            assert_eq!(*c, 4, "round {round}: {v}");
            let details = &v["error"]["details"];
            let named = match details.get("holder") {
                Some(holder) => &holder["owner"],
                None => &details["conflicts"][0]["owner"],
            };
            assert_eq!(
                named, &winners[0]["owner"],
                "round {round}: a loser names someone else: {v}"
            );
        }
    }
    // Every unrelated lock still reads as planted, and nothing else is live.
    let now = (T0 + rounds as u64 * 120_000).to_string();
    let out = grite_command(&repo.dir)
        .args(["--json", "--actor", A, "--now-ms", &now, "lock", "status"])
        .output()
        .expect("grite runs");
    let status = json(&out);
    let locks = status["data"]["locks"].as_array().expect("locks");
    assert_eq!(locks.len(), unrelated);
    assert!(locks.iter().all(|l| {
        l["owner"] == PLANTER
            && l["expires_unix_ms"] == FAR_FUTURE
            && l["resource"]
                .as_str()
                .is_some_and(|r| r.starts_with("issue:bulk-"))
    }));
    assert_eq!(status["data"]["unreadable"], serde_json::json!([]));
    repo.fsck();
}

/// An entry whose bytes were changed (here: another owner written over
/// the holder's, the length kept) fails its checksum: the holder is read
/// from the objects, and the cache is written again without the change.
#[test]
fn a_changed_record_in_the_cache_is_never_believed() {
    let repo = Repo::new();
    let took = repo.grite_as(
        A,
        T0,
        &["--json", "lock", "acquire", "issue:x", "--ttl", "1h"],
    );
    assert_eq!(code(&took), 0);
    let first = repo.grite_as(A, T0, &["--json", "lock", "status"]);
    let path = cache_path(&repo.dir);
    let bytes = std::fs::read(&path).expect("status wrote the cache");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    assert!(text.contains(A), "the cache holds the record: {text}");
    std::fs::write(&path, text.replace(A, B)).expect("write the cache");

    let again = repo.grite_as(A, T0, &["--json", "lock", "status"]);
    let (first, again) = (json(&first), json(&again));
    assert_eq!(again["data"]["locks"], first["data"]["locks"]);
    assert_eq!(again["data"]["locks"][0]["owner"], A);
    let refused = repo.grite_as(B, T0, &["--json", "lock", "acquire", "issue:x"]);
    assert_eq!(code(&refused), 4);
    assert_eq!(json(&refused)["error"]["details"]["holder"]["owner"], A);
    let rewritten = std::fs::read(&path).expect("the cache is there");
    assert!(
        !String::from_utf8_lossy(&rewritten).contains(B),
        "the damaged entry was dropped"
    );
}

/// A repository the user cannot write the cache into is read all the same.
#[test]
fn a_cache_that_cannot_be_written_changes_nothing() {
    let repo = Repo::new();
    let took = repo.grite_as(
        A,
        T0,
        &["--json", "lock", "acquire", "issue:y", "--ttl", "1h"],
    );
    assert_eq!(code(&took), 0);
    let path = cache_path(&repo.dir);
    let _ = std::fs::remove_file(&path);
    std::fs::create_dir(&path).expect("a folder where the cache would be");
    let status = repo.grite_as(A, T0, &["--json", "lock", "status"]);
    assert_eq!(code(&status), 0, "{}", support::stderr(&status));
    assert_eq!(json(&status)["data"]["locks"][0]["owner"], A);
    let refused = repo.grite_as(B, T0, &["--json", "lock", "acquire", "issue:y"]);
    assert_eq!(code(&refused), 4);
    assert!(path.is_dir());
}

/// Thousands of loose lock refs are packed in the background after an
/// acquire that listed them, with git's automatic maintenance on
/// (`src/store/upkeep.rs`), and every lock reads the same from
/// packed-refs.
#[test]
fn many_loose_lock_refs_are_packed_after_an_acquire() {
    let repo = Repo::new();
    plant_locks(&repo.dir, "bulk", 1_500, PLANTER, FAR_FUTURE);
    let loose_dir = repo.dir.join(".git/refs/grite/locks");
    let loose = || std::fs::read_dir(&loose_dir).map_or(0, Iterator::count);
    assert_eq!(loose(), 1_500, "planted as loose files");
    // git's automatic maintenance back on, at git's threshold.
    let out = grite_command(&repo.dir)
        .env("GIT_CONFIG_VALUE_0", "6700")
        .args(["--actor", A, "--now-ms", &T0.to_string()])
        .args(["lock", "acquire", "issue:mine", "--ttl", "1h"])
        .output()
        .expect("grite runs");
    assert_eq!(code(&out), 0, "{}", support::stderr(&out));
    let planted = format!("refs/grite/locks/{}", ref_hash_of("issue:bulk-0"));
    let packed_refs = repo.dir.join(".git/packed-refs");
    let packing = repo.dir.join(".git/packed-refs.lock");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    // Done once every loose file is pruned and the lock let go.
    while !(std::fs::read_to_string(&packed_refs).is_ok_and(|text| text.contains(&planted))
        && loose() == 0
        && !packing.exists())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "not packed within a minute: {} loose",
            loose()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let refused = repo.grite_as(B, T0, &["--json", "lock", "acquire", "issue:bulk-7"]);
    assert_eq!(code(&refused), 4, "{}", support::stderr(&refused));
    let out = repo.grite_as(A, T0, &["--json", "lock", "status"]);
    let status = json(&out);
    assert_eq!(
        status["data"]["locks"].as_array().map(Vec::len),
        Some(1_501)
    );
    repo.fsck();
}

/// Plants a live lock of `foreign` as another tool writes it, with git
/// alone; its ref name.
fn plant_foreign(repo: &Repo, foreign: &str) -> String {
    let record = format!(
        "{{\"owner\":\"{PLANTER}\",\"nonce\":\"other-tool\",\"expires_unix_ms\":{FAR_FUTURE},\"resource\":\"{foreign}\"}}\n"
    );
    let ref_name = format!("refs/grite/locks/{}", ref_hash_of(foreign));
    support::plant_with_git(repo, &ref_name, &record, true);
    ref_name
}

/// Asserts that B's acquire of `ours` is refused for the lock of `foreign`.
fn refused_by(repo: &Repo, ours: &str, foreign: &str, attempt: &str) {
    let refused = repo.grite_as(B, T0, &["--json", "lock", "acquire", ours, "--ttl", "1h"]);
    let v = json(&refused);
    assert_eq!(code(&refused), 4, "{ours} beside {foreign}, {attempt}: {v}");
    assert_eq!(
        v["error"]["details"]["conflicts"][0]["resource"], foreign,
        "{ours}, {attempt}: {v}"
    );
}

/// Locks another tool writes with git alone, once grite knows the name of
/// every other lock: none of them is in the index, and each still stops a
/// conflicting acquire, first when it is new and then once it is known.
#[test]
fn locks_written_by_other_tools_are_found_without_the_index() {
    let repo = Repo::new();
    plant_locks(&repo.dir, "bulk", 2_000, PLANTER, FAR_FUTURE);
    let warm = repo.grite_as(A, T0, &["lock", "acquire", "issue:warm", "--ttl", "1h"]);
    assert_eq!(code(&warm), 0, "{}", support::stderr(&warm));
    assert!(
        index_holds(&repo.dir, "issue:bulk-1999"),
        "the index was written"
    );

    let cases = [
        // A file under a folder someone holds, and a folder around a file.
        ("path:src/deep/a.rs", "path:src"),
        ("path:lib", "path:lib/x.rs"),
        // Spelt as another tool might: its own ref, the same conflicts.
        ("path:./doc/", "path:doc/guide.md"),
        ("repo:deploy", "issue:7"),
    ];
    for (foreign, ours) in cases {
        plant_foreign(&repo, foreign);
        for attempt in ["unknown", "known"] {
            refused_by(&repo, ours, foreign, attempt);
        }
        if !foreign.starts_with("repo:") {
            let free = repo.grite_as(B, T0, &["lock", "acquire", "issue:free", "--ttl", "1h"]);
            assert_eq!(code(&free), 0, "{}", support::stderr(&free));
        }
    }
    assert!(index_holds(&repo.dir, "repo:deploy"), "learnt once read");
    repo.fsck();
}

/// A release, the renewal of a live lease, and an acquire of a lease held
/// already, are decided on their own lock alone (`docs/PROTOCOL.md` §7):
/// among 2,000 locks another tool wrote since, none reads one of them
/// (the name index learns none), where the next acquire of another
/// resource does.
#[test]
fn a_renewal_a_release_and_an_acquire_held_already_read_their_own_lock_alone() {
    let repo = Repo::new();
    let mine = ["lock", "acquire", "issue:mine", "--ttl", "1h"];
    let taken = repo.grite_as(A, T0, &mine);
    assert_eq!(code(&taken), 0, "{}", support::stderr(&taken));
    plant_locks(&repo.dir, "bulk", 2_000, PLANTER, FAR_FUTURE);
    for args in [
        &["--json", "lock", "acquire", "issue:mine", "--ttl", "1h"][..],
        &["--json", "lock", "renew", "issue:mine", "--ttl", "2h"][..],
        &["--json", "lock", "release", "issue:mine"][..],
    ] {
        let out = repo.grite_as(A, T0 + 1_000, args);
        assert_eq!(code(&out), 0, "{args:?}: {}", json(&out));
        if args[2] == "acquire" {
            assert_eq!(json(&out)["data"]["outcome"], "already_held", "{args:?}");
        }
        assert!(
            !index_holds(&repo.dir, "issue:bulk-"),
            "{args:?} read the others"
        );
    }
    let record = support::stored_record(&repo.dir, "issue:mine").expect("the lock");
    assert_eq!(record["released"], true, "{record}");
    assert_eq!(
        record["ttl_ms"], 7_200_000,
        "renewed, then released: {record}"
    );
    let other = repo.grite_as(A, T0 + 2_000, &["lock", "acquire", "issue:other"]);
    assert_eq!(code(&other), 0, "{}", support::stderr(&other));
    assert!(
        index_holds(&repo.dir, "issue:bulk-1999"),
        "an acquire reads them"
    );
    repo.fsck();
}

/// Acquires until one writes the summary of packed-refs, which waits for
/// packed-refs to be a tick of the file system's clock old (a refused
/// acquire read as much, and writes it too); the last resource asked.
fn until_summarised(repo: &Repo, from: usize) -> usize {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    for i in from.. {
        let resource = format!("issue:warm-{i}");
        let out = repo.grite_as(A, T0, &["lock", "acquire", &resource, "--ttl", "1h"]);
        assert!([0, 4].contains(&code(&out)), "{}", support::stderr(&out));
        if summary_path(&repo.dir).exists() {
            return i;
        }
        assert!(std::time::Instant::now() < deadline, "no summary written");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    unreachable!("the loop returns")
}

/// Once the summary of packed-refs is written (`src/store/packed_summary.rs`),
/// an acquire of an issue reads the packed locks that could conflict with
/// it without listing the others (it learns none of their names), and
/// finds the ones another tool packs since, whatever their text: a
/// `repo:` lock, a path, and an issue's text too long to be valid, which
/// conflicts with the issue it names (`docs/PROTOCOL.md` §2).
#[test]
fn a_summary_of_packed_refs_finds_every_conflict_without_listing_the_rest() {
    let repo = Repo::new();
    plant_locks(&repo.dir, "bulk", 2_000, PLANTER, FAR_FUTURE);
    repo.git(&["pack-refs", "--all"]);
    let mut warm = until_summarised(&repo, 0);
    let long_seven = format!("issue:7{}", "/".repeat(600));
    let cases = [
        ("repo:deploy", "issue:1"),
        ("path:src", "path:src/a.rs"),
        (long_seven.as_str(), "issue:7"),
    ];
    for (foreign, ours) in cases {
        let ref_name = plant_foreign(&repo, foreign);
        repo.git(&["pack-refs", "--all"]);
        let stale = std::fs::read(summary_path(&repo.dir)).expect("the summary");
        for attempt in ["packed-refs changed", "summarised"] {
            if attempt == "summarised" {
                std::fs::remove_file(summary_path(&repo.dir)).expect("remove");
                warm = until_summarised(&repo, warm + 1);
                assert_ne!(
                    std::fs::read(summary_path(&repo.dir)).ok(),
                    Some(stale.clone())
                );
                let _ = std::fs::remove_file(names_path(&repo.dir));
            }
            refused_by(&repo, ours, foreign, attempt);
        }
        let free = repo.grite_as(B, T0, &["lock", "acquire", "issue:free", "--ttl", "1h"]);
        if foreign.starts_with("repo:") {
            assert_eq!(code(&free), 4, "{}", support::stderr(&free));
        } else {
            assert_eq!(code(&free), 0, "{}", support::stderr(&free));
            let gone = repo.grite_as(B, T0, &["lock", "release", "issue:free"]);
            assert_eq!(code(&gone), 0, "{}", support::stderr(&gone));
        }
        assert!(
            !index_holds(&repo.dir, "issue:bulk-"),
            "{ours}: a summarised read learnt the names it need not list"
        );
        // Gone again, for the next case's acquires.
        repo.git(&["update-ref", "-d", &ref_name]);
    }
    repo.fsck();
}

/// A ref under `refs/grite/locks/` whose name is not a grite hash (another
/// tool's naming) is read by every decision, since the name index cannot
/// know it: its record fails the check against its name, so it stops no
/// acquire, and status reports it as unreadable.
#[test]
fn a_lock_ref_under_another_name_is_read_and_reported() {
    let repo = Repo::new();
    plant_locks(&repo.dir, "bulk", 200, PLANTER, FAR_FUTURE);
    let record = format!(
        "{{\"owner\":\"{PLANTER}\",\"nonce\":\"other-tool\",\"expires_unix_ms\":{FAR_FUTURE},\"resource\":\"repo:deploy\"}}\n"
    );
    let ref_name = "refs/grite/locks/other-tool/deploy";
    support::plant_with_git(&repo, ref_name, &record, true);
    for resource in ["issue:8", "path:src/a.rs"] {
        let acquired = repo.grite_as(B, T0, &["lock", "acquire", resource, "--ttl", "1h"]);
        assert_eq!(code(&acquired), 0, "{}", support::stderr(&acquired));
    }
    let status = json(&repo.grite_as(B, T0, &["--json", "lock", "status"]));
    let unreadable = &status["data"]["unreadable"];
    assert_eq!(unreadable.as_array().map(Vec::len), Some(1), "{status}");
    assert_eq!(unreadable[0]["ref"], ref_name, "{status}");
    repo.fsck();
}
