//! packed-refs without the refs a transaction deletes, for a writer that
//! holds `packed-refs.lock` ([`super::ref_update`]): read once under the
//! lock, it tells what each deleted ref held there, and is written beside
//! the old file, to be renamed over it.

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::path::Path;

use gix::ObjectId;
use gix::bstr::ByteSlice as _;

use super::changes::ApplyError;

/// How the new packed-refs written here is named until it is renamed
/// over the old one: a prefix no file of git's has (git writes
/// `packed-refs.new`), then random letters.
const NEW_FILE_PREFIX: &str = "packed-refs.grite-";

/// packed-refs as read under its lock, without the deleted refs.
pub(super) struct Rewrite {
    /// The id text of each deleted ref packed-refs held, by name.
    removed: HashMap<Vec<u8>, Vec<u8>>,
    /// The new text; `None` when nothing was removed.
    kept: Option<Vec<u8>>,
}

impl Rewrite {
    /// packed-refs of the repository whose common folder is `common`,
    /// without the lines of the refs named `deleted` (each `<id> <name>`,
    /// and the `^<id>` of its peeled id after it). The header and every
    /// other line are kept as they are.
    ///
    /// Also removes the new files that writers killed before renaming them
    /// left beside packed-refs: under the lock, no living writer has one.
    pub fn of(common: &Path, deleted: &HashSet<&[u8]>) -> Result<Rewrite, ApplyError> {
        remove_leftovers(common);
        let path = common.join("packed-refs");
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(ApplyError::Failed(format!("{}: {e}", path.display()))),
        };
        Ok(Rewrite::of_text(&text, deleted))
    }

    fn of_text(text: &[u8], deleted: &HashSet<&[u8]>) -> Rewrite {
        let mut kept = Vec::with_capacity(text.len());
        let mut removed = HashMap::new();
        let mut dropping = false;
        for line in text.lines_with_terminator() {
            if !line.starts_with(b"^") {
                let entry = line
                    .split_once_str(" ")
                    .filter(|_| !line.starts_with(b"#"))
                    .map(|(hex, name)| (hex, name.trim_end()))
                    .filter(|(_, name)| deleted.contains(name));
                dropping = entry.is_some();
                if let Some((hex, name)) = entry {
                    removed.insert(name.to_vec(), hex.to_vec());
                }
            }
            if !dropping {
                kept.extend_from_slice(line);
            }
        }
        Rewrite {
            kept: (!removed.is_empty()).then_some(kept),
            removed,
        }
    }

    /// What packed-refs held for the deleted ref `name`.
    pub fn held(&self, name: &str) -> Result<Option<ObjectId>, ApplyError> {
        let Some(hex) = self.removed.get(name.as_bytes()) else {
            return Ok(None);
        };
        ObjectId::from_hex(hex).map(Some).map_err(|_| {
            ApplyError::Failed(format!("{name} does not hold an object id in packed-refs"))
        })
    }

    /// The new packed-refs written beside the old one in `common`, or
    /// `None` when nothing changed.
    pub fn write(self, common: &Path) -> Result<Option<tempfile::NamedTempFile>, ApplyError> {
        let Some(kept) = self.kept else {
            return Ok(None);
        };
        let failed = |e: std::io::Error| ApplyError::Failed(format!("{}: {e}", common.display()));
        let mut builder = tempfile::Builder::new();
        builder.prefix(NEW_FILE_PREFIX);
        // What git creates packed-refs with (less the umask), where a
        // temporary file would be the owner's alone.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        let mut file = builder.tempfile_in(common).map_err(failed)?;
        file.write_all(&kept).map_err(failed)?;
        Ok(Some(file))
    }
}

/// Removes the new packed-refs files of writers that died holding
/// `packed-refs.lock`; for a caller that holds it. One that cannot be
/// removed stops nothing (its name is random), so it is left.
fn remove_leftovers(common: &Path) {
    let Ok(entries) = std::fs::read_dir(common) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        if entry
            .file_name()
            .as_encoded_bytes()
            .starts_with(NEW_FILE_PREFIX.as_bytes())
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const X: &str = "0123456789abcdef0123456789abcdef01234567";
    const Y: &str = "89abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn packed_refs_loses_only_the_lines_of_deleted_refs() {
        let text = format!("# header\n{X} refs/a\n^{Y}\n{Y} refs/b\n{X} refs/c");
        let deleted = |names: &[&'static str]| -> HashSet<&'static [u8]> {
            names.iter().map(|n| n.as_bytes()).collect()
        };
        let rewrite = |names| Rewrite::of_text(text.as_bytes(), &deleted(names));
        let kept = |names| rewrite(names).kept.map(String::from_utf8);
        assert_eq!(
            kept(&["refs/a"]),
            Some(Ok(format!("# header\n{Y} refs/b\n{X} refs/c")))
        );
        assert_eq!(
            kept(&["refs/c", "refs/b"]),
            Some(Ok(format!("# header\n{X} refs/a\n^{Y}\n")))
        );
        assert_eq!(kept(&["refs/d", "# header"]), None, "nothing to remove");

        let both = rewrite(&["refs/c", "refs/d"]);
        let id = |hex: &str| ObjectId::from_hex(hex.as_bytes()).expect("an id");
        assert_eq!(both.held("refs/c").expect("an id"), Some(id(X)));
        assert_eq!(both.held("refs/d").expect("no line"), None);
        assert_eq!(both.held("refs/a").expect("kept"), None, "not deleted");
        let garbage = Rewrite::of_text(b"zz refs/a\n", &deleted(&["refs/a"]));
        assert!(matches!(garbage.held("refs/a"), Err(ApplyError::Failed(_))));
    }
}
