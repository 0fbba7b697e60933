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

/// The ssh program git would run for `[user@]host[:port]`, asking it to
/// start `service` on `path`: `GIT_SSH_COMMAND` or `core.sshCommand` run by
/// the shell (they may carry options), else `GIT_SSH` run as a program,
/// else `ssh`; its arguments shaped for its variant (`GIT_SSH_VARIANT` or
/// `ssh.variant`, else guessed from its name, as git does: OpenSSH,
/// plink, putty, tortoiseplink, or a simple one that takes no port).
pub(super) fn ssh_command(
    repo: &gix::Repository,
    login: &str,
    port: Option<u16>,
    remote_command: &str,
) -> Result<Command, String> {
    use gix::protocol::transport::client::blocking_io::ssh::ProgramKind;
    let options = repo
        .ssh_connect_options()
        .map_err(|e| format!("the ssh settings: {}", super::error_chain(&e)))?;
    let program = options.ssh_command().to_owned();
    let kind = options.kind.unwrap_or_else(|| {
        // The program's own name, not the words of a command line.
        let text = program.to_string_lossy();
        let first = text.split_whitespace().next().unwrap_or("ssh").to_owned();
        match ProgramKind::from(std::ffi::OsStr::new(&first)) {
            ProgramKind::Simple => ProgramKind::Ssh,
            known => known,
        }
    });
    let mut command = if options.disallow_shell {
        Command::new(&program)
    } else {
        let mut script = program.clone();
        script.push(" \"$@\"");
        let mut command = Command::new("sh");
        command.arg("-c").arg(script).arg(&program);
        command
    };
    match (kind, port) {
        (_, None) => {}
        (ProgramKind::Ssh, Some(port)) => {
            command.arg("-p").arg(port.to_string());
        }
        (ProgramKind::Plink | ProgramKind::Putty, Some(port)) => {
            command.arg("-P").arg(port.to_string());
        }
        (ProgramKind::TortoisePlink, Some(port)) => {
            command.args(["-batch", "-P"]).arg(port.to_string());
        }
        (ProgramKind::Simple, Some(_)) => {
            return Err(format!(
                "the ssh program {} is of the 'simple' variant, which takes no port; set ssh.variant if it is OpenSSH",
                program.to_string_lossy()
            ));
        }
    }
    command.arg(login).arg(remote_command);
    Ok(command)
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
