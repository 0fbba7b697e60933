//! The compare-and-swap push against real `git receive-pack`: over a local
//! path, `file://` and a `git daemon` on 127.0.0.1. A command with a stale
//! expected value is refused and changes nothing; the remote stays clean.

mod support;

use std::path::{Path, PathBuf};

use gix::ObjectId;
use grite_locks::remote::pack::write_pack;
use grite_locks::remote::protocol::Command;
use grite_locks::remote::push::{PushSession, Verdict};
use grite_locks::remote::transport::Endpoint;
use support::{A, Daemon, Repo, T0, git};

/// The longest wait for a test server.
const IDLE: std::time::Duration = std::time::Duration::from_secs(30);

/// A local repository holding one lock commit, and the objects a remote
/// without it needs.
fn lock_objects(repo: &Repo, resource: &str) -> (ObjectId, Vec<u8>) {
    let out = repo.grite_as(A, T0, &["lock", "acquire", resource]);
    assert_eq!(support::code(&out), 0);
    let name = grite_locks::lease::Resource::parse(resource)
        .expect("valid")
        .ref_name();
    let commit = ObjectId::from_hex(repo.git(&["rev-parse", &name]).trim().as_bytes()).expect("id");
    let local = gix::open(&repo.dir).expect("opens");
    let tree = local
        .find_commit(commit)
        .expect("commit")
        .tree_id()
        .expect("tree")
        .detach();
    let blob = ObjectId::from_hex(
        repo.git(&["rev-parse", &format!("{name}:lock.json")])
            .trim()
            .as_bytes(),
    )
    .expect("id");
    let objects: Vec<(gix::object::Kind, Vec<u8>)> = [commit, tree, blob]
        .into_iter()
        .map(|id| {
            let object = local.find_object(id).expect("object");
            (object.kind, object.data.clone())
        })
        .collect();
    let refs: Vec<(gix::object::Kind, &[u8])> =
        objects.iter().map(|(k, d)| (*k, d.as_slice())).collect();
    (commit, write_pack(&refs).expect("a pack"))
}

fn remote_ref(remote: &Path, name: &str) -> Option<String> {
    let out = support::git_command(remote)
        .args(["rev-parse", "--verify", "-q", name])
        .output()
        .expect("git");
    out.status.success().then(|| {
        String::from_utf8(out.stdout)
            .expect("utf-8")
            .trim()
            .to_owned()
    })
}

fn endpoints(base: &Path, daemon: &Daemon) -> Vec<(String, Endpoint)> {
    let remote = base.join("remote.git");
    vec![
        ("path".into(), Endpoint::Local(remote.clone())),
        (
            "file://".into(),
            Endpoint::parse(&format!("file://{}", remote.display())).expect("valid"),
        ),
        (
            "git daemon".into(),
            Endpoint::parse(&format!("git://127.0.0.1:{}/remote.git", daemon.port)).expect("valid"),
        ),
    ]
}

fn bare_remote(base: &Path) -> PathBuf {
    let remote = base.join("remote.git");
    git(base, &["init", "-q", "--bare", "remote.git"]);
    remote
}

#[test]
fn a_push_creates_updates_and_deletes_only_from_the_expected_value() {
    let repo = Repo::new();
    let base = repo.tmp.path();
    let remote = bare_remote(base);
    let daemon = Daemon::start(base);
    let null = ObjectId::null(gix::hash::Kind::Sha1);
    let local = gix::open(&repo.dir).expect("opens");
    for (i, (label, endpoint)) in endpoints(base, &daemon).into_iter().enumerate() {
        let name = format!("refs/grite/locks/t{i}");
        let (commit, pack) = lock_objects(&repo, &format!("issue:push-{i}"));
        // One whole push session: connect, send, read the report.
        let push = |commands: &[Command], pack: &[u8]| {
            PushSession::connect(&endpoint, &local, IDLE)
                .expect("connects")
                .push(commands, pack)
                .expect("a report")
        };

        let session = PushSession::connect(&endpoint, &local, IDLE)
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(session.advertisement.get(&name), None, "{label}");
        let create = [Command {
            old: null,
            new: commit,
            name: name.clone(),
        }];
        let report = session
            .push(&create, &pack)
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(report.verdict, Verdict::Applied, "{label}");
        assert_eq!(
            remote_ref(&remote, &name),
            Some(commit.to_string()),
            "{label}"
        );

        // Another create of the same ref: it exists now, so this must fail
        // and leave it as it is. (A create whose value is already there
        // succeeds, as in git; lock commits are unique, so only a retry of
        // the same push can meet that.)
        let (other, other_pack) = lock_objects(&repo, &format!("issue:other-{i}"));
        let session = PushSession::connect(&endpoint, &local, IDLE).expect("connects");
        assert_eq!(session.advertisement.get(&name), Some(commit), "{label}");
        let second = [Command {
            old: null,
            new: other,
            name: name.clone(),
        }];
        let report = session.push(&second, &other_pack).expect("a report");
        assert!(
            matches!(&report.verdict, Verdict::NotUpdated(reason) if reason.contains(&name)),
            "{label}: {report:?}"
        );
        assert_eq!(
            remote_ref(&remote, &name),
            Some(commit.to_string()),
            "{label}"
        );

        // A delete that expects another value the server has: refused.
        let beside = format!("{name}-b");
        let report = push(
            &[Command {
                old: null,
                new: other,
                name: beside.clone(),
            }],
            &other_pack,
        );
        assert_eq!(report.verdict, Verdict::Applied, "{label}");
        let stale = [Command {
            old: other,
            new: null,
            name: name.clone(),
        }];
        let report = push(&stale, &[]);
        assert!(
            matches!(&report.verdict, Verdict::NotUpdated(reason) if reason.contains(&name)),
            "{label}: {report:?}"
        );
        assert_eq!(
            remote_ref(&remote, &name),
            Some(commit.to_string()),
            "{label}"
        );

        let delete = [Command {
            old: commit,
            new: null,
            name: name.clone(),
        }];
        let report = push(&delete, &[]);
        assert_eq!(report.verdict, Verdict::Applied, "{label}");
        assert_eq!(remote_ref(&remote, &name), None, "{label}");
    }
    support::fsck(&remote);
}

#[test]
fn an_atomic_push_with_one_stale_command_applies_nothing() {
    let repo = Repo::new();
    let base = repo.tmp.path();
    let remote = bare_remote(base);
    let null = ObjectId::null(gix::hash::Kind::Sha1);
    let (commit, pack) = lock_objects(&repo, "issue:atomic");
    let local = gix::open(&repo.dir).expect("opens");
    let wrong = ObjectId::from_hex(b"1111111111111111111111111111111111111111").expect("id");
    let commands = [
        Command {
            old: null,
            new: commit,
            name: "refs/grite/locks/fresh".into(),
        },
        Command {
            old: wrong,
            new: commit,
            name: "refs/grite/locks/stale".into(),
        },
    ];
    let session =
        PushSession::connect(&Endpoint::Local(remote.clone()), &local, IDLE).expect("connects");
    assert!(session.advertisement.has("atomic"));
    let report = session.push(&commands, &pack).expect("a report");
    assert!(
        matches!(&report.verdict, Verdict::NotUpdated(reason)
            if reason.contains("refs/grite/locks/fresh (atomic transaction failed)")),
        "{report:?}"
    );
    assert_eq!(
        remote_ref(&remote, "refs/grite/locks/fresh"),
        None,
        "atomic: nothing applied"
    );
}

#[test]
fn an_unreachable_remote_is_an_error_not_a_hang() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let missing = tmp.path().join("no-such.git");
    let local = gix::init(tmp.path().join("local")).expect("init");
    assert!(PushSession::connect(&Endpoint::Local(missing), &local, IDLE).is_err());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let closed = Endpoint::parse(&format!("git://127.0.0.1:{port}/x.git")).expect("valid");
    assert!(PushSession::connect(&closed, &local, IDLE).is_err());
}
