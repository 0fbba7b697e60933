//! A compare-and-swap push: read the server's refs, send ref commands that
//! each name the value the ref must still have, with the objects the server
//! lacks, and read its verdict on each.
//!
//! One quirk of git's receive-pack: a delete whose expected old object the
//! server does not have is applied without the check (it calls that
//! "deleting a corrupt ref"). A delete must therefore only ever expect a
//! value read from that same server's advertisement, which it has.

use super::protocol::{self, Advertisement, Command, ProtocolError, Report};
use super::transport::{Connection, Endpoint, TransportError};

/// Why a push could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The server could not be reached or the connection broke.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The server's bytes were not receive-pack's protocol.
    #[error("{endpoint}: {source}")]
    Protocol {
        /// The endpoint, for the message.
        endpoint: String,
        /// What was wrong.
        source: ProtocolError,
    },
    /// The server ended the connection without a word of protocol.
    #[error("{endpoint}: {message}")]
    Closed {
        /// The endpoint, for the message.
        endpoint: String,
        /// Why, as far as the helper program said.
        message: String,
    },
    /// Without report-status the server would not say which commands it
    /// applied, and a compare-and-swap needs that answer.
    #[error("{endpoint} does not offer report-status, so it cannot say whether a push won")]
    NoReportStatus {
        /// The endpoint, for the message.
        endpoint: String,
    },
}

/// An open push: the server has advertised its refs and waits for commands.
pub struct PushSession {
    connection: Connection,
    buffer: Vec<u8>,
    /// The server's refs and capabilities.
    pub advertisement: Advertisement,
}

impl PushSession {
    /// Connects to receive-pack at `endpoint` and reads its advertisement;
    /// `repo`'s configuration says how to authenticate over HTTP.
    pub fn connect(endpoint: &Endpoint, repo: &gix::Repository) -> Result<PushSession, PushError> {
        let mut connection = Connection::open(endpoint, "git-receive-pack", repo)?;
        let mut buffer = Vec::new();
        let parsed = connection.read_until(&mut buffer, protocol::parse_advertisement, |e| {
            matches!(e, ProtocolError::Incomplete { .. })
        })?;
        let (advertisement, used) = match parsed {
            Ok(parsed) => parsed,
            // A helper that ends before advertising anything failed to
            // start the service; its own message says why.
            Err(ProtocolError::Incomplete { .. }) if buffer.is_empty() => {
                let message = connection.helper_message();
                return Err(PushError::Closed {
                    endpoint: connection.endpoint().to_owned(),
                    message: message
                        .unwrap_or_else(|| "the connection closed before any reply".to_owned()),
                });
            }
            Err(source) => {
                return Err(PushError::Protocol {
                    endpoint: connection.endpoint().to_owned(),
                    source,
                });
            }
        };
        buffer.drain(..used);
        if !advertisement.has("report-status") {
            return Err(PushError::NoReportStatus {
                endpoint: connection.endpoint().to_owned(),
            });
        }
        Ok(PushSession {
            connection,
            buffer,
            advertisement,
        })
    }

    /// Sends `commands` (all or nothing where the server offers `atomic`)
    /// and `pack`, which must hold every object the server lacks; a push of
    /// deletions only sends no pack. Returns the server's report.
    pub fn push(mut self, commands: &[Command], pack: &[u8]) -> Result<Report, PushError> {
        let mut capabilities = vec!["report-status"];
        if self.advertisement.has("atomic") {
            capabilities.push("atomic");
        }
        if self.advertisement.has("object-format") {
            capabilities.push("object-format=sha1");
        }
        let agent = concat!("agent=grite/", env!("CARGO_PKG_VERSION"));
        capabilities.push(agent);
        let request = protocol::encode_commands(commands, &capabilities).map_err(|source| {
            PushError::Protocol {
                endpoint: self.connection.endpoint().to_owned(),
                source,
            }
        })?;
        self.connection.send(&request)?;
        if commands.iter().any(|c| !c.new.is_null()) {
            self.connection.send(pack)?;
        }
        self.connection.finish_request()?;
        let parsed = self
            .connection
            .read_until(&mut self.buffer, protocol::parse_report, |e| {
                matches!(e, ProtocolError::Incomplete { .. })
            })?;
        parsed.map_err(|source| PushError::Protocol {
            endpoint: self.connection.endpoint().to_owned(),
            source,
        })
    }
}
