//! The lock refs in packed-refs that a decision about issues cannot leave
//! unread (`docs/PROTOCOL.md` §3, §7), so that it need not list the
//! others. Most locks are on issues, and a lock on a valid `issue:`
//! resource conflicts only with its own text and with `repo:` locks
//! ([`solitary`](crate::lease::solitary)): its ref name is the hash of that
//! text, so an acquire of an issue finds it by name. Every other packed
//! lock ref (paths, `repo:` locks, texts no valid resource has, records
//! that could not be read) is kept here with its text, or as unknown.
//!
//! The summary holds for one packed-refs file, named by what the file
//! system says of it ([`Identity`]): its device, inode, size and times. git
//! and grite replace packed-refs by renaming a new file over it, and any
//! write gives a file a new change time, which no program can set back;
//! but two writes within one tick of the file system's clock can leave a
//! file with the change time, size and (reused) inode of one before. So a
//! summary is written only of a file whose change time is older than a
//! file created before packed-refs was read: every later write changes
//! the time. Like the other caches it guards against damage (a checksum),
//! not against someone who can write into the git directory; and, like
//! git's index, it trusts the clock not to be set back to the very
//! nanosecond of the file's last change.
//!
//! The file, `grite/lock-packed.cache` in the common git directory, is a
//! header line, the identity (seven little-endian `u64`s) with a CRC-32,
//! and one chunk as the name cache writes them, in which an empty text
//! stands for a ref whose text is not known.

use std::fs::Metadata;
use std::ops::Range;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use super::cache_file::{Mapped, Replacement, map_bounded};
use super::name_index::chunks::{Chunk, chunk};
use crate::lease::Scope;

const HEADER: &[u8] = b"grite lock-packed 1\n";

/// The identity's fields, and its checksum.
const IDENTITY_LEN: usize = 7 * 8;
const IDENTITY_CRC: usize = 4;

/// As the name cache's bound: a summary this large would hold the texts of
/// hundreds of thousands of path locks.
const MAX_FILE_LEN: u64 = 64 << 20;

/// A file as the file system tells it apart from the files that were at
/// its path before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Identity {
    dev: u64,
    ino: u64,
    size: u64,
    /// Modification and change times: seconds, nanoseconds.
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Identity {
    /// The identity of the file at `path`; `None` if there is none.
    pub fn of(path: &Path) -> Option<Identity> {
        std::fs::metadata(path)
            .ok()
            .map(|meta| Identity::from(&meta))
    }

    fn words(&self) -> [u64; 7] {
        // Times before 1970 are kept as the bits of their `i64`.
        [
            self.dev,
            self.ino,
            self.size,
            self.mtime.0 as u64,
            self.mtime.1 as u64,
            self.ctime.0 as u64,
            self.ctime.1 as u64,
        ]
    }

    fn encode(&self) -> Vec<u8> {
        let mut out: Vec<u8> = self.words().iter().flat_map(|w| w.to_le_bytes()).collect();
        out.extend(crc32fast::hash(&out).to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<Identity> {
        let fields = bytes.get(..IDENTITY_LEN)?;
        let crc = bytes.get(IDENTITY_LEN..IDENTITY_LEN + IDENTITY_CRC)?;
        if crc32fast::hash(fields).to_le_bytes() != crc {
            return None;
        }
        let word = |i: usize| {
            let mut w = [0; 8];
            w.copy_from_slice(&fields[8 * i..8 * i + 8]);
            u64::from_le_bytes(w)
        };
        Some(Identity {
            dev: word(0),
            ino: word(1),
            size: word(2),
            mtime: (word(3) as i64, word(4) as i64),
            ctime: (word(5) as i64, word(6) as i64),
        })
    }
}

impl From<&Metadata> for Identity {
    fn from(meta: &Metadata) -> Identity {
        Identity {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

fn path_in(common_dir: &Path) -> PathBuf {
    common_dir.join("grite").join("lock-packed.cache")
}

/// The summary of one packed-refs file, mapped.
pub(super) struct PackedSummary {
    pub identity: Identity,
    file: Mapped,
    /// Each ref's key and where its text is in `file` (empty: unknown).
    entries: Vec<(u64, Range<usize>)>,
}

impl PackedSummary {
    /// The summary kept in the common git directory `common_dir`, if there
    /// is one whole and undamaged.
    pub fn open(common_dir: &Path) -> Option<PackedSummary> {
        let file = map_bounded(&path_in(common_dir), MAX_FILE_LEN);
        let identity = Identity::decode(file.strip_prefix(HEADER)?)?;
        let at = HEADER.len() + IDENTITY_LEN + IDENTITY_CRC;
        let chunk = Chunk::at(&file, at)?;
        if chunk.end != file.len() {
            return None;
        }
        let entries = chunk.entries(&file)?;
        Some(PackedSummary {
            identity,
            file,
            entries,
        })
    }

    /// The keys of the refs a decision on `scope` must read, of those this
    /// summary holds: the ones whose text touches it, or is not known.
    pub fn touching<'s>(&'s self, scope: &'s Scope) -> impl Iterator<Item = u64> + 's {
        self.entries.iter().filter_map(move |(key, range)| {
            let text = &self.file[range.clone()];
            (text.is_empty() || scope.touches(text)).then_some(*key)
        })
    }
}

/// A summary begun before packed-refs is read: its file, created first,
/// was given the file system's time then.
pub(super) struct Rebuild {
    file: Replacement,
    began: Identity,
}

impl Rebuild {
    /// Begins the summary kept in `common_dir`; `None` if its file cannot
    /// be created.
    pub fn begin(common_dir: &Path) -> Option<Rebuild> {
        let file = Replacement::begin(&path_in(common_dir)).ok()?;
        let began = Identity::from(&file.metadata().ok()?);
        Some(Rebuild { file, began })
    }

    /// Keeps the summary of the packed-refs that was `identity` while its
    /// lock refs `entries` (each key with its text, `None` when unknown)
    /// were listed, unless that file changed last within the tick in
    /// which this began, or on another file system, whose clock may be
    /// another. Failures are ignored: the next read lists every name.
    pub fn finish<'t>(
        self,
        identity: Identity,
        entries: impl Iterator<Item = (u64, Option<&'t [u8]>)>,
    ) {
        if identity.dev != self.began.dev || identity.ctime >= self.began.ctime {
            return;
        }
        let entries: Vec<(u64, &[u8])> = entries
            .map(|(key, text)| (key, text.unwrap_or_default()))
            .collect();
        let mut out = HEADER.to_vec();
        out.extend(identity.encode());
        out.extend(chunk(&entries));
        let _ = self.file.finish(&out);
    }
}

#[cfg(test)]
mod tests;
