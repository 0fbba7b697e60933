//! A table of bad inputs: each gives its documented exit code, JSON error
//! code and a message that says what is wrong, and leaves every ref exactly
//! as it was.

mod support;

use std::path::Path;

use support::{A, B, Repo, T0, code, stderr};

struct Case {
    name: &'static str,
    setup: fn(&Repo) -> Option<String>,
    args: Vec<String>,
    env: Option<(&'static str, &'static str)>,
    exit: i32,
    code: &'static str,
    needle: &'static str,
}

fn case(
    name: &'static str,
    args: &[&str],
    exit: i32,
    code: &'static str,
    needle: &'static str,
) -> Case {
    Case {
        name,
        setup: |_| None,
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        env: None,
        exit,
        code,
        needle,
    }
}

fn with_setup(mut c: Case, setup: fn(&Repo) -> Option<String>) -> Case {
    c.setup = setup;
    c
}

fn with_env(mut c: Case, key: &'static str, value: &'static str) -> Case {
    c.env = Some((key, value));
    c
}

/// Stores `json` as the lock of `resource` with the git program alone;
/// returns the ref name.
fn plant_lock(repo: &Repo, resource: &str, json: &str) -> String {
    let name = grite_locks::lease::Resource::parse(resource)
        .expect("valid")
        .ref_name();
    plant_ref(repo, &name, json, true);
    name
}

/// A lock that expired long before the tests' instant, for gc to delete
/// (planted again by a second setup: the same ref, the same commit).
fn plant_expired_lock(repo: &Repo) {
    plant_lock(
        repo,
        "issue:expired",
        r#"{"owner":"x","nonce":"n","expires_unix_ms":1,"resource":"issue:expired"}"#,
    );
}

fn plant_ref(repo: &Repo, name: &str, content: &str, as_commit: bool) {
    support::plant_with_git(repo, name, content, as_commit);
}

fn cases() -> Vec<Case> {
    let long = format!("issue:{}", "x".repeat(600));
    let long: &'static str = Box::leak(long.into_boxed_str());
    vec![
        case(
            "empty resource",
            &["acquire", "--resource", ""],
            2,
            "invalid_args",
            "the resource is empty",
        ),
        case(
            "unknown namespace",
            &["acquire", "--resource", "bug:1"],
            2,
            "invalid_args",
            "unknown namespace `bug`",
        ),
        case(
            "no namespace",
            &["acquire", "--resource", "8057324b"],
            2,
            "invalid_args",
            "has no namespace",
        ),
        case(
            "empty name",
            &["acquire", "--resource", "issue:"],
            2,
            "invalid_args",
            "the name after `issue:` is empty",
        ),
        case(
            "path escaping the repository",
            &["acquire", "--resource", "path:../x"],
            2,
            "invalid_args",
            "`..` segment",
        ),
        case(
            "absolute path",
            &["acquire", "--resource", "path:/etc/passwd"],
            2,
            "invalid_args",
            "is absolute",
        ),
        case(
            "control character",
            &["acquire", "--resource", "issue:a\u{1b}b"],
            2,
            "invalid_args",
            "control character",
        ),
        case(
            "over-long resource",
            &["acquire", "--resource", long],
            2,
            "invalid_args",
            "more than the limit of 512",
        ),
        case(
            "repository root as a path",
            &["release", "path:."],
            2,
            "invalid_args",
            "use a `repo:` resource",
        ),
        case(
            "zero TTL",
            &["acquire", "issue:1", "--ttl", "0"],
            2,
            "invalid_args",
            "is zero",
        ),
        case(
            "negative TTL",
            &["acquire", "issue:1", "--ttl", "-5"],
            2,
            "invalid_args",
            "is negative",
        ),
        case(
            "TTL with a unit that is not one",
            &["acquire", "issue:1", "--ttl", "30x"],
            2,
            "invalid_args",
            "is not a duration",
        ),
        case(
            "absurd TTL",
            &["acquire", "issue:1", "--ttl", "99999999999h"],
            2,
            "invalid_args",
            "longer than the maximum",
        ),
        case(
            "empty TTL",
            &["renew", "issue:1", "--ttl", ""],
            2,
            "invalid_args",
            "the TTL is empty",
        ),
        case(
            "TTL in months",
            &["acquire", "issue:1", "--ttl", "1mo"],
            2,
            "invalid_args",
            "`1d`",
        ),
        case(
            "unknown flag",
            &["acquire", "issue:1", "--bogus"],
            2,
            "invalid_args",
            "--bogus",
        ),
        case(
            "missing resource",
            &["acquire", "--ttl", "5m"],
            2,
            "invalid_args",
            "required",
        ),
        case(
            "resource given twice",
            &["acquire", "--resource", "issue:1", "issue:1"],
            2,
            "invalid_args",
            "issue:1 is named twice",
        ),
        case(
            "one path spelled two ways",
            &["release", "path:src", "-r", "path:./src/"],
            2,
            "invalid_args",
            "path:src is named twice",
        ),
        case(
            "unknown command",
            &["frobnicate"],
            2,
            "invalid_args",
            "frobnicate",
        ),
        case(
            "TTL on release",
            &["release", "issue:1", "--ttl", "5m"],
            2,
            "invalid_args",
            "--ttl",
        ),
        case(
            "actor that is not hex",
            &["--actor", "alice", "acquire", "issue:1"],
            2,
            "invalid_args",
            "`alice` is not an actor id",
        ),
        with_env(
            case(
                "GRITE_ACTOR that is not hex",
                &["acquire", "issue:1"],
                2,
                "invalid_args",
                "GRITE_ACTOR",
            ),
            "GRITE_ACTOR",
            "E5F6",
        ),
        with_setup(
            case(
                "corrupt lock.json",
                &["acquire", "issue:1"],
                1,
                "corrupt_lock",
                "not a valid lock record",
            ),
            |repo| {
                Some(plant_lock(
                    repo,
                    "issue:1",
                    "{\"owner\": \"x\", \"nonce\": ",
                ))
            },
        ),
        with_setup(
            case(
                "lock.json of another resource",
                &["release", "issue:1"],
                1,
                "corrupt_lock",
                "found under a ref ending in",
            ),
            |repo| {
                let name = grite_locks::lease::Resource::parse("issue:1")
                    .expect("valid")
                    .ref_name();
                plant_ref(
                    repo,
                    &name,
                    r#"{"owner":"x","nonce":"n","expires_unix_ms":1,"resource":"issue:2"}"#,
                    true,
                );
                Some(name)
            },
        ),
        with_setup(
            case(
                "lock ref pointing at a blob",
                &["renew", "issue:1"],
                1,
                "corrupt_lock",
                "points at a blob",
            ),
            |repo| {
                let name = grite_locks::lease::Resource::parse("issue:1")
                    .expect("valid")
                    .ref_name();
                plant_ref(repo, &name, "{}", false);
                Some(name)
            },
        ),
        with_setup(
            case(
                "corrupt version ref",
                &["acquire", "issue:1"],
                1,
                "corrupt_lock",
                "refs/grite/lock-version",
            ),
            |repo| {
                plant_ref(repo, "refs/grite/lock-version", "not json", false);
                None
            },
        ),
        with_setup(
            case(
                "corrupt version shard",
                &["acquire", "issue:1"],
                1,
                "corrupt_lock",
                "refs/grite/lock-versions/",
            ),
            |repo| {
                plant_ref(repo, &support::shard_ref_of("issue:1"), "[]", true);
                None
            },
        ),
        with_setup(
            case(
                "version marker of another shard count",
                &["acquire", "issue:1"],
                5,
                "repository_error",
                "split into 128 shards",
            ),
            |repo| {
                plant_ref(
                    repo,
                    "refs/grite/lock-version",
                    r#"{"version":"sharded","highest_token":3,"shards":128}"#,
                    false,
                );
                None
            },
        ),
        with_setup(
            case(
                "broken config.toml",
                &["acquire", "issue:1"],
                5,
                "invalid_config",
                "config.toml",
            ),
            |repo| {
                std::fs::write(repo.dir.join(".git/grite/config.toml"), "lock_policy = [\n")
                    .expect("write");
                None
            },
        ),
        with_setup(
            case(
                "unknown lock_policy",
                &["check", "issue:1"],
                5,
                "invalid_config",
                "unknown variant `strict`",
            ),
            |repo| {
                std::fs::write(
                    repo.dir.join(".git/grite/config.toml"),
                    "lock_policy = \"strict\"\n",
                )
                .expect("write");
                None
            },
        ),
        // Only a deletion of a packed ref takes packed-refs.lock (as in
        // git): gc of an expired lock that was packed.
        with_setup(
            case(
                "leftover packed-refs.lock",
                &["gc"],
                5,
                "repository_busy",
                ".git/packed-refs.lock",
            ),
            |repo| {
                let _ = std::fs::remove_file(repo.dir.join(".git/packed-refs.lock"));
                plant_expired_lock(repo);
                repo.git(&["pack-refs", "--all"]);
                std::fs::write(repo.dir.join(".git/packed-refs.lock"), "").expect("write");
                None
            },
        ),
        with_setup(
            case(
                "leftover lock file of the lock ref",
                &["acquire", "issue:1"],
                5,
                "repository_busy",
                ".lock",
            ),
            |repo| {
                let name = grite_locks::lease::Resource::parse("issue:1")
                    .expect("valid")
                    .ref_name();
                let path = repo.dir.join(".git").join(format!("{name}.lock"));
                std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
                std::fs::write(path, "").expect("write");
                None
            },
        ),
        with_setup(
            case(
                "packed-refs.lock left by a killed process",
                &["gc"],
                5,
                "stale_lock_file",
                "remove them: rm -f -- ",
            ),
            |repo| {
                let _ = std::fs::remove_file(repo.dir.join(".git/packed-refs.lock"));
                plant_expired_lock(repo);
                repo.git(&["pack-refs", "--all"]);
                plant_old_file(&repo.dir.join(".git/packed-refs.lock"));
                None
            },
        ),
        with_setup(
            case(
                "version shard lock file left by a killed process",
                &["acquire", "issue:1"],
                5,
                "stale_lock_file",
                ".lock (1m",
            ),
            |repo| {
                let shard = support::shard_ref_of("issue:1");
                plant_old_file(&repo.dir.join(".git").join(format!("{shard}.lock")));
                None
            },
        ),
        with_setup(
            case(
                "lock ref file holding garbage",
                &["acquire", "issue:1"],
                1,
                "corrupt_lock",
                "rm -f -- ",
            ),
            |repo| {
                let name = grite_locks::lease::Resource::parse("issue:1")
                    .expect("valid")
                    .ref_name();
                let path = repo.dir.join(".git").join(&name);
                std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
                std::fs::write(path, "garbage\n").expect("write");
                None
            },
        ),
        with_setup(
            case(
                "lock ref holding the null id",
                &["acquire", "issue:1"],
                1,
                "corrupt_lock",
                "git update-ref -d refs/grite/locks/",
            ),
            |repo| {
                let name = grite_locks::lease::Resource::parse("issue:1")
                    .expect("valid")
                    .ref_name();
                let path = repo.dir.join(".git").join(&name);
                std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
                std::fs::write(path, format!("{}\n", "0".repeat(40))).expect("write");
                None
            },
        ),
    ]
}

/// An empty file last written a minute ago, as a killed process leaves
/// its lock file.
fn plant_old_file(path: &Path) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let file = std::fs::File::create(path).expect("create");
    file.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(60))
        .expect("set mtime");
}

fn run(dir: &Path, c: &Case, json: bool) -> std::process::Output {
    let mut cmd = support::grite_command(dir);
    let now = T0.to_string();
    if json {
        cmd.arg("--json");
    }
    cmd.args(["--now-ms", &now]);
    if c.env.is_none() && !c.args.iter().any(|a| a == "--actor") {
        cmd.args(["--actor", A]);
    }
    cmd.arg("lock").args(&c.args);
    if let Some((k, v)) = c.env {
        cmd.env(k, v);
    }
    cmd.output().expect("grite runs")
}

#[test]
fn every_bad_input_has_its_exit_code_a_clear_message_and_changes_no_ref() {
    let cases = cases();
    assert!(cases.len() >= 25);
    for c in &cases {
        let repo = Repo::new();
        // A lock of someone else that must survive every failure untouched.
        let held = repo.grite_as(B, T0, &["lock", "acquire", "issue:held"]);
        assert_eq!(code(&held), 0);
        (c.setup)(&repo);
        let before = repo.refs();

        let out = run(&repo.dir, c, false);
        // Again, so that lock files planted as fresh are fresh for the
        // second run too (the first one waited for them).
        (c.setup)(&repo);
        assert_eq!(code(&out), c.exit, "{}: {}", c.name, stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(c.needle),
            "{}: message lacks {:?}: {err}",
            c.name,
            c.needle
        );
        assert!(
            !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
            "{}: {err}",
            c.name
        );
        assert!(
            out.stdout.is_empty(),
            "{}: human errors go to stderr",
            c.name
        );

        let out = run(&repo.dir, c, true);
        assert_eq!(code(&out), c.exit, "{} (--json)", c.name);
        let v = support::json(&out);
        assert_eq!(v["ok"], false, "{}", c.name);
        assert_eq!(v["error"]["code"], c.code, "{}: {v}", c.name);
        assert!(
            out.stderr.is_empty(),
            "{}: --json prints only the envelope: {}",
            c.name,
            stderr(&out)
        );

        assert_eq!(repo.refs(), before, "{}: refs changed", c.name);
    }
}

#[test]
fn outside_a_repository_it_says_so_with_exit_code_5() {
    let tmp = tempfile::tempdir().expect("temp dir");
    for args in [
        &["lock", "status"][..],
        &["lock", "acquire", "issue:1"],
        &["lock", "gc"],
    ] {
        let out = support::grite_command(tmp.path())
            .args(["--actor", A])
            .args(args)
            .output()
            .expect("runs");
        assert_eq!(code(&out), 5, "{args:?}");
        assert!(
            stderr(&out).starts_with("Error: Not a git repository\n"),
            "{}",
            stderr(&out)
        );
    }
    let out = support::grite_command(tmp.path())
        .args(["--json", "-C", "no/such/dir", "lock", "status"])
        .output()
        .expect("runs");
    assert_eq!(code(&out), 5);
    assert_eq!(support::json(&out)["error"]["code"], "not_a_repository");
    assert_eq!(
        std::fs::read_dir(tmp.path()).expect("readable").count(),
        0,
        "nothing was created"
    );
}

#[test]
fn status_lists_every_readable_lock_beside_a_corrupt_one() {
    let repo = Repo::new();
    assert_eq!(
        code(&repo.grite_as(B, T0, &["lock", "acquire", "issue:ok"])),
        0
    );
    let name = plant_lock(&repo, "issue:bad", "garbage");
    let out = repo.grite_as(A, T0, &["--json", "lock", "status"]);
    assert_eq!(code(&out), 0);
    let v = support::json(&out);
    assert_eq!(v["data"]["locks"][0]["resource"], "issue:ok");
    assert_eq!(v["data"]["unreadable"][0]["ref"], name);
    let out = repo.grite_as(A, T0, &["lock", "status"]);
    let text = support::stdout(&out);
    assert!(
        text.contains("Unreadable lock refs:") && text.contains(&name),
        "{text}"
    );
    // gc leaves what it cannot read alone.
    let out = repo.grite_as(A, T0 + 999_999_999, &["--json", "lock", "gc"]);
    assert_eq!(support::json(&out)["data"]["unreadable"], 1);
    assert!(repo.lock_refs().contains(&name));
}

#[test]
fn an_unwritable_git_directory_is_an_environment_error_that_changes_nothing() {
    use std::os::unix::fs::PermissionsExt as _;
    let repo = Repo::new();
    let before = repo.refs();
    let is_root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let now = T0.to_string();
    let args = [
        "--json", "--actor", A, "--now-ms", &now, "lock", "acquire", "issue:1",
    ];
    let out = if is_root {
        // Root writes anywhere: run as nobody, to whom the repository is
        // readable but not writable.
        for dir in [repo.tmp.path(), &repo.dir] {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_grite"))
            .args(args)
            .current_dir(&repo.dir)
            .env("HOME", repo.tmp.path())
            .output()
            .expect("setpriv runs")
    } else {
        let objects = repo.dir.join(".git/objects");
        std::fs::set_permissions(&objects, std::fs::Permissions::from_mode(0o555)).expect("chmod");
        let out = support::grite_command(&repo.dir)
            .args(args)
            .output()
            .expect("grite runs");
        std::fs::set_permissions(&objects, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        out
    };
    assert_eq!(code(&out), 5, "{}", support::stdout(&out));
    let v = support::json(&out);
    assert_eq!(v["error"]["code"], "repository_error");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("objects")),
        "{v}"
    );
    assert_eq!(repo.refs(), before);
}
