//! Eviction policies over the shard's arena: LRU (intrusive doubly linked list) and S3-FIFO
//! (small FIFO, main FIFO with 2-bit frequencies, ghost filter). Both are preallocated and do no
//! allocation after construction. `benches/cache.rs` compares their hit ratios on Zipf traces;
//! S3-FIFO is the default because it won there (see PERF.md).

const NIL: u32 = u32::MAX;

/// Which eviction policy a shard uses (`cache.eviction` in the config).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Eviction {
    #[default]
    S3Fifo,
    Lru,
}

/// A fixed-capacity FIFO of arena indices.
pub(crate) struct Fifo {
    buf: Box<[u32]>,
    head: usize,
    len: usize,
}

impl Fifo {
    fn new(cap: usize) -> Fifo {
        Fifo {
            buf: vec![NIL; cap.max(1)].into_boxed_slice(),
            head: 0,
            len: 0,
        }
    }
    fn push(&mut self, v: u32) {
        debug_assert!(self.len < self.buf.len());
        let i = (self.head + self.len) % self.buf.len();
        self.buf[i] = v;
        self.len += 1;
    }
    fn pop(&mut self) -> Option<u32> {
        if self.len == 0 {
            return None;
        }
        let v = self.buf[self.head];
        self.head = (self.head + 1) % self.buf.len();
        self.len -= 1;
        Some(v)
    }
}

pub(crate) enum Policy {
    Lru {
        prev: Box<[u32]>,
        next: Box<[u32]>,
        head: u32, // most recent
        tail: u32, // least recent
    },
    S3Fifo {
        small: Fifo,
        main: Fifo,
        small_target: usize,
        freq: Box<[u8]>,
        /// Entry was removed (expired, stale, corrupt) while still in a FIFO: skip on eviction.
        dead: Box<[bool]>,
        ghost: Box<[u64]>,
    },
}

/// What eviction freed: the arena index, and whether its key must still be removed from the
/// index (false for entries already removed as dead).
pub(crate) struct Victim {
    pub idx: u32,
    pub live: bool,
}

impl Policy {
    pub(crate) fn new(kind: Eviction, cap: usize) -> Policy {
        match kind {
            Eviction::Lru => Policy::Lru {
                prev: vec![NIL; cap].into_boxed_slice(),
                next: vec![NIL; cap].into_boxed_slice(),
                head: NIL,
                tail: NIL,
            },
            Eviction::S3Fifo => Policy::S3Fifo {
                small: Fifo::new(cap),
                main: Fifo::new(cap),
                small_target: (cap / 10).max(1),
                freq: vec![0; cap].into_boxed_slice(),
                dead: vec![false; cap].into_boxed_slice(),
                ghost: vec![0; cap.max(1).next_power_of_two()].into_boxed_slice(),
            },
        }
    }

    fn ghost_slot(ghost: &[u64], key: u128) -> (usize, u64) {
        (
            (key as u64 as usize) & (ghost.len() - 1),
            ((key >> 64) as u64) | 1,
        )
    }

    /// Records an insertion of arena entry `idx` with `key`.
    pub(crate) fn on_insert(&mut self, idx: u32, key: u128) {
        match self {
            Policy::Lru {
                prev,
                next,
                head,
                tail,
            } => {
                prev[idx as usize] = NIL;
                next[idx as usize] = *head;
                if *head != NIL {
                    prev[*head as usize] = idx;
                }
                *head = idx;
                if *tail == NIL {
                    *tail = idx;
                }
            }
            Policy::S3Fifo {
                small,
                main,
                freq,
                dead,
                ghost,
                ..
            } => {
                freq[idx as usize] = 0;
                dead[idx as usize] = false;
                let (g, fp) = Self::ghost_slot(ghost, key);
                if ghost[g] == fp {
                    ghost[g] = 0;
                    main.push(idx);
                } else {
                    small.push(idx);
                }
            }
        }
    }

    /// Records a hit on `idx`.
    #[inline]
    pub(crate) fn on_hit(&mut self, idx: u32) {
        match self {
            Policy::Lru { .. } => {
                self.unlink(idx);
                if let Policy::Lru {
                    prev,
                    next,
                    head,
                    tail,
                } = self
                {
                    prev[idx as usize] = NIL;
                    next[idx as usize] = *head;
                    if *head != NIL {
                        prev[*head as usize] = idx;
                    }
                    *head = idx;
                    if *tail == NIL {
                        *tail = idx;
                    }
                }
            }
            Policy::S3Fifo { freq, .. } => {
                let f = &mut freq[idx as usize];
                *f = (*f + 1).min(3);
            }
        }
    }

    fn unlink(&mut self, idx: u32) {
        if let Policy::Lru {
            prev,
            next,
            head,
            tail,
        } = self
        {
            let (p, n) = (prev[idx as usize], next[idx as usize]);
            if p != NIL {
                next[p as usize] = n;
            } else {
                *head = n;
            }
            if n != NIL {
                prev[n as usize] = p;
            } else {
                *tail = p;
            }
        }
    }

    /// Records the removal of a live entry outside eviction. Returns whether the arena slot may
    /// be reused now (LRU: yes; S3-FIFO: no, the FIFO still holds it and frees it on eviction).
    pub(crate) fn on_remove(&mut self, idx: u32) -> bool {
        match self {
            Policy::Lru { .. } => {
                self.unlink(idx);
                true
            }
            Policy::S3Fifo { dead, .. } => {
                dead[idx as usize] = true;
                false
            }
        }
    }

    /// Chooses a victim. `key_of` gives a live entry's key (for the ghost filter). Bounded: at
    /// most 4 passes over the arena (each pass lowers a 2-bit frequency or frees an entry).
    pub(crate) fn evict(&mut self, key_of: impl Fn(u32) -> u128) -> Option<Victim> {
        match self {
            Policy::Lru { tail, .. } => {
                let t = *tail;
                if t == NIL {
                    return None;
                }
                self.unlink(t);
                Some(Victim { idx: t, live: true })
            }
            Policy::S3Fifo {
                small,
                main,
                small_target,
                freq,
                dead,
                ghost,
            } => {
                let bound = 4 * (small.buf.len() + 1);
                for _ in 0..bound {
                    if small.len >= *small_target || main.len == 0 {
                        let t = small.pop()?;
                        if dead[t as usize] {
                            return Some(Victim {
                                idx: t,
                                live: false,
                            });
                        }
                        if freq[t as usize] > 0 {
                            freq[t as usize] = 0;
                            main.push(t);
                        } else {
                            let (g, fp) = Self::ghost_slot(ghost, key_of(t));
                            ghost[g] = fp;
                            return Some(Victim { idx: t, live: true });
                        }
                    } else {
                        let t = main.pop()?;
                        if dead[t as usize] {
                            return Some(Victim {
                                idx: t,
                                live: false,
                            });
                        }
                        if freq[t as usize] > 0 {
                            freq[t as usize] -= 1;
                            main.push(t);
                        } else {
                            return Some(Victim { idx: t, live: true });
                        }
                    }
                }
                None
            }
        }
    }
}
