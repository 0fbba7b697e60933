//! What a termination signal (SIGINT, SIGTERM, SIGHUP) does to grite.
//!
//! Usually: wait for the ref transaction in flight to finish (see
//! [`stop_ref_writes`]), remove the ref lock files this process still holds
//! (a retry waiting for another process holds one), then die of the signal
//! as by default. Without the wait, gix's own handler would delete the lock
//! files of a transaction between two of its renames.
//!
//! While `grite lock run` runs a command, the signal is the command's: it
//! is passed on to the command's process group, and grite releases the
//! locks once the command has ended. From the moment the locks are held
//! until the command's group is known, a signal is kept and passed on as
//! soon as it is: ending grite there would leave the locks held until they
//! expire, and the command, in a group of its own, running without them.
//! While `lock run` acquires, a signal ends grite at once as long as no
//! write of its has begun (then none can have taken a lock); once one has,
//! the signal is kept for `lock run`, which releases whatever the acquire
//! took before ending of it. A second signal while one is kept ends grite
//! at once.

use std::sync::MutexGuard;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::store::{stop_ref_writes, writes_begun};

/// The process group signals are passed on to; 0 while there is none,
/// [`STARTING`] while a command is being started, [`ACQUIRING`] while its
/// locks are being taken.
static FORWARD_TO: AtomicI32 = AtomicI32::new(0);

/// [`FORWARD_TO`] while a command is being started.
const STARTING: i32 = -1;

/// [`FORWARD_TO`] while `lock run` takes its locks.
const ACQUIRING: i32 = -2;

/// [`writes_begun`] when `lock run` began to take its locks.
static WRITES_BEFORE: AtomicU64 = AtomicU64::new(0);

/// A signal kept while `lock run` acquired or started its command, not
/// yet acted on; 0 for none.
static PENDING: AtomicI32 = AtomicI32::new(0);

/// Installs the handling above, on a thread of its own. Must run before
/// the first ref lock file is taken.
pub fn install() {
    use gix::tempfile::signal::{handler::Mode, setup};
    match Signals::new([SIGINT, SIGTERM, SIGHUP]) {
        Ok(mut signals) => {
            // gix's registry of lock files, without a handler of its own.
            setup(Mode::None);
            std::thread::spawn(move || {
                for signal in signals.forever() {
                    match FORWARD_TO.load(Ordering::SeqCst) {
                        0 => terminate(signal),
                        ACQUIRING => {
                            // With the gate held no write begins: if none
                            // has, grite holds no lock it did not hold. A
                            // second signal while one is kept (a push
                            // waiting on a silent remote) ends grite too:
                            // what it took is left to expire, as asked.
                            let no_writes = stop_ref_writes();
                            let none_begun = writes_begun() == WRITES_BEFORE.load(Ordering::SeqCst);
                            if none_begun || pending() {
                                terminate_holding(no_writes, signal);
                            }
                            drop(no_writes);
                            keep(signal, ACQUIRING);
                        }
                        STARTING => keep(signal, STARTING),
                        group => signal_group(group, signal),
                    }
                }
            });
        }
        // No handler could be installed: gix's, which at least removes the
        // lock files, is better than none.
        Err(_) => setup(Mode::DeleteTempfilesOnTerminationAndRestoreDefaultBehaviour),
    }
}

/// Keeps `signal` for whoever moves [`FORWARD_TO`] on from `mode`.
fn keep(signal: i32, mode: i32) {
    PENDING.store(signal, Ordering::SeqCst);
    // `forward_to` may have run since the load, and found nothing pending.
    let now = FORWARD_TO.load(Ordering::SeqCst);
    if now != mode && now != STARTING {
        deliver_pending(now);
    }
}

/// Waits for the ref transaction in flight, removes the lock files this
/// process holds, and dies of `signal`.
pub fn terminate(signal: i32) -> ! {
    terminate_holding(stop_ref_writes(), signal)
}

/// [`terminate`], for a caller that has stopped the ref writes already.
fn terminate_holding(_no_more_writes: MutexGuard<'static, ()>, signal: i32) -> ! {
    gix::tempfile::registry::cleanup_tempfiles();
    let _ = signal_hook::low_level::emulate_default_handler(signal);
    std::process::exit(128 + signal);
}

/// Passes a pending signal, if one is, on to `group`, or acts on it if
/// there is no group (0): exactly once, by whichever thread takes it.
fn deliver_pending(group: i32) {
    match PENDING.swap(0, Ordering::SeqCst) {
        0 => {}
        signal if group > 0 => signal_group(group, signal),
        signal => terminate(signal),
    }
}

/// From now until [`hold_for_command`] or [`forward_to`], a termination
/// signal ends grite only if no write of its has begun since; else it is
/// kept, for [`take_pending`].
pub fn hold_while_acquiring() {
    WRITES_BEFORE.store(writes_begun(), Ordering::SeqCst);
    FORWARD_TO.store(ACQUIRING, Ordering::SeqCst);
}

/// Whether a signal is kept.
pub fn pending() -> bool {
    PENDING.load(Ordering::SeqCst) != 0
}

/// The signal kept, if one is, which is no longer kept.
pub fn take_pending() -> Option<i32> {
    Some(PENDING.swap(0, Ordering::SeqCst)).filter(|&signal| signal != 0)
}

/// From now until [`forward_to`], termination signals are kept for the
/// command about to start instead of ending grite.
pub fn hold_for_command() {
    FORWARD_TO.store(STARTING, Ordering::SeqCst);
}

/// From now on, termination signals go to the process group `group`
/// instead of ending grite, the ones kept since [`hold_for_command`]
/// first; `None` restores the usual handling (and acts on a kept signal:
/// the command never started).
pub fn forward_to(group: Option<u32>) {
    let group = group.and_then(|g| i32::try_from(g).ok()).unwrap_or(0);
    FORWARD_TO.store(group, Ordering::SeqCst);
    deliver_pending(group);
}

/// Sends `signal` (a number) to every process of `group`.
pub fn signal_group(group: i32, signal: i32) {
    use rustix::process::{Pid, Signal, kill_process_group};
    let signal = match signal {
        SIGINT => Signal::INT,
        SIGHUP => Signal::HUP,
        signal_hook::consts::SIGKILL => Signal::KILL,
        _ => Signal::TERM,
    };
    if let Some(pid) = Pid::from_raw(group) {
        let _ = kill_process_group(pid, signal);
    }
}
