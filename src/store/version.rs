//! The version refs (`docs/PROTOCOL.md` §3, §7): what every transition
//! that makes a lease live must advance, expecting the values it read
//! before it listed the locks, so that its check across resources and its
//! write are one atomic step.
//!
//! The version is split into [`VERSION_SHARDS`] refs,
//! `refs/grite/lock-versions/00` to `3f`, so that acquires that cannot
//! conflict do not queue on one ref: a write advances the shards of the
//! resources it makes live ([`Shards`]), and conflicting resources share
//! one. Each shard points at a commit without parents whose tree holds
//! one blob, `version.json`: `{"version": N, "highest_token": T, "writer":
//! W}`. `version` strictly increases, `highest_token` is the highest
//! fencing token issued on the shard (the floor for the next one, so
//! tokens keep increasing after gc deletes a lock's ref), and `writer` is
//! the nonce of the lease that wrote it. The writer makes every new commit
//! unique: two racers that read the same version would otherwise write
//! identical objects, and a create that finds exactly its own new value
//! already there counts as success.
//!
//! Earlier versions of this tool kept one version, `refs/grite/lock-version`
//! (a commit like a shard's, or before that the bare blob). A client that
//! only knows that ref would not see the shards move, and could grant a
//! lock that conflicts with one granted on a shard. So the first write of
//! a shard also turns that ref into a **marker** whose `version` is a
//! sentence, not a number: such a client then cannot read it and stops
//! (`invalid type: string "…", expected u64`), instead of racing unseen.
//! The marker keeps the old ref's highest token as the floor of every
//! shard. A commit, because other grite tools treat every ref under
//! `refs/grite/` as a commit (a blob there stops their sync); without
//! parents, because its history means nothing and would only grow.

use std::collections::{BTreeMap, BTreeSet};

use gix::ObjectId;
use serde::{Deserialize, Serialize};

use super::Error;
use super::changes::RefChange;
use super::objects::write_commit;
use crate::lease::{Shards, UnixMillis, VERSION_SHARDS};

/// The file of a version commit's tree.
const FILE: &str = "version.json";

/// The single version of earlier versions, now the marker; outside
/// `refs/grite/locks/` so that lock listings and other grite tools never
/// mistake it for a lock.
pub const VERSION_REF: &str = "refs/grite/lock-version";

/// Where the version shards live: [`shard_ref`].
pub const VERSION_SHARD_PREFIX: &str = "refs/grite/lock-versions/";

/// What the marker says, in place of a number, to a client that only
/// knows the single version.
const MARKER_NOTE: &str = "sharded: the lock versions are the refs under refs/grite/lock-versions/, \
     which this grite does not know; upgrade it (and do not delete this ref)";

/// The ref of version shard `shard`: two lowercase hex digits.
pub fn shard_ref(shard: u8) -> String {
    format!("{VERSION_SHARD_PREFIX}{shard:02x}")
}

/// The shard a ref name under [`VERSION_SHARD_PREFIX`] stands for, if it
/// is one of ours.
pub(crate) fn shard_of_ref(name: &str) -> Option<u8> {
    let hex = name.strip_prefix(VERSION_SHARD_PREFIX)?;
    let shard = u8::from_str_radix(hex, 16).ok()?;
    (shard < VERSION_SHARDS && shard_ref(shard) == name).then_some(shard)
}

/// The content of a shard's blob, and of the single version's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Version {
    version: u64,
    highest_token: u64,
    #[serde(default)]
    writer: String,
}

/// The content of the marker's blob.
#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    version: String,
    highest_token: u64,
    shards: u8,
    #[serde(default)]
    writer: String,
}

/// A version as read: the commit the next write must expect (none when
/// the ref does not exist yet) and its content.
#[derive(Debug, Clone, Default)]
struct ReadVersion {
    id: Option<ObjectId>,
    value: Version,
}

/// What `refs/grite/lock-version` holds.
#[derive(Debug, Clone)]
enum Single {
    Absent,
    /// The one version of earlier versions of this tool: the next shard
    /// write replaces it with the marker.
    Version(ReadVersion),
    Marker {
        floor: u64,
    },
}

/// The version refs one read depends on: the single ref, and the shards
/// of its scope (absent ones too, which a write must create).
#[derive(Debug, Clone)]
pub(crate) struct Versions {
    single: Single,
    shards: BTreeMap<u8, ReadVersion>,
}

impl Versions {
    /// No version read: for a read of locks whose decisions depend on no
    /// other lock ([`crate::lease::Scope::own`]) and advance no shard.
    pub fn unread() -> Versions {
        Versions {
            single: Single::Absent,
            shards: BTreeMap::new(),
        }
    }

    /// Reads the single ref and the `shards` in `repo`.
    pub fn read(repo: &gix::Repository, shards: &[u8]) -> Result<Versions, Error> {
        let single = match find(repo, VERSION_REF)? {
            None => Single::Absent,
            Some(id) => read_single(repo, id)?,
        };
        let mut read = BTreeMap::new();
        for &shard in shards {
            let name = shard_ref(shard);
            let version = match find(repo, &name)? {
                None => ReadVersion::default(),
                Some(id) => read_shard(repo, &name, id)?,
            };
            read.insert(shard, version);
        }
        Ok(Versions {
            single,
            shards: read,
        })
    }

    /// The version refs a remote advertised (`single`, and `shards` by
    /// ref name and value), of which the `wanted` shards are read from the
    /// objects of `repo`.
    pub fn at<'s>(
        repo: &gix::Repository,
        single: Option<ObjectId>,
        shards: impl Iterator<Item = (&'s str, ObjectId)>,
        wanted: &[u8],
    ) -> Result<Versions, Error> {
        let single = match single {
            None => Single::Absent,
            Some(id) => read_single(repo, id)?,
        };
        let mut read: BTreeMap<u8, ReadVersion> = wanted
            .iter()
            .map(|&s| (s, ReadVersion::default()))
            .collect();
        for (name, id) in shards {
            if let Some(slot) = shard_of_ref(name).and_then(|s| read.get_mut(&s)) {
                *slot = read_shard(repo, name, id)?;
            }
        }
        Ok(Versions {
            single,
            shards: read,
        })
    }

    /// The highest fencing token issued on any of `shards` (all of which
    /// were read): the next lease there carries a higher one.
    pub fn highest(&self, shards: Shards) -> u64 {
        shards
            .iter()
            .filter_map(|s| self.shards.get(&s))
            .map(|v| v.value.highest_token)
            .fold(self.floor(), u64::max)
    }

    /// The floor every shard starts from: the single version's highest
    /// token, as read or as the marker kept it.
    fn floor(&self) -> u64 {
        match &self.single {
            Single::Absent => 0,
            Single::Version(read) => read.value.highest_token,
            Single::Marker { floor, .. } => *floor,
        }
    }

    /// Writes the version commit that advances `shards` (all of which were
    /// read) past a lease with `token`, by `writer` (a nonce), and returns
    /// the edits that move them to it from the values read, with the ids
    /// of the objects written (which a push must send). The first such
    /// write also turns the single version into the marker.
    pub fn advance(
        &self,
        repo: &gix::Repository,
        shards: &BTreeSet<u8>,
        token: u64,
        writer: &str,
        at: UnixMillis,
    ) -> Result<(Vec<RefChange>, Vec<ObjectId>), Error> {
        let read: Vec<(u8, &ReadVersion)> = shards
            .iter()
            .map(|&s| {
                let version = self.shards.get(&s);
                (
                    s,
                    version.expect("a write advances only the shards its read covered"),
                )
            })
            .collect();
        // One commit for every shard moved: above each one's version and
        // token, so each strictly increases.
        let version = Version {
            version: read
                .iter()
                .map(|(_, r)| r.value.version)
                .max()
                .unwrap_or(0)
                .saturating_add(1),
            highest_token: read
                .iter()
                .map(|(_, r)| r.value.highest_token)
                .fold(self.floor().max(token), u64::max),
            writer: writer.to_owned(),
        };
        let bytes = serde_json::to_vec(&version).expect("integers and a string serialise");
        let message = format!("lock version {}\n", version.version);
        let (commit, mut objects) = write_commit(repo, FILE, &bytes, None, &message, at)?;
        let mut changes: Vec<RefChange> = read
            .iter()
            .map(|(s, r)| RefChange {
                name: shard_ref(*s),
                old: r.id,
                new: Some(commit),
            })
            .collect();
        let old = match &self.single {
            Single::Marker { .. } => None,
            Single::Absent => Some(None),
            Single::Version(read) => Some(read.id),
        };
        if let Some(old) = old {
            let marker = Marker {
                version: MARKER_NOTE.to_owned(),
                highest_token: self.floor(),
                shards: VERSION_SHARDS,
                writer: writer.to_owned(),
            };
            let bytes = serde_json::to_vec(&marker).expect("integers and strings serialise");
            let (id, written) =
                write_commit(repo, FILE, &bytes, None, "lock versions sharded\n", at)?;
            objects.extend(written);
            changes.push(RefChange {
                name: VERSION_REF.to_owned(),
                old,
                new: Some(id),
            });
        }
        Ok((changes, objects))
    }
}

/// The value of ref `name`, if it exists.
fn find(repo: &gix::Repository, name: &str) -> Result<Option<ObjectId>, Error> {
    let reference = repo
        .try_find_reference(name)
        .map_err(|e| Error::repository("reading the lock version", e))?;
    reference
        .map(|r| {
            r.target()
                .try_id()
                .map(ToOwned::to_owned)
                .ok_or_else(|| corrupt(name, "it is a symbolic ref".to_owned()))
        })
        .transpose()
}

fn read_shard(repo: &gix::Repository, name: &str, id: ObjectId) -> Result<ReadVersion, Error> {
    let blob = version_json(repo, name, id)?;
    let value = serde_json::from_slice(&blob)
        .map_err(|e| corrupt(name, format!("its content is not a lock version: {e}")))?;
    Ok(ReadVersion {
        id: Some(id),
        value,
    })
}

fn read_single(repo: &gix::Repository, id: ObjectId) -> Result<Single, Error> {
    let blob = version_json(repo, VERSION_REF, id)?;
    if let Ok(marker) = serde_json::from_slice::<Marker>(&blob) {
        if marker.shards != VERSION_SHARDS {
            return Err(Error::Repository {
                action: "reading the lock version",
                reason: format!(
                    "{VERSION_REF} says the lock versions are split into {} shards, and this grite splits them into {VERSION_SHARDS}: every client of one repository must run a grite that splits them alike",
                    marker.shards
                ),
            });
        }
        return Ok(Single::Marker {
            floor: marker.highest_token,
        });
    }
    let value = serde_json::from_slice(&blob).map_err(|e| {
        corrupt(
            VERSION_REF,
            format!("its content is not a lock version: {e}"),
        )
    })?;
    Ok(Single::Version(ReadVersion {
        id: Some(id),
        value,
    }))
}

/// The `version.json` a version ref `name` would hold at `id`: a version
/// commit's, or the bare blob of earlier versions.
fn version_json(repo: &gix::Repository, name: &str, id: ObjectId) -> Result<Vec<u8>, Error> {
    let object = repo
        .find_object(id)
        .map_err(|e| corrupt(name, format!("its object {id} cannot be read: {e}")))?;
    let blob = match object.kind {
        gix::object::Kind::Blob => object,
        gix::object::Kind::Commit => {
            let tree = object.into_commit().tree().map_err(|e| {
                corrupt(name, format!("the tree of commit {id} cannot be read: {e}"))
            })?;
            let entry = tree
                .find_entry(FILE)
                .ok_or_else(|| corrupt(name, format!("commit {id} has no {FILE}")))?;
            entry
                .object()
                .map_err(|e| corrupt(name, format!("{FILE} of commit {id} cannot be read: {e}")))?
        }
        kind => {
            return Err(corrupt(
                name,
                format!("it points at a {kind}, not a version commit"),
            ));
        }
    };
    Ok(blob.detach().data)
}

fn corrupt(name: &str, reason: String) -> Error {
    Error::CorruptLock {
        ref_name: name.to_owned(),
        reason,
        remove_with: format!("git update-ref -d {name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_refs_are_two_hex_digits_and_nothing_else_is_one() {
        assert_eq!(shard_ref(0), "refs/grite/lock-versions/00");
        assert_eq!(shard_ref(63), "refs/grite/lock-versions/3f");
        assert_eq!(shard_of_ref("refs/grite/lock-versions/3f"), Some(63));
        for other in ["3F", "40", "ff", "0", "000", "x0", ""] {
            assert_eq!(
                shard_of_ref(&format!("{VERSION_SHARD_PREFIX}{other}")),
                None
            );
        }
        assert_eq!(shard_of_ref(VERSION_REF), None);
    }

    /// A client of the single version must fail to read the marker, not
    /// take it for a version: the reason the marker exists.
    #[test]
    fn the_marker_is_not_a_single_version() {
        let marker = Marker {
            version: MARKER_NOTE.to_owned(),
            highest_token: 7,
            shards: VERSION_SHARDS,
            writer: "w".to_owned(),
        };
        let bytes = serde_json::to_vec(&marker).expect("serialises");
        let error = serde_json::from_slice::<Version>(&bytes).expect_err("not a version");
        assert!(error.to_string().contains("upgrade it"), "{error}");
        let single = Version {
            version: 3,
            highest_token: 7,
            writer: "w".to_owned(),
        };
        let bytes = serde_json::to_vec(&single).expect("serialises");
        assert!(serde_json::from_slice::<Marker>(&bytes).is_err());
    }
}
