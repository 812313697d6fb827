//! Protobuf messages and gRPC stubs generated from `proto/`, and their mapping to the
//! domain types.
//!
//! `certflow.v1` is the public API (the gateway's gRPC services); `certflow.events.v1` is
//! the event log's wire format; `certflow.bus.v1` is the reply envelope between the gateway
//! and the services over NATS. The mapping in [`convert`] is the only place where proto
//! enums and the domain's enums meet, so an unknown enum value is refused in one place.

#![forbid(unsafe_code)]

pub mod convert;

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
