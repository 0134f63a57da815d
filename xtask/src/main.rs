//! `cargo xtask`: builds, runs and tests kafka-cqrs with nothing but Cargo, a JDK and Maven.
//!
//! Each subcommand lives in its own module with a `run` function; every external command
//! is echoed before it runs (see `cmd`), so that what xtask does can be done by hand.

mod bench;
mod chaos;
mod cluster;
mod cmd;
mod codegen;
mod deploy;
mod doctor;
mod e2e;
mod ec2;
mod fuzz;
mod gui;
mod image;
mod infra;
mod kube;
mod paths;
mod process;
mod rebuild;
mod system;
mod tally;
mod test;
mod tidy;
mod tools;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Run, test and operate kafka-cqrs locally",
    long_about = "Run, test and operate kafka-cqrs locally.\n\n\
        Kafka and Cassandra run as local JVM processes (Java 17, jars from Maven Central \
        through `mvn`); their jars, data and logs live under target/infra/.",
    after_help = "Start here:\n  cargo xtask up      start the system\n  cargo xtask test    \
        run every check and test\n  cargo xtask down    stop what `up` started\n  \
        cargo xtask doctor  check (and --install) what the commands need"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the system: Kafka, Cassandra, the services and the gateway on port 8080.
    Up(system::UpArgs),
    /// Stop everything `up` started.
    Down {
        /// Also delete the data and logs of Kafka and Cassandra (the jars stay cached).
        #[arg(long)]
        clean: bool,
    },
    /// Show what runs, where, and whether it answers.
    Status,
    /// Manage the local Kafka and Cassandra alone.
    Infra {
        #[command(subcommand)]
        command: infra::Command,
    },
    /// Run formatting and lint checks and every test against the real servers
    /// (`--quick`: what to run between edits).
    Test(test::Args),
    /// Check that this machine has every tool the commands need; `--install` installs
    /// what is missing.
    Doctor(doctor::Args),
    /// Run the e2e tests against a running deployment through its gateway.
    E2e(e2e::Args),
    /// Deploy to Kubernetes (minikube or the current context) and wait for every rollout.
    Deploy(deploy::Args),
    /// Delete what `deploy` applied: the namespace and everything in it.
    Undeploy(deploy::UndeployArgs),
    /// Measure latency and memory of the local system, against baselines of the same run.
    Bench(bench::Args),
    /// Build the container images (buildah, FROM scratch, static musl binaries) and
    /// optionally load them into minikube.
    Image(image::Args),
    /// Write the generated files (the Grafana dashboard, the gateway's routes, the scrape
    /// jobs, the Kubernetes objects).
    Codegen,
    /// Run the demo on AWS EC2 with Terraform: blue and green behind a TLS proxy.
    Ec2(ec2::Args),
    /// Run the Kubernetes static checks alone (a step of `test`): kustomize build of every
    /// overlay, kubeconform, checkov and the cross-checks; no cluster needed.
    KubeChecks,
    /// Run the fault harness (R1-R7): the services under faults, each scenario ending with
    /// a ledger check; figures in target/chaos/.
    Chaos(chaos::Args),
    /// Replay the event log into a fresh keyspace and prove it equals the live table.
    Rebuild(rebuild::Args),
    /// Fuzz the producer's, reader's and notifier's HTTP APIs with schemathesis, from their
    /// OpenAPI descriptions, through the gateway and directly: no 5xx, every answer as
    /// described.
    Fuzz(fuzz::Args),
    /// A real one-node Kubernetes on this machine (context kafka-cqrs-local): etcd, the
    /// control plane, containerd with runc, a kubelet, kube-proxy, CNI bridge networking and
    /// CoreDNS, all built here from pinned sources; `up`, `down` (checks that nothing is
    /// left), `status`, `load` (images into it), `test` (restricted pod, Service, DNS).
    /// Needs root.
    Cluster(cluster::Args),
    /// Start, stop or restart one service of the running system.
    Service {
        action: system::Action,
        /// producer, persister, reader or notifier (or jaeger, the local trace backend)
        name: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A command that needs a tool this machine lacks fails here, before any build step,
    // with the line that installs it.
    let needs = match &cli.command {
        Command::Up(_) => Some(doctor::Verb::Up),
        Command::Test(_) => Some(doctor::Verb::Test),
        Command::Image(_) => Some(doctor::Verb::Image),
        Command::Deploy(_) => Some(doctor::Verb::Deploy),
        Command::Bench(_) => Some(doctor::Verb::Bench),
        Command::Fuzz(_) => Some(doctor::Verb::Fuzz),
        Command::Chaos(_) => Some(doctor::Verb::Chaos),
        Command::Cluster(_) => Some(doctor::Verb::Cluster),
        _ => None,
    };
    if let Some(verb) = needs
        && let Err(error) = doctor::require(verb)
    {
        eprintln!("error: {error:#}");
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Up(args) => system::up(&args),
        Command::Down { clean } => system::down(clean),
        Command::Status => system::status(),
        Command::Infra { command } => infra::run(command),
        Command::Test(args) => test::run(args),
        Command::Doctor(args) => doctor::run(&args),
        Command::E2e(args) => e2e::run(&args),
        Command::Deploy(args) => deploy::run(&args),
        Command::Undeploy(args) => deploy::undeploy(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Image(args) => image::run(&args),
        Command::Codegen => codegen::run(),
        Command::Ec2(args) => ec2::run(args),
        Command::KubeChecks => kube::checks::run(),
        Command::Service { action, name } => system::service(action, &name),
        Command::Chaos(args) => chaos::run(&args),
        Command::Cluster(args) => cluster::run(&args),
        Command::Rebuild(args) => rebuild::run(&args),
        Command::Fuzz(args) => fuzz::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("\nerror: {error:#}");
            ExitCode::FAILURE
        }
    }
}
