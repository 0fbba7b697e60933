//! Unit tests of the receive-pack wire format in `protocol.rs`: the
//! advertisement, the command list and the report-status reply.

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

/// `parse` of every proper prefix of `bytes` asks for more input.
fn every_truncation_is_incomplete<T>(
    bytes: &[u8],
    parse: impl Fn(&[u8]) -> Result<T, ProtocolError>,
) {
    for end in 0..bytes.len() {
        assert!(
            matches!(parse(&bytes[..end]), Err(ProtocolError::Incomplete { .. })),
            "cut at {end}"
        );
    }
}

#[test]
fn every_truncation_of_an_advertisement_is_incomplete() {
    every_truncation_is_incomplete(&fixture("advertisement-refs.bin"), parse_advertisement);
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
    every_truncation_is_incomplete(&fixture("report-atomic-ng.bin"), parse_report);
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
