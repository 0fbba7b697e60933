//! The wire format of a push (`receive-pack`, protocol v0/v1, without
//! side-band), as pure functions over byte slices: pkt-lines, the ref
//! advertisement, the command list and the report-status reply. Nothing
//! here does I/O, so the fuzzers and unit tests reach every byte of it; the
//! transport owns the pipes and sockets.
//!
//! Framing is in [`super::pktline`]. The server advertises `<oid> <ref>` lines, the first with `\0` and its
//! capabilities; the client sends `<old> <new> <ref>` commands, the first
//! with `\0` and the capabilities it wants, a flush and the pack; the server
//! answers `unpack ok` and one `ok <ref>` or `ng <ref> <reason>` a command.

use gix::ObjectId;

pub use super::pktline::{
    FLUSH, MAX_PKT_LEN, Packet, ProtocolError, data_line, packet_len, read_packet, write_packet,
};
use super::pktline::{lossy, read_section};

/// What receive-pack announces before a push.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Advertisement {
    /// Every ref and its value, in the server's order (peeled tag lines and
    /// the empty repository's `capabilities^{}` placeholder left out).
    pub refs: Vec<(String, ObjectId)>,
    /// The capabilities of the first line.
    pub capabilities: Vec<String>,
}

impl Advertisement {
    /// Whether the server offers `capability` (with or without a value).
    pub fn has(&self, capability: &str) -> bool {
        self.capabilities.iter().any(|c| {
            c == capability
                || c.strip_prefix(capability)
                    .is_some_and(|rest| rest.starts_with('='))
        })
    }

    /// The value of `name` on the server, if it has that ref.
    pub fn get(&self, name: &str) -> Option<ObjectId> {
        self.refs.iter().find(|(n, _)| n == name).map(|(_, id)| *id)
    }
}

/// Reads the advertisement at the start of `bytes` (an optional
/// `version 1` line, ref lines, a flush); returns it and the bytes taken.
pub fn parse_advertisement(bytes: &[u8]) -> Result<(Advertisement, usize), ProtocolError> {
    let (lines, used) = read_section(bytes)?;
    let mut parser = AdvertisementParser::default();
    for line in lines {
        parser.line(line)?;
    }
    Ok((parser.finish(), used))
}

/// The advertisement, read one line (a data packet without its newline)
/// at a time, so that a connection can parse as the bytes arrive: the
/// work stays linear in the size of the reply.
#[derive(Debug, Default)]
pub struct AdvertisementParser {
    advertisement: Advertisement,
    lines: usize,
}

impl AdvertisementParser {
    /// Takes the next line before the closing flush.
    pub fn line(&mut self, line: &[u8]) -> Result<(), ProtocolError> {
        let first = self.lines == 0;
        self.lines += 1;
        if first && line == b"version 1" {
            self.lines = 0;
            return Ok(());
        }
        let (refline, capabilities) = match line.iter().position(|&b| b == 0) {
            Some(nul) if first => (&line[..nul], Some(&line[nul + 1..])),
            Some(_) => return Err(malformed("ref advertisement", line)),
            None => (line, None),
        };
        if let Some(capabilities) = capabilities {
            self.advertisement.capabilities = std::str::from_utf8(capabilities)
                .map_err(|_| malformed("capability list", capabilities))?
                .split(' ')
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect();
        }
        let (id, name) = split_id(refline).ok_or_else(|| malformed("ref advertisement", line))?;
        if !name.ends_with("^{}") {
            self.advertisement.refs.push((name.to_owned(), id));
        }
        Ok(())
    }

    /// The advertisement, once the flush came.
    pub fn finish(self) -> Advertisement {
        self.advertisement
    }
}

/// Reads the line smart HTTP puts before an advertisement,
/// `# service=<service>` and its flush; returns the bytes taken. Anything
/// else means the server is not a smart git server for `service` (a dumb
/// HTTP server, or a web page where a repository was expected).
pub fn parse_service_announcement(bytes: &[u8], service: &str) -> Result<usize, ProtocolError> {
    let (packet, mut used) = read_packet(bytes)?;
    let expected = format!("# service={service}");
    match packet {
        Packet::Data(line) if line.strip_suffix(b"\n").unwrap_or(line) == expected.as_bytes() => {}
        Packet::Data(line) => return Err(malformed("smart HTTP service line", line)),
        Packet::Flush => return Err(malformed("smart HTTP service line", b"0000")),
    }
    if let (Packet::Flush, flush) = read_packet(&bytes[used..])? {
        used += flush;
    }
    Ok(used)
}

/// One ref update of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The value the ref must have now; the null id means it must not exist.
    pub old: ObjectId,
    /// The value to give it; the null id deletes it.
    pub new: ObjectId,
    /// The full ref name.
    pub name: String,
}

/// Encodes the command list: one pkt-line a command, the first followed by
/// NUL and `capabilities`, then a flush. The pack (if any) follows it on
/// the wire, outside pkt-lines.
pub fn encode_commands(
    commands: &[Command],
    capabilities: &[&str],
) -> Result<Vec<u8>, ProtocolError> {
    let mut out = Vec::new();
    for (i, command) in commands.iter().enumerate() {
        let mut line = format!("{} {} {}", command.old, command.new, command.name).into_bytes();
        if i == 0 {
            line.push(0);
            line.extend_from_slice(capabilities.join(" ").as_bytes());
        }
        write_packet(&line, &mut out)?;
    }
    out.extend_from_slice(FLUSH);
    Ok(out)
}

/// The server's verdict on a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// `Ok` for `unpack ok`, else the unpacker's error.
    pub unpack: Result<(), String>,
    /// One entry a ref, in the server's order: `Ok` or the `ng` reason.
    pub refs: Vec<(String, Result<(), String>)>,
}

impl Report {
    /// The status of `name`, if the server reported one.
    pub fn status(&self, name: &str) -> Option<&Result<(), String>> {
        self.refs.iter().find(|(n, _)| n == name).map(|(_, s)| s)
    }
}

/// Reads a report-status reply (`unpack …`, `ok`/`ng` lines, a flush).
pub fn parse_report(bytes: &[u8]) -> Result<Report, ProtocolError> {
    let (lines, _) = read_section(bytes)?;
    let mut parser = ReportParser::default();
    for line in lines {
        parser.line(line)?;
    }
    parser.finish()
}

/// The report-status reply, read one line at a time.
#[derive(Debug, Default)]
pub struct ReportParser {
    unpack: Option<Result<(), String>>,
    refs: Vec<(String, Result<(), String>)>,
}

impl ReportParser {
    /// Takes the next line before the closing flush.
    pub fn line(&mut self, line: &[u8]) -> Result<(), ProtocolError> {
        if self.unpack.is_none() {
            self.unpack = Some(match line.strip_prefix(b"unpack ") {
                Some(b"ok") => Ok(()),
                Some(error) => Err(lossy(error)),
                None => return Err(malformed("report-status", line)),
            });
            return Ok(());
        }
        let text = std::str::from_utf8(line).map_err(|_| malformed("ref status", line))?;
        let status = if let Some(name) = text.strip_prefix("ok ") {
            (name.to_owned(), Ok(()))
        } else if let Some(rest) = text.strip_prefix("ng ") {
            let (name, reason) = rest.split_once(' ').unwrap_or((rest, ""));
            (name.to_owned(), Err(reason.to_owned()))
        } else {
            return Err(malformed("ref status", line));
        };
        if status.0.is_empty() {
            return Err(malformed("ref status", line));
        }
        self.refs.push(status);
        Ok(())
    }

    /// The report, once the flush came.
    pub fn finish(self) -> Result<Report, ProtocolError> {
        Ok(Report {
            unpack: self.unpack.ok_or_else(|| malformed("report-status", b""))?,
            refs: self.refs,
        })
    }
}

/// A reply multiplexed by `side-band-64k`: the first byte of each data
/// packet says whose it is. 1 is the reply itself (here the report-status
/// pkt-lines, cut anywhere), 2 messages for the user (a hook's output), 3 a
/// fatal error.
#[derive(Debug, Default)]
pub struct Sideband {
    data: Vec<u8>,
    messages: Vec<u8>,
}

impl Sideband {
    /// Takes one data packet of the outer stream.
    pub fn take(&mut self, packet: &[u8]) -> Result<(), ProtocolError> {
        match packet.split_first() {
            Some((1, data)) => self.data.extend_from_slice(data),
            Some((2, message)) => self.messages.extend_from_slice(message),
            Some((3, error)) => return Err(ProtocolError::Server(lossy(error))),
            _ => return Err(malformed("side-band packet", packet)),
        }
        Ok(())
    }

    /// The reply, demultiplexed.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The messages, a line each (progress lines end in `\r`), blank ones
    /// left out.
    pub fn messages(&self) -> Vec<String> {
        lossy(&self.messages)
            .split(['\n', '\r'])
            .map(str::trim_end)
            .filter(|line| !line.trim().is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// `<40 hex> <name>` into its parts.
fn split_id(line: &[u8]) -> Option<(ObjectId, &str)> {
    let text = std::str::from_utf8(line).ok()?;
    let (hex, name) = text.split_once(' ')?;
    if name.is_empty() || hex.len() != 40 {
        return None;
    }
    Some((ObjectId::from_hex(hex.as_bytes()).ok()?, name))
}

fn malformed(what: &'static str, line: &[u8]) -> ProtocolError {
    ProtocolError::Malformed {
        what,
        line: lossy(&line[..line.len().min(120)]),
    }
}

#[cfg(test)]
mod tests;
