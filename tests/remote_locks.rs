//! Two machines' worth of agents, simulated as clones, sharing one remote
//! as the lock authority through `--remote`: SPEC section 4's table across
//! clones, races of clones with exactly one winner that the remote holds,
//! and failures that change nothing. Over a path, `file://` and a git
//! daemon on 127.0.0.1. Race rounds: `GRITE_REMOTE_RACE_ROUNDS` (default 50).

mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use support::{A, B, Daemon, Sshd, T0, actor, code, git, git_command, grite_command, json};

const TTL_MS: u64 = 60_000;
const GRACE_MS: u64 = 5_000;

fn rounds() -> usize {
    support::rounds_from_env("GRITE_REMOTE_RACE_ROUNDS", 50)
}

/// A bare remote with one branch and `n` clones of it.
struct Shared {
    tmp: tempfile::TempDir,
    remote: PathBuf,
    clones: Vec<PathBuf>,
    /// Environment variables for the grite processes (`GIT_SSH_COMMAND`
    /// for ssh, an empty `PATH` to run without the `git` program).
    env: Vec<(String, String)>,
}

impl Shared {
    fn new(n: usize) -> Shared {
        let tmp = tempfile::tempdir().expect("temp dir");
        let base = tmp.path();
        git(base, &["init", "-q", "-b", "main", "seed"]);
        git(
            &base.join("seed"),
            &["commit", "-q", "--allow-empty", "-m", "init"],
        );
        git(base, &["clone", "-q", "--bare", "seed", "remote.git"]);
        let clones = (0..n)
            .map(|i| {
                let name = format!("clone{i}");
                git(base, &["clone", "-q", "remote.git", &name]);
                let dir = base.join(&name);
                std::fs::create_dir_all(dir.join(".git/grite")).expect("mkdir");
                std::fs::write(dir.join(".git/grite/config.toml"), "lock_grace = \"5s\"\n")
                    .expect("config");
                dir
            })
            .collect();
        Shared {
            remote: base.join("remote.git"),
            tmp,
            clones,
            env: Vec::new(),
        }
    }

    fn remote_refs(&self) -> String {
        git(
            &self.remote,
            &["for-each-ref", "--format=%(objectname) %(refname)"],
        )
    }

    fn non_lock_refs(&self) -> String {
        self.remote_refs()
            .lines()
            .filter(|l| !l.contains(" refs/grite/"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn remote_record(&self, resource: &str) -> Option<Value> {
        let name = grite_locks::lease::Resource::parse(resource)
            .expect("valid")
            .ref_name();
        let out = git_command(&self.remote)
            .args(["cat-file", "-p", &format!("{name}:lock.json")])
            .output()
            .expect("git");
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).expect("JSON"))
    }

    fn fsck(&self) {
        support::fsck(&self.remote);
    }
}

#[test]
fn without_git_on_path_a_local_remote_is_opened_directly() {
    let mut shared = Shared::new(8);
    // No `git` program for grite: the remote path is opened with gix.
    shared.env = vec![("PATH".into(), String::new())];
    let remote = shared.remote.display().to_string();
    race_acquirers(&shared, &remote, rounds() / 2, "direct");
    // A steal, an old holder refused, and gc through the same path.
    let resource = "issue:direct-table";
    let results = race(&shared, &remote, T0, |i| match i {
        0 => vec![
            "acquire".into(),
            resource.into(),
            "--ttl".into(),
            "60s".into(),
        ],
        _ => vec!["status".into()],
    });
    assert_eq!(results[0].0, 0, "{:?}", results[0]);
    let later = T0 + TTL_MS + GRACE_MS;
    let results = race(&shared, &remote, later, |i| match i {
        1 => vec!["acquire".into(), resource.into()],
        _ => vec!["status".into()],
    });
    assert_eq!(
        results[1].1["data"]["outcome"], "stolen",
        "{:?}",
        results[1]
    );
    let results = race(&shared, &remote, later + 1, |i| match i {
        0 => vec!["renew".into(), resource.into()],
        _ => vec!["status".into()],
    });
    assert_eq!(results[0].0, 4, "{:?}", results[0]);
    assert_eq!(
        shared.remote_record(resource).expect("on the remote")["owner"],
        actor(2)
    );
    shared.fsck();
    // Every clone's own repository is complete too (objects were copied
    // with their history).
    for clone in &shared.clones {
        support::fsck(clone);
    }
}

#[test]
fn eight_clones_racing_over_ssh_have_one_winner() {
    let mut shared = Shared::new(8);
    let keys = shared.tmp.path().join("ssh");
    std::fs::create_dir_all(&keys).expect("mkdir");
    let Some(sshd) = Sshd::start(&keys) else {
        return;
    };
    shared.env = vec![("GIT_SSH_COMMAND".into(), sshd.ssh_command.clone())];
    let remote = format!(
        "ssh://{}@127.0.0.1:{}{}",
        sshd.user,
        sshd.port,
        shared.remote.display()
    );
    // Every grite here opens two ssh connections (push and fetch), about
    // 0.4 s of key exchange each on these machines: fewer rounds.
    race_acquirers(&shared, &remote, rounds() / 10, "ssh");
    // Every clone's status through ssh shows every lock the races left.
    let results = race(&shared, &remote, T0, |_| vec!["status".into()]);
    for (c, v) in &results {
        let count = |key: &str| v["data"][key].as_array().map_or(0, Vec::len);
        assert_eq!(
            (*c, count("locks") + count("expired")),
            (0, rounds() / 10),
            "{v}"
        );
    }
    // scp-style `user@host:path` carries no port; the ssh command does.
    shared.env = vec![(
        "GIT_SSH_COMMAND".into(),
        format!("{} -o Port={}", sshd.ssh_command, sshd.port),
    )];
    let scp = format!("{}@127.0.0.1:{}", sshd.user, shared.remote.display());
    let (c, v) = race(&shared, &scp, T0, |_| vec!["status".into()]).remove(0);
    assert_eq!(c, 0, "{v}");
    assert_eq!(
        v["data"]["locks"].as_array().map(Vec::len),
        Some(rounds() / 10),
        "{v}"
    );
}

fn run(dir: &Path, remote: &str, actor: &str, at: u64, args: &[&str]) -> (i32, Value) {
    let now = at.to_string();
    let out = grite_command(dir)
        .args([
            "--json", "--remote", remote, "--actor", actor, "--now-ms", &now, "lock",
        ])
        .args(args)
        .output()
        .expect("grite runs");
    (code(&out), json(&out))
}

#[test]
fn the_table_holds_across_clones_through_the_remote() {
    let shared = Shared::new(2);
    let remote = shared.remote.display().to_string();
    let (one, two) = (&shared.clones[0], &shared.clones[1]);
    let r = "issue:8057324b";

    let (c, v) = run(one, &remote, A, T0, &["acquire", r, "--ttl", "60s"]);
    assert_eq!(c, 0, "{v}");
    assert_eq!(shared.remote_record(r).expect("on the remote")["owner"], A);

    // The other clone, which has never fetched, is refused and told who holds it.
    let (c, v) = run(two, &remote, B, T0 + 1, &["acquire", r]);
    assert_eq!(
        (c, v["error"]["code"].as_str()),
        (4, Some("conflict")),
        "{v}"
    );
    assert_eq!(v["error"]["details"]["holder"]["owner"], A);
    let (_, v) = run(two, &remote, B, T0 + 1, &["status"]);
    assert_eq!(v["data"]["locks"][0]["owner"], A);
    let (c, _) = run(two, &remote, B, T0 + 1, &["renew", r]);
    assert_eq!(c, 4);
    let (c, _) = run(two, &remote, B, T0 + 1, &["release", r]);
    assert_eq!(c, 4);

    // Renew from the holder's clone, then a steal after expiry and grace.
    let (c, _) = run(one, &remote, A, T0 + 30_000, &["renew", r, "--ttl", "60s"]);
    assert_eq!(c, 0);
    let expiry = T0 + 30_000 + TTL_MS;
    let (c, _) = run(two, &remote, B, expiry + GRACE_MS - 1, &["acquire", r]);
    assert_eq!(c, 4, "no steal within the grace period");
    let (c, v) = run(
        two,
        &remote,
        B,
        expiry + GRACE_MS,
        &["acquire", r, "--ttl", "60s"],
    );
    assert_eq!(
        (c, v["data"]["outcome"].as_str()),
        (0, Some("stolen")),
        "{v}"
    );
    let stolen = shared.remote_record(r).expect("on the remote");
    assert_eq!(stolen["owner"], B);

    // The old holder's clone still has A's lock locally; the remote decides.
    let (c, v) = run(one, &remote, A, expiry + GRACE_MS + 1, &["renew", r]);
    assert_eq!(c, 4, "{v}");
    let (c, _) = run(one, &remote, A, expiry + GRACE_MS + 1, &["release", r]);
    assert_eq!(c, 4);
    assert_eq!(
        shared.remote_record(r).expect("on the remote")["nonce"],
        stolen["nonce"]
    );

    let (c, v) = run(two, &remote, B, expiry + GRACE_MS + 2, &["release", r]);
    assert_eq!((c, v["data"]["released"].as_bool()), (0, Some(true)));
    let (c, v) = run(one, &remote, A, expiry + GRACE_MS + 3, &["acquire", r]);
    assert_eq!(c, 0, "{v}");
    assert_eq!(v["data"]["lock"]["fencing_token"], 3);

    // sync prunes what the remote no longer has.
    let (c, _) = run(one, &remote, A, expiry + 10_000_000, &["gc"]);
    assert_eq!(c, 0);
    let (c, v) = run(two, &remote, B, expiry + 10_000_000, &["sync"]);
    assert_eq!(c, 0, "{v}");
    assert_eq!(v["data"]["pruned"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(git(two, &["for-each-ref", "refs/grite/locks/"]), "");
    shared.fsck();
}

/// Runs `args(i)` for every clone at once, through `remote`, at `now`.
/// Runs `args(i)` for every clone at once, as actor i + 1, through
/// `remote`, at `now`.
fn race(
    shared: &Shared,
    remote: &str,
    now: u64,
    args: impl Fn(usize) -> Vec<String>,
) -> Vec<(i32, Value)> {
    race_as(shared, remote, now, |i| (actor(i + 1), args(i)))
}

/// Like [`race`], with the actor chosen per clone.
fn race_as(
    shared: &Shared,
    remote: &str,
    now: u64,
    who_and_args: impl Fn(usize) -> (String, Vec<String>),
) -> Vec<(i32, Value)> {
    let now = now.to_string();
    let children: Vec<_> = shared
        .clones
        .iter()
        .enumerate()
        .map(|(i, dir)| {
            let (who, args) = who_and_args(i);
            let mut command = grite_command(dir);
            command.envs(shared.env.iter().map(|(k, v)| (k, v)));
            command
                .args([
                    "--json", "--remote", remote, "--actor", &who, "--now-ms", &now, "lock",
                ])
                .args(args)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("grite starts")
        })
        .collect();
    children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().expect("grite ends");
            (code(&out), json(&out))
        })
        .collect()
}

/// Exactly one winner; every loser refused with `conflict` naming it.
fn one_winner(results: &[(i32, Value)], context: &str) -> Value {
    let winners: Vec<&Value> = results
        .iter()
        .filter(|(c, _)| *c == 0)
        .map(|(_, v)| v)
        .collect();
    assert_eq!(winners.len(), 1, "{context}: {results:#?}");
    for (c, v) in results.iter().filter(|(c, _)| *c != 0) {
        assert_eq!(*c, 4, "{context}: {v}");
    }
    winners[0].clone()
}

fn round_time(round: usize) -> u64 {
    T0 + round as u64 * (TTL_MS + GRACE_MS + 1_000)
}

fn race_acquirers(shared: &Shared, remote: &str, rounds: usize, label: &str) {
    let non_lock = shared.non_lock_refs();
    for round in 0..rounds {
        let resource = format!("issue:{label}-{round}");
        let results = race(shared, remote, round_time(round), |_| {
            vec!["acquire".into(), resource.clone()]
        });
        let winner = one_winner(&results, &format!("{label} round {round}"));
        let lock = &winner["data"]["lock"];
        for (_, v) in results.iter().filter(|(c, _)| *c != 0) {
            assert_eq!(
                v["error"]["details"]["holder"]["owner"], lock["owner"],
                "{label} round {round}: {v}"
            );
        }
        assert_eq!(
            shared.remote_record(&resource).expect("on the remote")["nonce"],
            lock["nonce"]
        );
    }
    shared.fsck();
    assert_eq!(
        shared.non_lock_refs(),
        non_lock,
        "refs outside refs/grite/ changed"
    );
}

#[test]
fn eight_clones_stealing_an_expired_lock_through_the_remote_have_one_winner() {
    let shared = Shared::new(8);
    let remote = shared.remote.display().to_string();
    for round in 0..rounds() / 2 {
        let resource = format!("issue:steal-{round}");
        let (c, _) = run(
            &shared.clones[0],
            &remote,
            &actor(99),
            round_time(round),
            &["acquire", &resource, "--ttl", "60s"],
        );
        assert_eq!(c, 0);
        let at = round_time(round) + TTL_MS + GRACE_MS;
        let results = race(&shared, &remote, at, |_| {
            vec!["acquire".into(), resource.clone()]
        });
        let winner = one_winner(&results, &format!("steal round {round}"));
        assert_eq!(winner["data"]["outcome"], "stolen");
        assert_eq!(
            shared.remote_record(&resource).expect("on the remote")["nonce"],
            winner["data"]["lock"]["nonce"]
        );
    }
    shared.fsck();
}

#[test]
fn renew_release_and_gc_through_the_remote_never_undo_a_steal() {
    let shared = Shared::new(8);
    let remote = shared.remote.display().to_string();
    let old = actor(99);
    let mut steals = 0;
    for round in 0..rounds() / 2 {
        let resource = format!("issue:undo-{round}");
        let (c, _) = run(
            &shared.clones[0],
            &remote,
            &old,
            round_time(round),
            &["acquire", &resource, "--ttl", "60s"],
        );
        assert_eq!(c, 0);
        // Clones 0-3 steal; 4-6 are the old holder renewing and releasing
        // (with its own actor id); 7 collects garbage.
        let at = round_time(round) + TTL_MS + GRACE_MS;
        let results = race_as(&shared, &remote, at, |i| match i {
            0..=3 => (actor(i + 1), vec!["acquire".into(), resource.clone()]),
            4 | 6 => (old.clone(), vec!["renew".into(), resource.clone()]),
            5 => (old.clone(), vec!["release".into(), resource.clone()]),
            _ => (actor(50), vec!["gc".into()]),
        });
        for (c, v) in &results {
            assert!([0, 3, 4].contains(c), "round {round}: {v}");
        }
        let acquired: Vec<&Value> = results[..4]
            .iter()
            .filter(|(c, _)| *c == 0)
            .map(|(_, v)| v)
            .collect();
        assert!(
            acquired.len() <= 1,
            "round {round}: two acquirers won: {results:#?}"
        );
        if let Some(winner) = acquired.first() {
            steals += usize::from(winner["data"]["outcome"] == "stolen");
            let stored = shared.remote_record(&resource).expect("on the remote");
            assert_eq!(
                stored["nonce"], winner["data"]["lock"]["nonce"],
                "round {round}: {results:#?}"
            );
            assert_eq!(
                stored.get("released"),
                None,
                "round {round}: the winner's lock was released"
            );
        }
    }
    assert!(
        steals > 0,
        "no round had a steal win: the race never exercised it"
    );
    shared.fsck();
}

#[test]
fn conflicting_resources_through_the_remote_are_never_both_held() {
    let shared = Shared::new(8);
    let remote = shared.remote.display().to_string();
    for round in 0..rounds() / 2 {
        let pair = if round % 2 == 0 {
            [format!("path:r{round}/"), format!("path:r{round}/a.rs")]
        } else {
            [format!("repo:x{round}"), format!("issue:y{round}")]
        };
        let results = race(&shared, &remote, round_time(round), |i| {
            vec!["acquire".into(), pair[i % 2].clone()]
        });
        one_winner(&results, &format!("conflict round {round}"));
    }
    shared.fsck();
}

#[test]
fn eight_clones_racing_through_a_path_have_one_winner_the_remote_holds() {
    let shared = Shared::new(8);
    let remote = shared.remote.display().to_string();
    race_acquirers(&shared, &remote, rounds(), "path");
}

#[test]
fn eight_clones_racing_through_file_urls_and_git_daemon_have_one_winner() {
    let shared = Shared::new(8);
    race_acquirers(
        &shared,
        &format!("file://{}", shared.remote.display()),
        rounds() / 2,
        "file",
    );
    let daemon = Daemon::start(shared.tmp.path());
    race_acquirers(
        &shared,
        &format!("git://127.0.0.1:{}/remote.git", daemon.port),
        rounds() / 2,
        "daemon",
    );
}

#[test]
fn failures_say_what_happened_and_change_nothing() {
    let shared = Shared::new(1);
    let one = &shared.clones[0];
    let remote = shared.remote.display().to_string();
    let (c, _) = run(one, &remote, A, T0, &["acquire", "issue:held"]);
    assert_eq!(c, 0);
    let local_before = git(one, &["for-each-ref"]);
    let remote_before = shared.remote_refs();

    let missing = shared.tmp.path().join("missing.git").display().to_string();
    let (c, v) = run(one, &missing, A, T0, &["acquire", "issue:1"]);
    assert_eq!(
        (c, v["error"]["code"].as_str()),
        (5, Some("remote_error")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("does not appear to be a git repository")),
        "{v}"
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let (c, v) = run(
        one,
        &format!("git://127.0.0.1:{closed}/remote.git"),
        A,
        T0,
        &["acquire", "issue:1"],
    );
    assert_eq!(
        (c, v["error"]["code"].as_str()),
        (5, Some("remote_error")),
        "{v}"
    );

    let (c, v) = run(
        one,
        "ftp://example.invalid/x",
        A,
        T0,
        &["acquire", "issue:1"],
    );
    assert_eq!(
        (c, v["error"]["code"].as_str()),
        (2, Some("invalid_args")),
        "{v}"
    );

    // A hook on the server that rejects every push.
    let hook = shared.remote.join("hooks/pre-receive");
    std::fs::write(&hook, "#!/bin/sh\necho 'locks are frozen' >&2\nexit 1\n").expect("hook");
    std::process::Command::new("chmod")
        .args(["+x", hook.to_str().expect("utf-8")])
        .status()
        .expect("chmod");
    let (c, v) = run(one, &remote, A, T0, &["acquire", "issue:1"]);
    assert_eq!(
        (c, v["error"]["code"].as_str()),
        (5, Some("remote_error")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("hook declined")),
        "{v}"
    );

    assert_eq!(
        git(one, &["for-each-ref"]),
        local_before,
        "local refs changed"
    );
    assert_eq!(shared.remote_refs(), remote_before, "remote refs changed");
}
