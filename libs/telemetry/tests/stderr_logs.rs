//! The services' log lines on stderr, as `telemetry::init` sets them up, in a real child
//! process (this program run again): every line arrives, in order and as JSON with its
//! trace ids, when the process ends normally; and the lines before a panic are written
//! even when the process then exits without unwinding. Gathered lines that were never
//! written would be lost in both cases.
//!
//! A plain `main` (`harness = false`): the child must be this program without the test
//! harness's threads and capture.

use std::process::{Command, Output};

/// Set in the child's environment: which way it ends.
const CHILD: &str = "TELEMETRY_STDERR_CHILD";
const LINES: u64 = 2_000;

fn main() {
    match std::env::var(CHILD).as_deref() {
        Ok("orderly") => child(false),
        Ok("panic") => child(true),
        _ => {
            every_line_arrives_in_order_when_the_process_ends_normally();
            the_lines_before_a_panic_are_written_when_the_process_exits_at_once();
            println!("stderr_logs: 2 checks passed");
        }
    }
}

fn child(panic: bool) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _entered = runtime.enter();
    let _telemetry = telemetry::init("stderr-test");
    if panic {
        std::thread::spawn(|| {
            tracing::info!("before the panic");
            panic!("the planned panic");
        })
        .join()
        .unwrap_err();
        // No destructors, no flush: only the panic hook can have written the line.
        std::process::exit(3);
    }
    let span = tracing::info_span!("work");
    let _in_span = span.enter();
    for n in 0..LINES {
        tracing::info!(n, "line");
    }
}

fn run_child(mode: &str) -> Output {
    Command::new(std::env::current_exe().unwrap())
        .env(CHILD, mode)
        .env("RUST_LOG", "info")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .output()
        .expect("cannot run this program again as the child")
}

fn every_line_arrives_in_order_when_the_process_ends_normally() {
    let output = run_child("orderly");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "the child failed:\n{stderr}");
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    assert_eq!(lines[0]["message"], "telemetry initialised");
    let numbered: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["message"] == "line").collect();
    assert_eq!(numbered.len() as u64, LINES, "lines lost or doubled");
    for (expected, line) in (0..LINES).zip(&numbered) {
        assert_eq!(line["n"], expected, "out of order: {line}");
        assert_eq!(line["span"], "work");
        assert_eq!(line["trace_id"].as_str().map(str::len), Some(32), "{line}");
    }
}

fn the_lines_before_a_panic_are_written_when_the_process_exits_at_once() {
    let output = run_child("panic");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        output.status.code(),
        Some(3),
        "the child ended otherwise:\n{stderr}"
    );
    let line = stderr
        .find("\"message\":\"before the panic\"")
        .unwrap_or_else(|| panic!("the line before the panic is missing:\n{stderr}"));
    let panic = stderr
        .find("the planned panic")
        .unwrap_or_else(|| panic!("the panic's message is missing:\n{stderr}"));
    assert!(
        line < panic,
        "the line came after the panic's message:\n{stderr}"
    );
}
