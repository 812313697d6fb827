//! Replies of many messages (batched direct gets) on one long-lived subscription.
//!
//! A request answered by several messages cannot use the client's request-reply, which
//! takes the first reply only; subscribing to an inbox of its own per request would make
//! every read a subscribe and an unsubscribe, which the server must spread through its
//! interest graph and which clears its routing caches: under load that costs more than the
//! read. So each event store subscribes once to `<inbox>.*` and hands each reply to the
//! reader whose token ends its subject.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::StreamExt;
use tokio::sync::{OnceCell, mpsc};

use crate::store::StoreError;

/// The readers waiting for replies, by token.
type Waiting = Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<async_nats::Message>>>>;

/// One subscription for every multi-message reply of a client.
#[derive(Debug, Default)]
pub(crate) struct Replies {
    routes: OnceCell<Routes>,
    next: AtomicU64,
}

#[derive(Debug)]
struct Routes {
    prefix: String,
    waiting: Waiting,
}

/// A reader's replies; its token is given back when dropped.
pub(crate) struct Inbox {
    pub(crate) subject: String,
    pub(crate) replies: mpsc::UnboundedReceiver<async_nats::Message>,
    token: u64,
    waiting: Waiting,
}

impl Drop for Inbox {
    fn drop(&mut self) {
        lock(&self.waiting).remove(&self.token);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Replies {
    /// A reply subject of its own and the replies sent to it. The subscription is made on
    /// first use and lives as long as the client (it is renewed on reconnect).
    pub(crate) async fn inbox(&self, client: &async_nats::Client) -> Result<Inbox, StoreError> {
        let routes = self
            .routes
            .get_or_try_init(|| async {
                let prefix = client.new_inbox();
                let mut subscription = client
                    .subscribe(format!("{prefix}.*"))
                    .await
                    .map_err(StoreError::unavailable)?;
                let waiting: Waiting = Arc::default();
                let routed = Arc::downgrade(&waiting);
                tokio::spawn(async move {
                    while let Some(message) = subscription.next().await {
                        let Some(waiting) = routed.upgrade() else {
                            break;
                        };
                        let token = message
                            .subject
                            .rsplit('.')
                            .next()
                            .and_then(|token| token.parse::<u64>().ok());
                        if let Some(reader) = token.and_then(|t| lock(&waiting).get(&t).cloned()) {
                            // A reader that stopped listening no longer cares.
                            let _ = reader.send(message);
                        }
                    }
                });
                Ok::<_, StoreError>(Routes { prefix, waiting })
            })
            .await?;
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        let (sender, replies) = mpsc::unbounded_channel();
        lock(&routes.waiting).insert(token, sender);
        Ok(Inbox {
            subject: format!("{}.{token}", routes.prefix),
            replies,
            token,
            waiting: routes.waiting.clone(),
        })
    }
}
