//! What the work queues' workers have in common: a feed of tasks held by this worker, and
//! a task that can be handed back. `certflow_runtime::work_queue` runs any of them.

use std::future::Future;
use std::time::Duration;

use crate::StoreError;

/// A task a worker holds until it is done or handed back.
pub trait QueuedTask: Send + 'static {
    /// Hands the task back, to be offered again after `delay`.
    fn again_after(&self, delay: Duration) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The tasks a work queue's shared consumer hands this worker, as they come.
pub trait TaskFeed: Send + 'static {
    type Task: QueuedTask;

    /// The next task; `None` when the subscription ended.
    fn next(&mut self) -> impl Future<Output = Option<Result<Self::Task, StoreError>>> + Send;
}

impl QueuedTask for crate::CheckTask {
    async fn again_after(&self, delay: Duration) -> Result<(), StoreError> {
        crate::CheckTask::again_after(self, delay).await
    }
}

impl TaskFeed for crate::CheckTasks {
    type Task = crate::CheckTask;

    async fn next(&mut self) -> Option<Result<Self::Task, StoreError>> {
        crate::CheckTasks::next(self).await
    }
}

impl QueuedTask for crate::NotifyTask {
    async fn again_after(&self, delay: Duration) -> Result<(), StoreError> {
        crate::NotifyTask::again_after(self, delay).await
    }
}

impl TaskFeed for crate::NotifyTasks {
    type Task = crate::NotifyTask;

    async fn next(&mut self) -> Option<Result<Self::Task, StoreError>> {
        crate::NotifyTasks::next(self).await
    }
}
