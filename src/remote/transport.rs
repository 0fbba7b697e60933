//! Where a git server is: a remote URL or path read as git reads it (with
//! gix-url), and checked before anything is started for it. A host, user
//! or path that begins with `-` is refused, as git refuses it: handed to
//! `ssh` or `git` it would be taken for an option (`-oProxyCommand=…`).

use std::path::PathBuf;

/// Where a remote repository is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A repository on this machine.
    Local(PathBuf),
    /// Through `ssh [-p port] [user@]host git-receive-pack 'path'`.
    Ssh {
        /// The login name, if the URL gives one.
        user: Option<String>,
        /// Host name or address.
        host: String,
        /// A port other than 22.
        port: Option<u16>,
        /// The repository path on the host, as the remote shell gets it
        /// (`~/repo.git` stays relative to the home directory).
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
    /// The settings for reaching it (ssh program, variant) do not work.
    #[error("{endpoint}: {message}")]
    Settings {
        /// The endpoint, for the message.
        endpoint: String,
        /// What is wrong.
        message: String,
    },
    /// An HTTP request failed or was refused.
    #[error("{endpoint}: {message}")]
    Http {
        /// The endpoint, for the message.
        endpoint: String,
        /// What went wrong.
        message: String,
    },
    /// The connection broke, stalled past its deadline, or sent more than
    /// we read.
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
        use gix::url::{ArgumentSafety, Scheme};
        let bad = |reason| TransportError::BadUrl {
            url: redact(url),
            reason,
        };
        if url.is_empty() {
            return Err(bad("it is empty"));
        }
        let parsed =
            gix::url::parse(url).map_err(|_| bad("git cannot read it as a URL or a path"))?;
        let path = gix::url::expand_path::for_shell(parsed.path.clone()).to_string();
        if path.starts_with('-') {
            return Err(bad(
                "the repository path begins with `-`, which a git program would take for an option",
            ));
        }
        let host = match parsed.host_as_argument() {
            ArgumentSafety::Dangerous(_) => {
                return Err(bad(
                    "the host name begins with `-`, which ssh would take for an option",
                ));
            }
            // An IPv6 address without the brackets that set it apart in
            // the URL.
            ArgumentSafety::Usable(host) => Some(
                host.strip_prefix('[')
                    .and_then(|h| h.strip_suffix(']'))
                    .unwrap_or(host)
                    .to_owned(),
            ),
            ArgumentSafety::Absent => None,
        };
        match parsed.scheme {
            Scheme::File => match host.as_deref() {
                None | Some("localhost") => Ok(Endpoint::Local(PathBuf::from(path))),
                Some(_) => Err(bad(
                    "a file:// URL names a path on this machine, not on a host",
                )),
            },
            Scheme::Ssh => {
                let user = match parsed.user_as_argument() {
                    ArgumentSafety::Dangerous(_) => {
                        return Err(bad(
                            "the user name begins with `-`, which ssh would take for an option",
                        ));
                    }
                    ArgumentSafety::Usable(user) => Some(user.to_owned()),
                    ArgumentSafety::Absent => None,
                };
                Ok(Endpoint::Ssh {
                    user,
                    host: host.ok_or_else(|| bad("an ssh URL needs a host"))?,
                    port: parsed.port,
                    path,
                })
            }
            Scheme::Git => Ok(Endpoint::Git {
                host: host.ok_or_else(|| bad("a git:// URL needs a host"))?,
                port: parsed.port.unwrap_or(9418),
                path: parsed.path.to_string(),
            }),
            Scheme::Http | Scheme::Https if cfg!(feature = "https") => Ok(Endpoint::Http {
                url: url.to_owned(),
            }),
            Scheme::Http | Scheme::Https => {
                Err(bad("this grite was built without the https feature"))
            }
            _ => Err(bad(
                "only file://, ssh://, git://, http(s):// URLs, scp-style host:path and paths are supported",
            )),
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Local(path) => write!(f, "{}", path.display()),
            Endpoint::Ssh {
                user,
                host,
                port,
                path,
            } => {
                let user = user.as_deref().map(|u| format!("{u}@")).unwrap_or_default();
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host.clone()
                };
                match port {
                    Some(port) => {
                        let slash = if path.starts_with('/') { "" } else { "/" };
                        write!(f, "ssh://{user}{host}:{port}{slash}{path}")
                    }
                    None => write!(f, "{user}{host}:{path}"),
                }
            }
            Endpoint::Git { host, port, path } if host.contains(':') => {
                write!(f, "git://[{host}]:{port}{path}")
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ssh(user: Option<&str>, host: &str, port: Option<u16>, path: &str) -> Endpoint {
        Endpoint::Ssh {
            user: user.map(str::to_owned),
            host: host.into(),
            port,
            path: path.into(),
        }
    }

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
            parse("file://localhost/srv/repo.git"),
            Endpoint::Local("/srv/repo.git".into())
        );
        assert_eq!(
            parse("ssh://git@example.org:2222/srv/repo.git"),
            ssh(Some("git"), "example.org", Some(2222), "/srv/repo.git")
        );
        // The remote shell expands `~`, as with git.
        assert_eq!(
            parse("ssh://git@example.org/~/repo.git"),
            ssh(Some("git"), "example.org", None, "~/repo.git")
        );
        assert_eq!(
            parse("git@example.org:team/repo.git"),
            ssh(Some("git"), "example.org", None, "team/repo.git")
        );
        assert_eq!(
            parse("ssh://[::1]:2222/repo.git"),
            ssh(None, "::1", Some(2222), "/repo.git")
        );
        assert_eq!(
            parse("git://127.0.0.1:9999/repo.git"),
            Endpoint::Git {
                host: "127.0.0.1".into(),
                port: 9999,
                path: "/repo.git".into()
            }
        );
        assert_eq!(
            parse("git://[::1]:9999/repo.git"),
            Endpoint::Git {
                host: "::1".into(),
                port: 9999,
                path: "/repo.git".into()
            }
        );
        assert_eq!(
            parse("git://[::1]:9999/repo.git").to_string(),
            "git://[::1]:9999/repo.git"
        );
        assert_eq!(parse("./a:b"), Endpoint::Local("./a:b".into()));
        assert_eq!(
            parse("ssh://[::1]:2222/repo.git").to_string(),
            "ssh://[::1]:2222/repo.git"
        );
        assert_eq!(
            parse("git@example.org:team/repo.git").to_string(),
            "git@example.org:team/repo.git"
        );
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
        for url in ["", "ftp://host/repo", "file://elsewhere/srv/r.git"] {
            assert!(
                matches!(Endpoint::parse(url), Err(TransportError::BadUrl { .. })),
                "{url}"
            );
        }
    }

    #[test]
    fn what_ssh_or_git_would_take_for_an_option_is_refused() {
        for (url, needle) in [
            ("-oProxyCommand=sh%20-c%20x:x", "host name begins with `-`"),
            // A slash before the colon makes it a path, as git reads it.
            ("-oProxyCommand=touch /tmp/pwned:x", "path begins with `-`"),
            (
                "ssh://-oProxyCommand=touch%20x/y",
                "host name begins with `-`",
            ),
            ("ssh://-l@host/y", "user name begins with `-`"),
            ("host:-path", "path begins with `-`"),
            ("--upload-pack=touch x", "path begins with `-`"),
        ] {
            match Endpoint::parse(url) {
                Err(TransportError::BadUrl { reason, .. }) => {
                    assert!(reason.contains(needle), "{url}: {reason}");
                }
                other => panic!("{url}: {other:?}"),
            }
        }
    }
}
