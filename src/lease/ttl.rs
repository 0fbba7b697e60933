//! Lease lengths: `30s`, `15m`, `1h`, `2h30m` or a bare number of seconds.
//!
//! Units are parsed by jiff's "friendly" duration format (which also takes
//! `2h 30m`, `90 minutes`, `1.5h` and ISO 8601 `PT30M`); only the bare number
//! is handled here, as seconds. Precision is the millisecond, the unit of
//! lock records; anything finer is dropped.

use std::fmt;

/// Shortest lease accepted: below a second a lease expires before a
/// round trip to a remote can complete.
pub const MIN_TTL_MILLIS: u64 = 1_000;

/// Longest lease accepted: seven days. A lease exists so that a crashed
/// holder stops blocking others; a longer one defeats that.
pub const MAX_TTL_MILLIS: u64 = 7 * 24 * 60 * 60 * 1_000;

const FORMS: &str = "write it as `30s`, `15m`, `1h`, `2h30m`, `1d` or a number of seconds";

/// A validated lease length, between [`MIN_TTL_MILLIS`] and [`MAX_TTL_MILLIS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ttl(u64);

/// Why a TTL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TtlError {
    /// Nothing was given.
    #[error("the TTL is empty; {FORMS}")]
    Empty,
    #[error("`{input}` is not a duration; {FORMS}")]
    /// Not a duration.
    Malformed {
        /// The text as given.
        input: String,
    },
    #[error("the TTL `{input}` is negative; a lease must last a positive time ({FORMS})")]
    /// Below zero.
    Negative {
        /// The text as given.
        input: String,
    },
    #[error("the TTL `{input}` is zero; a lease must last at least 1s")]
    /// Exactly zero.
    Zero {
        /// The text as given.
        input: String,
    },
    #[error("the TTL `{input}` is shorter than the minimum of 1s")]
    /// Below [`MIN_TTL_MILLIS`].
    TooShort {
        /// The text as given.
        input: String,
    },
    #[error(
        "the TTL `{input}` is longer than the maximum of 7d (168h); take a shorter lease and renew it while you work"
    )]
    /// Above [`MAX_TTL_MILLIS`], or too large to represent.
    TooLong {
        /// The text as given.
        input: String,
    },
}

impl TtlError {
    /// What to say under the TTL that was typed, which as a whole is to
    /// blame: a duration has no smaller part that is wrong on its own.
    pub fn blame(&self) -> Option<&'static str> {
        match self {
            TtlError::Empty => None,
            TtlError::Malformed { .. } => Some("not a duration"),
            TtlError::Negative { .. } => Some("below zero"),
            TtlError::Zero { .. } => Some("zero"),
            TtlError::TooShort { .. } => Some("under 1s"),
            TtlError::TooLong { .. } => Some("over 7d"),
        }
    }
}

impl Ttl {
    /// Parses a TTL as typed by a user.
    pub fn parse(input: &str) -> Result<Ttl, TtlError> {
        if input.is_empty() {
            return Err(TtlError::Empty);
        }
        let millis = if input.bytes().all(|b| b.is_ascii_digit()) {
            // Bare seconds. Anything that does not fit in u64 seconds is far
            // beyond the maximum anyway.
            match input.parse::<u64>() {
                Ok(secs) => secs.checked_mul(1_000),
                Err(_) => None,
            }
        } else {
            Some(parse_with_units(input)?)
        };
        let Some(millis) = millis else {
            return Err(TtlError::TooLong {
                input: super::echo(input),
            });
        };
        Ttl::from_millis_checked(millis, input)
    }

    /// A TTL of exactly `millis`, checked against the same bounds as parsing.
    pub fn from_millis(millis: u64) -> Result<Ttl, TtlError> {
        Ttl::from_millis_checked(millis, &format!("{millis}ms"))
    }

    fn from_millis_checked(millis: u64, input: &str) -> Result<Ttl, TtlError> {
        let input = super::echo(input);
        match millis {
            0 => Err(TtlError::Zero { input }),
            m if m < MIN_TTL_MILLIS => Err(TtlError::TooShort { input }),
            m if m > MAX_TTL_MILLIS => Err(TtlError::TooLong { input }),
            m => Ok(Ttl(m)),
        }
    }

    /// The length in milliseconds.
    pub fn as_millis(self) -> u64 {
        self.0
    }
}

/// Parses a duration with units into whole milliseconds.
fn parse_with_units(input: &str) -> Result<u64, TtlError> {
    let duration = input
        .parse::<jiff::SignedDuration>()
        .or_else(|_| days(input))
        .map_err(|_| {
            // A leading sign that jiff accepted would have parsed; one it did not
            // is still best reported as a sign problem.
            if input.starts_with('-') {
                TtlError::Negative {
                    input: super::echo(input),
                }
            } else {
                TtlError::Malformed {
                    input: super::echo(input),
                }
            }
        })?;
    if duration.is_negative() {
        return Err(TtlError::Negative {
            input: super::echo(input),
        });
    }
    u64::try_from(duration.as_millis()).map_err(|_| TtlError::TooLong {
        input: super::echo(input),
    })
}

/// A duration with days (`1d`, `2d 12h`), a day being 24 hours: a lease is
/// a length of time, not a span of the calendar.
fn days(input: &str) -> Result<jiff::SignedDuration, ()> {
    use jiff::{SpanTotal, Unit};
    let span: jiff::Span = input.parse().map_err(drop)?;
    let millis = span
        .total(SpanTotal::from(Unit::Millisecond).days_are_24_hours())
        .map_err(drop)?;
    if !millis.is_finite() || millis.abs() > 1e15 {
        return Err(());
    }
    Ok(jiff::SignedDuration::from_millis(millis as i64))
}

impl fmt::Display for Ttl {
    /// The friendly form, `2h 30m`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = i64::try_from(self.0).expect("a TTL is at most seven days");
        write!(f, "{:#}", jiff::SignedDuration::from_millis(millis))
    }
}

impl std::str::FromStr for Ttl {
    type Err = TtlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ttl::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_forms_of_the_spec() {
        assert_eq!(Ttl::parse("30s").map(Ttl::as_millis), Ok(30_000));
        assert_eq!(Ttl::parse("15m").map(Ttl::as_millis), Ok(900_000));
        assert_eq!(Ttl::parse("1h").map(Ttl::as_millis), Ok(3_600_000));
        assert_eq!(Ttl::parse("2h30m").map(Ttl::as_millis), Ok(9_000_000));
        assert_eq!(Ttl::parse("45").map(Ttl::as_millis), Ok(45_000));
    }

    #[test]
    fn days_are_24_hours_up_to_the_week_the_maximum_is() {
        assert_eq!(Ttl::parse("1d").map(Ttl::as_millis), Ok(86_400_000));
        assert_eq!(Ttl::parse("2d 12h").map(Ttl::as_millis), Ok(216_000_000));
        assert_eq!(Ttl::parse("7d").map(Ttl::as_millis), Ok(MAX_TTL_MILLIS));
        assert!(matches!(Ttl::parse("8d"), Err(TtlError::TooLong { .. })));
        assert!(matches!(Ttl::parse("1mo"), Err(TtlError::Malformed { .. })));
    }

    #[test]
    fn bounds_are_inclusive() {
        assert!(Ttl::parse("1s").is_ok());
        assert!(Ttl::parse("168h").is_ok());
        assert!(matches!(
            Ttl::parse("168h 1ms"),
            Err(TtlError::TooLong { .. })
        ));
        assert!(matches!(
            Ttl::parse("999ms"),
            Err(TtlError::TooShort { .. })
        ));
    }

    #[test]
    fn huge_values_are_too_long_not_overflow() {
        for input in [
            "99999999999h",
            "18446744073709551615",
            "99999999999999999999999",
        ] {
            assert!(
                matches!(Ttl::parse(input), Err(TtlError::TooLong { .. })),
                "{input}"
            );
        }
    }

    #[test]
    fn a_huge_input_is_not_echoed_whole() {
        let input = "9".repeat(100_000) + "x";
        let message = Ttl::parse(&input).expect_err("malformed").to_string();
        assert!(message.len() < 400, "{} bytes", message.len());
        assert!(message.contains("(100001 bytes)"), "{message}");
    }

    #[test]
    fn display_round_trips() {
        for input in ["30s", "2h30m", "90", "1.5h"] {
            let ttl = Ttl::parse(input).expect("valid");
            assert_eq!(Ttl::parse(&ttl.to_string()), Ok(ttl), "{input} -> {ttl}");
        }
    }
}
