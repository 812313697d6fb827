//! What the work queues' workers have in common: a feed of tasks held by this worker, and
//! a task that can be handed back or kept while it is worked. `certflow_runtime::work_queue`
//! runs any of them.

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind};

use crate::StoreError;

/// Keeps a task held while it is worked: each word restarts its ack wait, so a task that
/// takes longer than the wait is not handed to a second worker.
#[derive(Debug, Clone)]
pub struct KeepAlive(jetstream::Message);

impl KeepAlive {
    /// Tells JetStream the task is still being worked.
    pub async fn still_working(&self) -> Result<(), StoreError> {
        self.0
            .ack_with(AckKind::Progress)
            .await
            .map_err(StoreError::Unavailable)
    }
}

/// A task a worker holds until it is done or handed back.
pub trait QueuedTask: Send + 'static {
    /// Hands the task back, to be offered again after `delay`.
    fn again_after(&self, delay: Duration) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// What keeps the task held while it is worked.
    fn keep_alive(&self) -> KeepAlive;
}

/// The tasks a work queue's shared consumer hands this worker, as they come.
pub trait TaskFeed: Send + 'static {
    type Task: QueuedTask;

    /// The consumer's ack wait: a task held longer without a word goes to another worker.
    fn ack_wait(&self) -> Duration;

    /// The next task; `None` when the subscription ended.
    fn next(&mut self) -> impl Future<Output = Option<Result<Self::Task, StoreError>>> + Send;
}

impl QueuedTask for crate::CheckTask {
    async fn again_after(&self, delay: Duration) -> Result<(), StoreError> {
        crate::CheckTask::again_after(self, delay).await
    }

    fn keep_alive(&self) -> KeepAlive {
        KeepAlive(self.message.clone())
    }
}

impl TaskFeed for crate::CheckTasks {
    type Task = crate::CheckTask;

    fn ack_wait(&self) -> Duration {
        self.ack_wait
    }

    async fn next(&mut self) -> Option<Result<Self::Task, StoreError>> {
        crate::CheckTasks::next(self).await
    }
}

impl QueuedTask for crate::NotifyTask {
    async fn again_after(&self, delay: Duration) -> Result<(), StoreError> {
        crate::NotifyTask::again_after(self, delay).await
    }

    fn keep_alive(&self) -> KeepAlive {
        KeepAlive(self.message.clone())
    }
}

impl TaskFeed for crate::NotifyTasks {
    type Task = crate::NotifyTask;

    fn ack_wait(&self) -> Duration {
        self.ack_wait
    }

    async fn next(&mut self) -> Option<Result<Self::Task, StoreError>> {
        crate::NotifyTasks::next(self).await
    }
}
