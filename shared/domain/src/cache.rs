//! A small time-bounded cache for warm Lambda instances: an entry is served for at most `ttl` after it
//! was stored, by the decision's own clock (a clock that goes backwards expires entries rather than
//! keeping them), and at most `capacity` entries are kept (expired ones first, then the oldest).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use time::{Duration, OffsetDateTime};

pub struct TtlCache<K, V> {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<K, (OffsetDateTime, V)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    /// A zero `ttl` or `capacity` caches nothing.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (OffsetDateTime, V)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fresh(&self, at: OffsetDateTime, now: OffsetDateTime) -> bool {
        at <= now && at.checked_add(self.ttl).is_some_and(|end| now < end)
    }

    pub fn get(&self, key: &K, now: OffsetDateTime) -> Option<V> {
        let mut map = self.lock();
        match map.get(key) {
            Some((at, value)) if self.fresh(*at, now) => Some(value.clone()),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    pub fn put(&self, key: K, value: V, now: OffsetDateTime) {
        if self.capacity == 0 || self.ttl <= Duration::ZERO {
            return;
        }
        let mut map = self.lock();
        if map.len() >= self.capacity && !map.contains_key(&key) {
            map.retain(|_, (at, _)| self.fresh(*at, now));
            if map.len() >= self.capacity {
                let oldest = map
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    map.remove(&k);
                }
            }
        }
        map.insert(key, (now, value));
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_capacity_is_kept() {
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(1);
        let c = TtlCache::new(Duration::seconds(5), 2);
        c.put("a", 1, t0);
        assert_eq!(c.get(&"a", t0 + Duration::seconds(4)), Some(1));
        assert_eq!(c.get(&"a", t0 + Duration::seconds(5)), None, "expired");
        c.put("a", 1, t0);
        assert_eq!(
            c.get(&"a", t0 - Duration::seconds(1)),
            None,
            "clock went back"
        );
        c.put("a", 1, t0);
        c.put("b", 2, t0 + Duration::seconds(1));
        c.put("c", 3, t0 + Duration::seconds(2));
        assert_eq!(c.len(), 2);
        assert_eq!(
            c.get(&"a", t0 + Duration::seconds(2)),
            None,
            "oldest evicted"
        );
        let off = TtlCache::new(Duration::ZERO, 10);
        off.put("a", 1, t0);
        assert!(off.is_empty());
    }
}
