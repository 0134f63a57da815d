//! Frees a replay reader held by a client that stopped reading. A stream that replays
//! older history holds one of the few replay readers; if its client stops reading, the
//! response is no longer polled and nothing inside the stream can notice. This watch
//! runs beside the stream and closes the connection once the stream has been left idle
//! (not being polled, not waiting on Kafka) for the bound, which drops the stream and
//! its reader.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use tokio_util::sync::{CancellationToken, DropGuard};

use crate::internal_events::ReplayStalled;

/// The activity of one stream, shared with its watch task.
#[derive(Debug)]
struct Activity {
    epoch: Instant,
    /// Milliseconds since `epoch` when the stream last handed out a frame.
    last: AtomicU64,
    /// The stream is producing a frame (reading Kafka, say): it is not idle.
    busy: AtomicBool,
}

impl Activity {
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// Watches one stream; the watch ends when this is dropped.
#[derive(Debug)]
pub struct StallWatch {
    activity: Arc<Activity>,
    _stop: DropGuard,
}

impl StallWatch {
    /// Starts watching: `kill` closes the stream's connection once it is idle for `idle`.
    pub fn start(idle: Duration, kill: CancellationToken) -> Self {
        let activity = Arc::new(Activity {
            epoch: Instant::now(),
            last: AtomicU64::new(0),
            busy: AtomicBool::new(false),
        });
        let stop = CancellationToken::new();
        let watched = Arc::clone(&activity);
        let stopped = stop.clone();
        let bound = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
        // Checking a few times per bound closes a stalled stream within 1.25 bounds.
        let period = (idle / 4).clamp(Duration::from_millis(20), Duration::from_secs(1));
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            loop {
                tokio::select! {
                    () = stopped.cancelled() => return,
                    _ = ticks.tick() => {}
                }
                let idle_for = watched
                    .now()
                    .saturating_sub(watched.last.load(Ordering::Acquire));
                if !watched.busy.load(Ordering::Acquire) && idle_for >= bound {
                    ReplayStalled { idle }.emit();
                    kill.cancel();
                    return;
                }
            }
        });
        Self {
            activity,
            _stop: stop.drop_guard(),
        }
    }

    /// The stream started producing its next frame.
    pub fn enter(&self) {
        self.activity.busy.store(true, Ordering::Release);
    }

    /// The stream handed out a frame and waits to be polled again.
    pub fn leave(&self) {
        self.activity
            .last
            .store(self.activity.now(), Ordering::Release);
        self.activity.busy.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_idle_stream_is_closed_after_the_bound_and_a_busy_one_is_not() {
        let idle = Duration::from_secs(10);
        let (busy_kill, idle_kill) = (CancellationToken::new(), CancellationToken::new());
        let busy = StallWatch::start(idle, busy_kill.clone());
        let _idle = StallWatch::start(idle, idle_kill.clone());
        busy.enter();
        // Paused time: sleeping advances the clock as the watch tasks wait.
        tokio::time::sleep(Duration::from_secs(9)).await;
        assert!(!idle_kill.is_cancelled(), "closed before the bound");
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert!(idle_kill.is_cancelled(), "not closed within 1.25 bounds");
        assert!(
            !busy_kill.is_cancelled(),
            "a stream waiting on Kafka is not idle"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_that_keeps_handing_out_frames_is_never_closed() {
        let kill = CancellationToken::new();
        let watch = StallWatch::start(Duration::from_secs(1), kill.clone());
        for _ in 0..50 {
            watch.enter();
            tokio::time::sleep(Duration::from_millis(100)).await;
            watch.leave();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(!kill.is_cancelled());
    }
}
