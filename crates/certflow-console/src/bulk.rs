//! Bulk revocation (GEN-6, admins): pasted certificate ids or every certificate of an
//! account, one reason; each certificate's result as the gateway streams it.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::response::Response;
use certflow_proto::v1::{BulkRevokeRequest, ValidationMethod, bulk_revoke_response};
use futures::StreamExt as _;
use serde::Deserialize;

use crate::Console;
use crate::gateway::{Refusal, as_caller};
use crate::pages::request_id;
use crate::session::Caller;
use crate::view;
use crate::web::{self, Chrome};

/// Ids a pasted list may hold; longer lists go through `certctl bulk-revoke --ids-file`.
const MAX_PASTED_IDS: usize = 10_000;

/// One certificate's result.
#[derive(Debug)]
pub(crate) struct BulkResult {
    pub certificate_id: String,
    pub accepted: bool,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "bulk.html")]
struct BulkPage {
    chrome: Chrome,
    reasons: Vec<view::Choice>,
    request_id: String,
    ids: String,
    account: String,
    description: String,
    results: Vec<BulkResult>,
    completed: u32,
    total: u32,
    refusal: Option<Refusal>,
}

/// The bulk revocation form.
pub(crate) async fn form(caller: Caller) -> Response {
    let t = caller.texts();
    web::render(&BulkPage {
        chrome: caller.chrome(t.bulk_title),
        reasons: view::choices(&view::revocation_reasons(t), ""),
        request_id: request_id(),
        ids: String::new(),
        account: String::new(),
        description: String::new(),
        results: Vec::new(),
        completed: 0,
        total: 0,
        refusal: None,
    })
}

#[derive(Deserialize)]
pub(crate) struct BulkForm {
    csrf: String,
    request_id: String,
    #[serde(default)]
    ids: String,
    #[serde(default)]
    account: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    description: String,
}

/// Sends the bulk revocation and lists each certificate's result.
pub(crate) async fn request(
    State(console): State<Console>,
    caller: Caller,
    Form(form): Form<BulkForm>,
) -> Response {
    if let Some(refused) = caller.csrf_refusal(&form.csrf) {
        return refused;
    }
    let t = caller.texts();
    let ids: Vec<String> = form
        .ids
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .collect();
    let mut page = BulkPage {
        chrome: caller.chrome(t.bulk_title),
        reasons: view::choices(&view::revocation_reasons(t), &form.reason),
        request_id: form.request_id.clone(),
        ids: form.ids.clone(),
        account: form.account.clone(),
        description: form.description.clone(),
        results: Vec::new(),
        completed: 0,
        total: 0,
        refusal: None,
    };
    let Some(reason) = view::parse_reason(&form.reason) else {
        page.refusal = Some(Refusal::local(t.choose_reason, "INVALID_REVOCATION_REASON"));
        return web::render(&page);
    };
    if ids.len() > MAX_PASTED_IDS {
        page.refusal = Some(Refusal::local(t.bulk_too_many, "INVALID_ARGUMENT"));
        return web::render(&page);
    }
    let request = BulkRevokeRequest {
        request_id: form.request_id,
        certificate_ids: ids,
        account: form.account.trim().to_string(),
        reason: reason as i32,
        description: form.description,
        validation_method: ValidationMethod::Dns as i32,
    };
    match console
        .gateway
        .revocations()
        .bulk_revoke(as_caller(&caller, request))
        .await
    {
        Ok(response) => {
            let mut results = response.into_inner();
            while let Some(item) = results.next().await {
                match item {
                    Ok(item) => {
                        page.completed = item.completed;
                        page.total = item.total;
                        let (accepted, detail) = match item.outcome {
                            Some(bulk_revoke_response::Outcome::Certificate(c)) => {
                                (true, view::status(t, c.status).to_string())
                            }
                            Some(bulk_revoke_response::Outcome::Refusal(r)) => {
                                (false, format!("{} ({})", r.message, r.reason))
                            }
                            None => (false, String::new()),
                        };
                        page.results.push(BulkResult {
                            certificate_id: item.certificate_id,
                            accepted,
                            detail,
                        });
                    }
                    Err(status) => {
                        page.refusal = Some(Refusal::from_status(&status, t));
                        break;
                    }
                }
            }
        }
        Err(status) => page.refusal = Some(Refusal::from_status(&status, t)),
    }
    web::render(&page)
}
