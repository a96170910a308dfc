//! The literal walk: the catalogue's phrases and trigger literals as one table-driven DFA,
//! walked over a window of text in eight interleaved lanes, reporting every match (overlapping
//! ones included) as (pattern, start, end).
//!
//! The table is the Aho-Corasick automaton of the phrases, built directly
//! (`Table::from_patterns`: trie, failure links, each row once in its final place; aho-corasick's
//! own DFA, built from the same phrases, is the tests' reference). Its states are numbered
//! so that the match states come first, and each transition holds the next state premultiplied
//! by the number of byte classes, less the first row that is not a match state (`match_below`),
//! so a match state is a negative number. A step is then two loads and an add (`row0[state +
//! class[byte]]`, `row0` pointing at row `match_below`), and in the lanes' side-by-side loop
//! three loads and no add (`columns[byte][state]`: a pointer per byte to its class's column,
//! kept in the table) with the lanes' match test one OR of their states and a sign test;
//! walking aho-corasick's own DFA through its trait took four times the instructions
//! (PERF.md, "Threat scan → Speed").
//!
//! Invariants (checked at construction, relied on by the walk's `unsafe` reads): every entry `e`
//! of `trans` has `e + match_below = k * stride` for a state `k < states`, and `stride` is the
//! number of classes, so `0 <= e + match_below + class < trans.len()` for every reachable state
//! and every class; `classes` maps every byte below `stride`. No I/O and no allocation while the
//! caller's buffer has the capacity the catalogue needs (`Table::most_hits`).

/// Text one walk covers: 4 KiB, eight lanes of 512 bytes.
pub const WINDOW_BYTES: usize = 4096;
/// Independent walks interleaved: a DFA step is a load that depends on the previous one, so
/// one walk leaves the core idle most of the time. Eight walked 4 KiB of prose in 7.9 µs a scan
/// where four took 9.1 (best of 8 runs each, same instructions: PERF.md).
pub const LANES: usize = 8;
/// Windows shorter than this are walked in one lane.
const MIN_LANED_BYTES: usize = 256;
/// Most bytes a lane owns: a full window's share.
const LANE_BYTES: usize = WINDOW_BYTES / LANES;
/// Most table entries (states × classes) a catalogue may need: 64 MiB of table.
const MAX_TABLE_ENTRIES: usize = 16 << 20;

/// Bytes of text in falling order of frequency (English prose, lower-cased): their classes come
/// first, so a state's transitions on them share a cache line or two of its row.
const FREQUENT: &[u8] = b" etaoinsrhldcumfpgwybvk.,x'jqz-\"0123456789:;()/";

/// A match: pattern id, start and end offsets in the walked bytes.
pub type Hit = (u32, u32, u32);

/// The Aho-Corasick automaton of the phrases, laid out for the walk.
pub struct Table {
    /// Per byte, the column of `trans` its class reads: `row0() + classes[byte]`. Pointers
    /// into `trans`, set by `with_columns` and rebuilt by `clone` (a clone's `trans` may be
    /// another allocation); `trans` is never changed after construction, and its buffer (a
    /// heap buffer, or the binary's own read-only data) does not move when the table does.
    columns: Box<[*const i32; 256]>,
    /// Byte → class; every class is below `stride`.
    classes: [u8; 256],
    /// Number of classes: the row length of `trans`.
    stride: u32,
    /// `trans[match_below + state + class]`: the next state, premultiplied by `stride`, less
    /// `match_below` (negative for a match state).
    trans: Trans,
    /// The unanchored start state (premultiplied, less `match_below`).
    start: i32,
    /// Rows below this (premultiplied) are match states.
    match_below: u32,
    /// Per match state (`state / stride`): its matches' range in `matches`.
    match_ranges: Vec<(u32, u32)>,
    /// (pattern, pattern length) of the patterns that end at a match state.
    matches: Vec<(u32, u32)>,
    /// Longest pattern, in bytes.
    longest: usize,
    /// Per row (state): the length of the pattern prefix the state stands for, the longest
    /// suffix of the text walked so far that begins some pattern (`u16::MAX`: that or more). A
    /// lane past its bound stops once this suffix begins at or after the bound (`walk`).
    depth: Vec<u16>,
}

/// A table's transitions: built in this process, or built by the build script and read from the
/// binary itself (`read_table`), where they take no memory until the walk touches them.
#[derive(Clone)]
enum Trans {
    Built(Vec<i32>),
    Static(&'static [i32]),
}

impl std::ops::Deref for Trans {
    type Target = [i32];
    fn deref(&self) -> &[i32] {
        match self {
            Trans::Built(v) => v,
            Trans::Static(s) => s,
        }
    }
}

impl Clone for Table {
    fn clone(&self) -> Table {
        Table {
            columns: Box::new([std::ptr::null(); 256]),
            classes: self.classes,
            stride: self.stride,
            trans: self.trans.clone(),
            start: self.start,
            match_below: self.match_below,
            match_ranges: self.match_ranges.clone(),
            matches: self.matches.clone(),
            longest: self.longest,
            depth: self.depth.clone(),
        }
        .with_columns()
    }
}

// SAFETY: the only pointers a table holds (`columns`) point into its own `trans`, which it
// owns (or which is the binary's `'static` read-only data), never changes after construction
// and outlives them; reading through them from any
// thread is reading the table's own immutable data, as `&Table` already allows.
unsafe impl Send for Table {}
// SAFETY: as for `Send`: a shared table is only read.
unsafe impl Sync for Table {}

impl Table {
    /// The Aho-Corasick automaton of `patterns` (unanchored, every overlapping match, as
    /// aho-corasick's `MatchKind::Standard` reports them), built directly into the table: a
    /// trie over byte classes, failure links breadth first, then each state's row written once,
    /// in its final place, as its failure state's row with its own edges over it (a failure
    /// state is shallower, so its row is already whole). No dense DFA is built on the way, and
    /// no second copy of the rows: the table is the only dense form there ever is. The tests
    /// hold it equal to aho-corasick's DFA on every text they try.
    pub fn from_patterns(patterns: &[&[u8]]) -> Result<Table, String> {
        if patterns.iter().any(|p| p.is_empty()) {
            return Err("an empty pattern matches everywhere".into());
        }
        let longest = patterns.iter().map(|p| p.len()).max().unwrap_or(0);
        // A byte in no pattern leads every state back to the start, so all such bytes are one
        // class; every byte some pattern holds gets a class of its own.
        let mut used = [false; 256];
        for p in patterns {
            for &b in *p {
                used[b as usize] = true;
            }
        }
        let mut classes = [0u8; 256];
        let mut stride = 0usize;
        if (0..=255u8).any(|b| !used[b as usize]) {
            stride = 1;
        }
        let mut order: Vec<u8> = FREQUENT.to_vec();
        order.extend((0..=255u8).filter(|b| !FREQUENT.contains(b)));
        for b in order {
            if used[b as usize] {
                classes[b as usize] = stride as u8;
                stride += 1;
            }
        }
        // the trie: per node, its edges (class, child) and the patterns that end there
        let most = 1 + patterns.iter().map(|p| p.len()).sum::<usize>();
        let mut edges: Vec<Vec<(u8, u32)>> = Vec::with_capacity(most);
        edges.push(Vec::new());
        let mut ends: Vec<(u32, u32)> = Vec::with_capacity(patterns.len()); // (node, pattern)
        for (pid, p) in patterns.iter().enumerate() {
            let mut node = 0u32;
            for &b in *p {
                let c = classes[b as usize];
                node = match edges[node as usize].iter().find(|e| e.0 == c) {
                    Some(&(_, child)) => child,
                    None => {
                        let child = edges.len() as u32;
                        edges.push(Vec::new());
                        edges[node as usize].push((c, child));
                        child
                    }
                };
            }
            ends.push((node, pid as u32));
            if edges.len().saturating_mul(stride) > MAX_TABLE_ENTRIES {
                return Err(format!(
                    "the phrase automaton needs over {MAX_TABLE_ENTRIES} table entries ({} \
                     states × {stride} byte classes so far); use fewer or shorter phrases",
                    edges.len(),
                ));
            }
        }
        let n = edges.len();
        let goto = |node: u32, c: u8| edges[node as usize].iter().find(|e| e.0 == c).map(|e| e.1);
        // breadth first: failure links and depths (a child's failure state is shallower)
        let mut bfs: Vec<u32> = Vec::with_capacity(n);
        let mut fail = vec![0u32; n];
        let mut depth = vec![0u16; n];
        bfs.push(0);
        let mut i = 0;
        while i < bfs.len() {
            let s = bfs[i];
            i += 1;
            for &(c, u) in &edges[s as usize] {
                bfs.push(u);
                depth[u as usize] = depth[s as usize].saturating_add(1);
                fail[u as usize] = if s == 0 {
                    0
                } else {
                    let mut f = fail[s as usize];
                    loop {
                        if let Some(v) = goto(f, c) {
                            break v;
                        }
                        if f == 0 {
                            break 0;
                        }
                        f = fail[f as usize];
                    }
                };
            }
        }
        debug_assert_eq!(bfs.len(), n);
        // the patterns ending at each node, and whether a state matches (its own or along its
        // failure chain, which is shallower: decided first in breadth-first order)
        let mut own: Vec<Vec<u32>> = vec![Vec::new(); n];
        for &(node, pid) in &ends {
            own[node as usize].push(pid);
        }
        let mut matching = vec![false; n];
        for &s in &bfs[1..] {
            matching[s as usize] =
                !own[s as usize].is_empty() || matching[fail[s as usize] as usize];
        }
        // match states first, each group breadth first
        let mut order: Vec<u32> = bfs
            .iter()
            .copied()
            .filter(|&s| matching[s as usize])
            .collect();
        let match_states = order.len();
        order.extend(bfs.iter().copied().filter(|&s| !matching[s as usize]));
        let mut new_of = vec![0u32; n];
        for (new, &old) in order.iter().enumerate() {
            new_of[old as usize] = new as u32;
        }
        if n * stride > i32::MAX as usize {
            return Err("the phrase automaton is too large to index".into());
        }
        let match_below = (match_states * stride) as i64;
        let enc = |node: u32| (new_of[node as usize] as i64 * stride as i64 - match_below) as i32;
        let mut trans = prefaulted(n * stride);
        for &s in &bfs {
            let at = new_of[s as usize] as usize * stride;
            if s == 0 {
                trans[at..at + stride].fill(enc(0));
            } else {
                let from = new_of[fail[s as usize] as usize] as usize * stride;
                trans.copy_within(from..from + stride, at);
            }
            for &(c, u) in &edges[s as usize] {
                trans[at + c as usize] = enc(u);
            }
        }
        let mut match_ranges = Vec::with_capacity(match_states);
        let mut matches = Vec::new();
        for &s in &order[..match_states] {
            let from = matches.len() as u32;
            let mut f = s;
            while f != 0 {
                for &pid in &own[f as usize] {
                    matches.push((pid, patterns[pid as usize].len() as u32));
                }
                f = fail[f as usize];
            }
            match_ranges.push((from, matches.len() as u32));
        }
        let depth = order.iter().map(|&s| depth[s as usize]).collect();
        let table = Table {
            columns: Box::new([std::ptr::null(); 256]),
            depth,
            classes,
            stride: stride as u32,
            start: enc(0),
            match_below: match_below as u32,
            match_ranges,
            matches,
            trans: Trans::Built(trans),
            longest,
        };
        assert!(table.start >= 0, "the empty pattern is refused above");
        assert!(table.holds_invariants(), "the walk's invariants");
        Ok(table.with_columns())
    }

    /// Whether every entry holds the invariants the walk's unchecked reads rest on (see the
    /// module's documentation): every class below `stride`, every transition and the start a
    /// whole row inside `trans`.
    pub fn holds_invariants(&self) -> bool {
        let row = |s: i32| s as i64 + self.match_below as i64;
        self.classes.iter().all(|&c| (c as u32) < self.stride)
            && self.trans.iter().all(|&s| {
                row(s) >= 0
                    && row(s) % self.stride as i64 == 0
                    && (row(s) as usize) < self.trans.len()
            })
            && row(self.start) >= 0
            && row(self.start) % self.stride as i64 == 0
            && (row(self.start) as usize) < self.trans.len()
    }

    /// Sets `columns` for this table's `trans`.
    fn with_columns(mut self) -> Table {
        let row0 = self.row0();
        for (c, &class) in self.columns.iter_mut().zip(&self.classes) {
            *c = row0.wrapping_add(class as usize);
        }
        self
    }

    /// Longest pattern, in bytes.
    pub fn longest(&self) -> usize {
        self.longest
    }

    /// Most matches one state reports: the most patterns (repeats counted) that can end at one
    /// byte of text. The patterns ending at a state are the suffixes of the text walked that are
    /// patterns; they are all suffixes of the longest of them, so the most is reached at the
    /// state of a whole pattern, where it counts that pattern's suffixes that are patterns.
    pub fn most_matches_per_state(&self) -> usize {
        self.match_ranges
            .iter()
            .map(|&(from, to)| (to - from) as usize)
            .max()
            .unwrap_or(0)
    }

    /// Whether the transitions came with the binary (`read_table`).
    pub fn is_static(&self) -> bool {
        matches!(self.trans, Trans::Static(_))
    }

    /// Whether two tables are the same automaton laid out the same way, entry for entry.
    #[cfg(test)]
    pub(crate) fn same_as(&self, other: &Table) -> bool {
        self.classes == other.classes
            && self.stride == other.stride
            && self.start == other.start
            && self.match_below == other.match_below
            && self.longest == other.longest
            && self.match_ranges == other.match_ranges
            && self.matches == other.matches
            && self.depth == other.depth
            && *self.trans == *other.trans
    }

    /// Bytes of memory the table holds.
    pub fn memory_bytes(&self) -> usize {
        self.trans.len() * 4
            + self.matches.len() * 8
            + self.match_ranges.len() * 8
            + self.depth.len() * 2
            + std::mem::size_of_val(&*self.columns)
    }

    /// The row (state number) of `state`: what `depth` and `match_ranges` are indexed by.
    #[inline(always)]
    fn row(&self, state: isize) -> usize {
        (state + self.match_below as isize) as usize / self.stride as usize
    }

    /// The length of the pattern prefix `state` stands for (`usize::MAX / 2` where the
    /// table holds no exact figure: keep walking).
    #[inline(always)]
    fn depth_of(&self, state: isize) -> usize {
        // a state is a row of `trans`, and `depth` has one entry a row
        match self.depth.get(self.row(state)) {
            Some(&d) if d < u16::MAX => d as usize,
            _ => usize::MAX / 2,
        }
    }

    /// Row `match_below` of `trans`, from which states count.
    #[inline(always)]
    fn row0(&self) -> *const i32 {
        // `match_below` is at most `trans.len()` (all states may match, and a row is `stride`
        // entries), so this stays inside the allocation or one past its end.
        debug_assert!(self.match_below as usize <= self.trans.len());
        self.trans.as_ptr().wrapping_add(self.match_below as usize)
    }

    /// One step from `state` on `byte`; `row0` is `self.row0()`.
    #[inline(always)]
    fn step(&self, row0: *const i32, state: isize, byte: u8) -> isize {
        let at = state + self.classes[byte as usize] as isize;
        debug_assert!(at + (self.match_below as isize) >= 0);
        debug_assert!(((at + self.match_below as isize) as usize) < self.trans.len());
        // SAFETY: `state` is the start state or an entry of `trans`, so `match_below + state` is
        // a multiple of `stride` in `0..trans.len()`, and a class is below `stride`; rows are
        // `stride` long, so `row0 + at` is inside the row of `state`, inside `trans` (asserted at
        // construction in `Table::new`, exercised by the tests below and by
        // `the_laned_walk_finds_every_match_once` in `scan`).
        unsafe { *row0.offset(at) as isize }
    }

    /// Steps the eight lanes side by side over bytes `j..common` of each (lane `k`'s at
    /// `laid + k * LANE_BYTES`), and stops after the first step that leaves a lane in a match
    /// state; returns the index past that step (`common` if none did). The states are locals
    /// here, not an array the compiler may keep in memory, and the match test is one OR tree
    /// a step.
    /// # Safety
    /// `laid + k * LANE_BYTES + i` is readable for every lane `k` and `j <= i < common`;
    /// each state of `s` is the start state or an entry of `trans`.
    #[inline(always)]
    unsafe fn side_by_side(
        &self,
        laid: *const u8,
        s: &mut [isize; LANES],
        mut j: usize,
        common: usize,
    ) -> usize {
        // A step through a byte's column: a byte load, a column load and a transition load at
        // `column + state` (the add folds into the address), one instruction fewer than `step`
        // and off the state's dependency chain.
        let column = &*self.columns;
        let [mut s0, mut s1, mut s2, mut s3, mut s4, mut s5, mut s6, mut s7] = *s;
        while j < common {
            // SAFETY: the bytes are readable (this function's safety)
            let byte = |k: usize| unsafe { *laid.add(k * LANE_BYTES + j) } as usize;
            s0 = self.step_at(column[byte(0)], s0);
            s1 = self.step_at(column[byte(1)], s1);
            s2 = self.step_at(column[byte(2)], s2);
            s3 = self.step_at(column[byte(3)], s3);
            s4 = self.step_at(column[byte(4)], s4);
            s5 = self.step_at(column[byte(5)], s5);
            s6 = self.step_at(column[byte(6)], s6);
            s7 = self.step_at(column[byte(7)], s7);
            j += 1;
            if ((s0 | s1) | (s2 | s3)) | ((s4 | s5) | (s6 | s7)) < 0 {
                break;
            }
        }
        *s = [s0, s1, s2, s3, s4, s5, s6, s7];
        j
    }

    /// `step` with the byte's column given: `column` is `columns[byte]`.
    #[inline(always)]
    fn step_at(&self, column: *const i32, state: isize) -> isize {
        debug_assert!(
            column >= self.row0() && column < self.row0().wrapping_add(self.stride as usize)
        );
        // SAFETY: `column` is `row0` plus a class (below `stride`: `with_columns`), and
        // `state` the start state or an entry of `trans`: the same address as `step`'s, inside
        // the row of `state` (see `step`).
        unsafe { *column.offset(state) as isize }
    }

    /// Appends to `hits` the matches ending at `end` in match state `state` that begin before
    /// `bound`.
    #[cold]
    #[inline(never)]
    fn report(&self, state: isize, end: usize, bound: usize, hits: &mut Vec<Hit>) {
        let (from, to) = self.match_ranges[self.row(state)];
        for &(pid, len) in &self.matches[from as usize..to as usize] {
            let start = end - len as usize;
            if start < bound {
                debug_assert!(hits.len() < hits.capacity());
                hits.push((pid, start as u32, end as u32));
            }
        }
    }

    /// Appends to `hits` every match in `bytes` that begins in `window` (matches may end past
    /// it). The window is cut into `LANES` lanes of at most `LANE_BYTES`, walked side by side
    /// from the start state over the bytes each owns; then each lane walks on past its end, one
    /// lane at a time, while the prefix its state stands for began inside it (a match crossing
    /// into the next lane is found there), and reports only matches that begin inside it, so
    /// none is found twice. No allocation while `hits` has the capacity the catalogue needs.
    pub fn walk(&self, bytes: &[u8], window: std::ops::Range<usize>, hits: &mut Vec<Hit>) {
        let n = bytes.len();
        let window = window.start.min(n)..window.end.min(n);
        let window_len = window.len();
        let lane_len = match window_len < MIN_LANED_BYTES {
            true => window_len.max(1),
            false => window_len.div_ceil(LANES),
        };
        // per lane: first byte, and the end of the bytes it owns (matches begin before it)
        let mut at = [0usize; LANES];
        let mut bound = [0usize; LANES];
        for k in 0..LANES {
            at[k] = (window.start + k * lane_len).min(window.end);
            bound[k] = (at[k] + lane_len).min(window.end);
        }
        let mut s = [self.start as isize; LANES];
        let row0 = self.row0();
        // Side by side over what every lane owns (the last lane owns the least). The lanes sit
        // `LANE_BYTES` apart in `laid`, so the eight byte loads of a step are one register plus
        // constant offsets: with a pointer a lane, the loop kept the pointers on the stack and
        // loaded them back every step. A full window is laid out so already; a shorter one is
        // copied (4 KiB at most). Loading a word of eight lanes' bytes at once (the window
        // transposed) was slower: taking the bytes apart costs more instructions than the
        // loads it saves.
        let common = (0..LANES)
            .map(|k| bound[k] - at[k])
            .min()
            .unwrap_or(0)
            .min(LANE_BYTES);
        if common > 0 {
            // (not zeroed: only the bytes copied are read, and zeroing 4 KiB cost a 1 KiB
            // text 3 %)
            let mut copy = [std::mem::MaybeUninit::<u8>::uninit(); WINDOW_BYTES];
            let laid: *const u8 = match window_len == WINDOW_BYTES {
                true => bytes[window.clone()].as_ptr(),
                false => {
                    for k in 0..LANES {
                        for (c, &b) in copy[k * LANE_BYTES..][..common]
                            .iter_mut()
                            .zip(&bytes[at[k]..])
                        {
                            c.write(b);
                        }
                    }
                    copy.as_ptr().cast()
                }
            };
            let mut j = 0;
            while j < common {
                // SAFETY: `laid` holds `common` bytes of every lane, `LANE_BYTES` apart (above),
                // and `j < common`.
                j = unsafe { self.side_by_side(laid, &mut s, j, common) };
                // a match state is negative
                for k in 0..LANES {
                    if s[k] < 0 {
                        self.report(s[k], at[k] + j, bound[k], hits);
                    }
                }
            }
        }
        // Each lane's rest, one at a time: what it owns past `common` (a few bytes), then on
        // past its bound. A match that begins before the bound and ends past `p` has its first
        // bytes up to `p` as a suffix that begins some pattern, so within the prefix the state
        // stands for; once that begins at or past the bound, no such match is left. In prose
        // that is a byte or two past the bound, not the longest pattern's length.
        for k in 0..LANES {
            if bound[k] <= at[k] {
                continue;
            }
            let mut state = s[k];
            let mut p = at[k] + common;
            while p < n && p < bound[k] + self.depth_of(state) {
                state = self.step(row0, state, bytes[p]);
                p += 1;
                if state < 0 {
                    self.report(state, p, bound[k], hits);
                }
            }
        }
    }
}

/// The form a table is kept in by the build script (`build.rs`, for the built-in catalogue's
/// views) and read back from the binary (`threat::embedded`): entries one after another, each
/// `MAGIC`, its length, the patterns it was built from (so a reader uses it for exactly those and
/// nothing else), then the table's fields, little-endian, each list after its length; the
/// transitions start on a 64-byte boundary of the blob, so a blob that starts on one can lend
/// them in place.
const MAGIC: &[u8; 8] = b"WRDNTAB1";

/// Appends `table`, built from `patterns`, to `out` in the stored form.
pub fn write_table(table: &Table, patterns: &[&[u8]], out: &mut Vec<u8>) {
    let u32_of = |n: usize| u32::try_from(n).expect("a table's lists are counted in u32");
    out.extend_from_slice(MAGIC);
    let len_at = out.len();
    out.extend_from_slice(&0u64.to_le_bytes());
    out.extend_from_slice(&u32_of(patterns.len()).to_le_bytes());
    for p in patterns {
        out.extend_from_slice(&u32_of(p.len()).to_le_bytes());
        out.extend_from_slice(p);
    }
    out.extend_from_slice(&table.classes);
    for v in [
        table.stride,
        table.start as u32,
        table.match_below,
        u32_of(table.longest),
    ] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let pairs = |out: &mut Vec<u8>, list: &[(u32, u32)]| {
        out.extend_from_slice(&u32_of(list.len()).to_le_bytes());
        for &(a, b) in list {
            out.extend_from_slice(&a.to_le_bytes());
            out.extend_from_slice(&b.to_le_bytes());
        }
    };
    pairs(out, &table.match_ranges);
    pairs(out, &table.matches);
    out.extend_from_slice(&u32_of(table.depth.len()).to_le_bytes());
    for d in &table.depth {
        out.extend_from_slice(&d.to_le_bytes());
    }
    out.extend_from_slice(&u32_of(table.trans.len()).to_le_bytes());
    out.resize(out.len().next_multiple_of(64), 0);
    for e in table.trans.iter() {
        out.extend_from_slice(&e.to_le_bytes());
    }
    let len = (out.len() - len_at - 8) as u64;
    out[len_at..len_at + 8].copy_from_slice(&len.to_le_bytes());
}

/// The table stored in `blob` for exactly `patterns`, its transitions lent in place; None
/// where there is none, where the blob is not 64-byte aligned or not little-endian's, or where
/// an entry is malformed (every read is bounds-checked: no input makes this panic). The
/// transitions' invariants (`Table`'s) are not walked here, which would read every page of
/// them: the build script made them with `from_patterns`, whose assertions held on these
/// entries, and the tests read them back whole (`threat::embedded`).
pub fn read_table(blob: &'static [u8], patterns: &[&[u8]]) -> Option<Table> {
    if cfg!(target_endian = "big") || !(blob.as_ptr() as usize).is_multiple_of(64) {
        return None;
    }
    let mut at = 0usize;
    while at < blob.len() {
        let mut r = Reader { blob, at };
        if r.take(8)? != MAGIC {
            return None;
        }
        let len = usize::try_from(u64::from_le_bytes(r.take(8)?.try_into().ok()?)).ok()?;
        let next = r.at.checked_add(len).filter(|&n| n <= blob.len())?;
        if r.same_patterns(patterns)? {
            return r.table(patterns);
        }
        at = next;
    }
    None
}

/// Every entry of `blob`: the patterns each was built from, and the table read back (None for
/// one that does not read). For the tests: a start looks up one entry (`read_table`).
#[cfg(test)]
pub(crate) fn stored_entries(blob: &'static [u8]) -> Vec<(Vec<&'static [u8]>, Option<Table>)> {
    let mut all = Vec::new();
    let mut r = Reader { blob, at: 0 };
    while r.at < blob.len() {
        if r.take(8) != Some(MAGIC.as_slice()) {
            break;
        }
        let Some(len) = r.take(8) else { break };
        let next = r.at + u64::from_le_bytes(len.try_into().unwrap()) as usize;
        let n = r.u32().unwrap() as usize;
        let patterns: Vec<&[u8]> = (0..n)
            .map(|_| {
                let len = r.u32().unwrap() as usize;
                r.take(len).unwrap()
            })
            .collect();
        let table = r.table(&patterns);
        all.push((patterns, table));
        r.at = next;
    }
    all
}

/// A cursor over a stored blob; every read is checked against its end.
struct Reader {
    blob: &'static [u8],
    at: usize,
}

impl Reader {
    fn take(&mut self, n: usize) -> Option<&'static [u8]> {
        let end = self.at.checked_add(n)?;
        let bytes = self.blob.get(self.at..end)?;
        self.at = end;
        Some(bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn count(&mut self, size: usize) -> Option<(usize, &'static [u8])> {
        let n = self.u32()? as usize;
        Some((n, self.take(n.checked_mul(size)?)?))
    }

    /// Reads the entry's patterns: whether they are `patterns`.
    fn same_patterns(&mut self, patterns: &[&[u8]]) -> Option<bool> {
        let n = self.u32()? as usize;
        let mut same = n == patterns.len();
        for i in 0..n {
            let len = self.u32()? as usize;
            let p = self.take(len)?;
            same &= patterns.get(i) == Some(&p);
        }
        Some(same)
    }

    fn pairs(&mut self) -> Option<Vec<(u32, u32)>> {
        let (_, bytes) = self.count(8)?;
        Some(
            bytes
                .chunks_exact(8)
                .map(|c| {
                    let [a0, a1, a2, a3, b0, b1, b2, b3] = c.try_into().unwrap_or([0; 8]);
                    (
                        u32::from_le_bytes([a0, a1, a2, a3]),
                        u32::from_le_bytes([b0, b1, b2, b3]),
                    )
                })
                .collect(),
        )
    }

    fn table(&mut self, patterns: &[&[u8]]) -> Option<Table> {
        let classes: [u8; 256] = self.take(256)?.try_into().ok()?;
        let stride = self.u32()?;
        let start = self.u32()? as i32;
        let match_below = self.u32()?;
        let longest = self.u32()? as usize;
        let match_ranges = self.pairs()?;
        let matches = self.pairs()?;
        let (_, depth) = self.count(2)?;
        let depth: Vec<u16> = depth
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        let entries = self.u32()? as usize;
        self.at = self.at.next_multiple_of(64);
        let bytes = self.take(entries.checked_mul(4)?)?;
        // SAFETY: every bit pattern is a valid i32; `align_to` lends only the aligned middle,
        // checked to be the whole below.
        let (head, trans, tail) = unsafe { bytes.align_to::<i32>() };
        if !head.is_empty() || !tail.is_empty() {
            return None;
        }
        // what the walk's unchecked reads rest on, short of reading every entry (see above)
        let stride_n = stride as usize;
        let states = trans.len().checked_div(stride_n)?;
        let whole = trans.len().is_multiple_of(stride_n)
            && classes.iter().all(|&c| (c as u32) < stride)
            && depth.len() == states
            && match_ranges.len().checked_mul(stride_n)? == match_below as usize
            && match_below as usize <= trans.len()
            && match_ranges
                .iter()
                .all(|&(a, b)| a <= b && b as usize <= matches.len())
            && start >= 0
            && (start as usize + match_below as usize).is_multiple_of(stride_n)
            && start as usize + match_below as usize + stride_n <= trans.len();
        // a match names a pattern of this entry with its length (the walk computes where it
        // starts from that), and the longest is the longest
        let fits = matches
            .iter()
            .all(|&(pid, len)| patterns.get(pid as usize).map(|p| p.len()) == Some(len as usize))
            && Some(longest) == patterns.iter().map(|p| p.len()).max();
        if !whole || !fits {
            return None;
        }
        // a match state reports patterns that end the prefix it stands for: none longer than
        // that prefix (the walk computes a match's start from its length; a damaged range that
        // named a longer pattern made it underflow)
        let suffixes = match_ranges.iter().zip(&depth).all(|(&(a, b), &d)| {
            matches[a as usize..b as usize]
                .iter()
                .all(|&(_, len)| len <= u32::from(d))
        });
        if !suffixes {
            return None;
        }
        populate(trans);
        Some(
            Table {
                columns: Box::new([std::ptr::null(); 256]),
                classes,
                stride,
                trans: Trans::Static(trans),
                start,
                match_below,
                match_ranges,
                matches,
                longest,
                depth,
            }
            .with_columns(),
        )
    }
}

/// Maps the pages of `data` (read-only data of the binary) into the process in one call
/// (`MADV_POPULATE_READ`, Linux 5.14) where the kernel allows it, so the walk meets no page
/// fault on its first visits to a row; they are the file's pages in the page cache, shared
/// with every other process of the same binary, not new memory.
fn populate(data: &[i32]) {
    let page = 4096usize;
    let start = (data.as_ptr() as usize) & !(page - 1);
    let end = (data.as_ptr() as usize + std::mem::size_of_val(data)).next_multiple_of(page);
    const MADV_POPULATE_READ: libc::c_int = 22;
    // SAFETY: advice about the pages that hold `data`, mapped read-only data of this binary;
    // reading populates mappings and changes no contents, and failing is harmless.
    unsafe {
        libc::madvise(start as *mut libc::c_void, end - start, MADV_POPULATE_READ);
    }
}

/// A zeroed table of `len` entries whose pages the kernel makes in one call
/// (`MADV_POPULATE_WRITE`, Linux 5.14) rather than one fault at a time as the build first
/// writes each: a phrase table is megabytes written once, and each fault costs microseconds
/// (a quarter of the catalogue's compile time before this). Where the call is refused, the
/// pages come by faults as before.
fn prefaulted(len: usize) -> Vec<i32> {
    let mut v: Vec<i32> = Vec::with_capacity(len);
    let bytes = len * std::mem::size_of::<i32>();
    let page = 4096usize;
    let start = (v.as_mut_ptr() as usize).next_multiple_of(page);
    let end = (v.as_mut_ptr() as usize + bytes) & !(page - 1);
    if end > start {
        const MADV_POPULATE_WRITE: libc::c_int = 23;
        // SAFETY: advice about whole pages inside this Vec's own allocation (its capacity),
        // which nothing else references; it changes no contents (fresh pages are zero) and
        // failing is harmless.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, MADV_POPULATE_WRITE);
        }
    }
    v.resize(len, 0);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use aho_corasick::automaton::Automaton as _;

    fn table(patterns: &[&str]) -> (aho_corasick::dfa::DFA, Table) {
        let dfa = aho_corasick::dfa::Builder::new()
            .match_kind(aho_corasick::MatchKind::Standard)
            .prefilter(false)
            .build(patterns)
            .unwrap();
        let bytes: Vec<&[u8]> = patterns.iter().map(|p| p.as_bytes()).collect();
        let t = Table::from_patterns(&bytes).unwrap();
        (dfa, t)
    }

    fn reference(dfa: &aho_corasick::dfa::DFA, bytes: &[u8]) -> Vec<Hit> {
        let mut want = Vec::new();
        let mut state = aho_corasick::automaton::OverlappingState::start();
        let input = aho_corasick::Input::new(bytes);
        loop {
            dfa.try_find_overlapping(&input, &mut state).unwrap();
            let Some(m) = state.get_match() else { break };
            want.push((m.pattern().as_u32(), m.start() as u32, m.end() as u32));
        }
        want.sort_unstable();
        want
    }

    fn walked(t: &Table, bytes: &[u8]) -> Vec<Hit> {
        let mut all = Vec::new();
        for from in (0..bytes.len().max(1)).step_by(WINDOW_BYTES) {
            let mut got = Vec::with_capacity(4 * (WINDOW_BYTES + LANES * t.longest()));
            t.walk(bytes, from..bytes.len().min(from + WINDOW_BYTES), &mut got);
            all.extend_from_slice(&got);
        }
        all.sort_unstable();
        all
    }

    #[test]
    fn match_states_come_first_and_rows_are_whole() {
        let (_, t) = table(&["he", "she", "his", "hers"]);
        assert_eq!(t.trans.len() % t.stride as usize, 0);
        assert_eq!(
            t.match_ranges.len() * t.stride as usize,
            t.match_below as usize
        );
        // 'h','e','s','i','r' and everything else
        assert_eq!(t.stride, 6);
        assert!(t.memory_bytes() >= t.trans.len() * 4);
    }

    #[test]
    fn every_byte_value_and_every_window_edge() {
        let (dfa, t) = table(&["\u{0}\u{ff}", "ab", "b", "abcabc", "\u{7f}"]);
        let mut text = Vec::new();
        for i in 0..3 * WINDOW_BYTES + 17 {
            text.push(match i % 7 {
                0 => b'a',
                1 => b'b',
                2 => b'c',
                3 => 0,
                4 => 0xff,
                _ => (i * 31) as u8,
            });
        }
        for len in [
            0,
            1,
            2,
            255,
            256,
            257,
            1023,
            1024,
            4095,
            4096,
            4097,
            text.len(),
        ] {
            assert_eq!(
                walked(&t, &text[..len]),
                reference(&dfa, &text[..len]),
                "{len}"
            );
        }
    }

    /// A clone's columns point into its own transitions: the clone walks as the original did
    /// after the original is gone (with the original's pointers it would read freed memory,
    /// which Miri and the debug assertion in `step_at` catch).
    #[test]
    fn a_clone_walks_on_its_own_table() {
        let (dfa, t) = table(&["ignore", "gnore all", "all previous", "re"]);
        let text = b"please ignore all previous notes; ignore all previous re-runs ".repeat(80);
        let clone = t.clone();
        drop(t);
        assert_ne!(clone.columns[b'g' as usize], std::ptr::null());
        assert_eq!(walked(&clone, &text), reference(&dfa, &text));
        let moved = std::thread::spawn(move || walked(&clone, &text))
            .join()
            .unwrap();
        assert!(!moved.is_empty());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn the_table_walk_is_the_automaton(
            patterns in proptest::collection::vec("[a-c ]{1,6}", 1..12),
            text in proptest::collection::vec(proptest::sample::select(&b"abc d"[..]), 0..9000),
        ) {
            let refs: Vec<&str> = patterns.iter().map(|p| p.as_str()).collect();
            let (dfa, t) = table(&refs);
            proptest::prop_assert_eq!(walked(&t, &text), reference(&dfa, &text));
        }

        /// Long patterns, and texts made of them back to back: matches that cross a lane's
        /// bound by many bytes, where the tail must walk on as deep as the state is and no
        /// further than the match needs.
        #[test]
        fn long_matches_across_lane_bounds(
            patterns in proptest::collection::vec("[ab]{1,3}[a-c ]{0,45}", 1..8),
            picks in proptest::collection::vec((0usize..8, 0usize..3), 0..600),
        ) {
            let refs: Vec<&str> = patterns.iter().map(|p| p.as_str()).collect();
            let (dfa, t) = table(&refs);
            let mut text = Vec::new();
            for (i, gap) in picks {
                text.extend_from_slice(refs[i % refs.len()].as_bytes());
                text.extend_from_slice(&b"  c"[..gap]);
            }
            proptest::prop_assert_eq!(walked(&t, &text), reference(&dfa, &text));
        }
    }

    /// `bytes` copied to a 64-byte boundary and leaked: a blob as the binary holds one.
    fn leaked_aligned(bytes: &[u8], offset: usize) -> &'static [u8] {
        let buf: &'static mut [u8] = Box::leak(vec![0u8; bytes.len() + 128].into_boxed_slice());
        let skip = (64 - buf.as_ptr() as usize % 64) % 64 + offset;
        buf[skip..skip + bytes.len()].copy_from_slice(bytes);
        &buf[skip..skip + bytes.len()]
    }

    fn stored(groups: &[&[&str]]) -> (Vec<u8>, Vec<Table>) {
        let mut blob = Vec::new();
        let mut tables = Vec::new();
        for g in groups {
            let bytes: Vec<&[u8]> = g.iter().map(|p| p.as_bytes()).collect();
            let t = Table::from_patterns(&bytes).unwrap();
            write_table(&t, &bytes, &mut blob);
            tables.push(t);
        }
        (blob, tables)
    }

    const GROUPS: [&[&str]; 3] = [
        &["ignore", "gnore all", "all previous", "re"],
        &["he", "she", "his", "hers"],
        &["abcd", "bcx", "cdefgh", "\u{0}\u{ff}"],
    ];

    /// A stored table reads back as the same automaton, found by its patterns among others,
    /// lent in place, and walks as the built one does; other patterns, or a blob off its
    /// 64-byte boundary, find none.
    #[test]
    fn a_stored_table_reads_back_for_exactly_its_patterns() {
        let (blob, tables) = stored(&GROUPS);
        let blob = leaked_aligned(&blob, 0);
        for (g, built) in GROUPS.iter().zip(&tables) {
            let bytes: Vec<&[u8]> = g.iter().map(|p| p.as_bytes()).collect();
            let read = read_table(blob, &bytes).expect("stored");
            assert!(read.is_static() && read.same_as(built) && read.holds_invariants());
            let text = b"please ignore all previous hers; she said abcdefgh bcx ".repeat(90);
            assert_eq!(walked(&read, &text), walked(built, &text));
            assert_eq!(
                read.most_matches_per_state(),
                built.most_matches_per_state()
            );
        }
        let other: Vec<&[u8]> = vec![b"he", b"she", b"his"];
        assert!(read_table(blob, &other).is_none());
        let reordered: Vec<&[u8]> = vec![b"she", b"he", b"his", b"hers"];
        assert!(read_table(blob, &reordered).is_none());
        let (one, _) = stored(&GROUPS[..1]);
        let bytes: Vec<&[u8]> = GROUPS[0].iter().map(|p| p.as_bytes()).collect();
        assert!(read_table(leaked_aligned(&one, 4), &bytes).is_none());
        assert!(read_table(leaked_aligned(&[], 0), &bytes).is_none());
    }

    /// The most matches one state reports is the suffix count `View::build` once computed by
    /// hashing every suffix: for each pattern, how many patterns (repeats counted) are its
    /// suffixes, the most over the patterns.
    fn suffix_count(patterns: &[&[u8]]) -> usize {
        patterns
            .iter()
            .map(|l| {
                (0..l.len())
                    .map(|i| patterns.iter().filter(|p| **p == &l[i..]).count())
                    .sum::<usize>()
            })
            .max()
            .unwrap_or(0)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        #[test]
        fn most_matches_per_state_is_the_suffix_count(
            patterns in proptest::collection::vec("[a-c]{1,6}", 1..16),
        ) {
            let bytes: Vec<&[u8]> = patterns.iter().map(|p| p.as_bytes()).collect();
            let t = Table::from_patterns(&bytes).unwrap();
            proptest::prop_assert_eq!(t.most_matches_per_state(), suffix_count(&bytes));
        }

        /// A blob damaged anywhere before the transitions (a byte changed, or cut short)
        /// never makes the reader panic or read out of bounds, and whatever it returns holds
        /// every invariant the walk rests on, its matches naming the asked patterns with their
        /// lengths. (The transitions themselves are trusted as the binary's own data, and
        /// checked whole by the tests in `threat::embedded`.)
        #[test]
        fn a_damaged_stored_table_is_refused_or_whole(
            at in 0usize..1_000_000,
            xor in 1u8..=255,
            cut in proptest::option::of(0usize..1_000_000),
        ) {
            let (blob, _) = stored(&GROUPS[1..2]);
            let bytes: Vec<&[u8]> = GROUPS[1].iter().map(|p| p.as_bytes()).collect();
            let trans_at = blob.len() - Table::from_patterns(&bytes).unwrap().trans.len() * 4;
            let mut damaged = blob.clone();
            damaged[at % trans_at] ^= xor;
            if let Some(c) = cut {
                damaged.truncate(c % (blob.len() + 1));
            }
            let damaged = leaked_aligned(&damaged, 0);
            if let Some(t) = read_table(damaged, &bytes) {
                proptest::prop_assert!(t.holds_invariants());
                for &(pid, len) in &t.matches {
                    proptest::prop_assert_eq!(bytes[pid as usize].len(), len as usize);
                }
                let text = b"she said his hers here ".repeat(200);
                let _ = walked(&t, &text);
            }
        }
    }

    #[test]
    fn a_state_knows_how_long_a_prefix_it_stands_for() {
        let (dfa, t) = table(&["abcd", "bcx", "cdefgh"]);
        let row0 = t.row0();
        let mut s = t.start as isize;
        // after each byte of "xabcdefg": the longest suffix that begins a pattern
        for (b, want) in b"xabcdefg".iter().zip([0, 1, 2, 3, 4, 3, 4, 5]) {
            s = t.step(row0, s, *b);
            assert_eq!(t.depth_of(s), want, "after {:?}", *b as char);
        }
        drop(dfa);
    }
}
