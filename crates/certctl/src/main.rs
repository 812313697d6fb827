//! `certctl`: the command-line client for the certflow gateway, the gRPC front of the
//! certificate revocation and reissue service.
//!
//! - `issue` a certificate (for a CSR's key, or a key generated for it), or `upload` a
//!   third-party one from its PEM (with its key, to keep it for downloads);
//! - `get` one certificate, `list` them a page at a time (or `--all`), show its `history`;
//! - `revoke` one, `check` its domain-validation challenges now, or `bulk-revoke` many
//!   (admins: ids, an `--ids-file` of up to a million, or every certificate of an account);
//! - `reissue` with the original's key, a new one or a CSR; `renew` records a renewal order;
//!   `delete` removes a certificate and erases its key;
//! - `download` the files a server needs: PEM (Nginx, Apache) or PKCS#12 (IIS, Tomcat);
//! - `document template|upload|get`: the stamped document a reviewed revocation needs;
//! - `review next|approve|reject|watch`: reviewers take, decide and follow review tasks;
//! - `notify add|list|rotate-secret|remove|dead-letters|replay`: the webhooks and email
//!   addresses an account is notified at, and what could not be delivered.
//!
//! Responses print as aligned text or, with `--json`, as JSON. A gRPC failure is printed on
//! standard error as `error: <code>: <message>`, with the `google.rpc.ErrorInfo` reason and
//! metadata when the status carries one, and the process exits with code 1.
//!
//! The gateway is `--endpoint`, else `CERTFLOW_ADDR`, else the older `CERTFLOW_ENDPOINT`,
//! else `http://127.0.0.1:50051`; an address without a scheme is `http://`. An `https://`
//! endpoint is reached over TLS, trusting the CA of `--ca-cert` (`CERTFLOW_CA_CERT`). Every
//! call carries the caller's bearer token: `--token` (`CERTFLOW_TOKEN`), else the file named
//! by `--token-file` (`CERTFLOW_TOKEN_FILE`), else `$XDG_CONFIG_HOME/certflow/token` or
//! `~/.config/certflow/token` if it exists.
//!
//! ## Layout
//!
//! - `auth`: where the bearer token comes from, and the interceptor that sends it unprinted.
//! - `cli`: the clap definition: global options, subcommands, their flags and env variables.
//! - `commands`: runs a parsed command against the gateway, and reports a failure on stderr.
//! - `connect`: the endpoint address, its default and legacy variable, and TLS for `https://`.
//! - `notify`: the `notify` subcommands: notification endpoints and dead letters.
//! - `names`: the API's enums as short names (`revocation-pending`), parsed and printed.
//! - `output`: certificates, lists, histories, checks and bulk results as text or JSON.
//! - `retry`: calling again, with the same request, when the gateway says "later".
//! - `review`: the `document` and `review` subcommands: stamped documents and the review queue.

mod auth;
mod cli;
mod commands;
mod connect;
mod names;
mod notify;
mod output;
mod retry;
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
