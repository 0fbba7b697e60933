//! A remote reached exactly as `git push` reaches it, and shared with other
//! grite tools: the ssh program and variant git would run (`core.sshCommand`,
//! `GIT_SSH`), `url.<base>.insteadOf`, `file://localhost/`, `-C` with a
//! relative remote path, `GIT_DIR`, a misspelled remote name,
//! `protocol.<name>.allow`, `http.proxy` and `http.extraHeader`; receive-pack
//! let finish its hooks, whose messages are shown; every ref written is a
//! commit (an old blob version ref is migrated); a record another tool
//! keeps under its own spelling is reported under its own ref.

mod support;

use std::io::{Read, Write};
use std::path::Path;

use serde_json::Value;
use support::{A, B, Daemon, Sshd, T0, code, git, grite_command, json, stderr};

fn grite(dir: &Path, remote: &str, actor: &str, args: &[&str]) -> (i32, Value) {
    let out = grite_command(dir)
        .args([
            "--json",
            "--remote",
            remote,
            "--actor",
            actor,
            "--now-ms",
            &T0.to_string(),
            "lock",
        ])
        .args(args)
        .output()
        .expect("grite runs");
    (code(&out), json(&out))
}

/// A shell script at `path` that runs `body`.
fn script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).expect("script");
    let status = std::process::Command::new("chmod")
        .arg("+x")
        .arg(path)
        .status()
        .expect("chmod");
    assert!(status.success());
}

#[test]
fn ssh_is_the_program_git_would_run() {
    let (tmp, remote, clone) = support::remote_and_clone();
    let keys = tmp.path().join("ssh");
    std::fs::create_dir_all(&keys).expect("mkdir");
    let Some(sshd) = Sshd::start(&keys) else {
        return;
    };
    let url = format!(
        "ssh://{}@127.0.0.1:{}{}",
        sshd.user,
        sshd.port,
        remote.display()
    );
    // core.sshCommand: a shell snippet, with options of its own.
    let log = tmp.path().join("ssh-command.log");
    let wrapper = tmp.path().join("ssh-wrapper");
    script(
        &wrapper,
        &format!(
            "echo \"$@\" >> '{}'\nexec {} \"$@\"",
            log.display(),
            sshd.ssh_command
        ),
    );
    git(
        &clone,
        &[
            "config",
            "core.sshCommand",
            &format!("{} -o ConnectTimeout=5", wrapper.display()),
        ],
    );
    let (c, v) = grite(&clone, &url, A, &["acquire", "issue:ssh-command"]);
    assert_eq!(c, 0, "{v}");
    let logged = std::fs::read_to_string(&log).expect("core.sshCommand ran");
    assert!(logged.contains("-o ConnectTimeout=5 -p"), "{logged}");
    assert!(
        logged.contains(&format!("git-receive-pack '{}'", remote.display())),
        "{logged}"
    );

    // GIT_SSH: a program run without a shell, when no command is set.
    git(&clone, &["config", "--unset", "core.sshCommand"]);
    let program_log = tmp.path().join("git-ssh.log");
    let program = tmp.path().join("git-ssh");
    script(
        &program,
        &format!(
            "echo ran >> '{}'\nexec {} \"$@\"",
            program_log.display(),
            sshd.ssh_command
        ),
    );
    let out = grite_command(&clone)
        .env("GIT_SSH", &program)
        .args([
            "--json",
            "--remote",
            &url,
            "--actor",
            A,
            "--now-ms",
            &T0.to_string(),
        ])
        .args(["lock", "acquire", "issue:git-ssh"])
        .output()
        .expect("grite runs");
    assert_eq!(code(&out), 0, "{}", json(&out));
    assert!(program_log.exists(), "GIT_SSH did not run");

    // A variant that takes no port is told so, not run with a wrong one.
    let out = grite_command(&clone)
        .env("GIT_SSH", &program)
        .env("GIT_SSH_VARIANT", "simple")
        .args([
            "--json",
            "--remote",
            &url,
            "--actor",
            A,
            "--now-ms",
            &T0.to_string(),
        ])
        .args(["lock", "acquire", "issue:simple"])
        .output()
        .expect("grite runs");
    support::assert_remote_error(code(&out), &json(&out), "takes no port", "simple variant");
}

#[test]
fn insteadof_aliases_file_localhost_and_relative_paths_reach_the_remote() {
    let (tmp, remote, clone) = support::remote_and_clone();
    let daemon = Daemon::start(tmp.path());
    git(
        &clone,
        &[
            "config",
            &format!("url.{}/.insteadOf", tmp.path().display()),
            "lockhub:",
        ],
    );
    git(
        &clone,
        &[
            "config",
            &format!("url.git://127.0.0.1:{}/.insteadOf", daemon.port),
            "served:",
        ],
    );
    for (alias, resource) in [
        ("lockhub:remote.git", "issue:alias-path"),
        ("served:remote.git", "issue:alias-daemon"),
        (
            &*format!("file://localhost{}", remote.display()),
            "issue:localhost",
        ),
    ] {
        let (c, v) = grite(&clone, alias, A, &["acquire", resource]);
        assert_eq!(c, 0, "{alias}: {v}");
        assert!(
            support::stored_record(&remote, resource).is_some(),
            "{alias}"
        );
    }
    // -C makes a relative remote path relative to the directory it names.
    let out = grite_command(tmp.path())
        .args([
            "-C",
            "clone",
            "--json",
            "--remote",
            "../remote.git",
            "--actor",
            A,
        ])
        .args([
            "--now-ms",
            &T0.to_string(),
            "lock",
            "acquire",
            "issue:relative",
        ])
        .output()
        .expect("grite runs");
    assert_eq!(code(&out), 0, "{}", json(&out));
    assert!(support::stored_record(&remote, "issue:relative").is_some());
}

#[test]
fn an_ipv6_loopback_address_in_brackets_is_reached() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("notice: this machine's loopback has no IPv6; the [::1] test did not run");
        return;
    }
    let (tmp, remote, clone) = support::remote_and_clone();
    let daemon = Daemon::start_on(tmp.path(), "::1");
    let url = format!("git://[::1]:{}/remote.git", daemon.port);
    let (c, v) = grite(&clone, &url, A, &["acquire", "issue:v6"]);
    assert_eq!(c, 0, "{v}");
    assert!(support::stored_record(&remote, "issue:v6").is_some());
}

#[test]
fn git_dir_names_the_repository_and_a_misspelled_remote_is_named() {
    let (tmp, remote, clone) = support::remote_and_clone();
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).expect("mkdir");
    let out = grite_command(&elsewhere)
        .env("GIT_DIR", clone.join(".git"))
        .args([
            "--json",
            "--remote",
            "origin",
            "--actor",
            A,
            "--now-ms",
            &T0.to_string(),
        ])
        .args(["lock", "acquire", "issue:git-dir"])
        .output()
        .expect("grite runs");
    assert_eq!(code(&out), 0, "{}", json(&out));
    assert!(support::stored_record(&remote, "issue:git-dir").is_some());
    assert!(support::stored_record(&clone, "issue:git-dir").is_some());

    let before = git(&clone, &["for-each-ref"]);
    let (c, v) = grite(&clone, "orign", A, &["acquire", "issue:typo"]);
    assert_eq!(
        (c, v["error"]["code"].as_str()),
        (2, Some("invalid_args")),
        "{v}"
    );
    let message = v["error"]["message"].as_str().expect("a message");
    assert!(
        message.contains("no remote has that name; the configured remotes are origin"),
        "{message}"
    );
    assert_eq!(git(&clone, &["for-each-ref"]), before);
}

#[test]
fn a_protocol_git_forbids_is_refused() {
    let (_tmp, remote, clone) = support::remote_and_clone();
    git(&clone, &["config", "protocol.file.allow", "never"]);
    let (c, v) = grite(
        &clone,
        &remote.display().to_string(),
        A,
        &["acquire", "issue:1"],
    );
    support::assert_remote_error(
        c,
        &v,
        "do not allow the file protocol",
        "protocol.file.allow",
    );
    assert!(support::stored_record(&remote, "issue:1").is_none());
}

#[test]
fn receive_pack_finishes_its_hooks_and_their_messages_are_shown() {
    let (tmp, remote, clone) = support::remote_and_clone();
    let marker = tmp.path().join("deployed");
    script(
        &remote.join("hooks/post-receive"),
        &format!("echo deploying; sleep 1; touch '{}'", marker.display()),
    );
    let url = remote.display().to_string();
    let out = grite_command(&clone)
        .args(["--remote", &url, "--actor", A, "--now-ms", &T0.to_string()])
        .args(["lock", "acquire", "issue:1"])
        .output()
        .expect("grite runs");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        marker.exists(),
        "grite returned before post-receive finished"
    );
    assert!(
        stderr(&out).contains("remote: deploying"),
        "{}",
        stderr(&out)
    );
    // Machines get the envelope alone.
    let (c, v) = grite(&clone, &url, A, &["release", "issue:1"]);
    assert_eq!(c, 0, "{v}");
    assert!(v.get("warnings").is_none(), "{v}");

    // A hook that refuses is quoted in the error.
    script(
        &remote.join("hooks/pre-receive"),
        "echo 'locks are frozen until Monday'; exit 1",
    );
    let (c, v) = grite(&clone, &url, B, &["acquire", "issue:2"]);
    support::assert_remote_error(c, &v, "locks are frozen until Monday", "pre-receive");
}

/// A one-request HTTP server on 127.0.0.1 that records the request and
/// answers 404; returns its port and the request.
fn recording_server() -> (u16, std::thread::JoinHandle<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("a client");
        let mut request = Vec::new();
        let mut chunk = [0u8; 4096];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => request.extend_from_slice(&chunk[..n]),
            }
        }
        let _ = stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        String::from_utf8_lossy(&request).into_owned()
    });
    (port, server)
}

#[test]
fn http_goes_through_the_configured_proxy_with_the_configured_headers() {
    let (_tmp, _remote, clone) = support::remote_and_clone();
    // The proxy answers itself: that it was asked is the point.
    let (proxy, recorded) = recording_server();
    git(
        &clone,
        &["config", "http.proxy", &format!("http://127.0.0.1:{proxy}")],
    );
    git(
        &clone,
        &["config", "http.extraHeader", "X-Lock-Team: platform"],
    );
    let url = "http://git.example.invalid/team/repo.git";
    let (c, v) = grite(&clone, url, A, &["acquire", "issue:1"]);
    support::assert_remote_error(c, &v, "404", "through the proxy");
    let request = recorded.join().expect("the proxy was asked");
    assert!(
        request.starts_with(
            "GET http://git.example.invalid/team/repo.git/info/refs?service=git-receive-pack"
        ),
        "{request}"
    );
    assert!(
        request
            .to_ascii_lowercase()
            .contains("x-lock-team: platform"),
        "{request}"
    );
}

#[test]
fn every_ref_written_is_a_commit_and_an_old_blob_version_is_migrated() {
    let (_tmp, remote, clone) = support::remote_and_clone();
    let url = remote.display().to_string();
    let (c, v) = grite(&clone, &url, A, &["acquire", "issue:1"]);
    assert_eq!(c, 0, "{v}");
    // What earlier versions wrote: the version ref on a bare blob.
    let blob = support::git_with_input(
        &remote,
        &["hash-object", "-w", "--stdin"],
        r#"{"version":7,"highest_token":41,"writer":"old"}"#,
    );
    git(&remote, &["update-ref", "refs/grite/lock-version", &blob]);
    let (c, v) = grite(&clone, &url, B, &["acquire", "issue:2"]);
    assert_eq!(c, 0, "{v}");
    assert_eq!(
        v["data"]["lock"]["fencing_token"], 42,
        "the old version's floor holds: {v}"
    );
    for repo in [&remote, &clone] {
        let kinds = git(
            repo,
            &[
                "for-each-ref",
                "--format=%(objecttype) %(refname)",
                "refs/grite/",
            ],
        );
        assert!(kinds.lines().all(|l| l.starts_with("commit ")), "{kinds}");
    }
}

#[test]
fn a_record_kept_under_another_spelling_is_reported_under_its_own_ref() {
    let repo = support::Repo::new();
    // Another tool hashes the resource as typed: `path:src/`, not ours.
    let record = serde_json::json!({
        "owner": B, "nonce": "n", "expires_unix_ms": T0 + 600_000, "resource": "path:src/",
    });
    let theirs = format!(
        "refs/grite/locks/{}",
        grite_locks::lease::ref_hash_of("path:src/")
    );
    support::plant_with_git(&repo, &theirs, &record.to_string(), true);
    let out = repo.grite_as(A, T0, &["--json", "lock", "status"]);
    let v = json(&out);
    assert_eq!(v["data"]["locks"][0]["ref"], theirs.as_str(), "{v}");
    // And it still blocks our spelling of the same directory.
    let out = repo.grite_as(A, T0, &["--json", "lock", "acquire", "path:src"]);
    assert_eq!(json(&out)["error"]["code"], "conflict");
}
