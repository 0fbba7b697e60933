//! What every command needs from what was typed: resources and TTLs
//! validated with our messages and exit codes, the clock, and the
//! repository opened with its remote.

use super::args::{Cli, Resources};
use super::error::CliError;
use crate::lease::{Resource, Ttl};
use crate::remote::transport::redact;
use crate::store::{Clock, Error, Locks, SystemClock};

/// The environment variable that names the actor (`docs/PROTOCOL.md` §1).
pub const ACTOR_ENV: &str = "GRITE_ACTOR";

/// The clock decisions are made by: the system's, or in a test build the
/// instant of the hidden `--now-ms`.
pub(super) fn clock(cli: &Cli) -> Box<dyn Clock + Send> {
    #[cfg(feature = "test-clock")]
    if let Some(ms) = cli.now_ms {
        return Box::new(crate::store::FixedClock(crate::lease::UnixMillis(ms)));
    }
    #[cfg(not(feature = "test-clock"))]
    let _ = cli;
    Box::new(SystemClock)
}

/// Opens the repository with the remote the flags and settings name.
pub(super) fn open(cli: &Cli) -> Result<Locks, CliError> {
    Ok(open_with(cli)?.0)
}

/// Opens the repository as git would, from the working directory (which
/// `-C DIR` made DIR): `GIT_DIR`, else discovery.
pub(super) fn open_with(cli: &Cli) -> Result<(Locks, Option<String>), CliError> {
    let locks = open_local()?;
    let remote = if cli.no_remote {
        None
    } else {
        cli.remote
            .clone()
            .or_else(|| locks.settings().remote.clone())
    };
    match remote {
        Some(remote) => Ok((locks.with_remote(&remote)?, Some(redact(&remote)))),
        None => Ok((locks, None)),
    }
}

pub(super) fn parse_resource(text: &str) -> Result<Resource, CliError> {
    Resource::parse(text).map_err(|e| {
        let error = CliError::invalid_args(
            "resource",
            &e,
            "name it as issue:ID, path:PATH (relative to the top of the repository) or repo:NAME",
        );
        match e.blame(text) {
            Some((span, label)) => error.snippet("resource", text, span, label),
            None => error,
        }
    })
}

/// Every resource named, each once: two spellings of one resource (such as
/// `path:src` and `path:src/`) are one, named twice.
pub(super) fn resources(arg: &Resources) -> Result<Vec<Resource>, CliError> {
    named(arg.texts())
}

/// The resources of `texts`, each once (see [`resources`]).
pub(super) fn named<'a>(texts: impl Iterator<Item = &'a str>) -> Result<Vec<Resource>, CliError> {
    let mut resources: Vec<Resource> = Vec::new();
    for text in texts {
        let resource = parse_resource(text)?;
        if resources.contains(&resource) {
            return Err(CliError::invalid_args(
                "resource",
                format!("{resource} is named twice"),
                "name each resource once",
            ));
        }
        resources.push(resource);
    }
    Ok(resources)
}

pub(super) fn ttl(text: &str) -> Result<Ttl, CliError> {
    Ttl::parse(text).map_err(|e| {
        let error = CliError::invalid_args(
            "--ttl",
            &e,
            "leases last from 1s to 7d (168h); renew a short lease rather than taking a long one",
        );
        match e.blame() {
            Some(label) => error.snippet("--ttl", text, 0..text.len(), label),
            None => error,
        }
    })
}

/// The repository for a command that needs no remote.
pub(super) fn open_local() -> Result<Locks, CliError> {
    let here = std::env::current_dir().map_err(|e| Error::NotARepository {
        path: ".".into(),
        reason: format!("the working directory cannot be read: {e}"),
    })?;
    Ok(Locks::open(here)?)
}
