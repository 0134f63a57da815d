//! The notifier: pushes every event of the documents topic to every connected client as
//! Server-Sent Events. One Kafka consumer reads all partitions into an in-memory history
//! and fans out to bounded per-client queues; a client resumes exactly where it left off
//! with the position token of the last event it received.

pub mod configuration;
pub mod hub;
mod internal_events;
pub mod kafka;
pub mod layout;
mod repeats;
pub mod routes;
pub mod serve;
pub mod sse;
pub mod stall;
pub mod startup;
pub mod token;

pub use configuration::Config;
pub use startup::Application;
