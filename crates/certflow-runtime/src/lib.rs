//! What every certflow service runs on.
//!
//! A service answers commands on the bus and reacts to the event log. [`CommandRuntime`]
//! runs one command: answer a retry from its first outcome (GEN-1), otherwise decide on the
//! certificate's current state and append with optimistic concurrency (GEN-2), and remember
//! the reply. [`run_reactions`] feeds a service's durable consumer of the log to its
//! reactions, acknowledging each event once its effects are appended. [`Service`] and
//! [`bind`] are the one skeleton each service runs on: it declares a [`ServiceSpec`] and
//! says how it answers and reacts. [`now`] is the one clock.
//!
//! ## Layout
//!
//! - [`address`]: which addresses a service may connect to on a customer's behalf.
//! - [`outbound`]: the resolver and address filter of connections made on a customer's behalf.
//! - `clock` (private): [`now`]: services read the time here; the domain is given it.
//! - `command` (private): [`CommandRuntime`]: one command, from retry check to remembered reply.
//! - `react` (private): [`run_reactions`]: a durable consumer fed to a service's reactions.
//! - `work` (private): [`work_queue`]: the one loop that works a work queue.
//! - `service` (private): [`ServiceSpec`], [`Service`], [`bind`] and [`Bound`]: the skeleton.

#![forbid(unsafe_code)]

pub mod address;
mod clock;
mod command;
pub mod outbound;
mod react;
mod service;
mod work;

pub use clock::now;
pub use command::{CommandError, CommandRuntime};
pub use react::{ReactionError, reaction_meta, run_reactions};
pub use service::{Bound, Reacts, Service, ServiceSpec, StartError, bind};
pub use work::work_queue;
