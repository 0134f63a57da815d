//! `cargo xtask image --third-party`: local stand-ins for the third-party images the
//! Kubernetes manifests name (apache/kafka, cassandra, prom/prometheus,
//! jaegertracing/jaeger), which cannot be pulled here. Each holds the same software version
//! as the manifests and reproduces the part of the upstream image's contract that the
//! manifests rely on (user and uid, paths of programs and configuration, what the
//! entrypoint reads); the files and their Containerfiles are in
//! `deployment/cluster/third-party/`.
//!
//! Kafka and Cassandra run on a Debian rootfs with OpenJDK 17 made by mmdebstrap from
//! Debian's packages, with the jars fetched from Maven Central by the same pom as the
//! local servers'; Prometheus and Jaeger are static Go builds in FROM-scratch images.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use super::podman;
use crate::infra::fetch::pom_property;
use crate::tools::GoBuild;
use crate::{cmd, paths, tools};

/// Prometheus of the manifests' version (v3.5.0 is the Go module's v0.305.0).
const PROMETHEUS: GoBuild = GoBuild {
    name: "prometheus-standin",
    module_dir: "deployment/cluster/third-party/prometheus",
    packages: &["github.com/prometheus/prometheus/cmd/prometheus"],
    cgo: "0",
    tags: "",
    ldflags: "-s -w -X github.com/prometheus/common/version.Version=3.5.0",
    cold_build: "about 6 minutes",
};

/// The local system's Jaeger (same module), static for a FROM-scratch image.
const JAEGER: GoBuild = GoBuild {
    name: "jaeger-static",
    module_dir: "observability/jaeger",
    packages: &["github.com/jaegertracing/jaeger/cmd/jaeger"],
    cgo: "0",
    tags: "",
    ldflags: "-s -w",
    cold_build: "about 6 minutes",
};

/// The Debian release and packages of the JVM stand-ins' rootfs.
const DEBIAN_SUITE: &str = "bookworm";
const DEBIAN_PACKAGES: &str = "openjdk-17-jre-headless";
const DEBIAN_MIRROR: &str = "http://deb.debian.org/debian";

/// The base image of the JVM stand-ins.
const JRE_IMAGE: &str = "kafka-cqrs/third-party-jre:bookworm";

/// One stand-in: its image, and the upstream image it stands in for.
#[derive(Debug, Clone)]
pub struct StandIn {
    pub reference: String,
    pub upstream: &'static str,
}

/// Builds every stand-in; returns them.
pub fn build() -> Result<Vec<StandIn>> {
    let started = Instant::now();
    podman::require("buildah")?;
    podman::require("podman")?;
    tools::require_program("mmdebstrap", "mmdebstrap")?;
    tools::require_program("mvn", "maven")?;
    let pom_path = paths::local_config_dir().join("pom.xml");
    let pom = fs::read_to_string(&pom_path)
        .with_context(|| format!("cannot read {}", pom_path.display()))?;
    let version = |name: &str| {
        pom_property(&pom, &format!("{name}.version"))
            .with_context(|| format!("{} names no {name}.version", paths::display(&pom_path)))
    };
    let kafka_version = version("kafka")?;
    let cassandra_version = version("cassandra")?;
    let dir = paths::target_dir().join("third-party");
    fs::create_dir_all(&dir)?;

    let jre = jre_image(&dir)?;
    let mut built = Vec::new();

    // Kafka: the jars, our scripts of the names the manifests call, uid 1000.
    let context = fresh(&dir.join("kafka"))?;
    copy_tree(&source("kafka/bin"), &context.join("bin"))?;
    copy_tree(&source("kafka/config"), &context.join("config"))?;
    fs::create_dir_all(context.join("data"))?;
    fetch_jars("kafka", &pom_path, &context.join("libs"))?;
    built.push(StandIn {
        reference: bud(
            "kafka",
            &format!("kafka-cqrs/third-party-kafka:{kafka_version}"),
            &context,
            Some(&jre),
        )?,
        upstream: "apache/kafka",
    });

    // Cassandra: the jars, the local configuration with the image's paths, our entrypoint.
    let context = fresh(&dir.join("cassandra"))?;
    copy_tree(&source("cassandra/bin"), &context.join("bin"))?;
    copy_tree(&source("cassandra/conf"), &context.join("conf"))?;
    fs::copy(
        source("cassandra/docker-entrypoint.sh"),
        context.join("docker-entrypoint.sh"),
    )?;
    let local = paths::local_config_dir().join("cassandra");
    let yaml = fs::read_to_string(local.join("cassandra.yaml"))?
        .replace("@DATA_DIR@", "/var/lib/cassandra");
    fs::write(context.join("conf/cassandra.yaml"), yaml)?;
    // The heap comes from MAX_HEAP_SIZE (the `cassandra` script), not from the options.
    let options: String = fs::read_to_string(local.join("jvm.options"))?
        .lines()
        .filter(|l| !l.starts_with("-Xms") && !l.starts_with("-Xmx"))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(context.join("conf/jvm17-server.options"), options)?;
    fs::copy(local.join("logback.xml"), context.join("conf/logback.xml"))?;
    fs::create_dir_all(context.join("data"))?;
    fs::set_permissions(context.join("data"), fs::Permissions::from_mode(0o1777))?;
    fetch_jars("cassandra", &pom_path, &context.join("lib"))?;
    built.push(StandIn {
        reference: bud(
            "cassandra",
            &format!("kafka-cqrs/third-party-cassandra:{cassandra_version}"),
            &context,
            Some(&jre),
        )?,
        upstream: "cassandra",
    });

    // Prometheus and Jaeger: one static program each.
    let context = fresh(&dir.join("prometheus"))?;
    fs::copy(
        PROMETHEUS.ensure()?.join("prometheus"),
        context.join("prometheus"),
    )?;
    fs::copy(
        source("prometheus/prometheus.yml"),
        context.join("prometheus.yml"),
    )?;
    fs::create_dir_all(context.join("data"))?;
    built.push(StandIn {
        reference: bud(
            "prometheus",
            "kafka-cqrs/third-party-prometheus:v3.5.0",
            &context,
            None,
        )?,
        upstream: "prom/prometheus",
    });
    let context = fresh(&dir.join("jaeger"))?;
    fs::copy(JAEGER.ensure()?.join("jaeger"), context.join("jaeger"))?;
    built.push(StandIn {
        reference: bud(
            "jaeger",
            "kafka-cqrs/third-party-jaeger:2.13.0",
            &context,
            None,
        )?,
        upstream: "jaegertracing/jaeger",
    });

    smoke(&built)?;
    println!(
        "\n{} stand-ins ({:.0}s):",
        built.len(),
        started.elapsed().as_secs_f64()
    );
    for b in &built {
        println!("  {:<48} for {}", b.reference, b.upstream);
    }
    Ok(built)
}

/// A file of `deployment/cluster/third-party/`.
fn source(path: &str) -> PathBuf {
    paths::root()
        .join("deployment/cluster/third-party")
        .join(path)
}

/// An empty directory.
fn fresh(dir: &Path) -> Result<PathBuf> {
    if dir.exists() {
        fs::remove_dir_all(dir)?;
    }
    fs::create_dir_all(dir)?;
    Ok(dir.to_path_buf())
}

/// Copies a directory tree, keeping the files' modes (the scripts are executable).
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// The jars of a profile of the local servers' pom (Maven Central, the local cache).
fn fetch_jars(profile: &str, pom: &Path, out: &Path) -> Result<()> {
    eprintln!("Fetching the {profile} jars (Maven Central, through ~/.m2)...");
    let log = paths::target_dir().join(format!("third-party/{profile}-mvn.log"));
    let console = fs::File::create(&log)?;
    let mut mvn = Command::new("mvn");
    mvn.args(["-B", "--no-transfer-progress", "-f"])
        .arg(pom)
        .args(["-P", profile, "dependency:copy-dependencies"])
        .arg(format!("-DoutputDirectory={}", out.display()))
        .stdin(Stdio::null())
        .stdout(console.try_clone()?)
        .stderr(console);
    cmd::echo(&mvn);
    if !mvn.status()?.success() {
        bail!(
            "Maven could not fetch the {profile} jars; see {}",
            paths::display(&log)
        );
    }
    Ok(())
}

/// The Debian rootfs (mmdebstrap, once: its inputs are the stamp) and the base image.
fn jre_image(dir: &Path) -> Result<String> {
    let context = dir.join("jre");
    fs::create_dir_all(&context)?;
    let tar = context.join("rootfs.tar");
    let stamp = context.join("rootfs.stamp");
    let key = format!("{DEBIAN_SUITE} {DEBIAN_PACKAGES} appuser:1000 cassandra:999");
    if !(tar.exists() && fs::read_to_string(&stamp).is_ok_and(|s| s == key)) {
        eprintln!(
            "Making a Debian {DEBIAN_SUITE} rootfs with {DEBIAN_PACKAGES} (mmdebstrap, \
             Debian's packages; a few minutes once)..."
        );
        let partial = context.join("rootfs.tar.partial");
        let _ = fs::remove_file(&partial);
        let mut debstrap = Command::new("nice");
        debstrap
            .args(["-n", "10", "mmdebstrap", "--mode=root", "--variant=minbase", "--format=tar"])
            .arg(format!("--include={DEBIAN_PACKAGES}"))
            // Documentation and translations are of no use in an image. (Not the manual
            // pages: the JRE's postinst links its own into /usr/share/man/man1.)
            .args([
                "--dpkgopt=path-exclude=/usr/share/doc/*",
                "--dpkgopt=path-exclude=/usr/share/locale/*",
            ])
            // The users of the upstream images, with their ids.
            .args([
                "--customize-hook=chroot \"$1\" groupadd --gid 1000 appuser",
                "--customize-hook=chroot \"$1\" useradd --uid 1000 --gid 1000 --no-create-home --home-dir /home/appuser appuser",
                "--customize-hook=chroot \"$1\" groupadd --gid 999 cassandra",
                "--customize-hook=chroot \"$1\" useradd --uid 999 --gid 999 --no-create-home --home-dir /var/lib/cassandra cassandra",
            ])
            .arg(DEBIAN_SUITE)
            .arg(&partial)
            .arg(DEBIAN_MIRROR);
        cmd::run(&mut debstrap)?;
        fs::rename(&partial, &tar)?;
        fs::write(&stamp, &key)?;
        let _ = quiet_podman(&["rmi", "--force", JRE_IMAGE]);
    }
    if quiet_podman(&["image", "exists", JRE_IMAGE]).is_err() {
        fs::copy(source("jre/Containerfile"), context.join("Containerfile"))?;
        bud("jre", JRE_IMAGE, &context, None)?;
    }
    Ok(JRE_IMAGE.to_owned())
}

fn quiet_podman(args: &[&str]) -> Result<()> {
    let output = cmd::output(podman::command("podman").args(args))?;
    if !output.status.success() {
        bail!(
            "podman {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// The id of a local image, if it exists.
fn image_id(reference: &str) -> Option<String> {
    let output = cmd::output(podman::command("podman").args([
        "image",
        "inspect",
        "--format",
        "{{.Id}}",
        &format!("localhost/{reference}"),
    ]))
    .ok()?;
    let id = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    (output.status.success() && !id.is_empty()).then_some(id)
}

/// `buildah bud` of `deployment/cluster/third-party/<name>/Containerfile` in `context`.
fn bud(name: &str, reference: &str, context: &Path, base: Option<&str>) -> Result<String> {
    let took = Instant::now();
    let mut bud = podman::command("buildah");
    bud.args(["bud", "--quiet", "--layers=false", "--file"])
        .arg(source(&format!("{name}/Containerfile")))
        .arg("--tag")
        .arg(reference);
    if let Some(base) = base {
        bud.arg("--build-arg").arg(format!("BASE=localhost/{base}"));
    }
    bud.arg(context);
    let before = image_id(reference);
    cmd::run(bud.stdout(Stdio::null()))?;
    // The image the tag named before is now nameless: remove it, or every build leaves
    // hundreds of MB behind.
    if let Some(old) = before
        && image_id(reference).is_some_and(|new| new != old)
    {
        let _ = quiet_podman(&["rmi", &old]);
    }
    eprintln!("{reference}: built in {:.1}s", took.elapsed().as_secs_f64());
    Ok(reference.to_owned())
}

/// Each stand-in runs what the manifests run, without a network: Kafka's storage tool,
/// Cassandra's version, Prometheus's and Jaeger's version.
fn smoke(built: &[StandIn]) -> Result<()> {
    for standin in built {
        let args: &[&str] = match standin.upstream {
            "apache/kafka" | "cassandra" => &["--entrypoint", "sh"],
            _ => &[],
        };
        let tail: &[&str] = match standin.upstream {
            "apache/kafka" => &[
                "-c",
                "/opt/kafka/bin/kafka-storage.sh random-uuid >/dev/null && \
                 /opt/kafka/bin/kafka-topics.sh --version",
            ],
            "cassandra" => &[
                "-c",
                "cp -R /etc/cassandra/. /tmp/ && java -cp '/opt/cassandra/lib/*' \
                 org.apache.cassandra.tools.GetVersion",
            ],
            "prom/prometheus" => &["--version"],
            _ => &["--help"],
        };
        let mut run = podman::command("podman");
        run.args(["run", "--rm", "--network", "none", "--read-only"])
            .args(["--tmpfs", "/tmp"])
            .args(args)
            .arg(format!("localhost/{}", standin.reference))
            .args(tail);
        let output = cmd::output(&mut run)?;
        if !output.status.success() {
            bail!(
                "the {} stand-in does not run: `{}` failed: {}{}",
                standin.upstream,
                cmd::shell_line(&run),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let text = String::from_utf8_lossy(&output.stdout);
        eprintln!(
            "  {} runs: {}",
            standin.reference,
            // The JVM tools log before their answer; the Go programs print theirs first.
            if matches!(standin.upstream, "apache/kafka" | "cassandra") {
                text.lines().rfind(|l| !l.trim().is_empty())
            } else {
                text.lines().next()
            }
            .unwrap_or("")
            .trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `runAsUser` of the manifest that runs `image`, and the `USER` of the stand-in's
    /// Containerfile: they must agree, or the pod runs as a user the image does not know.
    #[test]
    fn each_stand_in_runs_as_the_user_its_manifest_names() {
        for (manifest, standin) in [
            ("kafka.yaml", "kafka"),
            ("cassandra.yaml", "cassandra"),
            ("prometheus.yaml", "prometheus"),
            ("jaeger.yaml", "jaeger"),
        ] {
            let text = fs::read_to_string(
                paths::root()
                    .join("deployment/kubernetes/base")
                    .join(manifest),
            )
            .unwrap();
            let uid = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("runAsUser:"))
                .unwrap_or_else(|| panic!("{manifest} names no runAsUser"))
                .trim()
                .to_owned();
            let containerfile =
                fs::read_to_string(source(&format!("{standin}/Containerfile"))).unwrap();
            let user = containerfile
                .lines()
                .find_map(|l| l.strip_prefix("USER "))
                .unwrap_or_else(|| panic!("the {standin} stand-in sets no USER"));
            assert_eq!(
                user.split(':').next(),
                Some(uid.as_str()),
                "{manifest} runs as {uid}, the {standin} stand-in as {user}"
            );
        }
    }

    /// The programs and paths the manifests call exist in the stand-ins' files.
    #[test]
    fn the_paths_the_manifests_call_are_provided() {
        let base = paths::root().join("deployment/kubernetes/base");
        let kafka = fs::read_to_string(base.join("kafka.yaml")).unwrap();
        for script in ["kafka-storage.sh", "kafka-server-start.sh"] {
            assert!(kafka.contains(&format!("/opt/kafka/bin/{script}")));
            assert!(source(&format!("kafka/bin/{script}")).exists(), "{script}");
        }
        // The topics Job runs its script in the Kafka image.
        let topics = fs::read_to_string(base.join("jobs/kafka-topics.sh")).unwrap();
        assert!(topics.contains("/opt/kafka/bin/kafka-topics.sh"));
        assert!(source("kafka/bin/kafka-topics.sh").exists());
        let cassandra = fs::read_to_string(base.join("cassandra.yaml")).unwrap();
        assert!(cassandra.contains("/etc/cassandra/"));
        let containerfile = fs::read_to_string(source("cassandra/Containerfile")).unwrap();
        assert!(containerfile.contains("COPY conf/ /etc/cassandra/"));
        // The environment the manifest sets is what the entrypoint and script read.
        let entrypoint = fs::read_to_string(source("cassandra/docker-entrypoint.sh")).unwrap()
            + &fs::read_to_string(source("cassandra/bin/cassandra")).unwrap();
        for variable in ["MAX_HEAP_SIZE", "HEAP_NEWSIZE", "JVM_EXTRA_OPTS"] {
            assert!(
                cassandra.contains(variable) && entrypoint.contains(variable),
                "{variable}"
            );
        }
        for name in ["cluster_name", "endpoint_snitch"] {
            assert!(entrypoint.contains(name), "{name}");
        }
    }
}
