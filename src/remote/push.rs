//! A compare-and-swap push: read the server's refs, send ref commands that
//! each name the value the ref must still have, with the objects the server
//! lacks, and read its verdict on each.
//!
//! One quirk of git's receive-pack: a delete whose expected old object the
//! server does not have is applied without the check (it calls that
//! "deleting a corrupt ref"). A delete must therefore only ever expect a
//! value read from that same server's advertisement, which it has.

use std::time::Duration;

use super::connection::{Connection, ReadError};
use super::packets::Budget;
use super::protocol::{
    self, Advertisement, AdvertisementParser, Command, Packet, ProtocolError, Report, ReportParser,
    Sideband,
};
use super::transport::{Endpoint, TransportError};

/// Largest ref advertisement read: over 1,500,000 lock refs. A server that
/// sends more (or sends without end) is refused rather than followed.
pub const ADVERTISEMENT_LIMIT: usize = 128 << 20;

/// Largest report-status read: one short line a command.
pub const REPORT_LIMIT: usize = 16 << 20;

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
    /// The server refused the push for a reason of its own (a hook
    /// declined, the objects could not be unpacked); its messages say more.
    #[error("{endpoint}: {reason}")]
    Refused {
        /// The endpoint, for the message.
        endpoint: String,
        /// Its refusal, with the last of its messages.
        reason: String,
    },
    /// Several refs must change together and the server cannot promise it.
    #[error(
        "{endpoint} does not offer atomic pushes, which a change of several lock refs needs (a git server older than 2.4, or one configured with receive.advertiseAtomic=false)"
    )]
    NoAtomic {
        /// The endpoint, for the message.
        endpoint: String,
    },
}

/// What the server did with a push it accepted to consider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every command was applied.
    Applied,
    /// Nothing was applied: the refs named were not updated, in the
    /// server's words (`failed to update ref`, and `atomic transaction
    /// failed` for the others). Either they no longer held the values the
    /// commands expected, or the server could not lock them.
    NotUpdated(String),
}

/// The outcome of a push, with what the server said on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// What it did.
    pub verdict: Verdict,
    /// Its messages for the user (hook output), a line each.
    pub messages: Vec<String>,
}

/// An open push: the server has advertised its refs and waits for commands.
pub struct PushSession {
    connection: Connection,
    /// The server's refs and capabilities.
    pub advertisement: Advertisement,
}

impl PushSession {
    /// Connects to receive-pack at `endpoint` and reads its advertisement;
    /// `repo`'s configuration says how to authenticate over HTTP, `idle`
    /// is the longest wait for the server.
    pub fn connect(
        endpoint: &Endpoint,
        repo: &gix::Repository,
        idle: Duration,
    ) -> Result<PushSession, PushError> {
        let mut connection = Connection::open(endpoint, "git-receive-pack", repo, idle)?;
        let mut budget = Budget::new("ref advertisement", ADVERTISEMENT_LIMIT);
        let mut parser = AdvertisementParser::default();
        let mut empty = true;
        loop {
            let protocol_error = |connection: &Connection, source| PushError::Protocol {
                endpoint: connection.endpoint().to_owned(),
                source,
            };
            let line = match connection.next_packet(&mut budget) {
                Ok(Some(Packet::Flush)) => break,
                Ok(Some(Packet::Data(data))) => protocol::data_line(data).map(<[u8]>::to_vec),
                // A helper that ends before advertising anything failed to
                // start the service; its own message says why.
                Ok(None) if empty => {
                    let message = connection.helper_message();
                    return Err(PushError::Closed {
                        endpoint: connection.endpoint().to_owned(),
                        message: message
                            .unwrap_or_else(|| "the connection closed before any reply".to_owned()),
                    });
                }
                Ok(None) => Err(ProtocolError::Incomplete { need: 4 }),
                Err(ReadError::Protocol(source)) => Err(source),
                Err(ReadError::Transport(e)) => return Err(e.into()),
            };
            empty = false;
            match line.and_then(|line| parser.line(&line)) {
                Ok(()) => {}
                Err(source) => return Err(protocol_error(&connection, source)),
            }
        }
        let advertisement = parser.finish();
        if !advertisement.has("report-status") {
            return Err(PushError::NoReportStatus {
                endpoint: connection.endpoint().to_owned(),
            });
        }
        Ok(PushSession {
            connection,
            advertisement,
        })
    }

    /// Sends `commands` (all or nothing: a push of several commands needs
    /// the server's `atomic`) and `pack`, which must hold every object the
    /// server lacks; a push of deletions only sends no pack. Returns once
    /// the server has finished (its hooks included, within the deadline).
    pub fn push(mut self, commands: &[Command], pack: &[u8]) -> Result<Pushed, PushError> {
        let endpoint = self.connection.endpoint().to_owned();
        let mut capabilities = vec!["report-status"];
        if self.advertisement.has("atomic") {
            capabilities.push("atomic");
        } else if commands.len() > 1 {
            return Err(PushError::NoAtomic { endpoint });
        }
        let multiplexed = self.advertisement.has("side-band-64k");
        if multiplexed {
            capabilities.push("side-band-64k");
        }
        if self.advertisement.has("object-format") {
            capabilities.push("object-format=sha1");
        }
        let agent = concat!("agent=grite/", env!("CARGO_PKG_VERSION"));
        capabilities.push(agent);
        let protocol = |source| PushError::Protocol {
            endpoint: endpoint.clone(),
            source,
        };
        let request = protocol::encode_commands(commands, &capabilities).map_err(protocol)?;
        self.connection.send(&request)?;
        if commands.iter().any(|c| !c.new.is_null()) {
            self.connection.send(pack)?;
        }
        self.connection.finish_request()?;
        let mut budget = Budget::new("report", REPORT_LIMIT);
        let mut sideband = Sideband::default();
        let mut report = ReportParser::default();
        loop {
            match self.connection.next_packet(&mut budget) {
                Ok(Some(Packet::Flush)) => break,
                Ok(Some(Packet::Data(data))) if multiplexed => {
                    sideband.take(data).map_err(protocol)?;
                }
                Ok(Some(Packet::Data(data))) => {
                    let line = protocol::data_line(data).map_err(protocol)?;
                    report.line(line).map_err(protocol)?;
                }
                Ok(None) => return Err(protocol(ProtocolError::Incomplete { need: 4 })),
                Err(ReadError::Protocol(source)) => return Err(protocol(source)),
                Err(ReadError::Transport(e)) => return Err(e.into()),
            }
        }
        let report = if multiplexed {
            protocol::parse_report(sideband.data())
        } else {
            report.finish()
        }
        .map_err(protocol)?;
        self.connection.finish();
        let messages = sideband.messages();
        let verdict = verdict(&report, commands).map_err(|reason| {
            let said = messages
                .iter()
                .rev()
                .take(3)
                .rev()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(" / ");
            PushError::Refused {
                endpoint: endpoint.clone(),
                reason: if said.is_empty() {
                    reason
                } else {
                    format!("{reason} (the remote said: {said})")
                },
            }
        })?;
        Ok(Pushed { verdict, messages })
    }
}

/// The server's report read as a compare-and-swap outcome.
fn verdict(report: &Report, commands: &[Command]) -> Result<Verdict, String> {
    if let Err(reason) = &report.unpack {
        return Err(format!("the remote could not unpack the objects: {reason}"));
    }
    let mut not_updated = Vec::new();
    for command in commands {
        match report.status(&command.name) {
            Some(Ok(())) => {}
            // How receive-pack words a ref it did not update (a stale
            // expectation, or a ref lock it could not take), and what an
            // atomic push says of the commands that failed with it.
            Some(Err(reason))
                if [
                    "failed to update ref",
                    "failed to lock",
                    "atomic transaction failed",
                ]
                .contains(&reason.as_str()) =>
            {
                not_updated.push(format!("{} ({reason})", command.name));
            }
            Some(Err(reason)) => {
                return Err(format!("the remote refused {}: {reason}", command.name));
            }
            None => return Err(format!("the remote did not report on {}", command.name)),
        }
    }
    if not_updated.is_empty() {
        Ok(Verdict::Applied)
    } else {
        Ok(Verdict::NotUpdated(format!(
            "the remote did not update {}",
            not_updated.join(", ")
        )))
    }
}
