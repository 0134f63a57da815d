//! Kubernetes: the kustomize tree under `deployment/kubernetes` (`base/` and one directory
//! per overlay under `overlays/`), the pinned tools that render, validate and apply it, the
//! parts of it generated from `libs/platform` (`manifests`), its checks without a cluster
//! (`checks`) and a throwaway cluster that tests it (`cluster`). What `cargo xtask deploy`
//! and the cluster test share is here: kubectl on a context, and applying an overlay.

pub mod checks;
pub mod cluster;
pub mod manifests;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize as _;
use serde_json::Value;

use crate::{cmd, paths, tools};

/// The namespace of every object.
pub const NAMESPACE: &str = "kafka-cqrs";

/// The overlay `cargo xtask deploy` applies by default.
pub const DEFAULT_OVERLAY: &str = "minikube";

/// The Kubernetes version, as a literal for the version stamps below.
macro_rules! kubernetes_version {
    () => {
        "1.37.2"
    };
}

/// The one Kubernetes version of the project: kubectl's and the test cluster's control
/// plane (`deployment/kubernetes/cluster-tools/go.mod` requires it; a test compares), and
/// the schemas of its minor version that kubeconform validates the manifests against.
pub const KUBERNETES_VERSION: &str = kubernetes_version!();

/// Version stamps: without them the programs report v0.0.0 and kubectl refuses to talk to
/// the server. `-s -w` leaves out debug information (smaller, faster to link).
const VERSION_LDFLAGS: &str = concat!(
    "-s -w -X k8s.io/component-base/version.gitVersion=v",
    kubernetes_version!(),
    " -X k8s.io/component-base/version.gitMajor=1",
    " -X k8s.io/component-base/version.gitMinor=37",
    " -X k8s.io/component-base/version.gitTreeState=clean",
    " -X k8s.io/client-go/pkg/version.gitVersion=v",
    kubernetes_version!(),
);

/// kubectl of [`KUBERNETES_VERSION`], on its own so that `cargo xtask deploy` builds no
/// server (the control plane is `cluster::CONTROL_PLANE`, from the same module).
pub const KUBECTL: tools::GoTool = tools::GoTool {
    name: "kubectl",
    module_dir: "deployment/kubernetes/cluster-tools",
    packages: &["k8s.io/kubernetes/cmd/kubectl"],
    ldflags: VERSION_LDFLAGS,
    cold_build: "about 3 minutes (seconds after the control plane)",
};

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

/// `kustomize build` of a kustomization directory. The base makes ConfigMaps of the files
/// under `observability/`, which the local system reads too: kustomize loads files outside
/// a kustomization's directory only without its load restrictor.
fn kustomize(path: &Path) -> Result<String> {
    let kustomize = KUSTOMIZE.ensure()?;
    let mut command = Command::new(kustomize);
    command
        .args(["build", "--load-restrictor", "LoadRestrictionsNone"])
        .arg(path);
    cmd::echo(&command);
    cmd::read(&mut command)
}

/// The rendered manifests of `overlay` (`kustomize build`), as one multi-document YAML.
pub fn build(overlay: &str) -> Result<String> {
    kustomize(&dir().join("overlays").join(overlay))
        .with_context(|| format!("kustomize cannot build the overlay {overlay}"))
}

/// The rendered manifests of `overlay` with the project's images tagged `tag` (the
/// `<version>-<git revision>` of the images `cargo xtask image` built): a kustomization
/// under `target/kube/` that takes the overlay as its base and sets the tag.
pub fn build_tagged(overlay: &str, tag: &str) -> Result<String> {
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
    kustomize(&wrapper)
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

/// Runs `command` with `input` on its stdin and returns its output.
pub fn with_stdin(command: &mut Command, input: &str) -> Result<std::process::Output> {
    cmd::echo(command);
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start `{}`", cmd::shell_line(command)))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    // Written from a thread: a large input must not block while the output fills its pipe.
    let input = input.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output()?;
    let written = writer
        .join()
        .map_err(|_| anyhow!("the thread writing to a command's stdin panicked"))?;
    // A command that failed may not have read all of its input: its message says why.
    if output.status.success() {
        written.with_context(|| format!("cannot write to `{}`", cmd::shell_line(command)))?;
    }
    Ok(output)
}

/// The pinned kubectl on one kubeconfig context.
#[derive(Debug)]
pub struct Kubectl {
    program: PathBuf,
    /// The kubeconfig file; `None` for kubectl's default ($KUBECONFIG, ~/.kube/config).
    pub kubeconfig: Option<PathBuf>,
    pub context: String,
}

impl Kubectl {
    /// Builds kubectl if needed and resolves the context (the named or the current one),
    /// failing with what to do when there is none.
    pub fn new(kubeconfig: Option<&Path>, context: Option<&str>) -> Result<Kubectl> {
        if let Some(file) = kubeconfig
            && !file.is_file()
        {
            bail!("the kubeconfig {} does not exist", file.display());
        }
        let mut kubectl = Kubectl {
            program: KUBECTL.ensure()?,
            kubeconfig: kubeconfig.map(Path::to_path_buf),
            context: String::new(),
        };
        let contexts = kubectl.quiet(&["config", "get-contexts", "-o", "name"])?;
        let contexts: Vec<&str> = contexts.lines().collect();
        let list = if contexts.is_empty() {
            "none".to_owned()
        } else {
            contexts.join(", ")
        };
        kubectl.context = match context {
            Some(context) if contexts.contains(&context) => context.to_owned(),
            Some(context) => bail!(
                "the kubeconfig has no context `{context}` (it has: {list}). Start the cluster \
                 (`minikube start` creates the context `minikube`) or pass --kubeconfig"
            ),
            None => match kubectl.quiet(&["config", "current-context"]) {
                Ok(current) if !current.trim().is_empty() => current.trim().to_owned(),
                _ => bail!(
                    "the kubeconfig has no current context (contexts: {list}). Start a \
                     cluster (`minikube start`) or pass --context"
                ),
            },
        };
        Ok(kubectl)
    }

    /// kubectl with the kubeconfig and context set.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        if let Some(file) = &self.kubeconfig {
            command.arg("--kubeconfig").arg(file);
        }
        if !self.context.is_empty() {
            command.args(["--context", &self.context]);
        }
        command
    }

    /// Runs kubectl quietly and returns its stdout; fails with its stderr.
    pub fn quiet(&self, args: &[&str]) -> Result<String> {
        let mut command = self.command();
        command.args(args);
        cmd::read(&mut command)
    }

    /// Echoes and runs kubectl with `yaml` on stdin; fails with its stderr.
    pub fn with_manifests(&self, args: &[&str], yaml: &str) -> Result<()> {
        let mut command = self.command();
        command.args(args);
        let output = with_stdin(&mut command, yaml)?;
        eprint!("{}", String::from_utf8_lossy(&output.stdout));
        if !output.status.success() {
            bail!(
                "`{}` failed:\n{}",
                cmd::shell_line(&command),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }
}

/// Applies rendered manifests and waits for every rollout and Job. The Jobs they hold are
/// deleted first, with their pods: a Job's pod template cannot change in place (`kubectl
/// apply` of a changed one fails, "field is immutable"), and a Job that failed stays
/// failed. So every deploy runs its Jobs afresh, which they allow (they are idempotent).
pub fn apply(kubectl: &Kubectl, manifests: &str, timeout: Duration) -> Result<()> {
    let jobs: Vec<String> = parse(manifests)?
        .iter()
        .filter(|o| o["kind"] == "Job")
        .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_owned))
        .collect();
    if !jobs.is_empty() {
        let mut delete = kubectl.command();
        delete
            .args(["-n", NAMESPACE, "delete", "job", "--ignore-not-found"])
            .args(["--cascade=foreground", "--wait"])
            .args(&jobs);
        cmd::run(&mut delete).context("cannot delete the Jobs of the last deploy")?;
    }
    kubectl.with_manifests(&["apply", "-f", "-"], manifests)?;
    wait_for_rollouts(kubectl, timeout)
}

/// Deletes what [`apply`] applied, the namespace with everything in it included, and waits
/// until it is gone.
pub fn delete(kubectl: &Kubectl, manifests: &str) -> Result<()> {
    kubectl.with_manifests(
        &["delete", "--ignore-not-found", "--wait", "-f", "-"],
        manifests,
    )
}

/// Waits for every Deployment and StatefulSet of the namespace, then every Job, with
/// kubectl's own progress lines; fails with the objects' state after `timeout`.
fn wait_for_rollouts(kubectl: &Kubectl, timeout: Duration) -> Result<()> {
    let ns = NAMESPACE;
    let workloads = kubectl.quiet(&["-n", ns, "get", "deployments,statefulsets", "-o", "name"])?;
    let jobs = kubectl.quiet(&["-n", ns, "get", "jobs", "-o", "name"])?;
    let workloads: Vec<&str> = workloads.lines().collect();
    let jobs: Vec<&str> = jobs.lines().collect();
    if workloads.is_empty() {
        bail!("the namespace {ns} has no Deployment or StatefulSet after the apply");
    }
    let started = Instant::now();
    let total = workloads.len() + jobs.len();
    for (i, name) in workloads.iter().chain(&jobs).enumerate() {
        let left = timeout.saturating_sub(started.elapsed()).as_secs().max(1);
        eprintln!(
            "[{}/{total}] waiting for {name} ({:.0}s so far)",
            i + 1,
            started.elapsed().as_secs_f64()
        );
        let mut command = kubectl.command();
        command.args(["-n", ns]);
        let timeout = format!("--timeout={left}s");
        if name.starts_with("job") {
            command.args(["wait", "--for=condition=complete", &timeout, name]);
        } else {
            command.args(["rollout", "status", &timeout, name]);
        }
        if let Err(error) = cmd::run(&mut command) {
            let state = kubectl
                .quiet(&[
                    "-n",
                    ns,
                    "get",
                    "pods,deployments,statefulsets,jobs",
                    "-o",
                    "wide",
                ])
                .unwrap_or_default();
            bail!(
                "{error:#}\n{name} is not ready. What the namespace has now:\n{state}\n\
                 Look closer with `kubectl -n {ns} describe {name}` and `kubectl -n {ns} get \
                 events --sort-by=.lastTimestamp`"
            );
        }
    }
    eprintln!(
        "All {total} rollouts are complete ({:.0}s).",
        started.elapsed().as_secs_f64()
    );
    Ok(())
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

    /// The version stamps and the Go module that builds kubectl and the control plane name
    /// the one version.
    #[test]
    fn kubernetes_is_one_version() {
        let go_mod = std::fs::read_to_string(dir().join("cluster-tools/go.mod")).unwrap();
        assert!(
            go_mod.contains(&format!("k8s.io/kubernetes v{KUBERNETES_VERSION}")),
            "cluster-tools/go.mod does not require Kubernetes {KUBERNETES_VERSION}"
        );
        let minor = KUBERNETES_VERSION.split('.').nth(1).unwrap();
        assert!(VERSION_LDFLAGS.contains(&format!("gitMinor={minor} ")));
    }
}
