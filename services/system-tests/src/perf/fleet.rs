//! SSE clients by the thousand over raw connections (an HTTP client each would measure
//! the client), each counting the events it received; and the bare SSE server the
//! notifier is measured against: a tokio broadcast channel behind axum's SSE response on
//! hyper, nothing else, run as a process of its own (`perf bare-sse`) so that its memory
//! and CPU are its own, as the notifier's are. Also the OTLP receiver of P7, likewise in
//! a process of its own (`perf otlp-sink`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

/// Open streams, each counting the `data:` lines (events) it read.
pub struct Fleet {
    counts: Vec<Arc<AtomicUsize>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Fleet {
    /// Opens `clients` streams of `GET path` on `address`, each answered 200 before the
    /// next is opened.
    pub async fn connect(address: SocketAddr, path: &str, clients: usize) -> Result<Self> {
        let mut fleet = Self {
            counts: Vec::with_capacity(clients),
            tasks: Vec::with_capacity(clients),
        };
        for i in 0..clients {
            let mut socket = TcpStream::connect(address)
                .await
                .with_context(|| format!("stream {i} of {clients}: cannot connect"))?;
            socket
                .write_all(
                    format!(
                        "GET {path} HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n"
                    )
                    .as_bytes(),
                )
                .await?;
            let (head, rest) = read_head(&mut socket).await?;
            if !head.starts_with("HTTP/1.1 200") {
                bail!(
                    "stream {i} of {clients} was refused: {}",
                    head.lines().next().unwrap_or("")
                );
            }
            let count = Arc::new(AtomicUsize::new(0));
            fleet.counts.push(Arc::clone(&count));
            fleet
                .tasks
                .push(tokio::spawn(count_events(socket, rest, count)));
        }
        Ok(fleet)
    }

    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// Events every client has received so far (the fewest any has).
    pub fn least(&self) -> usize {
        self.counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .min()
            .unwrap_or(0)
    }

    /// Events received by all clients together.
    pub fn total(&self) -> usize {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Waits until every client has `events` events; how long since `since`.
    pub async fn wait_all(
        &self,
        events: usize,
        since: Instant,
        timeout: Duration,
    ) -> Result<Duration> {
        while self.least() < events {
            if since.elapsed() > timeout {
                bail!(
                    "after {timeout:?} the slowest of {} clients had {} of {events} events ({} in all)",
                    self.len(),
                    self.least(),
                    self.total()
                );
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(since.elapsed())
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Reads the response head; returns it and whatever body bytes came with it.
async fn read_head(socket: &mut TcpStream) -> Result<(String, Vec<u8>)> {
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0_u8; 1024];
    loop {
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            bail!("the server closed the connection before answering");
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buffer.split_off(end + 4);
            return Ok((String::from_utf8_lossy(&buffer).into_owned(), rest));
        }
    }
}

/// Counts `\ndata:` in the stream (each event has one; chunk headers and `id:` lines
/// put a newline before it), across read boundaries.
async fn count_events(mut socket: TcpStream, first: Vec<u8>, count: Arc<AtomicUsize>) {
    const NEEDLE: &[u8] = b"\ndata:";
    let mut carry: Vec<u8> = Vec::with_capacity(NEEDLE.len());
    let mut chunk = vec![0_u8; 16 * 1024];
    let mut pending = first;
    loop {
        if !pending.is_empty() {
            let mut window = std::mem::take(&mut carry);
            window.extend_from_slice(&pending);
            let found = window
                .windows(NEEDLE.len())
                .filter(|w| *w == NEEDLE)
                .count();
            count.fetch_add(found, Ordering::Relaxed);
            let keep = window.len().min(NEEDLE.len() - 1);
            carry = window[window.len() - keep..].to_vec();
        }
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => pending = chunk[..n].to_vec(),
        }
    }
}

/// The bare SSE server: every payload sent into its channel goes to every stream.
pub struct BareServer {
    pub address: SocketAddr,
    sender: broadcast::Sender<Arc<str>>,
    task: JoinHandle<()>,
}

impl BareServer {
    pub async fn start() -> Result<Self> {
        let (sender, _) = broadcast::channel::<Arc<str>>(4096);
        let streams = sender.clone();
        let router = axum::Router::new().route(
            "/documents",
            axum::routing::get(move || {
                let receiver = streams.subscribe();
                async move {
                    let events =
                        futures_util::stream::unfold(receiver, |mut receiver| async move {
                            loop {
                                match receiver.recv().await {
                                    Ok(json) => {
                                        let event =
                                            axum::response::sse::Event::default().data(&*json);
                                        return Some((Ok::<_, Infallible>(event), receiver));
                                    }
                                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                                    Err(broadcast::error::RecvError::Closed) => return None,
                                }
                            }
                        });
                    axum::response::sse::Sse::new(events)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self {
            address,
            sender,
            task,
        })
    }

    /// Sends one payload to every stream.
    pub fn send(&self, json: Arc<str>) {
        let _ = self.sender.send(json);
    }
}

impl Drop for BareServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `perf bare-sse`: serves the bare SSE server on a free port of loopback, prints its
/// address, and sends every line read from stdin to every stream, until stdin closes.
pub async fn serve_bare() -> Result<()> {
    let server = BareServer::start().await?;
    super::child::serve_lines(&server.address.to_string(), |line| {
        server.send(Arc::from(line));
        None
    })
    .await
}

/// `perf otlp-sink`: a real OTLP/HTTP receiver; prints its endpoint, and answers each
/// line of stdin with the number of spans received so far.
pub async fn serve_otlp_sink() -> Result<()> {
    let receiver = testkit::otlp::OtlpReceiver::start().await;
    super::child::serve_lines(&receiver.endpoint, |_| {
        Some(receiver.spans().len().to_string())
    })
    .await
}

/// Resident memory of process `pid`, in KiB.
pub fn resident_kib(pid: i32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read the memory of process {pid}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS line")
}
