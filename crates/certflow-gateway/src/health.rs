//! gRPC health that means something: every service the gateway serves is `NOT_SERVING`
//! while NATS is unreachable or the projection is replaying the log (a rebuild, or a start
//! far behind), because calls would then fail or read stale state.

use std::time::Duration;

use bytes::Bytes;
use certflow_bus::Envelope;
use certflow_bus::{BusClient, CancellationToken, Outcome, subjects};
use certflow_proto::bus::v1::ProjectionStatusResponse;
use certflow_proto::v1::acme_service_server::AcmeServiceServer;
use certflow_proto::v1::certificate_service_server::CertificateServiceServer;
use certflow_proto::v1::crl_service_server::CrlServiceServer;
use certflow_proto::v1::reissue_service_server::ReissueServiceServer;
use certflow_proto::v1::review_service_server::ReviewServiceServer;
use certflow_proto::v1::revocation_service_server::RevocationServiceServer;
use certflow_telemetry::Readiness;
use prost::Message;
use tonic::server::NamedService;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tracing::{info, warn};

use crate::Gateway;

/// How often the gateway looks.
const INTERVAL: Duration = Duration::from_secs(1);

/// The names health is reported under: the whole server ("") and each service.
const SERVICES: [&str; 7] = [
    "",
    <CertificateServiceServer<Gateway> as NamedService>::NAME,
    <RevocationServiceServer<Gateway> as NamedService>::NAME,
    <ReviewServiceServer<Gateway> as NamedService>::NAME,
    <ReissueServiceServer<Gateway> as NamedService>::NAME,
    <CrlServiceServer<Gateway> as NamedService>::NAME,
    <AcmeServiceServer<Gateway> as NamedService>::NAME,
];

/// Checks NATS and the projection every [`INTERVAL`] until `shutdown`, and reports changes.
pub(crate) async fn watch(
    bus: BusClient,
    reporter: HealthReporter,
    readiness: Readiness,
    shutdown: CancellationToken,
) {
    let mut last: Option<Result<(), String>> = None;
    loop {
        let now = check(&bus).await;
        if last.as_ref() != Some(&now) {
            let status = match &now {
                Ok(()) => {
                    info!("gateway serving");
                    readiness.ready("gateway");
                    ServingStatus::Serving
                }
                Err(why) => {
                    warn!(%why, "gateway not serving");
                    readiness.not_ready("gateway", why.clone());
                    ServingStatus::NotServing
                }
            };
            for service in SERVICES {
                reporter.set_service_status(service, status).await;
            }
            last = Some(now);
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(INTERVAL) => {}
        }
    }
}

async fn check(bus: &BusClient) -> Result<(), String> {
    if !bus.is_connected() {
        return Err("NATS is unreachable".into());
    }
    let reply = bus
        .request(
            subjects::PROJECTION_STATUS,
            &Envelope::service("gateway"),
            Bytes::new(),
        )
        .await
        .map_err(|err| format!("the projection does not answer: {err}"))?;
    let status = match reply.outcome {
        Some(Outcome::Response(bytes)) => ProjectionStatusResponse::decode(bytes.as_slice())
            .map_err(|err| format!("undecodable projection status: {err}"))?,
        Some(Outcome::Refusal(refusal)) => {
            return Err(format!("the projection refused: {}", refusal.message));
        }
        None => return Err("the projection sent an empty reply".into()),
    };
    if status.caught_up {
        Ok(())
    } else {
        Err(format!(
            "the projection is replaying the log: sequence {} of {}",
            status.applied_sequence, status.start_sequence
        ))
    }
}
