//! A remote as the authority: what is needed to decide on its state and
//! write to it with the same compare-and-swap as locally.

use std::path::PathBuf;

use gix::ObjectId;

use super::changes::{ApplyError, RefChange};
use super::lockfiles::{self, LockFile};
use super::loose_object;
use super::ref_file::Held;
use super::ref_names::lock_refs;
use super::ref_update::apply_changes;
use super::version::{VERSION_REF, VERSION_SHARD_PREFIX};
use crate::lease::LOCK_REF_PREFIX;
use crate::remote::fetch::{FetchError, Mirrored, VANISHED_BUDGET};
use crate::remote::pack::write_pack;
use crate::remote::protocol::Command;
use crate::remote::push::{PushSession, Verdict};
use crate::remote::transport::{Endpoint, redact, scrub};

/// The refs a repository's lock state is made of, which the local
/// repository mirrors from the authority.
pub(super) const MIRRORED: Mirrored<'static> =
    Mirrored(&[LOCK_REF_PREFIX, VERSION_SHARD_PREFIX, VERSION_REF]);

/// The names and values of the lock state's refs, sorted by name.
pub(super) type State = Vec<(String, ObjectId)>;

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

    /// A failed fetch from this remote; one that failed because refs of
    /// this repository kept vanishing under it is not the remote's fault,
    /// and says so.
    pub fn fetch_error(&self, error: FetchError) -> super::Error {
        if !error.ours {
            return self.error(error.reason);
        }
        super::Error::Repository {
            action: "listing this repository's refs for a fetch",
            reason: format!(
                "{}, on every try for {} s: another process kept deleting or packing refs",
                error.reason,
                VANISHED_BUDGET.as_secs()
            ),
        }
    }

    /// This remote advertises `ref_name`, one of its lock state's refs,
    /// without an object.
    pub fn broken_ref(&self, ref_name: &str) -> super::Error {
        super::Error::BrokenRemoteRef {
            remote: redact(&self.url),
            ref_name: ref_name.to_owned(),
        }
    }

    /// The lock files that stand in the way of `ref_names` in the remote
    /// repository, when it is on this machine (where their age can be
    /// read); empty for a remote elsewhere.
    pub fn lock_files(&self, ref_names: &[String]) -> Vec<LockFile> {
        let Endpoint::Local(path) = &self.endpoint else {
            return Vec::new();
        };
        match gix::open(path) {
            Ok(repo) => lockfiles::held(repo.common_dir(), ref_names),
            Err(_) => Vec::new(),
        }
    }
}

/// An open connection to the authority.
pub(super) enum Session {
    /// A receive-pack session that has advertised the remote's refs.
    Push(Box<PushSession>),
    /// The remote repository itself, opened with gix.
    Direct(Box<gix::Repository>),
}

/// How a write to the authority failed.
pub(super) enum PushOutcome {
    /// Another writer changed a ref first.
    Lost,
    /// The server did not update the refs, in its words: a lost race if
    /// they changed since, else it could not lock them.
    Rejected(String),
    /// Another process holds ref lock files of a directly opened remote.
    Busy(Vec<LockFile>, String),
    /// The server refused for another reason.
    Failed(String),
}

impl Session {
    /// The remote's lock state; `None` when a directly opened remote's refs
    /// cannot be listed.
    pub fn state(&self) -> Option<State> {
        match self {
            Session::Push(session) => Some(advertised_state(session)),
            Session::Direct(remote) => lock_state(remote),
        }
    }

    /// Makes `changes` on the remote, sending `objects` from `local`;
    /// returns what the server said on the way (its hooks' output).
    pub fn push(
        self,
        local: &gix::Repository,
        changes: &[RefChange],
        objects: &[ObjectId],
    ) -> Result<Vec<String>, PushOutcome> {
        match self {
            Session::Push(session) => push_changes(local, *session, changes, objects),
            Session::Direct(remote) => {
                // A push brings everything it must.
                let mut budget = usize::MAX;
                for id in objects {
                    copy_objects(local, &remote, *id, &mut budget).map_err(PushOutcome::Failed)?;
                }
                match apply_changes(&remote, changes) {
                    Ok(()) => Ok(Vec::new()),
                    Err(ApplyError::Lost) => Err(PushOutcome::Lost),
                    Err(ApplyError::Busy(reason)) => {
                        let names: Vec<String> = changes.iter().map(|c| c.name.clone()).collect();
                        Err(PushOutcome::Busy(
                            lockfiles::held(remote.common_dir(), &names),
                            reason,
                        ))
                    }
                    Err(e @ ApplyError::Failed(_)) => {
                        Err(PushOutcome::Failed(format!("updating its lock refs: {e}")))
                    }
                }
            }
        }
    }
}

/// Copies `id` and everything it reaches that `to` lacks (a lock commit's
/// tree, blob and ancestors), so that `to` stays a complete repository,
/// reading at most `budget` objects (what it reads is taken off; a copy
/// that would read more fails). An object is written only after
/// everything it reaches: `to` having an object stands for having all of
/// it, so a copy cut short (a kill, a damaged object, the budget) must not
/// leave a commit without its tree. An object whose content does not hash
/// to its id is refused, as a fetch would refuse it.
pub(super) fn copy_objects(
    from: &gix::Repository,
    to: &gix::Repository,
    id: ObjectId,
    budget: &mut usize,
) -> Result<(), String> {
    enum Step {
        Visit(ObjectId),
        Write(ObjectId, gix::object::Kind, Vec<u8>),
    }
    let mut pending = vec![Step::Visit(id)];
    while let Some(step) = pending.pop() {
        let id = match step {
            Step::Write(id, kind, data) => {
                loose_object::write_raw(to, kind, &data)
                    .map_err(|e| format!("writing object {id}: {e}"))?;
                continue;
            }
            Step::Visit(id) if to.has_object(id) => continue,
            Step::Visit(id) => id,
        };
        *budget = budget
            .checked_sub(1)
            .ok_or_else(|| "more objects to copy than one copy may read".to_owned())?;
        let object = from
            .find_object(id)
            .map_err(|e| format!("reading object {id}: {e}"))?;
        let hashed = gix::objs::compute_hash(to.object_hash(), object.kind, &object.data)
            .map_err(|e| format!("hashing object {id}: {e}"))?;
        if hashed != id {
            return Err(format!(
                "object {id} is damaged: its content hashes to {hashed}"
            ));
        }
        let mut reached = Vec::new();
        match object.kind {
            gix::object::Kind::Commit => {
                let commit = object.clone().into_commit();
                reached.push(
                    commit
                        .tree_id()
                        .map_err(|e| format!("commit {id}: {e}"))?
                        .detach(),
                );
                reached.extend(commit.parent_ids().map(gix::Id::detach));
            }
            gix::object::Kind::Tree => {
                for entry in object.clone().into_tree().iter() {
                    let entry = entry.map_err(|e| format!("tree {id}: {e}"))?;
                    reached.push(entry.oid().to_owned());
                }
            }
            gix::object::Kind::Blob | gix::object::Kind::Tag => {}
        }
        pending.push(Step::Write(id, object.kind, object.detach().data));
        pending.extend(reached.into_iter().map(Step::Visit));
    }
    Ok(())
}

/// The lock state the remote advertised.
pub(super) fn advertised_state(session: &PushSession) -> State {
    let mut state: State = session
        .advertisement
        .refs
        .iter()
        .filter(|(name, _)| MIRRORED.contains(name))
        .cloned()
        .collect();
    state.sort();
    state
}

/// The lock state of `repo` (ours, or a directly opened remote); `None`
/// when it cannot be listed. A ref that another process deletes while we
/// list fails that listing, so a failed one is tried again a few times,
/// after pauses that double (2 to 16 ms): at once, it would most likely
/// meet the same deletions.
pub(super) fn lock_state(repo: &gix::Repository) -> Option<State> {
    (0..5).find_map(|attempt| {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_millis(1 << attempt));
        }
        list_state(repo)
    })
}

fn list_state(repo: &gix::Repository) -> Option<State> {
    // The version refs before the lock refs (`docs/PROTOCOL.md` §7): a
    // writer renames its lock ref before its version shard, so a shard
    // read here as moved has its new lock in the listing below. Read the
    // other way round, a lock listed just before its rename beside its
    // shard read just after would let a write expect the moved shard and
    // slip past that lock.
    let mut state = Vec::new();
    let platform = repo.references().ok()?;
    for reference in platform.prefixed(VERSION_SHARD_PREFIX).ok()? {
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
    // The lock refs as a decision reads them (loose files before
    // packed-refs, so that `git pack-refs` cannot hide one).
    for listed in lock_refs(repo).ok()?.refs {
        let Held::Id(id) = listed.held else {
            return None;
        };
        state.push((listed.name, id));
    }
    state.sort();
    Some(state)
}

/// Pushes `changes` with `objects` (read from `repo`); every command names
/// the value the remote advertised.
fn push_changes(
    repo: &gix::Repository,
    session: PushSession,
    changes: &[RefChange],
    objects: &[ObjectId],
) -> Result<Vec<String>, PushOutcome> {
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
    let pack =
        write_pack(&entries).map_err(|e| PushOutcome::Failed(format!("writing the pack: {e}")))?;
    let pushed = session
        .push(&commands, &pack)
        .map_err(|e| PushOutcome::Failed(e.to_string()))?;
    match pushed.verdict {
        Verdict::Applied => Ok(pushed.messages),
        Verdict::NotUpdated(reason) => Err(PushOutcome::Rejected(reason)),
    }
}

#[cfg(test)]
mod tests;
