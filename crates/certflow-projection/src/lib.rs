//! The projection service: folds the event log into sled and answers queries.
//!
//! The event store's feed delivers every certificate's events in stream order, read by
//! sequence from the log. Each chunk of messages is applied as one sled batch that also
//! stores the last applied stream sequence, and sled is flushed before the next position
//! counts. The certificate state comes from the domain's own `evolve`, so reads and writes
//! agree on what events mean.
//!
//! The sled database is the projection's only record of where it is: the feed starts just
//! after the last applied sequence, so a wiped or rebuilt database replays the whole log and
//! reaches the same state. A database that cannot be read is moved aside
//! (`<dir>.damaged-<time>`) and replaced the same way. Messages at or below a certificate's
//! last applied sequence are skipped, so redelivery changes nothing.
//!
//! Queries arrive on `certflow.query.>` (queue group `projection`). Each replica (its own
//! database and position) joins the group only once it has applied the log it found
//! at start-up, so a replica that is still replaying never answers for the others: a new
//! replica catches up, then takes its share of the queries. Until then it reports itself not
//! ready on `/readyz`; with no replica caught up the gateway's gRPC health says so.
//!
//! ## Layout
//!
//! - `queries` (private): answers to get, list and history from sled, and the replica's status.
//! - `view` (private): [`ProjectionDb`]: records, account index, histories and applied position.

#![forbid(unsafe_code)]

mod queries;
mod view;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use certflow_bus::{CancellationToken, Responder, subjects};
use certflow_proto::bus::v1::ProjectionStatusResponse;
use certflow_store::{Delivered, EventFeed, EventStore, StoreError};
use certflow_telemetry::{Readiness, instruments, propagation};
use tracing::{error, info, info_span, warn};

pub use view::{CACHE_BYTES, ProjectionDb, ViewError, sled_config};

/// Errors starting or running the projection.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Bus(#[from] certflow_bus::BusError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    View(#[from] ViewError),
    #[error("cannot clear or set aside {path} for a rebuild: {source}")]
    Wipe {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where the projection keeps its database and how it starts.
#[derive(Debug, Clone)]
pub struct ProjectionConfig {
    /// Directory of the sled database.
    pub db_path: PathBuf,
    /// Wipe the database first and replay the whole log.
    pub rebuild: bool,
    /// Where the projection says whether it has caught up.
    pub readiness: Readiness,
}

/// How far the projection has got through the log it found at start-up.
#[derive(Debug)]
pub struct Progress {
    start_sequence: u64,
    /// The last sequence applied; queries wait on it for a message to be applied.
    applied: tokio::sync::watch::Sender<u64>,
    /// Turns true once, when the projection catches up: the queries wait for it.
    caught_up: tokio::sync::watch::Sender<bool>,
    readiness: Readiness,
}

impl Progress {
    fn new(applied: u64, start_sequence: u64, readiness: Readiness) -> Self {
        let progress = Progress {
            start_sequence,
            applied: tokio::sync::watch::Sender::new(0),
            caught_up: tokio::sync::watch::Sender::new(false),
            readiness,
        };
        progress.applied(applied);
        progress
    }

    /// Records that everything up to `sequence` is applied and flushed.
    fn applied(&self, sequence: u64) {
        self.applied.send_if_modified(|applied| {
            let moved = sequence > *applied;
            *applied = (*applied).max(sequence);
            moved
        });
        instruments()
            .projection_applied_sequence
            .record(sequence, &[]);
        if *self.caught_up.borrow() {
            return;
        }
        if sequence >= self.start_sequence {
            self.caught_up.send_replace(true);
            self.readiness.ready("projection");
            info!(sequence, "projection caught up with the log");
        } else {
            self.readiness.not_ready(
                "projection",
                format!(
                    "replaying the log: sequence {sequence} of {}",
                    self.start_sequence
                ),
            );
        }
    }

    /// The last stream sequence applied.
    pub(crate) fn applied_sequence(&self) -> u64 {
        *self.applied.borrow()
    }

    /// Waits until the message at `sequence` is applied, for at most `within`; whether it is.
    pub(crate) async fn wait_applied(&self, sequence: u64, within: Duration) -> bool {
        let mut applied = self.applied.subscribe();
        tokio::time::timeout(within, applied.wait_for(|applied| *applied >= sequence))
            .await
            .is_ok_and(|waited| waited.is_ok())
    }

    /// Waits until the log found at start-up is applied.
    async fn wait_caught_up(&self) {
        let mut caught_up = self.caught_up.subscribe();
        // The sender lives as long as `self`, so this cannot fail.
        let _ = caught_up.wait_for(|caught_up| *caught_up).await;
    }

    /// The answer to `certflow.query.status`.
    pub fn status(&self) -> ProjectionStatusResponse {
        ProjectionStatusResponse {
            caught_up: *self.caught_up.borrow(),
            applied_sequence: *self.applied.borrow(),
            start_sequence: self.start_sequence,
        }
    }
}

/// Messages applied in one transaction at most.
const CHUNK: usize = 1_000;

/// The projection service, subscribed and ready to run.
#[derive(Debug)]
pub struct ProjectionService {
    db: ProjectionDb,
    store: EventStore,
    feed: EventFeed,
    client: async_nats::Client,
    progress: Arc<Progress>,
}

impl ProjectionService {
    /// Opens (or rebuilds) the database and positions the consumer after what it holds.
    pub async fn bind(
        client: async_nats::Client,
        store: &EventStore,
        config: &ProjectionConfig,
    ) -> Result<Self, ProjectionError> {
        if config.rebuild && config.db_path.exists() {
            info!(path = %config.db_path.display(), "rebuilding the projection from the log");
            std::fs::remove_dir_all(&config.db_path).map_err(|source| ProjectionError::Wipe {
                path: config.db_path.clone(),
                source,
            })?;
        }
        let (db, applied) = open_or_set_aside(&config.db_path)?;
        let start_sequence = store.last_sequence().await?;
        info!(applied, start_sequence, "projection resumes after sequence");
        let progress = Arc::new(Progress::new(
            applied,
            start_sequence,
            config.readiness.clone(),
        ));
        let feed = store.follow(applied).await?;
        Ok(ProjectionService {
            db,
            store: store.clone(),
            feed,
            client,
            progress,
        })
    }

    /// The database, e.g. for inspection in tests.
    pub fn db(&self) -> &ProjectionDb {
        &self.db
    }

    /// Applies events until `shutdown`, and answers queries once caught up.
    pub async fn run(self, shutdown: CancellationToken) {
        let ProjectionService {
            db,
            store,
            feed,
            client,
            progress,
        } = self;
        let queries = serve_queries(
            client,
            db.clone(),
            store.clone(),
            progress.clone(),
            shutdown.clone(),
        );
        let deadlines = report_open_validations(db.clone(), progress.clone(), shutdown.clone());
        let applier = Applier {
            db,
            store,
            progress,
        };
        tokio::join!(applier.run(feed, shutdown), queries, deadlines);
    }
}

/// How often the open validations are counted.
const DEADLINES_INTERVAL: Duration = Duration::from_secs(15);

/// Once caught up, records `certflow.validations.open` by `due` every
/// [`DEADLINES_INTERVAL`]: `overdue` (past the deadline, not concluded: the validation
/// service is behind), `within_24h` (customers who must act soon), `later`.
async fn report_open_validations(
    db: ProjectionDb,
    progress: Arc<Progress>,
    shutdown: CancellationToken,
) {
    tokio::select! {
        _ = shutdown.cancelled() => return,
        _ = progress.wait_caught_up() => {}
    }
    loop {
        match db.open_validations(certflow_runtime::now(), certflow_domain::Duration::days(1)) {
            Ok(open) => {
                let gauge = &certflow_telemetry::instruments().validations_open;
                for (due, count) in [
                    ("overdue", open.overdue),
                    ("within_24h", open.soon),
                    ("later", open.later),
                ] {
                    gauge.record(count, &[opentelemetry::KeyValue::new("due", due)]);
                }
            }
            Err(err) => warn!(error = %err, "cannot count open validations"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(DEADLINES_INTERVAL) => {}
        }
    }
}

/// Joins the query group once the projection has caught up, then answers until `shutdown`.
async fn serve_queries(
    client: async_nats::Client,
    db: ProjectionDb,
    store: EventStore,
    progress: Arc<Progress>,
    shutdown: CancellationToken,
) {
    tokio::select! {
        _ = shutdown.cancelled() => return,
        _ = progress.wait_caught_up() => {}
    }
    let mut backoff = Duration::from_millis(100);
    let responder = loop {
        match Responder::bind(client.clone(), subjects::QUERIES, "projection").await {
            Ok(responder) => break responder,
            Err(err) => warn!(error = %err, ?backoff, "projection cannot subscribe to queries yet"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    };
    info!("projection answers queries");
    responder
        .run(shutdown, move |request| {
            let db = db.clone();
            let store = store.clone();
            let progress = progress.clone();
            async move {
                let queries = queries::Queries {
                    db: &db,
                    store: &store,
                    progress: &progress,
                };
                queries::answer(queries, request).await
            }
        })
        .await;
}

/// Opens the database and reads where it is. A database that cannot be opened or read
/// (damaged files, a crash of the disk beneath it) is moved aside, not deleted, for an
/// operator to look at, and a new one replays the log: the log is the truth and the
/// projection only a view of it.
fn open_or_set_aside(path: &Path) -> Result<(ProjectionDb, u64), ProjectionError> {
    let opened = ProjectionDb::open(path).and_then(|db| {
        let applied = db.applied_sequence()?;
        Ok((db, applied))
    });
    let damage = match opened {
        Ok(opened) => return Ok(opened),
        Err(err) => err,
    };
    let aside = set_aside_path(path);
    error!(
        path = %path.display(),
        moved_to = %aside.display(),
        error = %damage,
        "the projection database cannot be read; moving it aside and rebuilding from the log"
    );
    std::fs::rename(path, &aside).map_err(|source| ProjectionError::Wipe {
        path: path.to_path_buf(),
        source,
    })?;
    let db = ProjectionDb::open(path)?;
    let applied = db.applied_sequence()?;
    Ok((db, applied))
}

/// `<path>.damaged-<unix seconds>`, beside the database.
fn set_aside_path(path: &Path) -> PathBuf {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".damaged-{seconds}"));
    path.with_file_name(name)
}

/// Applies the feed to the database.
struct Applier {
    db: ProjectionDb,
    store: EventStore,
    progress: Arc<Progress>,
}

impl Applier {
    /// The applying loop: one explicit loop over chunks, errors and shutdown. A reader task
    /// reads and decodes the next chunk while this one is applied. After any failure the
    /// feed starts again just after what sled holds, so a chunk that was not applied is read
    /// again.
    async fn run(self, feed: EventFeed, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        let mut feed = Some(feed);
        loop {
            let Some(current) = feed.take() else { return };
            let (chunks, mut received) = tokio::sync::mpsc::channel(1);
            let reader = tokio::spawn(read_chunks(current, chunks));
            let failure = loop {
                let chunk = tokio::select! {
                    _ = shutdown.cancelled() => {
                        reader.abort();
                        return;
                    }
                    chunk = received.recv() => chunk,
                };
                match chunk {
                    Some(Ok(chunk)) => match self.apply(&chunk).await {
                        Ok(()) => backoff = Duration::from_millis(100),
                        Err(err) => break err.to_string(),
                    },
                    Some(Err(err)) => break err.to_string(),
                    None => break "the event feed ended".to_string(),
                }
            };
            // Chunks read ahead of the failure are dropped: the new feed starts after what
            // sled holds, so they come again.
            reader.abort();
            warn!(error = %failure, ?backoff, "projection resumes from its database");
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                let resumed = match self.db.applied_sequence() {
                    Ok(applied) => self.store.follow(applied).await.map_err(|e| e.to_string()),
                    Err(err) => Err(err.to_string()),
                };
                match resumed {
                    Ok(resumed) => {
                        feed = Some(resumed);
                        break;
                    }
                    Err(err) => error!(error = %err, "cannot resume the event feed yet"),
                }
            }
        }
    }

    async fn apply(&self, chunk: &[Delivered]) -> Result<(), ProjectionError> {
        // One span per event, in the trace of the command that appended it, covering the
        // transaction that applies it; only built when traces are exported.
        let _spans: Vec<tracing::Span> = if certflow_telemetry::exporting_traces() {
            chunk.iter().map(event_span).collect()
        } else {
            Vec::new()
        };
        let started = std::time::Instant::now();
        self.db.apply(chunk)?;
        let applied = started.elapsed();
        self.db.flush().await?;
        tracing::debug!(
            messages = chunk.len(),
            apply_us = applied.as_micros() as u64,
            flush_us = (started.elapsed() - applied).as_micros() as u64,
            "chunk applied"
        );
        if let Some(last) = chunk.last() {
            self.progress.applied(last.sequence);
        }
        Ok(())
    }
}

/// Reads chunks from `feed` into `chunks` until the feed ends, fails, or the applier stops
/// listening.
async fn read_chunks(
    mut feed: EventFeed,
    chunks: tokio::sync::mpsc::Sender<Result<Vec<Delivered>, StoreError>>,
) {
    loop {
        let chunk = feed.next_chunk(CHUNK).await;
        let last = !matches!(chunk, Some(Ok(_)));
        let Some(chunk) = chunk else { return };
        if chunks.send(chunk).await.is_err() || last {
            return;
        }
    }
}

fn event_span(delivered: &Delivered) -> tracing::Span {
    let span = info_span!(
        "projection.apply",
        service = "projection",
        sequence = delivered.sequence,
        certificate = tracing::field::Empty,
    );
    if let Ok(batch) = &delivered.batch {
        span.record(
            "certificate",
            tracing::field::display(&batch.certificate_id),
        );
        propagation::set_parent(&span, batch.meta.traceparent.as_deref());
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caught_up_once_the_log_found_at_start_is_applied() {
        let readiness = Readiness::default();
        let progress = Progress::new(0, 5, readiness.clone());
        assert!(!progress.status().caught_up);
        let (ready, report) = readiness.report();
        assert!(!ready);
        assert!(report.contains("sequence 0 of 5"), "{report}");

        progress.applied(3);
        assert!(!progress.status().caught_up);
        assert!(readiness.report().1.contains("sequence 3 of 5"));

        progress.applied(5);
        let status = progress.status();
        assert!(status.caught_up);
        assert_eq!((status.applied_sequence, status.start_sequence), (5, 5));
        assert!(readiness.report().0);
    }

    #[test]
    fn an_empty_log_or_a_database_ahead_is_caught_up_at_once() {
        let readiness = Readiness::default();
        assert!(Progress::new(0, 0, readiness.clone()).status().caught_up);
        assert!(Progress::new(9, 7, readiness.clone()).status().caught_up);
        assert!(readiness.report().0);
    }
}
