//! The one skeleton every command-handling service runs on.
//!
//! A service declares what it is once, in its [`ServiceSpec`]: its name, the subjects it
//! answers and how it reacts to the log. It implements [`Service`]: `answer` for one request,
//! `react` for one batch of events, `background` for work of its own. [`bind`] subscribes it
//! (from then on requests wait for it), and [`Bound::run`] runs its commands, reactions and
//! background work side by side until shutdown.

use std::future::Future;
use std::time::Duration;

use certflow_bus::{BusError, Request, Responder};
use certflow_proto::bus::v1::Reply;
use certflow_store::{EventStore, RecordedBatch};
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::react::{ReactionError, run_reactions};

/// What a service is: declared once, read by the skeleton and by provisioning.
#[derive(Debug, Clone, Copy)]
pub struct ServiceSpec {
    /// Its name: queue group, NATS user, recorded actor (`certflow-<name>`), logs, and the
    /// durable consumer of the log it reacts through.
    pub name: &'static str,
    /// The subjects it answers, each on the queue group `name`.
    pub answers: &'static [&'static str],
    /// How it reacts to the log; `None`: it does not.
    pub reacts: Option<Reacts>,
}

/// How a service reacts to the log.
#[derive(Debug, Clone, Copy)]
pub struct Reacts {
    /// How long an event an instance was handling waits, when that instance dies, before
    /// another instance gets it: the durable consumer's ack wait, set by `certd provision`.
    pub redelivery: Duration,
    /// Events one instance handles at once.
    pub concurrency: usize,
}

impl ServiceSpec {
    /// A service named `name` that answers `answers` and does not react to the log.
    pub const fn answering(name: &'static str, answers: &'static [&'static str]) -> Self {
        ServiceSpec {
            name,
            answers,
            reacts: None,
        }
    }

    /// The same service, reacting to the log as `reacts` says.
    pub const fn reacting(self, reacts: Reacts) -> Self {
        ServiceSpec {
            reacts: Some(reacts),
            ..self
        }
    }
}

impl Reacts {
    /// What most reactions need: a decision and an append each, 32 at once; an event an
    /// instance died holding waits 30 s for another.
    pub const STANDARD: Reacts = Reacts {
        redelivery: Duration::from_secs(30),
        concurrency: 32,
    };
}

/// Why a service could not start: the bus or a store it attaches to was not there.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Store(#[from] certflow_store::StoreError),
}

/// A service's behaviour. Everything else (subscribing, feeding the log, shutting down) is
/// the skeleton's.
pub trait Service: Clone + Send + Sync + 'static {
    /// What the service is.
    const SPEC: ServiceSpec;

    /// Answers one request on one of the subjects it answers.
    fn answer(&self, request: Request) -> impl Future<Output = Reply> + Send;

    /// Reacts to one batch of the log; an error has it offered again later. Called only
    /// when the spec says the service reacts.
    fn react(
        &self,
        batch: RecordedBatch,
    ) -> impl Future<Output = Result<(), ReactionError>> + Send {
        let _ = batch;
        async { Ok(()) }
    }

    /// Work of its own besides commands and reactions (a queue to work, CRLs to publish),
    /// until `shutdown`.
    fn background(&self, shutdown: CancellationToken) -> impl Future<Output = ()> + Send {
        let _ = shutdown;
        async {}
    }
}

/// A service subscribed to its subjects, ready to run.
#[derive(Debug)]
pub struct Bound<S> {
    service: S,
    responders: Vec<Responder>,
    store: EventStore,
}

/// Subscribes `service` to the subjects its spec names; requests sent from now on wait for
/// it. `store` is the log it reacts to.
pub async fn bind<S: Service>(
    client: async_nats::Client,
    store: EventStore,
    service: S,
) -> Result<Bound<S>, BusError> {
    let mut responders = Vec::with_capacity(S::SPEC.answers.len());
    for subject in S::SPEC.answers {
        responders.push(Responder::bind(client.clone(), subject, S::SPEC.name).await?);
    }
    Ok(Bound {
        service,
        responders,
        store,
    })
}

impl<S: Service> Bound<S> {
    /// Answers requests, reacts to the log and does the background work, side by side,
    /// until `shutdown`; then finishes what is in flight.
    pub async fn run(self, shutdown: CancellationToken) {
        let Bound {
            service,
            responders,
            store,
        } = self;
        let answering = futures::future::join_all(responders.into_iter().map(|responder| {
            let service = service.clone();
            responder.run(shutdown.clone(), move |request| {
                let service = service.clone();
                async move { service.answer(request).await }
            })
        }));
        let reacting = async {
            if let Some(reacts) = S::SPEC.reacts {
                run_reactions(
                    store,
                    S::SPEC.name,
                    reacts.concurrency,
                    shutdown.clone(),
                    |batch| {
                        let service = service.clone();
                        async move { service.react(batch).await }
                    },
                )
                .await;
            }
        };
        let background = service.background(shutdown.clone());
        tokio::join!(answering, reacting, background);
        info!(service = S::SPEC.name, "stopped");
    }
}
