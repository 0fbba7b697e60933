//! Read, decide, write, and again: the loop every write runs, and what
//! counts as a lost race, a busy ref or a failure. A lost race is an
//! expected outcome, not an error: whoever lost reads again and decides
//! again, and either succeeds or refuses naming the winner.

use std::time::{Duration, Instant};

use gix::ObjectId;

use super::Error;
use super::authority::{PushOutcome, RemoteTarget, Session};
use super::changes::{ApplyError, RefChange, Step};
use super::clock::Clock;
use super::gate;
use super::lockfiles::{self, LockFile};
use super::locks::Locks;
use super::mirror::View;
use super::notice::Notice;
use super::ref_update::apply_changes;
use super::snapshot::Snapshot;
use super::upkeep;
use crate::lease::{Scope, UnixMillis};

/// How long a write waits, in all, for ref locks held by other processes
/// before it gives up.
const BUSY_BUDGET: Duration = Duration::from_secs(5);

/// How many lost compare-and-swaps in a row an operation accepts. Each one
/// means another process made progress, so this is only a guard against a
/// livelock, not a limit a real workload meets.
const MAX_LOST_RACES: u32 = 10_000;

/// Why a write did not happen.
enum WriteError {
    /// A compare-and-swap failed: someone else moved first.
    Lost,
    /// The remote did not update the refs without saying why.
    Rejected(Rejection),
    /// Ref lock files held by another process.
    Busy(Busy),
    Failed(Error),
}

/// A push the remote did not apply: a lost race if the refs changed since
/// the values it expected, else the remote cannot lock them.
struct Rejection {
    reason: String,
    expected: Vec<(String, Option<ObjectId>)>,
}

impl Rejection {
    /// Whether every ref still has the value the push expected of it
    /// (`None`: absent) in `state`.
    fn unchanged_in(&self, state: &[(String, ObjectId)]) -> bool {
        self.expected.iter().all(|(name, old)| {
            let now = state.iter().find(|(n, _)| n == name).map(|(_, id)| *id);
            now == *old
        })
    }
}

/// Ref locks held by someone else, on this repository or the remote.
struct Busy {
    reason: String,
    /// The lock files, where they can be seen.
    files: Vec<LockFile>,
    /// The remote (for its error) when the locks are there.
    remote: Option<String>,
}

impl Locks {
    /// Runs `decide` on a fresh read of the locks of `scope` (the
    /// remote's, when there is one) until what it decides is written or
    /// needs no write.
    pub(super) fn run<T>(
        &self,
        clock: &dyn Clock,
        scope: &Scope,
        mut decide: impl FnMut(&Snapshot, UnixMillis) -> Result<Step<T>, Error>,
    ) -> Result<T, Error> {
        let mut attempts = Attempts::new();
        let mut rejected: Option<Rejection> = None;
        loop {
            let View {
                session,
                remote_state,
                snapshot,
                ..
            } = self.read(clock.now(), scope)?;
            if let Some(rejection) = rejected.take() {
                if rejection.unchanged_in(remote_state.as_deref().unwrap_or_default()) {
                    let reason = rejection.reason;
                    let names: Vec<String> =
                        rejection.expected.into_iter().map(|(n, _)| n).collect();
                    let remote = self.remote_target();
                    attempts.busy(Busy {
                        reason: format!(
                            "{reason}, and no other writer changed them: a process on the remote holds their lock files ({}), or a killed one left them there",
                            names
                                .iter()
                                .map(|n| format!("{n}.lock"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        files: remote.lock_files(&names),
                        remote: Some(remote.url.clone()),
                    })?;
                    continue;
                }
                attempts.lost()?;
            }
            let now = clock.now();
            let (changes, objects, outcome) = match decide(&snapshot, now)? {
                Step::Done(outcome) => return Ok(outcome),
                Step::Write {
                    changes,
                    objects,
                    outcome,
                } => (changes, objects, outcome),
            };
            match self.commit(session, &changes, &objects) {
                Ok(()) => {
                    upkeep::maintain(&self.repo, snapshot.loose_lock_refs);
                    return Ok(outcome);
                }
                Err(WriteError::Lost) => attempts.lost()?,
                Err(WriteError::Rejected(rejection)) => rejected = Some(rejection),
                Err(WriteError::Busy(busy)) => attempts.busy(busy)?,
                Err(WriteError::Failed(error)) => return Err(error),
            }
        }
    }

    fn remote_target(&self) -> &RemoteTarget {
        self.remote
            .as_ref()
            .expect("only a session with a remote rejects a write")
    }

    /// Makes `changes` as one compare-and-swap: on the remote when there is
    /// one (and then on the local mirror), else on the local repository.
    fn commit(
        &self,
        session: Option<Session>,
        changes: &[RefChange],
        objects: &[ObjectId],
    ) -> Result<(), WriteError> {
        let Some(session) = session else {
            return self.apply_local(changes);
        };
        let remote = self.remote_target();
        gate::push_begins();
        let said = session
            .push(&self.repo, changes, objects)
            .map_err(|e| match e {
                PushOutcome::Lost => WriteError::Lost,
                PushOutcome::Rejected(reason) => WriteError::Rejected(Rejection {
                    reason,
                    expected: changes.iter().map(|c| (c.name.clone(), c.old)).collect(),
                }),
                PushOutcome::Busy(files, reason) => WriteError::Busy(Busy {
                    reason,
                    files,
                    remote: Some(remote.url.clone()),
                }),
                PushOutcome::Failed(reason) => WriteError::Failed(remote.error(reason)),
            })?;
        if !said.is_empty() {
            self.notify(Notice::RemoteSaid { lines: said });
        }
        // The remote is the authority and now holds the changes: the
        // operation succeeded, whatever happens to the local mirror. If
        // another local process moved it meanwhile, or it cannot be
        // written, the next command's fetch puts it right.
        match self.apply_local(changes) {
            Ok(()) | Err(WriteError::Lost) => {}
            Err(WriteError::Busy(Busy { reason, .. }))
            | Err(WriteError::Rejected(Rejection { reason, .. })) => self.mirror_behind(&reason),
            Err(WriteError::Failed(error)) => self.mirror_behind(&error),
        }
        Ok(())
    }

    fn apply_local(&self, changes: &[RefChange]) -> Result<(), WriteError> {
        match apply_changes(&self.repo, changes) {
            Ok(()) => Ok(()),
            Err(ApplyError::Lost) => Err(WriteError::Lost),
            Err(ApplyError::Busy(reason)) => {
                let names: Vec<String> = changes.iter().map(|c| c.name.clone()).collect();
                Err(WriteError::Busy(Busy {
                    reason,
                    files: lockfiles::held(self.repo.common_dir(), &names),
                    remote: None,
                }))
            }
            Err(ApplyError::Failed(reason)) => Err(WriteError::Failed(Error::Repository {
                action: "updating lock refs",
                reason,
            })),
        }
    }
}

/// Counts lost races and paces waits for busy ref locks.
struct Attempts {
    lost: u32,
    busy_since: Option<Instant>,
    delay: Duration,
}

impl Attempts {
    fn new() -> Attempts {
        Attempts {
            lost: 0,
            busy_since: None,
            delay: Duration::from_millis(2),
        }
    }

    fn lost(&mut self) -> Result<(), Error> {
        self.lost += 1;
        if self.lost > MAX_LOST_RACES {
            return Err(Error::Busy {
                waited_ms: 0,
                reason: format!(
                    "{MAX_LOST_RACES} compare-and-swaps in a row were lost to other processes"
                ),
            });
        }
        Ok(())
    }

    /// Waits before the next attempt at a busy ref, or gives up: at once if
    /// every lock file in the way is stale, after [`BUSY_BUDGET`] if not.
    fn busy(&mut self, busy: Busy) -> Result<(), Error> {
        if !busy.files.is_empty() && busy.files.iter().all(LockFile::is_stale) {
            return Err(Error::StaleLockFiles { files: busy.files });
        }
        let since = *self.busy_since.get_or_insert_with(Instant::now);
        let waited = since.elapsed();
        if waited >= BUSY_BUDGET {
            let waited_ms = u64::try_from(waited.as_millis()).unwrap_or(u64::MAX);
            let held = busy
                .files
                .iter()
                .map(|f| format!("{} ({} s old)", f.path.display(), f.age.as_secs()))
                .collect::<Vec<_>>();
            let reason = if held.is_empty() {
                busy.reason
            } else {
                format!("{}; held: {}", busy.reason, held.join(", "))
            };
            return Err(match busy.remote {
                Some(remote) => Error::Remote {
                    remote: crate::remote::transport::redact(&remote),
                    reason: format!(
                        "{reason}; gave up after {} s (if no git process is running there, remove the lock files)",
                        waited.as_secs()
                    ),
                },
                None => Error::Busy { waited_ms, reason },
            });
        }
        // A remote is asked again less often: each attempt is a push.
        let (first, most) = match busy.remote {
            Some(_) => (Duration::from_millis(100), Duration::from_secs(1)),
            None => (Duration::from_millis(2), Duration::from_millis(50)),
        };
        let delay = self.delay.max(first);
        // Jitter keeps processes that collided from colliding again.
        let jitter = Duration::from_micros(u64::from(super::random::random_u16()) % 2_000);
        std::thread::sleep(delay + jitter);
        self.delay = (delay * 2).min(most);
        Ok(())
    }
}
