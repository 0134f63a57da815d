//! A steady command load on the producer's HTTP API, and its ledger: every command with
//! the answer it got. Each worker owns its documents: it creates one, updates it, and
//! sometimes deletes it, waiting for each answer before the next command, so that the
//! order of its acknowledged commands is the order they must have in the topic. Every
//! create and update carries a unique tag as its text, which finds it in the topic.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use events::{DocumentId, mime};
use serde::Serialize;
use uuid::Uuid;

/// Which command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum CommandKind {
    Create,
    Update,
    Delete,
}

impl CommandKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }
}

/// One command and its answer.
#[derive(Debug, Clone)]
pub struct CommandRecord {
    pub kind: CommandKind,
    /// The document (unknown for a create that was not acknowledged).
    pub doc: Option<Uuid>,
    /// The text it carried (empty for a delete).
    pub tag: String,
    pub acknowledged: bool,
    /// `201`, `503 <problem type>`, `error: timeout`, ...
    pub answer: String,
    pub took: Duration,
}

/// How much load.
#[derive(Debug, Clone, Copy)]
pub struct LoadPlan {
    /// Commands to send at least (the load also runs until the faults are done).
    pub commands: usize,
    /// Concurrent clients.
    pub workers: usize,
    /// Commands per second for all workers together.
    pub rate: f64,
}

/// What the load is doing now, for the fault injectors: successes and the time of the
/// latest.
#[derive(Debug)]
pub struct LoadProbe {
    started: Instant,
    pub acknowledged: AtomicU64,
    /// When the latest acknowledged command was sent, in ms since `started`.
    last_ok_sent_ms: AtomicU64,
    /// Set when the faults are done: the load may end once it sent its commands.
    pub faults_done: AtomicBool,
    /// Set to end the load at once (a failed scenario).
    pub abort: AtomicBool,
}

impl LoadProbe {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            started: Instant::now(),
            acknowledged: AtomicU64::new(0),
            last_ok_sent_ms: AtomicU64::new(0),
            faults_done: AtomicBool::new(false),
            abort: AtomicBool::new(false),
        })
    }

    /// Waits until a command sent after `since` was acknowledged; returns when that
    /// happened, as time since `since`, or `None` after `timeout`.
    pub async fn first_ok_after(&self, since: Instant, timeout: Duration) -> Option<Duration> {
        let since_ms = since.duration_since(self.started).as_millis() as u64;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.last_ok_sent_ms.load(Ordering::SeqCst) >= since_ms {
                return Some(since.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }
}

/// Runs the load against `producer` until `plan.commands` were sent and the faults are
/// done; returns every command with its answer.
pub async fn run(producer: String, plan: LoadPlan, probe: Arc<LoadProbe>) -> Vec<CommandRecord> {
    let sent = Arc::new(AtomicUsize::new(0));
    let period = Duration::from_secs_f64(plan.workers as f64 / plan.rate.max(0.001));
    let mut workers = Vec::new();
    for worker in 0..plan.workers {
        let (producer, probe, sent) = (producer.clone(), probe.clone(), sent.clone());
        workers.push(tokio::spawn(async move {
            let client = testkit::http();
            let mut log = Vec::new();
            let mut owned: Vec<Uuid> = Vec::new();
            let mut next = Instant::now() + period.mul_f64(worker as f64 / plan.workers as f64);
            let mut seq = 0_u64;
            loop {
                if probe.abort.load(Ordering::SeqCst) {
                    break;
                }
                let count = sent.load(Ordering::SeqCst);
                if count >= plan.commands && probe.faults_done.load(Ordering::SeqCst) {
                    break;
                }
                tokio::time::sleep_until(next.into()).await;
                next = (next + period).max(Instant::now() - period);
                sent.fetch_add(1, Ordering::SeqCst);
                seq += 1;
                let tag = format!("w{worker}-{seq}");
                // Mostly updates of what this worker created, some creates, few deletes:
                // each document sees a few updates and sometimes its end.
                let roll = seq % 10;
                let record = if owned.is_empty() || roll < 3 {
                    create(&client, &producer, tag).await
                } else if roll == 9 {
                    let doc = owned.swap_remove((seq as usize / 10) % owned.len());
                    delete(&client, &producer, doc).await
                } else {
                    let doc = owned[(seq as usize) % owned.len()];
                    update(&client, &producer, doc, tag, roll == 8).await
                };
                if record.acknowledged {
                    probe.acknowledged.fetch_add(1, Ordering::SeqCst);
                    let sent_ms = (Instant::now() - record.took)
                        .saturating_duration_since(probe.started)
                        .as_millis() as u64;
                    probe.last_ok_sent_ms.fetch_max(sent_ms, Ordering::SeqCst);
                    if record.kind == CommandKind::Create
                        && let Some(doc) = record.doc
                    {
                        owned.push(doc);
                    }
                }
                log.push(record);
            }
            log
        }));
    }
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.unwrap_or_default());
    }
    all
}

/// The answer of a request: its status (and problem type, for errors), or the kind of
/// transport error.
async fn answer(response: reqwest::Result<reqwest::Response>) -> (u16, String, Option<Vec<u8>>) {
    match response {
        Ok(response) => {
            let status = response.status().as_u16();
            let body = response.bytes().await.map(|b| b.to_vec()).ok();
            let kind = if (200..300).contains(&status) {
                status.to_string()
            } else {
                let problem = body
                    .as_deref()
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
                    .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned))
                    .unwrap_or_default();
                format!("{status} {problem}").trim().to_owned()
            };
            (status, kind, body)
        }
        Err(error) => {
            let kind = if error.is_timeout() {
                "error: timeout"
            } else if error.is_connect() {
                "error: connect"
            } else {
                "error: connection dropped"
            };
            (0, kind.to_owned(), None)
        }
    }
}

async fn create(client: &reqwest::Client, producer: &str, tag: String) -> CommandRecord {
    let started = Instant::now();
    let body = serde_json::json!({"author": "chaos", "text": tag}).to_string();
    let response = client
        .post(format!("{producer}/documents"))
        .header("content-type", mime::CREATE_DOCUMENT)
        .header("idempotency-key", Uuid::new_v4().to_string())
        .body(body)
        .send()
        .await;
    let (status, answer, body) = answer(response).await;
    let doc = (status == 201)
        .then(|| body.and_then(|b| serde_json::from_slice::<DocumentId>(&b).ok()))
        .flatten()
        .map(|d| d.id);
    CommandRecord {
        kind: CommandKind::Create,
        doc,
        tag,
        acknowledged: doc.is_some(),
        answer,
        took: started.elapsed(),
    }
}

async fn update(
    client: &reqwest::Client,
    producer: &str,
    doc: Uuid,
    tag: String,
    with_author: bool,
) -> CommandRecord {
    let started = Instant::now();
    // Mostly the text alone (the author stays as it is), sometimes both.
    let body = if with_author {
        serde_json::json!({"id": doc, "author": format!("a-{tag}"), "text": tag})
    } else {
        serde_json::json!({"id": doc, "text": tag})
    };
    let response = client
        .put(format!("{producer}/documents"))
        .header("content-type", mime::UPDATE_DOCUMENT)
        .header("idempotency-key", Uuid::new_v4().to_string())
        .body(body.to_string())
        .send()
        .await;
    let (status, answer, _) = answer(response).await;
    CommandRecord {
        kind: CommandKind::Update,
        doc: Some(doc),
        tag,
        acknowledged: status == 200,
        answer,
        took: started.elapsed(),
    }
}

async fn delete(client: &reqwest::Client, producer: &str, doc: Uuid) -> CommandRecord {
    let started = Instant::now();
    let response = client
        .delete(format!("{producer}/documents/{doc}"))
        .header("idempotency-key", Uuid::new_v4().to_string())
        .send()
        .await;
    let (status, answer, _) = answer(response).await;
    CommandRecord {
        kind: CommandKind::Delete,
        doc: Some(doc),
        tag: String::new(),
        acknowledged: status == 204,
        answer,
        took: started.elapsed(),
    }
}
