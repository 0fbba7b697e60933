//! [`Locks`]: the lease machine applied to a git repository.

use std::cell::RefCell;
use std::path::Path;

use super::Error;
use super::authority::RemoteTarget;
use super::clock::Clock;
use super::config::{self, Settings};
use super::notice::Notice;
use super::random;
use super::report::{Acquired, Acquisition, Progress, Released};
use super::repository;
use crate::lease::{ActorId, LockRecord, Request, Resource, Scope, TransitionKind, Ttl, Unchanged};
use crate::remote::fetch::Fetched;
use crate::remote::transport::{Endpoint, redact};

/// Memory for decoded delta bases when reading packed lock objects.
const PACK_CACHE_BYTES: usize = 32 * 1024 * 1024;

/// The lock engine of one repository.
pub struct Locks {
    pub(super) repo: gix::Repository,
    pub(super) settings: Settings,
    pub(super) nonces: Box<dyn Fn() -> String>,
    pub(super) remote: Option<RemoteTarget>,
    notices: RefCell<Vec<Notice>>,
    progress: Option<Box<dyn Fn(Progress)>>,
}

impl Locks {
    /// Opens the repository that contains `path` (a worktree, a
    /// subdirectory of one, or a bare repository) and reads its lock
    /// settings.
    pub fn open(path: impl AsRef<Path>) -> Result<Locks, Error> {
        let mut repo = repository::discover(path.as_ref())?;
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
        let notices = settings
            .mistyped
            .iter()
            .map(|(key, nearest)| Notice::MistypedSetting {
                key: key.clone(),
                nearest,
            })
            .collect();
        Ok(Locks {
            repo,
            settings,
            nonces: Box::new(random::random_nonce),
            remote: None,
            notices: RefCell::new(notices),
            progress: None,
        })
    }

    /// Makes the remote `name_or_url` (a configured remote's name, a URL or
    /// a path) the authority: every operation reads the locks from it and
    /// writes them back with a compare-and-swap push, then mirrors the
    /// result in the local refs.
    pub fn with_remote(mut self, name_or_url: &str) -> Result<Locks, Error> {
        let bad = |reason: String| Error::BadRemote {
            remote: redact(&crate::lease::echo(name_or_url)),
            reason,
        };
        let (remote, given) = match self.repo.find_remote(name_or_url) {
            Ok(remote) => {
                let config = self.repo.config_snapshot();
                let url = ["pushurl", "url"]
                    .iter()
                    .find_map(|key| config.string(format!("remote.{name_or_url}.{key}").as_str()))
                    .map(|u| u.to_string());
                (remote, url)
            }
            Err(_) if looks_like_a_name(name_or_url) => {
                let names: Vec<String> = self
                    .repo
                    .remote_names()
                    .iter()
                    .map(|n| n.to_string())
                    .collect();
                return Err(bad(if names.is_empty() {
                    "no remote has that name, and the repository has none configured (`git remote add NAME URL`); or give a URL or a path".to_owned()
                } else {
                    format!(
                        "no remote has that name; the configured remotes are {}; or give a URL or a path",
                        names.join(", ")
                    )
                }));
            }
            // A URL or path, read as git would use it, url.<base>.insteadOf
            // applied; one gix cannot read is told why in our words.
            Err(_) => {
                let remote = self.repo.remote_at(name_or_url).map_err(|e| {
                    bad(match Endpoint::parse(name_or_url) {
                        Err(ours) => ours.to_string(),
                        Ok(_) => crate::remote::error_chain(&e),
                    })
                })?;
                (remote, Some(name_or_url.to_owned()))
            }
        };
        // As `git push` does: pushInsteadOf (else insteadOf) applied. A URL
        // no rule rewrote is kept as written: gix would spell it anew
        // (an IPv6 host percent-encoded, say).
        let rewritten = remote
            .url(gix::remote::Direction::Push)
            .ok_or_else(|| bad("it has no URL".to_owned()))?;
        let unchanged = given.as_deref().filter(|given| {
            self.repo
                .remote_at_without_url_rewrite(*given)
                .ok()
                .and_then(|r| r.url(gix::remote::Direction::Push).cloned())
                .as_ref()
                == Some(rewritten)
        });
        let url = match unchanged {
            Some(given) => given.to_owned(),
            None => rewritten.to_bstring().to_string(),
        };
        let endpoint = Endpoint::parse(&url).map_err(|e| bad(e.to_string()))?;
        let direct = match &endpoint {
            Endpoint::Local(path) if !repository::git_on_path() => Some(path.clone()),
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
    pub fn sync(&self, clock: &dyn Clock) -> Result<Fetched, Error> {
        Ok(self.read(clock.now(), &Scope::everything())?.followed)
    }

    /// Replaces the source of lease nonces (random by default): for
    /// reproducible fixtures and tests.
    pub fn with_nonces(mut self, nonces: impl Fn() -> String + 'static) -> Locks {
        self.nonces = Box::new(nonces);
        self
    }

    /// Tells `progress` how far reads of many locks and large removals
    /// have come.
    pub fn with_progress(mut self, progress: impl Fn(Progress) + 'static) -> Locks {
        self.progress = Some(Box::new(progress));
        self
    }

    pub(super) fn tell(&self, progress: Progress) {
        if let Some(tell) = &self.progress {
            tell(progress);
        }
    }

    /// The settings read from `.git/grite/config.toml`.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// What the operations so far had to tell besides their results (see
    /// [`Notice`]); each is returned once.
    pub fn take_notices(&self) -> Vec<Notice> {
        self.notices.take()
    }

    /// Keeps `notice` for [`Locks::take_notices`], once.
    pub(super) fn notify(&self, notice: Notice) {
        let mut notices = self.notices.borrow_mut();
        if !notices.contains(&notice) {
            notices.push(notice);
        }
    }

    /// Takes the lock on `resource` for `ttl`, or says who holds it.
    pub fn acquire(
        &self,
        actor: &ActorId,
        resource: &Resource,
        ttl: Ttl,
        clock: &dyn Clock,
    ) -> Result<Acquired, Error> {
        Ok(first(self.acquire_all(
            actor,
            std::slice::from_ref(resource),
            ttl,
            clock,
        )?))
    }

    /// Takes the locks on all of `resources` for `ttl` together, or none of
    /// them: one transaction, or one atomic push. A refusal names every
    /// resource refused and its holder.
    pub fn acquire_all(
        &self,
        actor: &ActorId,
        resources: &[Resource],
        ttl: Ttl,
        clock: &dyn Clock,
    ) -> Result<Vec<Acquired>, Error> {
        let requests: Vec<(Resource, Request)> = resources
            .iter()
            .map(|resource| {
                let request = Request::Acquire {
                    actor: actor.clone(),
                    ttl,
                    nonce: (self.nonces)(),
                };
                (resource.clone(), request)
            })
            .collect();
        let outcomes = self.transact(&requests, clock)?;
        Ok(outcomes
            .into_iter()
            .map(|done| match done {
                Done::Applied(kind, lock) => {
                    let how = match kind {
                        TransitionKind::Steal { from } => Acquisition::Stolen { from },
                        TransitionKind::Reacquire => Acquisition::Reacquired,
                        _ => Acquisition::New,
                    };
                    Acquired { lock, how }
                }
                Done::Unchanged(Unchanged::AlreadyHeld(lock)) => Acquired {
                    lock,
                    how: Acquisition::AlreadyHeld,
                },
                Done::Unchanged(other) => unreachable!("acquire never ends as {other:?}"),
            })
            .collect())
    }

    /// Extends the actor's lease on `resource` to `now + ttl`.
    pub fn renew(
        &self,
        actor: &ActorId,
        resource: &Resource,
        ttl: Ttl,
        clock: &dyn Clock,
    ) -> Result<LockRecord, Error> {
        Ok(first(self.renew_all(
            actor,
            std::slice::from_ref(resource),
            ttl,
            clock,
        )?))
    }

    /// Extends the actor's leases on all of `resources` together, or none.
    pub fn renew_all(
        &self,
        actor: &ActorId,
        resources: &[Resource],
        ttl: Ttl,
        clock: &dyn Clock,
    ) -> Result<Vec<LockRecord>, Error> {
        let request = Request::Renew {
            actor: actor.clone(),
            ttl,
        };
        Ok(self
            .transact(&for_each(resources, &request), clock)?
            .into_iter()
            .map(|done| match done {
                Done::Applied(_, lock) => lock,
                Done::Unchanged(other) => unreachable!("renew never ends as {other:?}"),
            })
            .collect())
    }

    /// Ends the actor's lease on `resource`.
    pub fn release(
        &self,
        actor: &ActorId,
        resource: &Resource,
        clock: &dyn Clock,
    ) -> Result<Released, Error> {
        Ok(first(self.release_all(
            actor,
            std::slice::from_ref(resource),
            clock,
        )?))
    }

    /// Ends the actor's leases on all of `resources` together, or none.
    pub fn release_all(
        &self,
        actor: &ActorId,
        resources: &[Resource],
        clock: &dyn Clock,
    ) -> Result<Vec<Released>, Error> {
        let request = Request::Release {
            actor: actor.clone(),
        };
        Ok(self
            .transact(&for_each(resources, &request), clock)?
            .into_iter()
            .map(|done| match done {
                Done::Applied(_, lock) => Released::Released(lock),
                Done::Unchanged(_) => Released::NotHeld,
            })
            .collect())
    }
}

/// How a transition ended without an error.
pub(super) enum Done {
    Applied(TransitionKind, LockRecord),
    Unchanged(Unchanged),
}

/// The same `request` for each of `resources`.
fn for_each(resources: &[Resource], request: &Request) -> Vec<(Resource, Request)> {
    resources
        .iter()
        .map(|r| (r.clone(), request.clone()))
        .collect()
}

/// Whether `text` can only be meant as the name of a remote: no path or URL
/// punctuation, and nothing of that name here. git would take it for a
/// relative path and fail with "does not appear to be a git repository".
fn looks_like_a_name(text: &str) -> bool {
    !text.contains(['/', ':', '\\', '.']) && !Path::new(text).exists()
}

/// The one outcome of a request for one resource.
fn first<T>(outcomes: Vec<T>) -> T {
    outcomes
        .into_iter()
        .next()
        .expect("a request for one resource has one outcome")
}
