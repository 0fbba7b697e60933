//! Interop with plain git: a lock written by the `git` program alone is
//! read, shown and respected; our locks read with `git cat-file`; and
//! `git fetch`/`git push` of `refs/grite/locks/*` carry them between clones.

mod support;

use support::{A, B, Repo, T0, code, git, json, stored_record};

const R: &str = "issue:8057324b";

/// Writes a four-field, pretty-printed lock with plumbing only, as other
/// grite tools do; returns the commit id.
fn git_written_lock(repo: &Repo, owner: &str, expires: u64) -> String {
    let record = format!(
        "{{\n    \"owner\": \"{owner}\",\n    \"nonce\": \"written-by-git\",\n    \"expires_unix_ms\": {expires},\n    \"resource\": \"{R}\"\n}}\n"
    );
    let name = grite_locks::lease::Resource::parse(R)
        .expect("valid")
        .ref_name();
    support::plant_with_git(repo, &name, &record, true)
}

#[test]
fn a_lock_written_by_git_alone_is_shown_and_respected() {
    let repo = Repo::new();
    let commit = git_written_lock(&repo, B, T0 + 60_000);

    let out = repo.grite_as(A, T0, &["--json", "lock", "status"]);
    let v = json(&out);
    assert_eq!(v["data"]["locks"][0]["owner"], B);
    assert_eq!(v["data"]["locks"][0]["fencing_token"], 0);
    let text = support::stdout(&repo.grite_as(A, T0, &["lock", "status"]));
    assert!(
        text.contains("issue:8057324b  bbbbbbbb  expires in 1m"),
        "{text}"
    );

    let before = repo.refs();
    let out = repo.grite_as(A, T0 + 1, &["--json", "lock", "acquire", R]);
    assert_eq!(code(&out), 4);
    assert_eq!(json(&out)["error"]["details"]["holder"]["owner"], B);
    assert_eq!(repo.refs(), before);

    // After expiry and grace it is taken over, and the history continues
    // from the commit git wrote.
    let out = repo.grite_as(A, T0 + 65_000, &["--json", "lock", "acquire", R]);
    assert_eq!(
        json(&out)["data"]["outcome"],
        "stolen",
        "{}",
        support::stdout(&out)
    );
    let name = grite_locks::lease::Resource::parse(R)
        .expect("valid")
        .ref_name();
    assert_eq!(repo.git(&["rev-parse", &format!("{name}^")]).trim(), commit);
    repo.fsck();
}

#[test]
fn our_locks_read_with_git_cat_file_as_four_field_records() {
    let repo = Repo::new();
    assert_eq!(
        code(&repo.grite_as(A, T0, &["lock", "acquire", R, "--ttl", "10m"])),
        0
    );
    let record = stored_record(&repo.dir, R).expect("lock.json readable by git");
    assert_eq!(record["owner"], A);
    assert_eq!(record["resource"], R);
    assert_eq!(record["expires_unix_ms"], T0 + 600_000);
    assert!(record["nonce"].as_str().is_some_and(|n| n.len() == 32));
    let name = grite_locks::lease::Resource::parse(R)
        .expect("valid")
        .ref_name();
    let log = repo.git(&["log", "--format=%s", &name]);
    assert_eq!(log, "lock acquire: issue:8057324b\n");
}

#[test]
fn git_push_and_fetch_carry_locks_between_clones() {
    let origin = Repo::new();
    let base = origin.tmp.path();
    git(base, &["clone", "-q", "--bare", "repo", "origin.git"]);
    git(base, &["clone", "-q", "origin.git", "one"]);
    git(base, &["clone", "-q", "origin.git", "two"]);
    let (one, two) = (base.join("one"), base.join("two"));

    let out = support::grite_in(&one, A, T0, &["lock", "acquire", R, "--ttl", "30m"]);
    assert_eq!(code(&out), 0);
    git(
        &one,
        &[
            "push",
            "-q",
            "origin",
            "refs/grite/locks/*:refs/grite/locks/*",
        ],
    );
    git(
        &two,
        &[
            "fetch",
            "-q",
            "origin",
            "refs/grite/locks/*:refs/grite/locks/*",
        ],
    );

    let out = support::grite_in(&two, B, T0 + 1_000, &["--json", "lock", "status"]);
    assert_eq!(json(&out)["data"]["locks"][0]["owner"], A);
    let out = support::grite_in(&two, B, T0 + 1_000, &["--json", "lock", "acquire", R]);
    assert_eq!(code(&out), 4);
    assert_eq!(json(&out)["error"]["details"]["holder"]["owner"], A);

    // A release in one travels back the same way.
    assert_eq!(
        code(&support::grite_in(
            &one,
            A,
            T0 + 2_000,
            &["lock", "release", R]
        )),
        0
    );
    git(
        &one,
        &[
            "push",
            "-q",
            "origin",
            "refs/grite/locks/*:refs/grite/locks/*",
        ],
    );
    git(
        &two,
        &[
            "fetch",
            "-q",
            "origin",
            "+refs/grite/locks/*:refs/grite/locks/*",
        ],
    );
    let out = support::grite_in(&two, B, T0 + 3_000, &["--json", "lock", "acquire", R]);
    assert_eq!(code(&out), 0, "{}", support::stdout(&out));
    assert_eq!(
        json(&out)["data"]["lock"]["fencing_token"],
        2,
        "the released record carried the token"
    );
}

/// `git pack-refs` (which `git gc` and git's automatic maintenance run)
/// moves loose lock refs into packed-refs while grite reads them: every
/// lock must be seen in one place or the other. Reading packed-refs before
/// the loose files, as gix's ref iteration does, misses the refs packed in
/// between: status lost locks in the first round or two. A `repo:` acquire
/// reads every lock the same way (it was not seen granted, the window being
/// narrow, but nothing else stood in its way); an `issue:` acquire of a
/// held resource lists the names, then reads its own ref. Each round, one
/// lock among a hundred loose ones is live (those of earlier rounds have
/// expired by then). Rounds: `GRITE_RACE_ROUNDS` / 10 (default 20).
#[test]
fn no_lock_is_missed_while_git_packs_the_refs() {
    const HOUR: u64 = 3_600_000;
    let repo = Repo::new();
    let rounds = support::rounds_from_env("GRITE_RACE_ROUNDS", 200).div_ceil(10);
    let mut planted = 0;
    for round in 0..rounds {
        let round_ms = u64::try_from(round).expect("a small number") * HOUR;
        let now = T0 + round_ms + 60_000;
        let mut plant = |kind: &str| {
            support::plant_locks(&repo.dir, &format!("{kind}{round}-old"), 99, B, T0 - HOUR);
            support::plant_locks(&repo.dir, &format!("{kind}{round}-live"), 1, B, now + HOUR);
            planted += 100;
        };
        let pack_refs = || {
            support::git_command(&repo.dir)
                .args(["pack-refs", "--all"])
                .spawn()
                .expect("git pack-refs")
        };

        // A repo: acquire reads every lock; an issue: acquire lists the
        // names and reads its own ref.
        for (kind, resource) in [
            ("repo", "repo:all".to_owned()),
            ("issue", format!("issue:issue{round}-live-0")),
        ] {
            plant(kind);
            let before = repo.refs();
            let packing = pack_refs();
            let out = repo.grite_as(A, now, &["--json", "lock", "acquire", &resource]);
            assert!(wait_for(packing), "round {round}: git pack-refs failed");
            assert_eq!(
                code(&out),
                4,
                "round {round}: {resource} granted beside a live lock: {}",
                support::stdout(&out)
            );
            assert_eq!(repo.refs(), before, "round {round}: a refusal moved a ref");
        }

        plant("status");
        let packing = pack_refs();
        let status = json(&repo.grite_as(A, now, &["--json", "lock", "status"]));
        assert!(wait_for(packing), "round {round}: git pack-refs failed");
        let count = |list: &str| status["data"][list].as_array().map_or(0, Vec::len);
        assert_eq!(
            (count("locks"), count("locks") + count("expired")),
            (3, planted),
            "round {round}: status saw other than the 3 live locks among {planted}"
        );
        assert_eq!(status["data"]["unreadable"], serde_json::json!([]));
    }
    repo.fsck();
}

fn wait_for(mut child: std::process::Child) -> bool {
    child.wait().is_ok_and(|status| status.success())
}
