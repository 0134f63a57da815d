//! A Server-Sent Events client for tests, reading the stream as a browser would: frames
//! separated by a blank line, `field: value` lines, `:` comments.

use std::pin::Pin;
use std::time::Duration;

use futures_util::{Stream, StreamExt};

/// One frame of the stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frame {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: Option<String>,
    pub retry: Option<u64>,
    /// The text of comment lines (`: keep-alive`).
    pub comments: Vec<String>,
}

impl Frame {
    /// A frame that carries a document event (not a reset, a hint or a comment).
    pub fn is_event(&self) -> bool {
        self.data.is_some() && self.event.is_none()
    }
}

type Bytes = Pin<Box<dyn Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

/// An open stream.
pub struct SseClient {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    body: Bytes,
    buffer: String,
    /// Every byte received so far, for snapshots.
    pub transcript: String,
    /// Whether `transcript` is kept (long-running clients turn it off).
    keep_transcript: bool,
}

impl std::fmt::Debug for SseClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseClient")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl SseClient {
    /// Opens `url`, sending `Last-Event-ID` when given.
    pub async fn connect(url: &str, last_event_id: Option<&str>) -> Self {
        Self::try_connect(url, last_event_id)
            .await
            .expect("stream request")
    }

    /// [`SseClient::connect`] that returns the error of a server that does not answer
    /// (for clients that reconnect, as browsers do).
    pub async fn try_connect(url: &str, last_event_id: Option<&str>) -> reqwest::Result<Self> {
        // No overall timeout: streams stay open; reads are bounded by `next_frame`.
        let client = reqwest::Client::builder().no_proxy().build()?;
        let mut request = client.get(url).header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        Ok(Self::from_response(request.send().await?))
    }

    /// A stream from a response the caller requested itself (other headers, say).
    pub fn from_response(response: reqwest::Response) -> Self {
        Self {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
            transcript: String::new(),
            keep_transcript: true,
        }
    }

    /// The next frame, `None` when the stream ended; panics after `timeout`.
    pub async fn next_frame(&mut self, timeout: Duration) -> Option<Frame> {
        self.try_next_frame(timeout).await.unwrap_or_else(|_| {
            panic!("no frame within {timeout:?}; got so far: {:?}", self.buffer)
        })
    }

    /// [`SseClient::next_frame`] that returns `Err` after `timeout` instead of panicking.
    /// A read error ends the stream (`Ok(None)`), as it does for a browser.
    pub async fn try_next_frame(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<Frame>, tokio::time::error::Elapsed> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                return Ok(Some(parse(&block)));
            }
            let Some(chunk) = tokio::time::timeout(timeout, self.body.next()).await? else {
                return Ok(None);
            };
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(_) => return Ok(None),
            };
            let text = String::from_utf8_lossy(&chunk).replace("\r\n", "\n");
            if self.keep_transcript {
                self.transcript.push_str(&text);
            }
            self.buffer.push_str(&text);
        }
    }

    /// Stops keeping a copy of every byte in `transcript`: a long-running client would
    /// grow without bound.
    pub fn without_transcript(mut self) -> Self {
        self.keep_transcript = false;
        self.transcript = String::new();
        self
    }

    /// The next frame that carries an event, skipping hints and comments; panics after
    /// `timeout` or when the stream ends first.
    pub async fn next_event(&mut self, timeout: Duration) -> Frame {
        loop {
            let frame = self
                .next_frame(timeout)
                .await
                .expect("the stream ended before the next event");
            if frame.data.is_some() {
                return frame;
            }
        }
    }

    /// `count` events in a row.
    pub async fn events(&mut self, count: usize, timeout: Duration) -> Vec<Frame> {
        let mut frames = Vec::with_capacity(count);
        for _ in 0..count {
            frames.push(self.next_event(timeout).await);
        }
        frames
    }
}

fn parse(block: &str) -> Frame {
    let mut frame = Frame::default();
    for line in block.lines() {
        if let Some(comment) = line.strip_prefix(':') {
            frame.comments.push(comment.trim().to_owned());
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
        match field {
            "id" => frame.id = Some(value),
            "event" => frame.event = Some(value),
            "retry" => frame.retry = value.parse().ok(),
            "data" => {
                frame.data = Some(match frame.data.take() {
                    Some(previous) => format!("{previous}\n{value}"),
                    None => value,
                });
            }
            _ => {}
        }
    }
    frame
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn parses_fields_and_comments() {
        let frame = parse("id: 0:5\nevent: reset\ndata: a\ndata: b\nretry: 2000\n: hi\n\n");
        assert_eq!(frame.id.as_deref(), Some("0:5"));
        assert_eq!(frame.event.as_deref(), Some("reset"));
        assert_eq!(frame.data.as_deref(), Some("a\nb"));
        assert_eq!(frame.retry, Some(2000));
        assert_eq!(frame.comments, vec!["hi"]);
        assert!(!frame.is_event());
    }
}
