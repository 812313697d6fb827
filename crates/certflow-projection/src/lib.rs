//! The projection service: folds the event log into sled and answers queries.
//!
//! A durable pull consumer delivers every certificate's events in stream order. Each chunk
//! of messages is applied in one sled transaction that also stores the last applied stream
//! sequence; sled is flushed, and only then is the chunk acknowledged. The certificate state
//! comes from the domain's own `evolve`, so reads and writes agree on what events mean.
//!
//! The sled database is the projection's only record of where it is: on start the consumer
//! is re-created just after the last applied sequence, so a wiped or rebuilt database
//! replays the whole log and reaches the same state. Messages at or below a certificate's
//! last applied sequence are skipped, so redelivery changes nothing.
//!
//! Queries arrive on `certflow.query.>` (queue group `projection`).

#![forbid(unsafe_code)]

mod queries;
mod view;

use std::path::PathBuf;
use std::time::Duration;

use certflow_bus::{CancellationToken, Responder, subjects};
use certflow_eventstore::{Delivered, EventFeed, EventStore, StoreError};
use tracing::{error, info, warn};

pub use view::{ProjectionDb, ViewError};

/// Errors starting or running the projection.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Bus(#[from] certflow_bus::BusError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    View(#[from] ViewError),
    #[error("cannot clear {path} for a rebuild: {source}")]
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
    /// Name of the durable consumer; one per projection replica.
    pub durable: String,
    /// Wipe the database first and replay the whole log.
    pub rebuild: bool,
}

/// Messages applied in one transaction at most.
const CHUNK: usize = 1_000;

/// The projection service, subscribed and ready to run.
#[derive(Debug)]
pub struct ProjectionService {
    db: ProjectionDb,
    store: EventStore,
    durable: String,
    feed: EventFeed,
    responder: Responder,
}

impl ProjectionService {
    /// Opens (or rebuilds) the database, positions the consumer after what it holds, and
    /// subscribes to queries.
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
        let db = ProjectionDb::open(&config.db_path)?;
        let applied = db.applied_sequence()?;
        info!(applied, "projection resumes after sequence");
        let feed = store.follow(&config.durable, applied).await?;
        let responder = Responder::bind(client, subjects::QUERIES, "projection").await?;
        Ok(ProjectionService {
            db,
            store: store.clone(),
            durable: config.durable.clone(),
            feed,
            responder,
        })
    }

    /// The database, e.g. for inspection in tests.
    pub fn db(&self) -> &ProjectionDb {
        &self.db
    }

    /// Applies events and answers queries until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let ProjectionService {
            db,
            store,
            durable,
            feed,
            responder,
        } = self;
        let query_db = db.clone();
        let queries = responder.run(shutdown.clone(), move |request| {
            let db = query_db.clone();
            async move { queries::answer(&db, request) }
        });
        let applier = Applier { db, store, durable };
        tokio::join!(applier.run(feed, shutdown), queries);
    }
}

/// Applies the feed to the database.
struct Applier {
    db: ProjectionDb,
    store: EventStore,
    durable: String,
}

impl Applier {
    /// The consumer loop: one explicit loop over chunks, errors and shutdown. After any
    /// failure the feed is re-created just after what sled holds: the consumer acknowledges
    /// everything up to the message it is told about, so carrying on past a chunk that was
    /// not applied would lose it.
    async fn run(self, mut feed: EventFeed, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let chunk = tokio::select! {
                _ = shutdown.cancelled() => return,
                chunk = feed.next_chunk(CHUNK) => chunk,
            };
            let failure = match chunk {
                Some(Ok(chunk)) => match self.apply(&chunk).await {
                    Ok(()) => {
                        backoff = Duration::from_millis(100);
                        continue;
                    }
                    Err(err) => err.to_string(),
                },
                Some(Err(err)) => err.to_string(),
                None => "the event feed ended".to_string(),
            };
            warn!(error = %failure, ?backoff, "projection resumes from its database");
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                let resumed = match self.db.applied_sequence() {
                    Ok(applied) => self
                        .store
                        .follow(&self.durable, applied)
                        .await
                        .map_err(|e| e.to_string()),
                    Err(err) => Err(err.to_string()),
                };
                match resumed {
                    Ok(resumed) => {
                        feed = resumed;
                        break;
                    }
                    Err(err) => error!(error = %err, "cannot resume the event feed yet"),
                }
            }
        }
    }

    async fn apply(&self, chunk: &[Delivered]) -> Result<(), ProjectionError> {
        self.db.apply(chunk)?;
        self.db.flush().await?;
        if let Some(last) = chunk.last() {
            last.ack().await?;
        }
        Ok(())
    }
}
