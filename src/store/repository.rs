//! Finding the repository to work on, as git finds it.

use std::path::Path;

use super::Error;

/// The repository containing `dir`, or the one `GIT_DIR` names (relative
/// to `dir`). Like git, the nearest `.git` on the way
/// up decides: one that is not a usable git directory (a `.git` file naming
/// a directory that is gone, say) is an error, not a reason to go on to a
/// repository further up, which would put the locks in the wrong place.
pub(super) fn discover(dir: &Path) -> Result<gix::Repository, Error> {
    let not_a_repository = |reason: String| Error::NotARepository {
        path: std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned()),
        reason,
    };
    // As with git, GIT_DIR names the repository outright.
    if let Some(git_dir) = std::env::var_os("GIT_DIR").filter(|d| !d.is_empty()) {
        let git_dir = dir.join(git_dir);
        return open_at(&git_dir).map_err(|e| Error::NotARepository {
            path: std::path::absolute(&git_dir).unwrap_or(git_dir),
            reason: format!("GIT_DIR names no usable git directory: {e}"),
        });
    }
    let repo = open_upwards(dir).map_err(|e| not_a_repository(e.to_string()));
    let absolute = std::path::absolute(dir).map_err(|e| not_a_repository(e.to_string()))?;
    let nearest = absolute
        .ancestors()
        .map(|a| a.join(".git"))
        .find(|dot_git| std::fs::symlink_metadata(dot_git).is_ok());
    // Inside a git directory itself, discovery finds its own way.
    let Some(dot_git) = nearest.filter(|d| !absolute.starts_with(d)) else {
        return repo;
    };
    let found_it = repo.as_ref().is_ok_and(|repo| {
        repo.workdir()
            .and_then(|w| std::fs::canonicalize(w).ok())
            .zip(dot_git.parent().and_then(|p| std::fs::canonicalize(p).ok()))
            .is_some_and(|(found, nearest)| found == nearest)
    });
    if found_it {
        return repo;
    }
    let reason = match gix::open(&dot_git) {
        Err(e) => e.to_string(),
        Ok(_) => "git found another repository first".to_owned(),
    };
    Err(not_a_repository(format!(
        "{} is not a usable git directory: {reason}",
        dot_git.display()
    )))
}

/// The largest object gix may inflate for us. Lock objects are a few
/// hundred bytes; a hostile one (a huge `lock.json` or commit written by
/// another tool) is refused before it is allocated, not after.
const OBJECT_ALLOC_LIMIT: &str = "gitoxide.objects.allocLimit=16777216";

/// Pack index slots of the object database: gix sizes them once, when it
/// opens the repository, from the packs on disk then; every fetch writes a
/// pack, and a process that fetches again and again under load (the
/// remote keeps moving) would otherwise run out of slots and fail.
const OBJECT_STORE_SLOTS: gix::odb::store::init::Slots =
    gix::odb::store::init::Slots::AsNeededByDiskState {
        multiplier: 2.0,
        minimum: 256,
    };

/// How grite opens a repository, ours or a remote on this machine: with
/// the object limits above.
fn open_options(trust: gix::sec::Trust) -> gix::open::Options {
    use gix::sec::trust::DefaultForLevel as _;
    gix::open::Options::default_for_level(trust)
        .config_overrides([OBJECT_ALLOC_LIMIT])
        .object_store_slots(OBJECT_STORE_SLOTS)
}

fn open_upwards(dir: &Path) -> Result<gix::Repository, gix::Error> {
    use gix::sec::Trust;
    let mapping = gix::sec::trust::Mapping {
        full: open_options(Trust::Full),
        reduced: open_options(Trust::Reduced),
    };
    gix::ThreadSafeRepository::discover_opts(dir, Default::default(), mapping)
        .map(Into::into)
        .map_err(gix::Error::from_error)
}

/// Opens the repository at `path` itself (a remote on this machine).
pub(super) fn open_at(path: &Path) -> Result<gix::Repository, gix::Error> {
    gix::open_opts(path, open_options(gix::sec::Trust::Full)).map_err(gix::Error::from_error)
}

/// Whether the `git` program is on `PATH` (looked up, not started): without
/// it, a remote on this machine is opened directly.
pub(super) fn git_on_path() -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| is_executable(&dir.join("git")))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.with_extension("exe").is_file() || path.is_file()
}
