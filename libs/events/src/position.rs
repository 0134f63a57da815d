//! Position tokens for read-your-writes: where in the event log a command's event was
//! stored, as `<partition>:<offset>`. The producer answers every accepted command with one
//! in the `Document-Position` header; a reader request that sends it back (header, or the
//! `position` query parameter) is answered only once the read model has applied at least
//! that record of that partition.
//!
//! A token orders only within its partition: a document's events all share one, so "the
//! persister applied offset >= o of partition p" means every earlier event of the
//! document was applied too.

use std::fmt;
use std::str::FromStr;

/// The HTTP header, on command responses and on read requests (lowercase, as `http`
/// stores names).
pub const HEADER: &str = "document-position";

/// The query parameter a client that cannot set headers sends instead.
pub const QUERY_PARAMETER: &str = "position";

/// A record's place in the documents topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Position {
    pub partition: i32,
    pub offset: i64,
}

/// Why a value is not a position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PositionError {
    #[error(
        "a position is <partition>:<offset>, two non-negative integers such as 0:42 (as the \
         producer's Document-Position header names it); found {0:?}"
    )]
    Malformed(String),
}

impl Position {
    pub fn new(partition: i32, offset: i64) -> Self {
        Self { partition, offset }
    }

    /// Parses `<partition>:<offset>`: decimal digits only (no sign, no spaces), each in
    /// range of Kafka's types.
    pub fn parse(text: &str) -> Result<Self, PositionError> {
        let malformed = || PositionError::Malformed(text.chars().take(64).collect());
        let (partition, offset) = text.split_once(':').ok_or_else(malformed)?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(partition) || !digits(offset) {
            return Err(malformed());
        }
        Ok(Self {
            partition: partition.parse().map_err(|_| malformed())?,
            offset: offset.parse().map_err(|_| malformed())?,
        })
    }

    /// Whether a read model that applied `applied` of this position's partition has
    /// applied this position too.
    pub fn reached_by(self, applied: i64) -> bool {
        applied >= self.offset
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.partition, self.offset)
    }
}

impl FromStr for Position {
    type Err = PositionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_two_non_negative_integers() {
        assert_eq!(Position::parse("0:42"), Ok(Position::new(0, 42)));
        assert_eq!(
            Position::parse("2147483647:9223372036854775807"),
            Ok(Position::new(i32::MAX, i64::MAX))
        );
        for bad in [
            "",
            ":",
            "0",
            "0:",
            ":1",
            "-1:3",
            "0:-3",
            "+1:3",
            " 0:1",
            "0:1 ",
            "0:1:2",
            "a:1",
            "0x1:2",
            "2147483648:0",
            "0:9223372036854775808",
        ] {
            assert!(Position::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn a_position_reads_back_as_written() {
        let position = Position::new(2, 1234);
        assert_eq!(position.to_string(), "2:1234");
        assert_eq!(position.to_string().parse(), Ok(position));
        assert!(position.reached_by(1234));
        assert!(position.reached_by(1235));
        assert!(!position.reached_by(1233));
    }
}
