//! `certd`: the certflow server. One subcommand per service, and `all` for the whole set;
//! `provision` makes the streams and consumers, `rewrap-keys` finishes a KEK rotation, and
//! `dev-keys` and `dev-token` make a development signing key, KEK and tokens.
//!
//! ## Layout
//!
//! - `cli`: the flags, subcommands and environment variables, and the [`certd::Config`] they make.

mod cli;

use anyhow::Context;
use certflow_telemetry::{Telemetry, TelemetryConfig};
use clap::Parser;
use cli::{Cli, Command, LogFormat};
use tracing_subscriber::EnvFilter;

/// certd allocates and frees many small buffers per message it handles (headers,
/// payloads, decoded events and states); with glibc's allocator that took about half of
/// `certd all`'s CPU during a bulk revocation (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter =
        certd::log_filter(&std::env::var(EnvFilter::DEFAULT_ENV).unwrap_or_else(|_| "info".into()));
    let telemetry = Telemetry::init(TelemetryConfig {
        service_name: cli.command.process_name(),
        log_format: match cli.log_format {
            LogFormat::Text => certflow_telemetry::LogFormat::Text,
            LogFormat::Json => certflow_telemetry::LogFormat::Json,
        },
        filter,
    })
    .context("setting up logs, traces and metrics")?;
    let result = run(cli, &telemetry).await;
    telemetry.shutdown();
    result
}

async fn run(cli: Cli, telemetry: &Telemetry) -> anyhow::Result<()> {
    match &cli.command {
        Command::DevKeys { dir } => {
            let (private, public) = certd::dev::ensure_signing_key(dir)?;
            certd::dev::ensure_kek(dir)?;
            println!("token signing key: {}", private.display());
            println!("token public key:  {}", public.display());
            println!("key store KEK:     {}", dir.join("kek.hex").display());
            return Ok(());
        }
        Command::DevToken {
            key,
            account,
            roles,
            subject,
            hours,
        } => {
            let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
            let subject = subject.clone().unwrap_or_else(|| {
                format!("{account}-{}", roles.first().copied().unwrap_or("user"))
            });
            let ttl = std::time::Duration::from_secs(hours.saturating_mul(3600));
            println!(
                "{}",
                certd::dev::token(key, &subject, account, &roles, ttl)?
            );
            return Ok(());
        }
        _ => {}
    }

    if let Command::Console = cli.command {
        return run_console(&cli).await;
    }
    let (config, services) = cli.config(telemetry)?;
    if let Command::Provision = cli.command {
        let done = certd::provision(&config)
            .await
            .context("provisioning streams and consumers")?;
        for (what, names) in [
            ("created", &done.created),
            ("updated", &done.updated),
            ("unchanged", &done.unchanged),
        ] {
            if !names.is_empty() {
                println!("{what}: {}", names.join(", "));
            }
        }
        return Ok(());
    }
    if let Command::RewrapKeys = cli.command {
        let done = certd::rewrap_keys(&config)
            .await
            .context("wrapping the key store under the new key")?;
        println!(
            "rewrapped {} records; {} were under the new key already; {} changed meanwhile \
             (erased or rewrapped elsewhere)",
            done.rewrapped, done.current, done.changed_meanwhile
        );
        return Ok(());
    }
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

/// `certd console`: the web console alone, calling a gateway elsewhere; no NATS.
async fn run_console(cli: &Cli) -> anyhow::Result<()> {
    let (listen, config) = cli
        .standalone_console()?
        .context("certd console needs --console-listen")?;
    let server = certflow_console::ConsoleServer::new(&config).context("starting the console")?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(address = %listener.local_addr()?, gateway = %config.gateway, "console ready");
    let shutdown = certflow_bus::CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        stop.cancel();
    });
    server.serve(listener, shutdown).await?;
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
