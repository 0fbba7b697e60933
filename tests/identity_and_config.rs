//! Who you are (`grite actor current`, your locks marked in `status`), the
//! settings file (`grite config set`, misspelled keys), and the commands
//! that need no repository (`completions`, `man`, `help`).

mod support;

use std::path::Path;

use support::{A, B, Repo, T0, code, grite_command, json, stderr, stdout};

fn grite(dir: &Path, args: &[&str]) -> std::process::Output {
    grite_command(dir).args(args).output().expect("grite runs")
}

/// A repository as a fresh clone has it: no `.git/grite` at all.
fn fresh_repository() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("clone");
    std::fs::create_dir(&dir).expect("mkdir");
    support::git(&dir, &["init", "-q", "-b", "main"]);
    (tmp, dir)
}

#[test]
fn the_actor_in_use_says_where_it_came_from() {
    let (_tmp, dir) = fresh_repository();
    let first = json(&grite(&dir, &["--json", "actor", "current"]));
    assert_eq!(first["data"]["source"], "created", "{first}");
    let actor = first["data"]["actor"].as_str().expect("actor").to_owned();
    assert_eq!(actor.len(), 32);
    let config = std::fs::read_to_string(dir.join(".git/grite/config.toml")).expect("saved");
    assert_eq!(config, format!("default_actor = \"{actor}\"\n"));

    let again = json(&grite(&dir, &["--json", "actor", "current"]));
    assert_eq!(again["data"]["source"], "config");
    assert_eq!(again["data"]["actor"], actor.as_str());

    let from_env = grite_command(&dir)
        .env("GRITE_ACTOR", B)
        .args(["--json", "actor", "current"])
        .output()
        .expect("grite runs");
    let from_env = json(&from_env);
    assert_eq!(from_env["data"]["source"], "environment");
    assert_eq!(from_env["data"]["actor"], B);

    let from_flag = grite_command(&dir)
        .env("GRITE_ACTOR", B)
        .args(["--actor", A, "actor", "current"])
        .output()
        .expect("grite runs");
    assert_eq!(code(&from_flag), 0);
    assert_eq!(stdout(&from_flag), format!("Actor: {A}\n  From: --actor\n"));

    let bad = grite_command(&dir)
        .env("GRITE_ACTOR", "me")
        .args(["actor", "current"])
        .output()
        .expect("grite runs");
    assert_eq!(code(&bad), 2, "{}", stderr(&bad));
    assert!(stderr(&bad).contains("GRITE_ACTOR"), "{}", stderr(&bad));
}

#[test]
fn status_marks_your_own_locks_and_filters_to_them() {
    let repo = Repo::new();
    for (actor, resource) in [(A, "issue:1"), (B, "issue:2"), (A, "path:src/")] {
        let out = repo.grite_as(actor, T0, &["lock", "acquire", resource]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
    let all = json(&repo.grite_as(A, T0, &["--json", "lock", "status"]));
    let marks: Vec<(String, bool)> = all["data"]["locks"]
        .as_array()
        .expect("locks")
        .iter()
        .map(|l| {
            (
                l["resource"].as_str().expect("resource").to_owned(),
                l["mine"].as_bool().expect("mine"),
            )
        })
        .collect();
    assert_eq!(
        marks,
        [
            ("issue:1".to_owned(), true),
            ("issue:2".to_owned(), false),
            ("path:src".to_owned(), true)
        ]
    );

    let human = stdout(&repo.grite_as(B, T0, &["lock", "status"]));
    assert!(
        human.contains("issue:2   bbbbbbbb (you)") && !human.contains("aaaaaaaa (you)"),
        "{human}"
    );

    let mine = json(&repo.grite_as(A, T0, &["--json", "lock", "status", "--mine"]));
    let resources: Vec<&str> = mine["data"]["locks"]
        .as_array()
        .expect("locks")
        .iter()
        .map(|l| l["resource"].as_str().expect("resource"))
        .collect();
    assert_eq!(resources, ["issue:1", "path:src"]);

    // -r takes resources as typed and compares them canonically.
    let one = json(&repo.grite_as(A, T0, &["--json", "lock", "status", "-r", "path:./src/"]));
    let locks = one["data"]["locks"].as_array().expect("locks");
    assert_eq!(locks.len(), 1, "{one}");
    assert_eq!(locks[0]["resource"], "path:src");

    let bad = repo.grite_as(A, T0, &["lock", "status", "-r", "bug:1"]);
    assert_eq!(code(&bad), 2, "{}", stderr(&bad));
}

#[test]
fn status_without_an_actor_creates_none_and_marks_nothing() {
    let repo = Repo::new();
    let out = repo.grite_as(A, T0, &["lock", "acquire", "issue:1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let config = repo.dir.join(".git/grite/config.toml");
    let before = std::fs::read_to_string(&config).expect("config");
    let out = grite_command(&repo.dir)
        .args(["--json", "--now-ms", &T0.to_string(), "lock", "status"])
        .output()
        .expect("grite runs");
    let status = json(&out);
    assert_eq!(status["data"]["locks"][0]["mine"], false, "{status}");
    assert_eq!(std::fs::read_to_string(&config).expect("config"), before);
}

#[test]
fn config_set_creates_the_file_in_a_fresh_clone_and_keeps_what_is_written() {
    let (_tmp, dir) = fresh_repository();
    let out = grite(&dir, &["config", "set", "lock_remote", "origin"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let file = dir.join(".git/grite/config.toml");
    assert_eq!(
        std::fs::read_to_string(&file).expect("created"),
        "lock_remote = \"origin\"\n"
    );

    let written = "# ours\nlock_remote = \"origin\"   # the authority\nissue_sync = true\n\n[other_tool]\nx = 1\n";
    std::fs::write(&file, written).expect("write");
    let out = grite(&dir, &["--json", "config", "set", "lock_policy", "require"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["data"]["key"], "lock_policy");
    assert_eq!(
        std::fs::read_to_string(&file).expect("kept"),
        "# ours\nlock_remote = \"origin\"   # the authority\nissue_sync = true\nlock_policy = \"require\"\n\n[other_tool]\nx = 1\n"
    );
    let out = grite(&dir, &["config", "set", "lock_remote", "upstream"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = std::fs::read_to_string(&file).expect("kept");
    assert!(
        text.contains("lock_remote = \"upstream\"   # the authority\n"),
        "a value is replaced in place, its comment kept: {text}"
    );
}

#[test]
fn config_set_refuses_unknown_keys_and_bad_values_changing_nothing() {
    let repo = Repo::new();
    let file = repo.dir.join(".git/grite/config.toml");
    let before = std::fs::read_to_string(&file).expect("config");
    for (args, needle) in [
        (["config", "set", "lock_polcy", "require"], "lock_policy"),
        (["config", "set", "lock_policy", "strict"], "lock_policy"),
        (["config", "set", "lock_grace", "forever"], "lock_grace"),
        (["config", "set", "default_actor", "me"], "default_actor"),
    ] {
        let out = grite(&repo.dir, &args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
        assert_eq!(std::fs::read_to_string(&file).expect("config"), before);
        let out = grite(&repo.dir, &[&["--json"], &args[..]].concat());
        assert_eq!(json(&out)["error"]["code"], "invalid_args");
    }
    assert!(!repo.dir.join(".git/grite/config.toml.lock").exists());
}

#[test]
fn a_misspelled_setting_is_named_with_the_one_it_probably_means() {
    let repo = Repo::new();
    std::fs::write(
        repo.dir.join(".git/grite/config.toml"),
        "lock_polcy = \"require\"\nissue_sync = true\n",
    )
    .expect("config");
    let out = repo.grite_as(B, T0, &["lock", "acquire", "path:src/"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = repo.grite_as(A, T0, &["lock", "check", "path:src/a.rs"]);
    assert_eq!(
        code(&out),
        0,
        "the misspelled key is not read: warn, the default"
    );
    let err = stderr(&out);
    assert!(
        err.contains("`lock_polcy`")
            && err.contains("`lock_policy`")
            && !err.contains("issue_sync"),
        "{err}"
    );
    let out = repo.grite_as(A, T0, &["--json", "lock", "check", "path:src/a.rs"]);
    let warnings = json(&out)["warnings"].clone();
    assert_eq!(warnings[0]["code"], "mistyped_setting", "{warnings}");
    assert_eq!(warnings[0]["details"]["nearest"], "lock_policy");
}

#[test]
fn a_ttl_in_days_is_a_multiple_of_24_hours() {
    let repo = Repo::new();
    let out = repo.grite_as(
        A,
        T0,
        &["--json", "lock", "acquire", "issue:1", "--ttl", "7d"],
    );
    assert_eq!(
        json(&out)["data"]["lock"]["expires_unix_ms"],
        T0 + 7 * 86_400_000
    );
    let human = stdout(&repo.grite_as(A, T0, &["lock", "status"]));
    assert!(human.contains("expires in 7d\n"), "{human}");
    let out = repo.grite_as(A, T0, &["lock", "renew", "issue:1", "--ttl", "8d"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("maximum of 7d"), "{}", stderr(&out));
}

#[test]
fn completions_man_and_help_need_no_repository() {
    let outside = tempfile::tempdir().expect("temp dir");
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = grite(outside.path(), &["completions", shell]);
        assert_eq!(code(&out), 0, "{shell}: {}", stderr(&out));
        assert!(
            stdout(&out).contains("acquire"),
            "{shell} completes subcommands"
        );
    }
    let bash = stdout(&grite(outside.path(), &["completions", "bash"]));
    assert!(bash.contains("complete -F _grite"), "{bash}");

    let out = grite(outside.path(), &["completions", "tcsh"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("tcsh"), "{}", stderr(&out));

    let man = stdout(&grite(outside.path(), &["man"]));
    assert!(man.starts_with(".ie") || man.contains(".TH grite"), "{man}");
    assert!(man.contains("lock") && man.contains("completions"), "{man}");

    let help = grite(outside.path(), &["help", "lock"]);
    assert_eq!(code(&help), 0, "{}", stderr(&help));
    assert!(
        stdout(&help).contains("acquire") && stdout(&help).contains("Example: grite lock status")
    );
    let help = grite(outside.path(), &["help", "lock", "run"]);
    assert!(
        stdout(&help).contains("Example: grite lock run"),
        "{}",
        stdout(&help)
    );
    let help = grite(outside.path(), &["help", "lokc"]);
    assert_eq!(code(&help), 2);
}

#[test]
fn a_broken_setting_is_shown_in_its_line_and_json_stays_as_it_was() {
    let repo = Repo::new();
    let file = repo.dir.join(".git/grite/config.toml");
    std::fs::write(&file, "# ours\nlock_grace = \"forever\"   # too long\n").expect("config");
    let out = repo.grite_as(A, T0, &["lock", "status"]);
    assert_eq!(code(&out), 5);
    let err = stderr(&out);
    let shown: Vec<&str> = err.lines().collect();
    assert!(
        shown
            .iter()
            .any(|l| l.ends_with(".git/grite/config.toml:2:14]"))
            && shown.iter().any(|l| l
                .trim_start()
                .starts_with("2 │ lock_grace = \"forever\"   # too long"))
            && shown
                .iter()
                .any(|l| l.contains("╰── not a duration from 0s to 1h")),
        "{err}"
    );
    let out = repo.grite_as(A, T0, &["--json", "lock", "status"]);
    let v = json(&out);
    assert_eq!(v["error"]["code"], "invalid_config");
    assert!(!stdout(&out).contains('│'), "no drawing in JSON: {v}");

    std::fs::write(&file, "lock_policy = \"strict\"\n").expect("config");
    let err = stderr(&repo.grite_as(A, T0, &["lock", "check", "issue:1"]));
    assert!(
        err.contains("1 │ lock_policy = \"strict\"") && err.contains("unknown variant `strict`"),
        "{err}"
    );
}
