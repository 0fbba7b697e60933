//! Property checks on every parser that takes outside input, shared by the
//! cargo-fuzz targets in `fuzz/` and by the test that replays their seed
//! corpus on every `cargo test`. Each check panics when a property fails;
//! none may panic for any other reason, whatever the bytes.

use crate::lease::{LockRecord, Resource, Ttl, ref_hash_of};
use crate::remote::protocol::{self, Packet};

/// The ref hash the record seeds are written for: `issue:8057324b`.
pub const RECORD_SEED_REF_HASH: &str = "a02e999268bbd49c";

/// A resource that parses is canonical: printing and parsing it again gives
/// the same resource, whose ref hash is 16 hex characters, and it
/// conflicts with itself.
pub fn check_resource(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(resource) = Resource::parse(text) {
        let again = Resource::parse(&resource.to_string());
        assert_eq!(again.as_ref(), Ok(&resource), "not canonical: {text:?}");
        let hash = resource.ref_hash();
        assert_eq!(hash.len(), 16);
        assert!(
            hash.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert!(resource.conflicts_with(&resource));
    }
}

/// A TTL that parses is within bounds and reads back from its display.
pub fn check_ttl(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ttl) = Ttl::parse(text) {
        assert!(
            (crate::lease::MIN_TTL_MILLIS..=crate::lease::MAX_TTL_MILLIS)
                .contains(&ttl.as_millis())
        );
        assert_eq!(Ttl::parse(&ttl.to_string()), Ok(ttl), "display of {text:?}");
    }
}

/// A record that reads under the seed ref writes back to bytes that read
/// as the same record, under the ref its resource hashes to.
pub fn check_record(data: &[u8]) {
    if let Ok(record) = LockRecord::from_json(data, RECORD_SEED_REF_HASH) {
        assert_eq!(ref_hash_of(&record.resource), RECORD_SEED_REF_HASH);
        let again = LockRecord::from_json(&record.to_json(), RECORD_SEED_REF_HASH);
        assert_eq!(again, Ok(record));
    }
}

/// The receive-pack decoders never read past their input, never return an
/// empty ref name, and a line they accept survives re-encoding.
pub fn check_receive_pack(data: &[u8]) {
    if let Ok((advertisement, used)) = protocol::parse_advertisement(data) {
        assert!(used <= data.len());
        for (name, _) in &advertisement.refs {
            assert!(!name.is_empty());
            let mut line = Vec::new();
            protocol::write_packet(name.as_bytes(), &mut line).expect("a ref name fits a pkt-line");
            assert_eq!(
                protocol::read_packet(&line),
                Ok((Packet::Data(name.as_bytes()), line.len()))
            );
        }
    }
    if let Ok(report) = protocol::parse_report(data) {
        assert!(report.refs.iter().all(|(name, _)| !name.is_empty()));
    }
    if let Ok(used) = protocol::parse_service_announcement(data, "git-receive-pack") {
        assert!(used <= data.len());
        assert!(data[4..used].starts_with(b"# service=git-receive-pack"));
    }
}
