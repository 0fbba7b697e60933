//! This machine's sightings of leases, for `lock_steal = "observed"`
//! (see [`crate::lease::Takeover`]): when each lease was first seen here,
//! on this machine's clock. They live in `.git/grite/observed.json` in the
//! common git directory (every worktree of this clone shares them; they
//! are never pushed: each observer keeps its own).
//!
//! Concurrent grite processes may overwrite each other's file. That only
//! ever loses an earlier sighting in favour of a later one, which makes a
//! takeover wait longer, never happen sooner; a file that cannot be read
//! counts as no sightings, for the same reason.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Error;
use super::config::StealRule;
use super::locks::Locks;
use super::notice::Notice;
use super::snapshot::Snapshot;
use crate::lease::{LockRecord, Observations, Sighting, Takeover, UnixMillis};

/// More than any real set of sightings; a bigger file is not read.
const MAX_FILE_LEN: u64 = 64 << 20;

#[derive(Serialize, Deserialize)]
struct Stored {
    resource: String,
    nonce: String,
    expires_unix_ms: u64,
    first_seen_unix_ms: u64,
}

impl Locks {
    /// With `lock_steal = "observed"`: the sightings, with every lease of
    /// `snapshot` not seen before noted as seen at `now` (and saved).
    /// By the clock: none.
    pub(super) fn observe(
        &self,
        snapshot: &Snapshot,
        now: UnixMillis,
    ) -> Result<Option<Observations>, Error> {
        if self.settings().steal == StealRule::Clock {
            return Ok(None);
        }
        let path = self.observations_path();
        let mut observations = read(&path);
        if observations.observe(snapshot.records(), &snapshot.scope, now) {
            write(&path, &observations)?;
        }
        Ok(Some(observations))
    }

    /// The takeover rule of these settings, over `observations`.
    pub(super) fn takeover<'o>(&self, observations: &'o Option<Observations>) -> Takeover<'o> {
        Takeover {
            grace: self.settings().grace,
            observed: observations.as_ref(),
        }
    }

    /// Tells of every record among `records` that was granted at a time
    /// ahead of this machine's clock by more than the grace period: one of
    /// the two clocks is wrong, and by the clock the other one steals early
    /// or late.
    pub(super) fn note_skew<'r>(
        &self,
        records: impl IntoIterator<Item = &'r LockRecord>,
        now: UnixMillis,
    ) {
        let grace = self.settings().grace.as_millis();
        for record in records {
            let Some(written) = record.written_at() else {
                continue;
            };
            if record.released || written.0 <= now.0.saturating_add(grace) {
                continue;
            }
            self.notify(Notice::ClockSkew {
                lock: record.clone(),
                ahead: std::time::Duration::from_millis(written.0 - now.0),
            });
        }
    }

    fn observations_path(&self) -> PathBuf {
        self.config_path().with_file_name("observed.json")
    }
}

fn read(path: &std::path::Path) -> Observations {
    use std::io::Read as _;
    let mut text = Vec::new();
    let read =
        std::fs::File::open(path).and_then(|file| file.take(MAX_FILE_LEN).read_to_end(&mut text));
    let stored: Vec<Stored> = match read {
        Ok(_) => serde_json::from_slice(&text).unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    Observations::from_entries(stored.into_iter().map(|s| {
        (
            Sighting {
                resource: s.resource,
                nonce: s.nonce,
                expires_unix_ms: s.expires_unix_ms,
            },
            UnixMillis(s.first_seen_unix_ms),
        )
    }))
}

/// Writes the sightings whole, by a rename, so that no reader sees half.
fn write(path: &std::path::Path, observations: &Observations) -> Result<(), Error> {
    let stored: Vec<Stored> = observations
        .entries()
        .into_iter()
        .map(|(s, seen)| Stored {
            resource: s.resource,
            nonce: s.nonce,
            expires_unix_ms: s.expires_unix_ms,
            first_seen_unix_ms: seen.0,
        })
        .collect();
    let failed = |e: std::io::Error| Error::Config {
        path: path.to_owned(),
        reason: format!("recording which leases this machine has seen: {e}"),
        at: None,
    };
    let bytes = serde_json::to_vec(&stored).expect("strings and integers serialise");
    let dir = path.parent().expect("the file is in .git/grite");
    std::fs::create_dir_all(dir).map_err(failed)?;
    let temporary = path.with_extension(format!("json.{}.tmp", std::process::id()));
    std::fs::write(&temporary, bytes)
        .and_then(|()| std::fs::rename(&temporary, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&temporary);
            failed(e)
        })
}
