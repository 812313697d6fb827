//! Results in ghz's JSON report format (`ghz --format json`), so tools that read ghz
//! reports read these too: durations in nanoseconds, histogram marks in seconds.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::load::{Recorded, Schedule};

/// A ghz JSON report.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GhzReport {
    pub name: String,
    pub date: String,
    pub options: GhzOptions,
    pub count: u64,
    pub total: u64,
    pub average: u64,
    pub fastest: u64,
    pub slowest: u64,
    pub rps: f64,
    pub histogram: Vec<Bucket>,
    pub latency_distribution: Vec<LatencyPoint>,
    pub status_code_distribution: BTreeMap<String, u64>,
    pub error_distribution: BTreeMap<String, u64>,
}

/// The options ghz echoes into a report, as far as they apply.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GhzOptions {
    pub call: String,
    pub host: String,
    pub total: u64,
    pub concurrency: u64,
    /// Open loop: the fixed rate; 0 for closed loop.
    pub rps: u64,
}

#[derive(Debug, Serialize)]
pub struct Bucket {
    /// Upper edge of the bucket, in seconds.
    pub mark: f64,
    pub count: u64,
    pub frequency: f64,
}

#[derive(Debug, Serialize)]
pub struct LatencyPoint {
    pub percentage: u32,
    /// Nanoseconds.
    pub latency: u64,
}

impl GhzReport {
    /// The report of `recorded`, a run of `call` against `host`.
    pub fn new(name: &str, call: &str, host: &str, recorded: &Recorded) -> Self {
        let latencies = &recorded.latencies;
        let count = latencies.len();
        let (concurrency, rps) = match recorded.schedule {
            Schedule::Closed { concurrency } => (concurrency as u64, 0),
            Schedule::Open { rate, .. } => (0, rate.round() as u64),
        };
        GhzReport {
            name: name.to_string(),
            date: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            options: GhzOptions {
                call: call.to_string(),
                host: host.to_string(),
                total: count,
                concurrency,
                rps,
            },
            count,
            total: u64::try_from(recorded.elapsed.as_nanos()).unwrap_or(u64::MAX),
            average: latencies.mean().round() as u64,
            fastest: latencies.min(),
            slowest: latencies.max(),
            rps: recorded.rps(),
            histogram: histogram(recorded),
            latency_distribution: [10, 25, 50, 75, 90, 95, 99]
                .into_iter()
                .map(|percentage| LatencyPoint {
                    percentage,
                    latency: latencies.value_at_quantile(f64::from(percentage) / 100.0),
                })
                .collect(),
            status_code_distribution: recorded.status_codes.clone(),
            error_distribution: recorded.errors.clone(),
        }
    }

    /// Writes the report as pretty JSON to `path`.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_vec_pretty(self)?)?;
        Ok(())
    }
}

/// Ten equal-width buckets from fastest to slowest, as ghz draws them.
fn histogram(recorded: &Recorded) -> Vec<Bucket> {
    let latencies = &recorded.latencies;
    let count = latencies.len();
    if count == 0 {
        return Vec::new();
    }
    let (fastest, slowest) = (latencies.min(), latencies.max());
    let width = ((slowest - fastest) / 10).max(1);
    (1..=10)
        .map(|i| {
            let low = fastest + width * (i - 1);
            let high = if i == 10 {
                slowest
            } else {
                fastest + width * i
            };
            let in_bucket = latencies.count_between(low, high)
                - if i > 1 { latencies.count_at(low) } else { 0 };
            Bucket {
                mark: high as f64 / 1e9,
                count: in_bucket,
                frequency: in_bucket as f64 / count as f64,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{CallError, Schedule};

    #[tokio::test]
    async fn a_report_has_ghz_fields_in_nanoseconds() {
        let recorded = crate::load::run(
            "test",
            100,
            Schedule::Closed { concurrency: 4 },
            false,
            |index| async move {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                if index % 10 == 0 {
                    Err(CallError::new("Unavailable", "down"))
                } else {
                    Ok(())
                }
            },
        )
        .await;
        let report = GhzReport::new("t", "pkg.Service/Method", "127.0.0.1:1", &recorded);
        let json = serde_json::to_value(&report).expect("json");
        assert_eq!(json["count"], 100);
        assert_eq!(json["statusCodeDistribution"]["OK"], 90);
        assert_eq!(json["statusCodeDistribution"]["Unavailable"], 10);
        assert_eq!(json["errorDistribution"]["Unavailable: down"], 10);
        let fastest = json["fastest"].as_u64().expect("fastest");
        assert!(
            fastest >= 1_000_000,
            "a 1 ms call is at least 1e6 ns: {fastest}"
        );
        let points = json["latencyDistribution"]
            .as_array()
            .expect("distribution");
        assert_eq!(points.len(), 7);
        assert_eq!(points[2]["percentage"], 50);
        let buckets: u64 = json["histogram"]
            .as_array()
            .expect("histogram")
            .iter()
            .map(|b| b["count"].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(buckets, 100, "every call lands in one bucket");
    }

    #[tokio::test]
    async fn open_loop_measures_from_the_scheduled_time() {
        // A system that serves one call at a time, 20 ms each, while calls are due every
        // 5 ms: the queue grows, and the latencies must show it.
        let server = std::sync::Arc::new(tokio::sync::Mutex::new(()));
        let recorded = crate::load::run(
            "test",
            20,
            Schedule::Open {
                rate: 200.0,
                max_outstanding: 100,
            },
            false,
            move |_| {
                let server = server.clone();
                async move {
                    let _serving = server.lock().await;
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    Ok(())
                }
            },
        )
        .await;
        assert_eq!(recorded.count(), 20);
        assert_eq!(recorded.failures(), 0);
        // The last call is due at 95 ms and served at about 400 ms.
        assert!(
            recorded.quantile(1.0) >= std::time::Duration::from_millis(250),
            "{:?}",
            recorded.quantile(1.0)
        );
        assert!(recorded.quantile(0.0) >= std::time::Duration::from_millis(20));
    }
}
