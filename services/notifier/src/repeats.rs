//! Event ids seen recently, to send a repeated event once. A keyed command sent again is
//! the same event id at a later offset of the same partition (the key picks the document,
//! the document the partition): the first record is the event, later ones are repeats.
//! The memory is bounded; a repeat further back than it reaches is sent again, and the
//! GUI drops it by id.

use std::collections::{HashMap, VecDeque};

use uuid::Uuid;

/// How many event ids each window keeps at least, per partition: well beyond the time a
/// client takes to retry a command.
pub const MIN_WINDOW: usize = 10_000;

/// The first offset of each recent event id, forgetting the oldest beyond `capacity`.
#[derive(Debug)]
pub struct RecentIds {
    first: HashMap<Uuid, i64>,
    order: VecDeque<Uuid>,
    capacity: usize,
}

impl RecentIds {
    pub fn new(capacity: usize) -> Self {
        Self {
            first: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Whether `event` at `offset` repeats an event seen at a lower offset; remembers it
    /// when it is new.
    pub fn repeat(&mut self, event: Uuid, offset: i64) -> bool {
        if let Some(&first) = self.first.get(&event) {
            return first < offset;
        }
        if self.order.len() >= self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.first.remove(&oldest);
        }
        self.first.insert(event, offset);
        self.order.push_back(event);
        false
    }

    /// Whether `event` at `offset` repeats one seen at a lower offset, without remembering.
    pub fn is_repeat(&self, event: Uuid, offset: i64) -> bool {
        self.first.get(&event).is_some_and(|&first| first < offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_offset_is_the_event_and_later_ones_repeat_it() {
        let mut ids = RecentIds::new(2);
        let (a, b, c) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        assert!(!ids.repeat(a, 5));
        assert!(!ids.repeat(a, 5), "the same record read again is no repeat");
        assert!(ids.repeat(a, 9));
        assert!(ids.is_repeat(a, 9));
        assert!(!ids.is_repeat(b, 9));
        assert!(!ids.repeat(b, 6));
        assert!(!ids.repeat(c, 7));
        // `a` was the oldest and is forgotten beyond the capacity.
        assert!(!ids.is_repeat(a, 9));
    }
}
