//! Rebuilding the read model from the event log: the persister binary, with a fresh
//! consumer group and keyspace, replays the topic from its start up to the end offsets
//! captured when the rebuild began, and the result is compared row by row (values and
//! write times) with the live table. `cargo xtask rebuild` runs it on the platform's
//! topic; scenario R3 on its own.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rdkafka::admin::AdminOptions;
use serde::Serialize;
use uuid::Uuid;

use super::ledger::{self, TableDiff};
use super::world;

/// Where a replay writes: its keyspace, consumer group and dead-letter topic.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub keyspace: &'a str,
    pub group: &'a str,
    pub dlq: &'a str,
}

/// Replays `topic` from its start into `target` with the persister binary, until its
/// group has committed `ends`; then stops it. Returns how long it took.
pub async fn replay(
    bin_dir: &Path,
    logs: &Path,
    topic: &str,
    target: Target<'_>,
    ends: &[i64],
    timeout: Duration,
) -> Result<Duration> {
    let started = Instant::now();
    let (keyspace, group, dlq) = (target.keyspace, target.group, target.dlq);
    let mut persister = world::persister_process(bin_dir, logs, topic, keyspace, group, dlq)?;
    persister.start_ready().await?;
    let outcome = world::wait_committed(topic, group, ends, timeout).await;
    persister.stop().await?;
    outcome?;
    Ok(started.elapsed())
}

/// What `cargo xtask rebuild` is asked to do.
#[derive(Debug, Clone)]
pub struct RebuildArgs {
    pub topic: String,
    pub keyspace: String,
    /// The live persister's group: the rebuild waits until it has applied the captured
    /// end, so that the live table is comparable.
    pub live_group: String,
    pub keep: bool,
    pub timeout: Duration,
}

/// The figures of a rebuild.
#[derive(Debug, Clone, Serialize)]
pub struct RebuildReport {
    pub topic: String,
    pub live_keyspace: String,
    pub rebuilt_keyspace: String,
    pub kept: bool,
    /// The end offsets the replay went up to.
    pub ends: Vec<i64>,
    pub records: i64,
    pub replay_s: f64,
    /// Records the replay dead-lettered (into a dead-letter topic of its own).
    pub dead_letters: usize,
    pub diff: TableDiff,
}

/// Rebuilds `args.keyspace` from `args.topic` into a fresh keyspace and compares.
pub async fn rebuild(bin_dir: &Path, logs: &Path, args: &RebuildArgs) -> Result<RebuildReport> {
    let infra = testkit::infra();
    let session = store::connect(&infra.contact_points, Duration::from_secs(10)).await?;
    let ends = ledger::end_offsets(&args.topic).await?;
    let records: i64 = ledger::watermarks(&args.topic)
        .await?
        .iter()
        .map(|(low, high)| high - low)
        .sum();
    eprintln!(
        "Topic {} ends at {ends:?} ({records} records): replaying up to there.",
        args.topic
    );
    eprintln!(
        "Waiting until the live persister (group {}) has applied that far...",
        args.live_group
    );
    world::wait_committed(
        &args.topic,
        &args.live_group,
        &ends,
        Duration::from_secs(60),
    )
    .await
    .context(
        "the live persister is behind the end of the topic: is it running (`cargo xtask \
             status`)? The live table can only be compared once it has caught up",
    )?;

    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let keyspace = format!("rebuild_{stamp}");
    let group = format!("rebuild-{stamp}");
    let dlq = format!("{}.rebuild-{stamp}.dlq", args.topic);
    let admin = messaging::admin_client(&infra.bootstrap)?;
    messaging::ensure_topic(&admin, &dlq, 1).await?;
    eprintln!(
        "Replaying {} into keyspace {keyspace} (group {group}, dead letters to {dlq})...",
        args.topic
    );
    let outcome = replay(
        bin_dir,
        logs,
        &args.topic,
        Target {
            keyspace: &keyspace,
            group: &group,
            dlq: &dlq,
        },
        &ends,
        args.timeout,
    )
    .await;
    let dead_letters = ledger::end_offsets(&dlq)
        .await
        .map(|e| e.iter().sum::<i64>() as usize)
        .unwrap_or(0);
    // What the replay left behind but the rebuilt keyspace: its group and dead letters.
    let _ = messaging::delete_topic(&admin, &dlq).await;
    let _ = admin.delete_groups(&[&group], &AdminOptions::new()).await;
    let replay_s = match outcome {
        Ok(took) => took.as_secs_f64(),
        Err(error) => {
            let _ = world::drop_keyspace(&session, &keyspace).await;
            return Err(error.context("the replay did not reach the captured end"));
        }
    };
    eprintln!(
        "Replayed in {replay_s:.1} s. Comparing every row with {}...",
        args.keyspace
    );

    // Documents with records after the captured end may differ: the live table has them.
    let now = ledger::end_offsets(&args.topic).await?;
    let later = ledger::read_topic(&args.topic, Some(ends.clone()), &now).await?;
    let changed: HashSet<Uuid> = later
        .records()
        .filter_map(|r| r.key.as_deref())
        .filter_map(|k| std::str::from_utf8(k).ok()?.parse().ok())
        .collect();
    let live = ledger::read_table(&session, &args.keyspace).await?;
    let rebuilt = ledger::read_table(&session, &keyspace).await?;
    let diff = ledger::diff_tables(&live, &rebuilt, &changed);
    if !args.keep {
        world::drop_keyspace(&session, &keyspace).await?;
    }
    Ok(RebuildReport {
        topic: args.topic.clone(),
        live_keyspace: args.keyspace.clone(),
        rebuilt_keyspace: keyspace,
        kept: args.keep,
        ends,
        records,
        replay_s,
        dead_letters,
        diff,
    })
}
