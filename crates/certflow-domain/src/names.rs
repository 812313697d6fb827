//! Domain names as a certificate carries them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{DomainError, Reason};

/// A DNS name on a certificate, lower-cased, without a trailing dot. A wildcard is allowed
/// only as the whole leftmost label (`*.example.com`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DomainName(String);

impl DomainName {
    /// The longest name DNS can carry.
    pub const MAX_LEN: usize = 253;

    /// Checks the syntax of `name` (RFC 1035 letters, digits and hyphens per label, an
    /// optional leading wildcard label) and normalises it.
    pub fn parse(name: &str) -> Result<Self, DomainError> {
        let lowered = name.trim().trim_end_matches('.').to_ascii_lowercase();
        let invalid = |why: &str| {
            DomainError::invalid(
                Reason::InvalidDomainName,
                format!("{name:?} is not a valid domain name: {why}"),
            )
        };
        if lowered.is_empty() {
            return Err(invalid("it is empty"));
        }
        if lowered.len() > Self::MAX_LEN {
            return Err(invalid("it is longer than 253 characters"));
        }
        let labels: Vec<&str> = lowered.split('.').collect();
        if labels.len() < 2 {
            return Err(invalid("it needs at least two labels"));
        }
        for (index, label) in labels.iter().enumerate() {
            if *label == "*" {
                if index != 0 {
                    return Err(invalid("a wildcard may only be the leftmost label"));
                }
                continue;
            }
            if label.is_empty() || label.len() > 63 {
                return Err(invalid("each label has 1 to 63 characters"));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(invalid("a label may not start or end with a hyphen"));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(invalid(
                    "labels hold letters, digits and hyphens (use the A-label form of IDNs)",
                ));
            }
        }
        // No top-level domain is all digits: such a name is an IP address, which domain
        // validation cannot prove and probes must never be pointed at.
        if labels
            .last()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(invalid(
                "it is an IP address, not a domain name; certificates here are for domain names",
            ));
        }
        Ok(DomainName(lowered))
    }

    /// Whether this is a wildcard name.
    pub fn is_wildcard(&self) -> bool {
        self.0.starts_with("*.")
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for DomainName {
    type Error = DomainError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        DomainName::parse(&value)
    }
}

impl From<DomainName> for String {
    fn from(value: DomainName) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised() {
        assert_eq!(
            DomainName::parse("WWW.Example.COM.").map(String::from),
            Ok("www.example.com".to_string())
        );
    }

    #[test]
    fn wildcard_only_leftmost() {
        assert!(DomainName::parse("*.example.com").is_ok_and(|n| n.is_wildcard()));
        assert!(DomainName::parse("a.*.example.com").is_err());
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in [
            "",
            "com",
            "-a.example.com",
            "a_b.example.com",
            "a..b.com",
            "ex ample.com",
            "169.254.169.254",
            "10.0.0.5",
            "127.0.0.1",
        ] {
            let err = DomainName::parse(bad).expect_err(bad);
            assert_eq!(err.reason(), Reason::InvalidDomainName, "{bad}");
        }
        let long = format!("{}.com", "a".repeat(64));
        assert!(DomainName::parse(&long).is_err());
    }
}
