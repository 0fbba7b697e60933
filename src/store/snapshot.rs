//! One consistent-enough read of the lock refs: the version refs of the
//! scope first, then the refs under `refs/grite/locks/`, loose and packed.
//! A write decided on it expects the versions it read, so a conflicting
//! lock made live after that read makes the write fail rather than slip
//! past the conflict check.
//!
//! A read for a decision reads only the locks in its [`Scope`]: the names
//! of all lock refs are listed, and a ref whose resource text the
//! [`NameIndex`] knows is read only if that text is in scope. A ref it
//! does not know (new, or written by another tool) is read in full, and
//! learnt. The version check is unchanged by this: every ref that existed
//! when the versions were read is listed, and any conflicting lease made
//! live since moved a version shard it shares with the scope. The names
//! in packed-refs are not listed while the summary of that file
//! (`lock-packed.cache`, `scoped`) holds: it names every lock there that a
//! decision could need besides the asked issues' own, found by name.
//!
//! A read for decisions that depend on no other lock ([`Scope::own`]: a
//! release, the renewal of a live lease) reads the refs of its resources
//! by name, lists nothing and reads no version: its compare-and-swap on
//! those refs is the whole check.

use std::path::Path;

use gix::ObjectId;

use super::Error;
use super::lockfiles::shell_quote;
use super::name_index::NameIndex;
use super::objects::read_lock_json;
use super::record_cache::RecordCache;
use super::ref_file::Held;
use super::ref_names::{ListedRef, ListedRefs, lock_refs};
use super::version::{VERSION_REF, Versions};
use crate::lease::{LOCK_REF_PREFIX, LockRecord, Scope, ref_hash_of, ref_key};

mod scoped;
use scoped::read_scope;

/// Where records come from in one read, and what it learns on the way.
struct Reader<'r> {
    repo: &'r gix::Repository,
    /// Only a read of every lock uses the cache of records: a read of a
    /// few is cheaper from the objects than loading it, and would not use
    /// most of its entries (which a rewrite would then drop).
    cache: Option<RecordCache>,
    /// What the resource behind each ref name is, for a read that lists
    /// the names; a read of its own locks finds them by name.
    names: Option<NameIndex>,
    buf: Vec<u8>,
}

impl<'r> Reader<'r> {
    /// A reader for `scope`, which looks names up in the name cache (and
    /// teaches it) if `names`.
    fn new(repo: &'r gix::Repository, scope: &Scope, names: bool) -> Reader<'r> {
        Reader {
            repo,
            cache: scope
                .is_everything()
                .then(|| RecordCache::open(repo.common_dir())),
            names: names.then(|| NameIndex::open(repo.common_dir())),
            buf: Vec::new(),
        }
    }

    /// Whether the ref whose hash spells `key` must be read, in a read
    /// that lists the names: its text is in `scope`, or is not known.
    fn wanted(&self, scope: &Scope, key: u64) -> bool {
        self.names
            .as_ref()
            .and_then(|names| names.text(key))
            .is_none_or(|text| scope.touches(text))
    }

    /// The record of lock commit `id` found under `ref_hash`: from the
    /// cache when it holds it, else from the objects (and then cached).
    fn record(&mut self, id: ObjectId, ref_hash: &str) -> Result<LockRecord, String> {
        let cached = self.cache.as_mut().and_then(|cache| {
            cache
                .get(id)
                .and_then(|json| LockRecord::from_json(json, ref_hash).ok())
        });
        let record = match cached {
            Some(record) => record,
            None => {
                let json = read_lock_json(self.repo, id, &mut self.buf)?;
                let record = LockRecord::from_json(json, ref_hash).map_err(|e| e.to_string())?;
                if let Some(cache) = &mut self.cache {
                    cache.add(id, json);
                }
                record
            }
        };
        if let Some(names) = &mut self.names {
            names.learn(&record.resource);
        }
        Ok(record)
    }

    /// The entry of a lock ref as [`lock_refs`] listed it or `ListedRefs` read it.
    fn listed(&mut self, listed: ListedRef) -> Entry {
        let ListedRef { name, held } = listed;
        let (id, record) = match held {
            Held::Id(id) => (Some(id), self.record(id, &name[LOCK_REF_PREFIX.len()..])),
            Held::Symbolic => (None, Err(SYMBOLIC.to_owned())),
            Held::Garbage => (None, Err(GARBAGE.to_owned())),
        };
        Entry {
            ref_name: name,
            id,
            record,
        }
    }

    /// Keeps what was learnt, for the lock refs `listed` (their
    /// [`ref_key`]s; about `count`).
    fn save(self, count: usize, listed: impl Iterator<Item = u64>) {
        if let Some(cache) = self.cache {
            cache.save();
        }
        if let Some(names) = self.names {
            names.save(count, listed);
        }
    }

    /// Keeps the texts learnt, for a read that did not list every name.
    fn save_learnt(self) {
        if let Some(names) = self.names {
            names.save_learnt();
        }
    }
}

/// Why a ref file that holds no object id is not a lock.
const GARBAGE: &str = "its file does not hold an object id";
const SYMBOLIC: &str = "it is a symbolic ref, not a lock";

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
    /// What was read: the locks this scope touches (and the refs no name
    /// told about).
    pub scope: Scope,
    pub versions: Versions,
    /// Sorted by ref name.
    pub entries: Vec<Entry>,
    /// How many lock refs the listing found as loose files in this
    /// repository; 0 for a read that listed none here (its own locks, or a
    /// remote's advertisement).
    pub loose_lock_refs: usize,
}

impl Snapshot {
    /// Reads the locks of `scope` in `repo` (and the refs no name tells
    /// about), telling `read_so_far` every [`TELL_EVERY`] refs.
    pub fn read(
        repo: &gix::Repository,
        scope: &Scope,
        read_so_far: &dyn Fn(usize),
    ) -> Result<Snapshot, Error> {
        let mut reader = Reader::new(repo, scope, scope.is_everything());
        if let Some(own) = scope.own_only() {
            let mut refs = ListedRefs::unlisted(repo);
            let mut entries = Vec::new();
            for text in own {
                let listed = refs.read(repo, &ref_hash_of(text))?;
                entries.extend(listed.map(|listed| reader.listed(listed)));
            }
            return Ok(Snapshot::of_own(scope, entries));
        }
        let versions = Versions::read(repo, &scope.shards())?;
        let mut entries = Vec::new();
        let loose_lock_refs;
        if scope.is_everything() {
            let listing = lock_refs(repo)?;
            loose_lock_refs = listing.loose;
            for listed in listing.refs {
                if entries.len() % TELL_EVERY == 0 {
                    read_so_far(entries.len());
                }
                entries.push(reader.listed(listed));
            }
            reader.save(
                entries.len(),
                entries
                    .iter()
                    .filter_map(|e| ref_key(e.ref_name.strip_prefix(LOCK_REF_PREFIX)?)),
            );
        } else {
            loose_lock_refs = read_scope(repo, scope, reader, &mut entries)?;
        }
        Ok(Snapshot {
            scope: scope.clone(),
            versions,
            entries,
            loose_lock_refs,
        })
    }

    /// The locks of `scope` in the lock state `state` (the refs a remote
    /// advertised, sorted by name), read from the objects of `repo`;
    /// `None` when one of the commits (or a version) is not in `repo`
    /// yet. A [`Scope::own`] needs only the commits of its own refs.
    pub fn at(
        repo: &gix::Repository,
        state: &[(String, ObjectId)],
        scope: &Scope,
        read_so_far: &dyn Fn(usize),
    ) -> Result<Option<Snapshot>, Error> {
        if let Some(own) = scope.own_only() {
            let mine: Vec<&(String, ObjectId)> = own
                .iter()
                .filter_map(|text| {
                    let name = format!("{LOCK_REF_PREFIX}{}", ref_hash_of(text));
                    let at = state.binary_search_by(|(n, _)| n.cmp(&name)).ok()?;
                    Some(&state[at])
                })
                .collect();
            if mine.iter().any(|(_, id)| !repo.has_object(id)) {
                return Ok(None);
            }
            let mut reader = Reader::new(repo, scope, false);
            let entries = mine
                .into_iter()
                .map(|(ref_name, id)| Entry {
                    ref_name: ref_name.clone(),
                    id: Some(*id),
                    record: reader.record(*id, &ref_name[LOCK_REF_PREFIX.len()..]),
                })
                .collect();
            return Ok(Some(Snapshot::of_own(scope, entries)));
        }
        if state.iter().any(|(_, id)| !repo.has_object(id)) {
            return Ok(None);
        }
        let mut single = None;
        let mut reader = Reader::new(repo, scope, true);
        let mut entries = Vec::new();
        for (ref_name, id) in state {
            if entries.len() % TELL_EVERY == 0 {
                read_so_far(entries.len());
            }
            match ref_name.strip_prefix(LOCK_REF_PREFIX) {
                Some(hash) if ref_key(hash).is_none_or(|key| reader.wanted(scope, key)) => entries
                    .push(Entry {
                        ref_name: ref_name.clone(),
                        id: Some(*id),
                        record: reader.record(*id, hash),
                    }),
                Some(_) => {}
                None if ref_name == VERSION_REF => single = Some(*id),
                None => {}
            }
        }
        let shards = state.iter().map(|(name, id)| (name.as_str(), *id));
        let versions = Versions::at(repo, single, shards, &scope.shards())?;
        let keys = state
            .iter()
            .filter_map(|(name, _)| ref_key(name.strip_prefix(LOCK_REF_PREFIX)?));
        reader.save(state.len(), keys);
        Ok(Some(Snapshot {
            scope: scope.clone(),
            versions,
            entries,
            loose_lock_refs: 0,
        }))
    }

    /// The snapshot of a read of the locks of a [`Scope::own`], which
    /// reads no version: its decisions advance none.
    fn of_own(scope: &Scope, mut entries: Vec<Entry>) -> Snapshot {
        entries.sort_by(|a, b| a.ref_name.cmp(&b.ref_name));
        Snapshot {
            scope: scope.clone(),
            versions: Versions::unread(),
            entries,
            loose_lock_refs: 0,
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease::Resource;
    use crate::store::ref_names::tests::packed_twice_in_one_tick;

    #[test]
    fn a_listed_ref_packed_within_one_tick_of_the_last_packing_is_found() {
        let (_dir, repo, both) = packed_twice_in_one_tick();
        let scope = Scope::of([&Resource::parse("issue:1").expect("a resource")]);
        let snapshot = Snapshot::read(&repo, &scope, &|_| {}).expect("a read");
        let names: Vec<&str> = snapshot
            .entries
            .iter()
            .map(|e| e.ref_name.as_str())
            .collect();
        assert_eq!(names, both);
    }
}
