//! The notifier's side of the ordering guard. Its resume tokens are offsets per partition,
//! so they only mean something on the topic (id and partition count) the notifier started
//! on. It has no read model to record that in: it takes the identity at start, and when
//! the topic changes while it runs (partitions added, or the topic recreated) it ends every
//! stream cleanly and stops with an error naming the fix; a restart takes the new layout.

use std::sync::Mutex;
use std::time::Duration;

use messaging::{TopicIdentity, TopicWatch};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// What the notifier started on, and whether the topic still is that.
#[derive(Debug)]
pub struct LayoutWatch {
    watch: TopicWatch,
    started: TopicIdentity,
    interval: Duration,
    check_now: Notify,
    halted: Mutex<Option<String>>,
    /// Cancelled when the topic changed: the application stops serving.
    stop: CancellationToken,
}

impl LayoutWatch {
    pub fn new(
        watch: TopicWatch,
        started: TopicIdentity,
        interval: Duration,
        stop: CancellationToken,
    ) -> Self {
        Self {
            watch,
            started,
            interval,
            check_now: Notify::new(),
            halted: Mutex::new(None),
            stop,
        }
    }

    pub fn started(&self) -> TopicIdentity {
        self.started
    }

    /// Why the notifier stopped, once it did.
    pub fn halted(&self) -> Option<String> {
        self.halted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Something hints at a change (a consumer error): check soon, not at the next tick.
    pub fn suspect(&self) {
        self.check_now.notify_one();
    }

    /// Asks Kafka what the topic is now; on a change, stops the notifier and returns
    /// `false`. Kafka not answering, or not knowing the topic (a broker starting, or a
    /// topic deleted and not yet created again), is not a change: the consumer reads
    /// nothing meanwhile, and a topic created again has a new id, which is.
    pub async fn check(&self) -> bool {
        let topic = self.watch.topic();
        let now = match self.watch.identity().await {
            Ok(now) => now,
            Err(error) => {
                tracing::warn!(%error, "cannot tell whether the topic changed; asking again later");
                return true;
            }
        };
        if now == self.started {
            return true;
        }
        let message = if now.id != self.started.id {
            format!(
                "topic {topic} was recreated while the notifier ran (topic id {} at start, {} \
                 now): its offsets started again, so the resume tokens handed out no longer \
                 name positions in it. Every stream was ended; restart the notifier to serve \
                 the new topic (clients holding old tokens then get `event: reset`).",
                self.started.id, now.id
            )
        } else {
            format!(
                "the partition count of topic {topic} changed while the notifier ran ({} at \
                 start, {} now). Every stream was ended; restart the notifier to read every \
                 partition. The partition count of {topic} must not change: the persister \
                 refuses it too (see README, \"When the persister refuses to start\").",
                self.started.partitions, now.partitions
            )
        };
        self.halt(message);
        false
    }

    fn halt(&self, message: String) {
        tracing::error!(error = %message, "the documents topic changed: stopping");
        *self.halted.lock().unwrap_or_else(|p| p.into_inner()) = Some(message);
        self.stop.cancel();
    }

    /// Checks every `interval`, and at once when told to, until the change or `shutdown`.
    pub async fn run(&self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.stop.cancelled() => return,
                () = tokio::time::sleep(self.interval) => {}
                () = self.check_now.notified() => {}
            }
            if !self.check().await {
                return;
            }
        }
    }
}
