//! Stage two: validate what the user typed, open the repository, run the
//! command on [`Locks`].

use std::time::Duration;

use super::args::{ActorCommand, Cli, Command, ConfigCommand, LockCommand};
use super::error::CliError;
use super::indicator::Indicator;
use super::inputs::{ACTOR_ENV, open, open_local, open_with, parse_resource, resources, ttl};
use super::output::{ActorSource, Report};
use super::{check, hooks, run as lock_run, wait};
use crate::lease::{ActorId, LockRecord, Resource};
use crate::store::{Clock, Error, LockPolicy, Locks, Notice, Progress, SETTING_KEYS};

const ACTOR_HELP: &str =
    "leave --actor and GRITE_ACTOR unset to act as the repository's default actor";

/// Runs the command; returns its report and what it had to tell besides.
pub fn run(
    cli: &Cli,
    clock: &dyn Clock,
    actor_env: Option<String>,
) -> Result<(Report, Vec<Notice>), CliError> {
    // Everything typed is validated before the repository is touched.
    let flagged = cli
        .actor
        .as_deref()
        .map(|a| ActorId::parse(a).map_err(|e| CliError::invalid_args("--actor", e, ACTOR_HELP)))
        .transpose()?
        .map(|a| (a, ActorSource::Flag));
    let given = match flagged {
        Some(given) => Some(given),
        None => actor_env
            .map(|a| {
                ActorId::parse(&a).map_err(|e| CliError::invalid_args(ACTOR_ENV, e, ACTOR_HELP))
            })
            .transpose()?
            .map(|a| (a, ActorSource::Env)),
    };
    // `-C DIR` first makes DIR the working directory, so that a relative
    // remote path is relative to it, as with `git -C DIR push ../origin.git`.
    if let Some(dir) = &cli.dir {
        std::env::set_current_dir(dir).map_err(|e| Error::NotARepository {
            path: dir.clone(),
            reason: format!("cannot change to it: {e}"),
        })?;
    }
    match &cli.command {
        Command::Lock(command) => lock(cli, command, clock, given),
        Command::Actor(ActorCommand::Current) => {
            let locks = open_local()?;
            let (actor, source) = resolve_actor(&locks, given)?;
            let report = Report::Actor {
                actor,
                source,
                config: locks.config_path(),
            };
            Ok((report, locks.take_notices()))
        }
        Command::Config(ConfigCommand::Set { key, value }) => {
            let locks = open_local()?;
            locks.set_setting(key, value).map_err(|e| match e {
                Error::Config { reason, .. } => CliError::invalid_args(
                    "setting",
                    reason,
                    &format!("the settings are {}", SETTING_KEYS.join(", ")),
                ),
                other => other.into(),
            })?;
            let report = Report::ConfigSet {
                key: key.clone(),
                value: value.clone(),
                path: locks.config_path(),
            };
            Ok((report, Vec::new()))
        }
        Command::Completions { .. } | Command::Man => {
            unreachable!("printed before any repository is opened")
        }
    }
}

/// Runs one `grite lock` command.
fn lock(
    cli: &Cli,
    command: &LockCommand,
    clock: &dyn Clock,
    given: Option<(ActorId, ActorSource)>,
) -> Result<(Report, Vec<Notice>), CliError> {
    let (locks, report) = match command {
        LockCommand::Acquire(args) => {
            let resources = resources(&args.lease.resources)?;
            let ttl = ttl(&args.lease.ttl)?;
            let wait = wait::limit(args.wait.as_deref())?;
            let (locks, remote) = open_with(cli)?;
            let actor = resolve_actor(&locks, given.clone())?.0;
            let show = !cli.json && !cli.quiet;
            let acquired = wait::acquire(
                &locks,
                &actor,
                &resources,
                ttl,
                clock,
                wait,
                remote.is_some(),
                show,
            )?;
            (locks, Report::Acquired(acquired))
        }
        LockCommand::Renew(args) => {
            let resources = resources(&args.resources)?;
            let ttl = ttl(&args.ttl)?;
            let locks = open(cli)?;
            let actor = resolve_actor(&locks, given.clone())?.0;
            let renewed = locks.renew_all(&actor, &resources, ttl, clock)?;
            (locks, Report::Renewed(renewed))
        }
        LockCommand::Release(args) => {
            let resources = resources(args)?;
            let locks = open(cli)?;
            let actor = resolve_actor(&locks, given.clone())?.0;
            let outcomes = locks.release_all(&actor, &resources, clock)?;
            (
                locks,
                Report::Released(resources.into_iter().zip(outcomes).collect()),
            )
        }
        LockCommand::Run(args) => {
            let plan = lock_run::Plan::parse(args)?;
            let (locks, remote) = open_with(cli)?;
            let actor = resolve_actor(&locks, given.clone())?.0;
            let ran = lock_run::run(&locks, &actor, &plan, clock, cli, remote.is_some())?;
            (locks, Report::Ran(ran))
        }
        LockCommand::Status(args) => {
            let only: Vec<Resource> = args
                .resources
                .iter()
                .map(|r| parse_resource(r))
                .collect::<Result<_, _>>()?;
            let indicator = long_work(cli);
            let locks = open(cli)?.with_progress(progress_on(&indicator));
            // Asking who holds what creates no actor: without one, nothing
            // is yours.
            let me = given
                .map(|(actor, _)| actor)
                .or_else(|| locks.settings().default_actor.clone());
            let mut status = locks.status(clock)?;
            let mine = |lock: &LockRecord| me.as_ref().is_some_and(|me| lock.owner == me.as_str());
            let wanted = |lock: &LockRecord| {
                (!args.mine || mine(lock))
                    && (only.is_empty()
                        || only
                            .iter()
                            .any(|r| Resource::parse(&lock.resource).as_ref() == Ok(r)))
            };
            for list in [&mut status.locks, &mut status.expired, &mut status.released] {
                list.retain(|lock| wanted(lock));
            }
            status.conflicts.retain(|(a, b)| wanted(a) || wanted(b));
            (locks, Report::Status { status, me })
        }
        LockCommand::Log(args) => {
            let resource = args
                .resource
                .as_deref()
                .or(args.positional.as_deref())
                .map(parse_resource)
                .transpose()?;
            let locks = open(cli)?;
            let entries = locks.log(resource.as_ref(), args.limit, clock)?;
            (locks, Report::Log { resource, entries })
        }
        LockCommand::Gc => {
            let indicator = long_work(cli);
            let locks = open(cli)?.with_progress(progress_on(&indicator));
            let report = locks.gc(clock)?;
            (locks, Report::Gc(report))
        }
        LockCommand::Sync => {
            let (locks, remote) = open_with(cli)?;
            let remote = remote.ok_or_else(|| {
                CliError::invalid_args(
                    "remote",
                    "`grite lock sync` needs a remote",
                    "name one with --remote, or set lock_remote in .git/grite/config.toml",
                )
            })?;
            let fetched = locks.sync(clock)?;
            (locks, Report::Synced { remote, fetched })
        }
        LockCommand::Check(args) => {
            let mut resources = check::named_and_piped(args)?;
            let single = (resources.len() == 1 && !args.staged && !args.paths_from_stdin)
                .then(|| resources[0].clone());
            let locks = open(cli)?;
            if args.staged {
                resources.extend(check::staged(locks.worktree())?);
                resources.sort();
                resources.dedup();
            }
            let policy = locks.settings().lock_policy;
            let blocked = if policy == LockPolicy::Off {
                Vec::new()
            } else {
                let actor = resolve_actor(&locks, given.clone())?.0;
                locks.check_all(&actor, &resources, clock)?
            };
            if policy == LockPolicy::Require && !blocked.is_empty() {
                return Err(match (&single, blocked.first()) {
                    (Some(resource), Some((_, holders))) => {
                        CliError::policy_conflict(&resource.to_string(), holders)
                    }
                    _ => CliError::policy_conflicts(&blocked),
                });
            }
            (
                locks,
                Report::Check {
                    single,
                    checked: resources.len(),
                    policy,
                    blocked,
                },
            )
        }
        LockCommand::Hooks(command) => {
            let locks = open_local()?;
            let changes = hooks::run(&locks, command)?;
            (locks, Report::Hooks(changes))
        }
    };
    Ok((report, locks.take_notices()))
}

/// The actor given (`--actor`, `GRITE_ACTOR`), else the repository's
/// default actor, created on first use; and where it came from.
fn resolve_actor(
    locks: &Locks,
    given: Option<(ActorId, ActorSource)>,
) -> Result<(ActorId, ActorSource), CliError> {
    match given {
        Some(given) => Ok(given),
        None => {
            let (actor, created) = locks.default_actor()?;
            let source = if created {
                ActorSource::Created
            } else {
                ActorSource::Config
            };
            Ok((actor, source))
        }
    }
}

/// The indicator of a command that may read or remove many locks: it
/// appears after a second, on a terminal, without `--json` or `--quiet`.
fn long_work(cli: &Cli) -> Indicator {
    Indicator::new(!cli.json && !cli.quiet, Duration::from_secs(1))
}

/// What the store tells of its progress, written on `indicator`.
fn progress_on(indicator: &Indicator) -> impl Fn(Progress) + 'static {
    let say = indicator.message_setter();
    move |progress| {
        say(match progress {
            Progress::Read(n) => format!("reading the locks: {n} so far"),
            Progress::Removing(n) => format!("removing {n} locks"),
        });
    }
}
