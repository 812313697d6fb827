//! Real receivers of notifications on loopback: an HTTPS webhook receiver (its own CA, a
//! certificate for 127.0.0.1) that records every request and answers as a test tells it,
//! and an SMTP server (Python's aiosmtpd, a process of its own) that keeps every message in
//! a Maildir.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_rustls::rustls;

/// How the receiver answers one request.
#[derive(Debug, Clone)]
pub enum Answer {
    Ok,
    Status(u16),
    Redirect(String),
    /// Holds the request this long, then answers 200 (unless the sender is gone by then).
    Hold(Duration),
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Received {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// The body's `type`.
    pub fn kind(&self) -> String {
        self.json()["type"].as_str().unwrap_or_default().to_string()
    }

    /// Whether the signature header carries a valid signature by `secret`, checked as a
    /// receiver following the Standard Webhooks specification would: HMAC-SHA256 over
    /// `id.timestamp.body` with the base64 key after `whsec_`.
    pub fn signed_by(&self, secret: &str) -> bool {
        let engine = base64::engine::general_purpose::STANDARD;
        let key = engine
            .decode(secret.strip_prefix("whsec_").expect("whsec_ secret"))
            .expect("base64 secret");
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).expect("key");
        mac.update(format!("{}.{}.", self.id, self.timestamp).as_bytes());
        mac.update(&self.body);
        let expected = format!("v1,{}", engine.encode(mac.finalize().into_bytes()));
        self.signature.split(' ').any(|s| s == expected)
    }
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    next: VecDeque<Answer>,
    otherwise: Option<Answer>,
}

/// An HTTPS receiver on 127.0.0.1.
pub struct WebhookReceiver {
    addr: SocketAddr,
    ca_pem: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl WebhookReceiver {
    /// Listens on a free loopback port, answering 200 until told otherwise.
    pub async fn start() -> Self {
        let ca = super::authority("webhook receiver test CA");
        let key = rcgen::KeyPair::generate().expect("key");
        let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
            .expect("params")
            .signed_by(&key, &ca)
            .expect("leaf");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let state = shared.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |request| answer(state.clone(), request));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        WebhookReceiver {
            addr,
            ca_pem: ca.pem(),
            state,
            task,
        }
    }

    /// `https://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// The CA that signed the receiver's certificate, for `--notify-extra-roots`.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Answers the next requests so, in order, then as before.
    pub fn answer_next(&self, answers: impl IntoIterator<Item = Answer>) {
        self.state.lock().expect("lock").next.extend(answers);
    }

    /// Answers every request so from now on (after those queued with `answer_next`).
    pub fn answer_always(&self, answer: Answer) {
        self.state.lock().expect("lock").otherwise = Some(answer);
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().expect("lock").received.clone()
    }

    /// Waits until `check` holds for the requests received, for `within` at most.
    pub async fn wait_for(
        &self,
        within: Duration,
        what: &str,
        check: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let received = self.received();
            if check(&received) {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver never saw {what}; it saw {:?}",
                received
                    .iter()
                    .map(|r| (r.kind(), r.id.clone()))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    state: Arc<Mutex<State>>,
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (id, timestamp, signature) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let path = request.uri().path().to_string();
    let body = request.into_body().collect().await?.to_bytes().to_vec();
    let plan = {
        let mut state = state.lock().expect("lock");
        state.received.push(Received {
            path,
            id,
            timestamp,
            signature,
            body,
            at: Instant::now(),
        });
        let next = state.next.pop_front();
        next.or_else(|| state.otherwise.clone())
            .unwrap_or(Answer::Ok)
    };
    let mut response = Response::new(Full::new(Bytes::new()));
    match plan {
        Answer::Ok => {}
        Answer::Status(code) => {
            *response.status_mut() = StatusCode::from_u16(code).expect("status");
        }
        Answer::Redirect(location) => {
            *response.status_mut() = StatusCode::FOUND;
            response
                .headers_mut()
                .insert("location", location.parse().expect("location"));
        }
        Answer::Hold(time) => tokio::time::sleep(time).await,
    }
    Ok(response)
}

/// aiosmtpd on a free loopback port, storing what it accepts in a Maildir.
pub struct SmtpServer {
    pub port: u16,
    maildir: tempfile::TempDir,
    child: Child,
}

impl SmtpServer {
    /// Starts `python -m aiosmtpd` with the Python `AIOSMTPD_PYTHON` names (`make test`
    /// sets it from `deploy/dev/aiosmtpd.sh`), else `python3`; fails the test when that
    /// Python has no aiosmtpd.
    pub async fn start() -> Self {
        let maildir = tempfile::tempdir().expect("maildir");
        let port = super::free_port();
        let python = std::env::var("AIOSMTPD_PYTHON").unwrap_or_else(|_| "python3".into());
        // Named explicitly, the server never asks DNS for this machine's name (the command
        // line's server would, with socket.getfqdn, on every connection).
        let serve = format!(
            "import sys, threading\n\
             from aiosmtpd.controller import Controller\n\
             from aiosmtpd.handlers import Mailbox\n\
             c = Controller(Mailbox(sys.argv[1]), hostname='127.0.0.1', port={port}, \
             server_hostname='localhost', ready_timeout=20)\n\
             c.start()\n\
             threading.Event().wait()\n"
        );
        let child = Command::new(&python)
            .args(["-c", &serve])
            .arg(maildir.path().join("mail"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| {
                panic!("{python} -m aiosmtpd: {err} (run deploy/dev/aiosmtpd.sh)")
            });
        let server = SmtpServer {
            port,
            maildir,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not start on {port}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        server
    }

    /// `smtp://127.0.0.1:<port>` (plain: a relay on loopback).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message stored so far, as text.
    pub fn messages(&self) -> Vec<String> {
        let mut messages = Vec::new();
        for folder in ["new", "cur"] {
            let dir: PathBuf = self.maildir.path().join("mail").join(folder);
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                messages.push(std::fs::read_to_string(entry.path()).unwrap_or_default());
            }
        }
        messages
    }

    /// Waits until a message containing every one of `needles` has arrived.
    pub async fn wait_for(&self, within: Duration, needles: &[&str]) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(found) = self
                .messages()
                .into_iter()
                .find(|message| needles.iter().all(|needle| message.contains(needle)))
            {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "no message with {needles:?} arrived; {} did",
                self.messages().len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
