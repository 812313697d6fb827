//! Calling again when the gateway says "later": `UNAVAILABLE` (a service or NATS away for a
//! moment) and `RESOURCE_EXHAUSTED` (the account's rate) are retried with the very same
//! request, request id included, so a command that did happen the first time returns its
//! first outcome (GEN-1) instead of happening twice.

use std::future::Future;
use std::time::Duration;

use certflow_proto::retry::{jittered, random_unit};
use tonic::{Code, Status};
use tonic_types::StatusExt as _;

/// Most calls of one command, the first included.
pub const MAX_ATTEMPTS: u32 = 5;
/// The wait before the second call when the gateway gives no `RetryInfo`; doubled each time.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// No wait is longer than this, whatever `RetryInfo` says.
const LONGEST_WAIT: Duration = Duration::from_secs(10);

/// Whether `status` asks to call again later.
pub fn retryable(status: &Status) -> bool {
    matches!(status.code(), Code::Unavailable | Code::ResourceExhausted)
}

/// How long to wait before call `attempt` (2 for the first retry): what the answer's
/// `RetryInfo` says, else a doubling backoff, plus up to as much again at random (`unit`
/// in [0, 1)), so clients refused together do not all come back together.
pub fn wait_before(attempt: u32, status: &Status, unit: f64) -> Duration {
    let base = status
        .get_details_retry_info()
        .and_then(|info| info.retry_delay)
        .unwrap_or_else(|| FIRST_BACKOFF.saturating_mul(1 << attempt.saturating_sub(2).min(6)));
    jittered(base.min(LONGEST_WAIT), unit).min(LONGEST_WAIT)
}

/// Calls `call(client, request)` until it is answered with something other than a
/// retryable status, at most [`MAX_ATTEMPTS`] times, with the same request each time.
pub async fn patiently<C, R, T, F, Fut>(client: C, request: R, mut call: F) -> Result<T, Status>
where
    C: Clone,
    R: Clone,
    F: FnMut(C, R) -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    let mut attempt = 1;
    loop {
        match call(client.clone(), request.clone()).await {
            Err(status) if retryable(&status) && attempt < MAX_ATTEMPTS => {
                attempt += 1;
                let wait = wait_before(attempt, &status, random_unit());
                eprintln!(
                    "{:?}: {}; trying again in {} ms with the same request ({attempt}/{MAX_ATTEMPTS})",
                    status.code(),
                    status.message(),
                    wait.as_millis()
                );
                tokio::time::sleep(wait).await;
            }
            answer => return answer,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use tonic_types::ErrorDetails;

    fn limited(wait: Duration) -> Status {
        Status::with_error_details(
            Code::ResourceExhausted,
            "slow down",
            ErrorDetails::with_retry_info(Some(wait)),
        )
    }

    #[test]
    fn the_wait_is_what_retry_info_says_and_at_most_as_much_again() {
        let status = limited(Duration::from_millis(300));
        assert_eq!(wait_before(2, &status, 0.0), Duration::from_millis(300));
        assert_eq!(wait_before(2, &status, 0.5), Duration::from_millis(450));
        assert!(wait_before(2, &status, 0.999) < Duration::from_millis(600));
    }

    #[test]
    fn without_retry_info_the_wait_doubles_and_is_bounded() {
        let status = Status::unavailable("away");
        assert_eq!(wait_before(2, &status, 0.0), Duration::from_millis(200));
        assert_eq!(wait_before(3, &status, 0.0), Duration::from_millis(400));
        assert_eq!(wait_before(4, &status, 0.0), Duration::from_millis(800));
        assert_eq!(wait_before(40, &status, 0.9), LONGEST_WAIT);
        assert_eq!(
            wait_before(2, &limited(Duration::from_secs(3600)), 0.0),
            LONGEST_WAIT
        );
    }

    #[tokio::test]
    async fn gen1_a_retryable_answer_is_retried_with_the_same_request_until_answered() {
        let calls = Arc::new(AtomicU32::new(0));
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let answer = patiently((), "request-1".to_string(), |(), request| {
            let calls = calls.clone();
            let seen = seen.clone();
            async move {
                seen.lock().expect("lock").push(request);
                match calls.fetch_add(1, Ordering::SeqCst) {
                    0 => Err(limited(Duration::from_millis(1))),
                    1 => Err(Status::unavailable("a service is away")),
                    _ => Ok("done"),
                }
            }
        })
        .await;
        assert_eq!(answer.expect("answered"), "done");
        assert_eq!(*seen.lock().expect("lock"), vec!["request-1"; 3]);
    }

    #[tokio::test]
    async fn a_refusal_is_not_retried_and_retries_are_bounded() {
        let calls = Arc::new(AtomicU32::new(0));
        let counted = calls.clone();
        let refused: Result<(), Status> = patiently((), (), move |(), ()| {
            counted.fetch_add(1, Ordering::SeqCst);
            async { Err(Status::failed_precondition("ALREADY_REVOKED")) }
        })
        .await;
        assert_eq!(
            refused.expect_err("refused").code(),
            Code::FailedPrecondition
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let calls = Arc::new(AtomicU32::new(0));
        let counted = calls.clone();
        let away: Result<(), Status> = patiently((), (), move |(), ()| {
            counted.fetch_add(1, Ordering::SeqCst);
            async { Err(limited(Duration::from_millis(1))) }
        })
        .await;
        assert_eq!(away.expect_err("gave up").code(), Code::ResourceExhausted);
        assert_eq!(calls.load(Ordering::SeqCst), MAX_ATTEMPTS);
    }
}
