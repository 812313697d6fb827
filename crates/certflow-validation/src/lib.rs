//! The validation service. It will issue and check domain-ownership challenges by DNS and HTTP (REV-11).
//!
//! It runs as its own service on `certflow.cmd.validation.>` (queue group `validation`) so the
//! deployment shape is final; it has no commands yet and answers every request with
//! `UNIMPLEMENTED`.

#![forbid(unsafe_code)]

use certflow_bus::{CancellationToken, Responder, not_available, subjects};

/// Errors starting the service.
#[derive(Debug, thiserror::Error)]
pub enum ValidationError {
    #[error(transparent)]
    Bus(#[from] certflow_bus::BusError),
}

/// The validation service, subscribed and ready to run.
#[derive(Debug)]
pub struct ValidationService {
    responder: Responder,
}

impl ValidationService {
    /// Subscribes to the service's commands.
    pub async fn bind(client: async_nats::Client) -> Result<Self, ValidationError> {
        let responder = Responder::bind(client, subjects::VALIDATION, "validation").await?;
        Ok(ValidationService { responder })
    }

    /// Answers requests until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        self.responder
            .run(shutdown, |request| async move {
                not_available("validation", &request.subject)
            })
            .await;
    }
}
