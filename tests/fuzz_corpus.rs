//! Replays the committed seed corpus of every fuzz target through the same
//! checks the fuzzers run, so the suite exercises them on every run.

use std::path::Path;

use grite_locks::fuzzing::{check_receive_pack, check_record, check_resource, check_ttl};

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut count = 0;
    for entry in entries {
        let path = entry.expect("readable corpus directory").path();
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        check(&data);
        count += 1;
    }
    count
}

#[test]
fn resource_corpus_passes_the_resource_checks() {
    assert!(replay("resource", check_resource) >= 10);
}

#[test]
fn ttl_corpus_passes_the_ttl_checks() {
    assert!(replay("ttl", check_ttl) >= 10);
}

#[test]
fn record_corpus_passes_the_record_checks() {
    assert!(replay("record", check_record) >= 5);
}

#[test]
fn receive_pack_corpus_passes_the_protocol_checks() {
    assert!(replay("receive_pack", check_receive_pack) >= 8);
}
