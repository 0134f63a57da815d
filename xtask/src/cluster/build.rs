//! The cluster's programs and images: the Go programs pinned under `deployment/cluster/`
//! (containerd, CoreDNS, the kubelet and kube-proxy, the sandbox and probe programs), built
//! once into `target/tools/`, and the FROM-scratch images around them, imported into
//! containerd's `k8s.io` namespace where the kubelet finds them without a registry.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Result, bail};

use super::{Layout, quiet};
use crate::image::podman;
use crate::kube::{self, KUBECTL};
use crate::tools::GoBuild;
use crate::{cmd, paths, tools};

const CONTAINERD: GoBuild = GoBuild {
    name: "containerd",
    module_dir: "deployment/cluster/containerd",
    packages: &[
        "github.com/containerd/containerd/v2/cmd/containerd",
        "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2",
        "github.com/containerd/containerd/v2/cmd/ctr",
    ],
    cgo: "1",
    // Snapshotters that need C libraries this machine lacks; overlayfs is the one used.
    tags: "no_btrfs no_devmapper no_zfs",
    ldflags: "-s -w",
    cold_build: "about 2 minutes",
};

const COREDNS: GoBuild = GoBuild {
    name: "coredns",
    module_dir: "deployment/cluster/coredns",
    packages: &["github.com/coredns/coredns"],
    cgo: "0",
    tags: "",
    ldflags: "-s -w",
    cold_build: "about 3 minutes",
};

/// The kubelet and kube-proxy, with kubectl's version stamps.
const NODE_TOOLS: GoBuild = GoBuild {
    name: "kubernetes-node",
    module_dir: "deployment/cluster/node",
    packages: &[
        "k8s.io/kubernetes/cmd/kubelet",
        "k8s.io/kubernetes/cmd/kube-proxy",
    ],
    // As the control plane's build (Go's default here): the build cache then shares
    // every package the two have in common.
    cgo: "1",
    tags: "",
    ldflags: KUBECTL.ldflags,
    cold_build: "about 4 minutes (less after the control plane)",
};

const IMAGE_PROGRAMS: GoBuild = GoBuild {
    name: "cluster-images",
    module_dir: "deployment/cluster/images",
    packages: &["./pause", "./probe"],
    cgo: "0",
    tags: "",
    ldflags: "-s -w",
    cold_build: "seconds",
};

/// Where the built programs are.
#[derive(Debug)]
pub struct Programs {
    pub etcd: PathBuf,
    /// kube-apiserver, kube-controller-manager, kube-scheduler.
    pub control_plane: PathBuf,
    /// kubelet, kube-proxy.
    pub node: PathBuf,
    /// containerd, containerd-shim-runc-v2, ctr.
    pub containerd: PathBuf,
    pub coredns: PathBuf,
    /// pause, probe.
    pub images: PathBuf,
}

/// Builds what is missing; checks the system's programs the cluster runs.
pub fn programs() -> Result<Programs> {
    for (program, package) in [
        ("runc", "runc"),
        ("iptables", "iptables"),
        ("ip", "iproute2"),
        ("openssl", "openssl"),
        ("buildah", "buildah"),
        ("skopeo", "skopeo"),
    ] {
        tools::require_program(program, package)?;
    }
    if !Path::new("/usr/lib/cni/bridge").exists() {
        bail!(
            "cannot find the CNI plugins in /usr/lib/cni. Install them (Debian: `apt-get \
             install containernetworking-plugins`) and run the command again"
        );
    }
    // kubectl drives the cluster (`Layout::kubectl`).
    KUBECTL.ensure()?;
    Ok(Programs {
        etcd: tools::require_program("etcd", "etcd-server")?,
        control_plane: kube::cluster::CONTROL_PLANE.ensure()?,
        node: NODE_TOOLS.ensure()?,
        containerd: CONTAINERD.ensure()?,
        coredns: COREDNS.ensure()?,
        images: IMAGE_PROGRAMS.ensure()?,
    })
}

/// The references of the cluster's images, as containerd names them after the import.
#[derive(Debug)]
pub struct Images {
    pub pause: String,
    pub coredns: String,
    pub probe: String,
    archives: Vec<PathBuf>,
}

/// The image tag: the Go module's pinned version for CoreDNS, a content hash of the
/// program for the others, so that a changed program is a new image.
fn image_tag(program: &Path) -> Result<String> {
    let bytes = fs::read(program)?;
    // FNV-1a: enough to tell two builds apart, no dependency.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    Ok(format!("{hash:016x}")[..12].to_owned())
}

/// Builds the three images with buildah and writes each as a docker-archive that
/// `ctr images import` reads (it names the image `docker.io/kafka-cqrs/<name>:<tag>`, which
/// is what a pod's `kafka-cqrs/<name>:<tag>` means).
pub fn images(layout: &Layout, programs: &Programs) -> Result<Images> {
    let containerfile = paths::root().join("deployment/cluster/images/Containerfile");
    let mut refs = Vec::new();
    let mut archives = Vec::new();
    for (name, program) in [
        ("pause", programs.images.join("pause")),
        ("coredns", programs.coredns.join("coredns")),
        ("probe", programs.images.join("probe")),
    ] {
        let reference = format!("kafka-cqrs/cluster-{name}:{}", image_tag(&program)?);
        let context = paths::target_dir().join("cluster-images").join(name);
        fs::create_dir_all(&context)?;
        fs::copy(&program, context.join("program"))?;
        let archive = layout.dir.join("images").join(format!("{name}.tar"));
        fs::create_dir_all(archive.parent().expect("an archive has a directory"))?;
        let stamp = archive.with_extension("ref");
        if !(archive.exists() && fs::read_to_string(&stamp).is_ok_and(|s| s == reference)) {
            let mut bud = podman::command("buildah");
            bud.args(["bud", "--quiet", "--layers=false", "--file"])
                .arg(&containerfile)
                .arg("--tag")
                .arg(&reference)
                .arg(&context);
            cmd::run(bud.stdout(std::process::Stdio::null()))?;
            let _ = fs::remove_file(&archive);
            cmd::run(
                podman::command("skopeo")
                    .args(["copy", "--quiet"])
                    .arg(format!("containers-storage:localhost/{reference}"))
                    .arg(format!("docker-archive:{}:{reference}", archive.display())),
            )?;
            fs::write(&stamp, &reference)?;
        }
        refs.push(format!("docker.io/{reference}"));
        archives.push(archive);
    }
    let [pause, coredns, probe] = <[String; 3]>::try_from(refs).expect("three images");
    Ok(Images {
        pause,
        coredns,
        probe,
        archives,
    })
}

/// `ctr` on the cluster's containerd, in the namespace of the CRI.
pub fn ctr(layout: &Layout, programs: &Programs, args: &[&str]) -> Command {
    let mut command = Command::new(programs.containerd.join("ctr"));
    command
        .arg("--address")
        .arg(layout.containerd_socket())
        .args(["--namespace", "k8s.io"])
        .args(args);
    command
}

/// Imports every image into containerd.
pub fn import(layout: &Layout, programs: &Programs, images: &Images) -> Result<()> {
    for archive in &images.archives {
        let archive = archive.display().to_string();
        quiet(&mut ctr(layout, programs, &["images", "import", &archive]))?;
    }
    let listed = quiet(&mut ctr(layout, programs, &["images", "ls", "-q"]))?;
    for reference in [&images.pause, &images.coredns, &images.probe] {
        if !listed.lines().any(|l| l == reference) {
            bail!("containerd does not list {reference} after the import; it lists:\n{listed}");
        }
    }
    Ok(())
}

/// Copies images from the local storage into the running cluster's containerd.
pub fn load(layout: &Layout, references: &[String]) -> Result<()> {
    if super::COMPONENTS[4].pids(layout)?.is_empty() {
        bail!("the cluster's containerd does not run: start it with `cargo xtask cluster up`");
    }
    let dir = layout.dir.join("images");
    fs::create_dir_all(&dir)?;
    for reference in references {
        let reference = reference.trim_start_matches("localhost/");
        let archive = dir.join("load.tar");
        let _ = fs::remove_file(&archive);
        let started = Instant::now();
        cmd::run(
            podman::command("skopeo")
                .args(["copy", "--quiet"])
                .arg(format!("containers-storage:localhost/{reference}"))
                .arg(format!("docker-archive:{}:{reference}", archive.display())),
        )?;
        let mut import = Command::new(tools::dir().join(CONTAINERD.name).join("ctr"));
        import
            .arg("--address")
            .arg(layout.containerd_socket())
            .args(["--namespace", "k8s.io", "images", "import"])
            .arg(&archive);
        quiet(&mut import)?;
        let _ = fs::remove_file(&archive);
        eprintln!(
            "Loaded docker.io/{reference} into the cluster ({:.1}s)",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// containerd's image list (`ctr images ls -q`) while it runs.
pub fn listed_images(layout: &Layout) -> Result<String> {
    let mut command = Command::new(tools::dir().join(CONTAINERD.name).join("ctr"));
    command
        .arg("--address")
        .arg(layout.containerd_socket())
        .args(["--namespace", "k8s.io", "images", "ls", "-q"]);
    quiet(&mut command)
}

/// Kills every container task containerd still runs (what the kubelet did not stop), so
/// that their shims exit with them.
pub fn kill_tasks(layout: &Layout) {
    let ctr_path = tools::dir().join(CONTAINERD.name).join("ctr");
    if !ctr_path.exists() || !layout.containerd_socket().exists() {
        return;
    }
    let ctr = |args: &[&str]| {
        let mut command = Command::new(&ctr_path);
        command
            .arg("--address")
            .arg(layout.containerd_socket())
            .args(["--namespace", "k8s.io", "--timeout", "10s"])
            .args(args);
        command
    };
    let Ok(tasks) = quiet(&mut ctr(&["tasks", "ls", "-q"])) else {
        return;
    };
    for task in tasks.lines().filter(|t| !t.is_empty()) {
        eprintln!("Killing container task {task}...");
        let _ = quiet(&mut ctr(&["tasks", "kill", "--signal", "SIGKILL", task]));
        let _ = quiet(&mut ctr(&["tasks", "delete", "--force", task]));
    }
}
