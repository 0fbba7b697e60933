//! Dialling a server: starting the helper program (`git` for a path, the
//! `ssh` program for ssh) with a watchdog on its pipes, or opening a TCP
//! connection for `git://`, each wait under the deadline.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::watchdog::{Hangup, Pumped, Timed, Watchdog};

/// What the helper program's standard error keeps for messages: its end,
/// where git puts `fatal: …`.
pub(super) const STDERR_KEPT: usize = 64 * 1024;

/// Variables that would make a `git` program started for a local remote
/// work on our repository instead of the remote (as gix's own transport
/// removes them).
pub(super) const GIT_ENV_TO_REMOVE: &[&str] = &[
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_OBJECT_DIRECTORY",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_IMPLICIT_WORK_TREE",
    "GIT_GRAFT_FILE",
    "GIT_INDEX_FILE",
    "GIT_NO_REPLACE_OBJECTS",
    "GIT_REPLACE_REF_BASE",
    "GIT_PREFIX",
    "GIT_INTERNAL_SUPER_PREFIX",
    "GIT_SHALLOW_FILE",
    "GIT_COMMON_DIR",
];

/// What a dialled connection is made of: bytes from and to the server, the
/// helper program and its standard error, the watchdog.
pub(super) type Parts = (
    Box<dyn Read + Send>,
    Option<Box<dyn Write + Send>>,
    Option<Arc<Mutex<Child>>>,
    Option<JoinHandle<Vec<u8>>>,
    Option<Arc<Watchdog>>,
);

/// `GIT_SSH_COMMAND` run by the shell (it may carry options), as git does,
/// else the `ssh` program.
pub(super) fn ssh_command() -> Command {
    match std::env::var_os("GIT_SSH_COMMAND") {
        Some(snippet) if !snippet.is_empty() => {
            let mut script = snippet;
            script.push(" \"$@\"");
            let mut command = Command::new("sh");
            command.arg("-c").arg(script).arg("ssh");
            command
        }
        _ => Command::new("ssh"),
    }
}

/// Connects to `host:port`, giving up after `idle` for the name lookup and
/// for each address tried.
pub(super) fn connect_tcp(host: &str, port: u16, idle: Duration) -> std::io::Result<TcpStream> {
    let (sender, receiver) = std::sync::mpsc::channel();
    let target = (host.to_owned(), port);
    std::thread::spawn(move || {
        let _ = sender.send(target.to_socket_addrs().map(Vec::from_iter));
    });
    let addresses = receiver.recv_timeout(idle).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("looking up {host} took more than {} s", idle.as_secs()),
        )
    })??;
    let mut last = std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!("{host} has no address"),
    );
    for address in addresses {
        match TcpStream::connect_timeout(&address, idle) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e,
        }
    }
    Err(last)
}

pub(super) fn spawn(
    mut command: Command,
    endpoint: &str,
    idle: Duration,
) -> std::io::Result<Parts> {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let reader = child.stdout.take().expect("stdout is piped");
    let writer = child.stdin.take().expect("stdin is piped");
    let mut errors = child.stderr.take().expect("stderr is piped");
    let stderr = std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut chunk = [0u8; 8192];
        while let Ok(n) = errors.read(&mut chunk) {
            if n == 0 {
                break;
            }
            kept.extend_from_slice(&chunk[..n]);
            if kept.len() > STDERR_KEPT {
                kept.drain(..kept.len() - STDERR_KEPT);
            }
        }
        kept
    });
    let child = Arc::new(Mutex::new(child));
    let killer = Arc::clone(&child);
    let hangup: Hangup = Box::new(move || {
        let _ = killer.lock().unwrap_or_else(PoisonError::into_inner).kill();
    });
    let watchdog = Arc::new(Watchdog::start(idle, hangup));
    let writer = Timed::new(writer, Arc::clone(&watchdog), endpoint.to_owned());
    let reader = Pumped::start(reader, Arc::clone(&watchdog), endpoint.to_owned());
    Ok((
        Box::new(reader),
        Some(Box::new(writer)),
        Some(child),
        Some(stderr),
        Some(watchdog),
    ))
}

/// Waits for `child` to end, for at most `idle`; kills it after that.
pub(super) fn wait_within(child: &Mutex<Child>, idle: Duration) {
    let deadline = Instant::now() + idle;
    let mut pause = Duration::from_millis(1);
    loop {
        let mut child = child.lock().unwrap_or_else(PoisonError::into_inner);
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            Ok(None) => {}
        }
        drop(child);
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
