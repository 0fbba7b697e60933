//! Unit tests of the lock ref listing in `ref_names.rs`: loose files
//! before packed-refs, packed-refs read as it is now, names listed once.

use super::*;

const A: &str = "0123456789abcdef0123456789abcdef01234567";
const B: &str = "89abcdef0123456789abcdef0123456789abcdef";

fn id(hex: &str) -> ObjectId {
    ObjectId::from_hex(hex.as_bytes()).expect("an id")
}

/// A bare repository whose packed-refs gix has read holding the lock
/// ref `aaaaaaaaaaaaaaaa`, then written again with `bbbbbbbbbbbbbbbb`
/// too and its modification time kept, as by a second write within one
/// tick of the file system's clock; and the full names of both refs.
pub(in crate::store) fn packed_twice_in_one_tick()
-> (tempfile::TempDir, gix::Repository, [String; 2]) {
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = gix::init_bare(dir.path()).expect("a repository");
    let path = dir.path().join("packed-refs");
    let header = "# pack-refs with: peeled fully-peeled sorted \n";
    let line = |name: &str, id: &str| format!("{id} {LOCK_REF_PREFIX}{name}\n");
    let first = line("aaaaaaaaaaaaaaaa", A);
    std::fs::write(&path, format!("{header}{first}")).expect("packed-refs");
    // gix keeps this copy while the file's time does not change.
    assert!(repo.refs.cached_packed_buffer().expect("read").is_some());
    let tick = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .expect("its time");
    let second = line("bbbbbbbbbbbbbbbb", B);
    std::fs::write(&path, format!("{header}{first}{second}")).expect("packed-refs");
    let file = std::fs::File::options()
        .write(true)
        .open(&path)
        .expect("open");
    file.set_modified(tick).expect("set its time");
    let names = ["aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"].map(|n| format!("{LOCK_REF_PREFIX}{n}"));
    (dir, repo, names)
}

#[test]
fn packed_refs_rewritten_within_one_tick_are_read_as_they_are_now() {
    let (_dir, repo, both) = packed_twice_in_one_tick();
    let listed: Vec<String> = lock_refs(&repo)
        .map(|listing| listing.refs)
        .expect("a listing")
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(listed, both);
    let names = lock_ref_names(&repo, None, false).expect("the names");
    assert_eq!(names.keys, [0xaaaa_aaaa_aaaa_aaaa, 0xbbbb_bbbb_bbbb_bbbb]);
}

#[test]
fn loose_refs_hide_packed_ones_and_every_name_is_listed_once_in_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = gix::init_bare(dir.path()).expect("a repository");
    let locks = dir.path().join(LOCK_REF_PREFIX);
    std::fs::create_dir_all(locks.join("other")).expect("mkdir");
    let write = |name: &str, content: &str| {
        std::fs::write(locks.join(name), content).expect("a ref file");
    };
    write("bbbbbbbbbbbbbbbb", &format!("{A}\n"));
    write("cccccccccccccccc", "not an id\n");
    write("dddddddddddddddd", "ref: refs/heads/main\n");
    write("eeeeeeeeeeeeeeee.lock", &format!("{A}\n"));
    write("other/tool", &format!("{B}\n"));
    std::fs::write(
        dir.path().join("packed-refs"),
        format!(
            "# pack-refs with: peeled fully-peeled sorted \n\
             {B} {LOCK_REF_PREFIX}aaaaaaaaaaaaaaaa\n\
             {B} {LOCK_REF_PREFIX}bbbbbbbbbbbbbbbb\n\
             ^{A}\n\
             {B} refs/heads/main\n"
        ),
    )
    .expect("packed-refs");
    let listing = lock_refs(&repo).expect("a listing");
    assert_eq!(listing.loose, 4, "every file but the lock file");
    let listed: Vec<(String, Held)> = listing.refs.into_iter().map(|r| (r.name, r.held)).collect();
    let full = |name: &str| format!("{LOCK_REF_PREFIX}{name}");
    assert_eq!(
        listed,
        vec![
            (full("aaaaaaaaaaaaaaaa"), Held::Id(id(B))),
            (full("bbbbbbbbbbbbbbbb"), Held::Id(id(A))),
            (full("cccccccccccccccc"), Held::Garbage),
            (full("dddddddddddddddd"), Held::Symbolic),
            (full("other/tool"), Held::Id(id(B))),
        ]
    );
    let names = lock_ref_names(&repo, None, false).expect("the names");
    let keys: Vec<String> = names.keys.iter().map(|k| format!("{k:016x}")).collect();
    assert_eq!(
        keys,
        [
            "aaaaaaaaaaaaaaaa",
            "bbbbbbbbbbbbbbbb",
            "cccccccccccccccc",
            "dddddddddddddddd"
        ]
    );
    assert_eq!(names.others, ["other/tool"]);
    assert_eq!(names.loose, 4);
}

/// packed-refs with refs sorted before and after the lock refs, written
/// sorted or not (gix sorts a file whose header does not say it is).
#[test]
fn the_lock_refs_are_found_among_packed_refs_before_and_after_them() {
    let others = [
        "refs/changes/01/1/1",
        "refs/grite/lock-versions/00",
        "refs/grite/locksmith",
        "refs/heads/main",
        "refs/pull/1/head",
        "refs/tags/v1",
    ];
    let locks = ["0000000000000001", "7777777777777777", "ffffffffffffffff"];
    let mut lines: Vec<String> = others.iter().map(|name| format!("{B} {name}\n")).collect();
    lines.extend(locks.iter().map(|l| format!("{A} {LOCK_REF_PREFIX}{l}\n")));
    for header in ["# pack-refs with: peeled fully-peeled sorted \n", ""] {
        let dir = tempfile::tempdir().expect("temp dir");
        let repo = gix::init_bare(dir.path()).expect("a repository");
        let mut sorted = lines.clone();
        sorted.sort();
        let body = if header.is_empty() {
            lines.concat()
        } else {
            sorted.concat()
        };
        std::fs::write(dir.path().join("packed-refs"), format!("{header}{body}"))
            .expect("packed-refs");
        let listed: Vec<String> = lock_refs(&repo)
            .expect("a listing")
            .refs
            .into_iter()
            .map(|r| r.name)
            .collect();
        let full: Vec<String> = locks
            .iter()
            .map(|l| format!("{LOCK_REF_PREFIX}{l}"))
            .collect();
        assert_eq!(listed, full, "header {header:?}");
        let names = lock_ref_names(&repo, None, false).expect("the names");
        assert_eq!(
            names.keys,
            [1, 0x7777_7777_7777_7777, u64::MAX],
            "header {header:?}"
        );
        assert!(names.others.is_empty(), "{:?}", names.others);
    }
}

/// Lines in the run of lock refs that are not as grite writes them (other
/// tools' names, a peeled id, a damaged line, a longer id) are read the
/// slow way, and none of them ends the run before the lock refs after it.
#[test]
fn every_lock_ref_of_a_run_is_found_whatever_lines_are_in_it() {
    let long = format!("{A}{}", &B[..24]);
    let body = [
        format!("{B} refs/bisect/bad\n"),
        format!("{A} {LOCK_REF_PREFIX}0000000000000001\n"),
        format!("^{B}\n"),
        format!("{A} {LOCK_REF_PREFIX}0000000000000002/tool\n"),
        format!("{A} {LOCK_REF_PREFIX}000000000000000g\n"),
        // A short name, then a line that ends where a grite name would.
        format!("{A} {LOCK_REF_PREFIX}abc\n0123456789ab\n"),
        "not a line at all\n".to_owned(),
        format!("{} refs/tags/damaged-id\n", "z".repeat(40)),
        format!("{A} refs/heads/damaged-in-the-middle\n").replace(' ', "  "),
        format!("{A} {LOCK_REF_PREFIX}0000000000000003\n"),
        format!("{long} {LOCK_REF_PREFIX}0000000000000004\n"),
        format!("{A} {LOCK_REF_PREFIX}0000000000000005\n"),
        format!("{B} refs/heads/main\n"),
        format!("{A} {LOCK_REF_PREFIX}0000000000000006\n"),
    ]
    .concat();
    let mut names = Vec::new();
    packed_lines(body.as_bytes(), |id, name, key| {
        let name = String::from_utf8_lossy(name).into_owned();
        if let Some(key) = key {
            assert_eq!(format!("{key:016x}"), name, "the key a name spells");
        }
        names.push((id.len(), name));
    });
    let expected = [
        (40, "0000000000000001"),
        (40, "0000000000000002/tool"),
        (40, "000000000000000g"),
        (40, "abc"),
        (40, "0000000000000003"),
        (64, "0000000000000004"),
        (40, "0000000000000005"),
    ];
    let expected: Vec<(usize, String)> = expected
        .iter()
        .map(|(len, name)| (*len, (*name).to_owned()))
        .collect();
    assert_eq!(names, expected, "the run ends at refs/heads/main");
}
