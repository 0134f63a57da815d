//! `cargo xtask image --load minikube`: each image saved as a docker-archive tarball
//! and handed to `minikube image load`, which puts it into the cluster's container
//! runtime, where Kubernetes finds it without a registry.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::{Built, local_reference, podman};
use crate::{cmd, paths};

pub fn load(built: &[Built]) -> Result<()> {
    require_running()?;
    for image in built {
        let archive = save(&image.reference)?;
        eprintln!("Loading {} into minikube...", image.reference);
        cmd::run(
            Command::new("minikube")
                .args(["image", "load"])
                .arg(&archive),
        )?;
    }
    println!(
        "\nminikube has the {} images; list them with `minikube image ls | grep kafka-cqrs`.",
        built.len()
    );
    Ok(())
}

/// Fails with what to do when minikube is not installed or not running.
fn require_running() -> Result<()> {
    let Ok(out) = Command::new("minikube")
        .args(["status", "--format", "{{.Host}}"])
        .output()
    else {
        bail!(
            "cannot run `minikube`, which `--load minikube` loads the images into. Install \
             it (https://minikube.sigs.k8s.io/docs/start/), start it with `minikube start`, \
             and run the command again"
        );
    };
    let host = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if host != "Running" {
        bail!(
            "minikube is not running (its host is {:?}): start it with `minikube start` and \
             run the command again",
            if host.is_empty() { "unknown" } else { &host }
        );
    }
    Ok(())
}

/// Writes `reference` to `target/images/<name>.tar` as a docker-archive whose tag is the
/// reference itself. `podman save` would tag it `localhost/kafka-cqrs/...`, a name that
/// Kubernetes manifests saying `kafka-cqrs/...` never find; skopeo writes the name given,
/// qualified as `docker.io/kafka-cqrs/...`, which is how Kubernetes reads `kafka-cqrs/...`.
pub fn save(reference: &str) -> Result<PathBuf> {
    podman::require("skopeo")?;
    let name = reference
        .split(':')
        .next()
        .and_then(|r| r.rsplit('/').next())
        .context("an image reference has a name")?;
    let archive = paths::target_dir()
        .join("images")
        .join(format!("{name}.tar"));
    if archive.exists() {
        std::fs::remove_file(&archive)?;
    }
    cmd::run(
        podman::command("skopeo")
            .arg("copy")
            .arg("--quiet")
            .arg(format!("containers-storage:{}", local_reference(reference)))
            .arg(format!("docker-archive:{}:{reference}", archive.display())),
    )?;
    eprintln!("Saved {}", paths::display(&archive));
    Ok(archive)
}
