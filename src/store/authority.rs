//! A remote as the authority: what is needed to decide on its state and
//! write to it with the same compare-and-swap as locally.

use std::path::PathBuf;

use gix::ObjectId;

use super::changes::RefChange;
use super::snapshot::Snapshot;
use super::version::VERSION_REF;
use crate::lease::LOCK_REF_PREFIX;
use crate::remote::fetch::Fetched;
use crate::remote::pack::write_pack;
use crate::remote::protocol::Command;
use crate::remote::push::PushSession;
use crate::remote::transport::{Endpoint, redact, scrub};

/// A configured remote: its URL as given to fetch, and where to push.
pub(super) struct RemoteTarget {
    pub url: String,
    pub endpoint: Endpoint,
    /// A repository on this machine reached without the `git` program
    /// (which is not on PATH): opened with gix, written with the same
    /// compare-and-swap transaction as locally. No hooks run then.
    pub direct: Option<PathBuf>,
}

impl RemoteTarget {
    /// A failure to talk to this remote, its password masked.
    pub fn error(&self, reason: String) -> super::Error {
        super::Error::Remote {
            remote: redact(&self.url),
            reason: scrub(&reason, &self.url),
        }
    }
}

/// An open connection to the authority.
pub(super) enum Session {
    /// A receive-pack session that has advertised the remote's refs.
    Push(PushSession),
    /// The remote repository itself, opened with gix.
    Direct(Box<gix::Repository>),
}

impl Session {
    /// The remote's lock refs and version ref, sorted; `None` when a
    /// directly opened remote's refs cannot be listed.
    pub fn state(&self) -> Option<Vec<(String, ObjectId)>> {
        match self {
            Session::Push(session) => Some(advertised_state(session)),
            Session::Direct(remote) => lock_state(remote),
        }
    }

    /// Makes `changes` on the remote, sending `objects` from `local`.
    pub fn push(
        self,
        local: &gix::Repository,
        changes: &[RefChange],
        objects: &[ObjectId],
        signature: gix::actor::SignatureRef<'_>,
    ) -> Result<(), PushOutcome> {
        match self {
            Session::Push(session) => push_changes(local, session, changes, objects),
            Session::Direct(remote) => {
                for id in objects {
                    copy_objects(local, &remote, *id).map_err(PushOutcome::Failed)?;
                }
                let edits = changes
                    .iter()
                    .map(RefChange::edit)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| PushOutcome::Failed(e.to_string()))?;
                match remote.edit_references_as(edits, Some(signature)) {
                    Ok(_) => Ok(()),
                    Err(e) if e.is_conflict() || e.is_not_found() => Err(PushOutcome::Lost),
                    Err(e) if e.is_retryable() => Err(PushOutcome::Busy(e.to_string())),
                    Err(e) => Err(PushOutcome::Failed(format!("updating its lock refs: {e}"))),
                }
            }
        }
    }
}

/// Copies `id` and everything it reaches that `to` lacks (a lock commit's
/// tree, blob and ancestors), so that `to` stays a complete repository.
pub(super) fn copy_objects(
    from: &gix::Repository,
    to: &gix::Repository,
    id: ObjectId,
) -> Result<(), String> {
    use gix::objs::Write as _;
    let mut pending = vec![id];
    while let Some(id) = pending.pop() {
        if to.has_object(id) {
            continue;
        }
        let object = from
            .find_object(id)
            .map_err(|e| format!("reading object {id}: {e}"))?;
        match object.kind {
            gix::object::Kind::Commit => {
                let commit = object.clone().into_commit();
                pending.push(
                    commit
                        .tree_id()
                        .map_err(|e| format!("commit {id}: {e}"))?
                        .detach(),
                );
                pending.extend(commit.parent_ids().map(gix::Id::detach));
            }
            gix::object::Kind::Tree => {
                let tree = object.clone().into_tree();
                for entry in tree.iter() {
                    let entry = entry.map_err(|e| format!("tree {id}: {e}"))?;
                    pending.push(entry.oid().to_owned());
                }
            }
            gix::object::Kind::Blob | gix::object::Kind::Tag => {}
        }
        to.write_buf(object.kind, &object.data)
            .map_err(|e| format!("writing object {id}: {e}"))?;
    }
    Ok(())
}

/// Refs whose values the lock state of a repository is made of.
pub(super) fn is_lock_state(name: &str) -> bool {
    name.starts_with(LOCK_REF_PREFIX) || name == VERSION_REF
}

/// Whether the local lock refs are exactly what the remote advertised (no
/// remote: always). A remote that moved between its advertisement and our
/// fetch is read again.
pub(super) fn in_step(snapshot: &Snapshot, session: Option<&Session>) -> bool {
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
    session.state().as_ref() == Some(&local)
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

/// The lock refs and version ref of `repo` (ours, or a directly opened
/// remote), names and values only, sorted; `None` when they cannot be
/// listed. A ref that another process deletes while we list fails that
/// listing, so a failed one is tried again a few times.
pub(super) fn lock_state(repo: &gix::Repository) -> Option<Vec<(String, ObjectId)>> {
    (0..5).find_map(|_| list_state(repo))
}

fn list_state(repo: &gix::Repository) -> Option<Vec<(String, ObjectId)>> {
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
    /// Another process holds a ref lock file of a directly opened remote.
    Busy(String),
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
        .push(
            &commands,
            &write_pack(&entries)
                .map_err(|e| PushOutcome::Failed(format!("writing the pack: {e}")))?,
        )
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

/// Makes the local lock refs `state` (the remote's), copying the objects
/// they need from `remote` and deleting local lock refs it does not have:
/// the `git`-less counterpart of a fetch with prune. Each ref edit expects
/// the local value read just before; a concurrent local change fails it.
pub(super) fn mirror(
    local: &gix::Repository,
    remote: &gix::Repository,
    state: &[(String, ObjectId)],
) -> Result<Fetched, String> {
    use gix::refs::transaction::{PreviousValue, RefEdit};
    use gix::refs::{FullName, Target};
    let current = lock_state(local).ok_or("the local lock refs cannot be listed")?;
    let mut fetched = Fetched::default();
    let mut edits = Vec::new();
    let expected = |name: &str| match current.iter().find(|(n, _)| n == name) {
        Some((_, id)) => PreviousValue::MustExistAndMatch(Target::Object(*id)),
        None => PreviousValue::MustNotExist,
    };
    for (name, id) in state {
        if current.iter().any(|(n, v)| n == name && v == id) {
            continue;
        }
        copy_objects(remote, local, *id)?;
        let full = FullName::try_from(name.as_str()).map_err(|e| e.to_string())?;
        edits.push(RefEdit::update(
            full,
            *id,
            expected(name),
            "grite lock sync",
        ));
        fetched.updated.push(name.clone());
    }
    for (name, _) in &current {
        if name.starts_with(LOCK_REF_PREFIX) && !state.iter().any(|(n, _)| n == name) {
            let full = FullName::try_from(name.as_str()).map_err(|e| e.to_string())?;
            edits.push(RefEdit::delete(full, expected(name)));
            fetched.pruned.push(name.clone());
        }
    }
    if !edits.is_empty() {
        local
            .edit_references_as(edits, None)
            .map_err(|e| format!("updating the local lock refs: {e}"))?;
    }
    Ok(fetched)
}
