//! `grite lock run`, `--wait` and locks taken all together or not at all,
//! with real processes in real repositories (and through real servers):
//! the command's environment and exit status, Ctrl-C passed on, a stolen
//! lease stopping the command, waiters whose commands never overlap, and
//! random pairs of resources never half granted.
//!
//! Rounds: `GRITE_RUN_ROUNDS` (default 20 for two waiters, a fifth of it
//! for eight) and `GRITE_PAIR_ROUNDS` (default 100 locally, a fifth of it
//! through a path, a tenth through `git daemon`).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use serde_json::Value;
use support::{A, B, Daemon, Repo, T0, actor, code, git, grite_command, json, stderr};

/// `grite lock run ARGS` in `dir` as `actor` at `T0`.
fn run(dir: &Path, actor: &str, args: &[&str]) -> std::process::Command {
    let mut command = grite_command(dir);
    command
        .args(["--actor", actor, "--now-ms", &T0.to_string(), "lock", "run"])
        .args(args);
    command
}

#[test]
fn the_command_sees_its_lease_and_its_status_comes_back() {
    let repo = Repo::new();
    let out = run(&repo.dir, A, &["-r", "issue:1", "-r", "path:src", "--ttl", "1m", "--"])
        .args(["sh", "-c", "echo \"$GRITE_ACTOR|$GRITE_LOCK_RESOURCE|$GRITE_LOCK_TOKEN|$GRITE_LOCK_TOKENS|$GRITE_LOCK_EXPIRES_UNIX_MS\"; exit 3"])
        .output()
        .expect("grite runs");
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let seen = support::stdout(&out);
    assert_eq!(
        seen.trim(),
        format!(
            "{A}|issue:1 path:src|1|issue:1=1 path:src=2|{}",
            T0 + 60_000
        )
    );
    // Released afterwards, with the tokens kept in the released records.
    let status = json(&repo.grite_as(A, T0, &["--json", "lock", "status"]));
    assert_eq!(status["data"]["locks"], serde_json::json!([]), "{status}");
    assert_eq!(status["data"]["released"].as_array().map(Vec::len), Some(2));

    let out = run(
        &repo.dir,
        A,
        &["issue:1", "--", "sh", "-c", "kill -TERM $$"],
    )
    .output()
    .expect("grite runs");
    assert_eq!(code(&out), 128 + 15, "a signal comes back as 128 + N");
    let out = run(&repo.dir, A, &["--json", "issue:1", "--", "true"])
        .output()
        .expect("grite runs");
    assert_eq!(code(&out), 0);
    let v = json(&out);
    assert_eq!(
        (
            v["data"]["exit_code"].as_i64(),
            v["data"]["released"].as_bool()
        ),
        (Some(0), Some(true)),
        "{v}"
    );
}

#[test]
fn ctrl_c_reaches_the_command_and_the_locks_are_released() {
    let repo = Repo::new();
    let marker = repo.tmp.path().join("interrupted");
    let mut child = run(&repo.dir, A, &["issue:1", "--"])
        .args([
            "sh",
            "-c",
            &format!(
                "trap 'echo > {}; exit 130' INT; echo ready; while true; do sleep 0.05; done",
                marker.display()
            ),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("grite starts");
    wait_for_line(&mut child, "ready");
    signal(&child, "INT");
    let status = child.wait().expect("grite ends");
    assert_eq!(status.code(), Some(130));
    assert!(marker.exists(), "the command did not get SIGINT");
    let status = json(&repo.grite_as(A, T0, &["--json", "lock", "status"]));
    assert_eq!(status["data"]["locks"], serde_json::json!([]), "{status}");
}

/// Ctrl-C at any instant of `lock run`, from its start to its command's,
/// here and through a path and `git daemon`: before the locks are taken
/// grite ends at once; once its acquire has begun to write (a ref
/// transaction, a push), the signal waits, and what was taken is released
/// (`src/cli/signals.rs`). No round leaves the lock held. Rounds:
/// `GRITE_RUN_SIGNAL_ROUNDS` (default 60 here, a third of it through each
/// remote), spread over the time a `lock run -- true` takes.
#[test]
fn ctrl_c_at_any_instant_of_lock_run_leaves_no_lock_held() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let daemon = Daemon::start(tmp.path());
    let rounds = support::rounds_from_env("GRITE_RUN_SIGNAL_ROUNDS", 60);
    let at = T0.to_string();
    for place in places(tmp.path(), 1, &daemon) {
        let label = place.label;
        let run = |resource: &str, command: &[&str]| {
            let mut run = place.command(0, A, &["--now-ms", &at, "run", resource, "--"]);
            run.args(command)
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            run
        };
        let started = std::time::Instant::now();
        let out = run("issue:calibrate", &["true"])
            .output()
            .expect("grite runs");
        assert_eq!(code(&out), 0, "{label}");
        let whole = started.elapsed();
        let rounds = if place.remote.is_some() {
            rounds / 3
        } else {
            rounds
        };
        let (mut before_the_command, mut in_the_command) = (0, 0);
        for round in 0..rounds {
            let resource = format!("issue:r{round}");
            let child = run(&resource, &["sleep", "10"])
                .spawn()
                .expect("grite starts");
            std::thread::sleep(whole.mul_f64((round % 12) as f64 / 10.0));
            signal(&child, "INT");
            let status = child.wait_with_output().expect("grite ends").status;
            match status.code() {
                // Ended of the signal itself, the command not started.
                None => before_the_command += 1,
                Some(130) => in_the_command += 1,
                other => panic!("{label}, round {round}: exit {other:?}"),
            }
            let held = holders(&place, T0);
            assert!(
                held.iter().all(|(r, _)| *r != resource),
                "{label}, round {round}: {resource} is still held: {held:?}"
            );
        }
        eprintln!("{label}: {before_the_command} ended before the command, {in_the_command} in it");
        assert!(
            before_the_command > 0 && in_the_command > 0,
            "{label}: every signal came at one moment"
        );
        for repository in &place.repositories {
            assert_eq!(support::lock_files(repository), 0, "{label}");
            support::fsck(repository);
        }
    }
}

#[test]
fn a_stolen_lease_stops_the_command_before_it_runs_on_without_the_lock() {
    let repo = Repo::new();
    let marker = repo.tmp.path().join("terminated");
    let mut child = run(
        &repo.dir,
        A,
        &[
            "issue:1",
            "--ttl",
            "60s",
            "--renew-every",
            "1s",
            "--kill-after",
            "2s",
            "--",
        ],
    )
    .args([
        "sh",
        "-c",
        &format!(
            "trap 'echo > {}; exit 143' TERM; echo ready; while true; do sleep 0.05; done",
            marker.display()
        ),
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("grite starts");
    wait_for_line(&mut child, "ready");
    // Another actor whose clock is past the lease and its grace steals it.
    let stolen = repo.grite_as(B, T0 + 66_000, &["--json", "lock", "acquire", "issue:1"]);
    assert_eq!(json(&stolen)["data"]["outcome"], "stolen");
    let out = child.wait_with_output().expect("grite ends");
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    assert!(marker.exists(), "the command did not get SIGTERM");
    let err = stderr(&out);
    assert!(
        err.contains("Lease lost") && err.contains(&format!("Taken by: {B}")),
        "{err}"
    );
    // The thief's lock is untouched.
    assert_eq!(
        support::stored_record(&repo.dir, "issue:1").expect("stored")["owner"],
        B
    );
}

#[test]
fn what_run_is_refused_changes_nothing() {
    let repo = Repo::new();
    let before = repo.refs();
    for (args, exit, needle) in [
        (&["issue:1"][..], 2, "COMMAND"),
        (
            &[
                "issue:1",
                "--renew-every",
                "1h",
                "--ttl",
                "30m",
                "--",
                "true",
            ],
            2,
            "not shorter than the TTL",
        ),
        (
            &["issue:1", "--kill-after", "soon", "--", "true"],
            2,
            "not a duration",
        ),
        (
            &[
                "issue:1",
                "--ttl",
                "5s",
                "--kill-after",
                "10s",
                "--",
                "true",
            ],
            2,
            "no time within the TTL",
        ),
        (
            &["issue:1", "--wait=never", "--", "true"],
            2,
            "not a duration",
        ),
        (
            &["issue:1", "-r", "issue:1", "--", "true"],
            2,
            "named twice",
        ),
        (&["path:src", "path:src/", "--", "true"], 2, "named twice"),
    ] {
        let out = run(&repo.dir, A, args).output().expect("grite runs");
        assert_eq!(code(&out), exit, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
        assert_eq!(repo.refs(), before, "{args:?}");
    }
    let out = run(&repo.dir, A, &["issue:1", "--", "/no/such/program"])
        .output()
        .expect("runs");
    assert_eq!(code(&out), 127, "{}", stderr(&out));
    let status = json(&repo.grite_as(A, T0, &["--json", "lock", "status"]));
    assert_eq!(
        status["data"]["locks"],
        serde_json::json!([]),
        "nothing left locked: {status}"
    );
}

/// Reads the child's standard output up to a line `line`.
fn wait_for_line(child: &mut Child, line: &str) {
    use std::io::BufRead as _;
    let stdout = child.stdout.as_mut().expect("piped");
    let mut reader = std::io::BufReader::new(stdout);
    let mut text = String::new();
    while reader.read_line(&mut text).expect("reads") > 0 {
        if text.trim() == line {
            return;
        }
        text.clear();
    }
    panic!("the command never said {line}");
}

fn signal(child: &Child, name: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// Where waiters meet: a repository and, optionally, a remote for them.
struct Place {
    label: &'static str,
    dirs: Vec<PathBuf>,
    remote: Option<String>,
    /// Repositories to fsck afterwards.
    repositories: Vec<PathBuf>,
}

fn places(tmp: &Path, clones: usize, daemon: &Daemon) -> Vec<Place> {
    git(tmp, &["init", "-q", "-b", "main", "local"]);
    let remote = support::seeded_remote(tmp);
    let clones: Vec<PathBuf> = (0..clones)
        .map(|i| {
            let name = format!("clone{i}");
            git(tmp, &["clone", "-q", "remote.git", &name]);
            tmp.join(name)
        })
        .collect();
    let with = |label, url: String| Place {
        label,
        dirs: clones.clone(),
        remote: Some(url),
        repositories: std::iter::once(remote.clone())
            .chain(clones.clone())
            .collect(),
    };
    vec![
        Place {
            label: "local",
            dirs: vec![tmp.join("local")],
            remote: None,
            repositories: vec![tmp.join("local")],
        },
        with("path", remote.display().to_string()),
        with(
            "daemon",
            format!("git://127.0.0.1:{}/remote.git", daemon.port),
        ),
    ]
}

impl Place {
    fn command(&self, i: usize, actor: &str, args: &[&str]) -> std::process::Command {
        let dir = &self.dirs[i % self.dirs.len()];
        let mut command = grite_command(dir);
        command.args(["--actor", actor]);
        if let Some(remote) = &self.remote {
            command.args(["--remote", remote]);
        }
        command.arg("lock").args(args);
        command
    }
}

/// `waiters` processes at once run a command under one lock with
/// `--wait`; each command writes when it starts and ends to one file, and
/// no command may start before the previous one ended.
fn no_two_commands_overlap(place: &Place, waiters: usize, rounds: usize, log: &Path) {
    for round in 0..rounds {
        let _ = std::fs::remove_file(log);
        let resource = format!("issue:turns-{round}");
        let body = format!(
            "echo start $GRITE_LOCK_TOKEN >> {log}; sleep 0.05; echo end $GRITE_LOCK_TOKEN >> {log}",
            log = log.display()
        );
        let children: Vec<Child> = (0..waiters)
            .map(|i| {
                place
                    .command(
                        i,
                        &actor(i + 1),
                        &[
                            "run",
                            &resource,
                            "--ttl",
                            "1m",
                            "--wait=2m",
                            "--",
                            "sh",
                            "-c",
                            &body,
                        ],
                    )
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("grite starts")
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().expect("grite ends");
            assert_eq!(
                code(&out),
                0,
                "{} round {round}: {}",
                place.label,
                stderr(&out)
            );
        }
        let lines = std::fs::read_to_string(log).expect("the commands ran");
        let lines: Vec<&str> = lines.lines().collect();
        assert_eq!(lines.len(), 2 * waiters, "{}: {lines:?}", place.label);
        for pair in lines.chunks(2) {
            let (start, end) = (pair[0], pair[1]);
            assert!(
                start.starts_with("start ") && end == start.replacen("start", "end", 1),
                "{} round {round}: two commands overlapped: {lines:?}",
                place.label
            );
        }
    }
}

#[test]
fn waiters_take_turns_and_their_commands_never_overlap() {
    let rounds = support::rounds_from_env("GRITE_RUN_ROUNDS", 20);
    let tmp = tempfile::tempdir().expect("temp dir");
    let daemon = Daemon::start(tmp.path());
    let log = tmp.path().join("turns.log");
    for place in places(tmp.path(), 8, &daemon) {
        no_two_commands_overlap(&place, 2, rounds, &log);
        no_two_commands_overlap(&place, 8, (rounds / 5).max(1), &log);
        for repo in &place.repositories {
            support::fsck(repo);
        }
    }
}

/// The owner of `resource`'s live lock, as stored (through `place`).
fn holders(place: &Place, at: u64) -> Vec<(String, String)> {
    let out = place
        .command(0, A, &["--json", "--now-ms", &at.to_string(), "status"])
        .output()
        .expect("grite runs");
    let v: Value = json(&out);
    v["data"]["locks"]
        .as_array()
        .expect("locks")
        .iter()
        .map(|l| {
            (
                l["resource"].as_str().expect("text").to_owned(),
                l["owner"].as_str().expect("text").to_owned(),
            )
        })
        .collect()
}

#[test]
fn random_pairs_are_granted_whole_or_not_at_all() {
    const RESOURCES: [&str; 4] = ["issue:1", "issue:2", "path:src", "path:src/a.rs"];
    let rounds = support::rounds_from_env("GRITE_PAIR_ROUNDS", 100);
    let tmp = tempfile::tempdir().expect("temp dir");
    let daemon = Daemon::start(tmp.path());
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for (k, place) in places(tmp.path(), 8, &daemon).into_iter().enumerate() {
        let rounds = match place.label {
            "local" => rounds,
            "path" => (rounds / 5).max(1),
            _ => (rounds / 10).max(1),
        };
        for round in 0..rounds {
            // Every round after the last one's leases ran out (the path
            // and the daemon share one remote).
            let at = T0 + (k as u64 * 1_000 + round as u64) * 100_000;
            let asks: Vec<(String, [&str; 2])> = (0..8)
                .map(|i| {
                    let first = (next() % 4) as usize;
                    let second = (first + 1 + (next() % 3) as usize) % 4;
                    (actor(i + 1), [RESOURCES[first], RESOURCES[second]])
                })
                .collect();
            let children: Vec<Child> = asks
                .iter()
                .enumerate()
                .map(|(i, (who, pair))| {
                    place
                        .command(
                            i,
                            who,
                            &[
                                "--json",
                                "--now-ms",
                                &at.to_string(),
                                "acquire",
                                pair[0],
                                pair[1],
                                "--ttl",
                                "60s",
                            ],
                        )
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .spawn()
                        .expect("grite starts")
                })
                .collect();
            let granted: Vec<bool> = children
                .into_iter()
                .map(|child| {
                    let out = child.wait_with_output().expect("grite ends");
                    assert!(
                        [0, 4].contains(&code(&out)),
                        "{} round {round}: {}",
                        place.label,
                        support::stdout(&out)
                    );
                    code(&out) == 0
                })
                .collect();
            let held = holders(&place, at);
            for ((who, pair), granted) in asks.iter().zip(&granted) {
                for resource in pair {
                    let holds = held.iter().any(|(r, o)| r == resource && o == who);
                    assert_eq!(
                        holds, *granted,
                        "{} round {round}: {who} asked for {pair:?}, granted {granted}, holds {resource} {holds}: {held:?}",
                        place.label
                    );
                }
            }
            let by_resource: std::collections::BTreeMap<&str, usize> =
                held.iter().fold(Default::default(), |mut counts, (r, _)| {
                    *counts.entry(r.as_str()).or_default() += 1;
                    counts
                });
            assert!(by_resource.values().all(|n| *n == 1), "{held:?}");
        }
        for repo in &place.repositories {
            support::fsck(repo);
        }
    }
}
