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

use std::path::Path;
use std::process::{Command, Stdio};

use super::repository::git_on_path;

/// git's defaults for the thresholds.
const GC_AUTO: i64 = 6_700;
const GC_AUTO_PACK_LIMIT: i64 = 50;

/// Starts git's automatic maintenance in the background if the objects of
/// `repo` have passed the thresholds at which git would.
pub(super) fn maintain(repo: &gix::Repository) {
    let config = repo.config_snapshot();
    let loose_limit = config.integer("gc.auto").unwrap_or(GC_AUTO);
    let pack_limit = config
        .integer("gc.autoPackLimit")
        .unwrap_or(GC_AUTO_PACK_LIMIT);
    if loose_limit <= 0 {
        return;
    }
    let objects = repo.common_dir().join("objects");
    let packs = count(&objects.join("pack"), |name| name.ends_with(".pack"));
    // git estimates the loose objects from one of the 256 fan-out folders.
    let sample = count(&objects.join("17"), |name| name.len() == 38);
    let too_many_packs = pack_limit > 0 && packs > pack_limit;
    let too_many_loose = sample > (loose_limit + 255) / 256;
    if (too_many_packs || too_many_loose) && git_on_path() {
        let _ = Command::new("git")
            .arg("--git-dir")
            .arg(repo.common_dir())
            .args(["maintenance", "run", "--auto", "--quiet"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }
}

fn count(dir: &Path, wanted: impl Fn(&str) -> bool) -> i64 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_str().is_some_and(&wanted))
            .count() as i64
    })
}
