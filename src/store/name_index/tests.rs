//! Unit tests of the name cache in `name_index.rs`: what is learnt is kept,
//! damage is never believed, and the file is written whole again when it
//! is mostly stale, much appended to, or of another version.

use super::*;

fn file(dir: &Path) -> PathBuf {
    dir.join("grite/lock-names.cache")
}

/// A cache file holding `content`, as something other than grite wrote it.
fn planted(dir: &Path, content: &[u8]) {
    std::fs::create_dir_all(dir.join("grite")).expect("mkdir");
    std::fs::write(file(dir), content).expect("write");
}

/// The text `index` gives `key`, as the string it is.
fn told(index: &NameIndex, key: u64) -> Option<&str> {
    index
        .text(key)
        .map(|text| std::str::from_utf8(text).expect("a text is UTF-8"))
}

fn saved(index: NameIndex, listed: &[&str]) {
    index.save(listed.len(), listed.iter().map(|t| ref_key_of(t)));
}

/// A file holding `texts`, as a process that learnt them writes it.
fn written(dir: &Path, texts: &[&str]) -> Vec<u8> {
    let mut index = NameIndex::open(dir);
    texts.iter().for_each(|t| index.learn(t));
    saved(index, texts);
    std::fs::read(file(dir)).expect("the file")
}

#[test]
fn keeps_what_was_learnt_and_appends_the_rest() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut index = NameIndex::open(dir.path());
    assert_eq!(told(&index, ref_key_of("issue:1")), None);
    index.learn("issue:1");
    saved(index, &["issue:1"]);
    let mut index = NameIndex::open(dir.path());
    assert_eq!(told(&index, ref_key_of("issue:1")), Some("issue:1"));
    assert!(!index.rebuild);
    let whole = std::fs::metadata(file(dir.path())).expect("file").len();
    index.learn("path:a\nb");
    saved(index, &["issue:1", "path:a\nb"]);
    let appended = std::fs::metadata(file(dir.path())).expect("file").len();
    let chunk = (CHUNK_HEAD + ENTRY + "path:a\nb".len() + CHUNK_TAIL) as u64;
    assert_eq!(appended, whole + chunk, "one chunk appended");
    let index = NameIndex::open(dir.path());
    assert_eq!(told(&index, ref_key_of("path:a\nb")), Some("path:a\nb"));
    assert_eq!(told(&index, ref_key_of("issue:1")), Some("issue:1"));
    assert_eq!(index.stored, 2);
    assert!(!index.rebuild);
}

/// A text learnt from a record wins over the file's for the same key
/// (which no grite writes, but a whole chunk from elsewhere may hold), and
/// replaces it when the file is written whole.
#[test]
fn a_learnt_text_wins_over_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = ref_key_of("issue:1");
    planted(
        dir.path(),
        &[HEADER, &chunk(&[(key, b"issue:2".as_slice())])].concat(),
    );
    let mut index = NameIndex::open(dir.path());
    assert_eq!(told(&index, key), Some("issue:2"), "the file is trusted");
    index.learn("issue:1");
    assert_eq!(told(&index, key), Some("issue:1"));
    index.rewrite(|_| true).expect("written whole");
    assert_eq!(told(&NameIndex::open(dir.path()), key), Some("issue:1"));
}

#[test]
fn a_cut_off_chunk_is_dropped_with_what_follows_and_the_file_rewritten() {
    let dir = tempfile::tempdir().expect("temp dir");
    written(dir.path(), &["issue:1"]);
    let mut index = NameIndex::open(dir.path());
    index.learn("issue:2");
    saved(index, &["issue:1", "issue:2"]);
    let mut bytes = std::fs::read(file(dir.path())).expect("file");
    bytes.pop();
    std::fs::write(file(dir.path()), &bytes).expect("write");
    let index = NameIndex::open(dir.path());
    assert_eq!(told(&index, ref_key_of("issue:1")), Some("issue:1"));
    assert_eq!(told(&index, ref_key_of("issue:2")), None);
    assert!(index.rebuild);
    saved(index, &["issue:1"]);
    let index = NameIndex::open(dir.path());
    assert!(!index.rebuild, "written whole again");
    assert_eq!(told(&index, ref_key_of("issue:1")), Some("issue:1"));
}

/// A file grite did not write as version 2 (version 1's JSON lines, or
/// garbage) is not read, and is replaced by the next save.
#[test]
fn a_file_of_another_version_or_garbage_is_replaced() {
    let others: [&[u8]; 2] = [
        b"grite lock-names 1\n\"issue:1\"\n",
        &[0xff, 0xfe, 0x00, 0x12],
    ];
    for content in others {
        let dir = tempfile::tempdir().expect("temp dir");
        planted(dir.path(), content);
        let mut index = NameIndex::open(dir.path());
        assert_eq!(told(&index, ref_key_of("issue:1")), None, "{content:?}");
        assert!(index.rebuild, "{content:?}");
        index.learn("issue:1");
        saved(index, &["issue:1"]);
        let index = NameIndex::open(dir.path());
        assert_eq!(
            told(&index, ref_key_of("issue:1")),
            Some("issue:1"),
            "{content:?}"
        );
    }
}

#[test]
fn texts_of_refs_that_are_gone_are_dropped_once_they_are_most() {
    let dir = tempfile::tempdir().expect("temp dir");
    let texts: Vec<String> = (0..SLACK + 10).map(|i| format!("issue:{i}")).collect();
    written(
        dir.path(),
        &texts.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let index = NameIndex::open(dir.path());
    assert_eq!(index.stored, SLACK + 10);
    saved(index, &["issue:0"]);
    let index = NameIndex::open(dir.path());
    assert_eq!(index.stored, 1);
    assert_eq!(told(&index, ref_key_of("issue:0")), Some("issue:0"));
}

#[test]
fn every_key_is_found_in_any_order_of_asking() {
    let dir = tempfile::tempdir().expect("temp dir");
    let texts: Vec<String> = (0..1000).map(|i| format!("issue:{i}")).collect();
    written(
        dir.path(),
        &texts.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let index = NameIndex::open(dir.path());
    let mut keys: Vec<(u64, Option<&str>)> = texts
        .iter()
        .map(|t| (ref_key_of(t), Some(t.as_str())))
        .collect();
    // Keys between the known ones, and beyond both ends, are unknown.
    let unknown: Vec<u64> = keys.iter().map(|(k, _)| k.wrapping_add(1)).collect();
    keys.extend(unknown.iter().map(|k| (*k, None)));
    keys.extend([(0, None), (u64::MAX, None)]);
    keys.sort_by_key(|(k, _)| *k);
    let ask = |order: &[(u64, Option<&str>)]| {
        for (key, text) in order {
            assert_eq!(told(&index, *key), *text, "key {key:016x}");
        }
    };
    ask(&keys);
    keys.reverse();
    ask(&keys);
    let scattered: Vec<_> = (0..keys.len())
        .map(|i| keys[i * 7919 % keys.len()])
        .collect();
    ask(&scattered);
    ask(&keys[..10]);
}

/// A first chunk whose keys are out of order (not as grite writes it, but
/// whole) is read as appended chunks are: every text is found, and the
/// next save writes the file in order.
#[test]
fn a_first_chunk_out_of_order_is_read_all_the_same_and_written_in_order() {
    let texts: Vec<String> = (0..SLACK + 100).map(|i| format!("issue:{i}")).collect();
    let all: Vec<&str> = texts.iter().map(String::as_str).collect();
    let mut entries: Vec<(u64, &[u8])> =
        all.iter().map(|t| (ref_key_of(t), t.as_bytes())).collect();
    entries.sort_by_key(|(key, _)| std::cmp::Reverse(*key));
    let dir = tempfile::tempdir().expect("temp dir");
    planted(dir.path(), &[HEADER, &chunk(&entries)].concat());
    let index = NameIndex::open(dir.path());
    assert!(!index.rebuild);
    assert_eq!(index.unsorted(), all.len(), "none of it in order");
    for (key, text) in &entries {
        assert_eq!(index.text(*key), Some(*text));
    }
    saved(index, &all);
    let index = NameIndex::open(dir.path());
    assert_eq!(index.unsorted(), 0, "written in order");
    for (key, text) in &entries {
        assert_eq!(index.text(*key), Some(*text));
    }
}

#[test]
fn a_file_much_appended_to_is_written_in_order_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let texts: Vec<String> = (0..2 * SLACK + 10).map(|i| format!("issue:{i}")).collect();
    let all: Vec<&str> = texts.iter().map(String::as_str).collect();
    written(dir.path(), &all[..SLACK]);
    assert_eq!(
        NameIndex::open(dir.path()).unsorted(),
        0,
        "written in order"
    );
    let mut index = NameIndex::open(dir.path());
    all[SLACK..].iter().for_each(|t| index.learn(t));
    saved(index, &all);
    let index = NameIndex::open(dir.path());
    assert!(index.unsorted() > SLACK, "appended");
    saved(index, &all);
    let index = NameIndex::open(dir.path());
    assert_eq!(index.unsorted(), 0, "written whole again");
    assert_eq!(index.stored, all.len());
}

/// A chunk whose checksum holds but whose text lengths do not fit its
/// texts (not one grite writes) is dropped whole: none of its keys is
/// known, and no lookup reads past the texts.
#[test]
fn a_chunk_whose_lengths_do_not_fit_its_texts_is_dropped_whole() {
    let texts = ["issue:1", "issue:é"];
    let keys: Vec<u64> = texts.iter().map(|t| ref_key_of(t)).collect();
    let all: String = texts.concat();
    for lens in [[7u16, 3], [7, 9], [9, 0], [14, 1]] {
        let mut chunk = Vec::new();
        chunk.extend(2u32.to_le_bytes());
        chunk.extend(u32::try_from(all.len()).expect("short").to_le_bytes());
        keys.iter().for_each(|k| chunk.extend(k.to_le_bytes()));
        lens.iter().for_each(|l| chunk.extend(l.to_le_bytes()));
        chunk.extend(all.as_bytes());
        chunk.extend(crc32fast::hash(&chunk).to_le_bytes());
        let dir = tempfile::tempdir().expect("temp dir");
        planted(dir.path(), &[HEADER, &chunk].concat());
        let index = NameIndex::open(dir.path());
        for key in &keys {
            assert_eq!(told(&index, *key), None, "lengths {lens:?}");
        }
        assert!(index.rebuild, "lengths {lens:?}");
    }
}

proptest::proptest! {
    /// Whatever happens to the file, a ref key is never told a text
    /// that is not its own: a text the index gives hashes to the key
    /// it was asked about.
    #[test]
    fn damage_never_gives_a_key_another_text(
        texts in proptest::collection::vec("(issue|path|repo):[a-z/é]{1,12}", 1..40),
        appended in proptest::collection::vec("issue:[0-9]{1,6}", 0..10),
        at in 0usize..4096,
        flip in 1u8..=255,
        cut in proptest::bool::ANY,
    ) {
        let dir = tempfile::tempdir().expect("temp dir");
        let first: Vec<&str> = texts.iter().map(String::as_str).collect();
        written(dir.path(), &first);
        let mut index = NameIndex::open(dir.path());
        appended.iter().for_each(|t| index.learn(t));
        saved(index, &first);
        let mut bytes = std::fs::read(file(dir.path())).expect("file");
        let at = at % bytes.len();
        if cut {
            bytes.truncate(at);
        } else {
            bytes[at] ^= flip;
        }
        std::fs::write(file(dir.path()), &bytes).expect("write");
        let index = NameIndex::open(dir.path());
        for text in texts.iter().chain(&appended) {
            let told = told(&index, ref_key_of(text));
            proptest::prop_assert!(told.is_none_or(|t| t == text), "{text:?} told {told:?}");
        }
        for (key, _) in index.entries() {
            let told = told(&index, key).expect("a stored key");
            proptest::prop_assert_eq!(ref_key_of(told), key);
        }
    }
}
