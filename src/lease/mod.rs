//! The pure lease core: resources, TTLs, lock records and the lease state
//! machine. Nothing in this module reads a clock, the disk or the network:
//! time is an argument, and what to write comes back as a value.
//!
//! # Guarantees
//!
//! For one resource, [`decide`] follows the table of `docs/PROTOCOL.md` §5:
//!
//! | request by A | free | held by A | held by B | expired (was A) | expired (was B) |
//! |---|---|---|---|---|---|
//! | acquire | held by A | unchanged (same lease) | refused | new lease | steal, once `now >= expires + grace` |
//! | renew | refused | new expiry | refused | new expiry | refused |
//! | release | no-op | free | refused | free | refused |
//!
//! - A lock is live while `expires_unix_ms > now`; another actor can take it
//!   over, and gc remove it, once `now >= expires_unix_ms + grace`.
//! - A refusal, and an unchanged outcome, write nothing. Renew and release
//!   never write a record that belongs to another actor.
//! - Every write names the value it replaces ([`Previous`]), so the caller
//!   can apply it as a compare-and-swap and re-decide when it loses a race.
//! - A new lease is refused while a conflicting lock of another actor on
//!   another resource is live or in its grace period ([`blocking_locks`]),
//!   so two conflicting live locks of different actors never both come from
//!   this machine.
//!
//! # Fencing tokens
//!
//! Each new lease (acquire of a free lock, re-acquire after expiry, steal)
//! carries `max(previous token + 1, token_floor)`; renew keeps the token.
//! The previous token is that of the record the ref holds, whatever its
//! state, so the sequence cannot go back as long as the ref exists. That is
//! why release does not delete the ref: it writes a *released* record that
//! keeps the token (and records in the lock's history how the lease ended).
//! Gc does delete released and long-expired records, and with them the
//! last token; the caller therefore keeps a counter that outlives every
//! ref, the highest token it ever issued, and passes one more than it as
//! `token_floor`. With that counter, tokens strictly increase per resource
//! over the life of the repository; without it (a floor of 0), they
//! strictly increase per resource for as long as its ref is not collected.
//!
//! Records of other grite tools have no token and read as token 0.

mod actor;
mod conflict;
mod history;
mod machine;
mod placement;
mod record;
mod resource;
mod resource_error;
mod scope;
mod shard;
mod takeover;
mod time;
mod ttl;

pub use actor::{ACTOR_ID_LEN, ActorId, ActorIdError};
pub use conflict::{blocking_locks, live_conflicts, locks_in_the_way};
pub use history::Event;
pub use machine::{
    Change, Context, Decision, LeaseState, Previous, Refusal, Request, Transition, TransitionKind,
    Unchanged, decide,
};
pub use record::{LockRecord, MAX_RECORD_LEN, RecordError};
pub use resource::{
    LOCK_REF_PREFIX, MAX_RESOURCE_LEN, Namespace, REF_HASH_LEN, Resource, ResourceError,
    ref_hash_of, ref_hash_of_key, ref_key, ref_key_of,
};
pub use scope::{Scope, solitary};
pub use shard::{Shards, VERSION_SHARDS};
pub use takeover::{Observations, Sighting, Takeover};
pub use time::{Grace, UnixMillis};
pub use ttl::{MAX_TTL_MILLIS, MIN_TTL_MILLIS, Ttl, TtlError};

/// What an error message shows of a value someone typed or stored: the
/// value itself up to 64 characters, else its start and its length, so that
/// a huge input does not come back whole.
pub fn echo(text: &str) -> String {
    const SHOWN: usize = 64;
    match text.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{}… ({} bytes)", &text[..end], text.len()),
        None => text.to_owned(),
    }
}
