//! Retrying with exponential backoff until an operation succeeds or shutdown begins: how
//! the consumers hold on to a record while Kafka or Cassandra fails, without moving past
//! it and without delaying a shutdown.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Delays that double from `first` up to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Self {
        Self { next: first, max }
    }

    /// The delay to wait now; the one after it is twice as long, up to the maximum.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }
}

impl Default for Backoff {
    /// 100 ms doubling to 5 s: quick on a blip, gentle on an outage.
    fn default() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(5))
    }
}

/// Runs `attempt` until it succeeds, waiting with `backoff` between tries, and calls
/// `failed(error, attempt number, delay before the next try)` after each failure. Returns
/// `None` when `shutdown` comes first (during a try's wait, never in the middle of one).
pub async fn retry<T, E, F, Fut>(
    shutdown: &CancellationToken,
    mut backoff: Backoff,
    mut attempt: F,
    mut failed: impl FnMut(&E, u32, Duration),
) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut number = 1;
    loop {
        match attempt().await {
            Ok(value) => return Some(value),
            Err(error) => {
                let delay = backoff.next_delay();
                failed(&error, number, delay);
                tokio::select! {
                    () = shutdown.cancelled() => return None,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
        number += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_maximum() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let delays: Vec<u128> = (0..4).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 350, 350]);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_until_success_and_reports_each_failure() {
        let shutdown = CancellationToken::new();
        let mut calls = 0;
        let mut reported = Vec::new();
        let result = retry(
            &shutdown,
            Backoff::default(),
            || {
                calls += 1;
                let outcome = if calls < 3 { Err(calls) } else { Ok("done") };
                async move { outcome }
            },
            |error: &i32, number, delay| reported.push((*error, number, delay.as_millis())),
        )
        .await;
        assert_eq!(result, Some("done"));
        assert_eq!(reported, [(1, 1, 100), (2, 2, 200)]);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_ends_the_wait() {
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        let result: Option<()> = retry(
            &shutdown,
            Backoff::default(),
            || async { Err::<(), _>("down") },
            |_, _, _| {},
        )
        .await;
        assert_eq!(result, None);
    }
}
