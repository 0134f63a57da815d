//! Keyed events applied once. A command sent with an `Idempotency-Key` is one event id,
//! whatever the number of records it became (a client retried after "outcome unknown",
//! or after its answer was lost). The first record is applied and remembered in the
//! store; a later one is skipped, so that it cannot overwrite an update made in between or
//! bring back a deleted document. A record whose event id was applied for a *different*
//! request (the key reused for another command, seen by another producer replica or after
//! a restart) is dead-lettered rather than mixed in.

use events::Event;
use events::idempotency::record_header;
use rdkafka::Message;
use store::AppliedAt;
use uuid::Uuid;

use crate::internal_events::At;

/// What a keyed record says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyed {
    pub document: Uuid,
    pub event: Uuid,
    pub fingerprint: String,
}

/// What to do with a keyed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not applied yet, or applied at this very position (a redelivery after a restart,
    /// harmless to apply again): apply it, then remember it.
    Apply,
    /// The same command was applied at an earlier position: skip it.
    Duplicate(AppliedAt),
    /// The key was used for another request: dead-letter it.
    Reused(AppliedAt),
}

impl Keyed {
    /// The keyed part of `message`, when it carries an idempotency key; records without
    /// one have random event ids and need no look-up.
    pub fn of<M: Message>(message: &M, event: &Event) -> Option<Self> {
        messaging::header_str(message.headers(), record_header::IDEMPOTENCY_KEY)?;
        let fingerprint =
            messaging::header_str(message.headers(), record_header::REQUEST_FINGERPRINT)
                .unwrap_or_default();
        Some(Self {
            document: event.payload.id,
            event: event.header.id,
            fingerprint: fingerprint.to_owned(),
        })
    }

    /// Where this record stands as it would be remembered.
    pub fn applied_at(&self, at: At) -> AppliedAt {
        AppliedAt {
            partition: at.partition,
            offset: at.offset,
            fingerprint: self.fingerprint.clone(),
        }
    }

    /// Decides from what the store remembers of this event id (`first`).
    pub fn verdict(&self, first: Option<AppliedAt>, at: At) -> Verdict {
        match first {
            None => Verdict::Apply,
            Some(first) if first.partition == at.partition && first.offset == at.offset => {
                Verdict::Apply
            }
            Some(first) if first.fingerprint == self.fingerprint => Verdict::Duplicate(first),
            Some(first) => Verdict::Reused(first),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyed(fingerprint: &str) -> Keyed {
        Keyed {
            document: Uuid::from_u128(1),
            event: Uuid::from_u128(2),
            fingerprint: fingerprint.into(),
        }
    }

    fn first(offset: i64, fingerprint: &str) -> Option<AppliedAt> {
        Some(AppliedAt {
            partition: 0,
            offset,
            fingerprint: fingerprint.into(),
        })
    }

    #[test]
    fn the_first_record_of_an_event_id_wins() {
        let at = At {
            partition: 0,
            offset: 9,
        };
        assert_eq!(keyed("f").verdict(None, at), Verdict::Apply);
        assert_eq!(keyed("f").verdict(first(9, "f"), at), Verdict::Apply);
        assert!(matches!(
            keyed("f").verdict(first(4, "f"), at),
            Verdict::Duplicate(_)
        ));
        assert!(matches!(
            keyed("g").verdict(first(4, "f"), at),
            Verdict::Reused(_)
        ));
        let elsewhere = At {
            partition: 1,
            offset: 9,
        };
        assert!(matches!(
            keyed("f").verdict(first(9, "f"), elsewhere),
            Verdict::Duplicate(_)
        ));
    }
}
