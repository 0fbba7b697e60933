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
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/receive-pack/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn id(hex: &str) -> ObjectId {
        ObjectId::from_hex(hex.as_bytes()).expect("valid id")
    }

    #[test]
    fn reads_the_advertisement_of_an_empty_repository() {
        let bytes = fixture("advertisement-empty.bin");
        let (advertisement, used) = parse_advertisement(&bytes).expect("valid");
        assert_eq!(used, bytes.len());
        assert!(advertisement.refs.is_empty());
        assert!(advertisement.has("report-status") && advertisement.has("atomic"));
        assert!(advertisement.has("object-format") && !advertisement.has("report"));
    }

    #[test]
    fn reads_the_smart_http_announcement_git_http_backend_sends() {
        let bytes = fixture("http-advertisement-refs.bin");
        let used = parse_service_announcement(&bytes, "git-receive-pack").expect("valid");
        let (advertisement, rest) = parse_advertisement(&bytes[used..]).expect("valid");
        assert_eq!(used + rest, bytes.len());
        assert!(advertisement.get("refs/grite/locks/aaaa").is_some());
        assert!(advertisement.has("report-status"));
        assert!(matches!(
            parse_service_announcement(&bytes, "git-upload-pack"),
            Err(ProtocolError::Malformed { .. })
        ));
        assert!(matches!(
            parse_service_announcement(b"<html>", "git-receive-pack"),
            Err(ProtocolError::BadHeader { .. })
        ));
        assert_eq!(
            parse_service_announcement(&bytes[..10], "git-receive-pack"),
            Err(ProtocolError::Incomplete { need: 21 })
        );
    }

    #[test]
    fn reads_refs_and_capabilities_of_a_real_advertisement() {
        let bytes = fixture("advertisement-refs.bin");
        let (advertisement, used) = parse_advertisement(&bytes).expect("valid");
        assert_eq!(used, bytes.len());
        let names: Vec<&str> = advertisement.refs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["refs/grite/locks/aaaa", "refs/heads/master"]);
        assert_eq!(
            advertisement.get("refs/grite/locks/aaaa"),
            Some(id("9fd0ca0b25db9d0a94673398512bbc1169fe1911"))
        );
        assert!(
            advertisement
                .capabilities
                .iter()
                .any(|c| c.starts_with("agent=git/"))
        );
    }

    #[test]
    fn every_truncation_of_an_advertisement_is_incomplete() {
        let bytes = fixture("advertisement-refs.bin");
        for end in 0..bytes.len() {
            assert!(
                matches!(
                    parse_advertisement(&bytes[..end]),
                    Err(ProtocolError::Incomplete { .. })
                ),
                "cut at {end}"
            );
        }
    }

    #[test]
    fn reads_real_reports() {
        let ok = parse_report(&fixture("report-create-ok.bin")).expect("valid");
        assert_eq!(ok.unpack, Ok(()));
        assert_eq!(ok.refs, [("refs/grite/locks/bbbb".to_owned(), Ok(()))]);

        let stale = parse_report(&fixture("report-stale-ng.bin")).expect("valid");
        assert_eq!(
            stale.status("refs/grite/locks/aaaa"),
            Some(&Err("failed to update ref".to_owned()))
        );

        let atomic = parse_report(&fixture("report-atomic-ng.bin")).expect("valid");
        assert_eq!(atomic.refs.len(), 2);
        assert!(
            atomic
                .refs
                .iter()
                .all(|(_, s)| s.as_ref().is_err_and(|r| r == "atomic transaction failed"))
        );

        let hook = parse_report(&fixture("report-hook-declined.bin")).expect("valid");
        assert_eq!(
            hook.status("refs/grite/locks/cccc"),
            Some(&Err("pre-receive hook declined".to_owned()))
        );

        let delete = parse_report(&fixture("report-delete-ok.bin")).expect("valid");
        assert_eq!(delete.status("refs/grite/locks/aaaa"), Some(&Ok(())));
    }

    #[test]
    fn every_truncation_of_a_report_is_incomplete() {
        let bytes = fixture("report-atomic-ng.bin");
        for end in 0..bytes.len() {
            assert!(
                matches!(
                    parse_report(&bytes[..end]),
                    Err(ProtocolError::Incomplete { .. })
                ),
                "cut at {end}"
            );
        }
    }

    #[test]
    fn an_unpack_failure_and_a_server_error_are_reported() {
        let mut bytes = Vec::new();
        write_packet(b"unpack index-pack abnormal exit\n", &mut bytes).expect("short");
        bytes.extend_from_slice(FLUSH);
        assert_eq!(
            parse_report(&bytes).expect("valid").unpack,
            Err("index-pack abnormal exit".to_owned())
        );

        let mut bytes = Vec::new();
        write_packet(b"ERR access denied\n", &mut bytes).expect("short");
        assert_eq!(
            parse_advertisement(&bytes),
            Err(ProtocolError::Server("access denied".to_owned()))
        );
    }

    #[test]
    fn malformed_headers_and_lines_are_refused() {
        for bytes in [&b"00zz"[..], b"0001", b"0004", b"fff1xxxx"] {
            assert!(
                matches!(read_packet(bytes), Err(ProtocolError::BadHeader { .. })),
                "{bytes:?}"
            );
        }
        let mut bytes = Vec::new();
        write_packet(b"hello\n", &mut bytes).expect("short");
        bytes.extend_from_slice(FLUSH);
        assert!(matches!(
            parse_report(&bytes),
            Err(ProtocolError::Malformed { .. })
        ));
        assert!(matches!(
            parse_advertisement(&bytes),
            Err(ProtocolError::Malformed { .. })
        ));
    }

    #[test]
    fn a_multiplexed_report_is_taken_apart() {
        let mut inner = Vec::new();
        write_packet(b"unpack ok\n", &mut inner).expect("short");
        write_packet(b"ok refs/grite/locks/x\n", &mut inner).expect("short");
        inner.extend_from_slice(FLUSH);
        let mut sideband = Sideband::default();
        // The report cut in two, a hook's message between the halves.
        let (first, second) = inner.split_at(9);
        sideband.take(&[&[1u8][..], first].concat()).expect("data");
        sideband
            .take(b"\x02hook: checking\rhook: done\n")
            .expect("message");
        sideband.take(&[&[1u8][..], second].concat()).expect("data");
        let report = parse_report(sideband.data()).expect("a report");
        assert_eq!(report.status("refs/grite/locks/x"), Some(&Ok(())));
        assert_eq!(sideband.messages(), ["hook: checking", "hook: done"]);
        assert_eq!(
            sideband.take(b"\x03disk full"),
            Err(ProtocolError::Server("disk full".to_owned()))
        );
        assert!(matches!(
            sideband.take(b"\x07?"),
            Err(ProtocolError::Malformed { .. })
        ));
    }

    #[test]
    fn commands_encode_as_git_expects() {
        let null = ObjectId::null(gix::hash::Kind::Sha1);
        let a = id("9fd0ca0b25db9d0a94673398512bbc1169fe1911");
        let commands = [
            Command {
                old: null,
                new: a,
                name: "refs/grite/locks/x".into(),
            },
            Command {
                old: a,
                new: null,
                name: "refs/grite/locks/y".into(),
            },
        ];
        let bytes = encode_commands(&commands, &["report-status", "atomic"]).expect("short lines");
        let first = format!("{null} {a} refs/grite/locks/x\0report-status atomic");
        let second = format!("{a} {null} refs/grite/locks/y");
        let expected = format!(
            "{:04x}{first}{:04x}{second}0000",
            first.len() + 4,
            second.len() + 4
        );
        assert_eq!(String::from_utf8(bytes).expect("text"), expected);
    }
}
