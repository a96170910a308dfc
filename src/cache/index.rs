//! Open-addressing hash index from a 128-bit key to an arena index, linear probing, at most
//! half full, with backward-shift deletion (no tombstones, so probe lengths stay short forever).
//! Allocated once; never grows.

const EMPTY: u32 = u32::MAX;

pub(crate) struct Index {
    table: Box<[u32]>,
    mask: usize,
}

impl Index {
    /// An index for up to `entries` keys (table of 2 × entries rounded up to a power of two).
    pub(crate) fn new(entries: usize) -> Index {
        let size = (entries.max(1) * 2).next_power_of_two();
        Index {
            table: vec![EMPTY; size].into_boxed_slice(),
            mask: size - 1,
        }
    }

    #[inline]
    fn home(&self, key: u128) -> usize {
        (key as u64 as usize) & self.mask
    }

    /// Finds `key`; `key_of(i)` returns the key stored in arena entry `i`. Returns the arena
    /// index. The probe is bounded by the table size.
    #[inline]
    pub(crate) fn find(&self, key: u128, key_of: impl Fn(u32) -> u128) -> Option<u32> {
        let mut pos = self.home(key);
        for _ in 0..=self.mask {
            let i = self.table[pos];
            if i == EMPTY {
                return None;
            }
            if key_of(i) == key {
                return Some(i);
            }
            pos = (pos + 1) & self.mask;
        }
        None
    }

    /// Inserts `key → idx`. The caller guarantees the key is absent and the index not full.
    pub(crate) fn insert(&mut self, key: u128, idx: u32) {
        let mut pos = self.home(key);
        for _ in 0..=self.mask {
            if self.table[pos] == EMPTY {
                self.table[pos] = idx;
                return;
            }
            pos = (pos + 1) & self.mask;
        }
        debug_assert!(false, "index full: the arena holds at most half the table");
    }

    /// Removes `key` (which maps to `idx`), shifting later members of its probe run back.
    pub(crate) fn remove(&mut self, key: u128, idx: u32, key_of: impl Fn(u32) -> u128) {
        let mut pos = self.home(key);
        let mut found = false;
        for _ in 0..=self.mask {
            match self.table[pos] {
                EMPTY => break,
                i if i == idx => {
                    found = true;
                    break;
                }
                _ => pos = (pos + 1) & self.mask,
            }
        }
        if !found {
            return;
        }
        let mut hole = pos;
        let mut j = pos;
        loop {
            j = (j + 1) & self.mask;
            let i = self.table[j];
            if i == EMPTY {
                break;
            }
            let k = self.home(key_of(i));
            // Move entry j into the hole if its home is not cyclically within (hole, j].
            let dist_home_j = j.wrapping_sub(k) & self.mask;
            let dist_hole_j = j.wrapping_sub(hole) & self.mask;
            if dist_home_j >= dist_hole_j {
                self.table[hole] = i;
                hole = j;
            }
        }
        self.table[hole] = EMPTY;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    proptest! {
        #[test]
        fn behaves_like_a_map(ops in proptest::collection::vec((any::<bool>(), 0u64..64, 0u64..4), 1..400)) {
            // keys collide on purpose: low bits from a small range
            let cap = 32usize;
            let mut idx = Index::new(cap);
            let mut keys: Vec<u128> = vec![0; cap];
            let mut model: HashMap<u128, u32> = HashMap::new();
            let mut free: Vec<u32> = (0..cap as u32).rev().collect();
            for (ins, lo, hi) in ops {
                let key = ((hi as u128) << 64) | lo as u128;
                if ins {
                    if let std::collections::hash_map::Entry::Vacant(e) = model.entry(key) {
                        if let Some(slot) = free.pop() {
                            keys[slot as usize] = key;
                            idx.insert(key, slot);
                            e.insert(slot);
                        }
                    }
                } else if let Some(slot) = model.remove(&key) {
                    idx.remove(key, slot, |i| keys[i as usize]);
                    free.push(slot);
                }
                for (k, v) in &model {
                    prop_assert_eq!(idx.find(*k, |i| keys[i as usize]), Some(*v));
                }
                prop_assert_eq!(idx.find(key, |i| keys[i as usize]), model.get(&key).copied());
            }
        }
    }
}
