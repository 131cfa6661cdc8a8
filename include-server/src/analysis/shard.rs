//! A concurrent hash map split into independently locked shards.
//!
//! Invariant: a shard's lock is held only for the duration of one map operation, never
//! during file I/O or while computing a value; callers compute outside and insert after
//! (two threads racing on the same key both compute, and the first insert wins).

use std::hash::{BuildHasher, Hash};

use hashbrown::hash_table::Entry;
use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;
use std::sync::RwLock;

const SHARDS: usize = 32;

/// A map of `K` to `V` shared by all request threads. A key is hashed once per
/// operation: the hash picks the shard (from its high bits) and is the one the shard's
/// table files it under (a map per shard would hash it again: path keys are tens of
/// bytes, and the walk makes thousands of look-ups).
#[derive(Debug)]
pub struct ShardedMap<K, V> {
    shards: Vec<RwLock<HashTable<(K, V)>>>,
}

impl<K: Hash + Eq, V: Clone> Default for ShardedMap<K, V> {
    fn default() -> Self {
        ShardedMap {
            shards: (0..SHARDS).map(|_| RwLock::new(HashTable::new())).collect(),
        }
    }
}

fn hash<Q: Hash + ?Sized>(key: &Q) -> u64 {
    FxBuildHasher.hash_one(key)
}

impl<K: Hash + Eq, V: Clone> ShardedMap<K, V> {
    fn shard(&self, hash: u64) -> &RwLock<HashTable<(K, V)>> {
        // Fx mixes into the high bits; take the shard from there (the table uses the low
        // bits and the top seven).
        &self.shards[(hash >> 40) as usize % SHARDS]
    }

    /// A clone of the value for `key`, if any.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let h = hash(key);
        let shard = self.shard(h).read().unwrap_or_else(|e| e.into_inner());
        shard
            .find(h, |(k, _)| k.borrow() == key)
            .map(|(_, v)| v.clone())
    }

    /// Runs `f` on the entry for `key` under its shard's write lock (`key` is handed back
    /// for a vacant entry to take).
    fn with_entry<R>(&self, key: K, f: impl FnOnce(Entry<'_, (K, V)>, K) -> R) -> R {
        let h = hash(&key);
        let mut shard = self.shard(h).write().unwrap_or_else(|e| e.into_inner());
        let entry = shard.entry(h, |(k, _)| *k == key, |(k, _)| hash(k));
        f(entry, key)
    }

    /// Inserts `value` unless `key` is present; returns the value now stored.
    pub fn insert_if_absent(&self, key: K, value: V) -> V {
        self.with_entry(key, |e, key| e.or_insert((key, value)).get().1.clone())
    }

    /// Inserts or replaces the value for `key`.
    pub fn insert(&self, key: K, value: V) {
        self.with_entry(key, |e, key| match e {
            Entry::Occupied(mut e) => e.get_mut().1 = value,
            Entry::Vacant(e) => {
                e.insert((key, value));
            }
        })
    }

    /// Applies `f` to the entry for `key` (created with `V::default()`) under the lock;
    /// `f` must be cheap and do no I/O.
    pub fn update<R>(&self, key: K, f: impl FnOnce(&mut V) -> R) -> R
    where
        V: Default,
    {
        self.with_entry(key, |e, key| {
            f(&mut e.or_insert_with(|| (key, V::default())).get_mut().1)
        })
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

    #[test]
    fn many_keys_across_shards_are_found_by_their_borrowed_form() {
        let m: ShardedMap<Box<[u8]>, usize> = ShardedMap::default();
        let key = |i: usize| format!("/usr/include/c++/12/bits/header-{i}.h").into_bytes();
        for i in 0..2000 {
            assert_eq!(m.insert_if_absent(key(i).into(), i), i);
        }
        for i in 0..2000 {
            assert_eq!(m.get(&key(i)[..]), Some(i));
            m.insert(key(i).into(), i + 1);
            m.update(key(i).into(), |v| *v *= 2);
            assert_eq!(m.get(&key(i)[..]), Some(2 * (i + 1)));
        }
        assert_eq!(m.get(&b"/nowhere"[..]), None);
        assert_eq!(m.len(), 2000);
        let used = m
            .shards
            .iter()
            .filter(|s| !s.read().unwrap().is_empty())
            .count();
        assert_eq!(used, SHARDS, "the keys spread over every shard");
    }
}
