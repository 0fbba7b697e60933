//! The lock refs, listed as git lists them but without gix's general
//! iteration: their names alone (a directory listing and the names in
//! packed-refs), or their names with what each holds (read by
//! [`RefFiles`]). With 100,000 loose locks, reading each ref file is most
//! of what a full read costs, and gix's iteration sorts every directory by
//! path components and asks each file its size first.
//!
//! The loose files are listed (and read) before packed-refs is read: `git
//! pack-refs` writes packed-refs before it deletes the loose files, so in
//! this order a ref being packed is seen in one place or the other, never
//! in neither. (gix reads packed-refs first, then the loose files, between
//! which a ref can move from one to the other unseen.)

use std::fs::DirEntry;
use std::path::{Path, PathBuf};

use gix::ObjectId;
use gix::bstr::ByteSlice as _;

use super::Error;
use super::packed_summary::{Identity, PackedSummary};
use super::ref_file::{Held, RefFiles};
use crate::lease::{LOCK_REF_PREFIX, REF_HASH_LEN, ref_key};

/// The names of the refs under `refs/grite/locks/`, loose and packed,
/// without that prefix (a lock's hash), and the means to read the ones a
/// decision wants.
pub(super) struct LockRefNames {
    /// The names that are hashes as grite writes them, as the numbers they
    /// spell ([`ref_key`]): sorted, without the string of each of 100,000
    /// names, which would cost more than the listing.
    pub keys: Vec<u64>,
    /// Any other valid ref name (another tool's), sorted.
    pub others: Vec<String>,
    /// Reads listed refs.
    pub refs: ListedRefs,
    /// How many of the names were loose files.
    pub loose: usize,
    /// What became of packed-refs.
    pub packed: Packed,
}

/// What a listing of lock ref names did with packed-refs.
pub(super) enum Packed {
    /// There was none.
    Absent,
    /// Its names are listed with the loose ones; what a summary of it
    /// needs when one was asked for, the file held still while it was
    /// read and all its lock refs have grite's names: its identity and
    /// the keys of its lock refs.
    Listed(Option<(Identity, Vec<u64>)>),
    /// It is the file this summary is of, and its names are not listed.
    Known(PackedSummary),
}

impl LockRefNames {
    /// Adds `name` (and the [`ref_key`] it spells, if known already) if it
    /// is listable; says whether it was.
    fn add(&mut self, name: &[u8], key: Option<u64>) -> bool {
        if let Some(key) = key.or_else(|| ref_key(name)) {
            self.keys.push(key);
            return true;
        }
        match std::str::from_utf8(name) {
            Ok(name) if valid_ref_name(name) => self.others.push(name.to_owned()),
            _ => return false,
        }
        true
    }

    /// How many names there are.
    pub fn len(&self) -> usize {
        self.keys.len() + self.others.len()
    }
}

/// Reads what listed refs hold now, in the order of the listing:
/// the loose file, else packed-refs as the listing read it, else
/// packed-refs read again (`git pack-refs` may have moved the ref there
/// since: it writes packed-refs before it deletes the loose file).
pub(super) struct ListedRefs {
    files: RefFiles,
    packed: Option<gix::refs::packed::Buffer>,
}

impl ListedRefs {
    /// Reads refs that were not listed: each from its loose file, else
    /// from packed-refs as it is then (read after the loose file, as a
    /// listing reads them).
    pub fn unlisted(repo: &gix::Repository) -> ListedRefs {
        ListedRefs {
            files: RefFiles::new(repo.object_hash().len_in_hex()),
            packed: None,
        }
    }

    /// The lock ref `name` (after the lock ref prefix) of `repo`, or `None`
    /// once it is in neither place: deleted since the listing.
    pub fn read(&mut self, repo: &gix::Repository, name: &str) -> Result<Option<ListedRef>, Error> {
        self.read_full(repo, format!("{LOCK_REF_PREFIX}{name}"))
    }

    /// Like [`ListedRefs::read`], for the ref of any full name (a version
    /// shard, the marker).
    pub fn read_full(
        &mut self,
        repo: &gix::Repository,
        full: String,
    ) -> Result<Option<ListedRef>, Error> {
        let path = repo.common_dir().join(&full);
        if let (Some(folder), Some(file)) = (path.parent(), path.file_name()) {
            match self.files.held(folder, file) {
                Ok(held) => return Ok(Some(ListedRef { name: full, held })),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                // A folder on the way replaced by a file: no ref there.
                Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {}
                Err(e) => return Err(listing_failed(e)),
            }
        }
        if let Some(id) = self.packed_id(&full)? {
            return Ok(Some(ListedRef {
                name: full,
                held: Held::Id(id),
            }));
        }
        self.packed = packed_refs(repo)?;
        Ok(self.packed_id(&full)?.map(|id| ListedRef {
            name: full,
            held: Held::Id(id),
        }))
    }

    fn packed_id(&self, full: &str) -> Result<Option<ObjectId>, Error> {
        let Some(packed) = &self.packed else {
            return Ok(None);
        };
        let found = packed.try_find(full).map_err(listing_failed)?;
        Ok(found.map(|r| r.target()))
    }
}

/// The names of the lock refs of `repo`: the loose ones, and those in
/// packed-refs unless it is the file `summary` is of ([`Packed::Known`]).
/// `to_summarise` asks for what a summary of packed-refs needs.
pub(super) fn lock_ref_names(
    repo: &gix::Repository,
    summary: Option<PackedSummary>,
    to_summarise: bool,
) -> Result<LockRefNames, Error> {
    let mut names = LockRefNames {
        keys: Vec::new(),
        others: Vec::new(),
        refs: ListedRefs::unlisted(repo),
        loose: 0,
        packed: Packed::Absent,
    };
    loose(&lock_ref_dir(repo), "", &mut |name, _, _| {
        if names.add(name.as_bytes(), None) {
            names.loose += 1;
        }
        Ok(())
    })
    .map_err(listing_failed)?;
    let path = repo.common_dir().join("packed-refs");
    let before = Identity::of(&path);
    if let Some(summary) = summary.filter(|summary| before == Some(summary.identity)) {
        names.packed = Packed::Known(summary);
    } else if let Some(packed) = packed_refs(repo)? {
        let (loose_keys, loose_others) = (names.keys.len(), names.others.len());
        packed_lines(packed.as_ref(), |_, name, key| {
            names.add(name, key);
        });
        let held_still = before.filter(|before| Identity::of(&path) == Some(*before));
        let summarisable =
            held_still.filter(|_| to_summarise && names.others.len() == loose_others);
        names.packed = Packed::Listed(
            summarisable.map(|identity| (identity, names.keys[loose_keys..].to_vec())),
        );
        names.refs.packed = Some(packed);
    }
    // A stable sort merges runs: the packed names come sorted, after the
    // few loose ones, where an unstable sort would sort them all again.
    names.keys.sort();
    names.keys.dedup();
    names.others.sort_unstable();
    names.others.dedup();
    Ok(names)
}

/// A lock ref and what it holds.
#[derive(Debug)]
pub(super) struct ListedRef {
    /// The full name, `refs/grite/locks/...`.
    pub name: String,
    pub held: Held,
}

/// The lock refs of a [`lock_refs`] listing.
pub(super) struct Listing {
    /// Sorted by name.
    pub refs: Vec<ListedRef>,
    /// How many were read from loose files.
    pub loose: usize,
}

/// Every lock ref of `repo` with what it holds, sorted by name; a loose
/// ref hides a packed one of the same name, as in git. A loose file that
/// vanishes between the listing and its read was deleted, or packed (then
/// packed-refs, read after it, has it).
pub(super) fn lock_refs(repo: &gix::Repository) -> Result<Listing, Error> {
    let hex_len = repo.object_hash().len_in_hex();
    let mut refs = Vec::new();
    let mut files = RefFiles::new(hex_len);
    loose(&lock_ref_dir(repo), "", &mut |name, dir, entry| {
        if !listable(name) {
            return Ok(());
        }
        match files.held(dir, &entry.file_name()) {
            Ok(held) => refs.push(ListedRef {
                name: format!("{LOCK_REF_PREFIX}{name}"),
                held,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(())
    })
    .map_err(listing_failed)?;
    let loose = refs.len();
    if let Some(packed) = packed_refs(repo)? {
        packed_lines(packed.as_ref(), |hex, name, _| {
            let id = ObjectId::from_hex(hex)
                .ok()
                .filter(|_| hex.len() == hex_len);
            if let Some(id) = id
                && let Ok(name) = std::str::from_utf8(name)
                && listable(name)
            {
                refs.push(ListedRef {
                    name: format!("{LOCK_REF_PREFIX}{name}"),
                    held: Held::Id(id),
                });
            }
        });
    }
    // A stable sort keeps the loose ref, listed first, before a packed
    // one of the same name; `dedup_by` keeps the first of equals.
    refs.sort_by(|a, b| a.name.cmp(&b.name));
    refs.dedup_by(|later, first| later.name == first.name);
    Ok(Listing { refs, loose })
}

fn lock_ref_dir(repo: &gix::Repository) -> PathBuf {
    repo.common_dir().join(LOCK_REF_PREFIX)
}

fn listing_failed(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::repository("listing lock refs", e)
}

/// packed-refs as it is on disk now, read again: gix's shared copy is
/// trusted while the file's modification time is unchanged, and a second
/// write within one tick of the file system's clock leaves it unchanged.
fn packed_refs(repo: &gix::Repository) -> Result<Option<gix::refs::packed::Buffer>, Error> {
    repo.refs.open_packed_buffer().map_err(listing_failed)
}

/// The lock refs in packed-refs, whose header gix has read: each line
/// `<id> <name>`, or `^<id>` for the peeled id of the line before, given to
/// `found` as the id's text, the name after the lock ref prefix (bytes: a
/// name that is a grite hash needs no check that it is UTF-8) and, when
/// the line was read as grite names them, the [`ref_key`] it spells. gix's
/// full decoding of every line costs more than the rest of a read of
/// 100,000 packed locks.
///
/// gix gives packed-refs sorted by name (it sorts a file whose header
/// does not say it is, as git writes them), so the lock refs are one run
/// of lines, and the branches, tags and pull requests after it are not
/// read. A line that is not `<id> <name>` with an id like the run's is
/// skipped, and does not end the run.
fn packed_lines(bytes: &[u8], mut found: impl FnMut(&[u8], &[u8], Option<u64>)) {
    let prefix = LOCK_REF_PREFIX.as_bytes();
    // The length of the ids in the run, once in it.
    let mut id_len = None;
    let mut rest = bytes;
    while !rest.is_empty() {
        if let Some((id, name, key, len)) = id_len.and_then(|n| grite_line(rest, n)) {
            found(id, name, Some(key));
            rest = &rest[len..];
            continue;
        }
        let end = rest.find_byte(b'\n').unwrap_or(rest.len());
        let line = &rest[..end];
        rest = rest.get(end + 1..).unwrap_or_default();
        let Some(at) = line.find_byte(b' ') else {
            continue;
        };
        let (id, name) = (&line[..at], &line[at + 1..]);
        match name.strip_prefix(prefix) {
            Some(name) => {
                id_len = Some(at);
                found(id, name, None);
            }
            None if id_len == Some(at) && id.iter().all(u8::is_ascii_hexdigit) && name > prefix => {
                break;
            }
            None => {}
        }
    }
}

/// The id, the name (after the lock ref prefix), the key it spells and the
/// length of the first line of `rest` when it is a lock ref as grite names them,
/// `<id> refs/grite/locks/<16 hex digits>\n` with an id of `id_len` bytes:
/// most lines of the run, checked in place rather than searched for their
/// space and their end.
fn grite_line(rest: &[u8], id_len: usize) -> Option<(&[u8], &[u8], u64, usize)> {
    let name_at = id_len + 1 + LOCK_REF_PREFIX.len();
    let end = name_at + REF_HASH_LEN;
    if rest.get(end) != Some(&b'\n')
        || rest[id_len] != b' '
        || &rest[id_len + 1..name_at] != LOCK_REF_PREFIX.as_bytes()
    {
        return None;
    }
    // 16 digits, so that the line cannot end inside the name.
    let name = &rest[name_at..end];
    ref_key(name).map(|key| (&rest[..id_len], name, key, end + 1))
}

/// Whether `name`, after the lock ref prefix, is listed: a grite hash, or
/// another name that makes a valid ref name.
fn listable(name: &str) -> bool {
    ref_key(name).is_some() || valid_ref_name(name)
}

/// Whether `name`, after the lock ref prefix, makes a valid ref name (a
/// grite hash always does).
fn valid_ref_name(name: &str) -> bool {
    gix::refs::FullName::try_from(format!("{LOCK_REF_PREFIX}{name}")).is_ok()
}

/// The ref files under `dir`, the folder of the lock refs whose names
/// (after the lock ref prefix) start with `prefix`: each regular file is
/// given to `found` with its name after the lock ref prefix, its folder
/// and its directory entry. `found` leaves out the names that are not
/// valid ref names, as git and gix do (such as the `.lock` files of
/// writes under way).
fn loose(
    dir: &Path,
    prefix: &str,
    found: &mut dyn FnMut(&str, &Path, &DirEntry) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        // Removed and recreated as a file by a racing writer: a folder
        // that is not there holds no refs.
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut name = String::new();
    for entry in entries {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        name.clear();
        name.push_str(prefix);
        name.push_str(file_name);
        let kind = match entry.file_type() {
            Ok(kind) => kind,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if kind.is_dir() {
            loose(&entry.path(), &format!("{name}/"), found)?;
        } else if kind.is_file() {
            found(&name, dir, &entry)?;
        }
    }
    Ok(())
}

#[cfg(test)]
pub(in crate::store) mod tests;
