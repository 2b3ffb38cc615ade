//! Several transports at once.

use std::time::Duration;

use super::{Transport, TransportError};
use crate::Event;

/// What a composite does when some of its transports fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailurePolicy {
    /// Every transport gets every event; the emit fails (naming each failure)
    /// if any transport failed. The default: a failure is never silent.
    #[default]
    AllMustSucceed,
    /// Every transport gets every event; the emit succeeds if at least one
    /// transport took it (OpenLineage's `continue_on_failure`).
    AnySucceeds,
}

/// Sends each event to every transport, in order.
pub struct CompositeTransport {
    transports: Vec<Box<dyn Transport>>,
    policy: FailurePolicy,
}

impl CompositeTransport {
    /// A composite of `transports` with `policy`.
    pub fn new(transports: Vec<Box<dyn Transport>>, policy: FailurePolicy) -> Self {
        CompositeTransport { transports, policy }
    }

    fn all(
        &self,
        mut f: impl FnMut(&dyn Transport) -> Result<(), TransportError>,
    ) -> Result<(), TransportError> {
        let errors: Vec<String> = self
            .transports
            .iter()
            .filter_map(|t| {
                f(t.as_ref())
                    .err()
                    .map(|e| format!("{}: {e}", t.describe()))
            })
            .collect();
        let failed = errors.len();
        let total = self.transports.len();
        let ok = match self.policy {
            FailurePolicy::AllMustSucceed => failed == 0,
            FailurePolicy::AnySucceeds => failed < total || total == 0,
        };
        if ok {
            Ok(())
        } else {
            Err(TransportError::Partial {
                failed,
                total,
                errors,
            })
        }
    }
}

impl Transport for CompositeTransport {
    fn emit(&self, event: &Event) -> Result<(), TransportError> {
        self.all(|t| t.emit(event))
    }

    fn flush(&self, timeout: Duration) -> Result<(), TransportError> {
        self.all(|t| t.flush(timeout))
    }

    fn describe(&self) -> String {
        let parts: Vec<String> = self.transports.iter().map(|t| t.describe()).collect();
        format!("composite [{}]", parts.join(", "))
    }
}
