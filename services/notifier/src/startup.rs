//! Building and running the notifier: `Application::build` finds the partitions and where
//! recent history starts, assigns the consumer and binds the port; `run_until_stopped`
//! consumes and serves until the shutdown token is cancelled, then ends every stream.

use std::sync::Arc;

use anyhow::{Context, Result};
use rdkafka::consumer::{Consumer, StreamConsumer};
use telemetry::kafka::LagContext;
use tokio_util::sync::CancellationToken;
use web::Shell;

use crate::Config;
use crate::hub::Hub;
use crate::kafka::{self, ReplayPool};
use crate::layout::LayoutWatch;
use crate::routes::{self, Streams};
use crate::serve;

/// A notifier ready to run.
pub struct Application {
    shell: Shell,
    hub: Arc<Hub>,
    consumer: Arc<StreamConsumer<LagContext>>,
    targets: Vec<i64>,
    layout: Arc<LayoutWatch>,
    /// Cancelled by the layout watch when the topic changes: serving ends.
    stopping: CancellationToken,
    config: Config,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.shell.port())
            .field("hub", &self.hub)
            .finish_non_exhaustive()
    }
}

impl Application {
    pub async fn build(config: Config) -> Result<Self> {
        let shell = Shell::bind(&config.http).await?;
        // What the resume tokens will mean: this topic (id) with this many partitions.
        let watch =
            messaging::TopicWatch::new(&config.kafka.bootstrap_servers, &config.kafka.topic)
                .context("cannot create the Kafka admin client")?;
        let identity = watch
            .identity_at_start()
            .await
            .context("cannot tell which topic the documents topic is (id and partitions)")?;
        let marks = kafka::watermarks(&config.kafka)
            .await
            .context("cannot read the documents topic's partitions")?;
        if marks.len() != usize::try_from(identity.partitions).unwrap_or(0) {
            anyhow::bail!(
                "the documents topic {} changed while the notifier started ({} partitions, \
                 then {}); start it again",
                config.kafka.topic,
                identity.partitions,
                marks.len()
            );
        }
        let stopping = CancellationToken::new();
        let layout = Arc::new(LayoutWatch::new(
            watch,
            identity,
            config.topic_check(),
            stopping.clone(),
        ));
        // Pre-fill memory with the last events of each partition, so that the clients
        // reconnecting after a restart are served without Kafka replays.
        let depth = i64::try_from(config.history_per_partition).unwrap_or(i64::MAX);
        let start: Vec<i64> = marks
            .iter()
            .map(|&(low, high)| low.max(high - depth))
            .collect();
        let targets: Vec<i64> = marks.iter().map(|&(_, high)| high).collect();
        let consumer = kafka::live_consumer(&config.kafka, &start)
            .context("cannot create the Kafka consumer")?;
        let hub = Hub::new(
            start,
            config.history_per_partition,
            config.client_buffer,
            config.max_clients,
        );
        Ok(Self {
            shell,
            hub,
            consumer: Arc::new(consumer),
            targets,
            layout,
            stopping,
            config,
        })
    }

    pub fn port(&self) -> u16 {
        self.shell.port()
    }

    /// Consumes and serves until `shutdown` is cancelled; then every stream ends cleanly.
    /// When the topic changes under it (partitions added, or recreated), it ends every
    /// stream the same way by itself and returns the error naming the fix.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<()> {
        // Serving stops on shutdown, or when the layout watch says the topic changed.
        let stopping = self.stopping.clone();
        let forward = shutdown.clone();
        let outer = stopping.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = forward.cancelled() => outer.cancel(),
                () = outer.cancelled() => {}
            }
        });
        let consumer_stop = CancellationToken::new();
        let consumer = tokio::spawn(kafka::run_consumer(
            Arc::clone(&self.consumer),
            Arc::clone(&self.hub),
            self.targets,
            self.config.kafka.topic.clone(),
            Arc::clone(&self.layout),
            consumer_stop.clone(),
        ));
        let watching = tokio::spawn({
            let (layout, stop) = (Arc::clone(&self.layout), consumer_stop.clone());
            async move { layout.run(stop).await }
        });
        let hub = Arc::clone(&self.hub);
        let live = Arc::clone(&self.consumer);
        let layout = Arc::clone(&self.layout);
        let ready = web::readiness(move || {
            let (hub, live) = (Arc::clone(&hub), Arc::clone(&live));
            let halted = layout.halted();
            async move {
                if let Some(why) = halted {
                    return Err(format!("the notifier stopped: {why}"));
                }
                messaging::ping_with(move |timeout| live.client().fetch_metadata(None, timeout))
                    .await?;
                if hub.is_caught_up() {
                    Ok(())
                } else {
                    Err("still loading recent history".to_owned())
                }
            }
        });
        let streams = Streams {
            hub: Arc::clone(&self.hub),
            replays: ReplayPool::new(self.config.kafka.clone(), self.config.replay_consumers),
            keep_alive: self.config.keep_alive(),
            retry: self.config.retry(),
            replay_wait: self.config.replay_wait(),
            replay_idle: self.config.replay_idle(),
            max_replay: self.config.max_replay.max(0),
        };
        let router = self.shell.router(routes::router(streams), ready);
        // The hub ends every stream when shutdown begins, so that connections can finish.
        let hub = Arc::clone(&self.hub);
        let closing = stopping.clone();
        tokio::spawn(async move {
            closing.cancelled().await;
            hub.close_all();
        });
        serve::serve(self.shell.into_listener(), router, stopping).await;
        consumer_stop.cancel();
        consumer.await?;
        watching.await?;
        if let Some(why) = self.layout.halted() {
            anyhow::bail!("the notifier stopped: {why}");
        }
        tracing::info!("notifier stopped");
        Ok(())
    }
}
