//! Building and running the persister: `Application::build` connects to Kafka and
//! Cassandra, applies the schema migrations the keyspace lacks (under their lock), checks
//! that the topic is the one the read model was built from, and binds the port;
//! `run_until_stopped` consumes and serves health until the shutdown token is
//! cancelled (or the topic changes under the read model), then commits what it applied.

use std::sync::Arc;

use anyhow::{Context, Result};
use axum::Router;
use rdkafka::consumer::{Consumer, StreamConsumer};
use store::DocumentWriter;
use telemetry::kafka::LagContext;
use tokio_util::sync::CancellationToken;
use web::Shell;

use crate::Config;
use crate::consume::Projection;
use crate::dead_letters::DeadLetters;
use crate::guard::OrderingGuard;
use crate::health::Health;
use crate::positions::AppliedPositions;

/// A persister ready to run.
#[derive(Debug)]
pub struct Application {
    shell: Shell,
    projection: Projection,
    positions_flush: std::time::Duration,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self> {
        let shell = Shell::bind(&config.http).await?;
        let store = DocumentWriter::open(&config.cassandra)
            .await
            .context("cannot open the read model in Cassandra")?;
        // The read model orders writes by offset: refuse a topic whose offsets are not the
        // ones it was built from (recreated, or with another partition count).
        let watch =
            messaging::TopicWatch::new(&config.kafka.bootstrap_servers, &config.kafka.topic)
                .context("cannot create the Kafka admin client")?;
        let guard = OrderingGuard::at_start(
            &store,
            watch,
            &config.cassandra.keyspace,
            config.topic_check(),
        )
        .await
        .context("the persister refuses to start")?;
        let consumer: StreamConsumer<LagContext> = config
            .kafka
            .client_config()
            .set("group.id", &config.group_id)
            .set(
                "statistics.interval.ms",
                telemetry::kafka::STATISTICS_INTERVAL_MS,
            )
            // A new group starts from the beginning: the read model is the whole history.
            .set("auto.offset.reset", "earliest")
            // Offsets are stored by hand once a record is applied, and committed by the
            // client in the background (and synchronously at shutdown).
            .set("enable.auto.commit", config.background_commits.to_string())
            .set("enable.auto.offset.store", "false")
            .set("auto.commit.interval.ms", "1000")
            .create_with_context(LagContext::new(&config.group_id))
            .context("cannot create the Kafka consumer")?;
        consumer
            .subscribe(&[&config.kafka.topic])
            .context("cannot subscribe to the documents topic")?;
        // Without its dead-letter topic (Kafka does not create topics on use here), the
        // first record it cannot apply would hold its partition for ever: refuse to start.
        messaging::watermarks(config.kafka.client_config(), &config.dlq_topic)
            .await
            .with_context(|| {
                format!(
                    "the dead-letter topic {} is missing: create it (`cargo xtask infra up` \
                     does, and so does the deployment's topic job) or set KAFKA_DLQ_TOPIC",
                    config.dlq_topic
                )
            })?;
        let dead_letters = DeadLetters::new(&config.kafka, &config.dlq_topic)
            .context("cannot create the dead-letter producer")?;
        // Dead letters are counted from zero, so that a dashboard shows 0, not "no data".
        crate::internal_events::DeadLettered::register();
        crate::internal_events::DuplicateSkipped::register();
        let health = Arc::new(Health::new(&config.kafka.topic, config.stuck_after()));
        let positions_flush = config.positions_flush();
        Ok(Self {
            shell,
            projection: Projection {
                consumer: Arc::new(consumer),
                store,
                dead_letters,
                group: config.group_id,
                guard,
                health,
                lanes: config.lanes.max(1),
                positions: AppliedPositions::default(),
            },
            positions_flush,
        })
    }

    pub fn port(&self) -> u16 {
        self.shell.port()
    }

    /// Consumes and serves health until `shutdown` is cancelled; then the record in hand
    /// is finished (or left for the next run), offsets are committed, and it returns. When
    /// the topic changes under the read model it stops the same way by itself, and
    /// returns the error (the binary exits non-zero with it).
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<()> {
        let store = self.projection.store.clone();
        let consumer = Arc::clone(&self.projection.consumer);
        let health = Arc::clone(&self.projection.health);
        let ready = web::readiness(move || {
            let (store, consumer) = (store.clone(), Arc::clone(&consumer));
            let health = Arc::clone(&health);
            async move {
                // First: a held record or a stop says more than "Cassandra does not answer".
                health.check()?;
                messaging::ping_with(move |timeout| {
                    consumer.client().fetch_metadata(None, timeout)
                })
                .await?;
                store.ping().await
            }
        });
        // Its own token: a stop of the projection ends serving too.
        let serving = shutdown.child_token();
        let http = tokio::spawn(self.shell.serve(Router::new(), ready, serving.clone()));
        let health = Arc::clone(&self.projection.health);
        let gauge = tokio::spawn({
            let serving = serving.clone();
            async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
                loop {
                    tokio::select! {
                        () = serving.cancelled() => break,
                        _ = tick.tick() => health.publish(),
                    }
                }
            }
        });
        // Its own token too: the last positions are written after the loop stopped.
        let positions_done = CancellationToken::new();
        let positions = tokio::spawn(self.projection.positions.clone().write_until(
            self.projection.store.clone(),
            Arc::clone(&self.projection.consumer),
            self.positions_flush,
            positions_done.clone(),
        ));
        let stopped = self.projection.run(shutdown.clone()).await;
        positions_done.cancel();
        positions.await?;
        serving.cancel();
        http.await??;
        gauge.await?;
        stopped.context("the persister stopped")?;
        tracing::info!("persister stopped");
        Ok(())
    }
}
