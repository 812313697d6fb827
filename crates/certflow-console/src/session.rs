//! Who is calling, and the forms that sign them in and out.
//!
//! A caller is their token: the one an identity-aware proxy puts in `Authorization`, or,
//! in development, the one the sign-in page put in the session cookie. The console checks
//! it with the gateway's keys (to greet the caller and offer what their roles allow) and
//! sends it with every gateway call, which checks it again and decides.
//!
//! Every form carries a CSRF token derived from the caller's token, so a page of another
//! site cannot post as the caller even where a proxy adds the `Authorization` itself; the
//! session cookie is also `SameSite=Strict` and `HttpOnly`.

use std::path::{Path, PathBuf};

use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, http::StatusCode};
use certflow_domain::{Actor, Role};
use certflow_gateway::auth::bearer_token;
use cookie::{Cookie, SameSite};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::Console;
use crate::i18n::{Lang, Texts};
use crate::web::{self, Chrome};

/// The session cookie: a `__Host-` name where cookies are `Secure` (bound to this origin,
/// path `/`, no domain).
const SESSION_SECURE: &str = "__Host-certflow-session";
const SESSION_PLAIN: &str = "certflow-session";
/// The language switch's cookie.
const LANGUAGE: &str = "certflow-lang";
/// The sign-in form's own CSRF cookie (there is no session to derive one from yet).
const SIGN_IN_NONCE: &str = "certflow-sign-in";

/// The development identities `make run` writes: `<dir>/<name>` holds a token.
#[derive(Debug, Clone)]
pub(crate) struct DevIdentities {
    dir: PathBuf,
}

impl DevIdentities {
    /// The identities in `dir`.
    pub(crate) fn new(dir: &Path) -> Self {
        DevIdentities {
            dir: dir.to_path_buf(),
        }
    }

    /// The names on offer, sorted.
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_file()))
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| is_identity_name(name))
            .collect();
        names.sort();
        names
    }

    /// The token of identity `name`, when it is one on offer.
    fn token(&self, name: &str) -> Option<String> {
        if !is_identity_name(name) {
            return None;
        }
        let token = std::fs::read_to_string(self.dir.join(name)).ok()?;
        let token = token.trim();
        (!token.is_empty()).then(|| token.to_string())
    }
}

/// Whether `target` is a path of this site, never another origin: browsers read `//host`
/// and `/\host` as another site, and a scheme or control character has no place here.
fn is_local_path(target: &str) -> bool {
    target.starts_with('/')
        && !target.starts_with("//")
        && !target.contains('\\')
        && !target.chars().any(char::is_control)
}

/// A name that can only be a file in the identities directory.
fn is_identity_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The signed-in caller of a page.
#[derive(Clone)]
pub(crate) struct Caller {
    pub actor: Actor,
    token: String,
    pub lang: Lang,
    pub csrf: String,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("subject", &self.actor.subject)
            .field("account", &self.actor.account)
            .finish_non_exhaustive()
    }
}

impl Caller {
    /// The caller's token, for the `authorization` metadata of a gateway call only.
    pub fn bearer(&self) -> &str {
        &self.token
    }

    pub fn is(&self, role: Role) -> bool {
        self.actor.roles.contains(&role)
    }

    /// The frame of a page for this caller.
    pub fn chrome(&self, title: &'static str) -> Chrome {
        Chrome::new(self.lang, title, Some(self))
    }

    pub fn texts(&self) -> &'static Texts {
        self.lang.texts()
    }

    /// The page refusing a form whose CSRF token is not this caller's; `None` when it is.
    pub fn csrf_refusal(&self, submitted: &str) -> Option<Response> {
        (!constant_time_eq(submitted.as_bytes(), self.csrf.as_bytes()))
            .then(|| web::forbidden(self.lang, self.texts().csrf_failed))
    }
}

/// The CSRF token of a caller with `token`: a hash only the holder of the token can make.
fn csrf_for(token: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(b"certflow-console-csrf\0");
    hash.update(token.as_bytes());
    hex::encode(hash.finalize())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The page's language: the switch's cookie, else the browser's first preference that is
/// one of ours.
pub(crate) fn language(headers: &HeaderMap) -> Lang {
    if let Some(chosen) = cookie_value(headers, LANGUAGE).and_then(|v| Lang::from_tag(&v)) {
        return chosen;
    }
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(Lang::from_accept_language)
        .unwrap_or(Lang::En)
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| Cookie::split_parse_encoded(v.to_owned()).flatten())
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

/// The caller's token: the proxy's `Authorization: Bearer`, else the session cookie.
fn presented_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .map(str::to_string)
        .or_else(|| cookie_value(headers, SESSION_SECURE))
        .or_else(|| cookie_value(headers, SESSION_PLAIN))
}

impl Console {
    /// Checks `token` as the gateway does.
    fn actor_of(&self, token: &str) -> Option<Actor> {
        self.authenticator.actor(token).ok()
    }

    /// A cookie of the console's: `HttpOnly`, `SameSite=Strict`, `Secure` outside
    /// development, for `path`.
    fn cookie(
        &self,
        name: &'static str,
        value: String,
        path: &'static str,
    ) -> cookie::CookieBuilder<'static> {
        Cookie::build((name, value))
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(self.secure_cookies)
            .path(path)
    }

    fn session_cookie_name(&self) -> &'static str {
        if self.secure_cookies {
            SESSION_SECURE
        } else {
            SESSION_PLAIN
        }
    }
}

impl FromRequestParts<Console> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, Response> {
        let lang = language(&parts.headers);
        let token = presented_token(&parts.headers);
        match token.as_deref().and_then(|t| console.actor_of(t)) {
            Some(actor) => {
                let token = token.unwrap_or_default();
                Ok(Caller {
                    actor,
                    csrf: csrf_for(&token),
                    token,
                    lang,
                })
            }
            None if console.dev_identities.is_some() => {
                Err(Redirect::to("/sign-in").into_response())
            }
            None => Err(web::unauthorized(lang)),
        }
    }
}

/// A form the signed-in caller posted, its CSRF token already checked: a handler that
/// takes its form this way cannot forget the check, and no form struct repeats the field.
pub(crate) struct Posted<T> {
    pub caller: Caller,
    pub form: T,
}

#[derive(Deserialize)]
struct WithCsrf<T> {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    form: T,
}

/// A form with nothing but its CSRF token.
#[derive(Debug, Deserialize)]
pub(crate) struct Nothing {}

impl<T> axum::extract::FromRequest<Console> for Posted<T>
where
    T: serde::de::DeserializeOwned + Send,
{
    type Rejection = Response;

    async fn from_request(
        request: axum::extract::Request,
        console: &Console,
    ) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let caller = Caller::from_request_parts(&mut parts, console).await?;
        let request = axum::extract::Request::from_parts(parts, body);
        let Form(WithCsrf { csrf, form }) = Form::<WithCsrf<T>>::from_request(request, console)
            .await
            .map_err(IntoResponse::into_response)?;
        match caller.csrf_refusal(&csrf) {
            Some(refused) => Err(refused),
            None => Ok(Posted { caller, form }),
        }
    }
}

#[derive(askama::Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    chrome: Chrome,
    identities: Vec<String>,
    nonce: String,
    failed: bool,
}

#[derive(Debug, Deserialize)]
pub(crate) struct SignInQuery {
    #[serde(default)]
    failed: bool,
}

/// The development sign-in page: one button per identity `make run` made.
pub(crate) async fn sign_in_page(
    State(console): State<Console>,
    headers: HeaderMap,
    Query(query): Query<SignInQuery>,
) -> Response {
    let lang = language(&headers);
    let Some(identities) = &console.dev_identities else {
        return web::unauthorized(lang);
    };
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let page = SignInPage {
        chrome: Chrome::new(lang, lang.texts().sign_in, None),
        identities: identities.names(),
        nonce: nonce.clone(),
        failed: query.failed,
    };
    let cookie = console.cookie(SIGN_IN_NONCE, nonce, "/sign-in").build();
    let mut response = web::render(&page);
    web::set_cookie(&mut response, &cookie);
    response
}

#[derive(Deserialize)]
pub(crate) struct SignInForm {
    identity: String,
    nonce: String,
}

/// Signs in as a development identity: its token goes into the session cookie.
pub(crate) async fn sign_in(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let lang = language(&headers);
    let Some(identities) = &console.dev_identities else {
        return web::unauthorized(lang);
    };
    let expected = cookie_value(&headers, SIGN_IN_NONCE).unwrap_or_default();
    if expected.is_empty() || !constant_time_eq(expected.as_bytes(), form.nonce.as_bytes()) {
        return web::forbidden(lang, lang.texts().csrf_failed);
    }
    let Some(token) = identities.token(&form.identity) else {
        return Redirect::to("/sign-in?failed=true").into_response();
    };
    if console.actor_of(&token).is_none() {
        return Redirect::to("/sign-in?failed=true").into_response();
    }
    let cookie = console
        .cookie(console.session_cookie_name(), token, "/")
        .build();
    let mut response = Redirect::to("/certificates").into_response();
    web::set_cookie(&mut response, &cookie);
    response
}

/// Forgets the session cookie.
pub(crate) async fn sign_out(State(console): State<Console>, _: Posted<Nothing>) -> Response {
    let cookie = console
        .cookie(console.session_cookie_name(), String::new(), "/")
        .max_age(cookie::time::Duration::ZERO)
        .build();
    let target = if console.dev_identities.is_some() {
        "/sign-in"
    } else {
        "/"
    };
    let mut response = Redirect::to(target).into_response();
    web::set_cookie(&mut response, &cookie);
    response
}

#[derive(Deserialize)]
pub(crate) struct LanguageForm {
    lang: String,
    #[serde(default)]
    back: String,
}

/// The language switch: remembered in a cookie, then back to the page it was used on.
pub(crate) async fn set_language(
    State(console): State<Console>,
    Form(form): Form<LanguageForm>,
) -> Response {
    let Some(lang) = Lang::from_tag(&form.lang) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let cookie = console
        .cookie(LANGUAGE, lang.tag().to_string(), "/")
        .max_age(cookie::time::Duration::days(365))
        .build();
    let back = if is_local_path(&form.back) {
        form.back
    } else {
        "/".into()
    };
    let mut response = Redirect::to(&back).into_response();
    web::set_cookie(&mut response, &cookie);
    response
}

/// `HeaderValue` of a cookie.
pub(crate) fn cookie_header(cookie: &Cookie<'_>) -> Option<HeaderValue> {
    HeaderValue::from_str(&cookie.encoded().to_string()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_differ_per_token_and_compare_exactly() {
        let a = csrf_for("token-a");
        assert_ne!(a, csrf_for("token-b"));
        assert!(constant_time_eq(
            a.as_bytes(),
            csrf_for("token-a").as_bytes()
        ));
        assert!(!constant_time_eq(a.as_bytes(), &a.as_bytes()[1..]));
    }

    #[test]
    fn the_language_switch_returns_only_to_a_page_of_this_site() {
        assert!(is_local_path("/certificates?status=issued"));
        assert!(is_local_path("/"));
        for elsewhere in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "/\tevil",
            "evil.example",
            "",
        ] {
            assert!(!is_local_path(elsewhere), "{elsewhere:?}");
        }
    }

    #[test]
    fn identity_names_cannot_leave_their_directory() {
        assert!(is_identity_name("alice"));
        assert!(!is_identity_name("../kek.hex"));
        assert!(!is_identity_name(".hidden"));
        assert!(!is_identity_name(""));
    }
}
