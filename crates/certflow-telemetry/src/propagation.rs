//! W3C trace context across NATS: a `traceparent` header on every request and event
//! message names the span that sent it, and whoever handles the message continues that
//! trace. Without an OTLP endpoint nothing is traced, and a `traceparent` a client sent is
//! passed along unchanged.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::exporting_traces;

/// The W3C header (and NATS header) that carries trace context.
pub const TRACEPARENT: &str = "traceparent";

/// Makes `span` a child of the remote span `traceparent` names. Does nothing when spans are
/// not traced or the value is not a valid `traceparent`.
pub fn set_parent(span: &tracing::Span, traceparent: Option<&str>) {
    if !exporting_traces() {
        return;
    }
    let Some(traceparent) = traceparent else {
        return;
    };
    let carrier = HashMap::from([(TRACEPARENT.to_string(), traceparent.to_string())]);
    let context = TraceContextPropagator::new().extract(&carrier);
    if context.span().span_context().is_valid() {
        // Fails only for a span already started elsewhere; then it keeps its own parent.
        let _ = span.set_parent(context);
    }
}

/// The `traceparent` naming `span`, for messages sent on its behalf; `None` when spans are
/// not traced (or this one is filtered out).
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    if !exporting_traces() {
        return None;
    }
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// What to send downstream from inside the current span: its own context when traced, or
/// else the `incoming` one unchanged, so a client's trace id still reaches the log.
pub fn forward(incoming: Option<&str>) -> Option<String> {
    traceparent(&tracing::Span::current()).or_else(|| incoming.map(str::to_string))
}
