//! Kubernetes: the kustomize tree under `deployment/kubernetes` (`base/` and one directory
//! per overlay under `overlays/`), the pinned tools that render and validate it, the parts
//! of it generated from `libs/platform` (`manifests`) and its checks without a cluster
//! (`checks`).

#![allow(dead_code)] // Until `cargo xtask test` and `deploy` use all of it.

pub mod checks;
pub mod cluster;
pub mod manifests;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{cmd, paths, tools};

/// The namespace of every object (DESIGN.md, "Additions").
pub const NAMESPACE: &str = "kafka-cqrs";

/// The overlay `cargo xtask deploy` applies by default.
pub const DEFAULT_OVERLAY: &str = "minikube";

/// kustomize, pinned in `deployment/kubernetes/tools/go.mod` (the machine's kubectl embeds
/// an older kustomize, so the project never relies on `kubectl kustomize`).
pub const KUSTOMIZE: tools::GoTool = tools::GoTool {
    name: "kustomize",
    module_dir: "deployment/kubernetes/tools",
    packages: &["sigs.k8s.io/kustomize/kustomize/v5"],
    ldflags: "",
    cold_build: "about 1 minute",
};

/// kubeconform, pinned beside kustomize.
pub const KUBECONFORM: tools::GoTool = tools::GoTool {
    name: "kubeconform",
    module_dir: "deployment/kubernetes/tools",
    packages: &["github.com/yannh/kubeconform/cmd/kubeconform"],
    ldflags: "",
    cold_build: "about 30 seconds",
};

/// `deployment/kubernetes`.
pub fn dir() -> PathBuf {
    paths::root().join("deployment/kubernetes")
}

/// The overlays under `deployment/kubernetes/overlays`, by name, sorted.
pub fn overlays() -> Result<Vec<String>> {
    let overlays = dir().join("overlays");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&overlays)
        .with_context(|| format!("cannot list {}", overlays.display()))?
    {
        let entry = entry?;
        if entry.path().join("kustomization.yaml").is_file() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// The rendered manifests of `overlay` (`kustomize build`), as one multi-document YAML.
pub fn build(overlay: &str) -> Result<String> {
    let kustomize = KUSTOMIZE.ensure()?;
    let path = dir().join("overlays").join(overlay);
    stdout(Command::new(kustomize).arg("build").arg(&path))
        .with_context(|| format!("kustomize cannot build the overlay {overlay}"))
}

/// Echoes and runs `command`, and returns what it printed; fails with its stderr unless it
/// exits with 0.
fn stdout(command: &mut Command) -> Result<String> {
    cmd::echo(command);
    let output = cmd::output(command)?;
    if !output.status.success() {
        bail!(
            "`{}` failed ({}):\n{}{}",
            cmd::shell_line(command),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    String::from_utf8(output.stdout).context("the output is not UTF-8")
}
