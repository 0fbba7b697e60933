//! pkt-lines read one at a time from a server's byte stream, each part of
//! a reply within its byte budget and the whole connection within
//! [`CONNECTION_LIMIT`], so that the work stays linear in what the server
//! sends and a hostile one cannot make us allocate without bound.

use std::io::{BufReader, Read};

use super::protocol::{Packet, ProtocolError, packet_len};
use super::watchdog::Limited;

/// Most bytes read from one connection, whatever the protocol phase:
/// enough for the pack of a fetch of 100,000 locks with their history.
const CONNECTION_LIMIT: u64 = 1 << 30;

/// How many bytes one part of a reply may still use.
#[derive(Debug)]
pub struct Budget {
    what: &'static str,
    limit: usize,
    used: usize,
}

impl Budget {
    /// `limit` bytes for the part of the reply called `what`.
    pub fn new(what: &'static str, limit: usize) -> Budget {
        Budget {
            what,
            limit,
            used: 0,
        }
    }

    fn spend(&mut self, bytes: usize) -> Result<(), ProtocolError> {
        self.used += bytes;
        if self.used > self.limit {
            return Err(ProtocolError::TooLarge {
                what: self.what,
                limit: self.limit,
            });
        }
        Ok(())
    }
}

pub(super) enum PacketError {
    Io(std::io::Error),
    Protocol(ProtocolError),
}

/// pkt-lines read one at a time from a byte stream.
pub(super) struct Packets {
    inner: BufReader<Box<dyn Read + Send>>,
    line: Vec<u8>,
}

impl Packets {
    pub(super) fn new(reader: Box<dyn Read + Send>, endpoint: &str) -> Packets {
        let reader = Limited::new(reader, endpoint.to_owned(), CONNECTION_LIMIT);
        Packets {
            inner: BufReader::with_capacity(64 * 1024, Box::new(reader)),
            line: Vec::new(),
        }
    }

    pub(super) fn closed() -> Packets {
        Packets::new(Box::new(std::io::empty()), "")
    }

    /// Reads and drops what is left, at most `limit` bytes, until the
    /// stream ends or fails.
    pub(super) fn drain(&mut self, limit: usize) {
        let mut sink = [0u8; 8192];
        let mut left = limit;
        while left > 0 {
            match self.inner.read(&mut sink) {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    }

    pub(super) fn into_inner(self) -> BufReader<Box<dyn Read + Send>> {
        self.inner
    }

    pub(super) fn next(&mut self, budget: &mut Budget) -> Result<Option<Packet<'_>>, PacketError> {
        let mut header = [0u8; 4];
        let got = read_full(&mut self.inner, &mut header).map_err(PacketError::Io)?;
        if got == 0 {
            return Ok(None);
        }
        if got < header.len() {
            return Err(PacketError::Protocol(ProtocolError::Incomplete {
                need: header.len() - got,
            }));
        }
        let len = packet_len(header).map_err(PacketError::Protocol)?;
        budget.spend(len.max(4)).map_err(PacketError::Protocol)?;
        if len == 0 {
            return Ok(Some(Packet::Flush));
        }
        self.line.resize(len - 4, 0);
        let got = read_full(&mut self.inner, &mut self.line).map_err(PacketError::Io)?;
        if got < self.line.len() {
            return Err(PacketError::Protocol(ProtocolError::Incomplete {
                need: self.line.len() - got,
            }));
        }
        Ok(Some(Packet::Data(&self.line)))
    }
}

/// Reads until `buf` is full or the stream ends; returns how much it got.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}
