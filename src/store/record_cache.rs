//! A derived cache of lock records, keyed by the id of the lock commit
//! that holds them (`docs/PROTOCOL.md` §3): a commit id names its content
//! for ever, so an entry never goes stale, it only stops being used. Every
//! read of the lock state would otherwise inflate a commit, a tree and a
//! blob for each of the repository's locks, unrelated or not; with the
//! cache it reads each new commit once.
//!
//! The cache is only ever an optimisation, as git's commit-graph is: it
//! holds the bytes of `lock.json` as stored, which go through the same
//! checks as bytes read from the objects; each entry carries a checksum,
//! and a damaged, truncated or unreadable cache is ignored (from the first
//! bad entry on) and rewritten from the objects. A missing one is built.
//!
//! The file, `grite/lock-records.cache` in the common git directory, is a
//! header line and entries, each `[id length: u8][id][json length: u32
//! LE][json][crc32 of what precedes it in the entry: u32 LE]`. Processes
//! add what they had to read from the objects with one appending write (so
//! concurrent writers do not interleave); when most entries are no longer
//! used, or one is damaged, the next reader writes a fresh file beside it
//! and renames it over. A write that fails is ignored: a read-only
//! repository is read without a cache.

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};

use gix::ObjectId;

use super::cache_file::{Mapped, map_bounded, replace};

const HEADER: &[u8] = b"grite lock-records cache 1\n";

/// A larger file is not read (it would be a hundred times the records of
/// a million locks), but replaced.
const MAX_FILE_LEN: u64 = 256 << 20;

/// Records are at most 64 KiB (`docs/PROTOCOL.md` §4).
const MAX_JSON_LEN: usize = 64 << 10;

/// Entries beyond the ones in use that are tolerated before the file is
/// rewritten with only those.
const SLACK: usize = 1024;

pub(crate) struct RecordCache {
    path: PathBuf,
    /// The file, mapped.
    bytes: Mapped,
    /// Where each cached record is in `bytes`.
    index: HashMap<ObjectId, Range<usize>>,
    /// Entries in the file, counting repeats (two processes can add the
    /// same commit).
    stored: usize,
    /// Whether the file is missing or was not read to its end.
    rebuild: bool,
    /// The ids asked for, so a rewrite keeps exactly those.
    used: HashSet<ObjectId>,
    /// Records read from the objects since, to be added.
    added: Vec<(ObjectId, Vec<u8>)>,
}

impl RecordCache {
    /// The cache of the repository whose common git directory is
    /// `common_dir`; empty if it cannot be read.
    pub fn open(common_dir: &Path) -> RecordCache {
        let path = common_dir.join("grite").join("lock-records.cache");
        let bytes = map_bounded(&path, MAX_FILE_LEN);
        let (index, stored, whole) = parse(&bytes);
        RecordCache {
            path,
            bytes,
            index,
            stored,
            rebuild: !whole,
            used: HashSet::new(),
            added: Vec::new(),
        }
    }

    /// The `lock.json` of lock commit `id`, if cached.
    pub fn get(&mut self, id: ObjectId) -> Option<&[u8]> {
        self.used.insert(id);
        let range = self.index.get(&id)?.clone();
        Some(&self.bytes[range])
    }

    /// Remembers `json`, read from the objects, as the record of `id`.
    pub fn add(&mut self, id: ObjectId, json: &[u8]) {
        if json.len() <= MAX_JSON_LEN {
            self.used.insert(id);
            self.added.push((id, json.to_vec()));
        }
    }

    /// Writes what was added: appended, or in a fresh file when the old
    /// one is missing, damaged or mostly unused. Failures are ignored.
    pub fn save(self) {
        let rewrite = self.rebuild || self.stored > 2 * self.used.len() + SLACK;
        if !rewrite && self.added.is_empty() {
            return;
        }
        let _ = if rewrite {
            self.rewrite()
        } else {
            self.append()
        };
    }

    fn append(&self) -> std::io::Result<()> {
        let mut out = Vec::new();
        for (id, json) in &self.added {
            encode(&mut out, *id, json);
        }
        let mut file = std::fs::OpenOptions::new().append(true).open(&self.path)?;
        file.write_all(&out)
    }

    /// A new file with the records in use, renamed over the old one.
    fn rewrite(&self) -> std::io::Result<()> {
        let mut out = HEADER.to_vec();
        // What was just read from the objects wins over what the file said.
        let added: HashSet<ObjectId> = self.added.iter().map(|(id, _)| *id).collect();
        for (id, range) in &self.index {
            if self.used.contains(id) && !added.contains(id) {
                encode(&mut out, *id, &self.bytes[range.clone()]);
            }
        }
        for (id, json) in &self.added {
            encode(&mut out, *id, json);
        }
        replace(&self.path, &out)
    }
}

fn encode(out: &mut Vec<u8>, id: ObjectId, json: &[u8]) {
    let start = out.len();
    let id = id.as_bytes();
    // Ids are 20 or 32 bytes, records at most 64 KiB (checked on adding).
    out.push(id.len() as u8);
    out.extend_from_slice(id);
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(json);
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// The entries of `bytes` up to the first one that is not whole and
/// intact, how many there were, and whether that was all of it.
fn parse(bytes: &[u8]) -> (HashMap<ObjectId, Range<usize>>, usize, bool) {
    let mut index = HashMap::new();
    let Some(mut rest) = bytes.strip_prefix(HEADER) else {
        return (index, 0, false);
    };
    let mut stored = 0;
    while !rest.is_empty() {
        let offset = bytes.len() - rest.len();
        let Some((id, json, len)) = entry(rest) else {
            return (index, stored, false);
        };
        index.insert(id, offset + json.start..offset + json.end);
        stored += 1;
        rest = &rest[len..];
    }
    (index, stored, true)
}

/// The entry at the start of `bytes`: its id, where its record is (from
/// the entry's start) and its length; `None` if it is cut off or damaged.
fn entry(bytes: &[u8]) -> Option<(ObjectId, Range<usize>, usize)> {
    let id_len = usize::from(*bytes.first()?);
    let id = ObjectId::try_from(bytes.get(1..1 + id_len)?).ok()?;
    let at = 1 + id_len;
    let json_len = u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?) as usize;
    if json_len > MAX_JSON_LEN {
        return None;
    }
    let json = at + 4..at + 4 + json_len;
    let end = json.end;
    let crc = u32::from_le_bytes(bytes.get(end..end + 4)?.try_into().ok()?);
    (crc32fast::hash(&bytes[..end]) == crc).then_some((id, json, end + 4))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> ObjectId {
        ObjectId::from_bytes_or_panic(&[n; 20])
    }

    fn cache_in(dir: &Path) -> RecordCache {
        RecordCache::open(dir)
    }

    #[test]
    fn keeps_what_was_added_and_appends_the_rest() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cache = cache_in(dir.path());
        assert_eq!(cache.get(id(1)), None);
        cache.add(id(1), b"{\"a\":1}");
        cache.save();
        let mut cache = cache_in(dir.path());
        assert_eq!(cache.get(id(1)), Some(&b"{\"a\":1}"[..]));
        cache.add(id(2), b"{\"b\":2}");
        cache.save();
        let file = std::fs::read(dir.path().join("grite/lock-records.cache")).expect("file");
        let mut cache = cache_in(dir.path());
        assert_eq!(cache.get(id(2)), Some(&b"{\"b\":2}"[..]));
        assert_eq!(cache.get(id(1)), Some(&b"{\"a\":1}"[..]));
        cache.save();
        let again = std::fs::read(dir.path().join("grite/lock-records.cache")).expect("file");
        assert_eq!(file, again, "nothing new, nothing written");
    }

    #[test]
    fn a_damaged_entry_is_not_served_and_the_file_is_rebuilt() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cache = cache_in(dir.path());
        cache.add(id(1), b"{\"a\":1}");
        cache.add(id(2), b"{\"b\":2}");
        cache.save();
        let path = dir.path().join("grite/lock-records.cache");
        let mut bytes = std::fs::read(&path).expect("file");
        let at = bytes.len() - 8;
        bytes[at] ^= 0x01; // the second record's last byte
        std::fs::write(&path, &bytes).expect("write");
        let mut cache = cache_in(dir.path());
        assert_eq!(cache.get(id(1)), Some(&b"{\"a\":1}"[..]));
        assert_eq!(cache.get(id(2)), None, "the damaged entry is not used");
        cache.add(id(2), b"{\"b\":2}");
        cache.save();
        let mut cache = cache_in(dir.path());
        assert!(!cache.rebuild);
        assert_eq!(cache.get(id(2)), Some(&b"{\"b\":2}"[..]));
    }

    #[test]
    fn what_was_read_again_replaces_the_entry_on_a_rewrite() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cache = cache_in(dir.path());
        cache.add(id(1), b"{\"old\":1}");
        cache.save();
        let mut cache = cache_in(dir.path());
        assert_eq!(cache.get(id(1)), Some(&b"{\"old\":1}"[..]));
        cache.add(id(1), b"{\"new\":1}");
        cache.rebuild = true;
        cache.save();
        let mut cache = cache_in(dir.path());
        assert_eq!(cache.stored, 1);
        assert_eq!(cache.get(id(1)), Some(&b"{\"new\":1}"[..]));
    }

    #[test]
    fn garbage_and_a_cut_off_tail_are_ignored() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("grite/lock-records.cache");
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(&path, b"not a cache at all").expect("write");
        let mut cache = cache_in(dir.path());
        assert_eq!(cache.get(id(1)), None);
        cache.add(id(1), b"{}");
        cache.save();
        let mut bytes = std::fs::read(&path).expect("file");
        bytes.extend_from_slice(&[20, 1, 2, 3]); // an append cut short
        std::fs::write(&path, &bytes).expect("write");
        let mut cache = cache_in(dir.path());
        assert_eq!(cache.get(id(1)), Some(&b"{}"[..]));
        assert!(cache.rebuild);
    }

    #[test]
    fn unused_entries_are_dropped_once_they_outnumber_the_used() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cache = cache_in(dir.path());
        for n in 0..=255 {
            for m in 0..10u8 {
                let mut bytes = [n; 20];
                bytes[0] = m;
                cache.add(ObjectId::from_bytes_or_panic(&bytes), b"{}");
            }
        }
        cache.save();
        let mut cache = cache_in(dir.path());
        assert_eq!(cache.stored, 2560);
        assert_eq!(cache.get(id(7)), Some(&b"{}"[..]));
        cache.save();
        let cache = cache_in(dir.path());
        assert_eq!(cache.stored, 1, "only the entry in use is kept");
    }
}
