//! The pack a push sends: every new object whole, no deltas (a lock push
//! carries a commit, its tree and its blob), written by gix-pack's pack
//! writer: a version 2 header, the entries and the trailing checksum.

use gix::object::Kind;
use gix_pack::data::output;

use super::error_chain;

/// The bytes of a pack holding `objects` (kind and raw data each); an
/// error only if the pack writer fails, which in memory it should not.
pub fn write_pack(objects: &[(Kind, &[u8])]) -> Result<Vec<u8>, String> {
    let hash = gix::hash::Kind::Sha1;
    let mut entries = Vec::with_capacity(objects.len());
    for (kind, data) in objects {
        let id = gix::objs::compute_hash(hash, *kind, data).map_err(|e| error_chain(&e))?;
        let object = gix::objs::Data {
            kind: *kind,
            object_hash: hash,
            data,
        };
        let entry = output::Entry::from_data(
            &output::Count::from_data(id, None),
            &object,
            gix::zlib::Compression::BEST_SPEED,
        )
        .map_err(|e| error_chain(&e))?;
        entries.push(entry);
    }
    let count = u32::try_from(entries.len()).map_err(|_| "too many objects for one pack")?;
    let mut writer = output::bytes::FromEntriesIter::new(
        std::iter::once(Ok::<_, gix::Error>(entries)),
        Vec::new(),
        count,
        gix_pack::data::Version::V2,
        hash,
    );
    for written in &mut writer {
        written.map_err(|e| error_chain(&e))?;
    }
    Ok(writer.into_write())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_pack_is_header_and_checksum() {
        let pack = write_pack(&[]).expect("a pack");
        assert_eq!(&pack[..12], b"PACK\0\0\0\x02\0\0\0\0");
        assert_eq!(pack.len(), 32);
    }

    #[test]
    fn git_reads_back_every_object() {
        let blob = b"{\"resource\":\"issue:1\"}\n".as_slice();
        let pack = write_pack(&[(Kind::Blob, blob), (Kind::Blob, b"")]).expect("a pack");
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("p.pack");
        std::fs::write(&path, &pack).expect("write");
        let git = |command: &str, flags: &[&str]| {
            let out = std::process::Command::new("git")
                .arg(command)
                .args(flags)
                .arg(&path)
                .output()
                .expect("git runs");
            assert!(
                out.status.success(),
                "git {command}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            out
        };
        // index-pack checks every entry and its checksum, and writes the
        // index that verify-pack lists the objects from.
        git("index-pack", &[]);
        let out = git("verify-pack", &["-v"]);
        let listing = String::from_utf8_lossy(&out.stdout);
        let id = gix::objs::compute_hash(gix::hash::Kind::Sha1, Kind::Blob, blob).expect("id");
        assert!(listing.contains(&format!("{id} blob")), "{listing}");
        assert!(
            listing.contains("e69de29bb2d1d6434b8b29ae775ad8c2e48c5391 blob"),
            "{listing}"
        );
    }
}
