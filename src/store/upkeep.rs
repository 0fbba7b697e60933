//! Keeping the repository in shape as git does. Every fetch writes a pack
//! and every write a few loose objects; git consolidates them with its
//! automatic maintenance after fetches and commits (`gc.auto`: 6,700 loose
//! objects, `gc.autoPackLimit`: 50 packs). grite runs the same
//! `git maintenance run --auto` once git's own thresholds are passed, so a
//! clone that only ever takes locks stays as small and fast as one a
//! person works in. The check is cheap (two directory listings, as git's
//! own estimate); the maintenance runs in the background, detached as git
//! runs it, and honours the user's settings (`gc.auto = 0` turns it off).
//! Without the `git` program there is nothing to run and nothing is done.
//!
//! Every lock ref a write moves is a loose file, and an acquire lists
//! them all (`docs/PROTOCOL.md` §7): among 100,000 loose locks the
//! directory listing makes an acquire take twice as long as among
//! 100,000 packed ones. Once a listing finds more than
//! [`LOOSE_LOCK_REFS`] loose lock refs, `git pack-refs --all` (what `git
//! gc` runs, unless `gc.packRefs` says not to) is started the same way,
//! unless `packed-refs.lock` shows a packing or deletion under way.

use std::path::Path;
use std::process::{Command, Stdio};

use super::repository::git_on_path;

/// git's defaults for the thresholds.
const GC_AUTO: i64 = 6_700;
const GC_AUTO_PACK_LIMIT: i64 = 50;

/// Loose lock refs past which they are packed. Packing rewrites all of
/// packed-refs, so it runs once per this many locks written anew, while
/// listing this many loose files costs an acquire little (among 1,000
/// loose locks `cargo bench --bench cli` times it as among none).
const LOOSE_LOCK_REFS: usize = 1_000;

/// Starts git's automatic maintenance in the background if the objects of
/// `repo` have passed the thresholds at which git would, or `git
/// pack-refs --all` if a listing just found more than [`LOOSE_LOCK_REFS`]
/// loose lock refs (`loose_lock_refs`).
pub(super) fn maintain(repo: &gix::Repository, loose_lock_refs: usize) {
    if let Some(args) = task(repo, loose_lock_refs)
        && git_on_path()
    {
        let _ = Command::new("git")
            .arg("--git-dir")
            .arg(repo.common_dir())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }
}

/// The git command that [`maintain`] starts, if any.
fn task(repo: &gix::Repository, loose_lock_refs: usize) -> Option<&'static [&'static str]> {
    let config = repo.config_snapshot();
    let loose_limit = config.integer("gc.auto").unwrap_or(GC_AUTO);
    let pack_limit = config
        .integer("gc.autoPackLimit")
        .unwrap_or(GC_AUTO_PACK_LIMIT);
    if loose_limit <= 0 {
        return None;
    }
    let objects = repo.common_dir().join("objects");
    let packs = count(&objects.join("pack"), |name| name.ends_with(".pack"));
    // git estimates the loose objects from one of the 256 fan-out folders.
    let sample = count(&objects.join("17"), |name| name.len() == 38);
    if (pack_limit > 0 && packs > pack_limit) || sample > (loose_limit + 255) / 256 {
        return Some(&["maintenance", "run", "--auto", "--quiet"]);
    }
    // `gc.packRefs`: true (the default), false, or `notbare`.
    let pack_refs = match config.string("gc.packRefs") {
        Some(value) if value.eq_ignore_ascii_case(b"notbare") => !repo.is_bare(),
        Some(_) => config.boolean("gc.packRefs").unwrap_or(true),
        None => true,
    };
    // A packing or a deletion under way holds packed-refs.lock: another
    // packing would only fail on it.
    let busy = || repo.common_dir().join("packed-refs.lock").exists();
    (pack_refs && loose_lock_refs > LOOSE_LOCK_REFS && !busy()).then_some(&["pack-refs", "--all"])
}

fn count(dir: &Path, wanted: impl Fn(&str) -> bool) -> i64 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_str().is_some_and(&wanted))
            .count() as i64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh repository (bare or not) with `config` added to its own.
    fn repo(bare: bool, config: &str) -> (tempfile::TempDir, gix::Repository) {
        let dir = tempfile::tempdir().expect("temp dir");
        let repo = if bare {
            gix::init_bare(dir.path())
        } else {
            gix::init(dir.path())
        }
        .expect("a repository");
        let file = repo.common_dir().join("config");
        let mut text = std::fs::read_to_string(&file).expect("its config");
        text.push_str(config);
        std::fs::write(&file, text).expect("config written");
        let repo = gix::open(repo.path()).expect("opened again");
        (dir, repo)
    }

    #[test]
    fn lock_refs_are_packed_past_the_threshold_unless_git_would_not_pack_them() {
        let past = LOOSE_LOCK_REFS + 1;
        let pack: Option<&[&str]> = Some(&["pack-refs", "--all"]);
        let (_d, plain) = repo(false, "");
        assert_eq!(task(&plain, past), pack);
        assert_eq!(task(&plain, LOOSE_LOCK_REFS), None);
        assert_eq!(task(&plain, 0), None);
        let cases = [
            (false, "[gc]\n\tpackRefs = false\n", None),
            (true, "[gc]\n\tpackRefs = false\n", None),
            (false, "[gc]\n\tpackRefs = notbare\n", pack),
            (true, "[gc]\n\tpackRefs = notbare\n", None),
            (true, "[gc]\n\tpackRefs = true\n", pack),
            (false, "[gc]\n\tauto = 0\n", None),
        ];
        for (bare, config, expected) in cases {
            let (_d, repo) = repo(bare, config);
            assert_eq!(task(&repo, past), expected, "bare {bare}: {config}");
        }
        let packing = plain.common_dir().join("packed-refs.lock");
        std::fs::write(&packing, "").expect("a packing under way");
        assert_eq!(task(&plain, past), None, "one packing at a time");
    }

    #[test]
    fn objects_past_git_thresholds_start_its_maintenance() {
        let (_d, repo) = repo(true, "[gc]\n\tautoPackLimit = 2\n");
        let packs = repo.common_dir().join("objects/pack");
        for n in 0..3 {
            std::fs::write(packs.join(format!("pack-{n}.pack")), "").expect("a pack");
        }
        let maintenance: Option<&[&str]> = Some(&["maintenance", "run", "--auto", "--quiet"]);
        assert_eq!(task(&repo, 0), maintenance);
        assert_eq!(
            task(&repo, LOOSE_LOCK_REFS + 1),
            maintenance,
            "which packs refs too"
        );
    }
}
