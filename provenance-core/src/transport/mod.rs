//! Transports: where events go. One trait, and the transports OpenLineage
//! users know: console, file (NDJSON), HTTP (with a durable spool), composite.
//! The store transport lives in provenance-store, since core cannot depend on it.

mod composite;
mod config;
mod file;
#[cfg(feature = "http")]
mod http;
#[cfg(feature = "http")]
mod spool;

pub use composite::{CompositeTransport, FailurePolicy};
pub use config::{ConfigError, TransportConfig, load_config};
pub use file::{ConsoleTransport, FileTransport};
#[cfg(feature = "http")]
pub use http::{HttpOptions, HttpTransport};

use std::time::Duration;

use crate::Event;

/// Why an event could not be handed over.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// Writing a file or the console failed.
    #[error("write event to {target}")]
    Io {
        /// Where it was going.
        target: String,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// A store or server refused or failed.
    #[error("send event to {target}: {reason}")]
    Rejected {
        /// Where it was going.
        target: String,
        /// Why.
        reason: String,
    },
    /// Some transports of a composite failed.
    #[error("{failed} of {total} transports failed: {}", .errors.join("; "))]
    Partial {
        /// How many failed.
        failed: usize,
        /// How many there are.
        total: usize,
        /// Each failure, in words.
        errors: Vec<String>,
    },
    /// Not everything was delivered within the wait; it stays spooled.
    #[error(
        "flush {target}: {pending} events still waiting after {waited:?}; they stay in the spool at {spool} and a later run delivers them"
    )]
    Pending {
        /// Where they are going.
        target: String,
        /// How many are left.
        pending: u64,
        /// How long the flush waited.
        waited: Duration,
        /// Where they are kept.
        spool: String,
    },
}

/// Where events go. Emitting must be quick and must not lose an event that
/// it reports as accepted.
pub trait Transport: Send + Sync {
    /// Hands over one event.
    fn emit(&self, event: &Event) -> Result<(), TransportError>;

    /// Waits, at most `timeout`, until everything accepted is delivered.
    fn flush(&self, timeout: Duration) -> Result<(), TransportError> {
        let _ = timeout;
        Ok(())
    }

    /// A short description for messages (`file /tmp/events.ndjson`).
    fn describe(&self) -> String;
}

/// A transport that drops everything: `OPENLINEAGE_DISABLED=true`.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopTransport;

impl Transport for NoopTransport {
    fn emit(&self, _: &Event) -> Result<(), TransportError> {
        Ok(())
    }
    fn describe(&self) -> String {
        "nothing (emission disabled)".into()
    }
}
