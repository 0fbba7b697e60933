//! Whole-process timings of `grite lock` against the git commands that do
//! the same ref work, side by side with their ratios. Run with
//! `cargo bench --bench cli` (`-- --quick` for fewer repetitions). It prints
//! figures; it asserts nothing, since machines are noisy.

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ACTOR: &str = "e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0";
/// The holder of the locks planted beside the measured ones.
const OTHER: &str = "0123456789abcdef0123456789abcdef";
/// 2100-01-01: planted locks that stay live on the real clock.
const FAR_FUTURE_MS: u64 = 4_102_444_800_000;
/// 2024-01-15 11:00:00 UTC: the locks below expire an hour later.
const T0_MS: u64 = 1_705_316_400_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(PEAK_OF) {
        let mut command = Command::new(&args[2]);
        command.args(&args[3..]);
        println!("{}", peak_of_child(&mut command));
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let reps = if quick { 5 } else { 25 };
    let big = if quick { 2_000 } else { 10_000 };
    let huge = if quick { 20_000 } else { 100_000 };
    let tmp = tempfile::tempdir().expect("temp dir");
    println!(
        "{:<58} {:>10} {:>10} {:>7}",
        "operation (median of runs)", "grite", "git", "ratio"
    );

    // acquire and release of one lock against create and delete of one ref.
    let repo = new_repo(tmp.path(), "single");
    let blob = git_out(&repo, &["hash-object", "-w", "--stdin"], b"x");
    let (mut acquire, mut create, mut release, mut delete) = (vec![], vec![], vec![], vec![]);
    for i in 0..reps {
        let resource = format!("issue:{i}");
        acquire.push(time(|| {
            grite(&repo, &["lock", "acquire", &resource, "--ttl", "30m"])
        }));
        release.push(time(|| grite(&repo, &["lock", "release", &resource])));
        let name = format!("refs/bench/{i}");
        create.push(time(|| git(&repo, &["update-ref", &name, blob.trim(), ""])));
        delete.push(time(|| git(&repo, &["update-ref", "-d", &name])));
    }
    row("acquire vs git update-ref (create)", &acquire, &create);
    row("release vs git update-ref -d", &release, &delete);

    // `run -- true` against the acquire and release it stands for.
    let (mut ran, mut pair) = (vec![], vec![]);
    for i in 0..reps {
        let resource = format!("issue:run-{i}");
        ran.push(time(|| {
            grite(&repo, &["lock", "run", &resource, "--", "true"])
        }));
        pair.push(time(|| {
            grite(&repo, &["lock", "acquire", &resource]);
            grite(&repo, &["lock", "release", &resource]);
        }));
    }
    row("run -- true vs acquire + release", &ran, &pair);
    let handoff = handoffs(&repo, reps.min(15));
    println!(
        "{:<58} {:>8.1}ms (median; the target is 50 ms)",
        "hand-off: a release to the --wait waiter's acquire",
        median(&handoff).as_secs_f64() * 1e3
    );

    // acquire + release among unrelated live locks (another actor's), loose
    // as written and packed as after `git pack-refs`. More than 1,000
    // loose ones are packed by grite after its first acquire among them
    // (`src/store/upkeep.rs`): those rows time what follows, once packed.
    for (count, packed) in [
        (0, false),
        (1_000, false),
        (big, false),
        (big, true),
        (huge, false),
        (huge, true),
    ] {
        let repo = new_repo(tmp.path(), &format!("among-{count}-{packed}"));
        support::plant_locks(&repo, "bench", count, OTHER, FAR_FUTURE_MS);
        if packed {
            git(&repo, &["pack-refs", "--all"]);
        }
        grite(&repo, &["lock", "status"]); // the record cache, as in use
        let packed_by_grite = !packed && count > 1_000 && {
            grite(&repo, &["lock", "acquire", "issue:first", "--ttl", "30m"]);
            grite(&repo, &["lock", "release", "issue:first"]);
            wait_until_packed(&repo)
        };
        let blob = git_out(&repo, &["hash-object", "-w", "--stdin"], b"x");
        let (mut ours, mut theirs) = (vec![], vec![]);
        for i in 0..reps.min(if count >= huge { 5 } else { 11 }) {
            let resource = format!("issue:among-{i}");
            ours.push(time(|| {
                grite(&repo, &["lock", "acquire", &resource, "--ttl", "30m"]);
                grite(&repo, &["lock", "release", &resource]);
            }));
            let name = format!("refs/bench/{i}");
            theirs.push(time(|| {
                git(&repo, &["update-ref", &name, blob.trim(), ""]);
                git(&repo, &["update-ref", "-d", &name]);
            }));
        }
        let kind = match (packed, packed_by_grite) {
            (true, _) => "packed",
            (false, true) => "loose, packed by grite",
            (false, false) => "loose",
        };
        row(
            &format!("acquire + release, {count} other locks ({kind}) vs update-ref"),
            &ours,
            &theirs,
        );
    }

    for count in [1_000, big, huge] {
        let repo = new_repo(tmp.path(), &format!("status-{count}"));
        support::plant_locks(&repo, "bench", count, ACTOR, T0_MS + 3_600_000);
        let n = reps.min(if count >= huge { 5 } else { 9 });
        let grite_status = runs(n, || {
            grite_at(&repo, T0_MS, &["--json", "lock", "status"]);
        });
        let git_pipeline = runs(n, || {
            cat_file_pipeline(&repo);
        });
        row(
            &format!("status --json, {count} locks vs for-each-ref | cat-file"),
            &grite_status,
            &git_pipeline,
        );
        let now = T0_MS.to_string();
        let peak = peak_memory(
            &repo,
            env!("CARGO_BIN_EXE_grite"),
            &["--now-ms", &now, "--json", "lock", "status"],
        );
        println!(
            "{:<58} {:>8.1}MB",
            "  peak memory of that status",
            peak as f64 / 1024.0
        );
    }

    for (count, packed) in [(big, false), (big, true), (huge, true)] {
        let template = new_repo(tmp.path(), &format!("gc-{count}-{packed}"));
        support::plant_locks(&template, "bench", count, ACTOR, T0_MS);
        if packed {
            git(&template, &["pack-refs", "--all"]);
        }
        let refs = git_out(
            &template,
            &["for-each-ref", "--format=%(refname)", "refs/grite/locks/"],
            b"",
        );
        let script: String = refs.lines().map(|r| format!("delete {r}\n")).collect();
        let (mut ours, mut theirs) = (vec![], vec![]);
        for i in 0..reps.min(5) {
            let a = copy_repo(
                &template,
                &tmp.path().join(format!("gc-{count}-{packed}-a{i}")),
            );
            ours.push(time(|| grite_at(&a, T0_MS + 7_200_000, &["lock", "gc"])));
            assert_eq!(
                git_out(&a, &["for-each-ref", "refs/grite/locks/"], b""),
                "",
                "gc removed every lock"
            );
            let b = copy_repo(
                &template,
                &tmp.path().join(format!("gc-{count}-{packed}-b{i}")),
            );
            theirs.push(time(|| {
                git_out(&b, &["update-ref", "--stdin"], script.as_bytes());
            }));
        }
        let kind = if packed { "packed" } else { "loose" };
        row(
            &format!("gc of {count} expired locks ({kind} refs) vs update-ref --stdin"),
            &ours,
            &theirs,
        );
    }
}

/// From the end of a holder's release to the end of the acquire of a
/// waiter that was already waiting, `n` times.
fn handoffs(repo: &Path, n: usize) -> Vec<Duration> {
    let other = "0123456789abcdef0123456789abcdef";
    (0..n)
        .map(|i| {
            let resource = format!("issue:handoff-{i}");
            grite(repo, &["lock", "acquire", &resource]);
            let waiter = Command::new(env!("CARGO_BIN_EXE_grite"))
                .current_dir(repo)
                .args(["--actor", other, "lock", "acquire", &resource, "--wait=1m"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            let mut waiter = waiter.expect("the waiter starts");
            std::thread::sleep(Duration::from_millis(300));
            grite(repo, &["lock", "release", &resource]);
            let released = Instant::now();
            let status = waiter.wait().expect("the waiter ends");
            assert!(status.success(), "the waiter got the lock");
            released.elapsed()
        })
        .collect()
}

fn row(label: &str, ours: &[Duration], theirs: &[Duration]) {
    let (a, b) = (median(ours), median(theirs));
    println!(
        "{label:<58} {:>8.1}ms {:>8.1}ms {:>6.2}x",
        a.as_secs_f64() * 1e3,
        b.as_secs_f64() * 1e3,
        a.as_secs_f64() / b.as_secs_f64()
    );
}

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn time(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn runs(n: usize, mut f: impl FnMut()) -> Vec<Duration> {
    f(); // warm the page cache
    (0..n).map(|_| time(&mut f)).collect()
}

fn new_repo(base: &Path, name: &str) -> PathBuf {
    let dir = base.join(name);
    git(base, &["init", "-q", dir.to_str().expect("utf-8 path")]);
    std::fs::create_dir_all(dir.join(".git/grite")).expect("mkdir");
    std::fs::write(
        dir.join(".git/grite/config.toml"),
        format!("default_actor = \"{ACTOR}\"\nlock_grace = \"0s\"\n"),
    )
    .expect("config");
    dir
}

fn copy_repo(from: &Path, to: &Path) -> PathBuf {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp runs");
    assert!(status.success());
    to.to_owned()
}

fn cat_file_pipeline(repo: &Path) {
    let list = git_out(
        repo,
        &[
            "for-each-ref",
            "--format=%(objectname):lock.json",
            "refs/grite/locks/",
        ],
        b"",
    );
    git_out(repo, &["cat-file", "--batch"], list.as_bytes());
}

/// How the bench runs itself to measure another program's memory.
const PEAK_OF: &str = "--peak-memory-of";

/// The peak resident memory of `program ARGS` in `dir`, in KiB. Linux
/// starts a new program's peak at that of the process that started it,
/// and this one has held a hundred thousand planted locks: the program is
/// started by a fresh, small copy of this bench instead.
fn peak_memory(dir: &Path, program: &str, args: &[&str]) -> u64 {
    let out = run(
        Command::new(std::env::current_exe().expect("the bench's path"))
            .current_dir(dir)
            .arg(PEAK_OF)
            .arg(program)
            .args(args),
        b"",
    );
    out.trim().parse().expect("a number of KiB")
}

/// The peak resident memory of `command` run to its end, in KiB, from
/// the kernel's account of that one child. The child is forked (not
/// spawned sharing our memory, as std would), so that its peak starts
/// from this small process's.
#[expect(clippy::zombie_processes, reason = "wait4 below reaps the child")]
fn peak_of_child(command: &mut Command) -> u64 {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: the hook does nothing; having one makes std fork.
    unsafe { command.pre_exec(|| Ok(())) };
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("command starts");
    let mut stdout = child.stdout.take().expect("stdout");
    let drain = std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let pid = i32::try_from(child.id()).expect("a pid");
    let mut status = 0;
    // SAFETY: `rusage` is plain data the kernel fills in; `pid` is our
    // child, not yet waited for.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::wait4(pid, &mut status, 0, &mut usage), pid);
        usage
    };
    let _ = drain.join();
    u64::try_from(usage.ru_maxrss).unwrap_or(0)
}

/// Waits for the `git pack-refs` grite started in the background to have
/// packed the lock refs of `repo`, a minute at most; says whether it did
/// (not where the user's git configuration turns automatic gc off).
fn wait_until_packed(repo: &Path) -> bool {
    let locks = repo.join(".git/refs/grite/locks");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_dir(&locks).map_or(0, Iterator::count) > 1_000 {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

fn grite(repo: &Path, args: &[&str]) {
    run(
        Command::new(env!("CARGO_BIN_EXE_grite"))
            .current_dir(repo)
            .args(args),
        b"",
    );
}

fn grite_at(repo: &Path, now: u64, args: &[&str]) {
    let now = now.to_string();
    run(
        Command::new(env!("CARGO_BIN_EXE_grite"))
            .current_dir(repo)
            .args(["--now-ms", &now])
            .args(args),
        b"",
    );
}

fn git(dir: &Path, args: &[&str]) {
    git_out(dir, args, b"");
}

fn git_out(dir: &Path, args: &[&str], input: &[u8]) -> String {
    run(Command::new("git").current_dir(dir).args(args), input)
}

fn run(cmd: &mut Command, input: &[u8]) -> String {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("command starts");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("command finishes");
    writer
        .join()
        .expect("writer thread")
        .expect("stdin written");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}
