//! A remote acquire and release through `--remote`, against `git push
//! --force-with-lease` of one ref to the same remote, over `file://`, a
//! `git daemon`, and (where lighttpd is installed) smart HTTP and HTTPS
//! through `git http-backend`, all on 127.0.0.1; the same with 10,000
//! locks on the remote; and the throughput of 8 and 16 clones taking
//! locks through one remote at once against one clone alone. Run with
//! `cargo bench --bench remote` (`-- --quick` for fewer runs). Prints
//! figures and ratios; asserts nothing.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{A, Daemon, HttpServer, git};

/// The holder of the locks planted on a crowded remote.
const OTHER: &str = "0123456789abcdef0123456789abcdef";
/// 2100-01-01: planted locks that stay live on the real clock.
const FAR_FUTURE_MS: u64 = 4_102_444_800_000;

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
            push.push(careful_push(&clone, &url, &certificate, &target, i));
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
    crowded_remote(base, runs, quick);
    let daemon_url = |name: &str| format!("git://127.0.0.1:{}/{name}", daemon.port);
    let path_url = |name: &str| base.join(name).display().to_string();
    let urls: [(&str, UrlOf); 2] = [("a path", &path_url), ("git daemon", &daemon_url)];
    for (label, url_of) in urls {
        let (alone, _, _) = fleet(base, 1, quick, url_of);
        println!(
            "{:<48} {alone:>8.1}/s",
            format!("1 clone acquiring through {label}")
        );
        for clones in [8, 16] {
            let (rate, failures, packs) = fleet(base, clones, quick, url_of);
            println!(
                "{:<48} {rate:>8.1}/s {:>9.2}x of one clone; {failures} failed; at most {packs} packs in a clone",
                format!("{clones} clones acquiring through {label}"),
                rate / alone
            );
        }
    }
}

/// The time of the `i`th push of a new commit from `clone` to `target` on
/// `url`, with a lease on the ref's old value, as a careful `git push` of
/// a lock would.
fn careful_push(
    clone: &Path,
    url: &str,
    certificate: &Option<String>,
    target: &str,
    i: usize,
) -> Duration {
    git(
        clone,
        &["commit", "-q", "--allow-empty", "-m", &format!("bench {i}")],
    );
    let old = if i == 0 {
        String::new()
    } else {
        git(clone, &["rev-parse", "HEAD^"]).trim().to_owned()
    };
    let lease = format!("--force-with-lease={target}:{old}");
    let refspec = format!("HEAD:{target}");
    time(|| {
        let mut command = support::git_command(clone);
        command.args(["push", "-q", &lease, url, &refspec]);
        command.envs(certificate.iter().map(|c| ("GIT_SSL_CAINFO", c)));
        assert!(command.status().expect("git push runs").success());
    })
}

/// The URL of a remote on the bench's servers, by its name.
type UrlOf<'a> = &'a dyn Fn(&str) -> String;

/// An acquire over file:// of a remote that holds 10,000 other live
/// locks (receive-pack advertises every one), against one push.
fn crowded_remote(base: &Path, runs: usize, quick: bool) {
    let count = if quick { 2_000 } else { 10_000 };
    git(base, &["clone", "-q", "--bare", "seed", "crowded.git"]);
    let remote = base.join("crowded.git");
    support::plant_locks(&remote, "bulk", count, OTHER, FAR_FUTURE_MS);
    git(base, &["clone", "-q", "crowded.git", "crowded"]);
    let clone = base.join("crowded");
    let url = format!("file://{}", remote.display());
    // The first read fetches every lock once; what is measured is the
    // steady state of a clone in use.
    grite(&clone, &url, &None, &["lock", "status"]);
    let target = "refs/bench/crowded";
    let (mut acquire, mut push) = (vec![], vec![]);
    for i in 0..runs.min(11) {
        let resource = format!("issue:crowded-{i}");
        acquire.push(time(|| {
            grite(&clone, &url, &None, &["lock", "acquire", &resource])
        }));
        push.push(careful_push(&clone, &url, &None, target, i));
    }
    row(
        &format!("acquire over file://, {count} locks there"),
        &acquire,
        &push,
    );
}

/// `clones` clones of a fresh remote, each acquiring resources of its own
/// through `url_of(remote name)` at once: acquires per second in all, how
/// many failed, and the most pack files one clone ended with.
fn fleet(base: &Path, clones: usize, quick: bool, url_of: UrlOf) -> (f64, usize, usize) {
    let each = if quick { 3 } else { 10 };
    let name = format!("fleet-{clones}-{}.git", fleet_serial());
    git(base, &["clone", "-q", "--bare", "seed", &name]);
    let url = url_of(&name);
    let dirs: Vec<_> = (0..clones)
        .map(|i| {
            let dir = base.join(format!("{name}-clone{i}"));
            git(
                base,
                &["clone", "-q", &name, dir.to_str().expect("utf-8 path")],
            );
            dir
        })
        .collect();
    let started = Instant::now();
    let failures: usize = std::thread::scope(|scope| {
        let workers: Vec<_> = dirs
            .iter()
            .enumerate()
            .map(|(i, dir)| {
                let url = &url;
                scope.spawn(move || {
                    (0..each)
                        .filter(|k| {
                            !Command::new(env!("CARGO_BIN_EXE_grite"))
                                .current_dir(dir)
                                .args(["--actor", &format!("{:032x}", i + 1), "--remote", url])
                                .args(["lock", "acquire", &format!("issue:fleet-{i}-{k}")])
                                .output()
                                .expect("grite runs")
                                .status
                                .success()
                        })
                        .count()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a worker"))
            .sum()
    });
    let rate = (clones * each) as f64 / started.elapsed().as_secs_f64();
    let packs = dirs.iter().map(|d| pack_count(d)).max().unwrap_or(0);
    (rate, failures, packs)
}

fn fleet_serial() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static SERIAL: AtomicUsize = AtomicUsize::new(0);
    SERIAL.fetch_add(1, Ordering::Relaxed)
}

fn pack_count(clone: &Path) -> usize {
    std::fs::read_dir(clone.join(".git/objects/pack")).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
            .count()
    })
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
