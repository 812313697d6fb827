//! ACME (RFC 8555) as certflow speaks it, without IO: what a request must be before the
//! server acts on it. Standard ACME clients (certbot, lego) revoke certificates through
//! certflow with it.
//!
//! - [`jws`]: requests as JWS in flattened JSON (§6.2), their protected header (`alg`,
//!   `nonce`, `url`, `jwk` or `kid`), signature checks, JWK thumbprints (RFC 7638) and
//!   External Account Binding (§7.3.4).
//! - [`problem`]: problem documents (RFC 7807) with the ACME error types (§6.7) and
//!   certflow's reason codes.

#![forbid(unsafe_code)]

pub mod jws;
pub mod problem;

pub use jws::{ExternalBinding, PublicJwk, Request, Signer, thumbprint};
pub use problem::{Problem, ProblemType};
