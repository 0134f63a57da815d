//! `cargo xtask deploy` and `cargo xtask undeploy`: the kustomize overlay of
//! `deployment/kubernetes` applied to a kubeconfig context (minikube's, or any), every
//! rollout waited for, and where to open the gateway, Grafana and Jaeger.
//!
//! kubectl is the pinned one (`target/tools/kubectl`, built from
//! `deployment/kubernetes/cluster-tools/go.mod`), not whatever the machine has: the
//! manifests are checked against that version.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::kube::{self, cluster};
use crate::{cmd, paths};

/// Where to deploy.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Target {
    /// The kubeconfig context to use (default: the current context).
    #[arg(long, value_name = "CONTEXT")]
    pub context: Option<String>,
    /// The kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
}

/// Options of `cargo xtask deploy`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "On minikube (context `minikube`):\n  \
    minikube start --cpus 4 --memory 8g\n  \
    cargo xtask deploy --load-images     # enables the ingress addon, loads the images\n\
    Remove it again with `cargo xtask undeploy`.")]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// Build the images and load them into minikube first (`cargo xtask image --load
    /// minikube`); minikube contexts only.
    #[arg(long)]
    pub load_images: bool,
    /// The overlay under deployment/kubernetes/overlays to apply.
    #[arg(long, default_value = kube::DEFAULT_OVERLAY)]
    pub overlay: String,
    /// How long to wait for all rollouts, in seconds.
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    pub timeout: u64,
    /// Run the project's images with this tag instead of the one `cargo xtask image` gives
    /// this checkout (`<version>-<git revision>`).
    #[arg(long, value_name = "TAG")]
    pub image_tag: Option<String>,
    /// Instead of a kubeconfig context: start a throwaway cluster (etcd, a real
    /// kube-apiserver, controllers, kwok's simulated nodes) under target/, check the overlay
    /// there server-side, deploy it, and stop the cluster; the step of `cargo xtask test`.
    #[arg(long, conflicts_with_all = ["context", "kubeconfig", "load_images"])]
    pub test_cluster: bool,
}

/// Options of `cargo xtask undeploy`.
#[derive(Debug, Clone, clap::Args)]
pub struct UndeployArgs {
    #[command(flatten)]
    pub target: Target,
    /// The overlay under deployment/kubernetes/overlays that was applied.
    #[arg(long, default_value = kube::DEFAULT_OVERLAY)]
    pub overlay: String,
}

/// A kubeconfig context and the pinned kubectl pointed at it.
#[derive(Debug)]
struct Kubectl {
    program: PathBuf,
    target: Target,
    context: String,
}

impl Kubectl {
    /// Builds kubectl if needed and resolves the context (the named or the current one),
    /// failing with what to do when there is none.
    fn new(target: &Target) -> Result<Kubectl> {
        let program = cluster::kubectl()?;
        let mut kubectl = Kubectl {
            program,
            target: target.clone(),
            context: String::new(),
        };
        if let Some(file) = &target.kubeconfig
            && !file.is_file()
        {
            bail!("the kubeconfig {} does not exist", file.display());
        }
        let contexts = kubectl.quiet(&["config", "get-contexts", "-o", "name"])?;
        let contexts: Vec<&str> = contexts.lines().collect();
        kubectl.context = match &target.context {
            Some(context) if contexts.contains(&context.as_str()) => context.clone(),
            Some(context) => bail!(
                "the kubeconfig has no context `{context}` (it has: {}). Start the cluster \
                 (`minikube start` creates the context `minikube`) or pass --kubeconfig",
                list(&contexts)
            ),
            None => {
                let current = kubectl.quiet(&["config", "current-context"]).ok();
                match current.map(|c| c.trim().to_owned()) {
                    Some(c) if !c.is_empty() => c,
                    _ => bail!(
                        "the kubeconfig has no current context (contexts: {}). Start a \
                         cluster (`minikube start`) or pass --context",
                        list(&contexts)
                    ),
                }
            }
        };
        Ok(kubectl)
    }

    /// kubectl with the kubeconfig and context set.
    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        if let Some(file) = &self.target.kubeconfig {
            command.arg("--kubeconfig").arg(file);
        }
        if !self.context.is_empty() {
            command.args(["--context", &self.context]);
        }
        command
    }

    /// Runs kubectl quietly and returns its stdout; fails with its stderr.
    fn quiet(&self, args: &[&str]) -> Result<String> {
        let mut command = self.command();
        command.args(args);
        let output = cmd::output(&mut command)?;
        if !output.status.success() {
            bail!(
                "`{}` failed: {}",
                cmd::shell_line(&command),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Echoes and runs kubectl with `yaml` on stdin; fails with its stderr.
    fn with_manifests(&self, args: &[&str], yaml: &str) -> Result<()> {
        let mut command = self.command();
        command.args(args);
        let output = cluster::with_stdin(&mut command, yaml)?;
        eprint!("{}", String::from_utf8_lossy(&output.stdout));
        if !output.status.success() {
            bail!(
                "`{}` failed:\n{}",
                cmd::shell_line(&command),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }

    fn is_minikube(&self) -> bool {
        // minikube names the context after its profile, `minikube` unless `-p` was given;
        // its cluster entry carries the same name and an extension naming minikube.
        self.context == "minikube"
            || self
                .quiet(&[
                    "config",
                    "view",
                    "-o",
                    &format!(
                        "jsonpath={{.contexts[?(@.name==\"{}\")].context.extensions[*].name}}",
                        self.context
                    ),
                ])
                .is_ok_and(|ext| ext.contains("context_info"))
    }
}

pub fn run(args: &Args) -> Result<()> {
    if args.test_cluster {
        return cluster::test(&args.overlay);
    }
    let started = Instant::now();
    let kubectl = Kubectl::new(&args.target)?;
    let minikube = kubectl.is_minikube();
    eprintln!(
        "Deploying the overlay `{}` to the context `{}`{}.",
        args.overlay,
        kubectl.context,
        if minikube { " (minikube)" } else { "" }
    );
    if minikube {
        let program = require_minikube()?;
        cmd::run(
            Command::new(&program)
                .args(["-p", &kubectl.context])
                .args(["addons", "enable", "ingress"]),
        )
        .context(
            "cannot enable minikube's ingress addon; is minikube running (`minikube status`)?",
        )?;
        if args.load_images {
            let xtask = crate::paths::xtask_program().context("cannot find the xtask program")?;
            cmd::run(Command::new(xtask).args(["image", "--load", "minikube"]))?;
        }
    } else if args.load_images {
        bail!(
            "--load-images loads the images into minikube, but `{}` is not a minikube \
             context. Push the images to a registry the cluster pulls from instead",
            kubectl.context
        );
    }

    // The images `cargo xtask image` built from this checkout, unless told otherwise: the
    // committed overlay names a version only, which no image carries.
    let tag = match &args.image_tag {
        Some(tag) => tag.clone(),
        None => crate::image::checkout_tag()?,
    };
    eprintln!("Running the project's images tagged {tag}.");
    let manifests = kube::build_tagged(&args.overlay, &tag)?;
    kubectl.with_manifests(&["apply", "-f", "-"], &manifests)?;
    wait_for_rollouts(&kubectl, Duration::from_secs(args.timeout))?;
    eprintln!(
        "\nkafka-cqrs is deployed to `{}` ({:.0}s).",
        kubectl.context,
        started.elapsed().as_secs_f64()
    );
    print_urls(&kubectl, minikube)
}

/// `cargo xtask undeploy`: deletes what `deploy` applied, the namespace with everything in
/// it included, and waits until it is gone.
pub fn undeploy(args: &UndeployArgs) -> Result<()> {
    let overlay = &args.overlay;
    let kubectl = Kubectl::new(&args.target)?;
    let manifests = kube::build(overlay)?;
    eprintln!(
        "Deleting the overlay `{overlay}` from the context `{}`...",
        kubectl.context
    );
    kubectl.with_manifests(
        &["delete", "--ignore-not-found", "--wait", "-f", "-"],
        &manifests,
    )?;
    eprintln!(
        "Deleted: namespace {} and everything in it.",
        kube::NAMESPACE
    );
    Ok(())
}

/// Waits for every Deployment and StatefulSet of the namespace, then every Job, with
/// kubectl's own progress lines; fails with the objects' state after `timeout`.
fn wait_for_rollouts(kubectl: &Kubectl, timeout: Duration) -> Result<()> {
    let ns = kube::NAMESPACE;
    let workloads = kubectl.quiet(&["-n", ns, "get", "deployments,statefulsets", "-o", "name"])?;
    let jobs = kubectl.quiet(&["-n", ns, "get", "jobs", "-o", "name"])?;
    let workloads: Vec<&str> = workloads.lines().collect();
    let jobs: Vec<&str> = jobs.lines().collect();
    if workloads.is_empty() {
        bail!("the namespace {ns} has no Deployment or StatefulSet after the apply");
    }
    let started = Instant::now();
    let total = workloads.len() + jobs.len();
    for (i, name) in workloads.iter().chain(&jobs).enumerate() {
        let left = timeout.saturating_sub(started.elapsed()).as_secs().max(1);
        eprintln!(
            "[{}/{total}] waiting for {name} ({:.0}s so far)",
            i + 1,
            started.elapsed().as_secs_f64()
        );
        let mut command = kubectl.command();
        command.args(["-n", ns]);
        if name.starts_with("job") {
            command.args([
                "wait",
                "--for=condition=complete",
                &format!("--timeout={left}s"),
                name,
            ]);
        } else {
            command.args(["rollout", "status", &format!("--timeout={left}s"), name]);
        }
        if let Err(error) = cmd::run(&mut command) {
            let state = kubectl
                .quiet(&[
                    "-n",
                    ns,
                    "get",
                    "pods,deployments,statefulsets,jobs",
                    "-o",
                    "wide",
                ])
                .unwrap_or_default();
            bail!(
                "{error:#}\n{name} is not ready. What the namespace has now:\n{state}\n\
                 Look closer with `kubectl -n {ns} describe {name}` and `kubectl -n {ns} get \
                 events --sort-by=.lastTimestamp`"
            );
        }
    }
    eprintln!(
        "All {total} rollouts are complete ({:.0}s).",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Prints where to open the gateway, Grafana and Jaeger: through minikube's address, or
/// with `kubectl port-forward` elsewhere.
fn print_urls(kubectl: &Kubectl, minikube: bool) -> Result<()> {
    let ns = kube::NAMESPACE;
    let context = &kubectl.context;
    let kubeconfig = kubectl
        .target
        .kubeconfig
        .as_ref()
        .map(|f| format!(" --kubeconfig {}", paths::display(f)))
        .unwrap_or_default();
    let gateway = if minikube {
        let program = require_minikube()?;
        let output = cmd::output(Command::new(program).args(["-p", context, "ip"]))?;
        let ip = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        if !output.status.success() || ip.is_empty() {
            bail!("`minikube -p {context} ip` gives no address; is minikube running?");
        }
        format!("http://{ip}")
    } else {
        let address = kubectl
            .quiet(&[
                "-n",
                ns,
                "get",
                "ingress",
                "-o",
                "jsonpath={.items[*].status.loadBalancer.ingress[*]['ip','hostname']}",
            ])
            .unwrap_or_default();
        match address.split_whitespace().next() {
            Some(address) => format!("http://{address}"),
            None => {
                // No load balancer gives the ingress an address: reach the ingress
                // controller through a port-forward instead.
                let port = platform::gateway::LOCAL_PORT;
                println!(
                    "\n  The ingress has no address (yet; `kubectl{kubeconfig} --context {context} \
                     -n {ns} get ingress`). Reach it through ingress-nginx:\n  \
                     kubectl{kubeconfig} --context {context} -n ingress-nginx port-forward \
                     svc/ingress-nginx-controller {port}:80"
                );
                format!("http://127.0.0.1:{port}")
            }
        }
    };
    println!("\n  GUI       {gateway}{}/", platform::gateway::GUI_PREFIX);
    println!(
        "  API       {gateway}/producer/documents, {gateway}/reader/documents/{{id}}, {gateway}/notifier/documents"
    );
    println!("  e2e       cargo xtask e2e --gateway {gateway}");
    for (what, name, port) in [
        ("Grafana", "grafana", platform::observability::GRAFANA_PORT),
        (
            "Jaeger",
            "jaeger",
            platform::observability::JAEGER_QUERY_PORT,
        ),
        (
            "Prometheus",
            "prometheus",
            platform::observability::PROMETHEUS_PORT,
        ),
    ] {
        println!(
            "  {what:<9} kubectl{kubeconfig} --context {context} -n {ns} port-forward svc/{name} \
             {port}:{port}   then http://127.0.0.1:{port}"
        );
    }
    Ok(())
}

fn require_minikube() -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("minikube"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "the context is minikube's, but the `minikube` program is not on PATH. \
                 Install it (https://minikube.sigs.k8s.io/docs/start/) and run `minikube start`"
            )
        })
}

fn list(items: &[&str]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}
