//! Linux futex wait/wake on an `AtomicU32`: how parked waiters and idle cores sleep without a
//! lock. Used only off the fast path: a waiter parks after its spin budget, a core after its
//! spin-before-park budget; the waking side issues `wake` only when it saw the sleeper's flag.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// Sleeps while `*a == expected`, at most `timeout` (forever when `None`). Returns on wake,
/// timeout, value change or spurious wake-up: callers re-check their condition.
pub fn wait(a: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(core::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: FUTEX_WAIT reads the 4-byte word at `a.as_ptr()`, which is valid and aligned for
    // the duration of the call because `a` is borrowed; `ts_ptr` is null or points to `ts`,
    // which lives on this frame until the call returns.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            a.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            ts_ptr,
        );
    }
}

/// Wakes up to `n` threads sleeping on `a`.
pub fn wake(a: &AtomicU32, n: i32) {
    // SAFETY: FUTEX_WAKE only uses the address as a key; `a` is valid for the call.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            a.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            n,
        );
    }
}

/// Wakes up to `n` waiters of a word that may be shared with other processes (a shared-memory
/// client's slot): the key is the mapping's page, not this process's address.
pub fn wake_shared(a: &AtomicU32, n: i32) {
    // SAFETY: FUTEX_WAKE only uses the address as a key; `a` is valid for the call.
    unsafe {
        libc::syscall(libc::SYS_futex, a.as_ptr(), libc::FUTEX_WAKE, n);
    }
}

/// `wait` on a word that may be shared with other processes.
pub fn wait_shared(a: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: as in `wait`: the word is valid and aligned while borrowed, `ts` lives on this
    // frame until the call returns.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            a.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering::SeqCst;
    use std::sync::Arc;

    #[test]
    fn wait_times_out_and_wake_wakes() {
        let a = Arc::new(AtomicU32::new(1));
        let t0 = std::time::Instant::now();
        wait(&a, 1, Some(Duration::from_millis(20)));
        assert!(t0.elapsed() >= Duration::from_millis(10));
        wait(&a, 0, None); // value differs: returns at once
        let b = a.clone();
        let h = std::thread::spawn(move || {
            while b.load(SeqCst) == 1 {
                wait(&b, 1, Some(Duration::from_secs(10)));
            }
        });
        std::thread::sleep(Duration::from_millis(20));
        a.store(2, SeqCst);
        wake(&a, 1);
        h.join().unwrap();
    }
}
