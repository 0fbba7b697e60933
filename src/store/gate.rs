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

use std::sync::{Mutex, MutexGuard, PoisonError};

static GATE: Mutex<()> = Mutex::new(());

/// Held for the duration of one ref transaction.
pub(crate) fn transaction() -> MutexGuard<'static, ()> {
    GATE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Waits for the ref transaction in flight, if any, and keeps every other
/// one from starting for as long as the guard lives: for a signal handler
/// that is about to end the process.
pub fn stop_ref_writes() -> MutexGuard<'static, ()> {
    transaction()
}
