//! The reader: the query side of the CQRS platform. It serves the read model that the
//! persister keeps in Cassandra, and never writes.

pub mod configuration;
pub mod positions;
pub mod routes;
pub mod startup;

pub use configuration::Config;
pub use startup::Application;
