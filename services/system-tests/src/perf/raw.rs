//! The raw baselines: what rdkafka and the scylla driver do on the same servers with
//! nothing of the platform around them, and the records and rows they use (the same
//! payload the producer writes).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use events::{Event, mime};
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use tokio::sync::Mutex;
use uuid::Uuid;

use super::drive::{self, Outcome};

/// A created-document event like the producer's, with a text of about `text` bytes.
pub fn created_event(text: usize) -> Event {
    let command = events::CreateDocument {
        author: Some("bench".into()),
        text: Some("x".repeat(text)),
    };
    Event::created(Uuid::new_v4(), command, Uuid::new_v4().simple().to_string())
}

/// A producer configured as the platform's (idempotent, acks=all).
pub fn durable_producer() -> Result<FutureProducer> {
    messaging::durable_producer_config(&testkit::infra().bootstrap, Duration::from_secs(30))
        .create()
        .context("cannot create a Kafka producer")
}

/// Writes `event` as the producer does (key = document id, the event content type);
/// true once Kafka acknowledged it.
pub async fn send(producer: &FutureProducer, topic: &str, event: &Event) -> bool {
    let json = event.to_json();
    let key = event.key();
    let headers = OwnedHeaders::new().insert(Header {
        key: "content-type",
        value: Some(mime::EVENT),
    });
    let record = FutureRecord::to(topic)
        .key(&key)
        .payload(&json)
        .headers(headers);
    producer.send(record, Duration::from_secs(30)).await.is_ok()
}

/// `count` sends of fresh events, `concurrency` in flight (P1's baseline).
pub async fn produce_closed(
    producer: &FutureProducer,
    topic: &str,
    count: usize,
    concurrency: usize,
) -> Outcome {
    drive::closed_loop(count, concurrency, |_| {
        let event = created_event(32);
        async move { send(producer, topic, &event).await }
    })
    .await
}

/// `count` sends at `rate` per second, each timed to its acknowledgement (P2's baseline).
pub async fn produce_open(
    producer: &FutureProducer,
    topic: &str,
    count: usize,
    rate: f64,
) -> Outcome {
    drive::open_loop(count, rate, |_| {
        let (producer, topic) = (producer.clone(), topic.to_owned());
        let event = created_event(32);
        async move { send(&producer, &topic, &event).await }
    })
    .await
}

/// A consumer of every partition of `topic` from its end, outside any group.
pub async fn tail_consumer(topic: &str) -> Result<StreamConsumer> {
    let ends =
        messaging::watermarks(messaging::client_config(&testkit::infra().bootstrap), topic).await?;
    let consumer: StreamConsumer = messaging::client_config(&testkit::infra().bootstrap)
        .set("group.id", format!("bench-{}", Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .create()?;
    let mut assignment = rdkafka::TopicPartitionList::new();
    for (partition, (_, high)) in ends.iter().enumerate() {
        assignment.add_partition_offset(topic, partition as i32, rdkafka::Offset::Offset(*high))?;
    }
    consumer.assign(&assignment)?;
    Ok(consumer)
}

/// Produce at `rate`, consume with a plain consumer, and time each record from its send
/// to its arrival (P4's baseline).
pub async fn produce_to_consume(topic: &str, count: usize, rate: f64) -> Result<Outcome> {
    let producer = durable_producer()?;
    let consumer = tail_consumer(topic).await?;
    let sent: Arc<Mutex<std::collections::HashMap<Vec<u8>, Instant>>> = Arc::default();
    let arrivals = {
        let sent = Arc::clone(&sent);
        tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(count);
            let deadline = Instant::now() + Duration::from_secs(120);
            while latencies.len() < count && Instant::now() < deadline {
                let Ok(Ok(message)) =
                    tokio::time::timeout(Duration::from_secs(5), consumer.recv()).await
                else {
                    continue;
                };
                let arrived = Instant::now();
                if let Some(key) = message.key()
                    && let Some(at) = sent.lock().await.remove(key)
                {
                    latencies.push(arrived - at);
                }
            }
            latencies
        })
    };
    // The consumer's assignment takes effect on its first fetch: give it a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let period = Duration::from_secs_f64(1.0 / rate.max(1.0));
    for i in 0..count {
        tokio::time::sleep_until((started + period.mul_f64(i as f64)).into()).await;
        let event = created_event(32);
        sent.lock()
            .await
            .insert(event.key().into_bytes(), Instant::now());
        let (producer, topic) = (producer.clone(), topic.to_owned());
        tokio::spawn(async move { send(&producer, &topic, &event).await });
    }
    let latencies = arrivals.await?;
    Ok(Outcome {
        failed: count - latencies.len(),
        latencies: super::stats::Latencies::new(latencies),
        elapsed: started.elapsed(),
    })
}

/// The documents table's insert and point read, prepared on `keyspace`.
pub struct Table {
    session: Arc<Session>,
    insert: PreparedStatement,
    select: PreparedStatement,
}

impl Table {
    pub async fn prepare(session: Arc<Session>, keyspace: &str) -> Result<Self> {
        let insert = session
            .prepare(format!(
                "INSERT INTO {keyspace}.documents (id, author, text) VALUES (?, ?, ?) USING TIMESTAMP ?"
            ))
            .await?;
        let select = session
            .prepare(format!(
                "SELECT id, author, text FROM {keyspace}.documents WHERE id = ?"
            ))
            .await?;
        Ok(Self {
            session,
            insert,
            select,
        })
    }

    /// `count` inserts of fresh rows, `concurrency` in flight (P3's baseline).
    pub async fn insert_closed(&self, count: usize, concurrency: usize) -> Outcome {
        drive::closed_loop(count, concurrency, |i| async move {
            self.session
                .execute_unpaged(
                    &self.insert,
                    (Uuid::new_v4(), "bench", "x".repeat(32), i as i64 + 1),
                )
                .await
                .is_ok()
        })
        .await
    }

    /// `count` point reads of `ids` in turn, `concurrency` in flight (P6's baseline).
    pub async fn read_closed(&self, ids: &[Uuid], count: usize, concurrency: usize) -> Outcome {
        drive::closed_loop(count, concurrency, |i| {
            let id = ids[i % ids.len()];
            async move {
                self.session
                    .execute_unpaged(&self.select, (id,))
                    .await
                    .is_ok_and(|result| result.is_rows())
            }
        })
        .await
    }
}

/// `perf bare-reader <keyspace>`: the reader with nothing of the platform around it, the
/// server P6's reads are also measured against to show what HTTP itself costs: axum on
/// hyper, `GET /documents/{id}` answered by the reader's own `store::DocumentReader` (the
/// same prepared read through the same driver), as JSON; no Document-Position, no
/// problem bodies, and no telemetry (this process installs no tracing subscriber and no
/// metrics recorder, so the store's span and histogram cost next to nothing). Serves on
/// a free port of loopback, prints its address, and stops when stdin closes.
pub async fn serve_bare_reader(keyspace: &str) -> Result<()> {
    let args = store::CassandraArgs::new(&testkit::infra().contact_points, keyspace);
    let documents = Arc::new(
        store::DocumentReader::open(&args)
            .await
            .context("the bare reader cannot open the documents table")?,
    );
    let router = axum::Router::new().route(
        "/documents/{id}",
        axum::routing::get(
            |axum::extract::State(documents): axum::extract::State<Arc<store::DocumentReader>>,
             axum::extract::Path(id): axum::extract::Path<Uuid>| async move {
                use axum::response::IntoResponse;
                match documents.get(id).await {
                    Ok(Some(document)) => axum::Json(document).into_response(),
                    Ok(None) => axum::http::StatusCode::NOT_FOUND.into_response(),
                    Err(_) => axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response(),
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router.with_state(documents)).await;
    });
    super::child::serve_lines(&address.to_string(), |_| None).await
}
