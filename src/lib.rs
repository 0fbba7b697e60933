//! grite-locks: lease locks kept as git refs.
//!
//! [`lease`] is the pure core: resources, TTLs, lock records and the lease
//! state machine, with time passed in and no I/O. [`store`] applies it to a
//! git repository with gitoxide; [`Locks`] is the type to embed.

pub mod cli;
pub mod lease;
pub mod store;

pub use store::{Clock, Error, Locks, SystemClock};

#[doc(hidden)]
pub mod fuzzing;
