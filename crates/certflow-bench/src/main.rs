//! `certflow-bench`: load certflow's gateway the way ghz does, measure raw JetStream beside
//! it, and run the benchmark suite behind `make bench`.
//!
//! `grpc` calls one RPC of a running gateway under load and writes a ghz JSON report; `run`
//! runs a ghz configuration file (`tests/load/*.json`) as ghz would; `publish` is the raw
//! JetStream baseline; `setup` issues certificates to load-test on and writes the data and
//! metadata files those configurations name; `suite` starts everything and measures every figure;
//! `atomic-batch` measures what an atomic batch costs against plain publishes.
//!
//! ## Layout
//!
//! - `atomic`: one publish, two publishes and an atomic batch of two, on a fresh server.
//! - `baseline`: raw JetStream publish+ack, stream reads and batched sled writes, no certflow.
//! - `ghz`: ghz configuration files, their call data and metadata, made into calls.
//! - `chart`: the SVG picture of each figure.
//! - `heap`: nats-server's Go heap profile, added up by the function that allocated.
//! - `calls`: the RPCs the load tool makes, as a customer's client would: token, fresh ids.
//! - `load`: closed- and open-loop runs and each call's latency (no coordinated omission).
//! - `report`: results in ghz's JSON report format, so tools that read ghz reports read these.
//! - `suite`: `make bench`: its own NATS and `certd all`, every figure beside its baseline.

mod atomic;
mod baseline;
mod calls;
mod chart;
mod ghz;
mod heap;
mod load;
mod report;
mod suite;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::baseline::RawPublish;
use crate::calls::{Gateway, Rpc};
use crate::load::Schedule;
use crate::report::GhzReport;

#[derive(Parser, Debug)]
#[command(
    name = "certflow-bench",
    version,
    about = "Load tool and benchmarks for certflow"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Call one RPC of a running gateway under load; print and write a ghz JSON report.
    Grpc(GrpcArgs),
    /// Run a ghz configuration file (e.g. `tests/load/revoke.json`) as ghz would: its call,
    /// host, total, concurrency, qps, data and metadata; print and write a ghz JSON report.
    Run(RunArgs),
    /// Raw JetStream publish+ack against a running nats-server (the baseline).
    Publish(PublishArgs),
    /// Issue certificates to load-test on: writes the ghz data files for revoke, get and
    /// reissue (one message per certificate, `{{newUUID}}` request ids), the token as ghz
    /// metadata, and the ids.
    Setup(SetupArgs),
    /// Start NATS and certd, set up data, measure every figure beside its baseline.
    Suite(suite::SuiteArgs),
    /// On a fresh nats-server: one publish, two publishes and an atomic batch of two, each
    /// awaited, one at a time.
    AtomicBatch,
}

/// How calls are paced: `--concurrency` callers, or `--rps` calls a second (open loop).
#[derive(clap::Args, Debug)]
struct Pacing {
    /// Calls to make.
    #[arg(short = 'n', long, default_value_t = 1000)]
    total: u64,
    /// Callers at once (closed loop).
    #[arg(short = 'c', long, default_value_t = 50)]
    concurrency: usize,
    /// Calls per second (open loop; latency counts from each call's scheduled time).
    #[arg(long)]
    rps: Option<f64>,
    /// Write the ghz JSON report here.
    #[arg(short = 'O', long)]
    output: Option<PathBuf>,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
}

impl Pacing {
    fn schedule(&self) -> Schedule {
        match self.rps {
            Some(rate) => Schedule::Open {
                rate,
                max_outstanding: 10_000,
            },
            None => Schedule::Closed {
                concurrency: self.concurrency,
            },
        }
    }
}

#[derive(clap::Args, Debug)]
struct GrpcArgs {
    /// The RPC to call.
    #[arg(long, value_enum)]
    call: Rpc,
    /// The gateway.
    #[arg(long, env = "CERTFLOW_ADDR", default_value = "127.0.0.1:50051")]
    addr: String,
    /// Bearer token of a customer.
    #[arg(long, env = "CERTFLOW_TOKEN", hide_env_values = true)]
    token: String,
    /// The account the token acts for (certificates are issued to it).
    #[arg(long, default_value = "acme")]
    account: String,
    /// Certificate ids for revoke, get and reissue, one per line; without it, as many
    /// certificates as calls are issued first (not measured).
    #[arg(long)]
    ids: Option<PathBuf>,
    #[command(flatten)]
    pacing: Pacing,
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// A ghz configuration file; the data and metadata files it names are read relative to
    /// the current directory, as ghz reads them.
    config: PathBuf,
    /// Call this gateway instead of the file's `host`.
    #[arg(long)]
    host: Option<String>,
    /// Make this many calls instead of the file's `total`.
    #[arg(short = 'n', long)]
    total: Option<u64>,
    /// Write the ghz JSON report here.
    #[arg(short = 'O', long)]
    output: Option<PathBuf>,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(clap::Args, Debug)]
struct SetupArgs {
    /// The gateway.
    #[arg(long, env = "CERTFLOW_ADDR", default_value = "127.0.0.1:50051")]
    addr: String,
    /// Bearer token of a customer.
    #[arg(long, env = "CERTFLOW_TOKEN", hide_env_values = true)]
    token: String,
    /// The account the token acts for.
    #[arg(long, default_value = "acme")]
    account: String,
    /// Certificates to issue for revocation, and as many again for reissue.
    #[arg(short = 'n', long, default_value_t = 1000)]
    count: u64,
    /// Directory for `revoke-data.json`, `reissue-data.json`, `get-data.json`,
    /// `metadata.json` (the token, readable by its owner only) and `ids.txt` (the
    /// certificates to revoke).
    #[arg(long, default_value = "target/load")]
    out: PathBuf,
}

#[derive(clap::Args, Debug)]
struct PublishArgs {
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// Payload bytes per message.
    #[arg(long, default_value_t = 512)]
    size: usize,
    #[command(flatten)]
    pacing: Pacing,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Grpc(args) => grpc(args).await,
        Command::Run(args) => run(args).await,
        Command::Publish(args) => publish(args).await,
        Command::Setup(args) => setup(args).await,
        Command::Suite(args) => suite::run(args).await,
        Command::AtomicBatch => atomic::run().await,
    }
}

async fn grpc(args: GrpcArgs) -> anyhow::Result<()> {
    let endpoint = endpoint(&args.addr);
    let gateway = Gateway::connect(&endpoint, &args.token, &args.account).await?;
    let ids: Vec<String> = match (&args.ids, args.call.needs_certificates()) {
        (Some(path), _) => std::fs::read_to_string(path)
            .with_context(|| format!("reading {}", path.display()))?
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(str::to_string)
            .collect(),
        (None, true) => {
            eprintln!("issuing {} certificates to call on", args.pacing.total);
            issue_many(&gateway, args.pacing.total, !args.pacing.quiet).await?
        }
        (None, false) => Vec::new(),
    };
    let ids = std::sync::Arc::new(ids);
    let caller = gateway.clone();
    let call = args.call;
    let recorded = load::run(
        call.full_name(),
        args.pacing.total,
        args.pacing.schedule(),
        !args.pacing.quiet,
        move |index| {
            let gateway = caller.clone();
            let ids = ids.clone();
            async move { gateway.call(call, index, &ids).await }
        },
    )
    .await;
    finish(
        GhzReport::new(call.full_name(), call.full_name(), &endpoint, &recorded),
        args.pacing.output.as_deref(),
    )
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let mut config = ghz::LoadConfig::read(&args.config)?;
    if let Some(host) = args.host {
        config.host = host;
    }
    if let Some(total) = args.total {
        config.total = total;
    }
    let call = ghz::ConfiguredCall::prepare(&config).await?;
    let name = config.name.clone().unwrap_or_else(|| config.call.clone());
    let recorded = load::run(
        &name,
        config.total,
        config.schedule(),
        !args.quiet,
        move |index| {
            let call = call.clone();
            async move { call.call(index).await }
        },
    )
    .await;
    finish(
        GhzReport::new(&name, &config.call, &config.host, &recorded),
        args.output.as_deref(),
    )
}

/// Issues `count` certificates through `gateway` (not measured) and returns their ids.
async fn issue_many(gateway: &Gateway, count: u64, progress: bool) -> anyhow::Result<Vec<String>> {
    let setup = gateway.clone();
    let collected = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = collected.clone();
    let issued = load::run(
        "setup: issue",
        count,
        Schedule::Closed { concurrency: 32 },
        progress,
        move |index| {
            let gateway = setup.clone();
            let sink = sink.clone();
            async move {
                let id = gateway.issue(index).await?;
                if let Ok(mut ids) = sink.lock() {
                    ids.push(id);
                }
                Ok(())
            }
        },
    )
    .await;
    anyhow::ensure!(
        issued.failures() == 0,
        "issuing failed: {:?}",
        issued.errors
    );
    Ok(std::mem::take(
        &mut *collected.lock().unwrap_or_else(|p| p.into_inner()),
    ))
}

async fn setup(args: SetupArgs) -> anyhow::Result<()> {
    let endpoint = endpoint(&args.addr);
    let gateway = Gateway::connect(&endpoint, &args.token, &args.account).await?;
    // Revocation and reissue each use a certificate up, so each gets its own.
    let to_revoke = issue_many(&gateway, args.count, true).await?;
    let to_reissue = issue_many(&gateway, args.count, true).await?;
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(args.out.join("ids.txt"), to_revoke.join("\n") + "\n")?;
    let data = |ids: &[String], message: &dyn Fn(&str) -> serde_json::Value| {
        serde_json::Value::Array(ids.iter().map(|id| message(id)).collect())
    };
    let files = [
        (
            "revoke-data.json",
            data(&to_revoke, &|id| {
                serde_json::json!({
                    "request_id": "{{newUUID}}",
                    "certificate_id": id,
                    "reason": "REVOCATION_REASON_SUPERSEDED",
                })
            }),
        ),
        (
            "get-data.json",
            data(
                &[to_revoke.clone(), to_reissue.clone()].concat(),
                &|id| serde_json::json!({ "id": id }),
            ),
        ),
        (
            "reissue-data.json",
            data(&to_reissue, &|id| {
                serde_json::json!({
                    "request_id": "{{newUUID}}",
                    "certificate_id": id,
                    "reason": "load test",
                    "original_key": {},
                })
            }),
        ),
    ];
    for (name, value) in files {
        let path = args.out.join(name);
        std::fs::write(&path, serde_json::to_vec_pretty(&value)?)?;
        println!("{}", path.display());
    }
    let metadata = args.out.join("metadata.json");
    write_private(
        &metadata,
        &serde_json::to_vec(&serde_json::json!({
            "authorization": format!("Bearer {}", args.token),
        }))?,
    )?;
    println!("{}", metadata.display());
    println!("{}", args.out.join("ids.txt").display());
    Ok(())
}

/// Writes `bytes` to a new file at `path` that only its owner may read: it holds a token.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)?;
    Ok(())
}

async fn publish(args: PublishArgs) -> anyhow::Result<()> {
    let client = async_nats::connect(&args.nats_url).await?;
    let raw = RawPublish::open(client).await?;
    let recorded = raw
        .run(
            "raw publish",
            args.pacing.total,
            args.size,
            args.pacing.schedule(),
            !args.pacing.quiet,
        )
        .await;
    finish(
        GhzReport::new(
            "raw publish",
            "jetstream.publish",
            &args.nats_url,
            &recorded,
        ),
        args.pacing.output.as_deref(),
    )
}

/// `addr` as a URL: `host:port` is plain HTTP/2, as certctl takes it.
fn endpoint(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

/// Prints a summary like ghz's and writes the JSON report when asked.
fn finish(report: GhzReport, output: Option<&std::path::Path>) -> anyhow::Result<()> {
    let ms = |nanos: u64| nanos as f64 / 1e6;
    println!("Summary:");
    println!("  Count:\t{}", report.count);
    println!("  Total:\t{:.2} ms", ms(report.total));
    println!("  Slowest:\t{:.2} ms", ms(report.slowest));
    println!("  Fastest:\t{:.2} ms", ms(report.fastest));
    println!("  Average:\t{:.2} ms", ms(report.average));
    println!("  Requests/sec:\t{:.2}", report.rps);
    println!("Latency distribution:");
    for point in &report.latency_distribution {
        println!("  {} % in {:.2} ms", point.percentage, ms(point.latency));
    }
    println!("Status code distribution:");
    for (code, count) in &report.status_code_distribution {
        println!("  [{code}]\t{count} responses");
    }
    if !report.error_distribution.is_empty() {
        println!("Error distribution:");
        for (error, count) in &report.error_distribution {
            println!("  [{count}]\t{error}");
        }
    }
    if let Some(path) = output {
        report.write(path)?;
        println!("report: {}", path.display());
    }
    Ok(())
}
