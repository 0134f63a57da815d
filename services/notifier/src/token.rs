//! The resume token: the SSE `id` of each event. It names, for every partition, the next
//! offset the client has not received yet, as `partition:offset` pairs joined by commas
//! (`0:15,1:7,2:22`). A client that sends it back (`Last-Event-ID`) gets exactly what came
//! after.

use std::fmt;

/// Per partition (by index), the next offset to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position(Vec<i64>);

/// Why a token was refused (400), or does not fit this topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("resume token {token:?} is not valid: {reason}")]
pub struct TokenError {
    pub token: String,
    pub reason: String,
    /// Set when the token is well-formed but names a partition this topic does not have,
    /// as (partition, offset): a token of another partition count, which the stream
    /// answers with `event: reset` and the earliest events, not with 400.
    pub other_layout: Option<(usize, i64)>,
}

impl Position {
    pub fn new(offsets: Vec<i64>) -> Self {
        Self(offsets)
    }

    pub fn offsets(&self) -> &[i64] {
        &self.0
    }

    pub fn get(&self, partition: usize) -> i64 {
        self.0[partition]
    }

    /// Records that the event at `offset` of `partition` was delivered.
    pub fn advance(&mut self, partition: usize, offset: i64) {
        self.0[partition] = self.0[partition].max(offset + 1);
    }

    pub fn set(&mut self, partition: usize, offset: i64) {
        self.0[partition] = offset;
    }

    /// Parses a token for a topic of `partitions` partitions. A partition the token does
    /// not name (added after it was issued) starts from its beginning (offset 0).
    pub fn parse(token: &str, partitions: usize) -> Result<Self, TokenError> {
        let error = |reason: String| TokenError {
            token: token.chars().take(200).collect(),
            reason,
            other_layout: None,
        };
        let mut offsets = vec![None; partitions];
        let mut beyond = None;
        for pair in token.trim().split(',') {
            let (partition, offset) = pair
                .split_once(':')
                .ok_or_else(|| error(format!("{pair:?} is not partition:offset")))?;
            let partition: usize = partition
                .parse()
                .map_err(|_| error(format!("partition {partition:?} is not a number")))?;
            let offset: i64 = offset
                .parse()
                .map_err(|_| error(format!("offset {offset:?} is not a number")))?;
            if offset < 0 {
                return Err(error(format!("offset {offset} is negative")));
            }
            let Some(slot) = offsets.get_mut(partition) else {
                beyond.get_or_insert((partition, offset));
                continue;
            };
            if slot.replace(offset).is_some() {
                return Err(error(format!("partition {partition} appears twice")));
            }
        }
        if let Some((partition, offset)) = beyond {
            return Err(TokenError {
                other_layout: Some((partition, offset)),
                ..error(format!(
                    "partition {partition} does not exist (the topic has {partitions})"
                ))
            });
        }
        Ok(Self(offsets.into_iter().map(|o| o.unwrap_or(0)).collect()))
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (partition, offset) in self.0.iter().enumerate() {
            if partition > 0 {
                f.write_str(",")?;
            }
            write!(f, "{partition}:{offset}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let position = Position::new(vec![15, 7, 22]);
        assert_eq!(position.to_string(), "0:15,1:7,2:22");
        assert_eq!(Position::parse("0:15,1:7,2:22", 3).unwrap(), position);
        assert_eq!(Position::parse(" 2:22,0:15,1:7 ", 3).unwrap(), position);
    }

    #[test]
    fn a_partition_added_later_starts_from_its_beginning() {
        assert_eq!(
            Position::parse("0:15,1:7", 3).unwrap(),
            Position::new(vec![15, 7, 0])
        );
    }

    #[test]
    fn advancing_never_goes_back() {
        let mut position = Position::new(vec![5, 5]);
        position.advance(1, 9);
        position.advance(1, 3);
        assert_eq!(position.offsets(), &[5, 10]);
    }

    #[test]
    fn malformed_tokens_are_refused_with_the_reason() {
        for (token, reason) in [
            ("", "is not partition:offset"),
            ("abc", "is not partition:offset"),
            ("0:x", "is not a number"),
            ("x:1", "is not a number"),
            ("0:-1", "negative"),
            ("3:1", "does not exist"),
            ("0:1,0:2", "twice"),
        ] {
            let error = Position::parse(token, 3).unwrap_err();
            assert!(error.to_string().contains(reason), "{token:?}: {error}");
            assert_eq!(error.other_layout.is_some(), reason == "does not exist");
        }
    }
}
