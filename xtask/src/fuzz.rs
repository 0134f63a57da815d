//! `cargo xtask fuzz`: schemathesis (PyPI, pinned) against the OpenAPI description of each
//! public service, through the gateway and directly on each service's port, with valid and
//! invalid input. It fails on any 5xx and on any answer that does not conform to the
//! description (status code, content type, headers, schema), and prints the figures:
//! requests per operation, 5xx seen, non-conformances. `cargo xtask test` runs a bounded
//! form ([`run_short`]) while the system is up.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use platform::{SERVICES, Service, gateway};
use serde_json::Value;

use crate::{cmd, paths, tools};

/// schemathesis, in a virtual environment of its own: it pins newer `packaging`, `rich`
/// and `hypothesis` than checkov's environment holds, and either would break the other.
const SCHEMATHESIS: tools::PyTool = tools::PyTool {
    program: "st",
    requirement: "schemathesis==4.32.5",
};
const VENV: &str = "venv-fuzz";

/// Checks that have nothing to check here, each with the reason it is left out; every other
/// check schemathesis has runs (`--checks all`).
const EXCLUDED_CHECKS: [(&str, &str); 4] = [
    ("ignored_auth", "the API has no authentication"),
    (
        "object_level_authorization",
        "the API has no authentication",
    ),
    (
        "use_after_free",
        "a read after a delete is eventually consistent by design (CQRS): the reader may \
         serve the document until the persister applied the delete",
    ),
    (
        "ensure_resource_availability",
        "a read after a create is eventually consistent by design (CQRS), and the created \
         document is served by another service (the reader)",
    ),
];

/// The hooks of every run (`xtask/src/fuzz_hooks.py`): the one refusal that is the
/// contract although schemathesis would count it as a wrongly rejected valid request.
const HOOKS: &str = include_str!("fuzz_hooks.py");
const HOOKS_FILE: &str = "hooks.py";

/// Seconds a request of a streaming operation (the notifier's `GET /documents`, Server-Sent
/// Events) may take: a stream that opened is read for this long, checked (status, content
/// type, headers) and then closed, since it would otherwise never end. Every other request
/// keeps schemathesis's own timeout, so a slow answer there is still a failure. The same
/// bound applies to the stream's headers: with half a second, one stream in about 900
/// of the long run through the gateway was not answered in time.
const STREAM_SECONDS: f32 = 1.0;

/// Where the place to fuzz is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Via {
    /// Through the gateway, each service under its prefix (`/producer/openapi.json`).
    Gateway,
    /// Each service directly on its own port on 127.0.0.1 (the local system only).
    Direct,
    /// Both, one after the other.
    Both,
}

#[derive(Debug, Clone, clap::Args)]
#[command(
    after_long_help = "Each service's description is loaded from where it is served \
        (`/openapi.json`, through the gateway `/producer/openapi.json` and so on), and \
        schemathesis runs its phases on every operation: the examples, the coverage phase \
        (boundary and invalid values of every parameter, missing headers, unsupported \
        methods) and the fuzzing phase (random valid and invalid requests), with every check \
        but those that need authentication or read-after-write consistency.\n\n\
        The notifier's GET /documents streams for ever: each of its requests is read for \
        a second and then closed, and its status, content type and headers are checked; its \
        parameters (documentId, lastEventId, the Last-Event-ID header) are fuzzed as any \
        other.\n\n\
        Reports per run (HAR of every request, schemathesis's JSON verdict, JUnit) go to \
        target/fuzz/<via>-<service>/. Exits non-zero on any 5xx, any non-conformance or any \
        error of schemathesis itself.\n\n\
        Examples:\n  cargo xtask fuzz                               the long run against the local system\n  \
        cargo xtask fuzz --service reader --duration 60\n  \
        cargo xtask fuzz --gateway http://cqrs.example --via gateway   a deployed system"
)]
pub struct Args {
    /// The gateway to fuzz through; default: the local one of `cargo xtask up`.
    #[arg(long, value_name = "URL", default_value = gateway::LOCAL_URL)]
    pub gateway: String,
    /// Through the gateway, directly on each service's port (local system only), or both.
    #[arg(long, value_enum, default_value = "both")]
    pub via: Via,
    /// Only this service (repeatable); default: every service with a public route
    /// (producer, reader, notifier).
    #[arg(long = "service", value_name = "NAME")]
    pub services: Vec<String>,
    /// Test cases per operation in each generating phase.
    #[arg(long, default_value_t = 1000)]
    pub max_examples: u32,
    /// Seconds each run (one service, one way in) fuzzes: the fuzzing phase repeats until
    /// they are spent. Without it, each phase stops after --max-examples.
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<u32>,
    /// Seed of the generated data, to repeat a run exactly (printed by every run).
    #[arg(long)]
    pub seed: Option<u64>,
}

/// The bounded form that `cargo xtask test` runs against the local system: six runs of
/// 12 s each (three services, through the gateway and directly), about 90 s here.
pub fn run_short() -> Result<()> {
    run(&Args {
        gateway: gateway::LOCAL_URL.to_owned(),
        via: Via::Both,
        services: Vec::new(),
        max_examples: 40,
        duration: Some(12),
        seed: None,
    })
}

pub fn run(args: &Args) -> Result<()> {
    let st = SCHEMATHESIS.ensure_in(VENV)?;
    let services = chosen_services(&args.services)?;
    let out = paths::target_dir().join("fuzz");
    fs::create_dir_all(&out)?;
    let documents = seed_documents(&args.gateway)?;
    let mut tallies = Vec::new();
    for via in [Via::Gateway, Via::Direct] {
        if args.via != Via::Both && args.via != via {
            continue;
        }
        for service in &services {
            let target = Target::new(via, service, &args.gateway)?;
            tallies.push(fuzz_one(&st, &target, args, &out, &documents)?);
        }
    }
    let mut summary = String::new();
    let _ = writeln!(summary, "\n== fuzz summary (schemathesis {})", version());
    let (mut requests, mut errors, mut failures, mut broken) = (0, 0, 0, Vec::new());
    for tally in &tallies {
        summary.push_str(&tally.render());
        requests += tally.requests();
        errors += tally.server_errors();
        failures += tally.failures.iter().map(|f| f.count).sum::<u64>();
        if !tally.passed() {
            broken.push(tally.label.clone());
        }
    }
    let _ = writeln!(
        summary,
        "fuzz: {requests} requests fuzzed, {errors} 5xx seen, {failures} non-conformances"
    );
    eprint!("{summary}");
    fs::write(out.join("summary.txt"), &summary)?;
    if !broken.is_empty() {
        bail!(
            "fuzzing found problems in {}: see the failures above, and the reports under \
             target/fuzz/",
            broken.join(", ")
        );
    }
    Ok(())
}

fn version() -> &'static str {
    SCHEMATHESIS
        .requirement
        .split_once("==")
        .map_or("", |(_, v)| v)
}

/// The services named on the command line, or every one with a public route.
fn chosen_services(names: &[String]) -> Result<Vec<&'static Service>> {
    let public: Vec<&'static Service> = SERVICES
        .iter()
        .copied()
        .filter(|s| s.route.is_some())
        .collect();
    if names.is_empty() {
        return Ok(public);
    }
    names
        .iter()
        .map(|name| {
            public
                .iter()
                .copied()
                .find(|s| s.name == name)
                .with_context(|| {
                    let known: Vec<&str> = public.iter().map(|s| s.name).collect();
                    format!(
                        "{name:?} has no HTTP API to fuzz; choose from {}",
                        known.join(", ")
                    )
                })
        })
        .collect()
}

/// One service, reached one way.
#[derive(Debug)]
struct Target {
    service: &'static Service,
    label: String,
    /// Where its paths start (`http://127.0.0.1:8080/producer`).
    base_url: String,
}

impl Target {
    fn new(via: Via, service: &'static Service, gateway_url: &str) -> Result<Self> {
        let (label, base_url) = match via {
            Via::Gateway => {
                let route = service
                    .route
                    .with_context(|| format!("{} has no gateway route", service.name))?;
                (
                    format!("gateway-{}", service.name),
                    format!("{}{}", gateway_url.trim_end_matches('/'), route.prefix),
                )
            }
            Via::Direct | Via::Both => (
                format!("direct-{}", service.name),
                format!("http://127.0.0.1:{}", service.port),
            ),
        };
        Ok(Self {
            service,
            label,
            base_url,
        })
    }
}

/// Runs schemathesis on one target and reads its reports.
fn fuzz_one(
    st: &Path,
    target: &Target,
    args: &Args,
    out: &Path,
    documents: &[String],
) -> Result<Tally> {
    let reports = out.join(&target.label);
    if reports.exists() {
        fs::remove_dir_all(&reports)?;
    }
    fs::create_dir_all(&reports)?;
    let config = reports.join("schemathesis.toml");
    fs::write(reports.join(HOOKS_FILE), HOOKS)?;
    fs::write(&config, config_file(target.service, documents, &reports)?)?;
    let excluded: Vec<&str> = EXCLUDED_CHECKS.iter().map(|(name, _)| *name).collect();
    let mut command = Command::new(st);
    command
        .arg("--config-file")
        .arg(&config)
        .arg("--no-color")
        .arg("run")
        .arg(format!("{}/openapi.json", target.base_url))
        .args(["--url", &target.base_url])
        .args(["--checks", "all", "--exclude-checks", &excluded.join(",")])
        .args(["--mode", "all", "--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", &args.max_examples.to_string()])
        .args(["--wait-for-schema", "30", "--continue-on-failure"])
        .args(["--report", "har,json,junit", "--report-dir"])
        .arg(&reports)
        .arg("--report-har-path")
        .arg(reports.join(HAR))
        .arg("--report-json-path")
        .arg(reports.join(VERDICT))
        .arg("--report-junit-path")
        .arg(reports.join("junit.xml"))
        // Fuzzing is not a place to keep examples between runs, and the default would
        // write a `.hypothesis` folder into the working directory.
        .args(["--generation-database", "none"]);
    if let Some(seconds) = args.duration {
        command.args(["--max-time", &seconds.to_string()]);
    }
    if let Some(seed) = args.seed {
        command.args(["--seed", &seed.to_string()]);
    }
    eprintln!("\n== fuzz {} at {}", target.service.name, target.base_url);
    let started = Instant::now();
    cmd::echo(&command);
    let status = command
        .status()
        .with_context(|| format!("cannot start {}", st.display()))?;
    let mut tally = Tally::from_har(target, &read_report(&reports, HAR)?)?;
    tally.failures = failures(&read_report(&reports, VERDICT)?);
    tally.exit_ok = status.success();
    tally.seconds = started.elapsed().as_secs_f64();
    Ok(tally)
}

/// The configuration of one run: existing documents offered to the id parameters of the
/// reading operations (a random UUID only ever finds nothing), and the streaming
/// operation's own timeout.
///
/// Its hooks are in `dir`, and so are the failures schemathesis keeps for `st replay`
/// (by default a `.schemathesis` folder in the working directory).
fn config_file(service: &Service, documents: &[String], dir: &Path) -> Result<String> {
    let mut text = format!(
        "# Written by `cargo xtask fuzz` (xtask/src/fuzz.rs) for one run; do not edit.\n\
         hooks = \"{}\"\n\n[cache]\ndirectory = \"{}\"\n",
        dir.join(HOOKS_FILE).display(),
        dir.join("cache").display()
    );
    let parameters = document_parameters(service)?;
    if !documents.is_empty() && !parameters.is_empty() {
        let values: Vec<String> = documents.iter().map(|id| format!("\"{id}\"")).collect();
        let _ = writeln!(
            text,
            "\n# Documents created for this run, offered half of the time.\n\
             [dictionaries.documents]\nvalues = [{}]\n\n[parameters]",
            values.join(", ")
        );
        for parameter in parameters {
            let _ = writeln!(
                text,
                "\"{parameter}\" = {{ dictionary = \"documents\", probability = 0.5 }}"
            );
        }
    }
    if service.route.is_some_and(|r| r.streaming) {
        for operation in service.api {
            let Some((method, path)) = operation.split_once(' ') else {
                continue;
            };
            if method != "GET" {
                continue;
            }
            let _ = write!(
                text,
                "\n# A stream never ends: read it for {STREAM_SECONDS} s (or until its first \
                 event), then check what came.\n[[operations]]\ninclude-method = \"GET\"\n\
                 include-path = \"{path}\"\nrequest-timeout = {STREAM_SECONDS}\n\
                 max-stream-events = 1\n"
            );
        }
    }
    Ok(text)
}

/// The UUID parameters of a service's GET operations, as schemathesis names them
/// (`path.id`, `query.documentId`).
fn document_parameters(service: &Service) -> Result<Vec<String>> {
    let description = committed_description(service)?;
    let mut found = Vec::new();
    for methods in description["paths"].as_object().into_iter().flatten() {
        let parameters = methods.1["get"]["parameters"]
            .as_array()
            .into_iter()
            .flatten();
        for parameter in parameters {
            if parameter["schema"]["format"] == "uuid"
                && let (Some(place), Some(name)) =
                    (parameter["in"].as_str(), parameter["name"].as_str())
            {
                found.push(format!("{place}.{name}"));
            }
        }
    }
    Ok(found)
}

/// How many documents each run offers to the reading operations.
const SEEDED_DOCUMENTS: usize = 3;

/// Creates a few documents through the gateway and waits until the reader serves them, so
/// that the reading operations are fuzzed with ids that exist as well as random ones.
fn seed_documents(gateway_url: &str) -> Result<Vec<String>> {
    let curl = tools::require_program("curl", "curl")?;
    let base = gateway_url.trim_end_matches('/');
    let prefix = |service: &Service| service.route.map_or("", |r| r.prefix);
    let mut ids = Vec::new();
    for n in 0..SEEDED_DOCUMENTS {
        let mut create = Command::new(&curl);
        create
            .args(["--silent", "--show-error", "--fail", "--max-time", "10"])
            .args([
                "-H",
                &format!("Content-Type: {}", events::mime::CREATE_DOCUMENT),
            ])
            .args([
                "--data",
                &format!(r#"{{"author":"fuzz","text":"seed {n}"}}"#),
            ])
            .arg(format!("{base}{}/documents", prefix(&platform::PRODUCER)));
        cmd::echo(&create);
        let output = cmd::read(&mut create).with_context(|| {
            format!(
                "cannot create a document through the gateway at {base}. Is the system up \
                 (`cargo xtask up`)?"
            )
        })?;
        let created: Value = serde_json::from_str(&output)
            .context("the producer's answer to a create is not JSON")?;
        let id = created["id"]
            .as_str()
            .context("the producer's answer to a create has no id")?;
        ids.push(id.to_owned());
    }
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    for id in &ids {
        let url = format!("{base}{}/documents/{id}", prefix(&platform::READER));
        loop {
            let mut read = Command::new(&curl);
            read.args(["--silent", "--max-time", "5", "-o", "/dev/null"])
                .args(["-w", "%{http_code}"])
                .arg(&url);
            let output = cmd::output(&mut read)?;
            if output.stdout == b"200" {
                break;
            }
            if Instant::now() > deadline {
                bail!("the reader did not serve {url} within 30 s of its creation");
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
    eprintln!(
        "Created {} documents for the reading operations.",
        ids.len()
    );
    Ok(ids)
}

/// Every request and answer of a run (HTTP Archive), and schemathesis's verdict.
const HAR: &str = "requests.har.json";
const VERDICT: &str = "verdict.json";

/// A report of one run, with an error that points at schemathesis's own output.
fn read_report(dir: &Path, name: &str) -> Result<Value> {
    let path = dir.join(name);
    if !path.exists() {
        bail!(
            "schemathesis wrote no {} (it could not run): see its output above",
            paths::display(&path)
        );
    }
    read_json(&path)
}

fn read_json(path: &Path) -> Result<Value> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

/// A group of failures schemathesis found (one check on some operations).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    title: String,
    count: u64,
    operations: Vec<String>,
}

/// The failure groups and the errors (schemathesis could not run a test) of a JSON report.
fn failures(report: &Value) -> Vec<Failure> {
    let mut found: Vec<Failure> = report["failures"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|group| Failure {
            title: group["title"].as_str().unwrap_or("?").to_owned(),
            count: group["count"].as_u64().unwrap_or(1),
            operations: group["operations"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|o| o.as_str().map(str::to_owned))
                .collect(),
        })
        .collect();
    found.extend(
        report["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|group| Failure {
                title: format!("error: {}", group["title"].as_str().unwrap_or("?")),
                count: group["count"].as_u64().unwrap_or(1),
                operations: Vec::new(),
            }),
    );
    found
}

/// The problem type of the reader's documented 503 (a position not reached in time).
const NOT_CAUGHT_UP: &str = "urn:kafka-cqrs:problem:not-caught-up";
/// The class such answers are tallied under, apart from the 5xx.
const NOT_CAUGHT_UP_CLASS: u16 = 9;

/// What one run sent and got.
#[derive(Debug, Default)]
struct Tally {
    label: String,
    /// Answers per operation (`GET /documents/{id}`), by status class (2, 4, 5 for 2xx...).
    per_operation: BTreeMap<String, BTreeMap<u16, u64>>,
    failures: Vec<Failure>,
    exit_ok: bool,
    seconds: f64,
}

impl Tally {
    /// Counts every exchange of a HAR report by the operation its path and method match.
    fn from_har(target: &Target, har: &Value) -> Result<Self> {
        let described = described_operations(target.service)?;
        let mut per_operation: BTreeMap<String, BTreeMap<u16, u64>> = BTreeMap::new();
        for entry in har["log"]["entries"].as_array().into_iter().flatten() {
            let method = entry["request"]["method"].as_str().unwrap_or("?");
            let url = entry["request"]["url"].as_str().unwrap_or("");
            let status = entry["response"]["status"].as_u64().unwrap_or(0);
            let path = url
                .strip_prefix(&target.base_url)
                .unwrap_or(url)
                .split(['?', '#'])
                .next()
                .unwrap_or("");
            let operation = operation_of(&described, method, path);
            // A read at a position the read model has not reached answers the documented
            // 503 not-caught-up after the reader's bound: counted apart (class 0 below
            // would hide it; 9 names it), not as a server error.
            let documented = status == 503
                && entry["response"]["content"]["text"]
                    .as_str()
                    .is_some_and(|text| text.contains(NOT_CAUGHT_UP));
            let class = if documented {
                NOT_CAUGHT_UP_CLASS
            } else {
                u16::try_from(status / 100).unwrap_or(0)
            };
            *per_operation
                .entry(operation)
                .or_default()
                .entry(class)
                .or_default() += 1;
        }
        Ok(Self {
            label: target.label.clone(),
            per_operation,
            ..Self::default()
        })
    }

    fn requests(&self) -> u64 {
        self.per_operation.values().flat_map(|c| c.values()).sum()
    }

    fn server_errors(&self) -> u64 {
        self.per_operation.values().filter_map(|c| c.get(&5)).sum()
    }

    fn passed(&self) -> bool {
        self.exit_ok && self.server_errors() == 0 && self.failures.is_empty()
    }

    fn render(&self) -> String {
        let mut text = String::new();
        let verdict = if self.passed() { "ok" } else { "FAILED" };
        let _ = writeln!(
            text,
            "{}: {} requests, {} 5xx, {:.0}s, {verdict}",
            self.label,
            self.requests(),
            self.server_errors(),
            self.seconds
        );
        for (operation, classes) in &self.per_operation {
            let total: u64 = classes.values().sum();
            let by_class: Vec<String> = classes
                .iter()
                .map(|(class, n)| match *class {
                    0 => format!("{n} no answer"),
                    NOT_CAUGHT_UP_CLASS => format!("{n} 503 not-caught-up (documented)"),
                    c => format!("{n} {c}xx"),
                })
                .collect();
            let _ = writeln!(
                text,
                "    {operation:<40} {total:>6}  ({})",
                by_class.join(", ")
            );
        }
        for failure in &self.failures {
            let _ = writeln!(
                text,
                "    FAILURE {} ({}x) {}",
                failure.title,
                failure.count,
                failure.operations.join(", ")
            );
        }
        if !self.exit_ok && self.failures.is_empty() {
            let _ = writeln!(
                text,
                "    schemathesis exited with an error: see its output"
            );
        }
        text
    }
}

/// The `METHOD /path/{param}` operations of a service's committed description (which a
/// test keeps equal to what the service serves).
fn described_operations(service: &Service) -> Result<Vec<(String, String)>> {
    let description = committed_description(service)?;
    let mut operations = Vec::new();
    for (path, methods) in description["paths"].as_object().into_iter().flatten() {
        for method in methods.as_object().into_iter().flatten().map(|(m, _)| m) {
            operations.push((method.to_uppercase(), path.clone()));
        }
    }
    // The description itself, which every service serves too.
    operations.push(("GET".to_owned(), "/openapi.json".to_owned()));
    Ok(operations)
}

/// `services/<name>/openapi.json`, equal to what the service serves (its test checks).
fn committed_description(service: &Service) -> Result<Value> {
    read_json(&paths::root().join(format!("services/{}/openapi.json", service.name)))
}

/// The operation a request belongs to: `GET /documents/{id}`, or the request's method on
/// the matching path marked as not described (the unsupported-method checks send those),
/// or `other` for a path of no operation.
fn operation_of(described: &[(String, String)], method: &str, path: &str) -> String {
    let trimmed = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    let matching: Vec<&(String, String)> = described
        .iter()
        .filter(|(_, template)| path_matches(template, trimmed))
        .collect();
    if let Some((m, template)) = matching.iter().find(|(m, _)| m == method) {
        return format!("{m} {template}");
    }
    match matching.first() {
        Some((_, template)) => format!("{method} {template} (not described)"),
        None => format!("{method} (a path of no operation)"),
    }
}

/// Whether `path` matches `template`, each `{param}` standing for one non-empty segment.
fn path_matches(template: &str, path: &str) -> bool {
    let expected: Vec<&str> = template.split('/').collect();
    let got: Vec<&str> = path.split('/').collect();
    expected.len() == got.len()
        && expected.iter().zip(&got).all(|(e, g)| {
            if e.starts_with('{') && e.ends_with('}') {
                !g.is_empty()
            } else {
                e == g
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn described() -> Vec<(String, String)> {
        described_operations(&platform::PRODUCER).unwrap()
    }

    #[test]
    fn requests_are_counted_by_their_operation() {
        let d = described();
        assert_eq!(operation_of(&d, "POST", "/documents"), "POST /documents");
        assert_eq!(operation_of(&d, "PUT", "/documents/"), "PUT /documents");
        assert_eq!(
            operation_of(&d, "DELETE", "/documents/%2F%00x"),
            "DELETE /documents/{id}"
        );
        assert_eq!(
            operation_of(&d, "TRACE", "/documents/7"),
            "TRACE /documents/{id} (not described)"
        );
        assert_eq!(
            operation_of(&d, "GET", "/documents/7/x"),
            "GET (a path of no operation)"
        );
        assert_eq!(
            operation_of(&d, "GET", "/openapi.json"),
            "GET /openapi.json"
        );
    }

    #[test]
    fn a_har_report_is_tallied_and_a_5xx_fails_the_run() {
        let target = Target::new(Via::Gateway, &platform::PRODUCER, "http://gw/").unwrap();
        assert_eq!(target.base_url, "http://gw/producer");
        let entry = |method: &str, path: &str, status: u16| {
            serde_json::json!({
                "request": {"method": method, "url": format!("http://gw/producer{path}")},
                "response": {"status": status},
            })
        };
        let har = serde_json::json!({"log": {"entries": [
            entry("POST", "/documents?x=1", 201),
            entry("POST", "/documents/", 415),
            entry("DELETE", "/documents/abc", 400),
            entry("DELETE", "/documents/abc", 503),
        ]}});
        let mut tally = Tally::from_har(&target, &har).unwrap();
        tally.exit_ok = true;
        assert_eq!(tally.requests(), 4);
        assert_eq!(tally.server_errors(), 1);
        assert_eq!(tally.per_operation["POST /documents"][&4], 1);
        assert!(!tally.passed(), "a 5xx passed");
        assert!(tally.render().contains("DELETE /documents/{id}"));
    }

    #[test]
    fn failures_and_errors_of_the_json_report_are_read() {
        let report = serde_json::json!({
            "failures": [{"title": "Missing header not rejected", "count": 2,
                          "operations": ["GET /documents"]}],
            "errors": [{"title": "Network Error", "count": 1}],
        });
        let found = failures(&report);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].count, 2);
        assert_eq!(found[1].title, "error: Network Error");
        assert!(failures(&serde_json::json!({"failures": [], "errors": []})).is_empty());
    }

    #[test]
    fn only_the_streaming_service_gets_a_stream_timeout() {
        let ids = ["0f8e1b4c-9a7d-4e21-8c3b-5d6f7a8b9c0d".to_owned()];
        let notifier = config_file(&platform::NOTIFIER, &ids, Path::new("run")).unwrap();
        assert!(
            notifier.contains("include-path = \"/documents\""),
            "{notifier}"
        );
        assert!(notifier.contains("\"query.documentId\" = "), "{notifier}");
        let producer = config_file(&platform::PRODUCER, &ids, Path::new("run")).unwrap();
        assert!(!producer.contains("[[operations]]"), "{producer}");
        assert!(!producer.contains("[parameters]"), "{producer}");
        let reader = config_file(&platform::READER, &ids, Path::new("run")).unwrap();
        assert!(reader.contains("\"path.id\" = "), "{reader}");
        assert!(reader.contains(&ids[0]), "{reader}");
    }
}
