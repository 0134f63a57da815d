//! What one JSON log line costs, against baselines in the same run: the same event
//! filtered out (what an event costs without a line), tracing-subscriber's own JSON
//! formatter, and the line written with a system call of its own (what the services did
//! before the log-output thread).
//!
//! `cargo bench -p telemetry --bench log_line`; `cargo xtask bench` runs it too. Each
//! case emits the persister's "event applied" event (three fields) inside a span, as the
//! services do, through one global subscriber whose formatter and output are switched
//! between cases: a scoped subscriber would hand the formatter no dispatcher, and the
//! lines would carry no trace ids.
//!
//! Measured is the CPU time of the whole process per event, not the wall time: the
//! log-output thread writes on the other core, and wall time would not see that work.

use std::fs::File;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{LazyLock, OnceLock};

use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry::trace::TracerProvider as _;
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer as _;
use tracing_subscriber::fmt::format::{self, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;

/// The case being measured.
#[derive(Clone, Copy, PartialEq)]
#[repr(u8)]
enum Case {
    Filtered,
    OursToMemory,
    TracingJsonToMemory,
    OursWritePerLine,
    OursViaOutputThread,
}

static CASE: AtomicU8 = AtomicU8::new(Case::Filtered as u8);

fn case() -> Case {
    match CASE.load(Ordering::Relaxed) {
        0 => Case::Filtered,
        1 => Case::OursToMemory,
        2 => Case::TracingJsonToMemory,
        3 => Case::OursWritePerLine,
        _ => Case::OursViaOutputThread,
    }
}

const LOG_FILE: &str = "log_line-bench.log";

/// A file the lines go to in the two cases that write (a file, as the services' stderr
/// is under `cargo xtask up`).
static FILE: LazyLock<File> = LazyLock::new(|| {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    File::create(dir.join(LOG_FILE)).expect("cannot create the bench's log file")
});

/// The log-output thread of the last case, writing to the same file.
static OUTPUT: OnceLock<(telemetry::stderr::Background, telemetry::stderr::Lines)> =
    OnceLock::new();

fn output() -> &'static telemetry::stderr::Lines {
    &OUTPUT
        .get_or_init(|| {
            let file = FILE
                .try_clone()
                .expect("cannot open the bench's log file again");
            telemetry::stderr::Background::start(Box::new(file), 4 << 20)
                .expect("cannot start the log-output thread")
        })
        .1
}

/// The writer of the current case.
enum Out {
    Memory(io::Sink),
    File(&'static File),
    Lines(&'static telemetry::stderr::Lines),
}

impl Write for Out {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Out::Memory(sink) => sink.write(bytes),
            Out::File(file) => (&**file).write(bytes),
            Out::Lines(lines) => (*lines).write(bytes),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Switch;

impl<'a> MakeWriter<'a> for Switch {
    type Writer = Out;
    fn make_writer(&'a self) -> Out {
        match case() {
            Case::OursWritePerLine => Out::File(&FILE),
            Case::OursViaOutputThread => Out::Lines(output()),
            _ => Out::Memory(io::sink()),
        }
    }
}

/// The formatter of the current case.
struct Formats {
    ours: telemetry::logs::JsonWithTrace,
    theirs: format::Format<format::Json>,
}

impl<S, N> FormatEvent<S, N> for Formats
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        if case() == Case::TracingJsonToMemory {
            self.theirs.format_event(ctx, writer, event)
        } else {
            self.ours.format_event(ctx, writer, event)
        }
    }
}

fn install() {
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    // tracing-subscriber's JSON formatter without the span's fields, which it would
    // parse back from text that `NoSpanFields` does not render; ours prints the span's
    // name and ids, so the comparison leans its way.
    let theirs = format::format()
        .json()
        .with_current_span(false)
        .with_span_list(false);
    let lines = tracing_subscriber::fmt::layer()
        .fmt_fields(telemetry::logs::NoSpanFields)
        .event_format(Formats {
            ours: telemetry::logs::JsonWithTrace,
            theirs,
        })
        .with_writer(Switch)
        // Asked per event (`sometimes`), not once per call site: the case changes.
        .with_filter(
            tracing_subscriber::filter::DynFilterFn::new(|_, _| case() != Case::Filtered)
                .with_callsite_filter(|_| tracing::subscriber::Interest::sometimes()),
        );
    // As in the services, only events from WARN up reach the spans as span events.
    let traces = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("bench"))
        .with_filter(tracing_subscriber::filter::filter_fn(
            telemetry::reaches_traces,
        ));
    let subscriber = tracing_subscriber::registry().with(traces).with(lines);
    tracing::subscriber::set_global_default(subscriber).expect("one subscriber per bench");
}

/// CPU time (user + system) of all the process's threads.
struct ProcessCpu;

fn process_cpu() -> Duration {
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `time` is a valid timespec to write to, and the clock id is a constant the
    // kernel knows.
    #[allow(unsafe_code)]
    let status = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut time) };
    assert_eq!(status, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID) failed");
    Duration::new(time.tv_sec as u64, time.tv_nsec as u32)
}

impl Measurement for ProcessCpu {
    type Intermediate = Duration;
    type Value = Duration;
    fn start(&self) -> Duration {
        process_cpu()
    }
    fn end(&self, started: Duration) -> Duration {
        process_cpu().saturating_sub(started)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &Nanoseconds
    }
}

/// Values in nanoseconds of CPU, as they are.
struct Nanoseconds;

impl ValueFormatter for Nanoseconds {
    fn scale_values(&self, _typical: f64, _values: &mut [f64]) -> &'static str {
        "ns cpu"
    }
    fn scale_throughputs(
        &self,
        _typical: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        // Per element: elements per CPU second.
        let per = match throughput {
            Throughput::Elements(n) | Throughput::Bytes(n) | Throughput::BytesDecimal(n) => {
                *n as f64
            }
            _ => 1.0,
        };
        for value in values {
            *value = per * 1e9 / *value;
        }
        "per cpu second"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

fn log_line(c: &mut Criterion<ProcessCpu>) {
    install();
    let span = tracing::info_span!("apply");
    let _entered = span.enter();
    let mut group = c.benchmark_group("log line");
    for (name, case) in [
        ("no line (filtered out)", Case::Filtered),
        ("JsonWithTrace to memory", Case::OursToMemory),
        (
            "tracing-subscriber json to memory",
            Case::TracingJsonToMemory,
        ),
        (
            "JsonWithTrace, a write per line to a file",
            Case::OursWritePerLine,
        ),
        (
            "JsonWithTrace, log-output thread to a file",
            Case::OursViaOutputThread,
        ),
    ] {
        CASE.store(case as u8, Ordering::Relaxed);
        group.bench_function(name, |b| {
            b.iter(|| {
                tracing::info!(
                    document_id = "6f1c2a9e-3b1d-4c9a-9a53-2f1e8c7d5b40",
                    partition = 3u64,
                    offset = 123_456u64,
                    "event applied"
                );
            });
        });
    }
    group.finish();
    // The cases that write left a large file (a line per iteration).
    let _ = std::fs::remove_file(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(LOG_FILE));
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .with_measurement(ProcessCpu)
        .measurement_time(Duration::from_secs(3));
    targets = log_line
}
criterion_main!(benches);
