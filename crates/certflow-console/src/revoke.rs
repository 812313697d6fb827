//! The revocation request, and then the step the certificate's path needs (REV-10): none;
//! a DNS record or file to publish before the deadline, with "Validate now"; a stamped
//! document to download, stamp and upload; a reviewer's decision.

use askama::Template;
use axum::extract::{Multipart, Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use certflow_proto::v1::{
    Certificate, CertificateStatus, CheckValidationRequest, DomainValidation,
    GetDocumentTemplateRequest, ProbeResult, RequestRevocationRequest, RevocationPath,
    UploadRevocationDocumentRequest, ValidationMethod,
};
use serde::Deserialize;

use crate::Console;
use crate::gateway::{Refusal, as_caller};
use crate::pages::{fetch, fetch_or_bare, refused_page, request_id};
use crate::session::{Caller, Nothing, Posted};
use crate::view;
use crate::web::{self, Chrome};

/// REV-12: the largest stamped document, in bytes.
pub(crate) const MAX_DOCUMENT_BYTES: usize = certflow_domain::review::MAX_DOCUMENT_BYTES as usize;

#[derive(Template)]
#[template(path = "revoke.html")]
struct RevokePage {
    chrome: Chrome,
    c: Certificate,
    domains: String,
    brand: &'static str,
    level: &'static str,
    reasons: Vec<view::Choice>,
    description: String,
    method: String,
    request_id: String,
    refusal: Option<Refusal>,
}

/// The revocation form: reason, description, and how domains will be proven.
pub(crate) async fn form(
    State(console): State<Console>,
    caller: Caller,
    Path(id): Path<String>,
) -> Response {
    match fetch(&console, &caller, &id).await {
        Ok(certificate) => render_form(&caller, certificate, None, None),
        Err(response) => response,
    }
}

fn render_form(
    caller: &Caller,
    certificate: Certificate,
    submitted: Option<RevokeForm>,
    refusal: Option<Refusal>,
) -> Response {
    let t = caller.texts();
    let submitted = submitted.unwrap_or_default();
    let page = RevokePage {
        chrome: caller.chrome(t.revoke_title),
        domains: certificate.domains.join(", "),
        brand: view::brand(certificate.brand),
        level: view::level(certificate.level),
        c: certificate,
        reasons: view::choices(&view::revocation_reasons(t), &submitted.reason),
        description: submitted.description,
        method: if submitted.method.is_empty() {
            "dns".into()
        } else {
            submitted.method
        },
        // A refused form keeps its request id: sending it again is the same request.
        request_id: if submitted.request_id.is_empty() {
            request_id()
        } else {
            submitted.request_id
        },
        refusal,
    };
    web::render_answer(&page, page.refusal.is_some())
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RevokeForm {
    #[serde(default)]
    request_id: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    method: String,
}

/// Sends the revocation request; on success, the page of its next step.
pub(crate) async fn request(
    State(console): State<Console>,
    Path(id): Path<String>,
    Posted { caller, form }: Posted<RevokeForm>,
) -> Response {
    let t = caller.texts();
    let Some(reason) = view::parse_reason(&form.reason) else {
        let refusal = Refusal::local(t.choose_reason, "INVALID_REVOCATION_REASON");
        let certificate = fetch_or_bare(&console, &caller, &id).await;
        return render_form(&caller, certificate, Some(form), Some(refusal));
    };
    let method = match form.method.as_str() {
        "file" => ValidationMethod::File,
        _ => ValidationMethod::Dns,
    };
    let request = RequestRevocationRequest {
        request_id: form.request_id.clone(),
        certificate_id: id.clone(),
        reason: reason as i32,
        description: form.description.clone(),
        validation_method: method as i32,
    };
    match console
        .gateway
        .revocations()
        .request_revocation(as_caller(&caller, request))
        .await
    {
        Ok(_) => Redirect::to(&format!("/certificates/{id}/revocation")).into_response(),
        Err(status) => {
            let refusal = Refusal::from_status(&status, t).resent_by_the_page();
            let certificate = fetch_or_bare(&console, &caller, &id).await;
            render_form(&caller, certificate, Some(form), Some(refusal))
        }
    }
}

/// One challenge as the page shows it: what to publish where.
#[derive(Debug)]
pub(crate) struct ChallengeView {
    pub domain: String,
    pub automatic: bool,
    pub dns: bool,
    pub record_name: String,
    pub file_url: String,
    pub value: String,
    pub validated: bool,
}

/// The challenges of a validation as the page lists them.
pub(crate) fn challenge_views(validation: &DomainValidation) -> Vec<ChallengeView> {
    validation
        .challenges
        .iter()
        .map(|c| ChallengeView {
            domain: c.domain.clone(),
            automatic: c.method == ValidationMethod::DnsAuto as i32,
            dns: c.method != ValidationMethod::File as i32,
            record_name: c.dns_record_name.clone(),
            file_url: c.file_url.clone(),
            value: c.value.clone(),
            validated: c.validated_at.is_some(),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "revocation.html")]
struct ProgressPage {
    chrome: Chrome,
    c: Certificate,
    domains: String,
    status: &'static str,
    status_class: &'static str,
    revoked: bool,
    pending: bool,
    path: &'static str,
    reason: &'static str,
    requested_at: String,
    revoked_at: String,
    challenges: Vec<ChallengeView>,
    deadline: String,
    deadline_epoch: i64,
    needs_document: bool,
    document_formats: String,
    document_accept: String,
    max_document_bytes: usize,
    document_uploaded: String,
    in_review: bool,
    approvals: Vec<(String, String)>,
    approvals_needed: u32,
    rejection: Option<(String, String)>,
    failed: Option<&'static str>,
    probes: Vec<ProbeResult>,
    checked: bool,
    upload_request_id: String,
    refusal: Option<Refusal>,
}

/// Where a revocation stands, and the step it waits for.
pub(crate) async fn progress(
    State(console): State<Console>,
    caller: Caller,
    Path(id): Path<String>,
) -> Response {
    match fetch(&console, &caller, &id).await {
        Ok(certificate) => render_progress(&caller, certificate, Vec::new(), false, None),
        Err(response) => response,
    }
}

fn render_progress(
    caller: &Caller,
    certificate: Certificate,
    probes: Vec<ProbeResult>,
    checked: bool,
    refusal: Option<Refusal>,
) -> Response {
    let t = caller.texts();
    let status = CertificateStatus::try_from(certificate.status).unwrap_or_default();
    let revocation = certificate.revocation.clone().unwrap_or_default();
    let path = RevocationPath::try_from(revocation.path).unwrap_or_default();
    let validation = revocation.validation.clone().unwrap_or_default();
    let challenges = challenge_views(&validation);
    let review = revocation.review.clone().unwrap_or_default();
    let pending = status == CertificateStatus::RevocationPending;
    let failed = certificate
        .failed_revocation
        .as_ref()
        .filter(|_| status == CertificateStatus::Issued)
        .map(|f| match f.failure {
            1 => t.failed_validation_expired,
            _ => t.failed_review_rejected,
        });
    let page = ProgressPage {
        chrome: caller.chrome(t.revocation_title),
        domains: certificate.domains.join(", "),
        status: view::status(t, certificate.status),
        status_class: view::status_class(certificate.status),
        revoked: status == CertificateStatus::Revoked,
        pending,
        path: view::path(t, revocation.path),
        reason: view::reason(t, revocation.reason),
        requested_at: view::when(revocation.requested_at.as_ref()),
        revoked_at: view::when(revocation.revoked_at.as_ref()),
        challenges,
        deadline: view::when(validation.deadline.as_ref()),
        deadline_epoch: view::epoch(validation.deadline.as_ref()),
        needs_document: pending
            && path == RevocationPath::ManualReviewAfterDocument
            && revocation.document.is_none(),
        document_formats: view::document_formats(certificate.brand),
        document_accept: view::document_accept(certificate.brand),
        max_document_bytes: MAX_DOCUMENT_BYTES,
        document_uploaded: revocation
            .document
            .as_ref()
            .map(|d| view::when(d.uploaded_at.as_ref()))
            .unwrap_or_default(),
        in_review: revocation.review.is_some(),
        approvals: review
            .approvals
            .iter()
            .map(|v| (v.reviewer.clone(), v.comment.clone()))
            .collect(),
        approvals_needed: review.approvals_needed,
        rejection: review
            .rejection
            .as_ref()
            .map(|v| (v.reviewer.clone(), v.comment.clone())),
        failed,
        probes,
        checked,
        upload_request_id: request_id(),
        refusal,
        c: certificate,
    };
    web::render_answer(&page, page.refusal.is_some())
}

/// "Validate now": the validation service probes every open challenge at once (of a
/// revocation or of a reissue), and the page it was asked from shows what each probe saw.
pub(crate) async fn check(
    State(console): State<Console>,
    Path(id): Path<String>,
    Posted { caller, .. }: Posted<Nothing>,
) -> Response {
    let t = caller.texts();
    let checked = console
        .gateway
        .revocations()
        .check_validation(as_caller(
            &caller,
            CheckValidationRequest {
                certificate_id: id.clone(),
            },
        ))
        .await;
    let (certificate, probes, refusal) = match checked {
        Ok(response) => {
            let response = response.into_inner();
            let certificate = match response.certificate {
                Some(certificate) => certificate,
                None => match fetch(&console, &caller, &id).await {
                    Ok(certificate) => certificate,
                    Err(page) => return page,
                },
            };
            (certificate, Some(response.probes), None)
        }
        Err(status) => match fetch(&console, &caller, &id).await {
            Ok(certificate) => (certificate, None, Some(Refusal::from_status(&status, t))),
            Err(page) => return page,
        },
    };
    let checked = probes.is_some();
    let probes = probes.unwrap_or_default();
    let revocation_requested = certificate
        .revocation
        .as_ref()
        .is_some_and(|r| r.requested_at.is_some());
    if certificate.pending_reissue.is_some() || !revocation_requested {
        crate::pages::render_certificate(&console, &caller, certificate, probes, checked, refusal)
            .await
    } else {
        render_progress(&caller, certificate, probes, checked, refusal)
    }
}

/// The printable template of the stamped document the revocation needs.
pub(crate) async fn template(
    State(console): State<Console>,
    caller: Caller,
    Path(id): Path<String>,
) -> Response {
    let request = GetDocumentTemplateRequest { certificate_id: id };
    match console
        .gateway
        .reviews()
        .get_document_template(as_caller(&caller, request))
        .await
    {
        Ok(response) => {
            let response = response.into_inner();
            web::attachment(&response.file_name, "application/pdf", response.pdf)
        }
        Err(status) => refused_page(&caller, Refusal::from_status(&status, caller.texts())),
    }
}

/// Uploads the stamped document. The body is bounded before it is read (the router's
/// limit), and the file is read a chunk at a time and refused as soon as it passes
/// REV-12's size, before the gateway judges its size and format again.
pub(crate) async fn upload_document(
    State(console): State<Console>,
    caller: Caller,
    Path(id): Path<String>,
    mut multipart: Multipart,
) -> Response {
    let t = caller.texts();
    let mut csrf = String::new();
    let mut upload_request_id = String::new();
    let mut file_name = String::new();
    let mut content = Vec::new();
    let mut too_large = false;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            // The body passed the router's bound, or was cut off.
            Err(_) => {
                too_large = true;
                break;
            }
        };
        match field.name().unwrap_or_default() {
            "csrf" => csrf = field.text().await.unwrap_or_default(),
            "request_id" => upload_request_id = field.text().await.unwrap_or_default(),
            "document" => {
                file_name = field.file_name().unwrap_or("document").to_string();
                let mut field = field;
                loop {
                    match field.chunk().await {
                        Ok(Some(chunk)) => {
                            if content.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                                too_large = true;
                                break;
                            }
                            content.extend_from_slice(&chunk);
                        }
                        Ok(None) => break,
                        Err(_) => {
                            too_large = true;
                            break;
                        }
                    }
                }
            }
            _ => {}
        }
        if too_large {
            break;
        }
    }
    if !too_large && let Some(refused) = caller.csrf_refusal(&csrf) {
        return refused;
    }
    let certificate = match fetch(&console, &caller, &id).await {
        Ok(certificate) => certificate,
        Err(page) => return page,
    };
    if too_large {
        let refusal = Refusal::local(t.document_too_large, "DOCUMENT_TOO_LARGE");
        return render_progress(&caller, certificate, Vec::new(), false, Some(refusal));
    }
    if content.is_empty() {
        let refusal = Refusal::local(t.document_missing, "INVALID_ARGUMENT");
        return render_progress(&caller, certificate, Vec::new(), false, Some(refusal));
    }
    let request = UploadRevocationDocumentRequest {
        request_id: upload_request_id,
        certificate_id: id.clone(),
        file_name,
        content,
    };
    match console
        .gateway
        .reviews()
        .upload_revocation_document(as_caller(&caller, request))
        .await
    {
        Ok(_) => Redirect::to(&format!("/certificates/{id}/revocation")).into_response(),
        Err(status) => {
            let refusal = Refusal::from_status(&status, t);
            render_progress(&caller, certificate, Vec::new(), false, Some(refusal))
        }
    }
}
