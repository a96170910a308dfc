//! The Rust client of `warden serve`: connect to the socket, map the memory the server sends,
//! and validate requests through it.
//!
//! A verdict is never invented in the client's favour: when the server is gone, refuses, or
//! does not answer in time, `validate` returns a deny (`shutting_down`, `timeout`,
//! `overloaded` when every slot is busy, `content_too_large` when a request does not fit a
//! slot). A client whose server went away reconnects on its next call.
//!
//! Waiting: a caller spins for the server's `client_spin_us`, then sleeps on its slot's state
//! word (a futex shared with the server, which wakes it). `validate_async` instead registers a
//! waker with the connection's notifier thread, which sleeps on the wake-up socket.
//!
//! Whom it talks to: `connect` refuses a server whose uid (`SO_PEERCRED`) is neither root nor
//! this process's own (`connect_to_uid` names another), so a socket path squatted by another
//! user gets no request and gives no verdict; and memory whose file is smaller than announced
//! or not sealed against shrinking (a page vanishing under a read is a SIGBUS).

use super::server::{recv_fds, HELLO, REFUSED};
use super::shm::{self, Geometry, Shm};
use crate::request::Request;
use crate::sync::futex;
use crate::sync::stack::Stack;
use crate::types::{DenyReason, Priority, Verdict};
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, Ordering::*};
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::time::{Duration, Instant};

/// Why a connection could not be made.
#[derive(Debug)]
pub enum ConnectError {
    /// The socket could not be reached (no server, permissions).
    Io(PathBuf, std::io::Error),
    /// The server refused this client, with its reason (uid not admitted, server full).
    Refused(String),
    /// The server's answer was not a warden hello (another service on the socket, or a
    /// different version).
    Protocol(String),
    /// The socket is served by a uid this client does not trust (see `Client::connect`).
    Untrusted(String),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Io(p, e) => write!(
                f,
                "cannot connect to warden at {}: {e} (is `warden serve` running there?)",
                p.display()
            ),
            ConnectError::Refused(why) => write!(f, "warden refused this client: {why}"),
            ConnectError::Protocol(why) => write!(f, "not a warden server: {why}"),
            ConnectError::Untrusted(why) => write!(f, "not connecting: {why}"),
        }
    }
}

impl std::error::Error for ConnectError {}

/// Which process a connection belongs to, without a syscall per call: a page the kernel wipes
/// in every child (`MADV_WIPEONFORK`: fork, `_Fork` and clone without `CLONE_VM` alike) holds
/// this process's epoch, set at its first connect; a connection stores it. In a child the page
/// reads 0 until the child connects, when it gets an epoch its parent never had. (A child
/// sharing its parent's connection would mix their requests and verdicts; `pthread_atfork`
/// misses `_Fork` and raw clones, a review showed.)
fn epoch_page() -> Option<&'static AtomicU64> {
    static PAGE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let addr = *PAGE.get_or_init(|| {
        // SAFETY: a fresh private anonymous page, ours for the life of the process; madvise
        // only changes what a child sees of it.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            if p == libc::MAP_FAILED {
                return 0;
            }
            if libc::madvise(p, 4096, libc::MADV_WIPEONFORK) != 0 {
                libc::munmap(p, 4096);
                return 0;
            }
            p as usize
        }
    });
    // SAFETY: the page is mapped for the life of the process, aligned, and only ever accessed
    // through this atomic.
    (addr != 0).then(|| unsafe { &*(addr as *const AtomicU64) })
}

/// This process's epoch (made now if it has none); 0 when the page could not be made.
fn epoch() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let Some(page) = epoch_page() else { return 0 };
    let e = page.load(SeqCst);
    if e != 0 {
        return e;
    }
    let fresh = NEXT.fetch_add(1, SeqCst) + 1;
    match page.compare_exchange(0, fresh, SeqCst, SeqCst) {
        Ok(_) => fresh,
        Err(other) => other,
    }
}

/// Whether a connection made at `e` belongs to this process.
fn ours(e: u64) -> bool {
    epoch_page().is_some_and(|p| p.load(Relaxed) == e)
}

/// One connection: the socket, the mapping, the wake-up socket.
struct Conn {
    sock: UnixStream,
    shm: Shm,
    g: Geometry,
    _memfd: OwnedFd,
    /// The client's end of the wake-up socket pair: a byte sent rings the home core, a byte
    /// received is a notification.
    wake: OwnedFd,
    free: Stack,
    /// The ring's tail as this process counts it; held while pushing. A lock, in the client
    /// only (never on a core): threads of one client share one single-producer ring, and an
    /// entry must be written before the tail that publishes it, so pushes take turns. It is
    /// held for two stores.
    tail: Mutex<u32>,
    dead: AtomicBool,
    spin_ns: u64,
    /// Futures waiting for a notification.
    wakers: Mutex<Vec<Waker>>,
    /// Slots given up on (a timeout, a dropped future): out of the free list until the server
    /// writes their verdict, then taken back.
    abandoned: Mutex<Vec<u32>>,
    /// This process's epoch when the connection was made (`epoch`).
    epoch: u64,
    /// Bumped each time the notifier takes the wakers: a future registered under an older
    /// round registers again (a future polled often registers once per round, not per poll).
    waker_round: std::sync::atomic::AtomicU64,
    notifier: AtomicBool,
}

impl Drop for Conn {
    fn drop(&mut self) {
        // SAFETY: the mapping this connection made; nothing uses it once the last reference
        // (this one) goes.
        unsafe { libc::munmap(self.shm.base().cast(), self.shm.bytes()) };
    }
}

impl Conn {
    fn open(path: &Path, server_uid: Option<u32>) -> Result<Conn, ConnectError> {
        let epoch = epoch();
        if epoch == 0 {
            return Err(ConnectError::Io(
                path.into(),
                std::io::Error::other("cannot make the page that tells a forked child apart"),
            ));
        }
        let sock = UnixStream::connect(path).map_err(|e| ConnectError::Io(path.into(), e))?;
        // Who listens there: root, this process's uid, or the uid the caller named.
        let (_, uid, _) =
            super::server::peer_credentials(&sock).map_err(|e| ConnectError::Io(path.into(), e))?;
        // SAFETY: geteuid cannot fail.
        let me = unsafe { libc::geteuid() };
        let trusted = match server_uid {
            Some(want) => uid == want,
            None => uid == 0 || uid == me,
        };
        if !trusted {
            return Err(ConnectError::Untrusted(format!(
                "{} is served by uid {uid}, which is neither root nor this process's uid {me}{}",
                path.display(),
                server_uid.map_or(String::new(), |w| format!(" nor the uid {w} asked for"))
            )));
        }
        // A server that never answers cannot hang the connect.
        let hello_wait = Some(Duration::from_secs(5));
        sock.set_read_timeout(hello_wait)
            .map_err(|e| ConnectError::Io(path.into(), e))?;
        let mut hello = [0u8; 16];
        let (n, fds) =
            recv_fds::<2>(&sock, &mut hello).map_err(|e| ConnectError::Io(path.into(), e))?;
        if n >= 8 && &hello[..4] == REFUSED {
            let len = u32::from_le_bytes([hello[4], hello[5], hello[6], hello[7]]) as usize;
            let mut why = hello[8..n].to_vec();
            let mut rest = vec![0u8; len.saturating_sub(why.len()).min(4096)];
            let _ = (&sock).read_exact(&mut rest);
            why.extend_from_slice(&rest);
            return Err(ConnectError::Refused(
                String::from_utf8_lossy(&why).into_owned(),
            ));
        }
        if n != 16 || &hello[..4] != HELLO || fds.len() != 2 {
            return Err(ConnectError::Protocol(format!(
                "{n} bytes and {} descriptors in the hello",
                fds.len()
            )));
        }
        let version = u32::from_le_bytes([hello[4], hello[5], hello[6], hello[7]]);
        if version != shm::VERSION {
            return Err(ConnectError::Protocol(format!(
                "server speaks version {version}, this client {}",
                shm::VERSION
            )));
        }
        let mut b = [0u8; 8];
        b.copy_from_slice(&hello[8..16]);
        let bytes = u64::from_le_bytes(b) as usize;
        let mut fds = fds.into_iter();
        let (memfd, wake) = (fds.next().expect("2 fds"), fds.next().expect("2 fds"));
        // The memfd the server sent, at the size it announced, which the file must hold (a
        // page past its end would be a SIGBUS here).
        // SAFETY: a zeroed stat is a valid out-buffer for fstat on a descriptor we own.
        let size = unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            if libc::fstat(memfd.as_raw_fd(), &mut st) < 0 {
                -1
            } else {
                st.st_size
            }
        };
        if size < 0 || (size as u64) < bytes as u64 || bytes > 1 << 34 {
            return Err(ConnectError::Protocol(format!(
                "the server announced {bytes} bytes of memory in a file of {size}"
            )));
        }
        // SAFETY: a plain fcntl on a descriptor we own.
        let seals = unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_GET_SEALS) };
        let need = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
        if seals < 0 || seals & need != need {
            return Err(ConnectError::Protocol(
                "the memory is not sealed against shrinking: it could vanish under a read".into(),
            ));
        }
        let base = super::server::map_shared(memfd.as_raw_fd(), bytes)
            .map_err(|e| ConnectError::Io(path.into(), e))?;
        // SAFETY: the mapping just made, `bytes` long, unmapped only by `Conn::drop`.
        let m = unsafe { Shm::new(base, bytes) };
        let bad = |why: String| {
            // SAFETY: undoes the mmap above.
            unsafe { libc::munmap(base.cast(), bytes) };
            Err(ConnectError::Protocol(why))
        };
        if bytes < shm::HEADER_BYTES || m.u32_at(shm::H_MAGIC).load(Relaxed) != shm::MAGIC {
            return bad("the memory has no warden header".into());
        }
        let g = Geometry {
            slots: m.u32_at(shm::H_SLOTS).load(Relaxed),
            slot_bytes: m.u32_at(shm::H_SLOT_BYTES).load(Relaxed),
        };
        if !g.slots.is_power_of_two()
            || g.slots as usize > shm::MAX_SLOTS
            || !(256..=1 << 24).contains(&g.slot_bytes)
            || g.total_bytes() != bytes
        {
            return bad(format!("geometry {g:?} does not fit {bytes} bytes"));
        }
        // At most 1 ms of spinning, whatever the header says.
        let spin_ns = (m.u32_at(shm::H_SPIN_NS).load(Relaxed) as u64).min(1_000_000);
        let _ = sock.set_read_timeout(None);
        Ok(Conn {
            sock,
            shm: m,
            g,
            _memfd: memfd,
            wake,
            free: Stack::new_full(0, g.slots as usize),
            tail: Mutex::new(0),
            dead: AtomicBool::new(false),
            spin_ns,
            wakers: Mutex::new(Vec::new()),
            abandoned: Mutex::new(Vec::new()),
            epoch,
            waker_round: std::sync::atomic::AtomicU64::new(0),
            notifier: AtomicBool::new(false),
        })
    }

    fn state(&self, slot: u32) -> &AtomicU32 {
        self.shm.u32_at(self.g.slot_offset(slot))
    }

    /// Encodes `req` into a free slot and puts it on the ring. `Err`: an immediate verdict.
    fn submit(&self, req: &Request<'_>) -> Result<u32, Verdict> {
        if self.dead.load(Relaxed) {
            return Err(Verdict::deny(DenyReason::ShuttingDown));
        }
        let len = req.encoded_len();
        if len > self.g.slot_bytes as usize {
            return Err(Verdict::deny(DenyReason::ContentTooLarge));
        }
        let Some(slot) = self.free.pop().or_else(|| self.reclaim()) else {
            return Err(Verdict::deny(DenyReason::Overloaded));
        };
        let off = self.g.slot_offset(slot);
        let mut small = [0u8; 512];
        let mut big = Vec::new();
        let buf: &mut [u8] = if len <= small.len() {
            &mut small
        } else {
            big.resize(len, 0);
            &mut big
        };
        let n = match req.encode(buf) {
            Ok(n) => n,
            Err(r) => {
                self.free.push(slot);
                return Err(Verdict::deny(r));
            }
        };
        self.shm.copy_in(off + shm::SLOT_HEADER_BYTES, &buf[..n]);
        self.shm.u32_at(off + 4).store(len as u32, Relaxed);
        self.state(slot).store(shm::S_SUBMITTED, Relaxed);
        {
            let mut tail = self.tail.lock().unwrap_or_else(|e| e.into_inner());
            self.shm
                .u32_at(self.g.ring_offset() + 4 * (*tail & (self.g.slots - 1)) as usize)
                .store(slot, Relaxed);
            *tail = tail.wrapping_add(1);
            self.shm.u32_at(shm::H_TAIL).store(*tail, Release);
        }
        fence(SeqCst);
        if self.shm.u32_at(shm::H_CORE_SLEEPING).load(SeqCst) != 0 {
            shm::poke(self.wake.as_raw_fd());
        }
        Ok(slot)
    }

    /// Takes back the abandoned slots whose verdict has come; returns one of them.
    fn reclaim(&self) -> Option<u32> {
        let mut a = self.abandoned.lock().unwrap_or_else(|e| e.into_inner());
        let mut got = None;
        a.retain(|&slot| {
            if self.state(slot).load(Acquire) != shm::S_DONE {
                return true;
            }
            self.state(slot).store(shm::S_FREE, Relaxed);
            match got {
                None => got = Some(slot),
                Some(_) => self.free.push(slot),
            }
            false
        });
        got
    }

    fn abandon(&self, slot: u32) {
        self.abandoned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(slot);
    }

    /// The verdict of a DONE slot; frees the slot.
    fn take(&self, slot: u32) -> Verdict {
        let mut b = [0u8; shm::VERDICT_BYTES];
        self.shm
            .copy_out(self.g.slot_offset(slot) + shm::VERDICT_OFFSET, &mut b);
        self.state(slot).store(shm::S_FREE, Relaxed);
        self.free.push(slot);
        shm::decode_verdict(&b).unwrap_or(Verdict::deny(DenyReason::Internal))
    }

    fn server_gone(&self) -> bool {
        let mut b = [0u8; 1];
        // SAFETY: a non-blocking peek of one byte into a live buffer.
        let n = unsafe {
            libc::recv(
                self.sock.as_raw_fd(),
                b.as_mut_ptr().cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        let gone = n == 0
            || (n < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::WouldBlock);
        if gone {
            self.dead.store(true, SeqCst);
        }
        gone
    }

    /// Waits for `slot`: spin, then sleep on its state word; a deny when the server is gone or
    /// `timeout` passes (the slot is then not reused on this connection).
    fn wait(&self, slot: u32, timeout: Duration) -> Verdict {
        let state = self.state(slot);
        let t0 = Instant::now();
        let spin = Duration::from_nanos(self.spin_ns);
        let mut i = 0u32;
        loop {
            if state.load(Acquire) == shm::S_DONE {
                return self.take(slot);
            }
            i = i.wrapping_add(1);
            if i.is_multiple_of(64) && t0.elapsed() >= spin {
                break;
            }
            std::hint::spin_loop();
        }
        loop {
            match state.compare_exchange(shm::S_SUBMITTED, shm::S_SLEEPING, AcqRel, Acquire) {
                Ok(_) | Err(shm::S_SLEEPING) => {}
                Err(shm::S_DONE) => return self.take(slot),
                Err(_) => return Verdict::deny(DenyReason::Internal),
            }
            futex::wait_shared(state, shm::S_SLEEPING, Duration::from_millis(10));
            if state.load(Acquire) == shm::S_DONE {
                return self.take(slot);
            }
            if self.server_gone() {
                return Verdict::deny(DenyReason::ShuttingDown);
            }
            if t0.elapsed() >= timeout {
                self.abandon(slot);
                return Verdict::deny(DenyReason::Timeout);
            }
        }
    }
}

/// A client of `warden serve`. `Send + Sync`: threads may share one (each call takes a slot of
/// its own).
pub struct Client {
    path: PathBuf,
    server_uid: Option<u32>,
    /// The connection, replaced when the server went away or the process forked; the lock is
    /// held only to clone the `Arc` (the client's side, never a core's).
    conn: Mutex<Arc<Conn>>,
    timeout: Duration,
}

impl Client {
    /// Connects to the server listening on `path`, if it runs as root or as this process's
    /// uid.
    pub fn connect(path: impl AsRef<Path>) -> Result<Client, ConnectError> {
        Self::open(path.as_ref(), None)
    }

    /// Connects to the server listening on `path` if it runs as `uid` (a service account).
    pub fn connect_to_uid(path: impl AsRef<Path>, uid: u32) -> Result<Client, ConnectError> {
        Self::open(path.as_ref(), Some(uid))
    }

    fn open(path: &Path, server_uid: Option<u32>) -> Result<Client, ConnectError> {
        let path = path.to_path_buf();
        let conn = Conn::open(&path, server_uid)?;
        Ok(Client {
            path,
            server_uid,
            conn: Mutex::new(Arc::new(conn)),
            timeout: Duration::from_secs(5),
        })
    }

    /// How long `validate` waits for a verdict before it answers `timeout` (default 5 s).
    pub fn with_timeout(mut self, t: Duration) -> Client {
        self.timeout = t;
        self
    }

    /// The connection, or a new one when the server went away (one attempt per call).
    fn conn(&self) -> Option<Arc<Conn>> {
        let mut c = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        // (Whether the server is gone is found out while waiting, not here: a syscall per call
        // would cost a third of the round trip.) A connection made before a fork is the
        // parent's: the child makes its own.
        if c.dead.load(Relaxed) || !ours(c.epoch) {
            match Conn::open(&self.path, self.server_uid) {
                Ok(n) => *c = Arc::new(n),
                Err(_) => return None,
            }
        }
        Some(c.clone())
    }

    /// The CPU this connection's home core is pinned to, if it is: a caller that spins (a
    /// load generator, a busy event loop) does best elsewhere.
    pub fn home_cpu(&self) -> Option<usize> {
        let c = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        match c.shm.u32_at(shm::H_HOME_CPU).load(Relaxed) {
            u32::MAX => None,
            cpu => Some(cpu as usize),
        }
    }

    /// Slots of this connection (its most requests in flight).
    pub fn slots(&self) -> u32 {
        self.conn.lock().unwrap_or_else(|e| e.into_inner()).g.slots
    }

    /// Validates `req` and blocks until the verdict.
    pub fn validate(&self, req: &Request<'_>) -> Verdict {
        let Some(c) = self.conn() else {
            return Verdict::deny(DenyReason::ShuttingDown);
        };
        match c.submit(req) {
            Ok(slot) => c.wait(slot, self.timeout),
            Err(v) => v,
        }
    }

    /// Validates a batch at one priority; verdicts in input order. Keeps up to the
    /// connection's slots in flight.
    pub fn validate_batch(&self, reqs: &[Request<'_>], priority: Priority) -> Vec<Verdict> {
        let mut out = vec![Verdict::deny(DenyReason::ShuttingDown); reqs.len()];
        let Some(c) = self.conn() else {
            return out;
        };
        let window = (c.g.slots as usize / 2).max(1);
        let mut pending = Vec::with_capacity(window);
        for (chunk_i, chunk) in reqs.chunks(window).enumerate() {
            pending.clear();
            for (j, r) in chunk.iter().enumerate() {
                let r = Request { priority, ..*r };
                match c.submit(&r) {
                    Ok(slot) => pending.push((j, slot)),
                    Err(v) => out[chunk_i * window + j] = v,
                }
            }
            for &(j, slot) in &pending {
                out[chunk_i * window + j] = c.wait(slot, self.timeout);
            }
        }
        out
    }

    /// Submits `req` and returns at once; `Pending::try_verdict` then asks whether its verdict
    /// is there, without blocking and without a waker (for an event loop that polls, such as
    /// a load generator's). `Err`: an immediate verdict.
    pub fn submit(&self, req: &Request<'_>) -> Result<Pending, Verdict> {
        let c = self.conn().ok_or(Verdict::deny(DenyReason::ShuttingDown))?;
        let slot = c.submit(req)?;
        Ok(Pending {
            conn: c,
            slot,
            t0: Instant::now(),
            timeout: self.timeout,
            done: false,
        })
    }

    /// Validates `req` without blocking the thread: the future resolves to the verdict. Works
    /// on any executor (it uses only the context's waker).
    pub fn validate_async(&self, req: &Request<'_>) -> ClientFuture {
        let Some(c) = self.conn() else {
            return ClientFuture {
                conn: None,
                registered: None,
                state: Err(Verdict::deny(DenyReason::ShuttingDown)),
                t0: Instant::now(),
                timeout: self.timeout,
            };
        };
        let state = c.submit(req);
        ClientFuture {
            conn: Some(c),
            registered: None,
            state,
            t0: Instant::now(),
            timeout: self.timeout,
        }
    }
}

/// A request submitted with `Client::submit`. Dropped before its verdict came, its slot is not
/// reused on this connection (the server may still write it).
pub struct Pending {
    conn: Arc<Conn>,
    slot: u32,
    t0: Instant,
    timeout: Duration,
    done: bool,
}

impl Pending {
    /// The verdict if it has come (once; later calls return `None`), or a deny once the
    /// client's timeout has passed or the server is gone.
    pub fn try_verdict(&mut self) -> Option<Verdict> {
        if self.done {
            return None;
        }
        let c = &self.conn;
        let v = if c.state(self.slot).load(Acquire) == shm::S_DONE {
            c.take(self.slot)
        } else if self.t0.elapsed() >= self.timeout {
            c.abandon(self.slot);
            Verdict::deny(if c.server_gone() {
                DenyReason::ShuttingDown
            } else {
                DenyReason::Timeout
            })
        } else {
            return None;
        };
        self.done = true;
        Some(v)
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.done {
            self.conn.abandon(self.slot);
        }
    }
}

impl Drop for ClientFuture {
    fn drop(&mut self) {
        if let (Ok(slot), Some(c)) = (self.state, &self.conn) {
            c.abandon(slot);
        }
    }
}

/// The future of `Client::validate_async`.
pub struct ClientFuture {
    conn: Option<Arc<Conn>>,
    /// The notifier round and waker this future last registered.
    registered: Option<(u64, Waker)>,
    state: Result<u32, Verdict>,
    t0: Instant,
    timeout: Duration,
}

impl std::future::Future for ClientFuture {
    type Output = Verdict;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Verdict> {
        let slot = match self.state {
            Err(v) => return std::task::Poll::Ready(v),
            Ok(s) => s,
        };
        let Some(c) = self.conn.clone() else {
            return std::task::Poll::Ready(Verdict::deny(DenyReason::ShuttingDown));
        };
        let done = |this: &mut Self| {
            let v = c.take(slot);
            this.state = Err(v);
            std::task::Poll::Ready(v)
        };
        if c.state(slot).load(Acquire) == shm::S_DONE {
            return done(&mut self);
        }
        if self.t0.elapsed() >= self.timeout || c.dead.load(Relaxed) {
            let v = Verdict::deny(if c.dead.load(Relaxed) {
                DenyReason::ShuttingDown
            } else {
                DenyReason::Timeout
            });
            c.abandon(slot);
            self.state = Err(v);
            return std::task::Poll::Ready(v);
        }
        let round = c.waker_round.load(SeqCst);
        if self
            .registered
            .as_ref()
            .is_none_or(|(r, w)| *r != round || !w.will_wake(cx.waker()))
        {
            let mut list = c.wakers.lock().unwrap_or_else(|e| e.into_inner());
            // Under the lock: the notifier bumps the round under it too, so a registration
            // is either taken in this round or recorded against the next.
            let round = c.waker_round.load(SeqCst);
            list.push(cx.waker().clone());
            self.registered = Some((round, cx.waker().clone()));
        }
        c.shm.u32_at(shm::H_NOTIFY).store(1, SeqCst);
        start_notifier(&c);
        // The verdict may have landed before the server saw the notify flag.
        if c.state(slot).load(Acquire) == shm::S_DONE {
            return done(&mut self);
        }
        std::task::Poll::Pending
    }
}

/// The connection's notifier thread (one, started by the first pending future): sleeps on the
/// wake-up socket and wakes every registered future; also wakes them every 10 ms so timeouts
/// and a vanished server are noticed.
fn start_notifier(c: &Arc<Conn>) {
    if c.notifier.swap(true, SeqCst) {
        return;
    }
    let weak = Arc::downgrade(c);
    std::thread::spawn(move || loop {
        let Some(c) = weak.upgrade() else { return };
        let mut p = libc::pollfd {
            fd: c.wake.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one live pollfd.
        unsafe { libc::poll(&mut p, 1, 10) };
        shm::drain(c.wake.as_raw_fd());
        let wakers = {
            let mut w = c.wakers.lock().unwrap_or_else(|e| e.into_inner());
            c.waker_round.fetch_add(1, SeqCst);
            std::mem::take(&mut *w)
        };
        if c.server_gone() && wakers.is_empty() {
            return;
        }
        for w in wakers {
            w.wake();
        }
    });
}

/// Raw access for tests that play a hostile client: the mapping and the doorbell.
#[doc(hidden)]
pub struct Raw {
    conn: Conn,
}

impl Raw {
    pub fn connect(path: impl AsRef<Path>) -> Result<Raw, ConnectError> {
        Ok(Raw {
            conn: Conn::open(path.as_ref(), None)?,
        })
    }
    pub fn shm(&self) -> Shm {
        self.conn.shm
    }
    pub fn geometry(&self) -> Geometry {
        self.conn.g
    }
    pub fn ring_doorbell(&self) {
        shm::poke(self.conn.wake.as_raw_fd());
    }
    pub fn server_gone(&self) -> bool {
        self.conn.server_gone()
    }
    /// The client's end of the wake-up socket pair.
    pub fn wake_fd(&self) -> i32 {
        self.conn.wake.as_raw_fd()
    }
}
