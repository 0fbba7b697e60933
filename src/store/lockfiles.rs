//! Ref lock files (`<ref>.lock`, `packed-refs.lock`) that stand in the way
//! of a write. A live process holds one for milliseconds; one that is
//! older than [`STALE_AFTER`] was left by a process that was killed, and
//! waiting for it is pointless: it is reported at once, with the command
//! that removes it. It is never removed for the user: only a person can
//! tell that no git process is still running there.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Older than this, a lock file is taken as left behind. Far longer than
/// any ref transaction holds one (grite waits at most five seconds for
/// one), short enough that a user is not kept waiting.
pub const STALE_AFTER: Duration = Duration::from_secs(10);

/// A lock file found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockFile {
    /// Where it is.
    pub path: PathBuf,
    /// How long ago it was last written.
    pub age: Duration,
}

impl LockFile {
    fn at(path: PathBuf) -> Option<LockFile> {
        let modified = std::fs::symlink_metadata(&path).ok()?.modified().ok()?;
        let age = SystemTime::now()
            .duration_since(modified)
            .unwrap_or(Duration::ZERO);
        Some(LockFile { path, age })
    }

    /// Whether it is older than any live process would hold it.
    pub fn is_stale(&self) -> bool {
        self.age >= STALE_AFTER
    }

    /// The shell command that removes it.
    pub fn removal(&self) -> String {
        format!("rm -f -- {}", shell_quote(&self.path.display().to_string()))
    }
}

/// The lock files that exist now among those a transaction on `ref_names`
/// in the repository whose common directory is `common_dir` would take.
pub fn held(common_dir: &Path, ref_names: &[String]) -> Vec<LockFile> {
    let common = std::fs::canonicalize(common_dir).unwrap_or_else(|_| common_dir.to_owned());
    std::iter::once(common.join("packed-refs.lock"))
        .chain(ref_names.iter().map(|n| common.join(format!("{n}.lock"))))
        .filter_map(LockFile::at)
        .collect()
}

/// Every stale lock file a lock operation could run into: `packed-refs.lock`
/// and those under `refs/grite/`.
pub fn stale(common_dir: &Path) -> Vec<LockFile> {
    let common = std::fs::canonicalize(common_dir).unwrap_or_else(|_| common_dir.to_owned());
    let mut found: Vec<LockFile> = LockFile::at(common.join("packed-refs.lock"))
        .into_iter()
        .collect();
    let mut dirs = vec![common.join("refs/grite")];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => dirs.push(path),
                Ok(_) if path.extension().is_some_and(|e| e == "lock") => {
                    found.extend(LockFile::at(path));
                }
                _ => {}
            }
        }
    }
    found.retain(LockFile::is_stale);
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found
}

/// `text` as one shell word.
pub fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+,:@%".contains(&b));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_old_lock_files_are_stale_and_each_names_its_removal() {
        let dir = tempfile::tempdir().expect("temp dir");
        let refs = dir.path().join("refs/grite/locks");
        std::fs::create_dir_all(&refs).expect("mkdir");
        let old = refs.join("abc.lock");
        let fresh = dir.path().join("refs/grite/lock-version.lock");
        for path in [&old, &fresh] {
            std::fs::write(path, "").expect("write");
        }
        let file = std::fs::File::options()
            .write(true)
            .open(&old)
            .expect("open");
        file.set_modified(SystemTime::now() - Duration::from_secs(60))
            .expect("set mtime");
        let stale = stale(dir.path());
        assert_eq!(stale.len(), 1, "{stale:?}");
        assert!(stale[0].path.ends_with("refs/grite/locks/abc.lock"));
        assert!(stale[0].removal().starts_with("rm -f -- /"));
        let held = held(dir.path(), &["refs/grite/lock-version".to_owned()]);
        assert_eq!(held.len(), 1);
        assert!(!held[0].is_stale());
    }

    #[test]
    fn shell_words_are_quoted_when_they_need_it() {
        assert_eq!(shell_quote("/srv/a.git/x.lock"), "/srv/a.git/x.lock");
        assert_eq!(shell_quote("/srv/my repo/x"), "'/srv/my repo/x'");
        assert_eq!(shell_quote("/it's"), r"'/it'\''s'");
    }
}
