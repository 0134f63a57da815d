//! `cargo xtask cluster test`: proof that the cluster runs workloads as a real one does.
//! A pod of a FROM-scratch image runs in a namespace that enforces the `restricted` Pod
//! Security Standard (a privileged pod is refused there); a Service in front of it answers
//! from the host through kube-proxy's rules at its ClusterIP, and from another pod by its
//! DNS name through CoreDNS; then `down` must leave nothing behind.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::{Layout, apply, down, quiet, up};

/// The namespace of the proof, deleted at its end.
const NAMESPACE: &str = "cluster-proof";

pub fn run(layout: &Layout, keep: bool) -> Result<()> {
    let started_here = up(layout)?;
    let result = prove(layout);
    if started_here && !keep {
        // `down` fails when it finds anything of the cluster left; after a failed proof
        // too, so that a test run leaves nothing (its logs stay in target/cluster/logs).
        // It deletes every pod itself: no need to wait for the namespace to go first.
        let stopped = down(layout);
        result?;
        stopped?;
    } else {
        // The cluster stays: take the proof's objects away.
        let _ = quiet(layout.kubectl().args([
            "delete",
            "namespace",
            NAMESPACE,
            "--ignore-not-found",
            "--wait=true",
            "--timeout=60s",
        ]));
        result?;
    }
    println!("\ncluster test passed");
    Ok(())
}

fn prove(layout: &Layout) -> Result<()> {
    let started = Instant::now();
    // The probe image's tag is a hash of its program: the node lists it after `up`.
    let probe = probe_image(layout)?;
    apply(layout, &manifests(&probe))?;
    eprintln!("Waiting for the echo pod to be Ready (restricted namespace)...");
    wait_for(
        "the echo Deployment to be ready",
        Duration::from_secs(90),
        || {
            Ok(quiet(layout.kubectl().args([
                "-n",
                NAMESPACE,
                "get",
                "deployment",
                "echo",
                "-o",
                "jsonpath={.status.readyReplicas}",
            ]))
            .is_ok_and(|s| s == "1"))
        },
    )
    .with_context(|| describe(layout))?;
    eprintln!("  echo pod Ready ({:.1}s)", started.elapsed().as_secs_f64());

    // Pod Security is enforced: the same namespace refuses a privileged pod.
    let refused = apply(layout, &privileged_pod(&probe));
    match refused {
        Err(error) if format!("{error:#}").contains("violates PodSecurity \"restricted") => {
            eprintln!("  a privileged pod is refused by Pod Security (restricted)");
        }
        Err(error) => bail!("a privileged pod was refused, but not by Pod Security: {error:#}"),
        Ok(()) => bail!("namespace {NAMESPACE} accepted a privileged pod: Pod Security is off"),
    }

    // An image that was never imported is not pulled from anywhere off this machine: the
    // pull goes to the closed loopback port that stands for every registry.
    apply(layout, &unimported_pod())?;
    wait_for(
        "the pull of an unimported image to fail",
        Duration::from_secs(30),
        || {
            let events = quiet(layout.kubectl().args([
                "-n",
                NAMESPACE,
                "get",
                "events",
                "--field-selector",
                "involvedObject.name=unimported,reason=Failed",
                "-o",
                "jsonpath={.items[*].message}",
            ]))
            .unwrap_or_default();
            if events.contains("registry-1.docker.io") && !events.contains("127.0.0.1:9") {
                bail!("the cluster tried to pull from Docker Hub: {events}");
            }
            Ok(events.contains("127.0.0.1:9"))
        },
    )?;
    eprintln!("  an unimported image fails to pull at 127.0.0.1:9 (no registry is reached)");

    // From the host: the ClusterIP exists only in kube-proxy's rules.
    let ip = quiet(layout.kubectl().args([
        "-n",
        NAMESPACE,
        "get",
        "service",
        "echo",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]))?;
    // kube-proxy writes a Service's rules a moment after its endpoint is ready; until then
    // its rules refuse the connection.
    let address = format!("{ip}:80").parse()?;
    let mut body = String::new();
    wait_for(
        "kube-proxy to route the Service",
        Duration::from_secs(15),
        || match http_get(&address) {
            Ok(answer) => {
                body = answer;
                Ok(true)
            }
            Err(_) => Ok(false),
        },
    )?;
    if !body.starts_with("probe echo-") {
        bail!("the Service echo at {ip}:80 answered {body:?}, not the echo pod");
    }
    eprintln!(
        "  host -> Service {ip}:80 (kube-proxy) answered: {}",
        body.trim()
    );

    // From a pod: the Service's DNS name through CoreDNS, then HTTP through kube-proxy.
    let name = format!("echo.{NAMESPACE}.svc.cluster.local");
    apply(layout, &client_pod(&probe, &name))?;
    wait_for("the client pod to finish", Duration::from_secs(60), || {
        let phase = quiet(layout.kubectl().args([
            "-n",
            NAMESPACE,
            "get",
            "pod",
            "client",
            "-o",
            "jsonpath={.status.phase}",
        ]))
        .unwrap_or_default();
        if phase == "Failed" {
            bail!(
                "the client pod failed: {}",
                quiet(layout.kubectl().args([
                    "-n",
                    NAMESPACE,
                    "logs",
                    "client",
                    "--all-containers"
                ]))
                .unwrap_or_default()
            );
        }
        Ok(phase == "Succeeded")
    })
    .with_context(|| describe(layout))?;
    let logs =
        quiet(
            layout
                .kubectl()
                .args(["-n", NAMESPACE, "logs", "client", "--all-containers"]),
        )?;
    if !logs.contains(&format!("{name} [{ip}]")) || !logs.contains("probe echo-") {
        bail!("the client pod did not resolve {name} to {ip} and reach the echo pod:\n{logs}");
    }
    for line in logs.lines() {
        eprintln!("  pod -> {line}");
    }
    eprintln!(
        "The cluster runs restricted pods, Services and DNS ({:.1}s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The probe image as containerd lists it.
fn probe_image(layout: &Layout) -> Result<String> {
    let listed = super::build::listed_images(layout)?;
    listed
        .lines()
        .find(|l| l.contains("kafka-cqrs/cluster-probe:"))
        .map(str::to_owned)
        .with_context(|| format!("the node lists no kafka-cqrs/cluster-probe image:\n{listed}"))
}

fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> Result<bool>) -> Result<()> {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if ready()? {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    bail!("timed out after {}s waiting for {what}", timeout.as_secs())
}

/// What the namespace holds, for a failure message.
fn describe(layout: &Layout) -> String {
    let pods = quiet(layout.kubectl().args(["-n", NAMESPACE, "describe", "pods"]))
        .unwrap_or_else(|e| format!("{e:#}"));
    format!("pods of {NAMESPACE}:\n{pods}")
}

/// One HTTP/1.0 GET of `/`; the body.
fn http_get(address: &SocketAddr) -> Result<String> {
    let mut stream = TcpStream::connect_timeout(address, Duration::from_secs(5))
        .with_context(|| format!("cannot connect to {address}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET / HTTP/1.0\r\nHost: echo\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .with_context(|| format!("{address} answered no HTTP: {response:?}"))?;
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        bail!("{address} answered {head}");
    }
    Ok(body.to_owned())
}

/// The container security context the `restricted` standard asks for.
const RESTRICTED: &str = "        securityContext:
          runAsNonRoot: true
          runAsUser: 65532
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities: {drop: [ALL]}
          seccompProfile: {type: RuntimeDefault}
        resources:
          requests: {cpu: 10m, memory: 16Mi}
          limits: {memory: 64Mi}
";

fn manifests(image: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata:
  name: {NAMESPACE}
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/warn: restricted
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: echo
  namespace: {NAMESPACE}
spec:
  replicas: 1
  selector:
    matchLabels: {{app: echo}}
  template:
    metadata:
      labels: {{app: echo}}
    spec:
      automountServiceAccountToken: false
      containers:
      - name: echo
        image: {image}
        imagePullPolicy: Never
        args: [serve, ":8080"]
        ports: [{{containerPort: 8080}}]
        readinessProbe:
          httpGet: {{path: /, port: 8080}}
          periodSeconds: 1
{RESTRICTED}---
apiVersion: v1
kind: Service
metadata:
  name: echo
  namespace: {NAMESPACE}
spec:
  selector: {{app: echo}}
  ports:
  - {{port: 80, targetPort: 8080}}
"#
    )
}

fn client_pod(image: &str, name: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: client
  namespace: {NAMESPACE}
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  containers:
  - name: client
    image: {image}
    imagePullPolicy: Never
    command: [/program, lookup, "{name}"]
{restricted}  - name: get
    image: {image}
    imagePullPolicy: Never
    command: [/program, get, "http://{name}/"]
{restricted}"#,
        restricted = RESTRICTED.replace("        ", "    ")
    )
}

fn unimported_pod() -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: unimported
  namespace: {NAMESPACE}
spec:
  automountServiceAccountToken: false
  containers:
  - name: unimported
    image: kafka-cqrs/never-imported:1
    imagePullPolicy: IfNotPresent
{restricted}"#,
        restricted = RESTRICTED.replace("        ", "    ")
    )
}

fn privileged_pod(image: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: privileged
  namespace: {NAMESPACE}
spec:
  containers:
  - name: privileged
    image: {image}
    imagePullPolicy: Never
    args: [serve, ":8080"]
    securityContext:
      privileged: true
"#
    )
}
