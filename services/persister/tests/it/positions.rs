//! The applied positions the reader waits on (`applied_positions`), against the real Kafka
//! and Cassandra: they reach the last record of each partition, dead letters included,
//! never run ahead of the end of the log and never move back. What recording them costs
//! the write path is measured by `benches/positions.rs`.

use std::collections::HashMap;
use std::time::Duration;

use crate::common::*;
use store::DocumentWriter;
use testkit::documents::*;
use testkit::{TestKeyspace, TestTopic};
use uuid::Uuid;

/// The table's rows, by partition.
async fn applied(keyspace: &TestKeyspace) -> HashMap<i32, i64> {
    keyspace
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
        .collect()
}

/// The offset of the last record of each partition that has one.
async fn last_offsets(topic: &TestTopic) -> HashMap<i32, i64> {
    testkit::end_offsets(&topic.name)
        .await
        .iter()
        .enumerate()
        .filter(|&(_, &end)| end > 0)
        .map(|(partition, &end)| (i32::try_from(partition).unwrap(), end - 1))
        .collect()
}

#[tokio::test]
async fn positions_reach_the_last_record_of_each_partition_and_never_go_back() {
    let infra = testkit::infra();
    let (topic, dlq, keyspace) = (
        infra.topic(3).await,
        infra.topic(1).await,
        infra.keyspace().await,
    );
    for n in 0..12 {
        publish(&topic, &create(Uuid::new_v4(), "A", &format!("t{n}"))).await;
    }
    // A record that is dead-lettered is dealt with too: a read must not wait for ever
    // behind it.
    let (poison_partition, poison) =
        testkit::produce(&topic.name, "k1", b"{not json", Some(events::mime::EVENT)).await;
    let persister = spawn_persister(&topic, &dlq, &keyspace).await;
    let last = last_offsets(&topic).await;
    assert_eq!(last[&poison_partition], poison, "the poison record is last");
    testkit::eventually(
        "positions at the last records",
        Duration::from_secs(30),
        || async {
            let applied = applied(&keyspace).await;
            for (partition, offset) in &applied {
                assert!(
                    offset <= &last[partition],
                    "partition {partition} recorded {offset}, past its last record {}",
                    last[partition]
                );
            }
            (applied == last).then_some(())
        },
    )
    .await;
    persister.stop().await;
    assert_eq!(applied(&keyspace).await, last, "a stop keeps them");

    // A late write of an older offset (a rebalance, a retry) does not move a row back.
    let writer = DocumentWriter::prepare(keyspace.session.clone(), &keyspace.keyspace)
        .await
        .unwrap();
    writer.record_position(poison_partition, 0).await.unwrap();
    assert_eq!(applied(&keyspace).await[&poison_partition], poison);
    writer
        .record_position(poison_partition, poison + 5)
        .await
        .unwrap();
    assert_eq!(applied(&keyspace).await[&poison_partition], poison + 5);
}

/// A partition that gets no new record after a restart is still recorded, from the
/// group's committed offsets: a token from before the restart must not wait in vain.
#[tokio::test]
async fn idle_partitions_are_recorded_from_the_committed_offsets_after_a_restart() {
    let infra = testkit::infra();
    let (topic, dlq, keyspace) = (
        infra.topic(3).await,
        infra.topic(1).await,
        infra.keyspace().await,
    );
    for n in 0..9 {
        publish(&topic, &create(Uuid::new_v4(), "A", &format!("t{n}"))).await;
    }
    let first = spawn_persister(&topic, &dlq, &keyspace).await;
    let group = first.group.clone();
    wait_until_committed(&topic, &group).await;
    first.stop().await;
    // As if the table had just been added (or lost its rows): nothing recorded.
    keyspace
        .session
        .query_unpaged(
            format!("TRUNCATE {}.applied_positions", keyspace.name()),
            (),
        )
        .await
        .unwrap();
    assert!(applied(&keyspace).await.is_empty());

    let _second = spawn_persister(&topic, &dlq, &keyspace).await;
    let last = last_offsets(&topic).await;
    testkit::eventually(
        "positions from the committed offsets",
        Duration::from_secs(30),
        || async { (applied(&keyspace).await == last).then_some(()) },
    )
    .await;
}
