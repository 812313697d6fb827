//! What every gRPC call leaves behind: a span that continues the caller's trace (W3C
//! `traceparent` metadata), a count by RPC, status code and `ErrorInfo` reason, and its
//! latency. A tower layer, so calls refused before any handler runs (authentication, rate,
//! unknown methods) are counted too.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use certflow_proto::refusal::code_name;
use certflow_telemetry::{instruments, propagation};
use opentelemetry::KeyValue;
use prost::Message;
use tonic::codegen::http;
use tonic_types::StatusExt;
use tracing::Instrument;

/// Adds [`Observe`] around the gateway's routes.
#[derive(Debug, Clone)]
pub struct ObserveLayer {
    rpcs: Arc<HashSet<String>>,
}

impl ObserveLayer {
    /// A layer that names the RPCs described by `descriptor_sets` (encoded
    /// `FileDescriptorSet`s) and server reflection; other paths count as `unknown`, so a
    /// caller cannot grow the metrics with made-up method names.
    pub fn new(descriptor_sets: &[&[u8]]) -> Self {
        let mut rpcs = HashSet::new();
        for set in descriptor_sets {
            let Ok(set) = prost_types::FileDescriptorSet::decode(*set) else {
                continue;
            };
            for file in set.file {
                let package = file.package.unwrap_or_default();
                for service in file.service {
                    let service_name = service.name.unwrap_or_default();
                    for method in service.method {
                        rpcs.insert(format!(
                            "/{package}.{service_name}/{}",
                            method.name.unwrap_or_default()
                        ));
                    }
                }
            }
        }
        rpcs.insert("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo".into());
        rpcs.insert("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo".into());
        ObserveLayer {
            rpcs: Arc::new(rpcs),
        }
    }
}

impl<S> tower_layer::Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe {
            inner,
            rpcs: self.rpcs.clone(),
        }
    }
}

/// The service [`ObserveLayer`] wraps around the routes.
#[derive(Debug, Clone)]
pub struct Observe<S> {
    inner: S,
    rpcs: Arc<HashSet<String>>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, B, R> tower_service::Service<http::Request<B>> for Observe<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<R>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        let rpc = if self.rpcs.contains(path) {
            path.trim_start_matches('/').to_string()
        } else {
            "unknown".to_string()
        };
        let span = tracing::info_span!(
            "grpc",
            service = "gateway",
            rpc = %rpc,
            code = tracing::field::Empty,
            reason = tracing::field::Empty,
        );
        propagation::set_parent(
            &span,
            request
                .headers()
                .get(propagation::TRACEPARENT)
                .and_then(|value| value.to_str().ok()),
        );
        // The clone that was driven ready is the one that must be called.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let started = Instant::now();
        Box::pin(async move {
            let result = inner.call(request).instrument(span.clone()).await;
            if let Ok(response) = &result {
                let (code, reason) = outcome(response.headers());
                span.record("code", code);
                if !reason.is_empty() {
                    span.record("reason", reason.as_str());
                }
                let metrics = instruments();
                metrics.grpc_duration.record(
                    started.elapsed().as_secs_f64(),
                    &[
                        KeyValue::new("rpc", rpc.clone()),
                        KeyValue::new("code", code),
                    ],
                );
                metrics.grpc_requests.add(
                    1,
                    &[
                        KeyValue::new("rpc", rpc),
                        KeyValue::new("code", code),
                        KeyValue::new("reason", reason),
                    ],
                );
            }
            result
        })
    }
}

/// The status of a call from its response headers: a failed call is answered
/// trailers-only, with `grpc-status` (and the `ErrorInfo` details) in the headers; a call
/// that got as far as sending a message counts as OK.
fn outcome(headers: &http::HeaderMap) -> (&'static str, String) {
    match tonic::Status::from_header_map(headers) {
        Some(status) => {
            let reason = status
                .get_error_details()
                .error_info()
                .map(|info| info.reason.clone())
                .unwrap_or_default();
            (code_name(status.code()), reason)
        }
        None => ("OK", String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_read_from_trailers_only_headers() {
        let status = tonic::Status::with_error_details(
            tonic::Code::FailedPrecondition,
            "already revoked",
            tonic_types::ErrorDetails::with_error_info("ALREADY_REVOKED", "certs", []),
        );
        let headers = status.into_http::<()>().headers().clone();
        assert_eq!(
            outcome(&headers),
            ("FAILED_PRECONDITION", "ALREADY_REVOKED".to_string())
        );
        assert_eq!(outcome(&http::HeaderMap::new()), ("OK", String::new()));
    }

    #[test]
    fn only_described_rpcs_are_named() {
        let layer = ObserveLayer::new(&[certflow_proto::FILE_DESCRIPTOR_SET]);
        assert!(
            layer
                .rpcs
                .contains("/certflow.v1.RevocationService/RequestRevocation")
        );
        assert!(
            !layer
                .rpcs
                .contains("/certflow.v1.RevocationService/Made-up")
        );
    }
}
