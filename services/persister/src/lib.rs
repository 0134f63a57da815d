//! The persister: the projection of the CQRS platform. It reads every event of the
//! documents topic (consumer group `persister-group`) and applies it to the Cassandra
//! read model, storing each offset only after Cassandra acknowledged the write.

pub mod configuration;
pub mod consume;
pub mod dead_letters;
pub mod guard;
pub mod health;
pub mod idempotent;
mod internal_events;
pub mod positions;
pub mod startup;

pub use configuration::Config;
pub use startup::Application;
