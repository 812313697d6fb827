//! The review service. It will put revocations that need a human on the review queue (REV-R rules).
//!
//! It runs as its own service on `certflow.cmd.review.>` (queue group `review`) so the
//! deployment shape is final; it has no commands yet and answers every request with
//! `UNIMPLEMENTED`.

#![forbid(unsafe_code)]

use certflow_bus::{CancellationToken, Responder, not_available, subjects};

/// Errors starting the service.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error(transparent)]
    Bus(#[from] certflow_bus::BusError),
}

/// The review service, subscribed and ready to run.
#[derive(Debug)]
pub struct ReviewService {
    responder: Responder,
}

impl ReviewService {
    /// Subscribes to the service's commands.
    pub async fn bind(client: async_nats::Client) -> Result<Self, ReviewError> {
        let responder = Responder::bind(client, subjects::REVIEW, "review").await?;
        Ok(ReviewService { responder })
    }

    /// Answers requests until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        self.responder
            .run(shutdown, |request| async move {
                not_available("review", &request.subject)
            })
            .await;
    }
}
