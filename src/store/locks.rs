//! [`Locks`]: the lease machine applied to a git repository.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gix::ObjectId;

use super::Error;
use super::authority::{PushOutcome, RemoteTarget, Session, in_step, lock_state, mirror};
use super::changes::RefChange;
use super::clock::Clock;
use super::config::{self, Settings};
use super::objects::{signature, write_lock_commit};
use super::snapshot::{Entry, Snapshot};
use super::version::{self, VERSION_REF};
use crate::lease::{
    ActorId, Change, Context, Decision, LockRecord, Refusal, Request, Resource, Transition,
    TransitionKind, Ttl, Unchanged, UnixMillis, decide, live_conflicts, locks_in_the_way,
};
use crate::remote::fetch::{Fetched, fetch_locks};
use crate::remote::push::PushSession;
use crate::remote::transport::{Endpoint, redact};

/// How long a write waits, in all, for ref lock files held by other
/// processes before it gives up with [`Error::Busy`].
const BUSY_BUDGET: Duration = Duration::from_secs(5);

/// How many lost compare-and-swaps in a row an operation accepts. Each one
/// means another process made progress, so this is only a guard against a
/// livelock, not a limit a real workload meets.
const MAX_LOST_RACES: u32 = 10_000;

/// How often a fetch from the remote is tried, from a fresh
/// advertisement each time, before its failure is reported.
const FETCH_ATTEMPTS: u32 = 3;

/// Memory for decoded delta bases when reading packed lock objects.
const PACK_CACHE_BYTES: usize = 32 * 1024 * 1024;

/// The lock engine of one repository.
pub struct Locks {
    repo: gix::Repository,
    settings: Settings,
    nonces: Box<dyn Fn() -> String>,
    remote: Option<RemoteTarget>,
}

/// How an acquire succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquisition {
    /// A new lease on a free lock.
    New,
    /// The actor already held the lock: the same lease stands, unchanged.
    AlreadyHeld,
    /// A new lease replacing the actor's own expired one.
    Reacquired,
    /// A new lease replacing another actor's, which had expired past the
    /// grace period.
    Stolen {
        /// The owner of the replaced lease.
        from: String,
    },
}

/// The outcome of [`Locks::acquire`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acquired {
    /// The lease the actor now holds, with its fencing token.
    pub lock: LockRecord,
    /// How it was acquired.
    pub how: Acquisition,
}

/// The outcome of [`Locks::release`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Released {
    /// The lease ended; this is the released record now stored.
    Released(LockRecord),
    /// Nobody held the lock; nothing was written.
    NotHeld,
}

/// A lock ref that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// The full ref name.
    pub ref_name: String,
    /// What is wrong with it.
    pub reason: String,
}

/// What [`Locks::status`] reports, each list sorted by resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The instant the status was taken at.
    pub now: UnixMillis,
    /// Live locks.
    pub locks: Vec<LockRecord>,
    /// Locks whose lease ran out and that nobody has taken or collected.
    pub expired: Vec<LockRecord>,
    /// Released locks not yet collected.
    pub released: Vec<LockRecord>,
    /// Pairs of live locks of different actors that conflict (possible only
    /// after repositories that worked apart were synced).
    pub conflicts: Vec<(LockRecord, LockRecord)>,
    /// Lock refs whose content is not a readable lock.
    pub unreadable: Vec<Unreadable>,
}

/// What [`Locks::gc`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcReport {
    /// Removed records: released, or expired for at least the grace period.
    pub removed: Vec<LockRecord>,
    /// Records kept because they are live or within their grace period.
    pub kept: usize,
    /// Lock refs left alone because they cannot be read.
    pub unreadable: usize,
}

enum WriteError {
    /// A compare-and-swap failed: someone else moved first.
    Lost,
    /// A ref lock file is held by another process.
    Busy(String),
    Failed(Error),
}

impl Locks {
    /// Opens the repository that contains `path` (a worktree, a
    /// subdirectory of one, or a bare repository) and reads its lock
    /// settings.
    pub fn open(path: impl AsRef<Path>) -> Result<Locks, Error> {
        let path = path.as_ref();
        let mut repo = gix::discover(path).map_err(|e| Error::NotARepository {
            path: std::path::absolute(path).unwrap_or_else(|_| path.to_owned()),
            reason: e.to_string(),
        })?;
        // Lock blobs are near-identical, so packs store them as long delta
        // chains; without a cache of delta bases every record would decode
        // its whole chain again. (gix sets one up only with its
        // "max-performance" feature, which also brings threads we do not
        // use.)
        repo.objects.set_pack_cache(|| {
            Box::new(gix::odb::pack::cache::lru::MemoryCappedHashmap::new(
                PACK_CACHE_BYTES,
            ))
        });
        let settings = config::load(repo.common_dir())?;
        Ok(Locks {
            repo,
            settings,
            nonces: Box::new(random_nonce),
            remote: None,
        })
    }

    /// Makes the remote `name_or_url` (a configured remote's name, a URL or
    /// a path) the authority: every operation reads the locks from it and
    /// writes them back with a compare-and-swap push, then mirrors the
    /// result in the local refs.
    pub fn with_remote(mut self, name_or_url: &str) -> Result<Locks, Error> {
        let url = match self.repo.find_remote(name_or_url) {
            Ok(remote) => remote
                .url(gix::remote::Direction::Push)
                .map(|u| u.to_bstring().to_string())
                .ok_or_else(|| Error::BadRemote {
                    remote: redact(name_or_url),
                    reason: "it has no URL".to_owned(),
                })?,
            Err(_) => name_or_url.to_owned(),
        };
        let endpoint = Endpoint::parse(&url).map_err(|e| Error::BadRemote {
            remote: redact(name_or_url),
            reason: e.to_string(),
        })?;
        let direct = match &endpoint {
            Endpoint::Local(path) if !git_on_path() => Some(path.clone()),
            _ => None,
        };
        self.remote = Some(RemoteTarget {
            url,
            endpoint,
            direct,
        });
        Ok(self)
    }

    /// Makes the local lock refs what the remote has: fetch, and delete the
    /// ones it no longer has. Without a remote there is nothing to do.
    pub fn sync(&self) -> Result<Fetched, Error> {
        match self.connect()? {
            None => Ok(Fetched::default()),
            Some((_, fetched)) => Ok(fetched),
        }
    }

    /// Replaces the source of lease nonces (random by default): for
    /// reproducible fixtures and tests.
    pub fn with_nonces(mut self, nonces: impl Fn() -> String + 'static) -> Locks {
        self.nonces = Box::new(nonces);
        self
    }

    /// The settings read from `.git/grite/config.toml`.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Where the settings live.
    pub fn config_path(&self) -> PathBuf {
        config::path(self.repo.common_dir())
    }

    /// The repository's default actor, created and saved on first use.
    pub fn default_actor(&self) -> Result<ActorId, Error> {
        config::default_actor(self.repo.common_dir())
    }

    /// Takes the lock on `resource` for `ttl`, or says who holds it.
    pub fn acquire(
        &self,
        actor: &ActorId,
        resource: &Resource,
        ttl: Ttl,
        clock: &dyn Clock,
    ) -> Result<Acquired, Error> {
        let request = Request::Acquire {
            actor: actor.clone(),
            ttl,
            nonce: (self.nonces)(),
        };
        match self.transact(resource, &request, clock)? {
            Done::Applied(kind, lock) => {
                let how = match kind {
                    TransitionKind::Steal { from } => Acquisition::Stolen { from },
                    TransitionKind::Reacquire => Acquisition::Reacquired,
                    _ => Acquisition::New,
                };
                Ok(Acquired { lock, how })
            }
            Done::Unchanged(Unchanged::AlreadyHeld(lock)) => Ok(Acquired {
                lock,
                how: Acquisition::AlreadyHeld,
            }),
            Done::Unchanged(other) => unreachable!("acquire never ends as {other:?}"),
        }
    }

    /// Extends the actor's lease on `resource` to `now + ttl`.
    pub fn renew(
        &self,
        actor: &ActorId,
        resource: &Resource,
        ttl: Ttl,
        clock: &dyn Clock,
    ) -> Result<LockRecord, Error> {
        let request = Request::Renew {
            actor: actor.clone(),
            ttl,
        };
        match self.transact(resource, &request, clock)? {
            Done::Applied(_, lock) => Ok(lock),
            Done::Unchanged(other) => unreachable!("renew never ends as {other:?}"),
        }
    }

    /// Ends the actor's lease on `resource`.
    pub fn release(
        &self,
        actor: &ActorId,
        resource: &Resource,
        clock: &dyn Clock,
    ) -> Result<Released, Error> {
        let request = Request::Release {
            actor: actor.clone(),
        };
        match self.transact(resource, &request, clock)? {
            Done::Applied(_, lock) => Ok(Released::Released(lock)),
            Done::Unchanged(_) => Ok(Released::NotHeld),
        }
    }

    /// Every lock, sorted into live, expired and released, with the
    /// conflicts among live locks and the refs that cannot be read.
    pub fn status(&self, clock: &dyn Clock) -> Result<Status, Error> {
        self.sync()?;
        let now = clock.now();
        let snapshot = Snapshot::read(&self.repo)?;
        let mut status = Status {
            now,
            locks: Vec::new(),
            expired: Vec::new(),
            released: Vec::new(),
            conflicts: Vec::new(),
            unreadable: Vec::new(),
        };
        for entry in snapshot.entries {
            match entry.record {
                Ok(record) if record.released => status.released.push(record),
                Ok(record) if record.is_live(now) => status.locks.push(record),
                Ok(record) => status.expired.push(record),
                Err(reason) => status.unreadable.push(Unreadable {
                    ref_name: entry.ref_name,
                    reason,
                }),
            }
        }
        for list in [&mut status.locks, &mut status.expired, &mut status.released] {
            list.sort_by(|a, b| a.resource.cmp(&b.resource));
        }
        status.conflicts = live_conflicts(&status.locks, now)
            .into_iter()
            .map(|(a, b)| (a.clone(), b.clone()))
            .collect();
        Ok(status)
    }

    /// Other actors' locks that stand in the way of `actor` working on
    /// `resource` now: the resource's own lock and conflicting ones.
    pub fn check(
        &self,
        actor: &ActorId,
        resource: &Resource,
        clock: &dyn Clock,
    ) -> Result<Vec<LockRecord>, Error> {
        self.sync()?;
        let now = clock.now();
        let snapshot = Snapshot::read(&self.repo)?;
        let in_the_way = locks_in_the_way(
            resource,
            actor,
            snapshot.records(),
            now,
            self.settings.grace,
        );
        Ok(in_the_way.into_iter().cloned().collect())
    }

    /// Removes every released lock and every lock expired for at least the
    /// grace period, in one transaction whose every delete expects the
    /// record it was decided on.
    pub fn gc(&self, clock: &dyn Clock) -> Result<GcReport, Error> {
        let any_resource = Resource::parse("repo:global").expect("valid resource");
        let mut retry = Retry::new();
        loop {
            let session = self.open_remote()?;
            let now = clock.now();
            let snapshot = Snapshot::read(&self.repo)?;
            if !in_step(&snapshot, session.as_ref()) {
                retry.after(WriteError::Lost)?;
                continue;
            }
            let mut report = GcReport {
                removed: Vec::new(),
                kept: 0,
                unreadable: 0,
            };
            let mut changes = Vec::new();
            for entry in &snapshot.entries {
                let Ok(record) = &entry.record else {
                    report.unreadable += 1;
                    continue;
                };
                // Gc builds no record, so a resource we cannot parse (another
                // tool's namespace) is decided on by its expiry alone.
                let resource = Resource::parse(&record.resource);
                let ctx = Context {
                    resource: resource.as_ref().unwrap_or(&any_resource),
                    now,
                    grace: self.settings.grace,
                    token_floor: 0,
                    others: &[],
                };
                let decision = decide(Some(record), &Request::Gc, &ctx);
                match decision {
                    Decision::Apply(Transition {
                        change: Change::Remove,
                        ..
                    }) => {
                        changes.push(RefChange {
                            name: entry.ref_name.clone(),
                            old: Some(entry.id),
                            new: None,
                        });
                        report.removed.push(record.clone());
                    }
                    _ => report.kept += 1,
                }
            }
            if changes.is_empty() {
                return Ok(report);
            }
            match self.commit(session, &changes, &[], now) {
                Ok(()) => return Ok(report),
                Err(e) => retry.after(e)?,
            }
        }
    }

    /// Reads, decides and writes until the decision is written, needs no
    /// write, or is a refusal.
    fn transact(
        &self,
        resource: &Resource,
        request: &Request,
        clock: &dyn Clock,
    ) -> Result<Done, Error> {
        let ref_name = resource.ref_name();
        let mut retry = Retry::new();
        loop {
            let session = self.open_remote()?;
            let now = clock.now();
            let snapshot = Snapshot::read(&self.repo)?;
            if !in_step(&snapshot, session.as_ref()) {
                retry.after(WriteError::Lost)?;
                continue;
            }
            let entry = snapshot.entry(&ref_name);
            let current = match entry {
                None => None,
                Some(Entry {
                    record: Err(reason),
                    ..
                }) => {
                    return Err(Error::CorruptLock {
                        ref_name,
                        reason: reason.clone(),
                    });
                }
                Some(Entry {
                    record: Ok(record), ..
                }) => Some(record),
            };
            let others: Vec<LockRecord> = snapshot
                .entries
                .iter()
                .filter(|e| e.ref_name != ref_name)
                .filter_map(|e| e.record.as_ref().ok().cloned())
                .collect();
            let ctx = Context {
                resource,
                now,
                grace: self.settings.grace,
                token_floor: snapshot.version.value.highest_token.saturating_add(1),
                others: &others,
            };
            let transition = match decide(current, request, &ctx) {
                Decision::Refused(refusal) => return Err(refusal_error(resource, refusal)),
                Decision::Unchanged(unchanged) => return Ok(Done::Unchanged(unchanged)),
                Decision::Apply(transition) => transition,
            };
            let (lock, changes, objects) =
                self.plan(&snapshot, entry, &ref_name, &transition, now)?;
            match self.commit(session, &changes, &objects, now) {
                Ok(()) => return Ok(Done::Applied(transition.kind, lock)),
                Err(e) => retry.after(e)?,
            }
        }
    }

    /// Writes the objects of one transition and returns the new record, the
    /// ref changes to make as one transaction, and the new objects: the lock
    /// ref expecting exactly what was read and, when the decision looked at
    /// other locks, the version ref expecting the version read before them.
    /// The lock ref comes first: edits are committed in order, so a reader
    /// that sees the new version also sees the new lock.
    fn plan(
        &self,
        snapshot: &Snapshot,
        entry: Option<&Entry>,
        ref_name: &str,
        transition: &Transition,
        now: UnixMillis,
    ) -> Result<(LockRecord, Vec<RefChange>, Vec<ObjectId>), Error> {
        let record = match &transition.change {
            Change::Put(record) => record.clone(),
            Change::Remove => unreachable!("only gc removes, and it plans its own changes"),
        };
        let previous_id = entry.map(|e| e.id);
        let message = commit_message(transition, &record);
        let (commit, mut objects) =
            write_lock_commit(&self.repo, &record, previous_id, &message, now)?;
        let mut changes = vec![RefChange {
            name: ref_name.to_owned(),
            old: previous_id,
            new: Some(commit),
        }];
        if transition.depends_on_others {
            let next = snapshot.version.next(record.fencing_token, &record.nonce);
            let blob = version::write(&self.repo, &next)?;
            objects.push(blob);
            changes.push(RefChange {
                name: VERSION_REF.to_owned(),
                old: snapshot.version.id,
                new: Some(blob),
            });
        }
        Ok((record, changes, objects))
    }

    /// Makes `changes` as one compare-and-swap: on the remote when there is
    /// one (and then on the local mirror), else on the local repository.
    fn commit(
        &self,
        session: Option<Session>,
        changes: &[RefChange],
        objects: &[ObjectId],
        now: UnixMillis,
    ) -> Result<(), WriteError> {
        let Some(session) = session else {
            return self.apply(changes, now);
        };
        let remote = self.remote.as_ref().expect("a session comes from a remote");
        let signature = signature(now);
        let mut time = gix::date::parse::TimeBuf::default();
        session
            .push(&self.repo, changes, objects, signature.to_ref(&mut time))
            .map_err(|e| match e {
                PushOutcome::Lost => WriteError::Lost,
                PushOutcome::Busy(reason) => WriteError::Busy(reason),
                PushOutcome::Failed(reason) => WriteError::Failed(remote.error(reason)),
            })?;
        // The remote is the authority and now holds the changes; the local
        // refs mirror it. If another local process moved them meanwhile,
        // the next command's fetch puts them right.
        match self.apply(changes, now) {
            Ok(()) | Err(WriteError::Lost) => Ok(()),
            Err(other) => Err(other),
        }
    }

    fn apply(&self, changes: &[RefChange], now: UnixMillis) -> Result<(), WriteError> {
        let edits = changes
            .iter()
            .map(RefChange::edit)
            .collect::<Result<Vec<_>, _>>()
            .map_err(WriteError::Failed)?;
        let names: Vec<String> = changes.iter().map(|c| c.name.clone()).collect();
        let signature = signature(now);
        let mut time = gix::date::parse::TimeBuf::default();
        match self
            .repo
            .edit_references_as(edits, Some(signature.to_ref(&mut time)))
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_conflict() || e.is_not_found() => Err(WriteError::Lost),
            Err(e) if e.is_retryable() => Err(WriteError::Busy(self.held_lock_files(&names, &e))),
            Err(e) => Err(WriteError::Failed(Error::repository(
                "updating lock refs",
                e,
            ))),
        }
    }

    /// With a remote: reads its refs, makes the local lock refs what it has,
    /// and returns the open session.
    fn open_remote(&self) -> Result<Option<Session>, Error> {
        Ok(self.connect()?.map(|(session, _)| session))
    }

    /// Opens the authority and brings the local lock refs in line with it.
    /// When the local mirror already is what the remote has (as after our
    /// own last push), nothing is fetched: one connection instead of two.
    fn connect(&self) -> Result<Option<(Session, Fetched)>, Error> {
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
                None => Session::Push(
                    PushSession::connect(&remote.endpoint, &self.repo)
                        .map_err(|e| failed(e.to_string()))?,
                ),
            };
            let state = session
                .state()
                .ok_or_else(|| failed("its lock refs cannot be listed".to_owned()))?;
            if lock_state(&self.repo).as_ref() == Some(&state) {
                return Ok(Some((session, Fetched::default())));
            }
            let fetched = match &session {
                Session::Direct(repo) => mirror(&self.repo, repo, &state),
                Session::Push(_) => {
                    fetch_locks(&self.repo, &remote.url, !state.is_empty()).map_err(|e| e.reason)
                }
            };
            match fetched {
                Ok(fetched) => return Ok(Some((session, fetched))),
                // The remote keeps changing while we fetch (gc deletes
                // refs, others push): a fetch that fails is tried again
                // from a fresh advertisement. A failure that stays is
                // reported, with its causes.
                Err(_) if attempt < FETCH_ATTEMPTS => attempt += 1,
                Err(reason) => return Err(failed(reason)),
            }
        }
    }

    /// Which lock files stood in the way, by name, so that a user can tell
    /// a busy repository from one a killed process left locked.
    fn held_lock_files(&self, ref_names: &[String], error: &gix::Error) -> String {
        let common = self.repo.common_dir();
        let common = std::fs::canonicalize(common).unwrap_or_else(|_| common.to_owned());
        let held: Vec<String> = std::iter::once(common.join("packed-refs.lock"))
            .chain(
                ref_names
                    .iter()
                    .map(|name| common.join(format!("{name}.lock"))),
            )
            .filter(|path| path.exists())
            .map(|path| path.display().to_string())
            .collect();
        if held.is_empty() {
            error.to_string()
        } else {
            format!("{error}; held: {}", held.join(", "))
        }
    }
}

enum Done {
    Applied(TransitionKind, LockRecord),
    Unchanged(Unchanged),
}

/// Counts lost races and paces waits for busy lock files.
struct Retry {
    lost: u32,
    busy_since: Option<Instant>,
    delay: Duration,
}

impl Retry {
    fn new() -> Retry {
        Retry {
            lost: 0,
            busy_since: None,
            delay: Duration::from_millis(2),
        }
    }

    /// Decides whether to go round again after `error`.
    fn after(&mut self, error: WriteError) -> Result<(), Error> {
        match error {
            WriteError::Lost => {
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
            WriteError::Busy(reason) => {
                let since = *self.busy_since.get_or_insert_with(Instant::now);
                let waited = since.elapsed();
                if waited >= BUSY_BUDGET {
                    return Err(Error::Busy {
                        waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
                        reason,
                    });
                }
                // Jitter keeps processes that collided from colliding again.
                let jitter = Duration::from_micros(u64::from(random_u16()) % 2_000);
                std::thread::sleep(self.delay + jitter);
                self.delay = (self.delay * 2).min(Duration::from_millis(50));
                Ok(())
            }
            WriteError::Failed(error) => Err(error),
        }
    }
}

fn refusal_error(resource: &Resource, refusal: Refusal) -> Error {
    match refusal {
        Refusal::Held {
            holder,
            takeable_at,
        } => Error::Held {
            holder,
            takeable_at,
        },
        Refusal::NotOwner { holder } => Error::NotOwner { holder },
        Refusal::Blocked { by } => Error::Blocked {
            resource: resource.to_string(),
            by,
        },
        Refusal::NotHeld => Error::NotHeld {
            resource: resource.to_string(),
        },
        Refusal::OutOfRange => Error::OutOfRange {
            resource: resource.to_string(),
        },
    }
}

fn commit_message(transition: &Transition, record: &LockRecord) -> String {
    let verb = match &transition.kind {
        TransitionKind::Acquire => "acquire".to_owned(),
        TransitionKind::Reacquire => "reacquire".to_owned(),
        TransitionKind::Steal { from } => format!("steal from {from}"),
        TransitionKind::Renew => "renew".to_owned(),
        TransitionKind::Release => "release".to_owned(),
        TransitionKind::Collect => "collect".to_owned(),
    };
    format!(
        "lock {verb}: {}\n\nowner: {}\nfencing-token: {}\nexpires: {}\n",
        record.resource,
        record.owner,
        record.fencing_token,
        record.expires()
    )
}

/// Whether the `git` program can be started: without it, a remote on this
/// machine is opened directly.
fn git_on_path() -> bool {
    std::process::Command::new("git")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok()
}

fn random_nonce() -> String {
    let mut bytes = [0u8; 16];
    fill_random(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_u16() -> u16 {
    let mut bytes = [0u8; 2];
    fill_random(&mut bytes);
    u16::from_le_bytes(bytes)
}

/// The operating system's random source. Without one (a sandbox that
/// forbids it) nonces fall back to the process id and the time, which are
/// unique enough to tell leases apart, not to be secret.
fn fill_random(bytes: &mut [u8]) {
    if getrandom::fill(bytes).is_err() {
        let seed = std::process::id() as u128
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = (seed >> ((i % 16) * 8)) as u8;
        }
    }
}
