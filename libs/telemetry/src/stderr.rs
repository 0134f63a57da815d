//! The services' log output: lines gathered in memory and written to stderr by a thread
//! of their own, in batches, so that logging a line costs a copy on the request path
//! instead of a `write` system call.
//!
//! Nothing is dropped: when the output does not keep up (stderr a full pipe) and the
//! buffer reaches its bound, the line's writer waits for the output as an unbuffered
//! stderr would have made it wait. What a process killed outright had gathered and not
//! yet written (at most [`FLUSH_EVERY`] of lines) is lost with it; an orderly stop, an
//! error returned from `main` and a panic write everything first.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How long the output thread lets lines gather after the first one before it writes
/// them: a log line shows at most this late.
pub const FLUSH_EVERY: Duration = Duration::from_millis(20);

/// The bytes that may wait; a writer that would exceed it writes everything itself.
const MAX_GATHERED: usize = 4 << 20;

/// The running output thread; [`Background::close`] writes what is left and stops it.
pub struct Background {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// A handle that appends lines: what the log layer writes to.
#[derive(Clone)]
pub struct Lines(Arc<Shared>);

struct Shared {
    gathered: Mutex<Gathered>,
    /// Woken when the first line of a batch arrives, and at the close.
    wake: Condvar,
    /// Where lines go, locked while a batch is written so that batches keep their order
    /// (lock order: `gathered`, then `output`).
    output: Mutex<Output>,
    max_gathered: usize,
}

struct Gathered {
    bytes: Vec<u8>,
    closed: bool,
}

struct Output {
    sink: Box<dyn Write + Send>,
    /// The batch being written; swapped with `Gathered::bytes`, so that both keep their
    /// allocation.
    batch: Vec<u8>,
}

impl Background {
    /// Starts the output thread writing to stderr.
    pub fn stderr() -> io::Result<(Self, Lines)> {
        Self::start(Box::new(io::stderr()), MAX_GATHERED)
    }

    /// Starts the output thread writing to `output`, gathering at most `max_gathered`
    /// bytes.
    pub fn start(output: Box<dyn Write + Send>, max_gathered: usize) -> io::Result<(Self, Lines)> {
        let shared = Arc::new(Shared {
            gathered: Mutex::new(Gathered {
                bytes: Vec::with_capacity(64 * 1024),
                closed: false,
            }),
            wake: Condvar::new(),
            output: Mutex::new(Output {
                sink: output,
                batch: Vec::with_capacity(64 * 1024),
            }),
            max_gathered,
        });
        let thread = std::thread::Builder::new()
            .name("log-output".into())
            .spawn({
                let shared = Arc::clone(&shared);
                move || shared.run()
            })?;
        let lines = Lines(Arc::clone(&shared));
        Ok((
            Self {
                shared,
                thread: Some(thread),
            },
            lines,
        ))
    }

    /// Writes what has gathered now, on this thread.
    pub fn flush(&self) {
        self.shared.write_out(lock(&self.shared.gathered));
    }

    /// Writes what is left and stops the thread; lines written later go straight out.
    pub fn close(&mut self) {
        lock(&self.shared.gathered).closed = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // The thread wrote all it had; a line appended between its last batch and the
        // close is written here.
        self.flush();
    }
}

impl std::fmt::Debug for Background {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Background").finish_non_exhaustive()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.close();
    }
}

impl Shared {
    /// The output thread: waits for a first line, lets more gather, writes them all.
    fn run(&self) {
        loop {
            let mut gathered = lock(&self.gathered);
            while gathered.bytes.is_empty() && !gathered.closed {
                gathered = self
                    .wake
                    .wait(gathered)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if gathered.closed {
                self.write_out(gathered);
                return;
            }
            drop(gathered);
            std::thread::sleep(FLUSH_EVERY);
            self.write_out(lock(&self.gathered));
        }
    }

    /// Takes what has gathered and writes it, holding `output` from before `gathered` is
    /// released so that no later batch can overtake this one.
    fn write_out(&self, mut gathered: MutexGuard<'_, Gathered>) {
        if gathered.bytes.is_empty() {
            return;
        }
        let mut output = lock(&self.output);
        let output = &mut *output;
        std::mem::swap(&mut gathered.bytes, &mut output.batch);
        drop(gathered);
        // A log line that cannot be written has nowhere else to go.
        let _ = output
            .sink
            .write_all(&output.batch)
            .and_then(|()| output.sink.flush());
        output.batch.clear();
    }
}

impl Write for Lines {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        (&*self).write(line)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The log layer asks for a writer per line; a borrowed one costs no reference count.
impl Write for &Lines {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let shared = &self.0;
        let mut gathered = lock(&shared.gathered);
        if gathered.closed {
            let mut output = lock(&shared.output);
            drop(gathered);
            output.sink.write_all(line)?;
            return Ok(line.len());
        }
        let first = gathered.bytes.is_empty();
        gathered.bytes.extend_from_slice(line);
        if gathered.bytes.len() >= shared.max_gathered {
            // The output does not keep up: wait for it here rather than grow without
            // bound or drop lines.
            shared.write_out(gathered);
        } else if first {
            drop(gathered);
            shared.wake.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Lines are written within `FLUSH_EVERY`; a caller that must see them now uses
        // `Background::flush`.
        Ok(())
    }
}

impl std::fmt::Debug for Lines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lines").finish_non_exhaustive()
    }
}

impl Lines {
    /// Writes what has gathered now, unless a line is being appended on this very
    /// thread: for a panic hook, which must not wait for a lock its own thread may hold.
    pub fn try_flush(&self) {
        if let Ok(gathered) = self.0.gathered.try_lock() {
            self.0.write_out(gathered);
        }
    }
}

impl<'a> MakeWriter<'a> for Lines {
    type Writer = &'a Lines;
    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

/// Logging must go on after a thread panicked while holding a lock.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output the test can read back.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            lock(&self.0).extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Sink {
        fn text(&self) -> String {
            String::from_utf8(lock(&self.0).clone()).unwrap()
        }
    }

    /// Four threads write numbered lines; after the close every line is there once, and
    /// each thread's lines in the order it wrote them.
    fn all_lines_in_order(max_gathered: usize) {
        let sink = Sink::default();
        let (mut background, lines) =
            Background::start(Box::new(sink.clone()), max_gathered).unwrap();
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let mut lines = lines.clone();
                std::thread::spawn(move || {
                    for i in 0..5_000 {
                        lines.write_all(format!("{t} {i}\n").as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        background.close();
        let text = sink.text();
        let mut next = [0; 4];
        for line in text.lines() {
            let (t, i) = line.split_once(' ').unwrap();
            let (t, i): (usize, usize) = (t.parse().unwrap(), i.parse().unwrap());
            assert_eq!(i, next[t], "thread {t}: line {i} out of order");
            next[t] += 1;
        }
        assert_eq!(next, [5_000; 4], "lines lost");
    }

    #[test]
    fn lines_of_concurrent_writers_all_arrive_in_order() {
        all_lines_in_order(MAX_GATHERED);
    }

    #[test]
    fn a_slow_output_makes_writers_wait_and_loses_nothing() {
        // 64 bytes: nearly every line reaches the bound and is written by its writer,
        // racing the output thread's batches.
        all_lines_in_order(64);
    }

    #[test]
    fn a_line_shows_without_a_flush() {
        let sink = Sink::default();
        let (_background, mut lines) =
            Background::start(Box::new(sink.clone()), MAX_GATHERED).unwrap();
        lines.write_all(b"alone\n").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while sink.text().is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the line was never written"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(sink.text(), "alone\n");
    }

    #[test]
    fn lines_after_the_close_go_straight_out() {
        let sink = Sink::default();
        let (mut background, mut lines) =
            Background::start(Box::new(sink.clone()), MAX_GATHERED).unwrap();
        lines.write_all(b"before\n").unwrap();
        background.close();
        assert_eq!(sink.text(), "before\n");
        lines.write_all(b"after\n").unwrap();
        assert_eq!(sink.text(), "before\nafter\n");
    }
}
