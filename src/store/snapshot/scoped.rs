//! The read of the locks a decision on some resources depends on
//! ([`Scope::of`]), which lists the lock refs, or only the loose ones while
//! the [`PackedSummary`] of packed-refs holds (`docs/PROTOCOL.md` §7).

use super::{Entry, Reader};
use crate::lease::{Scope, ref_hash_of_key, ref_key_of, solitary};
use crate::store::Error;
use crate::store::name_index::NameIndex;
use crate::store::packed_summary::{Identity, PackedSummary, Rebuild};
use crate::store::ref_names::{Packed, lock_ref_names};

/// Loose lock refs past which a read that need not list packed-refs looks
/// their texts up in the name cache, rather than reading each: among
/// 100,000 packed locks and 16 loose ones, an acquire and a release took
/// 11.0 to 13.2 ms reading the loose ones, and 12.3 to 15.9 ms loading
/// the cache of 100,000 names to leave them unread.
const READ_LOOSE_IN_FULL: usize = 16;

/// Reads the locks of `scope` (neither every lock nor its own alone) into
/// `entries`: those whose ref the listing finds and whose text touches it
/// or is not known. packed-refs is not listed when the summary of it
/// kept beside the caches ([`PackedSummary`]) still holds. Returns how many
/// lock refs were loose.
pub(super) fn read_scope(
    repo: &gix::Repository,
    scope: &Scope,
    mut reader: Reader<'_>,
    entries: &mut Vec<Entry>,
) -> Result<usize, Error> {
    let common = repo.common_dir();
    let summary = PackedSummary::open(common);
    // A summary of another packed-refs is written anew from this read,
    // begun before the listing reads the file.
    let current = Identity::of(&common.join("packed-refs"));
    let rebuild = (current.is_some() && current != summary.as_ref().map(|s| s.identity))
        .then(|| Rebuild::begin(common))
        .flatten();
    let mut names = lock_ref_names(repo, summary, rebuild.is_some())?;
    let mut read = |name: &str, reader: &mut Reader<'_>| -> Result<(), Error> {
        let listed = names.refs.read(repo, name)?;
        entries.extend(listed.map(|listed| reader.listed(listed)));
        Ok(())
    };
    if let Packed::Known(summary) = &names.packed {
        if names.keys.len() > READ_LOOSE_IN_FULL {
            reader.names = Some(NameIndex::open(common));
        }
        // `keys` holds the loose names alone.
        let mut keys: Vec<u64> = names
            .keys
            .iter()
            .copied()
            .filter(|key| reader.wanted(scope, *key))
            .chain(summary.touching(scope))
            .chain(scope.solitary_texts().map(|text| ref_key_of(&text)))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        for key in keys {
            read(&ref_hash_of_key(key), &mut reader)?;
        }
    } else {
        reader.names = Some(NameIndex::open(common));
        for &key in &names.keys {
            if reader.wanted(scope, key) {
                read(&ref_hash_of_key(key), &mut reader)?;
            }
        }
    }
    // No grite tool writes these names, so the name cache cannot know
    // them: each is read in full.
    for name in &names.others {
        read(name, &mut reader)?;
    }
    entries.sort_by(|a, b| a.ref_name.cmp(&b.ref_name));
    if let (Some(rebuild), Packed::Listed(Some((identity, packed))), Some(index)) =
        (rebuild, &names.packed, &reader.names)
    {
        let unsolitary = packed.iter().filter_map(|&key| match index.text(key) {
            Some(text) if solitary(text) => None,
            text => Some((key, text)),
        });
        rebuild.finish(*identity, unsolitary);
    }
    let loose = names.loose;
    if matches!(names.packed, Packed::Known(_)) {
        reader.save_learnt();
    } else {
        reader.save(names.len(), names.keys.iter().copied());
    }
    Ok(loose)
}
