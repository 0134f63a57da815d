//! The Kubernetes static checks of `cargo xtask test`, which need no cluster: every overlay
//! renders with the pinned kustomize, validates strictly against the schemas of the pinned
//! Kubernetes version (kubeconform), passes checkov with every skipped check explained in
//! `deployment/kubernetes/.checkov.yaml`, and passes the cross-checks below, which read the
//! rendered objects the way the API server and the kubelet will: Services select pods and
//! ports that exist, pods name ConfigMaps, Secrets and keys that exist, addresses in the
//! environment lead to Services, the Ingress routes are the local gateway's, every pod meets
//! the `restricted` Pod Security Standard, and third-party images run the versions the
//! repository pins.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::Value;

use super::manifests;
use crate::{cmd, paths, tools};

/// The Kubernetes version whose schemas the manifests are checked against.
pub const KUBERNETES_VERSION: &str = "1.37.0";

/// The JSON schemas of Kubernetes, shipped in a PyPI package (kubeconform's own default
/// location is a web site, which CI cannot reach).
const SCHEMAS: tools::PyTool = tools::PyTool {
    program: "kubernetes-validate",
    requirement: "kubernetes-validate==1.37.0",
};

/// checkov, shared with the Terraform checks.
const CHECKOV: tools::PyTool = tools::PyTool {
    program: "checkov",
    requirement: "checkov==3.3.30",
};

/// Renders every overlay and runs every check on it; the step of `cargo xtask test`.
pub fn run() -> Result<()> {
    let kubeconform = super::KUBECONFORM.ensure()?;
    let schemas = schemas()?;
    let checkov = CHECKOV.ensure()?;
    let overlays = super::overlays()?;
    if overlays.is_empty() {
        bail!("no overlay under deployment/kubernetes/overlays");
    }
    let out = paths::target_dir().join("kube");
    fs::create_dir_all(&out)?;
    for overlay in overlays {
        let started = Instant::now();
        let rendered = super::build(&overlay)?;
        let file = out.join(format!("{overlay}.yaml"));
        fs::write(&file, &rendered)?;
        let objects = parse(&rendered)?;
        eprintln!(
            "{overlay}: {} objects rendered into {} ({:.1}s)",
            objects.len(),
            paths::display(&file),
            started.elapsed().as_secs_f64()
        );
        kubeconform_check(&kubeconform, &schemas, &file)?;
        checkov_check(&checkov, &file)?;
        let problems = cross_check(&objects)?;
        if !problems.is_empty() {
            bail!(
                "the overlay {overlay} fails {} cross-check(s):\n  {}",
                problems.len(),
                problems.join("\n  ")
            );
        }
        eprintln!("{overlay}: cross-checks passed");
    }
    Ok(())
}

/// The rendered objects, one JSON value per YAML document.
pub fn parse(text: &str) -> Result<Vec<Value>> {
    let mut objects = Vec::new();
    for document in serde_yaml::Deserializer::from_str(text) {
        let value = Value::deserialize(document).context("the rendered YAML does not parse")?;
        if !value.is_null() {
            objects.push(value);
        }
    }
    Ok(objects)
}

/// The schemas of [`KUBERNETES_VERSION`] in the layout kubeconform reads, under
/// `target/tools/kubernetes-schemas/`. The package's files refer to their shared
/// definitions by an absolute `/api/_definitions.json`; each is rewritten to the file next
/// to it (as a `file://` URL: kubeconform resolves no relative reference from a local
/// path), once per pinned version.
fn schemas() -> Result<PathBuf> {
    let dir = tools::dir()
        .join("kubernetes-schemas")
        .join(KUBERNETES_VERSION);
    let stamp = dir.join(".stamp");
    if fs::read_to_string(&stamp).is_ok_and(|s| s == SCHEMAS.requirement) {
        return Ok(dir);
    }
    let program = SCHEMAS.ensure()?;
    let venv = program
        .parent()
        .and_then(Path::parent)
        .context("the tools' virtual environment")?;
    let source = find_schema_dir(venv)?;
    eprintln!(
        "Rewriting the Kubernetes {KUBERNETES_VERSION} schemas of {} into {}...",
        paths::display(&source),
        paths::display(&dir)
    );
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::create_dir_all(&dir)?;
    let definitions = format!("\"file://{}/_definitions.json#", dir.display());
    for entry in fs::read_dir(&source)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = fs::read_to_string(&path)?;
            let fixed = text.replace("\"/api/_definitions.json#", &definitions);
            fs::write(dir.join(path.file_name().expect("a file name")), fixed)?;
        }
    }
    fs::write(&stamp, SCHEMAS.requirement)?;
    Ok(dir)
}

fn find_schema_dir(venv: &Path) -> Result<PathBuf> {
    let wanted = format!("v{KUBERNETES_VERSION}-local-strict");
    for lib in fs::read_dir(venv.join("lib"))? {
        let candidate = lib?
            .path()
            .join("site-packages/kubernetes_validate/kubernetes-json-schema")
            .join(&wanted);
        if candidate.is_dir() {
            return Ok(candidate);
        }
    }
    bail!(
        "{} has no {wanted} schemas: is {} the version that ships Kubernetes {KUBERNETES_VERSION}?",
        paths::display(venv),
        SCHEMAS.requirement
    )
}

/// kubeconform, strict: unknown fields, duplicate keys, and kinds without a schema fail.
fn kubeconform_check(kubeconform: &Path, schemas: &Path, file: &Path) -> Result<()> {
    cmd::run(
        Command::new(kubeconform)
            .args([
                "-strict",
                "-summary",
                "-kubernetes-version",
                KUBERNETES_VERSION,
            ])
            .arg("-schema-location")
            .arg(format!(
                "{}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json",
                schemas.display()
            ))
            .arg(file),
    )
    .context("kubeconform rejects the rendered manifests")
}

/// checkov on the rendered manifests; the checks it skips, and why, are in
/// `deployment/kubernetes/.checkov.yaml`.
fn checkov_check(checkov: &Path, file: &Path) -> Result<()> {
    let config = super::dir().join(".checkov.yaml");
    cmd::run(
        Command::new(checkov)
            .arg("--config-file")
            .arg(&config)
            .arg("--file")
            .arg(file)
            .args([
                "--framework",
                "kubernetes",
                "--skip-download",
                "--compact",
                "--quiet",
            ]),
    )
    .context("checkov finds failed checks: fix them, or skip them with a reason in deployment/kubernetes/.checkov.yaml")
}

/// The objects of one kind.
fn of_kind<'a>(objects: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    objects.iter().filter(move |o| o["kind"] == kind)
}

fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or("?")
}

fn id(object: &Value) -> String {
    format!(
        "{}/{}",
        object["kind"].as_str().unwrap_or("?"),
        name(object)
    )
}

/// The pod template of a workload, with the workload's id.
fn pod_templates(objects: &[Value]) -> Vec<(String, &Value)> {
    objects
        .iter()
        .filter_map(|o| match o["kind"].as_str()? {
            "Deployment" | "StatefulSet" | "DaemonSet" | "Job" => {
                Some((id(o), &o["spec"]["template"]))
            }
            "CronJob" => Some((id(o), &o["spec"]["jobTemplate"]["spec"]["template"])),
            _ => None,
        })
        .collect()
}

fn containers(pod_spec: &Value) -> impl Iterator<Item = &Value> {
    ["initContainers", "containers"]
        .into_iter()
        .flat_map(move |key| pod_spec[key].as_array().into_iter().flatten())
}

fn string_map(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// `true` when `labels` has every pair of `selector`.
fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Every cross-check; the problems found, empty when there are none.
pub fn cross_check(objects: &[Value]) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    problems.extend(check_namespace(objects));
    problems.extend(check_services(objects));
    problems.extend(check_config_references(objects));
    problems.extend(check_addresses(objects));
    problems.extend(check_platform_services(objects));
    problems.extend(check_routes(objects));
    problems.extend(check_pod_security(objects));
    problems.extend(check_images(objects)?);
    problems.extend(check_grafana(objects)?);
    Ok(problems)
}

/// The namespace is there, enforces `restricted`, and holds every namespaced object.
fn check_namespace(objects: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    match of_kind(objects, "Namespace").find(|n| name(n) == super::NAMESPACE) {
        None => problems.push(format!("no Namespace {}", super::NAMESPACE)),
        Some(namespace) => {
            let labels = string_map(&namespace["metadata"]["labels"]);
            if labels
                .get("pod-security.kubernetes.io/enforce")
                .map(String::as_str)
                != Some("restricted")
            {
                problems.push(format!(
                    "Namespace {} does not enforce the restricted Pod Security Standard",
                    super::NAMESPACE
                ));
            }
        }
    }
    for object in objects {
        if object["kind"] != "Namespace"
            && object["metadata"]["namespace"].as_str() != Some(super::NAMESPACE)
        {
            problems.push(format!(
                "{} is not in namespace {}",
                id(object),
                super::NAMESPACE
            ));
        }
    }
    problems
}

/// Every Service selects some pod template, and each of its target ports is a port of
/// every pod it selects.
fn check_services(objects: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    let templates = pod_templates(objects);
    for service in of_kind(objects, "Service") {
        let selector = string_map(&service["spec"]["selector"]);
        let selected: Vec<&(String, &Value)> = templates
            .iter()
            .filter(|(_, t)| selects(&selector, &string_map(&t["metadata"]["labels"])))
            .collect();
        if selected.is_empty() {
            problems.push(format!(
                "{} selects no pod template ({selector:?})",
                id(service)
            ));
            continue;
        }
        for port in service["spec"]["ports"].as_array().into_iter().flatten() {
            let target = if port["targetPort"].is_null() {
                &port["port"]
            } else {
                &port["targetPort"]
            };
            for (workload, template) in &selected {
                let found = containers(&template["spec"]).any(|c| {
                    c["ports"].as_array().into_iter().flatten().any(|p| {
                        (target.is_string() && p["name"] == *target)
                            || (target.is_number() && p["containerPort"] == *target)
                    })
                });
                if !found {
                    problems.push(format!(
                        "{} targets port {target} that {workload} does not declare",
                        id(service)
                    ));
                }
            }
        }
    }
    problems
}

/// Every ConfigMap and Secret a pod names (volumes, projected volumes, envFrom, env value
/// references) exists, and so does every key it names (items, subPath, key references).
fn check_config_references(objects: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    let data_keys = |kind: &str, name: &str| -> Option<BTreeSet<String>> {
        of_kind(objects, kind)
            .find(|o| self::name(o) == name)
            .map(|o| {
                ["data", "binaryData", "stringData"]
                    .iter()
                    .flat_map(|field| o[*field].as_object().into_iter().flatten())
                    .map(|(k, _)| k.clone())
                    .collect()
            })
    };
    for (workload, template) in pod_templates(objects) {
        let spec = &template["spec"];
        // (kind, name, key) triples the pod needs; `None` for the whole object.
        let mut needs: Vec<(&str, String, Option<String>, bool)> = Vec::new();
        let mut volume_sources: BTreeMap<String, (&str, String)> = BTreeMap::new();
        for volume in spec["volumes"].as_array().into_iter().flatten() {
            let volume_name = volume["name"].as_str().unwrap_or_default().to_owned();
            let mut sources = vec![volume.clone()];
            sources.extend(
                volume["projected"]["sources"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .cloned(),
            );
            for source in sources {
                for (field, kind, name_field) in [
                    ("configMap", "ConfigMap", "name"),
                    ("secret", "Secret", "secretName"),
                ] {
                    let reference = &source[field];
                    let Some(object) = reference[name_field]
                        .as_str()
                        .or_else(|| reference["name"].as_str())
                    else {
                        continue;
                    };
                    let optional = reference["optional"] == true;
                    needs.push((kind, object.to_owned(), None, optional));
                    for item in reference["items"].as_array().into_iter().flatten() {
                        if let Some(key) = item["key"].as_str() {
                            needs.push((kind, object.to_owned(), Some(key.to_owned()), optional));
                        }
                    }
                    volume_sources.insert(volume_name.clone(), (kind, object.to_owned()));
                }
            }
        }
        for container in containers(spec) {
            for from in container["envFrom"].as_array().into_iter().flatten() {
                for (field, kind) in [("configMapRef", "ConfigMap"), ("secretRef", "Secret")] {
                    if let Some(object) = from[field]["name"].as_str() {
                        needs.push((
                            kind,
                            object.to_owned(),
                            None,
                            from[field]["optional"] == true,
                        ));
                    }
                }
            }
            for env in container["env"].as_array().into_iter().flatten() {
                for (field, kind) in [("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")]
                {
                    let reference = &env["valueFrom"][field];
                    if let (Some(object), Some(key)) =
                        (reference["name"].as_str(), reference["key"].as_str())
                    {
                        needs.push((
                            kind,
                            object.to_owned(),
                            Some(key.to_owned()),
                            reference["optional"] == true,
                        ));
                    }
                }
            }
            for mount in container["volumeMounts"].as_array().into_iter().flatten() {
                let volume = mount["name"].as_str().unwrap_or_default();
                if let (Some(sub_path), Some((kind, object))) =
                    (mount["subPath"].as_str(), volume_sources.get(volume))
                {
                    needs.push((kind, object.clone(), Some(sub_path.to_owned()), false));
                }
                // A StatefulSet's claim templates declare volumes too.
                let claims = objects
                    .iter()
                    .filter(|o| o["kind"] == "StatefulSet" && id(o) == workload)
                    .flat_map(|o| {
                        o["spec"]["volumeClaimTemplates"]
                            .as_array()
                            .into_iter()
                            .flatten()
                    });
                let declared = spec["volumes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .chain(claims)
                    .any(|v| v["name"] == volume || v["metadata"]["name"] == volume);
                if !declared {
                    problems.push(format!(
                        "{workload}: container {} mounts the undeclared volume {volume}",
                        container["name"]
                    ));
                }
            }
        }
        for (kind, object, key, optional) in needs {
            if optional {
                continue;
            }
            match (data_keys(kind, &object), key) {
                (None, _) => problems.push(format!(
                    "{workload} needs {kind} {object}, which is not rendered"
                )),
                (Some(keys), Some(key)) if !keys.contains(&key) => problems.push(format!(
                    "{workload} needs key {key} of {kind} {object}, which has only {keys:?}"
                )),
                _ => {}
            }
        }
    }
    problems
}

/// The Services of the rendered objects, by name, with their ports.
fn service_ports(objects: &[Value]) -> BTreeMap<String, BTreeSet<u64>> {
    of_kind(objects, "Service")
        .map(|s| {
            let ports = s["spec"]["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["port"].as_u64())
                .collect();
            (name(s).to_owned(), ports)
        })
        .collect()
}

/// Every `host:port` (or URL) in a container's environment that names an in-cluster host
/// leads to a Service with that port: a Kafka, Cassandra or Jaeger address that would not
/// resolve or connect is caught here, not at three in the morning.
fn check_addresses(objects: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    let services = service_ports(objects);
    for (workload, template) in pod_templates(objects) {
        for container in containers(&template["spec"]) {
            for env in container["env"].as_array().into_iter().flatten() {
                let Some(value) = env["value"].as_str() else {
                    continue;
                };
                for address in value.split(',') {
                    let address = address
                        .trim()
                        .trim_start_matches("http://")
                        .trim_start_matches("https://");
                    let address = address.split('/').next().unwrap_or_default();
                    let Some((host, port)) = address.rsplit_once(':') else {
                        continue;
                    };
                    let Ok(port) = port.parse::<u64>() else {
                        continue;
                    };
                    // Only names: a numeric or external address is not the cluster's.
                    let host = host
                        .trim_end_matches(".svc.cluster.local")
                        .trim_end_matches(&format!(".{}", super::NAMESPACE));
                    if host.is_empty() || host.contains('.') || host == "localhost" {
                        continue;
                    }
                    match services.get(host) {
                        None => problems.push(format!(
                            "{workload}: {}={value} names the host {host}, which is no Service",
                            env["name"].as_str().unwrap_or("?")
                        )),
                        Some(ports) if !ports.contains(&port) => problems.push(format!(
                            "{workload}: {}={value}: Service {host} has no port {port} ({ports:?})",
                            env["name"].as_str().unwrap_or("?")
                        )),
                        _ => {}
                    }
                }
            }
        }
    }
    problems
}

/// The container of the Deployment named `name`.
fn deployment_container<'a>(objects: &'a [Value], name: &str) -> Option<&'a Value> {
    of_kind(objects, "Deployment")
        .find(|d| self::name(d) == name)
        .and_then(|d| d["spec"]["template"]["spec"]["containers"].get(0))
}

fn env_of(container: &Value) -> BTreeMap<String, String> {
    container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some((
                e["name"].as_str()?.to_owned(),
                e["value"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// Each service of the table runs with its port (container port, `HTTP_PORT`, Service),
/// its probes on the table's paths, the servers it needs, and its telemetry.
fn check_platform_services(objects: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    let services = service_ports(objects);
    let mut programs: Vec<(&str, u16, &str, &str)> = platform::SERVICES
        .iter()
        .map(|s| (s.name, s.port, s.liveness_path, s.readiness_path))
        .collect();
    programs.push((
        platform::gateway::GUI_NAME,
        platform::gateway::GUI_PORT,
        "/healthz",
        "/readyz",
    ));
    for (program, port, liveness, readiness) in programs {
        let Some(container) = deployment_container(objects, program) else {
            problems.push(format!("no Deployment {program}"));
            continue;
        };
        let env = env_of(container);
        let http_port = container["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == "http");
        if http_port.and_then(|p| p["containerPort"].as_u64()) != Some(u64::from(port)) {
            problems.push(format!(
                "{program}: its container port `http` is not {port}"
            ));
        }
        if env.get("HTTP_PORT") != Some(&port.to_string()) {
            problems.push(format!("{program}: HTTP_PORT is not {port}"));
        }
        if !services
            .get(program)
            .is_some_and(|p| p.contains(&u64::from(port)))
        {
            problems.push(format!("{program}: no Service {program} on port {port}"));
        }
        for (probe, path) in [
            ("livenessProbe", liveness),
            ("startupProbe", liveness),
            ("readinessProbe", readiness),
        ] {
            if container[probe]["httpGet"]["path"] != path {
                problems.push(format!("{program}: its {probe} does not ask {path}"));
            }
        }
        if let Some(service) = platform::service(program) {
            let mut needed = vec!["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME"];
            for (server, variable) in [
                (manifests::KAFKA, "KAFKA_BOOTSTRAP_SERVERS"),
                (manifests::CASSANDRA, "CASSANDRA_CONTACT_POINTS"),
            ] {
                if manifests::service_env(service)
                    .iter()
                    .any(|(name, value)| name == variable && value.starts_with(server))
                {
                    needed.push(variable);
                }
            }
            for variable in needed {
                if !env.contains_key(variable) {
                    problems.push(format!("{program}: {variable} is not set"));
                }
            }
        }
    }
    problems
}

/// One route of the gateway: prefix, backend Service and port, whether the prefix is
/// stripped before the backend sees the request, and whether responses stream unbuffered.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    pub prefix: String,
    pub service: String,
    pub port: u64,
    pub stripped: bool,
    pub streaming: bool,
}

/// The local gateway's routes, from libs/platform, as the Ingress must have them.
pub fn expected_routes() -> BTreeSet<Route> {
    let mut routes: BTreeSet<Route> = platform::SERVICES
        .iter()
        .filter_map(|s| {
            let route = s.route?;
            Some(Route {
                prefix: route.prefix.to_owned(),
                service: s.name.to_owned(),
                port: u64::from(s.port),
                stripped: true,
                streaming: route.streaming,
            })
        })
        .collect();
    // The GUI's server serves its files under the prefix, as nginx's `alias` does locally.
    routes.insert(Route {
        prefix: platform::gateway::GUI_PREFIX.to_owned(),
        service: platform::gateway::GUI_NAME.to_owned(),
        port: u64::from(platform::gateway::GUI_PORT),
        stripped: false,
        streaming: false,
    });
    // The read-only trace look-ups, to Jaeger's query port with the prefix stripped.
    routes.insert(Route {
        prefix: platform::gateway::TRACES_PREFIX.to_owned(),
        service: super::manifests::JAEGER.to_owned(),
        port: u64::from(platform::observability::JAEGER_QUERY_PORT),
        stripped: true,
        streaming: false,
    });
    routes
}

/// The routes of the rendered Ingress objects, read the way ingress-nginx reads them.
pub fn ingress_routes(objects: &[Value]) -> (BTreeSet<Route>, Vec<String>) {
    const ANNOTATION: &str = "nginx.ingress.kubernetes.io/";
    let mut routes = BTreeSet::new();
    let mut problems = Vec::new();
    for ingress in of_kind(objects, "Ingress") {
        let annotations = string_map(&ingress["metadata"]["annotations"]);
        let annotation = |key: &str| {
            annotations
                .get(&format!("{ANNOTATION}{key}"))
                .map(String::as_str)
        };
        if ingress["spec"]["ingressClassName"] != "nginx" {
            problems.push(format!("{} is not for ingress-nginx", id(ingress)));
        }
        let rewrite = annotation("rewrite-target");
        let streaming = annotation("proxy-buffering") == Some("off")
            && annotation("proxy-read-timeout")
                .and_then(|t| t.parse::<u64>().ok())
                .is_some_and(|t| t >= 3600);
        for rule in ingress["spec"]["rules"].as_array().into_iter().flatten() {
            for path in rule["http"]["paths"].as_array().into_iter().flatten() {
                let raw = path["path"].as_str().unwrap_or_default();
                let backend = &path["backend"]["service"];
                let traces = raw == super::manifests::traces_path();
                let (prefix, stripped) = match raw
                    .strip_suffix(&super::manifests::stripped_suffix())
                {
                    None if traces => {
                        if rewrite != Some("/$1") || annotation("use-regex") != Some("true") {
                            problems.push(format!(
                                "{}: the trace look-ups need use-regex and rewrite-target /$1",
                                id(ingress)
                            ));
                        }
                        (platform::gateway::TRACES_PREFIX.to_owned(), true)
                    }
                    Some(prefix) => {
                        if rewrite != Some("/$2") || annotation("use-regex") != Some("true") {
                            problems.push(format!(
                                "{}: the path {raw} needs use-regex and rewrite-target /$2 to strip {prefix}",
                                id(ingress)
                            ));
                        }
                        (prefix.to_owned(), true)
                    }
                    None => {
                        if rewrite.is_some() {
                            problems.push(format!(
                                "{}: rewrite-target without a capture group in {raw}",
                                id(ingress)
                            ));
                        }
                        (raw.to_owned(), false)
                    }
                };
                routes.insert(Route {
                    prefix,
                    service: backend["name"].as_str().unwrap_or_default().to_owned(),
                    port: backend["port"]["number"].as_u64().unwrap_or_default(),
                    stripped,
                    streaming,
                });
            }
        }
    }
    (routes, problems)
}

/// The Ingress routes are the local gateway's, and lead to Services with those ports.
fn check_routes(objects: &[Value]) -> Vec<String> {
    let (routes, mut problems) = ingress_routes(objects);
    let expected = expected_routes();
    for missing in expected.difference(&routes) {
        problems.push(format!("the Ingress lacks the gateway's route {missing:?}"));
    }
    for extra in routes.difference(&expected) {
        problems.push(format!(
            "the Ingress has a route the gateway has not: {extra:?}"
        ));
    }
    let services = service_ports(objects);
    for route in &routes {
        if !services
            .get(&route.service)
            .is_some_and(|p| p.contains(&route.port))
        {
            problems.push(format!(
                "the route {} leads to {}:{}, which no Service serves",
                route.prefix, route.service, route.port
            ));
        }
    }
    problems
}

/// Every pod meets the `restricted` Pod Security Standard, and the project's own programs
/// run with a read-only root filesystem.
fn check_pod_security(objects: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    for (workload, template) in pod_templates(objects) {
        let spec = &template["spec"];
        let pod = &spec["securityContext"];
        for container in containers(spec) {
            let own = &container["securityContext"];
            let either = |key: &str| {
                if own[key].is_null() {
                    &pod[key]
                } else {
                    &own[key]
                }
            };
            let who = format!("{workload} container {}", container["name"]);
            if either("runAsNonRoot") != true {
                problems.push(format!("{who}: runAsNonRoot is not true"));
            }
            if either("runAsUser").as_u64().unwrap_or(0) == 0 {
                problems.push(format!("{who}: no numeric non-root runAsUser"));
            }
            if either("seccompProfile")["type"] != "RuntimeDefault"
                && either("seccompProfile")["type"] != "Localhost"
            {
                problems.push(format!("{who}: seccompProfile is not RuntimeDefault"));
            }
            if own["allowPrivilegeEscalation"] != false {
                problems.push(format!("{who}: allowPrivilegeEscalation is not false"));
            }
            let drops_all = own["capabilities"]["drop"]
                .as_array()
                .is_some_and(|d| d.iter().any(|c| c == "ALL"));
            let adds = own["capabilities"]["add"]
                .as_array()
                .is_some_and(|a| a.iter().any(|c| c != "NET_BIND_SERVICE"));
            if !drops_all || adds {
                problems.push(format!("{who}: capabilities do not drop ALL"));
            }
            if own["readOnlyRootFilesystem"] != true {
                problems.push(format!("{who}: the root filesystem is writable"));
            }
        }
        if spec["hostNetwork"] == true || spec["hostPID"] == true || spec["hostIPC"] == true {
            problems.push(format!("{workload}: shares a host namespace"));
        }
    }
    problems
}

/// The release of Jaeger whose Go module `observability/jaeger/go.mod` requires: Jaeger
/// tags each release twice, v1.N.0 (the Go module) and v2.(N-63).0 (the images), as its
/// CHANGELOG says ("v1.76.0 / v2.13.0").
pub fn jaeger_release() -> Result<String> {
    let go_mod = fs::read_to_string(paths::root().join("observability/jaeger/go.mod"))
        .context("cannot read observability/jaeger/go.mod")?;
    let version = go_mod
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix("github.com/jaegertracing/jaeger v")
        })
        .and_then(|rest| rest.split_whitespace().next())
        .context("observability/jaeger/go.mod does not require github.com/jaegertracing/jaeger")?;
    let mut parts = version.split('.');
    let (Some("1"), Some(minor), Some(patch)) = (parts.next(), parts.next(), parts.next()) else {
        bail!("unexpected Jaeger module version {version}");
    };
    let minor: u32 = minor.parse()?;
    Ok(format!(
        "2.{}.{patch}",
        minor.checked_sub(63).context("a Jaeger v1 before v2")?
    ))
}

/// Third-party images run the versions the repository pins elsewhere (Kafka and Cassandra
/// in deployment/local/pom.xml, Jaeger in observability/jaeger/go.mod); the project's
/// images are tagged and never `latest`.
fn check_images(objects: &[Value]) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let pinned = [
        ("apache/kafka", manifests::kafka_image()?),
        ("cassandra", manifests::cassandra_image()?),
        (
            "jaegertracing/jaeger",
            format!("jaegertracing/jaeger:{}", jaeger_release()?),
        ),
    ];
    let project = manifests::project_images();
    for (workload, template) in pod_templates(objects) {
        for container in containers(&template["spec"]) {
            let image = container["image"].as_str().unwrap_or_default();
            let (repository, tag) = image.rsplit_once(':').unwrap_or((image, ""));
            if tag.is_empty() || tag == "latest" {
                problems.push(format!("{workload}: the image {image} has no fixed tag"));
            }
            for (name, wanted) in &pinned {
                if repository == *name && image != wanted {
                    problems.push(format!(
                        "{workload}: runs {image}, but the repository pins {wanted}"
                    ));
                }
            }
            if project.iter().any(|p| p == repository) && container["imagePullPolicy"] == "Always" {
                problems.push(format!(
                    "{workload}: {image} is built here and cannot be pulled"
                ));
            }
        }
    }
    Ok(problems)
}

/// Grafana mounts the dashboards where the provisioned provider looks for them.
fn check_grafana(objects: &[Value]) -> Result<Vec<String>> {
    let dir = manifests::grafana_dashboards_dir()?;
    let Some(grafana) = deployment_container(objects, manifests::GRAFANA) else {
        return Ok(vec!["no Deployment grafana".to_owned()]);
    };
    let mounted = grafana["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|m| m["mountPath"] == dir.as_str() && m["name"] == "dashboards");
    Ok(if mounted {
        Vec::new()
    } else {
        vec![format!(
            "Grafana does not mount its dashboards at {dir}, where dashboards.yml looks"
        )]
    })
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use clap::CommandFactory;
    use serde_json::json;

    use super::*;

    /// The minikube overlay, rendered once per test process with the pinned kustomize
    /// (built on first use: the tests fail, not skip, without it).
    fn minikube() -> Vec<Value> {
        static RENDERED: OnceLock<String> = OnceLock::new();
        let text =
            RENDERED.get_or_init(|| super::super::build("minikube").expect("kustomize build"));
        parse(text).unwrap()
    }

    fn find<'a>(objects: &'a mut [Value], kind: &str, name: &str) -> &'a mut Value {
        objects
            .iter_mut()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind}/{name}"))
    }

    #[test]
    fn the_minikube_overlay_passes_the_cross_checks() {
        let problems = cross_check(&minikube()).unwrap();
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn the_ingress_routes_are_the_local_gateways() {
        let (routes, problems) = ingress_routes(&minikube());
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(routes, expected_routes());
        // And the local gateway has them too: nginx.conf's locations are the same prefixes.
        let nginx =
            fs::read_to_string(paths::root().join("deployment/local/nginx/nginx.conf")).unwrap();
        for route in &routes {
            assert!(
                nginx.contains(&format!("location {}/", route.prefix)),
                "nginx.conf lacks {}",
                route.prefix
            );
        }
        let streaming: Vec<&str> = routes
            .iter()
            .filter(|r| r.streaming)
            .map(|r| r.prefix.as_str())
            .collect();
        assert_eq!(streaming, ["/notifier"]);
    }

    /// Each cross-check can fail: a broken copy of the overlay is caught, with a message that
    /// names what is wrong.
    #[test]
    fn the_cross_checks_catch_what_would_break_in_a_cluster() {
        type Breakage = Box<dyn Fn(&mut Vec<Value>)>;
        let cases: Vec<(&str, Breakage)> = vec![
            (
                "selects no pod template",
                Box::new(|o| {
                    find(o, "Service", "reader")["spec"]["selector"]["app.kubernetes.io/name"] =
                        json!("raeder");
                }),
            ),
            (
                "does not declare",
                Box::new(|o| {
                    find(o, "Service", "kafka")["spec"]["ports"][0]["targetPort"] = json!("kafak");
                }),
            ),
            (
                "needs ConfigMap grafana-dashboards",
                Box::new(|o| {
                    o.retain(|x| {
                        !(x["kind"] == "ConfigMap" && x["metadata"]["name"] == "grafana-dashboards")
                    });
                }),
            ),
            (
                "needs key prometheus.yml",
                Box::new(|o| {
                    let data = &mut find(o, "ConfigMap", "prometheus-config")["data"];
                    let text = data["prometheus.yml"].take();
                    *data = json!({ "prometheus.yaml": text });
                }),
            ),
            (
                "Service kafka has no port 9093",
                Box::new(|o| {
                    let env = &mut find(o, "Deployment", "producer")["spec"]["template"]["spec"]["containers"]
                        [0]["env"];
                    for e in env.as_array_mut().unwrap() {
                        if e["name"] == "KAFKA_BOOTSTRAP_SERVERS" {
                            e["value"] = json!("kafka:9093");
                        }
                    }
                }),
            ),
            (
                "HTTP_PORT is not",
                Box::new(|o| {
                    let env = &mut find(o, "Deployment", "reader")["spec"]["template"]["spec"]["containers"]
                        [0]["env"];
                    env.as_array_mut()
                        .unwrap()
                        .retain(|e| e["name"] != "HTTP_PORT");
                }),
            ),
            (
                "readinessProbe does not ask /readyz",
                Box::new(|o| {
                    find(o, "Deployment", "notifier")["spec"]["template"]["spec"]["containers"]
                        [0]["readinessProbe"]["httpGet"]["path"] = json!("/healthz");
                }),
            ),
            (
                "lacks the gateway's route",
                Box::new(|o| {
                    o.retain(|x| !(x["kind"] == "Ingress" && x["metadata"]["name"] == "reader"));
                }),
            ),
            (
                "lacks the gateway's route",
                Box::new(|o| {
                    find(o, "Ingress", "notifier")["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-buffering"] =
                        json!("on");
                }),
            ),
            (
                "allowPrivilegeEscalation is not false",
                Box::new(|o| {
                    find(o, "StatefulSet", "cassandra")["spec"]["template"]["spec"]["initContainers"]
                        [0]["securityContext"]["allowPrivilegeEscalation"] = json!(true);
                }),
            ),
            (
                "the root filesystem is writable",
                Box::new(|o| {
                    find(o, "Deployment", "persister")["spec"]["template"]["spec"]["containers"]
                        [0]["securityContext"]["readOnlyRootFilesystem"] = json!(false);
                }),
            ),
            (
                "but the repository pins apache/kafka",
                Box::new(|o| {
                    find(o, "StatefulSet", "kafka")["spec"]["template"]["spec"]["containers"][0]
                        ["image"] = json!("apache/kafka:3.9.0");
                }),
            ),
            (
                "does not enforce the restricted",
                Box::new(|o| {
                    find(o, "Namespace", "kafka-cqrs")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] =
                        json!("baseline");
                }),
            ),
            (
                "Grafana does not mount its dashboards",
                Box::new(|o| {
                    find(o, "Deployment", "grafana")["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
                    .as_array_mut().unwrap().retain(|m| m["name"] != "dashboards");
                }),
            ),
        ];
        let clean = minikube();
        for (expected, break_it) in cases {
            let mut objects = clean.clone();
            break_it(&mut objects);
            let problems = cross_check(&objects).unwrap();
            assert!(
                problems.iter().any(|p| p.contains(expected)),
                "a broken overlay should fail with {expected:?}; found {problems:?}"
            );
        }
    }

    /// The environment variables a service reads: its configuration's (clap, introspected
    /// from the service's own `Config`) and those libs/telemetry reads directly.
    fn variables_read(command: clap::Command) -> BTreeMap<String, Option<String>> {
        const TELEMETRY: [&str; 6] = [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_SERVICE_NAME",
            "RUST_LOG",
        ];
        let mut read: BTreeMap<String, Option<String>> = command
            .get_arguments()
            .filter_map(|a| {
                let env = a.get_env()?.to_string_lossy().into_owned();
                let default = a
                    .get_default_values()
                    .first()
                    .map(|v| v.to_string_lossy().into_owned());
                Some((env, default))
            })
            .collect();
        read.extend(TELEMETRY.iter().map(|v| ((*v).to_owned(), None)));
        read
    }

    /// Every variable a Deployment sets is one its service reads (a misspelt name would be
    /// ignored silently), and every variable whose default is a loopback address is set (a
    /// pod's loopback has no Kafka or Cassandra).
    #[test]
    fn every_variable_a_service_reads_and_needs_is_set_and_none_other() {
        let objects = minikube();
        let commands = [
            ("producer", producer::Config::command()),
            ("persister", persister::Config::command()),
            ("reader", reader::Config::command()),
            ("notifier", notifier::Config::command()),
        ];
        assert_eq!(commands.len(), platform::SERVICES.len());
        for (name, command) in commands {
            let read = variables_read(command);
            let container = deployment_container(&objects, name).unwrap();
            let set = env_of(container);
            for variable in set.keys() {
                assert!(
                    read.contains_key(variable),
                    "{name} sets {variable}, which it does not read"
                );
            }
            for (variable, default) in &read {
                if default.as_deref().is_some_and(|d| d.contains("127.0.0.1")) {
                    assert!(
                        set.contains_key(variable),
                        "{name} does not set {variable} (default {default:?})"
                    );
                }
            }
            assert_eq!(
                set.get("HTTP_PORT"),
                Some(&platform::service(name).unwrap().port.to_string())
            );
        }
    }

    /// The rendered overlay, pinned. ConfigMap contents are shown by size only: the files
    /// they come from are pinned by the staleness test of the generated files.
    #[test]
    fn the_rendered_minikube_overlay_is_pinned() {
        let mut objects = minikube();
        for object in &mut objects {
            if object["kind"] == "ConfigMap" {
                for (_, value) in object["data"].as_object_mut().into_iter().flatten() {
                    let text = value.as_str().unwrap_or_default();
                    *value = json!(format!("<{} lines>", text.lines().count()));
                }
            }
        }
        let mut text = String::new();
        for object in &objects {
            text.push_str("---\n");
            text.push_str(&serde_yaml::to_string(object).unwrap());
        }
        insta::assert_snapshot!(text);
    }

    /// kubeconform and checkov, as the step runs them, reject what they should: the checks
    /// are not vacuous (a schema location that finds nothing, a skip list that skips all).
    #[test]
    fn kubeconform_and_checkov_reject_a_broken_manifest() {
        let dir = paths::target_dir().join("kube/broken");
        fs::create_dir_all(&dir).unwrap();
        let unknown_field = dir.join("unknown-field.yaml");
        fs::write(
            &unknown_field,
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n  namespace: kafka-cqrs\n\
             spec:\n  selectr: {}\n  ports:\n    - port: 80\n",
        )
        .unwrap();
        let kubeconform = super::super::KUBECONFORM.ensure().unwrap();
        let error = kubeconform_check(&kubeconform, &schemas().unwrap(), &unknown_field)
            .expect_err("kubeconform accepts an unknown field");
        assert!(format!("{error:#}").contains("kubeconform"), "{error:#}");
        // And the rendered overlay passes the same command.
        let rendered = dir.join("minikube.yaml");
        fs::write(&rendered, super::super::build("minikube").unwrap()).unwrap();
        kubeconform_check(&kubeconform, &schemas().unwrap(), &rendered).unwrap();

        let privileged = dir.join("privileged.yaml");
        fs::write(
            &privileged,
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n  namespace: kafka-cqrs\n\
             spec:\n  containers:\n    - name: x\n      image: busybox:1.36\n\
                   securityContext:\n        privileged: true\n",
        )
        .unwrap();
        checkov_check(&CHECKOV.ensure().unwrap(), &privileged)
            .expect_err("checkov passes a privileged pod");
    }

    #[test]
    fn the_jaeger_image_follows_the_go_module() {
        let release = jaeger_release().unwrap();
        assert!(release.starts_with("2."), "{release}");
    }
}
