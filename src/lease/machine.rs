//! The lease state machine of `docs/PROTOCOL.md` §5, as one pure function.
//!
//! [`decide`] takes what the caller read (the record of one resource and the
//! records of the others), the request and the time, and says what to write
//! and what the ref must still hold for the write to be valid, or why
//! nothing may be written. The caller performs the write as a
//! compare-and-swap on [`Transition::previous`]; when that fails, another
//! process moved first, and the caller reads again and asks again.

use super::actor::ActorId;
use super::conflict::blocking_locks;
use super::record::LockRecord;
use super::resource::Resource;
use super::takeover::Takeover;
use super::time::UnixMillis;
use super::ttl::Ttl;

/// What an actor asks of one resource's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Take the lock for `ttl`. `nonce` names the new lease should one be
    /// created; the caller draws it from a random source.
    Acquire {
        /// Who asks.
        actor: ActorId,
        /// How long the new lease lasts.
        ttl: Ttl,
        /// The new lease's nonce.
        nonce: String,
    },
    /// Extend one's own lease to `now + ttl`.
    Renew {
        /// Who asks.
        actor: ActorId,
        /// The lease lasts until `now + ttl`.
        ttl: Ttl,
    },
    /// End one's own lease.
    Release {
        /// Who asks.
        actor: ActorId,
    },
    /// Remove the record if nobody holds it any more.
    Gc,
}

/// Everything besides the resource's own record that a decision depends on.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The resource being decided on; its ref holds the current record.
    pub resource: &'a Resource,
    /// The time of the decision, from the caller's clock.
    pub now: UnixMillis,
    /// When another actor's lock may be taken over: the grace period, and
    /// whether expiry is read off the clock or timed by this observer.
    pub takeover: Takeover<'a>,
    /// The smallest fencing token a new lease may carry. The caller keeps a
    /// counter that outlives deleted refs (see the module doc of
    /// [`crate::lease`]); 0 or 1 when it has none.
    pub token_floor: u64,
    /// The records of every other lock, read in the same snapshot as the
    /// resource's own record, for the cross-resource conflict check.
    pub others: &'a [LockRecord],
}

/// The state of one resource's lock at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseState<'a> {
    /// No record, or a released one (kept for its history and token).
    Free {
        /// The released record, if the ref still holds one.
        last: Option<&'a LockRecord>,
    },
    /// A lease with `expires_unix_ms > now`.
    Held(&'a LockRecord),
    /// A lease with `expires_unix_ms <= now` that nobody has taken since.
    Expired(&'a LockRecord),
}

impl<'a> LeaseState<'a> {
    /// Classifies the stored record at `now`.
    pub fn of(record: Option<&'a LockRecord>, now: UnixMillis) -> LeaseState<'a> {
        match record {
            None => LeaseState::Free { last: None },
            Some(r) if r.released => LeaseState::Free { last: Some(r) },
            Some(r) if r.is_live(now) => LeaseState::Held(r),
            Some(r) => LeaseState::Expired(r),
        }
    }
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Write this, if the ref still holds what the decision was made on.
    Apply(Transition),
    /// Nothing to write; the request is satisfied or moot as things are.
    Unchanged(Unchanged),
    /// The request is refused; nothing may be written.
    Refused(Refusal),
}

/// One write to a lock ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// What happened, for the caller's report.
    pub kind: TransitionKind,
    /// What the ref must hold for this write to be valid.
    pub previous: Previous,
    /// The new content of the ref.
    pub change: Change,
    /// This write makes a lease live where none of the actor's was, so it
    /// was decided on the records of other resources too (the
    /// cross-resource check). The caller must make the write fail if any of
    /// those records changed since it read them: check and write are one
    /// atomic step or the check means nothing.
    pub depends_on_others: bool,
}

/// The kinds of successful write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransitionKind {
    /// A new lease on a free resource.
    Acquire,
    /// A new lease replacing the actor's own expired one.
    Reacquire,
    /// A new lease replacing another actor's lease, expired past the grace
    /// period. For that actor, the lease was stolen.
    Steal {
        /// The owner of the replaced lease.
        from: String,
    },
    /// The actor's lease, extended; same nonce, same fencing token.
    Renew,
    /// The actor's lease, ended.
    Release,
    /// A released or long-expired record, removed by gc.
    Collect,
}

/// The expected previous value of the ref: the compare of compare-and-swap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Previous {
    /// The ref must not exist.
    Absent,
    /// The ref must still hold exactly this record.
    Record(LockRecord),
}

/// The new value of the ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Point the ref at a commit holding this record.
    Put(LockRecord),
    /// Delete the ref.
    Remove,
}

/// Requests that succeed without a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unchanged {
    /// Acquire of a lock the actor already holds: the same lease stands.
    AlreadyHeld(LockRecord),
    /// Release of a lock nobody holds.
    NothingToRelease,
    /// Gc of a lock that is live or in its grace period.
    Kept(LockRecord),
    /// Gc where there is no record.
    NothingToCollect,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Acquire of a lock another actor holds, or whose expiry is still
    /// within the grace period.
    Held {
        /// The holder's record.
        holder: LockRecord,
        /// When another actor may take the lock over if it is not renewed.
        takeable_at: UnixMillis,
    },
    /// Renew of a lock nobody holds.
    NotHeld,
    /// Renew or release of a lock whose record belongs to another actor. If
    /// the requester held it before, its lease was lost to this holder.
    NotOwner {
        /// The record of the actor it belongs to.
        holder: LockRecord,
    },
    /// A new lease that would conflict with live locks of other actors on
    /// other resources (`docs/PROTOCOL.md` §5).
    Blocked {
        /// The conflicting locks.
        by: Vec<LockRecord>,
    },
    /// The new expiry or fencing token does not fit in 64 bits: the clock
    /// or a stored record is absurd.
    OutOfRange,
}

/// Decides `request` on the resource of `ctx`, whose stored record is
/// `current`. Pure: the same inputs always give the same decision.
pub fn decide(current: Option<&LockRecord>, request: &Request, ctx: &Context<'_>) -> Decision {
    let state = LeaseState::of(current, ctx.now);
    match request {
        Request::Acquire { actor, ttl, nonce } => acquire(state, actor, *ttl, nonce, ctx),
        Request::Renew { actor, ttl } => renew(state, actor, *ttl, ctx),
        Request::Release { actor } => release(state, actor, ctx),
        Request::Gc => gc(state, ctx),
    }
}

fn acquire(
    state: LeaseState<'_>,
    actor: &ActorId,
    ttl: Ttl,
    nonce: &str,
    ctx: &Context<'_>,
) -> Decision {
    let (kind, previous) = match state {
        LeaseState::Free { last } => (TransitionKind::Acquire, last),
        LeaseState::Held(r) if is_own(r, actor) => {
            return Decision::Unchanged(Unchanged::AlreadyHeld(r.clone()));
        }
        LeaseState::Expired(r) if is_own(r, actor) => (TransitionKind::Reacquire, Some(r)),
        LeaseState::Held(r) | LeaseState::Expired(r) => {
            if !ctx.takeover.allows(r, ctx.now) {
                return Decision::Refused(Refusal::Held {
                    holder: r.clone(),
                    takeable_at: ctx.takeover.at(r),
                });
            }
            let from = r.owner.clone();
            (TransitionKind::Steal { from }, Some(r))
        }
    };
    let last_token = previous.map_or(0, |r| r.fencing_token);
    let Some(token) = last_token.checked_add(1).map(|t| t.max(ctx.token_floor)) else {
        return Decision::Refused(Refusal::OutOfRange);
    };
    let Some(expires) = ctx.now.checked_add(ttl.as_millis()) else {
        return Decision::Refused(Refusal::OutOfRange);
    };
    let record = LockRecord {
        owner: actor.to_string(),
        nonce: nonce.to_owned(),
        expires_unix_ms: expires.0,
        resource: ctx.resource.to_string(),
        fencing_token: token,
        acquired_unix_ms: Some(ctx.now.0),
        ttl_ms: Some(ttl.as_millis()),
        released: false,
    };
    make_live(kind, previous, record, actor, ctx)
}

fn renew(state: LeaseState<'_>, actor: &ActorId, ttl: Ttl, ctx: &Context<'_>) -> Decision {
    let current = match state {
        LeaseState::Free { .. } => return Decision::Refused(Refusal::NotHeld),
        LeaseState::Held(r) | LeaseState::Expired(r) if !is_own(r, actor) => {
            return Decision::Refused(Refusal::NotOwner { holder: r.clone() });
        }
        LeaseState::Held(r) | LeaseState::Expired(r) => r,
    };
    let Some(expires) = ctx.now.checked_add(ttl.as_millis()) else {
        return Decision::Refused(Refusal::OutOfRange);
    };
    let record = LockRecord {
        expires_unix_ms: expires.0,
        ttl_ms: Some(ttl.as_millis()),
        ..current.clone()
    };
    if current.is_live(ctx.now) {
        // A live lease blocked every conflicting acquire while it lived, so
        // extending it cannot create a conflict.
        return apply(TransitionKind::Renew, Some(current), Change::Put(record));
    }
    make_live(TransitionKind::Renew, Some(current), record, actor, ctx)
}

fn release(state: LeaseState<'_>, actor: &ActorId, ctx: &Context<'_>) -> Decision {
    match state {
        LeaseState::Free { .. } => Decision::Unchanged(Unchanged::NothingToRelease),
        LeaseState::Held(r) | LeaseState::Expired(r) if !is_own(r, actor) => {
            Decision::Refused(Refusal::NotOwner { holder: r.clone() })
        }
        LeaseState::Held(r) | LeaseState::Expired(r) => {
            let record = LockRecord {
                expires_unix_ms: ctx.now.0,
                released: true,
                ..r.clone()
            };
            apply(TransitionKind::Release, Some(r), Change::Put(record))
        }
    }
}

fn gc(state: LeaseState<'_>, ctx: &Context<'_>) -> Decision {
    match state {
        LeaseState::Free { last: None } => Decision::Unchanged(Unchanged::NothingToCollect),
        LeaseState::Free { last: Some(r) } => {
            apply(TransitionKind::Collect, Some(r), Change::Remove)
        }
        LeaseState::Held(r) | LeaseState::Expired(r) => {
            if ctx.takeover.allows(r, ctx.now) {
                apply(TransitionKind::Collect, Some(r), Change::Remove)
            } else {
                Decision::Unchanged(Unchanged::Kept(r.clone()))
            }
        }
    }
}

/// A write that makes a lease live where none of the actor's was: refused
/// when a conflicting lock of another actor stands on another resource.
fn make_live(
    kind: TransitionKind,
    previous: Option<&LockRecord>,
    record: LockRecord,
    actor: &ActorId,
    ctx: &Context<'_>,
) -> Decision {
    let blocking = blocking_locks(ctx.resource, actor, ctx.others, ctx.now, ctx.takeover);
    if !blocking.is_empty() {
        return Decision::Refused(Refusal::Blocked {
            by: blocking.into_iter().cloned().collect(),
        });
    }
    Decision::Apply(Transition {
        depends_on_others: true,
        ..transition(kind, previous, Change::Put(record))
    })
}

fn apply(kind: TransitionKind, previous: Option<&LockRecord>, change: Change) -> Decision {
    Decision::Apply(transition(kind, previous, change))
}

fn transition(kind: TransitionKind, previous: Option<&LockRecord>, change: Change) -> Transition {
    Transition {
        kind,
        previous: previous.map_or(Previous::Absent, |r| Previous::Record(r.clone())),
        change,
        depends_on_others: false,
    }
}

fn is_own(record: &LockRecord, actor: &ActorId) -> bool {
    record.owner == actor.as_str()
}
