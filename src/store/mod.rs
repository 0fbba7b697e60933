//! The git backend: the lease machine's decisions applied to a repository
//! with gitoxide, every ref edit a compare-and-swap.
//!
//! # Layout (`docs/PROTOCOL.md` §3)
//!
//! - `refs/grite/locks/<16 hex>`: one ref per resource, pointing at a commit
//!   whose tree holds `lock.json` and whose parent is the ref's previous
//!   commit. Release writes a released record; gc deletes the ref.
//! - `refs/grite/lock-versions/00` to `3f`: the version shards, each a
//!   commit without parents whose tree holds `version.json`: a counter,
//!   the highest fencing token issued on the shard, and the nonce of its
//!   writer. `refs/grite/lock-version`, the single version of earlier
//!   versions, becomes a marker they cannot read (see `version.rs`).
//!
//! # Why every write is safe under concurrency
//!
//! Each operation reads the version shards of its resources, then the lock
//! refs its decision depends on (the names of all of them are listed, and
//! the records of those whose resource conflicts with the request are
//! read; a release or renewal reads its own ref alone, and no shard: see
//! `snapshot.rs`), decides with [`crate::lease::decide`], and writes one
//! ref transaction:
//!
//! - The lock ref's edit expects exactly the commit the decision was made
//!   on, or that the ref does not exist. Two processes that decided on the
//!   same state cannot both write: gix locks the ref and checks the
//!   expectation, and the loser gets a conflict. A lost compare-and-swap is
//!   an expected outcome: the loser reads again and decides again, and
//!   either succeeds or refuses naming the winner.
//! - A write that makes a lease live was decided on the other resources'
//!   locks as well (the cross-resource conflict check). Its transaction
//!   also advances the version shards of its resource, expecting the
//!   versions read *before* the lock refs were listed. Conflicting
//!   resources share a shard ([`crate::lease::Shards`]), so any
//!   conflicting lease made live after that read moved one of them, and
//!   the write fails and is decided again on a fresh read: check and write
//!   are one atomic step. Release, gc and renewal of a live lease only
//!   ever remove or keep liveness, so they do not need it.
//! - Within a transaction the lock ref is committed before the shards
//!   (gix commits edits in order, after locking and checking them all), so
//!   a reader that sees a new version sees the new lock too.
//! - A version blob's content is unique to its writer (the new lease's
//!   nonce) because gix accepts a create whose ref already holds exactly the
//!   new value.
//! - Ref lock files held by another process (`<ref>.lock`, `packed-refs.lock`)
//!   are waited for with jittered backoff, for up to five seconds in all;
//!   one older than any live process holds one is reported at once, with
//!   the command that removes it.
//! - Gc carries the token of each record it deletes into its shards, in
//!   the same transaction, so the floor of future tokens never drops below
//!   a token handed out.
//!
//! # With a remote as the authority
//!
//! [`Locks::with_remote`] makes the same decisions on the remote's state:
//! each attempt opens a receive-pack session ([`crate::remote`]), fetches
//! the lock refs it advertises into the local refs, checks that they are
//! exactly what it advertised, decides, and pushes the same ref changes as
//! commands expecting the advertised values, atomically. A stale
//! expectation is a lost race, read and decided again; a refusal after
//! which the remote's refs are still what the push expected is not a lost
//! race but a ref the remote cannot lock, waited for like a busy one. Once
//! the remote accepted a change the operation has succeeded; a local
//! mirror that cannot follow is a [`Notice`], never a failure.
//!
//! A process killed at any instant leaves each ref as it was or as it was
//! to be: objects are written before any ref moves, and each ref moves by
//! an atomic rename. A termination signal waits for the transaction in
//! flight (see `gate`). A SIGKILL between the two renames of one
//! transaction leaves the new lock in place with its shard unmoved, which
//! is a state a successful transaction also passes through, and leaves the
//! shard's `.lock` file behind: later writes that need that shard stop at
//! once, naming the stale file and the command that removes it. The new
//! lock's token stays above the floor through its own ref, and gc carries
//! it into the shard before deleting that ref.

mod attempt;
mod authority;
mod cache_file;
mod changes;
mod clock;
mod config;
mod config_file;
mod error;
mod gate;
mod gc;
mod history;
mod lockfiles;
mod locks;
mod loose_object;
mod mirror;
mod name_index;
mod notice;
mod objects;
mod observed;
mod packed_refs;
mod packed_summary;
mod queries;
mod random;
mod record_cache;
mod ref_file;
mod ref_names;
mod ref_update;
mod report;
mod repository;
mod setup;
mod snapshot;
mod transition;
mod upkeep;
mod version;

pub use clock::{Clock, FixedClock, SystemClock};
pub use config::{DEFAULT_GRACE_MS, KEYS as SETTING_KEYS, LockPolicy, Settings, StealRule};
pub use error::{Error, Spot};
pub use gate::{stop_ref_writes, writes_begun};
pub use history::LogEntry;
pub use lockfiles::{LockFile, STALE_AFTER, shell_quote};
pub use locks::Locks;
pub use notice::Notice;
pub use objects::LOCK_FILE;
pub use report::{Acquired, Acquisition, GcReport, Progress, Released, Status, Unreadable};
pub use version::{VERSION_REF, VERSION_SHARD_PREFIX, shard_ref};
