//! What `grite lock check` checks: the resources named, the paths staged
//! for commit, and the paths on standard input.

use std::collections::BTreeSet;
use std::io::Read as _;
use std::path::Path;
use std::process::Command;

use super::args::CheckArgs;
use super::error::CliError;
use super::inputs::named;
use crate::lease::Resource;

/// The most bytes of paths read from standard input: far more than the
/// paths of any commit, and a bound on what a runaway producer costs.
const MAX_STDIN_PATHS: u64 = 256 * 1024 * 1024;

/// The resources `args` names, before the repository is opened: the ones
/// typed, then the paths on standard input. Staged paths come later, from
/// the repository ([`staged`]).
pub fn named_and_piped(args: &CheckArgs) -> Result<Vec<Resource>, CliError> {
    let mut resources = named(args.texts())?;
    if !args.staged && !args.paths_from_stdin && resources.is_empty() {
        return Err(CliError::usage(
            "name a resource, or give --staged or --paths-from-stdin",
        ));
    }
    if args.paths_from_stdin {
        let mut bytes = Vec::new();
        std::io::stdin()
            .take(MAX_STDIN_PATHS + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| CliError::usage(&format!("standard input cannot be read: {e}")))?;
        if bytes.len() as u64 > MAX_STDIN_PATHS {
            return Err(CliError::usage(&format!(
                "more than {} MiB of paths on standard input",
                MAX_STDIN_PATHS >> 20
            )));
        }
        let separator = if args.nul { b'\0' } else { b'\n' };
        resources.extend(paths(&bytes, separator));
    }
    Ok(resources)
}

/// The paths staged for commit in the worktree `top` (the index git
/// commit would use, `GIT_INDEX_FILE` included), as resources. Asked of
/// git itself, as the hook that calls this runs inside git; a bare
/// repository has nothing staged.
pub fn staged(top: Option<&Path>) -> Result<Vec<Resource>, CliError> {
    let top = top.ok_or_else(|| {
        CliError::staged(
            "this is a bare repository: it has no worktree and nothing is committed in it",
        )
    })?;
    let out = Command::new("git")
        .current_dir(top)
        .args([
            "diff",
            "--cached",
            "--name-only",
            "-z",
            "--no-renames",
            "--no-ext-diff",
        ])
        .output()
        .map_err(|e| CliError::staged(&format!("git cannot be run: {e}")))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        return Err(CliError::staged(said.trim()));
    }
    Ok(paths(&out.stdout, b'\0'))
}

/// `path:` resources for the paths in `bytes`, each once, sorted. A path
/// that cannot be a resource (not UTF-8, a control character) is checked
/// as its nearest directory that can: a lock on a directory covers it.
fn paths(bytes: &[u8], separator: u8) -> Vec<Resource> {
    let mut seen = BTreeSet::new();
    for path in bytes.split(|b| *b == separator) {
        let path = path.strip_suffix(b"\r").unwrap_or(path);
        if path.is_empty() {
            continue;
        }
        if let Some(resource) = path_resource(path) {
            seen.insert(resource);
        }
    }
    seen.into_iter().collect()
}

fn path_resource(path: &[u8]) -> Option<Resource> {
    let segments: Vec<&[u8]> = path.split(|b| *b == b'/').collect();
    (1..=segments.len()).rev().find_map(|n| {
        let joined = segments[..n].join(&b'/');
        let text = std::str::from_utf8(&joined).ok()?;
        Resource::parse(&format!("path:{text}")).ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_resources_once_and_odd_ones_their_directory() {
        let resources = paths(
            b"src/a.rs\0src/a.rs\0docs/x\ty\0\0bad/\xff\0\xff/name\0",
            b'\0',
        );
        let texts: Vec<String> = resources.iter().map(ToString::to_string).collect();
        assert_eq!(texts, ["path:bad", "path:docs", "path:src/a.rs"]);
        let lines = paths(b"a b.txt\r\nc/d\n", b'\n');
        let texts: Vec<String> = lines.iter().map(ToString::to_string).collect();
        assert_eq!(texts, ["path:a b.txt", "path:c/d"]);
    }
}
