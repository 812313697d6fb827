//! The reissue request (REI-*): the key from the original CSR, generated online (with an
//! optional password that cannot be recovered) or from a pasted CSR; the domains; a reason.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use certflow_proto::v1::{
    Certificate, GeneratedKey, KeyAlgorithm, OriginalKey, RequestReissueRequest, ValidationMethod,
    request_reissue_request,
};
use serde::Deserialize;

use certflow_proto::convert::api::{brand_from_proto, level_from_proto};

use crate::Console;
use crate::gateway::{Refusal, as_caller};
use crate::pages::{fetch, lookup, refused_page, request_id};
use crate::session::{Caller, Posted};
use crate::view;
use crate::web::{self, Chrome};

/// The key algorithms a generated key may have (REI-7), as the form offers them.
const ALGORITHMS: [(&str, &str, KeyAlgorithm); 6] = [
    ("rsa-2048", "RSA 2048", KeyAlgorithm::Rsa2048),
    ("rsa-3072", "RSA 3072", KeyAlgorithm::Rsa3072),
    ("rsa-4096", "RSA 4096", KeyAlgorithm::Rsa4096),
    ("ecc-p256", "ECC P-256", KeyAlgorithm::EccP256),
    ("ecc-p384", "ECC P-384", KeyAlgorithm::EccP384),
    ("sm2", "SM2", KeyAlgorithm::Sm2),
];

#[derive(Template)]
#[template(path = "reissue.html")]
struct ReissuePage {
    chrome: Chrome,
    c: Certificate,
    brand: &'static str,
    level: &'static str,
    single_domain: bool,
    algorithms: Vec<view::Choice>,
    form: ReissueForm,
    refusal: Option<Refusal>,
}

/// The reissue form, filled with the original's domains.
pub(crate) async fn form(
    State(console): State<Console>,
    caller: Caller,
    Path(id): Path<String>,
) -> Response {
    match fetch(&console, &caller, &id).await {
        Ok(certificate) => {
            let form = ReissueForm {
                domains: certificate.domains.join("\n"),
                key: "original".into(),
                algorithm: "rsa-2048".into(),
                method: "dns".into(),
                request_id: request_id(),
                ..ReissueForm::default()
            };
            render(&caller, certificate, form, None)
        }
        Err(page) => page,
    }
}

fn render(
    caller: &Caller,
    certificate: Certificate,
    form: ReissueForm,
    refusal: Option<Refusal>,
) -> Response {
    let t = caller.texts();
    // REI-8, as the domain decides it.
    let single_domain = matches!(
        (
            brand_from_proto(certificate.brand),
            level_from_proto(certificate.level),
        ),
        (Ok(brand), Ok(level)) if certflow_domain::reissue::binds_single_domain(brand, level)
    );
    let page = ReissuePage {
        chrome: caller.chrome(t.reissue_title),
        brand: view::brand(certificate.brand),
        level: view::level(certificate.level),
        single_domain,
        algorithms: view::choices(
            &ALGORITHMS
                .iter()
                .map(|(v, l, _)| (*v, *l))
                .collect::<Vec<_>>(),
            &form.algorithm,
        ),
        c: certificate,
        form,
        refusal,
    };
    web::render_answer(&page, page.refusal.is_some())
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ReissueForm {
    #[serde(default)]
    pub request_id: String,
    #[serde(default)]
    pub domains: String,
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub algorithm: String,
    /// Never shown again: a refused form asks for it anew.
    #[serde(default)]
    key_password: String,
    #[serde(default)]
    pub csr: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub method: String,
}

/// Sends the reissue request; on success, the new certificate's page.
pub(crate) async fn request(
    State(console): State<Console>,
    Path(id): Path<String>,
    Posted { caller, mut form }: Posted<ReissueForm>,
) -> Response {
    let t = caller.texts();
    // The request carries the recorded organisation details, so it is sent only once the
    // certificate has been read; when the gateway is away, the form waits to be sent again.
    let certificate = match lookup(&console, &caller, &id).await {
        Ok(certificate) => certificate,
        Err(refusal) if refusal.unavailable => {
            let bare = Certificate {
                id: id.clone(),
                ..Certificate::default()
            };
            return render(&caller, bare, form, Some(refusal));
        }
        Err(refusal) => return refused_page(&caller, refusal),
    };
    let key = match form.key.as_str() {
        "generated" => {
            let Some((_, _, algorithm)) = ALGORITHMS.iter().find(|(v, _, _)| *v == form.algorithm)
            else {
                let refusal = Refusal::local(t.choose_algorithm, "KEY_POLICY_VIOLATION");
                return render(&caller, certificate, form, Some(refusal));
            };
            request_reissue_request::Key::GeneratedKey(GeneratedKey {
                key_algorithm: *algorithm as i32,
                key_password: std::mem::take(&mut form.key_password),
            })
        }
        "csr" => request_reissue_request::Key::CsrPem(form.csr.clone()),
        _ => request_reissue_request::Key::OriginalKey(OriginalKey {}),
    };
    let domains = view::listed(&form.domains);
    let request = RequestReissueRequest {
        request_id: form.request_id.clone(),
        certificate_id: id.clone(),
        domains,
        reason: form.reason.clone(),
        key: Some(key),
        enterprise_info: certificate.enterprise_info.clone(),
        validation_method: if form.method == "file" {
            ValidationMethod::File as i32
        } else {
            ValidationMethod::Dns as i32
        },
    };
    match console
        .gateway
        .reissues()
        .request_reissue(as_caller(&caller, request))
        .await
    {
        Ok(response) => {
            let response = response.into_inner();
            // Waiting for proof of ownership or a reviewer: the original's page shows the
            // step; otherwise the new certificate's.
            let waits = response
                .certificate
                .as_ref()
                .and_then(|c| c.pending_reissue.as_ref())
                .is_some_and(|p| p.needs_validation || p.needs_review);
            let target = if waits || response.new_certificate_id.is_empty() {
                format!("/certificates/{id}#reissue-progress")
            } else {
                format!("/certificates/{}", response.new_certificate_id)
            };
            Redirect::to(&target).into_response()
        }
        Err(status) => {
            let refusal = Refusal::from_status(&status, t);
            // A key password is never shown again, so a form that carried one cannot be
            // resent as it is: the reader sends it again with the password.
            let refusal = if form.key_password.is_empty() {
                refusal.resent_by_the_page()
            } else {
                refusal
            };
            render(&caller, certificate, form, Some(refusal))
        }
    }
}
