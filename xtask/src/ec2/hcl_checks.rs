//! Cross-checks of `terraform/`, read with an HCL parser: what neither tofu, tflint nor
//! checkov checks, and what ties the Terraform code to xtask and the README.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use hcl::edit::expr::{Expression as EditExpr, Traversal, TraversalOperator};
use hcl::edit::visit::{self, Visit};
use hcl::{Block, Body, Expression, ObjectKey};

use super::user_data;
use crate::paths;

/// Every directory of Terraform code.
const DIRS: [&str; 5] = [
    "modules/app_host",
    "modules/tls_proxy",
    "environments/blue",
    "environments/green",
    "environments/proxy",
];

/// A variable or output block.
#[derive(Debug)]
struct Declared {
    name: String,
    body: Body,
}

impl Declared {
    fn attr(&self, key: &str) -> Option<&Expression> {
        self.body
            .attributes()
            .find(|a| a.key.as_str() == key)
            .map(|a| &a.expr)
    }

    fn is_sensitive(&self) -> bool {
        matches!(self.attr("sensitive"), Some(Expression::Bool(true)))
    }
}

/// One directory of `.tf` files, parsed.
#[derive(Debug)]
struct Config {
    dir: String,
    /// The files' text, for the reference search.
    sources: Vec<(PathBuf, String)>,
    blocks: Vec<Block>,
}

impl Config {
    fn load(dir: &str) -> Config {
        let path = paths::root().join("terraform").join(dir);
        let mut files: Vec<PathBuf> = fs::read_dir(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "tf"))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no .tf files in {dir}");
        let mut sources = Vec::new();
        let mut blocks = Vec::new();
        for file in files {
            let text = fs::read_to_string(&file).unwrap();
            let body: Body =
                hcl::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            blocks.extend(body.into_blocks());
            sources.push((file, text));
        }
        Config {
            dir: dir.to_string(),
            sources,
            blocks,
        }
    }

    fn declared(&self, kind: &str) -> Vec<Declared> {
        self.blocks
            .iter()
            .filter(|b| b.identifier.as_str() == kind)
            .map(|b| Declared {
                name: b.labels[0].as_str().to_string(),
                body: b.body.clone(),
            })
            .collect()
    }

    /// The names `var.NAME` refers to anywhere in the directory (strings included).
    fn variable_references(&self) -> BTreeSet<String> {
        let mut refs = VarRefs::default();
        for (file, text) in &self.sources {
            let body = hcl::edit::parser::parse_body(text)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            refs.visit_body(&body);
        }
        refs.0
    }
}

/// Collects the first attribute of every `var.` traversal.
#[derive(Debug, Default)]
struct VarRefs(BTreeSet<String>);

impl Visit for VarRefs {
    fn visit_traversal(&mut self, node: &Traversal) {
        if let EditExpr::Variable(root) = &node.expr
            && root.as_str() == "var"
            && let Some(first) = node.operators.first()
            && let TraversalOperator::GetAttr(name) = first.value()
        {
            self.0.insert(name.as_str().to_string());
        }
        visit::visit_traversal(self, node);
    }
}

fn configs() -> Vec<Config> {
    DIRS.iter().map(|d| Config::load(d)).collect()
}

#[test]
fn every_variable_is_used_and_described() {
    let mut problems = Vec::new();
    for config in configs() {
        let used = config.variable_references();
        for var in config.declared("variable") {
            if !used.contains(&var.name) {
                problems.push(format!(
                    "{}: variable {} is never used",
                    config.dir, var.name
                ));
            }
            match var.attr("description") {
                Some(Expression::String(s)) if s.trim().len() > 10 => {}
                _ => problems.push(format!(
                    "{}: variable {} has no description",
                    config.dir, var.name
                )),
            }
        }
        for output in config.declared("output") {
            if !matches!(output.attr("description"), Some(Expression::String(_))) {
                problems.push(format!(
                    "{}: output {} has no description",
                    config.dir, output.name
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Names that say a value is a secret.
fn looks_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "secret",
        "token",
        "private_key",
        "access_key",
        "credential",
    ]
    .iter()
    .any(|word| name.contains(word))
}

/// Literal text that is a secret whatever its name: AWS access key ids and PEM keys.
fn secret_literal(text: &str) -> Option<&'static str> {
    let access_key = text.match_indices("AKIA").any(|(at, _)| {
        text[at + 4..]
            .chars()
            .take(16)
            .filter(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            .count()
            == 16
    });
    if access_key {
        Some("an AWS access key id")
    } else if text.contains("PRIVATE KEY-----") {
        Some("a private key")
    } else {
        None
    }
}

/// What is wrong, secret-wise, with one directory's variables and outputs.
fn secret_problems(config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    let secret_vars: BTreeSet<String> = config
        .declared("variable")
        .into_iter()
        .filter(|v| looks_secret(&v.name))
        .map(|v| v.name)
        .collect();
    for var in config.declared("variable") {
        let default = var
            .attr("default")
            .filter(|d| !matches!(d, Expression::Null));
        if looks_secret(&var.name) && (default.is_some() || !var.is_sensitive()) {
            problems.push(format!(
                "{}: variable {} looks secret: give it no default and `sensitive = true`",
                config.dir, var.name
            ));
        }
    }
    for output in config.declared("output") {
        let value = output
            .attr("value")
            .map(|v| v.to_string())
            .unwrap_or_default();
        let exposes = looks_secret(&output.name)
            || secret_vars
                .iter()
                .any(|v| value.contains(&format!("var.{v}")));
        if exposes && !output.is_sensitive() {
            problems.push(format!(
                "{}: output {} exposes a secret: mark it `sensitive = true`",
                config.dir, output.name
            ));
        }
    }
    for (file, text) in &config.sources {
        if let Some(what) = secret_literal(text) {
            problems.push(format!("{}: holds {what}", file.display()));
        }
    }
    problems
}

#[test]
fn no_secret_in_any_default_or_output() {
    let problems: Vec<String> = configs().iter().flat_map(secret_problems).collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The secret check finds what it is for (so that the test above can fail).
#[test]
fn the_secret_check_finds_secrets() {
    let text = r#"
variable "db_password" {
  description = "The database password."
  type        = string
  default     = "hunter2"
}
output "api_token" {
  description = "A token."
  value       = var.db_password
}
output "key" {
  description = "Hard-coded."
  value       = "AKIAABCDEFGHIJKLMNOP"
}
"#;
    let body: Body = hcl::from_str(text).unwrap();
    let config = Config {
        dir: "example".into(),
        sources: vec![(PathBuf::from("example/main.tf"), text.into())],
        blocks: body.into_blocks().collect(),
    };
    let problems = secret_problems(&config).join("\n");
    assert!(
        problems.contains("variable db_password looks secret"),
        "{problems}"
    );
    assert!(
        problems.contains("output api_token exposes a secret"),
        "{problems}"
    );
    assert!(problems.contains("an AWS access key id"), "{problems}");
}

/// Outputs by directory name.
fn outputs() -> BTreeMap<String, BTreeSet<String>> {
    configs()
        .into_iter()
        .map(|c| {
            let names = c.declared("output").into_iter().map(|o| o.name).collect();
            (c.dir, names)
        })
        .collect()
}

/// The README's outputs table (in "Run it on AWS"): rows like "| `url` | ... |".
fn readme_outputs() -> Vec<String> {
    let readme = fs::read_to_string(paths::root().join("README.md")).unwrap();
    let section = readme
        .split("\n## Run it on AWS")
        .nth(1)
        .expect("README.md has a \"Run it on AWS\" section");
    let section = section.split("\n## ").next().unwrap();
    let table = section
        .split("| output |")
        .nth(1)
        .expect("\"Run it on AWS\" has a table whose first column is `output`");
    table
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| l.split('`').nth(1).map(str::to_string))
        .collect()
}

#[test]
fn every_output_named_in_the_readme_exists() {
    let outputs = outputs();
    let named = readme_outputs();
    assert!(
        named.len() >= 3,
        "the README's outputs table names {named:?}"
    );
    for required in ["url", "instance_id", "log_command"] {
        assert!(
            named.contains(&required.to_string()),
            "README omits {required}"
        );
    }
    for name in named {
        for env in ["environments/blue", "environments/green"] {
            assert!(
                outputs[env].contains(&name),
                "README names output {name}, {env} lacks it"
            );
        }
    }
}

/// The outputs that `cargo xtask ec2` reads exist where it reads them.
#[test]
fn xtask_reads_outputs_that_exist() {
    let outputs = outputs();
    let app = [
        "url",
        "gateway_url",
        "instance_id",
        "private_ip",
        "security_group_id",
        "log_command",
    ];
    for env in ["environments/blue", "environments/green"] {
        for name in app {
            assert!(outputs[env].contains(name), "{env} lacks output {name}");
        }
    }
    for name in ["url", "proxy_url", "instance_id", "live_env", "log_command"] {
        assert!(
            outputs["environments/proxy"].contains(name),
            "proxy lacks output {name}"
        );
    }
}

/// Blue and green are one configuration with two names.
#[test]
fn blue_and_green_differ_only_in_their_name() {
    let dir = |env: &str| paths::root().join("terraform/environments").join(env);
    let names = |d: &Path| {
        let mut n: Vec<_> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        n.retain(|f| f.to_string_lossy().ends_with(".tf"));
        n.sort();
        n
    };
    assert_eq!(names(&dir("blue")), names(&dir("green")));
    for file in names(&dir("blue")) {
        let blue = fs::read_to_string(dir("blue").join(&file)).unwrap();
        let green = fs::read_to_string(dir("green").join(&file)).unwrap();
        assert_eq!(blue.replace("blue", "green"), green, "{file:?} differs");
    }
}

/// The `templatefile` call of a module's instance.
fn templatefile_keys(module: &str) -> Vec<String> {
    let config = Config::load(module);
    let call = config
        .blocks
        .iter()
        .filter(|b| b.identifier.as_str() == "resource")
        .flat_map(|b| b.body.attributes())
        .find_map(|a| match &a.expr {
            Expression::FuncCall(call) if call.name.name.as_str() == "templatefile" => Some(call),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{module} calls no templatefile"));
    let Expression::Object(values) = &call.args[1] else {
        panic!("{module}: templatefile's values are not an object literal");
    };
    let mut keys: Vec<String> = values
        .keys()
        .map(|k| match k {
            ObjectKey::Identifier(i) => i.as_str().to_string(),
            other => other.to_string().trim_matches('"').to_string(),
        })
        .collect();
    keys.sort();
    keys
}

/// Terraform passes each template exactly the variables it uses, which are the ones this
/// crate renders it with.
#[test]
fn templatefile_passes_exactly_what_the_template_uses() {
    for (module, template) in [
        ("modules/app_host", user_data::APP_HOST),
        ("modules/tls_proxy", user_data::TLS_PROXY),
    ] {
        let mut used = user_data::variables(&template.source().unwrap());
        used.sort();
        assert_eq!(templatefile_keys(module), used, "{module}");
    }
}

/// The sample that the snapshot renders installs the module's default minikube.
#[test]
fn the_sample_user_data_uses_the_module_defaults() {
    let config = Config::load("modules/app_host");
    for (name, sample) in user_data::APP_HOST.sample {
        let Some(var) = config
            .declared("variable")
            .into_iter()
            .find(|v| v.name == *name)
        else {
            continue;
        };
        if let Some(Expression::String(default)) = var.attr("default") {
            assert_eq!(
                default, sample,
                "sample {name} differs from the module's default"
            );
        }
    }
}

/// Every check that checkov skips says why: a comment above it in `.checkov.yaml`, or the
/// reason part of an inline `#checkov:skip=ID:reason`.
#[test]
fn every_skipped_checkov_check_says_why() {
    let config = fs::read_to_string(paths::root().join("terraform/.checkov.yaml")).unwrap();
    let lines: Vec<&str> = config.lines().collect();
    let mut skips = 0;
    for (i, line) in lines.iter().enumerate() {
        if let Some(id) = line.trim().strip_prefix("- CKV") {
            skips += 1;
            assert!(
                i > 0 && lines[i - 1].trim().starts_with('#'),
                ".checkov.yaml skips CKV{id} without a comment that says why"
            );
        }
    }
    for config in configs() {
        for (file, text) in &config.sources {
            for skip in text.split("#checkov:skip=").skip(1) {
                skips += 1;
                let line = skip.lines().next().unwrap();
                let reason = line.split_once(':').map(|(_, r)| r.trim()).unwrap_or("");
                assert!(
                    reason.len() > 10,
                    "{}: skip {line} has no reason",
                    file.display()
                );
            }
        }
    }
    assert!(skips > 0, "no skips found: has the format changed?");
}

/// The port of a security-group rule resource in a module.
fn rule_port(module: &str, rule: &str) -> u64 {
    let config = Config::load(module);
    let block = config
        .blocks
        .iter()
        .find(|b| {
            b.identifier.as_str() == "resource"
                && b.labels.len() == 2
                && b.labels[0].as_str() == "aws_vpc_security_group_ingress_rule"
                && b.labels[1].as_str() == rule
        })
        .unwrap_or_else(|| panic!("{module} has no ingress rule {rule}"));
    let port = |key: &str| match block.body.attributes().find(|a| a.key.as_str() == key) {
        Some(a) => match &a.expr {
            Expression::Number(n) => n.as_u64().unwrap(),
            other => panic!("{module} {rule}.{key} is {other:?}, not a number"),
        },
        None => panic!("{module} {rule} has no {key}"),
    };
    assert_eq!(
        port("from_port"),
        port("to_port"),
        "{module} {rule}: one port"
    );
    port("from_port")
}

/// The hosts expose the cluster's ingress port, and the proxy and the firewall use that
/// same port: the platform's table, not a number typed again.
#[test]
fn the_gateway_port_is_the_platforms() {
    let port = u64::from(platform::gateway::CLUSTER_PORT);
    assert_eq!(rule_port("modules/app_host", "http"), port);
    assert_eq!(rule_port("modules/tls_proxy", "to_environment"), port);
    let host = user_data::APP_HOST.render_sample().unwrap();
    assert!(
        host.contains(&format!("TCP-LISTEN:{port},")),
        "the host listens elsewhere"
    );
    assert!(
        host.contains(&format!("TCP:$ingress_ip:{port}")),
        "the ingress is elsewhere"
    );
    let proxy = user_data::TLS_PROXY.render_sample().unwrap();
    assert!(
        proxy.contains(&format!("server $target:{port};")),
        "the proxy forwards elsewhere"
    );
}
