//! Responses: the frame every page shares, error pages, security headers, static files.

use askama::Template;
use axum::extract::{Path, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use cookie::Cookie;

use crate::i18n::{Lang, Texts};
use crate::session::{self, Caller};

/// What the frame of every page shows: language, title, who is signed in and their CSRF
/// token for the forms on it.
#[derive(Debug, Clone)]
pub(crate) struct Chrome {
    pub t: &'static Texts,
    pub lang: Lang,
    pub title: &'static str,
    pub signed_in: Option<SignedIn>,
}

/// The signed-in caller as the frame shows them.
#[derive(Debug, Clone)]
pub(crate) struct SignedIn {
    pub subject: String,
    pub account: String,
    pub reviewer: bool,
    pub admin: bool,
    pub csrf: String,
}

impl Chrome {
    pub fn new(lang: Lang, title: &'static str, caller: Option<&Caller>) -> Self {
        Chrome {
            t: lang.texts(),
            lang,
            title,
            signed_in: caller.map(|caller| SignedIn {
                subject: caller.actor.subject.clone(),
                account: caller.actor.account.clone(),
                reviewer: caller.is(certflow_domain::Role::Reviewer)
                    || caller.is(certflow_domain::Role::Admin),
                admin: caller.is(certflow_domain::Role::Admin),
                csrf: caller.csrf.clone(),
            }),
        }
    }

    /// The other language, for the switch.
    pub fn other_lang(&self) -> Lang {
        match self.lang {
            Lang::En => Lang::Zh,
            Lang::Zh => Lang::En,
        }
    }
}

/// A rendered page; a template that fails to render is a bug, shown as a plain 500.
pub(crate) fn render(page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => no_store(Html(html).into_response()),
        Err(err) => {
            tracing::error!(error = %err, "a console page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be shown",
            )
                .into_response()
        }
    }
}

/// A form's page: 422 when it shows a refusal, so scripts and tests see the outcome.
pub(crate) fn render_answer(page: &impl Template, refused: bool) -> Response {
    let status = if refused {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    (status, render(page)).into_response()
}

/// Pages show a caller's own data: never kept by a shared cache or the browser's history.
pub(crate) fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub(crate) fn set_cookie(response: &mut Response, cookie: &Cookie<'_>) {
    if let Some(value) = session::cookie_header(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    chrome: Chrome,
    message: &'static str,
}

fn message(status: StatusCode, lang: Lang, title: &'static str, text: &'static str) -> Response {
    let page = MessagePage {
        chrome: Chrome::new(lang, title, None),
        message: text,
    };
    (status, render(&page)).into_response()
}

/// No caller: no proxy header, no session, or a token that does not check out.
pub(crate) fn unauthorized(lang: Lang) -> Response {
    let t = lang.texts();
    message(
        StatusCode::UNAUTHORIZED,
        lang,
        t.signed_out_title,
        t.signed_out,
    )
}

/// A form that is not the caller's.
pub(crate) fn forbidden(lang: Lang, text: &'static str) -> Response {
    message(
        StatusCode::FORBIDDEN,
        lang,
        lang.texts().refused_title,
        text,
    )
}

pub(crate) async fn not_found(headers: HeaderMap) -> Response {
    let lang = session::language(&headers);
    let t = lang.texts();
    message(StatusCode::NOT_FOUND, lang, t.not_found_title, t.not_found)
}

/// What the browser may do with every response: scripts and styles from this origin only
/// (no inline script), no framing by other sites, no MIME sniffing, no referrer to others.
pub(crate) async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    // A response with a stricter policy of its own (a stamped document) keeps it.
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; \
             frame-ancestors 'self'",
        ));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    response
}

/// The process answers: for liveness and readiness probes, which carry no token.
pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

const STYLE: &str = include_str!("../static/console.css");
const SCRIPT: &str = include_str!("../static/console.js");

/// The console's only style sheet and script, from the binary.
pub(crate) async fn static_file(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let (body, kind) = match file.as_str() {
        "console.css" => (STYLE, "text/css; charset=utf-8"),
        "console.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        _ => return not_found(headers).await,
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// A file to save: its name, type and bytes, never cached.
pub(crate) fn attachment(name: &str, content_type: &str, content: Vec<u8>) -> Response {
    let safe_name: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .collect();
    let disposition = format!("attachment; filename=\"{safe_name}\"");
    let mut response = content.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    no_store(response)
}
