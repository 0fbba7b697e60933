//! How bytes reach a git server: a `git-receive-pack` process for a local
//! path or `file://` URL, the `ssh` program for `ssh://` and scp-style
//! `host:path` (as git does), a TCP connection for `git://`, and smart
//! HTTP(S) for `http://` and `https://`. Every transport is a byte stream
//! each way (HTTP's request goes out whole when it is finished); the
//! protocol is the caller's.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// Where a remote repository is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A repository on this machine.
    Local(PathBuf),
    /// Through `ssh [-p port] [user@]host git-receive-pack 'path'`.
    Ssh {
        /// `host` or `user@host`.
        host: String,
        /// A port other than 22.
        port: Option<u16>,
        /// The repository path on the host.
        path: String,
    },
    /// The git daemon protocol.
    Git {
        /// Host name or address.
        host: String,
        /// Port (default 9418).
        port: u16,
        /// The repository path on the server.
        path: String,
    },
    /// Smart HTTP(S).
    Http {
        /// The repository URL as given, credentials included; shown only
        /// through [`redact`].
        url: String,
    },
}

/// Why a remote could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The URL is not one we can use.
    #[error("`{url}` is not a remote URL grite can use: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Starting the helper program or connecting failed.
    #[error("cannot reach {endpoint}: {source}")]
    Connect {
        /// The endpoint, for the message.
        endpoint: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An HTTP request failed or was refused.
    #[error("{endpoint}: {message}")]
    Http {
        /// The endpoint, for the message.
        endpoint: String,
        /// What went wrong.
        message: String,
    },
    /// The connection broke while talking.
    #[error("the connection to {endpoint} broke: {source}")]
    Io {
        /// The endpoint, for the message.
        endpoint: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Endpoint {
    /// Reads a URL as git does: `file://` and plain paths are local,
    /// `ssh://[user@]host[:port]/path` and `[user@]host:path` use ssh,
    /// `git://host[:port]/path` the daemon, `http(s)://` smart HTTP.
    pub fn parse(url: &str) -> Result<Endpoint, TransportError> {
        let bad = |reason| TransportError::BadUrl {
            url: redact(url),
            reason,
        };
        if url.starts_with("http://") || url.starts_with("https://") {
            if cfg!(feature = "https") {
                return Ok(Endpoint::Http {
                    url: url.to_owned(),
                });
            }
            return Err(bad("this grite was built without the https feature"));
        }
        if let Some(path) = url.strip_prefix("file://") {
            return Ok(Endpoint::Local(PathBuf::from(path)));
        }
        if let Some(rest) = url.strip_prefix("ssh://") {
            let (authority, path) = rest
                .split_once('/')
                .ok_or_else(|| bad("an ssh URL needs a path"))?;
            let (host, port) =
                split_port(authority).ok_or_else(|| bad("the port is not a number"))?;
            return Ok(Endpoint::Ssh {
                host: host.to_owned(),
                port,
                path: format!("/{path}"),
            });
        }
        if let Some(rest) = url.strip_prefix("git://") {
            let (authority, path) = rest
                .split_once('/')
                .ok_or_else(|| bad("a git URL needs a path"))?;
            let (host, port) =
                split_port(authority).ok_or_else(|| bad("the port is not a number"))?;
            return Ok(Endpoint::Git {
                host: host.to_owned(),
                port: port.unwrap_or(9418),
                path: format!("/{path}"),
            });
        }
        if url.contains("://") {
            return Err(bad(
                "only file://, ssh://, git://, http(s):// URLs, scp-style host:path and paths are supported",
            ));
        }
        // scp-style `host:path`: a colon before any slash, as git reads it.
        match url.split_once(':') {
            Some((host, path)) if !host.is_empty() && !host.contains('/') && !path.is_empty() => {
                Ok(Endpoint::Ssh {
                    host: host.to_owned(),
                    port: None,
                    path: path.to_owned(),
                })
            }
            _ if url.is_empty() => Err(bad("it is empty")),
            _ => Ok(Endpoint::Local(PathBuf::from(url))),
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Local(path) => write!(f, "{}", path.display()),
            Endpoint::Ssh {
                host,
                port: Some(port),
                path,
            } => write!(f, "ssh://{host}:{port}{path}"),
            Endpoint::Ssh {
                host,
                port: None,
                path,
            } => write!(f, "{host}:{path}"),
            Endpoint::Git { host, port, path } => write!(f, "git://{host}:{port}{path}"),
            Endpoint::Http { url } => f.write_str(&redact(url)),
        }
    }
}

/// `url` without the password of its `user:password@` part, for messages.
pub fn redact(url: &str) -> String {
    match password(url) {
        Some(secret) => url.replacen(&format!(":{secret}@"), ":***@", 1),
        None => url.to_owned(),
    }
}

/// `text` (a message from a library that saw `url`) with the password of
/// `url` masked wherever it appears.
pub fn scrub(text: &str, url: &str) -> String {
    match password(url) {
        Some(secret) => text.replace(secret, "***"),
        None => text.to_owned(),
    }
}

/// The password of a `scheme://user:password@host/…` URL.
fn password(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (_, secret) = userinfo.split_once(':')?;
    (!secret.is_empty()).then_some(secret)
}

fn split_port(authority: &str) -> Option<(&str, Option<u16>)> {
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host, Some(port.parse().ok()?))),
        None => Some((authority, None)),
    }
}

/// An open connection to a service (`git-receive-pack`) of a remote.
pub struct Connection {
    endpoint: String,
    reader: Box<dyn Read>,
    request: Request,
    child: Option<Child>,
    /// What the helper program wrote on standard error, collected by a
    /// thread so that a chatty hook can never block it.
    stderr: Option<std::thread::JoinHandle<Vec<u8>>>,
}

/// Where what we send goes.
enum Request {
    /// Straight to the server.
    Stream(Box<dyn Write>),
    /// Into an HTTP request body, sent when the request is finished.
    #[cfg(feature = "https")]
    Http(Box<super::http::Post>),
    Finished,
}

impl Connection {
    /// Starts `service` for the repository at `endpoint`; `repo`'s
    /// configuration says how to authenticate and whom to trust over HTTPS.
    #[cfg_attr(not(feature = "https"), allow(unused_variables))]
    pub fn open(
        endpoint: &Endpoint,
        service: &str,
        repo: &gix::Repository,
    ) -> Result<Connection, TransportError> {
        let name = endpoint.to_string();
        let connect_error = |source| TransportError::Connect {
            endpoint: name.clone(),
            source,
        };
        match endpoint {
            Endpoint::Local(path) => {
                let mut command = Command::new("git");
                command.arg(service.trim_start_matches("git-")).arg(path);
                spawn(command, name.clone()).map_err(connect_error)
            }
            Endpoint::Ssh { host, port, path } => {
                let mut command = match std::env::var_os("GIT_SSH_COMMAND") {
                    // As git does: the variable is a shell snippet.
                    Some(snippet) => {
                        let mut script = snippet;
                        script.push(" \"$@\"");
                        let mut command = Command::new("sh");
                        command.arg("-c").arg(script).arg("ssh");
                        command
                    }
                    None => Command::new("ssh"),
                };
                if let Some(port) = port {
                    command.arg("-p").arg(port.to_string());
                }
                command
                    .arg(host)
                    .arg(format!("{service} '{}'", path.replace('\'', r"'\''")));
                spawn(command, name.clone()).map_err(connect_error)
            }
            Endpoint::Git { host, port, path } => {
                let stream =
                    std::net::TcpStream::connect((host.as_str(), *port)).map_err(connect_error)?;
                let mut request = Vec::new();
                let line = format!("{service} {path}\0host={host}\0");
                super::protocol::write_packet(line.as_bytes(), &mut request)
                    .map_err(|e| connect_error(std::io::Error::other(e)))?;
                let mut writer = stream.try_clone().map_err(connect_error)?;
                writer.write_all(&request).map_err(connect_error)?;
                Ok(Connection {
                    endpoint: name,
                    reader: Box::new(stream),
                    request: Request::Stream(Box::new(writer)),
                    child: None,
                    stderr: None,
                })
            }
            #[cfg(feature = "https")]
            Endpoint::Http { url } => {
                let (reader, post) = super::http::open(url, service, repo, &name)?;
                Ok(Connection {
                    endpoint: name,
                    reader,
                    request: Request::Http(Box::new(post)),
                    child: None,
                    stderr: None,
                })
            }
            #[cfg(not(feature = "https"))]
            Endpoint::Http { .. } => Err(TransportError::BadUrl {
                url: name,
                reason: "this grite was built without the https feature",
            }),
        }
    }

    /// Reads until `parse` no longer needs more bytes; returns what it
    /// parsed. Bytes beyond what it used stay in `buffer`.
    pub fn read_until<T, E>(
        &mut self,
        buffer: &mut Vec<u8>,
        mut parse: impl FnMut(&[u8]) -> Result<T, E>,
        incomplete: impl Fn(&E) -> bool,
    ) -> Result<Result<T, E>, TransportError> {
        let mut chunk = [0u8; 8192];
        loop {
            match parse(buffer) {
                Err(e) if incomplete(&e) => {}
                done => return Ok(done),
            }
            let n = self
                .reader
                .read(&mut chunk)
                .map_err(|source| self.io(source))?;
            if n == 0 {
                return Ok(parse(buffer));
            }
            buffer.extend_from_slice(&chunk[..n]);
        }
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

    /// Ends the request: closes our side so the server sees its end (over
    /// HTTP: sends it), after which the reply can be read.
    pub fn finish_request(&mut self) -> Result<(), TransportError> {
        match std::mem::replace(&mut self.request, Request::Finished) {
            #[cfg(feature = "https")]
            Request::Http(post) => {
                self.reader = post.send()?;
                Ok(())
            }
            Request::Stream(_) | Request::Finished => Ok(()),
        }
    }

    /// The endpoint, for messages.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Waits for the helper program to end and returns the last line it
    /// wrote on standard error (git's `fatal: …` says why it failed).
    pub fn helper_message(&mut self) -> Option<String> {
        self.request = Request::Finished;
        let child = self.child.as_mut()?;
        let _ = child.wait();
        let bytes = self.stderr.take()?.join().ok()?;
        String::from_utf8_lossy(&bytes)
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.trim().to_owned())
    }

    fn io(&self, source: std::io::Error) -> TransportError {
        TransportError::Io {
            endpoint: self.endpoint.clone(),
            source,
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.request = Request::Finished;
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn(mut command: Command, endpoint: String) -> std::io::Result<Connection> {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let reader = child.stdout.take().expect("stdout is piped");
    let writer = child.stdin.take().expect("stdin is piped");
    let mut errors = child.stderr.take().expect("stderr is piped");
    let stderr = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = errors.read_to_end(&mut bytes);
        bytes
    });
    Ok(Connection {
        endpoint,
        reader: Box::new(reader),
        request: Request::Stream(Box::new(writer)),
        child: Some(child),
        stderr: Some(stderr),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_read_as_git_reads_them() {
        let parse = |u: &str| Endpoint::parse(u).expect("valid URL");
        assert_eq!(
            parse("/srv/repo.git"),
            Endpoint::Local("/srv/repo.git".into())
        );
        assert_eq!(parse("../repo"), Endpoint::Local("../repo".into()));
        assert_eq!(
            parse("file:///srv/repo.git"),
            Endpoint::Local("/srv/repo.git".into())
        );
        assert_eq!(
            parse("ssh://git@example.org:2222/srv/repo.git"),
            Endpoint::Ssh {
                host: "git@example.org".into(),
                port: Some(2222),
                path: "/srv/repo.git".into()
            }
        );
        assert_eq!(
            parse("git@example.org:team/repo.git"),
            Endpoint::Ssh {
                host: "git@example.org".into(),
                port: None,
                path: "team/repo.git".into()
            }
        );
        assert_eq!(
            parse("git://127.0.0.1:9999/repo.git"),
            Endpoint::Git {
                host: "127.0.0.1".into(),
                port: 9999,
                path: "/repo.git".into()
            }
        );
        assert_eq!(parse("./a:b"), Endpoint::Local("./a:b".into()));
    }

    #[test]
    fn passwords_never_reach_a_message() {
        let url = "https://ann:s3cr%40t@example.org:8443/team/repo.git";
        assert_eq!(
            redact(url),
            "https://ann:***@example.org:8443/team/repo.git"
        );
        let endpoint = Endpoint::parse(url).expect("valid");
        assert!(!endpoint.to_string().contains("s3cr"), "{endpoint}");
        assert_eq!(
            scrub("could not reach https://ann:s3cr%40t@example.org", url),
            "could not reach https://ann:***@example.org"
        );
        for plain in [
            "https://ann@example.org/r.git",
            "https://example.org/r.git",
            "/srv/r.git",
        ] {
            assert_eq!(redact(plain), plain);
            assert_eq!(scrub("text", plain), "text");
        }
        let Err(TransportError::BadUrl { url: shown, .. }) = Endpoint::parse("gopher://u:pw@h/x")
        else {
            panic!("refused");
        };
        assert_eq!(shown, "gopher://u:***@h/x");
    }

    #[test]
    fn unusable_urls_say_why() {
        for url in ["", "ftp://host/repo", "ssh://host", "git://host:port/x"] {
            assert!(
                matches!(Endpoint::parse(url), Err(TransportError::BadUrl { .. })),
                "{url}"
            );
        }
    }
}
