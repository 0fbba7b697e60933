//! What a process killed halfway, or a hostile record, leaves behind in one
//! repository, and what the next command makes of it: a fencing token is
//! never handed out twice, a lock file left by a killed process is named
//! at once with the command that removes it, a broken ref is named with a
//! command that works, `-C` never falls through to another repository, and
//! text from a record reaches the terminal escaped.

mod support;

use std::time::{Duration, SystemTime};

use support::{A, B, Repo, T0, code, json, stderr, stdout};

const C: &str = "cccccccccccccccccccccccccccccccc";
const E: &str = "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";

/// An empty file last written a minute ago, as a killed process leaves
/// its lock file.
fn plant_old_file(path: &std::path::Path) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let file = std::fs::File::create(path).expect("create");
    file.set_modified(SystemTime::now() - Duration::from_secs(60))
        .expect("set mtime");
}

/// Runs the shell command a message told the user to run.
fn run_as_told(repo: &Repo, command: &str) {
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(&repo.dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .status()
        .expect("sh runs");
    assert!(status.success(), "`{command}` failed");
}

fn token(v: &serde_json::Value) -> u64 {
    v["data"]["lock"]["fencing_token"]
        .as_u64()
        .unwrap_or_else(|| panic!("no token: {v}"))
}

#[test]
fn a_kill_between_the_two_renames_never_hands_a_token_out_twice() {
    let repo = Repo::new();
    let acquire = |actor: &str, at: u64, resource: &str| {
        let out = repo.grite_as(
            actor,
            at,
            &["--json", "lock", "acquire", resource, "--ttl", "1m"],
        );
        (code(&out), json(&out))
    };
    let shard = support::shard_ref_of("issue:b");
    // Another issue whose acquire advances the same version shard.
    let neighbour = (0..)
        .map(|i| format!("issue:c{i}"))
        .find(|r| support::shard_ref_of(r) == shard)
        .expect("some issue shares the shard");
    let (c, first) = acquire(A, T0, "issue:a");
    assert_eq!((c, token(&first)), (0, 1), "{first}");
    let shard_before = repo.git(&["for-each-ref", "--format=%(objectname)", &shard]);
    let (c, second) = acquire(C, T0, "issue:b");
    assert_eq!(c, 0, "{second}");
    let given = token(&second);

    // What SIGKILL between the transaction's renames leaves: the lock ref
    // moved, its version shard not (its highest token is below the new
    // lock's), and the shard's lock file behind.
    match shard_before.trim() {
        "" => repo.git(&["update-ref", "-d", &shard]),
        before => repo.git(&["update-ref", &shard, before]),
    };
    let leftover = repo.dir.join(".git").join(format!("{shard}.lock"));
    plant_old_file(&leftover);

    // Every write that needs the shard stops at once and says why.
    let (c, refused) = acquire(E, T0 + 1_000, &neighbour);
    assert_eq!(c, 5, "{refused}");
    assert_eq!(refused["error"]["code"], "stale_lock_file", "{refused}");
    let files = &refused["error"]["details"]["files"];
    assert!(
        files[0]["path"]
            .as_str()
            .is_some_and(|p| p.ends_with(&format!("{shard}.lock"))),
        "{refused}"
    );
    let remove_with = files[0]["remove_with"].as_str().expect("a command");

    // Status still works, and lists the file with the same command.
    let out = repo.grite_as(A, T0 + 1_000, &["--json", "lock", "status"]);
    let status = json(&out);
    assert_eq!(status["data"]["locks"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        status["data"]["stale_lock_files"][0]["remove_with"],
        remove_with
    );
    let human = stdout(&repo.grite_as(A, T0 + 1_000, &["lock", "status"]));
    assert!(human.contains("Stale lock files"), "{human}");
    assert!(human.contains(remove_with), "{human}");

    // The user does as told; gc then removes the expired locks, and no
    // later lease of issue:b (or of a resource of its shard) gets a token
    // already given.
    run_as_told(&repo, remove_with);
    assert!(!leftover.exists());
    let after = T0 + 120_000;
    let out = repo.grite_as(A, after, &["--json", "lock", "gc"]);
    assert_eq!(json(&out)["data"]["removed"], 2, "{}", stdout(&out));
    let (c, again) = acquire(E, after, "issue:b");
    assert_eq!(c, 0, "{again}");
    assert!(
        token(&again) > given,
        "token {given} handed out again: {again}"
    );
    let (_, other) = acquire(E, after, &neighbour);
    assert!(token(&other) > token(&again), "{other}");
    repo.fsck();
}

#[test]
fn a_fresh_lock_file_is_waited_for_and_a_stale_one_is_not() {
    let repo = Repo::new();
    let name = grite_locks::lease::Resource::parse("issue:1")
        .expect("valid")
        .ref_name();
    let lock_file = repo.dir.join(".git").join(format!("{name}.lock"));
    std::fs::create_dir_all(lock_file.parent().expect("parent")).expect("mkdir");
    std::fs::write(&lock_file, "").expect("write");
    // A process that finishes while we wait: the acquire goes through.
    let remover = {
        let lock_file = lock_file.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            std::fs::remove_file(lock_file).expect("remove");
        })
    };
    let out = repo.grite_as(A, T0, &["lock", "acquire", "issue:1"]);
    remover.join().expect("remover");
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    plant_old_file(&lock_file);
    let out = repo.grite_as(A, T0, &["lock", "release", "issue:1"]);
    assert_eq!(code(&out), 5);
    let err = stderr(&out);
    assert!(err.contains("Stale lock file"), "{err}");
    assert!(
        err.contains(&format!("rm -f -- {}", lock_file.display())),
        "{err}"
    );
}

/// git takes packed-refs.lock only to delete a packed ref: one that a
/// running `git gc` or `git fetch --prune` holds, or a killed git left,
/// stops no `git update-ref`, and stops no acquire, renew or release in a
/// repository whose refs (the lock's own among them) are packed. gc, which
/// deletes packed refs, waits for it, and names a stale one with the
/// command that removes it.
#[test]
fn a_held_packed_refs_lock_stops_only_the_deletion_of_packed_refs() {
    let repo = Repo::new();
    assert_eq!(
        code(&repo.grite_as(A, T0, &["lock", "acquire", "issue:1"])),
        0
    );
    repo.git(&["pack-refs", "--all"]);
    let packed_lock = repo.dir.join(".git/packed-refs.lock");
    plant_old_file(&packed_lock);
    // B's acquire is refused as a conflict, as it would be without the
    // lock file: A renewed issue:1.
    for (actor, at, args, exit) in [
        (A, T0 + 1_000, &["lock", "renew", "issue:1"][..], 0),
        (A, T0 + 2_000, &["lock", "acquire", "issue:2"], 0),
        (B, T0 + 3_000, &["lock", "acquire", "issue:1"], 4),
        (A, T0 + 4_000, &["lock", "release", "issue:2"], 0),
    ] {
        let out = repo.grite_as(actor, at, args);
        assert_eq!(code(&out), exit, "{args:?}: {}", stderr(&out));
    }
    let status = json(&repo.grite_as(A, T0 + 5_000, &["--json", "lock", "status"]));
    let holders: Vec<(&str, &str)> = status["data"]["locks"]
        .as_array()
        .expect("locks")
        .iter()
        .map(|l| {
            (
                l["resource"].as_str().expect("resource"),
                l["owner"].as_str().expect("owner"),
            )
        })
        .collect();
    assert!(holders.contains(&("issue:1", A)), "{status}");
    // The refs moved as git moves them: loose files over the packed ones.
    repo.fsck();
    assert!(
        repo.git(&["show-ref"]).contains("refs/grite/locks/"),
        "readable by git"
    );

    let later = T0 + 24 * 3_600_000;
    let out = repo.grite_as(A, later, &["lock", "gc"]);
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("rm -f -- {}", packed_lock.display())),
        "{err}"
    );
    std::fs::remove_file(&packed_lock).expect("removed");
    let out = repo.grite_as(A, later, &["lock", "gc"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(repo.git(&["for-each-ref", "refs/grite/locks/"]), "");
    repo.fsck();
}

#[test]
fn a_garbage_ref_file_is_named_with_a_command_that_removes_it() {
    let repo = Repo::new();
    assert_eq!(
        code(&repo.grite_as(A, T0, &["lock", "acquire", "issue:ok"])),
        0
    );
    let name = grite_locks::lease::Resource::parse("issue:bad")
        .expect("valid")
        .ref_name();
    std::fs::write(repo.dir.join(".git").join(&name), "garbage\n").expect("write");

    // Status lists the good lock and the bad ref, and gc leaves it alone.
    let out = repo.grite_as(A, T0, &["--json", "lock", "status"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let status = json(&out);
    assert_eq!(status["data"]["locks"][0]["resource"], "issue:ok");
    assert_eq!(status["data"]["unreadable"][0]["ref"], name.as_str());
    let remove_with = status["data"]["unreadable"][0]["remove_with"]
        .as_str()
        .expect("a command")
        .to_owned();
    let out = repo.grite_as(A, T0, &["--json", "lock", "gc"]);
    assert_eq!(json(&out)["data"]["unreadable"], 1);

    // Its own resource is refused with the same command, which works
    // where `git update-ref -d` does not.
    let out = repo.grite_as(B, T0, &["--json", "lock", "acquire", "issue:bad"]);
    let refused = json(&out);
    assert_eq!(refused["error"]["code"], "corrupt_lock", "{refused}");
    assert_eq!(
        refused["error"]["details"]["remove_with"],
        remove_with.as_str()
    );
    run_as_told(&repo, &remove_with);
    let out = repo.grite_as(B, T0, &["lock", "acquire", "issue:bad"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    repo.fsck();
}

#[test]
fn a_directory_whose_git_file_points_nowhere_is_not_a_repository() {
    let repo = Repo::new();
    let sub = repo.dir.join("sub");
    std::fs::create_dir(&sub).expect("mkdir");
    std::fs::write(sub.join(".git"), "gitdir: /nonexistent\n").expect("write");
    let before = repo.refs();
    for args in [
        vec!["-C", "sub", "lock", "acquire", "issue:1"],
        vec!["lock", "acquire", "issue:1"],
    ] {
        let dir = if args[0] == "-C" { &repo.dir } else { &sub };
        let out = support::grite_command(dir)
            .args(["--actor", A])
            .args(&args)
            .output()
            .expect("grite runs");
        assert_eq!(code(&out), 5, "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("Not a git repository"), "{err}");
        assert!(
            err.contains("sub/.git is not a usable git directory"),
            "{err}"
        );
    }
    assert_eq!(repo.refs(), before, "the parent repository was written");
}

#[test]
fn text_from_a_record_reaches_the_terminal_escaped_and_the_conflict_check_agrees() {
    let repo = Repo::new();
    // A live lock written by a hostile tool: escape sequences in its owner
    // and in its resource, which is therefore not a valid resource.
    let resource = "path:src\u{1b}[2J";
    let owner = "\u{1b}]0;pwned\u{7}\u{1b}[2Jevil";
    let record = serde_json::json!({
        "owner": owner,
        "nonce": "n",
        "expires_unix_ms": T0 + 600_000,
        "resource": resource,
    });
    let name = format!(
        "refs/grite/locks/{}",
        grite_locks::lease::ref_hash_of(resource)
    );
    support::plant_with_git(&repo, &name, &record.to_string(), true);

    let out = repo.grite_as(A, T0, &["lock", "status"]);
    let shown = stdout(&out);
    assert!(
        !shown.contains('\u{1b}') && !shown.contains('\u{7}'),
        "{shown:?}"
    );
    assert!(shown.contains("path:src\\u{1b}[2J"), "{shown}");
    // Machines get the text as it is, JSON-escaped.
    let out = repo.grite_as(A, T0, &["--json", "lock", "status"]);
    assert_eq!(json(&out)["data"]["locks"][0]["owner"], owner);

    // Status shows it as a live lock, so a repo: lock is refused by it, and
    // the refusal is escaped too.
    let out = repo.grite_as(B, T0, &["lock", "acquire", "repo:deploy"]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(!err.contains('\u{1b}'), "{err:?}");
    assert!(err.contains("\\u{1b}]0;pwned"), "{err}");
    // An issue lock does not overlap a path lock.
    let out = repo.grite_as(B, T0, &["lock", "acquire", "issue:1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn a_huge_lock_json_is_refused_before_it_is_read_into_memory() {
    let repo = Repo::new();
    let resource = "issue:huge";
    let name = grite_locks::lease::Resource::parse(resource)
        .expect("valid")
        .ref_name();
    // 20 MB of a record that never ends, as a hostile tool could store.
    let mut huge = String::from("{\"owner\":\"");
    huge.push_str(&"x".repeat(20_000_000));
    support::plant_with_git(&repo, &name, &huge, true);
    let out = repo.grite_as(A, T0, &["--json", "lock", "status"]);
    let status = json(&out);
    let reason = status["data"]["unreadable"][0]["reason"]
        .as_str()
        .unwrap_or_else(|| panic!("not listed as unreadable: {status}"));
    assert!(reason.contains("allocation limit"), "{reason}");
    let out = repo.grite_as(B, T0, &["--json", "lock", "acquire", resource]);
    assert_eq!(json(&out)["error"]["code"], "corrupt_lock");
}
