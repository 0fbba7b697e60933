//! The files of the derived caches kept beside the refs
//! (`docs/PROTOCOL.md` §3): read whole within a bound, and replaced whole
//! by a file written beside them and renamed over, so that a reader finds
//! the old file or the new one, never half of one.

use std::io::{Read as _, Write as _};
use std::path::Path;

/// The bytes of the file at `path`; none when it is missing, unreadable or
/// larger than `max` bytes (a cache that large is rebuilt, not read).
pub(super) fn read_bounded(path: &Path, max: u64) -> Vec<u8> {
    let Ok(file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let mut bytes = Vec::new();
    match file.take(max + 1).read_to_end(&mut bytes) {
        Ok(_) if bytes.len() as u64 <= max => bytes,
        _ => Vec::new(),
    }
}

/// Replaces the file at `path` by one holding `bytes`, written beside it
/// and renamed over it.
pub(super) fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(bytes)?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}
