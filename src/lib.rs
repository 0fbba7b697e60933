#![warn(missing_docs)]
//! grite-locks: lease locks kept as git refs.
//!
//! Coding agents and people working on one repository claim issues, files
//! and repository-wide operations with leases that live under
//! `refs/grite/locks/`, shared through the git remote they already use.
//!
//! - [`lease`] is the pure core: resources, TTLs, lock records and the lease
//!   state machine, with time passed in and no I/O.
//! - [`store`] applies it to a git repository with gitoxide, every ref edit
//!   a compare-and-swap; [`Locks`] is the type to embed.
//! - The `grite` binary is a thin command line over [`Locks`].
//!
//! # Example
//!
//! ```
//! use grite_locks::lease::{ActorId, Resource, Ttl};
//! use grite_locks::store::Acquisition;
//! use grite_locks::{Error, Locks, SystemClock};
//!
//! # let dir = tempfile::tempdir()?;
//! # std::process::Command::new("git").args(["init", "-q"]).arg(dir.path()).status()?;
//! let locks = Locks::open(dir.path())?;
//! let me = ActorId::parse("e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0")?;
//! let issue = Resource::parse("issue:8057324b")?;
//!
//! let granted = locks.acquire(&me, &issue, Ttl::parse("30m")?, &SystemClock)?;
//! assert_eq!(granted.how, Acquisition::New);
//! // Hand the fencing token to the protected work, so it can reject a
//! // holder whose lease was lost.
//! assert_eq!(granted.lock.fencing_token, 1);
//!
//! // Anyone else is refused and told who holds the lock.
//! let other = ActorId::parse("0123456789abcdef0123456789abcdef")?;
//! match locks.acquire(&other, &issue, Ttl::parse("5m")?, &SystemClock) {
//!     Err(Error::Held { holder, .. }) => assert_eq!(holder.owner, me.as_str()),
//!     unexpected => panic!("expected a conflict, got {unexpected:?}"),
//! }
//!
//! locks.renew(&me, &issue, Ttl::parse("30m")?, &SystemClock)?;
//! locks.release(&me, &issue, &SystemClock)?;
//! assert!(locks.status(&SystemClock)?.locks.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod cli;
pub mod lease;
pub mod remote;
pub mod store;

pub use store::{Clock, Error, Locks, SystemClock};

#[doc(hidden)]
pub mod fuzzing;
