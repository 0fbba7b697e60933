//! Talking to a git server: the receive-pack protocol a compare-and-swap
//! push needs. This room knows ref names and object ids, not leases.
//!
//! [`protocol`] is the pure wire format (pkt-lines, the ref advertisement,
//! commands, report-status), decoded from byte slices so that fuzzers and
//! unit tests reach all of it.

pub mod connection;
#[cfg(feature = "https")]
mod credentials;
mod dial;
pub mod fetch;
#[cfg(feature = "https")]
pub mod http;
pub mod pack;
mod packets;
pub mod pktline;
pub mod protocol;
pub mod push;
pub mod transport;
mod watchdog;

/// An error with its causes, on one line: libraries' top messages are often
/// only "failed to …"; what happened (a refused connection, an unknown
/// certificate, a server that hung up) is in the causes.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
