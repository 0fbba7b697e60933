//! Reading the authority. Without a remote it is the local refs. With one,
//! it is what the remote advertises in the receive-pack session the write
//! will go through: decisions are made on exactly the values the push will
//! expect, with the records read from the local object database (fetched
//! only when some are missing; from a remote on this machine, copied from
//! its object database). The local refs then follow the remote, as
//! a copy for people and other tools, and never decide anything; a read
//! of a few locks' own records (a release) fetches no other lock's
//! objects, and leaves the refs of those it did not fetch as they were.
//!
//! The remote wins: a lock ref that exists only locally (taken while the
//! remote was not the authority, or by a tool that did not push it) is
//! deleted from the copy. If it held a live lock, that is told as a
//! [`Notice::PrunedLiveLock`] naming the commit it pointed at, which stays
//! in the repository; pushing it instead could hand out a lock the remote
//! has meanwhile given to someone else.

use std::collections::HashMap;

use gix::ObjectId;

use super::Error;
use super::authority::{MIRRORED, RemoteTarget, Session, State, copy_objects, lock_state};
use super::changes::{ApplyError, RefChange};
use super::lockfiles;
use super::locks::Locks;
use super::notice::Notice;
use super::objects::read_lock;
use super::ref_update::apply_changes;
use super::report::Progress;
use super::repository;
use super::snapshot::Snapshot;
use super::upkeep;
use crate::lease::{LOCK_REF_PREFIX, Scope, UnixMillis};
use crate::remote::fetch::{Fetched, fetch_refs};
use crate::remote::push::PushSession;
use crate::remote::transport::Endpoint;

/// The most objects copied from a remote on this machine in one read:
/// the records of a few hundred new locks, each with some history.
const COPY_LIMIT: usize = 1_000;

/// How often a remote whose refs do not move is read again when the
/// objects it advertises cannot be had (a fetch failed).
const READ_ATTEMPTS: u32 = 3;

/// What one read of the authority gives.
pub(super) struct View {
    /// The session to write through, with a remote.
    pub session: Option<Session>,
    /// The remote's lock state as advertised, with a remote.
    pub remote_state: Option<State>,
    /// The lock state to decide on.
    pub snapshot: Snapshot,
    /// How the local copy changed to follow the remote.
    pub followed: Fetched,
}

impl Locks {
    /// Reads the authority: see the module doc.
    pub(super) fn read(&self, now: UnixMillis, scope: &Scope) -> Result<View, Error> {
        let Some(remote) = &self.remote else {
            return Ok(View {
                session: None,
                remote_state: None,
                snapshot: Snapshot::read(&self.repo, scope, &|n| self.tell(Progress::Read(n)))?,
                followed: Fetched::default(),
            });
        };
        let failed = |reason: String| remote.error(reason);
        // Under load the remote moves between its advertisement and our
        // fetch, which then brings a newer state than the one advertised:
        // others are making progress, and we read again, for as long as
        // the remote's deadline. Failures on a remote that does not move
        // end sooner.
        let deadline = std::time::Instant::now() + self.settings().remote_timeout;
        let mut unfetched: Option<(State, u32)> = None;
        loop {
            let session = self.open_session(remote)?;
            let state = session
                .state()
                .ok_or_else(|| failed("its lock refs cannot be listed".to_owned()))?;
            // git advertises a ref it cannot read with the null id: for a
            // moment while another process deletes it, or for good when its
            // file is broken. Fetching it would ask the server for the null
            // id, which it refuses with a message about something else, and
            // deciding without it could miss a live lock: the remote is read
            // again, as one that moved, and named once it stays so.
            let broken = state.iter().find(|(_, id)| id.is_null());
            let before = lock_state(&self.repo).unwrap_or_default();
            let read_so_far = |n| self.tell(Progress::Read(n));
            // Without a fetch the local refs are still `before`, and are
            // not listed again (each listing reads every loose ref file).
            let (snapshot, why, fetched) = if let Some((ref_name, _)) = broken {
                (None, Some(remote.broken_ref(ref_name)), false)
            } else {
                match Snapshot::at(&self.repo, &state, scope, &read_so_far)? {
                    Some(snapshot) => (Some(snapshot), None, false),
                    None => match self.fetch(remote, &session, &state) {
                        Ok(()) => (
                            Snapshot::at(&self.repo, &state, scope, &read_so_far)?,
                            None,
                            true,
                        ),
                        // Not the remote's doing: reading it again would
                        // not help.
                        Err(error @ Error::Repository { .. }) => return Err(error),
                        Err(error) => (None, Some(error), true),
                    },
                }
            };
            let Some(snapshot) = snapshot else {
                let tries = match &unfetched {
                    Some((last, tries)) if *last == state => tries + 1,
                    _ => 1,
                };
                if tries >= READ_ATTEMPTS || std::time::Instant::now() >= deadline {
                    return Err(why.unwrap_or_else(|| {
                        failed(
                            "the objects of the lock refs it advertises could not be fetched"
                                .to_owned(),
                        )
                    }));
                }
                unfetched = Some((state, tries));
                continue;
            };
            let current = fetched.then(|| lock_state(&self.repo).unwrap_or_default());
            let followed = self.follow(&before, current.as_ref().unwrap_or(&before), &state, now);
            return Ok(View {
                session: Some(session),
                remote_state: Some(state),
                snapshot,
                followed,
            });
        }
    }

    fn open_session(&self, remote: &RemoteTarget) -> Result<Session, Error> {
        let failed = |reason: String| remote.error(reason);
        Ok(match &remote.direct {
            Some(path) => Session::Direct(Box::new(
                repository::open_at(path).map_err(|e| failed(e.to_string()))?,
            )),
            None => Session::Push(Box::new(
                PushSession::connect(&remote.endpoint, &self.repo, self.settings().remote_timeout)
                    .map_err(|e| failed(e.to_string()))?,
            )),
        })
    }

    /// Brings the objects of `state` into the local repository.
    fn fetch(&self, remote: &RemoteTarget, session: &Session, state: &State) -> Result<(), Error> {
        let copy_from = |from: &gix::Repository, mut budget: usize| {
            state
                .iter()
                .try_for_each(|(_, id)| copy_objects(from, &self.repo, *id, &mut budget))
        };
        match session {
            Session::Direct(repo) => copy_from(repo, usize::MAX).map_err(|e| remote.error(e)),
            Session::Push(_) => {
                // A remote on this machine has its objects read where they
                // are, as upload-pack would read them, instead of starting
                // upload-pack and pack-objects for a few small objects: in a
                // fleet of clones sharing one path remote, nearly every
                // acquire finds locks the others made. Whatever stands in
                // the way (a repository gix will not open, an object it
                // cannot read) is left to the fetch, and so are long
                // histories (a clone's first read of locks renewed for
                // months), which it brings as one pack where a copy would
                // write each object as a file of its own.
                let copied = match &remote.endpoint {
                    Endpoint::Local(path) => repository::open_at(path)
                        .map_err(|e| e.to_string())
                        .and_then(|from| copy_from(&from, COPY_LIMIT)),
                    _ => Err(String::new()),
                };
                copied
                    .or_else(|_| {
                        fetch_refs(
                            &self.repo,
                            &remote.url,
                            &remote.endpoint,
                            self.settings().remote_timeout,
                            MIRRORED,
                            !state.is_empty(),
                        )
                        .map(drop)
                        .map_err(|e| remote.fetch_error(e))
                    })
                    // Following a remote lists no lock ref of this repository.
                    .map(|()| upkeep::maintain(&self.repo, 0))
            }
        }
    }

    /// Makes the local lock refs, now `current`, the remote's `state`
    /// (whose objects are all here), and says how that changed them from
    /// `before` (the refs before a fetch). A copy that cannot follow (a
    /// lock file in the way) is a notice: the next read puts it right. A
    /// ref another process moved meanwhile is that process's to follow.
    fn follow(&self, before: &State, current: &State, state: &State, now: UnixMillis) -> Fetched {
        // Looked up by name: a remote can hold a hundred thousand locks.
        let by_name =
            |list: &State| -> HashMap<String, ObjectId> { list.iter().cloned().collect() };
        let (current_ids, state_ids, before_ids) =
            (by_name(current), by_name(state), by_name(before));
        let value = |ids: &HashMap<String, ObjectId>, name: &str| ids.get(name).copied();
        // A read of its own locks alone brings no other lock's objects: a
        // ref whose commit is not here keeps its value until a read that
        // needs the commit brings it.
        let here: Vec<&(String, ObjectId)> = state
            .iter()
            .filter(|(name, id)| value(&current_ids, name) == Some(*id) || self.repo.has_object(id))
            .collect();
        let changes: Vec<RefChange> = here
            .iter()
            .filter(|(name, id)| value(&current_ids, name) != Some(*id))
            .map(|(name, id)| RefChange {
                name: name.clone(),
                old: value(&current_ids, name),
                new: Some(*id),
            })
            .chain(
                current
                    .iter()
                    .filter(|(name, _)| value(&state_ids, name).is_none())
                    .map(|(name, id)| RefChange {
                        name: name.clone(),
                        old: Some(*id),
                        new: None,
                    }),
            )
            .collect();
        match apply_changes(&self.repo, &changes) {
            Ok(()) | Err(ApplyError::Lost) => {}
            Err(e) => self.mirror_behind(&e),
        }
        let followed = Fetched {
            updated: here
                .iter()
                .filter(|(name, id)| value(&before_ids, name) != Some(*id))
                .map(|(name, _)| name.clone())
                .collect(),
            pruned: before
                .iter()
                .filter(|(name, _)| value(&state_ids, name).is_none())
                .cloned()
                .collect(),
        };
        self.report_pruned(&followed, now);
        followed
    }

    /// Tells that the local copy could not follow the remote, and why: a
    /// lock file a killed process left, named with its removal, or `error`.
    pub(super) fn mirror_behind(&self, error: &dyn std::fmt::Display) {
        let reason = match lockfiles::stale(self.repo.common_dir()).first() {
            Some(file) => format!(
                "{} was left by a killed process; remove it with `{}`",
                file.path.display(),
                file.removal()
            ),
            None => error.to_string(),
        };
        self.notify(Notice::MirrorBehind { reason });
    }

    /// Tells of every live lock the copy lost because the remote does not
    /// have it.
    fn report_pruned(&self, fetched: &Fetched, now: UnixMillis) {
        let mut buf = Vec::new();
        for (ref_name, id) in &fetched.pruned {
            let Some(hash) = ref_name.strip_prefix(LOCK_REF_PREFIX) else {
                continue;
            };
            if let Ok(lock) = read_lock(&self.repo, *id, hash, &mut buf)
                && lock.is_live(now)
            {
                self.notify(Notice::PrunedLiveLock {
                    lock,
                    ref_name: ref_name.clone(),
                    commit: id.to_string(),
                });
            }
        }
    }
}
