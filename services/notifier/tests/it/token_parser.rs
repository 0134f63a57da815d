//! The resume-token parser under generated input (proptest, on stable Rust): any text is
//! a position or an error that says why, never a panic, and every token the notifier
//! writes reads back as the same position.

use notifier::token::Position;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 5_000, ..ProptestConfig::default() })]

    #[test]
    fn every_written_token_reads_back_as_itself(
        offsets in proptest::collection::vec(0i64..i64::MAX, 1..64),
    ) {
        let position = Position::new(offsets.clone());
        let token = position.to_string();
        let read = Position::parse(&token, offsets.len()).expect("a token the notifier wrote");
        prop_assert_eq!(read, position);
    }

    #[test]
    fn any_text_is_a_position_or_an_error(
        token in prop_oneof![
            any::<String>(),
            "[0-9:, \\-+]{0,64}",
            "([0-9]{1,20}:[0-9]{1,20},){0,8}[0-9]{1,20}:[0-9]{1,20}",
        ],
        partitions in 0usize..16,
    ) {
        match Position::parse(&token, partitions) {
            Ok(position) => {
                // Whatever parsed writes back to a token that parses the same.
                let again = Position::parse(&position.to_string(), position.offsets().len());
                prop_assert_eq!(again.ok(), Some(position));
            }
            Err(error) => prop_assert!(!error.reason.is_empty()),
        }
    }
}
