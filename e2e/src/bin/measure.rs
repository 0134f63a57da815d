//! Measures a running deployment through its gateway, for `cargo xtask bench`:
//!
//! - `latency`: create latency (POST to 201), create to readable (201 to the reader's
//!   200) and create to notified (201 to the event on an open stream), against a
//!   baseline of the same gateway answering `/producer/healthz`;
//! - `idle`: opens N streams, says `ready` on stdout, and holds them until stdin closes,
//!   so that the caller can read the notifier's memory meanwhile.
//!
//! Figures are printed as percentiles and as ratios to the baseline of the same run,
//! since the machines are shared and noisy.

use std::collections::HashMap;
use std::io::BufRead;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use events::{DocumentId, Event, mime};
use testkit::sse::SseClient;
use tokio::sync::Notify;
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(
    name = "measure",
    about = "Latency and memory figures of a running deployment"
)]
struct Cli {
    /// The deployment's gateway.
    #[arg(long, global = true, default_value = e2e::DEFAULT_GATEWAY)]
    gateway: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create latency, create to readable, create to notified, over COUNT creates.
    Latency {
        #[arg(long, default_value_t = 300)]
        count: usize,
    },
    /// Hold CLIENTS idle streams open until stdin closes.
    Idle {
        #[arg(long, default_value_t = 1000)]
        clients: usize,
    },
    /// Creates per second against one producer (its own URL, not the gateway's).
    Throughput {
        /// The producer's base URL, e.g. http://127.0.0.1:8083
        #[arg(long)]
        producer: String,
        #[arg(long, default_value_t = 2000)]
        count: usize,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let base = cli.gateway.trim_end_matches('/').to_owned();
    match cli.command {
        Command::Latency { count } => latency(&base, count).await,
        Command::Idle { clients } => idle(&base, clients).await,
        Command::Throughput {
            producer,
            count,
            concurrency,
        } => throughput(&producer, count, concurrency).await,
    }
}

/// Sends `count` creates with `concurrency` in flight; prints creates per second.
async fn throughput(producer: &str, count: usize, concurrency: usize) -> anyhow::Result<()> {
    let client = reqwest::Client::builder().no_proxy().build()?;
    let url = format!("{}/documents", producer.trim_end_matches('/'));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, url, next) = (client.clone(), url.clone(), Arc::clone(&next));
        workers.push(tokio::spawn(async move {
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < count {
                let response = client
                    .post(&url)
                    .header("content-type", mime::CREATE_DOCUMENT)
                    .body(r#"{"author":"bench","text":"throughput"}"#)
                    .send()
                    .await?;
                anyhow::ensure!(response.status() == 201, "create: {}", response.status());
            }
            anyhow::Ok(())
        }));
    }
    for worker in workers {
        worker.await??;
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    println!("{rate:.1} creates/s");
    Ok(())
}

/// Prints percentiles of a sample, in milliseconds; returns its median.
fn summary(name: &str, mut sample: Vec<Duration>, baseline_median: Option<f64>) -> f64 {
    sample.sort();
    let at = |q: f64| {
        let index = ((sample.len() as f64 - 1.0) * q).round() as usize;
        sample[index].as_secs_f64() * 1000.0
    };
    let (median, p99) = (at(0.5), at(0.99));
    let ratio = baseline_median
        .map(|b| format!("  ({:.1}x baseline median)", median / b))
        .unwrap_or_default();
    println!(
        "{name:<34} n={:<5} median {median:>7.2} ms  p99 {p99:>7.2} ms  max {:>7.2} ms{ratio}",
        sample.len(),
        at(1.0)
    );
    median
}

async fn latency(base: &str, count: usize) -> anyhow::Result<()> {
    let client = reqwest::Client::builder().no_proxy().build()?;

    // Baseline: the same gateway and service, without Kafka or Cassandra.
    let mut baseline = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        let response = client
            .get(format!("{base}/producer/healthz"))
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "healthz: {}",
            response.status()
        );
        response.bytes().await?;
        baseline.push(started.elapsed());
    }

    // One stream records when each document's event arrives.
    let arrivals: Arc<Mutex<HashMap<Uuid, Instant>>> = Arc::default();
    let arrived = Arc::new(Notify::new());
    let mut stream = SseClient::connect(&format!("{base}/notifier/documents"), None).await;
    anyhow::ensure!(stream.status == 200, "notifier: {}", stream.status);
    stream.next_frame(Duration::from_secs(10)).await;
    {
        let (arrivals, arrived) = (Arc::clone(&arrivals), Arc::clone(&arrived));
        tokio::spawn(async move {
            while let Some(frame) = stream.next_frame(Duration::from_secs(3600)).await {
                let Some(data) = frame.data else { continue };
                if let Ok(event) = Event::from_json(data.as_bytes()) {
                    arrivals
                        .lock()
                        .expect("arrivals")
                        .insert(event.payload.id, Instant::now());
                    arrived.notify_waiters();
                }
            }
        });
    }

    let (mut created, mut readable, mut notified) = (vec![], vec![], vec![]);
    for _ in 0..count {
        let started = Instant::now();
        let response = client
            .post(format!("{base}/producer/documents"))
            .header("content-type", mime::CREATE_DOCUMENT)
            .body(r#"{"author":"bench","text":"latency"}"#)
            .send()
            .await?;
        anyhow::ensure!(response.status() == 201, "create: {}", response.status());
        let id = response.json::<DocumentId>().await?.id;
        let acknowledged = Instant::now();
        created.push(acknowledged - started);

        let deadline = acknowledged + Duration::from_secs(10);
        loop {
            let response = client
                .get(format!("{base}/reader/documents/{id}"))
                .send()
                .await?;
            if response.status() == 200 {
                readable.push(acknowledged.elapsed());
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "{id} not readable within 10 s");
        }
        loop {
            let waiting = arrived.notified();
            if let Some(&at) = arrivals.lock().expect("arrivals").get(&id) {
                notified.push(at.saturating_duration_since(acknowledged));
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "{id} not notified within 10 s");
            let _ = tokio::time::timeout(Duration::from_millis(100), waiting).await;
        }
    }

    println!("through {base}, {count} sequential calls each:");
    let base_median = summary("baseline: GET /producer/healthz", baseline, None);
    summary("create: POST to 201", created, Some(base_median));
    summary(
        "create to readable: 201 to 200",
        readable,
        Some(base_median),
    );
    summary(
        "create to notified: 201 to SSE",
        notified,
        Some(base_median),
    );
    Ok(())
}

async fn idle(base: &str, clients: usize) -> anyhow::Result<()> {
    let mut streams = Vec::with_capacity(clients);
    for i in 0..clients {
        let mut stream = SseClient::connect(&format!("{base}/notifier/documents"), None).await;
        anyhow::ensure!(stream.status == 200, "stream {i}: status {}", stream.status);
        stream.next_frame(Duration::from_secs(10)).await;
        streams.push(stream);
    }
    println!("ready {clients}");
    // Hold the streams until the caller closes stdin.
    tokio::task::spawn_blocking(|| {
        let stdin = std::io::stdin();
        for _ in stdin.lock().lines() {}
    })
    .await?;
    drop(streams);
    Ok(())
}
