//! `certd`: the certflow server. One subcommand per service, and `all` for the whole set.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use certd::{Config, Service};
use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

#[derive(Parser, Debug)]
#[command(
    name = "certd",
    version,
    about = "certflow server: certificate revocation and reissue"
)]
struct Cli {
    /// NATS server with JetStream.
    #[arg(
        long,
        env = "NATS_URL",
        default_value = "nats://127.0.0.1:4222",
        global = true
    )]
    nats_url: String,
    /// Address of the gRPC gateway.
    #[arg(
        long,
        env = "CERTD_LISTEN",
        default_value = "127.0.0.1:50051",
        global = true
    )]
    listen: SocketAddr,
    /// Directory for the projection's database.
    #[arg(
        long,
        env = "CERTD_DATA_DIR",
        default_value = ".run/data",
        global = true
    )]
    data_dir: PathBuf,
    /// Seconds the gateway lets calls and idle connections finish on shutdown.
    #[arg(
        long,
        env = "CERTD_SHUTDOWN_GRACE",
        default_value_t = 5.0,
        global = true
    )]
    shutdown_grace: f64,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Every service in one process (still talking only over NATS).
    All {
        /// Wipe the projection and rebuild it from the event log.
        #[arg(long)]
        rebuild: bool,
    },
    /// The gRPC gateway.
    Gateway,
    /// Records issued and uploaded certificates.
    Issuance,
    /// Decides revocations.
    Revocation,
    /// Reissues certificates.
    Reissue,
    /// Domain-ownership validation.
    Validation,
    /// The review queue.
    Review,
    /// Folds the event log into sled and answers queries.
    Projection {
        /// Wipe the projection and rebuild it from the event log.
        #[arg(long)]
        rebuild: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    match cli.log_format {
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init(),
    }

    let mut config = Config::new(cli.nats_url, cli.data_dir);
    config.listen = cli.listen;
    config.shutdown_grace = std::time::Duration::try_from_secs_f64(cli.shutdown_grace)
        .context("--shutdown-grace must be a non-negative number of seconds")?;
    let services: Vec<Service> = match cli.command {
        Command::All { rebuild } => {
            config.rebuild_projection = rebuild;
            Service::ALL.to_vec()
        }
        Command::Gateway => vec![Service::Gateway],
        Command::Issuance => vec![Service::Issuance],
        Command::Revocation => vec![Service::Revocation],
        Command::Reissue => vec![Service::Reissue],
        Command::Validation => vec![Service::Validation],
        Command::Review => vec![Service::Review],
        Command::Projection { rebuild } => {
            config.rebuild_projection = rebuild;
            vec![Service::Projection]
        }
    };

    let running = certd::start(config, &services)
        .await
        .context("starting certd")?;
    if let Some(address) = running.gateway_address {
        tracing::info!(%address, "certd ready");
    }
    let shutdown = running.shutdown_token();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        shutdown.cancel();
    });
    running.wait().await;
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
