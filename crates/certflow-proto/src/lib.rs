//! Protobuf messages and gRPC stubs generated from `proto/`, and their mapping to the
//! domain types.
//!
//! - [`v1`]: `certflow.v1`, the public API (the gateway's gRPC services).
//! - [`events::v1`]: `certflow.events.v1`, the event log's wire format.
//! - [`bus::v1`]: `certflow.bus.v1`, the reply envelope between gateway and services.
//! - [`convert::stored`]: events to and from the log's format, which must never change.
//! - [`convert::api`]: domain types to and from the public API; client input checked.
//! - [`convert::summary`]: one-line accounts of events for histories.
//! - [`refusal`]: the error catalogue, and the refusals services send the gateway.
//! - [`retry`]: spreading retries (the gateway's hints, certctl's waits) with jitter.
//! - [`FILE_DESCRIPTOR_SET`]: every proto file, for gRPC server reflection.
//!
//! Proto enums and the domain's enums meet only in [`convert`], so an unknown enum value is
//! refused in one place.

#![forbid(unsafe_code)]

pub mod convert;
pub mod refusal;
pub mod retry;

/// The public API.
pub mod v1 {
    #![allow(missing_docs, clippy::all, missing_debug_implementations)]
    tonic::include_proto!("certflow.v1");
}

/// The event log's wire format.
pub mod events {
    /// Version 1 of the events.
    pub mod v1 {
        #![allow(missing_docs, clippy::all, missing_debug_implementations)]
        tonic::include_proto!("certflow.events.v1");
    }
}

/// The envelope of replies over NATS.
pub mod bus {
    /// Version 1 of the envelope.
    pub mod v1 {
        #![allow(missing_docs, clippy::all, missing_debug_implementations)]
        tonic::include_proto!("certflow.bus.v1");
    }
}

/// The encoded `FileDescriptorSet` of every proto file, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/certflow_descriptor.bin"));
