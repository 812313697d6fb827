//! An uploaded certificate (REV-1's third-party PEM) and the private key sent with it:
//! `check_upload` and `parse_upload` must refuse garbage, never panic.
#![no_main]

use certflow_domain::{CertificateId, Timestamp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The PEM, then (after a NUL) the private key.
    let (pem, key) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], Some(&data[at + 1..])),
        None => (data, None),
    };
    let pem = String::from_utf8_lossy(pem);
    let key = key.map(String::from_utf8_lossy);
    let now = Timestamp::from_unix_millis(1_800_000_000_000);
    let _ = certflow_issuance::upload::check_upload(&pem, key.as_deref(), now);
    if let Ok(id) = CertificateId::parse("fuzz") {
        let _ = certflow_issuance::upload::parse_upload(id, "acme", &pem);
    }
});
