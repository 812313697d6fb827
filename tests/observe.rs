//! Observability end to end. One revocation is followed through five separate certd
//! processes (gateway, issuance, revocation, validation, projection) that export spans and
//! metrics over OTLP to a collector running in this test; their Prometheus endpoints are
//! scraped; and gRPC health follows NATS going away and coming back.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use certflow_proto::v1::certificate_service_client::CertificateServiceClient;
use certflow_proto::v1::reissue_service_client::ReissueServiceClient;
use certflow_proto::v1::revocation_service_client::RevocationServiceClient;
use certflow_proto::v1::{
    CertificateStatus, GeneratedKey, GetCertificateRequest, KeyAlgorithm, RequestReissueRequest,
    RequestRevocationRequest, RevocationReason, ValidationMethod, request_reissue_request,
};
use certflow_testkit::{Bearer, Certflow, NatsServer, eventually};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::support::{self, dns_auto_dv, request_id};

/// One span as the collector received it.
#[derive(Debug, Clone)]
struct ReceivedSpan {
    /// `service.name` of the process that sent it.
    service: String,
    name: String,
    trace_id: Vec<u8>,
    parent_span_id: Vec<u8>,
    attributes: HashMap<String, String>,
}

/// An OTLP/gRPC collector: keeps every span and the names of the metrics it is sent.
#[derive(Debug, Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    /// (service.name, metric name)
    metrics: Arc<Mutex<BTreeSet<(String, String)>>>,
}

fn text(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
        .map(|value| match value {
            any_value::Value::StringValue(s) => s.clone(),
            any_value::Value::IntValue(i) => i.to_string(),
            any_value::Value::BoolValue(b) => b.to_string(),
            other => format!("{other:?}"),
        })
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().expect("lock");
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .as_ref()
                .and_then(|r| text(&r.attributes, "service.name"))
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    spans.push(ReceivedSpan {
                        service: service.clone(),
                        name: span.name.clone(),
                        trace_id: span.trace_id.clone(),
                        parent_span_id: span.parent_span_id.clone(),
                        attributes: span
                            .attributes
                            .iter()
                            .filter_map(|kv| {
                                Some((kv.key.clone(), text(&span.attributes, &kv.key)?))
                            })
                            .collect(),
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let mut metrics = self.metrics.lock().expect("lock");
        for resource_metrics in request.into_inner().resource_metrics {
            let service = resource_metrics
                .resource
                .as_ref()
                .and_then(|r| text(&r.attributes, "service.name"))
                .unwrap_or_default();
            for scope in resource_metrics.scope_metrics {
                for metric in scope.metrics {
                    metrics.insert((service.clone(), metric.name));
                }
            }
        }
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

impl Collector {
    /// Serves OTLP/gRPC on a free port of 127.0.0.1 and returns its endpoint URL.
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind collector");
        let address = listener.local_addr().expect("address");
        let traces = TraceServiceServer::new(self.clone());
        let metrics = MetricsServiceServer::new(self.clone());
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(traces)
                .add_service(metrics)
                .serve_with_incoming(TcpListenerStream::new(listener))
                .await
                .expect("collector");
        });
        format!("http://{address}")
    }

    fn spans_of(&self, trace_id: &[u8]) -> Vec<ReceivedSpan> {
        self.spans
            .lock()
            .expect("lock")
            .iter()
            .filter(|span| span.trace_id == trace_id)
            .cloned()
            .collect()
    }
}

/// certd processes, killed when dropped.
struct Processes(Vec<(String, Child)>);

impl Drop for Processes {
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `certd <service>` with `args`, exporting to `otlp`, logging into `logs`.
fn certd(service: &str, args: &[String], otlp: &str, logs: &Path) -> (String, Child) {
    let log = std::fs::File::create(logs.join(format!("{service}.log"))).expect("log file");
    let child = Command::new(env!("CARGO_BIN_EXE_certd"))
        .args(args)
        .arg(service)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", otlp)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("OTEL_METRIC_EXPORT_INTERVAL", "500")
        .env_remove("OTEL_SERVICE_NAME")
        .env("RUST_LOG", "info")
        .stdout(Stdio::from(log.try_clone().expect("log file")))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawn certd");
    (service.to_string(), child)
}

async fn scrape(port: u16, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("http://127.0.0.1:{port}{path}"))
        .await
        .expect("scrape");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// The value of the Prometheus sample whose line starts with `name{` and holds every label
/// in `labels`.
fn sample(exposition: &str, name: &str, labels: &[&str]) -> Option<f64> {
    exposition
        .lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .find(|line| labels.iter().all(|label| line.contains(label)))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

fn with_metadata<T>(message: T, traceparent: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("traceparent", traceparent.parse().expect("ascii"));
    request
}

#[tokio::test]
async fn one_revocation_is_one_trace_across_processes() {
    let collector = Collector::default();
    let otlp = collector.start().await;
    let nats = NatsServer::start().expect("nats");
    let support::flows::Ground {
        dns,
        dir,
        signing_key,
        public_key,
        kek,
    } = support::flows::Ground::new().await;
    let token = certd::dev::token(
        &signing_key,
        "alice",
        "acme",
        &["customer"],
        Duration::from_secs(3600),
    )
    .expect("token");

    let gateway_port = support::free_port();
    let common = |metrics: u16| -> Vec<String> {
        [
            "--nats-url",
            &nats.url(),
            "--data-dir",
            &dir.path().join("data").display().to_string(),
            "--kek",
            &kek,
            "--metrics-listen",
            &format!("127.0.0.1:{metrics}"),
            "--crl-listen",
            "127.0.0.1:0",
            "--acme-listen",
            "127.0.0.1:0",
            "--console-listen",
            "off",
            "--listen",
            &format!("127.0.0.1:{gateway_port}"),
            "--plaintext",
            "--jwt-ed25519-key",
            &public_key.display().to_string(),
            "--validation-dns",
            &dns.addr().to_string(),
            "--validation-recheck",
            "0.2",
            "--validation-recheck-max",
            "0.5",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    // Each process's operator port: /readyz answers once its services have started.
    let operator: HashMap<&str, u16> = [
        "projection",
        "issuance",
        "revocation",
        "validation",
        "reissue",
        "gateway",
    ]
    .into_iter()
    .map(|service| (service, support::free_port()))
    .collect();
    support::provision(&common(0), &[]);
    let _processes = Processes(
        operator
            .iter()
            .map(|(service, port)| {
                let mut args = common(*port);
                if *service == "gateway" {
                    args.extend(["--log-format".to_string(), "json".to_string()]);
                }
                certd(service, &args, &otlp, dir.path())
            })
            .collect(),
    );
    for (service, port) in &operator {
        let ready = eventually(Duration::from_secs(60), || async {
            let response = reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
                .await
                .ok()?;
            (response.status() == reqwest::StatusCode::OK).then_some(())
        })
        .await;
        assert!(ready.is_some(), "certd {service} never became ready");
    }
    let gateway_metrics = operator["gateway"];
    let revocation_metrics = operator["revocation"];

    // The gateway serves once NATS and the projection answer.
    let endpoint = format!("http://127.0.0.1:{gateway_port}");
    let channel = eventually(Duration::from_secs(60), || async {
        let channel = Channel::from_shared(endpoint.clone())
            .ok()?
            .connect()
            .await
            .ok()?;
        let status = HealthClient::new(channel.clone())
            .check(HealthCheckRequest::default())
            .await
            .ok()?
            .into_inner()
            .status;
        (status == ServingStatus::Serving as i32).then_some(channel)
    })
    .await
    .expect("the gateway never reported SERVING");
    let bearer = Bearer::new(Some(&token)).expect("bearer");
    let mut certs =
        CertificateServiceClient::new(InterceptedService::new(channel.clone(), bearer.clone()));
    let mut reissues =
        ReissueServiceClient::new(InterceptedService::new(channel.clone(), bearer.clone()));
    let mut revocations = RevocationServiceClient::new(InterceptedService::new(channel, bearer));

    // A DV certificate without automatic validation: its revocation waits for a DNS proof,
    // so the validation service has work of its own to do in the trace.
    let issued = certs
        .issue_certificate(certflow_proto::v1::IssueCertificateRequest {
            validation_setup: Vec::new(),
            ..dns_auto_dv("acme", "shop.example.org")
        })
        .await
        .expect("issued")
        .into_inner()
        .certificate
        .expect("certificate");

    // The client starts the trace: its own trace id, its span the parent of the gateway's.
    let trace_id: [u8; 16] = *uuid::Uuid::new_v4().as_bytes();
    let client_span: [u8; 8] = uuid::Uuid::new_v4().as_bytes()[..8]
        .try_into()
        .expect("8 bytes");
    let traceparent = format!("00-{}-{}-01", hex(&trace_id), hex(&client_span));
    revocations
        .request_revocation(with_metadata(
            RequestRevocationRequest {
                request_id: request_id(),
                certificate_id: issued.id.clone(),
                reason: RevocationReason::Superseded as i32,
                description: String::new(),
                validation_method: ValidationMethod::Dns as i32,
            },
            &traceparent,
        ))
        .await
        .expect("revocation accepted");

    let challenge = eventually(Duration::from_secs(20), || {
        let mut certs = certs.clone();
        let id = issued.id.clone();
        async move {
            let cert = certs
                .get_certificate(GetCertificateRequest { id })
                .await
                .ok()?
                .into_inner()
                .certificate?;
            cert.revocation?.validation?.challenges.into_iter().next()
        }
    })
    .await
    .expect("challenge issued");
    dns.set_txt(&challenge.dns_record_name, &[&challenge.value])
        .await;
    eventually(Duration::from_secs(20), || {
        let mut certs = certs.clone();
        let id = issued.id.clone();
        async move {
            let cert = certs
                .get_certificate(GetCertificateRequest { id })
                .await
                .ok()?
                .into_inner()
                .certificate?;
            (cert.status == CertificateStatus::Revoked as i32).then_some(())
        }
    })
    .await
    .expect("revoked once the TXT record is there");

    // Every process that took part sent spans of that one trace.
    let wanted = [
        ("certd-gateway", "grpc"),
        ("certd-revocation", "request"),
        ("certd-validation", "react"),
        ("certd-validation", "validation.check"),
        ("certd-revocation", "react"),
        ("certd-projection", "projection.apply"),
    ];
    let spans = eventually(Duration::from_secs(20), || async {
        let spans = collector.spans_of(&trace_id);
        wanted
            .iter()
            .all(|(service, name)| {
                spans
                    .iter()
                    .any(|span| &span.service == service && &span.name == name)
            })
            .then_some(spans)
    })
    .await
    .unwrap_or_else(|| {
        let seen: BTreeSet<(String, String)> = collector
            .spans_of(&trace_id)
            .into_iter()
            .map(|span| (span.service, span.name))
            .collect();
        panic!("spans of the trace: {seen:?}; wanted {wanted:?}")
    });
    let gateway = spans
        .iter()
        .find(|span| span.service == "certd-gateway" && span.name == "grpc")
        .expect("gateway span");
    assert_eq!(
        gateway.parent_span_id, client_span,
        "the gateway continues the client's span"
    );
    assert_eq!(
        gateway.attributes.get("rpc").map(String::as_str),
        Some("certflow.v1.RevocationService/RequestRevocation")
    );
    assert_eq!(
        gateway.attributes.get("code").map(String::as_str),
        Some("OK")
    );
    let append = spans
        .iter()
        .find(|span| span.service == "certd-revocation" && span.name == "append")
        .expect("the revocation's append is in the trace");
    assert_eq!(append.attributes.get("certificate"), Some(&issued.id));
    assert!(append.attributes.contains_key("sequence"), "{append:?}");
    assert!(
        spans.iter().any(|span| span.service == "certd-validation"
            && span.name == "append"
            && span.attributes.get("certificate") == Some(&issued.id)),
        "the validation service's proof is appended in the trace"
    );

    // A reissue with a generated key is one trace too: the reissue service's requests to
    // the issuance service (the key, then the certificate) continue it.
    let original = certs
        .issue_certificate(dns_auto_dv("acme", "www.example.org"))
        .await
        .expect("issued")
        .into_inner()
        .certificate
        .expect("certificate");
    let reissue_trace: [u8; 16] = *uuid::Uuid::new_v4().as_bytes();
    let reissue_traceparent = format!("00-{}-{}-01", hex(&reissue_trace), hex(&client_span));
    reissues
        .request_reissue(with_metadata(
            RequestReissueRequest {
                request_id: request_id(),
                certificate_id: original.id.clone(),
                reason: "key rotation".into(),
                key: Some(request_reissue_request::Key::GeneratedKey(GeneratedKey {
                    key_algorithm: KeyAlgorithm::EccP256 as i32,
                    key_password: String::new(),
                })),
                ..Default::default()
            },
            &reissue_traceparent,
        ))
        .await
        .expect("reissue accepted");
    let in_issuance = |spans: &[ReceivedSpan], subject: &str| {
        spans
            .iter()
            .find(|span| {
                span.service == "certd-issuance"
                    && span.name == "request"
                    && span.attributes.get("subject").map(String::as_str) == Some(subject)
            })
            .cloned()
    };
    let traced = eventually(Duration::from_secs(20), || async {
        let spans = collector.spans_of(&reissue_trace);
        // Each process exports its spans in batches of its own: wait for all three.
        let requested = spans
            .iter()
            .any(|span| span.service == "certd-reissue" && span.name == "request");
        (requested
            && in_issuance(&spans, "certflow.cmd.issuance.generate-key").is_some()
            && in_issuance(&spans, "certflow.cmd.issuance.reissue").is_some())
        .then_some(())
    })
    .await;
    if traced.is_none() {
        let seen: BTreeSet<(String, String)> = collector
            .spans_of(&reissue_trace)
            .into_iter()
            .map(|span| (span.service, span.name))
            .collect();
        panic!("the reissue's request and its calls to issuance are not in its trace: {seen:?}")
    }

    // Prometheus: the gateway counted the call, the revocation service its events.
    let (status, gateway_text) = scrape(gateway_metrics, "/metrics").await;
    assert_eq!(status, 200);
    let revoked_calls = sample(
        &gateway_text,
        "certflow_grpc_requests_total",
        &[
            r#"rpc="certflow.v1.RevocationService/RequestRevocation""#,
            r#"code="OK""#,
        ],
    );
    assert_eq!(revoked_calls, Some(1.0), "{gateway_text}");
    assert!(
        sample(
            &gateway_text,
            "certflow_grpc_duration_seconds_count",
            &[r#"rpc="certflow.v1.CertificateService/IssueCertificate""#],
        )
        .is_some_and(|count| count >= 1.0),
        "{gateway_text}"
    );
    let (_, revocation_text) = scrape(revocation_metrics, "/metrics").await;
    for event in ["RevocationRequested", "CertificateRevoked"] {
        assert_eq!(
            sample(
                &revocation_text,
                "certflow_events_appended_total",
                &[&format!(r#"type="{event}""#)],
            ),
            Some(1.0),
            "{revocation_text}"
        );
    }
    let (ready, body) = scrape(revocation_metrics, "/readyz").await;
    assert_eq!(ready, 200, "{body}");

    // `--log-format json`: every line the gateway logged is one JSON object.
    let log = std::fs::read_to_string(dir.path().join("gateway.log")).expect("gateway log");
    assert!(log.lines().count() >= 3, "{log}");
    for line in log.lines() {
        let object: serde_json::Value = serde_json::from_str(line).expect("a JSON log line");
        assert!(
            object.get("level").is_some() && object.get("fields").is_some(),
            "{line}"
        );
    }

    // The same metrics went out over OTLP.
    let exported = eventually(Duration::from_secs(10), || async {
        let metrics = collector.metrics.lock().expect("lock").clone();
        metrics
            .contains(&(
                "certd-gateway".to_string(),
                "certflow.grpc.requests".to_string(),
            ))
            .then_some(metrics)
    })
    .await;
    assert!(
        exported.is_some(),
        "no certflow.grpc.requests from certd-gateway over OTLP"
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn health_is_not_serving_while_nats_is_down() {
    let mut certflow = Certflow::start_with(|config| {
        config.operator_listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    })
    .await
    .expect("start");
    let mut health = HealthClient::new(certflow.channel().await.expect("channel"));
    let status = |wanted: ServingStatus| {
        let health = health.clone();
        async move {
            eventually(Duration::from_secs(15), || {
                let mut health = health.clone();
                async move {
                    let status = health
                        .check(HealthCheckRequest {
                            service: "certflow.v1.RevocationService".into(),
                        })
                        .await
                        .ok()?
                        .into_inner()
                        .status;
                    (status == wanted as i32).then_some(())
                }
            })
            .await
            .is_some()
        }
    };
    assert!(status(ServingStatus::Serving).await, "serving at start");
    let issued_ok = certflow
        .certificates()
        .await
        .expect("client")
        .issue_certificate(dns_auto_dv("acme", "up.example.com"))
        .await;
    assert!(issued_ok.is_ok(), "{issued_ok:?}");

    let operator = certflow
        .running()
        .and_then(|running| running.operator_address)
        .expect("operator port");
    assert_eq!(scrape(operator.port(), "/readyz").await.0, 200);

    let started = Instant::now();
    certflow.nats_mut().kill();
    assert!(
        status(ServingStatus::NotServing).await,
        "NOT_SERVING once NATS is gone"
    );
    eprintln!(
        "NOT_SERVING {} ms after NATS died",
        started.elapsed().as_millis()
    );
    let (ready, report) = scrape(operator.port(), "/readyz").await;
    assert_eq!(ready, 503, "{report}");
    assert!(report.contains("NATS is unreachable"), "{report}");

    certflow.nats_mut().restart().expect("restart nats");
    assert!(
        status(ServingStatus::Serving).await,
        "SERVING again once NATS is back"
    );
    let overall = health
        .check(HealthCheckRequest::default())
        .await
        .expect("overall status")
        .into_inner()
        .status;
    assert_eq!(overall, ServingStatus::Serving as i32);
    let ready = eventually(Duration::from_secs(10), || async {
        (scrape(operator.port(), "/readyz").await.0 == 200).then_some(())
    })
    .await;
    assert!(ready.is_some(), "ready again once NATS is back");
}

/// The metric names an expression of `deploy/prometheus/alerts.yml` reads.
fn metrics_the_alert_rules_read() -> BTreeSet<String> {
    let rules = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/prometheus/alerts.yml"
    ))
    .expect("alerts.yml");
    let mut names = BTreeSet::new();
    for line in rules
        .lines()
        .filter(|line| !line.contains("summary:") && !line.contains("description:"))
    {
        let mut rest = line;
        while let Some(start) = rest.find("certflow_") {
            let name: String = rest[start..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            rest = &rest[start + name.len()..];
            names.insert(name);
        }
    }
    names
}

/// Every metric an alert rule reads is exported by a running certd: an alert on a series
/// that never exists would never fire.
#[tokio::test]
async fn every_metric_the_alert_rules_read_is_exported() {
    let nats = NatsServer::start().expect("nats");
    let ground = support::flows::Ground::new().await;
    let metrics = support::free_port();
    let gateway_port = support::free_port();
    let mut args = ground.certd_args(&nats.url());
    let at = args
        .iter()
        .position(|arg| arg == "--metrics-listen")
        .expect("metrics flag");
    args[at + 1] = format!("127.0.0.1:{metrics}");
    args.extend(
        [
            "--data-dir",
            &ground.dir.path().join("data").display().to_string(),
            "--listen",
            &format!("127.0.0.1:{gateway_port}"),
        ]
        .map(String::from),
    );
    support::provision(&args, &[]);
    let log = std::fs::File::create(ground.dir.path().join("all.log")).expect("log file");
    let child = Command::new(env!("CARGO_BIN_EXE_certd"))
        .args(&args)
        .arg("all")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdout(Stdio::from(log.try_clone().expect("log file")))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawn certd");
    let _processes = Processes(vec![("all".to_string(), child)]);
    let channel = support::flows::connect(&format!("http://127.0.0.1:{gateway_port}")).await;
    let clients = support::flows::clients(channel, &ground.signing_key);
    // One call, so the gRPC series exist.
    let _ = support::flows::answered(|| {
        let mut certs = clients.certs.clone();
        async move {
            certs
                .issue_certificate(support::dns_auto_dv("acme", "metrics.example.org"))
                .await
        }
    })
    .await
    .expect("issued");

    let wanted = metrics_the_alert_rules_read();
    assert!(wanted.len() >= 10, "the rules read {wanted:?}");
    let absent = |exposition: &str| -> Vec<String> {
        let exported: BTreeSet<&str> = exposition
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.split(['{', ' ']).next())
            .collect();
        wanted
            .iter()
            .filter(|name| !exported.contains(name.as_str()))
            .cloned()
            .collect()
    };
    // The gauges are recorded on their schedules (backlogs every 5 s, open validations
    // every 15 s once the projection has caught up).
    let all_there = eventually(Duration::from_secs(60), || async {
        absent(&scrape(metrics, "/metrics").await.1)
            .is_empty()
            .then_some(())
    })
    .await;
    if all_there.is_none() {
        let (_, exposition) = scrape(metrics, "/metrics").await;
        panic!(
            "the alert rules read metrics certd does not export: {:?}",
            absent(&exposition)
        );
    }
}
