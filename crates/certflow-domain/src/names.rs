//! Domain names as a certificate carries them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{DomainError, Reason, Rule};

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
        // CA-1: a name a URL parser reads as an IP address is one; domain validation
        // cannot prove it, and a probe would connect to that address without asking DNS.
        if Self::reads_as_ip_address(&lowered) {
            return Err(DomainError::invalid_by(
                Rule::Ca1,
                Reason::InvalidDomainName,
                format!(
                    "{name:?} is not a valid domain name: a URL parser reads it as an IP \
                     address (its last label is a number); certificates here are for domain \
                     names"
                ),
            ));
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
        Ok(DomainName(lowered))
    }

    /// Whether a URL parser reads `name` as an IPv4 address, in any of its forms (decimal,
    /// octal, hexadecimal, dotted or not: `127.0.0.1`, `2130706433`, `0177.1`, `127.0x1`,
    /// `0x7f.0x0.0x0.0x1`). It is the WHATWG URL standard's "ends in a number" test: the
    /// last label is all decimal digits, or `0x` followed by hexadecimal digits. Browsers
    /// and `inet_aton` read such hosts as addresses, so no DNS name may end that way.
    pub fn reads_as_ip_address(name: &str) -> bool {
        let name = name.trim().trim_end_matches('.');
        let last = name.rsplit('.').next().unwrap_or(name);
        let number = |digits: &str, radix: u32| digits.chars().all(|c| c.is_digit(radix));
        if !last.is_empty() && number(last, 10) {
            return true;
        }
        match last.get(..2) {
            Some(prefix) if prefix.eq_ignore_ascii_case("0x") => number(&last[2..], 16),
            _ => false,
        }
    }

    /// CA-2 (CA/B BR 3.2.2.6): whether the name is a public suffix (`com`, `co.uk`,
    /// `github.io`: ICANN and private sections of the Public Suffix List alike) or a
    /// wildcard directly over one (`*.co.uk`), which no certificate may name.
    pub fn is_public_suffix_or_wildcard_over_one(&self) -> bool {
        let base = self.0.strip_prefix("*.").unwrap_or(&self.0);
        psl::suffix_str(base) == Some(base)
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

/// CA-2: no certificate the CA signs names a public suffix or a wildcard directly over one.
pub(crate) fn signable_names(domains: &[DomainName]) -> Result<(), DomainError> {
    match domains
        .iter()
        .find(|name| name.is_public_suffix_or_wildcard_over_one())
    {
        Some(name) => Err(DomainError::invalid_by(
            Rule::Ca2,
            Reason::InvalidDomainName,
            format!(
                "{name} is a public suffix or a wildcard directly over one (Public Suffix \
                 List); a certificate names a domain under it, e.g. example.{}",
                name.as_str().trim_start_matches("*.")
            ),
        )),
        None => Ok(()),
    }
}

/// The name a domain's ownership is proven for: a wildcard is proven on its base domain.
pub fn validation_target(domain: &DomainName) -> &str {
    domain
        .as_str()
        .strip_prefix("*.")
        .unwrap_or(domain.as_str())
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

    /// The names of the finding and every other way to write an IPv4 address.
    const READ_AS_ADDRESSES: [&str; 12] = [
        "127.0x1",
        "0x7f.0x0.0x0.0x1",
        "169.254.169.0xfe",
        "127.0.0.1",
        "127.1",
        "2130706433",
        "0177.0.0.1",
        "0x7f000001",
        "0X7F.1",
        "10.0.0.0x",
        "www.example.123",
        "a.0x",
    ];

    #[test]
    fn ca1_a_name_a_url_parser_reads_as_an_ip_address_is_refused() {
        for name in READ_AS_ADDRESSES {
            assert!(DomainName::reads_as_ip_address(name), "{name}");
            let err = DomainName::parse(name).expect_err(name);
            assert_eq!(err.reason(), Reason::InvalidDomainName, "{name}");
            assert!(err.to_string().contains("IP address"), "{err}");
            // A wildcard over one too.
            assert!(DomainName::parse(&format!("*.{name}")).is_err(), "*.{name}");
        }
        for name in [
            "www.example.com",
            "127.0.0.1.nip.io",
            "0x7f.example",
            "1.example.org",
            "xn--bcher-kva.example",
            "example.0xg",
        ] {
            assert!(!DomainName::reads_as_ip_address(name), "{name}");
        }
    }

    #[test]
    fn ca2_public_suffixes_and_wildcards_over_them_are_recognised() {
        for name in [
            "co.uk",
            "*.co.uk",
            "*.com",
            "github.io",
            "*.github.io",
            "com.cn",
            "*.s3.amazonaws.com",
        ] {
            let name = DomainName::parse(name).expect("a syntactically valid name");
            assert!(name.is_public_suffix_or_wildcard_over_one(), "{name}");
        }
        for name in [
            "example.co.uk",
            "*.example.co.uk",
            "example.com",
            "*.example.com",
            "user.github.io",
            "www.example.internal",
        ] {
            let name = DomainName::parse(name).expect("valid");
            assert!(!name.is_public_suffix_or_wildcard_over_one(), "{name}");
        }
    }

    #[test]
    fn ca1_the_rule_agrees_with_a_url_parser() {
        // What the WHATWG URL parser makes of each: an IPv4 address, or a failure to read
        // one (`www.example.123`); never a domain.
        for name in READ_AS_ADDRESSES {
            let host = url::Host::parse(name);
            assert!(
                !matches!(host, Ok(url::Host::Domain(_))),
                "{name} parses as the domain {host:?}"
            );
        }
        for name in ["www.example.com", "127.0.0.1.nip.io", "0x7f.example"] {
            assert!(
                matches!(url::Host::parse(name), Ok(url::Host::Domain(_))),
                "{name}"
            );
        }
    }
}
