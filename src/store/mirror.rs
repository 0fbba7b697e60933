//! The local lock refs as a copy of the authority's: with a remote, every
//! operation first makes them exactly what the remote advertises, so that
//! decisions made on them are decisions on the remote's state.
//!
//! The remote wins: a lock ref that exists only locally (taken while the
//! remote was not the authority, or by a tool that did not push it) is
//! deleted from the copy. If it held a live lock, that is told as a
//! [`Notice::PrunedLiveLock`] naming the commit it pointed at, which stays
//! in the repository; pushing it instead could hand out a lock the remote
//! has meanwhile given to someone else.

use super::Error;
use super::authority::{MIRRORED, Session, lock_state, mirror};
use super::lockfiles;
use super::locks::Locks;
use super::notice::Notice;
use super::objects::read_lock;
use crate::lease::{LOCK_REF_PREFIX, UnixMillis};
use crate::remote::fetch::{Fetched, fetch_refs};
use crate::remote::push::PushSession;

/// How often a fetch from the remote is tried, from a fresh
/// advertisement each time, before its failure is reported.
const FETCH_ATTEMPTS: u32 = 3;

impl Locks {
    /// With a remote: reads its refs, makes the local lock refs what it
    /// has, and returns the open session.
    pub(super) fn open_remote(&self, now: UnixMillis) -> Result<Option<Session>, Error> {
        Ok(self.connect(now)?.map(|(session, _)| session))
    }

    /// Opens the authority and brings the local lock refs in line with it.
    /// When the local copy already is what the remote has (as after our
    /// own last push), nothing is fetched: one connection instead of two.
    pub(super) fn connect(&self, now: UnixMillis) -> Result<Option<(Session, Fetched)>, Error> {
        let Some(remote) = &self.remote else {
            return Ok(None);
        };
        let failed = |reason: String| remote.error(reason);
        let mut attempt = 1;
        loop {
            let session = match &remote.direct {
                Some(path) => Session::Direct(Box::new(
                    gix::open(path).map_err(|e| failed(e.to_string()))?,
                )),
                None => Session::Push(Box::new(
                    PushSession::connect(
                        &remote.endpoint,
                        &self.repo,
                        self.settings().remote_timeout,
                    )
                    .map_err(|e| failed(e.to_string()))?,
                )),
            };
            let state = session
                .state()
                .ok_or_else(|| failed("its lock refs cannot be listed".to_owned()))?;
            if lock_state(&self.repo).as_ref() == Some(&state) {
                return Ok(Some((session, Fetched::default())));
            }
            let fetched = match &session {
                Session::Direct(repo) => mirror(&self.repo, repo, &state),
                Session::Push(_) => fetch_refs(
                    &self.repo,
                    &remote.url,
                    &remote.endpoint,
                    self.settings().remote_timeout,
                    MIRRORED,
                    !state.is_empty(),
                )
                .map_err(|e| e.reason),
            };
            match fetched {
                Ok(fetched) => {
                    self.report_pruned(&fetched, now);
                    return Ok(Some((session, fetched)));
                }
                // The remote keeps changing while we fetch (gc deletes
                // refs, others push): a fetch that fails is tried again
                // from a fresh advertisement. A failure that stays is
                // reported, with its causes.
                Err(_) if attempt < FETCH_ATTEMPTS => attempt += 1,
                Err(reason) => {
                    // A lock file a killed process left in this repository
                    // stops the copy from following: say that, not that
                    // the remote failed.
                    let stale = lockfiles::stale(self.repo.common_dir());
                    return Err(if stale.is_empty() {
                        failed(reason)
                    } else {
                        Error::StaleLockFiles { files: stale }
                    });
                }
            }
        }
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
