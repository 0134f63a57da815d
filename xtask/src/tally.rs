//! Runs the test runner with its output passed through unchanged, and counts the tests
//! from the lines it prints (cargo test's `test result:` lines, or nextest's summary), so
//! that `cargo xtask test` can close with one line that counts tests.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;

use anyhow::{Context, Result, bail};

use crate::cmd;

/// Tests counted so far.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
}

impl Tally {
    pub fn add(&mut self, other: &Tally) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.ignored += other.ignored;
    }

    /// Adds what one line of runner output reports, if anything.
    fn read_line(&mut self, line: &str) {
        let plain = strip_ansi(line);
        let line = plain.trim();
        // cargo test: "test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; ..."
        if let Some(rest) = line.strip_prefix("test result: ") {
            self.passed += count_before(rest, " passed");
            self.failed += count_before(rest, " failed");
            self.ignored += count_before(rest, " ignored");
        }
        // vitest: "Tests  1 failed | 8 passed (9)"
        if let Some(rest) = line.strip_prefix("Tests ") {
            self.passed += count_before(rest, " passed");
            self.failed += count_before(rest, " failed");
            self.ignored += count_before(rest, " skipped");
        }
        // node --test: "# pass 3" and "# fail 0"
        if let Some(n) = line.strip_prefix("# pass ") {
            self.passed += n.trim().parse().unwrap_or(0);
        }
        if let Some(n) = line.strip_prefix("# fail ") {
            self.failed += n.trim().parse().unwrap_or(0);
        }
        // nextest: "Summary [  12.3s] 14 tests run: 13 passed, 1 failed, 2 skipped"
        if line.starts_with("Summary [") && line.contains(" tests run: ") {
            self.passed += count_before(line, " passed");
            self.failed += count_before(line, " failed");
            self.ignored += count_before(line, " skipped");
        }
    }
}

/// `text` without ANSI colour sequences (`ESC [ ... letter`), which runners add when
/// they think a terminal or CI is watching.
fn strip_ansi(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // Skip up to and including the final letter of the sequence.
            for next in chars.by_ref() {
                if next.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

/// The number just before `word` in `text` ("3 passed" -> 3), or 0.
fn count_before(text: &str, word: &str) -> u64 {
    let Some(end) = text.find(word) else { return 0 };
    let digits: String = text[..end]
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    digits.parse().unwrap_or(0)
}

/// Echoes and runs `command`, streaming its stdout and stderr, and counts its tests.
/// The tally is returned even when the command fails, so the summary counts failures.
pub fn run(command: &mut Command) -> (Tally, Result<()>) {
    let mut tally = Tally::default();
    let outcome = run_counting(command, &mut tally);
    (tally, outcome)
}

fn run_counting(command: &mut Command, counted: &mut Tally) -> Result<()> {
    cmd::echo(command);
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start `{}`", cmd::shell_line(command)))?;
    let tally = Arc::new(Mutex::new(Tally::default()));
    let stdout = child.stdout.take().context("no stdout pipe")?;
    let stderr = child.stderr.take().context("no stderr pipe")?;
    let out = pump(stdout, std::io::stdout(), Arc::clone(&tally));
    let err = pump(stderr, std::io::stderr(), Arc::clone(&tally));
    let status = child.wait()?;
    for pump in [out, err] {
        let _ = pump.join();
    }
    if let Ok(tally) = tally.lock() {
        counted.add(&tally);
    }
    if !status.success() {
        bail!(
            "`{}` failed ({status}): {} passed, {} failed",
            cmd::shell_line(command),
            counted.passed,
            counted.failed
        );
    }
    Ok(())
}

/// Copies lines from `from` to `to` as they come, feeding each to the tally.
fn pump(
    from: impl Read + Send + 'static,
    mut to: impl Write + Send + 'static,
    tally: Arc<Mutex<Tally>>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut reader = BufReader::new(from);
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            let _ = to.write_all(line.as_bytes());
            let _ = to.flush();
            if let Ok(mut tally) = tally.lock() {
                tally.read_line(&line);
            }
            line.clear();
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_cargo_test_results() {
        let mut tally = Tally::default();
        tally.read_line("test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 1.74s\n");
        tally.read_line("test result: FAILED. 10 passed; 2 failed; 0 ignored; 0 measured\n");
        tally.read_line("test foo ... ok\n");
        assert_eq!(
            tally,
            Tally {
                passed: 13,
                failed: 2,
                ignored: 1
            }
        );
    }

    #[test]
    fn counts_vitest_and_node_test_summaries() {
        let mut tally = Tally::default();
        tally.read_line("      Tests  1 failed | 8 passed (9)\n");
        tally.read_line("# pass 2\n");
        tally.read_line("# fail 1\n");
        assert_eq!(
            tally,
            Tally {
                passed: 10,
                failed: 2,
                ignored: 0
            }
        );
    }

    #[test]
    fn reads_through_colour_codes() {
        let mut tally = Tally::default();
        tally.read_line("\u{1b}[2m      Tests \u{1b}[22m \u{1b}[1m\u{1b}[32m9 passed\u{1b}[39m\u{1b}[22m\u{1b}[90m (9)\u{1b}[39m\n");
        assert_eq!(tally.passed, 9);
    }

    #[test]
    fn counts_the_nextest_summary() {
        let mut tally = Tally::default();
        tally.read_line("     Summary [  12.301s] 14 tests run: 13 passed, 1 failed, 2 skipped\n");
        assert_eq!(
            tally,
            Tally {
                passed: 13,
                failed: 1,
                ignored: 2
            }
        );
    }
}
