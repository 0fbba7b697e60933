//! The history of locks: the first-parent chain of each lock ref, read
//! newest first, each step named by its record against its parent's
//! (`docs/PROTOCOL.md` §9). Chains are read lazily, so that `-n N` reads
//! N commits of a lock however long its history is.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use gix::ObjectId;

use super::objects::{LockCommit, read_lock_commit};
use super::snapshot::Entry;
use crate::lease::{Event, LOCK_REF_PREFIX, LockRecord, UnixMillis};

/// One step of a lock's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// The lock ref it belongs to.
    pub ref_name: String,
    /// Its commit; `None` for a ref that does not point at an object.
    pub commit: Option<ObjectId>,
    /// When it happened: from the record where it says (milliseconds),
    /// else the commit's time (seconds); `None` when neither is known.
    pub at: Option<UnixMillis>,
    /// What happened and the record it left, or why it cannot be read.
    pub step: Result<(Event, LockRecord), String>,
}

/// The history of the lock refs `entries` (as a snapshot read them),
/// newest first across all of them, at most `limit` steps.
pub(super) fn log(
    repo: &gix::Repository,
    entries: &[Entry],
    limit: Option<usize>,
) -> Vec<LogEntry> {
    let mut chains: Vec<Chain<'_>> = entries.iter().map(|e| Chain::start(repo, e)).collect();
    // The newest head of every chain; ties go to the first ref by name.
    let mut heads = BinaryHeap::new();
    let mut next = Vec::with_capacity(chains.len());
    for (i, chain) in chains.iter_mut().enumerate() {
        let head = chain.next();
        if let Some(head) = &head {
            heads.push((head.at, Reverse(i)));
        }
        next.push(head);
    }
    let mut out = Vec::new();
    while limit.is_none_or(|n| out.len() < n) {
        let Some((_, Reverse(i))) = heads.pop() else {
            break;
        };
        let Some(entry) = next[i].take() else {
            continue;
        };
        out.push(entry);
        next[i] = chains[i].next();
        if let Some(head) = &next[i] {
            heads.push((head.at, Reverse(i)));
        }
    }
    out
}

/// One lock ref's commits, newest first.
struct Chain<'r> {
    repo: &'r gix::Repository,
    ref_name: String,
    hash: String,
    /// The commit to yield next, read; or why the ref holds none.
    current: Option<(ObjectId, Result<LockCommit, String>)>,
    /// A ref that does not point at an object: one entry, then nothing.
    unreadable: Option<String>,
    buf: Vec<u8>,
}

impl<'r> Chain<'r> {
    fn start(repo: &'r gix::Repository, entry: &Entry) -> Chain<'r> {
        let hash = entry
            .ref_name
            .strip_prefix(LOCK_REF_PREFIX)
            .unwrap_or_default()
            .to_owned();
        let mut buf = Vec::new();
        let (current, unreadable) = match entry.id {
            Some(id) => (
                Some((id, read_lock_commit(repo, id, &hash, &mut buf))),
                None,
            ),
            None => (
                None,
                Some(
                    entry
                        .record
                        .clone()
                        .err()
                        .unwrap_or_else(|| "it does not point at an object".to_owned()),
                ),
            ),
        };
        Chain {
            repo,
            ref_name: entry.ref_name.clone(),
            hash,
            current,
            unreadable,
            buf,
        }
    }
}

impl Iterator for Chain<'_> {
    type Item = LogEntry;

    fn next(&mut self) -> Option<LogEntry> {
        if let Some(reason) = self.unreadable.take() {
            return Some(LogEntry {
                ref_name: self.ref_name.clone(),
                commit: None,
                at: None,
                step: Err(reason),
            });
        }
        let (id, commit) = self.current.take()?;
        let commit = match commit {
            Ok(commit) => commit,
            // The end of what can be read (a shallow clone, a broken
            // object): said once, then the chain stops.
            Err(reason) => {
                return Some(LogEntry {
                    ref_name: self.ref_name.clone(),
                    commit: Some(id),
                    at: None,
                    step: Err(reason),
                });
            }
        };
        let parent = commit
            .parent
            .map(|p| (p, read_lock_commit(self.repo, p, &self.hash, &mut self.buf)));
        let before = match &parent {
            Some((_, Ok(parent))) => parent.record.as_ref().ok(),
            _ => None,
        };
        let (at, step) = match commit.record {
            Ok(record) => {
                let event = Event::between(before, &record);
                let at = event.time(&record).unwrap_or(commit.time);
                (Some(at), Ok((event, record)))
            }
            Err(reason) => (Some(commit.time), Err(reason)),
        };
        self.current = parent;
        Some(LogEntry {
            ref_name: self.ref_name.clone(),
            commit: Some(id),
            at,
            step,
        })
    }
}
