//! Content arrives from agents: any bytes scan without a panic, the level follows the score, the
//! categories name known ones, a fork of the scanner (what each core runs) agrees, read as data
//! an agent read the same bytes never score less, and read as a person's message never more, nor
//! less than the prompt's score or Medium's 5, whichever is lower.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use warden::threat::{scan::level_of, Scanner, CATEGORIES};
use warden::ContentOrigin;

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
        let d = b.scan_as(data, ContentOrigin::Data);
        assert_eq!(d.level, level_of(d.score));
        assert!(d.score >= r.score && d.categories >> CATEGORIES.len() == 0);
        let u = b.scan_as(data, ContentOrigin::User);
        assert_eq!(u.level, level_of(u.score));
        assert!(u.score <= r.score && u.score >= r.score.min(5));
    })
});
