//! Load: closed-loop (a fixed number of operations in flight) and open-loop (operations
//! started at a fixed rate, whatever the answers), each operation timed. Used alike for
//! the platform (HTTP) and its raw baselines (rdkafka, scylla), so that both sides of a
//! ratio meet the same driver.

use std::future::Future;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use super::stats::Latencies;

/// What a run of operations gave.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Latencies of the operations that succeeded.
    pub latencies: Latencies,
    pub failed: usize,
    pub elapsed: Duration,
}

impl Outcome {
    /// Successful operations per second.
    pub fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs `count` operations, `concurrency` in flight at a time.
pub async fn closed_loop<F, Fut>(count: usize, concurrency: usize, operation: F) -> Outcome
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    let results: Vec<(Duration, bool)> = futures_util::stream::iter(0..count)
        .map(|i| {
            let run = operation(i);
            async move {
                let began = Instant::now();
                let ok = run.await;
                (began.elapsed(), ok)
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    outcome(results, started.elapsed())
}

/// Starts `count` operations at `rate` per second (each on a task of its own, however
/// many are in flight), and times each from its scheduled start, so that a stall counts
/// against every operation it delays.
pub async fn open_loop<F, Fut>(count: usize, rate: f64, operation: F) -> Outcome
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = bool> + Send + 'static,
{
    let period = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(count);
    for i in 0..count {
        let due = started + period.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        let run = operation(i);
        tasks.push(tokio::spawn(async move {
            let ok = run.await;
            (due.elapsed(), ok)
        }));
    }
    let mut results = Vec::with_capacity(count);
    for task in tasks {
        if let Ok(result) = task.await {
            results.push(result);
        }
    }
    outcome(results, started.elapsed())
}

fn outcome(results: Vec<(Duration, bool)>, elapsed: Duration) -> Outcome {
    let failed = results.iter().filter(|(_, ok)| !ok).count();
    let latencies = results
        .into_iter()
        .filter_map(|(latency, ok)| ok.then_some(latency))
        .collect();
    Outcome {
        latencies: Latencies::new(latencies),
        failed,
        elapsed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_closed_loop_keeps_its_concurrency_and_counts_failures() {
        let in_flight = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let outcome = closed_loop(40, 4, |i| {
            let (in_flight, most) = (in_flight.clone(), most.clone());
            async move {
                let now = in_flight.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                most.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
                in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                i % 10 != 0
            }
        })
        .await;
        assert_eq!(outcome.failed, 4);
        assert_eq!(outcome.latencies.len(), 36);
        assert_eq!(most.load(std::sync::atomic::Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn an_open_loop_keeps_its_rate() {
        let outcome = open_loop(20, 200.0, |_| async { true }).await;
        // 20 operations at 200/s start over 95 ms.
        assert!(outcome.elapsed >= Duration::from_millis(90), "{outcome:?}");
        assert_eq!(outcome.latencies.len(), 20);
    }
}
