//! How the API's values read on a page: names of enums in the page's language, times, and
//! which actions a certificate's row offers.

use certflow_proto::v1::{
    Brand, Certificate, CertificateSource, CertificateStatus, KeyAlgorithm, Level, RevocationPath,
    RevocationReason,
};

use certflow_domain::DocumentFormat;

use crate::i18n::Texts;

/// A timestamp as `2026-12-07 14:03 UTC`; empty when unset.
pub(crate) fn when(at: Option<&prost_types::Timestamp>) -> String {
    let Some(at) = at else {
        return String::new();
    };
    let Ok(moment) = time::OffsetDateTime::from_unix_timestamp(at.seconds) else {
        return String::new();
    };
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    moment.format(&format).unwrap_or_default()
}

/// Seconds since the epoch of a timestamp, for the countdown script.
pub(crate) fn epoch(at: Option<&prost_types::Timestamp>) -> i64 {
    at.map_or(0, |at| at.seconds)
}

pub(crate) fn status(t: &Texts, value: i32) -> &'static str {
    match CertificateStatus::try_from(value).unwrap_or_default() {
        CertificateStatus::Issued => t.status_issued,
        CertificateStatus::RevocationPending => t.status_revocation_pending,
        CertificateStatus::Revoked => t.status_revoked,
        CertificateStatus::ReissuePending => t.status_reissue_pending,
        CertificateStatus::Expired => t.status_expired,
        CertificateStatus::Deleted => t.status_deleted,
        CertificateStatus::Unspecified => t.unknown,
    }
}

/// The statuses the list filters by: (query value, API value).
pub(crate) const STATUS_FILTERS: [(&str, CertificateStatus); 5] = [
    ("issued", CertificateStatus::Issued),
    ("revocation-pending", CertificateStatus::RevocationPending),
    ("revoked", CertificateStatus::Revoked),
    ("reissue-pending", CertificateStatus::ReissuePending),
    ("expired", CertificateStatus::Expired),
];

pub(crate) fn brand(value: i32) -> &'static str {
    match Brand::try_from(value).unwrap_or_default() {
        Brand::Trustasia => "TrustAsia",
        Brand::Wotrus => "Wotrus",
        Brand::Dnspod => "DNSPod",
        Brand::Geotrust => "GeoTrust",
        Brand::Digicert => "DigiCert",
        Brand::Globalsign => "GlobalSign",
        Brand::Sectigo => "Sectigo",
        Brand::Other => "other",
        Brand::Unspecified => "—",
    }
}

pub(crate) fn level(value: i32) -> &'static str {
    match Level::try_from(value).unwrap_or_default() {
        Level::Dv => "DV",
        Level::Ov => "OV",
        Level::Ev => "EV",
        Level::Unspecified => "—",
    }
}

pub(crate) fn key_algorithm(value: i32) -> &'static str {
    match KeyAlgorithm::try_from(value).unwrap_or_default() {
        KeyAlgorithm::Rsa2048 => "RSA 2048",
        KeyAlgorithm::Rsa3072 => "RSA 3072",
        KeyAlgorithm::Rsa4096 => "RSA 4096",
        KeyAlgorithm::EccP256 => "ECC P-256",
        KeyAlgorithm::EccP384 => "ECC P-384",
        KeyAlgorithm::Sm2 => "SM2",
        KeyAlgorithm::Other => "other",
        KeyAlgorithm::Unspecified => "—",
    }
}

/// The RFC 5280 reasons a revocation may carry (REV-9), as the form offers them.
pub(crate) fn revocation_reasons(t: &Texts) -> [(&'static str, &'static str); 5] {
    [
        ("key-compromise", t.reason_key_compromise),
        ("affiliation-changed", t.reason_affiliation_changed),
        ("superseded", t.reason_superseded),
        ("cessation-of-operation", t.reason_cessation),
        ("unspecified", t.reason_unspecified),
    ]
}

/// One option of a select or radio group.
#[derive(Debug, Clone)]
pub(crate) struct Choice {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

/// `options` with the one whose value is `chosen` selected.
pub(crate) fn choices(options: &[(&'static str, &'static str)], chosen: &str) -> Vec<Choice> {
    options
        .iter()
        .map(|(value, label)| Choice {
            value,
            label,
            selected: *value == chosen,
        })
        .collect()
}

/// A reason the form sent, as the API's; an unknown one is the API's "unspecified" value
/// 0 only when the form said so, otherwise `None`.
pub(crate) fn parse_reason(value: &str) -> Option<RevocationReason> {
    Some(match value {
        "key-compromise" => RevocationReason::KeyCompromise,
        "affiliation-changed" => RevocationReason::AffiliationChanged,
        "superseded" => RevocationReason::Superseded,
        "cessation-of-operation" => RevocationReason::CessationOfOperation,
        "unspecified" => RevocationReason::Unspecified,
        _ => return None,
    })
}

pub(crate) fn reason(t: &Texts, value: i32) -> &'static str {
    match RevocationReason::try_from(value).unwrap_or_default() {
        RevocationReason::KeyCompromise => t.reason_key_compromise,
        RevocationReason::AffiliationChanged => t.reason_affiliation_changed,
        RevocationReason::Superseded => t.reason_superseded,
        RevocationReason::CessationOfOperation => t.reason_cessation,
        _ => t.reason_unspecified,
    }
}

pub(crate) fn path(t: &Texts, value: i32) -> &'static str {
    match RevocationPath::try_from(value).unwrap_or_default() {
        RevocationPath::Immediate => t.path_immediate,
        RevocationPath::AutomaticValidation => t.path_automatic,
        RevocationPath::DomainValidation => t.path_domain_validation,
        RevocationPath::ManualReview => t.path_review,
        RevocationPath::ManualReviewAfterDocument => t.path_document,
        RevocationPath::Unspecified => t.unknown,
    }
}

/// What a certificate's row and page offer. The gateway decides each anyway; these only
/// spare the customer buttons that would certainly be refused.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Actions {
    pub revoke: bool,
    pub reissue: bool,
    pub download: bool,
    pub delete: bool,
}

impl Actions {
    pub fn of(certificate: &Certificate) -> Self {
        let status = CertificateStatus::try_from(certificate.status).unwrap_or_default();
        let platform = certificate.source == CertificateSource::Platform as i32;
        let original = certificate.original_id.is_empty();
        Actions {
            // REV-1, REV-2, REV-4.
            revoke: platform && original && status == CertificateStatus::Issued,
            // REI-1, REI-6.
            reissue: platform && original && status == CertificateStatus::Issued,
            // DL-1 under REV-8.
            download: !certificate.pem.is_empty()
                && matches!(
                    status,
                    CertificateStatus::Issued
                        | CertificateStatus::ReissuePending
                        | CertificateStatus::Expired
                ),
            // DEL-1.
            delete: !platform
                || matches!(
                    status,
                    CertificateStatus::Revoked | CertificateStatus::Expired
                ),
        }
    }
}

/// One row of the certificate list.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub id: String,
    pub domains: String,
    pub brand: &'static str,
    pub level: &'static str,
    pub status: &'static str,
    pub status_class: &'static str,
    pub not_after: String,
    pub actions: Actions,
    /// The request id of this row's delete form (GEN-1: a resent form repeats nothing).
    pub delete_request_id: String,
}

impl Row {
    pub fn of(t: &Texts, certificate: &Certificate) -> Self {
        Row {
            id: certificate.id.clone(),
            domains: certificate.domains.join(", "),
            brand: brand(certificate.brand),
            level: level(certificate.level),
            status: status(t, certificate.status),
            status_class: status_class(certificate.status),
            not_after: when(certificate.not_after.as_ref()),
            actions: Actions::of(certificate),
            delete_request_id: crate::pages::request_id(),
        }
    }
}

/// The formats a revocation document of a `brand` certificate may have (REV-10, REV-12),
/// as people name them: `JPG, PNG, PDF`.
pub(crate) fn document_formats(brand: i32) -> String {
    allowed_documents(brand)
        .iter()
        .map(|format| match format {
            DocumentFormat::Jpeg => "JPG",
            DocumentFormat::Png => "PNG",
            DocumentFormat::Gif => "GIF",
            DocumentFormat::Pdf => "PDF",
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The same as a file input's `accept`: extensions and media types.
pub(crate) fn document_accept(brand: i32) -> String {
    allowed_documents(brand)
        .iter()
        .flat_map(|format| {
            let extensions: &[&str] = match format {
                DocumentFormat::Jpeg => &[".jpg", ".jpeg"],
                DocumentFormat::Png => &[".png"],
                DocumentFormat::Gif => &[".gif"],
                DocumentFormat::Pdf => &[".pdf"],
            };
            extensions.iter().copied().chain([format.media_type()])
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn allowed_documents(brand: i32) -> &'static [DocumentFormat] {
    match certflow_proto::convert::api::brand_from_proto(brand) {
        Ok(brand) => certflow_domain::review::document_kind_of(brand).allowed(),
        Err(_) => &[],
    }
}

/// The items of a text area: one per line or separated by commas or spaces (domains, ids).
pub(crate) fn listed(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|item| !item.is_empty())
        .map(str::to_string)
        .collect()
}

/// The CSS class of a status badge.
pub(crate) fn status_class(value: i32) -> &'static str {
    match CertificateStatus::try_from(value).unwrap_or_default() {
        CertificateStatus::Issued => "ok",
        CertificateStatus::RevocationPending | CertificateStatus::ReissuePending => "pending",
        CertificateStatus::Revoked => "revoked",
        _ => "muted",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(status: CertificateStatus, source: CertificateSource) -> Certificate {
        Certificate {
            status: status as i32,
            source: source as i32,
            pem: "-----BEGIN CERTIFICATE-----".into(),
            ..Default::default()
        }
    }

    #[test]
    fn an_issued_platform_original_offers_revoke_reissue_and_download() {
        let actions = Actions::of(&certificate(
            CertificateStatus::Issued,
            CertificateSource::Platform,
        ));
        assert!(actions.revoke && actions.reissue && actions.download);
        assert!(!actions.delete);
    }

    #[test]
    fn rev_8_a_pending_revocation_offers_no_download() {
        let actions = Actions::of(&certificate(
            CertificateStatus::RevocationPending,
            CertificateSource::Platform,
        ));
        assert!(!actions.download && !actions.revoke && !actions.delete);
    }

    #[test]
    fn rev_4_a_reissued_certificate_offers_no_revoke() {
        let mut reissued = certificate(CertificateStatus::Issued, CertificateSource::Platform);
        reissued.original_id = "original".into();
        let actions = Actions::of(&reissued);
        assert!(!actions.revoke && !actions.reissue);
    }

    #[test]
    fn del_1_a_revoked_or_uploaded_certificate_offers_delete() {
        assert!(
            Actions::of(&certificate(
                CertificateStatus::Revoked,
                CertificateSource::Platform
            ))
            .delete
        );
        assert!(
            Actions::of(&certificate(
                CertificateStatus::Issued,
                CertificateSource::Uploaded
            ))
            .delete
        );
    }

    #[test]
    fn rev_9_the_form_offers_only_the_accepted_reasons() {
        let t = crate::i18n::Lang::En.texts();
        for (value, _) in revocation_reasons(t) {
            assert!(parse_reason(value).is_some(), "{value}");
        }
        assert_eq!(parse_reason("ca-compromise"), None);
        assert_eq!(parse_reason("certificate-hold"), None);
    }
}

#[cfg(test)]
mod document_tests {
    use super::*;

    #[test]
    fn rev10_a_form_asks_for_the_formats_the_brands_document_may_have() {
        assert_eq!(document_formats(Brand::Dnspod as i32), "JPG, GIF, PDF");
        assert_eq!(document_formats(Brand::Wotrus as i32), "JPG, PNG, PDF");
        assert_eq!(
            document_accept(Brand::Dnspod as i32),
            ".jpg,.jpeg,image/jpeg,.gif,image/gif,.pdf,application/pdf"
        );
        assert_eq!(
            listed(" a.example.com,b.example.com\nc.example.com "),
            ["a.example.com", "b.example.com", "c.example.com"]
        );
    }
}
