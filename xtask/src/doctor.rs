//! `cargo xtask doctor`: the one list of what each command needs from the machine, checked,
//! with the line that installs what is missing (`--install` runs it).
//!
//! `.ci/run`, the README's Prerequisites and every command use this table: a command starts
//! with [`require`], which fails at once with the install line before any build step, and a
//! test keeps the README's package line equal to the table.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Result, bail};

use crate::{cmd, tools};

/// The commands a tool can be needed by. `up` and `test` are the README's two commands:
/// a tool they need is required; the others' are optional until that command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Up,
    Test,
    Image,
    Deploy,
    Ec2,
    Bench,
    Fuzz,
    Chaos,
    Cluster,
}

impl Verb {
    fn name(self) -> &'static str {
        match self {
            Verb::Up => "up",
            Verb::Test => "test",
            Verb::Image => "image",
            Verb::Deploy => "deploy",
            Verb::Ec2 => "ec2",
            Verb::Bench => "bench",
            Verb::Fuzz => "fuzz",
            Verb::Chaos => "chaos",
            Verb::Cluster => "cluster",
        }
    }

    /// The README's two commands: what they need is what a working checkout needs.
    fn is_core(self) -> bool {
        matches!(self, Verb::Up | Verb::Test)
    }
}

/// How a tool is found and its version read.
#[derive(Debug, Clone, Copy)]
pub enum Probe {
    /// A program on `PATH` (or in `/usr/sbin`), its version from running it with these
    /// arguments (stdout and stderr), or none to only look for it.
    Program(&'static str, &'static [&'static str]),
    /// A program outside `PATH`, at this path unless the environment variable names another.
    File(&'static str, &'static str),
    /// A Python module (`python3 -c 'import ...'`).
    PythonModule(&'static str),
    /// An installed rustup target or component (`rustup target|component list --installed`).
    Rustup(&'static str, &'static str),
}

/// How a missing tool is installed.
#[derive(Debug, Clone, Copy)]
pub enum Install {
    /// Debian and Ubuntu packages (apt-get).
    Apt(&'static str),
    /// `rustup target add` or `rustup component add` (the kind, then the name).
    Rustup(&'static str, &'static str),
    /// No package has a version that is new enough on Debian 12 or Ubuntu 24.04: what to do.
    Manual(&'static str),
}

/// One thing the commands need from the machine.
#[derive(Debug, Clone, Copy)]
pub struct Tool {
    pub name: &'static str,
    pub probe: Probe,
    /// The oldest version that works (dotted numbers), if any matters.
    pub minimum: Option<&'static str>,
    pub needed_by: &'static [Verb],
    pub install: Install,
    pub why: &'static str,
    /// Needed only by some uses of its commands (`deploy` to minikube, `bench --profile`):
    /// listed, but the command itself says when it needs it.
    pub sometimes: bool,
}

use Verb::*;

/// Everything the commands need that Cargo does not bring. Go programs (Jaeger, kustomize,
/// kubectl, OpenTofu, ...) and Python ones (checkov, schemathesis) are not listed: xtask
/// builds them from pinned modules under `target/tools/` with Go and Python from here.
pub const TOOLS: &[Tool] = &[
    Tool {
        name: "cargo",
        probe: Probe::Program("cargo", &["--version"]),
        // The workspace's `rust-version` (a tidy test keeps them equal).
        minimum: Some("1.88"),
        needed_by: &[Up, Test, Image, Deploy, Ec2, Bench, Fuzz, Chaos],
        install: Install::Manual("install Rust with rustup: https://rustup.rs"),
        sometimes: false,
        why: "builds everything",
    },
    Tool {
        name: "rustfmt",
        probe: Probe::Rustup("component", "rustfmt"),
        minimum: None,
        needed_by: &[Test],
        install: Install::Rustup("component", "rustfmt"),
        sometimes: false,
        why: "the format check",
    },
    Tool {
        name: "clippy",
        probe: Probe::Rustup("component", "clippy"),
        minimum: None,
        needed_by: &[Test],
        install: Install::Rustup("component", "clippy"),
        sometimes: false,
        why: "the lint check",
    },
    Tool {
        name: "cc",
        probe: Probe::Program("cc", &["--version"]),
        minimum: None,
        needed_by: &[Up, Test, Image, Deploy, Ec2, Bench, Fuzz, Chaos, Cluster],
        install: Install::Apt("build-essential"),
        sometimes: false,
        why: "compiles the bundled librdkafka (xtask itself links it)",
    },
    Tool {
        name: "java",
        probe: Probe::Program("java", &["-version"]),
        minimum: Some("17"),
        needed_by: &[Up, Test, Bench, Chaos],
        install: Install::Apt("openjdk-17-jdk-headless"),
        sometimes: false,
        why: "runs Kafka 4 and Cassandra 5.0",
    },
    Tool {
        name: "mvn",
        probe: Probe::Program("mvn", &["--version"]),
        minimum: Some("3"),
        needed_by: &[Up, Test, Bench, Chaos],
        install: Install::Apt("maven"),
        sometimes: false,
        why: "fetches the Kafka and Cassandra jars from Maven Central",
    },
    Tool {
        name: "nginx",
        probe: Probe::Program("nginx", &["-v"]),
        minimum: None,
        needed_by: &[Up, Test, Bench],
        install: Install::Apt("nginx-light"),
        sometimes: false,
        why: "the local gateway on port 8080",
    },
    Tool {
        name: "prometheus",
        probe: Probe::Program("prometheus", &["--version"]),
        minimum: None,
        needed_by: &[Up, Test],
        install: Install::Apt("prometheus"),
        sometimes: false,
        why: "metrics on port 9090; promtool checks the rules",
    },
    Tool {
        name: "go",
        probe: Probe::Program("go", &["version"]),
        // Go from 1.21 on fetches the toolchain a go.mod asks for through the module
        // proxy; the pinned modules ask for 1.26.
        minimum: Some("1.24"),
        needed_by: &[Up, Test, Deploy, Ec2, Cluster],
        install: Install::Manual(
            "install Go 1.24 or newer from https://go.dev/dl (Debian 12's golang is 1.19, too old)",
        ),
        sometimes: false,
        why: "builds the local Jaeger, kubectl, kustomize and OpenTofu from pinned modules",
    },
    Tool {
        name: "node",
        probe: Probe::Program("node", &["--version"]),
        // Vite 7 needs 20.19 or newer.
        minimum: Some("20.19"),
        needed_by: &[Up, Test, Image],
        install: Install::Manual(
            "install Node.js 20.19+ or 22 (NodeSource's apt repository or https://nodejs.org; \
             Debian 12's and Ubuntu 24.04's nodejs are 18, too old for Vite)",
        ),
        sometimes: false,
        why: "builds the GUI (Vite)",
    },
    Tool {
        name: "npm",
        probe: Probe::Program("npm", &["--version"]),
        minimum: None,
        needed_by: &[Up, Test, Image],
        // Not Debian's npm package: it conflicts with NodeSource's nodejs, which ships npm.
        install: Install::Manual(
            "comes with Node.js from NodeSource or nodejs.org (with a distribution's own \
             nodejs: `apt-get install npm`)",
        ),
        sometimes: false,
        why: "installs the GUI's packages",
    },
    Tool {
        name: "ps",
        probe: Probe::Program("ps", &[]),
        minimum: None,
        needed_by: &[Up, Test, Chaos],
        install: Install::Apt("procps"),
        sometimes: false,
        why: "finds the processes `up` started",
    },
    Tool {
        name: "ss",
        probe: Probe::Program("ss", &[]),
        minimum: None,
        needed_by: &[Up, Test],
        install: Install::Apt("iproute2"),
        sometimes: false,
        why: "finds who listens on a port",
    },
    Tool {
        name: "curl",
        probe: Probe::Program("curl", &[]),
        minimum: None,
        needed_by: &[Test, Fuzz],
        install: Install::Apt("curl"),
        sometimes: false,
        why: "the fuzzer's seed documents",
    },
    Tool {
        name: "chromium",
        probe: Probe::File("/usr/bin/chromium", "CHROMIUM"),
        minimum: None,
        needed_by: &[Test],
        install: Install::Apt("chromium"),
        sometimes: false,
        why: "the GUI's browser test (headless, driven by playwright-core)",
    },
    Tool {
        name: "python3-venv",
        probe: Probe::PythonModule("ensurepip, venv"),
        minimum: None,
        needed_by: &[Test, Fuzz],
        install: Install::Apt("python3-venv"),
        sometimes: false,
        why: "checkov, kubernetes-validate and schemathesis from PyPI",
    },
    Tool {
        name: "shellcheck",
        probe: Probe::Program("shellcheck", &[]),
        minimum: None,
        needed_by: &[Test, Ec2],
        install: Install::Apt("shellcheck"),
        sometimes: false,
        why: "checks the EC2 hosts' rendered user data",
    },
    Tool {
        name: "etcd",
        probe: Probe::Program("etcd", &[]),
        minimum: None,
        needed_by: &[Test, Cluster],
        install: Install::Apt("etcd-server"),
        sometimes: false,
        why: "the Kubernetes cluster test's API server stores in it",
    },
    Tool {
        name: "openssl",
        probe: Probe::Program("openssl", &[]),
        minimum: None,
        needed_by: &[Test, Cluster],
        install: Install::Apt("openssl"),
        sometimes: false,
        why: "the cluster test's certificates",
    },
    Tool {
        name: "buildah",
        probe: Probe::Program("buildah", &[]),
        minimum: None,
        needed_by: &[Test, Image, Cluster],
        install: Install::Apt("buildah"),
        sometimes: false,
        why: "builds the FROM scratch images",
    },
    Tool {
        name: "podman",
        probe: Probe::Program("podman", &[]),
        minimum: None,
        needed_by: &[Test, Image],
        install: Install::Apt("podman"),
        sometimes: false,
        why: "runs the images (smoke tests, `up --containers`)",
    },
    Tool {
        name: "skopeo",
        probe: Probe::Program("skopeo", &[]),
        minimum: None,
        needed_by: &[Test, Image, Cluster],
        install: Install::Apt("skopeo"),
        sometimes: false,
        why: "writes image archives",
    },
    Tool {
        name: "runc",
        probe: Probe::Program("runc", &[]),
        minimum: None,
        needed_by: &[Test, Image, Cluster],
        install: Install::Apt("runc"),
        sometimes: false,
        why: "the container runtime podman uses here (crun fails in sandboxes)",
    },
    Tool {
        name: "iptables",
        probe: Probe::Program("iptables", &["--version"]),
        minimum: None,
        needed_by: &[Test, Cluster],
        install: Install::Apt("iptables"),
        sometimes: false,
        why: "kube-proxy's Service rules and the CNI port mappings of `cluster`",
    },
    Tool {
        name: "ip",
        probe: Probe::Program("ip", &[]),
        minimum: None,
        needed_by: &[Test, Cluster],
        install: Install::Apt("iproute2"),
        sometimes: false,
        why: "the bridge of `cluster`'s pod network",
    },
    Tool {
        name: "CNI plugins",
        probe: Probe::File("/usr/lib/cni/bridge", "CNI_BRIDGE_PLUGIN"),
        minimum: None,
        needed_by: &[Test, Cluster],
        install: Install::Apt("containernetworking-plugins"),
        sometimes: false,
        why: "the pod network of `cluster` (bridge, host-local, portmap, loopback)",
    },
    Tool {
        name: "musl-gcc",
        probe: Probe::Program("musl-gcc", &[]),
        minimum: None,
        needed_by: &[Test, Image],
        install: Install::Apt("musl-tools"),
        sometimes: false,
        why: "compiles librdkafka into the images' static binaries",
    },
    Tool {
        name: "musl target",
        probe: Probe::Rustup("target", "x86_64-unknown-linux-musl"),
        minimum: None,
        needed_by: &[Test, Image],
        install: Install::Rustup("target", "x86_64-unknown-linux-musl"),
        sometimes: false,
        why: "the images' static binaries",
    },
    Tool {
        name: "uidmap",
        probe: Probe::Program("newuidmap", &[]),
        minimum: None,
        needed_by: &[Image],
        install: Install::Apt("uidmap"),
        sometimes: true,
        why: "podman and buildah as a user other than root (the EC2 host)",
    },
    Tool {
        name: "mmdebstrap",
        probe: Probe::Program("mmdebstrap", &["--version"]),
        minimum: None,
        // The stand-ins are for the local cluster (`deploy --context kafka-cqrs-local
        // --load-images`); minikube and EC2 pull the official images.
        needed_by: &[Cluster],
        install: Install::Apt("mmdebstrap"),
        sometimes: true,
        why: "`image --third-party`: the Debian rootfs of the Kafka and Cassandra stand-ins",
    },
    Tool {
        name: "minikube",
        probe: Probe::Program("minikube", &["version"]),
        minimum: None,
        needed_by: &[Deploy],
        install: Install::Manual(
            "only to deploy to minikube: https://minikube.sigs.k8s.io/docs/start/",
        ),
        sometimes: true,
        why: "a local cluster to deploy to (any kubeconfig context works)",
    },
    Tool {
        name: "perf",
        probe: Probe::Program("perf", &["--version"]),
        minimum: None,
        needed_by: &[Bench],
        install: Install::Apt("linux-perf"),
        sometimes: true,
        why: "`bench --profile` samples where the CPU goes",
    },
];

/// What the doctor found of one tool.
#[derive(Debug)]
struct Found {
    tool: &'static Tool,
    /// The version it reports, or `Some("")` when found without one.
    version: Option<String>,
}

impl Found {
    fn ok(&self) -> bool {
        match (&self.version, self.tool.minimum) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(version), Some(minimum)) => at_least(version, minimum),
        }
    }
}

fn look(tool: &'static Tool) -> Found {
    let version = match tool.probe {
        Probe::Program(program, args) => tools::find_program(program).map(|path| {
            if args.is_empty() {
                String::new()
            } else {
                program_version(&path, args)
            }
        }),
        Probe::File(default, variable) => {
            let path =
                std::env::var_os(variable).map_or_else(|| PathBuf::from(default), PathBuf::from);
            path.exists()
                .then(|| program_version(&path, &["--version"]))
        }
        Probe::PythonModule(modules) => Command::new("python3")
            .args(["-c", &format!("import {modules}")])
            .output()
            .is_ok_and(|o| o.status.success())
            .then(String::new),
        Probe::Rustup(kind, name) => Command::new("rustup")
            .args([kind, "list", "--installed"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .any(|line| line.trim().starts_with(name))
                    .then(String::new)
            }),
    };
    Found { tool, version }
}

/// The first dotted number in what the program prints (`go1.26.8`, `v20.20.2`,
/// `openjdk version "17.0.15"`, `nginx/1.22.1`).
fn program_version(program: &std::path::Path, args: &[&str]) -> String {
    let Ok(output) = Command::new(program).args(args).output() else {
        return String::new();
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    first_version(&text).unwrap_or_default()
}

fn first_version(text: &str) -> Option<String> {
    // Dotted numbers first: Maven colours its banner, and the escape codes hold digits.
    let numbers = |text: &str| -> Vec<String> {
        text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .map(|word| word.trim_matches('.').to_owned())
            .filter(|word| !word.is_empty())
            .collect()
    };
    let words = numbers(text);
    words
        .iter()
        .find(|w| w.contains('.'))
        .or_else(|| words.first())
        .cloned()
}

/// Whether dotted `version` is at least `minimum` (missing parts count as 0).
pub(crate) fn at_least(version: &str, minimum: &str) -> bool {
    // A leading `v` or `go` (`v1.26.8`, `go1.26`) is no part of the number.
    let parts = |v: &str| -> Vec<u64> {
        v.trim_start_matches(|c: char| !c.is_ascii_digit())
            .split('.')
            .map(|p| p.parse().unwrap_or(0))
            .collect()
    };
    let (mut have, mut need) = (parts(version), parts(minimum));
    let len = have.len().max(need.len());
    have.resize(len, 0);
    need.resize(len, 0);
    have >= need
}

/// The apt packages of the tools that `up` and `test` need, in table order: the README's
/// Prerequisites line.
#[cfg(test)]
fn core_apt_packages() -> Vec<&'static str> {
    TOOLS
        .iter()
        .filter(|t| t.needed_by.iter().any(|v| v.is_core()))
        .filter_map(|t| match t.install {
            Install::Apt(package) => Some(package),
            _ => None,
        })
        .fold(Vec::new(), |mut packages, package| {
            // One package may hold several tools (iproute2: ss and ip).
            if !packages.contains(&package) {
                packages.push(package);
            }
            packages
        })
}

/// The commands that install `missing`: one apt-get line, rustup lines, and what must be
/// done by hand.
fn install_lines(missing: &[&Found]) -> (Vec<&'static str>, Vec<String>, Vec<String>) {
    let mut apt = Vec::new();
    let mut rustup = Vec::new();
    let mut manual = Vec::new();
    for found in missing {
        match found.tool.install {
            Install::Apt(package) if !apt.contains(&package) => apt.push(package),
            Install::Apt(_) => {}
            Install::Rustup(kind, name) => rustup.push(format!("rustup {kind} add {name}")),
            Install::Manual(how) => manual.push(format!("{}: {how}", found.tool.name)),
        }
    }
    (apt, rustup, manual)
}

fn sudo() -> &'static str {
    if nix::unistd::Uid::effective().is_root() {
        ""
    } else {
        "sudo "
    }
}

/// The one line that installs what is missing, for messages.
fn fix_line(missing: &[&Found]) -> String {
    let (apt, rustup, manual) = install_lines(missing);
    let mut steps = Vec::new();
    if !apt.is_empty() {
        steps.push(format!("{}apt-get install {}", sudo(), apt.join(" ")));
    }
    steps.extend(rustup);
    steps.extend(manual);
    steps.join("\n  ")
}

/// Fails at once, naming what is missing and the line that installs it, unless every tool
/// that `verb` needs is here. Every command that needs tools starts with it.
pub fn require(verb: Verb) -> Result<()> {
    let found: Vec<Found> = TOOLS
        .iter()
        .filter(|t| t.needed_by.contains(&verb) && !t.sometimes)
        .map(look)
        .collect();
    let missing: Vec<&Found> = found.iter().filter(|f| !f.ok()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = missing.iter().map(|f| describe(f)).collect();
    bail!(
        "`cargo xtask {}` needs what this machine lacks: {}.\nInstall it with:\n  {}\n\
         (or `cargo xtask doctor --install`; `cargo xtask doctor` lists every tool)",
        verb.name(),
        names.join(", "),
        fix_line(&missing)
    )
}

fn describe(found: &Found) -> String {
    match (&found.version, found.tool.minimum) {
        (Some(version), Some(minimum)) => {
            format!("{} {minimum}+ (found {version})", found.tool.name)
        }
        _ => found.tool.name.to_owned(),
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Install what is missing: apt-get (as root, or through sudo) and rustup. Tools that
    /// no package provides at a new enough version are named with what to do.
    #[arg(long)]
    install: bool,
    /// Also install what only the other commands need (minikube and perf, needed only
    /// sometimes, are never installed).
    #[arg(long, requires = "install")]
    all: bool,
}

/// `cargo xtask doctor [--install]`: the table, what is missing, and its install line.
pub fn run(args: &Args) -> Result<()> {
    let found: Vec<Found> = TOOLS.iter().map(look).collect();
    println!(
        "{:<13} {:<15} {:<7} {:<24} why",
        "tool", "found", "needs", "needed by"
    );
    for f in &found {
        let state = match &f.version {
            None => "MISSING".to_owned(),
            Some(v) if !f.ok() => format!("{v} (old)"),
            Some(v) if v.is_empty() => "yes".to_owned(),
            Some(v) => v.clone(),
        };
        let verbs: Vec<&str> = f.tool.needed_by.iter().map(|v| v.name()).collect();
        println!(
            "{:<13} {:<15} {:<7} {:<24} {}",
            f.tool.name,
            state,
            f.tool.minimum.map(|m| format!("{m}+")).unwrap_or_default(),
            verbs.join(" "),
            f.tool.why
        );
    }
    let core = |f: &&Found| !f.tool.sometimes && f.tool.needed_by.iter().any(|v| v.is_core());
    let missing: Vec<&Found> = found.iter().filter(|f| !f.ok()).collect();
    let (core_missing, other_missing): (Vec<&Found>, Vec<&Found>) =
        missing.iter().copied().partition(core);
    if missing.is_empty() {
        println!("\nEverything every command needs is here.");
        return Ok(());
    }
    if !other_missing.is_empty() {
        let names: Vec<&str> = other_missing.iter().map(|f| f.tool.name).collect();
        println!(
            "\nOptional (only for the commands named): {}.\n  {}",
            names.join(", "),
            fix_line(&other_missing)
        );
    }
    if core_missing.is_empty() {
        println!("\n`cargo xtask up` and `cargo xtask test` have everything they need.");
    } else {
        println!(
            "\nMissing for `cargo xtask up` / `cargo xtask test`:\n  {}",
            fix_line(&core_missing)
        );
    }
    let to_install: Vec<&Found> = if args.all {
        missing
            .iter()
            .copied()
            .filter(|f| !f.tool.sometimes)
            .collect()
    } else {
        core_missing.clone()
    };
    if args.install && !to_install.is_empty() {
        install(&to_install)?;
        let still: Vec<&'static str> = to_install
            .iter()
            .filter(|f| !look(f.tool).ok())
            .map(|f| f.tool.name)
            .collect();
        if !still.is_empty() {
            bail!(
                "still missing after the install: {} (see the lines above)",
                still.join(", ")
            );
        }
        println!("\nInstalled; `cargo xtask up` and `cargo xtask test` have what they need.");
        return Ok(());
    }
    if !core_missing.is_empty() {
        bail!(
            "{} tool(s) that `up` and `test` need are missing: run `cargo xtask doctor --install` \
             or the line above",
            core_missing.len()
        );
    }
    Ok(())
}

fn install(missing: &[&Found]) -> Result<()> {
    let (apt, rustup, manual) = install_lines(missing);
    if !apt.is_empty() {
        let root = nix::unistd::Uid::effective().is_root();
        if !root && tools::find_program("sudo").is_none() {
            bail!(
                "installing needs root or sudo: run as root `apt-get install {}`",
                apt.join(" ")
            );
        }
        let apt_get = |args: &[&str]| {
            let mut command = if root {
                Command::new("apt-get")
            } else {
                let mut sudo = Command::new("sudo");
                sudo.arg("apt-get");
                sudo
            };
            command.env("DEBIAN_FRONTEND", "noninteractive").args(args);
            command
        };
        cmd::run(&mut apt_get(&["update", "-q"]))?;
        let mut install = apt_get(&["install", "-y", "-q", "--no-install-recommends"]);
        install.args(&apt);
        cmd::run(&mut install)?;
    }
    for line in rustup {
        let words: Vec<&str> = line.split_whitespace().collect();
        cmd::run(Command::new(words[0]).args(&words[1..]))?;
    }
    for how in &manual {
        eprintln!("by hand: {how}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_what_programs_print() {
        assert_eq!(
            first_version("go version go1.26.8 linux/amd64").unwrap(),
            "1.26.8"
        );
        assert_eq!(first_version("v20.20.2\n").unwrap(), "20.20.2");
        assert_eq!(
            first_version("openjdk version \"17.0.15\" 2025-04-15").unwrap(),
            "17.0.15"
        );
        assert_eq!(
            first_version("nginx version: nginx/1.22.1").unwrap(),
            "1.22.1"
        );
        assert_eq!(
            first_version("cargo 1.95.0 (f2d3ce0bd 2026-03-21)").unwrap(),
            "1.95.0"
        );
        assert_eq!(
            first_version("\u{1b}[1mApache Maven 3.8.7\u{1b}[m\nMaven home").unwrap(),
            "3.8.7"
        );
        assert_eq!(
            first_version("openjdk version \"21\" 2023-09-19").unwrap(),
            "21"
        );
        assert!(at_least("20.20.2", "20.19"));
        assert!(!at_least("18.19.1", "20.19"));
        assert!(at_least("1.26.8", "1.24"));
        assert!(!at_least("1.19.8", "1.24"));
        assert!(at_least("17", "17"));
        assert!(at_least("v1.26.8", "go1.26"));
    }

    #[test]
    fn the_minimum_rust_is_the_workspaces_rust_version() {
        let manifest = std::fs::read_to_string(crate::paths::root().join("Cargo.toml")).unwrap();
        let line = manifest
            .lines()
            .find(|l| l.starts_with("rust-version"))
            .expect("rust-version in Cargo.toml");
        let cargo = TOOLS.iter().find(|t| t.name == "cargo").unwrap();
        assert!(
            line.contains(&format!("\"{}\"", cargo.minimum.unwrap())),
            "the doctor's minimum Rust differs from {line}"
        );
    }

    #[test]
    fn the_readme_names_every_package_the_two_commands_need_on_one_line() {
        let readme = std::fs::read_to_string(crate::paths::root().join("README.md")).unwrap();
        let line = readme
            .lines()
            .find(|l| l.contains("apt-get install") && l.contains("openjdk"))
            .expect("README.md has no apt-get line with the prerequisites");
        let mut named: Vec<&str> = line
            .split_whitespace()
            .skip_while(|w| *w != "install")
            .skip(1)
            .filter(|w| !w.starts_with('-'))
            .collect();
        let mut table = core_apt_packages();
        named.sort_unstable();
        table.sort_unstable();
        assert_eq!(
            named, table,
            "README.md's Prerequisites line and the doctor's table (xtask/src/doctor.rs) disagree"
        );
    }

    #[test]
    fn a_missing_tool_is_named_with_its_install_line() {
        static GONE: Tool = Tool {
            name: "no-such-tool",
            probe: Probe::Program("no-such-tool-kafka-cqrs", &[]),
            minimum: None,
            needed_by: &[Up],
            install: Install::Apt("no-such-package"),
            why: "a test",
            sometimes: false,
        };
        let found = look(&GONE);
        assert!(!found.ok());
        assert!(fix_line(&[&found]).ends_with("apt-get install no-such-package"));
        static OLD: Tool = Tool {
            name: "cargo",
            probe: Probe::Program("cargo", &["--version"]),
            minimum: Some("999"),
            needed_by: &[Up],
            install: Install::Manual("by hand"),
            why: "a test",
            sometimes: false,
        };
        let found = look(&OLD);
        assert!(!found.ok(), "cargo 999 is not installed: {found:?}");
        assert!(describe(&found).starts_with("cargo 999+ (found 1."));
    }
}
