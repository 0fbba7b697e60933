//! pkt-lines, the framing of git's protocol: four hex digits giving the
//! length of the whole line (header included), then the data; `0000` is a
//! flush. Pure functions over byte slices.

/// Longest pkt-line, header included (git's `LARGE_PACKET_MAX`).
pub const MAX_PKT_LEN: usize = 65520;

/// The flush packet.
pub const FLUSH: &[u8] = b"0000";

/// Why bytes from a server could not be read, or a request not written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The bytes end inside a packet or before the closing flush.
    #[error("the server's reply ended early ({need} more bytes expected at least)")]
    Incomplete {
        /// How many more bytes are needed at least.
        need: usize,
    },
    /// A pkt-line header that is not four hex digits of a valid length.
    #[error("the server sent a malformed pkt-line header {header:?}")]
    BadHeader {
        /// The four header bytes, as text.
        header: String,
    },
    /// A line that does not have the shape it must have where it stands.
    #[error("the server sent a malformed {what}: {line:?}")]
    Malformed {
        /// Which part of the protocol.
        what: &'static str,
        /// The line, shortened.
        line: String,
    },
    /// The server answered with `ERR <message>`.
    #[error("the server refused: {0}")]
    Server(String),
    /// More bytes than we read for one part of the protocol.
    #[error("the server's {what} is larger than the {limit} bytes grite reads")]
    TooLarge {
        /// Which part of the protocol.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// A request line longer than a pkt-line can carry.
    #[error("a request line is {len} bytes, more than a pkt-line carries")]
    TooLong {
        /// The length of the data.
        len: usize,
    },
}

/// One packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    /// A data line (its trailing newline, if any, kept).
    Data(&'a [u8]),
    /// `0000`.
    Flush,
}

/// The length a pkt-line header announces, header included; 0 for a
/// flush.
pub fn packet_len(header: [u8; 4]) -> Result<usize, ProtocolError> {
    let bad = || ProtocolError::BadHeader {
        header: String::from_utf8_lossy(&header).into_owned(),
    };
    if !header.iter().all(u8::is_ascii_hexdigit) {
        return Err(bad());
    }
    let len = header.iter().fold(0usize, |n, b| {
        n * 16 + (*b as char).to_digit(16).unwrap_or(0) as usize
    });
    match len {
        0 => Ok(0),
        // 0001 (delimiter) and 0002 (response end) exist only in protocol
        // v2, 0003 in none; receive-pack speaks v0/v1.
        1..=4 => Err(bad()),
        len if len > MAX_PKT_LEN => Err(bad()),
        len => Ok(len),
    }
}

/// Reads the packet at the start of `bytes`; returns it and how many bytes
/// it took.
pub fn read_packet(bytes: &[u8]) -> Result<(Packet<'_>, usize), ProtocolError> {
    let Some(header) = bytes.first_chunk::<4>() else {
        return Err(ProtocolError::Incomplete {
            need: 4 - bytes.len(),
        });
    };
    match packet_len(*header)? {
        0 => Ok((Packet::Flush, 4)),
        len => match bytes.get(4..len) {
            Some(data) => Ok((Packet::Data(data), len)),
            None => Err(ProtocolError::Incomplete {
                need: len - bytes.len(),
            }),
        },
    }
}

/// Appends `data` as one pkt-line.
pub fn write_packet(data: &[u8], out: &mut Vec<u8>) -> Result<(), ProtocolError> {
    let len = data.len() + 4;
    if len > MAX_PKT_LEN {
        return Err(ProtocolError::TooLong { len: data.len() });
    }
    out.extend_from_slice(format!("{len:04x}").as_bytes());
    out.extend_from_slice(data);
    Ok(())
}

/// Reads data lines up to and including a flush; returns them (without
/// trailing newlines) and the bytes taken. An `ERR` line is the server's
/// refusal.
pub(super) fn read_section(bytes: &[u8]) -> Result<(Vec<&[u8]>, usize), ProtocolError> {
    let mut lines = Vec::new();
    let mut at = 0;
    loop {
        let (packet, used) = read_packet(&bytes[at..])?;
        at += used;
        match packet {
            Packet::Flush => return Ok((lines, at)),
            Packet::Data(data) => lines.push(data_line(data)?),
        }
    }
}

/// A data packet's line without its newline; an `ERR` line is the
/// server's refusal.
pub fn data_line(data: &[u8]) -> Result<&[u8], ProtocolError> {
    let line = data.strip_suffix(b"\n").unwrap_or(data);
    match line.strip_prefix(b"ERR ") {
        Some(message) => Err(ProtocolError::Server(lossy(message))),
        None => Ok(line),
    }
}

/// Bytes from a server as text, for a message.
pub(super) fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_longer_than_a_pkt_line_is_refused() {
        let mut out = Vec::new();
        assert!(write_packet(&vec![b'x'; MAX_PKT_LEN - 4], &mut out).is_ok());
        assert_eq!(
            write_packet(&vec![b'x'; MAX_PKT_LEN - 3], &mut out),
            Err(ProtocolError::TooLong {
                len: MAX_PKT_LEN - 3
            })
        );
    }
}
