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
