//! Every metric certflow records, created once from the global meter provider.
//!
//! Names follow OpenTelemetry conventions (dots, a unit where there is one); the Prometheus
//! endpoint shows them with underscores and the usual suffixes, e.g.
//! `certflow_grpc_requests_total` and `certflow_grpc_duration_seconds_bucket`.

use std::sync::OnceLock;

use opentelemetry::metrics::{Counter, Gauge, Histogram};

/// The instruments. Without [`crate::Telemetry::init`] they record into nothing.
#[derive(Debug)]
pub struct Instruments {
    /// gRPC calls by `rpc`, `code` and `reason` (`ErrorInfo.reason`, empty when none).
    pub grpc_requests: Counter<u64>,
    /// gRPC call latency in seconds, by `rpc` and `code`.
    pub grpc_duration: Histogram<f64>,
    /// Events appended to the log, by `type`.
    pub events_appended: Counter<u64>,
    /// Appends refused because the certificate changed since it was read (GEN-2).
    pub append_conflicts: Counter<u64>,
    /// Appends sent again after an unacknowledged publish, by `outcome`.
    pub append_retries: Counter<u64>,
    /// Messages a durable consumer has not been delivered yet, by `stream` and `consumer`.
    pub consumer_pending: Gauge<u64>,
    /// Messages delivered to a durable consumer but not acknowledged yet.
    pub consumer_ack_pending: Gauge<u64>,
    /// Reactions to events by `consumer` and `outcome` (`done`, `retry`, `skipped`).
    pub reactions: Counter<u64>,
    /// The last stream sequence the projection has applied and flushed.
    pub projection_applied_sequence: Gauge<u64>,
    /// The last stream sequence whose revocations this process's CRL publisher has put on
    /// signed, stored CRLs.
    pub crl_covered_sequence: Gauge<u64>,
    /// CRLs signed and stored, by `issuer`: with partitioned CRLs, one per shard a round
    /// of revocations touched.
    pub crl_signed: Counter<u64>,
    /// Review tasks waiting in `REVIEW_QUEUE`.
    pub review_queue_depth: Gauge<u64>,
    /// Domain-ownership probes by `method` (`dns`, `file`) and `outcome` (`found`,
    /// `wrong_value`, `missing`, `error`).
    pub validation_checks: Counter<u64>,
    /// Notification delivery attempts by `channel` (`webhook`, `email`) and `outcome`
    /// (`delivered`, `retry`, `dead`).
    pub notify_deliveries: Counter<u64>,
    /// Notifications the retries gave up on, by `channel`.
    pub notify_dead_letters: Counter<u64>,
    /// `thisUpdate` of each CRL partition's latest stored CRL, Unix seconds, by `issuer` and
    /// `partition`.
    pub crl_this_update: Gauge<u64>,
    /// `nextUpdate` of the same, Unix seconds: relying parties reject a CRL past it.
    pub crl_next_update: Gauge<u64>,
    /// How often every partition is signed again, seconds.
    pub crl_refresh_interval: Gauge<u64>,
    /// Open domain validations by `due`: `overdue` (deadline passed, not yet concluded),
    /// `within_24h`, `later`.
    pub validations_open: Gauge<u64>,
    /// Seconds the oldest task in `REVIEW_QUEUE` has waited.
    pub review_oldest_task_age: Gauge<u64>,
    /// 1 while the process's NATS connection is up, by `service`.
    pub nats_connected: Gauge<u64>,
}

static INSTRUMENTS: OnceLock<Instruments> = OnceLock::new();

/// Latency buckets, in seconds: sub-millisecond NATS hops up to slow external checks.
const LATENCY_BOUNDARIES: [f64; 16] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0,
];

/// The process's instruments.
pub fn instruments() -> &'static Instruments {
    INSTRUMENTS.get_or_init(|| {
        let meter = opentelemetry::global::meter("certflow");
        Instruments {
            grpc_requests: meter
                .u64_counter("certflow.grpc.requests")
                .with_description("gRPC calls by RPC, status code and ErrorInfo reason")
                .build(),
            grpc_duration: meter
                .f64_histogram("certflow.grpc.duration")
                .with_unit("s")
                .with_description("gRPC call latency")
                .with_boundaries(LATENCY_BOUNDARIES.to_vec())
                .build(),
            events_appended: meter
                .u64_counter("certflow.events.appended")
                .with_description("events appended to the log, by type")
                .build(),
            append_conflicts: meter
                .u64_counter("certflow.append.conflicts")
                .with_description("appends refused for a stale expected sequence")
                .build(),
            append_retries: meter
                .u64_counter("certflow.append.retries")
                .with_description("appends sent again after no acknowledgement")
                .build(),
            consumer_pending: meter
                .u64_gauge("certflow.consumer.pending")
                .with_description("messages not yet delivered to a durable consumer")
                .build(),
            consumer_ack_pending: meter
                .u64_gauge("certflow.consumer.ack_pending")
                .with_description("messages delivered to a durable consumer, not acknowledged")
                .build(),
            reactions: meter
                .u64_counter("certflow.reactions")
                .with_description("reactions to events by consumer and outcome")
                .build(),
            projection_applied_sequence: meter
                .u64_gauge("certflow.projection.applied_sequence")
                .with_description("last stream sequence applied and flushed by the projection")
                .build(),
            crl_covered_sequence: meter
                .u64_gauge("certflow.crl.covered_sequence")
                .with_description("last stream sequence whose revocations are on published CRLs")
                .build(),
            crl_signed: meter
                .u64_counter("certflow.crl.signed")
                .with_description("CRLs signed and stored, by issuer")
                .build(),
            review_queue_depth: meter
                .u64_gauge("certflow.review.queue_depth")
                .with_description("review tasks waiting in REVIEW_QUEUE")
                .build(),
            validation_checks: meter
                .u64_counter("certflow.validation.checks")
                .with_description("domain-ownership probes by method and outcome")
                .build(),
            notify_deliveries: meter
                .u64_counter("certflow.notify.deliveries")
                .with_description("notification delivery attempts by channel and outcome")
                .build(),
            notify_dead_letters: meter
                .u64_counter("certflow.notify.dead_letters")
                .with_description("notifications the retries gave up on, by channel")
                .build(),
            crl_this_update: meter
                .u64_gauge("certflow.crl.this_update_timestamp")
                .with_unit("s")
                .with_description("thisUpdate of each CRL partition's latest CRL, Unix time")
                .build(),
            crl_next_update: meter
                .u64_gauge("certflow.crl.next_update_timestamp")
                .with_unit("s")
                .with_description("nextUpdate of each CRL partition's latest CRL, Unix time")
                .build(),
            crl_refresh_interval: meter
                .u64_gauge("certflow.crl.refresh_interval")
                .with_unit("s")
                .with_description("how often every CRL partition is signed again")
                .build(),
            validations_open: meter
                .u64_gauge("certflow.validations.open")
                .with_description("open domain validations by how soon their deadline falls")
                .build(),
            review_oldest_task_age: meter
                .u64_gauge("certflow.review.oldest_task_age")
                .with_unit("s")
                .with_description("how long the oldest task in REVIEW_QUEUE has waited")
                .build(),
            nats_connected: meter
                .u64_gauge("certflow.nats.connected")
                .with_description("1 while the process's NATS connection is up")
                .build(),
        }
    })
}
