//! What one loose ref file holds, read without gix's general lookup:
//! each file opened relative to its folder (one path walk per folder,
//! not per ref), without blocking, and read only as far as decides it.

use std::ffi::OsStr;
use std::io::Read as _;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use gix::ObjectId;
use rustix::fs::{CWD, Mode, OFlags, openat};

/// What a lock ref holds, as listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Held {
    Id(ObjectId),
    /// A loose ref file naming another ref (`ref: ...`).
    Symbolic,
    /// A loose ref file that holds neither an object id nor a ref name.
    Garbage,
}

/// How much of a loose ref file decides what it holds: an object id (of
/// SHA-1 or SHA-256) and the byte after it, or `ref: `. What follows is
/// not read; gix and git ignore it too.
const REF_FILE_HEAD: usize = 65;

/// Reads the ref files of one folder after another, keeping the folder
/// last opened.
pub(super) struct RefFiles {
    hex_len: usize,
    folder: Option<(PathBuf, OwnedFd)>,
}

impl RefFiles {
    /// A reader of ref files holding object ids of `hex_len` digits.
    pub fn new(hex_len: usize) -> RefFiles {
        RefFiles {
            hex_len,
            folder: None,
        }
    }

    /// What the ref file `name` in the folder `dir` holds.
    pub fn held(&mut self, dir: &Path, name: &OsStr) -> std::io::Result<Held> {
        let fd = match &self.folder {
            Some((path, fd)) if path == dir => fd,
            _ => {
                let fd = open(CWD, dir, OFlags::DIRECTORY)?;
                &self.folder.insert((dir.to_owned(), fd)).1
            }
        };
        let head = read_ref_file(fd, name, self.hex_len + 1)?;
        Ok(held(head.as_slice(), self.hex_len))
    }
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
fn read_ref_file(dir: &OwnedFd, name: &OsStr, len: usize) -> std::io::Result<RefHead> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0123456789abcdef0123456789abcdef01234567";

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
}
