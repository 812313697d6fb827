//! Logs, traces and metrics for every certflow process.
//!
//! [`Telemetry::init`] installs the process-wide pieces once, at start-up:
//! - logs through `tracing`, human-readable or JSON, filtered `RUST_LOG`-style;
//! - traces exported over OTLP/gRPC when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//!   `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, and nothing exported otherwise; the other
//!   standard `OTEL_*` variables (service name, resource attributes, sampler, batch and
//!   timeout settings, headers) are honoured by the OpenTelemetry SDK;
//! - metrics, always readable in Prometheus text format ([`Telemetry::prometheus_text`],
//!   served by [`serve_http`]), and also exported over OTLP when an endpoint is set.
//!
//! [`propagation`] carries W3C trace context between processes in NATS headers, so the
//! reaction of one service to another's event joins the trace that caused it.
//! [`instruments`] holds every metric certflow records.
//!
//! ## Layout
//!
//! - `http` (private): [`serve_http`] and [`Readiness`]: `/metrics`, `/healthz` and `/readyz`.
//! - `instruments` (private): [`Instruments`], every metric certflow records, made once.
//! - [`propagation`]: W3C `traceparent` in NATS headers, so a handler continues the sender's trace.

#![forbid(unsafe_code)]

mod http;
mod instruments;
pub mod propagation;

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub use http::{Readiness, serve_http};
pub use instruments::{Instruments, instruments};
/// The metrics a process shows on `/metrics`.
pub use prometheus::Registry as MetricsRegistry;

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("Prometheus exporter: {0}")]
    Prometheus(#[from] opentelemetry_sdk::error::OTelSdkError),
    #[error("logging is already set up in this process: {0}")]
    Subscriber(#[from] tracing_subscriber::util::TryInitError),
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// What a process tells [`Telemetry::init`].
#[derive(Debug)]
pub struct TelemetryConfig {
    /// `service.name` of the exported resource, unless `OTEL_SERVICE_NAME` says otherwise.
    pub service_name: String,
    pub log_format: LogFormat,
    /// Which spans and events are logged (and traced).
    pub filter: EnvFilter,
}

/// Whether spans are exported, so callers can skip spans that exist only for traces.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether this process exports traces (an OTLP endpoint is configured).
pub fn exporting_traces() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// The process's telemetry; [`Telemetry::shutdown`] flushes what is not exported yet.
pub struct Telemetry {
    tracer_provider: Option<SdkTracerProvider>,
    meter_provider: SdkMeterProvider,
    registry: prometheus::Registry,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("exporting_traces", &self.tracer_provider.is_some())
            .finish_non_exhaustive()
    }
}

fn env_set(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|value| !value.is_empty())
}

impl Telemetry {
    /// Installs logging, tracing and metrics for this process. Call once, inside the Tokio
    /// runtime (the OTLP exporters run on it), before any service starts.
    pub fn init(config: TelemetryConfig) -> Result<Telemetry, TelemetryError> {
        let disabled =
            std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
        let traces_endpoint = !disabled
            && (env_set("OTEL_EXPORTER_OTLP_ENDPOINT")
                || env_set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"));
        let metrics_endpoint = !disabled
            && (env_set("OTEL_EXPORTER_OTLP_ENDPOINT")
                || env_set("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"));

        let mut resource = Resource::builder();
        if !env_set("OTEL_SERVICE_NAME") {
            resource = resource.with_service_name(config.service_name.clone());
        }
        let resource = resource.build();

        let registry = prometheus::Registry::new();
        let prometheus = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .without_target_info()
            .build()?;
        let mut meters = SdkMeterProvider::builder()
            .with_resource(resource.clone())
            .with_reader(prometheus);
        if metrics_endpoint {
            let exporter = opentelemetry_otlp::MetricExporter::builder()
                .with_tonic()
                .build()?;
            meters = meters.with_periodic_exporter(exporter);
        }
        let meter_provider = meters.build();
        opentelemetry::global::set_meter_provider(meter_provider.clone());

        let tracer_provider = if traces_endpoint {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .build()?;
            Some(
                SdkTracerProvider::builder()
                    .with_resource(resource)
                    .with_batch_exporter(exporter)
                    .build(),
            )
        } else {
            None
        };
        let otel_layer = tracer_provider.as_ref().map(|provider| {
            tracing_opentelemetry::layer().with_tracer(provider.tracer("certflow"))
        });
        EXPORTING.store(tracer_provider.is_some(), Ordering::Relaxed);

        let registry_layers = tracing_subscriber::registry()
            .with(config.filter)
            .with(otel_layer);
        match config.log_format {
            LogFormat::Text => registry_layers
                .with(tracing_subscriber::fmt::layer())
                .try_init()?,
            LogFormat::Json => registry_layers
                .with(tracing_subscriber::fmt::layer().json())
                .try_init()?,
        }
        Ok(Telemetry {
            tracer_provider,
            meter_provider,
            registry,
        })
    }

    /// Every metric of this process in Prometheus text exposition format.
    pub fn prometheus_text(&self) -> String {
        prometheus_text(&self.registry)
    }

    /// The registry the Prometheus endpoint reads.
    pub fn registry(&self) -> prometheus::Registry {
        self.registry.clone()
    }

    /// Exports what is still buffered and stops the exporters. Blocks: call it last.
    pub fn shutdown(self) {
        if let Some(Err(err)) = self.tracer_provider.map(|provider| provider.shutdown()) {
            eprintln!("flushing traces failed: {err}");
        }
        if let Err(err) = self.meter_provider.shutdown() {
            eprintln!("flushing metrics failed: {err}");
        }
    }
}

/// `registry` in Prometheus text exposition format.
pub fn prometheus_text(registry: &prometheus::Registry) -> String {
    use prometheus::Encoder as _;
    let mut buffer = Vec::new();
    if let Err(err) = prometheus::TextEncoder::new().encode(&registry.gather(), &mut buffer) {
        tracing::warn!(error = %err, "could not encode metrics");
    }
    String::from_utf8_lossy(&buffer).into_owned()
}
