//! Which addresses a service may connect to on a customer's behalf: public unicast only.
//!
//! A customer chooses the domain a file probe fetches from and the URL a webhook is posted
//! to, so a customer chooses where those services connect. Every address a hop would
//! connect to (what DNS answered, or an IP literal in a URL) is judged here first, and
//! refused when it is in any range of IANA's special-purpose address
//! registries (IPv4 and IPv6, RFC 6890 and its updates), multicast, or outside IPv6 global
//! unicast. An IPv6 address that carries an IPv4 one (IPv4-mapped, IPv4-compatible, NAT64,
//! 6to4, Teredo) is judged as the IPv4 address it carries.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

/// IANA's IPv4 special-purpose ranges, and multicast: none is fetched from, whether the
/// registry calls it globally reachable or not (no customer serves a validation file
/// from an anycast relay).
const IPV4_SPECIAL: [(&str, &str); 19] = [
    ("0.0.0.0/8", "this network (RFC 791)"),
    ("10.0.0.0/8", "private use (RFC 1918)"),
    ("100.64.0.0/10", "shared address space (RFC 6598)"),
    ("127.0.0.0/8", "loopback (RFC 1122)"),
    ("169.254.0.0/16", "link local (RFC 3927)"),
    ("172.16.0.0/12", "private use (RFC 1918)"),
    ("192.0.0.0/24", "IETF protocol assignments (RFC 6890)"),
    ("192.0.2.0/24", "documentation, TEST-NET-1 (RFC 5737)"),
    ("192.31.196.0/24", "AS112-v4 (RFC 7535)"),
    ("192.52.193.0/24", "AMT (RFC 7450)"),
    ("192.88.99.0/24", "deprecated 6to4 relay anycast (RFC 7526)"),
    ("192.168.0.0/16", "private use (RFC 1918)"),
    (
        "192.175.48.0/24",
        "direct delegation AS112 service (RFC 7534)",
    ),
    ("198.18.0.0/15", "benchmarking (RFC 2544)"),
    ("198.51.100.0/24", "documentation, TEST-NET-2 (RFC 5737)"),
    ("203.0.113.0/24", "documentation, TEST-NET-3 (RFC 5737)"),
    ("224.0.0.0/4", "multicast (RFC 5771)"),
    ("240.0.0.0/4", "reserved (RFC 1112)"),
    ("255.255.255.255/32", "limited broadcast (RFC 919)"),
];

/// IANA's IPv6 special-purpose ranges that carry no IPv4 address, and multicast.
const IPV6_SPECIAL: [(&str, &str); 15] = [
    ("::/128", "unspecified (RFC 4291)"),
    ("::1/128", "loopback (RFC 4291)"),
    (
        "64:ff9b:1::/48",
        "local-use IPv4/IPv6 translation (RFC 8215)",
    ),
    ("100::/64", "discard-only (RFC 6666)"),
    ("100:0:0:1::/64", "dummy IPv6 prefix (RFC 9780)"),
    (
        "2001::/23",
        "IETF protocol assignments (RFC 2928), Teredo included",
    ),
    ("2001:db8::/32", "documentation (RFC 3849)"),
    (
        "2620:4f:8000::/48",
        "direct delegation AS112 service (RFC 7534)",
    ),
    ("3fff::/20", "documentation (RFC 9637)"),
    ("5f00::/16", "segment routing SIDs (RFC 9602)"),
    ("fc00::/7", "unique local (RFC 4193)"),
    ("fe80::/10", "link-local unicast (RFC 4291)"),
    ("fec0::/10", "site-local unicast, deprecated (RFC 3879)"),
    ("ff00::/8", "multicast (RFC 4291)"),
    ("::ffff:0:0:0/96", "IPv4-translated (RFC 2765)"),
];

/// Why an address is refused: the range it falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotPublic {
    /// The range, in CIDR notation.
    pub range: &'static str,
    /// What the range is, and where it is defined.
    pub what: &'static str,
}

impl std::fmt::Display for NotPublic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is {}", self.range, self.what)
    }
}

/// Ok when the prober may connect to `ip`; otherwise the special-purpose range it is in.
pub fn check(ip: IpAddr) -> Result<(), NotPublic> {
    match ip {
        IpAddr::V4(v4) => check_v4(v4),
        IpAddr::V6(v6) => match embedded_ipv4(v6) {
            Some(v4) => check_v4(v4),
            None => check_v6(v6),
        },
    }
}

/// Whether the prober may connect to `ip`.
pub fn is_public(ip: IpAddr) -> bool {
    check(ip).is_ok()
}

fn check_v4(ip: Ipv4Addr) -> Result<(), NotPublic> {
    for (range, what) in IPV4_SPECIAL {
        if parse_v4(range).contains(&ip) {
            return Err(NotPublic { range, what });
        }
    }
    Ok(())
}

fn check_v6(ip: Ipv6Addr) -> Result<(), NotPublic> {
    for (range, what) in IPV6_SPECIAL {
        if parse_v6(range).contains(&ip) {
            return Err(NotPublic { range, what });
        }
    }
    // Anything outside global unicast is reserved by the IETF.
    if !parse_v6("2000::/3").contains(&ip) {
        return Err(NotPublic {
            range: "outside 2000::/3",
            what: "not global unicast (reserved by the IETF, RFC 4291)",
        });
    }
    Ok(())
}

/// The addresses of `host` a service may connect to, or why there are none: each address
/// DNS answered with the range that rules it out. Addresses in `allowed_networks` (an
/// operator's own networks, or loopback in tests) pass whatever their range.
pub fn connectable(
    host: &str,
    answered: impl Iterator<Item = IpAddr>,
    allowed_networks: &[ipnet::IpNet],
) -> Result<Vec<std::net::SocketAddr>, String> {
    let mut allowed = Vec::new();
    let mut refused = Vec::new();
    for ip in answered {
        if allowed_networks.iter().any(|network| network.contains(&ip)) {
            allowed.push(std::net::SocketAddr::new(ip, 0));
            continue;
        }
        match check(ip) {
            Ok(()) => allowed.push(std::net::SocketAddr::new(ip, 0)),
            Err(range) => refused.push(format!("{ip} ({range})")),
        }
    }
    if allowed.is_empty() {
        return Err(if refused.is_empty() {
            format!("{host} has no address")
        } else {
            format!(
                "{host} resolves only to addresses certflow does not connect to: {}",
                refused.join(", ")
            )
        });
    }
    Ok(allowed)
}

/// The IPv4 address an IPv6 address carries, in the forms that carry one: IPv4-mapped
/// (`::ffff:0:0/96`), IPv4-compatible (`::/96`, deprecated), the NAT64 well-known prefix
/// (`64:ff9b::/96`), 6to4 (`2002::/16`, the IPv4 address in bits 16 to 47) and Teredo
/// (`2001::/32`, the client's address inverted in the last 32 bits).
pub fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let segments = ip.segments();
    let last = Ipv4Addr::new(
        (segments[6] >> 8) as u8,
        segments[6] as u8,
        (segments[7] >> 8) as u8,
        segments[7] as u8,
    );
    if let Some(mapped) = ip.to_ipv4_mapped() {
        return Some(mapped);
    }
    // `::` and `::1` are IPv6's own unspecified and loopback addresses, not IPv4 ones.
    if segments[..6] == [0; 6] && !(segments[6] == 0 && segments[7] <= 1) {
        return Some(last);
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(last);
    }
    if segments[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (segments[1] >> 8) as u8,
            segments[1] as u8,
            (segments[2] >> 8) as u8,
            segments[2] as u8,
        ));
    }
    if segments[..2] == [0x2001, 0] {
        return Some(Ipv4Addr::from(!u32::from(last)));
    }
    None
}

fn parse_v4(range: &str) -> Ipv4Net {
    range.parse().unwrap_or_else(|_| Ipv4Net::default())
}

fn parse_v6(range: &str) -> Ipv6Net {
    range.parse().unwrap_or_else(|_| Ipv6Net::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(text: &str) -> Ipv4Addr {
        text.parse().expect("IPv4 address")
    }

    fn v6(text: &str) -> Ipv6Addr {
        text.parse().expect("IPv6 address")
    }

    #[test]
    fn every_range_is_well_formed() {
        for (range, _) in IPV4_SPECIAL {
            assert!(range.parse::<Ipv4Net>().is_ok(), "{range}");
        }
        for (range, _) in IPV6_SPECIAL {
            assert!(range.parse::<Ipv6Net>().is_ok(), "{range}");
        }
    }

    #[test]
    fn the_first_and_last_address_of_every_ipv4_range_are_refused() {
        for (range, _) in IPV4_SPECIAL {
            let net = parse_v4(range);
            for ip in [net.network(), net.broadcast()] {
                assert!(!is_public(IpAddr::V4(ip)), "{ip} in {range}");
                // The same address inside every IPv6 form that carries one.
                let [a, b, c, d] = ip.octets();
                let pair = |x: u8, y: u8| (u16::from(x) << 8) | u16::from(y);
                let (high, low) = (pair(a, b), pair(c, d));
                for carried in [
                    Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, high, low),
                    Ipv6Addr::new(0, 0, 0, 0, 0, 0, high, low),
                    Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, high, low),
                    Ipv6Addr::new(0x2002, high, low, 0, 0, 0, 0, 1),
                    Ipv6Addr::new(0x2001, 0, 0x4136, 0xe378, 0x8000, 0x63bf, !high, !low),
                ] {
                    assert!(!is_public(IpAddr::V6(carried)), "{carried} carries {ip}");
                }
            }
        }
    }

    #[test]
    fn the_first_and_last_address_of_every_ipv6_range_are_refused() {
        for (range, _) in IPV6_SPECIAL {
            let net = parse_v6(range);
            for ip in [net.network(), net.broadcast()] {
                assert!(!is_public(IpAddr::V6(ip)), "{ip} in {range}");
            }
        }
        for reserved in ["4000::1", "1000::", "::2:0:0:1", "e000::"] {
            assert!(!is_public(IpAddr::V6(v6(reserved))), "{reserved}");
        }
    }

    #[test]
    fn the_addresses_of_the_findings_are_refused() {
        // What `127.0x1`, `0x7f.0x0.0x0.0x1` and `169.254.169.0xfe` read as, and the
        // ranges that slipped through before.
        for refused in [
            "127.0.0.1",
            "169.254.169.254",
            "192.0.0.170",
            "192.0.0.9",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "::127.0.0.1",
            "::169.254.169.254",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::1",
            "fec0::1",
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "::ffff:10.0.0.1",
            "::",
            "::1",
        ] {
            let ip: IpAddr = refused.parse().expect("address");
            assert!(!is_public(ip), "{refused} was let through");
        }
    }

    #[test]
    fn public_addresses_and_those_carried_in_ipv6_are_allowed() {
        for public in [
            "93.184.216.34",
            "1.1.1.1",
            "8.8.8.8",
            "192.0.1.1",
            "223.255.255.255",
            "2606:4700::1111",
            "2a00:1450:4001:80b::200e",
            "::ffff:1.1.1.1",
            "64:ff9b::101:101",
            "2002:101:101::1",
        ] {
            let ip: IpAddr = public.parse().expect("address");
            assert_eq!(check(ip), Ok(()), "{public}");
        }
    }

    #[test]
    fn embedded_ipv4_addresses_are_found_in_every_form() {
        let cases = [
            ("::ffff:127.0.0.1", Some("127.0.0.1")),
            ("::127.0.0.1", Some("127.0.0.1")),
            ("64:ff9b::7f00:1", Some("127.0.0.1")),
            ("2002:7f00:1::", Some("127.0.0.1")),
            ("2001:0:4136:e378:8000:63bf:80ff:fffe", Some("127.0.0.1")),
            ("::1", None),
            ("::", None),
            ("2606:4700::1111", None),
        ];
        for (ip, carried) in cases {
            assert_eq!(embedded_ipv4(v6(ip)), carried.map(v4), "{ip}");
        }
    }

    #[test]
    fn a_refusal_names_its_range() {
        let refused = check(IpAddr::V4(v4("169.254.169.254"))).expect_err("link local");
        assert_eq!(refused.range, "169.254.0.0/16");
        assert!(refused.to_string().contains("link local"), "{refused}");
    }

    #[test]
    fn the_client_is_handed_only_public_addresses_and_told_why_none() {
        let ips = |list: &[&str]| -> Vec<std::net::IpAddr> {
            list.iter().map(|ip| ip.parse().expect("address")).collect()
        };
        let mixed = connectable(
            "mixed.example",
            ips(&["10.0.0.1", "1.1.1.1"]).into_iter(),
            &[],
        )
        .expect("one public address");
        assert_eq!(mixed, vec!["1.1.1.1:0".parse().expect("socket address")]);
        let refused = connectable(
            "metadata.example",
            ips(&["169.254.169.254", "::ffff:127.0.0.1", "64:ff9b::a9fe:a9fe"]).into_iter(),
            &[],
        )
        .expect_err("no public address");
        assert!(
            refused.contains("169.254.169.254 (169.254.0.0/16 is link local"),
            "{refused}"
        );
        assert!(
            refused.contains("::ffff:127.0.0.1 (127.0.0.0/8 is loopback"),
            "{refused}"
        );
        assert!(
            refused.contains("64:ff9b::a9fe:a9fe (169.254.0.0/16"),
            "{refused}"
        );
        assert!(connectable("none.example", std::iter::empty(), &[]).is_err());
        // A network the operator allows is connected to.
        let lab: ipnet::IpNet = "10.0.0.0/24".parse().expect("network");
        let allowed = connectable("lab.example", ips(&["10.0.0.7"]).into_iter(), &[lab])
            .expect("allowed by the operator");
        assert_eq!(allowed, vec!["10.0.0.7:0".parse().expect("socket address")]);
    }
}
