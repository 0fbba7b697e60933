//! What a termination signal (SIGINT, SIGTERM, SIGHUP) does to grite: wait
//! for the ref transaction in flight to finish (see [`stop_ref_writes`]),
//! remove the ref lock files this process still holds (a retry waiting
//! for another process holds one), then die of the signal as by default.
//! Without the wait, gix's own handler would delete the lock files of a
//! transaction between two of its renames.

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::store::stop_ref_writes;

/// Installs the handling above, on a thread of its own. Must run before
/// the first ref lock file is taken.
pub fn install() {
    use gix::tempfile::signal::{handler::Mode, setup};
    match Signals::new([SIGINT, SIGTERM, SIGHUP]) {
        Ok(mut signals) => {
            // gix's registry of lock files, without a handler of its own.
            setup(Mode::None);
            std::thread::spawn(move || {
                if let Some(signal) = signals.forever().next() {
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
