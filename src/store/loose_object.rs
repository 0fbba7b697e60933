//! Writing loose objects, as gix's loose store does, with one zlib
//! compressor for the whole process.
//!
//! gix's writer sets up a new compressor for every object, and setting one
//! up allocates and clears some 300 KiB: fresh pages the kernel must fault
//! in and zero. An acquire writes six small objects (the lock's commit,
//! tree and blob, and the same for a version shard); `perf` of acquire and
//! release put an eighth of the whole process in those set-ups. Here the
//! compressor is set up once, and smaller (see [`compressor`]), and reset
//! between objects, which zlib makes equivalent to a new one.
//!
//! The file is what gix and git write: the zlib stream of `<kind> <size>\0`
//! and the content, in `objects/<2 hex>/<38 hex>`, written to a temporary
//! file in `objects/` (mode 0444) and renamed into place, so a reader sees
//! the whole object or none.

use std::cell::RefCell;
use std::io::{self, Write as _};
use std::path::PathBuf;

use gix::ObjectId;
use gix::objs::{Kind, WriteTo};
use gix::zlib::Compression;
use zlib_rs::{Deflate, DeflateConfig, DeflateFlush};

thread_local! {
    /// The compressor and the level it was set up with; a repository
    /// configured for another level (`core.looseCompression`) sets up anew.
    static COMPRESSOR: RefCell<Option<(Compression, Deflate)>> = const { RefCell::new(None) };
}

/// Writes `object` unless the object database already has it (loose, in a
/// pack, or in an alternate); returns its id.
pub(crate) fn write(repo: &gix::Repository, object: &impl WriteTo) -> io::Result<ObjectId> {
    let mut content = Vec::with_capacity(usize::try_from(object.size()).unwrap_or(0));
    object.write_to(&mut content)?;
    write_raw(repo, object.kind(), &content)
}

/// Writes the object of `kind` whose encoded form is `content`, unless the
/// object database already has it; returns its id.
pub(crate) fn write_raw(
    repo: &gix::Repository,
    kind: Kind,
    content: &[u8],
) -> io::Result<ObjectId> {
    let id =
        gix::objs::compute_hash(repo.object_hash(), kind, content).map_err(io::Error::other)?;
    if repo.objects.exists_without_refresh(&id) {
        return Ok(id);
    }
    let mut input = gix::objs::encode::loose_header(kind, content.len() as u64).to_vec();
    input.extend_from_slice(content);
    let compressed = compress(repo.objects.loose_compression, &input)?;
    let objects = repo.objects.store_ref().path();
    let mut builder = tempfile::Builder::new();
    // Read-only, as git and gix leave objects.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o444));
    let mut file = builder.tempfile_in(objects)?;
    file.write_all(&compressed)?;
    let path = path(repo, id);
    if let Some(folder) = path.parent() {
        match std::fs::create_dir(folder) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
    }
    file.persist(path).map_err(|e| e.error)?;
    Ok(id)
}

/// Where the loose object `id` of `repo` is, or would be.
pub(crate) fn path(repo: &gix::Repository, id: ObjectId) -> PathBuf {
    let hex = id.to_hex().to_string();
    repo.objects
        .store_ref()
        .path()
        .join(&hex[..2])
        .join(&hex[2..])
}

/// A compressor at `level` with a 4 KiB window and a small hash table,
/// where gix sets up zlib's largest (32 KiB, 256 KiB in all): a lock
/// object is a few hundred bytes, so a larger window finds nothing more to
/// refer back to, and the smaller state is some 35 fewer fresh pages for
/// every process that writes (`perf stat` of an acquire and release: 878
/// page faults before, 808 after). Any zlib reader (git's, gix's) reads a
/// stream of any window size.
fn compressor(level: Compression) -> Deflate {
    Deflate::new_with_config(DeflateConfig {
        level: level.level(),
        window_bits: 12,
        mem_level: 4,
        ..DeflateConfig::default()
    })
}

/// The zlib stream of `input`, whole.
fn compress(level: Compression, input: &[u8]) -> io::Result<Vec<u8>> {
    COMPRESSOR.with_borrow_mut(|slot| {
        let compressor = match slot {
            Some((set_up, compressor)) if *set_up == level => {
                compressor.reset();
                compressor
            }
            _ => &mut slot.insert((level, compressor(level))).1,
        };
        // Enough for most lock objects; one that does not fit (the buffer
        // is full) gets twice the room and goes on where it stopped.
        let mut out = vec![0; input.len() / 2 + 64];
        loop {
            let read = usize::try_from(compressor.total_in()).unwrap_or(input.len());
            let written = usize::try_from(compressor.total_out()).unwrap_or(out.len());
            let status = compressor
                .compress(&input[read..], &mut out[written..], DeflateFlush::Finish)
                .map_err(|e| io::Error::other(format!("zlib: {}", e.as_str())))?;
            let now_written = usize::try_from(compressor.total_out()).unwrap_or(out.len());
            if matches!(status, zlib_rs::Status::StreamEnd) {
                out.truncate(now_written);
                return Ok(out);
            }
            if now_written == out.len() {
                out.resize(out.len() * 2, 0);
            } else if now_written == written && compressor.total_in() == read as u64 {
                return Err(io::Error::other(
                    "zlib made no progress compressing an object",
                ));
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> (tempfile::TempDir, gix::Repository) {
        let dir = tempfile::tempdir().expect("temp dir");
        let repo = gix::init_bare(dir.path()).expect("init");
        (dir, repo)
    }

    #[test]
    fn objects_read_back_as_written_with_the_ids_gix_gives_them() {
        let (_dir, ours) = repo();
        let (_other, theirs) = repo();
        // A blob that does not compress, so the output outgrows the input.
        let noise: Vec<u8> = (0..70_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for content in [b"".as_slice(), b"{\"a\":1}", &noise, &noise[..1000]] {
            let blob = gix::objs::Blob {
                data: content.to_vec(),
            };
            let id = write(&ours, &blob).expect("written");
            assert_eq!(id, theirs.write_blob(content).expect("gix").detach());
            let read = ours.find_object(id).expect("readable");
            assert_eq!(read.kind, Kind::Blob);
            assert_eq!(read.data, content);
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                let mode = std::fs::metadata(path(&ours, id))
                    .expect("there")
                    .permissions();
                assert_eq!(mode.mode() & 0o777, 0o444, "read-only, as git leaves it");
            }
        }
    }

    #[test]
    fn an_object_the_database_has_is_not_written_again() {
        let (_dir, repo) = repo();
        let blob = gix::objs::Blob {
            data: b"once".to_vec(),
        };
        let id = write(&repo, &blob).expect("written");
        let path = path(&repo, id);
        std::fs::remove_file(&path).expect("removed");
        std::fs::write(&path, b"a marker").expect("planted");
        assert_eq!(write(&repo, &blob).expect("found"), id);
        assert_eq!(std::fs::read(&path).expect("kept"), b"a marker");
    }

    #[test]
    fn a_repository_with_another_compression_level_gets_its_own() {
        let (_dir, repo) = repo();
        let mut fast = repo.clone();
        fast.objects.loose_compression = Compression::NONE;
        let data: Vec<u8> = b"grite ".repeat(1000);
        let blob = gix::objs::Blob { data: data.clone() };
        let id = write(&fast, &blob).expect("written");
        let path = path(&repo, id);
        let stored = std::fs::metadata(&path).expect("there").len();
        assert!(stored > data.len() as u64, "level 0 stores: {stored} bytes");
        std::fs::remove_file(&path).expect("removed");
        write(&repo, &blob).expect("written again");
        let compressed = std::fs::metadata(&path).expect("there").len();
        assert!(
            compressed < 200,
            "the default level compresses: {compressed} bytes"
        );
        assert_eq!(repo.find_object(id).expect("readable").data, data);
    }
}
