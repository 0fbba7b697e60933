//! The files of the derived caches kept beside the refs
//! (`docs/PROTOCOL.md` §3): mapped whole within a bound, and replaced
//! whole by a file written beside them and renamed over, so that a reader
//! finds the old file or the new one, never half of one.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The bytes of the file at `path`, mapped into memory rather than read;
/// none when it is missing, empty, unreadable or larger than `max` bytes
/// (a cache that large is rebuilt, not read). Reading the name cache,
/// which an acquire among 100,000 locks reads whole, copied 2.7 MB into
/// fresh pages, which the kernel zeroes and faults in one at a time: a
/// tenth of such an acquire.
pub(super) fn map_bounded(path: &Path, max: u64) -> Mapped {
    let Ok(file) = std::fs::File::open(path) else {
        return Mapped(None);
    };
    match file.metadata() {
        Ok(meta) if meta.len() > 0 && meta.len() <= max => {}
        _ => return Mapped(None),
    }
    // SAFETY: the bytes of a mapped file must not change while it is
    // mapped. Our writers never change a cache file's bytes in place:
    // they append past its end (which a mapping of the length it had
    // does not reach) or rename a new file over it (the mapping keeps the
    // old one). As git does with the packed-refs and pack files it maps,
    // another writer is trusted not to write into the file or cut it
    // short (which would end the process, as a kill does, and leave every
    // ref as it was).
    Mapped(unsafe { memmap2::Mmap::map(&file) }.ok())
}

/// The bytes of a mapped cache file, or none.
pub(super) struct Mapped(Option<memmap2::Mmap>);

impl std::ops::Deref for Mapped {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.0.as_deref().unwrap_or(&[])
    }
}

/// Replaces the file at `path` by one holding `bytes`, written beside it
/// and renamed over it.
pub(super) fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    Replacement::begin(path)?.finish(bytes)
}

/// A file begun beside the one at `path`, to be renamed over it once
/// written; removed if dropped unwritten.
pub(super) struct Replacement {
    file: tempfile::NamedTempFile,
    path: PathBuf,
}

impl Replacement {
    pub fn begin(path: &Path) -> std::io::Result<Replacement> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        Ok(Replacement {
            file: tempfile::NamedTempFile::new_in(dir)?,
            path: path.to_owned(),
        })
    }

    /// What the file system says of the begun file: its times are the
    /// file system's clock when it was begun.
    pub fn metadata(&self) -> std::io::Result<std::fs::Metadata> {
        self.file.as_file().metadata()
    }

    pub fn finish(mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.file.write_all(bytes)?;
        self.file.persist(&self.path).map_err(|e| e.error)?;
        Ok(())
    }
}
