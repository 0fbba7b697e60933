//! Instants and durations as the lease machine sees them: whole milliseconds
//! since the Unix epoch, handed in by the caller. Nothing here reads a clock.

use std::fmt;

/// An instant, in milliseconds since 1970-01-01T00:00:00Z. This is the unit
/// of `expires_unix_ms` in every lock record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixMillis(pub u64);

impl UnixMillis {
    /// The instant `millis` later, or `None` past the end of `u64`.
    pub fn checked_add(self, millis: u64) -> Option<UnixMillis> {
        self.0.checked_add(millis).map(UnixMillis)
    }

    /// The instant `millis` later, stopping at the end of time: used where a
    /// later instant only ever makes the answer more cautious (a steal that
    /// can never happen rather than one that happens too early).
    pub fn saturating_add(self, millis: u64) -> UnixMillis {
        UnixMillis(self.0.saturating_add(millis))
    }

    /// The same instant as a jiff timestamp, for display; `None` beyond the
    /// range jiff supports (year 9999).
    pub fn to_timestamp(self) -> Option<jiff::Timestamp> {
        let millis = i64::try_from(self.0).ok()?;
        jiff::Timestamp::from_millisecond(millis).ok()
    }
}

impl fmt::Display for UnixMillis {
    /// `2024-01-15 11:30:00 UTC`, the shape of the README's examples; a raw
    /// millisecond count for instants beyond year 9999.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_timestamp() {
            Some(ts) => write!(f, "{} UTC", ts.strftime("%Y-%m-%d %H:%M:%S")),
            None => write!(f, "{} ms after the Unix epoch", self.0),
        }
    }
}

/// The clock-skew allowance: an expired lock of another actor can be taken
/// over, or collected, only once `now >= expires + grace`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Grace(pub u64);

impl Grace {
    /// No allowance: an expired lock is free the moment it expires.
    pub const NONE: Grace = Grace(0);

    /// The allowance in milliseconds.
    pub fn as_millis(self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_in_utc_like_the_spec() {
        // 2024-01-15T11:30:00Z
        assert_eq!(
            UnixMillis(1_705_318_200_000).to_string(),
            "2024-01-15 11:30:00 UTC"
        );
    }

    #[test]
    fn instants_beyond_year_9999_still_display() {
        assert_eq!(
            UnixMillis(u64::MAX).to_string(),
            format!("{} ms after the Unix epoch", u64::MAX)
        );
    }
}
