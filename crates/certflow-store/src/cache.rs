//! Recently read certificates, kept by each event store so a load reads only what the log
//! holds after the cached sequence: one round trip and no decoding when nothing changed.
//!
//! The cache never answers on its own: every load still asks the log for newer messages, and
//! every append still carries the expected sequence, so a cached state is exactly as fresh
//! as an uncached read would have been.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use certflow_domain::CertificateId;

use crate::store::Loaded;

/// A bounded map of certificate → (state, sequence); the oldest entry goes first.
#[derive(Debug)]
pub(crate) struct StateCache {
    inner: Mutex<Inner>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<CertificateId, Loaded>,
    order: VecDeque<CertificateId>,
}

impl StateCache {
    pub(crate) fn new(capacity: usize) -> Self {
        StateCache {
            inner: Mutex::new(Inner::default()),
            capacity,
        }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The cached state of `id`, if any.
    pub(crate) fn get(&self, id: &CertificateId) -> Option<Loaded> {
        if self.capacity == 0 {
            return None;
        }
        self.inner().entries.get(id).cloned()
    }

    /// Remembers `loaded` for `id`, unless an entry read at a later sequence is there.
    pub(crate) fn put(&self, id: &CertificateId, loaded: Loaded) {
        if self.capacity == 0 || loaded.version == 0 {
            return;
        }
        let mut inner = self.inner();
        match inner.entries.get_mut(id) {
            Some(existing) if existing.version >= loaded.version => {}
            Some(existing) => *existing = loaded,
            None => {
                inner.entries.insert(id.clone(), loaded);
                inner.order.push_back(id.clone());
                while inner.entries.len() > self.capacity {
                    let Some(oldest) = inner.order.pop_front() else {
                        break;
                    };
                    inner.entries.remove(&oldest);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(version: u64) -> Loaded {
        Loaded {
            state: None,
            version,
        }
    }

    fn id(n: u8) -> CertificateId {
        CertificateId::parse(&format!("00000000-0000-4000-8000-0000000000{n:02x}"))
            .expect("a valid id")
    }

    #[test]
    fn keeps_the_latest_read_and_forgets_the_oldest_entry() {
        let cache = StateCache::new(2);
        cache.put(&id(1), loaded(5));
        cache.put(&id(1), loaded(3));
        assert_eq!(
            cache.get(&id(1)).map(|l| l.version),
            Some(5),
            "an older read never wins"
        );
        cache.put(&id(2), loaded(7));
        cache.put(&id(3), loaded(9));
        assert!(cache.get(&id(1)).is_none(), "the oldest entry went");
        assert_eq!(cache.get(&id(3)).map(|l| l.version), Some(9));
    }

    #[test]
    fn a_zero_capacity_cache_keeps_nothing() {
        let cache = StateCache::new(0);
        cache.put(&id(1), loaded(5));
        assert!(cache.get(&id(1)).is_none());
    }
}
