//! Captures the JSON log lines of the services running in a test process, so that tests
//! can read them back, and still shows them in the test's own output.

use std::io::Write;
use std::sync::Mutex;

static LINES: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// A `MakeWriter` that keeps every line and echoes it to the test harness.
#[derive(Debug, Clone, Copy)]
pub struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut lines) = LINES.lock() {
            lines.extend_from_slice(buf);
        }
        // `print!` goes through the harness's capture, unlike a raw write to stderr.
        print!("{}", String::from_utf8_lossy(buf));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        Capture
    }
}

pub fn lines() -> Vec<serde_json::Value> {
    let bytes = LINES.lock().map(|l| l.clone()).unwrap_or_default();
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}
