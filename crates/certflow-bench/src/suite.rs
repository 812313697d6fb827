//! `make bench`: a nats-server and `certd all` of their own, data set up through the
//! gateway, every figure measured beside its baseline in the same run, one table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use certflow_testkit::NatsServer;

use crate::baseline::{self, RawPublish};
use crate::calls::{Gateway, Rpc};
use crate::chart::{self, Bar, Curve};
use crate::load::{self, CallError, Recorded, Schedule};
use crate::report::GhzReport;

/// The sizes of a run.
#[derive(Debug, Clone, clap::Args)]
pub struct SuiteArgs {
    /// Callers at once for the throughput figure (P1).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Revocations in the throughput run (P1), and raw publishes beside them.
    #[arg(long, default_value_t = 10_000)]
    pub throughput_calls: u64,
    /// Revocations one at a time (P2), and raw sync publishes beside them.
    #[arg(long, default_value_t = 1_000)]
    pub sequential_calls: u64,
    /// Seconds of the open-loop run at half the measured throughput (P3).
    #[arg(long, default_value_t = 10.0)]
    pub open_seconds: f64,
    /// Certificates of a second account for the large-store figures: command latency with
    /// that many more certificates stored (P5) and a bulk revocation of all of them (P6).
    /// 0 skips both; the figures name 1,000,000.
    #[arg(long, default_value_t = 0)]
    pub large: u64,
    /// Revocations one at a time for each P5 latency.
    #[arg(long, default_value_t = 300)]
    pub latency_calls: u64,
    /// Where the ghz-format JSON reports go.
    #[arg(long, default_value = "target/bench")]
    pub out: PathBuf,
    /// Hide progress bars.
    #[arg(long)]
    pub quiet: bool,
}

/// A child process killed when dropped.
struct Process {
    name: String,
    child: Child,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    /// Peak resident memory so far, from /proc (Linux).
    fn peak_rss(&self) -> Option<u64> {
        peak_rss(self.child.id())
    }
}

fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// CPU time a process has used so far, user and system, all threads, from /proc (Linux;
/// in clock ticks of `USER_HZ`, which Linux fixes at 100 a second for what /proc reports).
fn cpu_time(pid: u32) -> Option<Duration> {
    const USER_HZ: u64 = 100;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name, which is in parentheses and may hold anything: field 3 on.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 1000 / USER_HZ))
}

/// The CPU time of each process named, taken before and after some work.
struct CpuUse(Vec<(&'static str, Option<u32>, Option<Duration>)>);

impl CpuUse {
    fn start(processes: &[(&'static str, Option<u32>)]) -> Self {
        CpuUse(
            processes
                .iter()
                .map(|&(name, pid)| (name, pid, pid.and_then(cpu_time)))
                .collect(),
        )
    }

    /// Each process's CPU time since `start`, per unit of work, in microseconds.
    fn per(&self, units: u64) -> String {
        self.0
            .iter()
            .filter_map(|&(name, pid, before)| {
                let used = pid.and_then(cpu_time)?.checked_sub(before?)?;
                let micros = used.as_secs_f64() * 1e6 / units.max(1) as f64;
                Some(format!("{name} {micros:.0} µs"))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `certd` next to this binary (both are built by `make bench`).
fn certd_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("the bench binary has no directory")?;
    let certd = dir.join("certd");
    anyhow::ensure!(
        certd.exists(),
        "{} not found: build it (cargo build --release --bin certd)",
        certd.display()
    );
    Ok(certd)
}

async fn wait_ready(port: u16, within: Duration) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let url = format!("http://127.0.0.1:{port}/readyz");
    while started.elapsed() < within {
        if let Ok(response) = reqwest::get(&url).await
            && response.status() == reqwest::StatusCode::OK
        {
            return Ok(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    anyhow::bail!("nothing ready on port {port} within {within:?}")
}

/// One line of the table.
struct Figure {
    id: &'static str,
    what: String,
    value: String,
    baseline: String,
    ratio: f64,
    target: &'static str,
    met: bool,
    /// The figure's picture, in the reports' directory.
    picture: String,
}

/// Runs the whole suite and prints the table.
pub async fn run(args: SuiteArgs) -> anyhow::Result<()> {
    let progress = !args.quiet;
    let monitor_port = free_port()?;
    let profile_port = free_port()?;
    let nats =
        NatsServer::start_profiled(monitor_port, profile_port).context("starting nats-server")?;
    let dir = tempfile::tempdir()?;
    let keys = dir.path().join("keys");
    let (signing_key, public_key) = certd::dev::ensure_signing_key(&keys)?;
    let kek = certd::dev::ensure_kek(&keys)?;
    let token = certd::dev::token(
        &signing_key,
        "bench-customer",
        "bench",
        &["customer"],
        Duration::from_secs(24 * 3600),
    )?;
    let certd = certd_binary()?;
    let gateway_port = free_port()?;
    let operator_port = free_port()?;
    let spawn =
        |name: &str, args: &[String], data: &Path, operator: u16| -> anyhow::Result<Process> {
            let log = std::fs::File::create(dir.path().join(format!("{name}.log")))?;
            let child = Command::new(&certd)
                .args([
                    "--nats-url",
                    &nats.url(),
                    "--data-dir",
                    &data.display().to_string(),
                    "--kek",
                    &kek,
                    "--metrics-listen",
                    &format!("127.0.0.1:{operator}"),
                    "--crl-listen",
                    "127.0.0.1:0",
                    "--acme-listen",
                    "127.0.0.1:0",
                    "--console-listen",
                    "off",
                    "--listen",
                    &format!("127.0.0.1:{gateway_port}"),
                    "--plaintext",
                    "--jwt-ed25519-key",
                    &public_key.display().to_string(),
                    "--commands-per-second",
                    "1000000000",
                    "--queries-per-second",
                    "1000000000",
                ])
                .args(args)
                .env("RUST_LOG", "warn")
                .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
                .stdout(Stdio::from(log.try_clone()?))
                .stderr(Stdio::from(log))
                .spawn()
                .with_context(|| format!("starting {}", certd.display()))?;
            Ok(Process {
                name: name.to_string(),
                child,
            })
        };
    // As an operator would: streams and consumers first, then the services.
    let provisioned = Command::new(&certd)
        .args(["--nats-url", &nats.url(), "provision"])
        .env("RUST_LOG", "warn")
        .output()
        .with_context(|| format!("running {} provision", certd.display()))?;
    anyhow::ensure!(
        provisioned.status.success(),
        "certd provision failed: {}",
        String::from_utf8_lossy(&provisioned.stderr)
    );
    let all = spawn(
        "certd all",
        &["all".into()],
        &dir.path().join("data"),
        operator_port,
    )?;
    wait_ready(operator_port, Duration::from_secs(60)).await?;
    let endpoint = format!("http://127.0.0.1:{gateway_port}");
    let gateway = Gateway::connect(&endpoint, &token, "bench").await?;
    let nats_client = async_nats::connect(nats.url()).await?;
    let raw = RawPublish::open(nats_client.clone()).await?;
    let mut reports: BTreeMap<String, GhzReport> = BTreeMap::new();
    let mut figures = Vec::new();

    // P5's small case: about 1,000 certificates in the store.
    let small = if args.large > 0 {
        let (_, first) = issue(&gateway, 1_000, args.concurrency, progress).await;
        wait_idle(&nats_client, operator_port, Duration::from_secs(1800)).await?;
        let sample: Vec<String> = first
            .into_iter()
            .take(args.latency_calls as usize)
            .collect();
        Some(
            revoke(
                &gateway,
                sample,
                Schedule::Closed { concurrency: 1 },
                progress,
                "P5 revoke, 1k stored",
            )
            .await,
        )
    } else {
        None
    };

    // Certificates to revoke, issued through the gateway.
    let wanted = args.sequential_calls + args.throughput_calls;
    eprintln!("setting up: issuing {wanted} certificates");
    let (issued, ids) = issue(&gateway, wanted, args.concurrency, progress).await;
    reports.insert(
        "setup-issue".into(),
        GhzReport::new("issue", Rpc::Issue.full_name(), &endpoint, &issued),
    );
    anyhow::ensure!(
        issued.failures() == 0,
        "issuing failed: {:?}",
        issued.errors
    );
    let mut ids = ids.into_iter();
    wait_idle(&nats_client, operator_port, Duration::from_secs(1800)).await?;

    // P2: one at a time; the server's message counts around it and what it set off.
    let sequential: Vec<String> = ids.by_ref().take(args.sequential_calls as usize).collect();
    let before = server_messages(monitor_port).await?;
    let p2 = revoke(
        &gateway,
        sequential,
        Schedule::Closed { concurrency: 1 },
        progress,
        "P2 revoke c=1",
    )
    .await;
    wait_idle(&nats_client, operator_port, Duration::from_secs(1800)).await?;
    let after = server_messages(monitor_port).await?;
    let calls = args.sequential_calls.max(1) as f64;
    let messages_per_revocation = (
        (after.0 - before.0) as f64 / calls,
        (after.1 - before.1) as f64 / calls,
    );
    let size = event_message_size(&nats_client).await.unwrap_or(512);
    let p2_raw = raw
        .run(
            "P2 raw sync publish",
            args.sequential_calls,
            size,
            Schedule::Closed { concurrency: 1 },
            progress,
        )
        .await;
    let ratio = secs(p2.quantile(0.5)) / secs(p2_raw.quantile(0.5));
    figures.push(Figure {
        id: "P2",
        what: "revoke p50, 1 at a time".into(),
        value: millis(p2.quantile(0.5)),
        baseline: format!("raw sync publish p50 {}", millis(p2_raw.quantile(0.5))),
        ratio,
        target: "≤ 5",
        met: ratio <= 5.0 && p2.failures() == 0,
        picture: picture(
            &args.out,
            "P2",
            &chart::percentiles(
                "P2: revoke, one at a time, beside a raw JetStream publish",
                &[
                    Curve {
                        label: "certflow revoke",
                        latencies: &p2.latencies,
                    },
                    Curve {
                        label: "raw sync publish",
                        latencies: &p2_raw.latencies,
                    },
                ],
            ),
        )?,
    });
    reports.insert(
        "P2-revoke".into(),
        GhzReport::new("P2 revoke c=1", Rpc::Revoke.full_name(), &endpoint, &p2),
    );
    reports.insert(
        "P2-raw-publish".into(),
        GhzReport::new(
            "P2 raw sync publish",
            "jetstream.publish",
            &nats.url(),
            &p2_raw,
        ),
    );

    wait_idle(&nats_client, operator_port, Duration::from_secs(1800)).await?;
    // P1: throughput at `concurrency` in flight.
    let throughput: Vec<String> = ids.by_ref().take(args.throughput_calls as usize).collect();
    let processes = [
        ("certd all", Some(all.child.id())),
        ("nats-server", nats.pid()),
        ("the bench", Some(std::process::id())),
    ];
    let cpu = CpuUse::start(&processes);
    let p1 = revoke(
        &gateway,
        throughput,
        Schedule::Closed {
            concurrency: args.concurrency,
        },
        progress,
        "P1 revoke c=64",
    )
    .await;
    // Until what the revocations set off (reactions, projection, CRLs) is done too.
    wait_idle(&nats_client, operator_port, Duration::from_secs(1800)).await?;
    let p1_cpu = cpu.per(p1.count());
    let cpu = CpuUse::start(&processes);
    let p1_raw = raw
        .run(
            "P1 raw async publish",
            args.throughput_calls,
            size,
            Schedule::Closed {
                concurrency: args.concurrency,
            },
            progress,
        )
        .await;
    let p1_raw_cpu = cpu.per(p1_raw.count());
    let ratio = p1.rps() / p1_raw.rps();
    figures.push(Figure {
        id: "P1",
        what: format!("revokes/s, {} in flight", args.concurrency),
        value: format!("{:.0}/s", p1.rps()),
        baseline: format!("raw publish {:.0}/s", p1_raw.rps()),
        ratio,
        target: "≥ 0.25",
        met: ratio >= 0.25 && p1.failures() == 0,
        picture: picture(
            &args.out,
            "P1",
            &chart::bars(
                &format!("P1: calls a second, {} in flight", args.concurrency),
                "calls/s",
                &[
                    Bar {
                        label: "certflow revoke",
                        value: p1.rps(),
                    },
                    Bar {
                        label: "raw async publish",
                        value: p1_raw.rps(),
                    },
                ],
            ),
        )?,
    });
    reports.insert(
        "P1-revoke".into(),
        GhzReport::new("P1 revoke", Rpc::Revoke.full_name(), &endpoint, &p1),
    );
    reports.insert(
        "P1-raw-publish".into(),
        GhzReport::new(
            "P1 raw async publish",
            "jetstream.publish",
            &nats.url(),
            &p1_raw,
        ),
    );

    // P3: open loop at half of P1's throughput.
    let rate = (p1.rps() / 2.0).max(1.0);
    let open_calls = (rate * args.open_seconds).ceil() as u64;
    eprintln!("setting up: issuing {open_calls} more certificates");
    let (_, open_ids) = issue(&gateway, open_calls, args.concurrency, progress).await;
    wait_idle(&nats_client, operator_port, Duration::from_secs(1800)).await?;
    let open = Schedule::Open {
        rate,
        max_outstanding: 10_000,
    };
    let p3 = revoke(&gateway, open_ids, open, progress, "P3 revoke open loop").await;
    let p3_raw = raw
        .run(
            "P3 raw sync publish, open",
            open_calls,
            size,
            open,
            progress,
        )
        .await;
    let ratio = secs(p3.quantile(0.99)) / secs(p3_raw.quantile(0.99));
    figures.push(Figure {
        id: "P3",
        what: format!(
            "revoke p99, open loop {rate:.0}/s ({} errors)",
            p3.failures()
        ),
        value: millis(p3.quantile(0.99)),
        baseline: format!(
            "raw sync publish p99 {} at {rate:.0}/s",
            millis(p3_raw.quantile(0.99))
        ),
        ratio,
        target: "≤ 8, 0 errors",
        met: ratio <= 8.0 && p3.failures() == 0,
        picture: picture(
            &args.out,
            "P3",
            &chart::percentiles(
                &format!("P3: revoke, open loop at {rate:.0}/s, beside a raw publish"),
                &[
                    Curve {
                        label: "certflow revoke",
                        latencies: &p3.latencies,
                    },
                    Curve {
                        label: "raw sync publish",
                        latencies: &p3_raw.latencies,
                    },
                ],
            ),
        )?,
    });
    reports.insert(
        "P3-revoke".into(),
        GhzReport::new(
            "P3 revoke open loop",
            Rpc::Revoke.full_name(),
            &endpoint,
            &p3,
        ),
    );
    reports.insert(
        "P3-raw-publish".into(),
        GhzReport::new(
            "P3 raw sync publish",
            "jetstream.publish",
            &nats.url(),
            &p3_raw,
        ),
    );

    wait_idle(&nats_client, operator_port, Duration::from_secs(1800)).await?;
    // P4: a second projection rebuilds from the whole log.
    let events = event_count(&nats_client).await?;
    let rebuild_port = free_port()?;
    let started = Instant::now();
    let rebuild = spawn(
        "certd projection --rebuild",
        &["projection".into(), "--rebuild".into()],
        &dir.path().join("rebuild"),
        rebuild_port,
    )?;
    wait_ready(rebuild_port, Duration::from_secs(600)).await?;
    let rebuild_time = started.elapsed();
    let rebuild_rate = events as f64 / secs(rebuild_time);
    // Measured: the replica stops, so it neither takes CPU from what follows nor answers
    // its queries.
    let rebuild_peak = rebuild.peak_rss();
    let rebuild_name = rebuild.name.clone();
    drop(rebuild);
    let (read, read_time) = baseline::read_stream(nats_client.clone(), &events_stream()).await?;
    let read_rate = read as f64 / secs(read_time);
    let sled_time = baseline::sled_writes(&dir.path().join("sled-baseline"), events, 1024, 1_000)?;
    let sled_rate = events as f64 / secs(sled_time);
    let floor = read_rate.min(sled_rate);
    let ratio = rebuild_rate / floor;
    figures.push(Figure {
        id: "P4",
        what: format!("projection rebuild, {events} event messages"),
        value: format!("{rebuild_rate:.0}/s"),
        baseline: format!("min(stream read {read_rate:.0}/s, sled batched write {sled_rate:.0}/s)"),
        ratio,
        target: "≥ 0.5",
        met: ratio >= 0.5,
        picture: picture(
            &args.out,
            "P4",
            &chart::bars(
                &format!("P4: projection rebuild of {events} event messages"),
                "msg/s",
                &[
                    Bar {
                        label: "certflow rebuild",
                        value: rebuild_rate,
                    },
                    Bar {
                        label: "stream read",
                        value: read_rate,
                    },
                    Bar {
                        label: "sled batched write",
                        value: sled_rate,
                    },
                ],
            ),
        )?,
    });

    let mut crls_signed = None;
    if let Some(small) = small {
        let small_p50 = small.quantile(0.5);
        let large = large_store(&LargeRun {
            gateway: &gateway,
            endpoint: &endpoint,
            signing_key: &signing_key,
            nats: &nats_client,
            operator_port,
            count: args.large,
            latency_calls: args.latency_calls,
            concurrency: args.concurrency,
            progress,
        })
        .await?;
        let ratio = secs(large.measured.quantile(0.5)) / secs(small_p50);
        figures.push(Figure {
            id: "P5",
            what: format!("revoke p50, 1 at a time, {} more stored", args.large),
            value: millis(large.measured.quantile(0.5)),
            baseline: format!("same with ~1,000 stored {}", millis(small_p50)),
            ratio,
            target: "≤ 1.2",
            met: ratio <= 1.2,
            picture: picture(
                &args.out,
                "P5",
                &chart::percentiles(
                    "P5: revoke, one at a time, by certificates stored",
                    &[
                        Curve {
                            label: &format!("{} more stored", args.large),
                            latencies: &large.measured.latencies,
                        },
                        Curve {
                            label: "~1,000 stored",
                            latencies: &small.latencies,
                        },
                    ],
                ),
            )?,
        });
        let rate = args.large as f64 / secs(large.bulk);
        let million = Duration::from_secs_f64(1_000_000.0 / rate.max(1e-9));
        figures.push(Figure {
            id: "P6",
            what: format!(
                "bulk revoke {} ({} refused), events, projection, CRL",
                args.large, large.refused
            ),
            value: format!("{:.1} s", large.bulk.as_secs_f64()),
            baseline: format!(
                "{rate:.0}/s; 1,000,000 at this rate: {:.0} s",
                million.as_secs_f64()
            ),
            ratio: million.as_secs_f64() / 300.0,
            target: "1M < 300 s",
            met: million.as_secs_f64() < 300.0 && large.refused == 0,
            picture: picture(
                &args.out,
                "P6",
                &chart::bars(
                    "P6: a million revoked in bulk, at the measured rate",
                    "s",
                    &[
                        Bar {
                            label: "certflow",
                            value: million.as_secs_f64(),
                        },
                        Bar {
                            label: "target",
                            value: 300.0,
                        },
                    ],
                ),
            )?,
        });
        crls_signed = Some(large.crls);
    }

    for (name, report) in &reports {
        report.write(&args.out.join(format!("{name}.json")))?;
    }
    print_table(&figures);
    if let Some(crls) = &crls_signed {
        println!();
        crls.print();
    }
    println!();
    println!("peak memory (VmHWM):");
    if let Some(rss) = nats.pid().and_then(peak_rss) {
        println!(
            "  nats-server                {:>8.1} MiB",
            rss as f64 / 1048576.0
        );
    }
    for (name, peak) in [
        (all.name.clone(), all.peak_rss()),
        (rebuild_name, rebuild_peak),
    ] {
        if let Some(rss) = peak {
            println!("  {:<26} {:>8.1} MiB", name, rss as f64 / 1048576.0);
        }
    }
    match streams(monitor_port).await {
        Ok(streams) => {
            println!("streams at the end (nats-server /jsz): messages, bytes, subjects, consumers");
            for stream in streams {
                println!(
                    "  {:<28} {:>10} {:>10.1} MiB {:>10} {:>3}",
                    stream.name,
                    stream.messages,
                    stream.bytes as f64 / 1048576.0,
                    stream.subjects,
                    stream.consumers
                );
            }
        }
        Err(err) => eprintln!("could not read the streams from /jsz: {err:#}"),
    }
    match nats_heap(profile_port, &args.out).await {
        Ok(()) => {}
        Err(err) => eprintln!("could not read nats-server's heap profile: {err:#}"),
    }
    println!(
        "CPU time per revocation (P1's, and what they set off until all was idle): {p1_cpu}; \
         per raw publish (P1's baseline): {p1_raw_cpu}"
    );
    println!(
        "NATS messages per revocation (P2's, with the reactions, projection and CRL it set \
         off, and the bench's idle checks): {:.1} into the server, {:.1} out",
        messages_per_revocation.0, messages_per_revocation.1
    );
    println!(
        "setup: {} issues at {:.0}/s; reports in {}",
        issued.count(),
        issued.rps(),
        args.out.display()
    );
    Ok(())
}

fn print_table(figures: &[Figure]) {
    println!();
    println!(
        "{:<3} {:<44} {:>10}  {:<58} {:>6}  {:<14} met  picture",
        "", "figure", "certflow", "baseline (same run)", "ratio", "target"
    );
    for f in figures {
        println!(
            "{:<3} {:<44} {:>10}  {:<58} {:>6.2}  {:<14} {:<4} {}",
            f.id,
            f.what,
            f.value,
            f.baseline,
            f.ratio,
            f.target,
            if f.met { "yes" } else { "NO" },
            f.picture
        );
    }
}

/// Writes figure `id`'s picture as `<out>/<id>.svg` and says where it is.
fn picture(out: &Path, id: &str, document: &svg::Document) -> anyhow::Result<String> {
    std::fs::create_dir_all(out)?;
    let path = out.join(format!("{id}.svg"));
    chart::write(&path, document).with_context(|| format!("writing {}", path.display()))?;
    Ok(path.display().to_string())
}

fn secs(duration: Duration) -> f64 {
    duration.as_secs_f64().max(1e-9)
}

fn millis(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

/// Issues `count` certificates, `concurrency` at a time; returns the run and their ids.
async fn issue(
    gateway: &Gateway,
    count: u64,
    concurrency: usize,
    progress: bool,
) -> (Recorded, Vec<String>) {
    let ids = Arc::new(Mutex::new(Vec::with_capacity(count as usize)));
    let collected = ids.clone();
    let gateway = gateway.clone();
    let recorded = load::run(
        "setup: issue",
        count,
        Schedule::Closed { concurrency },
        progress,
        move |index| {
            let gateway = gateway.clone();
            let ids = collected.clone();
            async move {
                let id = gateway.issue(index).await?;
                ids.lock()
                    .map_err(|_| CallError::new("Internal", "poisoned"))?
                    .push(id);
                Ok(())
            }
        },
    )
    .await;
    let ids = std::mem::take(&mut *ids.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
    (recorded, ids)
}

/// Revokes each of `ids` once, paced by `schedule`.
async fn revoke(
    gateway: &Gateway,
    ids: Vec<String>,
    schedule: Schedule,
    progress: bool,
    label: &str,
) -> Recorded {
    let total = ids.len() as u64;
    let ids = Arc::new(ids);
    let gateway = gateway.clone();
    load::run(label, total, schedule, progress, move |index| {
        let gateway = gateway.clone();
        let ids = ids.clone();
        async move { gateway.call(Rpc::Revoke, index, &ids).await }
    })
    .await
}

/// The size of the last message of the event log (a revocation's events with their
/// headers), so raw publishes carry as many bytes.
async fn event_message_size(client: &async_nats::Client) -> anyhow::Result<usize> {
    let js = async_nats::jetstream::new(client.clone());
    let stream = js.get_stream(events_stream()).await?;
    let mut stream = stream;
    let last = stream.info().await?.state.last_sequence;
    let message = stream.get_raw_message(last).await?;
    let headers: usize = message
        .headers
        .iter()
        .map(|(name, values)| {
            name.to_string().len() + values.iter().map(|v| v.as_str().len() + 4).sum::<usize>()
        })
        .sum();
    Ok(message.payload.len() + headers)
}

async fn event_count(client: &async_nats::Client) -> anyhow::Result<u64> {
    let js = async_nats::jetstream::new(client.clone());
    let mut stream = js.get_stream(events_stream()).await?;
    Ok(stream.info().await?.state.messages)
}

/// The event log's stream name, as certd configures it by default.
fn events_stream() -> String {
    certflow_store::StoreConfig::default().stream
}

/// What the large-store run needs.
struct LargeRun<'a> {
    gateway: &'a Gateway,
    endpoint: &'a str,
    signing_key: &'a Path,
    nats: &'a async_nats::Client,
    /// `certd all`'s metrics port.
    operator_port: u16,
    count: u64,
    latency_calls: u64,
    concurrency: usize,
    progress: bool,
}

/// What the large-store run measured.
struct Large {
    /// P5's revocations, one at a time.
    measured: Recorded,
    bulk: Duration,
    refused: u64,
    crls: CrlsSigned,
}

/// Stores `count` more certificates (account `bulk`), measures revoke latency one at a
/// time (P5), then revokes the whole account with one `BulkRevoke` and waits until the
/// projection has applied every event (P6).
async fn large_store(run: &LargeRun<'_>) -> anyhow::Result<Large> {
    let customer = certd::dev::token(
        run.signing_key,
        "bulk-customer",
        "bulk",
        &["customer"],
        Duration::from_secs(24 * 3600),
    )?;
    let bulk = Gateway::connect(run.endpoint, &customer, "bulk").await?;
    eprintln!(
        "setting up: issuing {} certificates to account bulk",
        run.count
    );
    let (issued, _) = issue(&bulk, run.count, run.concurrency, run.progress).await;
    anyhow::ensure!(
        issued.failures() == 0,
        "issuing failed: {:?}",
        issued.errors
    );

    let (_, sample) = issue(
        run.gateway,
        run.latency_calls,
        run.concurrency,
        run.progress,
    )
    .await;
    // Measured once the services have handled the issues: the figure is about what is
    // stored, not about a backlog still being worked off.
    wait_idle(run.nats, run.operator_port, Duration::from_secs(3600)).await?;
    let measured = revoke(
        run.gateway,
        sample,
        Schedule::Closed { concurrency: 1 },
        run.progress,
        "P5 revoke, large store",
    )
    .await;

    let admin = certd::dev::token(
        run.signing_key,
        "bench-admin",
        "certflow",
        &["admin"],
        Duration::from_secs(24 * 3600),
    )?;
    let crls_before = crate::calls::geotrust_crls(run.endpoint).await?;
    let started = Instant::now();
    let refused = crate::calls::bulk_revoke(run.endpoint, &admin, "bulk").await?;
    // Done when every consumer (reactions, projection, CRL publisher) has handled it all.
    wait_idle(run.nats, run.operator_port, Duration::from_secs(3600)).await?;
    let bulk = started.elapsed();
    let crls_after = crate::calls::geotrust_crls(run.endpoint).await?;
    Ok(Large {
        measured,
        bulk,
        refused,
        crls: CrlsSigned::between(&crls_before, &crls_after),
    })
}

/// What P6's bulk revocation did to GeoTrust's CRLs (CA-4: only the shards touched are
/// signed again, each a bounded number of times).
struct CrlsSigned {
    /// The CRLs after, by URL.
    after: Vec<crate::calls::CrlShard>,
    /// How many times each was signed during the run.
    signed: Vec<u64>,
}

impl CrlsSigned {
    fn between(before: &[crate::calls::CrlShard], after: &[crate::calls::CrlShard]) -> Self {
        let signed = after
            .iter()
            .map(|crl| {
                let was = before
                    .iter()
                    .find(|b| b.url == crl.url)
                    .map_or(0, |b| b.number);
                crl.number.saturating_sub(was)
            })
            .collect();
        CrlsSigned {
            after: after.to_vec(),
            signed,
        }
    }

    fn print(&self) {
        let entries: u64 = self.after.iter().map(|c| c.entries).sum();
        let bytes: usize = self.after.iter().map(|c| c.bytes).sum();
        let signed: u64 = self.signed.iter().sum();
        println!(
            "P6's CRLs: GeoTrust's {} CRLs list {entries} entries in {:.1} MiB; signed {signed} \
             times during the bulk revocation ({} of the CRLs at least once, at most {} times \
             one)",
            self.after.len(),
            bytes as f64 / 1048576.0,
            self.signed.iter().filter(|&&n| n > 0).count(),
            self.signed.iter().max().copied().unwrap_or(0),
        );
        for (crl, signed) in self.after.iter().zip(&self.signed) {
            println!(
                "  {:<48} {:>9} entries {:>9.1} KiB  signed {signed}",
                crl.url,
                crl.entries,
                crl.bytes as f64 / 1024.0
            );
        }
    }
}

/// Waits until the services have handled the whole log: every consumer of the event log
/// has nothing pending or unacked (the reactions), and the projection and the CRL publisher
/// of `certd all` (its metrics on `operator_port`) have reached the last event. What is
/// measured next is not slowed by the aftermath of the setup.
async fn wait_idle(
    client: &async_nats::Client,
    operator_port: u16,
    within: Duration,
) -> anyhow::Result<()> {
    use futures::TryStreamExt;
    let js = async_nats::jetstream::new(client.clone());
    let started = Instant::now();
    let mut stream = js.get_stream(events_stream()).await?;
    loop {
        let consumers: Vec<_> = stream.consumers().try_collect().await?;
        let busy: u64 = consumers
            .iter()
            .map(|info| info.num_pending + info.num_ack_pending as u64)
            .sum();
        let last = stream.info().await?.state.last_sequence;
        let metrics = scrape_metrics(operator_port).await.unwrap_or_default();
        let behind = |name: &str| last.saturating_sub(metric(&metrics, name).unwrap_or(0));
        let projection = behind("certflow_projection_applied_sequence");
        let crl = behind("certflow_crl_covered_sequence");
        if busy == 0 && projection == 0 && crl == 0 {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < within,
            "after {within:?} the reactions still had {busy} events to handle, the projection \
             was {projection} and the CRL publisher {crl} behind"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Messages into and out of the nats-server whose monitoring port is `port`, so far.
async fn server_messages(port: u16) -> anyhow::Result<(u64, u64)> {
    let body = reqwest::get(format!("http://127.0.0.1:{port}/varz"))
        .await?
        .bytes()
        .await?;
    let varz: serde_json::Value = serde_json::from_slice(&body)?;
    let count = |name: &str| {
        varz.get(name)
            .and_then(serde_json::Value::as_u64)
            .with_context(|| format!("/varz has no {name}"))
    };
    Ok((count("in_msgs")?, count("out_msgs")?))
}

/// One stream's size as nats-server reports it.
struct StreamSize {
    name: String,
    messages: u64,
    bytes: u64,
    /// Distinct subjects: nats-server keeps an index entry in memory for each.
    subjects: u64,
    consumers: u64,
}

/// Every stream of every account on the nats-server whose monitoring port is `port`,
/// largest first.
async fn streams(port: u16) -> anyhow::Result<Vec<StreamSize>> {
    let body = reqwest::get(format!(
        "http://127.0.0.1:{port}/jsz?accounts=true&streams=true"
    ))
    .await?
    .bytes()
    .await?;
    let jsz: serde_json::Value = serde_json::from_slice(&body)?;
    let number = |value: &serde_json::Value, name: &str| {
        value
            .get(name)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    };
    let mut streams: Vec<StreamSize> = jsz
        .get("account_details")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|account| {
            account
                .get("stream_detail")
                .and_then(serde_json::Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .map(|stream| {
            let state = stream.get("state").cloned().unwrap_or_default();
            StreamSize {
                name: stream
                    .get("name")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("?")
                    .to_string(),
                messages: number(&state, "messages"),
                bytes: number(&state, "bytes"),
                subjects: number(&state, "num_subjects"),
                consumers: number(&state, "consumer_count"),
            }
        })
        .collect();
    anyhow::ensure!(!streams.is_empty(), "/jsz lists no stream");
    streams.sort_by_key(|stream| std::cmp::Reverse(stream.bytes));
    Ok(streams)
}

/// The Prometheus text of the process whose operator port is `port`.
async fn scrape_metrics(port: u16) -> anyhow::Result<String> {
    Ok(reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await?
        .text()
        .await?)
}

/// The value of metric `name` in Prometheus text `metrics` (its first series).
fn metric(metrics: &str, name: &str) -> Option<u64> {
    metrics
        .lines()
        .find(|line| line.starts_with(name))?
        .rsplit(' ')
        .next()?
        .parse::<f64>()
        .ok()
        .map(|value| value as u64)
}

/// Prints where nats-server's live heap is, by the server function that allocated it, and
/// keeps the whole profile in `out/nats-heap.txt`.
async fn nats_heap(profile_port: u16, out: &std::path::Path) -> anyhow::Result<()> {
    const MIB: f64 = 1048576.0;
    let text = crate::heap::fetch(profile_port).await?;
    std::fs::write(out.join("nats-heap.txt"), &text)?;
    // Buffer pools and the subject tree allocate on behalf of their callers: the file
    // store's block caches (reads and writes) and subject indexes are what count.
    let profile = crate::heap::HeapProfile::parse(
        &text,
        "nats-server/v2/server",
        &[
            "server.init.func",
            "getMsgBlockBuf",
            "/stree.",
            "server.copyBytes",
            "server.copyString",
        ],
    )
    .context("not a Go heap profile")?;
    let total = profile.total();
    println!(
        "nats-server's live heap at the end (Go heap profile, {}): {:.1} MiB sampled; \
         runtime: HeapInuse {:.1} MiB, Sys {:.1} MiB",
        out.join("nats-heap.txt").display(),
        total / MIB,
        profile.heap_inuse.unwrap_or(0) as f64 / MIB,
        profile.sys.unwrap_or(0) as f64 / MIB,
    );
    for (function, bytes) in profile.by_function.iter().take(10) {
        let short = function.rsplit('/').next().unwrap_or(function);
        println!(
            "  {:>8.1} MiB {:>5.1}%  {short}",
            bytes / MIB,
            100.0 * bytes / total.max(1.0)
        );
    }
    Ok(())
}
