//! The repository's files beside the lock refs that [`Locks`] reads and
//! writes for the command line: the settings file and the hooks folder.

use std::path::{Path, PathBuf};

use super::Error;
use super::config;
use super::config_file;
use super::locks::Locks;
use crate::lease::ActorId;

impl Locks {
    /// The top of the worktree; `None` in a bare repository.
    pub fn worktree(&self) -> Option<&Path> {
        self.repo.workdir()
    }

    /// Where git runs this repository's hooks from: `core.hooksPath`
    /// (relative to the top of the worktree, as git takes it), else `hooks`
    /// in the common git directory; `None` in a bare repository, where
    /// nothing is committed.
    pub fn hooks_dir(&self) -> Result<Option<PathBuf>, Error> {
        let Some(top) = self.worktree() else {
            return Ok(None);
        };
        let configured = self
            .repo
            .config_snapshot()
            .trusted_path("core.hooksPath")
            .map_err(|e| Error::repository("reading core.hooksPath", e))?;
        Ok(Some(match configured {
            Some(dir) => top.join(dir),
            None => self.repo.common_dir().join("hooks"),
        }))
    }

    /// Where the settings live.
    pub fn config_path(&self) -> PathBuf {
        config::path(self.repo.common_dir())
    }

    /// The repository's default actor, created and saved on first use;
    /// says whether it was created now. The settings read at open already
    /// name it, except on first use: the file is read again only then.
    pub fn default_actor(&self) -> Result<(ActorId, bool), Error> {
        match &self.settings().default_actor {
            Some(actor) => Ok((actor.clone(), false)),
            None => config_file::default_actor(self.repo.common_dir()),
        }
    }

    /// Sets the setting `key` to `value` in `.git/grite/config.toml`,
    /// keeping everything else in the file as it is.
    pub fn set_setting(&self, key: &str, value: &str) -> Result<(), Error> {
        config_file::set(self.repo.common_dir(), key, value)
    }
}
