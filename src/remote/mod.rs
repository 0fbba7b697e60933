//! Talking to a git server: the receive-pack protocol a compare-and-swap
//! push needs. This room knows ref names and object ids, not leases.
//!
//! [`protocol`] is the pure wire format (pkt-lines, the ref advertisement,
//! commands, report-status), decoded from byte slices so that fuzzers and
//! unit tests reach all of it.

pub mod fetch;
#[cfg(feature = "https")]
pub mod http;
pub mod pack;
pub mod protocol;
pub mod push;
pub mod transport;
