//! A real HTTP/1 server for tests of the file validation probe.
//!
//! [`FileServer`] serves `GET /.well-known/pki-validation/fileauth.txt` on `127.0.0.1:0` (or
//! another loopback address), with a body (or a redirect) chosen per `Host` header, so one
//! server stands in for many domains. It counts the connections it accepts, so a test can
//! tell that a probe never connected.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The one path served.
const FILE_PATH: &str = "/.well-known/pki-validation/fileauth.txt";

/// What a host answers.
#[derive(Debug, Clone)]
enum Entry {
    Body(String),
    Redirect(String),
}

type Entries = Arc<Mutex<HashMap<String, Entry>>>;

/// A running validation-file server; dropping it stops the server.
#[derive(Debug)]
pub struct FileServer {
    addr: SocketAddr,
    entries: Entries,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl FileServer {
    /// Starts the server on an ephemeral port of 127.0.0.1, serving nothing yet (all 404).
    pub async fn start() -> io::Result<Self> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// Starts the server on `addr` (a loopback address; port 0 for any free one).
    pub async fn start_on(addr: SocketAddr) -> io::Result<Self> {
        assert!(
            addr.ip().is_loopback() || to_v4_loopback(addr.ip()),
            "tests serve on loopback only, not {addr}"
        );
        let entries = Entries::default();
        let router = Router::new()
            .route(FILE_PATH, get(serve_file))
            .with_state(entries.clone());
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let listener = listener.tap_io(move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
        });
        let task = tokio::spawn(async move {
            // Only ends on an accept error, which leaves nothing to report to: the test sees
            // its requests fail.
            let _ = axum::serve(listener, router).await;
        });
        Ok(FileServer {
            addr,
            entries,
            connections,
            task,
        })
    }

    /// How many connections the server has accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Where the server listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `body` with 200 to requests for `domain` (the Host header, port ignored).
    pub fn set(&self, domain: &str, body: &str) {
        lock(&self.entries).insert(host_key(domain), Entry::Body(body.to_owned()));
    }

    /// Answers 404 to requests for `domain` again.
    pub fn remove(&self, domain: &str) {
        lock(&self.entries).remove(&host_key(domain));
    }

    /// Answers `302 Found` with `Location: location` to requests for `domain`.
    pub fn redirect(&self, domain: &str, location: &str) {
        lock(&self.entries).insert(host_key(domain), Entry::Redirect(location.to_owned()));
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_file(State(entries): State<Entries>, headers: HeaderMap) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(host_key)
        .unwrap_or_default();
    let entry = lock(&entries).get(&host).cloned();
    match entry {
        Some(Entry::Body(body)) => (StatusCode::OK, body).into_response(),
        Some(Entry::Redirect(location)) => match HeaderValue::from_str(&location) {
            Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        },
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn to_v4_loopback(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()))
}

/// The host part of a Host header or domain, lower case, without port.
fn host_key(host: &str) -> String {
    let host = host.trim();
    let host = match host.rsplit_once(':') {
        // Leave IPv6 literals ("[::1]") alone unless a port follows the bracket.
        Some((name, port))
            if !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && (!name.contains(':') || name.ends_with(']')) =>
        {
            name
        }
        _ => host,
    };
    host.to_ascii_lowercase()
}

/// The map, even if a panicking test thread poisoned the lock: entries are plain data.
fn lock(entries: &Mutex<HashMap<String, Entry>>) -> MutexGuard<'_, HashMap<String, Entry>> {
    entries
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
