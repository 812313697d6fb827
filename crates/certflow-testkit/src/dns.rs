//! A real authoritative DNS server for tests of the DNS validation probe.
//!
//! [`AuthoritativeDns`] is hickory-server with in-memory zones on `127.0.0.1`, answering over
//! UDP and TCP on the same ephemeral port (so a resolver's TCP fallback works as in production).
//! Records are changed in place with [`AuthoritativeDns::set_txt`] and
//! [`AuthoritativeDns::remove`] and carry TTL 0, so the next query sees the change.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_server::ServerFuture;
use hickory_server::authority::{Authority, Catalog, ZoneType};
use hickory_server::proto::rr::rdata::{A, AAAA, NS, SOA, TXT};
use hickory_server::proto::rr::{LowerName, Name, RData, Record, RecordSet, RecordType, RrKey};
use hickory_server::store::in_memory::InMemoryAuthority;
use tokio::net::{TcpListener, UdpSocket};

/// TTL of every record served, and the SOA minimum (negative-caching TTL): nothing is cached.
const TTL: u32 = 0;
/// How long an idle TCP connection is kept.
const TCP_TIMEOUT: Duration = Duration::from_secs(5);
/// Tries at finding a port free for both UDP and TCP.
const BIND_TRIES: usize = 10;
/// The zone serial; records are swapped in directly, so it never needs to move.
const SERIAL: u32 = 1;

/// A running authoritative DNS server; dropping it stops the server.
pub struct AuthoritativeDns {
    addr: SocketAddr,
    zones: Vec<(LowerName, Arc<InMemoryAuthority>)>,
    // Held for its Drop: dropping the server aborts its UDP and TCP tasks.
    _server: ServerFuture<Catalog>,
}

impl fmt::Debug for AuthoritativeDns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthoritativeDns")
            .field("addr", &self.addr)
            .field(
                "zones",
                &self
                    .zones
                    .iter()
                    .map(|(origin, _)| origin.to_string())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl AuthoritativeDns {
    /// Starts a server authoritative for each of `zones` (e.g. `"example.com"`), each with an
    /// SOA, an NS `ns1.<zone>` and its A record `127.0.0.1`.
    pub async fn start(zones: &[&str]) -> io::Result<Self> {
        let mut catalog = Catalog::new();
        let mut served = Vec::with_capacity(zones.len());
        for zone in zones {
            let origin = fqdn(zone)?;
            let authority = Arc::new(zone_authority(&origin)?);
            let key = LowerName::from(&origin);
            catalog.upsert(key.clone(), vec![authority.clone()]);
            served.push((key, authority));
        }

        let (udp, tcp) = bind_same_port().await?;
        let addr = udp.local_addr()?;
        let mut server = ServerFuture::new(catalog);
        server.register_socket(udp);
        server.register_listener(tcp, TCP_TIMEOUT);
        Ok(AuthoritativeDns {
            addr,
            zones: served,
            _server: server,
        })
    }

    /// Where the server answers, over UDP and TCP alike.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the TXT rrset at `name` (e.g. `"_dnsauth.www.example.com"`) with one record per
    /// value; a value longer than 255 bytes is split into several strings of one record, as
    /// publishers do. Effective for the next query.
    ///
    /// # Panics
    ///
    /// If `name` is not a valid name inside one of the served zones: a mistake in the test.
    pub async fn set_txt(&self, name: &str, values: &[&str]) {
        let (name, authority) = self.zone_for(name);
        let mut rrset = RecordSet::with_ttl(name.clone(), RecordType::TXT, TTL);
        for value in values {
            let strings: Vec<&[u8]> = value.as_bytes().chunks(255).collect();
            let strings = if strings.is_empty() {
                vec![&b""[..]]
            } else {
                strings
            };
            let record =
                Record::from_rdata(name.clone(), TTL, RData::TXT(TXT::from_bytes(strings)));
            rrset.insert(record, SERIAL);
        }
        let key = RrKey::new(LowerName::from(&name), RecordType::TXT);
        let mut records = authority.records_mut().await;
        if rrset.is_empty() {
            records.remove(&key);
        } else {
            records.insert(key, Arc::new(rrset));
        }
    }

    /// Replaces the A rrset at `name` with one record for `address`.
    ///
    /// # Panics
    ///
    /// If `name` is not a valid name inside one of the served zones: a mistake in the test.
    pub async fn set_a(&self, name: &str, address: Ipv4Addr) {
        let (name, authority) = self.zone_for(name);
        let mut rrset = RecordSet::with_ttl(name.clone(), RecordType::A, TTL);
        rrset.insert(
            Record::from_rdata(name.clone(), TTL, RData::A(A(address))),
            SERIAL,
        );
        let key = RrKey::new(LowerName::from(&name), RecordType::A);
        authority.records_mut().await.insert(key, Arc::new(rrset));
    }

    /// Replaces the AAAA rrset at `name` with one record for `address`.
    ///
    /// # Panics
    ///
    /// If `name` is not a valid name inside one of the served zones: a mistake in the test.
    pub async fn set_aaaa(&self, name: &str, address: std::net::Ipv6Addr) {
        let (name, authority) = self.zone_for(name);
        let mut rrset = RecordSet::with_ttl(name.clone(), RecordType::AAAA, TTL);
        rrset.insert(
            Record::from_rdata(name.clone(), TTL, RData::AAAA(AAAA(address))),
            SERIAL,
        );
        let key = RrKey::new(LowerName::from(&name), RecordType::AAAA);
        authority.records_mut().await.insert(key, Arc::new(rrset));
    }

    /// Removes every record at `name` (the zone's own SOA and NS stay), so it answers NXDOMAIN.
    ///
    /// # Panics
    ///
    /// If `name` is not a valid name inside one of the served zones: a mistake in the test.
    pub async fn remove(&self, name: &str) {
        let (name, authority) = self.zone_for(name);
        let name = LowerName::from(&name);
        let mut records = authority.records_mut().await;
        records.retain(|key, _| {
            key.name != name
                || (*authority.origin() == name
                    && matches!(key.record_type, RecordType::SOA | RecordType::NS))
        });
    }

    /// The name parsed, and the most specific served zone holding it.
    fn zone_for(&self, name: &str) -> (Name, &InMemoryAuthority) {
        let parsed = match fqdn(name) {
            Ok(parsed) => parsed,
            Err(e) => panic!("AuthoritativeDns: {e}"),
        };
        let lower = LowerName::from(&parsed);
        let zone = self
            .zones
            .iter()
            .filter(|(origin, _)| origin.zone_of(&lower))
            .max_by_key(|(origin, _)| origin.num_labels());
        match zone {
            Some((_, authority)) => (parsed, authority.as_ref()),
            None => panic!("AuthoritativeDns: {name} is in none of the served zones"),
        }
    }
}

/// A zone with just enough to be authoritative: SOA, NS and the name server's address.
fn zone_authority(origin: &Name) -> io::Result<InMemoryAuthority> {
    let ns = fqdn(&format!("ns1.{origin}"))?;
    let hostmaster = fqdn(&format!("hostmaster.{origin}"))?;
    let mut authority = InMemoryAuthority::empty(origin.clone(), ZoneType::Primary, false);
    let records = [
        Record::from_rdata(
            origin.clone(),
            TTL,
            RData::SOA(SOA::new(ns.clone(), hostmaster, SERIAL, 60, 60, 60, TTL)),
        ),
        Record::from_rdata(origin.clone(), TTL, RData::NS(NS(ns.clone()))),
        Record::from_rdata(ns, TTL, RData::A(A(Ipv4Addr::LOCALHOST))),
    ];
    for record in records {
        if !authority.upsert_mut(record, SERIAL) {
            return Err(io::Error::other(format!("cannot build zone {origin}")));
        }
    }
    Ok(authority)
}

/// `name` as a fully qualified name (a trailing dot is added if missing).
fn fqdn(name: &str) -> io::Result<Name> {
    let mut parsed = Name::from_ascii(name.trim_end_matches('.'))
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{name:?}: {e}")))?;
    parsed.set_fqdn(true);
    Ok(parsed)
}

/// A UDP socket and a TCP listener on the same ephemeral port of 127.0.0.1.
async fn bind_same_port() -> io::Result<(UdpSocket, TcpListener)> {
    let mut last_error = None;
    for _ in 0..BIND_TRIES {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let port = udp.local_addr()?.port();
        match TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
            Ok(tcp) => return Ok((udp, tcp)),
            // Someone holds that port for TCP: take another UDP port and try again.
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no port free for UDP and TCP")))
}
