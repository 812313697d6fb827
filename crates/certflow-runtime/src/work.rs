//! [`work_queue`]: how a service works a work queue, the one loop every queue's workers
//! share.

use std::future::Future;
use std::time::Duration;

use certflow_bus::CancellationToken;
use certflow_store::{QueuedTask, StoreError, TaskFeed};
use futures::{FutureExt, StreamExt};
use tracing::warn;

/// Works the tasks of `attach`'s feed until `shutdown`, `concurrency` at a time, each with
/// `run` (which settles it: done or handed back), telling JetStream every third of the ack
/// wait that a task is still being worked, so a slow one is never handed to a second worker. Attaches again when the subscription ends
/// or cannot be made yet. On shutdown, tasks fetched but not started are handed back at
/// once rather than after the ack wait. `queue` names the queue in logs.
pub async fn work_queue<F, Attach, Attached, Run, Ran>(
    queue: &'static str,
    attach: Attach,
    concurrency: usize,
    shutdown: CancellationToken,
    run: Run,
) where
    F: TaskFeed,
    Attach: Fn() -> Attached,
    Attached: Future<Output = Result<F, StoreError>>,
    Run: Fn(F::Task) -> Ran,
    Ran: Future<Output = ()>,
{
    while !shutdown.is_cancelled() {
        let feed = match attach().await {
            Ok(feed) => feed,
            Err(err) => {
                warn!(queue, error = %err, "cannot attach to the queue; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(2)) => continue,
                }
            }
        };
        // A word well within the ack wait keeps each task held while it is worked.
        let beat = (feed.ack_wait() / 3).max(Duration::from_millis(100));
        let mut fetched = Box::pin(futures::stream::unfold(feed, |mut feed| async move {
            feed.next().await.map(|task| (task, feed))
        }));
        fetched
            .by_ref()
            .take_until(shutdown.cancelled())
            .for_each_concurrent(concurrency.max(1), |task| async {
                match task {
                    Ok(task) => {
                        let alive = task.keep_alive();
                        let work = run(task);
                        tokio::pin!(work);
                        loop {
                            tokio::select! {
                                () = &mut work => break,
                                () = tokio::time::sleep(beat) => {
                                    if let Err(err) = alive.still_working().await {
                                        warn!(queue, error = %err, "could not keep a task held");
                                    }
                                }
                            }
                        }
                    }
                    Err(err) => warn!(queue, error = %err, "queue hiccup"),
                }
            })
            .await;
        if shutdown.is_cancelled() {
            while let Some(Some(Ok(task))) = fetched.next().now_or_never() {
                if let Err(err) = task.again_after(Duration::ZERO).await {
                    warn!(queue, error = %err, "could not hand a task back on shutdown");
                }
            }
        } else {
            // The subscription ended: attach again, without spinning.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}
