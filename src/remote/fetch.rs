//! Mirroring some refs of a remote in the local repository: a fetch, plus
//! the prune gix does not do (local refs the remote no longer has are
//! deleted, each with a compare-and-swap on the value seen). Which refs is
//! the caller's to say.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use gix::ObjectId;
use gix::error::MetadataValue;
use gix::refs::Target;
use gix::refs::transaction::{PreviousValue, RefEdit};
use gix::remote::fetch::refs::update::Mode;

use super::connection::Connection;
use super::error_chain;
use super::transport::{Endpoint, redact, scrub};

/// Refs to mirror: a name ending in `/` stands for every ref below it,
/// any other for that one ref.
#[derive(Debug, Clone, Copy)]
pub struct Mirrored<'a>(pub &'a [&'a str]);

impl Mirrored<'_> {
    /// Whether the ref `name` is one of them.
    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|m| match m.strip_suffix('/') {
            Some(_) => name.starts_with(m),
            None => name == *m,
        })
    }

    /// Forced fetch refspecs that map each of them onto itself.
    fn refspecs(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|m| match m.strip_suffix('/') {
                Some(_) => format!("+{m}*:{m}*"),
                None => format!("+{m}:{m}"),
            })
            .collect()
    }
}

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
#[error("fetching lock refs from {url} failed: {reason}")]
pub struct FetchError {
    /// The remote's URL.
    pub url: String,
    /// What went wrong.
    pub reason: String,
    /// Whether it failed only because a loose ref file of ours was gone
    /// when gix read it, on every try for [`VANISHED_BUDGET`]: the remote
    /// is not at fault.
    pub ours: bool,
}

/// What a fetch changed locally.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fetched {
    /// Refs created or moved to the remote's value.
    pub updated: Vec<String>,
    /// Local refs deleted because the remote does not have them, with the
    /// value each had (its objects stay in the repository).
    pub pruned: Vec<(String, ObjectId)>,
}

/// How long, in all, a fetch is tried again while loose refs of ours
/// vanish under gix's listing of them (below).
pub const VANISHED_BUDGET: Duration = Duration::from_secs(5);

/// Makes the local `mirrored` refs what the remote at `url` (`endpoint`)
/// has now, waiting at most `idle` for it at a time. `remote_has_refs`
/// says whether the remote advertised any of them at all: a fetch whose
/// refspecs match nothing is skipped and everything local is pruned.
///
/// gix lists every local ref to tell the remote what we have, and fails
/// when a loose ref file it listed is gone when it opens it, where git
/// would read packed-refs instead: a `git pack-refs` (which `git gc` and
/// grite's upkeep run in the background) or another process deleting a
/// ref. A fetch is idempotent, so one that failed so is made again, on
/// a new connection, until [`VANISHED_BUDGET`] is spent.
pub fn fetch_refs(
    repo: &gix::Repository,
    url: &str,
    endpoint: &Endpoint,
    idle: Duration,
    mirrored: Mirrored<'_>,
    remote_has_refs: bool,
) -> Result<Fetched, FetchError> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(2);
    loop {
        match fetch_once(repo, url, endpoint, idle, mirrored, remote_has_refs) {
            Ok(fetched) => return Ok(fetched),
            Err(Failure::Vanished(_)) if started.elapsed() < VANISHED_BUDGET => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(failure) => {
                let (reason, ours) = match failure {
                    Failure::Vanished(reason) => (reason, true),
                    Failure::Other(reason) => (reason, false),
                };
                return Err(FetchError {
                    url: redact(url),
                    reason: scrub(&reason, url),
                    ours,
                });
            }
        }
    }
}

/// Why one attempt at a fetch failed.
enum Failure {
    /// A loose ref of ours was deleted while gix listed the refs.
    Vanished(String),
    /// Anything else.
    Other(String),
}

impl Failure {
    /// The failure of a gix call on `repo`.
    fn of(repo: &gix::Repository, error: &gix::Error) -> Self {
        let reason = error_chain(error);
        if vanished_ref(repo, error) {
            Self::Vanished(reason)
        } else {
            Self::Other(reason)
        }
    }
}

/// Whether `error` is gix failing to open a loose ref file of `repo`
/// that is no longer there.
fn vanished_ref(repo: &gix::Repository, error: &gix::Error) -> bool {
    let not_found = error.iter_errors().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
    });
    let ours = |path: &std::path::Path| {
        [repo.git_dir(), repo.common_dir()]
            .iter()
            .any(|dir| path.starts_with(dir.join("refs")))
    };
    not_found
        && error.metadata().any(
            |values| matches!(values.get("path"), Some(MetadataValue::Path(path)) if ours(path)),
        )
}

/// One fetch, on a connection of its own.
fn fetch_once(
    repo: &gix::Repository,
    url: &str,
    endpoint: &Endpoint,
    idle: Duration,
    mirrored: Mirrored<'_>,
    remote_has_refs: bool,
) -> Result<Fetched, Failure> {
    let failed = |e: gix::Error| Failure::of(repo, &e);
    let mut fetched = Fetched::default();
    let mut on_remote = BTreeSet::new();
    if remote_has_refs {
        let remote = repo
            .remote_at_without_url_rewrite(url)
            .and_then(|r| {
                let refspecs = mirrored.refspecs();
                r.with_refspecs(
                    refspecs.iter().map(String::as_str),
                    gix::remote::Direction::Fetch,
                )
            })
            .map_err(failed)?
            .with_fetch_tags(gix::remote::fetch::Tags::None);
        let outcome = match endpoint {
            // gix's own HTTP client, with our TLS settings, credentials
            // and deadline.
            #[cfg(feature = "https")]
            Endpoint::Http { .. } => {
                let mut connection = remote
                    .connect(gix::remote::Direction::Fetch)
                    .map_err(failed)?;
                if let Some(options) =
                    super::http::fetch_options(repo, url, idle).map_err(Failure::Other)?
                {
                    let credentials =
                        super::credentials::fetch_credentials(repo, url).map_err(Failure::Other)?;
                    connection = connection
                        .with_transport_options(options)
                        .with_credentials(credentials);
                }
                receive(connection)
            }
            // Our own connection, so that the fetch has the same deadline
            // and size limit as the push.
            _ => {
                use gix::protocol::transport::client::git::{
                    ConnectMode, blocking_io::Connection as Wire,
                };
                let raw = Connection::open_raw(endpoint, "git-upload-pack", repo, idle)
                    .map_err(|e| Failure::Other(e.to_string()))?;
                // The connection already asked a daemon for the service,
                // so gix reads the advertisement as from a spawned program.
                let path = match endpoint {
                    Endpoint::Git { path, .. } | Endpoint::Ssh { path, .. } => path.clone(),
                    other => other.to_string(),
                };
                let wire = Wire::new(
                    raw.reader,
                    raw.writer,
                    gix::protocol::transport::Protocol::V1,
                    path,
                    None::<(String, Option<u16>)>,
                    ConnectMode::Process,
                    false,
                )
                .custom_url(Some(url.into()));
                receive(remote.to_connection_with_transport(wire))
            }
        }
        .map_err(failed)?;
        let updates = match &outcome.status {
            gix::remote::fetch::Status::NoPackReceived { update_refs, .. }
            | gix::remote::fetch::Status::Change { update_refs, .. } => update_refs,
        };
        for (update, mapping) in updates.updates.iter().zip(&outcome.ref_map.mappings) {
            let Some(local) = mapping.local.as_ref() else {
                continue;
            };
            let local = local.to_string();
            match &update.mode {
                Mode::NoChangeNeeded => {}
                Mode::FastForward | Mode::Forced | Mode::New => fetched.updated.push(local.clone()),
                refused => {
                    return Err(Failure::Other(format!(
                        "{local} was not updated: {refused}"
                    )));
                }
            }
            on_remote.insert(local);
        }
    }
    let platform = repo.references().map_err(failed)?;
    let mut deletions = Vec::new();
    for prefix in mirrored.0 {
        let Some(directory) = prefix.strip_suffix('/') else {
            if let Some(reference) = repo.try_find_reference(*prefix).map_err(failed)? {
                deletions.extend(prune(&reference, &on_remote, &mut fetched));
            }
            continue;
        };
        for reference in platform
            .prefixed(format!("{directory}/").as_str())
            .map_err(failed)?
        {
            let reference = reference.map_err(failed)?;
            deletions.extend(prune(&reference, &on_remote, &mut fetched));
        }
    }
    if !deletions.is_empty() {
        repo.edit_references_as(deletions, None).map_err(failed)?;
    }
    Ok(fetched)
}

/// Fetches over `connection` what its refspecs name.
fn receive<T>(
    connection: gix::remote::Connection<'_, '_, '_, T>,
) -> Result<gix::remote::fetch::Outcome, gix::Error>
where
    T: gix::protocol::transport::client::blocking_io::Transport,
{
    connection
        .prepare_fetch(gix::progress::Discard, Default::default())?
        .receive(gix::progress::Discard, &AtomicBool::new(false))
}

/// The deletion of `reference` if the remote does not have it.
fn prune(
    reference: &gix::Reference<'_>,
    on_remote: &BTreeSet<String>,
    fetched: &mut Fetched,
) -> Option<RefEdit> {
    let name = reference.name().as_bstr().to_string();
    if on_remote.contains(&name) {
        return None;
    }
    let id = reference.target().try_id()?.to_owned();
    fetched.pruned.push((name, id));
    Some(RefEdit::delete(
        reference.name().to_owned(),
        PreviousValue::MustExistAndMatch(Target::Object(id)),
    ))
}
