//! Warm instances, kept for reuse host-wide within one memory budget.
//!
//! An instance that answered a call is worth keeping: the next call to its
//! component skips instantiation and `init`. But a host with ten thousand
//! components cannot keep one of each, so warm instances share one budget
//! of linear memory (`[host] max_warm_mb`); past it, the instances of the
//! component used longest ago are dropped first. Idle components then hold
//! no instance at all, and their next call makes one.
//!
//! Generic over what is kept, so that this file knows nothing of stores.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rustc_hash::FxHashMap;

/// The host's shelf of warm instances. Cheap to clone.
pub(crate) struct Warm<T> {
    shelf: Arc<Mutex<Shelf<T>>>,
    budget: usize,
}

impl<T> Clone for Warm<T> {
    fn clone(&self) -> Self {
        Self {
            shelf: self.shelf.clone(),
            budget: self.budget,
        }
    }
}

struct Shelf<T> {
    /// Each component's warm instances (oldest first) and its last use. A
    /// component whose last instance was taken keeps its (empty) slot: a
    /// component serving one call at a time takes and puts back the same
    /// instance every call, and its slot is then looked up, not removed and
    /// made again. Keys are process-unique counters: no hash that resists
    /// chosen keys is needed, and SipHash cost three times the lookup.
    slots: FxHashMap<u64, Slot<T>>,
    /// Components holding instances, by last use: the first is evicted first.
    order: BTreeMap<u64, u64>,
    bytes: usize,
    clock: u64,
    evictions: u64,
}

struct Slot<T> {
    kept: VecDeque<(T, usize)>,
    used: u64,
}

/// What the shelf holds, for health and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WarmStats {
    /// Instances kept warm.
    pub instances: usize,
    /// Their linear memory, in bytes.
    pub bytes: usize,
    /// The budget, in bytes.
    pub budget: usize,
    /// Instances dropped to stay within the budget or to free a pool slot.
    pub evictions: u64,
}

impl<T> Warm<T> {
    /// An empty shelf that keeps at most `budget` bytes of linear memory.
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            shelf: Arc::new(Mutex::new(Shelf {
                slots: FxHashMap::default(),
                order: BTreeMap::new(),
                bytes: 0,
                clock: 0,
                evictions: 0,
            })),
            budget,
        }
    }

    /// A key for one component's instances, unique in this process.
    pub(crate) fn key() -> u64 {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        NEXT.fetch_add(1, Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, Shelf<T>> {
        self.shelf.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The component's most recently kept instance, if it has one.
    pub(crate) fn take(&self, key: u64) -> Option<T> {
        let mut shelf = self.lock();
        let slot = shelf.slots.get_mut(&key)?;
        let (instance, bytes) = slot.kept.pop_back()?;
        if slot.kept.is_empty() {
            let used = slot.used;
            shelf.order.remove(&used);
        }
        shelf.bytes -= bytes;
        Some(instance)
    }

    /// Keeps `instance` (holding `bytes` of memory) for the component
    /// `key`, which keeps at most `most` instances; returns what must be
    /// dropped to stay within the budget: the caller drops it outside the
    /// lock, as freeing a store takes a while.
    #[must_use = "dropping the evicted instances is the caller's work"]
    pub(crate) fn put(&self, key: u64, instance: T, bytes: usize, most: usize) -> Vec<T> {
        if bytes > self.budget || most == 0 {
            return vec![instance];
        }
        let mut shelf = self.lock();
        shelf.clock += 1;
        let now = shelf.clock;
        let slot = shelf.slots.entry(key).or_insert_with(|| Slot {
            kept: VecDeque::new(),
            used: 0,
        });
        if slot.kept.len() >= most {
            return vec![instance];
        }
        let before = std::mem::replace(&mut slot.used, now);
        let was_kept = !slot.kept.is_empty();
        slot.kept.push_back((instance, bytes));
        if was_kept {
            shelf.order.remove(&before);
        }
        shelf.order.insert(now, key);
        shelf.bytes += bytes;
        let mut evicted = Vec::new();
        while shelf.bytes > self.budget {
            match shelf.evict_oldest() {
                Some(victim) => evicted.push(victim),
                None => break,
            }
        }
        evicted
    }

    /// Drops up to `count` instances, those used longest ago first; to free
    /// pool slots when the instance pool is full.
    #[must_use = "dropping the evicted instances is the caller's work"]
    pub(crate) fn evict(&self, count: usize) -> Vec<T> {
        let mut shelf = self.lock();
        std::iter::from_fn(|| shelf.evict_oldest()).take(count).collect()
    }

    /// Every instance of the component `key`, which is going away.
    #[must_use = "dropping the instances is the caller's work"]
    pub(crate) fn forget(&self, key: u64) -> Vec<T> {
        let mut shelf = self.lock();
        let Some(slot) = shelf.slots.remove(&key) else {
            return Vec::new();
        };
        if !slot.kept.is_empty() {
            shelf.order.remove(&slot.used);
        }
        shelf.bytes -= slot.kept.iter().map(|(_, b)| b).sum::<usize>();
        slot.kept.into_iter().map(|(i, _)| i).collect()
    }

    /// How much is kept.
    pub(crate) fn stats(&self) -> WarmStats {
        let shelf = self.lock();
        WarmStats {
            instances: shelf.slots.values().map(|s| s.kept.len()).sum(),
            bytes: shelf.bytes,
            budget: self.budget,
            evictions: shelf.evictions,
        }
    }
}

impl<T> Shelf<T> {
    /// The oldest instance of the component used longest ago.
    fn evict_oldest(&mut self) -> Option<T> {
        let (&used, &key) = self.order.first_key_value()?;
        let slot = self.slots.get_mut(&key)?;
        let (instance, bytes) = slot.kept.pop_front()?;
        if slot.kept.is_empty() {
            self.order.remove(&used);
        }
        self.bytes -= bytes;
        self.evictions += 1;
        Some(instance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_component_used_longest_ago_gives_way() {
        let warm = Warm::new(300);
        let (a, b, c) = (Warm::<()>::key(), Warm::<()>::key(), Warm::<()>::key());
        assert!(warm.put(a, "a1", 100, 4).is_empty());
        assert!(warm.put(b, "b1", 100, 4).is_empty());
        assert!(warm.put(a, "a2", 100, 4).is_empty());
        // Over budget: b was used longest ago.
        assert_eq!(warm.put(c, "c1", 100, 4), ["b1"]);
        assert_eq!(warm.take(b), None);
        assert_eq!(warm.take(a), Some("a2"), "the most recent instance is reused first");
        let stats = warm.stats();
        assert_eq!((stats.instances, stats.bytes, stats.evictions), (2, 200, 1));
    }

    #[test]
    fn limits_per_component_and_size_are_kept() {
        let warm = Warm::new(1000);
        let a = Warm::<()>::key();
        assert!(warm.put(a, 1, 100, 1).is_empty());
        assert_eq!(warm.put(a, 2, 100, 1), [2], "one instance at most for this component");
        assert_eq!(warm.put(a, 3, 2000, 4), [3], "larger than the whole budget");
        assert_eq!(warm.forget(a), [1]);
        assert_eq!(
            warm.stats(),
            WarmStats {
                budget: 1000,
                ..WarmStats::default()
            }
        );
    }

    #[test]
    fn eviction_frees_the_oldest_first_and_stops_when_empty() {
        let warm = Warm::new(1000);
        let (a, b) = (Warm::<()>::key(), Warm::<()>::key());
        assert!(warm.put(a, "a1", 10, 4).is_empty());
        assert!(warm.put(b, "b1", 10, 4).is_empty());
        assert!(warm.put(a, "a2", 10, 4).is_empty());
        assert_eq!(warm.evict(1), ["b1"]);
        assert_eq!(warm.evict(5), ["a1", "a2"]);
        assert!(warm.evict(1).is_empty());
        assert_eq!(warm.take(a), None);
    }

    #[test]
    fn a_slot_emptied_by_a_take_is_reused_and_out_of_the_eviction_order() {
        let warm = Warm::new(200);
        let (a, b) = (Warm::<()>::key(), Warm::<()>::key());
        assert!(warm.put(a, "a1", 100, 4).is_empty());
        assert_eq!(warm.take(a), Some("a1"));
        assert!(warm.put(b, "b1", 100, 4).is_empty());
        assert_eq!(warm.evict(2), ["b1"], "a holds nothing to evict");
        assert!(warm.put(a, "a1", 100, 4).is_empty());
        assert!(warm.put(b, "b2", 100, 4).is_empty());
        assert_eq!(warm.put(b, "b3", 100, 4), ["a1"], "a was used longest ago");
        assert_eq!(warm.take(a), None);
        let stats = warm.stats();
        assert_eq!((stats.instances, stats.bytes), (2, 200));
    }
}
