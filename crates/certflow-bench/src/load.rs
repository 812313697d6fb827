//! Running calls under load and recording how long each took.
//!
//! Closed loop: a fixed number of callers, each sending its next call when the last one
//! answered. Open loop: calls are sent at a fixed rate whatever happens to earlier ones, and
//! each latency is measured from the moment the call was *scheduled*, so time spent queued
//! behind a slow system counts (no coordinated omission).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::{Semaphore, mpsc};

/// How calls are paced.
#[derive(Debug, Clone, Copy)]
pub enum Schedule {
    /// `concurrency` callers back to back.
    Closed { concurrency: usize },
    /// `rate` calls per second, at most `max_outstanding` unanswered (more are counted as
    /// errors rather than queued, so the rate holds).
    Open { rate: f64, max_outstanding: usize },
}

/// Why one call failed: a gRPC status code name and a message.
#[derive(Debug, Clone)]
pub struct CallError {
    pub code: String,
    pub message: String,
}

impl CallError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        CallError {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl From<tonic::Status> for CallError {
    fn from(status: tonic::Status) -> Self {
        CallError::new(ghz_code_name(status.code()), status.message())
    }
}

/// A status code as ghz reports it (gRPC-Go's `codes.Code` names, e.g. `FailedPrecondition`),
/// so certflow-bench's JSON reports read like ghz's; not the canonical `FAILED_PRECONDITION`.
pub fn ghz_code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Latencies of every call, answered or not, in nanoseconds.
    pub latencies: Histogram<u64>,
    /// Calls by status code name (`OK` for successes).
    pub status_codes: BTreeMap<String, u64>,
    /// Failed calls by `code: message`.
    pub errors: BTreeMap<String, u64>,
    /// Wall time of the whole run.
    pub elapsed: Duration,
    pub schedule: Schedule,
}

impl Recorded {
    fn new(schedule: Schedule) -> Self {
        Recorded {
            latencies: latency_histogram(),
            status_codes: BTreeMap::new(),
            errors: BTreeMap::new(),
            elapsed: Duration::ZERO,
            schedule,
        }
    }

    fn record(&mut self, latency: Duration, outcome: &Result<(), CallError>) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.latencies.saturating_record(nanos.max(1));
        let code = match outcome {
            Ok(()) => "OK".to_string(),
            Err(err) => {
                *self
                    .errors
                    .entry(format!("{}: {}", err.code, err.message))
                    .or_default() += 1;
                err.code.clone()
            }
        };
        *self.status_codes.entry(code).or_default() += 1;
    }

    fn merge(&mut self, other: Recorded) {
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.latencies.add(&other.latencies);
        for (code, count) in other.status_codes {
            *self.status_codes.entry(code).or_default() += count;
        }
        for (error, count) in other.errors {
            *self.errors.entry(error).or_default() += count;
        }
    }

    /// Calls made.
    pub fn count(&self) -> u64 {
        self.latencies.len()
    }

    /// Calls that failed.
    pub fn failures(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Calls per second over the run.
    pub fn rps(&self) -> f64 {
        self.count() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The latency at `quantile` (0..=1).
    pub fn quantile(&self, quantile: f64) -> Duration {
        Duration::from_nanos(self.latencies.value_at_quantile(quantile))
    }
}

/// 1 ns to 60 s at three significant digits.
fn latency_histogram() -> Histogram<u64> {
    // Constant bounds that satisfy every precondition of `new_with_bounds`.
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

fn progress_bar(total: u64, label: &str, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{prefix:>24} [{bar:32}] {pos}/{len} {per_sec} eta {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(label.to_string());
    bar
}

/// Makes `total` calls with `call` (given the call's index) under `schedule`.
pub async fn run<F, Fut>(
    label: &str,
    total: u64,
    schedule: Schedule,
    show_progress: bool,
    call: F,
) -> Recorded
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), CallError>> + Send + 'static,
{
    let bar = progress_bar(total, label, show_progress);
    let call = Arc::new(call);
    let started = Instant::now();
    let mut recorded = match schedule {
        Schedule::Closed { concurrency } => {
            closed(total, concurrency.max(1), schedule, &bar, call).await
        }
        Schedule::Open {
            rate,
            max_outstanding,
        } => open(total, rate, max_outstanding, schedule, &bar, call).await,
    };
    recorded.elapsed = started.elapsed();
    bar.finish_and_clear();
    recorded
}

async fn closed<F, Fut>(
    total: u64,
    concurrency: usize,
    schedule: Schedule,
    bar: &ProgressBar,
    call: Arc<F>,
) -> Recorded
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), CallError>> + Send + 'static,
{
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let next = next.clone();
        let call = call.clone();
        let bar = bar.clone();
        workers.spawn(async move {
            let mut recorded = Recorded::new(schedule);
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= total {
                    return recorded;
                }
                let sent = Instant::now();
                let outcome = call(index).await;
                recorded.record(sent.elapsed(), &outcome);
                bar.inc(1);
            }
        });
    }
    let mut recorded = Recorded::new(schedule);
    while let Some(worker) = workers.join_next().await {
        if let Ok(part) = worker {
            recorded.merge(part);
        }
    }
    recorded
}

async fn open<F, Fut>(
    total: u64,
    rate: f64,
    max_outstanding: usize,
    schedule: Schedule,
    bar: &ProgressBar,
    call: Arc<F>,
) -> Recorded
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), CallError>> + Send + 'static,
{
    let interval = Duration::from_secs_f64(1.0 / rate.max(1e-3));
    let outstanding = Arc::new(Semaphore::new(max_outstanding.max(1)));
    let (results, mut answers) = mpsc::unbounded_channel::<(Duration, Result<(), CallError>)>();
    let start = tokio::time::Instant::now();
    let mut recorded = Recorded::new(schedule);
    for index in 0..total {
        let scheduled = start + interval.mul_f64(index as f64);
        tokio::time::sleep_until(scheduled).await;
        while let Ok((latency, outcome)) = answers.try_recv() {
            recorded.record(latency, &outcome);
            bar.inc(1);
        }
        let Ok(permit) = outstanding.clone().try_acquire_owned() else {
            recorded.record(
                Duration::ZERO,
                &Err(CallError::new(
                    "ResourceExhausted",
                    "dropped: too many calls outstanding",
                )),
            );
            bar.inc(1);
            continue;
        };
        let call = call.clone();
        let results = results.clone();
        tokio::spawn(async move {
            let outcome = call(index).await;
            // From when the call was due, not when it went out.
            let latency = scheduled.elapsed();
            let _ = results.send((latency, outcome));
            drop(permit);
        });
    }
    drop(results);
    while let Some((latency, outcome)) = answers.recv().await {
        recorded.record(latency, &outcome);
        bar.inc(1);
    }
    recorded
}
