//! A stamped document's bytes (REV-12): judging the format by content never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = certflow_review::sniff(data);
});
