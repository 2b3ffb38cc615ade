//! The store transport: a recorder's events go straight into a store. It lives
//! here because core cannot depend on the store.

use provenance_core::Event;
use provenance_core::transport::{Transport, TransportError};

use crate::{Outcome, Store};

/// Writes each event into a [`Store`] (a duplicate counts as delivered).
#[derive(Debug)]
pub struct StoreTransport {
    store: Store,
}

impl StoreTransport {
    /// A transport into `store`.
    pub fn new(store: Store) -> Self {
        StoreTransport { store }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

impl Transport for StoreTransport {
    fn emit(&self, event: &Event) -> Result<(), TransportError> {
        match self.store.ingest_event(event) {
            Ok(Outcome::Stored { .. } | Outcome::Duplicate { .. }) => Ok(()),
            Ok(Outcome::Rejected { reason }) => Err(TransportError::Rejected {
                target: self.describe(),
                reason,
            }),
            Err(e) => Err(TransportError::Rejected {
                target: self.describe(),
                reason: format!("{e}: {}", error_chain(&e)),
            }),
        }
    }

    fn describe(&self) -> String {
        format!("store {}", self.store.location())
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = Vec::new();
    let mut source = e.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    parts.join(": ")
}
