//! `certctl`: the command-line client for the certflow gateway, the gRPC front of the
//! certificate revocation service.
//!
//! It records and uploads certificates, looks them up, lists them, shows their history and
//! requests their revocation, printing responses as aligned text or, with `--json`, as
//! JSON. A gRPC failure is printed on standard error as `error: <code>: <message>`, with
//! the `google.rpc.ErrorInfo` reason and metadata when the status carries one, and the
//! process exits with code 1.
//!
//! Every call carries the caller's bearer token (see [`auth`]); an `https://` endpoint is
//! reached over TLS (see [`connect`]).

mod auth;
mod cli;
mod commands;
mod connect;
mod names;
mod output;
mod review;

use std::process::ExitCode;

use clap::Parser as _;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprint!("{}", commands::error_report(&err));
            ExitCode::FAILURE
        }
    }
}
