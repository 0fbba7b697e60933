//! Fetching the lock refs of a remote into the local repository, with the
//! prune gix does not do: local lock refs the remote no longer has are
//! deleted, each with a compare-and-swap on the value seen.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;

use gix::refs::Target;
use gix::refs::transaction::{PreviousValue, RefEdit};
use gix::remote::fetch::refs::update::Mode;

use super::error_chain;
use super::transport::{redact, scrub};

const LOCKS: &str = "refs/grite/locks/";
const REFSPECS: [&str; 2] = [
    "+refs/grite/locks/*:refs/grite/locks/*",
    "+refs/grite/lock-version:refs/grite/lock-version",
];

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
    /// Lock refs created or moved to the remote's value.
    pub updated: Vec<String>,
    /// Local lock refs deleted because the remote no longer has them.
    pub pruned: Vec<String>,
}

/// Makes the local lock refs and version ref what `url` has now.
/// `remote_has_refs` says whether the remote advertised any lock ref at
/// all: a fetch whose refspecs match nothing is skipped and everything
/// local is pruned.
pub fn fetch_locks(
    repo: &gix::Repository,
    url: &str,
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
            .remote_at(url)
            .and_then(|r| r.with_refspecs(REFSPECS, gix::remote::Direction::Fetch))
            .map_err(|e| fail(error_chain(&e)))?
            .with_fetch_tags(gix::remote::fetch::Tags::None);
        #[cfg_attr(not(feature = "https"), allow(unused_mut))]
        let mut connection = remote
            .connect(gix::remote::Direction::Fetch)
            .map_err(|e| fail(error_chain(&e)))?;
        #[cfg(feature = "https")]
        if let Some(options) = super::http::fetch_options(repo, url).map_err(fail)? {
            let credentials = super::http::fetch_credentials(repo, url).map_err(fail)?;
            connection = connection
                .with_transport_options(options)
                .with_credentials(credentials);
        }
        let outcome = connection
            .prepare_fetch(gix::progress::Discard, Default::default())
            .map_err(|e| fail(error_chain(&e)))?
            .receive(gix::progress::Discard, &AtomicBool::new(false))
            .map_err(|e| fail(error_chain(&e)))?;
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
    for reference in platform
        .prefixed(LOCKS)
        .map_err(|e| fail(error_chain(&e)))?
    {
        let reference = reference.map_err(|e| fail(error_chain(&e)))?;
        let name = reference.name().as_bstr().to_string();
        if on_remote.contains(&name) {
            continue;
        }
        if let Some(id) = reference.target().try_id() {
            deletions.push(RefEdit::delete(
                reference.name().to_owned(),
                PreviousValue::MustExistAndMatch(Target::Object(id.to_owned())),
            ));
            fetched.pruned.push(name);
        }
    }
    if !deletions.is_empty() {
        repo.edit_references_as(deletions, None)
            .map_err(|e| fail(error_chain(&e)))?;
    }
    Ok(fetched)
}
