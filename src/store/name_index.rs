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

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::cache_file::{read_bounded, replace};
use crate::lease::ref_key_of;

/// The first line; a file of another version (such as the JSON lines of
/// version 1) is replaced.
const HEADER: &[u8] = b"grite lock-names 2\n";

/// A larger file is not read but replaced: it would hold the names of
/// hundreds of thousands of locks with the longest texts a record allows.
const MAX_FILE_LEN: u64 = 64 << 20;

/// Texts of refs that no longer exist that are tolerated before the file
/// is rewritten without them.
const SLACK: usize = 1024;

/// A chunk's entry count and the length of its texts, before its entries.
const CHUNK_HEAD: usize = 8;
/// Per entry: its ref key (`u64`) and the length of its text (`u16`).
const ENTRY: usize = 10;
/// The CRC-32 after a chunk's texts.
const CHUNK_TAIL: usize = 4;

pub(crate) struct NameIndex {
    path: PathBuf,
    /// The texts: those of the file, then those learnt since. One buffer
    /// rather than a string per lock, as 100,000 small allocations cost
    /// more than the rest.
    buffer: String,
    /// The texts of the file by ref key ([`ref_key`](crate::lease::ref_key)),
    /// sorted: the keys a read asks about come in order (listed names are
    /// sorted), so each is found a step or two after the last one, where a
    /// hash table of 100,000 entries misses the CPU caches on every lookup.
    texts: Vec<Text>,
    /// Where in `texts` the last lookup ended.
    hint: Cell<usize>,
    /// Entries in the file.
    stored: usize,
    /// Texts of the file after the first one out of key order: those
    /// appended since it was last written whole.
    unsorted: usize,
    /// Whether the file is missing, of another version, or damaged.
    rebuild: bool,
    /// The texts learnt since, by ref key.
    learnt: HashMap<u64, Range<usize>, BuildHasherDefault<KeyHasher>>,
}

/// Where the text of a ref key is in the buffer.
#[derive(Clone, Copy)]
struct Text {
    key: u64,
    start: u32,
    len: u32,
}

impl Text {
    fn range(self) -> Range<usize> {
        self.start as usize..self.start as usize + self.len as usize
    }
}

impl NameIndex {
    /// The index of the repository whose common git directory is
    /// `common_dir`; empty if it cannot be read.
    pub fn open(common_dir: &Path) -> NameIndex {
        let path = common_dir.join("grite").join("lock-names.cache");
        let bytes = read_bounded(&path, MAX_FILE_LEN);
        let mut index = NameIndex {
            path,
            buffer: String::new(),
            texts: Vec::new(),
            hint: Cell::new(0),
            stored: 0,
            unsorted: 0,
            rebuild: !bytes.starts_with(HEADER),
            learnt: HashMap::default(),
        };
        if index.rebuild {
            return index;
        }
        let mut rest = &bytes[HEADER.len()..];
        while !rest.is_empty() {
            // A chunk cut off (a writer was killed) or damaged ends the
            // read: the sizes that would find the next one are not to be
            // trusted either.
            let Some(len) = index.load_chunk(rest) else {
                index.rebuild = true;
                break;
            };
            rest = &rest[len..];
        }
        // Rewritten files are in order already, and appended texts few
        // (once they are many, `save` writes the file in order again). A
        // text appended twice (by two processes that learnt it) is one.
        let in_order = index
            .texts
            .windows(2)
            .take_while(|pair| pair[0].key <= pair[1].key)
            .count();
        index.unsorted = index.texts.len().saturating_sub(in_order + 1);
        // A stable sort merges the sorted run and the appended tail.
        index.texts.sort_by_key(|text| text.key);
        index.texts.dedup_by_key(|text| text.key);
        index
    }

    /// Adds the entries of the chunk `bytes` starts with, if it is whole
    /// and its checksum holds; returns its length.
    fn load_chunk(&mut self, bytes: &[u8]) -> Option<usize> {
        let count = usize::try_from(u32_at(bytes, 0)?).ok()?;
        let texts_len = usize::try_from(u32_at(bytes, 4)?).ok()?;
        let texts_at = count.checked_mul(ENTRY)?.checked_add(CHUNK_HEAD)?;
        let end = texts_at.checked_add(texts_len)?;
        let crc = u32_at(bytes, end)?;
        if crc32fast::hash(&bytes[..end]) != crc {
            return None;
        }
        let texts = std::str::from_utf8(&bytes[texts_at..end]).ok()?;
        let (keys, lens) = bytes[CHUNK_HEAD..texts_at].split_at(count * 8);
        let base = self.buffer.len();
        let mut at = 0;
        // Entries are kept only once all of them are found to fit their
        // texts: a chunk whose checksum holds but whose lengths do not add
        // up (written by something else) must leave none behind pointing
        // past the buffer.
        let entries = keys
            .chunks_exact(8)
            .zip(lens.chunks_exact(2))
            .map(|(key, len)| {
                let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
                let start = at;
                at += len;
                texts.get(start..at)?;
                Some(Text {
                    key: u64::from_le_bytes(key.try_into().ok()?),
                    start: offset(base + start),
                    len: offset(len),
                })
            })
            .collect::<Option<Vec<Text>>>()?;
        if at != texts_len {
            return None;
        }
        if self.texts.is_empty() {
            self.texts = entries;
        } else {
            self.texts.extend(entries);
        }
        self.buffer.push_str(texts);
        self.stored += count;
        Some(end + CHUNK_TAIL)
    }

    /// The resource text of the lock ref whose hash (the name after
    /// `refs/grite/locks/`) spells `key` ([`ref_key`](crate::lease::ref_key)), if known.
    /// Fastest when asked about keys in increasing order.
    pub fn text(&self, key: u64) -> Option<&str> {
        if let Some(range) = self.learnt.get(&key) {
            return Some(&self.buffer[range.clone()]);
        }
        let at = self.position(key);
        self.hint.set(at);
        let text = self.texts.get(at).filter(|text| text.key == key)?;
        Some(&self.buffer[text.range()])
    }

    /// Where `key` is, or would be, in `texts`: searched from the last
    /// lookup forwards, in steps that double, then by halves.
    fn position(&self, key: u64) -> usize {
        let texts = &self.texts;
        let hint = self.hint.get();
        if hint >= texts.len() || texts[hint].key > key {
            return texts.partition_point(|text| text.key < key);
        }
        let (mut low, mut step) = (hint, 1);
        while low + step < texts.len() && texts[low + step].key < key {
            low += step;
            step *= 2;
        }
        let high = (low + step).min(texts.len());
        low + texts[low..high].partition_point(|text| text.key < key)
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
        if self.text(key) != Some(text) {
            let range = self.buffer.len()..self.buffer.len() + text.len();
            self.buffer.push_str(text);
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
            || self.unsorted > SLACK.max(self.stored / 8);
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

    fn append(&self) -> std::io::Result<()> {
        let learnt: Vec<(u64, Range<usize>)> = self
            .learnt
            .iter()
            .map(|(key, range)| (*key, range.clone()))
            .collect();
        let mut file = std::fs::OpenOptions::new().append(true).open(&self.path)?;
        // One write, so that a chunk appended at the same time by another
        // process is not interleaved with this one (and if it is, the
        // checksums tell, and the next reader writes the file whole).
        file.write_all(&self.chunk(&learnt))
    }

    /// A fresh file of the texts whose keys `exist`, in key order (which
    /// makes the next load's sort a check); a learnt text replaces a stored
    /// one.
    fn rewrite(&self, exists: impl Fn(u64) -> bool) -> std::io::Result<()> {
        let stored = self
            .texts
            .iter()
            .filter(|text| !self.learnt.contains_key(&text.key))
            .map(|text| (text.key, text.range()));
        let learnt = self.learnt.iter().map(|(key, range)| (*key, range.clone()));
        let mut texts: Vec<(u64, Range<usize>)> = stored
            .chain(learnt)
            .filter(|(key, _)| exists(*key))
            .collect();
        texts.sort_unstable_by_key(|(key, _)| *key);
        let mut out = HEADER.to_vec();
        out.extend(self.chunk(&texts));
        replace(&self.path, &out)
    }

    /// The bytes of a chunk of `texts` (each a key and where its text is
    /// in the buffer, which `learn` keeps within a `u16`).
    fn chunk(&self, texts: &[(u64, Range<usize>)]) -> Vec<u8> {
        let texts_len: usize = texts.iter().map(|(_, range)| range.len()).sum();
        let mut out = Vec::with_capacity(CHUNK_HEAD + texts.len() * ENTRY + texts_len + 4);
        out.extend(offset(texts.len()).to_le_bytes());
        out.extend(offset(texts_len).to_le_bytes());
        for (key, _) in texts {
            out.extend(key.to_le_bytes());
        }
        for (_, range) in texts {
            let len = u16::try_from(range.len()).unwrap_or(u16::MAX);
            out.extend(len.to_le_bytes());
        }
        for (_, range) in texts {
            out.extend(self.buffer[range.clone()].as_bytes());
        }
        out.extend(crc32fast::hash(&out).to_le_bytes());
        out
    }
}

/// A position in the buffer, which [`MAX_FILE_LEN`] keeps within `u32`.
fn offset(at: usize) -> u32 {
    u32::try_from(at).unwrap_or(u32::MAX)
}

/// The little-endian `u32` at `at` in `bytes`, if there is one.
fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let word = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(word.try_into().ok()?))
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
