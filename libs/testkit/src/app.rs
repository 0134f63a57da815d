//! Running a service under test: the `spawn_app` pattern. A test builds the service's
//! `Application` on port 0 and hands its `run_until_stopped` to `spawn`; the guard
//! stops it when dropped, or cleanly (awaiting the shutdown) with `stop`.

use std::future::Future;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A service running on a Tokio task of the test.
#[derive(Debug)]
pub struct RunningApp {
    /// `http://127.0.0.1:<port>`
    pub address: String,
    pub port: u16,
    shutdown: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Starts `run` (an application's `run_until_stopped`) on a task, serving on `port`.
pub fn spawn<F, Fut>(port: u16, run: F) -> RunningApp
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    crate::init_telemetry();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run(shutdown.clone()));
    RunningApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        shutdown,
        task: Some(task),
    }
}

impl RunningApp {
    /// Waits until the service stops by itself (no shutdown signal), and returns how it
    /// ended; panics when it still runs after `within`.
    pub async fn ended(mut self, within: std::time::Duration) -> anyhow::Result<()> {
        let task = self.task.as_mut().expect("the service task");
        let outcome = tokio::time::timeout(within, task)
            .await
            .unwrap_or_else(|_| panic!("the service still runs after {within:?}"))
            .expect("service task");
        self.task = None;
        outcome
    }

    /// Signals shutdown and waits until the service has stopped; panics if it failed.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await
                .expect("service task")
                .expect("service stops cleanly");
        }
    }
}

impl Drop for RunningApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
