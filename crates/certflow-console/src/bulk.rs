//! Bulk revocation (GEN-6, admins): pasted certificate ids or every certificate of an
//! account, one reason. The results page is sent as the gateway streams the results: each
//! certificate's row (with how many of how many are done) reaches the browser as soon as
//! it is decided, and a summary ends it.

use askama::Template;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use certflow_proto::v1::{BulkRevokeRequest, ValidationMethod, bulk_revoke_response};
use futures::StreamExt as _;
use serde::Deserialize;

use crate::Console;
use crate::gateway::{Refusal, as_caller};
use crate::i18n::Texts;
use crate::pages::request_id;
use crate::session::{Caller, Posted};
use crate::view;
use crate::web::{self, Chrome};

/// Ids a pasted list may hold; longer lists go through `certctl bulk-revoke --ids-file`.
const MAX_PASTED_IDS: usize = 10_000;

/// Where the streamed rows go in the rendered page.
const RESULTS_MARK: &str = "<!-- results -->";

/// One certificate's result, as a row of the streamed table.
#[derive(Template)]
#[template(
    source = r#"<tr class="{% if accepted %}ok{% else %}refused{% endif %}"><td>{{ completed }} / {{ total }}</td><td><code>{{ certificate_id }}</code></td><td>{{ detail }}</td></tr>
"#,
    ext = "html"
)]
struct ResultRow {
    certificate_id: String,
    accepted: bool,
    detail: String,
    completed: u32,
    total: u32,
}

/// The line that ends the results.
#[derive(Template)]
#[template(
    source = r#"<tr><td colspan="3" role="status" id="bulk-summary">{{ done }}: {{ accepted }} ✓ · {{ refused }} ✗{% if !failure.is_empty() %} · {{ failure }}{% endif %}</td></tr>
"#,
    ext = "html"
)]
struct Summary<'a> {
    done: &'a str,
    accepted: usize,
    refused: usize,
    failure: String,
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
    /// The page is the head of a streamed answer: the results table follows.
    streaming: bool,
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
        streaming: false,
        refusal: None,
    })
}

#[derive(Deserialize)]
pub(crate) struct BulkForm {
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
    Posted { caller, form }: Posted<BulkForm>,
) -> Response {
    let t = caller.texts();
    let ids = view::listed(&form.ids);
    let mut page = BulkPage {
        chrome: caller.chrome(t.bulk_title),
        reasons: view::choices(&view::revocation_reasons(t), &form.reason),
        request_id: form.request_id.clone(),
        ids: form.ids.clone(),
        account: form.account.clone(),
        description: form.description.clone(),
        streaming: false,
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
    let results = match console
        .gateway
        .revocations()
        .bulk_revoke(as_caller(&caller, request))
        .await
    {
        Ok(response) => response.into_inner(),
        Err(status) => {
            page.refusal = Some(Refusal::from_status(&status, t));
            return web::render(&page);
        }
    };
    page.streaming = true;
    // A fresh request id for the form shown again above the results.
    page.request_id = request_id();
    let html = match page.render() {
        Ok(html) => html,
        Err(_) => return web::render(&page),
    };
    let (head, tail) = html.split_at(html.find(RESULTS_MARK).unwrap_or(html.len()));
    let tail = tail.trim_start_matches(RESULTS_MARK).to_string();
    let head = head.to_string();
    let rows = futures::stream::unfold(
        (results, 0usize, 0usize, false),
        move |(mut results, mut accepted, mut refused, finished)| async move {
            if finished {
                return None;
            }
            let piece = match results.next().await {
                Some(Ok(item)) => {
                    let (ok, detail) = match item.outcome {
                        Some(bulk_revoke_response::Outcome::Certificate(c)) => {
                            (true, view::status(t, c.status).to_string())
                        }
                        Some(bulk_revoke_response::Outcome::Refusal(r)) => {
                            (false, format!("{} ({})", r.message, r.reason))
                        }
                        None => (false, String::new()),
                    };
                    if ok {
                        accepted += 1;
                    } else {
                        refused += 1;
                    }
                    let row = ResultRow {
                        certificate_id: item.certificate_id,
                        accepted: ok,
                        detail,
                        completed: item.completed,
                        total: item.total,
                    };
                    return Some((
                        row.render().unwrap_or_default(),
                        (results, accepted, refused, false),
                    ));
                }
                // The stream broke off (the gateway went away): say so after what came.
                Some(Err(status)) => summary(
                    t,
                    accepted,
                    refused,
                    Some(&Refusal::from_status(&status, t)),
                ),
                None => summary(t, accepted, refused, None),
            };
            Some((piece, (results, accepted, refused, true)))
        },
    );
    let end = futures::stream::once(async move { tail });
    let body = futures::stream::once(async move { head })
        .chain(rows)
        .chain(end)
        .map(|piece| Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(piece)));
    web::no_store(
        (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            Body::from_stream(body),
        )
            .into_response(),
    )
}

/// The line after the last row: how many were accepted and refused, and why the results
/// stopped early, if they did.
fn summary(t: &Texts, accepted: usize, refused: usize, failure: Option<&Refusal>) -> String {
    Summary {
        done: t.results,
        accepted,
        refused,
        failure: failure
            .map(|f| format!("{} ({})", f.message, f.reason))
            .unwrap_or_default(),
    }
    .render()
    .unwrap_or_default()
}
