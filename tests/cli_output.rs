//! The exact output of every command, human and JSON, success and failure,
//! pinned by insta snapshots in `snapshots/` (nonces and paths redacted),
//! and every JSON output read back into structs that deny unknown fields,
//! so that any change to the schema breaks a test.

mod support;

use std::fmt::Write as _;

use serde::Deserialize;
use support::{A, B, Repo, T0, code, stderr, stdout};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    schema_version: u32,
    ok: bool,
    #[serde(default)]
    data: Option<serde_json::Value>,
    #[serde(default)]
    error: Option<ErrorBody>,
    #[serde(default)]
    #[allow(dead_code)]
    warnings: Option<Vec<Warning>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Warning {
    code: String,
    message: String,
    details: serde_json::Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ErrorBody {
    code: String,
    message: String,
    help: Option<String>,
    details: serde_json::Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // read to pin the schema
struct Lock {
    resource: String,
    owner: String,
    nonce: String,
    expires_unix_ms: u64,
    fencing_token: u64,
    #[serde(rename = "ref")]
    ref_name: String,
    #[serde(default)]
    acquired_unix_ms: Option<u64>,
    /// Present, and only, in status lists.
    #[serde(default)]
    mine: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct AcquireData {
    lock: Lock,
    outcome: String,
    previous_owner: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct RenewData {
    lock: Lock,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ReleaseData {
    resource: String,
    released: bool,
    lock: Option<Lock>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct StatusData {
    now_unix_ms: u64,
    locks: Vec<Lock>,
    expired: Vec<Lock>,
    released: Vec<Lock>,
    conflicts: Vec<(Lock, Lock)>,
    unreadable: Vec<UnreadableRef>,
    stale_lock_files: Vec<StaleLockFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct StaleLockFile {
    path: String,
    age_ms: u64,
    remove_with: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct UnreadableRef {
    #[serde(rename = "ref")]
    ref_name: String,
    reason: String,
    remove_with: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct GcData {
    removed: usize,
    kept: usize,
    unreadable: usize,
    removed_locks: Vec<Lock>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct CheckData {
    resource: String,
    policy: String,
    conflicts: Vec<Lock>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct LogData {
    resource: Option<String>,
    entries: Vec<LogStep>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct LogStep {
    #[serde(rename = "ref")]
    ref_name: String,
    commit: Option<String>,
    at_unix_ms: Option<u64>,
    event: Option<String>,
    previous_owner: Option<String>,
    lock: Option<Lock>,
    unreadable: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct CheckManyData {
    policy: String,
    checked: usize,
    blocked: Vec<Blocked>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Blocked {
    resource: String,
    conflicts: Vec<Lock>,
}

/// Reads a `--json` output back into the struct of its command.
fn read_back(command: &str, bytes: &[u8]) {
    let envelope: Envelope = serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("{command}: {e}: {}", String::from_utf8_lossy(bytes)));
    assert_eq!(envelope.schema_version, 1);
    if envelope.ok {
        assert!(envelope.error.is_none());
        let data = envelope.data.expect("data on success");
        let parsed = match command {
            "acquire" => serde_json::from_value::<AcquireData>(data).map(drop),
            "renew" => serde_json::from_value::<RenewData>(data).map(drop),
            "release" => serde_json::from_value::<ReleaseData>(data).map(drop),
            "status" => serde_json::from_value::<StatusData>(data).map(|status| {
                for lock in status
                    .locks
                    .iter()
                    .chain(&status.expired)
                    .chain(&status.released)
                {
                    assert!(lock.mine.is_some(), "status marks every lock: {lock:?}");
                }
            }),
            "gc" => serde_json::from_value::<GcData>(data).map(drop),
            "log" => serde_json::from_value::<LogData>(data).map(drop),
            "check" if data.get("resource").is_some() => {
                serde_json::from_value::<CheckData>(data).map(drop)
            }
            "check" => serde_json::from_value::<CheckManyData>(data).map(drop),
            other => panic!("no struct for {other}"),
        };
        parsed.unwrap_or_else(|e| panic!("{command}: {e}"));
    } else {
        let error = envelope.error.expect("error on failure");
        assert!(envelope.data.is_none());
        assert!(!error.code.is_empty() && !error.message.is_empty());
        assert!(
            error.help.is_some(),
            "{command}: every error has a help line"
        );
        assert!(error.details.is_object());
    }
}

/// Replaces nonces (32 hex characters that are not a test actor), commit
/// ids (40) and the temporary directory.
fn redact(text: &str, repo: &Repo) -> String {
    let text = text.replace(&repo.tmp.path().display().to_string(), "[TMP]");
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_hexdigit() {
            word.push(c);
            continue;
        }
        if word.len() == 32 && word != A && word != B && !word.chars().all(|c| c == 'c') {
            out.push_str("[NONCE]");
        } else if word.len() == 40 {
            // A commit id: lock commits hold the random nonce.
            out.push_str("[COMMIT]");
        } else {
            out.push_str(&word);
        }
        word.clear();
        out.push(c);
    }
    out.pop();
    out
}

struct Transcript<'r> {
    repo: &'r Repo,
    text: String,
}

impl Transcript<'_> {
    /// Runs a command twice, human and `--json`, each on the same state,
    /// which it leaves as it was: rows do not depend on one another.
    fn both(&mut self, label: &str, actor: &str, at: u64, args: &[&str]) {
        let command = args[0];
        let mut lock_args = vec!["lock"];
        lock_args.extend_from_slice(args);
        let refs = self.repo.refs();
        let mut json_args = vec!["--json"];
        json_args.extend_from_slice(&lock_args);
        let json_out = self.repo.grite_as(actor, at, &json_args);
        read_back(command, &json_out.stdout);
        reset_refs(self.repo, &refs);
        let human = self.repo.grite_as(actor, at, &lock_args);
        reset_refs(self.repo, &refs);
        let _ = write!(
            self.text,
            "### {label}\n$ grite lock {}\nexit {}\n--- stdout\n{}--- stderr\n{}--- json\n{}\n",
            args.join(" "),
            code(&human),
            stdout(&human),
            stderr(&human),
            stdout(&json_out).trim_end(),
        );
        assert_eq!(
            code(&human),
            code(&json_out),
            "{label}: human and JSON exit codes differ"
        );
        self.text = redact(&self.text, self.repo);
    }
}

/// Puts every ref back to `refs` (the output of `Repo::refs`).
fn reset_refs(repo: &Repo, refs: &str) {
    let now = repo.refs();
    let mut script = String::new();
    for line in now.lines() {
        let name = line.split(' ').nth(1).expect("ref name");
        if !refs.lines().any(|l| l.ends_with(&format!(" {name}"))) {
            let _ = writeln!(script, "delete {name}");
        }
    }
    for line in refs.lines() {
        let (id, name) = line.split_once(' ').expect("id and name");
        let _ = writeln!(script, "update {name} {id}");
    }
    let mut child = support::git_command(&repo.dir)
        .args(["update-ref", "--stdin"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("git runs");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write");
    assert!(child.wait().expect("git").success());
}

fn settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings
}

/// The expiry of the lock renewed for an hour a minute after T0.
const RENEWED_END: u64 = T0 + 60_000 + 3_600_000;

#[test]
fn acquire_renew_and_release_output() {
    let repo = Repo::new();
    let mut t = Transcript {
        repo: &repo,
        text: String::new(),
    };
    t.both(
        "acquire a free lock",
        A,
        T0,
        &["acquire", "--resource", "issue:8057324b", "--ttl", "30m"],
    );
    repo.grite_as(
        A,
        T0,
        &["lock", "acquire", "issue:8057324b", "--ttl", "30m"],
    );
    t.both(
        "acquire again",
        A,
        T0 + 1_000,
        &["acquire", "issue:8057324b"],
    );
    t.both(
        "acquire another's lock",
        B,
        T0 + 2_000,
        &["acquire", "issue:8057324b"],
    );
    t.both(
        "acquire a conflicting resource",
        B,
        T0 + 2_000,
        &["acquire", "repo:deploy"],
    );
    t.both(
        "renew",
        A,
        T0 + 60_000,
        &["renew", "issue:8057324b", "--ttl", "1h"],
    );
    t.both(
        "renew another's lock",
        B,
        T0 + 60_000,
        &["renew", "issue:8057324b"],
    );
    t.both("renew a free lock", A, T0, &["renew", "issue:none"]);
    t.both(
        "steal after expiry and grace",
        B,
        RENEWED_END + 5_000,
        &["acquire", "issue:8057324b", "--ttl", "15m"],
    );
    t.both(
        "reacquire one's own expired lock",
        A,
        RENEWED_END + 1,
        &["acquire", "issue:8057324b"],
    );
    t.both(
        "release another's lock",
        B,
        T0 + 3_000,
        &["release", "issue:8057324b"],
    );
    t.both("release", A, T0 + 3_000, &["release", "issue:8057324b"]);
    t.both("release a free lock", A, T0, &["release", "issue:none"]);
    let text = t.text;
    settings().bind(|| insta::assert_snapshot!("cli_acquire_renew_release", text));
}

#[test]
fn status_gc_and_check_output() {
    let repo = Repo::new();
    std::fs::write(
        repo.dir.join(".git/grite/config.toml"),
        "lock_grace = \"5s\"\nlock_policy = \"warn\"\n",
    )
    .expect("config");
    let mut t = Transcript {
        repo: &repo,
        text: String::new(),
    };
    t.both("status of an empty repository", A, T0, &["status"]);
    for (actor, resource, ttl) in [
        (A, "issue:8057324b", "30m"),
        (A, "path:src/", "1h"),
        (B, "issue:1", "1m"),
        (B, "path:docs", "1m"),
        (B, "issue:2", "2h"),
    ] {
        let out = repo.grite_as(actor, T0, &["lock", "acquire", resource, "--ttl", ttl]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
    repo.grite_as(B, T0, &["lock", "release", "issue:2"]);
    // A conflicting lock written by another tool, as after a sync.
    plant_foreign_lock(
        &repo,
        "path:src/auth.rs",
        "cccccccccccccccccccccccccccccccc",
        T0 + 600_000,
    );
    t.both(
        "status with live, expired, released and conflicting locks",
        A,
        T0 + 5 * 60_000,
        &["status"],
    );
    t.both(
        "check under warn, conflicting",
        A,
        T0 + 5 * 60_000,
        &["check", "path:src/auth.rs"],
    );
    t.both(
        "check under warn, free",
        A,
        T0 + 5 * 60_000,
        &["check", "issue:3"],
    );
    t.both(
        "check of several resources under warn",
        A,
        T0 + 5 * 60_000,
        &["check", "path:src/auth.rs", "path:src/main.rs", "issue:3"],
    );
    t.both("log of one lock", A, T0 + 5 * 60_000, &["log", "issue:2"]);
    t.both("log of every lock", A, T0 + 5 * 60_000, &["log", "-n", "3"]);
    std::fs::write(
        repo.dir.join(".git/grite/config.toml"),
        "lock_policy = \"require\"\n",
    )
    .expect("config");
    t.both(
        "check under require, conflicting",
        B,
        T0 + 5 * 60_000,
        &["check", "--resource", "path:src/a.rs"],
    );
    t.both(
        "check of several resources under require",
        B,
        T0 + 5 * 60_000,
        &[
            "check",
            "path:src/a.rs",
            "path:src/auth.rs",
            "issue:8057324b",
            "issue:9",
        ],
    );
    std::fs::write(
        repo.dir.join(".git/grite/config.toml"),
        "lock_policy = \"off\"\nlock_grace = \"5s\"\n",
    )
    .expect("config");
    t.both(
        "check under off",
        B,
        T0 + 5 * 60_000,
        &["check", "path:src/a.rs"],
    );
    t.both("gc", A, T0 + 5 * 60_000, &["gc"]);
    let text = t.text;
    settings().bind(|| insta::assert_snapshot!("cli_status_gc_check", text));
}

#[test]
fn error_output() {
    let repo = Repo::new();
    let mut t = Transcript {
        repo: &repo,
        text: String::new(),
    };
    t.both("bad resource", A, T0, &["acquire", "--resource", "bug:1"]);
    t.both("bad TTL", A, T0, &["acquire", "issue:1", "--ttl", "0"]);
    t.both("unknown flag", A, T0, &["status", "--frobnicate"]);
    t.both("missing resource", A, T0, &["release"]);
    let outside = tempfile::tempdir().expect("temp dir");
    let human = support::grite_command(outside.path())
        .args(["lock", "status"])
        .output()
        .expect("runs");
    let json = support::grite_command(outside.path())
        .args(["--json", "lock", "status"])
        .output()
        .expect("runs");
    read_back("status", &json.stdout);
    let outside_path = outside.path().display().to_string();
    let _ = write!(
        t.text,
        "### outside a repository\nexit {}\n--- stderr\n{}--- json\n{}",
        code(&human),
        stderr(&human).replace(&outside_path, "[DIR]"),
        stdout(&json).replace(&outside_path, "[DIR]")
    );
    let text = t.text;
    settings().bind(|| insta::assert_snapshot!("cli_errors", text));
}

fn plant_foreign_lock(repo: &Repo, resource: &str, owner: &str, expires: u64) {
    let json = format!(
        "{{\n  \"owner\": \"{owner}\",\n  \"nonce\": \"foreign\",\n  \"expires_unix_ms\": {expires},\n  \"resource\": \"{resource}\"\n}}\n"
    );
    let name = grite_locks::lease::Resource::parse(resource)
        .expect("valid")
        .ref_name();
    support::plant_with_git(repo, &name, &json, true);
}
