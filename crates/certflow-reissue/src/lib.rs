//! The reissue service: decides reissue requests (REI-1 … REI-12), holds one reservation per
//! registrable domain while a reissue runs (REI-4), and completes reissues by having the
//! issuance service certify the new certificate.
//!
//! - **Requests** (`certflow.cmd.reissue.request`): a pasted CSR is checked (REI-7) and its
//!   key looked up in the key index (REV-16); a generated key is made and sealed by the
//!   issuance service; the reservations of the bound domains' registrable domains are taken
//!   (a hold whose reissue the log shows is over is taken over); then `ReissueRequested` is
//!   appended to the original. If anything refuses, the reservations are released.
//! - **Reactions** (durable consumer `reissue` on the event log): a `ReissueRequested` is
//!   certified through the issuance service and completed with `ReissueCompleted`, or ended
//!   with `ReissueFailed` when the CA refuses; every ended reissue (completed, failed, or
//!   failed because its original was revoked, REV-14) releases its reservations. A crash at
//!   any step is picked up from the log when the event is offered again.
//!
//! A reissue that needs domain validation (REI-9) gets its challenges from the validation
//! service, and one that needs a reviewer (REI-10) a task on the review queue from the review
//! service; it is certified once both have passed, and fails when the validation expires or
//! a reviewer rejects it.
//!
//! ## Layout
//!
//! - `completion` (private): the reactions: certify, complete or fail a reissue, release its hold.
//! - `request` (private): a request: key source checked or made, domains reserved, appended.
//! - `reservations` (private): REI-4 reservations taken, given back unless recorded, stale holds.

#![forbid(unsafe_code)]

mod completion;
mod request;
mod reservations;

use std::time::Duration;

use certflow_bus::{BusClient, Request, not_available, subjects};
use certflow_proto::bus::v1::Reply;
use certflow_runtime::{CommandRuntime, ReactionError, Reacts, Service, ServiceSpec, StartError};
use certflow_store::{KeyIndex, RecordedBatch, ReissueLocks};

/// The service's name in logs, actors and consumer names.
const SERVICE: &str = "reissue";

/// How reissues are run.
#[derive(Debug, Clone)]
pub struct ReissueConfig {
    /// How long a reservation is held before its holder may be found gone: longer than any
    /// request takes from reserving to recording, so an unrecorded hold is a crashed one.
    pub stale_after: Duration,
    /// How long a call to the issuance service may take.
    pub request_timeout: Duration,
}

impl Default for ReissueConfig {
    fn default() -> Self {
        ReissueConfig {
            stale_after: Duration::from_secs(60),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// The reissue service: the commands' runtime, the reservations, the key index, and the
/// issuance service it asks for keys and certificates.
#[derive(Debug, Clone)]
pub struct ReissueService {
    config: ReissueConfig,
    runtime: CommandRuntime,
    locks: ReissueLocks,
    keys: KeyIndex,
    issuance: BusClient,
}

impl ReissueService {
    /// The service on `runtime`, attached to the reservations and the key index.
    pub async fn new(
        client: async_nats::Client,
        runtime: CommandRuntime,
        config: ReissueConfig,
    ) -> Result<Self, StartError> {
        Ok(ReissueService {
            locks: ReissueLocks::attach(client.clone()).await?,
            keys: KeyIndex::attach(client.clone()).await?,
            issuance: BusClient::new(client, config.request_timeout),
            runtime,
            config,
        })
    }
}

impl Service for ReissueService {
    // Its reaction signs a certificate: an event waits longer before another instance takes
    // it over, and fewer run at once.
    const SPEC: ServiceSpec =
        ServiceSpec::answering(SERVICE, &[subjects::REISSUE]).reacting(Reacts {
            redelivery: Duration::from_secs(60),
            concurrency: 16,
        });

    async fn answer(&self, request: Request) -> Reply {
        match request.subject.as_str() {
            subjects::REQUEST_REISSUE => request::request_reissue(self, request).await,
            other => not_available(SERVICE, other),
        }
    }

    async fn react(&self, batch: RecordedBatch) -> Result<(), ReactionError> {
        completion::react(self, batch).await
    }
}
