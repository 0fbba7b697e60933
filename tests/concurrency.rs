//! Races between real processes on one repository: exactly one winner every
//! round, every loser names the winner, a steal's winner keeps its lock
//! against the old holder, conflicting resources are never both held, and
//! `git fsck --strict` stays clean. Rounds: `GRITE_RACE_ROUNDS` (default 200).

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use support::{Repo, T0, actor, code, git, grite_command, json};

const RACERS: usize = 8;
const TTL_MS: u64 = 60_000;
const GRACE_MS: u64 = 5_000;

fn rounds() -> usize {
    support::rounds_from_env("GRITE_RACE_ROUNDS", 200)
}

/// Each round happens long after the previous one's locks expired, so they
/// never block it.
fn round_time(round: usize) -> u64 {
    T0 + round as u64 * (TTL_MS + GRACE_MS + 1_000)
}

struct Racer {
    dir: PathBuf,
    actor: String,
    args: Vec<String>,
}

impl Racer {
    fn new(dir: &Path, actor: String, args: &[&str]) -> Racer {
        Racer {
            dir: dir.to_owned(),
            actor,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
        }
    }
}

/// Starts every racer before waiting for any, so that they overlap.
fn race(racers: &[Racer], now: u64) -> Vec<(i32, Value)> {
    let now = now.to_string();
    let children: Vec<_> = racers
        .iter()
        .map(|r| {
            grite_command(&r.dir)
                .args(["--json", "--actor", &r.actor, "--now-ms", &now, "lock"])
                .args(&r.args)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("grite starts")
        })
        .collect();
    children
        .into_iter()
        .map(|child| {
            let out: Output = child.wait_with_output().expect("grite finishes");
            assert!(
                out.stderr.is_empty(),
                "stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            (code(&out), json(&out))
        })
        .collect()
}

/// The output of the one racer that succeeded: there must be exactly one.
fn the_winner(results: &[(i32, Value)], round: usize) -> &Value {
    let winners: Vec<&Value> = results
        .iter()
        .filter(|(c, _)| *c == 0)
        .map(|(_, v)| v)
        .collect();
    assert_eq!(winners.len(), 1, "round {round}: {results:#?}");
    winners[0]
}

/// Exactly one racer won; every other one was refused with `conflict`
/// naming the winner. Returns the winner's lock.
fn one_winner(results: &[(i32, Value)], round: usize) -> Value {
    let winner = the_winner(results, round);
    let lock = winner["data"]["lock"].clone();
    for (c, v) in results.iter().filter(|(c, _)| *c != 0) {
        assert_eq!(*c, 4, "round {round}: {v}");
        assert_eq!(v["error"]["code"], "conflict", "round {round}: {v}");
        assert_eq!(
            v["error"]["details"]["holder"]["owner"], lock["owner"],
            "round {round}: loser does not name the winner: {v}"
        );
    }
    lock
}

fn record_of(repo: &Repo, resource: &str) -> Value {
    support::stored_record(&repo.dir, resource).expect("lock stored")
}

#[test]
fn eight_acquirers_of_a_free_lock_have_exactly_one_winner() {
    let repo = Repo::new();
    for round in 0..rounds() {
        let resource = format!("issue:free-{round}");
        let racers: Vec<Racer> = (0..RACERS)
            .map(|i| {
                Racer::new(
                    &repo.dir,
                    actor(i + 1),
                    &["acquire", &resource, "--ttl", "60s"],
                )
            })
            .collect();
        let lock = one_winner(&race(&racers, round_time(round)), round);
        assert_eq!(record_of(&repo, &resource)["nonce"], lock["nonce"]);
        repo.fsck();
    }
}

#[test]
fn eight_stealers_of_an_expired_lock_have_exactly_one_winner() {
    let repo = Repo::new();
    for round in 0..rounds() {
        let resource = format!("issue:steal-{round}");
        let start = round_time(round);
        let out = repo.grite_as(
            &actor(99),
            start,
            &["lock", "acquire", &resource, "--ttl", "60s"],
        );
        assert_eq!(code(&out), 0);
        let racers: Vec<Racer> = (0..RACERS)
            .map(|i| {
                Racer::new(
                    &repo.dir,
                    actor(i + 1),
                    &["acquire", &resource, "--ttl", "60s"],
                )
            })
            .collect();
        let results = race(&racers, start + TTL_MS + GRACE_MS);
        let lock = one_winner(&results, round);
        let winner = results.iter().find(|(c, _)| *c == 0).expect("a winner");
        assert_eq!(winner.1["data"]["outcome"], "stolen");
        assert_eq!(winner.1["data"]["previous_owner"], actor(99));
        assert_eq!(record_of(&repo, &resource)["nonce"], lock["nonce"]);
        repo.fsck();
    }
}

#[test]
fn renew_release_and_gc_by_others_never_undo_a_steal() {
    let steals = undo_race(rounds(), false);
    assert!(
        steals > 0,
        "no round had a steal win: the race never exercised it"
    );
}

/// The same race on locks that exist only in packed-refs, as after a `git
/// gc`: gc deletes them under packed-refs.lock alone, while each stealer
/// writes under the lock's own lock file.
#[test]
fn renew_release_and_gc_by_others_never_undo_a_steal_of_a_packed_lock() {
    undo_race(rounds().div_ceil(4), true);
}

/// Rounds of four stealers of an expired lock racing its holder's renewals
/// and release and another actor's gc; the lock's refs packed first if
/// `packed`. At most one stealer wins, and what it wrote stays. Returns how
/// many rounds a steal won.
fn undo_race(rounds: usize, packed: bool) -> usize {
    let repo = Repo::new();
    let old = actor(99);
    let mut steals = 0;
    for round in 0..rounds {
        let resource = format!("issue:undo-{round}");
        let start = round_time(round);
        let out = repo.grite_as(&old, start, &["lock", "acquire", &resource, "--ttl", "60s"]);
        assert_eq!(code(&out), 0);
        if packed {
            git(&repo.dir, &["pack-refs", "--all"]);
        }
        let mut racers: Vec<Racer> = (0..4)
            .map(|i| {
                Racer::new(
                    &repo.dir,
                    actor(i + 1),
                    &["acquire", &resource, "--ttl", "60s"],
                )
            })
            .collect();
        racers.push(Racer::new(
            &repo.dir,
            old.clone(),
            &["renew", &resource, "--ttl", "60s"],
        ));
        racers.push(Racer::new(&repo.dir, old.clone(), &["release", &resource]));
        racers.push(Racer::new(
            &repo.dir,
            old.clone(),
            &["renew", &resource, "--ttl", "60s"],
        ));
        racers.push(Racer::new(&repo.dir, actor(50), &["gc"]));
        let results = race(&racers, start + TTL_MS + GRACE_MS);
        let acquired: Vec<&Value> = results[..4]
            .iter()
            .filter(|(c, _)| *c == 0)
            .map(|(_, v)| v)
            .collect();
        assert!(
            acquired.len() <= 1,
            "round {round}: two acquirers won: {results:#?}"
        );
        for (c, v) in &results {
            assert!([0, 3, 4].contains(c), "round {round}: {v}");
        }
        if let Some(winner) = acquired.first() {
            steals += usize::from(winner["data"]["outcome"] == "stolen");
            let stored = record_of(&repo, &resource);
            assert_eq!(
                stored["nonce"], winner["data"]["lock"]["nonce"],
                "round {round}: the winner's lock was changed: {results:#?}"
            );
            assert_eq!(
                stored.get("released"),
                None,
                "round {round}: the winner's lock was released"
            );
        }
        repo.fsck();
    }
    steals
}

/// Half the racers acquire one of `pairs`, half the other, which conflict:
/// exactly one wins, every other is refused, and the repository stays
/// sound. Returns the winner's lock.
fn conflicting_race(repo: &Repo, pairs: &[String; 2], round: usize) -> Value {
    let racers: Vec<Racer> = (0..RACERS)
        .map(|i| {
            Racer::new(
                &repo.dir,
                actor(i + 1),
                &["acquire", &pairs[i % 2], "--ttl", "60s"],
            )
        })
        .collect();
    let results = race(&racers, round_time(round));
    let winner = the_winner(&results, round);
    for (c, v) in &results {
        assert!([0, 4].contains(c), "round {round}: {v}");
    }
    repo.fsck();
    winner["data"]["lock"].clone()
}

#[test]
fn conflicting_resources_are_never_both_held() {
    let repo = Repo::new();
    for round in 0..rounds() {
        let pairs = if round % 2 == 0 {
            [format!("path:r{round}/"), format!("path:r{round}/a.rs")]
        } else {
            [format!("repo:x{round}"), format!("issue:y{round}")]
        };
        conflicting_race(&repo, &pairs, round);
    }
}

/// The same race from a repository whose lock version is still the single
/// ref of earlier versions, which every racer turns into the marker as it
/// writes its shard: the migration is part of the compare-and-swap.
#[test]
fn conflicting_resources_are_never_both_held_while_the_single_version_is_replaced() {
    let repo = Repo::new();
    for round in 0..rounds().div_ceil(8) {
        let floor = 100 * (round as u64 + 1);
        support::plant_single_version(&repo, floor);
        let shards = repo.git(&[
            "for-each-ref",
            "--format=delete %(refname)",
            "refs/grite/lock-versions/",
        ]);
        support::git_with_input(&repo.dir, &["update-ref", "--stdin"], &shards);
        let pairs = if round % 2 == 0 {
            [format!("repo:m{round}"), format!("issue:m{round}")]
        } else {
            [format!("path:m{round}"), format!("path:m{round}/a.rs")]
        };
        let lock = conflicting_race(&repo, &pairs, round);
        let token = lock["fencing_token"].as_u64();
        assert!(token > Some(floor), "round {round}: {lock}");
    }
}

/// The same race on locks and version shards that exist only in
/// packed-refs, as after a `git gc`: each writer reads them under their own
/// lock files (not under packed-refs.lock), and still exactly one wins.
#[test]
fn conflicting_resources_are_never_both_held_when_their_refs_are_packed() {
    let repo = Repo::new();
    let earlier = actor(60);
    for round in 0..rounds().div_ceil(8) {
        let pairs = if round % 2 == 0 {
            [format!("path:k{round}"), format!("path:k{round}/a.rs")]
        } else {
            [format!("path:k{round}/d/"), format!("path:k{round}/d/e")]
        };
        // Held and released by someone else before the race, each moving
        // the shard they share; then every ref is packed.
        let before = round_time(round) - 1_000;
        for resource in &pairs {
            for verb in ["acquire", "release"] {
                let out = repo.grite_as(&earlier, before, &["lock", verb, resource]);
                assert_eq!(code(&out), 0, "round {round}: {verb} {resource}");
            }
        }
        git(&repo.dir, &["pack-refs", "--all"]);
        let loose = repo.dir.join(".git/refs/grite/locks");
        assert_eq!(
            std::fs::read_dir(&loose).map_or(0, Iterator::count),
            0,
            "round {round}: the lock refs are packed"
        );
        conflicting_race(&repo, &pairs, round);
    }
}

#[test]
fn acquirers_in_two_worktrees_have_exactly_one_winner() {
    let repo = Repo::new();
    let second = repo.tmp.path().join("second");
    git(
        &repo.dir,
        &[
            "worktree",
            "add",
            "-q",
            second.to_str().expect("utf-8 path"),
            "-b",
            "second",
        ],
    );
    for round in 0..rounds() {
        let resource = format!("issue:wt-{round}");
        let racers: Vec<Racer> = (0..RACERS)
            .map(|i| {
                let dir = if i % 2 == 0 { &repo.dir } else { &second };
                Racer::new(dir, actor(i + 1), &["acquire", &resource, "--ttl", "60s"])
            })
            .collect();
        let lock = one_winner(&race(&racers, round_time(round)), round);
        assert_eq!(record_of(&repo, &resource)["nonce"], lock["nonce"]);
        repo.fsck();
    }
}
