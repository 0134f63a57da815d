//! JSON log lines that carry the `trace_id` and `span_id` of the span they were written
//! in, so that a log line leads to its trace and back.

use std::fmt::{self, Write as _};

use opentelemetry::trace::TraceContextExt;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// One JSON object per line: `timestamp`, `level`, `target`, `span`, `trace_id`,
/// `span_id`, then the event's fields (`message` first). An event field named like one
/// of those keys is written as `field.<name>`, so that no key appears twice.
///
/// The line is written straight into the formatter's buffer: no JSON tree, no string
/// per field. It is written for every event a service logs (one per Kafka record in the
/// producer and the persister), and building a `serde_json::Map` per line was a good
/// part of the cost the bench's profiles charged to logging.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonWithTrace;

/// The keys every line starts with.
const FIXED_KEYS: [&str; 6] = [
    "timestamp",
    "level",
    "target",
    "span",
    "trace_id",
    "span_id",
];

impl<S, N> FormatEvent<S, N> for JsonWithTrace
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let out = &mut writer;
        out.write_str("{\"timestamp\":\"")?;
        write_timestamp(out, std::time::SystemTime::now())?;
        write!(
            out,
            "\",\"level\":\"{}\",\"target\":",
            event.metadata().level()
        )?;
        write_json_str(out, event.metadata().target())?;
        if let Some(span) = ctx.lookup_current() {
            out.write_str(",\"span\":")?;
            write_json_str(out, span.name())?;
            // Read through the dispatcher in place: cloning it costs two atomic
            // operations per line.
            let context = tracing::dispatcher::get_default(|dispatch| {
                tracing_opentelemetry::get_otel_context(&span.id(), dispatch)
            });
            if let Some(context) = context {
                let span_ref = context.span();
                let span_context = span_ref.span_context();
                if span_context.is_valid() {
                    write!(
                        out,
                        ",\"trace_id\":\"{}\",\"span_id\":\"{}\"",
                        span_context.trace_id(),
                        span_context.span_id()
                    )?;
                }
            }
        }
        // Two passes over the fields, so that `message` comes first wherever the event's
        // macro put it.
        let mut fields = Fields {
            out,
            message: true,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.message = false;
        event.record(&mut fields);
        fields.result?;
        writer.write_str("}\n")
    }
}

/// `time` as RFC 3339 UTC with microseconds, without pulling a date crate into every
/// service.
fn write_timestamp(out: &mut impl fmt::Write, time: std::time::SystemTime) -> fmt::Result {
    let now = time
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let (secs, micros) = (now.as_secs() as i64, now.subsec_micros());
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The span field formatter of the log layer: renders nothing. tracing-subscriber
/// formats each span's fields into text when the span opens, for formatters that print
/// them; [`JsonWithTrace`] prints the span's name and ids only, so that text was work on
/// every request for nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSpanFields;

impl<'writer> tracing_subscriber::fmt::FormatFields<'writer> for NoSpanFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        _writer: Writer<'writer>,
        _fields: R,
    ) -> fmt::Result {
        Ok(())
    }
}

/// Writes an event's fields as JSON members: `message` alone in the first pass, the
/// others in the second.
struct Fields<'a, W> {
    out: &'a mut W,
    message: bool,
    result: fmt::Result,
}

impl<W: fmt::Write> Fields<'_, W> {
    /// Writes `,"name":` and then `value` if the field belongs to this pass.
    fn member(&mut self, field: &Field, value: impl FnOnce(&mut W) -> fmt::Result) {
        if self.result.is_err() || (field.name() == "message") != self.message {
            return;
        }
        self.result = (|| {
            let name = field.name();
            self.out.write_char(',')?;
            if FIXED_KEYS.contains(&name) {
                self.out.write_str("\"field.")?;
                write_escaped(self.out, name)?;
                self.out.write_char('"')?;
            } else {
                write_json_str(self.out, name)?;
            }
            self.out.write_char(':')?;
            value(self.out)
        })();
    }
}

impl<W: fmt::Write> Visit for Fields<'_, W> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.member(field, |out| {
            out.write_char('"')?;
            write!(Escaping(out), "{value:?}")?;
            out.write_char('"')
        });
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.member(field, |out| write_json_str(out, value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.member(field, |out| write!(out, "{value}"));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.member(field, |out| write!(out, "{value}"));
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        self.member(field, |out| write!(out, "{value}"));
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        self.member(field, |out| write!(out, "{value}"));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.member(field, |out| write!(out, "{value}"));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity; serde_json writes them as null too.
        self.member(field, |out| {
            if value.is_finite() {
                write!(out, "{value}")
            } else {
                out.write_str("null")
            }
        });
    }
}

/// `text` as a JSON string, quotes included.
fn write_json_str(out: &mut impl fmt::Write, text: &str) -> fmt::Result {
    out.write_char('"')?;
    write_escaped(out, text)?;
    out.write_char('"')
}

/// `text` escaped for the inside of a JSON string (RFC 8259): quote, backslash and the
/// control characters; everything else as it is, in runs.
fn write_escaped(out: &mut (impl fmt::Write + ?Sized), text: &str) -> fmt::Result {
    let mut run = 0;
    for (i, byte) in text.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.write_str(&text[run..i])?;
        if escape.is_empty() {
            write!(out, "\\u{byte:04x}")?;
        } else {
            out.write_str(escape)?;
        }
        run = i + 1;
    }
    out.write_str(&text[run..])
}

/// A `fmt::Write` that escapes what goes through it: a `Debug` value is written into
/// the line as a JSON string without a `String` of its own.
struct Escaping<'a, W: ?Sized>(&'a mut W);

impl<W: fmt::Write + ?Sized> fmt::Write for Escaping<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        write_escaped(self.0, text)
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex, OnceLock};
    use std::time::{Duration, UNIX_EPOCH};

    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[test]
    fn dates_from_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_784), (2026, 11, 27));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        let mut text = String::new();
        let time = UNIX_EPOCH + Duration::from_micros(1_795_824_000_123_456);
        write_timestamp(&mut text, time).unwrap();
        assert_eq!(text, "2026-11-28T00:00:00.123456Z");
    }

    /// The lines a subscriber like the services' (traces, then these lines) writes
    /// while `emit` runs. It is installed as the global default, as the services install
    /// theirs: inside a scoped default, tracing hands an event's formatter no dispatcher
    /// (`get_default` does not nest), and the lines would have no trace ids.
    fn lines_of(emit: impl FnOnce()) -> Vec<String> {
        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        static BUFFER: OnceLock<Buffer> = OnceLock::new();
        // One test emits at a time, so that each reads back its own lines.
        static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
        let buffer = BUFFER.get_or_init(|| {
            let buffer = Buffer::default();
            let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
            let subscriber = tracing_subscriber::registry()
                .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
                .with(
                    tracing_subscriber::fmt::layer()
                        .fmt_fields(NoSpanFields)
                        .event_format(JsonWithTrace)
                        .with_writer({
                            let buffer = buffer.clone();
                            move || buffer.clone()
                        }),
                );
            tracing::subscriber::set_global_default(subscriber).unwrap();
            buffer
        });
        let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let start = buffer.0.lock().unwrap().len();
        emit();
        let bytes = buffer.0.lock().unwrap()[start..].to_vec();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The line with what changes from run to run replaced by its length, in the text
    /// itself (through a `Value` the keys would come out sorted).
    fn redacted(line: &str) -> String {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        let mut text = line.to_owned();
        for key in ["timestamp", "trace_id", "span_id"] {
            if let Some(original) = value[key].as_str() {
                text = text.replace(original, &format!("<{key}: {} chars>", original.len()));
            }
        }
        text
    }

    #[test]
    fn a_line_in_a_span_carries_its_trace_and_every_field() {
        let awkward = "quote \" backslash \\ newline \n tab \t bell \u{7} é";
        let lines = lines_of(|| {
            let span = tracing::info_span!("apply", document_id = 7);
            let _entered = span.enter();
            tracing::info!(
                partition = 3u64,
                delta = -2i64,
                fresh = true,
                ratio = 0.5f64,
                nothing = f64::NAN,
                text = awkward,
                tags = ?vec!["a", "b\"c"],
                level = "a field named like a fixed key",
                "event {} applied",
                awkward
            );
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        // What the escaping must keep: the texts read back as they were written.
        assert_eq!(line["text"], awkward);
        assert_eq!(line["message"], format!("event {awkward} applied"));
        assert_eq!(line["tags"], r#"["a", "b\"c"]"#);
        assert_eq!(line["trace_id"].as_str().unwrap().len(), 32);
        assert_eq!(line["span_id"].as_str().unwrap().len(), 16);
        assert_ne!(line["trace_id"], "0".repeat(32));
        insta::assert_snapshot!(redacted(&lines[0]));
    }

    #[test]
    fn a_line_outside_spans_has_no_trace() {
        let lines = lines_of(|| tracing::warn!(port = 8080u64, "listening"));
        assert_eq!(lines.len(), 1, "{lines:?}");
        insta::assert_snapshot!(redacted(&lines[0]));
    }
}
