//! The lock refs, listed as git lists them but without gix's general
//! iteration: their names alone (a directory listing and the names in
//! packed-refs), or their names with what each holds. With 100,000 loose
//! locks, reading each ref file is most of what a full read costs, and
//! gix's iteration sorts every directory by path components and asks each
//! file its size first.
//!
//! The loose files are listed (and read) before packed-refs is read: `git
//! pack-refs` writes packed-refs before it deletes the loose files, so in
//! this order a ref being packed is seen in one place or the other, never
//! in neither. (gix reads packed-refs first, then the loose files, between
//! which a ref can move from one to the other unseen.)

use std::fs::DirEntry;
use std::io::Read as _;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use gix::ObjectId;
use gix::bstr::ByteSlice as _;
use rustix::fs::{CWD, Mode, OFlags, openat};

use super::Error;
use crate::lease::{LOCK_REF_PREFIX, ref_key};

/// The names of the refs under `refs/grite/locks/`, loose and packed,
/// without that prefix (a lock's hash).
#[derive(Debug, Default)]
pub(super) struct LockRefNames {
    /// The names that are hashes as grite writes them, as the numbers they
    /// spell ([`ref_key`]): sorted, without the string of each of 100,000
    /// names, which would cost more than the listing.
    pub keys: Vec<u64>,
    /// Any other valid ref name (another tool's), sorted.
    pub others: Vec<String>,
}

impl LockRefNames {
    fn add(&mut self, name: &str) {
        match ref_key(name) {
            Some(key) => self.keys.push(key),
            None if valid_ref_name(name) => self.others.push(name.to_owned()),
            None => {}
        }
    }

    /// How many names there are.
    pub fn len(&self) -> usize {
        self.keys.len() + self.others.len()
    }
}

/// The names of the lock refs of `repo`.
pub(super) fn lock_ref_names(repo: &gix::Repository) -> Result<LockRefNames, Error> {
    let mut names = LockRefNames::default();
    loose(&lock_ref_dir(repo), "", &mut |name, _, _| {
        names.add(name);
        Ok(())
    })
    .map_err(listing_failed)?;
    if let Some(packed) = packed_refs(repo)? {
        packed_lines(packed.as_ref(), |_, name| names.add(name));
    }
    names.keys.sort_unstable();
    names.keys.dedup();
    names.others.sort_unstable();
    names.others.dedup();
    Ok(names)
}

/// What a lock ref holds, as listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Held {
    Id(ObjectId),
    /// A loose ref file naming another ref (`ref: ...`).
    Symbolic,
    /// A loose ref file that holds neither an object id nor a ref name.
    Garbage,
}

/// A lock ref and what it holds.
#[derive(Debug)]
pub(super) struct ListedRef {
    /// The full name, `refs/grite/locks/...`.
    pub name: String,
    pub held: Held,
}

/// How much of a loose ref file decides what it holds: an object id (of
/// SHA-1 or SHA-256) and the byte after it, or `ref: `. What follows is
/// not read; gix and git ignore it too.
const REF_FILE_HEAD: usize = 65;

/// Every lock ref of `repo` with what it holds, sorted by name; a loose
/// ref hides a packed one of the same name, as in git. A loose file that
/// vanishes between the listing and its read was deleted, or packed (then
/// packed-refs, read after it, has it).
pub(super) fn lock_refs(repo: &gix::Repository) -> Result<Vec<ListedRef>, Error> {
    let hex_len = repo.object_hash().len_in_hex();
    let mut refs = Vec::new();
    let mut folder: Option<(std::path::PathBuf, OwnedFd)> = None;
    loose(&lock_ref_dir(repo), "", &mut |name, dir, entry| {
        if !listable(name) {
            return Ok(());
        }
        let fd = match &folder {
            Some((path, fd)) if path == dir => fd,
            _ => {
                let fd = open(CWD, dir, OFlags::DIRECTORY)?;
                &folder.insert((dir.to_owned(), fd)).1
            }
        };
        match read_ref_file(fd, &entry.file_name(), hex_len + 1) {
            Ok(bytes) => refs.push(ListedRef {
                name: format!("{LOCK_REF_PREFIX}{name}"),
                held: held(bytes.as_slice(), hex_len),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(())
    })
    .map_err(listing_failed)?;
    if let Some(packed) = packed_refs(repo)? {
        packed_lines(packed.as_ref(), |hex, name| {
            let id = ObjectId::from_hex(hex)
                .ok()
                .filter(|_| hex.len() == hex_len);
            if let Some(id) = id
                && listable(name)
            {
                refs.push(ListedRef {
                    name: format!("{LOCK_REF_PREFIX}{name}"),
                    held: Held::Id(id),
                });
            }
        });
    }
    // A stable sort keeps the loose ref, listed first, before a packed
    // one of the same name; `dedup_by` keeps the first of equals.
    refs.sort_by(|a, b| a.name.cmp(&b.name));
    refs.dedup_by(|later, first| later.name == first.name);
    Ok(refs)
}

/// Opens `path` (relative to `dir`) to read, as std opens files.
fn open(dir: impl AsFd, path: impl rustix::path::Arg, flags: OFlags) -> std::io::Result<OwnedFd> {
    Ok(openat(
        dir,
        path,
        OFlags::RDONLY | OFlags::CLOEXEC | flags,
        Mode::empty(),
    )?)
}

/// The first `len` bytes (at most [`REF_FILE_HEAD`]) of the ref file
/// `name` in the folder `dir`, or all of a shorter one: usually one read.
/// Opened without blocking: a named pipe put where the file was listed
/// reads as empty instead of waiting for a writer.
fn read_ref_file(dir: &OwnedFd, name: &std::ffi::OsStr, len: usize) -> std::io::Result<RefHead> {
    let mut file = std::fs::File::from(open(dir, name, OFlags::NONBLOCK)?);
    let mut head = RefHead {
        bytes: [0; REF_FILE_HEAD],
        len: 0,
    };
    let len = len.min(REF_FILE_HEAD);
    while head.len < len {
        match file.read(&mut head.bytes[head.len..len]) {
            Ok(0) => break,
            Ok(n) => head.len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(head)
}

/// What [`read_ref_file`] read, without an allocation per ref.
struct RefHead {
    bytes: [u8; REF_FILE_HEAD],
    len: usize,
}

impl RefHead {
    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// What a loose ref file's `bytes` hold, read as gix reads them: an
/// object id of `hex_len` digits not followed by another digit, or `ref: `
/// and a name.
fn held(bytes: &[u8], hex_len: usize) -> Held {
    if bytes.starts_with(b"ref: ") {
        return Held::Symbolic;
    }
    let id = bytes
        .get(..hex_len)
        .filter(|_| !bytes.get(hex_len).is_some_and(u8::is_ascii_hexdigit))
        .and_then(|hex| ObjectId::from_hex(hex).ok());
    id.map_or(Held::Garbage, Held::Id)
}

fn lock_ref_dir(repo: &gix::Repository) -> std::path::PathBuf {
    repo.common_dir().join(LOCK_REF_PREFIX)
}

fn listing_failed(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::repository("listing lock refs", e)
}

/// packed-refs as it is on disk now, read again: gix's shared copy is
/// trusted while the file's modification time is unchanged, and a second
/// write within one tick of the file system's clock leaves it unchanged.
fn packed_refs(repo: &gix::Repository) -> Result<Option<gix::refs::packed::Buffer>, Error> {
    repo.refs.open_packed_buffer().map_err(listing_failed)
}

/// The lock refs in packed-refs, whose header gix has read: each line
/// `<id> <name>`, or `^<id>` for the peeled id of the line before, given to
/// `found` as the id's text and the name after the lock ref prefix. gix's
/// full decoding of every line costs more than the rest of a read of
/// 100,000 packed locks.
fn packed_lines(bytes: &[u8], mut found: impl FnMut(&[u8], &str)) {
    for line in bytes.lines() {
        let Some(at) = line.find_byte(b' ') else {
            continue;
        };
        let Some(name) = line[at + 1..]
            .strip_prefix(LOCK_REF_PREFIX.as_bytes())
            .and_then(|name| std::str::from_utf8(name).ok())
        else {
            continue;
        };
        found(&line[..at], name);
    }
}

/// Whether `name`, after the lock ref prefix, is listed: a grite hash, or
/// another name that makes a valid ref name.
fn listable(name: &str) -> bool {
    ref_key(name).is_some() || valid_ref_name(name)
}

/// Whether `name`, after the lock ref prefix, makes a valid ref name (a
/// grite hash always does).
fn valid_ref_name(name: &str) -> bool {
    gix::refs::FullName::try_from(format!("{LOCK_REF_PREFIX}{name}")).is_ok()
}

/// The ref files under `dir`, the folder of the lock refs whose names
/// (after the lock ref prefix) start with `prefix`: each regular file is
/// given to `found` with its name after the lock ref prefix, its folder
/// and its directory entry. `found` leaves out the names that are not
/// valid ref names, as git and gix do (such as the `.lock` files of
/// writes under way).
fn loose(
    dir: &Path,
    prefix: &str,
    found: &mut dyn FnMut(&str, &Path, &DirEntry) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        // Removed and recreated as a file by a racing writer: a folder
        // that is not there holds no refs.
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut name = String::new();
    for entry in entries {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        name.clear();
        name.push_str(prefix);
        name.push_str(file_name);
        let kind = match entry.file_type() {
            Ok(kind) => kind,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if kind.is_dir() {
            loose(&entry.path(), &format!("{name}/"), found)?;
        } else if kind.is_file() {
            found(&name, dir, &entry)?;
        }
    }
    Ok(())
}

#[cfg(test)]
pub(in crate::store) mod tests {
    use super::*;

    const A: &str = "0123456789abcdef0123456789abcdef01234567";
    const B: &str = "89abcdef0123456789abcdef0123456789abcdef";

    fn id(hex: &str) -> ObjectId {
        ObjectId::from_hex(hex.as_bytes()).expect("an id")
    }

    #[test]
    fn a_ref_file_holds_an_id_a_ref_name_or_garbage_as_gix_reads_it() {
        assert_eq!(held(format!("{A}\n").as_bytes(), 40), Held::Id(id(A)));
        assert_eq!(held(A.as_bytes(), 40), Held::Id(id(A)));
        assert_eq!(held(format!("{A} x\n").as_bytes(), 40), Held::Id(id(A)));
        assert_eq!(held(b"ref: refs/heads/main\n", 40), Held::Symbolic);
        assert_eq!(held(format!("{A}0\n").as_bytes(), 40), Held::Garbage);
        assert_eq!(held(&A.as_bytes()[..39], 40), Held::Garbage);
        assert_eq!(held(b"", 40), Held::Garbage);
        assert_eq!(
            held(b"zz23456789abcdef0123456789abcdef01234567", 40),
            Held::Garbage
        );
    }

    #[test]
    fn a_ref_file_is_read_as_far_as_it_decides() {
        let dir = tempfile::tempdir().expect("temp dir");
        let write = |name: &str, content: &[u8]| {
            std::fs::write(dir.path().join(name), content).expect("a ref file");
        };
        write("id", format!("{A}\n").as_bytes());
        write("long", format!("{A} {}", "x".repeat(1 << 20)).as_bytes());
        write("short", b"0123");
        let folder = open(CWD, dir.path(), OFlags::DIRECTORY).expect("the folder");
        let read = |name: &str| {
            let head = read_ref_file(&folder, name.as_ref(), 41).expect("read");
            (head.as_slice().to_vec(), held(head.as_slice(), 40))
        };
        assert_eq!(read("id"), (format!("{A}\n").into_bytes(), Held::Id(id(A))));
        assert_eq!(
            read("long"),
            (format!("{A} ").into_bytes(), Held::Id(id(A)))
        );
        assert_eq!(read("short"), (b"0123".to_vec(), Held::Garbage));
        let gone = read_ref_file(&folder, "gone".as_ref(), 41).err();
        assert_eq!(gone.map(|e| e.kind()), Some(std::io::ErrorKind::NotFound));
        rustix::fs::mknodat(
            CWD,
            dir.path().join("pipe"),
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .expect("a named pipe");
        assert_eq!(read("pipe"), (Vec::new(), Held::Garbage));
    }

    /// Writes packed-refs with `refs` (name after the lock ref prefix and
    /// id), keeping the modification time it had, if any: a second write
    /// within one tick of the file system's clock.
    pub(in crate::store) fn write_packed_refs_in_one_tick(git_dir: &Path, refs: &[(&str, &str)]) {
        let path = git_dir.join("packed-refs");
        let tick = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        let mut text = "# pack-refs with: peeled fully-peeled sorted \n".to_owned();
        for (name, id) in refs {
            text.push_str(&format!("{id} {LOCK_REF_PREFIX}{name}\n"));
        }
        std::fs::write(&path, text).expect("packed-refs");
        if let Some(tick) = tick {
            let file = std::fs::File::options()
                .write(true)
                .open(&path)
                .expect("open");
            file.set_modified(tick).expect("set its time");
        }
    }

    #[test]
    fn packed_refs_rewritten_within_one_tick_are_read_as_they_are_now() {
        let dir = tempfile::tempdir().expect("temp dir");
        let repo = gix::init_bare(dir.path()).expect("a repository");
        write_packed_refs_in_one_tick(dir.path(), &[("aaaaaaaaaaaaaaaa", A)]);
        // gix keeps this copy while the file's time does not change.
        assert!(repo.refs.cached_packed_buffer().expect("read").is_some());
        write_packed_refs_in_one_tick(
            dir.path(),
            &[("aaaaaaaaaaaaaaaa", A), ("bbbbbbbbbbbbbbbb", B)],
        );
        let listed: Vec<String> = lock_refs(&repo)
            .expect("a listing")
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(
            listed,
            [
                format!("{LOCK_REF_PREFIX}aaaaaaaaaaaaaaaa"),
                format!("{LOCK_REF_PREFIX}bbbbbbbbbbbbbbbb")
            ]
        );
        let names = lock_ref_names(&repo).expect("the names");
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
        let listed: Vec<(String, Held)> = lock_refs(&repo)
            .expect("a listing")
            .into_iter()
            .map(|r| (r.name, r.held))
            .collect();
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
        let names = lock_ref_names(&repo).expect("the names");
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
    }
}
