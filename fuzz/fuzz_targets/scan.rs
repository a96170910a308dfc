//! Content arrives from agents: any bytes scan without a panic, the level follows the score, the
//! categories name known ones, and a fork of the scanner (what each core runs) agrees.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use warden::threat::{scan::level_of, Scanner, CATEGORIES};

thread_local! {
    static S: RefCell<(Scanner, Scanner)> = RefCell::new({
        let s = Scanner::builtin();
        let f = s.fork();
        (s, f)
    });
}

fuzz_target!(|data: &[u8]| {
    S.with(|s| {
        let (a, b) = &mut *s.borrow_mut();
        let r = a.scan(data);
        assert_eq!(r.level, level_of(r.score));
        assert!(r.categories >> CATEGORIES.len() == 0);
        assert_eq!(b.scan(data), r);
    })
});
