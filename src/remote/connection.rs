//! How bytes reach a git server and come back: a `git` program for a path
//! on this machine, the `ssh` program for ssh (as git does), a TCP
//! connection for `git://`, and smart HTTP(S). Every wait for the server
//! has a deadline (`watchdog.rs`), every reply a size limit, and pkt-lines
//! are read as they arrive, so the work stays linear in what the server
//! sends. The protocol is the caller's.

use std::io::{Read, Write};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use super::dial::{GIT_ENV_TO_REMOVE, Parts, connect_tcp, spawn, ssh_command, wait_within};
use super::packets::{Budget, PacketError, Packets};
use super::protocol::{Packet, ProtocolError};
use super::transport::{Endpoint, TransportError};
use super::watchdog::{Timed, Watchdog};

/// Most bytes read after the report: what a server may still say before
/// it closes (its hooks' output goes to its standard error).
const TRAILING_LIMIT: usize = 1 << 20;

/// Why a reply could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The connection failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The bytes were not the protocol.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
}

/// An open connection to a service (`git-receive-pack`) of a remote.
pub struct Connection {
    endpoint: String,
    packets: Packets,
    request: Request,
    child: Option<Arc<Mutex<Child>>>,
    /// What the helper program wrote on standard error, collected by a
    /// thread so that a chatty hook can never block it.
    stderr: Option<JoinHandle<Vec<u8>>>,
    watchdog: Option<Arc<Watchdog>>,
    idle: Duration,
}

/// Where what we send goes.
enum Request {
    /// Straight to the server.
    Stream(Box<dyn Write + Send>),
    /// Into an HTTP request body, sent when the request is finished.
    #[cfg(feature = "https")]
    Http(Box<super::http::Post>),
    Finished,
}

/// The ends of a connection as plain byte streams, for a client that
/// speaks the protocol itself (gix's fetch); the helper program, the
/// deadline and the limits go with the reader.
pub struct RawConnection {
    /// Bytes from the server.
    pub reader: RawReader,
    /// Bytes to the server.
    pub writer: Box<dyn Write + Send>,
}

/// Bytes from the server, with the connection's helper program and
/// watchdog kept alive until it is dropped.
pub struct RawReader {
    inner: Box<dyn Read + Send>,
    _guard: Guard,
}

impl Read for RawReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}

/// Ends the helper program when the connection is dropped unfinished.
struct Guard {
    child: Option<Arc<Mutex<Child>>>,
    _watchdog: Option<Arc<Watchdog>>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            let mut child = child.lock().unwrap_or_else(PoisonError::into_inner);
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Connection {
    /// Starts `service` for the repository at `endpoint`, with `idle` as
    /// the longest wait for the server; `repo`'s configuration says how to
    /// authenticate and whom to trust over HTTPS.
    #[cfg_attr(not(feature = "https"), allow(unused_variables))]
    pub fn open(
        endpoint: &Endpoint,
        service: &str,
        repo: &gix::Repository,
        idle: Duration,
    ) -> Result<Connection, TransportError> {
        let name = endpoint.to_string();
        allowed(repo, endpoint, &name)?;
        let connect_error = |source| TransportError::Connect {
            endpoint: name.clone(),
            source,
        };
        let (reader, writer, child, stderr, watchdog): Parts = match endpoint {
            Endpoint::Local(path) => {
                let mut command = Command::new("git");
                command.arg(service.trim_start_matches("git-")).arg(path);
                for variable in GIT_ENV_TO_REMOVE {
                    command.env_remove(variable);
                }
                spawn(command, &name, idle).map_err(connect_error)?
            }
            Endpoint::Ssh {
                user,
                host,
                port,
                path,
            } => {
                let login = match user {
                    Some(user) => format!("{user}@{host}"),
                    None => host.clone(),
                };
                let remote_command = format!("{service} '{}'", path.replace('\'', r"'\''"));
                let command =
                    ssh_command(repo, &login, *port, &remote_command).map_err(|message| {
                        TransportError::Settings {
                            endpoint: name.clone(),
                            message,
                        }
                    })?;
                spawn(command, &name, idle).map_err(connect_error)?
            }
            Endpoint::Git { host, port, path } => {
                let stream = connect_tcp(host, *port, idle).map_err(connect_error)?;
                let closer = stream.try_clone().map_err(connect_error)?;
                let watchdog = Arc::new(Watchdog::start(
                    idle,
                    Box::new(move || {
                        let _ = closer.shutdown(std::net::Shutdown::Both);
                    }),
                ));
                let writer = stream.try_clone().map_err(connect_error)?;
                let mut writer = Timed::new(writer, Arc::clone(&watchdog), name.clone());
                let reader = Timed::new(stream, Arc::clone(&watchdog), name.clone());
                let mut request = Vec::new();
                let line = format!("{service} {path}\0host={host}\0");
                super::protocol::write_packet(line.as_bytes(), &mut request)
                    .map_err(|e| connect_error(std::io::Error::other(e)))?;
                writer.write_all(&request).map_err(connect_error)?;
                let reader: Box<dyn Read + Send> = Box::new(reader);
                (
                    reader,
                    Some(Box::new(writer) as Box<dyn Write + Send>),
                    None,
                    None,
                    Some(watchdog),
                )
            }
            #[cfg(feature = "https")]
            Endpoint::Http { url } => {
                let (reader, post) = super::http::open(url, service, repo, &name, idle)?;
                let packets = Packets::new(reader, &name);
                return Ok(Connection {
                    endpoint: name,
                    packets,
                    request: Request::Http(Box::new(post)),
                    child: None,
                    stderr: None,
                    watchdog: None,
                    idle,
                });
            }
            #[cfg(not(feature = "https"))]
            Endpoint::Http { .. } => {
                return Err(TransportError::BadUrl {
                    url: name,
                    reason: "this grite was built without the https feature",
                });
            }
        };
        let request = match writer {
            Some(writer) => Request::Stream(writer),
            None => Request::Finished,
        };
        Ok(Connection {
            packets: Packets::new(reader, &name),
            endpoint: name,
            request,
            child,
            stderr,
            watchdog,
            idle,
        })
    }

    /// Starts `service` and hands its two byte streams to a client that
    /// speaks the protocol itself, with the same deadline and limit.
    pub fn open_raw(
        endpoint: &Endpoint,
        service: &str,
        repo: &gix::Repository,
        idle: Duration,
    ) -> Result<RawConnection, TransportError> {
        if let Endpoint::Http { url } = endpoint {
            return Err(TransportError::BadUrl {
                url: super::transport::redact(url),
                reason: "HTTP(S) remotes are fetched from by gix's own transport",
            });
        }
        let mut connection = Connection::open(endpoint, service, repo, idle)?;
        let Request::Stream(writer) = std::mem::replace(&mut connection.request, Request::Finished)
        else {
            unreachable!("every transport but HTTP is a stream");
        };
        let reader = std::mem::replace(&mut connection.packets, Packets::closed());
        let guard = Guard {
            child: connection.child.take(),
            _watchdog: connection.watchdog.take(),
        };
        Ok(RawConnection {
            reader: RawReader {
                inner: Box::new(reader.into_inner()),
                _guard: guard,
            },
            writer,
        })
    }

    /// Reads the next pkt-line of the reply; `None` when the server closed
    /// the connection before one began. `budget` counts the bytes of one
    /// part of the reply against its limit.
    pub fn next_packet(&mut self, budget: &mut Budget) -> Result<Option<Packet<'_>>, ReadError> {
        let endpoint = &self.endpoint;
        self.packets.next(budget).map_err(|e| match e {
            PacketError::Io(source) => ReadError::Transport(TransportError::Io {
                endpoint: endpoint.clone(),
                source,
            }),
            PacketError::Protocol(e) => ReadError::Protocol(e),
        })
    }

    /// Sends `bytes` to the server.
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), TransportError> {
        match &mut self.request {
            Request::Stream(writer) => writer
                .write_all(bytes)
                .and_then(|()| writer.flush())
                .map_err(|source| TransportError::Io {
                    endpoint: self.endpoint.clone(),
                    source,
                }),
            #[cfg(feature = "https")]
            Request::Http(post) => {
                post.body.extend_from_slice(bytes);
                Ok(())
            }
            Request::Finished => Err(TransportError::Io {
                endpoint: self.endpoint.clone(),
                source: std::io::Error::other("the request was already finished"),
            }),
        }
    }

    /// Ends the request (over HTTP: sends it), after which the reply can
    /// be read. Over a stream the server reads until our flush, so our
    /// side stays open for it to see us close at [`Connection::finish`].
    pub fn finish_request(&mut self) -> Result<(), TransportError> {
        #[cfg(feature = "https")]
        if let Request::Http(_) = self.request {
            let Request::Http(post) = std::mem::replace(&mut self.request, Request::Finished)
            else {
                unreachable!("matched just above");
            };
            self.packets = Packets::new(post.send()?, &self.endpoint);
        }
        Ok(())
    }

    /// Ends the exchange as `git push` does: closes our side, lets the
    /// server (receive-pack running its post-receive and post-update hooks)
    /// finish within the deadline, and reads what it still says.
    pub fn finish(mut self) {
        self.request = Request::Finished;
        self.packets.drain(TRAILING_LIMIT);
        if let Some(child) = self.child.take() {
            wait_within(&child, self.idle);
        }
    }

    /// The endpoint, for messages.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Waits (within the deadline) for the helper program to end and
    /// returns the last line it wrote on standard error (git's `fatal: …`
    /// says why it failed).
    pub fn helper_message(&mut self) -> Option<String> {
        self.request = Request::Finished;
        let child = self.child.take()?;
        wait_within(&child, self.idle);
        let bytes = self.stderr.take()?.join().ok()?;
        String::from_utf8_lossy(&bytes)
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.trim().to_owned())
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.request = Request::Finished;
        if let Some(child) = self.child.take() {
            let mut child = child.lock().unwrap_or_else(PoisonError::into_inner);
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Refuses what git's `protocol.allow` and `protocol.<name>.allow` forbid
/// (`never`, or `user` with `GIT_PROTOCOL_FROM_USER=0`). git allows its
/// own five protocols by default, as here.
fn allowed(repo: &gix::Repository, endpoint: &Endpoint, name: &str) -> Result<(), TransportError> {
    let scheme = match endpoint {
        Endpoint::Local(_) => "file",
        Endpoint::Ssh { .. } => "ssh",
        Endpoint::Git { .. } => "git",
        Endpoint::Http { url } if url.starts_with("https:") => "https",
        Endpoint::Http { .. } => "http",
    };
    let config = repo.config_snapshot();
    let key = format!("protocol.{scheme}.allow");
    let policy = config
        .string(key.as_str())
        .or_else(|| config.string("protocol.allow"))
        .map_or_else(|| "always".to_owned(), |p| p.to_string());
    let from_user = std::env::var("GIT_PROTOCOL_FROM_USER").map_or(true, |v| v != "0");
    match policy.as_str() {
        "always" => Ok(()),
        "user" if from_user => Ok(()),
        _ => Err(TransportError::Settings {
            endpoint: name.to_owned(),
            message: format!(
                "git's settings do not allow the {scheme} protocol here ({key} or protocol.allow is \"{policy}\")"
            ),
        }),
    }
}
