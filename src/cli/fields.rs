//! How single values appear in output: a lock in JSON, an owner in short,
//! a duration, and any text that came from outside made safe for a
//! terminal.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde::{Serialize, Serializer};
use serde_json::{Value, json};

use crate::lease::{LOCK_REF_PREFIX, LockRecord, Resource, UnixMillis, ref_hash_of};

/// `text` with every character that a terminal would act on written as a
/// visible escape (`\u{1b}`): control characters (a record's owner or a
/// server's message could clear the screen or move the cursor) and the
/// invisible formatting characters that reorder what is shown (bidi
/// overrides). Human output passes everything from outside through this.
pub fn esc(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Whether `text` can go to a terminal as it is, lines and tabs included:
/// nothing in it that [`esc`] would escape but those.
pub fn printable(text: &str) -> bool {
    text.chars()
        .all(|c| matches!(c, '\n' | '\t') || !needs_escape(c))
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// The first eight characters of an owner, as status shows it, escaped.
pub fn short(owner: &str) -> Cow<'_, str> {
    let end = owner
        .char_indices()
        .nth(8)
        .map_or(owner.len(), |(end, _)| end);
    esc(&owner[..end])
}

/// A lock as it appears in JSON output.
pub fn lock_json(record: &LockRecord) -> Value {
    let mut value = json!({
        "resource": record.resource,
        "owner": record.owner,
        "nonce": record.nonce,
        "expires_unix_ms": record.expires_unix_ms,
        "fencing_token": record.fencing_token,
        // The ref the record lives under: the hash of its resource as
        // stored (another tool's `path:src/` lives apart from `path:src`).
        "ref": format!("{LOCK_REF_PREFIX}{}", ref_hash_of(&record.resource)),
    });
    if let Some(acquired) = record.acquired_unix_ms {
        value["acquired_unix_ms"] = json!(acquired);
    }
    value
}

/// `items` as a JSON list, each turned into a value only when written: a
/// list of a hundred thousand locks is never held whole as values.
pub struct Each<'a, T, F>(&'a [T], F);

pub fn each<T, F: Fn(&T) -> Value>(items: &[T], to_value: F) -> Each<'_, T, F> {
    Each(items, to_value)
}

impl<T, F: Fn(&T) -> Value> Serialize for Each<'_, T, F> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(&self.1))
    }
}

/// `expires in 25m`, `expired 3m ago`.
pub fn relative(expires: UnixMillis, now: UnixMillis) -> String {
    if expires > now {
        format!("expires in {}", span(expires.0 - now.0))
    } else {
        format!("expired {} ago", span(now.0 - expires.0))
    }
}

/// A duration in its two largest units, rounded up to the second.
pub fn span(millis: u64) -> String {
    let secs = millis.div_ceil(1000);
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) if s == 0 => format!("{m}m"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, 0) => format!("{h}h"),
        (0, _, _) => format!("{h}h {m}m"),
        (_, 0, _) => format!("{d}d"),
        _ => format!("{d}d {h}h"),
    }
}

pub fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Each distinct lock in the way, first seen first, with the resources it
/// blocks.
pub fn by_holder(blocked: &[(Resource, Vec<LockRecord>)]) -> Vec<(&LockRecord, Vec<&Resource>)> {
    let mut holders: Vec<(&LockRecord, Vec<&Resource>)> = Vec::new();
    for (resource, in_the_way) in blocked {
        for holder in in_the_way {
            match holders.iter_mut().find(|(h, _)| *h == holder) {
                Some((_, blocks)) => blocks.push(resource),
                None => holders.push((holder, vec![resource])),
            }
        }
    }
    holders
}

/// `path:src/a.rs, path:src/b.rs and 3 more`: what a holder blocks,
/// shortly, escaped for a terminal.
pub fn blocks_line(blocks: &[&Resource]) -> String {
    const SHOWN: usize = 5;
    let names: Vec<String> = blocks
        .iter()
        .take(SHOWN)
        .map(|r| esc(&r.to_string()).into_owned())
        .collect();
    match blocks.len().checked_sub(SHOWN) {
        Some(more) if more > 0 => format!("{} and {more} more", names.join(", ")),
        _ => names.join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_read_like_the_spec() {
        let now = UnixMillis(1_000_000);
        assert_eq!(
            relative(UnixMillis(now.0 + 25 * 60_000), now),
            "expires in 25m"
        );
        assert_eq!(relative(UnixMillis(now.0 + 1), now), "expires in 1s");
        assert_eq!(
            relative(UnixMillis(now.0 + 90_000), now),
            "expires in 1m 30s"
        );
        assert_eq!(
            relative(UnixMillis(now.0 + 2 * 3_600_000 + 60_000), now),
            "expires in 2h 1m"
        );
        assert_eq!(relative(now, now), "expired 0s ago");
        assert_eq!(
            relative(UnixMillis(now.0 + 7 * 86_400_000), now),
            "expires in 7d"
        );
        assert_eq!(
            relative(UnixMillis(now.0 + 2 * 86_400_000 + 3 * 3_600_000), now),
            "expires in 2d 3h"
        );
        assert_eq!(relative(UnixMillis(now.0 - 180_000), now), "expired 3m ago");
    }

    #[test]
    fn short_owner_is_eight_characters_at_most() {
        assert_eq!(short("e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0"), "e5f6a7b8");
        assert_eq!(short("bob"), "bob");
        assert_eq!(short("\u{1b}[2Jabcdefgh"), "\\u{1b}[2Jabcd");
    }

    #[test]
    fn terminal_controls_and_reordering_marks_are_made_visible() {
        assert_eq!(esc("issue:1"), Cow::Borrowed("issue:1"));
        assert_eq!(esc("ünïcode ok"), "ünïcode ok");
        assert_eq!(esc("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(esc("x\ny\r\u{7f}"), "x\\u{a}y\\u{d}\\u{7f}");
        assert_eq!(esc("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(esc("abc\u{202e}fed"), "abc\\u{202e}fed");
    }
}
