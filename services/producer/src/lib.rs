//! The producer: the command side of the CQRS platform. Each accepted command becomes one
//! event in Kafka, and the answer is sent only after Kafka confirmed it stored the record,
//! so a 2xx means the command is durable.

pub mod configuration;
pub mod idempotency;
mod internal_events;
pub mod kafka;
pub mod routes;
pub mod startup;

pub use configuration::Config;
pub use startup::Application;
