//! Where time comes from. The lease machine takes `now` as an argument; this
//! is the edge that reads it.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::lease::UnixMillis;

/// A source of the current time.
pub trait Clock {
    /// Now, in milliseconds since the Unix epoch.
    fn now(&self) -> UnixMillis;
}

/// The system's wall clock, which every actor shares through the lock
/// records' `expires_unix_ms`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixMillis {
        // A clock set before 1970 reads as the epoch: every lock then looks
        // live, which errs on the safe side.
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        UnixMillis(millis)
    }
}

/// A clock that always says the same instant: for tests, fixtures and
/// replaying a decision.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub UnixMillis);

impl Clock for FixedClock {
    fn now(&self) -> UnixMillis {
        self.0
    }
}
