//! The integration tests of the producer: one test binary, one module per area (a binary per
//! file would link the whole dependency tree once per file).

mod api;
mod idempotency;
mod openapi;
mod outage;

use producer::{Application, Config};
use testkit::{RunningApp, TestTopic};

/// A producer on a free port, publishing to a topic of its own.
struct TestApp {
    /// Keeps the service running until the test ends.
    _app: RunningApp,
    address: String,
    topic: TestTopic,
}

async fn spawn_app() -> TestApp {
    let infra = testkit::infra();
    let topic = infra.topic(3).await;
    let app = Application::build(Config::for_tests(&infra.bootstrap, &topic.name))
        .await
        .expect("producer starts");
    let app = testkit::spawn(app.port(), |stop| app.run_until_stopped(stop));
    TestApp {
        address: app.address.clone(),
        _app: app,
        topic,
    }
}
