//! Where the tool runs: subdirectories, `-C DIR`, worktrees (refs and
//! settings are shared), bare repositories; and how the actor is chosen.

mod support;

use support::{A, B, Repo, T0, code, git, grite_command, json};

#[test]
fn works_from_a_subdirectory_and_with_dash_c() {
    let repo = Repo::new();
    let sub = repo.dir.join("deep/sub");
    std::fs::create_dir_all(&sub).expect("mkdir");
    assert_eq!(
        code(&support::grite_in(
            &sub,
            A,
            T0,
            &["lock", "acquire", "issue:1"]
        )),
        0
    );
    let out = grite_command(repo.tmp.path())
        .args(["--json", "-C"])
        .arg(&sub)
        .args(["--now-ms", &T0.to_string(), "lock", "status"])
        .output()
        .expect("runs");
    assert_eq!(json(&out)["data"]["locks"][0]["resource"], "issue:1");
}

#[test]
fn worktrees_share_locks_and_settings() {
    let repo = Repo::new();
    let second = repo.tmp.path().join("second");
    git(
        &repo.dir,
        &[
            "worktree",
            "add",
            "-q",
            second.to_str().expect("utf-8"),
            "-b",
            "second",
        ],
    );

    // The default actor created in one worktree is the one the other uses.
    let first = grite_command(&second)
        .args(["--json", "lock", "acquire", "issue:1"])
        .output()
        .expect("runs");
    assert_eq!(code(&first), 0);
    let owner = json(&first)["data"]["lock"]["owner"].clone();
    let again = grite_command(&repo.dir)
        .args(["--json", "lock", "acquire", "issue:1"])
        .output()
        .expect("runs");
    assert_eq!(json(&again)["data"]["outcome"], "already_held");
    assert_eq!(json(&again)["data"]["lock"]["owner"], owner);
    let config = std::fs::read_to_string(repo.dir.join(".git/grite/config.toml"))
        .expect("config in the common dir");
    assert!(
        config.contains(&format!("default_actor = {owner}")),
        "{config}"
    );
    assert!(
        config.contains("lock_grace"),
        "existing settings are kept: {config}"
    );
}

#[test]
fn works_in_a_bare_repository() {
    let repo = Repo::new();
    git(
        repo.tmp.path(),
        &["clone", "-q", "--bare", "repo", "bare.git"],
    );
    let bare = repo.tmp.path().join("bare.git");
    let out = support::grite_in(&bare, A, T0, &["--json", "lock", "acquire", "repo:deploy"]);
    assert_eq!(code(&out), 0, "{}", support::stdout(&out));
    let out = support::grite_in(&bare, B, T0, &["--json", "lock", "acquire", "issue:9"]);
    assert_eq!(
        code(&out),
        4,
        "repo: blocks everything in a bare repository too"
    );
    let out = grite_command(&bare)
        .args(["lock", "release", "issue:9"])
        .output()
        .expect("runs");
    assert_eq!(code(&out), 0);
    let config = std::fs::read_to_string(bare.join("grite/config.toml"))
        .expect("settings in the bare git dir");
    assert!(config.starts_with("default_actor = "), "{config}");
}

#[test]
fn the_actor_comes_from_the_flag_then_the_environment_then_the_config() {
    let repo = Repo::new();
    let now = T0.to_string();
    let acquire = |resource: &str, env: Option<&str>, flag: Option<&str>| {
        let mut cmd = grite_command(&repo.dir);
        cmd.args(["--json", "--now-ms", &now]);
        if let Some(actor) = flag {
            cmd.args(["--actor", actor]);
        }
        if let Some(actor) = env {
            cmd.env("GRITE_ACTOR", actor);
        }
        cmd.args(["lock", "acquire", resource]);
        json(&cmd.output().expect("runs"))["data"]["lock"]["owner"].clone()
    };
    assert_eq!(acquire("issue:1", Some(B), Some(A)), A);
    assert_eq!(acquire("issue:2", Some(B), None), B);
    let default = acquire("issue:3", None, None);
    assert!(
        default
            .as_str()
            .is_some_and(|a| a.len() == 32 && a != A && a != B)
    );
    assert_eq!(
        acquire("issue:4", None, None),
        default,
        "the default actor is saved and reused"
    );
}

#[test]
fn concurrent_first_runs_agree_on_one_default_actor() {
    let repo = Repo::new();
    let children: Vec<_> = (0..6)
        .map(|i| {
            grite_command(&repo.dir)
                .args(["--json", "lock", "acquire", &format!("issue:{i}")])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("runs")
        })
        .collect();
    let owners: Vec<_> = children
        .into_iter()
        .map(|c| json(&c.wait_with_output().expect("finishes"))["data"]["lock"]["owner"].clone())
        .collect();
    assert!(
        owners.iter().all(|o| *o == owners[0] && o.is_string()),
        "{owners:?}"
    );
}
