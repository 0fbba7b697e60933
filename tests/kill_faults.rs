//! Fault injection: grite processes killed with SIGKILL at random instants,
//! several at a time, locally and through a remote on a path. After every
//! round the lock files the dead left behind are removed, as the error
//! message tells a user to (only once no process is left), and every
//! third round the refs are packed. At the end:
//! `git fsck` is clean everywhere, every lock ref holds a complete record,
//! no fencing token was handed out twice for a resource (neither among
//! the tokens printed nor along any lock's history), and every command
//! works again.
//!
//! Rounds: `GRITE_FAULT_ROUNDS` (default 40, each of 4 local and 4 remote
//! operations, so 320 in all). The seed is printed and taken from
//! `GRITE_FAULT_SEED` to replay a run.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{T0, git, grite_command};

const RESOURCES: [&str; 4] = ["issue:1", "issue:2", "path:src", "path:src/a.rs"];
const ACTORS: [&str; 3] = [
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
    "cccccccccccccccccccccccccccccccc",
];
/// Rounds are this far apart on the test clock: a 6 s lease outlives one
/// round and not two, so renewals, steals and gc all happen.
const ROUND_MS: u64 = 4_000;

/// xorshift64*: enough randomness to pick operations and instants.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// One repository under test and how to reach its lock state.
struct Target {
    label: &'static str,
    /// Where the processes run.
    dirs: Vec<PathBuf>,
    /// `--remote` for them, if the authority is a remote.
    remote: Option<String>,
    /// Repositories whose lock files and refs are checked.
    repositories: Vec<PathBuf>,
    /// Kills land uniformly within this many milliseconds of the start:
    /// about as long as an operation takes here.
    kill_within_ms: u64,
    /// Tokens of new leases printed, per resource.
    tokens: BTreeMap<String, Vec<u64>>,
    /// Processes that were killed, and that finished first.
    killed: usize,
    finished: usize,
    /// Lock files the dead left behind.
    left_behind: usize,
}

impl Target {
    fn command(&self, dir: &Path, actor: &str, at: u64, args: &[&str]) -> std::process::Command {
        let mut command = grite_command(dir);
        command.args(["--json", "--actor", actor, "--now-ms", &at.to_string()]);
        if let Some(remote) = &self.remote {
            command.args(["--remote", remote]);
        }
        command.arg("lock").args(args);
        command
    }
}

fn configure(dir: &Path) {
    std::fs::create_dir_all(dir.join(".git/grite")).expect("mkdir");
    std::fs::write(dir.join(".git/grite/config.toml"), "lock_grace = \"1s\"\n").expect("config");
}

/// Lock files under `repo`'s git directory.
fn lock_files(git_dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![git_dir.to_owned()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                if !path.ends_with("objects") {
                    dirs.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "lock") {
                found.push(path);
            }
        }
    }
    found
}

fn git_dir(repo: &Path) -> PathBuf {
    let dot_git = repo.join(".git");
    if dot_git.is_dir() {
        dot_git
    } else {
        repo.to_owned()
    }
}

/// Waits for the git programs that outlived their killed grite (a
/// receive-pack finishing a push) to let go of their lock files; removes
/// what is left once nothing can hold it any more and returns how many.
fn clean_up_after_the_dead(target: &Target) -> usize {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let left: Vec<PathBuf> = target
            .repositories
            .iter()
            .flat_map(|r| lock_files(&git_dir(r)))
            .collect();
        if left.is_empty() {
            return 0;
        }
        if Instant::now() >= deadline {
            for file in &left {
                let _ = std::fs::remove_file(file);
            }
            return left.len();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run_round(target: &mut Target, rng: &mut Rng, round: u64) {
    let at = T0 + round * ROUND_MS;
    let mut children: Vec<(Child, String, String)> = Vec::new();
    for dir in target.dirs.clone().iter().cycle().take(4) {
        let actor = *rng.pick(&ACTORS);
        let resource = *rng.pick(&RESOURCES);
        let op = *rng.pick(&["acquire", "acquire", "renew", "release", "gc"]);
        let mut args = vec![op];
        if op != "gc" {
            args.push(resource);
        }
        if op == "acquire" || op == "renew" {
            args.extend(["--ttl", "6s"]);
        }
        let child = target
            .command(dir, actor, at, &args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("grite starts");
        children.push((child, op.to_owned(), resource.to_owned()));
    }
    // Kill each at a random instant, most of them inside their work.
    let started = Instant::now();
    let mut kills: Vec<(Duration, usize)> = (0..children.len())
        .map(|i| (Duration::from_millis(rng.below(target.kill_within_ms)), i))
        .collect();
    kills.sort();
    for (at, i) in kills {
        if let Some(wait) = at.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
        let _ = children[i].0.kill();
    }
    for (child, op, resource) in children {
        let out = child.wait_with_output().expect("grite ends");
        if out.status.code().is_none() {
            target.killed += 1;
        } else {
            target.finished += 1;
        }
        if !out.status.success() || op != "acquire" {
            continue;
        }
        let Ok(v) = serde_json::from_slice::<Value>(&out.stdout) else {
            continue;
        };
        if ["acquired", "reacquired", "stolen"]
            .contains(&v["data"]["outcome"].as_str().unwrap_or_default())
        {
            let token = v["data"]["lock"]["fencing_token"]
                .as_u64()
                .expect("a token");
            target.tokens.entry(resource).or_default().push(token);
        }
    }
    target.left_behind += clean_up_after_the_dead(target);
    // Every third round starts from packed refs, as after a `git gc`: gc
    // then deletes packed locks under packed-refs.lock alone, and loose
    // ones that hide a packed value.
    if round % 3 == 2 {
        for repo in &target.repositories {
            git(repo, &["pack-refs", "--all"]);
        }
    }
}

/// The lock records along `ref_name`'s history, oldest first.
fn history(repo: &Path, ref_name: &str) -> Vec<Value> {
    let commits = git(repo, &["rev-list", "--reverse", ref_name]);
    commits
        .lines()
        .map(|commit| {
            let blob = git(repo, &["cat-file", "-p", &format!("{commit}:lock.json")]);
            serde_json::from_str(&blob).expect("every lock commit holds a record")
        })
        .collect()
}

fn check(target: &Target, end: u64) {
    let label = target.label;
    eprintln!(
        "{label}: {} killed, {} finished first, {} lock files left behind, {} new leases",
        target.killed,
        target.finished,
        target.left_behind,
        target.tokens.values().map(Vec::len).sum::<usize>()
    );
    assert!(
        target.killed > 0 && target.finished > 0,
        "{label}: the kills missed"
    );
    for (resource, tokens) in &target.tokens {
        let unique: BTreeSet<&u64> = tokens.iter().collect();
        assert_eq!(
            unique.len(),
            tokens.len(),
            "{label}: {resource} tokens {tokens:?}"
        );
    }
    let authority = target.repositories[0].as_path();
    support::fsck(authority);
    let refs = git(
        authority,
        &["for-each-ref", "--format=%(refname)", "refs/grite/locks/"],
    );
    for ref_name in refs.lines() {
        // Along a lock's history, a new lease always carries a higher
        // token and a renew or release the same one.
        let records = history(authority, ref_name);
        for pair in records.windows(2) {
            let (before, after) = (&pair[0], &pair[1]);
            let (t0, t1) = (
                before["fencing_token"].as_u64(),
                after["fencing_token"].as_u64(),
            );
            if before["nonce"] == after["nonce"] {
                assert_eq!(t0, t1, "{label}: {ref_name}: {before} then {after}");
            } else {
                assert!(t1 > t0, "{label}: {ref_name}: {before} then {after}");
            }
        }
    }
    for dir in &target.dirs {
        support::fsck(dir);
        let out = target
            .command(dir, ACTORS[0], end, &["status"])
            .output()
            .expect("runs");
        let v: Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(v["ok"], true, "{label}: status after the kills: {v}");
        assert_eq!(
            v["data"]["unreadable"],
            serde_json::json!([]),
            "{label}: {v}"
        );
        // Every operation works again.
        for args in [
            &["acquire", "issue:after", "--ttl", "1m"][..],
            &["renew", "issue:after", "--ttl", "1m"],
            &["release", "issue:after"],
            &["gc"],
        ] {
            let out = target
                .command(dir, ACTORS[0], end, args)
                .output()
                .expect("runs");
            let v: Value = serde_json::from_slice(&out.stdout).expect("json");
            assert_eq!(v["ok"], true, "{label}: {args:?} after the kills: {v}");
        }
        // That gc deleted a ref under packed-refs.lock, and with it any new
        // packed-refs a killed gc left unrenamed.
        let left: Vec<String> = std::fs::read_dir(git_dir(dir))
            .expect("the git directory")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|name| name.starts_with("packed-refs.grite-"))
            .collect();
        assert_eq!(
            left,
            Vec::<String>::new(),
            "{label}: left beside packed-refs"
        );
    }
}

#[test]
fn processes_killed_at_random_instants_leave_nothing_wrong_behind() {
    let rounds = support::rounds_from_env("GRITE_FAULT_ROUNDS", 40) as u64;
    let seed = std::env::var("GRITE_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    eprintln!("GRITE_FAULT_SEED={seed}");
    let mut rng = Rng(seed);

    let tmp = tempfile::tempdir().expect("temp dir");
    let base = tmp.path();
    git(base, &["init", "-q", "-b", "main", "local"]);
    let local = base.join("local");
    configure(&local);
    let remote = support::seeded_remote(base);
    let clones: Vec<PathBuf> = ["c1", "c2"]
        .iter()
        .map(|name| {
            git(base, &["clone", "-q", "remote.git", name]);
            let dir = base.join(name);
            configure(&dir);
            dir
        })
        .collect();
    let mut targets = [
        Target {
            label: "local",
            dirs: vec![local.clone()],
            remote: None,
            repositories: vec![local.clone()],
            kill_within_ms: 25,
            tokens: BTreeMap::new(),
            killed: 0,
            finished: 0,
            left_behind: 0,
        },
        Target {
            label: "path remote",
            dirs: clones.clone(),
            remote: Some(remote.display().to_string()),
            repositories: std::iter::once(remote.clone()).chain(clones).collect(),
            kill_within_ms: 100,
            tokens: BTreeMap::new(),
            killed: 0,
            finished: 0,
            left_behind: 0,
        },
    ];
    for round in 0..rounds {
        for target in &mut targets {
            run_round(target, &mut rng, round);
        }
    }
    let end = T0 + (rounds + 10) * ROUND_MS;
    for target in &targets {
        check(target, end);
    }
}
