//! Repository settings in `.git/grite/config.toml`, in the common git
//! directory so that every worktree shares them (`docs/PROTOCOL.md` §1). Keys this
//! tool does not know are kept: other grite tools keep settings there too.

use std::io::Read as _;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::Error;
use super::error::Spot;
use crate::lease::{ActorId, Grace};

/// What `grite lock check` does when another actor holds a conflicting lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockPolicy {
    /// Nothing.
    Off,
    /// Print a warning and succeed.
    #[default]
    Warn,
    /// Refuse with exit code 4.
    Require,
}

/// How a lease of another actor is judged expired: `lock_steal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StealRule {
    /// By the clock: `now >= expires + grace` on the taker's clock.
    #[default]
    Clock,
    /// By observation: once the taker has seen the lease unchanged for its
    /// whole length, plus the grace, on its own clock.
    Observed,
}

/// The lock settings, with their defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// What `grite lock check` does about other actors' locks.
    pub lock_policy: LockPolicy,
    /// `default_actor`, if set.
    pub default_actor: Option<ActorId>,
    /// Clock-skew allowance before another actor's expired lock is taken.
    pub grace: Grace,
    /// `lock_steal`: how another actor's lease is judged expired.
    pub steal: StealRule,
    /// `lock_remote`: the remote that is the authority, if any.
    pub remote: Option<String>,
    /// `lock_remote_timeout`: the longest wait for the remote at a time
    /// (connecting, or for the next bytes of a reply).
    pub remote_timeout: Duration,
    /// Keys that are probably misspellings of ours, with the key each
    /// probably means.
    pub mistyped: Vec<(String, &'static str)>,
}

/// The default grace period: a few seconds covers the clock skew of
/// machines that run NTP, and costs a waiting acquirer little.
pub const DEFAULT_GRACE_MS: u64 = 5_000;

/// The default of `lock_remote_timeout`: far longer than a lock push takes
/// (tens of milliseconds), short enough that a stalled server is noticed.
pub const DEFAULT_REMOTE_TIMEOUT: Duration = Duration::from_secs(30);

/// The keys as written, each with where its value is in the file, so that
/// a bad value can be shown in place.
#[derive(Debug, Default, Deserialize)]
struct Raw {
    lock_policy: Option<LockPolicy>,
    default_actor: Option<Spanned<String>>,
    /// A duration such as `5s`, `500ms` or `0s`.
    lock_grace: Option<Spanned<String>>,
    lock_steal: Option<StealRule>,
    lock_remote: Option<String>,
    /// A duration such as `30s`.
    lock_remote_timeout: Option<Spanned<String>>,
}

/// Why a `config.toml` holds no settings, and where in it, if one place
/// is to blame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub reason: String,
    /// The bytes to blame and a few words for them.
    pub at: Option<(Range<usize>, String)>,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// The largest `config.toml` read: settings are a few lines, and the file
/// is read by every command.
const MAX_CONFIG_LEN: u64 = 1024 * 1024;

pub(crate) fn path(common_dir: &Path) -> PathBuf {
    common_dir.join("grite").join("config.toml")
}

/// Every key this tool reads; `config.toml` may hold other tools' keys too.
pub const KEYS: [&str; 6] = [
    "lock_policy",
    "default_actor",
    "lock_grace",
    "lock_steal",
    "lock_remote",
    "lock_remote_timeout",
];

pub(crate) fn load(common_dir: &Path) -> Result<Settings, Error> {
    let path = path(common_dir);
    let text = read(&path)?;
    settings(&text).map_err(|problem| Error::Config {
        path: path.clone(),
        reason: problem.reason,
        at: problem.at.map(|(span, label)| {
            Box::new(Spot {
                text: text.clone(),
                span,
                label,
            })
        }),
    })
}

/// The text of the settings file at `path`, empty when there is none.
pub(crate) fn read(path: &Path) -> Result<String, Error> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => return Err(config_error(path, e)),
    };
    let mut text = String::new();
    file.take(MAX_CONFIG_LEN + 1)
        .read_to_string(&mut text)
        .map_err(|e| config_error(path, e))?;
    if text.len() as u64 > MAX_CONFIG_LEN {
        return Err(config_error(
            path,
            format!(
                "it is larger than {} KiB, which no settings file is",
                MAX_CONFIG_LEN >> 10
            ),
        ));
    }
    Ok(text)
}

/// The settings `text` (a `config.toml`) holds, or why it holds none.
pub(crate) fn settings(text: &str) -> Result<Settings, Problem> {
    let raw: Raw = toml::from_str(text).map_err(|e| Problem {
        reason: e.message().trim().to_owned(),
        at: e.span().map(|span| {
            let label = e
                .message()
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned();
            (span, label)
        }),
    })?;
    let default_actor = raw
        .default_actor
        .map(|a| {
            ActorId::parse(a.get_ref())
                .map_err(|e| blame(&a, format!("default_actor: {e}"), "not an actor id"))
        })
        .transpose()?;
    let grace = match raw.lock_grace {
        None => Grace(DEFAULT_GRACE_MS),
        Some(text) => parse_grace(text.get_ref())
            .map_err(|reason| blame(&text, reason, "not a duration from 0s to 1h"))?,
    };
    let remote_timeout = match raw.lock_remote_timeout {
        None => DEFAULT_REMOTE_TIMEOUT,
        Some(text) => parse_remote_timeout(text.get_ref())
            .map_err(|reason| blame(&text, reason, "not a duration from 1s to 1h"))?,
    };
    let mistyped = toml::from_str::<toml::Table>(text)
        .map(|table| {
            table
                .keys()
                .filter(|key| !KEYS.contains(&key.as_str()))
                .filter_map(|key| nearest_key(key).map(|near| (key.clone(), near)))
                .collect()
        })
        .unwrap_or_default();
    Ok(Settings {
        lock_policy: raw.lock_policy.unwrap_or_default(),
        default_actor,
        grace,
        steal: raw.lock_steal.unwrap_or_default(),
        remote: raw.lock_remote.filter(|r| !r.is_empty()),
        remote_timeout,
        mistyped,
    })
}

fn blame(value: &Spanned<String>, reason: String, label: &str) -> Problem {
    Problem {
        reason,
        at: Some((value.span(), label.to_owned())),
    }
}

/// The key of ours that `key` is probably a misspelling of: within two
/// edits of it, or any `lock_` key we do not know. Keys of other tools
/// are left alone.
fn nearest_key(key: &str) -> Option<&'static str> {
    let (distance, nearest) = KEYS
        .iter()
        .map(|known| (edit_distance(key, known), *known))
        .min()?;
    (distance <= 2 || key.starts_with("lock_")).then_some(nearest)
}

/// Levenshtein distance, for short keys.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

fn parse_grace(text: &str) -> Result<Grace, String> {
    let bad =
        || format!("lock_grace = {text:?} is not a duration such as \"5s\" or \"0s\" (at most 1h)");
    let duration: jiff::SignedDuration = text.parse().map_err(|_| bad())?;
    let millis = u64::try_from(duration.as_millis()).map_err(|_| bad())?;
    if millis > 3_600_000 {
        return Err(bad());
    }
    Ok(Grace(millis))
}

fn parse_remote_timeout(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "lock_remote_timeout = {text:?} is not a duration from \"1s\" to \"1h\", such as \"30s\""
        )
    };
    let duration: jiff::SignedDuration = text.parse().map_err(|_| bad())?;
    let duration = Duration::try_from(duration).map_err(|_| bad())?;
    if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&duration) {
        return Err(bad());
    }
    Ok(duration)
}

/// 16 bytes from the operating system's random source, as an actor id.
pub(crate) fn random_actor() -> Result<ActorId, String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| format!("no random source: {e}"))?;
    Ok(ActorId::from_bytes(bytes))
}

pub(crate) fn config_error(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Config {
        path: path.to_owned(),
        reason: reason.to_string(),
        at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelled_key_is_told_with_the_one_it_means_and_other_tools_keys_are_not() {
        let settings =
            settings("lock_polcy = \"require\"\nlock_stael = \"observed\"\nissue_sync = true\n")
                .expect("valid");
        assert_eq!(
            settings.mistyped,
            [
                ("lock_polcy".to_owned(), "lock_policy"),
                ("lock_stael".to_owned(), "lock_steal")
            ]
        );
        assert_eq!(
            settings.lock_policy,
            LockPolicy::Warn,
            "a misspelled key is not read"
        );
    }

    #[test]
    fn remote_timeouts_are_a_second_to_an_hour() {
        assert_eq!(parse_remote_timeout("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_remote_timeout("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["0s", "500ms", "2h", "-5s", "never"] {
            assert!(parse_remote_timeout(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn grace_accepts_durations_up_to_an_hour() {
        assert_eq!(parse_grace("5s"), Ok(Grace(5_000)));
        assert_eq!(parse_grace("0s"), Ok(Grace(0)));
        assert!(parse_grace("-1s").is_err());
        assert!(parse_grace("2h").is_err());
        assert!(parse_grace("soon").is_err());
    }
}
