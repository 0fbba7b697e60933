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
/// without that prefix (a lock's hash), sorted.
pub(super) fn lock_ref_names(repo: &gix::Repository) -> Result<Vec<String>, Error> {
    let failed = |e: std::io::Error| Error::repository("listing lock refs", e);
    let mut names = Vec::new();
    loose(&repo.common_dir().join(LOCK_REF_PREFIX), "", &mut names).map_err(failed)?;
    let packed = repo
        .refs
        .cached_packed_buffer()
        .map_err(|e| Error::repository("listing lock refs", e))?;
    if let Some(packed) = packed {
        packed_names((**packed).as_ref(), &mut names);
    }
    names.sort_unstable();
    names.dedup();
    Ok(names)
}

/// The lock refs named in packed-refs, whose header gix has read: each
/// line `<id> <name>`, or `^<id>` for the peeled id of the line before.
/// Only the names are taken; gix's full decoding of every line (and of its
/// id) costs more than the rest of a read of 100,000 packed locks.
fn packed_names(bytes: &[u8], names: &mut Vec<String>) {
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
        if valid(name) {
            names.push(name.to_owned());
        }
    }
}

/// Whether `name`, after the lock ref prefix, makes a valid ref name.
fn valid(name: &str) -> bool {
    ref_key(name).is_some()
        || gix::refs::FullName::try_from(format!("{LOCK_REF_PREFIX}{name}")).is_ok()
}

/// The ref files under `dir`, the folder of the lock refs whose names
/// (after the lock ref prefix) start with `prefix`: regular files with a
/// valid ref name, as git and gix list them (which leaves out the `.lock`
/// files of writes under way).
fn loose(dir: &Path, prefix: &str, names: &mut Vec<String>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        // Removed and recreated as a file by a racing writer: a folder
        // that is not there holds no refs.
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let Some(file_name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let name = format!("{prefix}{file_name}");
        let kind = match entry.file_type() {
            Ok(kind) => kind,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if kind.is_dir() {
            loose(&entry.path(), &format!("{name}/"), names)?;
        } else if kind.is_file() && valid(&name) {
            names.push(name);
        }
    }
    Ok(())
}
