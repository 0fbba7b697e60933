//! Ref transactions and the end of the process.
//!
//! A ref transaction commits its refs one rename at a time. A termination
//! signal whose handler deleted the remaining lock files between two
//! renames would leave a lock ref moved and the version ref not, with
//! nothing left to show it: a conflicting writer that read the old version
//! could then slip past the cross-resource check. So every transaction
//! holds this gate from its first lock file to its last rename, and
//! whoever ends the process on a signal takes the gate first: a signal
//! waits for the transaction in flight (milliseconds), and none starts
//! after it. (A SIGKILL cannot be caught; it leaves the lock files in
//! place, which stops every conflicting write until a person removes them,
//! and such a lock file is reported as stale by its age.)
//!
//! The gate also counts the writes begun (ref transactions, and pushes to
//! a remote, which begin under it): a handler holding it can tell whether
//! anything this process wrote may have changed a ref since a moment it
//! noted, knowing that no write begins while it holds the gate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

static GATE: Mutex<()> = Mutex::new(());

/// Writes begun by this process.
static BEGUN: AtomicU64 = AtomicU64::new(0);

fn lock() -> MutexGuard<'static, ()> {
    GATE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Held for the duration of one ref transaction, which it counts as begun.
pub(crate) fn transaction() -> MutexGuard<'static, ()> {
    let guard = lock();
    BEGUN.fetch_add(1, Ordering::SeqCst);
    guard
}

/// Counts a push to a remote as begun, through the gate: once a handler
/// holds it, no push begins.
pub(crate) fn push_begins() {
    drop(transaction());
}

/// How many writes this process has begun.
pub fn writes_begun() -> u64 {
    BEGUN.load(Ordering::SeqCst)
}

/// Waits for the ref transaction in flight, if any, and keeps every other
/// one (and every push) from starting for as long as the guard lives: for
/// a signal handler that is about to end the process.
pub fn stop_ref_writes() -> MutexGuard<'static, ()> {
    lock()
}
