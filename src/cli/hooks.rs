//! `grite lock hooks install|uninstall`: the pre-commit and pre-push hooks
//! that apply the lock policy with `grite lock check`, written where git
//! runs hooks from (`core.hooksPath`, else `.git/hooks`). A hook of
//! another tool is never overwritten or removed: install refuses it, or
//! with `--chain` keeps it under another name and runs it first.
//!
//! Every hook asked for is checked before any file changes, so a refusal
//! leaves every hook as it was.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use super::args::{HookKinds, HooksCommand};
use super::error::CliError;
use crate::store::{Locks, shell_quote};

/// The start of the line that marks a hook as ours.
const MARKER: &str = "# grite-locks hook:";

/// What a hook of another tool is renamed to when it is chained.
const CHAINED: &str = ".grite-chained";

/// How much of an existing hook is read to tell whether it is ours: the
/// marker is on its second line.
const SNIFF: u64 = 4096;

/// One hook written or removed.
pub struct HookChange {
    /// `pre-commit` or `pre-push`.
    pub hook: &'static str,
    pub path: PathBuf,
    pub action: HookAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookAction {
    Installed,
    Updated,
    /// Installed, running the hook that was there first.
    Chained,
    Removed,
    /// Removed, and the chained hook put back.
    Restored,
    NotInstalled,
}

impl HookAction {
    pub fn name(self) -> &'static str {
        match self {
            HookAction::Installed => "installed",
            HookAction::Updated => "updated",
            HookAction::Chained => "chained",
            HookAction::Removed => "removed",
            HookAction::Restored => "restored",
            HookAction::NotInstalled => "not_installed",
        }
    }

    /// The sentence human output prints for `hook`.
    pub fn describe(self, hook: &str) -> String {
        match self {
            HookAction::Installed => format!("Installed the {hook} hook"),
            HookAction::Updated => format!("Updated the {hook} hook"),
            HookAction::Chained => {
                format!("Installed the {hook} hook, running the one that was there first")
            }
            HookAction::Removed => format!("Removed the {hook} hook"),
            HookAction::Restored => {
                format!("Removed the {hook} hook and put back the one it ran first")
            }
            HookAction::NotInstalled => format!("No {hook} hook of grite's to remove"),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    PreCommit,
    PrePush,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::PreCommit => "pre-commit",
            Kind::PrePush => "pre-push",
        }
    }
}

/// What is at a hook's path now.
enum Found {
    Nothing,
    Ours,
    Foreign,
}

pub fn run(locks: &Locks, command: &HooksCommand) -> Result<Vec<HookChange>, CliError> {
    let (kinds, chain) = match command {
        HooksCommand::Install(args) => (&args.kinds, Some(args.chain)),
        HooksCommand::Uninstall(kinds) => (kinds, None),
    };
    let dir = locks.hooks_dir()?.ok_or_else(|| {
        CliError::hook(
            "No hooks in a bare repository",
            &locks.config_path(),
            "a bare repository has no worktree: nothing is committed in it",
            "install the hooks in each clone or worktree where people commit",
        )
    })?;
    let kinds = chosen(kinds);
    let mut plans = Vec::new();
    for kind in &kinds {
        let path = dir.join(kind.name());
        let found = find(&path)?;
        plans.push((*kind, path, found));
    }
    let mut changes = Vec::new();
    match chain {
        Some(chain) => {
            for (kind, path, found) in &plans {
                if matches!(found, Found::Foreign) && !chain {
                    return Err(CliError::hook(
                        &format!("A {} hook is already there", kind.name()),
                        path,
                        "it was not written by grite, and is kept",
                        &format!(
                            "run `grite lock hooks install --chain` to keep it and run it before grite's check, or call `grite lock check {}` from it yourself",
                            check_args(*kind)
                        ),
                    ));
                }
                if matches!(found, Found::Foreign) && chained(path).exists() {
                    return Err(CliError::hook(
                        &format!("A {} hook is chained already", kind.name()),
                        &chained(path),
                        "both it and a hook of another tool are there",
                        "merge the two hooks into one by hand, then install again",
                    ));
                }
            }
            std::fs::create_dir_all(&dir).map_err(|e| write_failed(&dir, &e.to_string()))?;
            for (kind, path, found) in plans {
                let action = install(kind, &path, &found)?;
                changes.push(HookChange {
                    hook: kind.name(),
                    path,
                    action,
                });
            }
        }
        None => {
            for (kind, path, found) in &plans {
                if matches!(found, Found::Foreign) {
                    return Err(CliError::hook(
                        &format!("The {} hook is not grite's", kind.name()),
                        path,
                        "it was not written by grite, and is kept",
                        "remove it yourself if you no longer want it",
                    ));
                }
            }
            for (kind, path, found) in plans {
                let action = uninstall(&path, &found)?;
                changes.push(HookChange {
                    hook: kind.name(),
                    path,
                    action,
                });
            }
        }
    }
    Ok(changes)
}

fn chosen(kinds: &HookKinds) -> Vec<Kind> {
    match (kinds.pre_commit, kinds.pre_push) {
        (true, false) => vec![Kind::PreCommit],
        (false, true) => vec![Kind::PrePush],
        _ => vec![Kind::PreCommit, Kind::PrePush],
    }
}

fn chained(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(CHAINED);
    PathBuf::from(name)
}

/// Whether a hook is at `path`, and whose; a hook that cannot be read is
/// treated as another tool's, and so left alone.
fn find(path: &Path) -> Result<Found, CliError> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A dangling symbolic link is still someone's hook.
            return Ok(if path.symlink_metadata().is_ok() {
                Found::Foreign
            } else {
                Found::Nothing
            });
        }
        Err(_) => return Ok(Found::Foreign),
    };
    let mut head = Vec::new();
    file.take(SNIFF)
        .read_to_end(&mut head)
        .map_err(|e| write_failed(path, &e.to_string()))?;
    let ours = String::from_utf8_lossy(&head)
        .lines()
        .any(|line| line.starts_with(MARKER));
    Ok(if ours { Found::Ours } else { Found::Foreign })
}

fn install(kind: Kind, path: &Path, found: &Found) -> Result<HookAction, CliError> {
    let action = match found {
        Found::Foreign => {
            std::fs::rename(path, chained(path)).map_err(|e| write_failed(path, &e.to_string()))?;
            HookAction::Chained
        }
        Found::Ours => HookAction::Updated,
        Found::Nothing => HookAction::Installed,
    };
    let grite = std::env::current_exe().ok();
    let text = script(kind, grite.as_deref());
    let temporary = path.with_extension("grite-new");
    let written = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        make_executable(&temporary)?;
        std::fs::rename(&temporary, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temporary);
        if action == HookAction::Chained {
            let _ = std::fs::rename(chained(path), path);
        }
        return Err(write_failed(path, &e.to_string()));
    }
    Ok(action)
}

fn uninstall(path: &Path, found: &Found) -> Result<HookAction, CliError> {
    if matches!(found, Found::Nothing) {
        return Ok(HookAction::NotInstalled);
    }
    std::fs::remove_file(path).map_err(|e| write_failed(path, &e.to_string()))?;
    let before = chained(path);
    if before.symlink_metadata().is_ok() {
        std::fs::rename(&before, path).map_err(|e| write_failed(&before, &e.to_string()))?;
        return Ok(HookAction::Restored);
    }
    Ok(HookAction::Removed)
}

#[cfg(unix)]
fn make_executable(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
}

#[cfg(not(unix))]
fn make_executable(_: &Path) -> std::io::Result<()> {
    Ok(())
}

fn write_failed(path: &Path, reason: &str) -> CliError {
    CliError::hook(
        "Cannot write the hook",
        path,
        reason,
        "check that the hooks folder exists and is writable",
    )
}

/// What the hook passes to `grite lock check`.
fn check_args(kind: Kind) -> &'static str {
    match kind {
        Kind::PreCommit => "--staged",
        Kind::PrePush => "--paths-from-stdin -z",
    }
}

/// The hook's text: find grite (the binary that installed the hook, else
/// `grite` on PATH), run the chained hook first if there is one, then the
/// check. The pre-push hook lists the paths changed by the commits each
/// pushed ref brings that the remote does not have (for a new branch,
/// those on no remote-tracking branch), skipping deletions and grite's own
/// refs.
fn script(kind: Kind, grite: Option<&Path>) -> String {
    let installed = grite
        .and_then(Path::to_str)
        .map_or_else(|| "grite".to_owned(), shell_quote);
    let name = kind.name();
    let mut text = format!(
        r#"#!/bin/sh
{MARKER} applies lock_policy (.git/grite/config.toml) to what is {what}.
# Written by `grite lock hooks install`; `grite lock hooks uninstall` removes it.
# Skip it once with `git {verb} --no-verify`.
grite={installed}
[ -x "$grite" ] || grite=grite
if ! command -v "$grite" >/dev/null 2>&1; then
    echo "grite-locks {name} hook: grite is not installed (cargo install --locked --path <grite-locks>); skip with --no-verify, or run grite lock hooks uninstall" >&2
    exit 1
fi
chained="$(dirname "$0")/{name}{CHAINED}"
"#,
        what = match kind {
            Kind::PreCommit => "committed",
            Kind::PrePush => "pushed",
        },
        verb = match kind {
            Kind::PreCommit => "commit",
            Kind::PrePush => "push",
        },
    );
    match kind {
        Kind::PreCommit => text.push_str(
            r#"if [ -x "$chained" ]; then
    "$chained" "$@" || exit $?
fi
exec "$grite" -q lock check --staged
"#,
        ),
        Kind::PrePush => text.push_str(
            r#"input=$(cat)
if [ -x "$chained" ]; then
    printf '%s\n' "$input" | "$chained" "$@" || exit $?
fi
printf '%s\n' "$input" | while read -r local_ref local_sha remote_ref remote_sha; do
    case "$local_sha" in *[!0]*) ;; *) continue ;; esac
    case "$remote_ref" in refs/grite/*) continue ;; esac
    case "$remote_sha" in
    *[!0]*) if git cat-file -e "$remote_sha^{commit}" 2>/dev/null; then
                git log --format= --name-only -z --no-renames "$remote_sha..$local_sha"
                continue
            fi ;;
    esac
    git log --format= --name-only -z --no-renames "$local_sha" --not --remotes
done | "$grite" -q lock check --paths-from-stdin -z
"#,
        ),
    }
    text
}
