//! What `/readyz` and the `persister_stuck_seconds` gauge say about the consume loop: the
//! records in hand (one per lane) and since when, why they are not through yet, and
//! whether the loop stopped for good (the ordering guard). A record held longer than the bound (a Cassandra that
//! does not answer, a dead-letter topic that is gone) makes the persister not ready,
//! naming the record and the reason, until it goes through.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use telemetry::names;

use crate::internal_events::At;

/// Shared by the consume loop (which reports) and the probe and gauge (which read).
#[derive(Debug)]
pub struct Health {
    state: Mutex<State>,
    stuck_after: Duration,
    topic: String,
}

#[derive(Debug, Default)]
struct State {
    /// The record each lane has in hand.
    holding: HashMap<usize, Holding>,
    halted: Option<String>,
}

#[derive(Debug)]
struct Holding {
    at: At,
    since: Instant,
    why: Option<String>,
}

impl Health {
    pub fn new(topic: &str, stuck_after: Duration) -> Self {
        metrics::gauge!(names::PERSISTER_STUCK_SECONDS).set(0.0);
        Self {
            state: Mutex::default(),
            stuck_after,
            topic: topic.to_owned(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lane `lane` took the record at `at` in hand.
    pub fn begin(&self, lane: usize, at: At) {
        self.lock().holding.insert(
            lane,
            Holding {
                at,
                since: Instant::now(),
                why: None,
            },
        );
    }

    /// The record lane `lane` has in hand did not go through this time, because of `why`.
    pub fn failing(&self, lane: usize, why: impl Into<String>) {
        if let Some(holding) = self.lock().holding.get_mut(&lane) {
            holding.why = Some(why.into());
        }
    }

    /// The record lane `lane` had in hand was applied or dead-lettered.
    pub fn done(&self, lane: usize) {
        let mut state = self.lock();
        let held = state.holding.remove(&lane);
        if held.is_some_and(|h| h.since.elapsed() >= self.stuck_after)
            && self.stuck_for(&state).is_none()
        {
            metrics::gauge!(names::PERSISTER_STUCK_SECONDS).set(0.0);
            tracing::info!("the held record went through; ready again");
        }
    }

    /// The loop stopped for good (the process exits with this error).
    pub fn halt(&self, why: &str) {
        let mut state = self.lock();
        state.holding.clear();
        state.halted = Some(why.to_owned());
    }

    /// The record held longest and for how long, once that is past the bound.
    fn stuck_for<'a>(&self, state: &'a State) -> Option<(Duration, &'a Holding)> {
        let holding = state.holding.values().min_by_key(|h| h.since)?;
        let held = holding.since.elapsed();
        (held >= self.stuck_after).then_some((held, holding))
    }

    /// `/readyz`'s view: an error that names the held record and why, or the halt.
    pub fn check(&self) -> Result<(), String> {
        let state = self.lock();
        if let Some(why) = &state.halted {
            return Err(format!("the projection stopped: {why}"));
        }
        match self.stuck_for(&state) {
            Some((held, holding)) => Err(format!(
                "the record at partition {}, offset {} of topic {} has been neither applied \
                 nor dead-lettered for {} s (the bound is {} s): {}",
                holding.at.partition,
                holding.at.offset,
                self.topic,
                held.as_secs(),
                self.stuck_after.as_secs(),
                holding
                    .why
                    .as_deref()
                    .unwrap_or("no attempt has finished yet"),
            )),
            None => Ok(()),
        }
    }

    /// Sets the gauge: seconds the record in hand has been held past the bound, 0 when
    /// none is.
    pub fn publish(&self) {
        let state = self.lock();
        let stuck = self
            .stuck_for(&state)
            .map_or(0.0, |(held, _)| held.as_secs_f64());
        metrics::gauge!(names::PERSISTER_STUCK_SECONDS).set(stuck);
    }
}
