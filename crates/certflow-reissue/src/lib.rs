//! The reissue service. It will reissue certificates with a new key (REI rules).
//!
//! It runs as its own service on `certflow.cmd.reissue.>` (queue group `reissue`) so the
//! deployment shape is final; it has no commands yet and answers every request with
//! `UNIMPLEMENTED`.

#![forbid(unsafe_code)]

use certflow_bus::{CancellationToken, Responder, not_available, subjects};

/// Errors starting the service.
#[derive(Debug, thiserror::Error)]
pub enum ReissueError {
    #[error(transparent)]
    Bus(#[from] certflow_bus::BusError),
}

/// The reissue service, subscribed and ready to run.
#[derive(Debug)]
pub struct ReissueService {
    responder: Responder,
}

impl ReissueService {
    /// Subscribes to the service's commands.
    pub async fn bind(client: async_nats::Client) -> Result<Self, ReissueError> {
        let responder = Responder::bind(client, subjects::REISSUE, "reissue").await?;
        Ok(ReissueService { responder })
    }

    /// Answers requests until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        self.responder
            .run(shutdown, |request| async move {
                not_available("reissue", &request.subject)
            })
            .await;
    }
}
