//! Recording, uploading and reading certificates through the gateway; health and reflection.

use certflow_proto::v1::{
    Brand, CertificateSource, CertificateStatus, GetCertificateHistoryRequest,
    GetCertificateRequest, IssueCertificateRequest, KeyAlgorithm, ListCertificatesRequest,
    RequestRevocationRequest, RevocationReason, UploadCertificateRequest,
};
use certflow_testkit::{Certflow, eventually};
use tonic::{Code, Request};

use crate::support::{
    self, CATCH_UP, dns_auto_dv, issue, reason, request_id, started, wait_for_status,
};

#[tokio::test]
async fn issued_certificate_reads_back_with_its_history() {
    let certflow = Certflow::start().await.expect("start");
    let mut certs = certflow.certificates().await.expect("client");
    let mut request = Request::new(IssueCertificateRequest {
        domains: vec!["shop.example.com".into(), "*.shop.example.com".into()],
        ..dns_auto_dv("acme", "shop.example.com")
    });
    request
        .metadata_mut()
        .insert("x-correlation-id", "order-4711".parse().expect("ascii"));
    let issued = certs
        .issue_certificate(request)
        .await
        .expect("issued")
        .into_inner()
        .certificate
        .expect("certificate");
    assert_eq!(issued.source, CertificateSource::Platform as i32);
    assert_eq!(issued.domains, ["shop.example.com", "*.shop.example.com"]);

    let seen = wait_for_status(&mut certs, &issued.id, CertificateStatus::Issued).await;
    assert_eq!(seen, issued);

    let history = certs
        .get_certificate_history(GetCertificateHistoryRequest {
            id: issued.id.clone(),
        })
        .await
        .expect("history")
        .into_inner()
        .events;
    assert_eq!(history.len(), 1);
    let event = &history[0];
    assert_eq!(event.event_type, "CertificateIssued");
    assert_eq!(event.correlation_id, "order-4711");
    assert!(!event.actor_subject.is_empty());
    assert!(!event.command_id.is_empty());
    assert!(event.recorded_at.is_some());
}

#[tokio::test]
async fn list_pages_and_filters_by_status() {
    let (_certflow, mut certs, mut revocations) = started().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let cert = issue(
            &mut certs,
            dns_auto_dv("acme", &format!("h{n}.example.com")),
        )
        .await;
        ids.push(cert.id);
    }
    issue(&mut certs, dns_auto_dv("globex", "globex.example.com")).await;
    revocations
        .request_revocation(RequestRevocationRequest {
            request_id: request_id(),
            certificate_id: ids[0].clone(),
            reason: RevocationReason::Superseded as i32,
            description: String::new(),
            validation_method: 0,
        })
        .await
        .expect("revoked");
    wait_for_status(&mut certs, &ids[0], CertificateStatus::Revoked).await;
    for id in &ids[1..] {
        wait_for_status(&mut certs, id, CertificateStatus::Issued).await;
    }

    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = certs
            .list_certificates(ListCertificatesRequest {
                account: "acme".into(),
                page_size: 2,
                page_token,
                ..Default::default()
            })
            .await
            .expect("page")
            .into_inner();
        assert!(page.certificates.len() <= 2);
        seen.extend(page.certificates.into_iter().map(|c| c.id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    seen.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(seen, expected);

    let revoked = certs
        .list_certificates(ListCertificatesRequest {
            status: CertificateStatus::Revoked as i32,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .certificates;
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].id, ids[0]);
}

#[tokio::test]
async fn upload_parses_a_real_certificate() {
    let certflow = Certflow::start().await.expect("start");
    let mut certs = certflow.certificates().await.expect("client");
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let pem = rcgen::CertificateParams::new(vec![
        "www.example.net".to_string(),
        "example.net".to_string(),
    ])
    .expect("params")
    .self_signed(&key)
    .expect("certificate")
    .pem();
    let cert = certs
        .upload_certificate(UploadCertificateRequest {
            request_id: request_id(),
            account: "acme".into(),
            pem,
            private_key_pem: String::new(),
        })
        .await
        .expect("uploaded")
        .into_inner()
        .certificate
        .expect("certificate");
    assert_eq!(cert.source, CertificateSource::Uploaded as i32);
    assert_eq!(cert.key_algorithm, KeyAlgorithm::EccP256 as i32);
    assert_eq!(cert.domains, ["www.example.net", "example.net"]);
    assert_eq!(cert.public_key_sha256.len(), 64);
}

#[tokio::test]
async fn gen5_bad_input_is_refused_and_changes_nothing() {
    let certflow = Certflow::start().await.expect("start");
    let mut certs = certflow.certificates().await.expect("client");
    let bad_issues = [
        IssueCertificateRequest {
            brand: 99,
            ..dns_auto_dv("acme", "a.example.com")
        },
        IssueCertificateRequest {
            brand: Brand::Unspecified as i32,
            ..dns_auto_dv("acme", "a.example.com")
        },
        IssueCertificateRequest {
            level: 7,
            ..dns_auto_dv("acme", "a.example.com")
        },
        IssueCertificateRequest {
            key_algorithm: 0,
            ..dns_auto_dv("acme", "a.example.com")
        },
        IssueCertificateRequest {
            domains: vec![],
            validation_setup: vec![],
            ..dns_auto_dv("acme", "a.example.com")
        },
        IssueCertificateRequest {
            domains: vec!["bad domain".into()],
            validation_setup: vec![],
            ..dns_auto_dv("acme", "a.example.com")
        },
        IssueCertificateRequest {
            account: String::new(),
            ..dns_auto_dv("acme", "a.example.com")
        },
        IssueCertificateRequest {
            request_id: String::new(),
            ..dns_auto_dv("acme", "a.example.com")
        },
        IssueCertificateRequest {
            domains: vec!["x.example.com".into(); 300],
            validation_setup: vec![],
            ..dns_auto_dv("acme", "a.example.com")
        },
    ];
    for request in bad_issues {
        let err = certs
            .issue_certificate(request.clone())
            .await
            .expect_err("refused");
        assert_eq!(err.code(), Code::InvalidArgument, "{request:?}");
        reason(&err);
    }
    for pem in [
        "",
        "not a certificate",
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    ] {
        let err = certs
            .upload_certificate(UploadCertificateRequest {
                request_id: request_id(),
                account: "acme".into(),
                pem: pem.into(),
                private_key_pem: String::new(),
            })
            .await
            .expect_err("refused");
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(reason(&err), "INVALID_CERTIFICATE");
    }
    for id in ["", "has space", "unknown-id"] {
        let err = certs
            .get_certificate(GetCertificateRequest { id: id.into() })
            .await
            .expect_err("refused");
        assert!(
            matches!(err.code(), Code::InvalidArgument | Code::NotFound),
            "{id}: {err:?}"
        );
    }
    let err = certs
        .list_certificates(ListCertificatesRequest {
            status: 1234,
            ..Default::default()
        })
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::InvalidArgument);

    // Nothing was recorded: a good certificate issued afterwards is the only one listed.
    let good = issue(&mut certs, dns_auto_dv("acme", "good.example.com")).await;
    wait_for_status(&mut certs, &good.id, CertificateStatus::Issued).await;
    let all = certs
        .list_certificates(ListCertificatesRequest::default())
        .await
        .expect("list")
        .into_inner()
        .certificates;
    assert_eq!(all.len(), 1);
}

#[tokio::test]
async fn health_and_reflection_v1_and_v1alpha_are_served() {
    use tokio_stream::StreamExt;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
    use tonic_reflection::pb::{v1, v1alpha};

    let certflow = Certflow::start().await.expect("start");
    let channel = certflow.channel().await.expect("channel");

    let status = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "certflow.v1.RevocationService".into(),
        })
        .await
        .expect("health")
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);

    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut responses = v1::server_reflection_client::ServerReflectionClient::new(channel.clone())
        .server_reflection_info(tokio_stream::once(request))
        .await
        .expect("reflection v1")
        .into_inner();
    let Some(Ok(v1::ServerReflectionResponse {
        message_response:
            Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)),
        ..
    })) = responses.next().await
    else {
        panic!("no service list from reflection v1");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "certflow.v1.CertificateService",
        "certflow.v1.RevocationService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }

    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                "certflow.v1.RevocationService".into(),
            ),
        ),
    };
    let mut responses = v1alpha::server_reflection_client::ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::once(request))
        .await
        .expect("reflection v1alpha")
        .into_inner();
    let found = matches!(
        responses.next().await,
        Some(Ok(v1alpha::ServerReflectionResponse {
            message_response: Some(
                v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(_)
            ),
            ..
        }))
    );
    assert!(found, "v1alpha reflection describes the revocation service");
}

#[tokio::test]
async fn a_missing_service_is_unavailable_not_a_hang() {
    let mut certflow = Certflow::start().await.expect("start");
    // Stop every service, then run a gateway alone on the same NATS.
    certflow.stop_services().await;
    let running = certd::start(
        certflow.config().expect("config"),
        &[certd::Service::Gateway],
    )
    .await
    .expect("gateway alone");
    let address = running.gateway_address.expect("address");
    let channel = tonic::transport::Channel::from_shared(format!("http://{address}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let certs =
        certflow_proto::v1::certificate_service_client::CertificateServiceClient::with_interceptor(
            channel,
            certflow_testkit::Bearer::new(Some(&certflow.admin_token())).expect("token"),
        );
    let err = eventually(CATCH_UP, || {
        let mut certs = certs.clone();
        async move {
            certs
                .get_certificate(GetCertificateRequest { id: "x".into() })
                .await
                .err()
                .filter(|e| e.code() == Code::Unavailable)
        }
    })
    .await
    .expect("UNAVAILABLE while no projection runs");
    assert_eq!(reason(&err), "SERVICE_UNAVAILABLE");
    running.stop().await;
}

/// Every page of the caller's certificates, 500 at a time: the ids and how many pages.
async fn all_pages(
    certs: &certflow_proto::v1::certificate_service_client::CertificateServiceClient<
        certflow_testkit::Authed,
    >,
) -> (Vec<String>, usize) {
    let mut certs = certs.clone();
    let (mut seen, mut pages, mut token) = (Vec::new(), 0, String::new());
    loop {
        let page = certs
            .list_certificates(ListCertificatesRequest {
                page_size: 500,
                page_token: token,
                ..Default::default()
            })
            .await
            .expect("a page, not a timeout")
            .into_inner();
        pages += 1;
        seen.extend(page.certificates.into_iter().map(|c| c.id));
        if page.next_page_token.is_empty() || pages > 10 {
            return (seen, pages);
        }
        token = page.next_page_token;
    }
}

#[tokio::test]
async fn a_full_page_of_large_certificates_fits_in_one_reply() {
    // 500 certificates with their PEMs are more than NATS carries in one message (1 MiB):
    // the page stops short by size and the token carries on from there.
    let certflow = Certflow::start_with(|config| config.gateway.commands_per_second = 10_000)
        .await
        .expect("start");
    let certs = certflow.certificates().await.expect("client");
    let mut issued = support::issue_many(&certs, "acme", "page", 450, 16).await;
    let (seen, pages) = eventually(CATCH_UP, || async {
        let (seen, pages) = all_pages(&certs).await;
        (seen.len() >= issued.len()).then_some((seen, pages))
    })
    .await
    .expect("every certificate listed");
    assert!(pages >= 2, "450 large certificates take more than one page");
    let mut got = seen.clone();
    got.sort();
    got.dedup();
    assert_eq!(got.len(), seen.len(), "no certificate on two pages");
    issued.sort();
    assert_eq!(got, issued);
}

/// A query sees every command acknowledged before it was asked: a certificate just issued
/// is found, and one just revoked reads as revoked, at once and every time, though the
/// projection follows the log a moment behind.
#[tokio::test]
async fn a_query_sees_what_was_acknowledged_before_it() {
    let certflow = support::started_without_rate_limits().await;
    let mut certs = certflow.certificates().await.expect("client");
    let mut revocations = certflow.revocations().await.expect("client");
    let reader = certs.clone();
    let status_now = |id: String| {
        let mut certs = reader.clone();
        async move {
            certs
                .get_certificate(GetCertificateRequest { id: id.clone() })
                .await
                .unwrap_or_else(|status| panic!("{id} not found at once: {status:?}"))
                .into_inner()
                .certificate
                .expect("certificate")
                .status
        }
    };
    // Enough rounds that a projection a moment behind is caught: without the wait, two of
    // five runs of 30 rounds failed.
    for n in 0..100 {
        let issued = issue(
            &mut certs,
            dns_auto_dv("acme", &format!("ryw{n}.example.com")),
        )
        .await;
        assert_eq!(
            status_now(issued.id.clone()).await,
            CertificateStatus::Issued as i32
        );
        revocations
            .request_revocation(RequestRevocationRequest {
                request_id: request_id(),
                certificate_id: issued.id.clone(),
                reason: RevocationReason::Superseded as i32,
                description: String::new(),
                validation_method: 0,
            })
            .await
            .expect("revoked");
        let history = support::history_types(&certs, &issued.id).await;
        assert!(
            history.iter().any(|t| t == "CertificateRevoked"),
            "revocation {n} not in the history at once"
        );
        assert_eq!(
            status_now(issued.id).await,
            CertificateStatus::Revoked as i32,
            "revocation {n}"
        );
    }
}

/// A list shows every certificate acknowledged before it was asked, at once and every
/// time: the projection waits for the log as it stood when the list came in.
#[tokio::test]
async fn a_list_shows_every_certificate_acknowledged_before_it() {
    let certflow = support::started_without_rate_limits().await;
    let mut certs = certflow.certificates().await.expect("client");
    let mut issued = Vec::new();
    for n in 0..60 {
        issued.push(
            issue(
                &mut certs,
                dns_auto_dv("acme", &format!("listed{n}.example.com")),
            )
            .await
            .id,
        );
        let mut listed: Vec<String> = support::list_all(&certs)
            .await
            .expect("the list is served")
            .into_iter()
            .map(|c| c.id)
            .collect();
        listed.sort();
        let mut expected = issued.clone();
        expected.sort();
        assert_eq!(
            listed, expected,
            "round {n}: the list lacks what was issued"
        );
    }
}
