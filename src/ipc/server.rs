//! The accept thread of `warden serve`: it checks each client's peer credentials, gives it a
//! sealed memfd with its rings and slots and one end of a socket pair for wake-ups, over the
//! socket (`SCM_RIGHTS`), puts
//! it in the table the cores read, and takes it out again when it hangs up or breaks the
//! protocol. It also answers SIGTERM (stop accepting, drain, answer every request taken, exit)
//! and SIGHUP (reload the policy; a bad file is reported and the old policy kept), runs the
//! stream-socket protocol and the metrics endpoint. Nothing here is on the request path.

use super::shm::{self, epoll_add, Cell, Fault, Geometry, Table, C_CLOSING, C_EMPTY, C_LIVE};
use super::ServeConfig;
use crate::engine::{Engine, Handle};
use crate::request::Request;
use crate::types::{DenyReason, Verdict};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The first bytes of the server's hello (then version u32, mapping bytes u64) or of a refusal
/// (then a u32 length and a message a person reads).
pub const HELLO: &[u8; 4] = b"WDNH";
pub const REFUSED: &[u8; 4] = b"WDNR";

/// Parses `addr` and refuses anything but a loopback address.
pub fn loopback(addr: &str) -> Result<std::net::SocketAddr, String> {
    let a: std::net::SocketAddr = addr
        .parse()
        .map_err(|_| format!("`{addr}` is not an address and port such as 127.0.0.1:9464"))?;
    if !a.ip().is_loopback() {
        return Err(format!(
            "{addr} is not a loopback address: the metrics endpoint has no authentication, so it \
             listens on 127.0.0.1 or ::1 only"
        ));
    }
    Ok(a)
}

/// The peer's (pid, uid, gid).
pub fn peer_credentials(s: &UnixStream) -> std::io::Result<(u32, u32, u32)> {
    let mut c = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `c` and `len` are live locals of the sizes the call is told.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut c as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((c.pid as u32, c.uid, c.gid))
}

/// A message header over one buffer with a control buffer for `fd_count` descriptors; the
/// control buffer is returned beside it and must outlive every use of the header.
fn msghdr(iov: &mut libc::iovec, fd_count: usize) -> (libc::msghdr, Vec<u64>) {
    // SAFETY: CMSG_SPACE is a pure size computation.
    let space = unsafe { libc::CMSG_SPACE((fd_count * 4) as u32) } as usize;
    let mut cbuf = vec![0u64; space.div_ceil(8)];
    // SAFETY: a zeroed msghdr is a valid "no fields" value; the pointers are filled in below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    (msg, cbuf)
}

/// Maps `bytes` of `fd` shared and read-write.
pub fn map_shared(fd: RawFd, bytes: usize) -> std::io::Result<*mut u8> {
    // SAFETY: maps a descriptor of ours at a size we give; failure is checked.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    Ok(base.cast())
}

/// Sends `data` with `fds` attached (`SCM_RIGHTS`).
pub fn send_fds(s: &UnixStream, data: &[u8], fds: &[RawFd]) -> std::io::Result<()> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let fd_bytes = std::mem::size_of_val(fds);
    let (msg, _cbuf) = msghdr(&mut iov, fds.len());
    // SAFETY: the control buffer is CMSG_SPACE bytes, enough for one header with `fds`
    // (CMSG_SPACE); CMSG_FIRSTHDR/CMSG_DATA point inside it; `iov` and `data` live until
    // sendmsg returns.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(fd_bytes as u32) as _;
        std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(c).cast::<RawFd>(), fds.len());
        if libc::sendmsg(s.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Receives up to `data.len()` bytes and up to `N` descriptors. Returns (bytes, fds).
pub fn recv_fds<const N: usize>(
    s: &UnixStream,
    data: &mut [u8],
) -> std::io::Result<(usize, Vec<OwnedFd>)> {
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    let (mut msg, _cbuf) = msghdr(&mut iov, N);
    // SAFETY: buffers live across the call; MSG_CMSG_CLOEXEC marks received fds close-on-exec.
    let n = unsafe { libc::recvmsg(s.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut fds = Vec::new();
    // SAFETY: walks the control messages the kernel wrote inside `cbuf`, as the CMSG macros
    // define; each SCM_RIGHTS payload holds whole descriptors, which we now own.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let bytes = (*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let p = libc::CMSG_DATA(c).cast::<RawFd>();
                for i in 0..bytes / 4 {
                    fds.push(OwnedFd::from_raw_fd(p.add(i).read_unaligned()));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((n as usize, fds))
}

/// `refuse`, for a caller that reports whether it admitted the client (it did not).
fn refuse_(s: UnixStream, why: &str) -> bool {
    refuse(s, why);
    false
}

/// Writes a refusal a client library shows as its error.
fn refuse(mut s: UnixStream, why: &str) {
    let mut b = REFUSED.to_vec();
    b.extend_from_slice(&(why.len() as u32).to_le_bytes());
    b.extend_from_slice(why.as_bytes());
    let _ = s.write_all(&b);
}

/// Binds `path`, replacing a stale socket file (one nobody listens on) but never another
/// server's socket nor a file that is not a socket.
fn bind(path: &Path) -> Result<UnixListener, String> {
    use std::os::unix::fs::FileTypeExt;
    if let Ok(md) = std::fs::symlink_metadata(path) {
        if !md.file_type().is_socket() {
            return Err(format!(
                "{} exists and is not a socket; remove it or choose another serve.socket",
                path.display()
            ));
        }
        if UnixStream::connect(path).is_ok() {
            return Err(format!(
                "another server listens on {}; stop it or choose another serve.socket",
                path.display()
            ));
        }
        std::fs::remove_file(path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let l = UnixListener::bind(path)
        .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
    // Who may connect is decided by peer credentials (serve.uids, serve.gids), not the mode.
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666));
    Ok(l)
}

/// One client's memory and wake-up sockets, held by the accept thread.
struct Mapping {
    base: *mut u8,
    bytes: usize,
    memfd: OwnedFd,
    /// The server's end of the wake-up socket pair, and the client's (sent, then closed here).
    wake: OwnedFd,
    client_wake: Option<OwnedFd>,
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `base..base+bytes` is the mapping we made; the caller drops a `Mapping` only
        // when no core can touch it any more (see `Server::finish`).
        unsafe { libc::munmap(self.base.cast(), self.bytes) };
    }
}

/// A connected pair of non-blocking Unix stream sockets: (the server's end, the client's).
fn wake_pair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1; 2];
    // SAFETY: socketpair writes two descriptors into the live array; we own them on success.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fresh descriptors, owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A sealed memfd of the client's geometry, mapped here, header written.
fn map_client(g: Geometry, client: u32, spin_ns: u32) -> std::io::Result<Mapping> {
    let bytes = g.total_bytes();
    // SAFETY: creates a descriptor from a constant C string; we own it if non-negative.
    let fd = unsafe {
        libc::memfd_create(
            c"warden-client".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fresh descriptor.
    let memfd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: plain calls on our descriptor. The seals keep the client from shrinking the file
    // under our mapping (a SIGBUS on a core) or growing it.
    unsafe {
        if libc::ftruncate(fd, bytes as libc::off_t) < 0
            || libc::fcntl(
                fd,
                libc::F_ADD_SEALS,
                libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL,
            ) < 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    let base = map_shared(fd, bytes)?;
    let (wake, client_wake) = wake_pair()?;
    let m = Mapping {
        base,
        bytes,
        memfd,
        wake,
        client_wake: Some(client_wake),
    };
    // SAFETY: the mapping just made, page-aligned, `bytes` long, kept while `m` lives.
    let s = unsafe { shm::Shm::new(m.base, m.bytes) };
    s.u32_at(shm::H_MAGIC).store(shm::MAGIC, Relaxed);
    s.u32_at(shm::H_VERSION).store(shm::VERSION, Relaxed);
    s.u32_at(shm::H_SLOTS).store(g.slots, Relaxed);
    s.u32_at(shm::H_SLOT_BYTES).store(g.slot_bytes, Relaxed);
    s.u32_at(shm::H_CLIENT).store(client, Relaxed);
    s.u32_at(shm::H_SPIN_NS).store(spin_ns, Relaxed);
    // Until its home core says otherwise, the client rings the doorbell: the core may have gone
    // to sleep before this client existed, and then only the doorbell wakes it (a spurious
    // ring costs one read).
    s.u32_at(shm::H_CORE_SLEEPING).store(1, Relaxed);
    Ok(m)
}

/// Who may connect and which tenants each uid may use (shared with the stream socket's thread).
struct Admission {
    cfg: ServeConfig,
    own_uid: u32,
    uid_sets: std::collections::HashMap<u32, u32>,
    refusals: RefusalLog,
}

/// Refusals are logged at most once a second: the first of a second in full, then how many
/// followed it. A local user can connect in a loop (the sockets admit by credentials, not by
/// mode): a line each would fill a disk; `warden_serve_clients_refused_total` counts them all.
#[derive(Default)]
struct RefusalLog {
    second: std::sync::atomic::AtomicU64,
    since: std::sync::atomic::AtomicU64,
}

impl RefusalLog {
    fn log(&self, t: &Table, line: std::fmt::Arguments<'_>) {
        t.counters.refused.fetch_add(1, Relaxed);
        self.note(line);
    }

    /// Logs `line` under the same once-a-second limit (disconnects, which a client can also
    /// provoke in a loop; the metrics count them by cause).
    fn note(&self, line: std::fmt::Arguments<'_>) {
        let now = crate::time::now_ns() / 1_000_000_000 + 1;
        let prev = self.second.load(Relaxed);
        if prev != now
            && self
                .second
                .compare_exchange(prev, now, AcqRel, Relaxed)
                .is_ok()
        {
            let more = self.since.swap(0, AcqRel);
            if more > 0 {
                eprintln!("warden serve: {more} more lines like the next in the second before (warden_serve_clients_refused_total and warden_serve_disconnects_total count every one)");
            }
            eprintln!("warden serve: {line}");
        } else {
            self.since.fetch_add(1, Relaxed);
        }
    }
}

impl Admission {
    /// Whether a client with these credentials may connect; `Err` says why not.
    fn admit(&self, uid: u32, gid: u32) -> Result<(), String> {
        let ok = if self.cfg.uids.is_empty() && self.cfg.gids.is_empty() {
            uid == self.own_uid
        } else {
            self.cfg.uids.contains(&uid) || self.cfg.gids.contains(&gid)
        };
        if !ok {
            return Err(format!(
                "uid {uid} (gid {gid}) may not connect: the server admits {} (serve.uids, serve.gids)",
                if self.cfg.uids.is_empty() && self.cfg.gids.is_empty() {
                    format!("only its own uid {}", self.own_uid)
                } else {
                    format!("uids {:?} and gids {:?}", self.cfg.uids, self.cfg.gids)
                }
            ));
        }
        if !self.cfg.tenants.is_empty() && !self.uid_sets.contains_key(&uid) {
            return Err(format!(
                "uid {uid} has no tenants in serve.tenants, so it may ask for none"
            ));
        }
        Ok(())
    }
}

/// What SIGTERM and SIGHUP set; the accept loop polls it.
struct Signals {
    term: Arc<AtomicBool>,
    hup: Arc<AtomicBool>,
}

/// The server: the table the cores read, the clients' mappings and sockets.
pub struct Server<'e> {
    engine: &'e Engine,
    config_path: Option<PathBuf>,
    policy_override: Option<PathBuf>,
    table: Arc<Table>,
    /// Per cell: its socket and mapping while it is in use.
    conns: Vec<Option<(UnixStream, Mapping)>>,
    per_core: Vec<usize>,
    adm: Arc<Admission>,
}

/// What `run` reports when it returns.
#[derive(Debug, Default)]
pub struct Summary {
    pub clients_served: usize,
    pub requests: u64,
    pub drained_ms: u64,
}

impl<'e> Server<'e> {
    /// A server for `engine` with the `[serve]` settings of its config; `config_path` is the
    /// file SIGHUP reloads.
    pub fn new(engine: &'e Engine, config_path: Option<PathBuf>) -> Result<Server<'e>, String> {
        let cfg = engine.config().serve.clone();
        let mut tenant_sets = Vec::new();
        let mut uid_sets = std::collections::HashMap::new();
        for (uid, tenants) in &cfg.tenants {
            let uid: u32 = uid
                .parse()
                .map_err(|_| format!("serve.tenants: `{uid}` is not a uid"))?;
            tenant_sets.push(tenants.clone());
            uid_sets.insert(uid, tenant_sets.len() as u32);
        }
        let table = Arc::new(Table::new(cfg.max_clients, tenant_sets));
        engine
            .attach_ipc(table.clone())
            .map_err(|e| format!("cannot prepare the cores for shared-memory clients: {e}"))?;
        Ok(Server {
            engine,
            conns: (0..cfg.max_clients).map(|_| None).collect(),
            per_core: vec![0; engine.cores()],
            config_path,
            policy_override: None,
            table,
            adm: Arc::new(Admission {
                cfg,
                // SAFETY: geteuid cannot fail.
                own_uid: unsafe { libc::geteuid() },
                uid_sets,
                refusals: RefusalLog::default(),
            }),
        })
    }

    /// Admits or refuses one connection; whether it became a client.
    fn accept(&mut self, s: UnixStream) -> bool {
        let Ok((pid, uid, gid)) = peer_credentials(&s) else {
            return false;
        };
        if let Err(why) = self.adm.admit(uid, gid) {
            self.adm.refusals.log(
                &self.table,
                format_args!("refused a client (pid {pid}): {why}"),
            );
            return refuse_(s, &why);
        }
        let of_uid = self
            .table
            .cells
            .iter()
            .filter(|c| c.state.load(Acquire) != C_EMPTY && c.uid.load(Relaxed) == uid)
            .count();
        if of_uid >= self.adm.cfg.max_clients_per_uid {
            let why = format!(
                "uid {uid} has {of_uid} clients connected, its limit (serve.max_clients_per_uid)"
            );
            self.adm.refusals.log(
                &self.table,
                format_args!("refused a client (pid {pid}): {why}"),
            );
            return refuse_(s, &why);
        }
        let Some(ci) = self
            .table
            .cells
            .iter()
            .position(|c| c.state.load(Acquire) == C_EMPTY)
            .filter(|&i| self.conns[i].is_none())
        else {
            self.adm.refusals.log(
                &self.table,
                format_args!("refused a client (pid {pid}): serve.max_clients are connected"),
            );
            return refuse_(
                s,
                &format!(
                    "the server has {} clients, its limit (serve.max_clients)",
                    self.adm.cfg.max_clients
                ),
            );
        };
        let g = Geometry {
            slots: self.adm.cfg.slots_per_client,
            slot_bytes: self.adm.cfg.slot_bytes,
        };
        let mut m = match map_client(
            g,
            ci as u32,
            self.adm.cfg.client_spin_us.saturating_mul(1000),
        ) {
            Ok(m) => m,
            Err(e) => {
                return refuse_(
                    s,
                    &format!("the server could not make the client's memory: {e}"),
                )
            }
        };
        let home = (0..self.per_core.len())
            .min_by_key(|&c| self.per_core[c])
            .unwrap_or(0);
        let cell = &self.table.cells[ci];
        cell.base.store(m.base, Release);
        cell.bytes.store(m.bytes, Release);
        cell.slots.store(g.slots, Relaxed);
        cell.slot_bytes.store(g.slot_bytes, Relaxed);
        cell.head.store(0, Relaxed);
        for w in cell.inflight.iter() {
            w.store(0, Relaxed);
        }
        cell.pending.store(0, Relaxed);
        cell.active.store(0, Relaxed);
        // Not yet acknowledged for this incarnation (the ack is generation + 1).
        cell.home_stopped
            .store(cell.generation.load(Relaxed), Relaxed);
        cell.counters.reset();
        cell.fault.store(0, Relaxed);
        cell.wake_fd.store(m.wake.as_raw_fd(), Relaxed);
        cell.uid.store(uid, Relaxed);
        cell.pid.store(pid, Relaxed);
        cell.tenants.store(
            if self.adm.cfg.tenants.is_empty() {
                0
            } else {
                self.adm.uid_sets[&uid]
            },
            Relaxed,
        );
        cell.home.store(home as u32, Relaxed);
        // SAFETY: the mapping is ours and live (`m`); the header page is inside it.
        let hdr = unsafe { shm::Shm::new(m.base, m.bytes) };
        hdr.u32_at(shm::H_HOME_CPU).store(
            self.engine
                .core_cpus()
                .get(home)
                .map_or(u32::MAX, |&c| c as u32),
            Relaxed,
        );
        // Live before anything can wake the core for it: a client that shuts its wake-up end
        // down at once is then closed by the core (not lost before the cell was live). From
        // here the cell is handed to `reap` whatever happens, which finishes it properly.
        cell.state.store(C_LIVE, Release);
        self.per_core[home] += 1;
        let wake = m.wake.as_raw_fd();
        let ok = match epoll_add(
            self.engine.core_epoll_fd(home),
            wake,
            crate::engine::ipc_wake_data(ci, cell.generation.load(Relaxed), wake),
        ) {
            Err(e) => {
                eprintln!("warden serve: cannot watch a client's wake-up socket: {e}");
                false
            }
            Ok(()) => {
                let mut hello = HELLO.to_vec();
                hello.extend_from_slice(&shm::VERSION.to_le_bytes());
                hello.extend_from_slice(&(m.bytes as u64).to_le_bytes());
                let sent = match &m.client_wake {
                    Some(w) => send_fds(&s, &hello, &[m.memfd.as_raw_fd(), w.as_raw_fd()]).is_ok(),
                    None => false,
                };
                // The client holds its end now: the server keeps none of it, so a client that
                // closes its end is seen (EOF) like one that shuts it down.
                m.client_wake = None;
                sent
            }
        };
        if ok {
            self.table.counters.accepted.fetch_add(1, Relaxed);
        } else {
            cell.close(Fault::Hangup);
        }
        let _ = s.set_nonblocking(true);
        self.conns[ci] = Some((s, m));
        ok
    }

    /// Marks clients whose socket hung up as closing, and finishes closing those whose
    /// requests have all been answered.
    fn reap(&mut self) {
        for ci in 0..self.conns.len() {
            let Some((s, _)) = &self.conns[ci] else {
                continue;
            };
            let cell = &self.table.cells[ci];
            if cell.state.load(Acquire) == C_LIVE && hung_up(s) {
                cell.close(Fault::Hangup);
            }
            if cell.state.load(Acquire) == C_CLOSING {
                let home = cell.home.load(Relaxed) as usize;
                if cell.home_stopped.load(Acquire) != cell.generation.load(Relaxed).wrapping_add(1)
                {
                    self.engine.wake_core(home);
                    continue;
                }
                if cell.pending.load(SeqCst) != 0 || cell.active.load(SeqCst) != 0 {
                    continue;
                }
                self.finish(ci);
            }
        }
    }

    /// Takes a closed client out: nothing will touch its memory any more (CLOSING, the home
    /// core stopped, nothing pending, no delivery active).
    fn finish(&mut self, ci: usize) {
        let cell = &self.table.cells[ci];
        let Some((s, m)) = self.conns[ci].take() else {
            return;
        };
        let home = cell.home.load(Relaxed) as usize;
        let mut fault = Fault::from_code(cell.fault.load(Acquire));
        // A client that exits closes both its sockets; the core may see the wake-up end first.
        if fault == Fault::WakeClosed && hung_up(&s) {
            fault = Fault::Hangup;
        }
        if !matches!(fault, Fault::Hangup | Fault::Shutdown) {
            self.adm.refusals.note(format_args!(
                "disconnected client {ci} (pid {}, uid {}): {}",
                cell.pid.load(Relaxed),
                cell.uid.load(Relaxed),
                fault.name()
            ));
        }
        self.table.counters.disconnects[fault as usize].fetch_add(1, Relaxed);
        // SAFETY: removes a descriptor we own from the core's epoll set (an error only means
        // it was not there).
        unsafe {
            libc::epoll_ctl(
                self.engine.core_epoll_fd(home),
                libc::EPOLL_CTL_DEL,
                m.wake.as_raw_fd(),
                std::ptr::null_mut(),
            )
        };
        cell.wake_fd.store(-1, Relaxed);
        cell.base.store(std::ptr::null_mut(), Release);
        cell.bytes.store(0, Release);
        drop(m);
        drop(s);
        cell.generation.fetch_add(1, AcqRel);
        self.per_core[home] = self.per_core[home].saturating_sub(1);
        cell.state.store(C_EMPTY, Release);
    }

    /// Reload on SIGHUP the policy file `path` rather than the config file's `policy.file`
    /// (`warden serve --policy FILE`).
    pub fn policy_override(mut self, path: Option<PathBuf>) -> Self {
        self.policy_override = path;
        self
    }

    /// SIGHUP: checks the config file again and reloads the policy (`--policy`, else the config
    /// file's), atomically (the epoch is bumped); a file that fails to load is reported and
    /// the running policy kept.
    fn reload(&self) {
        let file = match (&self.policy_override, &self.config_path) {
            (Some(p), None) => p.clone(),
            (over, Some(path)) => match crate::config::Config::load(path) {
                Ok(c) => over.clone().unwrap_or_else(|| PathBuf::from(c.policy.file)),
                Err(e) => {
                    self.table.counters.reload_failures.fetch_add(1, Relaxed);
                    return eprintln!("warden serve: SIGHUP: {e}; keeping the running config");
                }
            },
            (None, None) => PathBuf::new(),
        };
        if file.as_os_str().is_empty() {
            return eprintln!(
                "warden serve: SIGHUP: no policy file to reload (give --policy or policy.file)"
            );
        }
        match self.engine.reload_policy(&file) {
            Ok(epoch) => {
                self.table.counters.reloads.fetch_add(1, Relaxed);
                eprintln!(
                    "warden serve: SIGHUP: policy {} reloaded, epoch {epoch}",
                    file.display()
                )
            }
            Err(e) => {
                self.table.counters.reload_failures.fetch_add(1, Relaxed);
                eprintln!("warden serve: SIGHUP: {e}; keeping the running policy")
            }
        }
    }

    /// Serves until SIGTERM or SIGINT: accepts clients on `serve.socket`, runs the stream
    /// socket and the metrics endpoint if configured (`metrics` overrides `serve.metrics`),
    /// reloads on SIGHUP. On SIGTERM it stops accepting, answers every request clients put on
    /// their rings before the signal, answers later ones `shutting_down`, waits until nothing
    /// is in flight (at most `drain`), disconnects the clients and returns.
    pub fn run(
        &mut self,
        metrics: Option<&str>,
        drain: Duration,
        ready: impl FnOnce(&Path),
    ) -> Result<Summary, String> {
        let metrics_addr = metrics
            .map(str::to_string)
            .or_else(|| Some(self.adm.cfg.metrics.clone()).filter(|m| !m.is_empty()));
        // The metrics port first: a server that cannot start leaves no socket file behind.
        let http = match &metrics_addr {
            Some(a) => {
                let addr = loopback(a)?;
                let l = std::net::TcpListener::bind(addr)
                    .and_then(|l| l.set_nonblocking(true).map(|()| l))
                    .map_err(|e| format!("cannot serve metrics on {a}: {e}"))?;
                Some(l)
            }
            None => None,
        };
        let path = PathBuf::from(&self.adm.cfg.socket);
        let listener = bind(&path)?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let sig = Signals {
            term: Arc::new(AtomicBool::new(false)),
            hup: Arc::new(AtomicBool::new(false)),
        };
        for s in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            signal_hook::flag::register(s, sig.term.clone()).map_err(|e| e.to_string())?;
        }
        signal_hook::flag::register(signal_hook::consts::SIGHUP, sig.hup.clone())
            .map_err(|e| e.to_string())?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut summary = Summary::default();
        let stream = if self.adm.cfg.stream_socket.is_empty() {
            None
        } else {
            Some(bind(Path::new(&self.adm.cfg.stream_socket))?)
        };
        std::thread::scope(|scope| -> Result<(), String> {
            if let Some(h) = &http {
                let engine = self.engine;
                let table = self.table.clone();
                let stop = stop.clone();
                scope.spawn(move || serve_metrics(h, engine, &table, &stop));
            }
            if let Some(l) = &stream {
                let handle = self.engine.handle();
                let adm = self.adm.clone();
                let table = self.table.clone();
                let stop = stop.clone();
                scope.spawn(move || stream_accept(l, handle, &adm, &table, &stop));
            }
            ready(&path);
            let mut served = 0usize;
            while !sig.term.load(SeqCst) {
                if sig.hup.swap(false, SeqCst) {
                    self.reload();
                }
                let mut busy = false;
                // At most 64 connections a turn, so a flood of them cannot keep the loop from
                // reaping clients or seeing a signal.
                for _ in 0..64 {
                    let Ok((s, _)) = listener.accept() else { break };
                    let _ = s.set_nonblocking(false);
                    if self.accept(s) {
                        served += 1;
                    }
                    busy = true;
                }
                self.reap();
                if !busy {
                    wait_readable(listener.as_raw_fd(), 5);
                }
            }
            // SIGTERM: stop accepting.
            drop(listener);
            let _ = std::fs::remove_file(&path);
            stop.store(true, SeqCst);
            if let Some(l) = &stream {
                // SAFETY: shuts the listening socket down so its blocking accept returns.
                unsafe { libc::shutdown(l.as_raw_fd(), libc::SHUT_RDWR) };
                let _ = std::fs::remove_file(&self.adm.cfg.stream_socket);
            }
            let t0 = Instant::now();
            // Every request on a ring before the signal is served in full.
            let marks: Vec<Option<u32>> = self
                .table
                .cells
                .iter()
                .map(|c| {
                    (c.state.load(Acquire) == C_LIVE)
                        .then(|| c.shm().u32_at(shm::H_TAIL).load(Acquire))
                })
                .collect();
            while t0.elapsed() < drain {
                let behind = self.table.cells.iter().zip(&marks).any(|(c, m)| {
                    m.is_some_and(|tail| {
                        c.state.load(Acquire) == C_LIVE
                            && (tail.wrapping_sub(c.head.load(Acquire)) as i32) > 0
                    })
                });
                if !behind {
                    break;
                }
                self.reap();
                std::thread::sleep(Duration::from_micros(200));
            }
            // Later ones are answered `shutting_down`; wait for what is in flight.
            self.table.draining.store(true, SeqCst);
            while t0.elapsed() < drain
                && self
                    .table
                    .cells
                    .iter()
                    .any(|c| c.state.load(Acquire) != C_EMPTY && c.pending.load(SeqCst) != 0)
            {
                self.reap();
                std::thread::sleep(Duration::from_micros(200));
            }
            for c in self.table.cells.iter() {
                c.close(Fault::Shutdown);
            }
            while t0.elapsed() < drain + Duration::from_secs(1)
                && self.conns.iter().any(Option::is_some)
            {
                for core in 0..self.per_core.len() {
                    self.engine.wake_core(core);
                }
                self.reap();
                std::thread::sleep(Duration::from_micros(200));
            }
            summary.drained_ms = t0.elapsed().as_millis() as u64;
            summary.clients_served = served;
            summary.requests = self
                .table
                .cells
                .iter()
                .map(|c| c.counters.requests.load(Relaxed))
                .sum();
            Ok(())
        })?;
        Ok(summary)
    }
}

/// Whether the client's connection is gone. Anything the client sends on it after the hello
/// means nothing and is read and dropped (a peek would see those bytes for ever and never the
/// end of the stream).
impl Drop for Server<'_> {
    /// A client not finished yet may still get a verdict from a core (the table stays attached
    /// to the engine): its memory is left mapped rather than pulled from under the core. The
    /// cells are closed, so nothing new is taken from their rings.
    fn drop(&mut self) {
        for (ci, c) in self.conns.iter_mut().enumerate() {
            if let Some((_, m)) = c.take() {
                self.table.cells[ci].close(Fault::Shutdown);
                std::mem::forget(m);
            }
        }
    }
}

fn hung_up(s: &UnixStream) -> bool {
    let mut b = [0u8; 256];
    // SAFETY: a non-blocking receive into a live buffer of the size given.
    let n = unsafe {
        libc::recv(
            s.as_raw_fd(),
            b.as_mut_ptr().cast(),
            b.len(),
            libc::MSG_DONTWAIT,
        )
    };
    n == 0 || (n < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::WouldBlock)
}

fn wait_readable(fd: RawFd, ms: i32) {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one live pollfd.
    unsafe { libc::poll(&mut p, 1, ms) };
}

/// The per-client counters in Prometheus text format.
pub fn client_metrics(t: &Table) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let mut live = 0;
    type Counter = (&'static str, &'static str, fn(&Cell) -> u64);
    let names: [Counter; 6] = [
        ("requests", "requests taken off the client's ring", |c| {
            c.counters.requests.load(Relaxed)
        }),
        (
            "verdicts",
            "verdicts written into the client's slots",
            |c| c.counters.verdicts.load(Relaxed),
        ),
        ("denied", "verdicts that deny", |c| {
            c.counters.denied.load(Relaxed)
        }),
        ("malformed", "requests that did not decode", |c| {
            c.counters.malformed.load(Relaxed)
        }),
        (
            "tenant_refused",
            "requests for a tenant the client's uid may not use",
            |c| c.counters.tenant_refused.load(Relaxed),
        ),
        (
            "wakeups",
            "futex wake-ups of the client's sleeping waiters",
            |c| c.counters.wakeups_sent.load(Relaxed),
        ),
    ];
    for (name, help, get) in names {
        let _ = writeln!(out, "# HELP warden_client_{name}_total {help}");
        let _ = writeln!(out, "# TYPE warden_client_{name}_total counter");
        for (i, c) in t.cells.iter().enumerate() {
            if c.state.load(Acquire) != C_EMPTY {
                let _ = writeln!(
                    out,
                    "warden_client_{name}_total{{client=\"{i}\",pid=\"{}\",uid=\"{}\"}} {}",
                    c.pid.load(Relaxed),
                    c.uid.load(Relaxed),
                    get(c)
                );
            }
        }
    }
    for c in t.cells.iter() {
        if c.state.load(Acquire) == C_LIVE {
            live += 1;
        }
    }
    let _ = writeln!(out, "# HELP warden_clients shared-memory clients connected");
    let _ = writeln!(out, "# TYPE warden_clients gauge");
    let _ = writeln!(out, "warden_clients {live}");
    let k = &t.counters;
    for (name, help, v) in [
        (
            "serve_clients_accepted",
            "clients admitted since start",
            &k.accepted,
        ),
        (
            "serve_clients_refused",
            "clients refused (uid, tenants, server full)",
            &k.refused,
        ),
        (
            "serve_reloads",
            "SIGHUP policy reloads that landed",
            &k.reloads,
        ),
        (
            "serve_reload_failures",
            "SIGHUP reloads refused (the old policy kept)",
            &k.reload_failures,
        ),
    ] {
        let _ = writeln!(out, "# HELP warden_{name}_total {help}");
        let _ = writeln!(out, "# TYPE warden_{name}_total counter");
        let _ = writeln!(out, "warden_{name}_total {}", v.load(Relaxed));
    }
    let _ = writeln!(
        out,
        "# HELP warden_serve_disconnects_total clients that left, by why"
    );
    let _ = writeln!(out, "# TYPE warden_serve_disconnects_total counter");
    for (i, v) in k.disconnects.iter().enumerate().skip(1) {
        let _ = writeln!(
            out,
            "warden_serve_disconnects_total{{why=\"{}\"}} {}",
            Fault::from_code(i as u32).name(),
            v.load(Relaxed)
        );
    }
    out
}

/// Bytes of a metrics request (line and headers) read at most, and how long a connection may
/// take to send them: a scrape is one short GET.
const METRICS_REQUEST_BYTES: usize = 8192;
const METRICS_DEADLINE: Duration = Duration::from_secs(2);

/// Metrics connections served at once; one more is answered 503 at once.
const METRICS_CONNECTIONS: usize = 32;

/// The metrics endpoint: up to `METRICS_CONNECTIONS` connections at once, each on a thread of
/// its own with its request read bounded in bytes and time and parsed by httparse; `GET
/// /metrics` is answered with the Prometheus text, anything else with an error status; then
/// the connection is closed. (tiny_http, tried first, buffers a header line without bound: a
/// review grew the server to 2.6 GB through it; served one at a time, idle connections queued
/// a scrape for a minute.)
fn serve_metrics(l: &std::net::TcpListener, engine: &Engine, t: &Table, stop: &AtomicBool) {
    let open = AtomicUsize::new(0);
    std::thread::scope(|sc| {
        while !stop.load(SeqCst) {
            let mut s = match l.accept() {
                Ok((s, _)) => s,
                Err(_) => {
                    wait_readable(l.as_raw_fd(), 100);
                    continue;
                }
            };
            let _ = s.set_nonblocking(false);
            let _ = s.set_write_timeout(Some(METRICS_DEADLINE));
            if open.load(SeqCst) >= METRICS_CONNECTIONS {
                let _ = s.write_all(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                continue;
            }
            open.fetch_add(1, SeqCst);
            let open = &open;
            sc.spawn(move || {
                let (status, body) = match read_metrics_request(&mut s) {
                    Ok(true) => {
                        let mut body = engine.metrics().prometheus();
                        body.push_str(&client_metrics(t));
                        ("200 OK", body)
                    }
                    Ok(false) => ("404 Not Found", "warden serves GET /metrics only\n".to_string()),
                    Err(status) => (status, String::new()),
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes());
                let _ = s.write_all(body.as_bytes());
                open.fetch_sub(1, SeqCst);
            });
        }
    });
}

/// Reads one request, at most `METRICS_REQUEST_BYTES` within `METRICS_DEADLINE`: whether it is
/// `GET /metrics`, or the status to refuse it with.
fn read_metrics_request(s: &mut std::net::TcpStream) -> Result<bool, &'static str> {
    let until = Instant::now() + METRICS_DEADLINE;
    let mut buf = [0u8; METRICS_REQUEST_BYTES];
    let mut n = 0;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("408 Request Timeout");
        }
        let _ = s.set_read_timeout(Some(left));
        match s.read(&mut buf[n..]) {
            Ok(0) => return Err("400 Bad Request"),
            Ok(k) => n += k,
            Err(_) => return Err("408 Request Timeout"),
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf[..n]) {
            Ok(httparse::Status::Complete(_)) => {
                return Ok(req.method == Some("GET") && req.path == Some("/metrics"));
            }
            Ok(httparse::Status::Partial) if n < buf.len() => {}
            Ok(httparse::Status::Partial) => return Err("431 Request Header Fields Too Large"),
            Err(_) => return Err("400 Bad Request"),
        }
    }
}

/// The stream-socket protocol: a thread per connection (at most `serve.max_clients`).
fn stream_accept(
    l: &UnixListener,
    handle: Handle,
    server: &Admission,
    table: &Table,
    stop: &AtomicBool,
) {
    let open = Arc::new(AtomicUsize::new(0));
    // Stream connections per uid (control plane: a lock is fine here).
    let per_uid = Arc::new(std::sync::Mutex::new(
        std::collections::HashMap::<u32, usize>::new(),
    ));
    std::thread::scope(|scope| {
        for s in l.incoming() {
            if stop.load(SeqCst) {
                break;
            }
            let Ok(s) = s else { continue };
            let Ok((_, uid, gid)) = peer_credentials(&s) else {
                continue;
            };
            if let Err(why) = server.admit(uid, gid) {
                server.refusals.log(
                    table,
                    format_args!("refused a stream client of uid {uid}: {why}"),
                );
                refuse(s, &why);
                continue;
            }
            if open.load(SeqCst) >= server.cfg.max_clients {
                server.refusals.log(
                    table,
                    format_args!("refused a stream client of uid {uid}: serve.max_clients connections are open"),
                );
                refuse(s, "the stream socket has serve.max_clients connections");
                continue;
            }
            {
                let mut per = per_uid.lock().unwrap_or_else(|e| e.into_inner());
                let n = per.entry(uid).or_insert(0);
                if *n >= server.cfg.max_clients_per_uid {
                    server.refusals.log(
                        table,
                        format_args!("refused a stream client of uid {uid}: serve.max_clients_per_uid connections are open"),
                    );
                    refuse(
                        s,
                        "this uid has serve.max_clients_per_uid stream connections open",
                    );
                    continue;
                }
                *n += 1;
            }
            open.fetch_add(1, SeqCst);
            let handle = handle.clone();
            let open = open.clone();
            let per_uid = per_uid.clone();
            let tenants = if server.cfg.tenants.is_empty() {
                None
            } else {
                server
                    .cfg
                    .tenants
                    .get(&uid.to_string())
                    .cloned()
                    .or(Some(Vec::new()))
            };
            let max = server.cfg.slot_bytes as usize;
            scope.spawn(move || {
                let _ = stream_conn(s, &handle, tenants.as_deref(), max, stop);
                open.fetch_sub(1, SeqCst);
                if let Some(n) = per_uid
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_mut(&uid)
                {
                    *n = n.saturating_sub(1);
                }
            });
        }
    });
}

fn stream_conn(
    mut s: UnixStream,
    handle: &Handle,
    tenants: Option<&[String]>,
    max: usize,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; max];
    s.set_read_timeout(Some(Duration::from_millis(200)))?;
    // A client that never reads its verdicts cannot hold this thread (and so a SIGTERM) for
    // longer than this.
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    loop {
        // The length prefix, kept across read timeouts (a prefix split over 200 ms would
        // otherwise lose its first bytes and the framing with them).
        let mut len = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match s.read(&mut len[got..]) {
                Ok(0) => return Ok(()),
                Ok(k) => got += k,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) =>
                {
                    if stop.load(SeqCst) {
                        return Ok(());
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let n = u32::from_le_bytes(len) as usize;
        let v = if n > max {
            // Too long to read: answer, then close (the rest of the frame cannot be skipped
            // safely without reading it all).
            write_verdict(&mut s, &Verdict::deny(DenyReason::ContentTooLarge))?;
            return Ok(());
        } else {
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.read_exact(&mut buf[..n])?;
            s.set_read_timeout(Some(Duration::from_millis(200)))?;
            match Request::decode(&buf[..n]) {
                Err(r) => Verdict::deny(r),
                Ok(r) if tenants.is_some_and(|t| !t.iter().any(|x| x == r.tenant)) => {
                    Verdict::deny(DenyReason::TenantNotPermitted)
                }
                Ok(r) => handle.validate(&r),
            }
        };
        write_verdict(&mut s, &v)?;
    }
}

fn write_verdict(s: &mut UnixStream, v: &Verdict) -> std::io::Result<()> {
    let mut out = [0u8; 4 + shm::VERDICT_BYTES];
    out[..4].copy_from_slice(&(shm::VERDICT_BYTES as u32).to_le_bytes());
    out[4..].copy_from_slice(&shm::encode_verdict(v));
    s.write_all(&out)
}
