//! A remote acquire and release through `--remote`, against `git push
//! --force-with-lease` of one ref to the same remote, over `file://`, a
//! `git daemon`, and (where lighttpd is installed) smart HTTP and HTTPS
//! through `git http-backend`, all on 127.0.0.1. Run with `cargo bench --bench remote`
//! (`-- --quick` for fewer runs). Prints figures and ratios; asserts
//! nothing.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{A, Daemon, HttpServer, git};

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let runs = if quick { 5 } else { 21 };
    let tmp = tempfile::tempdir().expect("temp dir");
    let base = tmp.path();
    let remote = support::seeded_remote(base);
    git(base, &["clone", "-q", "remote.git", "clone"]);
    let clone = base.join("clone");
    let daemon = Daemon::start(base);
    let http = HttpServer::start(base);
    let mut transports = vec![
        ("file://", format!("file://{}", remote.display())),
        (
            "git daemon",
            format!("git://127.0.0.1:{}/remote.git", daemon.port),
        ),
    ];
    // grite and git both trust the server's throwaway certificate through
    // GIT_SSL_CAINFO (which would override an http.sslCAInfo setting).
    let certificate = http
        .as_ref()
        .map(|server| server.certificate.display().to_string());
    if let Some(server) = &http {
        transports.push((
            "HTTP",
            format!("http://127.0.0.1:{}/git/remote.git", server.port),
        ));
        transports.push((
            "HTTPS",
            format!("https://127.0.0.1:{}/git/remote.git", server.tls_port),
        ));
    }

    println!(
        "{:<48} {:>10} {:>12} {:>7}",
        "operation (median)", "grite", "git push", "ratio"
    );
    for (transport, (label, url)) in transports.into_iter().enumerate() {
        let target = format!("refs/bench/lock-{transport}");
        let (mut acquire, mut release, mut push) = (vec![], vec![], vec![]);
        for i in 0..runs {
            let resource = format!("issue:{label}-{i}");
            acquire.push(time(|| {
                grite(&clone, &url, &certificate, &["lock", "acquire", &resource])
            }));
            release.push(time(|| {
                grite(&clone, &url, &certificate, &["lock", "release", &resource])
            }));
            // One ref moved with a lease on its old value, as a careful
            // `git push` of a lock would.
            git(
                &clone,
                &["commit", "-q", "--allow-empty", "-m", &format!("bench {i}")],
            );
            let old = if i == 0 {
                String::new()
            } else {
                git(&clone, &["rev-parse", "HEAD^"]).trim().to_owned()
            };
            let lease = format!("--force-with-lease={target}:{old}");
            let refspec = format!("HEAD:{target}");
            push.push(time(|| {
                let mut command = support::git_command(&clone);
                command.args(["push", "-q", &lease, &url, &refspec]);
                command.envs(certificate.iter().map(|c| ("GIT_SSL_CAINFO", c)));
                assert!(command.status().expect("git push runs").success());
            }));
        }
        row(
            &format!("acquire over {label} vs one push"),
            &acquire,
            &push,
        );
        let cycle: Vec<Duration> = acquire.iter().zip(&release).map(|(a, r)| *a + *r).collect();
        let two_pushes: Vec<Duration> = push.iter().map(|p| *p * 2).collect();
        row(
            &format!("acquire + release over {label} vs two pushes"),
            &cycle,
            &two_pushes,
        );
        if label == "file://" {
            let handoff = handoffs(&clone, &url, runs.min(11));
            println!(
                "{:<48} {:>8.1}ms (median; the target is 150 ms)",
                format!("hand-off over {label}: release to --wait"),
                median(&handoff).as_secs_f64() * 1e3
            );
        }
    }
}

/// From the end of a release to the end of the acquire of a waiter that
/// was already waiting, through the remote at `url`, `n` times.
fn handoffs(clone: &Path, url: &str, n: usize) -> Vec<Duration> {
    (0..n)
        .map(|i| {
            let resource = format!("issue:handoff-{i}");
            grite(clone, url, &None, &["lock", "acquire", &resource]);
            let mut waiter = Command::new(env!("CARGO_BIN_EXE_grite"))
                .current_dir(clone)
                .args(["--actor", support::B, "--remote", url])
                .args(["lock", "acquire", &resource, "--wait=1m"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("the waiter starts");
            std::thread::sleep(Duration::from_millis(500));
            grite(clone, url, &None, &["lock", "release", &resource]);
            let released = Instant::now();
            assert!(waiter.wait().expect("the waiter ends").success());
            released.elapsed()
        })
        .collect()
}

fn grite(dir: &Path, url: &str, certificate: &Option<String>, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_grite"))
        .current_dir(dir)
        .envs(certificate.iter().map(|c| ("GIT_SSL_CAINFO", c)))
        .args(["--actor", A, "--remote", url])
        .args(args)
        .output()
        .expect("grite runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn time(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn row(label: &str, ours: &[Duration], theirs: &[Duration]) {
    let (a, b) = (median(ours), median(theirs));
    println!(
        "{label:<48} {:>8.1}ms {:>10.1}ms {:>6.2}x",
        a.as_secs_f64() * 1e3,
        b.as_secs_f64() * 1e3,
        a.as_secs_f64() / b.as_secs_f64()
    );
}
