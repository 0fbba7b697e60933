//! One line on standard error, redrawn in place, for work a person waits
//! for: only on a terminal, never with `--json` or `--quiet`, and only once
//! the work has taken longer than a delay, so quick commands print nothing.

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget};

pub(super) struct Indicator(Option<ProgressBar>);

impl Indicator {
    /// An indicator that appears after `delay` if `show` and standard error
    /// is a terminal, else one that shows nothing.
    pub fn new(show: bool, delay: Duration) -> Indicator {
        if !show || !std::io::stderr().is_terminal() {
            return Indicator(None);
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        bar.set_style(indicatif::ProgressStyle::default_spinner());
        let later = bar.clone();
        let appear = move || {
            if !later.is_finished() {
                later.set_draw_target(ProgressDrawTarget::stderr());
                later.enable_steady_tick(Duration::from_millis(120));
            }
        };
        if delay.is_zero() {
            appear();
        } else {
            // Detached: a command that ends first takes the thread with it.
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                appear();
            });
        }
        Indicator(Some(bar))
    }

    /// A handle that sets the message from anywhere (another thread, a
    /// callback the store calls).
    pub fn message_setter(&self) -> impl Fn(String) + Send + Sync + 'static {
        let bar = self.0.clone();
        move |message| {
            if let Some(bar) = &bar {
                bar.set_message(message);
            }
        }
    }

    pub fn set_message(&self, message: String) {
        if let Some(bar) = &self.0 {
            bar.set_message(message);
        }
    }
}

impl Drop for Indicator {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}
