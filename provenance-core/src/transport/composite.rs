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
                    .map(|e| format!("{}: {}", t.describe(), with_causes(&e)))
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

/// An error's message followed by those of its causes (`: No space left on
/// device`), which its own message leaves to them.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.ends_with(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::FileTransport;
    use crate::{EventType, Job, Run, RunEvent, RunId};

    #[test]
    fn a_failure_in_a_composite_keeps_the_systems_reason() {
        let dir = std::env::temp_dir().join(format!("prov-composite-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("events.ndjson");
        let composite = CompositeTransport::new(
            vec![
                Box::new(FileTransport::open(std::path::Path::new("/dev/full"), true).unwrap()),
                Box::new(FileTransport::open(&good, true).unwrap()),
            ],
            FailurePolicy::AllMustSucceed,
        );
        let event = Event::Run(RunEvent::new(
            EventType::Start,
            Run::new(RunId::new_v7()),
            Job::new("n", "j"),
        ));
        let err = composite.emit(&event).unwrap_err().to_string();
        assert!(err.contains("1 of 2"), "{err}");
        assert!(err.contains("/dev/full"), "{err}");
        assert!(err.contains("No space left on device"), "{err}");
        // The other transport still took the event.
        assert_eq!(std::fs::read_to_string(&good).unwrap().lines().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
