//! Partitioned CRLs (CA/B Forum BR 7.2, CA-4): each issuer's revocations are split into
//! shards, and a certificate names its shard's URL in its CRL distribution point, fixed
//! when it is signed. Each shard is a complete CRL of its own, with an
//! `issuingDistributionPoint` naming that same URL, so a relying party that fetched the
//! certificate's distribution point knows the CRL covers it.
//!
//! Certificates signed before partitioning name the issuer's original URL
//! (`/crl/<issuer>.crl`); that URL stays a partition of its own, [`Shard::Original`], which
//! lists only those certificates.

use sha2::{Digest, Sha256};

use crate::IssuerId;

/// Which of an issuer's CRLs a certificate is listed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Shard {
    /// The CRL named in certificates signed before partitioning: `/crl/<issuer>.crl`.
    Original,
    /// Shard `n`: `/crl/<issuer>/<n>.crl`.
    Numbered(u32),
}

/// The most shards an issuer may be split into: a CCADB list stays short and a shard
/// number stays one subject token.
pub const MAX_SHARDS: u32 = 4096;

/// The shard a new certificate goes to, out of `shards`: a hash of its id, so a retried
/// signing picks the same shard and shards fill evenly.
pub fn shard_for(certificate_id: &str, shards: u32) -> u32 {
    let digest = Sha256::digest(certificate_id.as_bytes());
    let head = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    head % shards.clamp(1, MAX_SHARDS)
}

/// One CRL: an issuer and one of its shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CrlPartition {
    pub issuer: IssuerId,
    pub shard: Shard,
}

impl CrlPartition {
    /// The path under the CRL base URL: `crl/geotrust.crl`, `crl/geotrust/7.crl`.
    pub fn path(self) -> String {
        match self.shard {
            Shard::Original => format!("crl/{}.crl", self.issuer.slug()),
            Shard::Numbered(n) => format!("crl/{}/{n}.crl", self.issuer.slug()),
        }
    }

    /// The full URL under `base`, as written into certificates and their CRL's
    /// `issuingDistributionPoint`.
    pub fn url_under(self, base: &str) -> String {
        format!("{}/{}", base.trim_end_matches('/'), self.path())
    }

    /// The partition a [`path`](Self::path) names; `None` for anything else.
    pub fn from_path(path: &str) -> Option<Self> {
        let rest = path.trim_start_matches('/').strip_prefix("crl/")?;
        let rest = rest.strip_suffix(".crl")?;
        match rest.split_once('/') {
            None => Some(CrlPartition {
                issuer: IssuerId::from_slug(rest)?,
                shard: Shard::Original,
            }),
            Some((slug, number)) => {
                // Digits only, no sign, no leading zero: one path per shard.
                let canonical = !number.is_empty()
                    && number.bytes().all(|b| b.is_ascii_digit())
                    && (number == "0" || !number.starts_with('0'));
                let n: u32 = number.parse().ok().filter(|_| canonical)?;
                (n < MAX_SHARDS).then_some(CrlPartition {
                    issuer: IssuerId::from_slug(slug)?,
                    shard: Shard::Numbered(n),
                })
            }
        }
    }
}

impl std::fmt::Display for CrlPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.shard {
            Shard::Original => write!(f, "{}", self.issuer),
            Shard::Numbered(n) => write!(f, "{} shard {n}", self.issuer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use certflow_domain::Brand;

    const GEOTRUST: IssuerId = IssuerId {
        brand: Brand::GeoTrust,
        sm2: false,
    };

    #[test]
    fn ca4_every_partition_has_one_path_and_reads_back_from_it() {
        for issuer in IssuerId::all() {
            for shard in [Shard::Original, Shard::Numbered(0), Shard::Numbered(4095)] {
                let partition = CrlPartition { issuer, shard };
                assert_eq!(CrlPartition::from_path(&partition.path()), Some(partition));
            }
        }
        let url = CrlPartition {
            issuer: GEOTRUST,
            shard: Shard::Numbered(7),
        }
        .url_under("http://crl.example/");
        assert_eq!(url, "http://crl.example/crl/geotrust/7.crl");
    }

    #[test]
    fn ca4_paths_that_name_no_partition_are_refused() {
        for path in [
            "crl/geotrust",
            "crl/nobody.crl",
            "crl/geotrust/07.crl",
            "crl/geotrust/+7.crl",
            "crl/geotrust/-1.crl",
            "crl/geotrust/4096.crl",
            "crl/geotrust/.crl",
            "crl/geotrust/1/2.crl",
            "crl/geotrust/99999999999.crl",
            "other/geotrust.crl",
        ] {
            assert_eq!(CrlPartition::from_path(path), None, "{path}");
        }
    }

    #[test]
    fn ca4_a_certificate_keeps_its_shard_and_shards_fill_evenly() {
        assert_eq!(shard_for("cert-1", 16), shard_for("cert-1", 16));
        let mut counts = [0u32; 16];
        for i in 0..16_000 {
            counts[shard_for(&format!("certificate-{i}"), 16) as usize] += 1;
        }
        for (shard, count) in counts.iter().enumerate() {
            assert!((800..1200).contains(count), "shard {shard}: {count}");
        }
        assert_eq!(shard_for("x", 0), 0, "no shards configured means one");
    }
}
