//! The Server-Sent Events wire format the notifier writes, and the response body that
//! carries it with keep-alive comments.
//!
//! Frames are encoded here into `Bytes` rather than through axum's `Sse`, for two reasons
//! the fan-out profile showed (`cargo xtask bench --profile`, P5): a live event's frame is
//! the same bytes for every stream it reaches, so the hub encodes it once and each stream
//! sends a reference to it; and axum's keep-alive re-arms a timer for every frame, where
//! this body re-arms it once per keep-alive interval at most.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::{Body, Bytes};
use futures::Stream;
use tokio::time::{Instant, Sleep};

/// The comment sent when a stream was idle for a keep-alive interval.
pub const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// The frame that opens a stream: the reconnection delay and the starting position.
pub fn opening(retry: Duration, id: &str) -> Bytes {
    let mut frame = String::with_capacity(32 + id.len());
    let _ = writeln!(frame, "retry: {}", retry.as_millis());
    field(&mut frame, "id", id);
    frame.push('\n');
    frame.into()
}

/// An event frame: its resume token and its data.
pub fn event(id: &str, data: &str) -> Bytes {
    named(None, id, data)
}

/// A frame of type `event` (such as `reset`), with its resume token and data.
pub fn typed(event: &str, id: &str, data: &str) -> Bytes {
    named(Some(event), id, data)
}

fn named(event: Option<&str>, id: &str, data: &str) -> Bytes {
    let mut frame = String::with_capacity(24 + id.len() + data.len());
    if let Some(event) = event {
        field(&mut frame, "event", event);
    }
    field(&mut frame, "id", id);
    // A line break ends a field: data spanning lines is sent as one `data` field per
    // line, which the client joins again with `\n` (JSON reads the same either way).
    for line in lines(data) {
        field(&mut frame, "data", line);
    }
    frame.push('\n');
    frame.into()
}

/// The lines of `text`, split where SSE ends a line: at CRLF, CR or LF.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let text = rest?;
        let Some(at) = text.find(['\r', '\n']) else {
            rest = None;
            return Some(text);
        };
        let next = if text[at..].starts_with("\r\n") {
            at + 2
        } else {
            at + 1
        };
        rest = Some(&text[next..]);
        Some(&text[..at])
    })
}

/// One `name: value` line. Values come from this process (positions, JSON split into
/// lines, fixed names), so a line break in one is a bug here, not bad input.
fn field(frame: &mut String, name: &str, value: &str) {
    debug_assert!(
        !value.contains(['\n', '\r']),
        "an SSE field value cannot hold a line break: {value:?}"
    );
    frame.push_str(name);
    frame.push_str(": ");
    frame.push_str(value);
    frame.push('\n');
}

/// The response body of a stream: its frames, and a keep-alive comment whenever no frame
/// went out for `interval`. The body ends when `frames` does.
pub fn body<S>(frames: S, interval: Duration) -> Body
where
    S: Stream<Item = Bytes> + Unpin + Send + 'static,
{
    Body::from_stream(KeepAlive {
        frames,
        interval,
        last_sent: Instant::now(),
        sent: false,
        timer: Box::pin(tokio::time::sleep(interval)),
    })
}

/// Frames with keep-alive comments in the gaps. The timer is only re-armed when it fires:
/// a timer that fires early (frames went out since it was armed) is moved to one interval
/// after the last of them. The clock is read when the frames pause, not for each frame:
/// the body is polled until it has nothing ready, so a burst of frames reads it once.
struct KeepAlive<S> {
    frames: S,
    interval: Duration,
    /// When the frames last paused after sending (or the stream began).
    last_sent: Instant,
    /// A frame went out since `last_sent` was read.
    sent: bool,
    timer: Pin<Box<Sleep>>,
}

impl<S: Stream<Item = Bytes> + Unpin> KeepAlive<S> {
    fn poll_keep_alive(&mut self, cx: &mut Context<'_>) -> Poll<Bytes> {
        loop {
            ready!(self.timer.as_mut().poll(cx));
            let (due, now) = (self.last_sent + self.interval, Instant::now());
            if due <= now {
                self.last_sent = now;
                self.timer.as_mut().reset(now + self.interval);
                return Poll::Ready(Bytes::from_static(KEEP_ALIVE));
            }
            self.timer.as_mut().reset(due);
        }
    }
}

impl<S: Stream<Item = Bytes> + Unpin> Stream for KeepAlive<S> {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match Pin::new(&mut this.frames).poll_next(cx) {
            Poll::Ready(Some(frame)) => {
                this.sent = true;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                if std::mem::take(&mut this.sent) {
                    this.last_sent = Instant::now();
                }
                this.poll_keep_alive(cx).map(|frame| Some(Ok(frame)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    fn text(frame: &Bytes) -> &str {
        std::str::from_utf8(frame).unwrap()
    }

    #[test]
    fn the_frames_on_the_wire() {
        let frames = [
            opening(Duration::from_millis(2000), "0:15,1:7,2:22"),
            opening(Duration::from_millis(250), ""),
            event("0:16,1:7,2:22", r#"{"header":{"type":"CREATE"}}"#),
            typed(
                "reset",
                "0:0,1:7,2:22",
                r#"{"message":"history lost","partition":0}"#,
            ),
            event("0:1", "{\n  \"a\": 1,\r\n  \"b\": \"x\"\r}"),
            event("0:2", ""),
            Bytes::from_static(KEEP_ALIVE),
        ];
        let wire: String = frames.iter().map(text).collect();
        insta::assert_snapshot!(wire, @r#"
        retry: 2000
        id: 0:15,1:7,2:22

        retry: 250
        id: 

        id: 0:16,1:7,2:22
        data: {"header":{"type":"CREATE"}}

        event: reset
        id: 0:0,1:7,2:22
        data: {"message":"history lost","partition":0}

        id: 0:1
        data: {
        data:   "a": 1,
        data:   "b": "x"
        data: }

        id: 0:2
        data: 

        : keep-alive

        "#);
    }

    /// A data field split into lines reads back, through the SSE parsing rules, as the
    /// text sent with its line breaks as `\n`.
    #[test]
    fn data_in_lines_reads_back_as_sent() {
        for data in [
            "{}",
            "a\nb",
            "a\r\nb",
            "a\rb",
            "\n",
            "a\n\nb",
            "a\r\n\r\nb",
            "",
        ] {
            let frame = event("0:0", data);
            let read: Vec<&str> = text(&frame)
                .lines()
                .filter_map(|line| line.strip_prefix("data: "))
                .collect();
            let expected = data.replace("\r\n", "\n").replace('\r', "\n");
            assert_eq!(read.join("\n"), expected, "data {data:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn keep_alives_fill_the_gaps_and_only_the_gaps() {
        let (send, receive) = tokio::sync::mpsc::channel::<Bytes>(4);
        let frames = tokio_stream::wrappers::ReceiverStream::new(receive);
        let mut body = body(frames, Duration::from_secs(10)).into_data_stream();
        let started = Instant::now();
        macro_rules! next {
            () => {{
                let frame = body.next().await.unwrap().unwrap();
                (text(&frame).to_owned(), started.elapsed().as_secs())
            }};
        }
        // Idle: one comment per interval.
        assert_eq!(next!(), (": keep-alive\n\n".to_owned(), 10));
        // A frame at 14 s moves the next comment to 24 s, not 20 s.
        tokio::time::sleep(Duration::from_secs(4)).await;
        send.send(event("0:0", "{}")).await.unwrap();
        assert_eq!(next!(), ("id: 0:0\ndata: {}\n\n".to_owned(), 14));
        assert_eq!(next!(), (": keep-alive\n\n".to_owned(), 24));
        // The end of the frames ends the body.
        drop(send);
        assert!(body.next().await.is_none());
    }
}
