//! The Kubernetes static checks of `cargo xtask test`, which need no cluster: every overlay
//! renders with the pinned kustomize, validates strictly against the schemas of the pinned
//! Kubernetes version (kubeconform), passes checkov with every skipped check explained in
//! `deployment/kubernetes/.checkov.yaml`, and passes the cross-checks below. They tie the
//! rendered objects to one another and to the repository, which none of those tools (nor
//! the cluster test's server-side dry run, which enforces Pod Security) can know: Services
//! select pods and ports that exist, pods name ConfigMaps and keys that exist, addresses
//! lead to Services, each service runs with its table entry and the variables its own
//! configuration reads, the Ingress routes are the local gateway's, the ConfigMaps hold
//! every rule file, dashboard and topic of the repository, and third-party images run the
//! versions the repository pins.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::{KUBERNETES_VERSION, manifests};
use crate::{cmd, paths, tools};

/// The JSON schemas of Kubernetes, shipped in a PyPI package (kubeconform's own default
/// location is a web site, which CI cannot reach); each release ships every minor version.
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
        let objects = super::parse(&rendered)?;
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

/// The schemas of [`KUBERNETES_VERSION`]'s minor version in the layout kubeconform reads,
/// under `target/tools/kubernetes-schemas/`. The package's files refer to their shared
/// definitions by an absolute `/api/_definitions.json`; each is rewritten to the file next
/// to it (as a `file://` URL: kubeconform resolves no relative reference from a local
/// path), once per pinned version.
fn schemas() -> Result<PathBuf> {
    let (minor, _patch) = KUBERNETES_VERSION.rsplit_once('.').context("a version")?;
    let version = format!("{minor}.0");
    let dir = tools::dir().join("kubernetes-schemas").join(&version);
    let stamp = dir.join(".stamp");
    if fs::read_to_string(&stamp).is_ok_and(|s| s == SCHEMAS.requirement) {
        return Ok(dir);
    }
    let program = SCHEMAS.ensure()?;
    let venv = program
        .parent()
        .and_then(Path::parent)
        .context("the tools' virtual environment")?;
    let wanted = format!("v{version}-local-strict");
    let source = fs::read_dir(venv.join("lib"))?
        .filter_map(|lib| Some(lib.ok()?.path()))
        .map(|lib| {
            lib.join("site-packages/kubernetes_validate/kubernetes-json-schema")
                .join(&wanted)
        })
        .find(|candidate| candidate.is_dir())
        .with_context(|| {
            format!(
                "{} has no {wanted} schemas: does {} ship Kubernetes {version}?",
                paths::display(venv),
                SCHEMAS.requirement
            )
        })?;
    eprintln!(
        "Rewriting the Kubernetes {version} schemas of {} into {}...",
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

/// kubeconform, strict: unknown fields, duplicate keys, and kinds without a schema fail.
fn kubeconform_check(kubeconform: &Path, schemas: &Path, file: &Path) -> Result<()> {
    cmd::run(
        Command::new(kubeconform)
            .args(["-strict", "-summary", "-schema-location"])
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
    cmd::run(
        Command::new(checkov)
            .arg("--config-file")
            .arg(super::dir().join(".checkov.yaml"))
            .arg("--file")
            .arg(file)
            .args(["--framework", "kubernetes", "--skip-download", "--compact", "--quiet"]),
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

/// The ConfigMap that kustomize generated as `base` (its name and a hash of its data).
fn config_map<'a>(objects: &'a [Value], base: &str) -> Option<&'a Value> {
    of_kind(objects, "ConfigMap")
        .find(|c| name(c) == base || name(c).rsplit_once('-').is_some_and(|(b, _)| b == base))
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

/// Every cross-check; the problems found, empty when there are none.
pub fn cross_check(objects: &[Value]) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    problems.extend(check_services(objects));
    problems.extend(check_config_references(objects));
    problems.extend(check_addresses(objects));
    problems.extend(check_platform_services(objects));
    problems.extend(check_routes(objects));
    problems.extend(check_images(objects)?);
    problems.extend(check_files(objects)?);
    Ok(problems)
}

/// Every Service selects some pod template, and each of its target ports is a port of
/// every pod it selects.
fn check_services(objects: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    let templates = pod_templates(objects);
    for service in of_kind(objects, "Service") {
        let selector = string_map(&service["spec"]["selector"]);
        let selected: Vec<_> = templates
            .iter()
            .filter(|(_, t)| {
                let labels = string_map(&t["metadata"]["labels"]);
                !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
            })
            .collect();
        if selected.is_empty() {
            problems.push(format!(
                "{} selects no pod template ({selector:?})",
                id(service)
            ));
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

/// The ConfigMaps and Secrets a pod spec names anywhere (volumes, projected volumes,
/// envFrom, env value references), with the keys it names: `(kind, name, key)`, optional
/// references left out.
fn references(value: &Value, found: &mut Vec<(&'static str, String, Option<String>)>) {
    match value {
        Value::Object(map) => {
            for (field, inner) in map {
                let kind = match field.as_str() {
                    "configMap" | "configMapRef" | "configMapKeyRef" => Some("ConfigMap"),
                    "secret" | "secretRef" | "secretKeyRef" => Some("Secret"),
                    _ => None,
                };
                let object = inner["name"].as_str().or(inner["secretName"].as_str());
                if let (Some(kind), Some(object), false) = (kind, object, inner["optional"] == true)
                {
                    found.push((kind, object.to_owned(), None));
                    let keys = inner["items"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|i| &i["key"]);
                    for key in keys.chain([&inner["key"]]).filter_map(Value::as_str) {
                        found.push((kind, object.to_owned(), Some(key.to_owned())));
                    }
                }
                references(inner, found);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| references(item, found)),
        _ => {}
    }
}

/// Every ConfigMap and Secret a pod names exists, and so does every key it names (items,
/// subPath, key references).
fn check_config_references(objects: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    for (workload, template) in pod_templates(objects) {
        let spec = &template["spec"];
        let mut needs = Vec::new();
        references(spec, &mut needs);
        // A subPath of a mounted ConfigMap volume is one of its keys.
        for container in containers(spec) {
            for mount in container["volumeMounts"].as_array().into_iter().flatten() {
                let volume = spec["volumes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|v| v["name"] == mount["name"]);
                let object = volume.and_then(|v| v["configMap"]["name"].as_str());
                if let (Some(object), Some(key)) = (object, mount["subPath"].as_str()) {
                    needs.push(("ConfigMap", object.to_owned(), Some(key.to_owned())));
                }
            }
        }
        for (kind, object, key) in needs {
            let Some(found) = of_kind(objects, kind).find(|o| name(o) == object) else {
                problems.push(format!(
                    "{workload} needs {kind} {object}, which is not rendered"
                ));
                continue;
            };
            let keys: BTreeSet<&String> = ["data", "binaryData", "stringData"]
                .iter()
                .flat_map(|field| found[*field].as_object().into_iter().flatten())
                .map(|(k, _)| k)
                .collect();
            if let Some(key) = key.filter(|k| !keys.contains(k)) {
                problems.push(format!(
                    "{workload} needs key {key} of {kind} {object}, which has only {keys:?}"
                ));
            }
        }
    }
    problems
}

/// The Services of the rendered objects, by name, with their ports.
fn service_ports(objects: &[Value]) -> BTreeMap<String, BTreeSet<u64>> {
    of_kind(objects, "Service")
        .map(|s| {
            let ports = s["spec"]["ports"].as_array().into_iter().flatten();
            (
                name(s).to_owned(),
                ports.filter_map(|p| p["port"].as_u64()).collect(),
            )
        })
        .collect()
}

/// What is wrong with the in-cluster addresses in `value` (`host:port`, URLs, lists of
/// them): a host that is no Service, or a port its Service does not serve. Numeric and
/// external addresses are not the cluster's and pass.
fn address_problems(services: &BTreeMap<String, BTreeSet<u64>>, value: &str) -> Vec<String> {
    let mut problems = Vec::new();
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
        let host = host
            .trim_end_matches(".svc.cluster.local")
            .trim_end_matches(&format!(".{}", super::NAMESPACE));
        if host.is_empty() || host.contains('.') || host == "localhost" {
            continue;
        }
        match services.get(host) {
            None => problems.push(format!(
                "{value} names the host {host}, which is no Service"
            )),
            Some(ports) if !ports.contains(&port) => problems.push(format!(
                "{value}: Service {host} has no port {port} ({ports:?})"
            )),
            _ => {}
        }
    }
    problems
}

/// Every address in a container's environment that names an in-cluster host leads to a
/// Service with that port: a Kafka, Cassandra or Jaeger address that would not resolve or
/// connect is caught here, not at three in the morning.
fn check_addresses(objects: &[Value]) -> Vec<String> {
    let services = service_ports(objects);
    let mut problems = Vec::new();
    for (workload, template) in pod_templates(objects) {
        for container in containers(&template["spec"]) {
            for env in container["env"].as_array().into_iter().flatten() {
                let Some(value) = env["value"].as_str() else {
                    continue;
                };
                for problem in address_problems(&services, value) {
                    problems.push(format!(
                        "{workload}: {}={problem}",
                        env["name"].as_str().unwrap_or("?")
                    ));
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
    let env = container["env"].as_array().into_iter().flatten();
    env.filter_map(|e| {
        Some((
            e["name"].as_str()?.to_owned(),
            e["value"].as_str()?.to_owned(),
        ))
    })
    .collect()
}

/// Each program of the table runs with its port (container port `http`, `HTTP_PORT`,
/// Service), its probes on the table's paths, and, for a service, its telemetry's address
/// and name (the variables it needs for Kafka and Cassandra are the clap test's).
fn check_platform_services(objects: &[Value]) -> Vec<String> {
    let services = service_ports(objects);
    let table = platform::SERVICES
        .iter()
        .map(|s| (s.name, s.port, s.liveness_path, s.readiness_path));
    let gui = (
        platform::gateway::GUI_NAME,
        platform::gateway::GUI_PORT,
        "/healthz",
        "/readyz",
    );
    let mut problems = Vec::new();
    for (program, port, liveness, readiness) in table.chain([gui]) {
        let Some(container) = deployment_container(objects, program) else {
            problems.push(format!("no Deployment {program}"));
            continue;
        };
        let env = env_of(container);
        let ports = container["ports"].as_array().into_iter().flatten();
        let http = ports
            .filter(|p| p["name"] == "http")
            .find_map(|p| p["containerPort"].as_u64());
        let mut wrong = vec![
            (
                http != Some(port.into()),
                format!("its container port `http` is not {port}"),
            ),
            (
                env.get("HTTP_PORT") != Some(&port.to_string()),
                format!("HTTP_PORT is not {port}"),
            ),
            (
                !services
                    .get(program)
                    .is_some_and(|p| p.contains(&port.into())),
                format!("no Service {program} on port {port}"),
            ),
        ];
        for (probe, path) in [
            ("livenessProbe", liveness),
            ("startupProbe", liveness),
            ("readinessProbe", readiness),
        ] {
            wrong.push((
                container[probe]["httpGet"]["path"] != path,
                format!("its {probe} does not ask {path}"),
            ));
        }
        if platform::service(program).is_some() {
            for variable in ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME"] {
                wrong.push((
                    !env.contains_key(variable),
                    format!("{variable} is not set"),
                ));
            }
        }
        problems.extend(
            wrong
                .into_iter()
                .filter(|(w, _)| *w)
                .map(|(_, what)| format!("{program}: {what}")),
        );
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
    let route = |prefix: &str, service: &str, port: u16, stripped, streaming| Route {
        prefix: prefix.to_owned(),
        service: service.to_owned(),
        port: u64::from(port),
        stripped,
        streaming,
    };
    let mut routes: BTreeSet<Route> = platform::SERVICES
        .iter()
        .filter_map(|s| {
            Some(route(
                s.route?.prefix,
                s.name,
                s.port,
                true,
                s.route?.streaming,
            ))
        })
        .collect();
    use platform::gateway::{GUI_NAME, GUI_PORT, GUI_PREFIX, TRACES_PREFIX};
    // The GUI's server serves its files under the prefix, as nginx's `alias` does locally.
    routes.insert(route(GUI_PREFIX, GUI_NAME, GUI_PORT, false, false));
    // The read-only trace look-ups, to Jaeger's query port with the prefix stripped.
    let query = platform::observability::JAEGER_QUERY_PORT;
    routes.insert(route(TRACES_PREFIX, manifests::JAEGER, query, true, false));
    routes
}

/// The routes of the rendered Ingress objects, read the way ingress-nginx reads them.
pub fn ingress_routes(objects: &[Value]) -> (BTreeSet<Route>, Vec<String>) {
    let mut routes = BTreeSet::new();
    let mut problems = Vec::new();
    for ingress in of_kind(objects, "Ingress") {
        let annotations = string_map(&ingress["metadata"]["annotations"]);
        let annotation = |key: &str| {
            let key = format!("nginx.ingress.kubernetes.io/{key}");
            annotations.get(&key).map(String::as_str)
        };
        if ingress["spec"]["ingressClassName"] != "nginx" {
            problems.push(format!("{} is not for ingress-nginx", id(ingress)));
        }
        let rewrite = annotation("rewrite-target");
        let regex = annotation("use-regex") == Some("true");
        let streaming = annotation("proxy-buffering") == Some("off")
            && annotation("proxy-read-timeout")
                .and_then(|t| t.parse::<u64>().ok())
                .is_some_and(|t| t >= 3600);
        let paths = ingress["spec"]["rules"].as_array().into_iter().flatten();
        for path in paths.flat_map(|rule| rule["http"]["paths"].as_array().into_iter().flatten()) {
            let raw = path["path"].as_str().unwrap_or_default();
            let stripped = raw.strip_suffix(&manifests::stripped_suffix());
            let (prefix, stripped) = if raw == manifests::traces_path() {
                if rewrite != Some("/$1") || !regex {
                    problems.push(format!(
                        "{}: the trace look-ups need use-regex and rewrite-target /$1",
                        id(ingress)
                    ));
                }
                (platform::gateway::TRACES_PREFIX, true)
            } else if let Some(prefix) = stripped {
                if rewrite != Some("/$2") || !regex {
                    problems.push(format!(
                        "{}: the path {raw} needs use-regex and rewrite-target /$2 to strip {prefix}",
                        id(ingress)
                    ));
                }
                (prefix, true)
            } else {
                if rewrite.is_some() {
                    problems.push(format!(
                        "{}: rewrite-target without a capture group in {raw}",
                        id(ingress)
                    ));
                }
                (raw, false)
            };
            let backend = &path["backend"]["service"];
            routes.insert(Route {
                prefix: prefix.to_owned(),
                service: backend["name"].as_str().unwrap_or_default().to_owned(),
                port: backend["port"]["number"].as_u64().unwrap_or_default(),
                stripped,
                streaming,
            });
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

/// The version of a server pinned in `deployment/local/pom.xml` (`<NAME.version>`).
fn pom_version(name: &str) -> Result<String> {
    let pom = fs::read_to_string(paths::root().join("deployment/local/pom.xml"))
        .context("cannot read deployment/local/pom.xml")?;
    crate::infra::fetch::pom_property(&pom, &format!("{name}.version"))
        .with_context(|| format!("deployment/local/pom.xml has no <{name}.version>"))
}

/// Third-party images run the versions the repository pins elsewhere (Kafka and Cassandra
/// in deployment/local/pom.xml, as the local system runs them; Jaeger in
/// observability/jaeger/go.mod), and the project's images, which no registry has, are not
/// pulled `Always`.
fn check_images(objects: &[Value]) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let pinned = [
        ("apache/kafka", pom_version("kafka")?),
        ("cassandra", pom_version("cassandra")?),
        ("jaegertracing/jaeger", jaeger_release()?),
    ];
    let project = manifests::project_images();
    for (workload, template) in pod_templates(objects) {
        for container in containers(&template["spec"]) {
            let image = container["image"].as_str().unwrap_or_default();
            let (repository, tag) = image.rsplit_once(':').unwrap_or((image, ""));
            for (name, version) in &pinned {
                if repository == *name && tag != version {
                    problems.push(format!(
                        "{workload}: runs {image}, but the repository pins {name}:{version}"
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

/// The file names in `dir` (relative to the repository) that end with `suffix`.
fn files_in(dir: &str, suffix: &str) -> Result<BTreeSet<String>> {
    let entries =
        fs::read_dir(paths::root().join(dir)).with_context(|| format!("cannot list {dir}"))?;
    let names = entries.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()));
    Ok(names.filter(|n| n.ends_with(suffix)).collect())
}

/// The ConfigMaps made from the repository's files hold all of them, and say what the
/// repository says: every rule file and dashboard of `observability/` (kustomize's
/// generator lists files one by one), Grafana's dashboards mounted where the provisioned
/// provider looks (if Grafana is deployed), its data sources those of the local system at in-cluster addresses, and
/// the topics Job creating the contract's topics (libs/platform) with their partitions.
fn check_files(objects: &[Value]) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let data = |base: &str| {
        config_map(objects, base)
            .map(|c| string_map(&c["data"]))
            .unwrap_or_default()
    };
    for (base, dir, suffix) in [
        ("prometheus-rules", "observability/prometheus/rules", ".yml"),
        (
            "grafana-dashboards",
            "observability/grafana/dashboards",
            ".json",
        ),
    ] {
        let held: BTreeSet<String> = data(base).into_keys().collect();
        for missing in files_in(dir, suffix)?.difference(&held) {
            problems.push(format!("ConfigMap {base} lacks {dir}/{missing}"));
        }
    }
    let provider: Value = serde_yaml::from_str(
        &data("grafana-dashboard-providers")
            .remove("dashboards.yml")
            .unwrap_or_default(),
    )?;
    let dashboards = provider["providers"][0]["options"]["path"]
        .as_str()
        .unwrap_or("?");
    // (An overlay may leave Grafana out; its ConfigMaps are still checked.)
    let mounts = deployment_container(objects, "grafana").map(|c| &c["volumeMounts"]);
    let mounted = |m: &Value| m["mountPath"] == dashboards && m["name"] == "dashboards";
    if mounts.is_some_and(|m| !m.as_array().into_iter().flatten().any(mounted)) {
        problems.push(format!(
            "Grafana does not mount its dashboards at {dashboards}, where dashboards.yml looks"
        ));
    }
    let local = "observability/grafana/provisioning/datasources/datasources.yml";
    let local: Value = serde_yaml::from_str(&fs::read_to_string(paths::root().join(local))?)?;
    let cluster: Value = serde_yaml::from_str(
        &data("grafana-datasources")
            .remove("datasources.yml")
            .unwrap_or_default(),
    )?;
    let sources = |value: &Value| -> BTreeSet<String> {
        let list = value["datasources"].as_array().into_iter().flatten();
        list.map(|s| format!("{} {} {}", s["name"], s["uid"], s["type"]))
            .collect()
    };
    if sources(&local) != sources(&cluster) {
        problems.push(format!(
            "Grafana's data sources in the cluster {:?} are not the local ones {:?}",
            sources(&cluster),
            sources(&local)
        ));
    }
    let services = service_ports(objects);
    for source in cluster["datasources"].as_array().into_iter().flatten() {
        for problem in address_problems(&services, source["url"].as_str().unwrap_or_default()) {
            problems.push(format!(
                "Grafana's data source {}: {problem}",
                source["name"]
            ));
        }
    }
    let script = data("kafka-topics-script")
        .into_values()
        .collect::<String>();
    use platform::kafka::{
        DLQ_TOPIC, DLQ_TOPIC_PARTITIONS, DOCUMENTS_TOPIC, DOCUMENTS_TOPIC_PARTITIONS,
    };
    for (topic, partitions) in [
        (DOCUMENTS_TOPIC, DOCUMENTS_TOPIC_PARTITIONS),
        (DLQ_TOPIC, DLQ_TOPIC_PARTITIONS),
    ] {
        if !script.contains(&format!(
            "--create --if-not-exists --topic {topic} --partitions {partitions} "
        )) {
            problems.push(format!(
                "the Job kafka-topics does not create {topic} with {partitions} partition(s)"
            ));
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use clap::CommandFactory;

    use super::*;

    /// The minikube overlay, rendered once per test process with the pinned kustomize
    /// (built on first use: the tests fail, not skip, without it).
    fn minikube() -> Vec<Value> {
        static RENDERED: OnceLock<String> = OnceLock::new();
        let text =
            RENDERED.get_or_init(|| super::super::build("minikube").expect("kustomize build"));
        super::super::parse(text).unwrap()
    }

    fn find<'a>(objects: &'a mut [Value], kind: &str, name: &str) -> &'a mut Value {
        objects
            .iter_mut()
            .find(|o| {
                o["kind"] == kind
                    && (o["metadata"]["name"] == name
                        || (kind == "ConfigMap" && super::name(o).starts_with(&format!("{name}-"))))
            })
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

    /// Each cross-check can fail: a broken copy of the overlay is caught, with a message
    /// that names what is wrong. One breakage a line: what the problem says | the object
    /// broken (kind, name; a generated ConfigMap by the name before its hash) | a text of
    /// its JSON | what that text becomes.
    const BREAKAGES: &str = r#"
        selects no pod template | Service reader | "app.kubernetes.io/name":"reader" | "app.kubernetes.io/name":"raeder"
        does not declare | Service kafka | "targetPort":"kafka" | "targetPort":"kafak"
        needs ConfigMap grafana-dashboards | ConfigMap grafana-dashboards | "name":"grafana-dashboards | "name":"gone
        needs key prometheus.yml | ConfigMap prometheus-config | "prometheus.yml": | "prometheus.yaml":
        Service kafka has no port 9093 | Deployment producer | kafka:9092 | kafka:9093
        HTTP_PORT is not | Deployment reader | "HTTP_PORT" | "HTTP_PORTS"
        readinessProbe does not ask /readyz | Deployment notifier | "path":"/readyz" | "path":"/healthz"
        lacks the gateway's route | Ingress reader | "path":"/reader | "path":"/raeder
        lacks the gateway's route | Ingress notifier | proxy-buffering":"off" | proxy-buffering":"on"
        but the repository pins apache/kafka | StatefulSet kafka | apache/kafka: | apache/kafka:0
        Grafana does not mount its dashboards | Deployment grafana | "name":"dashboards" | "name":"boards"
        ConfigMap prometheus-rules lacks observability/prometheus/rules/alerts.yml | ConfigMap prometheus-rules | "alerts.yml" | "alerts.yaml"
        are not the local ones | ConfigMap grafana-datasources | uid: jaeger | uid: tempo
        Grafana's data source "Prometheus": http://prometheus:9091 | ConfigMap grafana-datasources | prometheus:9090 | prometheus:9091
        does not create documents.t with 3 partition(s) | ConfigMap kafka-topics-script | --partitions 3 | --partitions 1
    "#;

    #[test]
    fn the_cross_checks_catch_what_would_break_in_a_cluster() {
        let clean = minikube();
        for line in BREAKAGES.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let [expected, object, from, to] = line.split(" | ").collect::<Vec<_>>()[..] else {
                panic!("not a breakage: {line}");
            };
            let (kind, name) = object.split_once(' ').unwrap();
            let mut objects = clean.clone();
            let broken = find(&mut objects, kind, name);
            let json = broken.to_string();
            assert!(json.contains(from), "{object} has no {from}");
            *broken = serde_json::from_str(&json.replace(from, to)).unwrap();
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

    /// Every variable a Deployment, or the Job that runs a service's program, sets is one
    /// its program reads (a misspelt name would be ignored silently), and every variable
    /// whose default is a loopback address is set (a pod's loopback has no Kafka or
    /// Cassandra; the Job's, of those it uses); its arguments are ones the program takes (`persister migrate`); and all
    /// of them use one keyspace.
    #[test]
    fn every_variable_a_service_reads_and_needs_is_set_and_none_other() {
        let objects = minikube();
        let workloads = [
            ("Deployment/producer", producer::Config::command()),
            ("Deployment/persister", persister::Config::command()),
            ("Deployment/reader", reader::Config::command()),
            ("Deployment/notifier", notifier::Config::command()),
            ("Job/cassandra-schema", persister::Config::command()),
        ];
        assert_eq!(workloads.len(), platform::SERVICES.len() + 1);
        let mut keyspaces = BTreeSet::new();
        for (workload, command) in workloads {
            let (_, template) = pod_templates(&objects)
                .into_iter()
                .find(|(id, _)| id == workload)
                .unwrap_or_else(|| panic!("no {workload}"));
            let container = &template["spec"]["containers"][0];
            let args = container["args"].as_array().into_iter().flatten();
            let args: Vec<&str> = args.filter_map(Value::as_str).collect();
            let read = variables_read(command.clone());
            let program = command.get_name().to_owned();
            if let Err(error) = command.try_get_matches_from([program.as_str()].iter().chain(&args))
            {
                panic!("{workload} runs with {args:?}, which its program refuses: {error}");
            }
            let set = env_of(container);
            for variable in set.keys() {
                assert!(
                    read.contains_key(variable),
                    "{workload} sets {variable}, which it does not read"
                );
            }
            // `persister migrate` only talks to Cassandra.
            let job = workload.starts_with("Job/");
            for (variable, default) in &read {
                if default.as_deref().is_some_and(|d| d.contains("127.0.0.1"))
                    && (!job || variable.starts_with("CASSANDRA_"))
                {
                    assert!(
                        set.contains_key(variable),
                        "{workload} does not set {variable} (default {default:?})"
                    );
                }
            }
            if let Some(Some(default)) = read.get("CASSANDRA_KEYSPACE") {
                keyspaces.insert(set.get("CASSANDRA_KEYSPACE").unwrap_or(default).clone());
            }
            if let Some(name) = workload.strip_prefix("Deployment/") {
                assert_eq!(
                    set.get("HTTP_PORT"),
                    Some(&platform::service(name).unwrap().port.to_string())
                );
            }
        }
        assert_eq!(
            keyspaces.len(),
            1,
            "the workloads use the keyspaces {keyspaces:?}"
        );
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
