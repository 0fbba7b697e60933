//! grite-locks: lease locks kept as git refs.
//!
//! [`lease`] is the pure core: resources, TTLs, lock records and the lease
//! state machine, with time passed in and no I/O.

pub mod lease;

#[doc(hidden)]
pub mod fuzzing;
