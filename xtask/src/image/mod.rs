//! `cargo xtask image`: one container image per service and one for the GUI, built with
//! buildah `FROM scratch` around static musl binaries (`deployment/images/Containerfile`),
//! tagged `kafka-cqrs/<name>:<version>-<git revision>`, and optionally loaded into
//! minikube. The other modules run those images: the smoke tests of `cargo xtask test`
//! (`smoke`) and `cargo xtask up --containers` (`containers`).

mod minikube;
pub mod podman;
pub mod smoke;
pub mod third_party;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::{cmd, gui, paths};

/// The Rust target of the images' binaries: musl links statically, so a `FROM scratch`
/// image needs nothing but the binary.
pub const TARGET: &str = "x86_64-unknown-linux-musl";

/// The Cargo profile of the images unless asked otherwise (see `[profile.image]` in the
/// workspace's Cargo.toml: release, stripped).
pub const DEFAULT_PROFILE: &str = "image";

/// Options of `cargo xtask image`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Load the images into a cluster after building them (only `minikube`: saved as
    /// docker-archive tarballs and handed to `minikube image load`).
    #[arg(long, value_name = "CLUSTER", value_parser = ["minikube"])]
    pub load: Option<String>,
    /// Build the binaries with Cargo's release profile (shorthand for --profile release).
    #[arg(long, conflicts_with = "profile")]
    pub release: bool,
    /// The Cargo profile of the binaries: `image` (release, stripped) unless given.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Then run the images' smoke tests (the "container tests" step of `cargo xtask
    /// test`; they need the local Kafka and Cassandra).
    #[arg(long)]
    pub test: bool,
    /// Build only the local stand-ins of the third-party images (Kafka, Cassandra,
    /// Prometheus, Jaeger), which cannot be pulled here: a Debian rootfs (mmdebstrap) with
    /// the same jars as the local servers, or the same Go programs, FROM scratch.
    #[arg(long, conflicts_with_all = ["load", "test"])]
    pub third_party: bool,
}

impl Args {
    fn profile(&self) -> &str {
        if self.release {
            "release"
        } else {
            self.profile.as_deref().unwrap_or(DEFAULT_PROFILE)
        }
    }
}

/// What goes into one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Image {
    /// The image's name (`kafka-cqrs/<name>`), as in the platform table.
    pub name: &'static str,
    /// The Cargo package and binary that becomes `/app`.
    pub package: &'static str,
    /// The port the program listens on unless told otherwise.
    pub port: u16,
    /// Whether the GUI's built files go in (under /srv/gui).
    pub gui: bool,
}

/// Every image: the four services and the GUI, from the platform table.
pub fn images() -> Vec<Image> {
    let services = platform::SERVICES.iter().map(|s| Image {
        name: s.name,
        package: s.name,
        port: s.port,
        gui: false,
    });
    services
        .chain([Image {
            name: platform::gateway::GUI_NAME,
            package: "gui-server",
            port: platform::gateway::GUI_PORT,
            gui: true,
        }])
        .collect()
}

/// The provenance of a build: the same for every image of one run.
#[derive(Debug, Clone)]
pub struct Provenance {
    /// The full commit the sources came from.
    pub revision: String,
    /// What the tag carries: the short commit, `-dirty` when the work tree has changes
    /// (the image then holds sources no commit has).
    pub short_revision: String,
    /// `git remote get-url origin`, when there is one.
    pub source: Option<String>,
}

impl Provenance {
    pub fn of_checkout() -> Result<Self> {
        let git = |args: &[&str]| -> Result<String> {
            let mut command = Command::new("git");
            command.current_dir(paths::root()).args(args);
            let out = cmd::read(&mut command).context(
                "images are tagged with the git revision, so build them from a git checkout",
            )?;
            Ok(out.trim().to_owned())
        };
        let revision = git(&["rev-parse", "HEAD"])?;
        let mut short_revision = git(&["rev-parse", "--short", "HEAD"])?;
        if !git(&["status", "--porcelain", "--untracked-files=no"])?.is_empty() {
            short_revision.push_str("-dirty");
        }
        let source = git(&["remote", "get-url", "origin"]).ok();
        Ok(Self {
            revision,
            short_revision,
            source,
        })
    }
}

/// The tag `cargo xtask image` gives this checkout's images (`<version>-<revision>`; the
/// services share the workspace's version), which `cargo xtask deploy` runs by default.
pub fn checkout_tag() -> Result<String> {
    let provenance = Provenance::of_checkout()?;
    let versions = package_versions()?;
    let service = platform::SERVICES[0].name;
    let version = versions
        .iter()
        .find(|(name, _)| name == service)
        .map(|(_, version)| version.clone())
        .with_context(|| format!("`cargo metadata` lists no package {service}"))?;
    Ok(tag(&version, &provenance))
}

/// `<version>-<revision>`: the tag of every image of one build.
fn tag(version: &str, provenance: &Provenance) -> String {
    format!("{version}-{}", provenance.short_revision)
}

/// `kafka-cqrs/<name>:<version>-<revision>`: what Kubernetes manifests name. No `:latest`
/// tag on purpose: Kubernetes always pulls `:latest` (its default pull policy), which
/// fails for an image that was loaded rather than pushed, and a tag should say which
/// sources an image holds.
pub fn reference(name: &str, version: &str, provenance: &Provenance) -> String {
    format!("kafka-cqrs/{name}:{}", tag(version, provenance))
}

/// Where podman and buildah keep a locally built image: short names live under
/// `localhost/`.
pub fn local_reference(reference: &str) -> String {
    format!("localhost/{reference}")
}

/// An image that was built.
#[derive(Debug, Clone)]
pub struct Built {
    pub image: Image,
    /// `kafka-cqrs/<name>:<tag>`.
    pub reference: String,
    pub bytes: u64,
}

pub fn run(args: &Args) -> Result<()> {
    if args.third_party {
        return third_party::build().map(drop);
    }
    let built = build(args.profile())?;
    if args.test {
        let (_podman_api, mut tests) = smoke::prepare_for(&built)?;
        cmd::run(&mut tests)?;
    }
    if let Some(cluster) = &args.load {
        match cluster.as_str() {
            "minikube" => minikube::load(&built)?,
            other => bail!("cannot load images into {other}: only minikube is supported"),
        }
    }
    Ok(())
}

/// Builds the binaries, the GUI and every image; prints each image's size.
pub fn build(profile: &str) -> Result<Vec<Built>> {
    let started = Instant::now();
    podman::require("buildah")?;
    podman::require("podman")?;
    let provenance = Provenance::of_checkout()?;
    let versions = package_versions()?;
    let images = images();
    build_binaries(profile, &images)?;
    gui::build()?;

    let mut built = Vec::new();
    for image in images {
        let version = versions
            .iter()
            .find(|(name, _)| name == image.package)
            .map(|(_, v)| v.as_str())
            .with_context(|| format!("no package {} in the workspace", image.package))?;
        let reference = reference(image.name, version, &provenance);
        let context = stage(&image, profile)?;
        let took = Instant::now();
        let mut bud = podman::command("buildah");
        bud.args(["bud", "--quiet", "--layers=false", "--file"])
            .arg(paths::root().join("deployment/images/Containerfile"))
            .arg("--build-arg")
            .arg(format!("PORT={}", image.port))
            .arg("--tag")
            .arg(&reference);
        for (key, value) in annotations(&image, version, &provenance) {
            // Labels land in the image config (what `podman inspect` and Docker show,
            // and what survives a docker-archive); annotations in the OCI manifest.
            bud.arg("--label").arg(format!("{key}={value}"));
            bud.arg("--annotation").arg(format!("{key}={value}"));
        }
        bud.arg(&context);
        cmd::run(bud.stdout(std::process::Stdio::null()))?;
        let bytes = size(&reference)?;
        eprintln!(
            "{reference}: {:.1} MiB, built in {:.1}s",
            mib(bytes),
            took.elapsed().as_secs_f64()
        );
        built.push(Built {
            image,
            reference,
            bytes,
        });
    }
    println!(
        "\n{} images ({} profile, {:.0}s):",
        built.len(),
        profile,
        started.elapsed().as_secs_f64()
    );
    for b in &built {
        println!("  {:<48} {:>6.1} MiB", b.reference, mib(b.bytes));
    }
    Ok(built)
}

/// The OCI annotations every image carries.
fn annotations(image: &Image, version: &str, provenance: &Provenance) -> Vec<(String, String)> {
    let key = |k: &str| format!("org.opencontainers.image.{k}");
    let mut pairs = vec![
        (key("title"), format!("kafka-cqrs {}", image.name)),
        (key("version"), version.to_owned()),
        (key("revision"), provenance.revision.clone()),
    ];
    if let Some(source) = &provenance.source {
        pairs.push((key("source"), source.clone()));
    }
    pairs
}

/// Builds the static binaries of every image in one Cargo run.
fn build_binaries(profile: &str, images: &[Image]) -> Result<()> {
    ensure_target()?;
    podman::require_musl_gcc()?;
    eprintln!("Building the static binaries ({TARGET}, profile {profile})...");
    let mut cargo = Command::new("cargo");
    cargo
        .current_dir(paths::root())
        .args(["build", "--target", TARGET, "--profile", profile])
        // librdkafka and zlib are C, compiled by their build scripts: with musl's gcc
        // wrapper (headers and libc of musl), so that they link into a static binary.
        // librdkafka's ./configure reads plain CC; the cc crate prefers the per-target
        // variables, which keep the host's build scripts on the system compiler.
        .env("CC", "musl-gcc")
        .env("CC_x86_64_unknown_linux_musl", "musl-gcc")
        .env("CC_x86_64_unknown_linux_gnu", "cc");
    for image in images {
        cargo.args(["--package", image.package, "--bin", image.package]);
    }
    cmd::run(&mut cargo)
}

/// Installs the musl target through rustup when it is missing.
fn ensure_target() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    match installed {
        Ok(out) if out.status.success() => {
            if String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.trim() == TARGET)
            {
                return Ok(());
            }
            cmd::run(Command::new("rustup").args(["target", "add", TARGET]))
        }
        _ => bail!(
            "cannot run `rustup`, which installs the {TARGET} target of the images' static \
             binaries. Install the target with your Rust toolchain's means and try again"
        ),
    }
}

/// The built binary of `package`.
fn binary(package: &str, profile: &str) -> PathBuf {
    // Cargo names the directory of the dev profile `debug`.
    let dir = if profile == "dev" { "debug" } else { profile };
    paths::target_dir().join(TARGET).join(dir).join(package)
}

/// Fills `target/images/<name>/rootfs` with what goes into the image.
fn stage(image: &Image, profile: &str) -> Result<PathBuf> {
    let context = paths::target_dir().join("images").join(image.name);
    if context.exists() {
        fs::remove_dir_all(&context)
            .with_context(|| format!("cannot empty {}", paths::display(&context)))?;
    }
    let rootfs = context.join("rootfs");
    fs::create_dir_all(&rootfs)?;
    let from = binary(image.package, profile);
    fs::copy(&from, rootfs.join("app"))
        .with_context(|| format!("cannot copy {}", paths::display(&from)))?;
    set_mode(&rootfs.join("app"), 0o755)?;
    if image.gui {
        let dist = gui::dir().join("dist");
        if !dist.join("index.html").exists() {
            bail!(
                "{} has no index.html: the GUI build failed",
                paths::display(&dist)
            );
        }
        copy_tree(&dist, &rootfs.join("srv/gui"))?;
    }
    Ok(context)
}

/// Copies a directory tree, readable by everyone (the image's user is not its owner).
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    set_mode(to, 0o755)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target)?;
            set_mode(&target, 0o644)?;
        }
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", paths::display(path)))
}

/// The image's size as podman reports it (the uncompressed layers).
fn size(reference: &str) -> Result<u64> {
    let out = cmd::output(podman::command("podman").args([
        "image",
        "inspect",
        "--format",
        "{{.Size}}",
        reference,
    ]))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .parse()
        .with_context(|| format!("podman reports no size for {reference}: {text}"))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The version of every workspace package, from `cargo metadata`.
fn package_versions() -> Result<Vec<(String, String)>> {
    let mut cargo = Command::new("cargo");
    cargo.current_dir(paths::root()).args([
        "metadata",
        "--no-deps",
        "--format-version",
        "1",
        "--offline",
    ]);
    let out = cmd::read(&mut cargo)?;
    let json: serde_json::Value =
        serde_json::from_str(&out).context("cannot read `cargo metadata`")?;
    let packages = json["packages"]
        .as_array()
        .context("`cargo metadata` lists no packages")?;
    Ok(packages
        .iter()
        .filter_map(|p| {
            Some((
                p["name"].as_str()?.to_owned(),
                p["version"].as_str()?.to_owned(),
            ))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_image_per_service_and_one_for_the_gui() {
        let names: Vec<&str> = images().iter().map(|i| i.name).collect();
        let expected: Vec<&str> = platform::SERVICES
            .iter()
            .map(|s| s.name)
            .chain([platform::gateway::GUI_NAME])
            .collect();
        assert_eq!(names, expected);
        let gui = images().into_iter().find(|i| i.gui).unwrap();
        assert_eq!(gui.port, platform::gateway::GUI_PORT);
        assert_eq!(gui.package, "gui-server");
    }

    #[test]
    fn references_carry_version_and_revision() {
        let provenance = Provenance {
            revision: "0123456789abcdef".into(),
            short_revision: "0123456".into(),
            source: None,
        };
        assert_eq!(
            reference("producer", "0.1.0", &provenance),
            "kafka-cqrs/producer:0.1.0-0123456"
        );
        assert_eq!(
            local_reference("kafka-cqrs/producer:0.1.0-0123456"),
            "localhost/kafka-cqrs/producer:0.1.0-0123456"
        );
    }

    #[test]
    fn annotations_name_version_revision_and_source() {
        let provenance = Provenance {
            revision: "0123456789abcdef".into(),
            short_revision: "0123456".into(),
            source: Some("https://example.invalid/kafka-cqrs.git".into()),
        };
        let image = images()[0];
        let keys: Vec<String> = annotations(&image, "0.1.0", &provenance)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            keys,
            [
                "org.opencontainers.image.title",
                "org.opencontainers.image.version",
                "org.opencontainers.image.revision",
                "org.opencontainers.image.source",
            ]
        );
    }
}
