//! The keys this producer has seen recently, each with its request's fingerprint, so that
//! a key sent again with a different request is refused (422) at once, and with the
//! position its first confirmed send was stored at, so that a repeat answers the same
//! `Document-Position`.
//!
//! This memory is a courtesy of one process, bounded in time and size. What makes a key
//! safe does not depend on it: the ids come from the key (`events::idempotency`), and a
//! reuse this producer cannot see (another replica, a restart, a key older than the
//! window) is caught downstream, where the persister dead-letters an event whose id was
//! already applied with another fingerprint.
//!
//! A repeat is published again (its first answer may have been lost with the outcome
//! unknown); the persister applies the event once. A repeat this memory cannot see answers
//! the position of its own send, which lies after the first in the same partition: a read
//! that waits for it waits a little longer, never too little.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use events::Position;
use events::idempotency::IdempotencyKey;

/// How long a key is remembered: a client retries within minutes, hours at worst; the
/// IETF draft suggests keys live about a day.
pub const REMEMBERED_FOR: Duration = Duration::from_secs(24 * 60 * 60);

/// The most keys remembered at once (the oldest go first): about 100 bytes each with
/// its fingerprint, so some 10 MB at most.
pub const MAX_KEYS: usize = 100_000;

/// Recently seen keys and the fingerprint each was first sent with.
#[derive(Debug, Clone)]
pub struct RecentKeys {
    inner: Arc<Mutex<Inner>>,
    ttl: Duration,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Inner {
    fingerprints: HashMap<String, Seen>,
    /// Keys in the order first seen, for eviction.
    order: VecDeque<(String, Instant)>,
}

/// What is remembered of a key.
#[derive(Debug)]
struct Seen {
    fingerprint: String,
    /// Where its first confirmed send was stored, once Kafka confirmed one.
    position: Option<Position>,
}

/// The key was first sent with another request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reused;

impl Default for RecentKeys {
    fn default() -> Self {
        Self::new(REMEMBERED_FOR, MAX_KEYS)
    }
}

impl RecentKeys {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            inner: Arc::default(),
            ttl,
            capacity: capacity.max(1),
        }
    }

    /// Remembers `key` with `fingerprint` when it is new; `Err` when it was seen with
    /// another fingerprint within the window.
    pub fn check(&self, key: &IdempotencyKey, fingerprint: &str) -> Result<(), Reused> {
        self.check_at(key, fingerprint, Instant::now())
    }

    /// The position to answer for a send of `key` that Kafka stored at `stored`: the
    /// first confirmed one while the key is remembered, so that every repeat names the
    /// same position; `stored` itself when this is the first (or the key was forgotten).
    pub fn confirmed(&self, key: &IdempotencyKey, fingerprint: &str, stored: Position) -> Position {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match inner.fingerprints.get_mut(key.as_str()) {
            Some(seen) if seen.fingerprint == fingerprint => *seen.position.get_or_insert(stored),
            _ => stored,
        }
    }

    fn check_at(
        &self,
        key: &IdempotencyKey,
        fingerprint: &str,
        now: Instant,
    ) -> Result<(), Reused> {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Forget what is too old or too much, oldest first.
        while let Some((oldest, at)) = inner.order.front() {
            let expired = now.saturating_duration_since(*at) >= self.ttl;
            if !expired && inner.order.len() < self.capacity {
                break;
            }
            let oldest = oldest.clone();
            inner.order.pop_front();
            inner.fingerprints.remove(&oldest);
        }
        match inner.fingerprints.get(key.as_str()) {
            Some(seen) if seen.fingerprint == fingerprint => Ok(()),
            Some(_) => Err(Reused),
            None => {
                inner.fingerprints.insert(
                    key.as_str().to_owned(),
                    Seen {
                        fingerprint: fingerprint.to_owned(),
                        position: None,
                    },
                );
                inner.order.push_back((key.as_str().to_owned(), now));
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> IdempotencyKey {
        IdempotencyKey::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn the_same_request_passes_and_another_is_refused() {
        let keys = RecentKeys::default();
        assert_eq!(keys.check(&key("a"), "f1"), Ok(()));
        assert_eq!(keys.check(&key("a"), "f1"), Ok(()));
        assert_eq!(keys.check(&key("a"), "f2"), Err(Reused));
        assert_eq!(keys.check(&key("b"), "f2"), Ok(()));
    }

    #[test]
    fn keys_are_forgotten_after_the_window_or_beyond_the_capacity() {
        let keys = RecentKeys::new(Duration::from_secs(10), 2);
        let start = Instant::now();
        assert_eq!(keys.check_at(&key("a"), "f1", start), Ok(()));
        assert_eq!(
            keys.check_at(&key("a"), "f2", start + Duration::from_secs(9)),
            Err(Reused)
        );
        assert_eq!(
            keys.check_at(&key("a"), "f2", start + Duration::from_secs(10)),
            Ok(()),
            "expired, so the other request is taken as new"
        );
        let later = start + Duration::from_secs(11);
        assert_eq!(keys.check_at(&key("b"), "f1", later), Ok(()));
        // "a" (f2) and "b" fill the capacity: "c" pushes "a" out.
        assert_eq!(keys.check_at(&key("c"), "f1", later), Ok(()));
        assert_eq!(keys.check_at(&key("a"), "f3", later), Ok(()));
        assert_eq!(keys.inner.lock().unwrap().fingerprints.len(), 2);
    }

    #[test]
    fn repeats_answer_the_first_confirmed_position() {
        let keys = RecentKeys::default();
        let (first, later) = (Position::new(1, 7), Position::new(1, 9));
        keys.check(&key("a"), "f1").unwrap();
        assert_eq!(keys.confirmed(&key("a"), "f1", first), first);
        keys.check(&key("a"), "f1").unwrap();
        assert_eq!(keys.confirmed(&key("a"), "f1", later), first);
        // A key this memory does not hold answers where its own send was stored.
        assert_eq!(keys.confirmed(&key("b"), "f1", later), later);
    }
}
