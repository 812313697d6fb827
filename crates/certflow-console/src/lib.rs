//! The certflow console: the web pages customers revoke and reissue through, and reviewers
//! judge stamped documents in.
//!
//! It is a gRPC client of the gateway like `certctl`: it holds no NATS credentials and no
//! keys, and decides nothing. Every page is one or a few gateway calls made with the
//! signed-in caller's own token, so the gateway's rules, refusals and account boundaries
//! are the console's too. Instances share nothing but that token, carried in the caller's
//! cookie (or set by an identity-aware proxy in `Authorization`), so they scale out freely.
//!
//! ## Layout
//!
//! - `session`: who is calling (proxy header or session cookie), sign-in, CSRF tokens.
//! - `i18n`: every word the pages show, in English and Simplified Chinese.
//! - `gateway`: the gateway's clients, the caller's token on each call, refusals.
//! - `view`: how the API's values read on a page.
//! - `pages`: my certificates, a certificate, downloads.
//! - `revoke`: the revocation request and the step its path needs.
//! - `review`: the review queue.
//! - `reissue`: the reissue request.
//! - `bulk`: bulk revocation (admins).
//! - `live`: server-sent events that tell a page to refresh.
//! - `web`: responses, security headers and the static files.

#![forbid(unsafe_code)]

mod bulk;
mod gateway;
mod i18n;
mod live;
mod pages;
mod reissue;
mod review;
mod revoke;
mod session;
mod view;
mod web;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use certflow_gateway::auth::{Authenticator, KeySource};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How the console runs.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// The gateway, e.g. `http://127.0.0.1:50051`.
    pub gateway: String,
    /// CA (PEM) that signs the gateway's certificate, for an `https://` gateway.
    pub gateway_ca: Option<PathBuf>,
    /// Keys that sign callers' tokens: the gateway's.
    pub token_keys: Vec<KeySource>,
    /// Development only: a directory of token files (`<name>` holding a JWT) the sign-in
    /// page offers. `None`: callers come signed in through the proxy's `Authorization`.
    pub dev_identities: Option<PathBuf>,
    /// Mark the session cookie `Secure` (every deployment but local development).
    pub secure_cookies: bool,
}

/// Why the console could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("the token keys: {0}")]
    Keys(#[from] certflow_gateway::auth::AuthError),
    #[error("the gateway address {address:?}: {message}")]
    Gateway { address: String, message: String },
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("serving: {0}")]
    Serve(#[source] std::io::Error),
}

/// What every handler shares.
#[derive(Clone)]
struct Console {
    gateway: gateway::Gateway,
    authenticator: Arc<Authenticator>,
    dev_identities: Option<session::DevIdentities>,
    secure_cookies: bool,
}

/// The largest request body: a stamped document (REV-12's 1.4 MiB) and its form around it.
const MAX_UPLOAD_BODY: usize = 2 * 1024 * 1024;
/// Any other form.
const MAX_FORM_BODY: usize = 256 * 1024;

/// The console, ready to serve: its keys loaded and its gateway channel made, so that a
/// wrong setting stops the process at start rather than at the first page.
#[derive(Debug)]
pub struct ConsoleServer {
    router: Router,
}

impl ConsoleServer {
    pub fn new(config: &ConsoleConfig) -> Result<Self, ConsoleError> {
        Ok(ConsoleServer {
            router: router(config)?,
        })
    }

    /// Serves on `listener` until `shutdown`.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> Result<(), ConsoleError> {
        axum::serve(listener, self.router)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
            .map_err(ConsoleError::Serve)
    }
}

fn router(config: &ConsoleConfig) -> Result<Router, ConsoleError> {
    let console = Console {
        gateway: gateway::Gateway::new(&config.gateway, config.gateway_ca.as_deref())?,
        authenticator: Arc::new(Authenticator::load(&config.token_keys)?),
        dev_identities: config
            .dev_identities
            .as_deref()
            .map(session::DevIdentities::new),
        secure_cookies: config.secure_cookies,
    };
    let upload = Router::new()
        .route(
            "/certificates/{id}/revocation/document",
            post(revoke::upload_document),
        )
        .layer(DefaultBodyLimit::max(MAX_UPLOAD_BODY));
    let pages = Router::new()
        .route("/", get(pages::home))
        .route(
            "/sign-in",
            get(session::sign_in_page).post(session::sign_in),
        )
        .route("/sign-out", post(session::sign_out))
        .route("/language", post(session::set_language))
        .route("/certificates", get(pages::certificates))
        .route("/certificates/{id}", get(pages::certificate))
        .route("/certificates/{id}/files/{kind}", get(pages::download_pem))
        .route("/certificates/{id}/pkcs12", post(pages::download_pkcs12))
        .route("/certificates/{id}/delete", post(pages::delete))
        .route(
            "/certificates/{id}/revoke",
            get(revoke::form).post(revoke::request),
        )
        .route("/certificates/{id}/revocation", get(revoke::progress))
        .route("/certificates/{id}/check", post(revoke::check))
        .route(
            "/certificates/{id}/revocation/template",
            get(revoke::template),
        )
        .route(
            "/certificates/{id}/reissue",
            get(reissue::form).post(reissue::request),
        )
        .route("/review", get(review::queue).post(review::take))
        .route("/review/decision", post(review::decide))
        .route("/review/document/{certificate}", get(review::document))
        .route("/bulk", get(bulk::form).post(bulk::request))
        .route("/live/certificates/{id}", get(live::certificate))
        .route("/live/review", get(live::review_queue))
        .route("/static/{file}", get(web::static_file))
        .route("/healthz", get(web::healthz))
        .layer(DefaultBodyLimit::max(MAX_FORM_BODY));
    Ok(pages
        .merge(upload)
        .fallback(web::not_found)
        .layer(axum::middleware::from_fn(web::security_headers))
        .with_state(console))
}
