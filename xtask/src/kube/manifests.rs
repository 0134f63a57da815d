//! The Kubernetes files that follow the table of services in `libs/platform`, written by
//! `cargo xtask codegen` (its list of generated files, header and staleness test) under
//! `deployment/kubernetes/base/generated/`: the Deployments, Services and
//! PodDisruptionBudgets of the services and the GUI's server, the Ingress routes of the
//! gateway, and Prometheus's scrape jobs. Nothing here types a port, a route or a name that
//! the table already has. Everything else under `deployment/kubernetes` (the third-party
//! servers, the Jobs, the ConfigMaps made from files) is kustomize written by hand.

use std::fmt::Write as _;
use std::path::PathBuf;

use platform::{Role, Service, gateway, kafka, observability};
use serde_json::{Value, json};

use crate::paths;

/// The in-cluster Service names of the third-party servers (hand-written YAML in `base/`).
pub const KAFKA: &str = "kafka";
pub const CASSANDRA: &str = "cassandra";
pub const JAEGER: &str = "jaeger";

/// The label of every workload whose image is built here (`key=value`, as a kustomize
/// `labelSelector`): the minikube overlay never pulls those images.
pub const BUILT_HERE: (&str, &str) = ("kafka-cqrs/image", "built-here");

/// The tag the base gives the project's images: the workspace's version. `cargo xtask
/// deploy` runs the tag of the images it built (`<version>-<git revision>`, see
/// `kube::build_tagged`).
pub const BASE_TAG: &str = env!("CARGO_PKG_VERSION");

/// The numeric user of the project's `FROM scratch` images (no /etc/passwd in them).
const APP_USER: u32 = 65532;

/// Replicas of each stateless service: two, so that a PodDisruptionBudget of one lets a
/// node drain without an outage.
const REPLICAS: u32 = 2;

/// Seconds a pod has between SIGTERM and SIGKILL. The persister finishes the record in
/// hand (a Cassandra write of at most `CASSANDRA_REQUEST_TIMEOUT_MS`, 3 s, or a dead-letter
/// send of at most 10 s) and then commits its offsets; 30 s leaves room for both after the
/// pre-stop pause.
const TERMINATION_GRACE_SECONDS: u32 = 30;

/// Seconds a terminating pod keeps serving before it gets SIGTERM, so that the ingress and
/// the Service endpoints stop sending it requests first.
const PRE_STOP_SLEEP_SECONDS: u32 = 5;

/// The generated files of the Kubernetes tree, each with `header` (codegen's), for `cargo
/// xtask codegen`.
pub fn generated(header: &str) -> Vec<(PathBuf, String)> {
    let dir = paths::root().join("deployment/kubernetes/base/generated");
    vec![
        (dir.join("services.yaml"), render(header, &services())),
        (dir.join("ingress.yaml"), render(header, &ingresses())),
        (dir.join("prometheus.yml"), prometheus_yml(header)),
    ]
}

/// YAML documents after the header.
fn render(header: &str, objects: &[Value]) -> String {
    let mut text = format!("# {header}\n");
    for object in objects {
        text.push_str("---\n");
        let yaml = serde_yaml::to_string(object).expect("a JSON value is YAML");
        for line in yaml.lines() {
            text.push_str(&quote_yaml11_booleans(line));
            text.push('\n');
        }
    }
    text
}

/// Words that YAML 1.2 (serde_yaml) writes bare as strings but YAML 1.1 reads as booleans,
/// as kubectl and kubeconform do: `proxy-buffering: off` would become `false`.
const YAML11_BOOLEANS: [&str; 16] = [
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off",
    "OFF",
];

/// One line of YAML with a bare YAML 1.1 boolean word as its scalar value quoted.
fn quote_yaml11_booleans(line: &str) -> String {
    let (head, value) = match line.rsplit_once(": ") {
        Some((head, value)) => (format!("{head}: "), value),
        None => match line.trim_start().strip_prefix("- ") {
            Some(value) => (line[..line.len() - value.len()].to_owned(), value),
            None => return line.to_owned(),
        },
    };
    if YAML11_BOOLEANS.contains(&value) {
        format!("{head}'{value}'")
    } else {
        line.to_owned()
    }
}

/// The recommended labels of one part of the platform.
fn labels(name: &str, component: &str) -> Value {
    json!({
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": component,
    })
}

/// What selects the pods of one part: its name alone, which never changes between releases.
fn selector(name: &str) -> Value {
    json!({ "app.kubernetes.io/name": name })
}

fn role_component(role: Role) -> &'static str {
    match role {
        Role::Command => "command",
        Role::Projection => "projection",
        Role::Query => "query",
        Role::Push => "push",
    }
}

/// `host:port` of an in-cluster Service.
fn address(service: &str, port: u16) -> String {
    format!("{service}:{port}")
}

/// The image of one of the project's programs, with the base's tag.
fn image(name: &str) -> String {
    format!("kafka-cqrs/{name}:{BASE_TAG}")
}

/// The names of the project's images, untagged: the four services and the GUI's server.
pub fn project_images() -> Vec<String> {
    platform::SERVICES
        .iter()
        .map(|s| s.name)
        .chain([gateway::GUI_NAME])
        .map(|name| format!("kafka-cqrs/{name}"))
        .collect()
}

/// Where a program listens: every interface of its pod (the programs default to loopback;
/// the images set the same, and the manifests say it where a reader looks), on `port`.
fn http_env(port: u16) -> Vec<(String, String)> {
    vec![
        ("HTTP_HOST".to_owned(), "0.0.0.0".to_owned()),
        ("HTTP_PORT".to_owned(), port.to_string()),
    ]
}

/// The environment of a service: where its servers are (by its role in the CQRS split; a
/// test checks this against the variables its configuration reads), its port and its
/// telemetry.
fn service_env(service: &Service) -> Vec<(String, String)> {
    let mut env = http_env(service.port);
    if matches!(service.role, Role::Command | Role::Projection | Role::Push) {
        env.push((
            "KAFKA_BOOTSTRAP_SERVERS".to_owned(),
            address(KAFKA, kafka::PORT),
        ));
    }
    if matches!(service.role, Role::Projection | Role::Query) {
        env.push((
            "CASSANDRA_CONTACT_POINTS".to_owned(),
            address(CASSANDRA, platform::cassandra::PORT),
        ));
    }
    let otlp = format!("http://{}", address(JAEGER, observability::OTLP_HTTP_PORT));
    for (name, value) in [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_SERVICE_NAME", service.name),
        ("RUST_LOG", "info"),
    ] {
        env.push((name.to_owned(), value.to_owned()));
    }
    env
}

/// A Deployment, Service and PodDisruptionBudget of one HTTP program of the project.
struct App<'a> {
    name: &'a str,
    component: &'a str,
    port: u16,
    liveness: &'a str,
    readiness: &'a str,
    env: Vec<(String, String)>,
    resources: Value,
}

fn app_objects(app: &App<'_>) -> Vec<Value> {
    let env: Vec<Value> = app
        .env
        .iter()
        .map(|(name, value)| json!({ "name": name, "value": value }))
        .collect();
    let probe = |path: &str, period: u32, failures: u32| {
        json!({
            "httpGet": { "path": path, "port": "http" },
            "periodSeconds": period,
            "timeoutSeconds": 2,
            "failureThreshold": failures,
        })
    };
    let mut workload_labels = labels(app.name, app.component);
    workload_labels[BUILT_HERE.0] = json!(BUILT_HERE.1);
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": app.name, "labels": workload_labels },
        "spec": {
            "replicas": REPLICAS,
            "revisionHistoryLimit": 3,
            "selector": { "matchLabels": selector(app.name) },
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": { "maxUnavailable": 0, "maxSurge": 1 },
            },
            "template": {
                "metadata": { "labels": labels(app.name, app.component) },
                "spec": {
                    "automountServiceAccountToken": false,
                    "enableServiceLinks": false,
                    // The restricted Pod Security profile.
                    "securityContext": {
                        "runAsNonRoot": true,
                        "runAsUser": APP_USER,
                        "runAsGroup": APP_USER,
                        "fsGroup": APP_USER,
                        "seccompProfile": { "type": "RuntimeDefault" },
                    },
                    "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
                    "containers": [{
                        "name": app.name,
                        "image": image(app.name),
                        "imagePullPolicy": "IfNotPresent",
                        "ports": [{ "name": "http", "containerPort": app.port, "protocol": "TCP" }],
                        "env": env,
                        "startupProbe": probe(app.liveness, 2, 30),
                        "livenessProbe": probe(app.liveness, 10, 3),
                        "readinessProbe": probe(app.readiness, 5, 2),
                        "lifecycle": { "preStop": { "sleep": { "seconds": PRE_STOP_SLEEP_SECONDS } } },
                        "resources": app.resources,
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true,
                            "capabilities": { "drop": ["ALL"] },
                        },
                    }],
                },
            },
        },
    });
    let service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "name": app.name, "labels": labels(app.name, app.component) },
        "spec": {
            "type": "ClusterIP",
            "selector": selector(app.name),
            "ports": [{ "name": "http", "port": app.port, "targetPort": "http", "protocol": "TCP" }],
        },
    });
    let budget = json!({
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": { "name": app.name, "labels": labels(app.name, app.component) },
        "spec": {
            "maxUnavailable": 1,
            "selector": { "matchLabels": selector(app.name) },
        },
    });
    vec![deployment, service, budget]
}

/// The four services and the GUI's static server.
fn services() -> Vec<Value> {
    let mut objects = Vec::new();
    for service in platform::SERVICES {
        objects.extend(app_objects(&App {
            name: service.name,
            component: role_component(service.role),
            port: service.port,
            liveness: service.liveness_path,
            readiness: service.readiness_path,
            env: service_env(service),
            resources: json!({
                "requests": { "cpu": "50m", "memory": "64Mi" },
                "limits": { "cpu": "1", "memory": "256Mi" },
            }),
        }));
    }
    objects.extend(app_objects(&App {
        name: gateway::GUI_NAME,
        component: "gui",
        port: gateway::GUI_PORT,
        liveness: "/healthz",
        readiness: "/readyz",
        env: http_env(gateway::GUI_PORT),
        resources: json!({
            "requests": { "cpu": "10m", "memory": "16Mi" },
            "limits": { "cpu": "200m", "memory": "64Mi" },
        }),
    }));
    objects
}

/// What follows the prefix in a stripped route's path: the separator, a look-ahead that
/// leaves the services' metrics and readiness paths unrouted (Prometheus and the probes
/// reach the Pods directly; the local gateway refuses them the same way), and the rest,
/// the second group, which is what the service sees (`rewrite-target: /$2`), as behind the
/// local gateway's `proxy_pass .../`.
pub fn stripped_suffix() -> String {
    format!(
        "(/|$)(?!(?:{})/?$)(.*)",
        platform::internal_paths().join("|")
    )
}

/// The path regex of the trace look-ups: the prefix, then the look-up as the capture group
/// that reaches Jaeger (`rewrite-target: /$1`).
pub fn traces_path() -> String {
    format!(
        "{}/({})$",
        gateway::TRACES_PREFIX,
        gateway::TRACES_LOOKUP.trim_start_matches('/')
    )
}

/// One Ingress of ingress-nginx with one path to `service`:`port`.
fn ingress(
    name: &str,
    component: &str,
    annotations: Value,
    path: &str,
    service: &str,
    port: u16,
) -> Value {
    let kind = if annotations["nginx.ingress.kubernetes.io/use-regex"] == "true" {
        "ImplementationSpecific"
    } else {
        "Prefix"
    };
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": { "name": name, "labels": labels(name, component), "annotations": annotations },
        "spec": {
            "ingressClassName": "nginx",
            "rules": [{ "http": { "paths": [{
                "path": path,
                "pathType": kind,
                "backend": { "service": { "name": service, "port": { "number": port } } },
            }]}}],
        },
    })
}

/// One Ingress per route, since ingress-nginx annotations apply to a whole Ingress and the
/// routes differ: the services' prefixes are stripped, the notifier's stream is unbuffered
/// with long timeouts, the GUI's server serves its files under the prefix itself, and only
/// Jaeger's read-only trace look-ups are routed (the rest of the prefix gets the ingress's
/// 404; ingress-nginx has no method filter without snippet annotations, off by default, and
/// Jaeger serves that path for GET only).
fn ingresses() -> Vec<Value> {
    const NGINX: &str = "nginx.ingress.kubernetes.io";
    let mut objects = Vec::new();
    for service in platform::SERVICES {
        let Some(route) = service.route else { continue };
        let mut annotations = json!({
            format!("{NGINX}/use-regex"): "true",
            format!("{NGINX}/rewrite-target"): "/$2",
            format!("{NGINX}/x-forwarded-prefix"): route.prefix,
            // Commands are at most 64 KiB; a slightly larger body still reaches the
            // producer so that its 413 is the answer, as behind the local gateway.
            format!("{NGINX}/proxy-body-size"): format!("{}k", gateway::MAX_BODY_KIB),
        });
        if route.streaming {
            // As the local gateway's limit_conn: one address cannot hold every connection.
            // Server-Sent Events: every event goes out as it comes, and a stream may stay
            // open for hours (the notifier sends keep-alive comments in between).
            for (key, value) in [
                ("limit-connections", gateway::STREAMS_PER_CLIENT.to_string()),
                ("proxy-buffering", "off".to_owned()),
                ("proxy-request-buffering", "off".to_owned()),
                ("proxy-read-timeout", "86400".to_owned()),
                ("proxy-send-timeout", "86400".to_owned()),
            ] {
                annotations[format!("{NGINX}/{key}")] = json!(value);
            }
        }
        let path = format!("{}{}", route.prefix, stripped_suffix());
        let component = role_component(service.role);
        objects.push(ingress(
            service.name,
            component,
            annotations,
            &path,
            service.name,
            service.port,
        ));
    }
    let traces = json!({
        format!("{NGINX}/use-regex"): "true",
        format!("{NGINX}/rewrite-target"): "/$1",
        format!("{NGINX}/x-forwarded-prefix"): gateway::TRACES_PREFIX,
    });
    let query = observability::JAEGER_QUERY_PORT;
    objects.push(ingress(
        "traces",
        "tracing",
        traces,
        &traces_path(),
        JAEGER,
        query,
    ));
    // `/` leads to the GUI, as the local gateway's `location = /` does.
    let gui = json!({ format!("{NGINX}/app-root"): format!("{}/", gateway::GUI_PREFIX) });
    let (name, port) = (gateway::GUI_NAME, gateway::GUI_PORT);
    objects.push(ingress(name, "gui", gui, gateway::GUI_PREFIX, name, port));
    objects
}

/// Prometheus in the cluster: one job per service, as locally (the dashboard's queries
/// name jobs by service), whose targets are the service's running pods found through the
/// API server, so that every replica is scraped on its container port `http`.
fn prometheus_yml(header: &str) -> String {
    let mut jobs = String::new();
    for service in platform::SERVICES {
        let name = service.name;
        let _ = write!(
            jobs,
            "  - job_name: {name}\n    metrics_path: {path}\n    kubernetes_sd_configs:\n      \
             - role: pod\n        namespaces:\n          own_namespace: true\n        selectors:\n          \
             - role: pod\n            label: app.kubernetes.io/name={name}\n    relabel_configs:\n      \
             - source_labels: [__meta_kubernetes_pod_container_port_name]\n        regex: http\n        action: keep\n      \
             - source_labels: [__meta_kubernetes_pod_phase]\n        regex: Running\n        action: keep\n      \
             - source_labels: [__meta_kubernetes_pod_name]\n        target_label: pod\n",
            path = service.metrics_path,
        );
    }
    format!(
        "# Prometheus in the kafka-cqrs namespace (base/prometheus.yaml): one job per service,\n\
         # whose targets are the service's running pods; the rules of observability/prometheus.\n\
         # {header}\n\
         global:\n  scrape_interval: 5s\n  evaluation_interval: 5s\n\n\
         rule_files:\n  - /etc/prometheus/rules/*.yml\n\n\
         scrape_configs:\n{jobs}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml11_booleans_are_quoted() {
        assert_eq!(quote_yaml11_booleans("  a: off"), "  a: 'off'");
        assert_eq!(quote_yaml11_booleans("- on"), "- 'on'");
        assert_eq!(quote_yaml11_booleans("  a: offline"), "  a: offline");
        assert_eq!(quote_yaml11_booleans("  path: /x"), "  path: /x");
    }
}
