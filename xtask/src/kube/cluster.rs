//! A throwaway Kubernetes cluster on loopback for the tests: etcd (Debian's `etcd-server`)
//! and a real kube-apiserver, and on demand kube-controller-manager, kube-scheduler and kwok
//! with simulated nodes, so that workloads roll out without a container runtime.
//!
//! The control plane and kubectl are built from the Go module proxy, pinned in
//! `deployment/kubernetes/cluster-tools/go.mod` (kwok in its `kwok/` module beside it).
//! Everything a [`Cluster`] started stops when it is dropped, on success, error or panic:
//! the controllers first, then the apiserver, then etcd (the apiserver ignores SIGTERM once
//! etcd is gone). Its files (kubeconfig, logs, etcd data) live in `target/kube-cluster/PID/`
//! and stay there for reading after a failure, until the next cluster starts.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

use super::{KUBECTL, KUBERNETES_VERSION, Kubectl, with_stdin};
use crate::{cmd, paths, process, tools};

/// kube-apiserver, kube-controller-manager and kube-scheduler of [`KUBERNETES_VERSION`],
/// in `target/tools/kubernetes/`, from the module that builds kubectl.
pub const CONTROL_PLANE: tools::GoTool = tools::GoTool {
    name: "kubernetes",
    packages: &[
        "k8s.io/kubernetes/cmd/kube-apiserver",
        "k8s.io/kubernetes/cmd/kube-controller-manager",
        "k8s.io/kubernetes/cmd/kube-scheduler",
    ],
    cold_build: "about 6 minutes and 3 GB of memory",
    ..KUBECTL
};

/// kwok, which plays the kubelet of simulated nodes.
pub const KWOK: tools::GoTool = tools::GoTool {
    name: "kwok",
    module_dir: "deployment/kubernetes/cluster-tools/kwok",
    packages: &["sigs.k8s.io/kwok/cmd/kwok"],
    ldflags: "",
    cold_build: "about 1 minute",
};

/// kwok's module, whose zip holds the stage files (what happens to simulated nodes and
/// pods): the same version as in `cluster-tools/kwok/go.mod`.
const KWOK_MODULE: &str = "sigs.k8s.io/kwok@v0.8.0";

/// The "fast" stages: nodes become ready and keep their leases, pods run and become ready
/// at once, pods of Jobs complete, deleted pods go away.
const KWOK_STAGES: [&str; 5] = [
    "kustomize/stage/node/fast/node-initialize.yaml",
    "kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "kustomize/stage/pod/fast/pod-ready.yaml",
    "kustomize/stage/pod/fast/pod-complete.yaml",
    "kustomize/stage/pod/fast/pod-delete.yaml",
];

/// The kubeconfig context of the cluster.
pub const CONTEXT: &str = "kafka-cqrs-test";

/// How long the apiserver may take to become ready (it takes 3-5 s here).
const APISERVER_READY: Duration = Duration::from_secs(60);

/// How long a process may take to stop on SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// A running cluster; dropping it stops everything it started.
#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    kubeconfig: PathBuf,
    kubectl: PathBuf,
    /// What was started, in order; stopped in reverse order.
    processes: Vec<Started>,
    /// How long the apiserver took to become ready.
    pub apiserver_start: Duration,
}

#[derive(Debug)]
struct Started {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Cluster {
    /// Starts etcd and the apiserver (no controllers, no nodes) and waits until the
    /// apiserver is ready. Builds the tools first when needed.
    pub fn start() -> Result<Cluster> {
        let etcd = tools::require_program("etcd", "etcd-server")?;
        let openssl = tools::require_program("openssl", "openssl")?;
        let kubectl = KUBECTL.ensure()?;
        let control_plane = CONTROL_PLANE.ensure()?;

        let base = paths::target_dir().join("kube-cluster");
        clean_stale(&base)?;
        let dir = base.join(std::process::id().to_string());
        process::remove_dir(&dir)?;
        fs::create_dir_all(dir.join("certs"))?;
        let mut cluster = Cluster {
            kubeconfig: dir.join("kubeconfig"),
            dir,
            kubectl,
            processes: Vec::new(),
            apiserver_start: Duration::ZERO,
        };
        let dir = cluster.dir.clone();

        // The key that signs and verifies service account tokens.
        let sa_key = dir.join("service-accounts.key");
        let output = cmd::output(
            Command::new(openssl)
                .args(["genrsa", "-out"])
                .arg(&sa_key)
                .arg("2048"),
        )?;
        if !output.status.success() {
            bail!(
                "openssl cannot create a key: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        // A random bearer token for the one user, a cluster admin.
        let token = format!("{:032x}", rand_u128()?);
        fs::write(
            dir.join("tokens.csv"),
            format!("{token},admin,1000,\"system:masters\"\n"),
        )?;

        let [etcd_client, etcd_peer, apiserver_port] = free_ports()?;
        let mut etcd_command = Command::new(etcd);
        etcd_command
            .args(["--name", "default", "--data-dir"])
            .arg(dir.join("etcd"))
            .args([
                "--listen-client-urls",
                &format!("http://127.0.0.1:{etcd_client}"),
            ])
            .args([
                "--advertise-client-urls",
                &format!("http://127.0.0.1:{etcd_client}"),
            ])
            .args([
                "--listen-peer-urls",
                &format!("http://127.0.0.1:{etcd_peer}"),
            ])
            .args([
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{etcd_peer}"),
            ])
            .args([
                "--initial-cluster",
                &format!("default=http://127.0.0.1:{etcd_peer}"),
            ]);
        cluster.spawn("etcd", etcd_command)?;

        let started = Instant::now();
        let mut apiserver = Command::new(control_plane.join("kube-apiserver"));
        apiserver
            .args(["--etcd-servers", &format!("http://127.0.0.1:{etcd_client}")])
            .args([
                "--bind-address",
                "127.0.0.1",
                "--advertise-address",
                "127.0.0.1",
            ])
            .args(["--secure-port", &apiserver_port.to_string()])
            // The default reconciler refuses a loopback advertise address.
            .args(["--endpoint-reconciler-type", "none"])
            .arg("--cert-dir")
            .arg(dir.join("certs"))
            .arg("--token-auth-file")
            .arg(dir.join("tokens.csv"))
            .args(["--authorization-mode", "Node,RBAC"])
            .args([
                "--service-account-issuer",
                "https://kubernetes.default.svc.cluster.local",
            ])
            .arg("--service-account-key-file")
            .arg(&sa_key)
            .arg("--service-account-signing-key-file")
            .arg(&sa_key)
            .args(["--service-cluster-ip-range", "10.96.0.0/16"])
            // As in minikube and kubeadm clusters: Pod Security, not this switch, is what
            // keeps privileged pods out of the namespace (and what the test proves).
            .arg("--allow-privileged=true");
        cluster.spawn("kube-apiserver", apiserver)?;

        fs::write(
            &cluster.kubeconfig,
            format!(
                "# Written by cargo xtask for a throwaway test cluster; gone when it stops.\n\
                 apiVersion: v1\nkind: Config\n\
                 clusters:\n- name: {CONTEXT}\n  cluster:\n    server: https://127.0.0.1:{apiserver_port}\n    \
                 insecure-skip-tls-verify: true\n\
                 users:\n- name: admin\n  user:\n    token: {token}\n\
                 contexts:\n- name: {CONTEXT}\n  context:\n    cluster: {CONTEXT}\n    user: admin\n\
                 current-context: {CONTEXT}\n"
            ),
        )?;
        eprintln!(
            "Waiting for kube-apiserver on https://127.0.0.1:{apiserver_port} (logs in {})...",
            paths::display(&dir)
        );
        loop {
            let ready = cmd::output(cluster.kubectl().args(["get", "--raw", "/readyz"]))?;
            if ready.status.success() {
                break;
            }
            cluster.check_alive()?;
            if started.elapsed() > APISERVER_READY {
                return Err(cluster.failure(
                    "kube-apiserver",
                    &format!("was not ready within {}s", APISERVER_READY.as_secs()),
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        cluster.apiserver_start = started.elapsed();
        eprintln!(
            "kube-apiserver v{KUBERNETES_VERSION} is ready ({:.1}s); kubeconfig: {}",
            cluster.apiserver_start.as_secs_f64(),
            paths::display(&cluster.kubeconfig)
        );
        Ok(cluster)
    }

    /// Starts kube-controller-manager, kube-scheduler and kwok, registers `nodes`
    /// simulated nodes and waits until they are ready: from then on, workloads roll out.
    pub fn start_nodes(&mut self, nodes: usize) -> Result<()> {
        let kwok = KWOK.ensure()?;
        let stages = kwok_stages()?;
        let control_plane = CONTROL_PLANE.path();
        let kubeconfig = self.kubeconfig.clone();

        let mut controllers = Command::new(control_plane.join("kube-controller-manager"));
        controllers
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["--leader-elect=false", "--secure-port=0"])
            .arg("--service-account-private-key-file")
            .arg(self.dir.join("service-accounts.key"))
            .arg("--root-ca-file")
            .arg(self.dir.join("certs/apiserver.crt"))
            // Volume claims get host-path volumes, like minikube's default storage class.
            .arg("--enable-hostpath-provisioner");
        self.spawn("kube-controller-manager", controllers)?;

        let mut scheduler = Command::new(control_plane.join("kube-scheduler"));
        scheduler
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["--leader-elect=false", "--secure-port=0"]);
        self.spawn("kube-scheduler", scheduler)?;

        let [kwok_port] = free_ports()?;
        let mut kwok_command = Command::new(kwok);
        kwok_command
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args([
                "--manage-all-nodes=true",
                "--node-lease-duration-seconds=40",
            ])
            .args(["--server-address", &format!("127.0.0.1:{kwok_port}")]);
        for stage in &stages {
            kwok_command.arg("--config").arg(stage);
        }
        self.spawn("kwok", kwok_command)?;

        // The storage class that the host-path provisioner serves, as the default class
        // (minikube's default is also named `standard`).
        let mut objects = String::from(
            "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: standard\n  \
             annotations:\n    storageclass.kubernetes.io/is-default-class: \"true\"\n\
             provisioner: kubernetes.io/host-path\n",
        );
        for n in 0..nodes {
            objects.push_str(&format!(
                "---\napiVersion: v1\nkind: Node\nmetadata:\n  name: kwok-node-{n}\n  \
                 annotations:\n    kwok.x-k8s.io/node: fake\n  labels:\n    \
                 kubernetes.io/hostname: kwok-node-{n}\n    kubernetes.io/os: linux\n    \
                 kubernetes.io/arch: amd64\n    type: kwok\n"
            ));
        }
        self.apply_stdin(&objects)?;
        let started = Instant::now();
        eprintln!("Waiting for {nodes} simulated node(s) to be ready...");
        loop {
            let output = cmd::output(self.kubectl().args([
                "get",
                "nodes",
                "-o",
                "jsonpath={range .items[*]}{.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}",
            ]))?;
            let text = String::from_utf8_lossy(&output.stdout);
            if output.status.success() && text.lines().filter(|s| *s == "True").count() >= nodes {
                break;
            }
            self.check_alive()?;
            if started.elapsed() > Duration::from_secs(60) {
                return Err(self.failure("kwok", "did not make the nodes ready within 60s"));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        eprintln!(
            "{nodes} simulated node(s) ready ({:.1}s)",
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// The kubeconfig file (context [`CONTEXT`]).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The pinned kubectl, pointed at this cluster.
    pub fn kubectl(&self) -> Command {
        let mut command = Command::new(&self.kubectl);
        command.arg("--kubeconfig").arg(&self.kubeconfig);
        command
    }

    /// `kubectl apply -f -` of `yaml`; fails with kubectl's message.
    pub fn apply_stdin(&self, yaml: &str) -> Result<()> {
        let mut command = self.kubectl();
        command.args(["apply", "-f", "-"]);
        let output = with_stdin(&mut command, yaml)?;
        if !output.status.success() {
            bail!(
                "`{}` failed: {}",
                cmd::shell_line(&command),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    /// Resident memory of every process of the cluster, in MiB, by name.
    pub fn memory(&self) -> Vec<(&'static str, u64)> {
        self.processes
            .iter()
            .map(|p| {
                let mib = process::resident_kib(p.child.id() as i32).unwrap_or(0) / 1024;
                (p.name, mib)
            })
            .collect()
    }

    fn spawn(&mut self, name: &'static str, mut command: Command) -> Result<()> {
        let log = self.dir.join(format!("{name}.log"));
        let console = fs::File::create(&log)?;
        command
            .stdin(Stdio::null())
            .stdout(console.try_clone()?)
            .stderr(console);
        cmd::echo(&command);
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        self.processes.push(Started { name, child, log });
        Ok(())
    }

    /// Fails when a process of the cluster has exited.
    fn check_alive(&mut self) -> Result<()> {
        let mut exited = None;
        for p in &mut self.processes {
            if let Some(status) = p.child.try_wait()? {
                exited = Some((p.name, status));
                break;
            }
        }
        match exited {
            Some((name, status)) => Err(self.failure(name, &format!("exited ({status})"))),
            None => Ok(()),
        }
    }

    /// An error that says what failed, with the last lines of its log.
    fn failure(&self, name: &str, why: &str) -> anyhow::Error {
        let log = self.dir.join(format!("{name}.log"));
        let text = fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(15)..].join("\n");
        anyhow!(
            "{name} {why}. Last lines of {}:\n{tail}",
            paths::display(&log)
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        while let Some(mut p) = self.processes.pop() {
            let pid = p.child.id();
            if p.child.try_wait().ok().flatten().is_some() {
                continue;
            }
            eprintln!("Stopping {} (pid {pid})...", p.name);
            let _ = signal::kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
            let started = Instant::now();
            loop {
                match p.child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if started.elapsed() > STOP_GRACE => {
                        eprintln!(
                            "{} did not stop within {}s: killing it (log: {})",
                            p.name,
                            STOP_GRACE.as_secs(),
                            paths::display(&p.log)
                        );
                        let _ = p.child.kill();
                        let _ = p.child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        }
    }
}

/// Stops what a cluster of a process that no longer runs left behind (a killed xtask cannot
/// run `Drop`) and deletes its directory.
fn clean_stale(base: &Path) -> Result<()> {
    let Ok(entries) = fs::read_dir(base) else {
        return Ok(());
    };
    for entry in entries {
        let dir = entry?.path();
        let owner = dir
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<i32>().ok());
        if let Some(pid) = owner
            && pid != std::process::id() as i32
            && signal::kill(Pid::from_raw(pid), None).is_ok()
        {
            continue; // another xtask's cluster, still running
        }
        // The markers are arguments only this cluster's processes have, apiserver before etcd.
        let markers = [
            ("a stale kube controller", dir.join("kubeconfig")),
            ("a stale kube-apiserver", dir.join("tokens.csv")),
            ("a stale etcd", dir.join("etcd")),
        ];
        for (title, marker) in markers {
            process::stop(
                title,
                &marker.display().to_string(),
                Signal::SIGTERM,
                STOP_GRACE,
            )?;
        }
        process::remove_dir(&dir)?;
    }
    Ok(())
}

/// The stage files of kwok from its module zip (downloaded by Go if missing).
fn kwok_stages() -> Result<Vec<PathBuf>> {
    let mut go = Command::new("go");
    go.current_dir(paths::root().join(KWOK.module_dir)).args([
        "mod",
        "download",
        "-json",
        KWOK_MODULE,
    ]);
    let output = cmd::output(&mut go)?;
    if !output.status.success() {
        bail!(
            "`{}` failed: {}{}",
            cmd::shell_line(&go),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let info: serde_json::Value = serde_json::from_slice(&output.stdout)
        .context("cannot read the output of `go mod download -json`")?;
    let module = info["Dir"]
        .as_str()
        .ok_or_else(|| anyhow!("`go mod download -json {KWOK_MODULE}` names no directory"))?;
    KWOK_STAGES
        .iter()
        .map(|stage| {
            let path = Path::new(module).join(stage);
            if path.is_file() {
                Ok(path)
            } else {
                bail!("{KWOK_MODULE} has no {stage}")
            }
        })
        .collect()
}

/// `N` loopback ports that are free now (the kernel picks them).
fn free_ports<const N: usize>() -> Result<[u16; N]> {
    let listeners = (0..N)
        .map(|_| TcpListener::bind(("127.0.0.1", 0)))
        .collect::<std::io::Result<Vec<_>>>()
        .context("cannot find a free loopback port")?;
    let mut ports = [0; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener.local_addr()?.port();
    }
    Ok(ports)
}

/// 128 random bits from the kernel.
fn rand_u128() -> Result<u128> {
    let mut bytes = [0; 16];
    use std::io::Read as _;
    fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(u128::from_ne_bytes(bytes))
}

/// The "kubernetes cluster test" step of `cargo xtask test`: the rendered overlay against a
/// real apiserver, first checked by the server (`--dry-run=server --warnings-as-errors`,
/// Pod Security `restricted`), then deployed onto simulated nodes with the code of `cargo
/// xtask deploy` until every Deployment and StatefulSet is ready and every Job complete,
/// deployed again with its Jobs changed, and removed again with the code of
/// `cargo xtask undeploy`. Also proves that the server-side check rejects what it must, so
/// that its passing means something.
pub fn test(overlay: &str) -> Result<()> {
    let started = Instant::now();
    let manifests = super::build(overlay)?;
    // Every tool first, so that no cluster waits while one builds.
    KUBECTL.ensure()?;
    CONTROL_PLANE.ensure()?;
    KWOK.ensure()?;
    let tools_ready = started.elapsed();
    let mut cluster = Cluster::start()?;

    // Phase 1, no controllers: the namespace for real, then everything else as a dry run.
    let namespace = namespace_document(&manifests)?;
    cluster.apply_stdin(&namespace)?;
    let ns = super::NAMESPACE;
    let enforce = quiet(cluster.kubectl().args([
        "get",
        "namespace",
        ns,
        "-o",
        "jsonpath={.metadata.labels.pod-security\\.kubernetes\\.io/enforce}",
    ]))?;
    if enforce != "restricted" {
        bail!("the namespace {ns} enforces Pod Security `{enforce}`, not `restricted`");
    }
    // No controller-manager runs yet to create the namespace's default ServiceAccount,
    // which pods need.
    let output =
        cmd::output(
            cluster
                .kubectl()
                .args(["-n", ns, "create", "serviceaccount", "default"]),
        )?;
    if !output.status.success()
        && !String::from_utf8_lossy(&output.stderr).contains("AlreadyExists")
    {
        bail!(
            "cannot create the default ServiceAccount: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    dry_run(&cluster, &manifests).context("the server rejects the rendered overlay")?;
    eprintln!("The server accepts the rendered overlay (dry run, warnings as errors).");
    for (why, manifest, expected) in bad_manifests(ns) {
        match dry_run(&cluster, &manifest) {
            Ok(()) => bail!("the server-side dry run accepts {why}: it must reject it"),
            Err(error) if format!("{error:#}").contains(expected) => {
                eprintln!("The server rejects {why}, as it must (\"{expected}\").");
            }
            Err(error) => bail!(
                "the server-side dry run rejects {why}, but not for the expected reason \
                 (\"{expected}\"): {error:#}"
            ),
        }
    }

    // Phase 2: controllers, scheduler and simulated nodes; then what `deploy` runs, twice:
    // the second time with the Jobs' pod templates changed (a Job's template is immutable)
    // after they completed, as a new release changes them.
    cluster.start_nodes(3)?;
    let kubectl = Kubectl::new(Some(cluster.kubeconfig()), Some(CONTEXT))?;
    let deploying = Instant::now();
    let timeout = Duration::from_secs(300);
    // A tag of its own proves that deploy runs the images it was told to.
    let tagged = super::build_tagged(overlay, "cluster-test")?;
    super::apply(&kubectl, &tagged, timeout)?;
    let deployed = deploying.elapsed();
    let mut changed = String::new();
    for mut object in super::parse(&tagged)? {
        if object["kind"] == "Job" {
            object["spec"]["template"]["metadata"]["annotations"]["kafka-cqrs/release"] =
                serde_json::json!("2");
        }
        // As JSON, which YAML reads as it is: strings stay strings ("true", "off").
        changed.push_str(&format!("---\n{object}\n"));
    }
    super::apply(&kubectl, &changed, timeout)
        .context("a second deploy, whose Jobs changed, fails")?;
    // Read back, independently of kubectl's rollout status: every workload has all its
    // replicas ready.
    let workloads: serde_json::Value = serde_json::from_str(&quiet(cluster.kubectl().args([
        "-n",
        ns,
        "get",
        "deployments,statefulsets",
        "-o",
        "json",
    ]))?)?;
    let workloads = workloads["items"].as_array().cloned().unwrap_or_default();
    let not_ready: Vec<String> = workloads
        .iter()
        .filter(|w| {
            let wanted = w["spec"]["replicas"].as_u64().unwrap_or(1);
            w["status"]["readyReplicas"].as_u64().unwrap_or(0) < wanted
        })
        .map(|w| format!("{}/{}", w["kind"], w["metadata"]["name"]))
        .collect();
    if workloads.is_empty() || !not_ready.is_empty() {
        bail!(
            "after the deploy, not every workload is ready ({} workloads; not ready: {})",
            workloads.len(),
            not_ready.join(", ")
        );
    }
    eprintln!(
        "All {} Deployments and StatefulSets report every replica ready.",
        workloads.len()
    );
    // The pods that stay (not those of the first Jobs on their way out) run the images of
    // the deploy, the Jobs' pods included.
    let pods: serde_json::Value = serde_json::from_str(&quiet(
        cluster
            .kubectl()
            .args(["-n", ns, "get", "pods", "-o", "json"]),
    )?)?;
    let pods = pods["items"].as_array().cloned().unwrap_or_default();
    let ours: Vec<&str> = pods
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .flat_map(|p| p["spec"]["containers"].as_array().into_iter().flatten())
        .filter_map(|c| c["image"].as_str())
        .filter(|i| i.starts_with("kafka-cqrs/"))
        .collect();
    if !ours.iter().any(|i| i.starts_with("kafka-cqrs/persister:"))
        || ours.iter().any(|i| !i.ends_with(":cluster-test"))
    {
        bail!("the pods do not run the project's images tagged by the deploy: {ours:?}");
    }
    let memory = cluster.memory();

    // `cargo xtask undeploy` leaves nothing of the namespace.
    let undeploying = Instant::now();
    super::delete(&kubectl, &manifests)?;
    let left = cmd::output(cluster.kubectl().args(["get", "namespace", ns]))?;
    if left.status.success() {
        bail!("after `undeploy`, the namespace {ns} still exists");
    }
    let undeployed = undeploying.elapsed();
    let total: u64 = memory.iter().map(|(_, mib)| mib).sum();
    eprintln!(
        "Cluster test: tools ready after {:.1}s, kube-apiserver ready in {:.1}s, deploy \
         {:.1}s, undeploy {:.1}s, whole test {:.1}s; memory when deployed {total} MiB ({})",
        tools_ready.as_secs_f64(),
        cluster.apiserver_start.as_secs_f64(),
        deployed.as_secs_f64(),
        undeployed.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        memory
            .iter()
            .map(|(name, mib)| format!("{name} {mib}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// The `Namespace` document of the rendered overlay.
fn namespace_document(manifests: &str) -> Result<String> {
    manifests
        .split("\n---\n")
        .find(|doc| doc.lines().any(|line| line == "kind: Namespace"))
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("the rendered overlay has no Namespace"))
}

/// `kubectl apply --dry-run=server --warnings-as-errors` of `yaml`.
fn dry_run(cluster: &Cluster, yaml: &str) -> Result<()> {
    let mut command = cluster.kubectl();
    command.args([
        "apply",
        "--dry-run=server",
        "--warnings-as-errors",
        "-f",
        "-",
    ]);
    let output = with_stdin(&mut command, yaml)?;
    if !output.status.success() {
        bail!("{}", String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(())
}

/// Manifests the server must refuse in the namespace, why, and a part of the refusal.
fn bad_manifests(ns: &str) -> Vec<(&'static str, String, &'static str)> {
    let pod = |security: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\n  namespace: {ns}\nspec:\n  \
             securityContext:\n    runAsNonRoot: true\n    runAsUser: 10001\n    \
             seccompProfile:\n      type: RuntimeDefault\n  containers:\n  - name: bad\n    \
             image: kafka-cqrs/bad:1\n    securityContext:\n{security}"
        )
    };
    let compliant =
        "      allowPrivilegeEscalation: false\n      capabilities:\n        drop: [ALL]\n";
    let deployment = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: bad\n  namespace: {ns}\n\
         spec:\n  selector:\n    matchLabels:\n      app: bad\n  template:\n    metadata:\n      \
         labels:\n        app: bad\n    spec:\n      containers:\n      - name: bad\n        \
         image: kafka-cqrs/bad:1\n        securityContext:\n          privileged: true\n"
    );
    vec![
        (
            "a privileged pod",
            // (allowPrivilegeEscalation: false with privileged: true fails validation,
            // before Pod Security is asked)
            pod("      capabilities:\n        drop: [ALL]\n      privileged: true\n"),
            "violates PodSecurity \"restricted",
        ),
        (
            "a Deployment whose pods would be privileged",
            deployment,
            "would violate PodSecurity \"restricted",
        ),
        (
            "a pod with an unknown field",
            pod(&format!("{compliant}      runAsNonRot: true\n")),
            "unknown field",
        ),
        (
            "a port that is not a number",
            format!(
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: bad\n  namespace: {ns}\n\
                 spec:\n  ports:\n  - port: eighty\n"
            ),
            "ServicePort.spec.ports.port of type int32",
        ),
    ]
}

/// Runs `command` quietly; its trimmed stdout, or an error with its stderr.
fn quiet(command: &mut Command) -> Result<String> {
    cmd::read(command).map(|out| out.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_namespace_document_is_found_among_the_rendered_ones() {
        let rendered = "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n---\n\
                        apiVersion: v1\nkind: Namespace\nmetadata:\n  name: kafka-cqrs\n---\n\
                        apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n  \
                        annotations:\n    note: \"kind: Namespace\"\n";
        let doc = namespace_document(rendered).unwrap();
        assert_eq!(
            doc,
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: kafka-cqrs"
        );
        assert!(namespace_document("kind: Service\n").is_err());
    }

    #[test]
    fn every_bad_manifest_names_the_namespace_and_an_expected_refusal() {
        let bad = bad_manifests("some-ns");
        assert_eq!(bad.len(), 4);
        for (why, manifest, expected) in bad {
            assert!(manifest.contains("namespace: some-ns"), "{why}");
            assert!(!expected.is_empty(), "{why}");
        }
    }
}
