//! Tests across the services, in one process: each service spawned on port 0 with the
//! test's own topic and keyspace, exactly as its `main` would run it. The service crates'
//! own tests stay within their service; whatever needs two or more lives here.
//!
//! Every span of this test process goes to one OTLP receiver, set up before the first
//! service starts (telemetry is set up once per process), so that any test can read the
//! trace of what it did.

use std::sync::OnceLock;

use testkit::otlp::OtlpReceiver;
use testkit::{RunningApp, TestKeyspace, TestTopic};

/// The OTLP receiver of this test process, started (with telemetry exporting to it) on
/// first use. It runs on a thread of its own, because each test has its own runtime.
pub fn receiver() -> &'static OtlpReceiver {
    static RECEIVER: OnceLock<OtlpReceiver> = OnceLock::new();
    RECEIVER.get_or_init(|| {
        let (sender, started) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().expect("a runtime for the receiver");
            runtime.block_on(async {
                let _ = sender.send(OtlpReceiver::start().await);
                std::future::pending::<()>().await;
            });
        });
        let receiver = started.recv().expect("the OTLP receiver starts");
        testkit::init_telemetry_exporting(&receiver.endpoint);
        receiver
    })
}

/// A persister of `topic` into `keyspace`, dead-lettering into `dlq`; its consumer group.
pub async fn spawn_persister(
    topic: &TestTopic,
    dlq: &TestTopic,
    keyspace: &TestKeyspace,
) -> (RunningApp, String) {
    receiver();
    let infra = testkit::infra();
    let config = persister::Config::for_tests(
        &infra.bootstrap,
        &topic.name,
        &dlq.name,
        &infra.contact_points,
        keyspace.name(),
    );
    let group = config.group_id.clone();
    let app = persister::Application::build(config)
        .await
        .expect("persister starts");
    (
        testkit::spawn(app.port(), |stop| app.run_until_stopped(stop)),
        group,
    )
}

/// A producer publishing to `topic`.
pub async fn spawn_producer(topic: &TestTopic) -> RunningApp {
    spawn_producer_with(topic, |_| {}).await
}

/// A producer publishing to `topic`, its test configuration changed by `adjust`.
pub async fn spawn_producer_with(
    topic: &TestTopic,
    adjust: impl FnOnce(&mut producer::Config),
) -> RunningApp {
    receiver();
    let mut config = producer::Config::for_tests(&testkit::infra().bootstrap, &topic.name);
    adjust(&mut config);
    let app = producer::Application::build(config)
        .await
        .expect("producer starts");
    testkit::spawn(app.port(), |stop| app.run_until_stopped(stop))
}

/// A reader of `keyspace`.
pub async fn spawn_reader(keyspace: &TestKeyspace) -> RunningApp {
    receiver();
    let config = reader::Config::for_tests(&testkit::infra().contact_points, keyspace.name());
    let app = reader::Application::build(config)
        .await
        .expect("reader starts");
    testkit::spawn(app.port(), |stop| app.run_until_stopped(stop))
}

/// A notifier of `topic`.
pub async fn spawn_notifier(topic: &TestTopic) -> RunningApp {
    receiver();
    let config = notifier::Config::for_tests(&testkit::infra().bootstrap, &topic.name);
    let app = notifier::Application::build(config)
        .await
        .expect("notifier starts");
    testkit::spawn(app.port(), |stop| app.run_until_stopped(stop))
}

pub mod chaos;
pub mod perf;
