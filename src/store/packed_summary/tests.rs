//! Unit tests of the packed-refs summary in `packed_summary.rs`: it is kept
//! only of a file older than the read, read back as written, and never
//! believed once damaged.

use std::time::Duration;

use super::*;
use crate::lease::{Resource, ref_key_of};

/// A packed-refs in `dir` written a tick of the file system's clock
/// before anything that follows; its identity.
fn settled_packed_refs(dir: &Path) -> Identity {
    let path = dir.join("packed-refs");
    std::fs::write(&path, "# pack-refs with: peeled fully-peeled sorted \n").expect("write");
    std::thread::sleep(Duration::from_millis(50));
    Identity::of(&path).expect("packed-refs")
}

fn scope(texts: &[&str]) -> Scope {
    let resources: Vec<Resource> = texts
        .iter()
        .map(|t| Resource::parse(t).expect("a resource"))
        .collect();
    Scope::of(&resources)
}

/// The keys `summary` has a decision on `texts` read, sorted.
fn read_for(summary: &PackedSummary, texts: &[&str]) -> Vec<u64> {
    let scope = scope(texts);
    let mut keys: Vec<u64> = summary.touching(&scope).collect();
    keys.sort_unstable();
    keys
}

fn sorted(mut keys: Vec<u64>) -> Vec<u64> {
    keys.sort_unstable();
    keys
}

#[test]
fn a_summary_is_read_back_as_it_was_written() {
    let dir = tempfile::tempdir().expect("temp dir");
    let identity = settled_packed_refs(dir.path());
    let rebuild = Rebuild::begin(dir.path()).expect("begun");
    let entries: [(u64, Option<&[u8]>); 4] = [
        (ref_key_of("repo:deploy"), Some(b"repo:deploy")),
        (ref_key_of("path:src"), Some(b"path:src")),
        (ref_key_of("issue:7/ "), Some(b"issue:7/ ")),
        (42, None),
    ];
    rebuild.finish(identity, entries.into_iter());
    let summary = PackedSummary::open(dir.path()).expect("a summary");
    assert_eq!(summary.identity, identity);
    let (repo, path, odd) = (
        ref_key_of("repo:deploy"),
        ref_key_of("path:src"),
        ref_key_of("issue:7/ "),
    );
    // An unknown text is read by every decision, a `repo:` lock by every
    // one about something, the others by those they touch.
    assert_eq!(read_for(&summary, &["issue:7"]), sorted(vec![repo, 42]));
    assert_eq!(read_for(&summary, &["issue:7/ x"]), sorted(vec![repo, 42]));
    assert_eq!(
        read_for(&summary, &["path:src/a.rs"]),
        sorted(vec![repo, path, 42])
    );
    assert_eq!(read_for(&summary, &["path:doc"]), sorted(vec![repo, 42]));
    let trailing = Scope::of([&Resource::parse("issue:7/").expect("a resource")]);
    assert!(!summary.touching(&trailing).any(|key| key == odd));
}

#[test]
fn a_file_changed_within_the_tick_the_rebuild_began_in_is_not_summarised() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rebuild = Rebuild::begin(dir.path()).expect("begun");
    // Written after the rebuild began: in the same tick, or a later one.
    let path = dir.path().join("packed-refs");
    std::fs::write(&path, "# pack-refs with: peeled fully-peeled sorted \n").expect("write");
    let identity = Identity::of(&path).expect("packed-refs");
    rebuild.finish(identity, std::iter::empty());
    assert!(PackedSummary::open(dir.path()).is_none());
    assert_eq!(
        std::fs::read_dir(dir.path().join("grite"))
            .expect("the folder")
            .count(),
        0,
        "the begun file is removed"
    );
}

#[test]
fn a_damaged_or_cut_summary_is_not_believed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let identity = settled_packed_refs(dir.path());
    let entries: [(u64, Option<&[u8]>); 1] = [(7, Some(b"repo:x"))];
    Rebuild::begin(dir.path())
        .expect("begun")
        .finish(identity, entries.into_iter());
    let whole = std::fs::read(path_in(dir.path())).expect("the file");
    assert!(PackedSummary::open(dir.path()).is_some());
    for at in 0..whole.len() {
        let mut bytes = whole.clone();
        bytes[at] ^= 0x01;
        std::fs::write(path_in(dir.path()), &bytes).expect("write");
        // The header must match, and checksums cover the rest.
        let summary = PackedSummary::open(dir.path());
        assert!(summary.is_none(), "a flip at {at} was believed");
    }
    for len in 0..whole.len() {
        std::fs::write(path_in(dir.path()), &whole[..len]).expect("write");
        assert!(PackedSummary::open(dir.path()).is_none(), "cut at {len}");
    }
    let mut longer = whole.clone();
    longer.push(0);
    std::fs::write(path_in(dir.path()), &longer).expect("write");
    assert!(PackedSummary::open(dir.path()).is_none(), "a byte past it");
}

#[test]
fn an_identity_is_read_back_whole() {
    let identity = Identity {
        dev: 1,
        ino: u64::MAX,
        size: 3,
        mtime: (-4, 999_999_999),
        ctime: (i64::MAX, 0),
    };
    assert_eq!(Identity::decode(&identity.encode()), Some(identity));
}
