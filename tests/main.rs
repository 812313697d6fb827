//! certflow's black-box tests: one test binary (`cargo test -p certd --test blackbox`), one
//! module per area, each in `tests/<area>.rs`, with the helpers they share in
//! `tests/support/`. A test's full name starts with its area, e.g.
//! `faults::nats_killed_under_ten_thousand_commands_loses_none_and_doubles_none`.
//!
//! The services run in-process (`certflow_testkit::Certflow`) or as `certd` processes on a
//! real nats-server started for the test. The target belongs to the `certd` package (see
//! `crates/certd/Cargo.toml`) so that `CARGO_BIN_EXE_certd` names the binary under test.

mod support;

mod access;
mod acme;
mod architecture;
mod bulk;
mod certificates;
mod cluster;
mod console;
mod crashes;
mod crl;
mod delete;
mod deploy;
mod download;
mod faults;
mod hostile_input;
mod issuance;
mod keys;
mod lifecycle;
mod nats_permissions;
mod notifications;
mod observe;
mod reissue;
mod review;
mod revocation;
mod scale_out;
mod secrets;
mod tls;
mod validation;
