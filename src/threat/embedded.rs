//! The phrase tables of the built-in catalogue's three views, built when warden is built
//! (`build.rs`) and kept in the binary's read-only data, so a start does not build them
//! (two thirds of what compiling the catalogue cost: PERF.md, "Memory and start-up").
//!
//! The build script includes `walk.rs` and `scan/plan.rs` themselves, so a stored table is
//! what `walk::Table::from_patterns` makes at run time, from the patterns `scan::plan` decides
//! at run time. Each table is stored with the patterns it was built from, and `View::build`
//! takes one only where those equal, whole, the patterns it would build from: a catalogue
//! other than the built-in one, or a build script that drifted from the run-time code, gets a
//! table built at start as before (slower, never different). The tests hold the stored tables
//! equal to freshly built ones and check every entry against the walk's invariants.

use super::walk::{read_table, Table};

/// A blob on a 64-byte boundary: the transitions inside it are lent in place as `i32`s.
#[repr(C, align(64))]
struct Aligned<B: ?Sized>(B);

static TABLES: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(
    env!("OUT_DIR"),
    "/phrase_tables.bin"
)));

/// The stored table built from exactly `patterns`, if there is one.
pub fn table_for(patterns: &[&[u8]]) -> Option<Table> {
    read_table(&TABLES.0, patterns)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every table stored in the binary is, entry for entry, the one `from_patterns` builds
    /// from its patterns now, and holds every invariant of the walk: a build script that
    /// drifted, or a blob damaged on the way into the binary, fails here.
    #[test]
    fn every_stored_table_is_the_one_a_start_would_build() {
        let entries = super::super::walk::stored_entries(&TABLES.0);
        assert_eq!(entries.len(), 3, "light, folded and both views");
        for (patterns, stored) in entries {
            let stored = stored.expect("a stored table reads back");
            let built = Table::from_patterns(&patterns).unwrap();
            assert!(stored.is_static());
            assert!(stored.same_as(&built));
            assert!(stored.holds_invariants());
            assert!(table_for(&patterns).is_some_and(|t| t.same_as(&built)));
        }
        assert!(TABLES.0.len() > 1 << 20);
    }
}
