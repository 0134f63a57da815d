//! Kubernetes: the kustomize tree under `deployment/kubernetes` (`base/` and one directory
//! per overlay under `overlays/`), the pinned tools that render and validate it, the parts
//! of it generated from `libs/platform` (`manifests`) and its checks without a cluster
//! (`checks`).

pub mod checks;
pub mod cluster;
pub mod manifests;

use std::path::{Path, PathBuf};
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
    cold_build: "1 to 5 minutes",
};

/// kubeconform, pinned beside kustomize.
pub const KUBECONFORM: tools::GoTool = tools::GoTool {
    name: "kubeconform",
    module_dir: "deployment/kubernetes/tools",
    packages: &["github.com/yannh/kubeconform/cmd/kubeconform"],
    ldflags: "",
    cold_build: "1 to 6 minutes",
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

/// The rendered manifests of `overlay` with the project's images tagged `tag` (the
/// `<version>-<git revision>` of the images `cargo xtask image` built): a kustomization
/// under `target/kube/` that takes the overlay as its base and sets the tag.
pub fn build_tagged(overlay: &str, tag: &str) -> Result<String> {
    let kustomize = KUSTOMIZE.ensure()?;
    let wrapper = paths::target_dir()
        .join("kube")
        .join(format!("{overlay}-tagged"));
    std::fs::create_dir_all(&wrapper)?;
    // kustomize takes only relative paths to a base.
    let base = relative(
        &wrapper.canonicalize()?,
        &dir().join("overlays").join(overlay).canonicalize()?,
    );
    let mut kustomization = format!(
        "# Written by cargo xtask: the overlay {overlay} with the images' tag {tag}.\n\
         apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
         resources:\n  - {}\nimages:\n",
        base.display()
    );
    for image in manifests::project_images() {
        kustomization.push_str(&format!("  - name: {image}\n    newTag: \"{tag}\"\n"));
    }
    std::fs::write(wrapper.join("kustomization.yaml"), kustomization)?;
    stdout(Command::new(kustomize).arg("build").arg(&wrapper))
        .with_context(|| format!("kustomize cannot build the overlay {overlay} tagged {tag}"))
}

/// The path of `to` relative to the directory `from` (both absolute).
fn relative(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<_> = from.components().collect();
    let to: Vec<_> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut path = PathBuf::new();
    for _ in common..from.len() {
        path.push("..");
    }
    for part in &to[common..] {
        path.push(part);
    }
    path
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_lead_from_one_directory_to_another() {
        assert_eq!(
            relative(
                Path::new("/w/target/kube/m"),
                Path::new("/w/repo/overlays/m")
            ),
            PathBuf::from("../../../repo/overlays/m")
        );
        assert_eq!(
            relative(Path::new("/a"), Path::new("/a/b")),
            PathBuf::from("b")
        );
    }

    #[test]
    fn a_tagged_build_tags_every_project_image_and_nothing_else() {
        let rendered = build_tagged(DEFAULT_OVERLAY, "0.1.0-abc1234").unwrap();
        for image in manifests::project_images() {
            assert!(
                rendered.contains(&format!("image: {image}:0.1.0-abc1234\n")),
                "{image} is not tagged"
            );
        }
        for line in rendered.lines().filter(|l| l.contains("image: ")) {
            assert_eq!(
                line.contains("image: kafka-cqrs/"),
                line.ends_with(":0.1.0-abc1234"),
                "{line}"
            );
        }
    }
}
