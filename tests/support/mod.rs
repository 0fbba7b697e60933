//! Shared helpers for the integration tests: temporary repositories made
//! with the `git` program, and the `grite` binary run in them.

#![allow(dead_code)] // each test crate uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

pub const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/// 2024-01-15 11:00:00 UTC, the base of every test clock.
pub const T0: u64 = 1_705_316_400_000;

pub fn actor(i: usize) -> String {
    format!("{i:032x}")
}

/// Runs `git` with a fixed identity and no user configuration.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_command(dir).args(args).output().expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 from git")
}

pub fn git_command(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .env("GIT_AUTHOR_DATE", "2024-01-15T11:00:00Z")
        .env("GIT_COMMITTER_DATE", "2024-01-15T11:00:00Z");
    cmd
}

/// A temporary repository, removed when dropped.
pub struct Repo {
    pub tmp: tempfile::TempDir,
    pub dir: PathBuf,
}

impl Repo {
    /// A new repository with one commit on `main`.
    pub fn new() -> Repo {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join("repo");
        std::fs::create_dir(&dir).expect("create repo dir");
        git(&dir, &["init", "-q", "-b", "main"]);
        std::fs::write(dir.join("README"), "x\n").expect("write file");
        git(&dir, &["add", "README"]);
        git(&dir, &["commit", "-q", "-m", "init"]);
        // Tests choose the grace period they exercise; 5 s is the default.
        std::fs::create_dir_all(dir.join(".git/grite")).expect("grite dir");
        std::fs::write(dir.join(".git/grite/config.toml"), "lock_grace = \"5s\"\n")
            .expect("config");
        Repo { tmp, dir }
    }

    /// `grite ARGS` in the repository, as `actor` at `now` (ms).
    pub fn grite_as(&self, actor: &str, now: u64, args: &[&str]) -> Output {
        grite_in(&self.dir, actor, now, args)
    }

    pub fn git(&self, args: &[&str]) -> String {
        git(&self.dir, args)
    }

    /// Every ref with its value: the state a failed command must not change.
    pub fn refs(&self) -> String {
        self.git(&["for-each-ref", "--format=%(objectname) %(refname)"])
    }

    pub fn lock_refs(&self) -> String {
        self.git(&[
            "for-each-ref",
            "--format=%(objectname) %(refname)",
            "refs/grite/locks/",
        ])
    }

    pub fn fsck(&self) {
        fsck(&self.dir);
    }
}

/// `git fsck --strict` of the repository at `dir` passes and reports
/// nothing but notices (an empty bare repository's unborn HEAD).
pub fn fsck(dir: &Path) {
    let out = git_command(dir)
        .args(["fsck", "--strict", "--no-dangling"])
        .output()
        .expect("git fsck runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.lines().all(|l| l.starts_with("notice:")),
        "git fsck --strict in {}: {}{stderr}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Race rounds: the environment variable `var` if set, else `default`.
pub fn rounds_from_env(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(default)
}

/// `grite` in `dir`, with no user configuration. git's automatic
/// maintenance, which grite starts in the background once enough objects
/// pile up (as git does), is off (`gc.auto = 0`): a gc running beside the
/// tests' own `git fsck` would pull objects from under it.
/// `tests/remote_load.rs` turns it back on.
pub fn grite_command(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_grite"));
    cmd.current_dir(dir)
        .env_remove("GRITE_ACTOR")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "gc.auto")
        .env("GIT_CONFIG_VALUE_0", "0");
    cmd
}

pub fn grite_in(dir: &Path, actor: &str, now: u64, args: &[&str]) -> Output {
    let now = now.to_string();
    let mut cmd = grite_command(dir);
    cmd.args(["--actor", actor, "--now-ms", &now]).args(args);
    cmd.output().expect("grite runs")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("utf-8 stdout")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("utf-8 stderr")
}

pub fn code(out: &Output) -> i32 {
    out.status.code().expect("exited, not killed")
}

/// The parsed JSON envelope on standard output.
pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}): {}{}",
            stdout(out),
            stderr(out)
        )
    })
}

/// Runs `git ARGS` with `input` on standard input; returns its trimmed
/// standard output.
pub fn git_with_input(dir: &Path, args: &[&str], input: &str) -> String {
    use std::io::Write as _;
    let mut child = git_command(dir)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("git runs");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.as_bytes())
        .expect("git reads its input");
    let out = child.wait_with_output().expect("git finishes");
    assert!(out.status.success(), "git {args:?} failed");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

/// Points `ref_name` at `content` written with git plumbing alone, as
/// other tools would: a blob, or (`as_commit`) a commit whose tree holds it
/// as `lock.json`. Returns the id the ref now has.
pub fn plant_with_git(repo: &Repo, ref_name: &str, content: &str, as_commit: bool) -> String {
    let blob = git_with_input(&repo.dir, &["hash-object", "-w", "--stdin"], content);
    let id = if as_commit {
        let tree = git_with_input(
            &repo.dir,
            &["mktree"],
            &format!("100644 blob {blob}\tlock.json\n"),
        );
        repo.git(&["commit-tree", &tree, "-m", "lock"])
            .trim()
            .to_owned()
    } else {
        blob
    };
    repo.git(&["update-ref", ref_name, &id]);
    id
}

/// The version shard ref that an acquire of `resource` (not a `repo:`
/// one, which advances them all) advances.
pub fn shard_ref_of(resource: &str) -> String {
    use grite_locks::lease::{Resource, Shards};
    match Shards::of(&Resource::parse(resource).expect("valid resource")) {
        Shards::One(shard) => grite_locks::store::shard_ref(shard),
        Shards::All => panic!("{resource} advances every shard"),
    }
}

/// Points `refs/grite/lock-version` at a version commit as earlier versions
/// of this tool wrote it, the one version of the repository.
pub fn plant_single_version(repo: &Repo, highest_token: u64) {
    let content = format!(r#"{{"version":9,"highest_token":{highest_token},"writer":"old"}}"#);
    let blob = git_with_input(&repo.dir, &["hash-object", "-w", "--stdin"], &content);
    let tree = git_with_input(
        &repo.dir,
        &["mktree"],
        &format!("100644 blob {blob}\tversion.json\n"),
    );
    let commit = repo.git(&["commit-tree", &tree, "-m", "lock version 9"]);
    repo.git(&["update-ref", "refs/grite/lock-version", commit.trim()]);
}

/// The record stored for `resource`, as `git` reads it.
pub fn stored_record(dir: &Path, resource: &str) -> Option<serde_json::Value> {
    let name = grite_locks::lease::Resource::parse(resource)
        .expect("valid resource")
        .ref_name();
    let out = git_command(dir)
        .args(["cat-file", "-p", &format!("{name}:lock.json")])
        .output()
        .expect("git runs");
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).expect("lock.json is JSON"))
}

/// Asserts a `remote_error` (exit 5) whose message says `needle`.
pub fn assert_remote_error(code: i32, v: &serde_json::Value, needle: &str, context: &str) {
    assert_eq!(
        (code, v["error"]["code"].as_str()),
        (5, Some("remote_error")),
        "{context}: {v}"
    );
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(needle), "{context}: {message}");
}

/// `base/remote.git`: a bare remote with one branch, `main`, holding one
/// empty commit, as a team's shared repository would be.
pub fn seeded_remote(base: &Path) -> PathBuf {
    git(base, &["init", "-q", "-b", "main", "seed"]);
    git(
        &base.join("seed"),
        &["commit", "-q", "--allow-empty", "-m", "init"],
    );
    git(base, &["clone", "-q", "--bare", "seed", "remote.git"]);
    base.join("remote.git")
}

/// A `git daemon` serving `base` with receive-pack enabled, on a free
/// loopback port; stopped when dropped.
pub struct Daemon {
    _server: Running,
    pub port: u16,
}

impl Daemon {
    pub fn start(base: &Path) -> Daemon {
        Daemon::start_on(base, "127.0.0.1")
    }

    /// On the loopback address `address` (`127.0.0.1` or `::1`).
    pub fn start_on(base: &Path, address: &str) -> Daemon {
        let port = std::net::TcpListener::bind((address, 0))
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        // The daemon itself, not the `git` wrapper that would fork it, so
        // that killing the child stops the server.
        let mut daemon = Command::new(git_exec_path().join("git-daemon"));
        daemon
            .args(["--export-all", "--enable=receive-pack", "--reuseaddr"])
            .arg(format!("--listen={address}"))
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", base.display()))
            .arg(base);
        Daemon {
            _server: Running::start_on(daemon, address, &[port], "git daemon"),
            port,
        }
    }
}

/// Where the `git` on PATH keeps its helper programs.
fn git_exec_path() -> PathBuf {
    let out = Command::new("git")
        .arg("--exec-path")
        .output()
        .expect("git");
    PathBuf::from(String::from_utf8(out.stdout).expect("utf-8").trim())
}

/// A server process started for a test; killed when dropped.
struct Running(Child);

impl Running {
    /// Starts `command` quietly and waits until it listens on `ports`.
    fn start(command: Command, ports: &[u16], what: &str) -> Running {
        Running::start_on(command, "127.0.0.1", ports, what)
    }

    /// Like [`Running::start`], listening on `address`.
    fn start_on(mut command: Command, address: &str, ports: &[u16], what: &str) -> Running {
        let child = command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{what} does not start: {e}"));
        // Owned before waiting, so that a server that never listens is
        // still stopped.
        let running = Running(child);
        for port in ports {
            wait_for_listener(address, *port, what);
        }
        running
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether the server program `path` exists. The README's test command
/// must pass with only Rust and git, so a missing one skips its tests with
/// a notice; `.ci/run` installs them all and sets `GRITE_REQUIRE_SERVERS`,
/// which makes a missing one a failure, so CI never skips.
fn server_installed(path: &Path, package: &str) -> bool {
    if path.exists() {
        return true;
    }
    assert!(
        std::env::var_os("GRITE_REQUIRE_SERVERS").is_none(),
        "GRITE_REQUIRE_SERVERS is set but {} is missing",
        path.display()
    );
    eprintln!(
        "notice: {} is missing; its transport tests did not run (apt-get install {package})",
        path.display()
    );
    false
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn wait_for_listener(address: &str, port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect((address, port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// lighttpd on free loopback ports running `git http-backend` as CGI for
/// the repositories under `base`: `/git/<repo>` anonymous (pushes
/// allowed), `/auth/<repo>` behind basic authentication of [`HTTP_USER`]
/// with [`HTTP_PASSWORD`]; plain HTTP on `port`, and the same over TLS on
/// `tls_port` with a throwaway certificate for 127.0.0.1 (`certificate`,
/// the PEM to trust). Stopped when dropped.
pub struct HttpServer {
    _server: Running,
    pub port: u16,
    /// Where plain files are served from, at `/`.
    pub document_root: PathBuf,
    pub tls_port: u16,
    pub certificate: PathBuf,
}

pub const HTTP_USER: &str = "ann";
pub const HTTP_PASSWORD: &str = "s3cr3t-pa55";

impl HttpServer {
    /// `None`, with a notice, where lighttpd is not installed (see
    /// [`server_installed`]). Its state goes in `base/http`.
    pub fn start(base: &Path) -> Option<HttpServer> {
        let lighttpd = Path::new("/usr/sbin/lighttpd");
        let needs = [
            (lighttpd, "lighttpd"),
            (
                Path::new("/usr/lib/lighttpd/mod_openssl.so"),
                "lighttpd-mod-openssl",
            ),
            (Path::new("/usr/bin/openssl"), "openssl"),
        ];
        if !needs
            .iter()
            .all(|(path, package)| server_installed(path, package))
        {
            return None;
        }
        let dir = &base.join("http");
        let document_root = dir.join("www");
        std::fs::create_dir_all(&document_root).expect("mkdir");
        let certificate = dir.join("cert.pem");
        let key = dir.join("key.pem");
        let status = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=127.0.0.1"])
            .args(["-addext", "subjectAltName=IP:127.0.0.1"])
            .args(["-addext", "basicConstraints=critical,CA:FALSE"])
            .args(["-addext", "extendedKeyUsage=serverAuth"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&certificate)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(status.success(), "openssl made no certificate");
        std::fs::write(dir.join("users"), format!("{HTTP_USER}:{HTTP_PASSWORD}\n")).expect("users");
        let backend = git_exec_path().join("git-http-backend");
        let (port, tls_port) = (free_port(), free_port());
        // As git-http-backend(1) shows for lighttpd; receive-pack is on for
        // anonymous users too, so that /git/ takes pushes.
        let config = format!(
            r#"server.modules = ("mod_alias", "mod_setenv", "mod_auth", "mod_authn_file", "mod_cgi", "mod_openssl")
server.document-root = "{www}"
server.bind = "127.0.0.1"
server.port = {port}
server.errorlog = "{log}"
alias.url = ("/git" => "{backend}", "/auth" => "{backend}")
# Only the backend is CGI (a static file stays a file). The condition is
# checked again on the script's own URL, /git, once the path info is split off.
$HTTP["url"] =~ "^/(git|auth)($|/)" {{
    cgi.assign = ("" => "")
}}
setenv.add-environment = ("GIT_PROJECT_ROOT" => "{base}", "GIT_HTTP_EXPORT_ALL" => "1",
    "GIT_CONFIG_COUNT" => "1", "GIT_CONFIG_KEY_0" => "http.receivepack", "GIT_CONFIG_VALUE_0" => "true")
auth.backend = "plain"
auth.backend.plain.userfile = "{users}"
auth.require = ("/auth/" => ("method" => "basic", "realm" => "grite", "require" => "valid-user"))
$SERVER["socket"] == "127.0.0.1:{tls_port}" {{
    ssl.engine = "enable"
    ssl.pemfile = "{cert}"
    ssl.privkey = "{key}"
}}
"#,
            www = document_root.display(),
            log = dir.join("error.log").display(),
            backend = backend.display(),
            base = base.display(),
            users = dir.join("users").display(),
            cert = certificate.display(),
            key = key.display(),
        );
        std::fs::write(dir.join("lighttpd.conf"), config).expect("config");
        let mut server = Command::new(lighttpd);
        server.arg("-D").arg("-f").arg(dir.join("lighttpd.conf"));
        Some(HttpServer {
            _server: Running::start(server, &[port, tls_port], "lighttpd"),
            port,
            document_root,
            tls_port,
            certificate,
        })
    }
}

/// An OpenSSH server on a free loopback port that accepts one throwaway
/// key for the current user; stopped when dropped. `ssh_command` is the
/// `GIT_SSH_COMMAND` that logs in with that key.
pub struct Sshd {
    _server: Running,
    pub port: u16,
    pub user: String,
    pub ssh_command: String,
}

impl Sshd {
    /// `None`, with a notice, where openssh-server is not installed (see
    /// [`server_installed`]).
    pub fn start(dir: &Path) -> Option<Sshd> {
        let sshd = Path::new("/usr/sbin/sshd");
        if !server_installed(sshd, "openssh-server") {
            return None;
        }
        let keygen = |name: &str| {
            let status = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(dir.join(name))
                .status()
                .expect("ssh-keygen runs");
            assert!(status.success());
        };
        keygen("host_key");
        keygen("client_key");
        std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).expect("copy key");
        let port = free_port();
        let user = String::from_utf8(Command::new("id").arg("-un").output().expect("id").stdout)
            .expect("utf-8")
            .trim()
            .to_owned();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nAuthorizedKeysFile {auth}\nPidFile {pid}\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
             PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nAllowUsers {user}\n",
            host = dir.join("host_key").display(),
            auth = dir.join("authorized_keys").display(),
            pid = dir.join("sshd.pid").display(),
        );
        std::fs::write(dir.join("sshd_config"), config).expect("config");
        // Privilege separation needs this directory when sshd runs as root.
        let _ = std::fs::create_dir_all("/run/sshd");
        let mut server = Command::new(sshd);
        server.args(["-D", "-e", "-f"]).arg(dir.join("sshd_config"));
        let server = Running::start(server, &[port], "sshd");
        let ssh_command = format!(
            "ssh -i {} -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR",
            dir.join("client_key").display()
        );
        Some(Sshd {
            _server: server,
            port,
            user,
            ssh_command,
        })
    }
}

/// Writes `count` live locks of `owner` on `issue:<prefix>-<i>` with
/// `git fast-import`, as another tool could (objects packed, refs loose),
/// all expiring at `expires` (ms).
pub fn plant_locks(dir: &Path, prefix: &str, count: usize, owner: &str, expires: u64) {
    use std::fmt::Write as _;
    let mut stream = String::new();
    for i in 0..count {
        let resource = format!("issue:{prefix}-{i}");
        let hash = grite_locks::lease::ref_hash_of(&resource);
        let json = format!(
            "{{\"owner\":\"{owner}\",\"nonce\":\"n{i}\",\"expires_unix_ms\":{expires},\"resource\":\"{resource}\",\"fencing_token\":{}}}\n",
            i + 1
        );
        let _ = write!(
            stream,
            "commit refs/grite/locks/{hash}\ncommitter t <t@example.invalid> 1705316400 +0000\ndata 5\nlock\nM 100644 inline lock.json\ndata {}\n{json}\n",
            json.len()
        );
    }
    git_with_input(dir, &["fast-import", "--quiet"], &stream);
}

/// A bare remote and one clone of it, with the 5 s grace of the tests.
pub fn remote_and_clone() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let remote = seeded_remote(tmp.path());
    git(tmp.path(), &["clone", "-q", "remote.git", "clone"]);
    let clone = tmp.path().join("clone");
    std::fs::create_dir_all(clone.join(".git/grite")).expect("mkdir");
    std::fs::write(
        clone.join(".git/grite/config.toml"),
        "lock_grace = \"5s\"\n",
    )
    .expect("config");
    (tmp, remote, clone)
}

/// Lock files anywhere under `dir`.
pub fn lock_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| {
            let path = e.path();
            if path.is_dir() {
                lock_files(&path)
            } else {
                usize::from(path.extension().is_some_and(|x| x == "lock"))
            }
        })
        .sum()
}
