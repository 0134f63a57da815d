//! Reads that name a `Document-Position`, against the real Cassandra: answered only once
//! the persister's table says that position was applied (written here with the
//! persister's own `DocumentWriter`), 503 with `Retry-After` after the bound, 400 for a
//! malformed position. The whole pipeline with the persister running is in
//! `services/system-tests` (`read_your_writes`).

use std::time::{Duration, Instant};

use events::{Event, Position, mime, position};
use reader::{Application, Config};
use reqwest::StatusCode;
use store::DocumentWriter;
use testkit::{RunningApp, TestKeyspace};
use uuid::Uuid;

/// A reader on its own keyspace, and the persister's writer of that keyspace.
struct World {
    reader: RunningApp,
    writer: DocumentWriter,
    _keyspace: TestKeyspace,
}

async fn world(wait: Duration) -> World {
    let infra = testkit::infra();
    let keyspace = infra.keyspace().await;
    let mut config = Config::for_tests(&infra.contact_points, keyspace.name());
    config.position_wait_ms = u64::try_from(wait.as_millis()).unwrap();
    let app = Application::build(config).await.expect("reader starts");
    let reader = testkit::spawn(app.port(), |stop| app.run_until_stopped(stop));
    let writer = DocumentWriter::prepare(keyspace.session.clone(), &keyspace.keyspace)
        .await
        .unwrap();
    World {
        reader,
        writer,
        _keyspace: keyspace,
    }
}

impl World {
    fn url(&self, id: Uuid) -> String {
        format!("{}/documents/{id}", self.reader.address)
    }

    /// Does what the persister does for a create at `at`: the row, then the position.
    async fn apply_create(&self, id: Uuid, text: &str, at: Position) {
        let create = events::CreateDocument {
            author: Some("A".into()),
            text: Some(text.into()),
        };
        self.writer
            .apply(&Event::created(id, create, "0".repeat(32)), at.offset)
            .await
            .unwrap();
        self.writer
            .record_position(at.partition, at.offset)
            .await
            .unwrap();
    }
}

async fn read_at(url: &str, at: Position) -> reqwest::Response {
    testkit::http()
        .get(url)
        .header(position::HEADER, at.to_string())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_read_with_a_position_waits_until_it_was_applied() {
    let world = world(Duration::from_secs(20)).await;
    let id = Uuid::new_v4();
    let at = Position::new(1, 7);
    // Partition 1 was applied up to offset 6: not yet the write at 7.
    world.writer.record_position(1, 6).await.unwrap();
    let url = world.url(id);
    let started = Instant::now();
    let waiting = tokio::spawn({
        let url = url.clone();
        async move { read_at(&url, at).await }
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !waiting.is_finished(),
        "the read answered before its position was applied"
    );
    world.apply_create(id, "first", at).await;
    let response = waiting.await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], mime::DOCUMENT);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["text"], "first");
    assert!(started.elapsed() >= Duration::from_millis(700));

    // A position already applied answers at once, by header or by query; so does one of
    // another partition that is ahead.
    let client = testkit::http();
    for response in [
        read_at(&url, Position::new(1, 3)).await,
        client
            .get(format!("{url}?position=1%3A7"))
            .send()
            .await
            .unwrap(),
        client
            .get(format!("{url}?position=1:7"))
            .header(position::HEADER, "1:7")
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(response.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn many_reads_waiting_at_once_all_answer_when_it_is_applied() {
    let world = world(Duration::from_secs(20)).await;
    let id = Uuid::new_v4();
    let at = Position::new(0, 41);
    let url = world.url(id);
    let readers: Vec<_> = (0..50)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { read_at(&url, at).await.status() })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    world.apply_create(id, "shared", at).await;
    for reader in readers {
        assert_eq!(reader.await.unwrap(), StatusCode::OK);
    }
}

#[tokio::test]
async fn a_position_not_applied_within_the_bound_gets_503_with_retry_after() {
    let world = world(Duration::from_millis(400)).await;
    let id = Uuid::new_v4();
    world.writer.record_position(2, 10).await.unwrap();
    let started = Instant::now();
    let response = read_at(&world.url(id), Position::new(2, 11)).await;
    let waited = started.elapsed();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(response.headers()["content-type"], mime::PROBLEM);
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(3),
        "waited {waited:?} for a bound of 400 ms"
    );
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["type"], "urn:kafka-cqrs:problem:not-caught-up");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("2:11"), "{detail}");
    assert!(detail.contains("offset 10"), "{detail}");

    // Once it is applied, the same read answers at once.
    world.apply_create(id, "late", Position::new(2, 11)).await;
    let response = read_at(&world.url(id), Position::new(2, 11)).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn malformed_positions_get_400_problems() {
    let world = world(Duration::from_millis(200)).await;
    let url = world.url(Uuid::new_v4());
    let client = testkit::http();
    let mut requests = vec![
        client.get(format!("{url}?position=0%3A")),
        client.get(format!("{url}?position=-1:4")),
        // A partition the documents topic does not have.
        client.get(format!("{url}?position=3:1")),
        client
            .get(&url)
            .header(position::HEADER, "0:1")
            .header(position::HEADER, "0:1"),
    ];
    for bad in ["", "42", "a:b", "0:1:2", "0 :1", "1:99999999999999999999"] {
        requests.push(client.get(&url).header(position::HEADER, bad));
    }
    for request in requests {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()["content-type"], mime::PROBLEM);
        let problem: serde_json::Value = response.json().await.unwrap();
        assert_eq!(problem["type"], "urn:kafka-cqrs:problem:invalid-parameter");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("position"),
            "{problem}"
        );
    }
}
