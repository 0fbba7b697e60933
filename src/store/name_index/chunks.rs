//! The chunks of the name cache file and of the packed-refs summary
//! (`docs/PROTOCOL.md` §3), as bytes:
//! each a count of entries and the length of their texts, the entries'
//! ref keys (`u64`), the lengths of their texts (`u16`), the texts, and a
//! CRC-32 of all that. Read in place from the mapped file: a chunk is
//! found whole and checked before any of its entries is read.

use std::cell::Cell;
use std::ops::Range;

/// A chunk's entry count and the length of its texts, before its entries.
pub(super) const CHUNK_HEAD: usize = 8;
/// Per entry: its ref key (`u64`) and the length of its text (`u16`).
pub(super) const ENTRY: usize = 10;
/// The CRC-32 after a chunk's texts.
pub(super) const CHUNK_TAIL: usize = 4;

/// Entries between two of the text offsets a [`Sorted`] chunk keeps.
const STRIDE: usize = 32;

/// A whole chunk whose checksum holds and whose texts are UTF-8.
pub(in crate::store) struct Chunk {
    /// Where its keys, their texts' lengths and the texts are in the file.
    keys: usize,
    lens: usize,
    texts: usize,
    pub count: usize,
    /// Where the next chunk starts.
    pub end: usize,
}

impl Chunk {
    /// The chunk that starts at `at` in `file`, if it is whole, its
    /// checksum holds and its texts are UTF-8.
    pub fn at(file: &[u8], at: usize) -> Option<Chunk> {
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

    /// Each entry's key and where its text is in `file`, if the lengths
    /// add up to the texts without splitting a character: a chunk whose
    /// checksum holds but whose lengths do not (written by something
    /// else) must leave no entry behind pointing past its texts.
    pub fn entries(&self, file: &[u8]) -> Option<Vec<(u64, Range<usize>)>> {
        let texts_end = self.end - CHUNK_TAIL;
        let mut at = self.texts;
        let mut entries = Vec::with_capacity(self.count);
        for i in 0..self.count {
            let len = usize::from(u16_at(file, self.lens + 2 * i));
            if at + len > texts_end || !starts_char(&file[..texts_end], at) {
                return None;
            }
            entries.push((u64_at(file, self.keys + 8 * i), at..at + len));
            at += len;
        }
        (at == texts_end).then_some(entries)
    }
}

/// A chunk whose keys are in increasing order, read in place: the keys a
/// read asks about come in order (listed names are sorted), so each is
/// found a step or two after the last one, where a hash table of 100,000
/// entries misses the CPU caches on every lookup.
#[derive(Default)]
pub(super) struct Sorted {
    /// Where its keys, their texts' lengths and the texts are in the file.
    keys: usize,
    lens: usize,
    texts: usize,
    pub count: usize,
    /// The offset in the texts of every [`STRIDE`]th entry's text: the
    /// others are found by adding at most `STRIDE - 1` lengths to one.
    marks: Vec<u32>,
    /// Where the last lookup ended: an entry, and the offset of its text.
    hint: Cell<(usize, usize)>,
}

impl Sorted {
    /// `chunk` of `file`, if its keys are in order and its lengths add up
    /// to its texts without splitting a character.
    pub fn of(file: &[u8], chunk: &Chunk) -> Option<Sorted> {
        let in_order = (1..chunk.count)
            .all(|i| u64_at(file, chunk.keys + 8 * (i - 1)) <= u64_at(file, chunk.keys + 8 * i));
        if !in_order {
            return None;
        }
        let mut marks = Vec::with_capacity(chunk.count / STRIDE + 1);
        let mut end = 0;
        let texts = &file[chunk.texts..chunk.end - CHUNK_TAIL];
        for i in 0..chunk.count {
            if !starts_char(texts, end) {
                return None;
            }
            if i % STRIDE == 0 {
                marks.push(offset(end));
            }
            end += usize::from(u16_at(file, chunk.lens + 2 * i));
        }
        // Once they add up, every offset is within the texts, and so
        // within a `u32`.
        (end == texts.len()).then(|| Sorted {
            keys: chunk.keys,
            lens: chunk.lens,
            texts: chunk.texts,
            count: chunk.count,
            marks,
            hint: Cell::new((0, 0)),
        })
    }

    /// Where the text of `key` is in `file`, if this chunk has it.
    pub fn text(&self, file: &[u8], key: u64) -> Option<Range<usize>> {
        let at = self.position(file, key);
        if at == self.count || u64_at(file, self.keys + 8 * at) != key {
            return None;
        }
        // From the last lookup's text when it is a few entries before (as
        // it is when keys are asked about in order), else from a mark.
        let (hint, hint_start) = self.hint.get();
        let (from, start) = if (hint..hint + STRIDE).contains(&at) {
            (hint, hint_start)
        } else {
            let mark = at / STRIDE;
            (mark * STRIDE, self.marks[mark] as usize)
        };
        let start = (from..at).fold(start, |offset, i| {
            offset + usize::from(u16_at(file, self.lens + 2 * i))
        });
        self.hint.set((at, start));
        let start = self.texts + start;
        Some(start..start + usize::from(u16_at(file, self.lens + 2 * at)))
    }

    /// Where `key` is, or would be, in this chunk: searched from the last
    /// lookup forwards, in steps that double, then by halves.
    fn position(&self, file: &[u8], key: u64) -> usize {
        let key_at = |i: usize| u64_at(file, self.keys + 8 * i);
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
        let (hint, _) = self.hint.get();
        if hint >= self.count || key_at(hint) > key {
            return before(0, self.count);
        }
        let (mut low, mut step) = (hint, 1);
        while low + step < self.count && key_at(low + step) < key {
            low += step;
            step *= 2;
        }
        before(low, (low + step).min(self.count))
    }

    /// Every entry: its key and its text.
    pub fn entries<'f>(&self, file: &'f [u8]) -> impl Iterator<Item = (u64, &'f [u8])> {
        let (keys, lens) = (self.keys, self.lens);
        let mut offset = self.texts;
        (0..self.count).map(move |i| {
            let len = usize::from(u16_at(file, lens + 2 * i));
            let text = &file[offset..offset + len];
            offset += len;
            (u64_at(file, keys + 8 * i), text)
        })
    }
}

/// The bytes of a chunk of `texts` (each a key and its text, which the
/// index keeps within a `u16`).
pub(in crate::store) fn chunk(texts: &[(u64, &[u8])]) -> Vec<u8> {
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

/// A count or length within the file, which the size bound of the files
/// that hold chunks (64 MiB) keeps within `u32`.
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
