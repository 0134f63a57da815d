//! The "container tests" step of `cargo xtask test`: builds every image, starts podman's
//! Docker-compatible API, and runs the testcontainers smoke tests of
//! `deployment/images/smoke` against it. The tests live in their own test target that
//! `cargo test --workspace` does not run (`test = false`): without images they could
//! only fail. This step runs them explicitly, and fails (never skips) when podman,
//! buildah or an image is missing.

use std::process::Command;

use anyhow::{Context, Result, bail};

use super::podman::{self, ApiService};
use super::{Built, DEFAULT_PROFILE, local_reference, minikube};
use crate::{cmd, paths};

/// The environment variable that tells the tests which image to run for each name.
pub const IMAGES_VAR: &str = "KAFKA_CQRS_IMAGES";

/// Builds the images, checks the tarball `--load minikube` would load, starts podman's
/// API, and returns it with the test command to run while it lives.
pub fn prepare() -> Result<(ApiService, Command)> {
    prepare_for(&super::build(DEFAULT_PROFILE)?)
}

/// Like `prepare`, for images already built.
pub fn prepare_for(built: &[Built]) -> Result<(ApiService, Command)> {
    check_archive(built.last().context("no image was built")?)?;
    let api = ApiService::start()?;
    let mut cargo = Command::new("cargo");
    cargo
        .current_dir(paths::root())
        .args([
            "test",
            "--package",
            "image-smoke",
            "--test",
            "smoke",
            "--no-fail-fast",
        ])
        .env("DOCKER_HOST", api.docker_host())
        // Ryuk, testcontainers' reaper, is an image from Docker Hub; the tests remove
        // their containers themselves.
        .env("TESTCONTAINERS_RYUK_DISABLED", "true")
        .env("CONTAINERS_CONF", podman::containers_conf())
        .env(IMAGES_VAR, images_var(built));
    Ok((api, cargo))
}

/// `name=localhost/kafka-cqrs/name:tag,...` for the tests.
fn images_var(built: &[Built]) -> String {
    built
        .iter()
        .map(|b| format!("{}={}", b.image.name, local_reference(&b.reference)))
        .collect::<Vec<_>>()
        .join(",")
}

/// The docker-archive that `--load minikube` hands to minikube must be tagged with the
/// name the Kubernetes manifests use (`kafka-cqrs/...`, not `localhost/kafka-cqrs/...`):
/// this writes one and reads its manifest back.
fn check_archive(built: &Built) -> Result<()> {
    let archive = minikube::save(&built.reference)?;
    let mut tar = Command::new("tar");
    tar.arg("-xOf").arg(&archive).arg("manifest.json");
    cmd::echo(&tar);
    let out = cmd::read(&mut tar)
        .with_context(|| format!("{} has no manifest.json", paths::display(&archive)))?;
    let manifest: serde_json::Value = serde_json::from_str(&out)
        .with_context(|| format!("cannot read the manifest of {}", paths::display(&archive)))?;
    let tags = &manifest[0]["RepoTags"];
    // skopeo writes the name fully qualified; Docker, containerd and Kubernetes all read
    // `kafka-cqrs/x` as `docker.io/kafka-cqrs/x`.
    let qualified = format!("docker.io/{}", built.reference);
    if tags != &serde_json::json!([qualified]) && tags != &serde_json::json!([built.reference]) {
        bail!(
            "{} is tagged {tags}, not [{:?}]: minikube would not find it under the name \
             the manifests use",
            paths::display(&archive),
            built.reference
        );
    }
    std::fs::remove_file(&archive)?;
    eprintln!(
        "The docker-archive of {} is tagged as Kubernetes names it.",
        built.reference
    );
    Ok(())
}
