//! `grite lock run`: hold locks while a command runs.
//!
//! The locks are acquired (all or none, waiting if asked), the command
//! starts in a process group of its own with the lease in its environment,
//! and a thread renews the leases every `--renew-every`. The command never
//! runs past the lease as grite knows it: when a renewal is refused
//! (another actor took a lock) or none has succeeded by the lease's end
//! minus `--kill-after` and a margin, the command's group gets SIGTERM,
//! then SIGKILL `--kill-after` later (and at the lease's end at the
//! latest), and grite exits with 6, naming what happened. Ctrl-C and
//! SIGTERM to grite go to the command; when it ends, the locks are
//! released and grite exits with its status (128 + N for signal N, as
//! shells do). A grite killed with SIGKILL leaves its leases to expire.

use std::ffi::OsString;
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use super::args::{Cli, RunArgs};
use super::error::CliError;
use super::inputs::{self, ACTOR_ENV};
use super::signals;
use super::wait;
use crate::lease::{ActorId, LockRecord, Resource, Ttl, UnixMillis};
use crate::store::{Clock, Error, Locks};

/// What `lock run` was asked to do, validated.
pub struct Plan {
    resources: Vec<Resource>,
    ttl: Ttl,
    wait: wait::Limit,
    renew_every: Duration,
    kill_after: Duration,
    command: Vec<OsString>,
}

impl Plan {
    pub fn parse(args: &RunArgs) -> Result<Plan, CliError> {
        let resources = inputs::resources(&args.acquire.lease.resources)?;
        let ttl = inputs::ttl(&args.acquire.lease.ttl)?;
        let wait = wait::limit(args.acquire.wait.as_deref())?;
        let lease = Duration::from_millis(ttl.as_millis());
        let renew_every = match &args.renew_every {
            Some(text) => wait::duration("--renew-every", text)?,
            None => lease / 3,
        };
        if renew_every >= lease {
            return Err(CliError::invalid_args(
                "--renew-every",
                format!(
                    "{}s is not shorter than the TTL ({ttl})",
                    renew_every.as_secs()
                ),
                "renew well within the lease, as the default (a third of the TTL) does",
            ));
        }
        let kill_after = wait::duration("--kill-after", &args.kill_after)?;
        if kill_after + margin(lease) >= lease {
            return Err(CliError::invalid_args(
                "--kill-after",
                format!(
                    "{}s leaves no time within the TTL ({ttl}) to stop the command before the lease ends",
                    kill_after.as_secs()
                ),
                "take a longer TTL or a shorter --kill-after",
            ));
        }
        if args.command.is_empty() {
            return Err(CliError::invalid_args(
                "command",
                "no command follows `--`",
                "write the command after `--`: grite lock run issue:1 -- make test",
            ));
        }
        Ok(Plan {
            resources,
            ttl,
            wait,
            renew_every,
            kill_after,
            command: args.command.clone(),
        })
    }
}

/// How far before the lease's end the command must have been killed: for
/// the time a renewal, a signal and a process's death take.
fn margin(lease: Duration) -> Duration {
    (lease / 10).min(Duration::from_secs(1))
}

/// How the command ended, with the locks it held.
pub struct Ran {
    /// The leases, as last renewed.
    pub locks: Vec<LockRecord>,
    /// The command's exit code, if it exited.
    pub code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// Why the locks could not be released afterwards, if they could not.
    pub release_failed: Option<String>,
}

impl Ran {
    /// grite's exit code: the command's, or 128 + N for signal N.
    pub fn exit_code(&self) -> u8 {
        let code = match (self.code, self.signal) {
            (Some(code), _) => code,
            (None, Some(signal)) => 128 + signal,
            (None, None) => 1,
        };
        u8::try_from(code.clamp(0, 255)).unwrap_or(1)
    }
}

/// Why the command was stopped.
enum Loss {
    /// A renewal was refused: another actor holds a lock now.
    Taken(Error),
    /// No renewal succeeded in time (the last failure, if any).
    Expiring(Option<Error>),
}

/// A renewal's outcome, from the renewing thread.
enum Renewal {
    Renewed(Vec<LockRecord>),
    Lost(Error),
    Failed(Error),
}

/// What the watch over a running command hears: from the renewing thread,
/// or from the thread waiting for the command to end.
enum Event {
    Renewal(Renewal),
    Exited(std::io::Result<ExitStatus>),
}

pub fn run(
    locks: &Locks,
    actor: &ActorId,
    plan: &Plan,
    clock: &dyn Clock,
    cli: &Cli,
    remote: bool,
) -> Result<Ran, CliError> {
    let show = !cli.json && !cli.quiet;
    signals::hold_while_acquiring();
    let acquired = wait::acquire(
        locks,
        actor,
        &plan.resources,
        plan.ttl,
        clock,
        plan.wait,
        remote,
        show,
    );
    // A signal kept while acquiring: what was taken is let go at once.
    if let Some(signal) = signals::take_pending() {
        if acquired.is_ok() {
            let _ = locks.release_all(actor, &plan.resources, clock);
        }
        signals::terminate(signal);
    }
    let acquired = acquired.inspect_err(|_| signals::forward_to(None))?;
    signals::hold_for_command();
    let mut held: Vec<LockRecord> = acquired.into_iter().map(|a| a.lock).collect();
    let mut child = match start(&plan.command, actor, &held) {
        Ok(child) => child,
        Err(error) => {
            let _ = locks.release_all(actor, &plan.resources, clock);
            signals::forward_to(None);
            return Err(error);
        }
    };
    let group = i32::try_from(child.id()).unwrap_or(0);
    signals::forward_to(Some(child.id()));
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let (report, events) = std::sync::mpsc::channel();
    let exited = report.clone();
    let outcome = std::thread::scope(|scope| {
        scope.spawn(|| renew(cli, actor, plan, stopped, report));
        // The end of the command is an event like a renewal, so that
        // grite follows it at once rather than at the next poll.
        scope.spawn(move || {
            let _ = exited.send(Event::Exited(child.wait()));
        });
        let outcome = watch(group, plan, &events, &mut held, clock);
        drop(stop);
        outcome
    });
    signals::forward_to(None);
    let (status, loss) =
        outcome.map_err(|e| CliError::child(format!("waiting for the command: {e}")))?;
    if let Some(loss) = loss {
        return Err(CliError::lease_lost(
            loss.describe(),
            loss.taker(),
            &held,
            status.code(),
            signal_of(&status),
        ));
    }
    let release_failed = locks
        .release_all(actor, &plan.resources, clock)
        .err()
        .map(|e| e.to_string());
    Ok(Ran {
        locks: held,
        code: status.code(),
        signal: signal_of(&status),
        release_failed,
    })
}

impl Loss {
    /// The lock another actor now holds, where a refusal names it.
    fn taker(&self) -> Option<&LockRecord> {
        match self {
            Loss::Taken(Error::NotOwner { holder }) => Some(holder),
            Loss::Taken(Error::Refused { errors }) => errors.iter().find_map(|e| match e {
                Error::NotOwner { holder } => Some(holder.as_ref()),
                _ => None,
            }),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            Loss::Taken(error) => format!("a renewal was refused: {error}"),
            Loss::Expiring(Some(error)) => {
                format!("the lease could not be renewed before it ended: {error}")
            }
            Loss::Expiring(None) => "the lease could not be renewed before it ended".to_owned(),
        }
    }
}

/// Starts the command in a process group of its own, the lease in its
/// environment.
fn start(command: &[OsString], actor: &ActorId, held: &[LockRecord]) -> Result<Child, CliError> {
    use std::os::unix::process::CommandExt as _;
    let resources: Vec<&str> = held.iter().map(|l| l.resource.as_str()).collect();
    let tokens: Vec<String> = held
        .iter()
        .map(|l| format!("{}={}", l.resource, l.fencing_token))
        .collect();
    let expires = held.iter().map(|l| l.expires_unix_ms).min().unwrap_or(0);
    let mut child = Command::new(&command[0]);
    child
        .args(&command[1..])
        .env(ACTOR_ENV, actor.as_str())
        .env("GRITE_LOCK_RESOURCE", resources.join(" "))
        .env("GRITE_LOCK_TOKEN", held[0].fencing_token.to_string())
        .env("GRITE_LOCK_EXPIRES_UNIX_MS", expires.to_string())
        .process_group(0);
    if held.len() > 1 {
        child.env("GRITE_LOCK_TOKENS", tokens.join(" "));
    }
    child.spawn().map_err(|e| {
        let name = command[0].to_string_lossy().into_owned();
        match e.kind() {
            std::io::ErrorKind::NotFound => CliError::not_runnable(&name, "it was not found", 127),
            std::io::ErrorKind::PermissionDenied => {
                CliError::not_runnable(&name, "it may not be run", 126)
            }
            _ => CliError::not_runnable(&name, &e.to_string(), 126),
        }
    })
}

/// Waits for the command, stopping it when the lease is lost or about to
/// end unrenewed; returns how it ended and why it was stopped, if it was.
/// Sleeps until the next event or the next instant something is due.
fn watch(
    group: i32,
    plan: &Plan,
    events: &Receiver<Event>,
    held: &mut Vec<LockRecord>,
    clock: &dyn Clock,
) -> std::io::Result<(ExitStatus, Option<Loss>)> {
    let mut lease_end = end_of(held, clock.now());
    let mut failure = None;
    let mut loss = None;
    let mut kill_at: Option<Instant> = None;
    let mut killed = false;
    let lease = Duration::from_millis(plan.ttl.as_millis());
    let ahead = plan.kill_after + margin(lease);
    loop {
        let now = Instant::now();
        if loss.is_none() && now + ahead >= lease_end {
            loss = Some(Loss::Expiring(failure.take()));
        }
        match kill_at {
            None if loss.is_some() => {
                signals::signal_group(group, signal_hook::consts::SIGTERM);
                kill_at = Some((now + plan.kill_after).min(lease_end));
            }
            Some(at) if now >= at && !killed => {
                signals::signal_group(group, signal_hook::consts::SIGKILL);
                killed = true;
            }
            _ => {}
        }
        let due = match kill_at {
            Some(at) => at,
            None => lease_end.checked_sub(ahead).unwrap_or(now),
        };
        let event = if killed {
            events.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            events.recv_timeout(due.saturating_duration_since(now))
        };
        match event {
            Ok(Event::Exited(status)) => return Ok((status?, loss)),
            Ok(Event::Renewal(Renewal::Renewed(records))) => {
                lease_end = end_of(&records, clock.now());
                *held = records;
                failure = None;
            }
            Ok(Event::Renewal(Renewal::Lost(error))) => {
                loss = loss.or(Some(Loss::Taken(error)));
            }
            Ok(Event::Renewal(Renewal::Failed(error))) => failure = Some(error),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                return Err(std::io::Error::other(
                    "the thread waiting for the command ended without its status",
                ));
            }
        }
    }
}

/// When the first of `records` ends, as an instant of this process.
fn end_of(records: &[LockRecord], now: UnixMillis) -> Instant {
    let left = records
        .iter()
        .map(|r| r.expires_unix_ms.saturating_sub(now.0))
        .min()
        .unwrap_or(0);
    Instant::now() + Duration::from_millis(left)
}

/// Renews every lease of `plan` every `renew_every`, with a `Locks` of its
/// own (opened when the first renewal is due: a short command never pays
/// for it), until told to stop or a renewal is refused.
fn renew(cli: &Cli, actor: &ActorId, plan: &Plan, stop: Receiver<()>, report: Sender<Event>) {
    let clock = inputs::clock(cli);
    let mut locks = None;
    loop {
        match stop.recv_timeout(plan.renew_every) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        if locks.is_none() {
            match inputs::open_with(cli) {
                Ok((opened, _)) => locks = Some(opened),
                Err(error) => {
                    let failed = Renewal::Failed(Error::Repository {
                        action: "opening the repository to renew",
                        reason: error.to_string(),
                    });
                    if report.send(Event::Renewal(failed)).is_err() {
                        return;
                    }
                    continue;
                }
            }
        }
        let Some(locks) = &locks else { continue };
        let renewal = match locks.renew_all(actor, &plan.resources, plan.ttl, clock.as_ref()) {
            Ok(records) => Renewal::Renewed(records),
            Err(
                error @ (Error::NotOwner { .. } | Error::NotHeld { .. } | Error::Refused { .. }),
            ) => Renewal::Lost(error),
            Err(error) => Renewal::Failed(error),
        };
        let lost = matches!(renewal, Renewal::Lost(_));
        if report.send(Event::Renewal(renewal)).is_err() || lost {
            return;
        }
    }
}

fn signal_of(status: &ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt as _;
    status.signal()
}
