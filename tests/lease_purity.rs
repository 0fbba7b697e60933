//! The lease room stays pure (see DESIGN.md): nothing under `src/lease/`
//! may name the file system, the network, a clock or the git library.

use std::path::Path;

const FORBIDDEN: [&str; 5] = [
    "std::fs",
    "std::net",
    "SystemTime::now",
    "Instant::now",
    "gix",
];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source directory") {
        let path = entry.expect("readable entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn lease_names_no_file_system_network_clock_or_git() {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lease"),
        &mut files,
    );
    assert!(files.len() >= 5, "the lease room is missing: {files:?}");
    let mut offences = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable source file");
        for (n, line) in text.lines().enumerate() {
            for word in FORBIDDEN {
                let named = line.match_indices(word).any(|(at, _)| {
                    // `gix` must stand as a word, not inside another one.
                    let before = line[..at].chars().next_back();
                    let after = line[at + word.len()..].chars().next();
                    let is_word =
                        |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
                    !is_word(before) && !is_word(after)
                });
                if named {
                    offences.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "impure lease code:\n{}",
        offences.join("\n")
    );
}
