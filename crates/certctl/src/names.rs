//! Short command-line names for the API's enums, both ways.
//!
//! A proto enum value such as `CERTIFICATE_STATUS_REVOCATION_PENDING` is shown and typed as
//! `revocation-pending`: the enum's prefix is dropped, the rest is lowercased and `_`
//! becomes `-`. Parsing is case-insensitive and accepts `_` as well as `-`.

use certflow_proto::v1::{
    Brand, CertificateSource, CertificateStatus, KeyAlgorithm, Level, RevocationCause,
    RevocationFailure, RevocationPath, RevocationReason, ValidationMethod, ValidationOutcome,
    ValidationSetup,
};

/// A prost enum of the public API, seen through its proto names.
pub trait ProtoEnum: Sized + Copy + PartialEq + 'static {
    /// The prefix every proto name of this enum starts with, e.g. `BRAND_`.
    const PREFIX: &'static str;
    /// The value with this wire number, if the enum knows it.
    fn from_wire(raw: i32) -> Option<Self>;
    /// The proto name, e.g. `BRAND_GEOTRUST`.
    fn proto_name(self) -> &'static str;
    /// The value with this proto name.
    fn from_proto_name(name: &str) -> Option<Self>;
}

macro_rules! proto_enum {
    ($($ty:ty => $prefix:literal),* $(,)?) => {
        $(
            impl ProtoEnum for $ty {
                const PREFIX: &'static str = $prefix;
                fn from_wire(raw: i32) -> Option<Self> {
                    Self::try_from(raw).ok()
                }
                fn proto_name(self) -> &'static str {
                    self.as_str_name()
                }
                fn from_proto_name(name: &str) -> Option<Self> {
                    Self::from_str_name(name)
                }
            }
        )*
    };
}

proto_enum! {
    Brand => "BRAND_",
    Level => "LEVEL_",
    KeyAlgorithm => "KEY_ALGORITHM_",
    CertificateSource => "CERTIFICATE_SOURCE_",
    CertificateStatus => "CERTIFICATE_STATUS_",
    ValidationSetup => "VALIDATION_SETUP_",
    RevocationReason => "REVOCATION_REASON_",
    RevocationPath => "REVOCATION_PATH_",
    RevocationCause => "REVOCATION_CAUSE_",
    RevocationFailure => "REVOCATION_FAILURE_",
    ValidationMethod => "VALIDATION_METHOD_",
    ValidationOutcome => "VALIDATION_OUTCOME_",
}

/// The short name of one value: `CERTIFICATE_STATUS_REVOKED` becomes `revoked`.
pub fn short_name<E: ProtoEnum>(value: E) -> String {
    let name = value.proto_name();
    name.strip_prefix(E::PREFIX)
        .unwrap_or(name)
        .to_ascii_lowercase()
        .replace('_', "-")
}

/// The short name of a wire value, or `unknown(N)` when the enum does not know `N`.
pub fn display<E: ProtoEnum>(raw: i32) -> String {
    match E::from_wire(raw) {
        Some(value) => short_name(value),
        None => format!("unknown({raw})"),
    }
}

/// Parses a short name, accepting only the values in `allowed`.
pub fn parse<E: ProtoEnum>(input: &str, allowed: &[E]) -> Result<E, String> {
    let proto_name = format!(
        "{}{}",
        E::PREFIX,
        input.trim().to_ascii_uppercase().replace('-', "_")
    );
    E::from_proto_name(&proto_name)
        .filter(|value| allowed.contains(value))
        .ok_or_else(|| {
            format!(
                "unknown value `{input}`; expected one of: {}",
                choices(allowed)
            )
        })
}

/// The short names of `values`, comma-separated.
pub fn choices<E: ProtoEnum>(values: &[E]) -> String {
    values
        .iter()
        .map(|value| short_name(*value))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Brands a certificate can be issued under.
pub const BRANDS: &[Brand] = &[
    Brand::Trustasia,
    Brand::Wotrus,
    Brand::Dnspod,
    Brand::Geotrust,
    Brand::Digicert,
    Brand::Globalsign,
    Brand::Sectigo,
];

/// Validation levels.
pub const LEVELS: &[Level] = &[Level::Dv, Level::Ov, Level::Ev];

/// Key algorithms a certificate can be issued with.
pub const ALGORITHMS: &[KeyAlgorithm] = &[
    KeyAlgorithm::Rsa2048,
    KeyAlgorithm::Rsa3072,
    KeyAlgorithm::Rsa4096,
    KeyAlgorithm::EccP256,
    KeyAlgorithm::EccP384,
    KeyAlgorithm::Sm2,
];

/// Statuses a listing can be filtered by.
pub const STATUSES: &[CertificateStatus] = &[
    CertificateStatus::Issued,
    CertificateStatus::RevocationPending,
    CertificateStatus::Revoked,
    CertificateStatus::ReissuePending,
    CertificateStatus::Expired,
    CertificateStatus::Deleted,
];

/// Revocation reasons that can be given by name; any other RFC 5280 code can be given as
/// a number, and the server decides whether it accepts it.
pub const REASONS: &[RevocationReason] = &[
    RevocationReason::Unspecified,
    RevocationReason::KeyCompromise,
    RevocationReason::AffiliationChanged,
    RevocationReason::Superseded,
    RevocationReason::CessationOfOperation,
];

/// Parses `--brand`.
pub fn parse_brand(input: &str) -> Result<Brand, String> {
    parse(input, BRANDS)
}

/// Parses `--level`.
pub fn parse_level(input: &str) -> Result<Level, String> {
    parse(input, LEVELS)
}

/// Parses `--algorithm`.
pub fn parse_algorithm(input: &str) -> Result<KeyAlgorithm, String> {
    parse(input, ALGORITHMS)
}

/// Parses `--status`.
pub fn parse_status(input: &str) -> Result<CertificateStatus, String> {
    parse(input, STATUSES)
}

/// Parses `--reason`: a name from [`REASONS`], or any integer, sent as is so that the
/// server (not the CLI) decides whether the RFC 5280 code is acceptable.
pub fn parse_reason(input: &str) -> Result<i32, String> {
    if let Ok(code) = input.trim().parse::<i32>() {
        return Ok(code);
    }
    parse(input, REASONS)
        .map(|reason| reason as i32)
        .map_err(|err| format!("{err}, or a numeric RFC 5280 reason code"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brands_parse_case_insensitively() {
        assert_eq!(parse_brand("geotrust"), Ok(Brand::Geotrust));
        assert_eq!(parse_brand("GeoTrust"), Ok(Brand::Geotrust));
        assert_eq!(parse_brand("DNSPOD"), Ok(Brand::Dnspod));
        assert_eq!(parse_brand(" sectigo "), Ok(Brand::Sectigo));
    }

    #[test]
    fn brands_outside_the_issuable_set_are_refused() {
        for input in ["other", "unspecified", "letsencrypt", "", "brand-geotrust"] {
            let err = parse_brand(input).expect_err(input);
            assert!(err.contains("trustasia, wotrus, dnspod"), "{err}");
        }
    }

    #[test]
    fn levels_parse() {
        assert_eq!(parse_level("dv"), Ok(Level::Dv));
        assert_eq!(parse_level("OV"), Ok(Level::Ov));
        assert_eq!(parse_level("Ev"), Ok(Level::Ev));
        assert!(parse_level("unspecified").is_err());
        assert!(parse_level("xv").is_err());
    }

    #[test]
    fn algorithms_parse_with_dash_or_underscore() {
        assert_eq!(parse_algorithm("rsa-2048"), Ok(KeyAlgorithm::Rsa2048));
        assert_eq!(parse_algorithm("RSA_4096"), Ok(KeyAlgorithm::Rsa4096));
        assert_eq!(parse_algorithm("ecc-p256"), Ok(KeyAlgorithm::EccP256));
        assert_eq!(parse_algorithm("Ecc-P384"), Ok(KeyAlgorithm::EccP384));
        assert_eq!(parse_algorithm("sm2"), Ok(KeyAlgorithm::Sm2));
        assert!(parse_algorithm("other").is_err());
        assert!(parse_algorithm("rsa-1024").is_err());
    }

    #[test]
    fn statuses_parse() {
        assert_eq!(parse_status("issued"), Ok(CertificateStatus::Issued));
        assert_eq!(
            parse_status("revocation-pending"),
            Ok(CertificateStatus::RevocationPending)
        );
        assert_eq!(
            parse_status("REISSUE_PENDING"),
            Ok(CertificateStatus::ReissuePending)
        );
        assert_eq!(parse_status("deleted"), Ok(CertificateStatus::Deleted));
        assert!(parse_status("unspecified").is_err());
        assert!(parse_status("pending").is_err());
    }

    #[test]
    fn reasons_parse_by_name() {
        assert_eq!(parse_reason("unspecified"), Ok(0));
        assert_eq!(parse_reason("key-compromise"), Ok(1));
        assert_eq!(parse_reason("Affiliation-Changed"), Ok(3));
        assert_eq!(parse_reason("superseded"), Ok(4));
        assert_eq!(parse_reason("cessation_of_operation"), Ok(5));
    }

    #[test]
    fn numeric_reasons_pass_through_unchecked() {
        assert_eq!(parse_reason("6"), Ok(6));
        assert_eq!(parse_reason("2"), Ok(2));
        assert_eq!(parse_reason("7"), Ok(7));
        assert_eq!(parse_reason("-1"), Ok(-1));
    }

    #[test]
    fn unknown_reason_names_are_refused_with_a_hint() {
        let err = parse_reason("because").expect_err("not a reason");
        assert!(err.contains("key-compromise"), "{err}");
        assert!(err.contains("numeric"), "{err}");
        assert!(parse_reason("certificate-hold").is_err());
    }

    #[test]
    fn display_strips_the_prefix() {
        assert_eq!(display::<CertificateStatus>(3), "revoked");
        assert_eq!(display::<CertificateStatus>(2), "revocation-pending");
        assert_eq!(display::<Brand>(100), "other");
        assert_eq!(display::<KeyAlgorithm>(4), "ecc-p256");
        assert_eq!(display::<RevocationReason>(6), "certificate-hold");
        assert_eq!(display::<RevocationPath>(5), "manual-review-after-document");
        assert_eq!(display::<ValidationSetup>(2), "dns-auto");
        assert_eq!(display::<CertificateSource>(0), "unspecified");
    }

    #[test]
    fn display_of_unknown_wire_values_shows_the_number() {
        assert_eq!(display::<CertificateStatus>(42), "unknown(42)");
        assert_eq!(display::<RevocationReason>(7), "unknown(7)");
    }

    #[test]
    fn every_allowed_value_round_trips_through_its_short_name() {
        for brand in BRANDS {
            assert_eq!(parse_brand(&short_name(*brand)), Ok(*brand));
        }
        for algorithm in ALGORITHMS {
            assert_eq!(parse_algorithm(&short_name(*algorithm)), Ok(*algorithm));
        }
        for status in STATUSES {
            assert_eq!(parse_status(&short_name(*status)), Ok(*status));
        }
        for reason in REASONS {
            assert_eq!(parse_reason(&short_name(*reason)), Ok(*reason as i32));
        }
    }
}
