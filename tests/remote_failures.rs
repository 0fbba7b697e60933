//! Servers that misbehave, played by a fake git daemon on 127.0.0.1: one
//! without report-status, one that cuts its report off, refuses with an
//! `ERR` line, stalls, floods or lies. Every wait has a deadline
//! (`lock_remote_timeout`, 2 s here), every reply a size limit, a huge
//! advertisement is read in linear time, and each failure is a clear
//! `remote_error` that changes no local ref.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use support::{A, Repo, T0, code, json, stderr};

fn pkt(text: &str) -> Vec<u8> {
    let mut out = format!("{:04x}", text.len() + 4).into_bytes();
    out.extend_from_slice(text.as_bytes());
    out
}

const NULL: &str = "0000000000000000000000000000000000000000";

/// A repository whose remote waits are cut at 2 s.
fn repo() -> Repo {
    repo_waiting("2s")
}

/// A repository whose remote deadline is `timeout`.
fn repo_waiting(timeout: &str) -> Repo {
    let repo = Repo::new();
    std::fs::write(
        repo.dir.join(".git/grite/config.toml"),
        format!("lock_grace = \"5s\"\nlock_remote_timeout = \"{timeout}\"\n"),
    )
    .expect("config");
    repo
}

/// Serves one connection with `serve`, on a free loopback port.
fn fake_daemon(
    serve: impl FnOnce(TcpStream) + Send + 'static,
) -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("a client");
        serve(stream);
    });
    (port, server)
}

/// Reads the client's request line.
fn read_request(stream: &mut TcpStream) {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).expect("request header");
    let len = usize::from_str_radix(std::str::from_utf8(&header).expect("hex"), 16).expect("len");
    let mut request = vec![0u8; len - 4];
    stream.read_exact(&mut request).expect("request");
}

/// The advertisement of an empty repository offering `capabilities`.
fn advertisement_with(capabilities: &str) -> Vec<u8> {
    let mut out = pkt(&format!("{NULL} capabilities^{{}}\0{capabilities}\n"));
    out.extend_from_slice(b"0000");
    out
}

/// The advertisement of an empty repository offering what grite needs.
fn empty_advertisement() -> Vec<u8> {
    advertisement_with("report-status atomic")
}

/// Reads the push (commands and pack): waits for its start, then reads
/// until the client pauses.
fn read_push(stream: &mut TcpStream) -> Vec<u8> {
    let mut push = Vec::new();
    let mut chunk = [0u8; 65536];
    stream.set_read_timeout(None).expect("no timeout");
    while let Ok(n) = stream.read(&mut chunk) {
        if n == 0 {
            break;
        }
        push.extend_from_slice(&chunk[..n]);
        stream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .expect("timeout");
    }
    push
}

/// The ref names of the pkt-line commands at the start of a push.
fn command_refs(push: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    let mut at = 0;
    while let Some(header) = push.get(at..at + 4) {
        let len =
            usize::from_str_radix(std::str::from_utf8(header).expect("hex"), 16).expect("len");
        if len == 0 {
            break;
        }
        let line = String::from_utf8_lossy(&push[at + 4..at + len]).into_owned();
        let command = line.split('\0').next().expect("a command");
        names.push(command.split(' ').nth(2).expect("a ref").to_owned());
        at += len;
    }
    names
}

fn acquire_through(repo: &Repo, port: u16) -> (i32, serde_json::Value) {
    let remote = format!("git://127.0.0.1:{port}/repo.git");
    let out = repo.grite_as(
        A,
        T0,
        &["--json", "--remote", &remote, "lock", "acquire", "issue:1"],
    );
    (code(&out), json(&out))
}

#[test]
fn a_server_without_report_status_is_refused_before_any_push() {
    let repo = repo();
    let before = repo.refs();
    let (port, server) = fake_daemon(|mut stream| {
        read_request(&mut stream);
        stream
            .write_all(&advertisement_with("delete-refs ofs-delta"))
            .expect("advertise");
    });
    let (c, v) = acquire_through(&repo, port);
    server.join().expect("server thread");
    support::assert_remote_error(c, &v, "report-status", "acquire");
    assert_eq!(repo.refs(), before);
}

#[test]
fn a_report_cut_off_mid_stream_is_an_error_that_changes_nothing() {
    let repo = repo();
    let before = repo.refs();
    let (port, server) = fake_daemon(|mut stream| {
        read_request(&mut stream);
        stream.write_all(&empty_advertisement()).expect("advertise");
        let push = read_push(&mut stream);
        assert!(
            push.windows(4).any(|w| w == b"PACK"),
            "the client sent its pack"
        );
        let mut cut = pkt("unpack ok\n");
        cut.extend_from_slice(b"0030ok refs/gr");
        stream.write_all(&cut).expect("reply");
    });
    let (c, v) = acquire_through(&repo, port);
    server.join().expect("server thread");
    support::assert_remote_error(c, &v, "ended early", "acquire");
    assert_eq!(
        repo.refs(),
        before,
        "local refs changed although the push was not confirmed"
    );
}

#[test]
fn an_error_line_from_the_server_is_shown() {
    let repo = repo();
    let before = repo.refs();
    let (port, server) = fake_daemon(|mut stream| {
        read_request(&mut stream);
        let mut refusal = pkt("ERR access denied: read-only mirror\n");
        refusal.extend_from_slice(b"0000");
        stream.write_all(&refusal).expect("refuse");
    });
    let (c, v) = acquire_through(&repo, port);
    server.join().expect("server thread");
    support::assert_remote_error(c, &v, "access denied: read-only mirror", "acquire");
    assert_eq!(repo.refs(), before);
}

#[test]
fn a_server_that_accepts_and_says_nothing_is_left_after_the_deadline() {
    let repo = repo();
    let before = repo.refs();
    let (port, server) = fake_daemon(|mut stream| {
        read_request(&mut stream);
        // Keep the connection open, silent, until the client hangs up.
        let _ = stream.read(&mut [0u8; 1]);
    });
    let (c, v) = acquire_through(&repo, port);
    server.join().expect("server thread");
    support::assert_remote_error(c, &v, "sent nothing for 2 s", "acquire");
    assert_eq!(repo.refs(), before);
}

#[test]
fn a_server_that_stalls_after_the_push_is_left_after_the_deadline() {
    let repo = repo();
    let before = repo.refs();
    let (port, server) = fake_daemon(|mut stream| {
        read_request(&mut stream);
        stream.write_all(&empty_advertisement()).expect("advertise");
        let push = read_push(&mut stream);
        assert!(
            push.windows(4).any(|w| w == b"PACK"),
            "the client sent its pack"
        );
        stream.set_read_timeout(None).expect("no timeout");
        let _ = stream.read(&mut [0u8; 1]);
    });
    let (c, v) = acquire_through(&repo, port);
    server.join().expect("server thread");
    support::assert_remote_error(c, &v, "sent nothing for 2 s", "acquire");
    assert_eq!(repo.refs(), before, "no reply, no local change");
}

/// `lock run` keeps a Ctrl-C that comes while its push waits (what the
/// push took would be released first), and ends at once on a second one,
/// long before the remote's deadline.
#[test]
fn a_second_ctrl_c_ends_a_lock_run_whose_push_a_silent_remote_holds() {
    let repo = repo_waiting("10m");
    let (pushed, told) = std::sync::mpsc::channel();
    let (port, server) = fake_daemon(move |mut stream| {
        read_request(&mut stream);
        stream.write_all(&empty_advertisement()).expect("advertise");
        read_push(&mut stream);
        pushed.send(()).expect("the test waits");
        stream.set_read_timeout(None).expect("no timeout");
        let _ = stream.read(&mut [0u8; 1]);
    });
    let remote = format!("git://127.0.0.1:{port}/repo.git");
    let mut grite = support::grite_command(&repo.dir)
        .args([
            "--actor",
            A,
            "--now-ms",
            &T0.to_string(),
            "--remote",
            &remote,
        ])
        .args(["lock", "run", "issue:1", "--", "true"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("grite starts");
    told.recv_timeout(Duration::from_secs(60))
        .expect("the push came");
    let pid = grite.id().to_string();
    let interrupt = || {
        let status = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill runs");
        assert!(status.success());
    };
    interrupt();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        grite.try_wait().expect("waits").is_none(),
        "the first Ctrl-C is kept while the push is under way"
    );
    interrupt();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = grite.try_wait().expect("waits") {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a second Ctrl-C did not end grite"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    use std::os::unix::process::ExitStatusExt as _;
    assert_eq!(status.signal(), Some(2), "{status:?}");
    server.join().expect("server thread");
}

#[test]
fn an_advertisement_without_end_is_cut_off_at_its_limit() {
    let repo = repo();
    let before = repo.refs();
    let (port, server) = fake_daemon(|mut stream| {
        read_request(&mut stream);
        let mut first = pkt(&format!("{NULL} refs/heads/x\0report-status atomic\n"));
        let line = pkt(&format!("{NULL} refs/heads/{}\n", "y".repeat(200)));
        let chunk: Vec<u8> = line
            .iter()
            .copied()
            .cycle()
            .take(line.len() * 4096)
            .collect();
        first.extend_from_slice(&chunk);
        if stream.write_all(&first).is_err() {
            return;
        }
        // More, without end, until the client hangs up.
        while stream.write_all(&chunk).is_ok() {}
    });
    let (c, v) = acquire_through(&repo, port);
    server.join().expect("server thread");
    support::assert_remote_error(c, &v, "larger than the 134217728 bytes", "acquire");
    assert_eq!(repo.refs(), before);
}

#[test]
fn an_advertisement_of_a_million_refs_is_read_and_used() {
    let repo = repo();
    let (port, server) = fake_daemon(|mut stream| {
        read_request(&mut stream);
        let id = "1".repeat(40);
        let mut advertisement = pkt(&format!("{id} refs/heads/main\0report-status atomic\n"));
        for i in 0..1_000_000u32 {
            advertisement.extend_from_slice(&pkt(&format!("{id} refs/tags/t{i:07}\n")));
        }
        advertisement.extend_from_slice(b"0000");
        stream.write_all(&advertisement).expect("advertise");
        let push = read_push(&mut stream);
        // Answer every command it sent with `ok`.
        let mut report = pkt("unpack ok\n");
        for name in command_refs(&push) {
            report.extend_from_slice(&pkt(&format!("ok {name}\n")));
        }
        report.extend_from_slice(b"0000");
        stream.write_all(&report).expect("report");
    });
    let (c, v) = acquire_through(&repo, port);
    server.join().expect("server thread");
    assert_eq!(c, 0, "{v}");
    assert_eq!(v["data"]["lock"]["resource"], "issue:1");
}

#[test]
fn a_report_that_leaves_out_a_command_is_an_error() {
    let repo = repo();
    let before = repo.refs();
    let (port, server) = fake_daemon(|mut stream| {
        read_request(&mut stream);
        stream.write_all(&empty_advertisement()).expect("advertise");
        read_push(&mut stream);
        let mut report = pkt("unpack ok\n");
        report.extend_from_slice(&pkt("ok refs/heads/unrelated\n"));
        report.extend_from_slice(b"0000");
        stream.write_all(&report).expect("report");
    });
    let (c, v) = acquire_through(&repo, port);
    server.join().expect("server thread");
    support::assert_remote_error(c, &v, "did not report on refs/grite/", "acquire");
    assert_eq!(repo.refs(), before);
}

#[test]
fn a_server_message_reaches_the_terminal_escaped() {
    let repo = repo();
    let (port, server) = fake_daemon(|mut stream| {
        read_request(&mut stream);
        let mut refusal = pkt("ERR \u{1b}[2J\u{1b}]0;owned\u{7}go away\n");
        refusal.extend_from_slice(b"0000");
        stream.write_all(&refusal).expect("refuse");
    });
    let remote = format!("git://127.0.0.1:{port}/repo.git");
    let out = repo.grite_as(A, T0, &["--remote", &remote, "lock", "acquire", "issue:1"]);
    server.join().expect("server thread");
    assert_eq!(code(&out), 5);
    let err = stderr(&out);
    assert!(!err.contains('\u{1b}') && !err.contains('\u{7}'), "{err:?}");
    assert!(err.contains("\\u{1b}[2J"), "{err}");
}

#[test]
fn an_ssh_that_stalls_is_left_after_the_deadline_even_when_its_children_hold_the_pipe() {
    let repo = repo();
    let before = repo.refs();
    // A "ssh" whose own child keeps standard output open after it is
    // killed, as a shell wrapper's ssh would.
    let fake = repo.tmp.path().join("fake-ssh");
    std::fs::write(&fake, "#!/bin/sh\nsleep 60 &\nsleep 60\n").expect("script");
    std::process::Command::new("chmod")
        .args(["+x"])
        .arg(&fake)
        .status()
        .expect("chmod");
    let out = support::grite_command(&repo.dir)
        .env("GIT_SSH_COMMAND", &fake)
        .args(["--json", "--actor", A, "--now-ms", &T0.to_string()])
        .args([
            "--remote",
            "ssh://git@example.invalid/repo.git",
            "lock",
            "acquire",
            "issue:1",
        ])
        .output()
        .expect("grite runs");
    support::assert_remote_error(code(&out), &json(&out), "sent nothing for 2 s", "acquire");
    assert_eq!(repo.refs(), before);
}

#[test]
fn remote_names_that_ssh_would_take_for_options_are_refused_and_nothing_runs() {
    let repo = repo();
    let marker = repo.tmp.path().join("pwned");
    let before = repo.refs();
    for remote in [
        format!("-oProxyCommand=touch%20{}:x", marker.display()),
        format!("ssh://-oProxyCommand=touch%20{}/x", marker.display()),
        "ssh://-l@example.invalid/x".to_owned(),
        "example.invalid:-x".to_owned(),
    ] {
        let arg = format!("--remote={remote}");
        let out = repo.grite_as(A, T0, &["--json", &arg, "lock", "acquire", "issue:1"]);
        let v = json(&out);
        assert_eq!(
            (code(&out), v["error"]["code"].as_str()),
            (2, Some("invalid_args")),
            "{remote}: {v}"
        );
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("begins with `-`")),
            "{remote}: {v}"
        );
    }
    assert!(!marker.exists(), "a command ran");
    assert_eq!(repo.refs(), before);
}

#[test]
fn over_http_gits_own_low_speed_time_is_the_deadline() {
    let repo = repo();
    // grite's own limit is far away: only http.lowSpeedTime can end this.
    std::fs::write(
        repo.dir.join(".git/grite/config.toml"),
        "lock_remote_timeout = \"1h\"\n",
    )
    .expect("config");
    repo.git(&["config", "http.lowSpeedTime", "1"]);
    let before = repo.refs();
    let (port, server) = fake_daemon(|mut stream| {
        // An HTTP server that reads the request and never answers.
        let _ = stream.read(&mut [0u8; 4096]);
        let _ = stream.read(&mut [0u8; 1]);
    });
    let remote = format!("http://127.0.0.1:{port}/repo.git");
    let out = repo.grite_as(
        A,
        T0,
        &["--json", "--remote", &remote, "lock", "acquire", "issue:1"],
    );
    server.join().expect("server thread");
    support::assert_remote_error(code(&out), &json(&out), "timed out", "acquire");
    assert_eq!(repo.refs(), before);
}

#[test]
fn a_server_without_atomic_pushes_is_refused_before_locks_change_together() {
    let repo = repo();
    let before = repo.refs();
    let (port, server) = fake_daemon(|mut stream| {
        read_request(&mut stream);
        stream
            .write_all(&advertisement_with("report-status delete-refs"))
            .expect("advertise");
        // Anything it is sent is never answered with a report.
        let _ = read_push(&mut stream);
    });
    let remote = format!("git://127.0.0.1:{port}/repo.git");
    let out = repo.grite_as(
        A,
        T0,
        &[
            "--json", "--remote", &remote, "lock", "acquire", "issue:1", "issue:2",
        ],
    );
    server.join().expect("server thread");
    support::assert_remote_error(
        code(&out),
        &json(&out),
        "does not offer atomic pushes",
        "acquire",
    );
    assert_eq!(repo.refs(), before);
}
