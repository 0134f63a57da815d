//! `cargo xtask test`: the README's test command. Formatting and lints first (cheap, and
//! they fail fast), then the real Kafka and Cassandra (started here if they are not up,
//! and stopped again afterwards), then every test, then a short summary.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{cmd, e2e, ec2, gui, image, infra, kube, system, tally};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// What a developer runs between edits (under 10 minutes warm): format, clippy, every
    /// crate's tests against the real Kafka and Cassandra, and the e2e suite through the
    /// gateway. It says what it leaves out; the full command is what CI runs.
    #[arg(long)]
    quick: bool,
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

/// Every step of the full command in its order, and whether `--quick` runs it. README.md's
/// list of steps names each (a test keeps them in step).
pub const STEPS: [(&str, bool); 21] = [
    ("observability checks", false),
    ("terraform checks", false),
    ("kubernetes static checks", false),
    ("format", true),
    ("clippy", true),
    ("kubernetes cluster test", false),
    ("real cluster", false),
    ("infrastructure", true),
    ("tests", true),
    ("fault tests (serial)", true),
    ("chaos (short)", false),
    ("container tests", false),
    ("system up", true),
    ("e2e tests", true),
    ("fuzz (bounded)", false),
    ("gui unit tests", false),
    ("gui browser tests", false),
    ("system up (2 replicas)", false),
    ("e2e tests (2 replicas)", false),
    ("stop system", true),
    ("stop infrastructure", true),
];

/// The outcome of one step, for the summary.
#[derive(Debug)]
struct Step {
    name: &'static str,
    took: Duration,
    outcome: Result<()>,
}

/// Runs the steps of one plan, each announced with its number of the total and the time
/// since the command started.
struct Steps {
    plan: Vec<&'static str>,
    started: Instant,
    done: Vec<Step>,
}

impl Steps {
    fn new(quick: bool, lint: bool) -> Self {
        let plan = STEPS
            .iter()
            .filter(|(name, in_quick)| {
                (!quick || *in_quick) && (lint || !matches!(*name, "format" | "clippy"))
            })
            .map(|(name, _)| *name)
            .collect();
        Self {
            plan,
            started: Instant::now(),
            done: Vec::new(),
        }
    }

    fn runs(&self, name: &str) -> bool {
        self.plan.contains(&name)
    }

    fn heading(&self, name: &str) -> String {
        let number = self
            .plan
            .iter()
            .position(|n| *n == name)
            .map_or(0, |i| i + 1);
        let elapsed = self.started.elapsed().as_secs();
        format!(
            "== [{number}/{}] {name}  ({}m{:02}s)",
            self.plan.len(),
            elapsed / 60,
            elapsed % 60
        )
    }

    /// Runs the step if the plan has it; `true` when it passed or is not planned.
    fn run(&mut self, name: &'static str, action: &mut dyn FnMut() -> Result<()>) -> bool {
        if !self.runs(name) {
            return true;
        }
        eprintln!("\n{}", self.heading(name));
        let started = Instant::now();
        let outcome = action();
        let ok = outcome.is_ok();
        if let Err(error) = &outcome {
            eprintln!("{name} failed: {error:#}");
        }
        self.done.push(Step {
            name,
            took: started.elapsed(),
            outcome,
        });
        ok
    }

    /// Says that a planned step does not run, and why.
    fn skip(&self, name: &'static str, why: &str) {
        if self.runs(name) {
            eprintln!("\n{}: skipped, {why}", self.heading(name));
        }
    }
}

pub fn run(args: Args) -> Result<()> {
    let mut steps = Steps::new(args.quick, !args.no_lint);
    if args.quick {
        eprintln!("{}", left_out());
    }

    let mut lint_ok = steps.run("observability checks", &mut system::prometheus::check)
        && steps.run("terraform checks", &mut ec2::check)
        && steps.run("kubernetes static checks", &mut kube::checks::run)
        && steps.run("format", &mut || {
            cmd::run(Command::new("cargo").args(["fmt", "--all", "--", "--check"]))
        })
        && steps.run("clippy", &mut || {
            cmd::run(Command::new("cargo").args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]))
        });
    if args.no_lint {
        lint_ok = true;
    }

    let mut tests = tally::Tally::default();
    let mut started_infra = false;
    if lint_ok {
        // A real kube-apiserver with simulated nodes, before Kafka and Cassandra take their
        // memory; it stops everything it started.
        steps.run("kubernetes cluster test", &mut || {
            kube::cluster::test(kube::DEFAULT_OVERLAY)
        });
        // A real one-node cluster (kubelet, containerd, CNI, kube-proxy, CoreDNS): a
        // restricted pod behind a Service, reached by its ClusterIP and its DNS name; it
        // stops everything it started and checks that nothing is left.
        steps.run("real cluster", &mut crate::cluster::test);
        let infra_ok = steps.run("infrastructure", &mut || {
            if infra::is_serving() {
                eprintln!("Kafka and Cassandra already serve: using them as they are.");
                Ok(())
            } else {
                started_infra = true;
                infra::up()
            }
        });
        if infra_ok {
            steps.run("tests", &mut || {
                let Some(mut runner) = test_runner(&args.runner_args, Phase::Parallel)? else {
                    return Ok(());
                };
                let (counted, outcome) = tally::run(&mut runner);
                tests.add(&counted);
                outcome
            });
            // Fault tests freeze the shared Kafka or Cassandra: they run alone, afterwards.
            steps.run("fault tests (serial)", &mut || {
                let Some(mut runner) = test_runner(&args.runner_args, Phase::Serial)? else {
                    return Ok(());
                };
                let (counted, outcome) = tally::run(&mut runner);
                tests.add(&counted);
                outcome
            });
            // The fault harness's short form: the service binaries under faults, R1-R7.
            steps.run("chaos (short)", &mut crate::chaos::run_short);
            // Every image built and run against the local Kafka and Cassandra.
            steps.run("container tests", &mut || {
                let (_podman_api, mut runner) = image::smoke::prepare()?;
                let (counted, outcome) = tally::run(&mut runner);
                tests.add(&counted);
                outcome
            });
        }
        // The whole system behind its gateway, as a user runs it: the e2e tests.
        let mut started_system = false;
        if infra_ok {
            let system_ok = steps.run("system up", &mut || {
                if system::is_up() {
                    eprintln!("The system already runs: testing it as it is.");
                    Ok(())
                } else {
                    started_system = true;
                    system::up(&system::UpArgs::debug(1))
                }
            });
            if system_ok {
                steps.run("e2e tests", &mut || {
                    let (counted, outcome) = tally::run(&mut e2e::command(e2e_gateway(), 1));
                    tests.add(&counted);
                    outcome
                });
                // schemathesis on each service's OpenAPI description, through the gateway
                // and directly: fails on a 5xx or an answer the description does not allow.
                steps.run("fuzz (bounded)", &mut crate::fuzz::run_short);
                steps.run("gui unit tests", &mut || {
                    let (counted, outcome) = tally::run(&mut gui::npm_run("test")?);
                    tests.add(&counted);
                    outcome
                });
                steps.run("gui browser tests", &mut || {
                    let (counted, outcome) = tally::run(&mut gui_browser_tests(e2e_gateway())?);
                    tests.add(&counted);
                    outcome
                });
                // Scale-out: a second replica of each service joins the running system
                // (the gateway and Prometheus reload), and the e2e suite runs again.
                const REPLICAS: u16 = 2;
                if !started_system {
                    steps.skip(
                        "system up (2 replicas)",
                        "the system ran before this command, so it is left as it is",
                    );
                } else if steps.run("system up (2 replicas)", &mut || {
                    system::up(&system::UpArgs::debug(REPLICAS))
                }) {
                    steps.run("e2e tests (2 replicas)", &mut || {
                        let (counted, outcome) =
                            tally::run(&mut e2e::command(e2e_gateway(), REPLICAS));
                        tests.add(&counted);
                        outcome
                    });
                }
            }
        }
        if args.keep_infra {
            steps.skip("stop system", "--keep-infra");
            steps.skip("stop infrastructure", "--keep-infra");
        } else {
            if started_system {
                steps.run("stop system", &mut system::stop_services_and_gateway);
            } else {
                steps.skip("stop system", "it ran before this command");
            }
            if started_infra {
                steps.run("stop infrastructure", &mut infra::down_quietly);
            } else {
                steps.skip("stop infrastructure", "it ran before this command");
            }
        }
    }

    eprintln!("\n== summary");
    let mut failed = 0;
    for s in &steps.done {
        let verdict = if s.outcome.is_ok() { "ok" } else { "FAILED" };
        eprintln!(
            "{:<24} {:<7} {:>6.1}s",
            s.name,
            verdict,
            s.took.as_secs_f64()
        );
        if let Err(error) = &s.outcome {
            failed += 1;
            eprintln!("    {error:#}");
        }
    }
    let took = steps.started.elapsed().as_secs();
    eprintln!("{:<24} {:<7} {:>4}m{:02}s", "all", "", took / 60, took % 60);
    if args.quick {
        eprintln!("\n{}", left_out());
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

/// What `--quick` leaves out, said at its start and its end.
fn left_out() -> String {
    let names: Vec<&str> = STEPS
        .iter()
        .filter(|(_, quick)| !quick)
        .map(|(name, _)| *name)
        .collect();
    format!(
        "--quick leaves out: {}.\nRun `cargo xtask test` (what CI runs) before you push.",
        names.join(", ")
    )
}

/// The GUI's browser test against the running system, in headless Chromium, told how to
/// stop and start the notifier and Jaeger (it checks the stream's resume and the trace
/// view's message when Jaeger does not answer).
fn gui_browser_tests(gateway: &str) -> Result<Command> {
    let mut command = gui::npm_run("test:browser")?;
    let xtask = crate::paths::xtask_program()?;
    let service = |action: &str, name: &str| format!("{} service {action} {name}", xtask.display());
    command
        .env("CQRS_GATEWAY", gateway)
        .env("CQRS_NOTIFIER_STOP", service("stop", "notifier"))
        .env("CQRS_NOTIFIER_START", service("start", "notifier"))
        .env("CQRS_JAEGER_STOP", service("stop", system::JAEGER))
        .env("CQRS_JAEGER_START", service("start", system::JAEGER))
        .env(
            "CQRS_SCREENSHOTS",
            crate::paths::root().join("target/gui-screenshots"),
        );
    Ok(command)
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
    let output = crate::cmd::read(Command::new("cargo").args([
        "test",
        "--workspace",
        "--exclude",
        "e2e",
        "--quiet",
        "--",
        "--list",
        SERIAL_PREFIX,
    ]))
    .context("cannot list the fault tests")?;
    Ok(listed_tests(&output)
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
    fn the_readme_lists_every_step_in_order() {
        let readme = std::fs::read_to_string(crate::paths::root().join("README.md")).unwrap();
        let rows: Vec<(String, bool)> = readme
            .lines()
            .filter_map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                let number = cells.get(1)?.parse::<usize>().ok()?;
                let name = cells.get(2)?.strip_prefix('`')?.strip_suffix('`')?;
                (number > 0).then(|| (name.to_owned(), cells.get(4) == Some(&"yes")))
            })
            .collect();
        let steps: Vec<(String, bool)> = STEPS
            .iter()
            .map(|(name, quick)| ((*name).to_owned(), *quick))
            .collect();
        assert_eq!(
            rows, steps,
            "README.md's table of the test command's steps (name, `--quick`) differs from STEPS"
        );
    }

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
