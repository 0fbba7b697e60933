//! A pack of whole objects: what a push of a few new lock objects needs.
//! Version 2, no deltas: a header, each object as a type-and-size varint
//! and its zlib stream, and the SHA-1 of everything before it.

use std::io::Write as _;

use gix::object::Kind;

/// The bytes of a pack holding `objects` (kind and raw data each).
pub fn write_pack(objects: &[(Kind, &[u8])]) -> Vec<u8> {
    let mut pack = Vec::new();
    pack.extend_from_slice(b"PACK");
    pack.extend_from_slice(&2u32.to_be_bytes());
    let count = u32::try_from(objects.len()).expect("a push carries a handful of objects");
    pack.extend_from_slice(&count.to_be_bytes());
    for (kind, data) in objects {
        write_entry_header(*kind, data.len(), &mut pack);
        let mut deflate =
            gix::zlib::stream::deflate::Write::new(&mut pack, gix::zlib::Compression::BEST_SPEED);
        deflate
            .write_all(data)
            .and_then(|()| deflate.flush())
            .expect("writing to memory does not fail");
    }
    let mut hasher = gix::hash::hasher(gix::hash::Kind::Sha1);
    hasher.update(&pack);
    let checksum = hasher
        .try_finalize()
        .expect("SHA-1 of our own bytes is not a collision attack");
    pack.extend_from_slice(checksum.as_bytes());
    pack
}

/// The type in bits 4-6 of the first byte, the size in its low four bits
/// and then seven bits a byte, low to high, each byte but the last with
/// its top bit set.
fn write_entry_header(kind: Kind, size: usize, out: &mut Vec<u8>) {
    let code: u8 = match kind {
        Kind::Commit => 1,
        Kind::Tree => 2,
        Kind::Blob => 3,
        Kind::Tag => 4,
    };
    let mut size = size as u64;
    let mut byte = (code << 4) | (size & 0x0f) as u8;
    size >>= 4;
    while size > 0 {
        out.push(byte | 0x80);
        byte = (size & 0x7f) as u8;
        size >>= 7;
    }
    out.push(byte);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_headers_encode_type_and_size() {
        let mut out = Vec::new();
        write_entry_header(Kind::Blob, 15, &mut out);
        assert_eq!(out, [0x3f]);
        out.clear();
        write_entry_header(Kind::Commit, 16, &mut out);
        assert_eq!(out, [0x90, 0x01]);
        out.clear();
        write_entry_header(Kind::Tree, 300, &mut out);
        // 300 = 0b1_0010_1100: low four bits 1100, then 10010.
        assert_eq!(out, [0xac, 0x12]);
    }

    #[test]
    fn an_empty_pack_is_header_and_checksum() {
        let pack = write_pack(&[]);
        assert_eq!(&pack[..12], b"PACK\0\0\0\x02\0\0\0\0");
        assert_eq!(pack.len(), 32);
    }
}
