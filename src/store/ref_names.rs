//! The names of the lock refs, without reading what they hold: a directory
//! listing and the names in packed-refs. With 100,000 loose locks, reading
//! each ref file is most of what a full read costs.
//!
//! The loose files are listed before packed-refs is read: `git pack-refs`
//! writes packed-refs before it deletes the loose files, so in this order a
//! ref being packed is seen in one place or the other, never in neither.

use std::path::Path;

use gix::bstr::ByteSlice as _;

use super::Error;
use crate::lease::{LOCK_REF_PREFIX, ref_key};

/// The names of the refs under `refs/grite/locks/`, loose and packed,
/// without that prefix (a lock's hash).
#[derive(Debug, Default)]
pub(super) struct LockRefNames {
    /// The names that are hashes as grite writes them, as the numbers they
    /// spell ([`ref_key`]): sorted, without the string of each of 100,000
    /// names, which would cost more than the listing.
    pub keys: Vec<u64>,
    /// Any other valid ref name (another tool's), sorted.
    pub others: Vec<String>,
}

impl LockRefNames {
    fn add(&mut self, name: &str) {
        match ref_key(name) {
            Some(key) => self.keys.push(key),
            None if valid_ref_name(name) => self.others.push(name.to_owned()),
            None => {}
        }
    }

    /// How many names there are.
    pub fn len(&self) -> usize {
        self.keys.len() + self.others.len()
    }
}

/// The names of the lock refs of `repo`.
pub(super) fn lock_ref_names(repo: &gix::Repository) -> Result<LockRefNames, Error> {
    let failed = |e: std::io::Error| Error::repository("listing lock refs", e);
    let mut names = LockRefNames::default();
    loose(&repo.common_dir().join(LOCK_REF_PREFIX), "", &mut names).map_err(failed)?;
    let packed = repo
        .refs
        .cached_packed_buffer()
        .map_err(|e| Error::repository("listing lock refs", e))?;
    if let Some(packed) = packed {
        packed_names((**packed).as_ref(), &mut names);
    }
    names.keys.sort_unstable();
    names.keys.dedup();
    names.others.sort_unstable();
    names.others.dedup();
    Ok(names)
}

/// The lock refs named in packed-refs, whose header gix has read: each
/// line `<id> <name>`, or `^<id>` for the peeled id of the line before.
/// Only the names are taken; gix's full decoding of every line (and of its
/// id) costs more than the rest of a read of 100,000 packed locks.
fn packed_names(bytes: &[u8], names: &mut LockRefNames) {
    for line in bytes.lines() {
        let Some(name) = line.find_byte(b' ').map(|at| &line[at + 1..]) else {
            continue;
        };
        let Some(name) = name
            .strip_prefix(LOCK_REF_PREFIX.as_bytes())
            .and_then(|name| std::str::from_utf8(name).ok())
        else {
            continue;
        };
        names.add(name);
    }
}

/// Whether `name`, after the lock ref prefix, makes a valid ref name (a
/// grite hash always does).
fn valid_ref_name(name: &str) -> bool {
    gix::refs::FullName::try_from(format!("{LOCK_REF_PREFIX}{name}")).is_ok()
}

/// The ref files under `dir`, the folder of the lock refs whose names
/// (after the lock ref prefix) start with `prefix`: regular files with a
/// valid ref name, as git and gix list them (which leaves out the `.lock`
/// files of writes under way).
fn loose(dir: &Path, prefix: &str, names: &mut LockRefNames) -> std::io::Result<()> {
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
            loose(&entry.path(), &format!("{name}/"), names)?;
        } else if kind.is_file() {
            names.add(&name);
        }
    }
    Ok(())
}
