//! What the services and the projection read back from the log: a stored event batch is
//! decoded, folded into a certificate and shown as the API shows it. A damaged or
//! unexpected message must be refused or skipped, never panic a reader.
#![no_main]

use certflow_domain::{State, Timestamp, evolve};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(events) = certflow_proto::convert::decode_batch(data) else {
        return;
    };
    let mut state: State = None;
    for event in &events {
        let _ = certflow_proto::convert::event_summary(event);
        state = evolve(state, event);
    }
    if let Some(cert) = &state {
        let _ = certflow_proto::convert::certificate_to_proto(
            cert,
            Timestamp::from_unix_millis(1_800_000_000_000),
        );
    }
});
