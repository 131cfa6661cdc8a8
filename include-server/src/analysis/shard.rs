//! A concurrent hash map split into independently locked shards.
//!
//! Invariant: a shard's lock is held only for the duration of one map operation, never
//! during file I/O or while computing a value; callers compute outside and insert after
//! (two threads racing on the same key both compute, and the first insert wins).

use std::hash::{BuildHasher, Hash};

use rustc_hash::{FxBuildHasher, FxHashMap as HashMap};
use std::sync::RwLock;

const SHARDS: usize = 32;

/// A map of `K` to `V` shared by all request threads.
#[derive(Debug)]
pub struct ShardedMap<K, V> {
    shards: Vec<RwLock<HashMap<K, V>>>,
}

impl<K: Hash + Eq, V: Clone> Default for ShardedMap<K, V> {
    fn default() -> Self {
        ShardedMap {
            shards: (0..SHARDS)
                .map(|_| RwLock::new(HashMap::default()))
                .collect(),
        }
    }
}

impl<K: Hash + Eq, V: Clone> ShardedMap<K, V> {
    fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> &RwLock<HashMap<K, V>> {
        // Fx mixes into the high bits; take the shard from there.
        let h = (FxBuildHasher.hash_one(key) >> 40) as usize;
        &self.shards[h % SHARDS]
    }

    /// A clone of the value for `key`, if any.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let shard = self.shard(key).read().unwrap_or_else(|e| e.into_inner());
        shard.get(key).cloned()
    }

    /// Inserts `value` unless `key` is present; returns the value now stored.
    pub fn insert_if_absent(&self, key: K, value: V) -> V {
        let mut shard = self.shard(&key).write().unwrap_or_else(|e| e.into_inner());
        shard.entry(key).or_insert(value).clone()
    }

    /// Inserts or replaces the value for `key`.
    pub fn insert(&self, key: K, value: V) {
        let mut shard = self.shard(&key).write().unwrap_or_else(|e| e.into_inner());
        shard.insert(key, value);
    }

    /// Applies `f` to the entry for `key` (created with `V::default()`) under the lock;
    /// `f` must be cheap and do no I/O.
    pub fn update<R>(&self, key: K, f: impl FnOnce(&mut V) -> R) -> R
    where
        V: Default,
    {
        let mut shard = self.shard(&key).write().unwrap_or_else(|e| e.into_inner());
        f(shard.entry(key).or_default())
    }

    /// Drops every entry.
    pub fn clear(&self) {
        for s in &self.shards {
            s.write().unwrap_or_else(|e| e.into_inner()).clear();
        }
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_get_clear() {
        let m: ShardedMap<Vec<u8>, u32> = ShardedMap::default();
        assert_eq!(m.insert_if_absent(b"a".to_vec(), 1), 1);
        assert_eq!(m.insert_if_absent(b"a".to_vec(), 2), 1);
        assert_eq!(m.get(&b"a"[..]), Some(1));
        m.update(b"b".to_vec(), |v| *v += 5);
        assert_eq!(m.get(&b"b"[..]), Some(5));
        assert_eq!(m.len(), 2);
        m.clear();
        assert_eq!(m.len(), 0);
    }
}
