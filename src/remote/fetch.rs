//! Mirroring some refs of a remote in the local repository: a fetch, plus
//! the prune gix does not do (local refs the remote no longer has are
//! deleted, each with a compare-and-swap on the value seen). Which refs is
//! the caller's to say.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use gix::ObjectId;
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

/// Makes the local `mirrored` refs what the remote at `url` (`endpoint`)
/// has now, waiting at most `idle` for it at a time. `remote_has_refs`
/// says whether the remote advertised any of them at all: a fetch whose
/// refspecs match nothing is skipped and everything local is pruned.
pub fn fetch_refs(
    repo: &gix::Repository,
    url: &str,
    endpoint: &Endpoint,
    idle: Duration,
    mirrored: Mirrored<'_>,
    remote_has_refs: bool,
) -> Result<Fetched, FetchError> {
    let fail = |reason: String| FetchError {
        url: redact(url),
        reason: scrub(&reason, url),
    };
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
            .map_err(|e| fail(error_chain(&e)))?
            .with_fetch_tags(gix::remote::fetch::Tags::None);
        let outcome = match endpoint {
            // gix's own HTTP client, with our TLS settings, credentials
            // and deadline.
            #[cfg(feature = "https")]
            Endpoint::Http { .. } => {
                let mut connection = remote
                    .connect(gix::remote::Direction::Fetch)
                    .map_err(|e| fail(error_chain(&e)))?;
                if let Some(options) = super::http::fetch_options(repo, url, idle).map_err(fail)? {
                    let credentials =
                        super::credentials::fetch_credentials(repo, url).map_err(fail)?;
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
                    .map_err(|e| fail(e.to_string()))?;
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
        .map_err(fail)?;
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
                refused => return Err(fail(format!("{local} was not updated: {refused}"))),
            }
            on_remote.insert(local);
        }
    }
    let platform = repo.references().map_err(|e| fail(error_chain(&e)))?;
    let mut deletions = Vec::new();
    for prefix in mirrored.0 {
        let Some(directory) = prefix.strip_suffix('/') else {
            if let Some(reference) = repo
                .try_find_reference(*prefix)
                .map_err(|e| fail(error_chain(&e)))?
            {
                deletions.extend(prune(&reference, &on_remote, &mut fetched));
            }
            continue;
        };
        for reference in platform
            .prefixed(format!("{directory}/").as_str())
            .map_err(|e| fail(error_chain(&e)))?
        {
            let reference = reference.map_err(|e| fail(error_chain(&e)))?;
            deletions.extend(prune(&reference, &on_remote, &mut fetched));
        }
    }
    if !deletions.is_empty() {
        repo.edit_references_as(deletions, None)
            .map_err(|e| fail(error_chain(&e)))?;
    }
    Ok(fetched)
}

/// Fetches over `connection` what its refspecs name.
fn receive<T>(
    connection: gix::remote::Connection<'_, '_, '_, T>,
) -> Result<gix::remote::fetch::Outcome, String>
where
    T: gix::protocol::transport::client::blocking_io::Transport,
{
    connection
        .prepare_fetch(gix::progress::Discard, Default::default())
        .map_err(|e| error_chain(&e))?
        .receive(gix::progress::Discard, &AtomicBool::new(false))
        .map_err(|e| error_chain(&e))
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
