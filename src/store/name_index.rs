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

use super::cache_file::{Mapped, map_bounded, replace};
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

/// Entries between two of the text offsets a [`Sorted`] chunk keeps.
const STRIDE: usize = 32;

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
    /// Entries of the file outside `main`: those appended since it was
    /// last written whole.
    unsorted: usize,
    /// Whether the file is missing, of another version, or damaged.
    rebuild: bool,
}

/// A chunk whose keys are in increasing order, read in place: the keys a
/// read asks about come in order (listed names are sorted), so each is
/// found a step or two after the last one, where a hash table of 100,000
/// entries misses the CPU caches on every lookup.
#[derive(Default)]
struct Sorted {
    /// Where its keys, their texts' lengths and the texts are in the file.
    keys: usize,
    lens: usize,
    texts: usize,
    count: usize,
    /// The offset in the texts of every [`STRIDE`]th entry's text: the
    /// others are found by adding at most `STRIDE - 1` lengths to one.
    marks: Vec<u32>,
    /// Where the last lookup ended: an entry, and the offset of its text.
    hint: Cell<(usize, usize)>,
}

/// The entries of a whole chunk whose checksum holds.
struct Chunk {
    /// Where its keys, their texts' lengths and the texts are in the file.
    keys: usize,
    lens: usize,
    texts: usize,
    count: usize,
    /// Where the next chunk starts.
    end: usize,
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
            unsorted: 0,
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
            let first = at == HEADER.len();
            let loaded = (first && index.load_sorted(&chunk)) || index.load_appended(&chunk);
            if !loaded {
                index.rebuild = true;
                break;
            }
            index.stored += chunk.count;
            at = chunk.end;
        }
        index.unsorted = index.stored - index.main.count;
        index
    }

    /// Takes `chunk` as the main one if its keys are in order and its
    /// lengths add up to its texts; says whether it did.
    fn load_sorted(&mut self, chunk: &Chunk) -> bool {
        let file = &self.file;
        let in_order = (1..chunk.count)
            .all(|i| u64_at(file, chunk.keys + 8 * (i - 1)) <= u64_at(file, chunk.keys + 8 * i));
        if !in_order {
            return false;
        }
        let mut marks = Vec::with_capacity(chunk.count / STRIDE + 1);
        let mut end = 0;
        let texts = &file[chunk.texts..chunk.end - CHUNK_TAIL];
        for i in 0..chunk.count {
            if !starts_char(texts, end) {
                return false;
            }
            if i % STRIDE == 0 {
                marks.push(offset(end));
            }
            end += usize::from(u16_at(file, chunk.lens + 2 * i));
        }
        // Once they add up, every offset is within the texts, and so
        // within a `u32`.
        if end != texts.len() {
            return false;
        }
        self.main = Sorted {
            keys: chunk.keys,
            lens: chunk.lens,
            texts: chunk.texts,
            count: chunk.count,
            marks,
            hint: Cell::new((0, 0)),
        };
        true
    }

    /// Adds the entries of `chunk` to the appended ones if its lengths add
    /// up to its texts; says whether it did. Entries are kept only once
    /// all of them are found to fit: a chunk whose checksum holds but
    /// whose lengths do not add up (written by something else) must leave
    /// none behind pointing past its texts.
    fn load_appended(&mut self, chunk: &Chunk) -> bool {
        let texts_end = chunk.end - CHUNK_TAIL;
        let mut at = chunk.texts;
        let mut entries = Vec::with_capacity(chunk.count);
        for i in 0..chunk.count {
            let len = usize::from(u16_at(&self.file, chunk.lens + 2 * i));
            if at + len > texts_end || !starts_char(&self.file[..texts_end], at) {
                return false;
            }
            entries.push((u64_at(&self.file, chunk.keys + 8 * i), at..at + len));
            at += len;
        }
        if at != texts_end {
            return false;
        }
        for (key, range) in entries {
            self.appended.entry(key).or_insert(range);
        }
        true
    }

    /// The resource text of the lock ref whose hash (the name after
    /// `refs/grite/locks/`) spells `key` ([`ref_key`](crate::lease::ref_key)), if known, as
    /// bytes: a text is UTF-8 (the file's are checked to be when it is
    /// loaded), and checking each again cost more than finding it.
    /// Fastest when asked about keys in increasing order.
    /// A text learnt from a record in this process comes first: `learn`
    /// keeps one only when the file's differs.
    pub fn text(&self, key: u64) -> Option<&[u8]> {
        if let Some(range) = self.learnt.get(&key) {
            return Some(self.learnt_texts[range.clone()].as_bytes());
        }
        let range = self
            .main_text(key)
            .or_else(|| self.appended.get(&key).cloned())?;
        Some(&self.file[range])
    }

    /// Where the text of `key` is in the file, if the main chunk has it.
    fn main_text(&self, key: u64) -> Option<Range<usize>> {
        let main = &self.main;
        let at = self.position(key);
        if at == main.count || u64_at(&self.file, main.keys + 8 * at) != key {
            return None;
        }
        // From the last lookup's text when it is a few entries before (as
        // it is when keys are asked about in order), else from a mark.
        let (hint, hint_start) = main.hint.get();
        let (from, start) = if (hint..hint + STRIDE).contains(&at) {
            (hint, hint_start)
        } else {
            let mark = at / STRIDE;
            (mark * STRIDE, main.marks[mark] as usize)
        };
        let start = (from..at).fold(start, |offset, i| {
            offset + usize::from(u16_at(&self.file, main.lens + 2 * i))
        });
        main.hint.set((at, start));
        let start = main.texts + start;
        Some(start..start + usize::from(u16_at(&self.file, main.lens + 2 * at)))
    }

    /// Where `key` is, or would be, in the main chunk: searched from the
    /// last lookup forwards, in steps that double, then by halves.
    fn position(&self, key: u64) -> usize {
        let main = &self.main;
        let key_at = |i: usize| u64_at(&self.file, main.keys + 8 * i);
        let before = |mut low: usize, mut high: usize| {
            while low < high {
                let mid = low + (high - low) / 2;
                if key_at(mid) < key {
                    low = mid + 1;
                } else {
                    high = mid;
                }
            }
            low
        };
        let (hint, _) = main.hint.get();
        if hint >= main.count || key_at(hint) > key {
            return before(0, main.count);
        }
        let (mut low, mut step) = (hint, 1);
        while low + step < main.count && key_at(low + step) < key {
            low += step;
            step *= 2;
        }
        before(low, (low + step).min(main.count))
    }

    /// Every entry of the file, main chunk first: its key and its text.
    fn entries(&self) -> impl Iterator<Item = (u64, &[u8])> {
        let main = &self.main;
        let mut offset = main.texts;
        let sorted = (0..main.count).map(move |i| {
            let len = usize::from(u16_at(&self.file, main.lens + 2 * i));
            let text = &self.file[offset..offset + len];
            offset += len;
            (u64_at(&self.file, main.keys + 8 * i), text)
        });
        let appended = self
            .appended
            .iter()
            .map(|(key, range)| (*key, &self.file[range.clone()]));
        sorted.chain(appended)
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

impl Chunk {
    /// The chunk that starts at `at` in `file`, if it is whole and its
    /// checksum holds.
    fn at(file: &[u8], at: usize) -> Option<Chunk> {
        let bytes = &file[at..];
        let count = usize::try_from(u32_at(bytes, 0)?).ok()?;
        let texts_len = usize::try_from(u32_at(bytes, 4)?).ok()?;
        let texts_at = count.checked_mul(ENTRY)?.checked_add(CHUNK_HEAD)?;
        let end = texts_at.checked_add(texts_len)?;
        let crc = u32_at(bytes, end)?;
        if crc32fast::hash(&bytes[..end]) != crc {
            return None;
        }
        std::str::from_utf8(&bytes[texts_at..end]).ok()?;
        Some(Chunk {
            keys: at + CHUNK_HEAD,
            lens: at + CHUNK_HEAD + 8 * count,
            texts: at + texts_at,
            count,
            end: at + end + CHUNK_TAIL,
        })
    }
}

/// The bytes of a chunk of `texts` (each a key and its text, which `learn`
/// keeps within a `u16`).
fn chunk(texts: &[(u64, &[u8])]) -> Vec<u8> {
    let texts_len: usize = texts.iter().map(|(_, text)| text.len()).sum();
    let mut out = Vec::with_capacity(CHUNK_HEAD + texts.len() * ENTRY + texts_len + CHUNK_TAIL);
    out.extend(offset(texts.len()).to_le_bytes());
    out.extend(offset(texts_len).to_le_bytes());
    for (key, _) in texts {
        out.extend(key.to_le_bytes());
    }
    for (_, text) in texts {
        let len = u16::try_from(text.len()).unwrap_or(u16::MAX);
        out.extend(len.to_le_bytes());
    }
    for (_, text) in texts {
        out.extend(*text);
    }
    out.extend(crc32fast::hash(&out).to_le_bytes());
    out
}

/// A count or length within the file, which [`MAX_FILE_LEN`] keeps
/// within `u32`.
fn offset(at: usize) -> u32 {
    u32::try_from(at).unwrap_or(u32::MAX)
}

/// Whether a text of `texts` (UTF-8) may start at `at`: at a character's
/// first byte, or at the end. A chunk whose lengths split a character is
/// not one grite writes.
fn starts_char(texts: &[u8], at: usize) -> bool {
    texts.get(at).is_none_or(|byte| (*byte as i8) >= -0x40)
}

/// The little-endian `u64` at `at` in `bytes`, which holds it: a chunk is
/// found whole in the file before its entries are read.
fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// The little-endian `u16` at `at` in `bytes`, which holds it.
fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
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
