//! One consistent-enough read of the lock refs: the version ref first, then
//! every ref under `refs/grite/locks/`, loose and packed. A write decided on
//! it expects the version it read, so a lock made live after that read
//! makes the write fail rather than slip past the conflict check.

use std::path::Path;

use gix::ObjectId;

use super::Error;
use super::lockfiles::shell_quote;
use super::objects::read_lock_json;
use super::record_cache::RecordCache;
use super::version::{self, ReadVersion};
use crate::lease::{LOCK_REF_PREFIX, LockRecord};

/// The record of lock commit `id` found under `ref_hash`: from `cache`
/// when it holds it, else from the objects (and then added to `cache`).
fn read_record(
    repo: &gix::Repository,
    cache: &mut RecordCache,
    id: ObjectId,
    ref_hash: &str,
    buf: &mut Vec<u8>,
) -> Result<LockRecord, String> {
    if let Some(Ok(record)) = cache
        .get(id)
        .map(|json| LockRecord::from_json(json, ref_hash))
    {
        return Ok(record);
    }
    let json = read_lock_json(repo, id, buf)?;
    let record = LockRecord::from_json(json, ref_hash).map_err(|e| e.to_string())?;
    cache.add(id, json);
    Ok(record)
}

/// How many refs are read between two reports of progress.
const TELL_EVERY: usize = 4096;

/// A lock ref and what it holds.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub ref_name: String,
    /// What the ref points at; `None` for a loose ref file that does not
    /// hold an object id (garbage, or a symbolic ref).
    pub id: Option<ObjectId>,
    /// The record, or why it cannot be read.
    pub record: Result<LockRecord, String>,
}

impl Entry {
    /// The command that deletes this ref when it holds no readable lock:
    /// git cannot delete a ref file it cannot parse, so that one is removed
    /// as a file; any other is deleted only if it still holds what we saw.
    pub fn removal(&self, common_dir: &Path) -> String {
        match self.id {
            None => format!(
                "rm -f -- {}",
                shell_quote(&common_dir.join(&self.ref_name).display().to_string())
            ),
            Some(id) if id.is_null() => format!("git update-ref -d {}", self.ref_name),
            Some(id) => format!("git update-ref -d {} {id}", self.ref_name),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub version: ReadVersion,
    /// Sorted by ref name.
    pub entries: Vec<Entry>,
}

fn vanished(error: &gix::Error) -> bool {
    error.is_not_found()
        || error
            .downcast_any_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound)
}

impl Snapshot {
    /// Reads the lock state of `repo`, telling `read_so_far` every
    /// [`TELL_EVERY`] refs.
    pub fn read(repo: &gix::Repository, read_so_far: &dyn Fn(usize)) -> Result<Snapshot, Error> {
        let version = version::read(repo)?;
        let listing = |e: gix::Error| Error::repository("listing lock refs", e);
        let platform = repo.references().map_err(listing)?;
        let mut entries = Vec::new();
        let mut buf = Vec::new();
        let mut cache = RecordCache::open(repo.common_dir());
        for reference in platform.prefixed(LOCK_REF_PREFIX).map_err(listing)? {
            let reference = match reference {
                Ok(reference) => reference,
                // Deleted by another process between the directory listing
                // and the read: it is gone, as a read a moment later would
                // have found.
                Err(e) if vanished(&e) => continue,
                // A loose ref file whose content is not a ref: one entry
                // that cannot be read, the others are still listed.
                Err(e) => match e.downcast_any_ref::<gix::refs::file::find::ReferenceDecode>() {
                    Some(decode) => {
                        entries.push(Entry {
                            ref_name: decode.relative_path.to_string_lossy().replace('\\', "/"),
                            id: None,
                            record: Err("its file does not hold an object id".to_owned()),
                        });
                        continue;
                    }
                    None => return Err(listing(e)),
                },
            };
            if entries.len() % TELL_EVERY == 0 {
                read_so_far(entries.len());
            }
            let ref_name = reference.name().as_bstr().to_string();
            let hash = ref_name[LOCK_REF_PREFIX.len()..].to_owned();
            let Some(id) = reference.target().try_id().map(ToOwned::to_owned) else {
                entries.push(Entry {
                    ref_name,
                    id: None,
                    record: Err("it is a symbolic ref, not a lock".to_owned()),
                });
                continue;
            };
            let record = read_record(repo, &mut cache, id, &hash, &mut buf);
            entries.push(Entry {
                ref_name,
                id: Some(id),
                record,
            });
        }
        cache.save();
        entries.sort_by(|a, b| a.ref_name.cmp(&b.ref_name));
        Ok(Snapshot { version, entries })
    }

    /// The lock state `state` (the refs a remote advertised, sorted by
    /// name) read from the objects of `repo`; `None` when one of the
    /// commits (or the version) is not in `repo` yet.
    pub fn at(
        repo: &gix::Repository,
        state: &[(String, ObjectId)],
        read_so_far: &dyn Fn(usize),
    ) -> Result<Option<Snapshot>, Error> {
        if state.iter().any(|(_, id)| !repo.has_object(id)) {
            return Ok(None);
        }
        let mut version = ReadVersion::default();
        let mut entries = Vec::with_capacity(state.len());
        let mut buf = Vec::new();
        let mut cache = RecordCache::open(repo.common_dir());
        for (ref_name, id) in state {
            if entries.len() % TELL_EVERY == 0 {
                read_so_far(entries.len());
            }
            match ref_name.strip_prefix(LOCK_REF_PREFIX) {
                Some(hash) => entries.push(Entry {
                    ref_name: ref_name.clone(),
                    id: Some(*id),
                    record: read_record(repo, &mut cache, *id, hash, &mut buf),
                }),
                None => version = version::read_at(repo, *id)?,
            }
        }
        cache.save();
        Ok(Some(Snapshot { version, entries }))
    }

    pub fn entry(&self, ref_name: &str) -> Option<&Entry> {
        self.entries
            .binary_search_by(|e| e.ref_name.as_str().cmp(ref_name))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// Every readable record.
    pub fn records(&self) -> impl Iterator<Item = &LockRecord> {
        self.entries.iter().filter_map(|e| e.record.as_ref().ok())
    }
}
