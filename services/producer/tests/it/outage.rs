//! The producer while Kafka hangs: it answers 503 with `Retry-After` within its bound and
//! acknowledges nothing; once Kafka is back, commands succeed again. A ledger of every
//! command sent, checked against the topic, proves that each 201 is in it under the id it
//! answered, and that nothing is in it twice or that nobody sent.
//!
//! A create sent with an `Idempotency-Key` while Kafka hangs is answered "outcome
//! unknown" within the bound; retried with its key once Kafka is back, it is one document
//! under the id the key gives, however many records the attempts left in the topic.
//!
//! This freezes the shared Kafka, so its tests are named `outage_*`: `cargo xtask test`
//! runs such tests alone, after all the others.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use events::idempotency::IdempotencyKey;
use events::{Event, EventType, mime};
use producer::{Application, Config};
use rdkafka::Message;
use reqwest::StatusCode;
use testkit::faults::{self, Server};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How many creates are sent at once while Kafka hangs.
const DURING_OUTAGE: usize = 3;

/// The produce timeout of these tests.
const BOUND: Duration = Duration::from_millis(2000);

/// What a loaded machine may add to the bound before the answer arrives.
const MARGIN: Duration = Duration::from_millis(1500);

/// What the producer answered one create, found again in the topic by its tag (the
/// author, unique per command).
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    /// The id of a 201; a 503 names none.
    id: Option<Uuid>,
    took: Duration,
}

/// Sends a create tagged `tag` and returns what the producer answered.
async fn create(url: &str, tag: &str) -> Answer {
    let started = Instant::now();
    let response = testkit::http()
        .post(url)
        .header("content-type", mime::CREATE_DOCUMENT)
        .body(serde_json::json!({ "author": tag }).to_string())
        .send()
        .await
        .expect("the producer answers, Kafka or not");
    let took = started.elapsed();
    let status = response.status();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        assert!(response.headers().contains_key("retry-after"), "{tag}");
        assert_eq!(response.headers()["content-type"], mime::PROBLEM, "{tag}");
    }
    let id = if status.is_success() {
        let body: serde_json::Value = response.json().await.expect("a 201 has a body");
        Some(body["id"].as_str().expect("an id").parse().expect("a UUID"))
    } else {
        None
    };
    Answer { status, id, took }
}

#[tokio::test]
async fn outage_kafka_hung_gives_503_within_the_bound_then_recovers() {
    let infra = testkit::infra();
    let topic = infra.topic(3).await;
    let mut config = Config::for_tests(&infra.bootstrap, &topic.name);
    config.produce_timeout_ms = BOUND.as_millis() as u64;
    let app = Application::build(config).await.unwrap();
    let url = format!("http://127.0.0.1:{}/documents", app.port());
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(shutdown.clone()));
    // Every command sent, by tag.
    let ledger: Mutex<BTreeMap<String, Answer>> = Mutex::default();
    let record = |tag: String, answer: Answer| {
        ledger.lock().unwrap().insert(tag, answer);
    };

    // Warm up: the producer knows the partition leaders before Kafka hangs.
    let warm_up = create(&url, "warm-up").await;
    assert_eq!(warm_up.status, StatusCode::CREATED);
    record("warm-up".into(), warm_up);

    // Several commands while Kafka hangs: none may be acknowledged, and each is refused
    // within the configured bound plus a margin for a loaded machine (librdkafka's own
    // default would be 5 min).
    let paused = faults::pause(Server::Kafka);
    let tags: Vec<String> = (0..DURING_OUTAGE).map(|i| format!("outage-{i}")).collect();
    let answers = futures::future::join_all(tags.iter().map(|tag| create(&url, tag))).await;
    paused.resume();
    for (tag, answer) in tags.into_iter().zip(answers) {
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{tag}");
        assert!(answer.took < BOUND + MARGIN, "{tag}: {answer:?}");
        record(tag, answer);
    }

    // Kafka is back: commands succeed again (the first may still wait for reconnects;
    // every attempt goes in the ledger, 503s included, since Kafka may store those too).
    let mut attempt = 0;
    testkit::eventually(
        "a create to succeed after Kafka resumed",
        Duration::from_secs(60),
        || {
            attempt += 1;
            let tag = format!("recovery-{attempt}");
            let url = &url;
            let record = &record;
            async move {
                let answer = create(url, &tag).await;
                let created = answer.status == StatusCode::CREATED;
                record(tag, answer);
                created.then_some(())
            }
        },
    )
    .await;
    // And they keep succeeding.
    for i in 0..3 {
        let tag = format!("after-{i}");
        let answer = create(&url, &tag).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{tag}");
        record(tag, answer);
    }

    // The ledger against the topic: read every record it holds now.
    let ledger = ledger.into_inner().unwrap();
    let stored = testkit::end_offsets(&topic.name).await.iter().sum::<i64>();
    let records = testkit::read_records(&topic.name, usize::try_from(stored).unwrap()).await;
    let mut in_topic: BTreeMap<String, Uuid> = BTreeMap::new();
    for record in &records {
        let event = Event::from_json(record.payload().expect("a value")).expect("an event");
        assert_eq!(event.header.kind, EventType::Create);
        let tag = event.payload.author.clone().expect("a tag");
        assert_eq!(record.key(), Some(event.payload.id.to_string().as_bytes()));
        assert!(
            ledger.contains_key(&tag),
            "{tag} is in the topic but was never sent"
        );
        let twice = in_topic.insert(tag.clone(), event.payload.id);
        assert!(twice.is_none(), "{tag} is in the topic twice");
    }
    // Every 201 is there, under the id it answered.
    let acknowledged: Vec<(&String, Uuid)> = ledger
        .iter()
        .filter_map(|(tag, answer)| answer.id.map(|id| (tag, id)))
        .collect();
    assert!(
        acknowledged.len() >= 5,
        "warm-up, recovery and after: {ledger:?}"
    );
    for (tag, id) in &acknowledged {
        assert_eq!(
            in_topic.get(*tag),
            Some(id),
            "{tag} was acknowledged as {id} but is not in the topic under that id"
        );
    }
    // The rest of the topic are commands answered 503: Kafka may have stored them just as
    // the bound ran out (a request in the frozen broker's socket buffer is read on resume),
    // but they were never acknowledged, and the checks above show each is there once.
    let refused_but_stored = in_topic.len() - acknowledged.len();
    let refused = ledger.len() - acknowledged.len();
    assert!(refused_but_stored <= refused);
    println!(
        "{} commands: {} acknowledged, all in the topic; {refused} answered 503, of which \
         {refused_but_stored} Kafka stored anyway",
        ledger.len(),
        acknowledged.len()
    );
    shutdown.cancel();
}

/// Sends the create of these tests, with `key` if given; returns the answer and its time.
async fn send_create(url: String, key: Option<String>) -> (reqwest::Response, Duration) {
    let mut request = testkit::http()
        .post(&url)
        .header("content-type", mime::CREATE_DOCUMENT)
        .body(r#"{"author":"keyed","text":"once"}"#);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let started = Instant::now();
    let response = request.send().await.expect("the producer answers");
    (response, started.elapsed())
}

/// Retries the keyed create until it is answered 201 (within `deadline`); returns its id,
/// checked to be the one the key gives.
async fn retry_until_created(url: &str, key: &str, deadline: Duration) -> Uuid {
    let id: Uuid = testkit::eventually(
        "the keyed retry to succeed after Kafka came back",
        deadline,
        || async {
            let (response, _) = send_create(url.to_owned(), Some(key.to_owned())).await;
            if response.status() != StatusCode::CREATED {
                return None;
            }
            let body: serde_json::Value = response.json().await.ok()?;
            body["id"].as_str()?.parse().ok()
        },
    )
    .await;
    let parsed = IdempotencyKey::parse(key.as_bytes()).unwrap();
    assert_eq!(
        id,
        parsed.document_of_create(),
        "the retry's id is the key's"
    );
    id
}

/// The topic's records of the keyed create `id` (checked to be one event: what the read
/// model applies once), and every create of these tests.
async fn records_of(topic: &str, key: &str, id: Uuid) -> (Vec<Event>, Vec<Event>) {
    let parsed = IdempotencyKey::parse(key.as_bytes()).unwrap();
    let stored = testkit::end_offsets(topic).await.iter().sum::<i64>();
    let records = testkit::read_records(topic, usize::try_from(stored).unwrap()).await;
    let creates: Vec<Event> = records
        .iter()
        .map(|r| Event::from_json(r.payload().unwrap()).unwrap())
        .filter(|e| e.payload.author.as_deref() == Some("keyed"))
        .collect();
    let of_key: Vec<Event> = creates
        .iter()
        .filter(|e| e.payload.id == id)
        .cloned()
        .collect();
    assert!(
        !of_key.is_empty(),
        "the acknowledged create is in the topic"
    );
    assert!(
        of_key
            .iter()
            .all(|e| e.header.id == parsed.event_id(EventType::Create, id)),
        "every record of the keyed create is the same event"
    );
    (of_key, creates)
}

/// The problem of a 503, checked for `Retry-After`.
async fn problem_of(response: reqwest::Response) -> serde_json::Value {
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    response.json().await.expect("a problem body")
}

#[tokio::test]
async fn outage_a_keyed_create_with_an_unknown_outcome_is_one_document_after_its_retry() {
    let infra = testkit::infra();
    let topic = infra.topic(3).await;
    let mut config = Config::for_tests(&infra.bootstrap, &topic.name);
    config.produce_timeout_ms = BOUND.as_millis() as u64;
    let app = Application::build(config).await.unwrap();
    let url = format!("http://127.0.0.1:{}/documents", app.port());
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let key = format!("outage-{}", Uuid::new_v4());
    let send = |key: Option<String>| send_create(url.clone(), key);
    let warm_up = create(&url, "warm-up").await;
    assert_eq!(warm_up.status, StatusCode::CREATED);

    // Kafka hangs: the keyed create and an unkeyed one are queued but not confirmed.
    let paused = faults::pause(Server::Kafka);
    let ((keyed, keyed_took), (unkeyed, unkeyed_took)) =
        futures::future::join(send(Some(key.clone())), send(None)).await;
    paused.resume();
    println!(
        "answers while Kafka hung, bound {BOUND:?}: keyed {keyed_took:?}, unkeyed {unkeyed_took:?}"
    );
    for took in [keyed_took, unkeyed_took] {
        assert!(
            took < BOUND + MARGIN,
            "answered after {took:?}, not within the bound {BOUND:?} + {MARGIN:?}"
        );
    }
    let keyed = problem_of(keyed).await;
    assert_eq!(keyed["type"], "urn:kafka-cqrs:problem:outcome-unknown");
    assert_eq!(keyed["title"], "Outcome unknown");
    let detail = keyed["detail"].as_str().unwrap();
    assert!(detail.contains("same Idempotency-Key"), "{detail}");
    let unkeyed = problem_of(unkeyed).await;
    assert_eq!(unkeyed["type"], "urn:kafka-cqrs:problem:outcome-unknown");
    let detail = unkeyed["detail"].as_str().unwrap();
    assert!(
        detail.contains("may or may not have been applied"),
        "{detail}"
    );

    // Kafka is back: the client retries with its key until it gets its answer.
    let id = retry_until_created(&url, &key, Duration::from_secs(60)).await;
    let (by_id, keyed_records) = records_of(&topic.name, &key, id).await;
    // Besides the keyed attempts, at most the unkeyed create (outcome unknown: it may
    // have been stored) is in the topic, under another id.
    let others: Vec<&Event> = keyed_records
        .iter()
        .filter(|e| e.payload.id != id)
        .collect();
    assert!(others.len() <= 1, "{others:?}");
    println!(
        "keyed create: {} record(s) of one event in the topic; the unkeyed one stored {} time(s)",
        by_id.len(),
        others.len()
    );
    shutdown.cancel();
}

#[tokio::test]
async fn outage_kafka_killed_is_answered_within_the_bound_and_a_keyed_retry_is_one_document() {
    // A crashed broker (connections reset, the port refusing) is where librdkafka's own
    // message timeout overshot: measured 9.5 s for a 5 s timeout. The answer must still
    // come within the bound.
    let infra = testkit::infra();
    let topic = infra.topic(3).await;
    let mut config = Config::for_tests(&infra.bootstrap, &topic.name);
    config.produce_timeout_ms = BOUND.as_millis() as u64;
    let app = Application::build(config).await.unwrap();
    let url = format!("http://127.0.0.1:{}/documents", app.port());
    let shutdown = CancellationToken::new();
    tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let warm_up = create(&url, "warm-up").await;
    assert_eq!(warm_up.status, StatusCode::CREATED);

    let key = format!("killed-{}", Uuid::new_v4());
    let killed = faults::kill(Server::Kafka);
    let (response, took) = send_create(url.clone(), Some(key.clone())).await;
    killed.restart();
    println!("answer with Kafka killed, bound {BOUND:?}: {took:?}");
    assert!(
        took < BOUND + MARGIN,
        "answered after {took:?}, not within the bound {BOUND:?} + {MARGIN:?}"
    );
    let problem = problem_of(response).await;
    assert_eq!(problem["type"], "urn:kafka-cqrs:problem:outcome-unknown");

    // Kafka starts again (slowly on a loaded machine): the keyed retry gets its answer.
    let id = retry_until_created(&url, &key, Duration::from_secs(240)).await;
    let (of_key, _) = records_of(&topic.name, &key, id).await;
    println!(
        "keyed create after the crash: {} record(s) of one event",
        of_key.len()
    );
    shutdown.cancel();
}
