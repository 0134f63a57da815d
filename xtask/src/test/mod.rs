//! `cargo xtask test`: the README's test command. Formatting and lints first (cheap, and
//! they fail fast), then the real Kafka and Cassandra (started here if they are not up,
//! and stopped again afterwards), then every test, then a short summary.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::{cmd, e2e, ec2, image, infra, kube, system};

pub mod tally;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Skip `cargo fmt --check` and `cargo clippy`.
    #[arg(long)]
    no_lint: bool,
    /// Leave the system (Kafka, Cassandra, services, gateway) running even if this
    /// command started it.
    #[arg(long)]
    keep_infra: bool,
    /// Arguments passed on to the test runner (cargo nextest run, or cargo test), e.g. a
    /// test name filter.
    #[arg(last = true)]
    runner_args: Vec<String>,
}

/// The outcome of one step, for the summary.
#[derive(Debug)]
struct Step {
    name: &'static str,
    took: Duration,
    outcome: Result<()>,
}

pub fn run(args: Args) -> Result<()> {
    let mut steps = Vec::new();
    let mut step = |name: &'static str, action: &mut dyn FnMut() -> Result<()>| {
        eprintln!("\n== {name}");
        let started = Instant::now();
        let outcome = action();
        let ok = outcome.is_ok();
        if let Err(error) = &outcome {
            eprintln!("{name} failed: {error:#}");
        }
        steps.push(Step {
            name,
            took: started.elapsed(),
            outcome,
        });
        ok
    };

    let mut lint_ok = true;
    if !args.no_lint {
        lint_ok = step("observability checks", &mut system::prometheus::check)
            && step("terraform checks", &mut ec2::check)
            && step("kubernetes static checks", &mut kube::checks::run)
            && step("format", &mut || {
                cmd::run(Command::new("cargo").args(["fmt", "--all", "--", "--check"]))
            })
            && step("clippy", &mut || {
                cmd::run(Command::new("cargo").args([
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ]))
            });
    }

    let mut tests = tally::Tally::default();
    let mut started_infra = false;
    if lint_ok {
        // A real kube-apiserver with simulated nodes, before Kafka and Cassandra take their
        // memory; it stops everything it started.
        step("kubernetes cluster test", &mut || {
            kube::cluster::test(kube::DEFAULT_OVERLAY)
        });
        let infra_ok = step("infrastructure", &mut || {
            if infra::is_serving() {
                eprintln!("Kafka and Cassandra already serve: using them as they are.");
                Ok(())
            } else {
                started_infra = true;
                infra::up()
            }
        });
        if infra_ok {
            step("tests", &mut || {
                let Some(mut runner) = test_runner(&args.runner_args, Phase::Parallel)? else {
                    return Ok(());
                };
                let (counted, outcome) = tally::run(&mut runner);
                tests.add(&counted);
                outcome
            });
            // Fault tests freeze the shared Kafka or Cassandra: they run alone, afterwards.
            step("fault tests (serial)", &mut || {
                let Some(mut runner) = test_runner(&args.runner_args, Phase::Serial)? else {
                    return Ok(());
                };
                let (counted, outcome) = tally::run(&mut runner);
                tests.add(&counted);
                outcome
            });
            // The fault harness's short form: the service binaries under faults, R1-R7.
            step("chaos (short)", &mut crate::chaos::run_short);
            // Every image built and run against the local Kafka and Cassandra.
            step("container tests", &mut || {
                let (_podman_api, mut runner) = image::smoke::prepare()?;
                let (counted, outcome) = tally::run(&mut runner);
                tests.add(&counted);
                outcome
            });
        }
        // The whole system behind its gateway, as a user runs it: the e2e tests.
        let mut started_system = false;
        if infra_ok {
            let system_ok = step("system up", &mut || {
                if system::is_up() {
                    eprintln!("The system already runs: testing it as it is.");
                    Ok(())
                } else {
                    started_system = true;
                    system::up(&system::UpArgs::debug(1))
                }
            });
            if system_ok {
                step("e2e tests", &mut || {
                    let (counted, outcome) = tally::run(&mut e2e::command(e2e_gateway(), 1));
                    tests.add(&counted);
                    outcome
                });
                // schemathesis on each service's OpenAPI description, through the gateway
                // and directly: fails on a 5xx or an answer the description does not allow.
                step("fuzz (bounded)", &mut crate::fuzz::run_short);
                step("gui unit tests", &mut || {
                    let (counted, outcome) = tally::run(&mut system::gui::unit_tests()?);
                    tests.add(&counted);
                    outcome
                });
                step("gui browser tests", &mut || {
                    let (counted, outcome) =
                        tally::run(&mut system::gui::browser_tests(e2e_gateway())?);
                    tests.add(&counted);
                    outcome
                });
                // Scale-out: a second replica of each service joins the running system
                // (the gateway and Prometheus reload), and the e2e suite runs again.
                if started_system {
                    const REPLICAS: u16 = 2;
                    let scaled = step("system up (2 replicas)", &mut || {
                        system::up(&system::UpArgs::debug(REPLICAS))
                    });
                    if scaled {
                        step("e2e tests (2 replicas)", &mut || {
                            let (counted, outcome) =
                                tally::run(&mut e2e::command(e2e_gateway(), REPLICAS));
                            tests.add(&counted);
                            outcome
                        });
                    }
                }
            }
        }
        if !args.keep_infra {
            if started_system {
                step("stop system", &mut system::stop_services_and_gateway);
            }
            if started_infra {
                step("stop infrastructure", &mut infra::down_quietly);
            }
        }
    }

    eprintln!("\n== summary");
    let mut failed = 0;
    for s in &steps {
        let verdict = if s.outcome.is_ok() { "ok" } else { "FAILED" };
        eprintln!(
            "{:<22} {:<7} {:>6.1}s",
            s.name,
            verdict,
            s.took.as_secs_f64()
        );
        if let Err(error) = &s.outcome {
            failed += 1;
            eprintln!("    {error:#}");
        }
    }
    // The last line counts tests, not steps: it is what CI and people read first.
    println!(
        "tests: {} passed, {} failed, {} skipped",
        tests.passed, tests.failed, tests.ignored
    );
    if failed > 0 || !lint_ok {
        bail!("{failed} step(s) failed; see above");
    }
    Ok(())
}

/// The local gateway that `cargo xtask up` starts.
fn e2e_gateway() -> &'static str {
    platform::gateway::LOCAL_URL
}

/// Tests whose name starts with this stop a shared server (see `testkit::faults`).
const SERIAL_PREFIX: &str = "outage_";

/// Which tests a run takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Every test but the fault tests, in parallel.
    Parallel,
    /// Only the fault tests, one at a time.
    Serial,
}

/// cargo-nextest when it is installed (parallel, per-test processes), else cargo test.
/// `None` when the phase has nothing to run (a filter that matches no fault test).
fn test_runner(extra: &[String], phase: Phase) -> Result<Option<Command>> {
    let has_nextest = Command::new("cargo")
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    // Test names carry their module path (`outage::outage_kafka_hangs`), so a fault
    // test is one whose last path segment starts with the prefix.
    let serial = format!("test(/(^|::){SERIAL_PREFIX}/)");
    let mut command = Command::new("cargo");
    if has_nextest {
        command.args([
            "nextest",
            "run",
            "--workspace",
            "--exclude",
            "e2e",
            "--no-fail-fast",
        ]);
        command.args(extra);
        match phase {
            Phase::Parallel => command.args(["-E", &format!("not {serial}")]),
            Phase::Serial => {
                command.args(["-E", &serial, "--test-threads", "1", "--no-tests", "warn"])
            }
        };
        return Ok(Some(command));
    }
    command.args(["test", "--workspace", "--exclude", "e2e", "--no-fail-fast"]);
    command.arg("--");
    match phase {
        Phase::Parallel => {
            command.args(extra).args(["--skip", SERIAL_PREFIX]);
        }
        // libtest's filters are alternatives, so "fault tests that match the user's filter"
        // cannot be said with them: list the fault tests and pass those that match, exactly.
        Phase::Serial if !extra.is_empty() => {
            let names = fault_tests_matching(extra)?;
            if names.is_empty() {
                eprintln!("No fault test matches {extra:?}: nothing to run.");
                return Ok(None);
            }
            command
                .arg("--exact")
                .args(names)
                .args(["--test-threads", "1"]);
        }
        Phase::Serial => {
            command.args([SERIAL_PREFIX, "--test-threads", "1"]);
        }
    }
    Ok(Some(command))
}

/// The fault tests whose full name contains one of `filters` (libtest's own matching).
fn fault_tests_matching(filters: &[String]) -> Result<Vec<String>> {
    let output = crate::cmd::output(Command::new("cargo").args([
        "test",
        "--workspace",
        "--exclude",
        "e2e",
        "--quiet",
        "--",
        "--list",
        SERIAL_PREFIX,
    ]))?;
    if !output.status.success() {
        bail!(
            "cannot list the fault tests: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(listed_tests(&String::from_utf8_lossy(&output.stdout))
        .into_iter()
        .filter(|name| is_fault_test(name) && filters.iter().any(|f| name.contains(f.as_str())))
        .collect())
}

/// The test names in `cargo test -- --list` output (`name: test` lines).
fn listed_tests(list: &str) -> Vec<String> {
    list.lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .map(str::to_owned)
        .collect()
}

/// Whether a test (by its full name) is a fault test.
fn is_fault_test(name: &str) -> bool {
    name.rsplit("::")
        .next()
        .is_some_and(|last| last.starts_with(SERIAL_PREFIX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_tests_are_found_by_their_last_path_segment() {
        let list = "outage::outage_kafka_hangs: test\napi::creates: test\n\
                    api::not_an_outage_test: test\n3 tests, 0 benchmarks\n";
        let names = listed_tests(list);
        assert_eq!(
            names,
            [
                "outage::outage_kafka_hangs",
                "api::creates",
                "api::not_an_outage_test"
            ]
        );
        let faults: Vec<&String> = names.iter().filter(|n| is_fault_test(n)).collect();
        assert_eq!(faults, ["outage::outage_kafka_hangs"]);
    }
}
