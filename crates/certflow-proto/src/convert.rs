//! The mapping between proto messages and domain types, one module per contract:
//!
//! - [`stored`]: the event log's schema (`certflow.events.v1`), which every stored batch
//!   must keep decoding to the same events;
//! - [`api`]: the public API (`certflow.v1`), the views clients read and the checks on what
//!   they send;
//! - [`summary`]: the one-line accounts of events that histories show people.
//!
//! Proto enums and the domain's enums meet only in these modules, so an unknown enum value
//! is refused in one place. Their functions are also reachable from here.

pub mod api;
pub mod stored;
pub mod summary;

pub use api::{
    algorithm_from_proto, algorithm_to_proto, brand_from_proto, brand_to_proto,
    certificate_to_proto, dns_record_name, document_format_to_proto, document_kind_to_proto,
    document_to_api, enterprise_info_from_request, file_url, level_from_proto, level_to_proto,
    method_from_proto, method_to_proto, path_to_proto, reason_to_proto, review_to_api,
    setups_from_proto, status_from_proto, status_to_proto, timestamp_from_proto,
    timestamp_from_request, timestamp_to_proto, validation_from_proto, validation_to_proto,
};
pub use stored::{
    ConvertError, decode_batch, decode_recorded, encode_batch, encode_recorded, event_from_proto,
    event_to_proto,
};
pub use summary::event_summary;
