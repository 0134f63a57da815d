//! The one ledger check every scenario ends with: every acknowledged command is in the
//! topic (once), the table equals the fold of the topic, and every SSE client saw every
//! event of its stream exactly once, in order. Also the table reads and comparisons that
//! `cargo xtask rebuild` shares.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use anyhow::{Context, Result};
use events::{Event, EventType, mime};
use futures_util::TryStreamExt;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::{Message, Offset, TopicPartitionList};
use scylla::client::session::Session;
use serde::Serialize;
use uuid::Uuid;

use super::load::{CommandKind, CommandRecord};
use super::sse::ClientLog;

/// One record of a topic, as read back.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl Record {
    /// The header `name` as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The event this record carries, if the persister would apply it: the event content
    /// type, a value that parses, and a key that is the document's id. Anything else is
    /// dead-lettered and folds to nothing.
    pub fn event(&self) -> Option<Event> {
        let content_type = self.header("content-type")?;
        if !mime::matches(content_type, mime::EVENT) {
            return None;
        }
        let event = Event::from_json(self.value.as_deref()?).ok()?;
        (self.key.as_deref() == Some(event.key().as_bytes())).then_some(event)
    }
}

/// A whole topic up to given end offsets, each partition in its order.
#[derive(Debug, Default)]
pub struct TopicLog {
    /// By partition, in offset order.
    pub partitions: Vec<Vec<Record>>,
    /// The end offset of each partition the read stopped at.
    pub ends: Vec<i64>,
}

impl TopicLog {
    pub fn len(&self) -> usize {
        self.partitions.iter().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.partitions.iter().flatten()
    }

    /// The record at `partition`:`offset`, if read.
    pub fn at(&self, partition: i32, offset: i64) -> Option<&Record> {
        let records = self.partitions.get(partition as usize)?;
        let first = records.first()?.offset;
        // Offsets are dense in a topic that nobody compacts, but a deleted prefix or a
        // transaction marker may leave holes: search rather than index.
        let guess = (offset - first) as usize;
        if let Some(record) = records.get(guess).filter(|r| r.offset == offset) {
            return Some(record);
        }
        records
            .binary_search_by_key(&offset, |r| r.offset)
            .ok()
            .map(|i| &records[i])
    }
}

/// The (low, high) watermarks of every partition of `topic`.
pub async fn watermarks(topic: &str) -> Result<Vec<(i64, i64)>> {
    Ok(messaging::watermarks(testkit::infra().kafka_config(), topic).await?)
}

/// The end offset of every partition of `topic`.
pub async fn end_offsets(topic: &str) -> Result<Vec<i64>> {
    Ok(watermarks(topic)
        .await?
        .into_iter()
        .map(|(_, h)| h)
        .collect())
}

/// Reads `topic` from `from` (per partition; the beginning when `None`) up to `ends`.
pub async fn read_topic(topic: &str, from: Option<Vec<i64>>, ends: &[i64]) -> Result<TopicLog> {
    let topic = topic.to_owned();
    let ends = ends.to_vec();
    tokio::task::spawn_blocking(move || read_topic_blocking(&topic, from, ends))
        .await
        .context("topic reader")?
}

fn read_topic_blocking(topic: &str, from: Option<Vec<i64>>, ends: Vec<i64>) -> Result<TopicLog> {
    let consumer: BaseConsumer = testkit::infra()
        .kafka_config()
        .set(
            "group.id",
            format!("chaos-reader-{}", Uuid::new_v4().simple()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .context("a Kafka consumer to read the topic")?;
    let mut assignment = TopicPartitionList::new();
    let mut partitions = vec![Vec::new(); ends.len()];
    let mut pending = 0;
    for (partition, &end) in ends.iter().enumerate() {
        let start = from.as_ref().map_or(0, |f| f[partition]);
        if start < end {
            pending += 1;
            let offset = match &from {
                Some(f) => Offset::Offset(f[partition]),
                None => Offset::Beginning,
            };
            assignment.add_partition_offset(topic, partition as i32, offset)?;
        }
    }
    if pending == 0 {
        return Ok(TopicLog { partitions, ends });
    }
    consumer.assign(&assignment)?;
    let mut done = vec![false; ends.len()];
    for (partition, &end) in ends.iter().enumerate() {
        let start = from.as_ref().map_or(0, |f| f[partition]);
        done[partition] = start >= end;
    }
    let mut last_progress = std::time::Instant::now();
    while done.iter().any(|d| !d) {
        if last_progress.elapsed() > Duration::from_secs(60) {
            anyhow::bail!(
                "reading {topic}: no record for 60 s with partitions still short of {ends:?} \
                 (read so far: {:?})",
                partitions.iter().map(Vec::len).collect::<Vec<_>>()
            );
        }
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let message = message.with_context(|| format!("reading {topic}"))?;
        last_progress = std::time::Instant::now();
        let partition = message.partition() as usize;
        if done[partition] {
            continue;
        }
        let offset = message.offset();
        if offset >= ends[partition] {
            done[partition] = true;
            continue;
        }
        let headers = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        partitions[partition].push(Record {
            partition: partition as i32,
            offset,
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
            headers,
        });
        if offset + 1 >= ends[partition] {
            done[partition] = true;
        }
    }
    Ok(TopicLog { partitions, ends })
}

/// A document as the fold of the topic says it must be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Folded {
    pub author: Option<String>,
    pub text: Option<String>,
}

/// Folds the applicable events of `log` per document, in partition order: CREATE sets
/// both fields, UPDATE the fields it carries, DELETE removes the document.
pub fn fold(log: &TopicLog) -> HashMap<Uuid, Folded> {
    let mut table: HashMap<Uuid, Folded> = HashMap::new();
    for record in log.records() {
        if let Some(event) = record.event() {
            apply(&mut table, &event);
        }
    }
    table
}

/// One event applied to a folded table (the persister's semantics).
pub fn apply(table: &mut HashMap<Uuid, Folded>, event: &Event) {
    let id = event.payload.id;
    match event.header.kind {
        EventType::Create => {
            table.insert(
                id,
                Folded {
                    author: event.payload.author.clone(),
                    text: event.payload.text.clone(),
                },
            );
        }
        EventType::Update => {
            let row = table.entry(id).or_insert(Folded {
                author: None,
                text: None,
            });
            if let Some(author) = &event.payload.author {
                row.author = Some(author.clone());
            }
            if let Some(text) = &event.payload.text {
                row.text = Some(text.clone());
            }
        }
        EventType::Delete => {
            table.remove(&id);
        }
    }
}

/// A row of the documents table with the write time of each column (Cassandra's
/// `writetime()`, null for a null column).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub author: Option<String>,
    pub text: Option<String>,
    pub author_written: Option<i64>,
    pub text_written: Option<i64>,
}

impl Row {
    pub fn folded(&self) -> Folded {
        Folded {
            author: self.author.clone(),
            text: self.text.clone(),
        }
    }
}

/// Every row of `keyspace`.documents, read page by page.
pub async fn read_table(session: &Session, keyspace: &str) -> Result<HashMap<Uuid, Row>> {
    let statement = format!(
        "SELECT id, author, text, writetime(author), writetime(text) FROM {keyspace}.documents"
    );
    let pager = session
        .query_iter(statement.clone(), ())
        .await
        .with_context(|| format!("cannot run {statement}"))?;
    let mut stream = pager.rows_stream::<(
        Uuid,
        Option<String>,
        Option<String>,
        Option<i64>,
        Option<i64>,
    )>()?;
    let mut rows = HashMap::new();
    while let Some((id, author, text, author_written, text_written)) =
        stream.try_next().await.context("reading the table")?
    {
        rows.insert(
            id,
            Row {
                author,
                text,
                author_written,
                text_written,
            },
        );
    }
    Ok(rows)
}

/// How the table compares with the fold of the topic.
#[derive(Debug, Default, Clone, Serialize)]
pub struct TableCheck {
    pub rows_in_table: usize,
    pub rows_in_fold: usize,
    /// In the fold, not in the table: an applied event lost.
    pub missing: usize,
    /// In the table, not in the fold: a DELETE lost, or a row from nowhere.
    pub unexpected: usize,
    /// In both, with other values: an UPDATE lost or applied out of order.
    pub different: usize,
    pub examples: Vec<String>,
}

impl TableCheck {
    pub fn ok(&self) -> bool {
        self.missing == 0 && self.unexpected == 0 && self.different == 0
    }
}

/// Compares the table with the fold, row by row.
pub fn check_table(folded: &HashMap<Uuid, Folded>, table: &HashMap<Uuid, Row>) -> TableCheck {
    let mut check = TableCheck {
        rows_in_table: table.len(),
        rows_in_fold: folded.len(),
        ..TableCheck::default()
    };
    let note = |check: &mut TableCheck, text: String| {
        if check.examples.len() < 10 {
            check.examples.push(text);
        }
    };
    for (id, want) in folded {
        match table.get(id) {
            None => {
                check.missing += 1;
                note(
                    &mut check,
                    format!("{id}: missing, the topic says {want:?}"),
                );
            }
            Some(row) if row.folded() != *want => {
                check.different += 1;
                note(
                    &mut check,
                    format!("{id}: table {:?}, the topic says {want:?}", row.folded()),
                );
            }
            Some(_) => {}
        }
    }
    for id in table.keys().filter(|id| !folded.contains_key(id)) {
        check.unexpected += 1;
        note(
            &mut check,
            format!("{id}: in the table, deleted or unknown in the topic"),
        );
    }
    check
}

/// How the acknowledged commands compare with the topic.
#[derive(Debug, Default, Clone, Serialize)]
pub struct AckCheck {
    /// Commands sent.
    pub attempted: usize,
    /// Commands answered 2xx.
    pub acknowledged: usize,
    /// Acknowledged, but not in the topic.
    pub lost: usize,
    /// Acknowledged, and in the topic more than once.
    pub duplicated: usize,
    /// Not acknowledged (503, timeout, dropped connection), yet in the topic: the
    /// "outcome unknown" case a client must retry with an idempotency key.
    pub unacknowledged_but_stored: usize,
    /// Every answer by kind: `201`, `503 <problem type>`, `error: timeout`, ...
    pub answers: BTreeMap<String, usize>,
    pub examples: Vec<String>,
}

/// The text a command carries (its tag) or, for a DELETE, its document: what finds it in
/// the topic.
fn command_key(kind: CommandKind, doc: Uuid, tag: &str) -> String {
    match kind {
        CommandKind::Delete => format!("delete {doc}"),
        _ => format!("{} {doc} {tag}", kind.as_str()),
    }
}

/// Finds every command in the topic by its document and tag.
pub fn check_acks(commands: &[CommandRecord], log: &TopicLog) -> AckCheck {
    let mut stored: HashMap<String, usize> = HashMap::new();
    for record in log.records() {
        let Some(event) = record.event() else {
            continue;
        };
        let (kind, tag) = match event.header.kind {
            EventType::Create => (CommandKind::Create, event.payload.text.clone()),
            EventType::Update => (CommandKind::Update, event.payload.text.clone()),
            EventType::Delete => (CommandKind::Delete, None),
        };
        let key = command_key(kind, event.payload.id, tag.as_deref().unwrap_or(""));
        *stored.entry(key).or_default() += 1;
    }
    let mut check = AckCheck {
        attempted: commands.len(),
        ..AckCheck::default()
    };
    for command in commands {
        *check.answers.entry(command.answer.clone()).or_default() += 1;
        let Some(doc) = command.doc else {
            // A create that was not acknowledged has no id to look for; its tag may still
            // be in the topic (counted below).
            continue;
        };
        let found = stored
            .get(&command_key(command.kind, doc, &command.tag))
            .copied()
            .unwrap_or(0);
        if command.acknowledged {
            check.acknowledged += 1;
            if found == 0 {
                check.lost += 1;
                if check.examples.len() < 10 {
                    check.examples.push(format!(
                        "lost: {} {doc} {}",
                        command.kind.as_str(),
                        command.tag
                    ));
                }
            } else if found > 1 {
                check.duplicated += 1;
            }
        } else if found > 0 {
            check.unacknowledged_but_stored += 1;
        }
    }
    // Creates without an answer: look for their tag alone.
    let create_tags: HashSet<String> = log
        .records()
        .filter_map(Record::event)
        .filter(|e| e.header.kind == EventType::Create)
        .filter_map(|e| e.payload.text)
        .collect();
    check.unacknowledged_but_stored += commands
        .iter()
        .filter(|c| c.doc.is_none() && c.kind == CommandKind::Create)
        .filter(|c| create_tags.contains(&c.tag))
        .count();
    check
}

/// What the SSE clients saw, against the topic.
#[derive(Debug, Default, Clone, Serialize)]
pub struct SseCheck {
    pub clients: usize,
    pub events_delivered: usize,
    /// Events of a client's stream (from where it started to the end of the topic) it
    /// never got.
    pub gaps: usize,
    /// Events a client got more than once.
    pub duplicates: usize,
    /// Events that came after a later one of their partition, or whose id did not
    /// match the record at the position the stream named.
    pub out_of_order: usize,
    /// `event: reset` frames (history announced as lost; their range is not a gap).
    pub resets: usize,
    /// Reconnections (with Last-Event-ID) after the stream broke.
    pub reconnects: usize,
    /// Clients that did not reach the end of the topic before the deadline.
    pub unfinished: usize,
    pub examples: Vec<String>,
}

impl SseCheck {
    pub fn ok(&self) -> bool {
        self.gaps == 0 && self.duplicates == 0 && self.out_of_order == 0 && self.unfinished == 0
    }
}

/// Checks every client's deliveries against the records of the topic.
pub fn check_sse(clients: &[ClientLog], log: &TopicLog) -> SseCheck {
    let mut check = SseCheck {
        clients: clients.len(),
        ..SseCheck::default()
    };
    // The event id at each position, for the applicable events only (what the notifier
    // forwards).
    let mut ids: HashMap<(i32, i64), Uuid> = HashMap::new();
    for record in log.records() {
        if let Some(event) = record.event() {
            ids.insert((record.partition, record.offset), event.header.id);
        }
    }
    for (n, client) in clients.iter().enumerate() {
        check.events_delivered += client.deliveries.len();
        check.resets += client.resets.len();
        check.reconnects += client.reconnects;
        if !client.finished {
            check.unfinished += 1;
        }
        let note = |check: &mut SseCheck, text: String| {
            if check.examples.len() < 10 {
                check.examples.push(format!("client {n}: {text}"));
            }
        };
        let Some(start) = &client.start else {
            continue;
        };
        let mut seen: HashSet<(i32, i64)> = HashSet::new();
        let mut last: HashMap<i32, i64> = HashMap::new();
        for delivery in &client.deliveries {
            let position = (delivery.partition, delivery.offset);
            if !seen.insert(position) {
                check.duplicates += 1;
                note(&mut check, format!("duplicate {position:?}"));
                continue;
            }
            if last
                .get(&delivery.partition)
                .is_some_and(|&l| l >= delivery.offset)
            {
                check.out_of_order += 1;
                note(&mut check, format!("out of order {position:?}"));
            }
            last.insert(delivery.partition, delivery.offset);
            if ids.get(&position) != Some(&delivery.event_id) {
                check.out_of_order += 1;
                note(
                    &mut check,
                    format!(
                        "event {} at {position:?}, the topic has {:?} there",
                        delivery.event_id,
                        ids.get(&position)
                    ),
                );
            }
        }
        // Everything from the client's start to the end of the topic, except what a reset
        // announced as lost.
        for (&(partition, offset), _) in ids.iter() {
            let from = start.get(partition as usize).copied().unwrap_or(0);
            if offset < from || seen.contains(&(partition, offset)) {
                continue;
            }
            let excused = client
                .resets
                .iter()
                .any(|r| r.partition == partition && offset >= r.requested && offset < r.continues);
            if !excused {
                check.gaps += 1;
                note(&mut check, format!("never got {:?}", (partition, offset)));
            }
        }
    }
    check
}

/// How two tables compare (a rebuilt one against the live one).
#[derive(Debug, Default, Clone, Serialize)]
pub struct TableDiff {
    pub rows_left: usize,
    pub rows_right: usize,
    /// Rows equal in values and write times.
    pub equal: usize,
    /// Rows that differ (or are in one table only), not excused.
    pub different: usize,
    /// Rows that differ but whose document changed after the captured end (excused).
    pub changed_meanwhile: usize,
    pub examples: Vec<String>,
}

impl TableDiff {
    pub fn ok(&self) -> bool {
        self.different == 0
    }
}

/// Compares two tables row by row, values and write times; differences on documents in
/// `excused` count as changed meanwhile.
pub fn diff_tables(
    left: &HashMap<Uuid, Row>,
    right: &HashMap<Uuid, Row>,
    excused: &HashSet<Uuid>,
) -> TableDiff {
    let mut diff = TableDiff {
        rows_left: left.len(),
        rows_right: right.len(),
        ..TableDiff::default()
    };
    let ids: HashSet<&Uuid> = left.keys().chain(right.keys()).collect();
    for id in ids {
        let (l, r) = (left.get(id), right.get(id));
        if l == r {
            diff.equal += 1;
        } else if excused.contains(id) {
            diff.changed_meanwhile += 1;
        } else {
            diff.different += 1;
            if diff.examples.len() < 10 {
                diff.examples.push(format!("{id}: {l:?} vs {r:?}"));
            }
        }
    }
    diff
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A record carrying `event` at `partition`:`offset`, as the producer writes it.
    pub(crate) fn record(partition: i32, offset: i64, event: &Event) -> Record {
        Record {
            partition,
            offset,
            key: Some(event.key().into_bytes()),
            value: Some(event.to_json()),
            headers: vec![("content-type".into(), Some(mime::EVENT.as_bytes().to_vec()))],
        }
    }

    pub(crate) fn log_of(records: Vec<Record>) -> TopicLog {
        let mut partitions = vec![Vec::new(); 2];
        for r in records {
            partitions[r.partition as usize].push(r);
        }
        let ends = partitions
            .iter()
            .map(|p: &Vec<Record>| p.last().map_or(0, |r| r.offset + 1))
            .collect();
        TopicLog { partitions, ends }
    }

    fn row(author: Option<&str>, text: Option<&str>) -> Row {
        Row {
            author: author.map(Into::into),
            text: text.map(Into::into),
            author_written: None,
            text_written: None,
        }
    }

    #[test]
    fn the_fold_follows_create_update_delete_and_skips_poison() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let mut poison = record(0, 3, &testkit::documents::create(b, "x", "y"));
        poison.key = Some(Uuid::new_v4().to_string().into_bytes());
        let log = log_of(vec![
            record(0, 0, &testkit::documents::create(a, "ann", "one")),
            record(0, 1, &testkit::documents::update(a, None, Some("two"))),
            record(1, 0, &testkit::documents::create(b, "bob", "b")),
            record(1, 1, &Event::deleted(b, testkit::documents::trace_id())),
            poison,
        ]);
        let folded = fold(&log);
        assert_eq!(folded.len(), 1);
        assert_eq!(
            folded[&a],
            Folded {
                author: Some("ann".into()),
                text: Some("two".into())
            }
        );
        let mut table = HashMap::from([(a, row(Some("ann"), Some("two")))]);
        assert!(check_table(&folded, &table).ok());
        // A lost update, a lost delete: both found.
        table.insert(a, row(Some("ann"), Some("one")));
        table.insert(b, row(Some("bob"), Some("b")));
        let check = check_table(&folded, &table);
        assert_eq!(
            (check.different, check.unexpected, check.missing),
            (1, 1, 0)
        );
    }

    #[test]
    fn tables_differ_by_value_or_write_time_unless_changed_meanwhile() {
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let written = |text: &str, at| Row {
            text_written: Some(at),
            ..row(Some("ann"), Some(text))
        };
        let live = HashMap::from([
            (a, written("x", 1)),
            (b, written("y", 2)),
            (c, written("z", 3)),
        ]);
        let same = live.clone();
        assert!(diff_tables(&live, &same, &HashSet::new()).ok());
        // Same values, another write time: not byte-identical.
        let mut rebuilt = live.clone();
        rebuilt.insert(a, written("x", 9));
        rebuilt.remove(&c);
        let diff = diff_tables(&live, &rebuilt, &HashSet::from([c]));
        assert_eq!(
            (diff.equal, diff.different, diff.changed_meanwhile),
            (1, 1, 1)
        );
        assert!(!diff.ok());
    }

    #[test]
    fn an_acknowledged_command_missing_from_the_topic_is_lost() {
        let a = Uuid::new_v4();
        let log = log_of(vec![record(
            0,
            0,
            &testkit::documents::create(a, "chaos", "w0-1"),
        )]);
        let command = |kind, tag: &str, acknowledged| CommandRecord {
            kind,
            doc: Some(a),
            tag: tag.into(),
            acknowledged,
            answer: "x".into(),
            took: Duration::ZERO,
        };
        let check = check_acks(
            &[
                command(CommandKind::Create, "w0-1", true),
                command(CommandKind::Update, "w0-2", true),
                command(CommandKind::Delete, "", false),
            ],
            &log,
        );
        assert_eq!(
            (check.acknowledged, check.lost, check.duplicated),
            (2, 1, 0)
        );
        assert_eq!(check.unacknowledged_but_stored, 0);
    }

    #[test]
    fn sse_gaps_duplicates_and_disorder_are_found() {
        use crate::chaos::sse::Delivery;
        let a = Uuid::new_v4();
        let events: Vec<Event> = (0..3)
            .map(|n| testkit::documents::update(a, None, Some(&n.to_string())))
            .collect();
        let log = log_of(
            events
                .iter()
                .enumerate()
                .map(|(n, e)| record(0, n as i64, e))
                .collect(),
        );
        let delivery = |offset: i64| Delivery {
            partition: 0,
            offset,
            event_id: events[offset as usize].header.id,
        };
        let client = |offsets: &[i64]| ClientLog {
            start: Some(vec![0, 0]),
            deliveries: offsets.iter().map(|&o| delivery(o)).collect(),
            finished: true,
            ..ClientLog::default()
        };
        assert!(check_sse(&[client(&[0, 1, 2])], &log).ok());
        let check = check_sse(
            &[client(&[0, 2]), client(&[0, 1, 1, 2]), client(&[1, 0, 2])],
            &log,
        );
        assert_eq!(
            (check.gaps, check.duplicates, check.out_of_order),
            (1, 1, 1)
        );
    }
}
