//! The resource text behind each lock ref name seen so far
//! (`docs/PROTOCOL.md` §3). A lock's ref name is the hash of its resource
//! text, so the text a ref holds never changes; knowing it, a read can tell
//! which locks a decision depends on from their names alone and leave the
//! records of the others unread. Only a text read from a record that
//! passed every check of §4, and so hashes to the name it was found
//! under, is added.
//!
//! The file, `grite/lock-names.cache` in the common git directory, is a
//! header line and then chunks, each its entries' ref keys, the lengths
//! of their texts, the texts, and a CRC-32 of all that. A read of 100,000
//! names loads it without parsing or hashing any text (hashing each text
//! to prove the name it is filed under was a fifth of an acquire among
//! that many locks): like the record cache, it guards against damage, not
//! against someone who can write into the git directory. Processes add
//! what they learnt with one appending write of a chunk; a reader that
//! finds a damaged or cut-off chunk keeps the chunks before it, and
//! writes a fresh file beside it and renames it over, as it does when
//! most texts are of refs that are gone. A write that fails is ignored:
//! the names are then read the slow way, from the records.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::cache_file::{Mapped, map_bounded, replace};
use crate::lease::ref_key_of;

pub(super) mod chunks;

#[cfg(test)]
use chunks::{CHUNK_HEAD, CHUNK_TAIL, ENTRY};
use chunks::{Chunk, Sorted, chunk};

/// The first line; a file of another version (such as the JSON lines of
/// version 1) is replaced.
const HEADER: &[u8] = b"grite lock-names 2\n";

/// A larger file is not read but replaced: it would hold the names of
/// hundreds of thousands of locks with the longest texts a record allows.
const MAX_FILE_LEN: u64 = 64 << 20;

/// Texts of refs that no longer exist that are tolerated before the file
/// is rewritten without them.
const SLACK: usize = 1024;

type KeyMap = HashMap<u64, Range<usize>, BuildHasherDefault<KeyHasher>>;

pub(crate) struct NameIndex {
    path: PathBuf,
    /// The file, mapped. The first chunk is looked up where it lies: with
    /// 100,000 names, copying its texts and their places out of it cost a
    /// tenth of an acquire, most of it in faulting in the fresh pages.
    file: Mapped,
    /// The first chunk, when its keys are in order (a file written whole
    /// is), else empty.
    main: Sorted,
    /// The texts of the other chunks (appended since the file was last
    /// written whole), by ref key, where they are in `file`.
    appended: KeyMap,
    /// The texts learnt since, by ref key, where they are in `learnt_texts`.
    learnt: KeyMap,
    learnt_texts: String,
    /// Entries in the file.
    stored: usize,
    /// Whether the file is missing, of another version, or damaged.
    rebuild: bool,
}

impl NameIndex {
    /// The index of the repository whose common git directory is
    /// `common_dir`; empty if it cannot be read.
    pub fn open(common_dir: &Path) -> NameIndex {
        let path = common_dir.join("grite").join("lock-names.cache");
        let file = map_bounded(&path, MAX_FILE_LEN);
        let mut index = NameIndex {
            path,
            rebuild: !file.starts_with(HEADER),
            file,
            main: Sorted::default(),
            appended: KeyMap::default(),
            learnt: KeyMap::default(),
            learnt_texts: String::new(),
            stored: 0,
        };
        if index.rebuild {
            return index;
        }
        let mut at = HEADER.len();
        while at < index.file.len() {
            // A chunk cut off (a writer was killed) or damaged ends the
            // read: the sizes that would find the next one are not to be
            // trusted either.
            let Some(chunk) = Chunk::at(&index.file, at) else {
                index.rebuild = true;
                break;
            };
            let sorted = (at == HEADER.len())
                .then(|| Sorted::of(&index.file, &chunk))
                .flatten();
            if let Some(sorted) = sorted {
                index.main = sorted;
            } else if let Some(entries) = chunk.entries(&index.file) {
                for (key, range) in entries {
                    index.appended.entry(key).or_insert(range);
                }
            } else {
                index.rebuild = true;
                break;
            }
            index.stored += chunk.count;
            at = chunk.end;
        }
        index
    }

    /// Entries of the file outside the sorted chunk: those appended since
    /// it was last written whole.
    fn unsorted(&self) -> usize {
        self.stored - self.main.count
    }

    /// The resource text of the lock ref whose hash (the name after
    /// `refs/grite/locks/`) spells `key` ([`ref_key`](crate::lease::ref_key)), if known, as
    /// bytes: a text is UTF-8 (the file's are checked to be when it is
    /// loaded), and checking each again cost more than finding it.
    /// Fastest when asked about keys in increasing order. A text learnt
    /// from a record in this process comes first: `learn` keeps one only
    /// when the file's differs.
    pub fn text(&self, key: u64) -> Option<&[u8]> {
        if let Some(range) = self.learnt.get(&key) {
            return Some(self.learnt_texts[range.clone()].as_bytes());
        }
        let range = self
            .main
            .text(&self.file, key)
            .or_else(|| self.appended.get(&key).cloned())?;
        Some(&self.file[range])
    }

    /// Every entry of the file, main chunk first: its key and its text.
    fn entries(&self) -> impl Iterator<Item = (u64, &[u8])> {
        let appended = self
            .appended
            .iter()
            .map(|(key, range)| (*key, &self.file[range.clone()]));
        self.main.entries(&self.file).chain(appended)
    }

    /// Remembers `text`, the resource of a record read and checked (so
    /// that it hashes to the name it was found under). A text too long for
    /// the `u16` of its length (another tool's; a resource is at most 512
    /// bytes) is not kept: its record is read each time.
    pub fn learn(&mut self, text: &str) {
        if u16::try_from(text.len()).is_err() {
            return;
        }
        let key = ref_key_of(text);
        if self.text(key) != Some(text.as_bytes()) {
            let range = self.learnt_texts.len()..self.learnt_texts.len() + text.len();
            self.learnt_texts.push_str(text);
            self.learnt.insert(key, range);
        }
    }

    /// Writes what was learnt: appended, or in a fresh file holding the
    /// texts of the refs `listed` (their [`ref_key`](crate::lease::ref_key)s; about `count` of
    /// them) when the old file is missing, damaged, mostly stale or much
    /// out of order.
    /// Failures are ignored.
    pub fn save(self, count: usize, listed: impl Iterator<Item = u64>) {
        let rewrite = self.rebuild
            || self.stored > 2 * count + SLACK
            || self.unsorted() > SLACK.max(self.stored / 8);
        if !rewrite && self.learnt.is_empty() {
            return;
        }
        let _ = if rewrite {
            let listed: HashSet<u64> = listed.collect();
            self.rewrite(|key| listed.contains(&key))
        } else {
            self.append()
        };
    }

    /// Appends what was learnt, for a read that did not list every name
    /// (and so cannot tell which stored texts are stale). Failures are
    /// ignored.
    pub fn save_learnt(self) {
        if !self.rebuild && !self.learnt.is_empty() {
            let _ = self.append();
        }
    }

    /// The texts learnt, by key.
    fn learnt(&self) -> impl Iterator<Item = (u64, &[u8])> {
        self.learnt
            .iter()
            .map(|(key, range)| (*key, self.learnt_texts[range.clone()].as_bytes()))
    }

    fn append(&self) -> std::io::Result<()> {
        let learnt: Vec<(u64, &[u8])> = self.learnt().collect();
        let mut file = std::fs::OpenOptions::new().append(true).open(&self.path)?;
        // One write, so that a chunk appended at the same time by another
        // process is not interleaved with this one (and if it is, the
        // checksums tell, and the next reader writes the file whole).
        file.write_all(&chunk(&learnt))
    }

    /// A fresh file of the texts whose keys `exist`, in key order (which
    /// makes the next load take it in place); a learnt text replaces a
    /// stored one.
    fn rewrite(&self, exists: impl Fn(u64) -> bool) -> std::io::Result<()> {
        let stored = self
            .entries()
            .filter(|(key, _)| !self.learnt.contains_key(key));
        let mut texts: Vec<(u64, &[u8])> = stored
            .chain(self.learnt())
            .filter(|(key, _)| exists(*key))
            .collect();
        texts.sort_unstable_by_key(|(key, _)| *key);
        texts.dedup_by_key(|(key, _)| *key);
        let mut out = HEADER.to_vec();
        out.extend(chunk(&texts));
        replace(&self.path, &out)
    }
}

/// Hashes a ref key by keeping it: a key is the start of a SHA-256 already,
/// as evenly spread as a hash function would make it.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, key: u64) {
        self.0 = key;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests;
