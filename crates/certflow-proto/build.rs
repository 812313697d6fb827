//! Compiles `proto/` with protox (no system `protoc`) and generates prost types and tonic
//! stubs, plus the descriptor set that gRPC server reflection serves.

use std::path::PathBuf;

use prost::Message;

const FILES: &[&str] = &[
    "certflow/v1/types.proto",
    "certflow/v1/certificate_service.proto",
    "certflow/v1/revocation_service.proto",
    "certflow/v1/crl_service.proto",
    "certflow/v1/review_service.proto",
    "certflow/v1/reissue_service.proto",
    "certflow/v1/review_task.proto",
    "certflow/v1/acme_service.proto",
    "certflow/v1/notification_service.proto",
    "certflow/events/v1/events.proto",
    "certflow/bus/v1/bus.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time, not baked in with env!: checkouts that share a target directory
    // share this script's binary, and each must compile its own protos.
    let proto_root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    println!("cargo:rerun-if-changed={}", proto_root.display());
    let descriptors = protox::compile(FILES, [&proto_root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("certflow_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Ordered maps encode the same request to the same bytes, which the fingerprint
        // that binds a request id to its request relies on (GEN-1).
        .btree_map(".")
        .compile_fds(descriptors)?;
    Ok(())
}
