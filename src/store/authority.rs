//! A remote as the authority: what is needed to decide on its state and
//! write to it with the same compare-and-swap as locally.

use gix::ObjectId;

use super::changes::RefChange;
use super::snapshot::Snapshot;
use super::version::VERSION_REF;
use crate::lease::LOCK_REF_PREFIX;
use crate::remote::pack::write_pack;
use crate::remote::protocol::Command;
use crate::remote::push::PushSession;
use crate::remote::transport::Endpoint;

/// A configured remote: its URL as given to fetch, and where to push.
pub(super) struct RemoteTarget {
    pub url: String,
    pub endpoint: Endpoint,
}

/// Refs whose values the lock state of a repository is made of.
pub(super) fn is_lock_state(name: &str) -> bool {
    name.starts_with(LOCK_REF_PREFIX) || name == VERSION_REF
}

/// Whether the local lock refs are exactly what the remote advertised (no
/// remote: always). A remote that moved between its advertisement and our
/// fetch is read again.
pub(super) fn in_step(snapshot: &Snapshot, session: Option<&PushSession>) -> bool {
    let Some(session) = session else {
        return true;
    };
    let mut local: Vec<(String, ObjectId)> = snapshot
        .entries
        .iter()
        .map(|e| (e.ref_name.clone(), e.id))
        .chain(snapshot.version.id.map(|id| (VERSION_REF.to_owned(), id)))
        .collect();
    local.sort();
    advertised_state(session) == local
}

/// The lock refs and version ref the remote advertised, sorted.
pub(super) fn advertised_state(session: &PushSession) -> Vec<(String, ObjectId)> {
    let mut state: Vec<(String, ObjectId)> = session
        .advertisement
        .refs
        .iter()
        .filter(|(name, _)| is_lock_state(name))
        .cloned()
        .collect();
    state.sort();
    state
}

/// The local lock refs and version ref, names and values only, sorted;
/// `None` when they cannot be listed (then the caller fetches anyway).
pub(super) fn local_state(repo: &gix::Repository) -> Option<Vec<(String, ObjectId)>> {
    let platform = repo.references().ok()?;
    let mut state = Vec::new();
    for reference in platform.prefixed(LOCK_REF_PREFIX).ok()? {
        let reference = reference.ok()?;
        let id = reference.target().try_id()?.to_owned();
        state.push((reference.name().as_bstr().to_string(), id));
    }
    if let Some(version) = repo.try_find_reference(VERSION_REF).ok()? {
        state.push((
            VERSION_REF.to_owned(),
            version.target().try_id()?.to_owned(),
        ));
    }
    state.sort();
    Some(state)
}

pub(super) enum PushOutcome {
    /// Another writer changed a ref first.
    Lost,
    /// The server refused for another reason.
    Failed(String),
}

/// Pushes `changes` with `objects` (read from `repo`); every command names
/// the value the remote advertised.
pub(super) fn push_changes(
    repo: &gix::Repository,
    session: PushSession,
    changes: &[RefChange],
    objects: &[ObjectId],
) -> Result<(), PushOutcome> {
    let mut data = Vec::new();
    for id in objects {
        let object = repo
            .find_object(*id)
            .map_err(|e| PushOutcome::Failed(format!("reading object {id}: {e}")))?;
        data.push((object.kind, object.data.clone()));
    }
    let entries: Vec<(gix::object::Kind, &[u8])> =
        data.iter().map(|(k, d)| (*k, d.as_slice())).collect();
    let commands: Vec<Command> = changes.iter().map(RefChange::command).collect();
    let report = session
        .push(&commands, &write_pack(&entries))
        .map_err(|e| PushOutcome::Failed(e.to_string()))?;
    if let Err(reason) = &report.unpack {
        return Err(PushOutcome::Failed(format!(
            "the remote could not unpack the objects: {reason}"
        )));
    }
    let mut lost = false;
    for command in &commands {
        match report.status(&command.name) {
            Some(Ok(())) => {}
            // How receive-pack words a failed compare-and-swap, and what an
            // atomic push says of the commands that failed with it.
            Some(Err(reason))
                if [
                    "failed to update ref",
                    "failed to lock",
                    "atomic transaction failed",
                ]
                .contains(&reason.as_str()) =>
            {
                lost = true;
            }
            Some(Err(reason)) => {
                return Err(PushOutcome::Failed(format!(
                    "the remote refused {}: {reason}",
                    command.name
                )));
            }
            None => {
                return Err(PushOutcome::Failed(format!(
                    "the remote did not report on {}",
                    command.name
                )));
            }
        }
    }
    if lost { Err(PushOutcome::Lost) } else { Ok(()) }
}
