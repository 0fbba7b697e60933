//! The git hooks of `grite lock hooks install`, run by real `git commit`
//! and `git push`: `lock_policy` applied to the staged paths and to the
//! paths of pushed commits, `core.hooksPath`, hooks of other tools refused
//! or chained and put back, and `lock check` with several resources,
//! `--staged` and `--paths-from-stdin`.
//!
//! The hooks run grite on the real clock, so the locks here are taken on
//! it too, for an hour.

mod support;

use std::path::Path;
use std::process::Output;

use support::{A, B, Repo, code, git_command, grite_command, json, stderr, stdout};

/// `grite ARGS` in `dir` as `actor`, on the real clock.
fn grite(dir: &Path, actor: &str, args: &[&str]) -> Output {
    grite_command(dir)
        .args(["--actor", actor])
        .args(args)
        .output()
        .expect("grite runs")
}

fn ok(out: Output) -> Output {
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    out
}

/// `git ARGS` in `dir` as `actor` (the hooks read `GRITE_ACTOR`), with the
/// environment grite's tests give grite.
fn git_as(dir: &Path, actor: &str, args: &[&str]) -> Output {
    git_command(dir)
        .env("GRITE_ACTOR", actor)
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "gc.auto")
        .env("GIT_CONFIG_VALUE_0", "0")
        .args(args)
        .output()
        .expect("git runs")
}

fn policy(dir: &Path, value: &str) {
    ok(grite(dir, A, &["config", "set", "lock_policy", value]));
}

fn stage(dir: &Path, path: &str) {
    let file = dir.join(path);
    std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
    let old = std::fs::read_to_string(&file).unwrap_or_default();
    std::fs::write(&file, format!("{old}x\n")).expect("write");
    support::git(dir, &["add", path]);
}

#[test]
fn pre_commit_applies_the_policy_to_the_staged_paths() {
    let repo = Repo::new();
    let out = ok(grite(
        &repo.dir,
        A,
        &["lock", "hooks", "install", "--pre-commit"],
    ));
    assert!(
        stdout(&out).starts_with("Installed the pre-commit hook\n"),
        "{}",
        stdout(&out)
    );
    let hook = repo.dir.join(".git/hooks/pre-commit");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&hook).expect("hook").permissions().mode();
        assert_eq!(mode & 0o111, 0o111, "executable");
    }
    assert!(!repo.dir.join(".git/hooks/pre-push").exists());
    ok(grite(
        &repo.dir,
        B,
        &["lock", "acquire", "path:src/", "--ttl", "1h"],
    ));

    policy(&repo.dir, "require");
    stage(&repo.dir, "src/auth.rs");
    let out = git_as(&repo.dir, A, &["commit", "-q", "-m", "auth"]);
    assert_ne!(code(&out), 0, "the commit is stopped");
    let err = stderr(&out);
    assert!(
        err.contains("Locked: path:src")
            && err.contains(&format!("Owner: {B}"))
            && err.contains("Expires: ")
            && err.contains("Blocks: path:src/auth.rs"),
        "{err}"
    );
    assert_eq!(repo.git(&["rev-list", "--count", "HEAD"]).trim(), "1");

    // The holder itself commits freely.
    let out = git_as(&repo.dir, B, &["commit", "-q", "-m", "auth by its holder"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // A path the lock does not cover passes, silently.
    stage(&repo.dir, "docs/guide.md");
    let out = git_as(&repo.dir, A, &["commit", "-q", "-m", "docs"]);
    assert_eq!((code(&out), stderr(&out)), (0, String::new()));

    // Under warn, git goes on, told who holds what.
    policy(&repo.dir, "warn");
    stage(&repo.dir, "src/auth.rs");
    let out = git_as(&repo.dir, A, &["commit", "-q", "-m", "auth anyway"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Warning: locked by another actor"),
        "{}",
        stderr(&out)
    );

    // A repo: lock blocks every path.
    policy(&repo.dir, "require");
    ok(grite(
        &repo.dir,
        B,
        &["lock", "acquire", "repo:deploy", "--ttl", "1h"],
    ));
    stage(&repo.dir, "README");
    let out = git_as(&repo.dir, A, &["commit", "-q", "-m", "readme"]);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("Locked: repo:deploy"),
        "{}",
        stderr(&out)
    );

    // Off: nothing is checked.
    policy(&repo.dir, "off");
    let out = git_as(&repo.dir, A, &["commit", "-q", "-m", "readme"]);
    assert_eq!((code(&out), stderr(&out)), (0, String::new()));
}

#[test]
fn hooks_go_where_core_hooks_path_says() {
    let repo = Repo::new();
    repo.git(&["config", "core.hooksPath", ".githooks"]);
    let out = ok(grite(&repo.dir, A, &["--json", "lock", "hooks", "install"]));
    let hooks = json(&out)["data"]["hooks"].clone();
    assert_eq!(hooks[0]["hook"], "pre-commit");
    assert_eq!(hooks[0]["action"], "installed");
    assert!(repo.dir.join(".githooks/pre-commit").is_file());
    assert!(repo.dir.join(".githooks/pre-push").is_file());
    assert!(!repo.dir.join(".git/hooks/pre-commit").exists());

    ok(grite(
        &repo.dir,
        B,
        &["lock", "acquire", "path:lib.rs", "--ttl", "1h"],
    ));
    policy(&repo.dir, "require");
    stage(&repo.dir, "lib.rs");
    let out = git_as(&repo.dir, A, &["commit", "-q", "-m", "lib"]);
    assert_ne!(code(&out), 0, "git ran the hook from core.hooksPath");

    // From a subdirectory, the same folder.
    let sub = repo.dir.join("docs");
    std::fs::create_dir_all(&sub).expect("mkdir");
    let out = ok(grite(&sub, A, &["lock", "hooks", "install"]));
    assert!(
        stdout(&out).contains("Updated the pre-commit hook"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_hook_of_another_tool_is_refused_or_chained_and_put_back() {
    let repo = Repo::new();
    let hooks = repo.dir.join(".git/hooks");
    let theirs = "#!/bin/sh\necho \"their hook ran\" >> \"$(git rev-parse --git-dir)/ran\"\n";
    let pre_commit = hooks.join("pre-commit");
    std::fs::write(&pre_commit, theirs).expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&pre_commit, std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
    }

    // Refused, and nothing written: not even the pre-push hook asked with it.
    let out = grite(&repo.dir, A, &["lock", "hooks", "install"]);
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("A pre-commit hook is already there")
            && stderr(&out).contains("--chain"),
        "{}",
        stderr(&out)
    );
    let out = grite(&repo.dir, A, &["--json", "lock", "hooks", "install"]);
    assert_eq!(json(&out)["error"]["code"], "hook_error");
    assert_eq!(std::fs::read_to_string(&pre_commit).expect("kept"), theirs);
    assert!(!hooks.join("pre-push").exists());

    // Uninstall never removes it either.
    let out = grite(
        &repo.dir,
        A,
        &["lock", "hooks", "uninstall", "--pre-commit"],
    );
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&pre_commit).expect("kept"), theirs);

    // Chained: theirs runs first, then the check.
    let out = ok(grite(
        &repo.dir,
        A,
        &["lock", "hooks", "install", "--chain"],
    ));
    assert!(
        stdout(&out).contains("running the one that was there first"),
        "{}",
        stdout(&out)
    );
    ok(grite(
        &repo.dir,
        B,
        &["lock", "acquire", "path:src/", "--ttl", "1h"],
    ));
    policy(&repo.dir, "require");
    stage(&repo.dir, "src/a.rs");
    let out = git_as(&repo.dir, A, &["commit", "-q", "-m", "a"]);
    assert_ne!(code(&out), 0);
    let ran = std::fs::read_to_string(repo.dir.join(".git/ran")).expect("their hook ran");
    assert_eq!(ran, "their hook ran\n");

    // A failing hook of theirs stops the commit before the check.
    std::fs::write(
        hooks.join("pre-commit.grite-chained"),
        "#!/bin/sh\necho no >&2\nexit 3\n",
    )
    .expect("write");
    let out = git_as(&repo.dir, B, &["commit", "-q", "-m", "a"]);
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).starts_with("no\n"), "{}", stderr(&out));
    std::fs::write(hooks.join("pre-commit.grite-chained"), theirs).expect("write");

    let out = ok(grite(&repo.dir, A, &["lock", "hooks", "uninstall"]));
    assert!(
        stdout(&out).contains("put back the one it ran first"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        std::fs::read_to_string(&pre_commit).expect("restored"),
        theirs
    );
    assert!(!hooks.join("pre-commit.grite-chained").exists());
    assert!(!hooks.join("pre-push").exists());
    let out = ok(grite(
        &repo.dir,
        A,
        &["lock", "hooks", "uninstall", "--pre-push"],
    ));
    assert!(
        stdout(&out).contains("No pre-push hook of grite's to remove"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn pre_push_applies_the_policy_to_the_paths_of_the_pushed_commits() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let remote = support::seeded_remote(tmp.path());
    support::git(
        tmp.path(),
        &["clone", "-q", remote.to_str().expect("utf-8"), "work"],
    );
    let dir = tmp.path().join("work");
    ok(grite(&dir, A, &["lock", "hooks", "install", "--pre-push"]));
    ok(grite(
        &dir,
        B,
        &["lock", "acquire", "path:src/secret.rs", "--ttl", "1h"],
    ));
    policy(&dir, "require");

    stage(&dir, "src/secret.rs");
    ok(git_as(&dir, A, &["commit", "-q", "-m", "secret"]));
    stage(&dir, "notes.md");
    ok(git_as(&dir, A, &["commit", "-q", "-m", "notes"]));
    let out = git_as(&dir, A, &["push", "-q", "origin", "main"]);
    assert_ne!(code(&out), 0, "the push is stopped");
    assert!(
        stderr(&out).contains("Locked: path:src/secret.rs")
            && stderr(&out).contains(&format!("Owner: {B}")),
        "{}",
        stderr(&out)
    );
    let remote_main = support::git(&remote, &["rev-parse", "main"]);
    let local_main = support::git(&dir, &["rev-parse", "main"]);
    assert_ne!(remote_main, local_main, "nothing was pushed");

    // A new branch is checked on the commits no remote branch has.
    support::git(&dir, &["checkout", "-q", "-b", "topic", "origin/main"]);
    stage(&dir, "docs/a.md");
    ok(git_as(&dir, A, &["commit", "-q", "-m", "docs"]));
    ok(git_as(&dir, A, &["push", "-q", "origin", "topic"]));
    // Deleting a branch pushes no commits.
    ok(git_as(&dir, A, &["push", "-q", "origin", ":topic"]));

    // Under warn, the push goes through with the holders named.
    policy(&dir, "warn");
    let out = git_as(&dir, A, &["push", "-q", "origin", "main"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Blocks: path:src/secret.rs"),
        "{}",
        stderr(&out)
    );
    assert_eq!(support::git(&remote, &["rev-parse", "main"]), local_main);
}

#[test]
fn check_takes_several_resources_staged_paths_and_paths_on_stdin() {
    let repo = Repo::new();
    ok(grite(
        &repo.dir,
        B,
        &["lock", "acquire", "path:src/", "issue:7", "--ttl", "1h"],
    ));
    let out = ok(grite(
        &repo.dir,
        A,
        &[
            "--json",
            "lock",
            "check",
            "issue:7",
            "path:docs/a",
            "-r",
            "path:src/x.rs",
        ],
    ));
    let data = json(&out)["data"].clone();
    assert_eq!(data["checked"], 3);
    assert_eq!(data["policy"], "warn");
    let blocked: Vec<&str> = data["blocked"]
        .as_array()
        .expect("blocked")
        .iter()
        .map(|b| b["resource"].as_str().expect("resource"))
        .collect();
    assert_eq!(
        blocked,
        ["path:src/x.rs", "issue:7"],
        "flagged first, as typed"
    );

    let mut child = grite_command(&repo.dir)
        .args([
            "--actor",
            A,
            "--json",
            "lock",
            "check",
            "--paths-from-stdin",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("grite runs");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(b"src/a.rs\nsrc/b.rs\nREADME\n\nsrc/a.rs\n")
            .expect("write");
    }
    let out = child.wait_with_output().expect("grite ends");
    let data = json(&out)["data"].clone();
    assert_eq!(data["checked"], 3, "{data}");
    assert_eq!(data["blocked"].as_array().expect("blocked").len(), 2);

    stage(&repo.dir, "src/new.rs");
    stage(&repo.dir, "other.txt");
    let out = ok(grite(&repo.dir, A, &["lock", "check", "--staged"]));
    let err = stderr(&out);
    assert!(
        err.contains("Checked: 2 resources")
            && err.contains("Blocks: path:src/new.rs")
            && !err.contains("other.txt"),
        "{err}"
    );

    let out = grite(&repo.dir, A, &["lock", "check"]);
    assert_eq!(code(&out), 2, "nothing to check is a usage error");
    let out = grite(&repo.dir, A, &["lock", "check", "-z", "issue:1"]);
    assert_eq!(code(&out), 2, "-z needs --paths-from-stdin");
}

#[test]
fn hooks_refuse_a_bare_repository_and_unknown_hooks() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let remote = support::seeded_remote(tmp.path());
    let out = grite(&remote, A, &["lock", "hooks", "install"]);
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("No hooks in a bare repository"),
        "{}",
        stderr(&out)
    );
    assert!(!remote.join("hooks/pre-commit").exists());
    let out = grite(&remote, A, &["lock", "check", "--staged"]);
    assert_eq!(code(&out), 5, "{}", stderr(&out));

    let repo = Repo::new();
    let out = grite(&repo.dir, A, &["lock", "hooks", "install", "--post-merge"]);
    assert_eq!(code(&out), 2);
    assert!(!repo.dir.join(".git/hooks/pre-commit").exists());
}
