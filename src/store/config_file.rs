//! Writing `.git/grite/config.toml`: one key at a time, under
//! `config.toml.lock` (created exclusively, as git locks its files), with
//! every comment, every key's order and every other tool's key kept, and
//! the result checked as the settings it must still be before it replaces
//! the file.

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use super::Error;
use super::config::{self, config_error, path, random_actor};
use crate::lease::ActorId;

/// Sets `key` to `value` (every setting is a string) in the settings of
/// the repository whose common directory is `common_dir`, creating the
/// folder and the file if need be; a value the setting refuses changes
/// nothing.
pub(crate) fn set(common_dir: &Path, key: &str, value: &str) -> Result<(), Error> {
    let path = path(common_dir);
    if !config::KEYS.contains(&key) {
        return Err(config_error(
            &path,
            format!(
                "`{}` is not a setting of grite's locks; they are {}",
                crate::lease::echo(key),
                config::KEYS.join(", ")
            ),
        ));
    }
    edit(common_dir, |document| {
        put(document, key, value);
        Ok(true)
    })
    .map(drop)
}

/// Sets a top-level string, keeping the spacing and the comment around a
/// value it replaces.
fn put(document: &mut toml_edit::DocumentMut, key: &str, value: &str) {
    match document
        .get_mut(key)
        .and_then(toml_edit::Item::as_value_mut)
    {
        Some(old) => {
            let decor = old.decor().clone();
            *old = value.into();
            *old.decor_mut() = decor;
        }
        None => document[key] = toml_edit::value(value),
    }
}

/// The configured default actor, or a new random one saved as the default
/// (so that two first runs agree on one id, the check is made again under
/// the lock). Says whether it was created.
pub(crate) fn default_actor(common_dir: &Path) -> Result<(ActorId, bool), Error> {
    if let Some(actor) = config::load(common_dir)?.default_actor {
        return Ok((actor, false));
    }
    let path = path(common_dir);
    let mut created = None;
    let settings = edit(common_dir, |document| {
        if document.contains_key("default_actor") {
            return Ok(false);
        }
        let actor = random_actor().map_err(|e| config_error(&path, e))?;
        put(document, "default_actor", actor.as_str());
        created = Some(actor);
        Ok(true)
    })?;
    match (created, settings.default_actor) {
        (Some(actor), _) => Ok((actor, true)),
        (None, Some(actor)) => Ok((actor, false)),
        (None, None) => Err(config_error(&path, "default_actor could not be saved")),
    }
}

/// Applies `change` to the file's document under its lock; `change` says
/// whether it changed anything. Returns the settings the file then holds.
fn edit(
    common_dir: &Path,
    change: impl FnOnce(&mut toml_edit::DocumentMut) -> Result<bool, Error>,
) -> Result<config::Settings, Error> {
    let path = path(common_dir);
    let dir = path.parent().expect("config path has a parent");
    std::fs::create_dir_all(dir).map_err(|e| config_error(&path, e))?;
    let lock_path = path.with_extension("toml.lock");
    let mut lock = acquire_file_lock(&lock_path, &path)?;
    let outcome = (|| {
        let text = config::read(&path)?;
        let mut document: toml_edit::DocumentMut = text
            .parse()
            .map_err(|e: toml_edit::TomlError| config_error(&path, e.message()))?;
        let changed = change(&mut document)?;
        let new_text = document.to_string();
        let settings = config::settings(&new_text).map_err(|e| config_error(&path, e))?;
        if changed {
            lock.write_all(new_text.as_bytes())
                .and_then(|()| lock.sync_all())
                .map_err(|e| config_error(&path, e))?;
        }
        Ok((settings, changed))
    })();
    match outcome {
        Ok((settings, true)) => {
            std::fs::rename(&lock_path, &path).map_err(|e| config_error(&path, e))?;
            Ok(settings)
        }
        Ok((settings, false)) => {
            let _ = std::fs::remove_file(&lock_path);
            Ok(settings)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&lock_path);
            Err(e)
        }
    }
}

fn acquire_file_lock(lock_path: &Path, path: &Path) -> Result<std::fs::File, Error> {
    let mut delay = Duration::from_millis(5);
    let mut waited = Duration::ZERO;
    loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(lock_path)
        {
            Ok(file) => return Ok(file),
            Err(e)
                if e.kind() == std::io::ErrorKind::AlreadyExists
                    && waited < Duration::from_secs(3) =>
            {
                std::thread::sleep(delay);
                waited += delay;
                delay = (delay * 2).min(Duration::from_millis(100));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(config_error(
                    path,
                    format!(
                        "{} exists; another grite is writing the configuration, or one was killed: remove the file if no grite is running",
                        lock_path.display()
                    ),
                ));
            }
            Err(e) => return Err(config_error(path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_keeps_comments_order_and_other_keys() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = path(dir.path());
        std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        let before =
            "# the team's settings\nissue_sync = true # another tool's\nlock_policy = \"warn\"\n";
        std::fs::write(&file, before).expect("write");
        set(dir.path(), "lock_policy", "require").expect("set");
        let (actor, created) = default_actor(dir.path()).expect("created");
        assert!(created);
        let after = std::fs::read_to_string(&file).expect("read");
        assert_eq!(
            after,
            format!(
                "# the team's settings\nissue_sync = true # another tool's\nlock_policy = \"require\"\ndefault_actor = \"{actor}\"\n"
            )
        );
        assert_eq!(default_actor(dir.path()).expect("read"), (actor, false));
    }

    #[test]
    fn an_unknown_key_or_a_bad_value_changes_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(set(dir.path(), "lock_polcy", "require").is_err());
        assert!(set(dir.path(), "lock_policy", "strict").is_err());
        assert!(set(dir.path(), "lock_grace", "forever").is_err());
        assert!(!path(dir.path()).exists());
    }
}
