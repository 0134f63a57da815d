//! The scenarios: each sets up its world, runs its load while its fault strikes, lets the
//! system drain, and hands what it saw to the ledger.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use events::{Event, mime};
use nix::sys::signal::Signal;
use rdkafka::producer::{FutureProducer, FutureRecord};
use testkit::faults;
use uuid::Uuid;

use super::ledger::{self, Folded, Row, TopicLog};
use super::load::{self, LoadPlan, LoadProbe};
use super::procs::ServiceProcess;
use super::rebuild::{self, Target};
use super::sse::{ClientLog, Fleet};
use super::world::{self, World};
use super::{Layout, Report, Scenario, Sizes};

/// SSE clients of the scenarios other than R5: enough to check delivery, cheap to run.
const FEW_CLIENTS: usize = 4;
/// The notifier's memory per partition in R5: small, so that reconnects after a restart
/// also replay from Kafka.
const R5_HISTORY: usize = 100;
/// How long the system may take to drain once the load and the faults are over.
const DRAIN: Duration = Duration::from_secs(300);

pub async fn run(
    scenario: Scenario,
    sizes: Sizes,
    layout: &Layout,
    report: &mut Report,
) -> Result<()> {
    let world = World::create(scenario.name(), layout).await?;
    eprintln!(
        "  topic {}, keyspace {}, group {}; logs in {}",
        world.names.topic,
        world.names.keyspace,
        world.names.group,
        world.logs.display()
    );
    let mut extra_keyspaces = Vec::new();
    let outcome = match scenario {
        Scenario::R1 => r1_kafka_killed(&world, sizes, report).await,
        Scenario::R2 => r2_persister_killed(&world, sizes, report).await,
        Scenario::R3 => r3_replayed(&world, sizes, report, &mut extra_keyspaces).await,
        Scenario::R4 => r4_cassandra_frozen(&world, sizes, report).await,
        Scenario::R5 => r5_notifier_killed(&world, sizes, report).await,
        Scenario::R7 => r7_poison(&world, sizes, report).await,
    };
    // Clean up even after a failure: the logs stay, the topics and keyspaces go.
    if let Err(error) = world.remove(&extra_keyspaces).await {
        eprintln!("  warning: clean-up incomplete: {error:#}");
    }
    outcome
}

/// The services of a load scenario, started and ready.
struct Stage {
    producer: ServiceProcess,
    persister: ServiceProcess,
    notifier: ServiceProcess,
    fleet: Fleet,
}

async fn stage(world: &World, clients: usize, history: usize) -> Result<Stage> {
    let mut persister = world.persister()?;
    let mut notifier = world.notifier(history)?;
    let mut producer = world.producer()?;
    persister.start_ready().await?;
    notifier.start_ready().await?;
    producer.start_ready().await?;
    let fleet = Fleet::start(format!("{}/documents", notifier.url()), clients).await;
    Ok(Stage {
        producer,
        persister,
        notifier,
        fleet,
    })
}

fn plan(sizes: Sizes) -> LoadPlan {
    LoadPlan {
        commands: sizes.commands,
        workers: sizes.workers,
        rate: sizes.rate,
    }
}

/// After the load: waits until the persister has applied everything and every client has
/// every event, then runs the ledger check.
async fn settle(
    world: &World,
    fleet: Fleet,
    commands: &[load::CommandRecord],
    report: &mut Report,
) -> Result<(TopicLog, Vec<ClientLog>)> {
    let ends = ledger::end_offsets(&world.names.topic).await?;
    eprintln!("  load done; draining up to {ends:?}");
    let drained = world::wait_committed(&world.names.topic, &world.names.group, &ends, DRAIN).await;
    let clients = fleet.finish(ends.clone(), Duration::from_secs(300)).await;
    let drain_s = drained?.as_secs_f64();
    report.detail("drain_s", drain_s);
    let log = ledger::read_topic(&world.names.topic, None, &ends).await?;
    let table = ledger::read_table(&world.session, &world.names.keyspace).await?;
    let acks = ledger::check_acks(commands, &log);
    let table = ledger::check_table(&ledger::fold(&log), &table);
    let sse = ledger::check_sse(&clients, &log);
    report.detail("records", log.len());
    // How long clients waited: the producer promises an answer within its produce timeout.
    let slowest = |acknowledged: bool| {
        commands
            .iter()
            .filter(|c| c.acknowledged == acknowledged)
            .map(|c| c.took.as_secs_f64())
            .fold(0.0_f64, f64::max)
    };
    report.detail("slowest_2xx_s", slowest(true));
    report.detail("slowest_other_answer_s", slowest(false));
    let anomalies: Vec<&String> = clients.iter().flat_map(|c| &c.anomalies).take(5).collect();
    if !anomalies.is_empty() {
        report.detail("sse_anomalies", &anomalies);
    }
    report.ledger(Some(acks), Some(table), Some(sse));
    Ok((log, clients))
}

/// The program of `cargo xtask`, which restarts this checkout's Kafka.
fn xtask() -> Result<String> {
    std::env::var("CHAOS_XTASK").context(
        "R1 restarts Kafka with `cargo xtask infra up`: run the harness through `cargo xtask \
         chaos`, which tells it where xtask is (CHAOS_XTASK)",
    )
}

/// Starts Kafka again with this checkout's launch recipe; returns how long that took.
async fn restart_kafka(world: &World, n: usize) -> Result<Duration> {
    let program = xtask()?;
    let log = world.logs.join(format!("kafka-restart-{n}.log"));
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || -> Result<std::process::ExitStatus> {
        let out = std::fs::File::create(&log)?;
        Ok(std::process::Command::new(program)
            .args(["infra", "up"])
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .status()?)
    })
    .await??;
    if !status.success() {
        bail!("`cargo xtask infra up` failed ({status}); see kafka-restart-{n}.log");
    }
    Ok(started.elapsed())
}

/// R1: Kafka SIGKILLed and restarted under a steady load.
async fn r1_kafka_killed(world: &World, sizes: Sizes, report: &mut Report) -> Result<()> {
    let mut stage = stage(world, FEW_CLIENTS, 1000).await?;
    let probe = LoadProbe::new();
    let load = tokio::spawn(load::run(stage.producer.url(), plan(sizes), probe.clone()));
    let mut recover = Vec::new();
    let mut restarts = Vec::new();
    let faults = async {
        for n in 1..=sizes.kafka_kills {
            tokio::time::sleep(Duration::from_secs(5)).await;
            let killed_at = Instant::now();
            let pid =
                tokio::task::spawn_blocking(|| faults::kill_server(faults::Server::Kafka)).await?;
            eprintln!("  kill {n}: Kafka (pid {pid}) SIGKILLed");
            tokio::time::sleep(Duration::from_secs(1)).await;
            let took = restart_kafka(world, n).await?;
            restarts.push(took.as_secs_f64());
            eprintln!("  kill {n}: Kafka restarted in {:.1} s", took.as_secs_f64());
            let back = probe
                .first_ok_after(killed_at, Duration::from_secs(120))
                .await
                .context("no command was acknowledged within 120 s of Kafka's restart")?;
            eprintln!(
                "  kill {n}: commands acknowledged again {:.1} s after the kill",
                back.as_secs_f64()
            );
            recover.push(back.as_secs_f64());
        }
        anyhow::Ok(())
    }
    .await;
    probe.faults_done.store(true, Ordering::SeqCst);
    if faults.is_err() {
        probe.abort.store(true, Ordering::SeqCst);
    }
    let commands = load.await?;
    faults?;
    report.recover_s = recover;
    report.detail("kafka_restart_s", &restarts);
    settle(world, stage.fleet, &commands, report).await?;
    // 503s are allowed here: they are counted by kind in acks.answers.
    stage.producer.stop().await?;
    stage.notifier.stop().await?;
    stage.persister.stop().await?;
    Ok(())
}

/// R2: the persister SIGKILLed again and again while records keep coming.
async fn r2_persister_killed(world: &World, sizes: Sizes, report: &mut Report) -> Result<()> {
    let stage = stage(world, FEW_CLIENTS, 1000).await?;
    let Stage {
        mut producer,
        mut persister,
        mut notifier,
        fleet,
    } = stage;
    let probe = LoadProbe::new();
    // A quarter of the rate: a killed persister stalls for the group's session timeout,
    // and the backlog of that stall must be smaller than what it can catch up on before
    // the next kill (the debug persister applies about 200 records/s here).
    let plan = LoadPlan {
        rate: sizes.rate / 4.0,
        ..plan(sizes)
    };
    let load = tokio::spawn(load::run(producer.url(), plan, probe.clone()));
    let mut recover = Vec::new();
    let mut stalls = Vec::new();
    let faults = async {
        for n in 1..=sizes.persister_kills {
            // Mid-stream: let it apply for a while after its (re)start.
            tokio::time::sleep(Duration::from_secs(3)).await;
            let ends = ledger::end_offsets(&world.names.topic).await?;
            let partitions = ends.len();
            let killed_at = Instant::now();
            persister.kill()?;
            // Read after the kill: until then the old persister commits every second.
            let before = world::committed(&world.names.topic, &world.names.group, partitions).await;
            persister.start_ready().await?;
            // The group gives the dead member's partitions to the new one only when the
            // dead one's session times out: measure that stall on its own.
            let resumed = loop {
                let now =
                    world::committed(&world.names.topic, &world.names.group, partitions).await;
                if now.is_some() && before.is_some() && now > before {
                    break killed_at.elapsed().as_secs_f64();
                }
                if killed_at.elapsed() > Duration::from_secs(180) {
                    bail!("the restarted persister committed nothing within 180 s");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            };
            // Recovered: it has applied everything that was in the topic at the kill.
            world::wait_committed(
                &world.names.topic,
                &world.names.group,
                &ends,
                Duration::from_secs(180),
            )
            .await?;
            let took = killed_at.elapsed().as_secs_f64();
            eprintln!(
                "  kill {n}: persister committing again after {resumed:.1} s, caught up with the \
                 topic at the kill after {took:.1} s"
            );
            stalls.push(resumed);
            recover.push(took);
        }
        anyhow::Ok(())
    }
    .await;
    probe.faults_done.store(true, Ordering::SeqCst);
    if faults.is_err() {
        probe.abort.store(true, Ordering::SeqCst);
    }
    let commands = load.await?;
    faults?;
    report.recover_s = recover;
    report.detail("persister_starts", persister.starts);
    report.detail("committing_again_after_s", &stalls);
    settle(world, fleet, &commands, report).await?;
    producer.stop().await?;
    notifier.stop().await?;
    persister.stop().await?;
    Ok(())
}

/// R3: the topic replayed twice into a fresh table, and redelivered by concurrent
/// persisters (one killed halfway): every table is byte-identical to the live one.
async fn r3_replayed(
    world: &World,
    sizes: Sizes,
    report: &mut Report,
    keyspaces: &mut Vec<String>,
) -> Result<()> {
    let stage = stage(world, FEW_CLIENTS, 1000).await?;
    let probe = LoadProbe::new();
    probe.faults_done.store(true, Ordering::SeqCst);
    let fast = LoadPlan {
        rate: sizes.rate * 4.0,
        ..plan(sizes)
    };
    let commands = load::run(stage.producer.url(), fast, probe).await;
    let (log, _) = settle(world, stage.fleet, &commands, report).await?;
    let Stage {
        mut producer,
        mut persister,
        mut notifier,
        ..
    } = stage;
    producer.stop().await?;
    notifier.stop().await?;
    persister.stop().await?;
    let ends = log.ends.clone();
    let live = ledger::read_table(&world.session, &world.names.keyspace).await?;
    let bin = &world.layout.bin_dir;

    // Twice in a row into one fresh keyspace, each time from the start.
    let twice = format!("{}_twice", world.names.keyspace);
    keyspaces.push(twice.clone());
    let mut replays = Vec::new();
    for n in 1..=2 {
        let group = format!("{}-replay{n}", world.names.group);
        let target = Target {
            keyspace: &twice,
            group: &group,
            dlq: &world.names.dlq,
        };
        let took =
            rebuild::replay(bin, &world.logs, &world.names.topic, target, &ends, DRAIN).await?;
        eprintln!("  replay {n} into {twice}: {:.1} s", took.as_secs_f64());
        replays.push(took.as_secs_f64());
    }
    let rebuilt = ledger::read_table(&world.session, &twice).await?;
    let twice_diff = ledger::diff_tables(&live, &rebuilt, &HashSet::new());
    report.require(
        twice_diff.ok(),
        format!(
            "replayed twice: {} rows differ from the live table",
            twice_diff.different
        ),
    );

    // Redelivery: three persisters of their own groups write one keyspace at once, each
    // from the start, so that every record arrives three times, interleaved differently
    // across keys; in the full form one is killed halfway and restarted (it redelivers
    // from its commits).
    let concurrent = format!("{}_redelivered", world.names.keyspace);
    keyspaces.push(concurrent.clone());
    world::create_keyspace(&world.session, &concurrent).await?;
    let mut persisters = Vec::new();
    for n in 1..=3 {
        let group = format!("{}-redeliver{n}", world.names.group);
        let mut p = world.persister_into(&concurrent, &group, &world.names.dlq)?;
        p.start()?;
        persisters.push((p, group));
    }
    for (p, _) in &mut persisters {
        p.wait_ready(Duration::from_secs(60)).await?;
    }
    let total: i64 = ends.iter().sum();
    let half: Vec<i64> = ends.iter().map(|e| e / 2).collect();
    if sizes.redelivery_kill {
        let killed_group = persisters[1].1.clone();
        world::wait_committed(&world.names.topic, &killed_group, &half, DRAIN).await?;
        persisters[1].0.kill()?;
        persisters[1].0.start_ready().await?;
    }
    for (p, group) in &mut persisters {
        world::wait_committed(&world.names.topic, group, &ends, DRAIN).await?;
        p.stop().await?;
    }
    let redelivered = ledger::read_table(&world.session, &concurrent).await?;
    let redelivered_diff = ledger::diff_tables(&live, &redelivered, &HashSet::new());
    report.require(
        redelivered_diff.ok(),
        format!(
            "redelivered: {} rows differ from the live table",
            redelivered_diff.different
        ),
    );
    // Shuffled per-key redelivery: every event applied by the persister's own writer in a
    // random interleaving across documents (each document's events in order), and a
    // quarter of them delivered once more after a later one of the same document.
    let shuffled = format!("{}_shuffled", world.names.keyspace);
    keyspaces.push(shuffled.clone());
    let redeliveries = apply_shuffled(world, &log, &shuffled).await?;
    let shuffled_table = ledger::read_table(&world.session, &shuffled).await?;
    let shuffled_diff = ledger::diff_tables(&live, &shuffled_table, &HashSet::new());
    report.require(
        shuffled_diff.ok(),
        format!(
            "shuffled redelivery: {} rows differ from the live table",
            shuffled_diff.different
        ),
    );
    report.detail("shuffled_redelivered_events", redeliveries);
    report.detail("shuffled_per_key", &shuffled_diff);
    report.acknowledged = commands.iter().filter(|c| c.acknowledged).count();
    report.duplicated +=
        twice_diff.different + redelivered_diff.different + shuffled_diff.different;
    report.detail("records", total);
    report.detail("replay_s", &replays);
    report.detail("replayed_twice", &twice_diff);
    report.detail("redelivered_by_3_persisters", &redelivered_diff);
    Ok(())
}

/// Applies every event of `log` to a fresh `keyspace` with the persister's writer
/// (`store::DocumentWriter`, the code the persister runs per record), shuffled across
/// documents but in order per document, with redeliveries of earlier events; returns how
/// many events were delivered twice.
async fn apply_shuffled(world: &World, log: &TopicLog, keyspace: &str) -> Result<usize> {
    world::create_keyspace(&world.session, keyspace).await?;
    let keyspace = store::Keyspace::new(keyspace, store::DEFAULT_REPLICATION_FACTOR)?;
    let writer = store::DocumentWriter::prepare(world.session.clone(), &keyspace).await?;
    let mut per_key: HashMap<Uuid, Vec<(i64, Event)>> = HashMap::new();
    for record in log.records() {
        if let Some(event) = record.event() {
            per_key
                .entry(event.payload.id)
                .or_default()
                .push((record.offset, event));
        }
    }
    // Sixteen writers, each with its share of the documents in a random order of its own.
    const WRITERS: usize = 16;
    let mut shares: Vec<Vec<Vec<(i64, Event)>>> = (0..WRITERS).map(|_| Vec::new()).collect();
    for (n, (_, events)) in per_key.into_iter().enumerate() {
        shares[n % WRITERS].push(events);
    }
    let mut tasks = Vec::new();
    for (n, mut share) in shares.into_iter().enumerate() {
        let writer = writer.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Lcg(0xfeed + n as u64);
            let mut next = vec![0_usize; share.len()];
            let mut redelivered = 0;
            loop {
                let open: Vec<usize> = (0..share.len())
                    .filter(|&k| next[k] < share[k].len())
                    .collect();
                if open.is_empty() {
                    break;
                }
                let k = open[rng.below(open.len())];
                let (offset, event) = &share[k][next[k]];
                writer.apply(event, *offset).await?;
                next[k] += 1;
                if next[k] > 1 && rng.below(4) == 0 {
                    let (offset, event) = &share[k][rng.below(next[k] - 1)];
                    writer.apply(event, *offset).await?;
                    redelivered += 1;
                }
            }
            share.clear();
            anyhow::Ok(redelivered)
        }));
    }
    let mut redelivered = 0;
    for task in tasks {
        redelivered += task.await??;
    }
    Ok(redelivered)
}

/// R4: Cassandra frozen under load. While it is frozen nothing can be written, so the
/// committed offsets must not move; right after the thaw (with the persister frozen in
/// turn) the table must hold every record below the committed offsets; afterwards the
/// lag returns to 0.
async fn r4_cassandra_frozen(world: &World, sizes: Sizes, report: &mut Report) -> Result<()> {
    let stage = stage(world, FEW_CLIENTS, 1000).await?;
    let Stage {
        mut producer,
        mut persister,
        mut notifier,
        fleet,
    } = stage;
    let topic = &world.names.topic;
    let group = &world.names.group;
    let probe = LoadProbe::new();
    let load = tokio::spawn(load::run(producer.url(), plan(sizes), probe.clone()));
    let faults = async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let paused =
            tokio::task::spawn_blocking(|| faults::pause(faults::Server::Cassandra)).await?;
        let frozen_at = Instant::now();
        eprintln!("  Cassandra frozen (SIGSTOP) for {:?}", sizes.freeze);
        // Offsets stored before the freeze are committed within the commit interval
        // (librdkafka's auto-commit); after that, nothing may move.
        let settle = Duration::from_secs(6).min(sizes.freeze / 2);
        tokio::time::sleep(settle).await;
        let at_settle = world::committed(topic, group, world::PARTITIONS as usize).await;
        let mut advanced = 0_i64;
        while frozen_at.elapsed() < sizes.freeze {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if let (Some(now), Some(before)) = (
                world::committed(topic, group, world::PARTITIONS as usize).await,
                &at_settle,
            ) {
                advanced = advanced.max(now.iter().zip(before).map(|(n, b)| n - b).sum());
            }
        }
        let backlog = ledger::end_offsets(topic).await?;
        // Freeze the persister, thaw Cassandra: the table now shows what was written
        // before, and nothing more can be committed while we look.
        persister.signal(Signal::SIGSTOP)?;
        paused.resume();
        let thawed_at = Instant::now();
        let committed = world::committed(topic, group, world::PARTITIONS as usize)
            .await
            .context("committed offsets after the thaw")?;
        let table = read_table_retrying(world).await?;
        let log = ledger::read_topic(topic, None, &backlog).await?;
        persister.signal(Signal::SIGCONT)?;
        let prefix = committed_prefix(&log, &table, &committed);
        world::wait_committed(topic, group, &backlog, DRAIN).await?;
        let recovered = thawed_at.elapsed().as_secs_f64();
        eprintln!("  thawed; the persister caught up with the backlog after {recovered:.1} s");
        anyhow::Ok((advanced, committed, prefix, recovered))
    }
    .await;
    probe.faults_done.store(true, Ordering::SeqCst);
    if faults.is_err() {
        probe.abort.store(true, Ordering::SeqCst);
        // Never leave the persister frozen.
        let _ = persister.signal(Signal::SIGCONT);
    }
    let commands = load.await?;
    let (advanced, committed, prefix, recovered) = faults?;
    report.recover_s = vec![recovered];
    report.detail("committed_advance_while_frozen", advanced);
    report.detail("committed_at_thaw", &committed);
    report.require(
        advanced == 0,
        format!("committed offsets advanced by {advanced} while Cassandra was frozen"),
    );
    match prefix {
        Ok(applied) => {
            report.detail("applied_at_thaw", &applied);
        }
        Err(problem) => report.failures.push(format!(
            "an offset was committed before its write reached the table: {problem}"
        )),
    }
    settle(world, fleet, &commands, report).await?;
    let lag = world::lag(topic, group).await;
    report.detail("lag_after", lag);
    report.require(lag == Some(0), format!("lag after the scenario: {lag:?}"));
    producer.stop().await?;
    notifier.stop().await?;
    persister.stop().await?;
    Ok(())
}

/// The table, read as soon as Cassandra answers again.
async fn read_table_retrying(world: &World) -> Result<HashMap<Uuid, Row>> {
    let started = Instant::now();
    loop {
        match ledger::read_table(&world.session, &world.names.keyspace).await {
            Ok(table) => return Ok(table),
            Err(error) if started.elapsed() > Duration::from_secs(60) => return Err(error),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Checks that for every partition the table is the fold of a prefix of that partition
/// at least as long as the committed offset: nothing committed was left unwritten.
/// Returns, per partition, the shortest such prefix (how far the writes really went).
fn committed_prefix(
    log: &TopicLog,
    table: &HashMap<Uuid, Row>,
    committed: &[i64],
) -> Result<Vec<i64>, String> {
    let mut applied = Vec::new();
    for (partition, records) in log.partitions.iter().enumerate() {
        let from = committed.get(partition).copied().unwrap_or(-1).max(0);
        let events: Vec<(i64, Event)> = records
            .iter()
            .filter_map(|r| r.event().map(|e| (r.offset, e)))
            .collect();
        let keys: HashSet<Uuid> = events.iter().map(|(_, e)| e.payload.id).collect();
        let mut state: HashMap<Uuid, Folded> = HashMap::new();
        let mut next = 0;
        while next < events.len() && events[next].0 < from {
            ledger::apply(&mut state, &events[next].1);
            next += 1;
        }
        let differs = |state: &HashMap<Uuid, Folded>, key: &Uuid| {
            table.get(key).map(Row::folded) != state.get(key).cloned()
        };
        let mut mismatched: HashSet<Uuid> = keys
            .iter()
            .filter(|k| differs(&state, k))
            .copied()
            .collect();
        let mut reached = from;
        while !mismatched.is_empty() {
            let Some((offset, event)) = events.get(next) else {
                let example = mismatched.iter().next().copied();
                return Err(format!(
                    "partition {partition}: committed {from}, yet {} documents differ from \
                     every fold at or past it (e.g. {example:?})",
                    mismatched.len()
                ));
            };
            ledger::apply(&mut state, event);
            let key = event.payload.id;
            if differs(&state, &key) {
                mismatched.insert(key);
            } else {
                mismatched.remove(&key);
            }
            reached = offset + 1;
            next += 1;
        }
        applied.push(reached);
    }
    Ok(applied)
}

/// R5: many SSE clients while the notifier is killed and restarted; then a position that
/// has left the log must get `event: reset`.
async fn r5_notifier_killed(world: &World, sizes: Sizes, report: &mut Report) -> Result<()> {
    let stage = stage(world, sizes.sse_clients, R5_HISTORY).await?;
    let Stage {
        mut producer,
        mut persister,
        mut notifier,
        fleet,
    } = stage;
    let probe = LoadProbe::new();
    let plan = LoadPlan {
        commands: sizes.sse_commands,
        rate: sizes.sse_rate,
        ..plan(sizes)
    };
    let load = tokio::spawn(load::run(producer.url(), plan, probe.clone()));
    let mut recover = Vec::new();
    let faults = async {
        for n in 1..=sizes.notifier_kills {
            tokio::time::sleep(Duration::from_secs(3)).await;
            let killed_at = Instant::now();
            notifier.kill()?;
            tokio::time::sleep(Duration::from_millis(500)).await;
            notifier.start_ready().await?;
            let took = killed_at.elapsed().as_secs_f64();
            eprintln!("  kill {n}: notifier back (ready) {took:.1} s after the kill");
            recover.push(took);
        }
        anyhow::Ok(())
    }
    .await;
    probe.faults_done.store(true, Ordering::SeqCst);
    if faults.is_err() {
        probe.abort.store(true, Ordering::SeqCst);
    }
    let commands = load.await?;
    faults?;
    report.recover_s = recover;
    let (log, _) = settle(world, fleet, &commands, report).await?;

    // A position that has left the log: delete the oldest records of partition 0 (Kafka's
    // DeleteRecords), older than the notifier's memory, and resume from before them.
    let ends = log.ends.clone();
    let cut = (ends[0] - R5_HISTORY as i64) / 2;
    if cut <= 0 {
        bail!(
            "partition 0 has too few records ({}) for the reset check",
            ends[0]
        );
    }
    delete_records(&world.names.topic, 0, cut).await?;
    let mut token: Vec<String> = ends
        .iter()
        .enumerate()
        .map(|(p, e)| format!("{p}:{e}"))
        .collect();
    token[0] = "0:0".into();
    let token = token.join(",");
    let mut stream = testkit::sse::SseClient::try_connect(
        &format!("{}/documents", notifier.url()),
        Some(&token),
    )
    .await?
    .without_transcript();
    let mut reset = None;
    let mut first_offset = None;
    let mut position = super::sse::parse_token(&token).unwrap_or_default();
    while position[0] < ends[0] {
        let Ok(Some(frame)) = stream.try_next_frame(Duration::from_secs(10)).await else {
            break;
        };
        let Some(next) = frame.id.as_deref().and_then(super::sse::parse_token) else {
            continue;
        };
        if frame.event.as_deref() == Some("reset") {
            reset = frame.data.clone();
        } else if frame.data.is_some() && first_offset.is_none() && next[0] != position[0] {
            first_offset = Some(next[0] - 1);
        }
        position = next;
    }
    report.detail("reset_check_deleted_below", cut);
    report.detail("reset_frame", &reset);
    report.detail("reset_check_first_event_offset", first_offset);
    report.require(
        reset.as_deref().is_some_and(|d| d.contains(&format!("\"continuesFromOffset\":{cut}"))),
        format!("no `event: reset` continuing at {cut} for a position older than the log (got {reset:?})"),
    );
    report.require(
        first_offset.is_some_and(|o| o >= cut),
        format!("after the reset the first event was at {first_offset:?}, not at or past {cut}"),
    );
    producer.stop().await?;
    notifier.stop().await?;
    persister.stop().await?;
    Ok(())
}

/// Deletes the records of `partition` below `offset` (Kafka's DeleteRecords).
async fn delete_records(topic: &str, partition: i32, offset: i64) -> Result<()> {
    let admin = messaging::admin_client(&testkit::infra().bootstrap)?;
    let mut list = rdkafka::TopicPartitionList::new();
    list.add_partition_offset(topic, partition, rdkafka::Offset::Offset(offset))?;
    let result = admin
        .delete_records(&list, &rdkafka::admin::AdminOptions::new())
        .await?;
    for element in result.elements() {
        if let Err(error) = element.error() {
            bail!("cannot delete records of {topic}/{partition} below {offset}: {error}");
        }
    }
    Ok(())
}

/// R7: poison records among valid ones, produced straight to the topic as a broken
/// producer would: every poison record ends in the dead-letter topic with its origin, no
/// valid record is skipped.
async fn r7_poison(world: &World, sizes: Sizes, report: &mut Report) -> Result<()> {
    let mut persister = world.persister()?;
    persister.start_ready().await?;
    let producer: FutureProducer =
        messaging::durable_producer_config(&testkit::infra().bootstrap, Duration::from_secs(60))
            .set("linger.ms", "5")
            .create()?;
    let total = sizes.valid_records + sizes.poison_records;
    // Poison at evenly spread, shuffled positions.
    let mut poison_at: HashSet<usize> = HashSet::new();
    let mut rng = Lcg(0x5eed_cafe);
    while poison_at.len() < sizes.poison_records {
        poison_at.insert(rng.below(total));
    }
    let mut docs: Vec<Uuid> = Vec::new();
    let mut planned = Vec::with_capacity(total);
    for i in 0..total {
        if poison_at.contains(&i) {
            planned.push(poison(i, &mut rng));
            continue;
        }
        // Valid: create a new document a third of the time, else update or delete one.
        let roll = rng.below(10);
        let event = if docs.is_empty() || roll < 3 {
            let id = Uuid::new_v4();
            docs.push(id);
            testkit::documents::create(id, "chaos", &format!("v{i}"))
        } else if roll == 9 {
            let id = docs.swap_remove(rng.below(docs.len()));
            Event::deleted(id, testkit::documents::trace_id())
        } else {
            let id = docs[rng.below(docs.len())];
            testkit::documents::update(id, None, Some(&format!("v{i}")))
        };
        planned.push((false, event.key(), event.to_json(), Some(mime::EVENT)));
    }
    let started = Instant::now();
    let mut positions: Vec<(bool, i32, i64)> = Vec::with_capacity(total);
    // Sent in order, many in flight: the producer keeps each partition's order.
    let mut inflight = std::collections::VecDeque::new();
    for (is_poison, key, value, content_type) in &planned {
        let mut headers = rdkafka::message::OwnedHeaders::new();
        if let Some(content_type) = content_type {
            headers = headers.insert(rdkafka::message::Header {
                key: "content-type",
                value: Some(*content_type),
            });
        }
        let record = FutureRecord::to(&world.names.topic)
            .key(key)
            .payload(value)
            .headers(headers);
        inflight.push_back((
            *is_poison,
            producer.send_result(record).map_err(|(e, _)| e)?,
        ));
        if inflight.len() >= 2000 {
            let (is_poison, delivery) = inflight.pop_front().expect("in flight");
            let delivery = delivery.await?.map_err(|(e, _)| e)?;
            positions.push((is_poison, delivery.partition, delivery.offset));
        }
    }
    for (is_poison, delivery) in inflight {
        let delivery = delivery.await?.map_err(|(e, _)| e)?;
        positions.push((is_poison, delivery.partition, delivery.offset));
    }
    eprintln!(
        "  {} records produced in {:.1} s; waiting for the persister",
        positions.len(),
        started.elapsed().as_secs_f64()
    );
    let ends = ledger::end_offsets(&world.names.topic).await?;
    let drain =
        world::wait_committed(&world.names.topic, &world.names.group, &ends, DRAIN * 6).await?;
    report.detail("drain_s", drain.as_secs_f64());
    report.detail("produce_and_apply_s", started.elapsed().as_secs_f64());
    persister.stop().await?;

    let log = ledger::read_topic(&world.names.topic, None, &ends).await?;
    let dlq_ends = ledger::end_offsets(&world.names.dlq).await?;
    let dead = ledger::read_topic(&world.names.dlq, None, &dlq_ends).await?;
    let poison: HashSet<(i32, i64)> = positions
        .iter()
        .filter(|(p, ..)| *p)
        .map(|&(_, partition, offset)| (partition, offset))
        .collect();
    let mut origins: HashMap<(i32, i64), usize> = HashMap::new();
    let mut without_origin = 0;
    for record in dead.records() {
        let origin = (|| {
            let topic = record.header("dlq.origin.topic")?;
            let partition = record.header("dlq.origin.partition")?.parse().ok()?;
            let offset = record.header("dlq.origin.offset")?.parse().ok()?;
            record.header("dlq.reason")?;
            (topic == world.names.topic).then_some((partition, offset))
        })();
        match origin {
            Some(origin) => *origins.entry(origin).or_default() += 1,
            None => without_origin += 1,
        }
    }
    let poison_missing = poison.iter().filter(|p| !origins.contains_key(p)).count();
    let valid_dead = origins.keys().filter(|o| !poison.contains(o)).count();
    let dead_twice = origins.values().filter(|&&n| n > 1).count();
    let table = ledger::read_table(&world.session, &world.names.keyspace).await?;
    let check = ledger::check_table(&ledger::fold(&log), &table);
    report.acknowledged = positions.len();
    report.duplicated += dead_twice;
    report.lost += poison_missing;
    report.detail("valid_records", sizes.valid_records);
    report.detail("poison_records", poison.len());
    report.detail("dead_letters", dead.len());
    report.detail("poison_missing_from_dlq", poison_missing);
    report.detail("valid_records_dead_lettered", valid_dead);
    report.detail("dead_letters_without_origin", without_origin);
    report.detail("dead_lettered_twice", dead_twice);
    report.require(
        poison_missing == 0,
        format!("{poison_missing} poison records are not in the dead-letter topic"),
    );
    report.require(
        valid_dead == 0,
        format!("{valid_dead} valid records were dead-lettered"),
    );
    report.require(
        without_origin == 0,
        format!("{without_origin} dead letters lack their origin headers"),
    );
    report.require(
        dead_twice == 0,
        format!("{dead_twice} records were dead-lettered twice"),
    );
    report.ledger(None, Some(check), None);
    Ok(())
}

type Planned = (bool, String, Vec<u8>, Option<&'static str>);

/// A poison record of one of three kinds: no event content type, a value that is not an
/// event, an event under another document's key.
fn poison(i: usize, rng: &mut Lcg) -> Planned {
    let id = Uuid::new_v4();
    match rng.below(3) {
        0 => (
            true,
            id.to_string(),
            format!("plain text {i}").into_bytes(),
            Some("text/plain"),
        ),
        1 => (
            true,
            id.to_string(),
            b"{\"header\": 42".to_vec(),
            Some(mime::EVENT),
        ),
        _ => {
            let event = testkit::documents::create(id, "poison", &format!("p{i}"));
            (
                true,
                Uuid::new_v4().to_string(),
                event.to_json(),
                Some(mime::EVENT),
            )
        }
    }
}

/// A small deterministic random sequence (the scenario is the same on every run).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::ledger::tests::{log_of, record};

    #[test]
    fn an_offset_committed_past_the_writes_is_found() {
        let a = Uuid::new_v4();
        let log = log_of(vec![
            record(0, 0, &testkit::documents::create(a, "ann", "one")),
            record(0, 1, &testkit::documents::update(a, None, Some("two"))),
        ]);
        let row = |text: &str| Row {
            author: Some("ann".into()),
            text: Some(text.into()),
            author_written: None,
            text_written: None,
        };
        let written_once = HashMap::from([(a, row("one"))]);
        // Committed 1: the first write is there, the second may still come.
        assert_eq!(
            committed_prefix(&log, &written_once, &[1, 0]),
            Ok(vec![1, 0])
        );
        // Committed 2 with only the first write in the table: an offset ran ahead.
        assert!(committed_prefix(&log, &written_once, &[2, 0]).is_err());
        // Written ahead of the commits is fine (stored, not committed yet).
        let written_twice = HashMap::from([(a, row("two"))]);
        assert_eq!(
            committed_prefix(&log, &written_twice, &[1, 0]),
            Ok(vec![2, 0])
        );
    }
}
