//! Smoke tests of every container image, with testcontainers against podman's
//! Docker-compatible API (`cargo xtask test` builds the images, starts the API and sets
//! `DOCKER_HOST` and `KAFKA_CQRS_IMAGES`; see xtask/src/image/smoke.rs).
//!
//! Each image must: start with a read-only root filesystem, answer `/readyz` (the services
//! against the local Kafka and Cassandra, reached over the host's network), run as the
//! non-root numeric user, hold nothing but its program (no shell), and stop on SIGTERM,
//! cleanly, well within its grace period.
//!
//! podman reports an exited container as `stopped`, a state testcontainers' Docker client
//! cannot parse; so the tests read a stopped container's exit code with the podman CLI.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use testcontainers::core::WaitFor;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

/// The numeric user and group of every image (deployment/images/Containerfile).
const USER: &str = "65532:65532";

/// How long a service may take to answer `/readyz` (it connects to Kafka and Cassandra).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The grace period the test gives SIGTERM; Kubernetes' default is 30s, and a clean stop
/// here takes well under a second.
const GRACE: Duration = Duration::from_secs(10);

/// The image names the tests below cover; `every_image_is_smoke_tested` keeps it complete.
const TESTED: [&str; 5] = ["persister", "notifier", "reader", "producer", "gui"];

/// `KAFKA_CQRS_IMAGES`: `name=reference,...`, set by `cargo xtask test`.
fn images() -> Vec<(String, String)> {
    let var = std::env::var("KAFKA_CQRS_IMAGES").unwrap_or_else(|_| {
        panic!(
            "KAFKA_CQRS_IMAGES is not set: these tests run from `cargo xtask test`, which \
             builds the images and starts podman's API first"
        )
    });
    var.split(',')
        .map(|pair| {
            let (name, reference) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("KAFKA_CQRS_IMAGES has no name=reference: {pair}"));
            (name.to_owned(), reference.to_owned())
        })
        .collect()
}

fn reference(name: &str) -> String {
    images()
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, r)| r)
        .unwrap_or_else(|| panic!("KAFKA_CQRS_IMAGES names no image for {name}"))
}

/// A port nobody listens on, so that a service under test does not collide with the
/// running system's (the containers share the host's network).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `podman` with the project's containers.conf (passed on by xtask).
fn podman(args: &[&str]) -> String {
    let out = Command::new("podman")
        .args(args)
        .output()
        .expect("cannot run podman");
    assert!(
        out.status.success(),
        "podman {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

async fn start(name: &str, port: u16) -> ContainerAsync<GenericImage> {
    let reference = reference(name);
    let (repository, tag) = reference
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("{reference} has no tag"));
    let mut request = GenericImage::new(repository, tag)
        .with_wait_for(WaitFor::Nothing)
        // Host networking through HostConfig: `with_network("host")` makes testcontainers
        // create a network named "host", which podman refuses.
        .with_host_config_modifier(|config| config.network_mode = Some("host".to_owned()))
        .with_readonly_rootfs(true)
        .with_env_var("HTTP_HOST", "127.0.0.1")
        .with_env_var("HTTP_PORT", port.to_string());
    if name == "persister" {
        // Its own group and topic: the running system's persister must neither lose its
        // partitions to this one nor see its events applied twice.
        let own = format!("image-smoke-{}", std::process::id());
        // The persister refuses a topic that does not exist: it records which topic (id
        // and partition count) its table is built from.
        let admin = messaging::admin_client(platform::kafka::BOOTSTRAP_SERVERS)
            .expect("a Kafka admin client");
        messaging::ensure_topic(&admin, &format!("{own}.t"), 1)
            .await
            .unwrap_or_else(|e| panic!("cannot create the smoke test's topic: {e}"));
        request = request
            .with_env_var("KAFKA_GROUP_ID", &own)
            .with_env_var("KAFKA_TOPIC", format!("{own}.t"));
    }
    request
        .start()
        .await
        .unwrap_or_else(|e| panic!("{reference} does not start: {e}"))
}

/// GET `/readyz` until it answers 200.
async fn wait_until_ready(name: &str, port: u16, container: &ContainerAsync<GenericImage>) {
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/readyz");
    let started = Instant::now();
    loop {
        let answer = http.get(&url).send().await;
        if answer.is_ok_and(|a| a.status() == reqwest::StatusCode::OK) {
            return;
        }
        if started.elapsed() > READY_TIMEOUT {
            let stdout = container.stdout_to_vec().await.unwrap_or_default();
            let stderr = container.stderr_to_vec().await.unwrap_or_default();
            panic!(
                "{name} did not answer 200 on {url} within {}s; its output:\n{}{}",
                READY_TIMEOUT.as_secs(),
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&stderr)
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The image's files: everything but the directories, relative to its root.
fn files_of_image(reference: &str) -> Vec<String> {
    let root = PathBuf::from(podman(&["image", "mount", reference]));
    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    podman(&["image", "unmount", reference]);
    files.sort();
    files
}

fn walk(root: &Path, dir: &Path, files: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            walk(root, &path, files);
        } else {
            files.push(path.strip_prefix(root).unwrap().display().to_string());
        }
    }
}

/// The whole smoke test of one image.
async fn smoke(name: &str) {
    let reference = reference(name);

    // Nothing but the program (and, for the GUI, its files): no shell, no libc.
    let files = files_of_image(&reference);
    assert!(
        files.contains(&"app".to_owned()),
        "{name}: no /app in {files:?}"
    );
    let extra: Vec<&String> = files
        .iter()
        .filter(|f| *f != "app" && !(name == "gui" && f.starts_with("srv/gui/")))
        .collect();
    assert!(extra.is_empty(), "{name}: unexpected files {extra:?}");
    if name == "gui" {
        assert!(files.contains(&"srv/gui/index.html".to_owned()));
    }

    let port = free_port();
    let container = start(name, port).await;
    let id = container.id().to_owned();
    wait_until_ready(name, port, &container).await;

    // Non-root: the configured user, and the uid the kernel reports for the process.
    let inspected = podman(&[
        "container",
        "inspect",
        "--format",
        "{{.Config.User}} {{.State.Pid}} {{.HostConfig.ReadonlyRootfs}}",
        &id,
    ]);
    let fields: Vec<&str> = inspected.split_whitespace().collect();
    assert_eq!(fields.len(), 3, "podman inspect said {inspected:?}");
    assert_eq!(fields[0], USER, "{name}: configured user");
    assert_eq!(fields[2], "true", "{name}: read-only root filesystem");
    let status = std::fs::read_to_string(format!("/proc/{}/status", fields[1])).unwrap();
    let uids = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .expect("a Uid line");
    for uid in uids.split_whitespace() {
        assert_eq!(uid, "65532", "{name}: the process runs as uid {uids}");
    }

    // SIGTERM (the image's stop signal): a clean exit well within the grace period, not
    // SIGKILL after it.
    let stopping = Instant::now();
    container
        .stop_with_timeout(Some(GRACE.as_secs() as i32))
        .await
        .unwrap_or_else(|e| panic!("{name} does not stop: {e}"));
    let took = stopping.elapsed();
    let exit_code = podman(&[
        "container",
        "inspect",
        "--format",
        "{{.State.ExitCode}}",
        &id,
    ]);
    assert_eq!(
        exit_code, "0",
        "{name} exited with {exit_code} after SIGTERM ({took:?})"
    );
    assert!(took < GRACE, "{name} took {took:?} to stop on SIGTERM");
    container.rm().await.unwrap();
}

#[test]
fn every_image_is_smoke_tested() {
    let mut expected: Vec<&str> = platform::SERVICES.iter().map(|s| s.name).collect();
    expected.push(platform::gateway::GUI_NAME);
    assert_eq!(
        TESTED.to_vec(),
        expected,
        "a service without a smoke test below"
    );
    let built: Vec<String> = images().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        built, expected,
        "KAFKA_CQRS_IMAGES does not name every image"
    );
}

#[tokio::test]
async fn persister_image() {
    smoke("persister").await;
}

#[tokio::test]
async fn notifier_image() {
    smoke("notifier").await;
}

#[tokio::test]
async fn reader_image() {
    smoke("reader").await;
}

#[tokio::test]
async fn producer_image() {
    smoke("producer").await;
}

#[tokio::test]
async fn gui_image() {
    smoke("gui").await;
}
