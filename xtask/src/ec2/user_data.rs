//! The user-data scripts of the EC2 hosts, rendered here the way Terraform's `templatefile`
//! renders them, so that the terraform checks can run `bash -n` and shellcheck on exactly
//! what a host runs, and a snapshot test pins it.
//!
//! The templates keep to the part of Terraform's template language that a few lines can
//! render: `${name}` interpolates a variable, `$${` is a literal `${`, `%%{` a literal `%{`.
//! Anything else that Terraform would read as a template (an expression in `${...}`, a
//! `%{...}` directive) is an error here, so a template cannot drift from this renderer.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::paths;

/// A user-data template and the sample values it is checked with.
#[derive(Debug, Clone, Copy)]
pub struct Template {
    /// Short name, for file names and snapshots.
    pub name: &'static str,
    /// The template, relative to the workspace root.
    pub path: &'static str,
    /// Values for every variable that the module's `templatefile` call passes.
    pub sample: &'static [(&'static str, &'static str)],
}

/// The application host's provisioning script.
pub const APP_HOST: Template = Template {
    name: "app_host",
    path: "terraform/modules/app_host/user_data.sh.tftpl",
    sample: &[
        ("environment", "blue"),
        ("repo_url", "https://git.example.com/kafka-cqrs.git"),
        ("git_ref", "main"),
        ("minikube_version", "v1.37.0"),
    ],
};

/// The TLS proxy's provisioning script (also its retarget and certificate commands).
pub const TLS_PROXY: Template = Template {
    name: "tls_proxy",
    path: "terraform/modules/tls_proxy/user_data.sh.tftpl",
    sample: &[("domain", "demo.example.com"), ("email", "ops@example.com")],
};

pub const TEMPLATES: [Template; 2] = [APP_HOST, TLS_PROXY];

impl Template {
    /// The template's text.
    pub fn source(&self) -> Result<String> {
        fs::read_to_string(paths::root().join(self.path))
            .with_context(|| format!("cannot read {}", self.path))
    }

    /// The script rendered with the sample values.
    pub fn render_sample(&self) -> Result<String> {
        let values: BTreeMap<&str, &str> = self.sample.iter().copied().collect();
        render(&self.source()?, &values).with_context(|| format!("cannot render {}", self.path))
    }
}

/// Renders `template` as Terraform's `templatefile(path, values)` does, for templates that
/// only interpolate variables by name.
pub fn render(template: &str, values: &BTreeMap<&str, &str>) -> Result<String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(at) = rest.find(['$', '%']) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let line = template[..template.len() - tail.len()]
            .matches('\n')
            .count()
            + 1;
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("%%{") {
            out.push_str("%{");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let end = after
                .find('}')
                .with_context(|| format!("line {line}: `${{` without a closing `}}`"))?;
            let name = after[..end].trim();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                bail!(
                    "line {line}: `${{{name}}}` is an expression, not a variable name; \
                     write a literal `${{` as `$${{`"
                );
            }
            let value = values
                .get(name)
                .with_context(|| format!("line {line}: no value for `${{{name}}}`"))?;
            out.push_str(value);
            rest = &after[end + 1..];
        } else if tail.starts_with("%{") {
            bail!("line {line}: template directives (`%{{`) are not supported here");
        } else {
            out.push_str(&tail[..1]);
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The variable names that `template` interpolates, in order of first use.
#[cfg(test)]
pub fn variables(template: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(at) = rest.find("${") {
        let escaped = at > 0 && rest.as_bytes()[at - 1] == b'$';
        let after = &rest[at + 2..];
        if !escaped && let Some(end) = after.find('}') {
            let name = after[..end].trim().to_string();
            if !names.contains(&name) {
                names.push(name);
            }
        }
        rest = after;
    }
    names
}

/// Writes every template rendered with its sample values under `target/ec2/user-data/`.
pub fn write_samples() -> Result<Vec<PathBuf>> {
    let dir = paths::target_dir().join("ec2").join("user-data");
    fs::create_dir_all(&dir)?;
    TEMPLATES
        .iter()
        .map(|t| {
            let path = dir.join(format!("{}.sh", t.name));
            fs::write(&path, t.render_sample()?)?;
            Ok(path)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    fn values<'a>(pairs: &[(&'a str, &'a str)]) -> BTreeMap<&'a str, &'a str> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn renders_variables_and_unescapes_literals() {
        let out = render(
            "a=${a} b='${ b }' lit=$${HOME} pct=%%{x} money=$5 100% $$",
            &values(&[("a", "1"), ("b", "two")]),
        )
        .unwrap();
        assert_eq!(out, "a=1 b='two' lit=${HOME} pct=%{x} money=$5 100% $$");
    }

    #[test]
    fn refuses_what_terraform_would_read_differently() {
        let none = values(&[]);
        for (template, says) in [
            ("${missing}", "no value for `${missing}`"),
            ("${var.x}", "is an expression"),
            ("${upper(a)}", "is an expression"),
            ("%{ if true }x%{ endif }", "directives"),
            ("line1\n${unclosed", "line 2: `${` without a closing"),
        ] {
            let error = render(template, &none).unwrap_err().to_string();
            assert!(error.contains(says), "{template:?}: {error}");
        }
    }

    #[test]
    fn lists_the_variables_a_template_uses() {
        assert_eq!(
            variables("${a} $${not} ${b} ${a}"),
            vec!["a".to_string(), "b".to_string()]
        );
    }

    #[test]
    fn samples_cover_exactly_the_template_variables() {
        for t in TEMPLATES {
            let mut used = variables(&t.source().unwrap());
            used.sort();
            let mut given: Vec<String> = t.sample.iter().map(|(k, _)| k.to_string()).collect();
            given.sort();
            assert_eq!(used, given, "{}", t.path);
        }
    }

    #[test]
    fn rendered_user_data_is_pinned_and_parses_as_bash() {
        for t in TEMPLATES {
            let script = t.render_sample().unwrap();
            insta::assert_snapshot!(format!("user_data_{}", t.name), script);
            let check = Command::new("bash")
                .args(["-n", "-c", &script])
                .output()
                .unwrap();
            assert!(
                check.status.success(),
                "{} does not parse: {}",
                t.path,
                String::from_utf8_lossy(&check.stderr)
            );
        }
    }

    /// The proxy must not buffer Server-Sent Events: every streaming route of the platform
    /// has a location with buffering off.
    #[test]
    fn the_proxy_streams_every_sse_route_unbuffered() {
        let script = TLS_PROXY.render_sample().unwrap();
        for service in platform::SERVICES {
            let Some(route) = service.route else { continue };
            if !route.streaming {
                continue;
            }
            let location = format!("location {}/ {{", route.prefix);
            let block = script
                .split(&location)
                .nth(1)
                .unwrap_or_else(|| panic!("no `{location}` in the proxy's nginx site"));
            let block = &block[..block.find('}').unwrap()];
            assert!(block.contains("proxy_buffering off;"), "{location} buffers");
            assert!(block.contains("proxy_read_timeout"), "{location} times out");
        }
    }
}
