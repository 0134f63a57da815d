//! The real Kafka and Cassandra of a test process (local, or started by testcontainers),
//! a topic and a keyspace per test that are removed when the test ends, and telemetry set
//! up as each service's `main` does.

use crate::{containers, logs};

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rdkafka::ClientConfig;
use scylla::client::session::Session;
use store::Keyspace;
use uuid::Uuid;

/// The environment variable that selects where the servers come from.
pub const INFRA_VARIABLE: &str = "CQRS_TEST_INFRA";

/// Addresses of the servers the tests run against.
#[derive(Debug)]
pub struct Infra {
    /// Kafka `bootstrap.servers`.
    pub bootstrap: String,
    /// Cassandra contact points, comma-separated `host:port`.
    pub contact_points: String,
    /// Keeps testcontainers' servers alive for the whole test process.
    _containers: Option<containers::Running>,
}

/// Sets up telemetry once per test process, as each service's `main` does: spans with
/// real trace ids, W3C propagation, the metrics recorder, and JSON logs captured by the
/// test harness. OTLP export follows the `OTEL_*` variables set before the first call.
pub fn init_telemetry() {
    TELEMETRY.get_or_init(|| telemetry::init_with_writer("kafka-cqrs-test", logs::Capture));
}

/// [`init_telemetry`] exporting spans to `endpoint` (an [`otlp::OtlpReceiver`]). Call it
/// first in the test process; it panics if telemetry was set up already.
pub fn init_telemetry_exporting(endpoint: &str) {
    let mut fresh = false;
    TELEMETRY.get_or_init(|| {
        fresh = true;
        telemetry::init_exporting_to("kafka-cqrs-test", logs::Capture, endpoint)
    });
    assert!(
        fresh,
        "telemetry was set up before init_telemetry_exporting"
    );
}

static TELEMETRY: OnceLock<telemetry::Guard> = OnceLock::new();

/// Exports the spans buffered so far.
pub fn flush_telemetry() {
    if let Some(guard) = TELEMETRY.get() {
        guard.flush();
    }
}

/// The log lines written so far in this test process (as JSON values).
pub fn log_lines() -> Vec<serde_json::Value> {
    logs::lines()
}

/// The servers of this test process, found (or started) on first use.
///
/// # Panics
/// When the servers cannot be reached, with a message that says how to start them.
pub fn infra() -> &'static Infra {
    static INFRA: OnceLock<Infra> = OnceLock::new();
    INFRA.get_or_init(|| {
        // Probing needs blocking calls and a runtime of its own; tests call this from
        // inside theirs, so do it on a separate thread.
        std::thread::spawn(connect)
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

fn connect() -> Infra {
    let mode = std::env::var(INFRA_VARIABLE).unwrap_or_default();
    let infra = match mode.as_str() {
        "" | "local" => Infra {
            bootstrap: env_or(
                "KAFKA_BOOTSTRAP_SERVERS",
                messaging::DEFAULT_BOOTSTRAP_SERVERS,
            ),
            contact_points: env_or("CASSANDRA_CONTACT_POINTS", store::DEFAULT_CONTACT_POINTS),
            _containers: None,
        },
        "containers" => {
            let running = containers::start();
            Infra {
                bootstrap: running.bootstrap.clone(),
                contact_points: running.contact_points.clone(),
                _containers: Some(running),
            }
        }
        other => panic!(
            "{INFRA_VARIABLE}={other:?} is not known: use `local` (the default) or `containers`"
        ),
    };
    if let Err(message) = check_reachable(
        &infra.bootstrap,
        &infra.contact_points,
        Duration::from_secs(10),
    ) {
        panic!("{message}");
    }
    infra
}

/// Checks that Kafka answers a metadata request and Cassandra a CQL query within
/// `timeout` each; the error says which did not, and how to start them. Blocking.
pub fn check_reachable(
    bootstrap: &str,
    contact_points: &str,
    timeout: Duration,
) -> Result<(), String> {
    const HINT: &str = "Start the local servers with `cargo xtask infra up` (or run the \
        whole suite with `cargo xtask test`, which starts them), or set \
        CQRS_TEST_INFRA=containers where a Docker engine runs.";
    if let Err(error) = messaging::wait_for_broker(bootstrap, timeout) {
        return Err(format!("Kafka is not reachable: {error}.\n{HINT}"));
    }
    runtime()
        .block_on(async {
            let session = store::connect(contact_points, timeout).await?;
            store::release_version(&session).await
        })
        .map(drop)
        .map_err(|error| format!("Cassandra is not reachable: {error}.\n{HINT}"))
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

impl Infra {
    /// A Kafka client configuration for these servers, to add settings to.
    pub fn kafka_config(&self) -> ClientConfig {
        messaging::client_config(&self.bootstrap)
    }

    /// A new topic with a unique name, deleted when the returned guard is dropped.
    pub async fn topic(&self, partitions: i32) -> TestTopic {
        let name = format!("test-{}", Uuid::new_v4().simple());
        let admin = messaging::admin_client(&self.bootstrap).expect("Kafka admin client");
        messaging::ensure_topic(&admin, &name, partitions)
            .await
            .unwrap_or_else(|e| panic!("cannot create test topic: {e}"));
        TestTopic {
            name,
            partitions,
            bootstrap: self.bootstrap.clone(),
        }
    }

    /// Takes charge of `name`, a topic the test created itself: it is deleted when the
    /// returned guard is dropped, like one from [`Infra::topic`].
    pub fn adopt_topic(&self, name: &str, partitions: i32) -> TestTopic {
        TestTopic {
            name: name.to_owned(),
            partitions,
            bootstrap: self.bootstrap.clone(),
        }
    }

    /// A new keyspace at the platform's newest schema (every migration of
    /// `libs/store/migrations` applied, as the persister's start does), dropped when the
    /// returned guard is dropped.
    pub async fn keyspace(&self) -> TestKeyspace {
        let keyspace = self.bare_keyspace().await;
        store::schema::apply(&keyspace.session, &keyspace.keyspace)
            .await
            .unwrap_or_else(|e| panic!("cannot create test keyspace: {e}"));
        keyspace
    }

    /// A new keyspace name that nothing has created yet, with a session, dropped (if
    /// something created it) when the returned guard is dropped: for tests of the schema's
    /// migrations, which create the keyspace themselves.
    pub async fn bare_keyspace(&self) -> TestKeyspace {
        let keyspace = Keyspace::new(&format!("t_{}", Uuid::new_v4().simple()), 1)
            .expect("generated keyspace names are valid");
        let session = store::connect(&self.contact_points, Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        TestKeyspace {
            keyspace,
            session: Arc::new(session),
            contact_points: self.contact_points.clone(),
        }
    }
}

/// A topic that belongs to one test.
#[derive(Debug)]
pub struct TestTopic {
    pub name: String,
    pub partitions: i32,
    bootstrap: String,
}

impl TestTopic {
    /// Deletes the topic and creates it again under the same name (a new topic id, its
    /// offsets from 0), and waits until the broker describes the new one.
    pub async fn recreate(&self) {
        let admin = messaging::admin_client(&self.bootstrap).expect("Kafka admin client");
        let before = messaging::topic_identity(&self.bootstrap, &self.name)
            .await
            .expect("the topic's identity");
        messaging::delete_topic(&admin, &self.name)
            .await
            .expect("topic deleted");
        // The broker takes a moment to forget the old topic: "already exists" until then.
        let started = std::time::Instant::now();
        loop {
            // "Already exists" (the old one, still going) is not an error here: try again.
            let _ = messaging::ensure_topic(&admin, &self.name, self.partitions).await;
            if let Ok(now) = messaging::topic_identity(&self.bootstrap, &self.name).await
                && now.id != before.id
                && now.partitions == self.partitions
            {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "topic {} was not re-created within 30 s",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Raises the partition count to `total` and waits until the broker describes it.
    pub async fn add_partitions(&self, total: i32) {
        let admin = messaging::admin_client(&self.bootstrap).expect("Kafka admin client");
        messaging::add_partitions(&admin, &self.name, total as usize)
            .await
            .expect("partitions added");
        crate::eventually(
            "the new partition count",
            Duration::from_secs(30),
            || async {
                messaging::topic_identity(&self.bootstrap, &self.name)
                    .await
                    .ok()
                    .filter(|now| now.partitions == total)
                    .map(drop)
            },
        )
        .await;
    }
}

impl Drop for TestTopic {
    fn drop(&mut self) {
        let (name, bootstrap) = (self.name.clone(), self.bootstrap.clone());
        // Drop cannot await, and the test's runtime may be single-threaded: clean up on a
        // thread of our own and wait for it, so the next test starts from a tidy broker.
        let outcome = std::thread::spawn(move || {
            runtime().block_on(async {
                let admin = messaging::admin_client(&bootstrap)?;
                messaging::delete_topic(&admin, &name).await
            })
        })
        .join();
        if let Ok(Err(error)) = outcome {
            eprintln!("warning: test topic {} was not deleted: {error}", self.name);
        }
    }
}

/// A keyspace that belongs to one test, with an open session.
#[derive(Debug)]
pub struct TestKeyspace {
    pub keyspace: Keyspace,
    pub session: Arc<Session>,
    contact_points: String,
}

impl TestKeyspace {
    pub fn name(&self) -> &str {
        self.keyspace.name()
    }
}

impl Drop for TestKeyspace {
    fn drop(&mut self) {
        let (keyspace, contact_points) = (self.keyspace.clone(), self.contact_points.clone());
        // The session belongs to the test's runtime, which is blocked here: use a new one.
        let outcome = std::thread::spawn(move || {
            runtime().block_on(async {
                let session = store::connect(&contact_points, Duration::from_secs(10)).await?;
                store::schema::drop_keyspace(&session, &keyspace).await
            })
        })
        .join();
        if let Ok(Err(error)) = outcome {
            eprintln!(
                "warning: test keyspace {} was not dropped: {error}",
                self.name()
            );
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime for the test kit")
}
