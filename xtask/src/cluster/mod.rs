//! `cargo xtask cluster up | down | status | test`: a real one-node Kubernetes on this
//! machine, long-lived like the local system of `cargo xtask up`.
//!
//! The control plane is the one the cluster tests build (etcd from Debian, kube-apiserver,
//! kube-controller-manager, kube-scheduler); the node is a real kubelet and kube-proxy of
//! the same version, containerd 2.x with Debian's runc, Debian's CNI plugins on a bridge of
//! the cluster's own, and CoreDNS. Every program is built from the Go module proxy, pinned
//! under `deployment/cluster/` (containerd, CoreDNS, the node, the cluster's own images),
//! and every image the cluster runs is built here FROM scratch and imported into
//! containerd: nothing is pulled. Pods get addresses in 10.244.0.0/24 on the bridge `cni0`
//! (the node's address, 10.244.0.1, is the bridge's), Services in 10.96.0.0/16, and a guard
//! chain keeps the host from forwarding any pod packet off the bridge.
//!
//! State, logs and the kubeconfig live in `target/cluster/`; a process belongs to the
//! cluster when a path in that directory is one of its arguments (see `process`). `down`
//! stops everything, undoes every change to the host (mounts, network namespaces, the
//! bridge, iptables chains, cgroups, sysctls) and then checks that nothing is left.

pub mod build;
mod config;
mod host;
mod proof;

use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::Signal;

use crate::kube::{self, KUBECTL, KUBERNETES_VERSION};
use crate::{cmd, paths, process, tools};

/// The kubeconfig context of the cluster.
pub const CONTEXT: &str = "kafka-cqrs-local";
/// The node's name.
pub const NODE: &str = "kafka-cqrs-node";
/// The bridge of the pod network, which `up` creates and `down` deletes.
pub const BRIDGE: &str = "cni0";
/// The node's address: the bridge's, where the apiserver and the kubelet listen, and
/// where pods reach them.
pub const NODE_IP: &str = "10.244.0.1";
/// Every pod address of the cluster.
pub const POD_CIDR: &str = "10.244.0.0/16";
/// The pod addresses of the one node.
pub const NODE_POD_CIDR: &str = "10.244.0.0/24";
/// Every Service address.
pub const SERVICE_CIDR: &str = "10.96.0.0/16";
/// The `kubernetes` Service.
pub const API_SERVICE_IP: &str = "10.96.0.1";
/// The cluster DNS Service (`kube-system/kube-dns`).
pub const DNS_IP: &str = "10.96.0.10";
pub const CLUSTER_DOMAIN: &str = "cluster.local";
/// The apiserver's port on [`NODE_IP`].
pub const APISERVER_PORT: u16 = 16443;
/// etcd's client and peer ports on loopback.
const ETCD_PORTS: (u16, u16) = (32379, 32380);

/// How long a step may take before `up` gives up on it.
const STEP_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Build what is missing, start the cluster in the background, write
    /// target/cluster/kubeconfig (context kafka-cqrs-local) and wait until the node and
    /// CoreDNS are ready. Says so when the cluster already runs.
    Up,
    /// Stop every process of the cluster, undo its changes to the host and check that
    /// nothing is left (fails, naming it, when something is).
    Down,
    /// Each process with its pid and memory, whether the node and CoreDNS are ready.
    Status,
    /// Copy images from the local image storage (buildah, podman) into the cluster's
    /// containerd, where pods find them without a registry (`imagePullPolicy: IfNotPresent`
    /// or `Never`), e.g. `cluster load kafka-cqrs/third-party-kafka:4.1.1`.
    Load {
        /// Image references as buildah tagged them (without `localhost/`).
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// The proof: `up`, a restricted pod from a FROM-scratch image behind a Service,
    /// reached through kube-proxy from the host and from another pod by its DNS name, then
    /// `down` and its check.
    Test {
        /// Leave the cluster running afterwards (and do not start it when it runs).
        #[arg(long)]
        keep: bool,
    },
}

pub fn run(args: &Args) -> Result<()> {
    let layout = Layout::new();
    match &args.command {
        Action::Up => up(&layout).map(|_| ()),
        Action::Load { images } => build::load(&layout, images),
        Action::Down => down(&layout),
        Action::Status => status(&layout),
        Action::Test { keep } => proof::run(&layout, *keep),
    }
}

/// Where everything of the cluster lives: `target/cluster/`.
#[derive(Debug, Clone)]
pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    pub fn new() -> Self {
        Self {
            dir: paths::target_dir().join("cluster"),
        }
    }
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }
    pub fn component_kubeconfig(&self, component: &str) -> PathBuf {
        self.dir.join(format!("{component}.kubeconfig"))
    }
    pub fn pki(&self) -> PathBuf {
        self.dir.join("pki")
    }
    pub fn logs(&self) -> PathBuf {
        self.dir.join("logs")
    }
    pub fn containerd_dir(&self) -> PathBuf {
        self.dir.join("containerd")
    }
    pub fn containerd_socket(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }
    pub fn cni_conf_dir(&self) -> PathBuf {
        self.dir.join("cni/net.d")
    }
    /// What `up` saved of the host to restore at `down` (sysctls, what existed before).
    pub fn host_state(&self) -> PathBuf {
        self.dir.join("host-state.json")
    }
    /// kubectl on this cluster.
    pub fn kubectl(&self) -> Command {
        let mut command = Command::new(KUBECTL.path());
        command.arg("--kubeconfig").arg(self.kubeconfig());
        command
    }
}

/// One long-running process of the cluster.
#[derive(Debug, Clone, Copy)]
pub struct Component {
    pub name: &'static str,
    /// The file whose path, as an argument, marks the process as this cluster's.
    marker: &'static str,
}

/// Every process, in start order (stopped in reverse).
pub const COMPONENTS: [Component; 7] = [
    Component {
        name: "etcd",
        marker: "etcd",
    },
    Component {
        name: "kube-apiserver",
        marker: "pki/tokens.csv",
    },
    Component {
        name: "kube-controller-manager",
        marker: "controller-manager.kubeconfig",
    },
    Component {
        name: "kube-scheduler",
        marker: "scheduler.kubeconfig",
    },
    Component {
        name: "containerd",
        marker: "containerd.toml",
    },
    Component {
        name: "kubelet",
        marker: "kubelet.yaml",
    },
    Component {
        name: "kube-proxy",
        marker: "kube-proxy.yaml",
    },
];

impl Component {
    pub fn marker(&self, layout: &Layout) -> String {
        layout.dir.join(self.marker).display().to_string()
    }
    pub fn pids(&self, layout: &Layout) -> Result<Vec<i32>> {
        process::pids(&self.marker(layout))
    }
}

/// Prints a step's name and, when it ends, how long it took since `up` began.
struct Progress {
    started: Instant,
}

impl Progress {
    fn step<T>(&self, name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        eprintln!(
            "==> [{:>5.1}s] {name}",
            self.started.elapsed().as_secs_f64()
        );
        let step = Instant::now();
        let value = f().with_context(|| format!("cluster up: step `{name}` failed"))?;
        eprintln!(
            "    [{:>5.1}s] {name}: done in {:.1}s",
            self.started.elapsed().as_secs_f64(),
            step.elapsed().as_secs_f64()
        );
        Ok(value)
    }
}

/// Starts the cluster unless it runs; returns whether this call started it.
pub fn up(layout: &Layout) -> Result<bool> {
    host::require_root()?;
    let running: Vec<&Component> = COMPONENTS
        .iter()
        .filter(|c| c.pids(layout).is_ok_and(|p| !p.is_empty()))
        .collect();
    if running.len() == COMPONENTS.len() {
        println!(
            "The cluster already runs (`cargo xtask cluster status` shows it).\n\
             export KUBECONFIG={}",
            layout.kubeconfig().display()
        );
        return Ok(false);
    }
    if !running.is_empty() {
        let names: Vec<&str> = running.iter().map(|c| c.name).collect();
        bail!(
            "part of the cluster runs ({}) and part does not: run `cargo xtask cluster down`, \
             then `cargo xtask cluster up` again (logs in {})",
            names.join(", "),
            paths::display(&layout.logs())
        );
    }
    let progress = Progress {
        started: Instant::now(),
    };
    // A cluster that died without `down` leaves mounts, chains and the bridge behind.
    if layout.dir.exists() {
        progress.step("clean up what an earlier cluster left", || {
            host::clean(layout)
        })?;
    }
    let programs = progress.step("build the programs (cached under target/tools)", || {
        build::programs()
    })?;
    let images = progress.step("build the images (FROM scratch, buildah)", || {
        build::images(layout, &programs)
    })?;
    match start(layout, &progress, &programs, &images) {
        Ok(()) => {}
        Err(error) => {
            eprintln!(
                "\ncluster up failed: {error:#}\nLogs: {}. Stopping what started...",
                paths::display(&layout.logs())
            );
            let _ = down(layout);
            return Err(error);
        }
    }
    println!(
        "\nThe cluster runs ({:.0}s): Kubernetes v{KUBERNETES_VERSION}, one node ({NODE}), \
         CoreDNS at {DNS_IP}.\nUse it with:\n  export KUBECONFIG={}\n\
         (context {CONTEXT}); `cargo xtask cluster status` shows it, `cargo xtask cluster down` \
         stops it.",
        progress.started.elapsed().as_secs_f64(),
        layout.kubeconfig().display()
    );
    Ok(true)
}

fn start(
    layout: &Layout,
    progress: &Progress,
    programs: &build::Programs,
    images: &build::Images,
) -> Result<()> {
    progress.step("configure (certificates, tokens, configs)", || {
        // Images are kept: they are rebuilt next to this step, not here.
        host::reset_state_dir(layout)?;
        fs::create_dir_all(layout.logs())?;
        fs::create_dir_all(layout.cni_conf_dir())?;
        config::write_pki(layout, &tools::require_program("openssl", "openssl")?)?;
        config::write_credentials(layout, &mut random_u128)?;
        fs::write(
            layout.dir.join("containerd.toml"),
            config::containerd_toml(layout, &images.pause),
        )?;
        let registry = layout.containerd_dir().join("registry/_default");
        fs::create_dir_all(&registry)?;
        fs::write(registry.join("hosts.toml"), config::REGISTRY_HOSTS)?;
        fs::write(
            layout.cni_conf_dir().join("10-kafka-cqrs.conflist"),
            config::cni_conflist(layout),
        )?;
        fs::write(
            layout.dir.join("kubelet.yaml"),
            config::kubelet_yaml(layout),
        )?;
        fs::write(
            layout.dir.join("kube-proxy.yaml"),
            config::kube_proxy_yaml(layout),
        )?;
        Ok(())
    })?;
    progress.step("host network (bridge cni0, sysctls, guard chain)", || {
        host::prepare(layout)
    })?;
    progress.step("etcd and kube-apiserver", || {
        start_etcd(layout, programs)?;
        start_apiserver(layout, programs)?;
        wait(layout, "kube-apiserver to be ready", || {
            Ok(quiet(layout.kubectl().args(["get", "--raw", "/readyz"])).is_ok())
        })
    })?;
    progress.step("kube-controller-manager and kube-scheduler", || {
        start_controllers(layout, programs)
    })?;
    progress.step("containerd, and the images imported", || {
        start_containerd(layout, programs)?;
        build::import(layout, programs, images)
    })?;
    progress.step("kubelet (node Ready)", || {
        start_kubelet(layout, programs)?;
        wait(layout, "the node to be Ready", || node_ready(layout))
    })?;
    progress.step("kube-proxy", || start_kube_proxy(layout, programs))?;
    progress.step("CoreDNS (ready)", || {
        apply(layout, &config::coredns_manifests(&images.coredns))?;
        wait(layout, "CoreDNS to be ready", || coredns_ready(layout))
    })?;
    Ok(())
}

/// Starts one component in the background, its output in `logs/<name>.log`.
fn spawn(layout: &Layout, name: &str, command: Command) -> Result<()> {
    let log = layout.logs().join(format!("{name}.log"));
    process::spawn_detached(name, &log, command)?;
    Ok(())
}

fn start_etcd(layout: &Layout, programs: &build::Programs) -> Result<()> {
    let (client, peer) = ETCD_PORTS;
    let mut etcd = Command::new(&programs.etcd);
    etcd.args(["--name", "default", "--data-dir"])
        .arg(layout.dir.join("etcd"))
        .args([
            "--listen-client-urls",
            &format!("http://127.0.0.1:{client}"),
        ])
        .args([
            "--advertise-client-urls",
            &format!("http://127.0.0.1:{client}"),
        ])
        .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
        .args([
            "--initial-advertise-peer-urls",
            &format!("http://127.0.0.1:{peer}"),
        ])
        .args([
            "--initial-cluster",
            &format!("default=http://127.0.0.1:{peer}"),
        ]);
    spawn(layout, "etcd", etcd)
}

fn start_apiserver(layout: &Layout, programs: &build::Programs) -> Result<()> {
    let pki = layout.pki();
    let mut apiserver = Command::new(programs.control_plane.join("kube-apiserver"));
    apiserver
        .args([
            "--etcd-servers",
            &format!("http://127.0.0.1:{}", ETCD_PORTS.0),
        ])
        // The bridge's address: reachable from the host and from pods (through the
        // `kubernetes` Service, whose endpoint the apiserver keeps as this address).
        .args(["--bind-address", NODE_IP, "--advertise-address", NODE_IP])
        .args(["--secure-port", &APISERVER_PORT.to_string()])
        .arg("--tls-cert-file")
        .arg(pki.join("apiserver.crt"))
        .arg("--tls-private-key-file")
        .arg(pki.join("apiserver.key"))
        .arg("--client-ca-file")
        .arg(pki.join("ca.crt"))
        .arg("--kubelet-client-certificate")
        .arg(pki.join("apiserver-kubelet-client.crt"))
        .arg("--kubelet-client-key")
        .arg(pki.join("apiserver-kubelet-client.key"))
        .arg("--token-auth-file")
        .arg(pki.join("tokens.csv"))
        // The kubelet by its address: its name would be looked up in the host's DNS,
        // which is off this machine.
        .args(["--kubelet-preferred-address-types", "InternalIP"])
        .args(["--authorization-mode", "Node,RBAC"])
        .args(["--enable-admission-plugins", "NodeRestriction"])
        .args([
            "--service-account-issuer",
            &format!("https://kubernetes.default.svc.{CLUSTER_DOMAIN}"),
        ])
        .arg("--service-account-key-file")
        .arg(pki.join("service-accounts.key"))
        .arg("--service-account-signing-key-file")
        .arg(pki.join("service-accounts.key"))
        .args(["--service-cluster-ip-range", SERVICE_CIDR])
        // As in minikube and kubeadm clusters: Pod Security, not this switch, keeps
        // privileged pods out of a namespace.
        .arg("--allow-privileged=true");
    spawn(layout, "kube-apiserver", apiserver)
}

fn start_controllers(layout: &Layout, programs: &build::Programs) -> Result<()> {
    let mut controllers = Command::new(programs.control_plane.join("kube-controller-manager"));
    controllers
        .arg("--kubeconfig")
        .arg(layout.component_kubeconfig("controller-manager"))
        .args(["--leader-elect=false", "--secure-port=0"])
        // Each controller with its own service account, as the bootstrap roles expect.
        .arg("--use-service-account-credentials=true")
        .arg("--service-account-private-key-file")
        .arg(layout.pki().join("service-accounts.key"))
        .arg("--root-ca-file")
        .arg(layout.pki().join("ca.crt"))
        .args(["--allocate-node-cidrs=true", "--cluster-cidr", POD_CIDR])
        .args([
            "--node-cidr-mask-size=24",
            "--service-cluster-ip-range",
            SERVICE_CIDR,
        ]);
    spawn(layout, "kube-controller-manager", controllers)?;
    let mut scheduler = Command::new(programs.control_plane.join("kube-scheduler"));
    scheduler
        .arg("--kubeconfig")
        .arg(layout.component_kubeconfig("scheduler"))
        .args(["--leader-elect=false", "--secure-port=0"]);
    spawn(layout, "kube-scheduler", scheduler)?;
    apply(layout, &volumes(layout)?)
}

/// How many volumes the cluster offers, and the size each claims to have.
const VOLUMES: usize = 24;
const VOLUME_SIZE: &str = "20Gi";

/// The default storage class `standard` (minikube's name) with local volumes made ahead:
/// directories under `target/cluster/volumes/`, open to every user, as minikube's
/// provisioner makes them (the controller-manager's host-path provisioner makes them
/// root's only, under /tmp, where non-root pods cannot write). A volume is bound once;
/// a released one stays released until the next `up`.
fn volumes(layout: &Layout) -> Result<String> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut yaml = String::from(
        "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: standard\n  \
         annotations:\n    storageclass.kubernetes.io/is-default-class: \"true\"\n\
         provisioner: kubernetes.io/no-provisioner\nvolumeBindingMode: WaitForFirstConsumer\n",
    );
    for n in 0..VOLUMES {
        let dir = layout.dir.join(format!("volumes/pv-{n:02}"));
        fs::create_dir_all(&dir)?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o1777))?;
        yaml.push_str(&format!(
            "---\napiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: local-pv-{n:02}\n\
             spec:\n  capacity: {{storage: {VOLUME_SIZE}}}\n  accessModes: [ReadWriteOnce]\n  \
             persistentVolumeReclaimPolicy: Retain\n  storageClassName: standard\n  \
             local: {{path: {}}}\n  nodeAffinity:\n    required:\n      nodeSelectorTerms:\n      \
             - matchExpressions:\n        - {{key: kubernetes.io/hostname, operator: In, values: [{NODE}]}}\n",
            dir.display()
        ));
    }
    Ok(yaml)
}

fn start_containerd(layout: &Layout, programs: &build::Programs) -> Result<()> {
    let mut containerd = Command::new(programs.containerd.join("containerd"));
    containerd
        .arg("--config")
        .arg(layout.dir.join("containerd.toml"))
        // containerd finds its runc shim on PATH.
        .env("PATH", path_with(&programs.containerd));
    spawn(layout, "containerd", containerd)?;
    wait(layout, "containerd to answer", || {
        Ok(quiet(&mut build::ctr(layout, programs, &["version"])).is_ok())
    })
}

fn start_kubelet(layout: &Layout, programs: &build::Programs) -> Result<()> {
    let mut kubelet = Command::new(programs.node.join("kubelet"));
    kubelet
        .arg("--config")
        .arg(layout.dir.join("kubelet.yaml"))
        .arg("--kubeconfig")
        .arg(layout.component_kubeconfig("kubelet"))
        .arg("--root-dir")
        .arg(layout.dir.join("kubelet"))
        .arg("--cert-dir")
        .arg(layout.dir.join("kubelet/pki"))
        .args(["--hostname-override", NODE, "--node-ip", NODE_IP]);
    spawn(layout, "kubelet", kubelet)
}

fn start_kube_proxy(layout: &Layout, programs: &build::Programs) -> Result<()> {
    let mut proxy = Command::new(programs.node.join("kube-proxy"));
    proxy
        .arg("--config")
        .arg(layout.dir.join("kube-proxy.yaml"));
    spawn(layout, "kube-proxy", proxy)?;
    // Ready when it has written the `kubernetes` Service's rules.
    wait(layout, "kube-proxy's Service rules", || {
        Ok(
            quiet(Command::new("iptables").args(["-t", "nat", "-S", "KUBE-SERVICES"]))
                .is_ok_and(|rules| rules.contains(API_SERVICE_IP)),
        )
    })
}

/// `$PATH` with `dir` in front.
fn path_with(dir: &Path) -> std::ffi::OsString {
    let mut dirs = vec![dir.to_path_buf()];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).expect("PATH entries have no separator")
}

/// Polls `ready` every half second; fails naming the dead process or the timeout.
fn wait(layout: &Layout, what: &str, mut ready: impl FnMut() -> Result<bool>) -> Result<()> {
    let started = Instant::now();
    eprintln!("    waiting for {what}...");
    loop {
        if ready()? {
            return Ok(());
        }
        for component in COMPONENTS {
            let log = layout.logs().join(format!("{}.log", component.name));
            if log.exists() && component.pids(layout)?.is_empty() {
                bail!(
                    "{} exited while waiting for {what}; the end of {}:\n{}",
                    component.name,
                    paths::display(&log),
                    tail(&log, 15)
                );
            }
        }
        if started.elapsed() > STEP_TIMEOUT {
            bail!(
                "timed out after {}s waiting for {what}; logs in {}",
                STEP_TIMEOUT.as_secs(),
                paths::display(&layout.logs())
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The last `lines` lines of a log.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs `command` quietly; its trimmed stdout, or an error with its stderr.
pub fn quiet(command: &mut Command) -> Result<String> {
    cmd::read(command).map(|out| out.trim().to_owned())
}

/// `kubectl apply -f -` of `yaml`.
pub fn apply(layout: &Layout, yaml: &str) -> Result<()> {
    let mut command = layout.kubectl();
    command.args(["apply", "-f", "-"]);
    let output = kube::with_stdin(&mut command, yaml)?;
    if !output.status.success() {
        bail!(
            "`{}` failed: {}",
            cmd::shell_line(&command),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

fn node_ready(layout: &Layout) -> Result<bool> {
    Ok(quiet(layout.kubectl().args([
        "get",
        "node",
        NODE,
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
    ]))
    .is_ok_and(|s| s == "True"))
}

fn coredns_ready(layout: &Layout) -> Result<bool> {
    Ok(quiet(layout.kubectl().args([
        "-n",
        "kube-system",
        "get",
        "deployment",
        "coredns",
        "-o",
        "jsonpath={.status.readyReplicas}",
    ]))
    .is_ok_and(|s| s == "1"))
}

/// 128 random bits from the kernel, for the tokens.
fn random_u128() -> Result<u128> {
    let mut bytes = [0u8; 16];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("cannot read /dev/urandom")?;
    Ok(u128::from_le_bytes(bytes))
}

/// Stops the cluster, restores the host and checks that nothing is left.
pub fn down(layout: &Layout) -> Result<()> {
    host::require_root()?;
    let started = Instant::now();
    let apiserver_up = COMPONENTS[1].pids(layout)?.len() == 1
        && quiet(layout.kubectl().args(["get", "--raw", "/readyz"])).is_ok();
    let kubelet_up = !COMPONENTS[5].pids(layout)?.is_empty();
    if apiserver_up && kubelet_up {
        // Pods first, while the kubelet runs: it stops their sandboxes, which tears down
        // their network through CNI (veth, address, port mappings).
        eprintln!("Deleting every pod (the kubelet tears down their networks)...");
        let _ = quiet(layout.kubectl().args([
            "delete",
            "deployments,replicasets,statefulsets,daemonsets,jobs,pods",
            "--all",
            "--all-namespaces",
            "--grace-period=3",
            "--wait=false",
        ]));
        let deadline = Instant::now() + Duration::from_secs(45);
        while Instant::now() < deadline {
            let pods = quiet(layout.kubectl().args(["get", "pods", "-A", "-o", "name"]))
                .unwrap_or_default();
            if pods.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    // The node first (newest to oldest), then the control plane; the apiserver before
    // etcd, since it ignores SIGTERM once etcd is gone.
    for component in COMPONENTS.iter().rev() {
        if component.name == "containerd" {
            build::kill_tasks(layout);
        }
        // The apiserver stops serving at once on SIGTERM but its process often lingers
        // (its watch cache keeps asking the storage); it keeps no state of its own.
        let grace = if component.name == "kube-apiserver" {
            3
        } else {
            10
        };
        process::stop(
            component.name,
            &component.marker(layout),
            Signal::SIGTERM,
            Duration::from_secs(grace),
        )?;
    }
    host::clean(layout)?;
    let left = host::leftovers(layout)?;
    if left.is_empty() {
        println!(
            "The cluster is down ({:.1}s); nothing of it is left (processes, mounts, network \
             namespaces, veths, the bridge, iptables chains, kubepods cgroups all checked).",
            started.elapsed().as_secs_f64()
        );
        Ok(())
    } else {
        bail!(
            "the cluster stopped, but these are left:\n  {}",
            left.join("\n  ")
        )
    }
}

fn status(layout: &Layout) -> Result<()> {
    println!(
        "Cluster {CONTEXT} (state in {}):",
        paths::display(&layout.dir)
    );
    let mut all = true;
    for component in COMPONENTS {
        let pids = component.pids(layout)?;
        match pids.first() {
            Some(&pid) => println!(
                "  {:<24} pid {pid:<8} {:>5} MiB",
                component.name,
                process::resident_mib(pid).unwrap_or(0)
            ),
            None => {
                all = false;
                println!("  {:<24} not running", component.name);
            }
        }
    }
    let shims = process::pids(&layout.containerd_socket().display().to_string())?;
    let shim_mib: u64 = shims.iter().filter_map(|&p| process::resident_mib(p)).sum();
    println!(
        "  {:<24} {} running, {shim_mib} MiB together",
        "containerd shims",
        shims.len()
    );
    // Every pod's containers and sandboxes, as their memory cgroup counts them.
    if let Ok(bytes) = fs::read_to_string("/sys/fs/cgroup/memory/kubepods/memory.usage_in_bytes")
        && let Ok(bytes) = bytes.trim().parse::<u64>()
    {
        println!(
            "  {:<24} {} MiB (memory cgroup kubepods)",
            "pods",
            bytes / (1024 * 1024)
        );
    }
    if !all {
        println!("\nNot (fully) running: `cargo xtask cluster up` starts it.");
        return Ok(());
    }
    let yes = |b: bool| if b { "yes" } else { "no" };
    println!("  node {NODE} Ready: {}", yes(node_ready(layout)?));
    println!("  CoreDNS ready: {}", yes(coredns_ready(layout)?));
    println!("\nexport KUBECONFIG={}", layout.kubeconfig().display());
    Ok(())
}

/// Copies images from the local image storage into the running cluster's containerd
/// (`cargo xtask deploy --load-images` on the context kafka-cqrs-local).
pub fn load(references: &[String]) -> Result<()> {
    build::load(&Layout::new(), references)
}

/// The step "real cluster" of `cargo xtask test`: `cluster test` on a cluster of its own
/// (or the running one, left running).
pub fn test() -> Result<()> {
    proof::run(&Layout::new(), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `require` and `replace` lines of a go.mod that name `k8s.io/` modules.
    fn k8s_lines(go_mod: &str) -> Vec<String> {
        go_mod
            .lines()
            .map(str::trim)
            .filter(|l| {
                l.starts_with("k8s.io/") && (l.contains("=>") || l.contains("kubernetes v"))
            })
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn the_node_is_the_same_kubernetes_as_the_control_plane() {
        let read = |dir: &str| fs::read_to_string(paths::root().join(dir).join("go.mod")).unwrap();
        let node = read("deployment/cluster/node");
        let control_plane = read("deployment/kubernetes/cluster-tools");
        assert!(
            node.contains(&format!("k8s.io/kubernetes v{KUBERNETES_VERSION}")),
            "deployment/cluster/node/go.mod must require k8s.io/kubernetes v{KUBERNETES_VERSION}"
        );
        let replaces = |text: &str| -> Vec<String> {
            k8s_lines(text)
                .into_iter()
                .filter(|l| l.contains("=>"))
                .collect()
        };
        assert_eq!(replaces(&node), replaces(&control_plane));
        assert!(!replaces(&node).is_empty());
    }

    #[test]
    fn the_settings_this_machine_needs_are_in_the_configs() {
        let layout = Layout {
            dir: PathBuf::from("/state"),
        };
        let kubelet: serde_yaml::Value =
            serde_yaml::from_str(&config::kubelet_yaml(&layout)).unwrap();
        assert_eq!(kubelet["failCgroupV1"], serde_yaml::Value::Bool(false));
        assert_eq!(kubelet["cgroupDriver"].as_str(), Some("cgroupfs"));
        assert_eq!(kubelet["clusterDNS"][0].as_str(), Some(DNS_IP));
        assert_eq!(
            kubelet["containerRuntimeEndpoint"].as_str(),
            Some("unix:///state/containerd.sock")
        );
        let containerd = config::containerd_toml(&layout, "docker.io/kafka-cqrs/cluster-pause:x");
        assert!(containerd.contains("restrict_oom_score_adj = true"));
        assert!(containerd.contains("config_path = \"/state/containerd/registry\""));
        assert!(config::REGISTRY_HOSTS.contains("server = \"http://127.0.0.1:9\""));
        assert!(containerd.contains("sandbox = \"docker.io/kafka-cqrs/cluster-pause:x\""));
        // Everything containerd keeps is under the state directory.
        for line in containerd.lines().filter(|l| l.contains("= \"/")) {
            assert!(
                line.contains("\"/state/") || line.contains("/usr/"),
                "{line}"
            );
        }
        let cni: serde_json::Value = serde_json::from_str(&config::cni_conflist(&layout)).unwrap();
        let bridge = &cni["plugins"][0];
        assert_eq!(bridge["bridge"], BRIDGE);
        // No masquerading: pod traffic never leaves this machine.
        assert_eq!(bridge["ipMasq"], false);
        let proxy: serde_yaml::Value =
            serde_yaml::from_str(&config::kube_proxy_yaml(&layout)).unwrap();
        assert_eq!(proxy["mode"].as_str(), Some("iptables"));
        assert_eq!(proxy["clusterCIDR"].as_str(), Some(POD_CIDR));
    }

    #[test]
    fn coredns_answers_only_for_the_cluster() {
        let manifests = config::coredns_manifests("docker.io/kafka-cqrs/cluster-coredns:x");
        // No `forward`: a name outside the cluster must not be sent off this machine.
        assert!(!manifests.contains("forward"));
        assert!(manifests.contains(&format!("clusterIP: {DNS_IP}")));
        for doc in manifests.split("\n---\n") {
            let _: serde_yaml::Value = serde_yaml::from_str(doc).unwrap();
        }
    }

    #[test]
    fn every_component_has_its_own_marker() {
        let layout = Layout::new();
        let mut markers: Vec<String> = COMPONENTS.iter().map(|c| c.marker(&layout)).collect();
        markers.sort();
        markers.dedup();
        assert_eq!(markers.len(), COMPONENTS.len());
    }
}
