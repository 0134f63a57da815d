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

use crate::kube::{self, Kubectl, cluster};
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
    On the real cluster of this machine (`cargo xtask cluster up`):\n  \
    cargo xtask deploy --context kafka-cqrs-local --overlay local-cluster --load-images\n\
    Remove it again with `cargo xtask undeploy` (with the same --context and --overlay).")]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// Build the images and load them into the cluster first: into minikube (`cargo xtask
    /// image --load minikube`), or into the local cluster's containerd with the
    /// third-party stand-ins (`cargo xtask image`, `image --third-party`, `cluster load`).
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

/// Whether `kubectl`'s context is minikube's: minikube names the context after its
/// profile, `minikube` unless `-p` was given; its cluster entry carries the same name and
/// an extension naming minikube.
fn is_minikube(kubectl: &Kubectl) -> bool {
    kubectl.context == "minikube"
        || kubectl
            .quiet(&[
                "config",
                "view",
                "-o",
                &format!(
                    "jsonpath={{.contexts[?(@.name==\"{}\")].context.extensions[*].name}}",
                    kubectl.context
                ),
            ])
            .is_ok_and(|ext| ext.contains("context_info"))
}

/// kubectl on the context `target` names. The local cluster's context is found in its own
/// kubeconfig (target/cluster/kubeconfig) unless a kubeconfig is named.
fn kubectl(target: &Target) -> Result<Kubectl> {
    let local = target.context.as_deref() == Some(crate::cluster::CONTEXT)
        && target.kubeconfig.is_none()
        && std::env::var_os("KUBECONFIG").is_none();
    let kubeconfig = if local {
        let file = crate::cluster::Layout::new().kubeconfig();
        if !file.is_file() {
            bail!(
                "the local cluster has no kubeconfig ({}): start it with `cargo xtask cluster up`",
                paths::display(&file)
            );
        }
        Some(file)
    } else {
        target.kubeconfig.clone()
    };
    Kubectl::new(kubeconfig.as_deref(), target.context.as_deref())
}

/// Whether `kubectl`'s context is the local cluster's (`cargo xtask cluster`).
fn is_local_cluster(kubectl: &Kubectl) -> bool {
    kubectl.context == crate::cluster::CONTEXT
}

/// Builds the project's images and the third-party stand-ins and loads them into the local
/// cluster's containerd (no registry: pods find them there).
fn load_into_local_cluster() -> Result<()> {
    let mut references: Vec<String> = crate::image::build(crate::image::DEFAULT_PROFILE)?
        .into_iter()
        .map(|built| built.reference)
        .collect();
    references.extend(
        crate::image::third_party::build()?
            .into_iter()
            .map(|stand_in| stand_in.reference),
    );
    crate::cluster::load(&references)
}

/// `cargo xtask deploy`: the overlay with this checkout's images, its Jobs run afresh
/// (`kube::apply`), every rollout waited for, then where to open what.
pub fn run(args: &Args) -> Result<()> {
    if args.test_cluster {
        return cluster::test(&args.overlay);
    }
    let started = Instant::now();
    let kubectl = kubectl(&args.target)?;
    let minikube = is_minikube(&kubectl);
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
    } else if is_local_cluster(&kubectl) {
        if args.overlay == kube::DEFAULT_OVERLAY {
            eprintln!(
                "note: the local cluster cannot pull the official images the overlay `{}` \
                 names; `--overlay local-cluster` runs the stand-ins",
                args.overlay
            );
        }
        if args.load_images {
            load_into_local_cluster()?;
        }
    } else if args.load_images {
        bail!(
            "--load-images loads the images into minikube or the local cluster, but `{}` is \
             neither. Push the images to a registry the cluster pulls from instead",
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
    kube::apply(&kubectl, &manifests, Duration::from_secs(args.timeout))?;
    eprintln!(
        "\nkafka-cqrs is deployed to `{}` ({:.0}s).",
        kubectl.context,
        started.elapsed().as_secs_f64()
    );
    if is_local_cluster(&kubectl) {
        return serve_local_cluster(&kubectl);
    }
    print_urls(&kubectl, minikube)
}

/// The local cluster has no ingress controller (ingress-nginx is not built here): the
/// local gateway's nginx configuration, pointed at the Services' cluster addresses (which
/// this machine reaches through kube-proxy), serves the routes on a port of its own. Prints
/// it, and the e2e command with every address the suite needs besides the gateway.
fn serve_local_cluster(kubectl: &Kubectl) -> Result<()> {
    let ns = kube::NAMESPACE;
    let services = kubectl.quiet(&[
        "-n",
        ns,
        "get",
        "services",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name} {.spec.clusterIP}{\"\\n\"}{end}",
    ])?;
    let address = |name: &str| -> Result<String> {
        services
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name} ")))
            .map(str::to_owned)
            .with_context(|| format!("the namespace {ns} has no Service {name}"))
    };
    let jaeger = format!(
        "{}:{}",
        address("jaeger")?,
        platform::observability::JAEGER_QUERY_PORT
    );
    let mut upstreams = vec![("jaeger".to_owned(), jaeger.clone())];
    let mut variables = vec![
        format!(
            "CQRS_PROMETHEUS=http://{}:{}",
            address("prometheus")?,
            platform::observability::PROMETHEUS_PORT
        ),
        format!("CQRS_JAEGER=http://{jaeger}"),
    ];
    for service in platform::SERVICES {
        let at = format!("{}:{}", address(service.name)?, service.port);
        if service.route.is_some() {
            upstreams.push((service.name.to_owned(), at.clone()));
        }
        variables.push(format!(
            "CQRS_{}_URL=http://{at}",
            service.name.to_uppercase()
        ));
    }
    // Each notifier pod by its own address: the e2e suite hops a stream across replicas.
    let pods = kubectl.quiet(&[
        "-n",
        ns,
        "get",
        "pods",
        "-l",
        &format!("app.kubernetes.io/name={}", platform::NOTIFIER.name),
        "-o",
        "jsonpath={.items[*].status.podIP}",
    ])?;
    let notifiers: Vec<String> = pods
        .split_whitespace()
        .map(|ip| format!("http://{ip}:{}", platform::NOTIFIER.port))
        .collect();
    variables.push(format!("CQRS_NOTIFIER_URLS={}", notifiers.join(",")));
    let gateway = crate::system::Gateway::for_cluster(upstreams);
    gateway.start()?;
    let url = gateway.url();
    println!("\ngateway: {url}");
    println!("  GUI       {url}{}/", platform::gateway::GUI_PREFIX);
    println!(
        "e2e: {} cargo xtask e2e --gateway {url}",
        variables.join(" ")
    );
    println!(
        "  (the gateway runs on this machine: nginx with deployment/local/nginx/nginx.conf, \
         pointed at the Services; `cargo xtask undeploy --context {}` stops it)",
        kubectl.context
    );
    Ok(())
}

/// `cargo xtask undeploy`: deletes what `deploy` applied, the namespace with everything in
/// it included, and waits until it is gone.
pub fn undeploy(args: &UndeployArgs) -> Result<()> {
    let overlay = &args.overlay;
    let kubectl = kubectl(&args.target)?;
    let manifests = kube::build(overlay)?;
    eprintln!(
        "Deleting the overlay `{overlay}` from the context `{}`...",
        kubectl.context
    );
    if is_local_cluster(&kubectl) {
        crate::system::Gateway::for_cluster(Vec::new()).stop()?;
    }
    kube::delete(&kubectl, &manifests)?;
    eprintln!(
        "Deleted: namespace {} and everything in it.",
        kube::NAMESPACE
    );
    Ok(())
}

/// Prints where to open the gateway, Grafana and Jaeger: through minikube's address, or
/// with `kubectl port-forward` elsewhere.
fn print_urls(kubectl: &Kubectl, minikube: bool) -> Result<()> {
    let ns = kube::NAMESPACE;
    let context = &kubectl.context;
    let kubeconfig = kubectl
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
    println!("\ngateway: {gateway}");
    println!("  GUI       {gateway}{}/", platform::gateway::GUI_PREFIX);
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
