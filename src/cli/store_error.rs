//! How the store's errors read on the command line: each [`Error`] as a
//! [`CliError`] with its code, exit code, detail lines and help.

use serde_json::json;

use super::error::{CliError, exit};
use super::fields::{lock_json, short, span};
use crate::store::Error;

impl From<Error> for CliError {
    fn from(error: Error) -> CliError {
        let message = error.to_string();
        match error {
            Error::NotARepository { path, reason } => CliError::new(
                "not_a_repository",
                exit::ENVIRONMENT,
                "Not a git repository",
            )
            .line("Directory", path.display().to_string())
            .line("Reason", reason)
            .help("run grite inside a git repository or a worktree of one, or name one with -C DIR")
            .details(json!({ "path": path })),
            Error::Repository { action, reason } => {
                CliError::new("repository_error", exit::ENVIRONMENT, "Repository error")
                    .line("While", action)
                    .line("Reason", reason.clone())
                    .help("check that the repository is writable and healthy (`git fsck`)")
                    .details(json!({ "action": action, "reason": reason }))
            }
            Error::Busy { waited_ms, reason } => {
                CliError::new("repository_busy", exit::ENVIRONMENT, "Repository busy")
                    .line("Reason", reason.clone())
                    .help("another git process is writing these refs: try again; if none is running, a killed one left the `.lock` files named above, which `grite lock status` lists once they are old")
                    .details(json!({ "waited_ms": waited_ms, "reason": reason }))
            }
            Error::StaleLockFiles { files } => {
                let mut error = CliError::new(
                    "stale_lock_file",
                    exit::ENVIRONMENT,
                    "Stale lock file",
                );
                for file in &files {
                    error = error.line(
                        "File",
                        format!(
                            "{} ({} old)",
                            file.path.display(),
                            span(u64::try_from(file.age.as_millis()).unwrap_or(u64::MAX))
                        ),
                    );
                }
                let removal = files
                    .iter()
                    .map(|f| f.removal())
                    .collect::<Vec<_>>()
                    .join(" && ");
                error
                    .help(format!("a process that was killed while writing refs left these behind, and no write can take their refs until they are gone; if no git or grite process is running in that repository, remove them: {removal}"))
                    .details(json!({
                        "files": files.iter().map(|f| json!({
                            "path": f.path,
                            "age_ms": u64::try_from(f.age.as_millis()).unwrap_or(u64::MAX),
                            "remove_with": f.removal(),
                        })).collect::<Vec<_>>(),
                    }))
            }
            Error::Config { path, reason, at } => {
                let error = CliError::new("invalid_config", exit::ENVIRONMENT, "Invalid configuration")
                    .line("File", path.display().to_string())
                    .line("Reason", reason.clone())
                    .help("fix or remove the file; its keys are lock_policy (\"off\", \"warn\" or \"require\"), default_actor, lock_grace, lock_steal (\"clock\" or \"observed\"), lock_remote and lock_remote_timeout")
                    .details(json!({ "path": path, "reason": reason }));
                match at {
                    Some(at) => error.snippet(&path.display().to_string(), &at.text, at.span.clone(), &at.label),
                    None => error,
                }
            }
            Error::Remote { remote, reason } => {
                CliError::new("remote_error", exit::ENVIRONMENT, "Remote error")
                    .line("Remote", remote.clone())
                    .line("Reason", reason.clone())
                    .help("check that the remote is reachable and that you may push to it (`git ls-remote` and `git push` to it should work); nothing was changed")
                    .details(json!({ "remote": remote, "reason": reason }))
            }
            Error::BrokenRemoteRef { remote, ref_name } => {
                let reason = "the remote advertises this ref without an object: it is broken in the remote repository, and may hold a lock no one can read";
                CliError::new("remote_error", exit::ENVIRONMENT, "Remote error")
                    .line("Remote", remote.clone())
                    .line("Ref", ref_name.clone())
                    .line("Reason", reason)
                    .help("nothing was changed; whoever runs the remote repository must repair or delete that ref there (a push cannot delete a broken ref: remove its file under refs/, or its line in packed-refs)")
                    .details(json!({ "remote": remote, "ref": ref_name, "reason": reason }))
            }
            Error::BadRemote { remote, reason } => {
                CliError::new("invalid_args", exit::INVALID_ARGS, "Invalid remote")
                    .line("Remote", remote.clone())
                    .line("Reason", reason.clone())
                    .help("name a configured remote (`git remote -v`), a path, or a file://, ssh:// or git:// URL")
                    .details(json!({ "remote": remote, "reason": reason }))
            }
            Error::CorruptLock {
                ref_name,
                reason,
                remove_with,
            } => CliError::new("corrupt_lock", exit::OTHER, "Corrupt lock")
                .line("Ref", ref_name.clone())
                .line("Reason", reason.clone())
                .help(format!(
                    "no lock can be taken on it until the ref is repaired or deleted; inspect it with `git cat-file -p {ref_name}` and, if it holds nothing worth keeping, delete it with `{remove_with}`"
                ))
                .details(json!({ "ref": ref_name, "reason": reason, "remove_with": remove_with })),
            Error::Held {
                holder,
                takeable_at,
            } => CliError::new("conflict", exit::CONFLICT, "Lock conflict")
                .line("Resource", holder.resource.clone())
                .line("Owner", holder.owner.clone())
                .line("Expires", holder.expires().to_string())
                .help(format!(
                    "the lock can be taken over from {takeable_at} if not renewed; or ask {} to release it",
                    short(&holder.owner)
                ))
                .details(json!({
                    "resource": holder.resource,
                    "holder": lock_json(&holder),
                    "takeable_at_unix_ms": takeable_at.0,
                })),
            Error::NotOwner { holder } => {
                CliError::new("conflict", exit::CONFLICT, "Lock held by another actor")
                    .line("Resource", holder.resource.clone())
                    .line("Owner", holder.owner.clone())
                    .line("Expires", holder.expires().to_string())
                    .help("if you held this lock, your lease expired and another actor took it over: stop the protected work")
                    .details(json!({ "resource": holder.resource, "holder": lock_json(&holder) }))
            }
            Error::Blocked { resource, by } => {
                let mut error = CliError::new("conflict", exit::CONFLICT, "Lock conflict")
                    .line("Resource", resource.clone());
                for holder in &by {
                    error = error
                        .line("Conflicts with", holder.resource.clone())
                        .line("Owner", holder.owner.clone())
                        .line("Expires", holder.expires().to_string());
                }
                error
                    .help("a repo: lock conflicts with every lock, and a path lock with the paths inside it and around it; wait for these to be released")
                    .details(json!({
                        "resource": resource,
                        "conflicts": by.iter().map(lock_json).collect::<Vec<_>>(),
                    }))
            }
            Error::Refused { errors } => {
                let parts: Vec<CliError> = errors.into_iter().map(CliError::from).collect();
                let conflict = parts.iter().any(|p| p.exit == exit::CONFLICT);
                let (code, exit) = if conflict {
                    ("conflict", exit::CONFLICT)
                } else {
                    (parts[0].code, parts[0].exit)
                };
                let mut error = CliError::new(code, exit, "Locks refused; none was taken");
                let mut details = Vec::new();
                for part in &parts {
                    error = error.line("Refused", part.title.clone());
                    for (key, value) in &part.lines {
                        error = error.line(key, value.clone());
                    }
                    details.push(json!({ "code": part.code, "details": part.details }));
                }
                let help = parts[0].help.clone().unwrap_or_default();
                error
                    .help(format!("resources asked for together are granted all or none; {help}"))
                    .details(json!({ "refusals": details }))
            }
            Error::NoHistory { resource, ref_name } => {
                CliError::new("not_found", exit::NOT_FOUND, "No lock history")
                    .line("Resource", resource.clone())
                    .line("Ref", ref_name.clone())
                    .help("this resource was never locked here, or gc removed its lock and its history; `grite lock log` lists the history of every lock")
                    .details(json!({ "resource": resource, "ref": ref_name }))
            }
            Error::NotHeld { resource } => CliError::new("not_found", exit::NOT_FOUND, "Lock not held")
                .line("Resource", resource.clone())
                .help("nobody holds this lock; take it with `grite lock acquire`")
                .details(json!({ "resource": resource })),
            Error::OutOfRange { resource } => {
                CliError::new("out_of_range", exit::OTHER, "Time out of range")
                    .line("Resource", resource.clone())
                    .line("Reason", message.clone())
                    .help("check the system clock (`date -u`) and the stored record (`git cat-file -p <ref>:lock.json`)")
                    .details(json!({ "resource": resource }))
            }
        }
    }
}
