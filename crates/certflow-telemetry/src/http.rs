//! The operator's HTTP port: `/metrics` (Prometheus text), `/healthz` (the process is up)
//! and `/readyz` (every service in it can do its work).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What each part of a process says about being able to work: ready, or why not.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    parts: Arc<Mutex<BTreeMap<String, Option<String>>>>,
}

impl Readiness {
    fn parts(&self) -> MutexGuard<'_, BTreeMap<String, Option<String>>> {
        self.parts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `part` can do its work.
    pub fn ready(&self, part: &str) {
        self.parts().insert(part.to_string(), None);
    }

    /// `part` cannot do its work, because `why`.
    pub fn not_ready(&self, part: &str, why: impl Into<String>) {
        self.parts().insert(part.to_string(), Some(why.into()));
    }

    /// Whether every part is ready, and one line per part.
    pub fn report(&self) -> (bool, String) {
        let parts = self.parts();
        let mut ready = true;
        let mut text = String::new();
        for (part, problem) in parts.iter() {
            match problem {
                None => text.push_str(&format!("{part}: ready\n")),
                Some(why) => {
                    ready = false;
                    text.push_str(&format!("{part}: not ready: {why}\n"));
                }
            }
        }
        (ready, text)
    }
}

#[derive(Clone)]
struct Served {
    registry: prometheus::Registry,
    readiness: Readiness,
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until `shutdown`.
pub async fn serve_http(
    listener: TcpListener,
    registry: prometheus::Registry,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(Served {
            registry,
            readiness,
        });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

async fn metrics(State(served): State<Served>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::prometheus_text(&served.registry),
    )
}

async fn ready(State(served): State<Served>) -> impl IntoResponse {
    let (ready, text) = served.readiness.report();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, text)
}
