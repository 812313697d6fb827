//! My certificates, one certificate, its downloads and its deletion.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use certflow_proto::v1::{
    Certificate, DeleteCertificateRequest, DownloadCertificateRequest, DownloadFormat,
    GetCertificateHistoryRequest, GetCertificateRequest, ListCertificatesRequest, ProbeResult,
};
use serde::Deserialize;

use crate::Console;
use crate::gateway::{Refusal, as_caller};
use crate::revoke::{ChallengeView, challenge_views};
use crate::session::{Caller, Posted};
use crate::view::{self, Actions, Row};
use crate::web::{self, Chrome};

pub(crate) async fn home() -> Redirect {
    Redirect::to("/certificates")
}

/// Certificates per page of the list.
const PAGE_SIZE: u32 = 20;

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    page: String,
}

#[derive(Template)]
#[template(path = "certificates.html")]
struct ListPage {
    chrome: Chrome,
    filters: Vec<view::Choice>,
    status: String,
    rows: Vec<Row>,
    next_page: String,
    refusal: Option<Refusal>,
}

/// My certificates: a status filter and a page at a time.
pub(crate) async fn certificates(
    State(console): State<Console>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> Response {
    let t = caller.texts();
    let filter = view::STATUS_FILTERS
        .iter()
        .find(|(name, _)| *name == query.status);
    let request = ListCertificatesRequest {
        status: filter.map_or(0, |(_, status)| *status as i32),
        page_size: PAGE_SIZE,
        page_token: query.page.clone(),
        account: String::new(),
    };
    let (rows, next_page, refusal) = match console
        .gateway
        .certificates()
        .list_certificates(as_caller(&caller, request))
        .await
    {
        Ok(response) => {
            let response = response.into_inner();
            let rows = response
                .certificates
                .iter()
                .map(|c| Row::of(t, c))
                .collect();
            (rows, response.next_page_token, None)
        }
        Err(status) => (
            Vec::new(),
            String::new(),
            Some(Refusal::from_status(&status, t)),
        ),
    };
    let options: Vec<(&'static str, &'static str)> = view::STATUS_FILTERS
        .iter()
        .map(|(name, status)| (*name, view::status(t, *status as i32)))
        .collect();
    let filters = view::choices(&options, &query.status);
    web::render(&ListPage {
        chrome: caller.chrome(t.my_certificates),
        filters,
        status: filter.map_or(String::new(), |(name, _)| (*name).to_string()),
        rows,
        next_page,
        refusal,
    })
}

/// One entry of a certificate's history as the timeline shows it.
#[derive(Debug)]
pub(crate) struct Moment {
    pub at: String,
    pub who: String,
    pub what: String,
    pub event: String,
}

#[derive(Template)]
#[template(path = "certificate.html")]
struct CertificatePage {
    chrome: Chrome,
    c: Certificate,
    row: Row,
    key_algorithm: &'static str,
    issued_at: String,
    not_before: String,
    history: Vec<Moment>,
    actions: Actions,
    revocation_requested: bool,
    delete_request_id: String,
    refusal: Option<Refusal>,
    /// A reissue in progress: its new certificate, and what it waits for.
    reissue: Option<ReissueProgress>,
    challenges: Vec<ChallengeView>,
    deadline: String,
    deadline_epoch: i64,
    probes: Vec<ProbeResult>,
    checked: bool,
}

/// A reissue in progress as the original's page shows it.
#[derive(Debug)]
pub(crate) struct ReissueProgress {
    pub new_certificate_id: String,
    pub domains: String,
    pub requested_at: String,
    pub needs_validation: bool,
    pub needs_review: bool,
    pub approvals: usize,
    pub approvals_needed: u32,
}

/// A certificate's details, chain, history and downloads, and a reissue in progress.
pub(crate) async fn certificate(
    State(console): State<Console>,
    caller: Caller,
    Path(id): Path<String>,
) -> Response {
    match fetch(&console, &caller, &id).await {
        Ok(certificate) => {
            render_certificate(&console, &caller, certificate, Vec::new(), false, None).await
        }
        Err(response) => response,
    }
}

/// The certificate page, with what "Validate now" saw when it was just used.
pub(crate) async fn render_certificate(
    console: &Console,
    caller: &Caller,
    certificate: Certificate,
    probes: Vec<ProbeResult>,
    checked: bool,
    refusal: Option<Refusal>,
) -> Response {
    let t = caller.texts();
    let history = console
        .gateway
        .certificates()
        .get_certificate_history(as_caller(
            caller,
            GetCertificateHistoryRequest {
                id: certificate.id.clone(),
            },
        ))
        .await
        .map(|r| r.into_inner().events)
        .unwrap_or_default()
        .into_iter()
        .map(|event| Moment {
            at: view::when(event.recorded_at.as_ref()),
            who: if event.actor_subject.is_empty() {
                t.system.to_string()
            } else {
                event.actor_subject
            },
            what: event.summary,
            event: event.event_type,
        })
        .collect();
    let pending = certificate.pending_reissue.clone();
    let validation = pending
        .as_ref()
        .and_then(|p| p.validation.clone())
        .unwrap_or_default();
    let reissue = pending.map(|p| {
        let review = p.review.unwrap_or_default();
        ReissueProgress {
            new_certificate_id: p.new_certificate_id,
            domains: p.domains.join(", "),
            requested_at: view::when(p.requested_at.as_ref()),
            needs_validation: p.needs_validation,
            needs_review: p.needs_review,
            approvals: review.approvals.len(),
            approvals_needed: review.approvals_needed,
        }
    });
    web::render(&CertificatePage {
        chrome: caller.chrome(t.certificate),
        row: Row::of(t, &certificate),
        key_algorithm: view::key_algorithm(certificate.key_algorithm),
        issued_at: view::when(certificate.issued_at.as_ref()),
        not_before: view::when(certificate.not_before.as_ref()),
        actions: Actions::of(&certificate),
        revocation_requested: certificate
            .revocation
            .as_ref()
            .is_some_and(|r| r.requested_at.is_some()),
        delete_request_id: request_id(),
        reissue,
        challenges: challenge_views(&validation),
        deadline: view::when(validation.deadline.as_ref()),
        deadline_epoch: view::epoch(validation.deadline.as_ref()),
        probes,
        checked,
        c: certificate,
        history,
        refusal,
    })
}

/// The certificate `id` as the caller may see it, or why not.
pub(crate) async fn lookup(
    console: &Console,
    caller: &Caller,
    id: &str,
) -> Result<Certificate, Refusal> {
    let t = caller.texts();
    match console
        .gateway
        .certificates()
        .get_certificate(as_caller(
            caller,
            GetCertificateRequest { id: id.to_string() },
        ))
        .await
    {
        Ok(response) => response
            .into_inner()
            .certificate
            .ok_or_else(|| Refusal::local(t.not_found, "NOT_FOUND")),
        Err(status) => Err(Refusal::from_status(&status, t)),
    }
}

/// The certificate `id` as the caller may see it, or the page that says why not.
pub(crate) async fn fetch(
    console: &Console,
    caller: &Caller,
    id: &str,
) -> Result<Certificate, Response> {
    lookup(console, caller, id)
        .await
        .map_err(|refusal| refused_page(caller, refusal))
}

/// The certificate `id` for a form shown again after its call was refused; when even that
/// cannot be read (the gateway is away), a bare one naming only its id, so the form and its
/// request id survive to be sent again.
pub(crate) async fn fetch_or_bare(console: &Console, caller: &Caller, id: &str) -> Certificate {
    fetch(console, caller, id)
        .await
        .unwrap_or_else(|_| Certificate {
            id: id.to_string(),
            ..Certificate::default()
        })
}

#[derive(Template)]
#[template(path = "refused.html")]
struct RefusedPage {
    chrome: Chrome,
    refusal: Option<Refusal>,
}

/// A page that only says why a call was refused (another account's certificate is simply
/// not found, as the gateway says).
pub(crate) fn refused_page(caller: &Caller, refusal: Refusal) -> Response {
    let t = caller.texts();
    let status = match refusal.reason.as_str() {
        "NOT_FOUND" => axum::http::StatusCode::NOT_FOUND,
        _ if refusal.unavailable => axum::http::StatusCode::SERVICE_UNAVAILABLE,
        _ => axum::http::StatusCode::UNPROCESSABLE_ENTITY,
    };
    (
        status,
        web::render(&RefusedPage {
            chrome: caller.chrome(t.refused_title),
            refusal: Some(refusal),
        }),
    )
        .into_response()
}

/// Which file of the PEM download a `kind` names.
fn pem_file_matches(kind: &str, name: &str) -> bool {
    match kind {
        "certificate" => name.ends_with(".crt") && !name.ends_with("chain.crt"),
        "chain" => name.ends_with(".chain.crt"),
        "fullchain" => name.ends_with(".fullchain.crt"),
        "key" => name.ends_with(".key"),
        _ => false,
    }
}

/// One file of the PEM download (Nginx, Apache): `certificate`, `chain`, `fullchain` or
/// `key`.
pub(crate) async fn download_pem(
    State(console): State<Console>,
    caller: Caller,
    Path((id, kind)): Path<(String, String)>,
) -> Response {
    let t = caller.texts();
    let request = DownloadCertificateRequest {
        id,
        format: DownloadFormat::Pem as i32,
        password: String::new(),
    };
    match console
        .gateway
        .certificates()
        .download_certificate(as_caller(&caller, request))
        .await
    {
        Ok(response) => match response
            .into_inner()
            .files
            .into_iter()
            .find(|f| pem_file_matches(&kind, &f.name))
        {
            Some(file) => web::attachment(&file.name, &file.content_type, file.content),
            None => refused_page(&caller, Refusal::local(t.not_found, "NOT_FOUND")),
        },
        Err(status) => refused_page(&caller, Refusal::from_status(&status, t)),
    }
}

#[derive(Deserialize)]
pub(crate) struct Pkcs12Form {
    password: String,
}

/// The PKCS#12 archive (IIS, Tomcat), protected by the password given.
pub(crate) async fn download_pkcs12(
    State(console): State<Console>,
    Path(id): Path<String>,
    Posted { caller, form }: Posted<Pkcs12Form>,
) -> Response {
    let t = caller.texts();
    let request = DownloadCertificateRequest {
        id,
        format: DownloadFormat::Pkcs12 as i32,
        password: form.password,
    };
    match console
        .gateway
        .certificates()
        .download_certificate(as_caller(&caller, request))
        .await
    {
        Ok(response) => match response.into_inner().files.into_iter().next() {
            Some(file) => web::attachment(&file.name, &file.content_type, file.content),
            None => refused_page(&caller, Refusal::local(t.not_found, "NOT_FOUND")),
        },
        Err(status) => refused_page(&caller, Refusal::from_status(&status, t)),
    }
}

#[derive(Deserialize)]
pub(crate) struct DeleteForm {
    request_id: String,
}

/// Deletes a certificate (DEL-1), then back to the list.
pub(crate) async fn delete(
    State(console): State<Console>,
    Path(id): Path<String>,
    Posted { caller, form }: Posted<DeleteForm>,
) -> Response {
    let request = DeleteCertificateRequest {
        request_id: form.request_id,
        id,
    };
    match console
        .gateway
        .certificates()
        .delete_certificate(as_caller(&caller, request))
        .await
    {
        Ok(_) => Redirect::to("/certificates").into_response(),
        Err(status) => refused_page(&caller, Refusal::from_status(&status, caller.texts())),
    }
}

/// A fresh request id for a form: a retry of that form sends the same one (GEN-1).
pub(crate) fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
