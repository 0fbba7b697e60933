//! A remote that misbehaves: a fake git daemon on 127.0.0.1 that offers no
//! report-status, or cuts its report off mid-stream. Each failure is a clear
//! remote error, and no local ref changes.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use support::{A, Repo, T0, code, json};

fn pkt(text: &str) -> Vec<u8> {
    let mut out = format!("{:04x}", text.len() + 4).into_bytes();
    out.extend_from_slice(text.as_bytes());
    out
}

/// Serves one connection: reads the request, sends `advertisement`, then
/// (if given) reads the push for a moment and sends `reply`, and closes.
fn fake_daemon(
    advertisement: Vec<u8>,
    reply: Option<Vec<u8>>,
) -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("a client");
        stream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .expect("timeout");
        let mut request = [0u8; 4096];
        let _ = stream.read(&mut request);
        stream.write_all(&advertisement).expect("advertise");
        if let Some(reply) = reply {
            let mut push = Vec::new();
            let mut chunk = [0u8; 4096];
            while let Ok(n) = stream.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                push.extend_from_slice(&chunk[..n]);
            }
            assert!(
                push.windows(4).any(|w| w == b"PACK"),
                "the client sent its pack"
            );
            stream.write_all(&reply).expect("reply");
        }
    });
    (port, server)
}

fn empty_repository_advertisement(capabilities: &str) -> Vec<u8> {
    let mut out = pkt(&format!(
        "{} capabilities^{{}}\0{capabilities}\n",
        "0".repeat(40)
    ));
    out.extend_from_slice(b"0000");
    out
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
    let repo = Repo::new();
    let before = repo.refs();
    let (port, server) = fake_daemon(
        empty_repository_advertisement("delete-refs ofs-delta"),
        None,
    );
    let (c, v) = acquire_through(&repo, port);
    server.join().expect("server thread");
    support::assert_remote_error(c, &v, "report-status", "acquire");
    assert_eq!(repo.refs(), before);
}

#[test]
fn a_report_cut_off_mid_stream_is_an_error_that_changes_nothing() {
    let repo = Repo::new();
    let before = repo.refs();
    let mut cut = pkt("unpack ok\n");
    cut.extend_from_slice(b"0030ok refs/gr");
    let (port, server) = fake_daemon(
        empty_repository_advertisement("report-status atomic"),
        Some(cut),
    );
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
    let repo = Repo::new();
    let before = repo.refs();
    let mut refusal = pkt("ERR access denied: read-only mirror\n");
    refusal.extend_from_slice(b"0000");
    let (port, server) = fake_daemon(refusal, None);
    let (c, v) = acquire_through(&repo, port);
    server.join().expect("server thread");
    assert_eq!(c, 5, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("access denied: read-only mirror")),
        "{v}"
    );
    assert_eq!(repo.refs(), before);
}
