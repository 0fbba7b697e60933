//! `--wait`: take the locks once their holders let go. There is no
//! notification in git, so the waiter asks again: quickly at first, then
//! every 100 ms (250 ms through a remote, where each try is a round trip),
//! with jitter so that waiters do not collide, and straight at the instant
//! the holder's lease can be taken over when that comes sooner. Locally,
//! it also looks at the refs of the locks in its way every few
//! milliseconds between tries (a few ref reads, not a decision), and tries
//! at once when one moves: a release is seen within milliseconds, an
//! expiry at once.

use std::time::{Duration, Instant};

use super::error::CliError;
use super::fields::{esc, relative, short};
use super::indicator::Indicator;
use super::signals;
use crate::lease::{ActorId, LockRecord, Resource, Ttl, UnixMillis};
use crate::store::{Acquired, Clock, Error, Locks};

/// The first pause, and the longest, locally and through a remote.
const FIRST_PAUSE: Duration = Duration::from_millis(10);
const LONGEST_PAUSE: Duration = Duration::from_millis(100);
const LONGEST_REMOTE_PAUSE: Duration = Duration::from_millis(250);

/// How often, locally, the refs in the way are looked at between tries.
const GLANCE: Duration = Duration::from_millis(3);

/// How long to wait: not at all (`None`), without a limit (`Some(None)`),
/// or at most this long.
pub type Limit = Option<Option<Duration>>;

/// Reads `--wait` (`None` when it is not given; an empty value when it is
/// given bare).
pub fn limit(text: Option<&str>) -> Result<Limit, CliError> {
    let Some(text) = text else {
        return Ok(None);
    };
    if text.is_empty() {
        return Ok(Some(None));
    }
    duration("--wait", text).map(|d| Some(Some(d)))
}

/// A duration as typed (`5m`, `90s`, `1h30m`, or seconds), for `option`.
pub fn duration(option: &str, text: &str) -> Result<Duration, CliError> {
    let bad = |reason: String| {
        CliError::invalid_args(option, reason, "write a duration such as 30s, 5m or 1h30m")
    };
    let parsed = if text.bytes().all(|b| b.is_ascii_digit()) && !text.is_empty() {
        text.parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| bad(format!("`{}` is too large", crate::lease::echo(text))))?
    } else {
        let signed: jiff::SignedDuration = text
            .parse()
            .map_err(|_| bad(format!("`{}` is not a duration", crate::lease::echo(text))))?;
        Duration::try_from(signed)
            .map_err(|_| bad(format!("`{}` is negative", crate::lease::echo(text))))?
    };
    if parsed.is_zero() {
        return Err(bad("it is zero".to_owned()));
    }
    Ok(parsed)
}

/// Takes the locks on `resources`, waiting as `limit` says for other
/// actors' locks; a live line on a terminal says who is waited for.
#[allow(clippy::too_many_arguments)]
pub fn acquire(
    locks: &Locks,
    actor: &ActorId,
    resources: &[Resource],
    ttl: Ttl,
    clock: &dyn Clock,
    limit: Limit,
    remote: bool,
    show: bool,
) -> Result<Vec<Acquired>, Error> {
    let Some(limit) = limit else {
        return locks.acquire_all(actor, resources, ttl, clock);
    };
    let started = Instant::now();
    let longest = if remote {
        LONGEST_REMOTE_PAUSE
    } else {
        LONGEST_PAUSE
    };
    let mut pause = FIRST_PAUSE;
    let line = Indicator::new(show, Duration::ZERO);
    loop {
        let refusal = match locks.acquire_all(actor, resources, ttl, clock) {
            Err(refusal) if waitable(&refusal) => refusal,
            done => return done,
        };
        let waited = started.elapsed();
        let left = match limit {
            Some(limit) if waited >= limit => return Err(refusal),
            Some(limit) => limit - waited,
            None => Duration::MAX,
        };
        let now = clock.now();
        tell_waiting(&line, &refusal, now, waited);
        let takeable_in =
            takeable_at(&refusal).map(|at| Duration::from_millis(at.0.saturating_sub(now.0)));
        let jitter = Duration::from_micros(u64::from(jitter_u16()) % 5_000);
        let sleep = (pause + jitter)
            .min(takeable_in.unwrap_or(Duration::MAX))
            .min(left);
        if remote {
            doze(sleep, || false);
        } else {
            until_moved(locks, &refusal, sleep);
        }
        // `lock run` keeps a signal that came once it had begun a write:
        // it is not waited on.
        if signals::pending() {
            return Err(refusal);
        }
        pause = (pause * 2).min(longest);
    }
}

/// Sleeps for `most`, or until a ref of a lock in the way of `refusal`
/// moves in the local repository.
fn until_moved(locks: &Locks, refusal: &Error, most: Duration) {
    let in_the_way: Vec<&str> = holders(refusal)
        .iter()
        .map(|h| h.resource.as_str())
        .collect();
    let before = locks.local_values(&in_the_way);
    doze(most, || locks.local_values(&in_the_way) != before);
}

/// Sleeps for `most`, looking every [`GLANCE`] whether `done` or a signal
/// is kept, and then no longer.
fn doze(most: Duration, done: impl Fn() -> bool) {
    let until = Instant::now() + most;
    loop {
        let now = Instant::now();
        if now >= until {
            return;
        }
        std::thread::sleep(GLANCE.min(until - now));
        if done() || signals::pending() {
            return;
        }
    }
}

/// Refusals that another actor's letting go can end.
fn waitable(error: &Error) -> bool {
    match error {
        Error::Held { .. } | Error::Blocked { .. } => true,
        Error::Refused { errors } => errors.iter().all(waitable),
        _ => false,
    }
}

/// The soonest instant a lock in the way can be taken over without its
/// holder, where the refusal says.
fn takeable_at(error: &Error) -> Option<UnixMillis> {
    match error {
        Error::Held { takeable_at, .. } => Some(*takeable_at),
        Error::Refused { errors } => errors.iter().filter_map(takeable_at).min(),
        _ => None,
    }
}

/// The holders a refusal names.
fn holders(error: &Error) -> Vec<&LockRecord> {
    match error {
        Error::Held { holder, .. } => vec![holder],
        Error::Blocked { by, .. } => by.iter().collect(),
        Error::Refused { errors } => errors.iter().flat_map(holders).collect(),
        _ => Vec::new(),
    }
}

/// Who is in the way and how long the wait has been, on the indicator.
fn tell_waiting(line: &Indicator, refusal: &Error, now: UnixMillis, waited: Duration) {
    let held: Vec<String> = holders(refusal)
        .iter()
        .map(|h| {
            format!(
                "{} by {} ({})",
                esc(&h.resource),
                short(&h.owner),
                relative(h.expires(), now)
            )
        })
        .collect();
    line.set_message(format!(
        "waiting for {}; waited {}s",
        held.join(", "),
        waited.as_secs()
    ));
}

fn jitter_u16() -> u16 {
    let mut bytes = [0u8; 2];
    let _ = getrandom::fill(&mut bytes);
    u16::from_le_bytes(bytes)
}
