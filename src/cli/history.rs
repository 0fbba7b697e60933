//! How `grite lock log` shows a history: one line a step, newest first, in
//! human output; one object a step in JSON.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::fields::{esc, lock_json, short};
use crate::lease::Event;
use crate::store::LogEntry;

/// The steps as JSON.
pub fn log_json(entries: &[LogEntry]) -> Value {
    entries
        .iter()
        .map(|entry| {
            let (event, previous_owner, lock, reason) = match &entry.step {
                Ok((event, record)) => {
                    let from = match event {
                        Event::Steal { from } => Some(from.as_str()),
                        _ => None,
                    };
                    (Some(event.name()), from, Some(lock_json(record)), None)
                }
                Err(reason) => (None, None, None, Some(reason.as_str())),
            };
            json!({
                "ref": entry.ref_name,
                "commit": entry.commit.map(|id| id.to_string()),
                "at_unix_ms": entry.at.map(|at| at.0),
                "event": event,
                "previous_owner": previous_owner,
                "lock": lock,
                "unreadable": reason,
            })
        })
        .collect()
}

/// The steps as lines: time, what happened, resource, owner, token and,
/// for a lease that goes on, until when.
pub fn log_human(out: &mut String, entries: &[LogEntry]) {
    if entries.is_empty() {
        let _ = writeln!(out, "No lock history");
        return;
    }
    let resources: Vec<String> = entries
        .iter()
        .map(|entry| match &entry.step {
            Ok((_, record)) => esc(&record.resource).into_owned(),
            Err(_) => entry.ref_name.clone(),
        })
        .collect();
    let width = resources
        .iter()
        .map(|r| r.chars().count())
        .max()
        .unwrap_or(0);
    for (entry, resource) in entries.iter().zip(&resources) {
        let at = entry
            .at
            .map_or_else(|| "(time unknown)         ".to_owned(), |at| at.to_string());
        match &entry.step {
            Ok((event, record)) => {
                let _ = write!(
                    out,
                    "{at}  {:<9}  {resource:<width$}  {}  token {}",
                    event.name(),
                    short(&record.owner),
                    record.fencing_token
                );
                if !record.released {
                    let _ = write!(out, "  until {}", record.expires());
                }
                if let Event::Steal { from } = event {
                    let _ = write!(out, "  (from {})", short(from));
                }
                out.push('\n');
            }
            Err(reason) => {
                let _ = writeln!(
                    out,
                    "{at}  {:<9}  {resource:<width$}  {}",
                    "unreadable",
                    esc(reason)
                );
            }
        }
    }
}
