//! A deadline on every wait for a server. Pipes to a child process have no
//! read timeout, so one thread per connection watches the clock instead:
//! when a read or a write has waited longer than the idle limit, it ends
//! the connection (kills the helper program, shuts the socket down), the
//! blocked call returns, and the caller reports the timeout. Time spent by
//! us between waits does not count: a server is only late while we wait.
//!
//! A pipe is read through a thread of its own ([`Pumped`]): a helper's
//! child (a shell's `ssh`, a hook) may keep the pipe open after the helper
//! was killed, and a read of it would then never return.

use std::io::{Read, Write};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How a stalled connection is ended: kill its process, shut its socket.
pub(super) type Hangup = Box<dyn FnMut() + Send>;

#[derive(Debug)]
struct State {
    /// When the wait in progress began, if one is.
    waiting_since: Option<Instant>,
    fired: bool,
    /// A caller measured a wait of its own and found it too long.
    hang_up_now: bool,
    closed: bool,
}

/// Watches one connection; dropped with it.
pub(super) struct Watchdog {
    shared: Arc<(Mutex<State>, Condvar)>,
    idle: Duration,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Starts watching: a wait longer than `idle` runs `hangup`.
    pub fn start(idle: Duration, mut hangup: Hangup) -> Watchdog {
        let shared = Arc::new((
            Mutex::new(State {
                waiting_since: None,
                fired: false,
                hang_up_now: false,
                closed: false,
            }),
            Condvar::new(),
        ));
        let watched = Arc::clone(&shared);
        let thread = std::thread::spawn(move || {
            let (lock, wake) = &*watched;
            let mut state = lock.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                if state.closed {
                    return;
                }
                let timeout = match state.waiting_since {
                    _ if state.hang_up_now => Duration::ZERO,
                    None => Duration::from_secs(3600),
                    Some(since) => (since + idle)
                        .checked_duration_since(Instant::now())
                        .unwrap_or_default(),
                };
                if timeout.is_zero() {
                    state.fired = true;
                    drop(state);
                    hangup();
                    return;
                }
                state = wake
                    .wait_timeout(state, timeout)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
        });
        Watchdog {
            shared,
            idle,
            thread: Some(thread),
        }
    }

    /// Runs `call`, a wait for the server, under the deadline; a call the
    /// watchdog had to end comes back as a timeout naming `endpoint`.
    pub fn wait<T>(
        &self,
        endpoint: &str,
        call: impl FnOnce() -> std::io::Result<T>,
    ) -> std::io::Result<T> {
        self.set_waiting(Some(Instant::now()));
        let result = call();
        self.set_waiting(None);
        if self.fired() {
            return Err(self.timeout(endpoint));
        }
        result
    }

    /// Whether the deadline passed and the connection was ended.
    pub fn fired(&self) -> bool {
        self.state().fired
    }

    /// Ends the connection now: a wait the caller measured itself ran out.
    fn hang_up(&self) {
        self.state().hang_up_now = true;
        self.shared.1.notify_one();
    }

    /// The error of a wait that took too long.
    pub fn timeout(&self, endpoint: &str) -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "{endpoint} sent nothing for {} s, so the connection was closed (the limit is lock_remote_timeout in .git/grite/config.toml)",
                self.idle.as_secs()
            ),
        )
    }

    fn set_waiting(&self, since: Option<Instant>) {
        self.state().waiting_since = since;
        self.shared.1.notify_one();
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.state().closed = true;
        self.shared.1.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A reader that refuses to deliver more than `limit` bytes in all: a
/// server that sends without end is cut off rather than followed.
pub(super) struct Limited<R> {
    inner: R,
    endpoint: String,
    left: u64,
    limit: u64,
}

impl<R> Limited<R> {
    pub fn new(inner: R, endpoint: String, limit: u64) -> Limited<R> {
        Limited {
            inner,
            endpoint,
            left: limit,
            limit,
        }
    }
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::FileTooLarge,
                format!(
                    "{} sent more than the {} MiB grite reads from a server in one connection",
                    self.endpoint,
                    self.limit >> 20
                ),
            ));
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// A pipe read by a thread of its own, each wait for its next bytes under
/// the watchdog's deadline.
pub(super) struct Pumped {
    chunks: std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    current: Vec<u8>,
    at: usize,
    watchdog: Arc<Watchdog>,
    endpoint: String,
}

impl Pumped {
    pub fn start(
        mut inner: impl Read + Send + 'static,
        watchdog: Arc<Watchdog>,
        endpoint: String,
    ) -> Pumped {
        let (sender, chunks) = std::sync::mpsc::sync_channel(4);
        std::thread::spawn(move || {
            let mut chunk = vec![0u8; 64 * 1024];
            loop {
                let sent = match inner.read(&mut chunk) {
                    Ok(0) => return,
                    Ok(n) => sender.send(Ok(chunk[..n].to_vec())),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => sender.send(Err(e)),
                };
                if sent.is_err() {
                    return;
                }
            }
        });
        Pumped {
            chunks,
            current: Vec::new(),
            at: 0,
            watchdog,
            endpoint,
        }
    }
}

impl Read for Pumped {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::sync::mpsc::RecvTimeoutError;
        if self.at == self.current.len() {
            match self.chunks.recv_timeout(self.watchdog.idle) {
                Ok(Ok(chunk)) => {
                    self.current = chunk;
                    self.at = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(RecvTimeoutError::Timeout) => {
                    self.watchdog.hang_up();
                    return Err(self.watchdog.timeout(&self.endpoint));
                }
                Err(RecvTimeoutError::Disconnected) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// A stream whose every read and write waits under `watchdog`: a server
/// that stops sending or reading cannot hold us forever.
pub(super) struct Timed<W> {
    inner: W,
    watchdog: Arc<Watchdog>,
    endpoint: String,
}

impl<W> Timed<W> {
    pub fn new(inner: W, watchdog: Arc<Watchdog>, endpoint: String) -> Timed<W> {
        Timed {
            inner,
            watchdog,
            endpoint,
        }
    }
}

impl<R: Read> Read for Timed<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let inner = &mut self.inner;
        self.watchdog.wait(&self.endpoint, || inner.read(buf))
    }
}

impl<W: Write> Write for Timed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let inner = &mut self.inner;
        self.watchdog.wait(&self.endpoint, || inner.write(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let inner = &mut self.inner;
        self.watchdog.wait(&self.endpoint, || inner.flush())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_past_the_limit_is_ended_and_reported() {
        let (reader, writer) = std::io::pipe().expect("a pipe");
        let writer = Arc::new(Mutex::new(Some(writer)));
        let closer = Arc::clone(&writer);
        let watchdog = Arc::new(Watchdog::start(
            Duration::from_millis(100),
            Box::new(move || drop(closer.lock().expect("lock").take())),
        ));
        let mut pumped = Pumped::start(reader, Arc::clone(&watchdog), "server".into());
        let error = pumped.read(&mut [0u8; 8]).expect_err("timed out");
        assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
        assert!(error.to_string().contains("server sent nothing"), "{error}");
        // The watchdog ends the connection (here: closes the pipe).
        let deadline = Instant::now() + Duration::from_secs(5);
        while writer.lock().expect("lock").is_some() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(watchdog.fired());
    }

    #[test]
    fn a_pipe_kept_open_by_someone_else_still_times_out() {
        // Nobody the watchdog can end holds the writing end: the deadline
        // alone ends the read.
        let (reader, _writer) = std::io::pipe().expect("a pipe");
        let watchdog = Arc::new(Watchdog::start(Duration::from_millis(100), Box::new(|| {})));
        let mut pumped = Pumped::start(reader, watchdog, "server".into());
        let error = pumped.read(&mut [0u8; 8]).expect_err("timed out");
        assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
    }

    #[test]
    fn a_stalled_socket_is_shut_down_at_the_deadline() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let client =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let _server = listener.accept().expect("accept");
        let closer = client.try_clone().expect("clone");
        let watchdog = Arc::new(Watchdog::start(
            Duration::from_millis(100),
            Box::new(move || {
                let _ = closer.shutdown(std::net::Shutdown::Both);
            }),
        ));
        let mut timed = Timed::new(client, Arc::clone(&watchdog), "server".into());
        let error = timed.read(&mut [0u8; 8]).expect_err("timed out");
        assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
    }

    #[test]
    fn time_between_waits_does_not_count_and_the_limit_is_kept() {
        let watchdog = Arc::new(Watchdog::start(Duration::from_millis(50), Box::new(|| {})));
        let data = [7u8; 100];
        let timed = Timed::new(&data[..], Arc::clone(&watchdog), "server".into());
        let mut limited = Limited::new(timed, "server".into(), 60);
        let mut buf = [0u8; 40];
        assert_eq!(limited.read(&mut buf).expect("read"), 40);
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(limited.read(&mut buf).expect("read"), 20);
        let error = limited.read(&mut buf).expect_err("over the limit");
        assert_eq!(error.kind(), std::io::ErrorKind::FileTooLarge);
        assert!(!watchdog.fired());
    }
}
