//! What the persister's tests share: spawning it on a topic and keyspace of their own.
//! Events, publishing and reading the table back come from `testkit::documents`.

use persister::{Application, Config};
use testkit::{RunningApp, TestKeyspace, TestTopic};

/// A running persister and its consumer group.
pub struct Persister {
    pub group: String,
    pub app: RunningApp,
}

impl Persister {
    /// Stops it and waits until it has committed and closed.
    pub async fn stop(self) {
        self.app.stop().await;
    }
}

pub async fn spawn_persister(
    topic: &TestTopic,
    dlq: &TestTopic,
    keyspace: &TestKeyspace,
) -> Persister {
    let infra = testkit::infra();
    let config = Config::for_tests(
        &infra.bootstrap,
        &topic.name,
        &dlq.name,
        &infra.contact_points,
        keyspace.name(),
    );
    spawn_with(config).await
}

pub async fn spawn_with(config: Config) -> Persister {
    let group = config.group_id.clone();
    let app = Application::build(config).await.expect("persister starts");
    let app = testkit::spawn(app.port(), |stop| app.run_until_stopped(stop));
    Persister { group, app }
}
