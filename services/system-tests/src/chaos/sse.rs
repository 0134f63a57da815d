//! SSE clients that behave like the GUI: they follow the notifier's stream, reconnect
//! with `Last-Event-ID` when it breaks (a killed notifier), and write down every event
//! with the position the stream named for it, so that the ledger can find gaps,
//! duplicates and disorder against the topic.

use std::time::{Duration, Instant};

use testkit::sse::SseClient;
use tokio::sync::watch;
use uuid::Uuid;

/// One event as a client got it: where the stream said it came from, and its id.
#[derive(Debug, Clone, Copy)]
pub struct Delivery {
    pub partition: i32,
    pub offset: i64,
    pub event_id: Uuid,
}

/// An `event: reset`: history from `requested` to `continues` of `partition` is gone.
#[derive(Debug, Clone, Copy)]
pub struct Reset {
    pub partition: i32,
    pub requested: i64,
    pub continues: i64,
}

/// Everything one client saw.
#[derive(Debug, Default, Clone)]
pub struct ClientLog {
    /// The position its first stream opened at (the `id:` of the opening frame).
    pub start: Option<Vec<i64>>,
    pub deliveries: Vec<Delivery>,
    pub resets: Vec<Reset>,
    pub reconnects: usize,
    /// Whether it reached the target position before the deadline.
    pub finished: bool,
    /// Frames it could not make sense of.
    pub anomalies: Vec<String>,
}

/// Parses a resume token (`0:15,1:7,2:22`).
pub fn parse_token(token: &str) -> Option<Vec<i64>> {
    let mut offsets = Vec::new();
    for pair in token.trim().split(',') {
        let (partition, offset) = pair.split_once(':')?;
        let partition: usize = partition.parse().ok()?;
        if partition != offsets.len() {
            return None;
        }
        offsets.push(offset.parse().ok()?);
    }
    Some(offsets)
}

/// The clients of a scenario. Each runs until told where the topic ends and it got
/// there (or a deadline passes).
#[derive(Debug)]
pub struct Fleet {
    target: watch::Sender<Option<(Vec<i64>, Instant)>>,
    clients: Vec<tokio::task::JoinHandle<ClientLog>>,
}

impl Fleet {
    /// Starts `count` clients of `url` (the notifier's `/documents`), each connected
    /// before this returns.
    pub async fn start(url: String, count: usize) -> Self {
        let (target, _) = watch::channel(None);
        let mut clients = Vec::with_capacity(count);
        let (opened, mut open) = tokio::sync::mpsc::channel(count.max(1));
        for _ in 0..count {
            let (url, target, opened) = (url.clone(), target.subscribe(), opened.clone());
            clients.push(tokio::spawn(follow(url, target, opened)));
        }
        drop(opened);
        // Every client has its opening frame (its start), or a minute has passed; the
        // ledger reports a client that never started.
        let _ = tokio::time::timeout(Duration::from_secs(60), async {
            for _ in 0..count {
                if open.recv().await.is_none() {
                    break;
                }
            }
        })
        .await;
        Self { target, clients }
    }

    /// Tells every client to finish once it has every event below `ends`, waiting at most
    /// `deadline`; returns their logs.
    pub async fn finish(self, ends: Vec<i64>, deadline: Duration) -> Vec<ClientLog> {
        let _ = self.target.send(Some((ends, Instant::now() + deadline)));
        let mut logs = Vec::with_capacity(self.clients.len());
        for client in self.clients {
            logs.push(client.await.unwrap_or_else(|panic| ClientLog {
                anomalies: vec![format!("client task failed: {panic}")],
                ..ClientLog::default()
            }));
        }
        logs
    }
}

/// One client: connect, read, reconnect with the last id; until the target is reached.
async fn follow(
    url: String,
    target: watch::Receiver<Option<(Vec<i64>, Instant)>>,
    opened: tokio::sync::mpsc::Sender<()>,
) -> ClientLog {
    let mut log = ClientLog::default();
    let mut last_id: Option<String> = None;
    let mut position: Option<Vec<i64>> = None;
    let mut opened = Some(opened);
    let mut backoff = Duration::from_millis(100);
    let reached = |position: &Option<Vec<i64>>| {
        let target = target.borrow().clone();
        match (target, position) {
            (Some((ends, _)), Some(at)) => ends.iter().zip(at).all(|(e, a)| a >= e),
            _ => false,
        }
    };
    let expired = || {
        target
            .borrow()
            .as_ref()
            .is_some_and(|(_, deadline)| Instant::now() > *deadline)
    };
    loop {
        if reached(&position) {
            log.finished = true;
            return log;
        }
        if expired() {
            return log;
        }
        let stream = SseClient::try_connect(&url, last_id.as_deref()).await;
        let mut stream = match stream {
            Ok(stream) if stream.status == 200 => stream.without_transcript(),
            _ => {
                // The notifier is down (or refuses for now): try again, as a browser does.
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        if last_id.is_some() {
            log.reconnects += 1;
        }
        loop {
            if reached(&position) || expired() {
                break;
            }
            // The notifier sends a keep-alive every second here: silence means it is gone.
            let frame = match stream.try_next_frame(Duration::from_secs(5)).await {
                Ok(Some(frame)) => frame,
                Ok(None) | Err(_) => break,
            };
            let Some(id) = frame.id.clone() else {
                continue;
            };
            let Some(next) = parse_token(&id) else {
                log.anomalies.push(format!("unreadable id {id:?}"));
                continue;
            };
            match (frame.event.as_deref(), &frame.data) {
                (Some("reset"), Some(data)) => {
                    let value: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
                    let field = |name: &str| value.get(name).and_then(serde_json::Value::as_i64);
                    if let (Some(partition), Some(requested), Some(continues)) = (
                        field("partition"),
                        field("requestedOffset"),
                        field("continuesFromOffset"),
                    ) {
                        log.resets.push(Reset {
                            partition: partition as i32,
                            requested,
                            continues,
                        });
                    } else {
                        log.anomalies.push(format!("unreadable reset {data}"));
                    }
                }
                (None, Some(data)) => {
                    let delivered = position.as_ref().and_then(|before| moved(before, &next));
                    let event_id = serde_json::from_str::<events::Event>(data)
                        .ok()
                        .map(|e| e.header.id);
                    match (delivered, event_id) {
                        (Some((partition, offset)), Some(event_id)) => {
                            log.deliveries.push(Delivery {
                                partition,
                                offset,
                                event_id,
                            })
                        }
                        _ => log
                            .anomalies
                            .push(format!("event frame without a clear position: id {id}")),
                    }
                }
                _ => {
                    // The opening frame: where this stream starts.
                    if log.start.is_none() {
                        log.start = Some(next.clone());
                    }
                    if let Some(opened) = opened.take() {
                        let _ = opened.send(()).await;
                    }
                }
            }
            position = Some(next);
            last_id = Some(id);
        }
    }
}

/// The one partition whose position moved between two tokens, and the offset of the
/// event delivered there (the new position minus one).
fn moved(before: &[i64], after: &[i64]) -> Option<(i32, i64)> {
    let mut changed = before
        .iter()
        .zip(after)
        .enumerate()
        .filter(|(_, (b, a))| b != a);
    let (partition, (_, &after)) = changed.next()?;
    if changed.next().is_some() {
        return None;
    }
    Some((partition as i32, after - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_moves() {
        assert_eq!(parse_token("0:15,1:7,2:22"), Some(vec![15, 7, 22]));
        assert_eq!(parse_token("1:7"), None);
        assert_eq!(moved(&[1, 2, 3], &[1, 5, 3]), Some((1, 4)));
        assert_eq!(moved(&[1, 2, 3], &[1, 2, 3]), None);
        assert_eq!(moved(&[1, 2, 3], &[2, 3, 3]), None);
    }
}
