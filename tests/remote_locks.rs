//! Two machines' worth of agents, simulated as clones, sharing one remote
//! as the lock authority through `--remote`, over every transport: a path,
//! the same path without the `git` program (opened with gix), `file://`, a
//! git daemon, smart HTTP and HTTPS (lighttpd running git http-backend, the
//! HTTPS one behind basic authentication), and ssh (a throwaway sshd), all
//! on 127.0.0.1. For each: the table of `docs/PROTOCOL.md` §5 across clones, races of
//! clones with exactly one winner that the remote holds, stealers, old
//! holders, gc and conflicting resources; then failures that change
//! nothing.
//!
//! Race rounds: `GRITE_REMOTE_RACE_ROUNDS` (default 50) for a path,
//! `file://` and the direct path; two fifths of that through a server
//! process per connection (daemon, HTTP), which costs about 3× as much on
//! these 2-core machines, and a fifth or a tenth over ssh (ssh:// and
//! scp-style). Set 125 to give every transport but ssh 50.

mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use support::{
    A, B, Daemon, HTTP_PASSWORD, HTTP_USER, HttpServer, Sshd, T0, actor, code, git, grite_command,
    json,
};

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
}

impl Shared {
    fn new(n: usize) -> Shared {
        let tmp = tempfile::tempdir().expect("temp dir");
        let base = tmp.path();
        let remote = support::seeded_remote(base);
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
            remote,
            tmp,
            clones,
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
        support::stored_record(&self.remote, resource)
    }

    /// The remote and every clone are complete repositories: objects went
    /// both ways with their history.
    fn fsck(&self) {
        support::fsck(&self.remote);
        for clone in &self.clones {
            support::fsck(clone);
        }
    }
}

/// One way to reach the shared remote: its URL, the environment grite
/// needs for it, and how many race rounds it gets.
#[derive(Clone)]
struct Via {
    label: &'static str,
    url: String,
    env: Vec<(&'static str, String)>,
    rounds: usize,
}

impl Via {
    fn new(label: &'static str, url: String) -> Via {
        Via {
            label,
            url,
            env: Vec::new(),
            rounds: rounds(),
        }
    }

    fn with_env(mut self, key: &'static str, value: String) -> Via {
        self.env.push((key, value));
        self
    }
}

/// The servers in front of a shared remote (stopped when dropped) and
/// every way to reach it. Servers that are not installed are left out
/// with a notice, unless `GRITE_REQUIRE_SERVERS` is set.
struct Servers {
    vias: Vec<Via>,
    _daemon: Daemon,
    _http: Option<HttpServer>,
    _sshd: Option<Sshd>,
}

impl Servers {
    fn start(shared: &Shared) -> Servers {
        let base = shared.tmp.path();
        let path = shared.remote.display().to_string();
        let mut vias = vec![
            Via::new("path", path.clone()),
            // No `git` program for grite: the remote is opened with gix.
            Via::new("direct", path.clone()).with_env("PATH", String::new()),
            Via::new("file", format!("file://{path}")),
        ];
        let daemon = Daemon::start(base);
        let mut served = vec![Via::new(
            "daemon",
            format!("git://127.0.0.1:{}/remote.git", daemon.port),
        )];
        let http = HttpServer::start(base);
        if let Some(server) = &http {
            served.push(Via::new(
                "http",
                format!("http://127.0.0.1:{}/git/remote.git", server.port),
            ));
            // The user from the URL, the password from git's credential
            // helper, the certificate trusted through GIT_SSL_CAINFO.
            for clone in &shared.clones {
                let helper = format!(
                    "!f() {{ test \"$1\" = get && echo password={HTTP_PASSWORD}; true; }}; f"
                );
                git(clone, &["config", "credential.helper", &helper]);
            }
            served.push(
                Via::new(
                    "https",
                    format!(
                        "https://{HTTP_USER}@127.0.0.1:{}/auth/remote.git",
                        server.tls_port
                    ),
                )
                .with_env("GIT_SSL_CAINFO", server.certificate.display().to_string()),
            );
        }
        for mut via in served {
            via.rounds = rounds() * 2 / 5;
            vias.push(via);
        }
        let keys = base.join("ssh");
        std::fs::create_dir_all(&keys).expect("mkdir");
        let sshd = Sshd::start(&keys);
        if let Some(sshd) = &sshd {
            // Every grite opens two or more ssh sessions (push, fetch), and
            // even multiplexed over one connection each costs sshd about
            // 0.1 s on these machines: fewer rounds over ssh.
            let multiplexed = format!(
                "{} -o ControlMaster=auto -o ControlPersist=30 -o ControlPath={}/mux-%C",
                sshd.ssh_command,
                keys.display()
            );
            let mut ssh = Via::new(
                "ssh",
                format!("ssh://{}@127.0.0.1:{}{path}", sshd.user, sshd.port),
            )
            .with_env("GIT_SSH_COMMAND", multiplexed.clone());
            ssh.rounds = rounds() / 5;
            // scp-style `user@host:path` carries no port; the ssh command does.
            let mut scp = Via::new("scp", format!("{}@127.0.0.1:{path}", sshd.user)).with_env(
                "GIT_SSH_COMMAND",
                format!("{multiplexed} -o Port={}", sshd.port),
            );
            scp.rounds = rounds() / 10;
            vias.extend([ssh, scp]);
        }
        Servers {
            vias,
            _daemon: daemon,
            _http: http,
            _sshd: sshd,
        }
    }
}

/// Runs one grite command in `dir` through `via`; its exit code and JSON.
fn run(dir: &Path, via: &Via, actor: &str, at: u64, args: &[&str]) -> (i32, Value) {
    let out = command(dir, via, actor, at, args.iter().map(|a| a.to_string()))
        .output()
        .expect("grite runs");
    (code(&out), json(&out))
}

fn command(
    dir: &Path,
    via: &Via,
    actor: &str,
    at: u64,
    args: impl IntoIterator<Item = String>,
) -> std::process::Command {
    let mut command = grite_command(dir);
    command
        .envs(via.env.iter().map(|(k, v)| (k, v)))
        .args([
            "--json",
            "--remote",
            &via.url,
            "--actor",
            actor,
            "--now-ms",
            &at.to_string(),
            "lock",
        ])
        .args(args);
    command
}

/// Runs `args(i)` for every clone at once, as actor i + 1, through `via`,
/// at `now`.
fn race(
    shared: &Shared,
    via: &Via,
    now: u64,
    args: impl Fn(usize) -> Vec<String>,
) -> Vec<(i32, Value)> {
    race_as(shared, via, now, |i| (actor(i + 1), args(i)))
}

/// Like [`race`], with the actor chosen per clone.
fn race_as(
    shared: &Shared,
    via: &Via,
    now: u64,
    who_and_args: impl Fn(usize) -> (String, Vec<String>),
) -> Vec<(i32, Value)> {
    let children: Vec<_> = shared
        .clones
        .iter()
        .enumerate()
        .map(|(i, dir)| {
            let (who, args) = who_and_args(i);
            command(dir, via, &who, now, args)
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

/// Rounds of the races beside the plain acquirers' (stealers, old
/// holders, gc, conflicting resources), which each transport runs too.
fn side_rounds(via: &Via) -> usize {
    (via.rounds / 10).max(3)
}

fn round_time(round: usize) -> u64 {
    T0 + round as u64 * (TTL_MS + GRACE_MS + 1_000)
}

/// Checks, after a via's races, that the remote and every clone are
/// complete and that nothing outside `refs/grite/` moved.
fn after_races(shared: &Shared, non_lock: &str, via: &Via) {
    shared.fsck();
    assert_eq!(
        shared.non_lock_refs(),
        non_lock,
        "{}: refs outside refs/grite/ changed",
        via.label
    );
}

#[test]
fn the_table_holds_across_clones_over_every_transport() {
    let shared = Shared::new(2);
    let servers = Servers::start(&shared);
    for (k, via) in servers.vias.iter().enumerate() {
        // Each transport gets its own resource and its own stretch of time.
        table(&shared, via, T0 + k as u64 * 100_000_000);
    }
}

fn table(shared: &Shared, via: &Via, t0: u64) {
    let (one, two) = (&shared.clones[0], &shared.clones[1]);
    let r = &format!("issue:table-{}", via.label);
    let label = via.label;

    let (c, v) = run(one, via, A, t0, &["acquire", r, "--ttl", "60s"]);
    assert_eq!(c, 0, "{label}: {v}");
    let first_token = v["data"]["lock"]["fencing_token"]
        .as_u64()
        .expect("a token");
    assert_eq!(shared.remote_record(r).expect("on the remote")["owner"], A);

    // The other clone, which has not fetched it, is refused and told who
    // holds it.
    let (c, v) = run(two, via, B, t0 + 1, &["acquire", r]);
    assert_eq!(
        (c, v["error"]["code"].as_str()),
        (4, Some("conflict")),
        "{label}: {v}"
    );
    assert_eq!(v["error"]["details"]["holder"]["owner"], A, "{label}");
    let (_, v) = run(two, via, B, t0 + 1, &["status"]);
    let holders: Vec<&Value> = v["data"]["locks"]
        .as_array()
        .expect("locks")
        .iter()
        .filter(|l| l["resource"] == r.as_str())
        .collect();
    assert_eq!(holders.len(), 1, "{label}: {v}");
    assert_eq!(holders[0]["owner"], A, "{label}");
    let (c, _) = run(two, via, B, t0 + 1, &["renew", r]);
    assert_eq!(c, 4, "{label}");
    let (c, _) = run(two, via, B, t0 + 1, &["release", r]);
    assert_eq!(c, 4, "{label}");

    // Renew from the holder's clone, then a steal after expiry and grace.
    let (c, _) = run(one, via, A, t0 + 30_000, &["renew", r, "--ttl", "60s"]);
    assert_eq!(c, 0, "{label}");
    let expiry = t0 + 30_000 + TTL_MS;
    let (c, _) = run(two, via, B, expiry + GRACE_MS - 1, &["acquire", r]);
    assert_eq!(c, 4, "{label}: no steal within the grace period");
    let (c, v) = run(
        two,
        via,
        B,
        expiry + GRACE_MS,
        &["acquire", r, "--ttl", "60s"],
    );
    assert_eq!(
        (c, v["data"]["outcome"].as_str()),
        (0, Some("stolen")),
        "{label}: {v}"
    );
    let stolen = shared.remote_record(r).expect("on the remote");
    assert_eq!(stolen["owner"], B, "{label}");

    // The old holder's clone still has A's lock locally; the remote decides.
    let (c, v) = run(one, via, A, expiry + GRACE_MS + 1, &["renew", r]);
    assert_eq!(c, 4, "{label}: {v}");
    let (c, _) = run(one, via, A, expiry + GRACE_MS + 1, &["release", r]);
    assert_eq!(c, 4, "{label}");
    assert_eq!(
        shared.remote_record(r).expect("on the remote")["nonce"],
        stolen["nonce"],
        "{label}"
    );

    let (c, v) = run(two, via, B, expiry + GRACE_MS + 2, &["release", r]);
    assert_eq!(
        (c, v["data"]["released"].as_bool()),
        (0, Some(true)),
        "{label}"
    );
    let (c, v) = run(one, via, A, expiry + GRACE_MS + 3, &["acquire", r]);
    assert_eq!(c, 0, "{label}: {v}");
    assert_eq!(
        v["data"]["lock"]["fencing_token"].as_u64(),
        Some(first_token + 2),
        "{label}"
    );

    // gc through one clone; sync prunes it from the other.
    let (c, _) = run(one, via, A, expiry + 10_000_000, &["gc"]);
    assert_eq!(c, 0, "{label}");
    let (c, v) = run(two, via, B, expiry + 10_000_000, &["sync"]);
    assert_eq!(c, 0, "{label}: {v}");
    assert_eq!(
        v["data"]["pruned"].as_array().map(Vec::len),
        Some(1),
        "{label}: {v}"
    );
    assert_eq!(
        git(two, &["for-each-ref", "refs/grite/locks/"]),
        "",
        "{label}"
    );
    shared.fsck();
}

#[test]
fn eight_clones_acquiring_over_every_transport_have_one_winner_the_remote_holds() {
    let shared = Shared::new(8);
    let servers = Servers::start(&shared);
    let non_lock = shared.non_lock_refs();
    for via in &servers.vias {
        for round in 0..via.rounds {
            let resource = format!("issue:{}-{round}", via.label);
            let results = race(&shared, via, round_time(round), |_| {
                vec!["acquire".into(), resource.clone()]
            });
            let winner = one_winner(&results, &format!("{} round {round}", via.label));
            let lock = &winner["data"]["lock"];
            for (_, v) in results.iter().filter(|(c, _)| *c != 0) {
                assert_eq!(
                    v["error"]["details"]["holder"]["owner"], lock["owner"],
                    "{} round {round}: {v}",
                    via.label
                );
            }
            assert_eq!(
                shared.remote_record(&resource).expect("on the remote")["nonce"],
                lock["nonce"],
                "{} round {round}",
                via.label
            );
        }
        // Every clone's status shows every lock the races left.
        let results = race(&shared, via, T0, |_| vec!["status".into()]);
        for (c, v) in &results {
            let count = |key: &str| v["data"][key].as_array().map_or(0, Vec::len);
            assert_eq!(
                (*c, count("locks") + count("expired")),
                (0, via.rounds),
                "{}: {v}",
                via.label
            );
        }
        after_races(&shared, &non_lock, via);
        // gc through the same transport clears them all, so that the next
        // transport races on a remote of the same size.
        let (c, v) = run(&shared.clones[0], via, A, T0 + 10_000_000_000, &["gc"]);
        assert_eq!(
            (c, v["data"]["removed"].as_u64()),
            (0, Some(via.rounds as u64)),
            "{}: {v}",
            via.label
        );
        assert!(
            !shared.remote_refs().contains("refs/grite/locks/"),
            "{}: gc left locks on the remote",
            via.label
        );
    }
}

/// Runs `round(shared, via, n)` for each side-race round of every
/// transport, on 8 clones of one remote, and checks the remote and the
/// clones after each transport's rounds. Returns the transports raced.
fn side_races(mut round: impl FnMut(&Shared, &Via, usize)) -> Vec<&'static str> {
    let shared = Shared::new(8);
    let servers = Servers::start(&shared);
    let non_lock = shared.non_lock_refs();
    for via in &servers.vias {
        for n in 0..side_rounds(via) {
            round(&shared, via, n);
        }
        after_races(&shared, &non_lock, via);
    }
    servers.vias.iter().map(|via| via.label).collect()
}

/// Runs one command in the first clone, which must succeed: the setting up
/// of a race.
fn set_up(shared: &Shared, via: &Via, who: &str, at: u64, args: &[&str]) {
    let (c, v) = run(&shared.clones[0], via, who, at, args);
    assert_eq!(c, 0, "{} {args:?}: {v}", via.label);
}

#[test]
fn eight_clones_stealing_an_expired_lock_over_every_transport_have_one_winner() {
    side_races(|shared, via, round| {
        let resource = format!("issue:steal-{}-{round}", via.label);
        let t = round_time(round);
        set_up(
            shared,
            via,
            &actor(99),
            t,
            &["acquire", &resource, "--ttl", "60s"],
        );
        let results = race(shared, via, t + TTL_MS + GRACE_MS, |_| {
            vec!["acquire".into(), resource.clone()]
        });
        let winner = one_winner(&results, &format!("{} steal round {round}", via.label));
        assert_eq!(winner["data"]["outcome"], "stolen", "{}", via.label);
        assert_eq!(
            shared.remote_record(&resource).expect("on the remote")["nonce"],
            winner["data"]["lock"]["nonce"],
            "{}",
            via.label
        );
    });
}

/// Rounds a transport may race again when none of its rounds had a steal
/// win (the renewals, the release and gc can all come first).
const MORE_UNDO_ROUNDS: usize = 20;

#[test]
fn renew_release_and_gc_over_every_transport_never_undo_a_steal() {
    let mut steals = std::collections::BTreeMap::new();
    let raced = side_races(|shared, via, round| {
        let mut stolen = undo_round(shared, via, round);
        // Which process comes first is up to the scheduler: until a steal
        // has won on this transport, its last round is raced again.
        let mut more = 0;
        while round + 1 == side_rounds(via)
            && !stolen
            && steals.get(via.label).is_none_or(|n| *n == 0)
            && more < MORE_UNDO_ROUNDS
        {
            more += 1;
            stolen = undo_round(shared, via, round + more);
        }
        *steals.entry(via.label).or_insert(0) += usize::from(stolen);
    });
    for label in raced {
        assert!(
            steals.get(label).is_some_and(|n| *n > 0),
            "{label}: no round had a steal win: the race never exercised it"
        );
    }
}

/// One round: stealers of an expired lock against its old holder renewing
/// and releasing it and gc. Never two winners, and a winner's lock is
/// what the remote holds. Returns whether a steal won.
fn undo_round(shared: &Shared, via: &Via, round: usize) -> bool {
    let old = actor(99);
    let resource = format!("issue:undo-{}-{round}", via.label);
    let t = round_time(round);
    set_up(
        shared,
        via,
        &old,
        t,
        &["acquire", &resource, "--ttl", "60s"],
    );
    // Clones 0-3 steal; 4-6 are the old holder renewing and releasing
    // (with its own actor id); 7 collects garbage.
    let results = race_as(shared, via, t + TTL_MS + GRACE_MS, |i| match i {
        0..=3 => (actor(i + 1), vec!["acquire".into(), resource.clone()]),
        4 | 6 => (old.clone(), vec!["renew".into(), resource.clone()]),
        5 => (old.clone(), vec!["release".into(), resource.clone()]),
        _ => (actor(50), vec!["gc".into()]),
    });
    let context = format!("{} round {round}", via.label);
    for (c, v) in &results {
        assert!([0, 3, 4].contains(c), "{context}: {v}");
    }
    let acquired: Vec<&Value> = results[..4]
        .iter()
        .filter(|(c, _)| *c == 0)
        .map(|(_, v)| v)
        .collect();
    assert!(
        acquired.len() <= 1,
        "{context}: two acquirers won: {results:#?}"
    );
    let Some(winner) = acquired.first() else {
        return false;
    };
    let stored = shared.remote_record(&resource).expect("on the remote");
    assert_eq!(
        stored["nonce"], winner["data"]["lock"]["nonce"],
        "{context}: {results:#?}"
    );
    assert_eq!(
        stored.get("released"),
        None,
        "{context}: the winner's lock was released"
    );
    winner["data"]["outcome"] == "stolen"
}

#[test]
fn gc_racing_acquirers_over_every_transport_never_removes_a_live_lock() {
    side_races(|shared, via, round| {
        // Garbage for gc: a released lock and an expired one; and the
        // resource the acquirers want, expired too.
        let t = round_time(round);
        let label = via.label;
        let wanted = format!("issue:gc-{label}-{round}");
        let released = format!("issue:gc-released-{label}-{round}");
        let expired = format!("issue:gc-expired-{label}-{round}");
        let old = actor(99);
        for (resource, ttl) in [(&released, "1h"), (&expired, "60s"), (&wanted, "60s")] {
            set_up(shared, via, &old, t, &["acquire", resource, "--ttl", ttl]);
        }
        set_up(shared, via, &old, t, &["release", &released]);
        let old_token = shared.remote_record(&wanted).expect("on the remote")["fencing_token"]
            .as_u64()
            .expect("a token");
        // Clones 0-3 collect garbage while 4-7 take the expired lock.
        let results = race(shared, via, t + TTL_MS + GRACE_MS, |i| match i {
            0..=3 => vec!["gc".into()],
            _ => vec!["acquire".into(), wanted.clone()],
        });
        let context = format!("{label} gc round {round}");
        for (c, v) in &results[..4] {
            assert_eq!(*c, 0, "{context}: gc failed: {v}");
        }
        let winner = one_winner(&results[4..], &context);
        let stored = shared
            .remote_record(&wanted)
            .expect("gc kept the live lock");
        assert_eq!(
            stored["nonce"], winner["data"]["lock"]["nonce"],
            "{context}"
        );
        assert!(
            stored["fencing_token"].as_u64() > Some(old_token),
            "{context}: a fencing token went back after gc: {stored}"
        );
        assert_eq!(shared.remote_record(&released), None, "{context}");
    });
}

#[test]
fn conflicting_resources_over_every_transport_are_never_both_held() {
    // Rounds are numbered on across transports: a `repo:` lock of one
    // must have expired before the next begins.
    let mut step = 0;
    side_races(|shared, via, round| {
        step += 1;
        let label = via.label;
        let pair = if round % 2 == 0 {
            [
                format!("path:{label}{round}/"),
                format!("path:{label}{round}/a.rs"),
            ]
        } else {
            [
                format!("repo:{label}{round}"),
                format!("issue:{label}{round}"),
            ]
        };
        let results = race(shared, via, round_time(step), |i| {
            vec!["acquire".into(), pair[i % 2].clone()]
        });
        one_winner(&results, &format!("{label} conflict round {round}"));
    });
}

/// The conflicting-resources race on a remote opened directly (no `git`
/// program), over more rounds than the side races give it: its lock state
/// is read by listing the remote's refs, which must read the version shards
/// before the lock refs (`docs/PROTOCOL.md` §7). Read the other way round,
/// two racers won within the first 50 rounds, four runs out of four: one
/// listed the locks just before the other's lock ref was renamed, and its
/// shard just after.
#[test]
fn conflicting_resources_on_a_directly_opened_remote_are_never_both_held() {
    let shared = Shared::new(8);
    let via =
        Via::new("direct", shared.remote.display().to_string()).with_env("PATH", String::new());
    for round in 0..rounds().max(40) {
        let pair = [format!("path:d{round}/"), format!("path:d{round}/a.rs")];
        let results = race(&shared, &via, round_time(round), |i| {
            vec!["acquire".into(), pair[i % 2].clone()]
        });
        one_winner(&results, &format!("direct conflict round {round}"));
    }
    shared.fsck();
}

#[test]
fn failures_say_what_happened_and_change_nothing() {
    let shared = Shared::new(1);
    let one = &shared.clones[0];
    let remote = Via::new("path", shared.remote.display().to_string());
    let (c, _) = run(one, &remote, A, T0, &["acquire", "issue:held"]);
    assert_eq!(c, 0);
    let local_before = git(one, &["for-each-ref"]);
    let remote_before = shared.remote_refs();

    let missing = Via::new(
        "missing",
        shared.tmp.path().join("missing.git").display().to_string(),
    );
    let (c, v) = run(one, &missing, A, T0, &["acquire", "issue:1"]);
    support::assert_remote_error(c, &v, "does not appear to be a git repository", "acquire");

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let (c, v) = run(
        one,
        &Via::new("closed", format!("git://127.0.0.1:{closed}/remote.git")),
        A,
        T0,
        &["acquire", "issue:1"],
    );
    support::assert_remote_error(c, &v, "Connection refused", "closed port");

    let (c, v) = run(
        one,
        &Via::new("ftp", "ftp://example.invalid/x".into()),
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
    support::assert_remote_error(c, &v, "hook declined", "acquire");

    assert_eq!(
        git(one, &["for-each-ref"]),
        local_before,
        "local refs changed"
    );
    assert_eq!(shared.remote_refs(), remote_before, "remote refs changed");
}

/// A lock ref whose file in the remote repository holds no object id: git
/// advertises it with the null id. Every command through that remote is a
/// `remote_error` naming the ref (not a failed fetch of the null id), and
/// nothing changes on either side.
#[test]
fn a_broken_lock_ref_on_the_remote_is_named_and_changes_nothing() {
    let shared = Shared::new(1);
    let one = &shared.clones[0];
    let path = Via::new("path", shared.remote.display().to_string());
    let (c, _) = run(one, &path, A, T0, &["acquire", "issue:held"]);
    assert_eq!(c, 0);
    let broken = "refs/grite/locks/0123456789abcdef";
    std::fs::write(shared.remote.join(broken), "not an object id\n").expect("a broken ref");
    let local_before = git(one, &["for-each-ref"]);
    let remote_before = shared.remote_refs();
    let file = Via::new("file", format!("file://{}", shared.remote.display()));
    for via in [&path, &file] {
        for args in [
            &["acquire", "issue:1"][..],
            &["release", "issue:held"],
            &["status"],
        ] {
            let (c, v) = run(one, via, A, T0, args);
            let context = format!("{} {args:?}", via.label);
            support::assert_remote_error(c, &v, broken, &context);
            assert_eq!(v["error"]["details"]["ref"], broken, "{context}");
        }
    }
    assert_eq!(
        git(one, &["for-each-ref"]),
        local_before,
        "local refs changed"
    );
    assert_eq!(shared.remote_refs(), remote_before, "remote refs changed");
    std::fs::remove_file(shared.remote.join(broken)).expect("repaired");
    let (c, v) = run(one, &path, A, T0, &["acquire", "issue:1"]);
    assert_eq!(c, 0, "once repaired: {v}");
}

#[test]
fn http_failures_say_what_happened_change_nothing_and_show_no_secret() {
    let shared = Shared::new(1);
    let one = &shared.clones[0];
    let Some(server) = HttpServer::start(shared.tmp.path()) else {
        return;
    };
    let (port, tls_port) = (server.port, server.tls_port);
    let trusted =
        |via: Via| via.with_env("GIT_SSL_CAINFO", server.certificate.display().to_string());
    let good = trusted(Via::new(
        "good",
        format!("https://{HTTP_USER}:{HTTP_PASSWORD}@127.0.0.1:{tls_port}/auth/remote.git"),
    ));
    let (c, v) = run(one, &good, A, T0, &["acquire", "issue:held"]);
    assert_eq!(c, 0, "{v}");
    let local_before = git(one, &["for-each-ref"]);
    let remote_before = shared.remote_refs();
    // A dumb HTTP server: the files of a repository, no git behind them.
    let dumb = server.document_root.join("dumb.git/info");
    std::fs::create_dir_all(&dumb).expect("mkdir");
    std::fs::write(dumb.join("refs"), "").expect("refs");
    let helper_log = shared.tmp.path().join("helper.log");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();

    let cases = [
        (
            trusted(Via::new(
                "wrong password in the URL",
                format!("https://{HTTP_USER}:wrong-pa55@127.0.0.1:{tls_port}/auth/remote.git"),
            )),
            None,
            "authentication refused",
        ),
        (
            trusted(Via::new(
                "wrong password from a helper",
                format!("https://{HTTP_USER}@127.0.0.1:{tls_port}/auth/remote.git"),
            )),
            Some("wrong-pa55"),
            "authentication refused",
        ),
        (
            trusted(Via::new(
                "no credentials at all",
                format!("https://127.0.0.1:{tls_port}/auth/remote.git"),
            )),
            None,
            "authentication required",
        ),
        // Credentials never travel in clear text, given or asked for.
        (
            Via::new(
                "a password over plain http",
                format!("http://{HTTP_USER}:{HTTP_PASSWORD}@127.0.0.1:{port}/auth/remote.git"),
            ),
            None,
            "does not send credentials over plain http://",
        ),
        (
            Via::new(
                "a password asked for over plain http",
                format!("http://{HTTP_USER}@127.0.0.1:{port}/auth/remote.git"),
            ),
            Some(HTTP_PASSWORD),
            "does not send credentials over plain http://",
        ),
        (
            Via::new(
                "missing repository",
                format!("http://127.0.0.1:{port}/git/missing.git"),
            ),
            None,
            "repository not found",
        ),
        (
            Via::new(
                "untrusted certificate",
                format!("https://127.0.0.1:{tls_port}/git/remote.git"),
            ),
            None,
            "certificate",
        ),
        (
            Via::new("dumb HTTP", format!("http://127.0.0.1:{port}/dumb.git")),
            None,
            "not a smart git server",
        ),
        (
            Via::new(
                "closed port",
                format!("http://127.0.0.1:{closed}/git/remote.git"),
            ),
            None,
            "Connection refused",
        ),
    ];
    for (via, helper_password, expected) in &cases {
        let label = via.label;
        if let Some(password) = helper_password {
            let helper = format!(
                "!f() {{ echo \"$1\" >> '{}'; test \"$1\" = get && echo password={password}; true; }}; f",
                helper_log.display()
            );
            git(one, &["config", "credential.helper", &helper]);
        }
        for args in [
            &["acquire", "issue:1"][..],
            &["release", "issue:held"],
            &["status"],
            &["sync"],
        ] {
            let out = command(one, via, A, T0 + 1, args.iter().map(|a| a.to_string()))
                .env("GIT_TERMINAL_PROMPT", "0")
                .output()
                .expect("grite runs");
            let v = json(&out);
            support::assert_remote_error(code(&out), &v, expected, &format!("{label} {args:?}"));
            for secret in [HTTP_PASSWORD, "wrong-pa55"] {
                assert!(
                    !support::stdout(&out).contains(secret)
                        && !support::stderr(&out).contains(secret),
                    "{label}: a password was shown: {v}"
                );
            }
        }
        if helper_password.is_some() {
            if via.url.starts_with("https://") {
                // git's protocol: the helper is asked, then told to forget
                // what the server refused.
                let log = std::fs::read_to_string(&helper_log).expect("the helper ran");
                assert!(log.starts_with("get\nerase\n"), "{label}: {log}");
            } else {
                assert!(!helper_log.exists(), "{label}: the helper was asked");
            }
            let _ = std::fs::remove_file(&helper_log);
            git(one, &["config", "--unset", "credential.helper"]);
        }
        assert_eq!(
            git(one, &["for-each-ref"]),
            local_before,
            "{label}: local refs changed"
        );
        assert_eq!(
            shared.remote_refs(),
            remote_before,
            "{label}: remote refs changed"
        );
    }
}

#[test]
fn https_trusts_what_git_settings_say() {
    let shared = Shared::new(1);
    let one = &shared.clones[0];
    let Some(server) = HttpServer::start(shared.tmp.path()) else {
        return;
    };
    let https = Via::new(
        "https",
        format!("https://127.0.0.1:{}/git/remote.git", server.tls_port),
    );
    let certificate = server.certificate.display().to_string();
    // The machine's own GIT_SSL_CAINFO, if any, is not ours to inherit.
    let status = |config: &[&str], env: &[(&str, &str)]| {
        let mut command = command(one, &https, A, T0, ["status".to_owned()]);
        command
            .env_remove("GIT_SSL_CAINFO")
            .env_remove("GIT_SSL_NO_VERIFY");
        for (key, value) in env {
            command.env(key, value);
        }
        for setting in config {
            let (key, value) = setting.split_once('=').expect("key=value");
            git(one, &["config", key, value]);
        }
        let out = command.output().expect("grite runs");
        for setting in config {
            let key = setting.split_once('=').expect("key=value").0;
            git(one, &["config", "--unset", key]);
        }
        let v = json(&out);
        (code(&out), v)
    };
    let (c, v) = status(&[], &[]);
    assert_eq!(c, 5, "the system's roots do not know the test CA: {v}");
    for (label, config, env) in [
        (
            "http.sslCAInfo",
            vec![format!("http.sslCAInfo={certificate}")],
            vec![],
        ),
        (
            "GIT_SSL_CAINFO",
            vec![],
            vec![("GIT_SSL_CAINFO", certificate.as_str())],
        ),
        (
            "http.sslVerify=false",
            vec!["http.sslVerify=false".to_owned()],
            vec![],
        ),
        (
            "GIT_SSL_NO_VERIFY",
            vec![],
            vec![("GIT_SSL_NO_VERIFY", "1")],
        ),
    ] {
        let config: Vec<&str> = config.iter().map(String::as_str).collect();
        let (c, v) = status(&config, &env);
        assert_eq!(c, 0, "{label}: {v}");
    }
    // The environment wins over the configuration, as in git.
    let (c, v) = status(
        &[&format!("http.sslCAInfo={certificate}")],
        &[("GIT_SSL_CAINFO", "/etc/hostname")],
    );
    assert_eq!(c, 5, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("/etc/hostname holds no PEM certificate")),
        "{v}"
    );
}

/// A directory holding a `git` that appends the program it is asked to
/// run (`receive-pack`, `upload-pack`, ...) to the returned log and runs
/// the real one: the `PATH` to give grite, and the log.
fn git_that_logs(base: &Path) -> (String, PathBuf) {
    let log = base.join("git-programs.log");
    let wrapper = base.join("bin");
    std::fs::create_dir(&wrapper).expect("mkdir");
    let real_git = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "command -v git"])
            .output()
            .expect("sh")
            .stdout,
    )
    .expect("utf-8");
    let script = wrapper.join("git");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$1\" >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            real_git.trim()
        ),
    )
    .expect("wrapper");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let path = format!(
        "{}:{}",
        wrapper.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    (path, log)
}

/// A remote reached by its path (or `file://`) is on this machine: the
/// locks other clones made are read from its object database, not
/// fetched (in a fleet sharing one remote, nearly every acquire finds
/// some), and decided on exactly as if fetched. Only receive-pack runs.
#[test]
fn locks_on_a_path_remote_are_read_without_starting_upload_pack() {
    let shared = Shared::new(2);
    let (path, log) = git_that_logs(shared.tmp.path());
    let remote = shared.remote.display().to_string();
    for (k, via) in [
        Via::new("path", remote.clone()),
        Via::new("file", format!("file://{remote}")),
    ]
    .into_iter()
    .enumerate()
    {
        let via = via.with_env("PATH", path.clone());
        let label = via.label;
        let (mine, theirs) = (format!("issue:{k}-mine"), format!("issue:{k}-theirs"));
        let (c, v) = run(&shared.clones[0], &via, A, T0, &["acquire", &theirs]);
        assert_eq!(c, 0, "{label}: {v}");
        let _ = std::fs::remove_file(&log);
        let (c, v) = run(
            &shared.clones[1],
            &via,
            B,
            T0 + 1_000,
            &["acquire", &theirs],
        );
        assert_eq!(
            (c, v["error"]["code"].as_str()),
            (4, Some("conflict")),
            "{label}: A's lock, never fetched, is held: {v}"
        );
        assert_eq!(v["error"]["details"]["holder"]["owner"], A, "{label}");
        let (c, v) = run(&shared.clones[1], &via, B, T0 + 2_000, &["acquire", &mine]);
        assert_eq!(c, 0, "{label}: {v}");
        let programs = std::fs::read_to_string(&log).expect("git ran");
        assert!(
            programs.lines().all(|p| p == "receive-pack"),
            "{label}: only receive-pack was started: {programs:?}"
        );
        // The clone's copy follows the remote, objects and all.
        let ref_name = format!(
            "refs/grite/locks/{}",
            grite_locks::lease::ref_hash_of(&theirs)
        );
        assert_eq!(
            git(&shared.clones[1], &["rev-parse", &ref_name]),
            git(&shared.remote, &["rev-parse", &ref_name]),
            "{label}"
        );
    }
    shared.fsck();
}

/// What a path remote cannot give from its object database is fetched
/// instead: here the loose copy of a lock's blob has gone bad beside a
/// good one in a pack, which `git upload-pack` reads. The copy fails on
/// it, the fetch brings the objects, and the decision and the clone's
/// copy are as if nothing had been wrong.
#[test]
fn an_object_a_path_remote_cannot_give_is_fetched_instead() {
    let shared = Shared::new(2);
    let (path, log) = git_that_logs(shared.tmp.path());
    let via = Via::new("path", shared.remote.display().to_string()).with_env("PATH", path);
    let theirs = "issue:theirs";
    let (c, v) = run(&shared.clones[0], &via, A, T0, &["acquire", theirs]);
    assert_eq!(c, 0, "{v}");
    git(&shared.remote, &["repack", "-a", "-q"]);
    let ref_name = format!(
        "refs/grite/locks/{}",
        grite_locks::lease::ref_hash_of(theirs)
    );
    let blob = git(
        &shared.remote,
        &["rev-parse", &format!("{ref_name}:lock.json")],
    );
    let blob = blob.trim();
    let loose = shared
        .remote
        .join("objects")
        .join(&blob[..2])
        .join(&blob[2..]);
    std::fs::set_permissions(&loose, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("chmod");
    std::fs::write(&loose, "damaged").expect("damage the loose copy");
    let _ = std::fs::remove_file(&log);

    let (c, v) = run(&shared.clones[1], &via, B, T0 + 1_000, &["acquire", theirs]);
    assert_eq!(
        (c, v["error"]["code"].as_str()),
        (4, Some("conflict")),
        "A's lock is held: {v}"
    );
    assert_eq!(v["error"]["details"]["holder"]["owner"], A, "{v}");
    let programs = std::fs::read_to_string(&log).expect("git ran");
    assert!(
        programs.lines().any(|p| p == "upload-pack"),
        "the objects were fetched: {programs:?}"
    );
    assert_eq!(
        git(&shared.clones[1], &["cat-file", "-p", blob]),
        git(&shared.clones[0], &["cat-file", "-p", blob]),
        "the clone has the good blob"
    );
    assert_eq!(
        git(&shared.clones[1], &["rev-parse", &ref_name]),
        git(&shared.remote, &["rev-parse", &ref_name])
    );
    std::fs::remove_file(&loose).expect("the damaged copy goes");
    shared.fsck();
}

/// A release depends on its own lock alone (`docs/PROTOCOL.md` §7), and
/// through every transport it reads no other: the lock another clone took
/// meanwhile is neither fetched nor copied, the clone's copy of its ref is
/// left as it was (and `git fsck` stays clean), and the next read that
/// needs it brings it.
#[test]
fn a_release_brings_no_other_lock() {
    let shared = Shared::new(2);
    let servers = Servers::start(&shared);
    let has = |dir: &Path, what: &str| {
        support::git_command(dir)
            .args(["cat-file", "-e", what])
            .status()
            .expect("git runs")
            .success()
    };
    let clone = &shared.clones[1];
    for (k, via) in servers.vias.iter().enumerate() {
        let label = via.label;
        let (mine, theirs) = (format!("issue:{k}-mine"), format!("issue:{k}-theirs"));
        let (c, v) = run(clone, via, B, T0, &["acquire", &mine]);
        assert_eq!(c, 0, "{label}: {v}");
        let (c, v) = run(&shared.clones[0], via, A, T0 + 1_000, &["acquire", &theirs]);
        assert_eq!(c, 0, "{label}: {v}");
        let lock_ref = |resource: &str| {
            format!(
                "refs/grite/locks/{}",
                grite_locks::lease::ref_hash_of(resource)
            )
        };
        let their_commit = git(&shared.remote, &["rev-parse", &lock_ref(&theirs)]);
        let their_commit = their_commit.trim();

        let (c, v) = run(clone, via, B, T0 + 2_000, &["release", &mine]);
        assert_eq!(
            (c, &v["data"]["released"]),
            (0, &Value::from(true)),
            "{label}: {v}"
        );
        assert!(
            !has(clone, their_commit),
            "{label}: the other lock was read"
        );
        assert!(!has(clone, &lock_ref(&theirs)), "{label}: its ref was made");
        assert_eq!(
            git(clone, &["rev-parse", &lock_ref(&mine)]),
            git(&shared.remote, &["rev-parse", &lock_ref(&mine)]),
            "{label}: the released lock is followed"
        );
        support::fsck(clone);

        let (c, v) = run(clone, via, B, T0 + 3_000, &["status"]);
        assert_eq!(c, 0, "{label}: {v}");
        assert_eq!(
            git(clone, &["rev-parse", &lock_ref(&theirs)]).trim(),
            their_commit,
            "{label}: status reads every lock"
        );
    }
    shared.fsck();
}

/// A lock new to the clone whose history is long (renewed for weeks, say)
/// is fetched as one pack, not copied object by object from a path remote,
/// and decided on all the same.
#[test]
fn a_long_history_on_a_path_remote_is_fetched() {
    use std::fmt::Write as _;
    let shared = Shared::new(1);
    let (path, log) = git_that_logs(shared.tmp.path());
    let resource = "issue:long";
    let hash = grite_locks::lease::ref_hash_of(resource);
    let mut stream = String::new();
    // 400 renewals: 1,200 objects, more than one read copies.
    for i in 0..400u64 {
        let json = format!(
            "{{\"owner\":\"{A}\",\"nonce\":\"n\",\"expires_unix_ms\":{},\"resource\":\"{resource}\",\"fencing_token\":1}}\n",
            T0 + TTL_MS + i
        );
        let _ = write!(
            stream,
            "commit refs/grite/locks/{hash}\ncommitter t <t@example.invalid> 1705316400 +0000\ndata 6\nrenew\nM 100644 inline lock.json\ndata {}\n{json}\n",
            json.len()
        );
    }
    support::git_with_input(&shared.remote, &["fast-import", "--quiet"], &stream);
    let via = Via::new("path", shared.remote.display().to_string()).with_env("PATH", path);
    let (c, v) = run(&shared.clones[0], &via, B, T0, &["acquire", resource]);
    assert_eq!(
        (c, v["error"]["code"].as_str()),
        (4, Some("conflict")),
        "the long-lived lock is held: {v}"
    );
    assert_eq!(v["error"]["details"]["holder"]["owner"], A);
    let programs = std::fs::read_to_string(&log).expect("git ran");
    assert!(
        programs.lines().any(|p| p == "upload-pack"),
        "fetched: {programs:?}"
    );
    let ref_name = format!("refs/grite/locks/{hash}");
    assert_eq!(
        git(&shared.clones[0], &["rev-parse", &ref_name]),
        git(&shared.remote, &["rev-parse", &ref_name])
    );
    shared.fsck();
}
