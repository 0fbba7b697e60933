//! The resource text behind each lock ref name seen so far
//! (`docs/PROTOCOL.md` §3). A lock's ref name is the hash of its resource
//! text, so the text a ref holds never changes; knowing it, a read can tell
//! which locks a decision depends on from their names alone and leave the
//! records of the others unread.
//!
//! Every entry proves itself: a text is filed under the name it hashes to,
//! so a damaged or forged entry can only stand for a ref that does not
//! exist, and then it is never used. Only a text read from a record that
//! passed every check of §4 is added.
//!
//! The file, `grite/lock-names.cache` in the common git directory, is a
//! header line and then one text per line, written as a JSON string.
//! Processes add what they learnt with one appending write; a reader that
//! finds a damaged line, or mostly texts of refs that are gone, writes a
//! fresh file beside it and renames it over. A write that fails is
//! ignored: the names are then read the slow way, from the records.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};

use gix::bstr::ByteSlice as _;

use crate::lease::{MAX_RECORD_LEN, ref_key_of};

const HEADER: &str = "grite lock-names 1\n";

/// A larger file is not read but replaced: it would hold the names of
/// hundreds of thousands of locks with the longest texts a record allows.
const MAX_FILE_LEN: u64 = 64 << 20;

/// Texts of refs that no longer exist that are tolerated before the file
/// is rewritten without them.
const SLACK: usize = 1024;

pub(crate) struct NameIndex {
    path: PathBuf,
    /// The texts: the file as read, then the texts decoded from escaped
    /// lines and those learnt since. One buffer rather than a string per
    /// lock, as 100,000 small allocations cost more than the rest.
    buffer: String,
    /// The texts of the file by ref key ([`ref_key`](crate::lease::ref_key)),
    /// sorted: the keys a read asks about come in order (listed names are
    /// sorted), so each is found a step or two after the last one, where a
    /// hash table of 100,000 entries misses the CPU caches on every lookup.
    texts: Vec<Text>,
    /// Where in `texts` the last lookup ended.
    hint: Cell<usize>,
    /// Lines in the file.
    stored: usize,
    /// Texts of the file after the first one out of key order: those
    /// appended since it was last written whole.
    unsorted: usize,
    /// Whether the file is missing or holds a line that is not a text.
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
        let buffer = read_bounded(&path).unwrap_or_default();
        let mut index = NameIndex {
            path,
            texts: Vec::new(),
            hint: Cell::new(0),
            stored: 0,
            unsorted: 0,
            rebuild: !buffer.starts_with(HEADER),
            buffer,
            learnt: HashMap::default(),
        };
        if index.rebuild {
            return index;
        }
        // A cut-off last line (a writer was killed) is damage too.
        index.rebuild = !index.buffer.ends_with('\n');
        let mut escaped = Vec::new();
        let mut at = HEADER.len();
        while at < index.buffer.len() {
            let end = index.buffer.as_bytes()[at..]
                .find_byte(b'\n')
                .map_or(index.buffer.len(), |n| at + n);
            index.stored += 1;
            let line = &index.buffer[at..end];
            match plain(line) {
                Some(text) => index.texts.push(Text {
                    key: ref_key_of(text),
                    start: offset(at + 1),
                    len: offset(text.len()),
                }),
                None => match serde_json::from_str::<String>(line) {
                    Ok(text) => escaped.push(text),
                    Err(_) => index.rebuild = true,
                },
            }
            at = end + 1;
        }
        for text in escaped {
            let start = index.buffer.len();
            index.buffer.push_str(&text);
            index.texts.push(Text {
                key: ref_key_of(&text),
                start: offset(start),
                len: offset(text.len()),
            });
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

    /// Remembers `text`, the resource of a record read and checked.
    pub fn learn(&mut self, text: &str) {
        if text.len() > MAX_RECORD_LEN {
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
        let mut out = String::new();
        for range in self.learnt.values() {
            line(&mut out, &self.buffer[range.clone()]);
        }
        let mut file = std::fs::OpenOptions::new().append(true).open(&self.path)?;
        file.write_all(out.as_bytes())
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
        let mut out = HEADER.to_owned();
        for (_, range) in texts {
            line(&mut out, &self.buffer[range]);
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let mut file = tempfile::NamedTempFile::new_in(dir)?;
        file.write_all(out.as_bytes())?;
        file.persist(&self.path).map_err(|e| e.error)?;
        Ok(())
    }
}

/// A position in the buffer, which [`MAX_FILE_LEN`] keeps within `u32`.
fn offset(at: usize) -> u32 {
    u32::try_from(at).unwrap_or(u32::MAX)
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

/// The text of a line that is a JSON string without escapes (as nearly
/// every resource is), without decoding it.
fn plain(line: &str) -> Option<&str> {
    let text = line.strip_prefix('"')?.strip_suffix('"')?;
    let special = |c: char| c == '"' || c == '\\' || c.is_control();
    (!text.contains(special)).then_some(text)
}

fn line(out: &mut String, text: &str) {
    out.push_str(&serde_json::to_string(text).expect("a string serialises"));
    out.push('\n');
}

fn read_bounded(path: &Path) -> Option<String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).ok()?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_LEN + 1).read_to_end(&mut bytes).ok()?;
    if bytes.len() as u64 > MAX_FILE_LEN {
        return None;
    }
    // Texts are JSON strings, so the file is UTF-8 unless damaged.
    Some(
        String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &Path) -> PathBuf {
        dir.join("grite/lock-names.cache")
    }

    fn saved(index: NameIndex, listed: &[&str]) {
        index.save(listed.len(), listed.iter().map(|t| ref_key_of(t)));
    }

    #[test]
    fn keeps_what_was_learnt_and_appends_the_rest() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut index = NameIndex::open(dir.path());
        assert_eq!(index.text(ref_key_of("issue:1")), None);
        index.learn("issue:1");
        saved(index, &["issue:1"]);
        let mut index = NameIndex::open(dir.path());
        assert_eq!(index.text(ref_key_of("issue:1")), Some("issue:1"));
        index.learn("path:a\nb");
        saved(index, &["issue:1", "path:a\nb"]);
        let text = std::fs::read_to_string(file(dir.path())).expect("file");
        assert_eq!(text, format!("{HEADER}\"issue:1\"\n\"path:a\\nb\"\n"));
        let index = NameIndex::open(dir.path());
        assert_eq!(index.text(ref_key_of("path:a\nb")), Some("path:a\nb"));
    }

    #[test]
    fn an_entry_under_the_wrong_name_is_never_believed() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("grite")).expect("mkdir");
        // Whatever a line says, it is filed under the hash of its text.
        std::fs::write(file(dir.path()), format!("{HEADER}\"repo:x\"\n")).expect("write");
        let index = NameIndex::open(dir.path());
        assert_eq!(index.text(ref_key_of("issue:1")), None);
        assert_eq!(index.text(ref_key_of("repo:x")), Some("repo:x"));
    }

    #[test]
    fn damage_is_skipped_and_the_file_rewritten() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("grite")).expect("mkdir");
        std::fs::write(
            file(dir.path()),
            format!("{HEADER}\"issue:1\"\n\u{0}garbage\n\"issue:2\"\n\"issue:3"),
        )
        .expect("write");
        let index = NameIndex::open(dir.path());
        assert_eq!(index.text(ref_key_of("issue:1")), Some("issue:1"));
        assert_eq!(index.text(ref_key_of("issue:2")), Some("issue:2"));
        assert_eq!(index.text(ref_key_of("issue:3")), None);
        saved(index, &["issue:2"]);
        let text = std::fs::read_to_string(file(dir.path())).expect("file");
        assert_eq!(text, format!("{HEADER}\"issue:2\"\n"));
    }

    #[test]
    fn texts_of_refs_that_are_gone_are_dropped_once_they_are_most() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut index = NameIndex::open(dir.path());
        let texts: Vec<String> = (0..SLACK + 10).map(|i| format!("issue:{i}")).collect();
        texts.iter().for_each(|t| index.learn(t));
        saved(index, &texts.iter().map(String::as_str).collect::<Vec<_>>());
        let index = NameIndex::open(dir.path());
        assert_eq!(index.stored, SLACK + 10);
        saved(index, &["issue:0"]);
        let index = NameIndex::open(dir.path());
        assert_eq!(index.stored, 1);
        assert_eq!(index.text(ref_key_of("issue:0")), Some("issue:0"));
    }

    #[test]
    fn every_key_is_found_in_any_order_of_asking() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut index = NameIndex::open(dir.path());
        let texts: Vec<String> = (0..1000).map(|i| format!("issue:{i}")).collect();
        texts.iter().for_each(|t| index.learn(t));
        saved(index, &texts.iter().map(String::as_str).collect::<Vec<_>>());
        let index = NameIndex::open(dir.path());
        let mut keys: Vec<(u64, Option<&str>)> = texts
            .iter()
            .map(|t| (ref_key_of(t), Some(t.as_str())))
            .collect();
        // Keys between the known ones, and beyond both ends, are unknown.
        let unknown: Vec<u64> = keys.iter().map(|(k, _)| k.wrapping_add(1)).collect();
        keys.extend(unknown.iter().map(|k| (*k, None)));
        keys.extend([(0, None), (u64::MAX, None)]);
        keys.sort_by_key(|(k, _)| *k);
        let ask = |order: &[(u64, Option<&str>)]| {
            for (key, text) in order {
                assert_eq!(index.text(*key), *text, "key {key:016x}");
            }
        };
        ask(&keys);
        keys.reverse();
        ask(&keys);
        let scattered: Vec<_> = (0..keys.len())
            .map(|i| keys[i * 7919 % keys.len()])
            .collect();
        ask(&scattered);
        ask(&keys[..10]);
    }

    #[test]
    fn a_file_much_appended_to_is_written_in_order_again() {
        let dir = tempfile::tempdir().expect("temp dir");
        let texts: Vec<String> = (0..2 * SLACK + 10).map(|i| format!("issue:{i}")).collect();
        let all: Vec<&str> = texts.iter().map(String::as_str).collect();
        let keys_in_file = || -> Vec<u64> {
            let text = std::fs::read_to_string(file(dir.path())).expect("file");
            text.lines()
                .skip(1)
                .map(|l| ref_key_of(&serde_json::from_str::<String>(l).expect("a text")))
                .collect()
        };
        let mut index = NameIndex::open(dir.path());
        all[..SLACK].iter().for_each(|t| index.learn(t));
        saved(index, &all);
        assert!(keys_in_file().is_sorted(), "a new file is written in order");
        let mut index = NameIndex::open(dir.path());
        all[SLACK..].iter().for_each(|t| index.learn(t));
        saved(index, &all);
        assert!(!keys_in_file().is_sorted(), "appended");
        let index = NameIndex::open(dir.path());
        assert!(index.unsorted > SLACK);
        saved(index, &all);
        assert!(keys_in_file().is_sorted(), "written whole again");
        assert_eq!(keys_in_file().len(), all.len());
    }

    #[test]
    fn a_garbage_file_is_replaced() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("grite")).expect("mkdir");
        std::fs::write(file(dir.path()), [0xff, 0xfe, 0x00, 0x12]).expect("write");
        let mut index = NameIndex::open(dir.path());
        index.learn("issue:1");
        saved(index, &["issue:1"]);
        let index = NameIndex::open(dir.path());
        assert_eq!(index.text(ref_key_of("issue:1")), Some("issue:1"));
    }
}
