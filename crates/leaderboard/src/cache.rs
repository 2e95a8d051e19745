//! Small per-instance TTL caches (regions, pipelines keyed by their parameters).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys kept at most; parameters come from the internet, so the map must stay bounded.
const MAX_ENTRIES: usize = 1024;

/// A map whose entries expire `ttl` after they were stored. A zero TTL disables caching.
pub struct TtlCache<K, V> {
    ttl: Duration,
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration) -> Self {
        TtlCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .filter(|(stored, _)| stored.elapsed() < self.ttl)
            .map(|(_, v)| v.clone())
    }

    pub fn put(&self, key: K, value: V) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (stored, _)| stored.elapsed() < self.ttl);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now(), value));
    }

    /// Forgets everything, so the next read goes to the database.
    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_kept_per_key() {
        let c = TtlCache::new(Duration::from_secs(60));
        c.put("a", 1);
        c.put("b", 2);
        assert_eq!(c.get(&"a"), Some(1));
        assert_eq!(c.get(&"b"), Some(2));
        assert_eq!(c.get(&"c"), None);
        c.clear();
        assert_eq!(c.get(&"a"), None);
    }

    #[test]
    fn zero_ttl_caches_nothing() {
        let c = TtlCache::new(Duration::ZERO);
        c.put((), 1);
        assert_eq!(c.get(&()), None);
    }

    #[test]
    fn the_map_stays_bounded() {
        let c = TtlCache::new(Duration::from_secs(60));
        for i in 0..(MAX_ENTRIES * 3) {
            c.put(i, i);
        }
        assert!(c.entries.lock().unwrap().len() <= MAX_ENTRIES);
        assert_eq!(c.get(&(MAX_ENTRIES * 3 - 1)), Some(MAX_ENTRIES * 3 - 1));
    }
}
