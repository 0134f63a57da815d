//! What recording the applied positions (read-your-writes) costs the persister's write
//! path, against the real Kafka and Cassandra: the drain rate of a topic of creates with
//! positions written every `PERSISTER_POSITIONS_FLUSH_MS` (the default, 10 ms), against
//! the same with them written once an hour (in effect only at the stop), in alternating
//! rounds so that both meet the same load on a shared machine.
//!
//! `cargo bench -p persister --bench positions [-- COUNT ROUNDS]` with the servers up
//! (`cargo xtask infra up`); `cargo xtask bench` runs it too. A plain `main`, not a test:
//! a figure wants the machine to itself, and the test suite runs tests side by side.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use persister::configuration::defaults::POSITIONS_FLUSH_MS;
use testkit::documents::{create, publish};
use uuid::Uuid;

/// Positions written once an hour: the figure without them.
const RARELY_MS: u64 = 3_600_000;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with("--"));
    let count: usize = args
        .next()
        .map_or(2000, |a| a.parse().expect("COUNT: a number"));
    let rounds: usize = args
        .next()
        .map_or(3, |a| a.parse().expect("ROUNDS: a number"));
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        // Which goes first alternates too: a keyspace and topic made just before can
        // slow the next run.
        if round % 2 == 1 {
            on.push(drain(count, POSITIONS_FLUSH_MS).await);
            off.push(drain(count, RARELY_MS).await);
        } else {
            off.push(drain(count, RARELY_MS).await);
            on.push(drain(count, POSITIONS_FLUSH_MS).await);
        }
        eprintln!(
            "round {round}/{rounds}: {:.0}/s with positions, {:.0}/s without",
            on[round - 1],
            off[round - 1]
        );
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "persister drain of {count} creates: {:.0}/s with positions every {POSITIONS_FLUSH_MS} ms, \
         {:.0}/s without ({on:.0?} / {off:.0?}): ratio {:.2}",
        mean(&on),
        mean(&off),
        mean(&on) / mean(&off)
    );
}

/// Publishes `count` creates, then runs a persister with positions written every
/// `flush_ms` until every partition's last document is in the table; returns records per
/// second, from the first document in the table to the last (the group's start-up is
/// not the write path). Checks that the positions reached every partition's end.
async fn drain(count: usize, flush_ms: u64) -> f64 {
    let infra = testkit::infra();
    let (topic, dlq, keyspace) = (
        infra.topic(3).await,
        infra.topic(1).await,
        infra.keyspace().await,
    );
    // Published all at once: the figure is the persister's, not this client's.
    let published = futures::future::join_all((0..count).map(|n| {
        let id = Uuid::new_v4();
        let event = create(id, "bench", &format!("t{n}"));
        let topic = &topic;
        async move {
            let (partition, offset) = publish(topic, &event).await;
            (id, partition, offset)
        }
    }))
    .await;
    let mut last: HashMap<i32, (i64, Uuid)> = HashMap::new();
    for &(id, partition, offset) in &published {
        let entry = last.entry(partition).or_insert((offset, id));
        if offset > entry.0 {
            *entry = (offset, id);
        }
    }
    let first = published
        .iter()
        .find(|(_, _, offset)| *offset == 0)
        .map(|(id, _, _)| *id)
        .expect("a first record");
    let mut config = persister::Config::for_tests(
        &infra.bootstrap,
        &topic.name,
        &dlq.name,
        &infra.contact_points,
        keyspace.name(),
    );
    config.positions_flush_ms = flush_ms;
    let group = config.group_id.clone();
    let app = persister::Application::build(config)
        .await
        .expect("persister starts");
    let app = testkit::spawn(app.port(), |stop| app.run_until_stopped(stop));
    let select = keyspace
        .session
        .prepare(format!(
            "SELECT id FROM {}.documents WHERE id = ?",
            keyspace.name()
        ))
        .await
        .expect("prepare");
    let waiting = Instant::now();
    let mut started = None;
    for id in std::iter::once(first).chain(last.values().map(|(_, id)| *id)) {
        loop {
            let found = keyspace
                .session
                .execute_unpaged(&select, (id,))
                .await
                .expect("select")
                .into_rows_result()
                .expect("rows")
                .rows_num();
            if found == 1 {
                started.get_or_insert_with(Instant::now);
                break;
            }
            assert!(
                waiting.elapsed() < Duration::from_secs(300),
                "not drained in 5 minutes"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    // The persister applies documents side by side in lanes, so the last row of each
    // partition can be there before earlier records of other documents: drained means
    // committed to the end (the low watermark; commits come every second, so the rate
    // is a slight underestimate).
    testkit::documents::wait_until_committed(&topic, &group).await;
    let rate = count as f64 / started.expect("timed").elapsed().as_secs_f64();
    app.stop().await;
    let recorded: HashMap<i32, i64> = keyspace
        .session
        .query_unpaged(
            format!(
                "SELECT partition, offset FROM {}.applied_positions",
                keyspace.name()
            ),
            (),
        )
        .await
        .expect("select")
        .into_rows_result()
        .expect("rows")
        .rows::<(i32, i64)>()
        .expect("row type")
        .map(|row| row.expect("row"))
        .collect();
    let expected: HashMap<i32, i64> = last.iter().map(|(&p, &(o, _))| (p, o)).collect();
    assert_eq!(
        recorded, expected,
        "positions recorded up to every partition's end"
    );
    rate
}
