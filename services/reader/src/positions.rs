//! Waiting for a `Document-Position`: a read that carries one is answered only once the
//! persister recorded that it applied at least that offset of that partition
//! (`applied_positions`), or fails after a bound.
//!
//! Waiting is single-flight: one task polls Cassandra, one small read per partition that
//! has waiters per poll interval, however many requests wait, and publishes the offsets
//! it saw; every waiter watches those. It polls only while someone waits, and the offsets
//! seen last answer at once a read whose position was already reached (they can be
//! behind the table, never ahead of it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use events::Position;
use store::DocumentReader;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

/// The offsets seen applied, by partition.
type Applied = HashMap<i32, i64>;

/// The reader's handle on the applied positions.
#[derive(Debug, Clone)]
pub struct Positions {
    shared: Arc<Shared>,
    bound: Duration,
}

#[derive(Debug)]
struct Shared {
    applied: watch::Sender<Applied>,
    /// Partitions with waiters, and how many each.
    wanted: Mutex<HashMap<i32, usize>>,
    waiting: Notify,
}

/// The position was not applied within the bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotCaughtUp {
    /// The newest offset of the partition seen applied, if any.
    pub applied: Option<i64>,
}

impl Positions {
    /// Starts the polling task, which stops with `stop`. A read waits at most `bound`.
    pub fn start(
        store: DocumentReader,
        poll: Duration,
        bound: Duration,
        stop: CancellationToken,
    ) -> Self {
        let shared = Arc::new(Shared {
            applied: watch::Sender::new(Applied::new()),
            wanted: Mutex::default(),
            waiting: Notify::new(),
        });
        tokio::spawn(poll_while_wanted(Arc::clone(&shared), store, poll, stop));
        Self { shared, bound }
    }

    /// The bound on one wait.
    pub fn bound(&self) -> Duration {
        self.bound
    }

    /// Returns once `position` was applied, or `Err` after the bound.
    pub async fn wait_for(&self, position: Position) -> Result<(), NotCaughtUp> {
        let seen = |applied: &Applied| applied.get(&position.partition).copied();
        let mut applied = self.shared.applied.subscribe();
        if seen(&applied.borrow_and_update()).is_some_and(|o| position.reached_by(o)) {
            return Ok(());
        }
        let _wanted = Wanted::register(&self.shared, position.partition);
        let reached = async {
            loop {
                if applied.changed().await.is_err() {
                    // The poller stopped (the reader shuts down): wait out the bound.
                    std::future::pending::<()>().await;
                }
                if seen(&applied.borrow_and_update()).is_some_and(|o| position.reached_by(o)) {
                    return;
                }
            }
        };
        tokio::time::timeout(self.bound, reached)
            .await
            .map_err(|_elapsed| NotCaughtUp {
                applied: seen(&self.shared.applied.borrow()),
            })
    }
}

/// A waiter's interest in a partition, withdrawn when the wait ends however it ends.
struct Wanted<'a> {
    shared: &'a Shared,
    partition: i32,
}

impl<'a> Wanted<'a> {
    fn register(shared: &'a Shared, partition: i32) -> Self {
        *lock(&shared.wanted).entry(partition).or_default() += 1;
        shared.waiting.notify_one();
        Self { shared, partition }
    }
}

impl Drop for Wanted<'_> {
    fn drop(&mut self) {
        let mut wanted = lock(&self.shared.wanted);
        if let Some(count) = wanted.get_mut(&self.partition) {
            *count -= 1;
            if *count == 0 {
                wanted.remove(&self.partition);
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The one poller: while some partition has waiters, reads its applied offset every
/// `poll` and publishes what moved forward.
async fn poll_while_wanted(
    shared: Arc<Shared>,
    store: DocumentReader,
    poll: Duration,
    stop: CancellationToken,
) {
    loop {
        let partitions: Vec<i32> = lock(&shared.wanted).keys().copied().collect();
        if partitions.is_empty() {
            tokio::select! {
                () = stop.cancelled() => return,
                () = shared.waiting.notified() => continue,
            }
        }
        for partition in partitions {
            match store.applied_offset(partition).await {
                Ok(Some(offset)) => {
                    shared
                        .applied
                        .send_if_modified(|applied| match applied.get(&partition) {
                            Some(&known) if known >= offset => false,
                            _ => {
                                applied.insert(partition, offset);
                                true
                            }
                        });
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%error, partition, "cannot read the applied position");
                }
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(poll) => {}
        }
    }
}
