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
//! locks once the command has ended.

use std::sync::atomic::{AtomicI32, Ordering};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::store::stop_ref_writes;

/// The process group signals are passed on to; 0 while there is none.
static FORWARD_TO: AtomicI32 = AtomicI32::new(0);

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
                    let group = FORWARD_TO.load(Ordering::SeqCst);
                    if group != 0 {
                        signal_group(group, signal);
                        continue;
                    }
                    let _no_more_writes = stop_ref_writes();
                    gix::tempfile::registry::cleanup_tempfiles();
                    let _ = signal_hook::low_level::emulate_default_handler(signal);
                    std::process::exit(128 + signal);
                }
            });
        }
        // No handler could be installed: gix's, which at least removes the
        // lock files, is better than none.
        Err(_) => setup(Mode::DeleteTempfilesOnTerminationAndRestoreDefaultBehaviour),
    }
}

/// From now on, termination signals go to the process group `group`
/// instead of ending grite; `None` restores the usual handling.
pub fn forward_to(group: Option<u32>) {
    let group = group.and_then(|g| i32::try_from(g).ok()).unwrap_or(0);
    FORWARD_TO.store(group, Ordering::SeqCst);
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
