//! The release-mode benchmark behind `cargo xtask bench`: each figure of the platform
//! next to a raw baseline measured in the same run on the same servers (rdkafka, the
//! scylla driver, a bare SSE server), written to `target/bench/results.md` with a plot
//! of the latency distributions. The services run as processes from the release build
//! (the chaos harness's `World`: a topic, keyspace and group of their own).

mod child;
mod cpu;
mod drive;
mod fleet;
pub mod load;
mod raw;
mod report;
mod stats;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use events::Event;
use uuid::Uuid;

use crate::chaos::procs::ServiceProcess;
use crate::chaos::{Layout, world};
pub use fleet::{serve_bare, serve_otlp_sink};
pub use raw::serve_bare_reader;
pub use report::{Report, Row};
use stats::Latencies;

/// How long each figure waits at most for the machine to be quiet before it starts.
const SETTLE: Duration = Duration::from_secs(60);

/// How much each figure measures.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Commands per throughput round (P1, P7) and reads (P6).
    pub commands: usize,
    /// Operations in flight for P1, P6 and P7.
    pub concurrency: usize,
    /// Seconds of the fixed-rate run of P2.
    pub rate_secs: f64,
    /// Commands of P4, at `p4_rate` per second.
    pub p4_commands: usize,
    pub p4_rate: f64,
    /// The persister's backlog (P3).
    pub backlog: usize,
    /// Streams for deliveries and memory (P5), and events sent to them.
    pub streams: usize,
    pub fanout_events: usize,
    /// Streams held at once by one notifier (P5).
    pub many_streams: usize,
}

impl Sizes {
    pub const FULL: Self = Self {
        commands: 20_000,
        concurrency: 32,
        rate_secs: 10.0,
        p4_commands: 2_000,
        p4_rate: 200.0,
        backlog: 100_000,
        streams: 1_000,
        fanout_events: 100,
        many_streams: 10_000,
    };
    /// A quick run that shows every figure works (not its final value).
    pub const SHORT: Self = Self {
        commands: 2_000,
        concurrency: 32,
        rate_secs: 3.0,
        p4_commands: 300,
        p4_rate: 100.0,
        backlog: 10_000,
        streams: 200,
        fanout_events: 20,
        many_streams: 1_000,
    };
}

/// Runs every figure; `up_seconds` is P8, measured by xtask.
/// With `profiles`, the platform side of each figure is also sampled by `perf record`,
/// its report written there.
pub async fn run(
    layout: &Layout,
    sizes: Sizes,
    figures: &Figures,
    up_seconds: Option<f64>,
    profiles: Option<PathBuf>,
) -> Result<Report> {
    let mut report = Report::new(sizes);
    let mut meter = cpu::Meter::new(profiles)?;
    if figures.needs_services() {
        let world = world::World::create("perf", layout).await?;
        let outcome = measure(&world, layout, sizes, figures, &mut report, &mut meter).await;
        world.remove(&[]).await?;
        outcome?;
    }
    if figures.wants(3) {
        catch_up(layout, sizes, &mut report, &mut meter).await?;
    }
    report.cpu(meter.runs().to_vec());
    if let Some(seconds) = up_seconds {
        report.push(Row::goal_at_most(
            "P8",
            "`cargo xtask up` to ready, warm",
            format!("{seconds:.1} s"),
            "-".into(),
            seconds,
            60.0,
            "s",
        ));
    }
    Ok(report)
}

async fn measure(
    world: &world::World,
    layout: &Layout,
    sizes: Sizes,
    figures: &Figures,
    report: &mut Report,
    meter: &mut cpu::Meter,
) -> Result<()> {
    let mut producer = world.producer()?;
    let mut persister = world.persister()?;
    let mut reader = reader_process(world)?;
    let mut notifier = world.notifier(1000)?;
    for service in [&mut producer, &mut persister, &mut reader, &mut notifier] {
        service.start_ready().await?;
    }
    for service in [&producer, &persister, &reader, &notifier] {
        meter.watch(service.name, service.pid());
    }
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .build()?;
    let topic = world.names.topic.clone();
    let kafka = raw::durable_producer()?;

    // P1: throughput, alternating rounds so that both sides meet the same machine.
    let created = Arc::new(Mutex::new(Vec::new()));
    let mut p1_platform = f64::NAN;
    if figures.wants(1) {
        meter.settle(SETTLE).await;
        eprintln!(
            "P1: producer commands/s at concurrency {} vs raw rdkafka",
            sizes.concurrency
        );
        let producer_url = producer.url();
        let (platform, baseline) = alternating(
            meter,
            "P1",
            (&["producer"], &[]),
            async || {
                creates_closed(
                    &http,
                    &producer_url,
                    sizes.commands,
                    sizes.concurrency,
                    &created,
                )
                .await
            },
            async || raw::produce_closed(&kafka, &topic, sizes.commands, sizes.concurrency).await,
        )
        .await;
        p1_platform = mean_rate(&platform)?;
        let p1_baseline = mean_rate(&baseline)?;
        report.push(Row::goal_at_least(
            "P1",
            &format!(
                "commands/s through HTTP at concurrency {}",
                sizes.concurrency
            ),
            format!("{p1_platform:.0}/s"),
            format!(
                "{p1_baseline:.0}/s (FutureProducer, {} in flight)",
                sizes.concurrency
            ),
            p1_platform / p1_baseline,
            0.6,
        ));
    }

    // P2: latency at half the producer's maximum rate.
    if figures.wants(2) {
        meter.settle(SETTLE).await;
        let rate = p1_platform / 2.0;
        let count = (rate * sizes.rate_secs) as usize;
        eprintln!(
            "P2: p99 at {rate:.0}/s ({count} commands) vs raw produce-to-ack at the same rate"
        );
        let platform = meter
            .measure(
                "P2 platform",
                &["producer"],
                creates_open(&http, &producer.url(), count, rate),
            )
            .await;
        // Open-loop runs are one per side: the baseline starts once the consumers have
        // drained what the platform side wrote, rather than meeting that work.
        meter.settle(SETTLE).await;
        let baseline = meter
            .measure(
                "P2 baseline",
                &[],
                raw::produce_open(&kafka, &topic, count, rate),
            )
            .await;
        check_failures("P2", &[&platform, &baseline])?;
        report_latency(
            report,
            "P2",
            &format!("p99 of a command at {rate:.0}/s (half the maximum)"),
            (&platform, &baseline),
            "",
            1.3,
        );
    }

    // P4: command accepted to SSE received, against produce to consume.
    if figures.wants(4) {
        meter.settle(SETTLE).await;
        eprintln!(
            "P4: command to SSE delivery vs raw produce to consume ({} at {}/s)",
            sizes.p4_commands, sizes.p4_rate
        );
        let run = meter.start("P4 platform", &["producer", "notifier"]).await;
        let platform = command_to_sse(
            &http,
            &producer.url(),
            &notifier.url(),
            sizes.p4_commands,
            sizes.p4_rate,
        )
        .await?;
        meter.finish(run, &platform).await;
        meter.settle(SETTLE).await;
        let run = meter.start("P4 baseline", &[]).await;
        let baseline = raw::produce_to_consume(&topic, sizes.p4_commands, sizes.p4_rate).await?;
        meter.finish(run, &baseline).await;
        check_failures("P4", &[&platform, &baseline])?;
        report_latency(
            report,
            "P4",
            "p99 from sending a command to its SSE event",
            (&platform, &baseline),
            "; produce to consume",
            2.0,
        );
    }

    // P6: reads of the documents created above, once the persister applied them.
    if figures.wants(6) {
        let ends: Vec<i64> = messaging::watermarks(
            messaging::client_config(&testkit::infra().bootstrap),
            &topic,
        )
        .await?
        .into_iter()
        .map(|(_, high)| high)
        .collect();
        world::wait_committed(&topic, &world.names.group, &ends, Duration::from_secs(600)).await?;
        meter.settle(SETTLE).await;
        let ids: Vec<Uuid> = created.lock().expect("ids").clone();
        eprintln!(
            "P6: reader requests/s at concurrency {} vs raw scylla point reads",
            sizes.concurrency
        );
        let table = raw::Table::prepare(Arc::clone(&world.session), &world.names.keyspace).await?;
        let reader_url = reader.url();
        let (platform, baseline) = alternating(
            meter,
            "P6",
            (&["reader"], &[]),
            async || {
                reads_closed(&http, &reader_url, &ids, sizes.commands, sizes.concurrency).await
            },
            async || {
                table
                    .read_closed(&ids, sizes.commands, sizes.concurrency)
                    .await
            },
        )
        .await;
        let (p6_platform, p6_baseline) = (mean_rate(&platform)?, mean_rate(&baseline)?);
        report.push(Row::goal_at_least(
            "P6",
            &format!("reads/s at concurrency {}", sizes.concurrency),
            format!("{p6_platform:.0}/s"),
            format!("{p6_baseline:.0}/s (prepared point reads)"),
            p6_platform / p6_baseline,
            0.7,
        ));
        // How much of the distance is HTTP itself: the same reads through the same client
        // from a bare axum server doing the same point read, in alternating rounds again.
        meter.settle(SETTLE).await;
        let bare = child::Helper::start("bare-reader", &[&world.names.keyspace]).await?;
        meter.watch("bare reader", bare.pid());
        let bare_url = format!("http://{}", bare.address);
        let (platform, bare_reads) = alternating(
            meter,
            "P6 http",
            (&["reader"], &["bare reader"]),
            async || {
                reads_closed(&http, &reader_url, &ids, sizes.commands, sizes.concurrency).await
            },
            async || reads_closed(&http, &bare_url, &ids, sizes.commands, sizes.concurrency).await,
        )
        .await;
        drop(bare);
        let (reader_rate, bare_rate) = (mean_rate(&platform)?, mean_rate(&bare_reads)?);
        report.push(Row::info(
            "P6",
            &format!(
                "reads/s at concurrency {}, both through HTTP (what of P6 is not HTTP)",
                sizes.concurrency
            ),
            format!("{reader_rate:.0}/s"),
            format!("{bare_rate:.0}/s (bare axum server, same point read, no telemetry)"),
            reader_rate / bare_rate,
        ));
    }

    // P5: fan-out, memory per idle stream, and many streams on one notifier.
    if figures.wants(5) {
        meter.settle(SETTLE).await;
        fanout(&notifier, &persister, &kafka, &topic, sizes, report, meter).await?;
    }

    // P7: telemetry exported vs off, two producers in alternating rounds.
    if figures.wants(7) {
        meter.settle(SETTLE).await;
        telemetry_overhead(world, layout, &http, &producer.url(), sizes, report, meter).await?;
    }

    // P3 comes last, in a world of its own (`run`): it needs a topic with a backlog.
    for service in [&mut producer, &mut reader, &mut notifier, &mut persister] {
        service.stop().await?;
    }
    Ok(())
}

/// The figures a run measures: all of them, or those `perf run --only` names. P2 and P6
/// need P1 (P2 runs at half P1's rate, P6 reads what P1 created), so naming either runs
/// P1 too. P8 is measured by `cargo xtask bench`, not here.
#[derive(Debug, Clone, Default)]
pub struct Figures(Option<std::collections::BTreeSet<u8>>);

impl Figures {
    /// Every figure, P1 to P7.
    pub fn all() -> Self {
        Self(None)
    }

    /// `names` such as `P3` or `p6`; an empty list means all.
    pub fn only(names: &[String]) -> Result<Self> {
        if names.is_empty() {
            return Ok(Self::all());
        }
        let mut wanted = std::collections::BTreeSet::new();
        for name in names {
            let number = name
                .trim()
                .trim_start_matches(['P', 'p'])
                .parse::<u8>()
                .ok()
                .filter(|n| (1..=7).contains(n))
                .with_context(|| {
                    format!("--only {name:?}: name figures P1 to P7, such as `--only P3,P6`")
                })?;
            wanted.insert(number);
            if number == 2 || number == 6 {
                wanted.insert(1);
            }
        }
        Ok(Self(Some(wanted)))
    }

    pub fn wants(&self, number: u8) -> bool {
        self.0.as_ref().is_none_or(|set| set.contains(&number))
    }

    /// Whether a figure other than P3 runs: they share one set of running services.
    fn needs_services(&self) -> bool {
        [1, 2, 4, 5, 6, 7].iter().any(|n| self.wants(*n))
    }
}

/// The two sides of a throughput figure in two rounds, ABBA: the side that runs second in
/// a pair meets what the first left behind (the consumers still at work), so each side
/// runs first once. Each run is charged to `<figure> platform` or `<figure> baseline`;
/// `profiles` names the processes `--profile` samples for each side.
async fn alternating(
    meter: &mut cpu::Meter,
    figure: &str,
    profiles: (&[&str], &[&str]),
    mut platform: impl AsyncFnMut() -> drive::Outcome,
    mut baseline: impl AsyncFnMut() -> drive::Outcome,
) -> (Vec<drive::Outcome>, Vec<drive::Outcome>) {
    let (mut ours, mut raw) = (Vec::new(), Vec::new());
    for platform_now in ABBA {
        if platform_now {
            let outcome = meter
                .measure(&format!("{figure} platform"), profiles.0, platform())
                .await;
            ours.push(outcome);
        } else {
            let outcome = meter
                .measure(&format!("{figure} baseline"), profiles.1, baseline())
                .await;
            raw.push(outcome);
        }
    }
    (ours, raw)
}

/// The order of the rounds of a two-sided figure, `true` for the platform's: baseline,
/// platform, platform, baseline.
const ABBA: [bool; 4] = [false, true, true, false];

fn reader_process(world: &world::World) -> Result<ServiceProcess> {
    let infra = testkit::infra();
    ServiceProcess::new(
        "reader",
        &world.layout.bin_dir,
        &world.logs,
        vec![
            (
                "CASSANDRA_CONTACT_POINTS".into(),
                infra.contact_points.clone(),
            ),
            ("CASSANDRA_KEYSPACE".into(), world.names.keyspace.clone()),
        ],
    )
}

fn body() -> String {
    format!(r#"{{"author":"bench","text":"{}"}}"#, "x".repeat(32))
}

/// One create through HTTP; the id on success.
async fn create(http: &reqwest::Client, producer: &str) -> Option<Uuid> {
    #[derive(serde::Deserialize)]
    struct Created {
        id: Uuid,
    }
    let response = http
        .post(format!("{producer}/documents"))
        .header("content-type", events::mime::CREATE_DOCUMENT)
        .body(body())
        .send()
        .await
        .ok()?;
    if response.status() != 201 {
        return None;
    }
    response.json::<Created>().await.ok().map(|c| c.id)
}

async fn creates_closed(
    http: &reqwest::Client,
    producer: &str,
    count: usize,
    concurrency: usize,
    created: &Arc<Mutex<Vec<Uuid>>>,
) -> drive::Outcome {
    drive::closed_loop(count, concurrency, |_| async move {
        let id = create(http, producer).await;
        if let Some(id) = id {
            created.lock().expect("ids").push(id);
        }
        id.is_some()
    })
    .await
}

async fn creates_open(
    http: &reqwest::Client,
    producer: &str,
    count: usize,
    rate: f64,
) -> drive::Outcome {
    drive::open_loop(count, rate, |_| {
        let (http, producer) = (http.clone(), producer.to_owned());
        async move { create(&http, &producer).await.is_some() }
    })
    .await
}

async fn reads_closed(
    http: &reqwest::Client,
    reader: &str,
    ids: &[Uuid],
    count: usize,
    concurrency: usize,
) -> drive::Outcome {
    drive::closed_loop(count, concurrency, |i| {
        let url = format!("{reader}/documents/{}", ids[i % ids.len()]);
        async move {
            // A read is the document in hand, as the raw loop's rows are: the body too.
            match http.get(url).send().await {
                Ok(response) if response.status() == 200 => response.bytes().await.is_ok(),
                _ => false,
            }
        }
    })
    .await
}

/// Creates at `rate`, each timed from its send to its event on a notifier stream.
async fn command_to_sse(
    http: &reqwest::Client,
    producer: &str,
    notifier: &str,
    count: usize,
    rate: f64,
) -> Result<drive::Outcome> {
    let mut stream = testkit::sse::SseClient::connect(&format!("{notifier}/documents"), None).await;
    stream
        .next_frame(Duration::from_secs(10))
        .await
        .context("no opening frame")?;
    let sent: Arc<Mutex<HashMap<Uuid, Instant>>> = Arc::default();
    let arrivals = {
        let sent = Arc::clone(&sent);
        tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(count);
            let deadline = Instant::now() + Duration::from_secs(120);
            while latencies.len() < count && Instant::now() < deadline {
                let Ok(Some(frame)) = stream.try_next_frame(Duration::from_secs(5)).await else {
                    continue;
                };
                let arrived = Instant::now();
                let Some(data) = frame.data else { continue };
                let Ok(event) = Event::from_json(data.as_bytes()) else {
                    continue;
                };
                // The id is known only once the answer came: match by the text's tag.
                let tag = event
                    .payload
                    .text
                    .as_deref()
                    .and_then(|t| t.strip_prefix("p4-"));
                if let Some(tag) = tag.and_then(|t| Uuid::parse_str(t).ok())
                    && let Some(at) = sent.lock().expect("sent").remove(&tag)
                {
                    latencies.push(arrived - at);
                }
            }
            latencies
        })
    };
    let started = Instant::now();
    let period = Duration::from_secs_f64(1.0 / rate.max(1.0));
    for i in 0..count {
        tokio::time::sleep_until((started + period.mul_f64(i as f64)).into()).await;
        let tag = Uuid::new_v4();
        sent.lock().expect("sent").insert(tag, Instant::now());
        let (http, producer) = (http.clone(), producer.to_owned());
        tokio::spawn(async move {
            let _ = http
                .post(format!("{producer}/documents"))
                .header("content-type", events::mime::CREATE_DOCUMENT)
                .body(format!(r#"{{"author":"bench","text":"p4-{tag}"}}"#))
                .send()
                .await;
        });
    }
    let latencies = arrivals.await?;
    Ok(drive::Outcome {
        failed: count - latencies.len(),
        latencies: Latencies::new(latencies),
        elapsed: started.elapsed(),
    })
}

/// P5: deliveries per second to many streams against the bare server; memory per idle
/// stream; and many streams on one notifier, every event delivered.
///
/// The persister is paused (SIGSTOP) through the delivery rounds. It reads the same
/// topic, and its Cassandra writes of the round's events took as much of the two cores
/// as the notifier's fan-out itself (the CPU table's cassandra column, 0.7-1.6 us per
/// delivery): work a deployment does on other machines, which would make the figure one
/// of how the platform shares a small box rather than of fan-out.
async fn fanout(
    notifier: &ServiceProcess,
    persister: &ServiceProcess,
    kafka: &rdkafka::producer::FutureProducer,
    topic: &str,
    sizes: Sizes,
    report: &mut Report,
    meter: &mut cpu::Meter,
) -> Result<()> {
    let address: SocketAddr = format!("127.0.0.1:{}", notifier.port).parse()?;
    eprintln!(
        "P5: deliveries/s to {} streams vs a bare broadcast + hyper SSE server",
        sizes.streams
    );
    let mut bare = child::Helper::start("bare-sse", &[]).await?;
    let bare_address: SocketAddr = bare.address.parse()?;
    meter.watch("bare server", bare.pid());
    // Both fleets stay connected through the rounds; each side's rounds add up.
    let clients = fleet::Fleet::connect(address, "/documents", sizes.streams).await?;
    let bare_clients = fleet::Fleet::connect(bare_address, "/documents", sizes.streams).await?;
    let round_deliveries = sizes.streams * sizes.fanout_events;
    let paused = Paused::new(persister)?;
    let (mut notifier_time, mut bare_time) = (Duration::ZERO, Duration::ZERO);
    let (mut notifier_rounds, mut bare_rounds) = (0, 0);
    for platform_now in ABBA {
        // Fresh events each round: a repeated event id is one event to the notifier.
        let events: Vec<Event> = (0..sizes.fanout_events)
            .map(|_| raw::created_event(32))
            .collect();
        // The bare server's lines are made before its round, as the records are.
        let payloads: Vec<String> = events
            .iter()
            .filter(|_| !platform_now)
            .map(|e| String::from_utf8_lossy(&e.to_json()).into_owned())
            .collect();
        let (label, profile): (_, &[&str]) = if platform_now {
            ("P5 platform", &["notifier"])
        } else {
            ("P5 baseline", &[])
        };
        let run = meter.start(label, profile).await;
        let started = Instant::now();
        let (fleet, rounds, time) = if platform_now {
            futures_util::future::join_all(events.iter().map(|e| raw::send(kafka, topic, e))).await;
            (&clients, &mut notifier_rounds, &mut notifier_time)
        } else {
            for payload in &payloads {
                bare.send(payload).await?;
            }
            (&bare_clients, &mut bare_rounds, &mut bare_time)
        };
        *rounds += 1;
        *time += fleet
            .wait_all(*rounds * events.len(), started, Duration::from_secs(120))
            .await?;
        meter.finish_count(run, round_deliveries).await;
    }
    drop((clients, bare_clients, paused));
    // The same server's memory per idle stream: what hyper, axum and a broadcast
    // receiver hold per stream, for the notifier's figure to be read against.
    let bare_pid = bare.pid().context("the bare server is not running")?;
    let bare_before = fleet::resident_kib(bare_pid)?;
    let clients = fleet::Fleet::connect(bare_address, "/documents", sizes.many_streams).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let bare_after = fleet::resident_kib(bare_pid)?;
    drop(clients);
    drop(bare);
    let bare_per_stream = bare_after.saturating_sub(bare_before) as f64 / sizes.many_streams as f64;
    let (platform, baseline) = (
        (notifier_rounds * round_deliveries) as f64 / notifier_time.as_secs_f64(),
        (bare_rounds * round_deliveries) as f64 / bare_time.as_secs_f64(),
    );
    report.push(Row::goal_at_least(
        "P5",
        &format!(
            "SSE deliveries/s to {} streams ({} events, {} rounds each)",
            sizes.streams, sizes.fanout_events, notifier_rounds
        ),
        format!("{platform:.0}/s"),
        format!("{baseline:.0}/s (bare broadcast + hyper SSE)"),
        platform / baseline,
        0.8,
    ));

    // Memory and many streams: the notifier's resident memory before and with them.
    let pid = notifier.pid().context("the notifier is not running")?;
    let before = fleet::resident_kib(pid)?;
    eprintln!("P5: {} streams on one notifier", sizes.many_streams);
    let clients = fleet::Fleet::connect(address, "/documents", sizes.many_streams).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = fleet::resident_kib(pid)?;
    let per_stream = after.saturating_sub(before) as f64 / sizes.many_streams as f64;
    let more: Vec<Event> = (0..10).map(|_| raw::created_event(32)).collect();
    let started = Instant::now();
    futures_util::future::join_all(more.iter().map(|event| raw::send(kafka, topic, event))).await;
    let delivered = clients
        .wait_all(more.len(), started, Duration::from_secs(120))
        .await;
    report.push(Row::goal_at_most(
        "P5",
        &format!("notifier memory with {} idle streams", sizes.many_streams),
        format!("{per_stream:.1} KiB per idle stream ({before} KiB without, {after} KiB with)"),
        format!(
            "{bare_per_stream:.1} KiB per idle stream (bare broadcast + hyper SSE; {bare_before} KiB without, {bare_after} KiB with)"
        ),
        per_stream,
        16.0,
        "KiB",
    ));
    report.push(Row::check(
        "P5",
        &format!(
            "{} concurrent streams on one notifier, every event delivered",
            sizes.many_streams
        ),
        match &delivered {
            Ok(took) => format!(
                "yes: {} events to each, the last after {}",
                more.len(),
                stats::ms(*took)
            ),
            Err(error) => format!("no: {error}"),
        },
        delivered.is_ok(),
    ));
    Ok(())
}

/// A service process stopped (SIGSTOP) until this is dropped (SIGCONT), on every path out.
struct Paused<'a>(&'a ServiceProcess);

impl<'a> Paused<'a> {
    fn new(service: &'a ServiceProcess) -> Result<Self> {
        service.signal(nix::sys::signal::Signal::SIGSTOP)?;
        Ok(Self(service))
    }
}

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        let _ = self.0.signal(nix::sys::signal::Signal::SIGCONT);
    }
}

/// P7: the producer with every span exported to a real OTLP receiver against one with
/// export off, in alternating rounds.
async fn telemetry_overhead(
    world: &world::World,
    layout: &Layout,
    http: &reqwest::Client,
    quiet: &str,
    sizes: Sizes,
    report: &mut Report,
    meter: &mut cpu::Meter,
) -> Result<()> {
    eprintln!("P7: producer throughput with spans exported vs not");
    // The receiver runs in a process of its own, as a collector would on its own host:
    // decoding spans on the load generator's threads would slow the load, not the
    // producer.
    let mut receiver = child::Helper::start("otlp-sink", &[]).await?;
    meter.watch("otlp receiver", receiver.pid());
    let mut traced = ServiceProcess::new(
        "producer",
        &layout.bin_dir,
        &world.logs,
        vec![
            (
                "KAFKA_BOOTSTRAP_SERVERS".into(),
                testkit::infra().bootstrap.clone(),
            ),
            ("KAFKA_TOPIC".into(), world.names.topic.clone()),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
                receiver.address.clone(),
            ),
            ("OTEL_EXPORTER_OTLP_PROTOCOL".into(), "http/protobuf".into()),
        ],
    )?;
    traced.start_ready().await?;
    meter.watch("producer (traced)", traced.pid());
    let ids = Arc::new(Mutex::new(Vec::new()));
    // The traced producer is P7's platform side, the quiet one its baseline.
    let traced_url = traced.url();
    let (on, off) = alternating(
        meter,
        "P7",
        (&["producer (traced)"], &["producer"]),
        async || creates_closed(http, &traced_url, sizes.commands, sizes.concurrency, &ids).await,
        async || creates_closed(http, quiet, sizes.commands, sizes.concurrency, &ids).await,
    )
    .await;
    // Let the exporter's last batch arrive, then make sure the spans did reach it.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let spans: usize = receiver
        .ask("count")
        .await?
        .parse()
        .context("the OTLP receiver's count")?;
    traced.stop().await?;
    if spans == 0 {
        bail!("the traced producer exported no spans: P7 would compare two quiet producers");
    }
    let (with, without) = (mean_rate(&on)?, mean_rate(&off)?);
    report.push(Row::goal_at_least(
        "P7",
        &format!("commands/s with every span exported ({spans} spans received)"),
        format!("{with:.0}/s"),
        format!("{without:.0}/s (export off)"),
        with / without,
        0.9,
    ));
    Ok(())
}

/// P3: the persister draining a backlog into a fresh keyspace, against prepared inserts
/// at concurrency 64 into the same table.
async fn catch_up(
    layout: &Layout,
    sizes: Sizes,
    report: &mut Report,
    meter: &mut cpu::Meter,
) -> Result<()> {
    let world = world::World::create("perfbacklog", layout).await?;
    let outcome = catch_up_in(&world, sizes, report, meter).await;
    world.remove(&[]).await?;
    outcome
}

async fn catch_up_in(
    world: &world::World,
    sizes: Sizes,
    report: &mut Report,
    meter: &mut cpu::Meter,
) -> Result<()> {
    eprintln!(
        "P3: persister catch-up over a backlog of {} vs raw inserts at concurrency 64",
        sizes.backlog
    );
    let kafka = raw::durable_producer()?;
    let written = raw::produce_closed(&kafka, &world.names.topic, sizes.backlog, 256).await;
    check_failures("P3 backlog", &[&written])?;
    let ends: Vec<i64> = messaging::watermarks(
        messaging::client_config(&testkit::infra().bootstrap),
        &world.names.topic,
    )
    .await?
    .into_iter()
    .map(|(_, high)| high)
    .collect();
    meter.settle(SETTLE).await;
    let mut persister = world.persister()?;
    persister.start_ready().await?;
    meter.watch("persister", persister.pid());
    let run = meter.start("P3 platform", &["persister"]).await;
    let drained = applied_through(world, &ends, Duration::from_secs(1800)).await?;
    meter.finish_count(run, sizes.backlog).await;
    persister.stop().await?;
    let platform = sizes.backlog as f64 / drained.as_secs_f64();
    let table = raw::Table::prepare(Arc::clone(&world.session), &world.names.keyspace).await?;
    meter.settle(SETTLE).await;
    let inserts = meter
        .measure("P3 baseline", &[], table.insert_closed(sizes.backlog, 64))
        .await;
    check_failures("P3 inserts", &[&inserts])?;
    let baseline = inserts.rate();
    report.push(Row::goal_at_least(
        "P3",
        &format!("persister catch-up over a backlog of {}", sizes.backlog),
        format!("{platform:.0} events/s ({:.1} s)", drained.as_secs_f64()),
        format!("{baseline:.0} rows/s (prepared inserts, 64 in flight)"),
        platform / baseline,
        0.8,
    ));
    Ok(())
}

/// Waits until the persister has applied every record before `ends` (one end offset per
/// partition) and returns how long that took. The applied positions, which the persister
/// records every 10 ms for read-your-writes, say when the last record was applied; the
/// group's committed offsets, which the drain waited for before, come once a second,
/// and that second was a fifth of a drain of five.
async fn applied_through(
    world: &world::World,
    ends: &[i64],
    timeout: Duration,
) -> Result<Duration> {
    let keyspace = store::Keyspace::new(&world.names.keyspace, 1)?;
    let positions = store::DocumentReader::prepare(Arc::clone(&world.session), &keyspace).await?;
    let started = Instant::now();
    loop {
        let mut behind = Vec::new();
        for (partition, &end) in ends.iter().enumerate() {
            let applied = positions.applied_offset(partition as i32).await?;
            if end > 0 && applied.is_none_or(|offset| offset < end - 1) {
                behind.push((partition, applied));
            }
        }
        if behind.is_empty() {
            return Ok(started.elapsed());
        }
        if started.elapsed() > timeout {
            bail!(
                "the persister did not apply the backlog up to {ends:?} within {timeout:?} (behind: {behind:?})"
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn mean_rate(outcomes: &[drive::Outcome]) -> Result<f64> {
    check_failures("round", &outcomes.iter().collect::<Vec<_>>())?;
    Ok(outcomes.iter().map(drive::Outcome::rate).sum::<f64>() / outcomes.len() as f64)
}

/// Fails when more than 0.1 % of the operations failed: a figure of failures is no figure.
fn check_failures(what: &str, outcomes: &[&drive::Outcome]) -> Result<()> {
    for outcome in outcomes {
        let all = outcome.failed + outcome.latencies.len();
        if outcome.failed * 1000 > all {
            bail!("{what}: {} of {all} operations failed", outcome.failed);
        }
    }
    Ok(())
}

/// A latency figure's row (the p99s' ratio against `goal`, at most) and its plot of both
/// distributions; `baseline_note` goes inside the baseline's brackets.
fn report_latency(
    report: &mut Report,
    figure: &'static str,
    what: &str,
    (platform, baseline): (&drive::Outcome, &drive::Outcome),
    baseline_note: &str,
    goal: f64,
) {
    report.push(Row::goal_at_most(
        figure,
        what,
        p99_and_p50(&platform.latencies, ""),
        p99_and_p50(&baseline.latencies, baseline_note),
        ratio(platform.latencies.p99(), baseline.latencies.p99()),
        goal,
        "",
    ));
    report.plot(
        &format!("{figure}: {what}"),
        &platform.latencies,
        &baseline.latencies,
    );
}

/// `p99 (p50 ...)`, with `note` inside the brackets.
fn p99_and_p50(latencies: &Latencies, note: &str) -> String {
    format!(
        "{} (p50 {}{note})",
        stats::ms(latencies.p99()),
        stats::ms(latencies.p50())
    )
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

/// Where `cargo xtask bench` writes: target/bench.
pub fn out_dir(root: &std::path::Path) -> PathBuf {
    root.join("target").join("bench")
}

#[cfg(test)]
mod tests {
    use super::Figures;

    fn only(names: &[&str]) -> anyhow::Result<Figures> {
        Figures::only(&names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn only_runs_the_named_figures_and_what_they_need() {
        let all = only(&[]).unwrap();
        assert!((1..=7).all(|n| all.wants(n)));
        let p3 = only(&["P3"]).unwrap();
        assert_eq!((1..=7).filter(|n| p3.wants(*n)).collect::<Vec<_>>(), [3]);
        assert!(!p3.needs_services(), "P3 alone starts no shared services");
        // P6 reads what P1 created; P2 runs at half P1's rate.
        let p6 = only(&["p6", "P2"]).unwrap();
        assert_eq!(
            (1..=7).filter(|n| p6.wants(*n)).collect::<Vec<_>>(),
            [1, 2, 6]
        );
        assert!(p6.needs_services());
    }

    #[test]
    fn only_refuses_what_is_not_a_figure() {
        for bad in ["P8", "P0", "Q1", "", "P"] {
            let error = only(&[bad]).unwrap_err().to_string();
            assert!(error.contains("P1 to P7"), "{bad}: {error}");
        }
    }
}
