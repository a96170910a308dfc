//! Segment files: create, open (verifying the whole log), append, rotate, recover a torn tail,
//! verify, archive.
//!
//! A log is a directory of segments `segment-00000001.wal`, `segment-00000002.wal`, ... Each
//! starts with a 64-byte header (magic `WDNAUDT1`, segment index, first sequence number, the
//! chain hash the segment continues from, 8 reserved bytes) followed by framed records
//! (`record.rs`). `HEAD` holds the latest signed checkpoint (sequence number, chain head,
//! signature: 104 bytes), replaced atomically (write, fsync, rename); `signing.pub` the key that
//! verifies the checkpoints. Whoever appends holds an `flock` on the directory.
//!
//! Invariants:
//! - records are only appended; a batch is written with one `write_all` and, in the durable
//!   modes, made durable with one `fdatasync` before anything in it is acknowledged; a failed
//!   write is rolled back (`set_len` to the size before the batch) so the file never holds half
//!   a batch that a later batch follows;
//! - a new log begins with a signed checkpoint and its `HEAD`, so a log without `HEAD` is a
//!   damaged log, never a new one; a directory that still holds a log's public key but neither
//!   segments nor `HEAD` is a removed log, and refuses to start;
//! - a start never makes a damaged log verify again: it verifies the whole log first (every
//!   segment, frame, hash link, checkpoint signature) and requires `HEAD`'s checkpoint in it;
//!   the only thing it repairs is a torn tail, which is bytes after the last complete record of
//!   the last segment, past `HEAD`'s checkpoint; anything else refuses to start, with a message
//!   that says to run `warden audit verify` and `warden audit archive`;
//! - every read is bounded (`HEAD` at 104 bytes, a segment at `MAX_SEGMENT_FILE_BYTES`), reads
//!   no symlink, and a read error is a failure, never "absent";
//! - `archive` moves a log aside whole (with its public key) and begins a new one whose first
//!   record names the old one's head: starting afresh is deliberate and itself audited.
//!
//! Limit: records written after the checkpoint `HEAD` names (at most `checkpoint_records`
//! records or `checkpoint_ms` of them; none after a clean stop, which checkpoints) can be cut at
//! a record boundary without a trace, and `HEAD` rolled back to an older signed checkpoint with
//! the log cut to match cannot be told from that older log: only a copy of the checkpoints kept
//! elsewhere can tell.

use super::record::{self, chain, checkpoint_message, FrameError, Record};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub const HEADER_BYTES: usize = 64;
const MAGIC: &[u8; 8] = b"WDNAUDT1";
/// Bytes in `HEAD`: sequence number, chain head, signature.
pub const HEAD_BYTES: usize = 8 + 32 + 64;
/// The largest segment file warden writes: `audit.segment_bytes` (at most 1 GiB) plus one
/// batch. A bigger file is not one of its segments, and is not read.
pub const MAX_SEGMENT_FILE_BYTES: u64 = (1 << 30) + (16 << 20);

/// Why the log cannot be opened or written.
#[derive(Debug)]
pub struct AuditError {
    pub path: PathBuf,
    pub message: String,
}

impl std::fmt::Display for AuditError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}
impl std::error::Error for AuditError {}

fn err(path: &Path, message: impl Into<String>) -> AuditError {
    AuditError {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

pub fn segment_name(index: u64) -> String {
    format!("segment-{index:08}.wal")
}

/// Segment indices present in `dir`, sorted.
pub fn segments(dir: &Path) -> Result<Vec<u64>, AuditError> {
    let rd = std::fs::read_dir(dir).map_err(|e| err(dir, format!("cannot list: {e}")))?;
    let mut v = Vec::new();
    for e in rd {
        let e = e.map_err(|e| err(dir, format!("cannot list: {e}")))?;
        let Ok(n) = e.file_name().into_string() else {
            continue;
        };
        if let Some(i) = n
            .strip_prefix("segment-")
            .and_then(|r| r.strip_suffix(".wal"))
            .and_then(|r| r.parse().ok())
        {
            v.push(i);
        }
    }
    v.sort_unstable();
    Ok(v)
}

fn header(index: u64, first_seq: u64, prev: &[u8; 32]) -> [u8; HEADER_BYTES] {
    let mut h = [0u8; HEADER_BYTES];
    h[..8].copy_from_slice(MAGIC);
    h[8..16].copy_from_slice(&index.to_le_bytes());
    h[16..24].copy_from_slice(&first_seq.to_le_bytes());
    h[24..56].copy_from_slice(prev);
    h
}

fn parse_header(b: &[u8]) -> Option<(u64, u64, [u8; 32])> {
    if b.len() < HEADER_BYTES || &b[..8] != MAGIC || b[56..HEADER_BYTES] != [0; 8] {
        return None;
    }
    let u = |i: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[i..i + 8]);
        u64::from_le_bytes(a)
    };
    let mut prev = [0u8; 32];
    prev.copy_from_slice(&b[24..56]);
    Some((u(8), u(16), prev))
}

/// Reads a regular file of at most `max` bytes, never through a symlink. `Ok(None)`: it does not
/// exist. Anything else that stops the read is an error naming what to check.
fn read_bounded(path: &Path, max: u64) -> Result<Option<Vec<u8>>, String> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read: {e}")),
    };
    if !meta.file_type().is_file() {
        return Err(format!(
            "is not a regular file (a {}); warden writes only regular files here",
            if meta.file_type().is_symlink() {
                "symlink"
            } else if meta.is_dir() {
                "directory"
            } else {
                "special file"
            }
        ));
    }
    if meta.len() > max {
        return Err(format!(
            "is {} bytes, more than warden ever writes there ({max})",
            meta.len()
        ));
    }
    let mut f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| format!("cannot open: {e}"))?;
    let mut b = Vec::with_capacity(meta.len() as usize);
    (&mut f)
        .take(max + 1)
        .read_to_end(&mut b)
        .map_err(|e| format!("cannot read: {e}"))?;
    if b.len() as u64 > max {
        return Err(format!("grew past {max} bytes while read"));
    }
    Ok(Some(b))
}

/// The checkpoint `HEAD` records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub head: [u8; 32],
    pub signature: [u8; 64],
}

impl Head {
    fn bytes(&self) -> [u8; HEAD_BYTES] {
        let mut b = [0u8; HEAD_BYTES];
        b[..8].copy_from_slice(&self.seq.to_le_bytes());
        b[8..40].copy_from_slice(&self.head);
        b[40..].copy_from_slice(&self.signature);
        b
    }
}

/// Reads `DIR/HEAD`: `Ok(None)` when there is none; an error when it cannot be read whole, is
/// not a 104-byte regular file, or its signature does not verify with `key`.
pub fn read_head(dir: &Path, key: &ed25519_dalek::VerifyingKey) -> Result<Option<Head>, String> {
    let Some(b) =
        read_bounded(&dir.join("HEAD"), HEAD_BYTES as u64).map_err(|e| format!("HEAD {e}"))?
    else {
        return Ok(None);
    };
    if b.len() != HEAD_BYTES {
        return Err(format!(
            "HEAD is malformed ({} bytes, not {HEAD_BYTES})",
            b.len()
        ));
    }
    let mut h = Head {
        seq: u64::from_le_bytes(b[..8].try_into().expect("8 bytes")),
        head: [0; 32],
        signature: [0; 64],
    };
    h.head.copy_from_slice(&b[8..40]);
    h.signature.copy_from_slice(&b[40..]);
    let sig = ed25519_dalek::Signature::from_bytes(&h.signature);
    key.verify_strict(&checkpoint_message(h.seq, &h.head), &sig)
        .map_err(|_| "HEAD has a bad signature".to_string())?;
    Ok(Some(h))
}

/// How long [`lock`] waits for a lock that is held before it refuses.
///
/// The lock belongs to an open file description, and a process that forks (any thread of the
/// embedding gateway spawning a child) hands the child a copy of it that lives until the
/// child's `exec` closes it (`O_CLOEXEC`). A log closed and opened again in that window would
/// find its own lock held. Waiting this long covers that window under load; a second writer
/// holds its lock for its whole life and is still refused, this much later.
pub const LOCK_WAIT_MS: u64 = 2_000;

/// Takes the log's lock: an `flock` on the directory itself, held as long as the returned
/// descriptor is open: one writer per log. A lock on the directory, not on a file in it, leaves
/// nothing in the directory for another user to swap for a link or a FIFO. A held lock is
/// tried again every 5 ms for [`LOCK_WAIT_MS`].
pub(crate) fn lock(dir: &Path) -> Result<File, AuditError> {
    lock_within(dir, std::time::Duration::from_millis(LOCK_WAIT_MS))
}

fn lock_within(dir: &Path, wait: std::time::Duration) -> Result<File, AuditError> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .map_err(|e| err(dir, format!("cannot open the directory to lock it: {e}")))?;
    use std::os::fd::AsRawFd;
    let deadline = std::time::Instant::now() + wait;
    loop {
        // SAFETY: flock on a descriptor we own; no memory is passed.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(f);
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EWOULDBLOCK) | Some(libc::EINTR) => {}
            _ => return Err(err(dir, format!("cannot lock the directory: {e}"))),
        }
        if std::time::Instant::now() >= deadline {
            return Err(err(
                dir,
                format!(
                    "another warden process is writing this audit log (its lock was held for \
                     {} ms); stop it, or give this process its own log directory",
                    wait.as_millis()
                ),
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// What a directory holds of a log, looked at before anything is written to it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traces {
    pub segments: bool,
    pub head: bool,
    pub public_key: bool,
    /// `DIR/signing.key`, which warden makes with a log's first start.
    pub key: bool,
}

impl Traces {
    pub fn of(dir: &Path) -> Result<Traces, AuditError> {
        let exists = |n: &str| std::fs::symlink_metadata(dir.join(n)).is_ok();
        Ok(Traces {
            segments: !segments(dir)?.is_empty(),
            head: exists("HEAD"),
            public_key: exists("signing.pub"),
            key: exists("signing.key"),
        })
    }
}

const WHAT_TO_DO: &str = "run `warden audit verify` on it to see what is damaged; to keep it as evidence and begin a new log, run `warden audit archive` on the directory (the new log's first record names the old one)";

/// What recovery found when the log was opened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Records in the log that verified.
    pub records: u64,
    /// Bytes of a torn tail that were cut off (0: none).
    pub torn_bytes: u64,
    /// Whether this start created the log.
    pub created: bool,
    /// Records found after the log's last signed checkpoint (an unclean stop, or records
    /// someone appended): a start marks them with a record that names them, then signs.
    pub unsigned: u64,
}

/// An open log, positioned at its end.
pub struct Log {
    dir: PathBuf,
    file: File,
    path: PathBuf,
    segment: u64,
    /// Bytes in the current segment that are written (and, in durable modes, durable).
    len: u64,
    segment_bytes: u64,
    /// The sequence number after everything written.
    written_seq: u64,
    head: [u8; 32],
    /// Staged, not yet written records and the chain state after them.
    buf: Vec<u8>,
    staged_head: [u8; 32],
    staged_seq: u64,
    pub recovery: Recovery,
    _lock: File,
}

/// Signs checkpoint messages: `None` when it cannot now.
pub type Sign<'a> = &'a dyn Fn(&[u8]) -> Option<[u8; 64]>;

impl Log {
    /// Opens the log in `dir` for appending, or creates one where the directory holds none.
    /// `key` verifies the checkpoints (`sign`'s public half); `before` is what the directory
    /// held before this start wrote anything (its key files included).
    pub fn open_with(
        dir: &Path,
        segment_bytes: u64,
        key: &ed25519_dalek::VerifyingKey,
        sign: Sign<'_>,
        before: Traces,
    ) -> Result<Log, AuditError> {
        std::fs::create_dir_all(dir).map_err(|e| err(dir, format!("cannot create: {e}")))?;
        let lock = lock(dir)?;
        clear_head_tmp(dir)?;
        let now = Traces::of(dir)?;
        if !now.segments && !now.head {
            if before.public_key || before.key {
                return Err(err(
                    dir,
                    format!("holds the key of an audit log but neither its segments nor its HEAD: the log was removed; {WHAT_TO_DO}"),
                ));
            }
            return Log::create(dir, segment_bytes, key, sign, None, lock);
        }
        if !now.segments {
            return Err(err(
                dir,
                format!("has a HEAD but every segment is gone: the log was removed; {WHAT_TO_DO}"),
            ));
        }
        let anchor = match read_head(dir, key) {
            Err(m) => return Err(err(dir, format!("{m}; {WHAT_TO_DO}"))),
            Ok(Some(h)) => h,
            Ok(None) => {
                return Err(err(
                    dir,
                    format!("has segments but no HEAD: the log's last signed checkpoint was removed (or a first start stopped while it made the log; nothing can tell the two apart, so neither is begun again silently); {WHAT_TO_DO}"),
                ))
            }
        };
        let walked = walk(
            dir,
            key,
            Some(anchor),
            true,
            &mut |_, _| {},
            &std::collections::HashMap::new(),
        )
        .map_err(|bad| {
            err(
                &bad.segment
                    .map_or(dir.to_path_buf(), |s| dir.join(segment_name(s))),
                format!("{bad}; the log is damaged, so warden does not start on it; {WHAT_TO_DO}"),
            )
        })?;
        let s = walked.summary;
        let (segment, len) = match walked.torn {
            Some(t) => {
                let path = dir.join(segment_name(t.segment));
                let f = OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&path)
                    .map_err(|e| err(&path, format!("cannot open: {e}")))?;
                f.set_len(t.offset)
                    .and_then(|_| f.sync_all())
                    .map_err(|e| err(&path, format!("cannot cut the torn tail: {e}")))?;
                (t.segment, t.offset)
            }
            None => (s.last_segment, s.last_segment_bytes),
        };
        let path = dir.join(segment_name(segment));
        let file = OpenOptions::new()
            .append(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| err(&path, format!("cannot open for append: {e}")))?;
        let unsigned = s.last_seq - s.last_checkpoint_seq;
        let mut log = Log {
            dir: dir.to_path_buf(),
            file,
            path,
            segment,
            len,
            segment_bytes: segment_bytes.max(HEADER_BYTES as u64 + 1024),
            written_seq: s.last_seq + 1,
            head: s.head,
            buf: Vec::with_capacity(1 << 20),
            staged_head: s.head,
            staged_seq: s.last_seq + 1,
            recovery: Recovery {
                records: s.last_seq,
                torn_bytes: walked.torn.map_or(0, |t| t.bytes),
                created: false,
                unsigned,
            },
            _lock: lock,
        };
        if unsigned > 0 {
            // Records after the last signed checkpoint are vouched for by nothing but the
            // unkeyed chain, which anyone who can write the files can extend. Before this
            // start's checkpoint signs them, a record says which they are, so a signature
            // made now is never read as one made when they were written.
            let what = format!(
                "records {}..={} follow checkpoint {} unsigned (an unclean stop, or records appended by someone else): no signature made when they were written vouches for them; chain head {}",
                s.last_checkpoint_seq + 1,
                s.last_seq,
                s.last_checkpoint_seq,
                crate::secrets::to_hex(&s.head)
            );
            let now = crate::time::wall_ns();
            log.stage_event(&warden_event(now, "audit_unsigned_tail", &what));
            let (seq, head, sig) = log.stage_checkpoint_with(sign, now).ok_or_else(|| {
                err(
                    dir,
                    "cannot sign the checkpoint that marks the unsigned records after the last one (the keystore refused); nothing was started",
                )
            })?;
            log.flush(true)?;
            log.write_head(seq, &head, &sig)?;
        }
        Ok(log)
    }

    /// `open_with` a software key, the directory looked at now.
    pub fn open(
        dir: &Path,
        segment_bytes: u64,
        key: &ed25519_dalek::SigningKey,
    ) -> Result<Log, AuditError> {
        use ed25519_dalek::Signer;
        let before = if dir.exists() {
            Traces::of(dir)?
        } else {
            Traces::default()
        };
        Log::open_with(
            dir,
            segment_bytes,
            &key.verifying_key(),
            &|m| Some(key.sign(m).to_bytes()),
            before,
        )
    }

    /// A new log: segment 1 with, for an archive, one event naming the old log, then a
    /// checkpoint; durable, then `HEAD`.
    pub(crate) fn create(
        dir: &Path,
        segment_bytes: u64,
        key: &ed25519_dalek::VerifyingKey,
        sign: Sign<'_>,
        origin: Option<&str>,
        lock: File,
    ) -> Result<Log, AuditError> {
        clear_head_tmp(dir)?;
        // The public key marks the directory as holding a log: with it still there, a log
        // whose segments and HEAD are gone is refused, not begun again.
        let pub_path = dir.join("signing.pub");
        if std::fs::symlink_metadata(&pub_path).is_err() {
            write_new(
                &pub_path,
                format!("{}\n", crate::secrets::to_hex(key.as_bytes())).as_bytes(),
            )?;
        }
        let path = dir.join(segment_name(1));
        let mut file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| err(&path, format!("cannot create: {e}")))?;
        file.write_all(&header(1, 1, &[0u8; 32]))
            .and_then(|_| file.sync_all())
            .map_err(|e| err(&path, format!("cannot write the header: {e}")))?;
        sync_dir(dir);
        let mut log = Log {
            dir: dir.to_path_buf(),
            file,
            path,
            segment: 1,
            len: HEADER_BYTES as u64,
            segment_bytes: segment_bytes.max(HEADER_BYTES as u64 + 1024),
            written_seq: 1,
            head: [0; 32],
            buf: Vec::with_capacity(1 << 20),
            staged_head: [0; 32],
            staged_seq: 1,
            recovery: Recovery {
                created: true,
                ..Recovery::default()
            },
            _lock: lock,
        };
        let now = crate::time::wall_ns();
        if let Some(o) = origin {
            log.stage_event(&warden_event(now, "audit_archive", o));
        }
        let (seq, head, sig) = log
            .stage_checkpoint_with(sign, now)
            .ok_or_else(|| err(dir, "cannot sign the new log's first checkpoint (the keystore refused); nothing was started"))?;
        log.flush(true)?;
        log.write_head(seq, &head, &sig)?;
        Ok(log)
    }

    /// The sequence number the next staged record gets.
    pub fn next_seq(&self) -> u64 {
        self.staged_seq
    }

    /// Records staged and not yet written.
    pub fn staged(&self) -> u64 {
        self.staged_seq - self.written_seq
    }

    pub fn staged_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Stages one event; returns its sequence number.
    pub fn stage_event(&mut self, e: &record::Event<'_>) -> u64 {
        let seq = self.staged_seq;
        self.staged_head = record::encode(
            &mut self.buf,
            &self.staged_head,
            &Record::Event { seq, event: *e },
        );
        self.staged_seq += 1;
        seq
    }

    /// Stages a checkpoint signing the chain head so far; returns (seq, head, signature).
    pub fn stage_checkpoint(
        &mut self,
        key: &ed25519_dalek::SigningKey,
        time_ns: u64,
    ) -> (u64, [u8; 32], [u8; 64]) {
        use ed25519_dalek::Signer;
        self.stage_checkpoint_with(&|m| Some(key.sign(m).to_bytes()), time_ns)
            .expect("a software key always signs")
    }

    /// Stages a checkpoint signed by `sign` (given the checkpoint message); `None` when it
    /// could not sign (an HSM that is down): nothing is staged, the next interval tries again.
    pub fn stage_checkpoint_with(
        &mut self,
        sign: Sign<'_>,
        time_ns: u64,
    ) -> Option<(u64, [u8; 32], [u8; 64])> {
        let seq = self.staged_seq;
        let head = self.staged_head;
        let signature = sign(&checkpoint_message(seq, &head))?;
        self.staged_head = record::encode(
            &mut self.buf,
            &self.staged_head,
            &Record::Checkpoint {
                seq,
                time_ns,
                head,
                signature,
            },
        );
        self.staged_seq += 1;
        Some((seq, head, signature))
    }

    /// Writes what is staged with one write; with `sync`, makes it durable. On failure the
    /// segment is cut back to its size before the batch and the staged records are dropped
    /// (the caller denies the requests they belonged to).
    pub fn flush(&mut self, sync: bool) -> Result<(), AuditError> {
        if self.buf.is_empty() {
            if sync {
                self.file
                    .sync_data()
                    .map_err(|e| err(&self.path, format!("fdatasync failed: {e}")))?;
            }
            return Ok(());
        }
        let res = self.file.write_all(&self.buf).and_then(|_| {
            if sync {
                self.file.sync_data()
            } else {
                Ok(())
            }
        });
        match res {
            Ok(()) => {
                self.len += self.buf.len() as u64;
                self.head = self.staged_head;
                self.written_seq = self.staged_seq;
                self.buf.clear();
                if self.len >= self.segment_bytes {
                    self.rotate()?;
                }
                Ok(())
            }
            Err(e) => {
                let _ = self.file.set_len(self.len);
                self.buf.clear();
                self.staged_head = self.head;
                self.staged_seq = self.written_seq;
                Err(err(
                    &self.path,
                    format!("write failed ({e}); the batch was rolled back"),
                ))
            }
        }
    }

    fn rotate(&mut self) -> Result<(), AuditError> {
        self.file
            .sync_all()
            .map_err(|e| err(&self.path, format!("fsync before rotation failed: {e}")))?;
        let next = self.segment + 1;
        let path = self.dir.join(segment_name(next));
        let mut f = OpenOptions::new()
            .create_new(true)
            .append(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| err(&path, format!("cannot create the next segment: {e}")))?;
        f.write_all(&header(next, self.written_seq, &self.head))
            .and_then(|_| f.sync_all())
            .map_err(|e| err(&path, format!("cannot write the header: {e}")))?;
        sync_dir(&self.dir);
        self.file = f;
        self.path = path;
        self.segment = next;
        self.len = HEADER_BYTES as u64;
        Ok(())
    }

    /// Records the latest checkpoint in `HEAD` (write, fsync, rename).
    pub fn write_head(&self, seq: u64, head: &[u8; 32], sig: &[u8; 64]) -> Result<(), AuditError> {
        let tmp = self.dir.join("HEAD.tmp");
        let b = Head {
            seq,
            head: *head,
            signature: *sig,
        }
        .bytes();
        let _ = std::fs::remove_file(&tmp);
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .and_then(|mut f| f.write_all(&b).and_then(|_| f.sync_all()))
            .and_then(|_| std::fs::rename(&tmp, self.dir.join("HEAD")))
            .map_err(|e| err(&tmp, format!("cannot record the checkpoint: {e}")))?;
        sync_dir(&self.dir);
        Ok(())
    }
}

/// A record warden writes of its own log (agent `warden`, operation `audit`).
fn warden_event<'a>(time_ns: u64, action: &'a str, what: &'a str) -> record::Event<'a> {
    record::Event {
        time_ns,
        latency_ns: 0,
        core: 0,
        decision: crate::types::Decision::Allow,
        reason: crate::types::DenyReason::None,
        classification: crate::types::Classification::Unclassified,
        operation: crate::types::Operation::Audit,
        origin: crate::types::ContentOrigin::Prompt,
        tenant: "",
        agent: "warden",
        tool: "",
        action,
        resource: what,
        chain: "",
    }
}

/// Removes a `HEAD.tmp` a stop left behind; one that is not a regular file (a directory, a
/// link) would make every later `HEAD` write fail, so it is refused, not worked around.
pub(crate) fn clear_head_tmp(dir: &Path) -> Result<(), AuditError> {
    let tmp = dir.join("HEAD.tmp");
    match std::fs::symlink_metadata(&tmp) {
        Err(_) => Ok(()),
        Ok(m) if m.file_type().is_file() => std::fs::remove_file(&tmp)
            .map_err(|e| err(&tmp, format!("cannot remove a stale HEAD.tmp: {e}"))),
        Ok(_) => Err(err(
            &tmp,
            "is not a regular file, so warden cannot record its checkpoints through it; remove it",
        )),
    }
}

/// Creates `path` with `bytes`, refusing to follow a symlink or replace anything there.
pub(crate) fn write_new(path: &Path, bytes: &[u8]) -> Result<(), AuditError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .and_then(|mut f| f.write_all(bytes).and_then(|_| f.sync_all()))
        .map_err(|e| err(path, format!("cannot create: {e}")))
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// The result of verifying a log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub segments: usize,
    pub events: u64,
    pub checkpoints: u64,
    pub last_seq: u64,
    pub last_checkpoint_seq: u64,
    /// The chain head the last checkpoint signs: with `last_checkpoint_seq`, what to copy
    /// elsewhere and give `verify_pinned` later.
    pub last_checkpoint_head: [u8; 32],
    pub head: [u8; 32],
    /// The checkpoint `HEAD` names.
    pub anchor_seq: u64,
    pub last_segment: u64,
    pub last_segment_bytes: u64,
}

/// The first bad place in a log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bad {
    pub segment: Option<u64>,
    pub offset: u64,
    pub seq: u64,
    pub what: String,
}

impl std::fmt::Display for Bad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.segment {
            Some(s) => write!(
                f,
                "{} byte {} (record seq {}): {}",
                segment_name(s),
                self.offset,
                self.seq,
                self.what
            ),
            None => write!(f, "seq {}: {}", self.seq, self.what),
        }
    }
}

/// Where a torn tail starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Torn {
    segment: u64,
    offset: u64,
    bytes: u64,
}

struct Walked {
    summary: Summary,
    torn: Option<Torn>,
}

/// Verifies every segment, every record, every checkpoint signature (against `key`), and the
/// `HEAD` anchor, which must be there whenever the log is. `visit` sees each event in order
/// (for `tail`). A torn tail (an unclean stop) is reported as damage here; a start cuts it.
pub fn verify(
    dir: &Path,
    key: &ed25519_dalek::VerifyingKey,
    visit: impl FnMut(u64, &record::Event<'_>),
) -> Result<Summary, Bad> {
    verify_pinned(dir, key, visit, None)
}

/// `verify`, and the log must hold the checkpoint `pinned` (sequence number, chain head), one a
/// person or another system copied elsewhere earlier: a log rolled back or replaced wholesale
/// (even under the same key) lacks it.
pub fn verify_pinned(
    dir: &Path,
    key: &ed25519_dalek::VerifyingKey,
    visit: impl FnMut(u64, &record::Event<'_>),
    pinned: Option<(u64, [u8; 32])>,
) -> Result<Summary, Bad> {
    verify_pinned_all(dir, key, visit, pinned.as_slice())
}

/// `verify_pinned` with many pins (every checkpoint a node published to its fleet): the log
/// must hold each. A log rolled back and grown again past the highest still lacks those of the
/// branch it lost.
pub fn verify_pinned_all(
    dir: &Path,
    key: &ed25519_dalek::VerifyingKey,
    mut visit: impl FnMut(u64, &record::Event<'_>),
    pinned: &[(u64, [u8; 32])],
) -> Result<Summary, Bad> {
    let bad = |what: String| Bad {
        segment: None,
        offset: 0,
        seq: 0,
        what,
    };
    let segs = segments(dir).map_err(|e| bad(e.to_string()))?;
    let anchor = read_head(dir, key).map_err(bad)?;
    if segs.is_empty() {
        return Err(bad(if anchor.is_some() {
            "HEAD names a checkpoint but every segment is gone (removed)".into()
        } else {
            format!("no audit log in {} (no segments, no HEAD)", dir.display())
        }));
    }
    let Some(anchor) = anchor else {
        return Err(bad(
            "HEAD is missing: every log begins with a signed checkpoint recorded in HEAD, so its removal hides how far the log went (removed)".into(),
        ));
    };
    let pins: std::collections::HashMap<u64, [u8; 32]> = pinned.iter().copied().collect();
    walk(dir, key, Some(anchor), false, &mut visit, &pins).map(|w| w.summary)
}

/// The walk under `verify` and `Log::open_with`: every segment in order, every record; with
/// `tolerate_torn`, a torn tail of the last segment past the anchor is returned, not an error.
fn walk(
    dir: &Path,
    key: &ed25519_dalek::VerifyingKey,
    anchor: Option<Head>,
    tolerate_torn: bool,
    visit: &mut dyn FnMut(u64, &record::Event<'_>),
    pinned: &std::collections::HashMap<u64, [u8; 32]>,
) -> Result<Walked, Bad> {
    let mut pinned_found = std::collections::HashSet::new();
    let bad = |segment: Option<u64>, offset: u64, seq: u64, what: String| Bad {
        segment,
        offset,
        seq,
        what,
    };
    let segs = segments(dir).map_err(|e| bad(None, 0, 0, e.to_string()))?;
    let mut s = Summary {
        segments: segs.len(),
        ..Summary::default()
    };
    let mut anchor_found = false;
    let mut torn = None;
    let (mut seq, mut h) = (1u64, [0u8; 32]);
    for (i, &index) in segs.iter().enumerate() {
        let path = dir.join(segment_name(index));
        let here = Some(index);
        let last = i + 1 == segs.len();
        if index != i as u64 + 1 {
            return Err(bad(here, 0, seq, format!("segment {} is missing", i + 1)));
        }
        let bytes = match read_bounded(&path, MAX_SEGMENT_FILE_BYTES) {
            Ok(Some(b)) => b,
            Ok(None) => return Err(bad(here, 0, seq, "vanished while read".into())),
            Err(m) => return Err(bad(here, 0, seq, m)),
        };
        let Some((hi, first, prev)) = parse_header(&bytes) else {
            return Err(bad(
                here,
                0,
                seq,
                "bad segment header (emptied, cut or replaced)".into(),
            ));
        };
        if hi != index || first != seq || prev != h {
            return Err(bad(here, 0, seq, format!(
                "segment header does not continue the chain (says first seq {first}; expected {seq}): a segment was removed, replaced or reordered"
            )));
        }
        let mut off = HEADER_BYTES;
        while off < bytes.len() {
            let rest = &bytes[off..];
            let (rec, stored, n) = match check_record(rest, &h, seq) {
                Ok(r) => r,
                Err((what, frame_len)) => {
                    // A torn tail: the last segment ends inside its last record, or in a
                    // last frame whose hash was never written (zeros: space the file system
                    // had allocated) followed by nothing but zeros, past the checkpoint HEAD
                    // names. A whole frame with a hash that is wrong but written is a record
                    // modified, not torn: damage, never cut. Anything else is damage.
                    let after = match frame_len {
                        None if what == SHORT => &rest[rest.len()..],
                        None => rest,
                        Some(n) => &rest[n - 32..],
                    };
                    if last && anchor_found && after.iter().all(|&b| b == 0) {
                        if tolerate_torn {
                            torn = Some(Torn {
                                segment: index,
                                offset: off as u64,
                                bytes: rest.len() as u64,
                            });
                            break;
                        }
                        return Err(bad(here, off as u64, seq, "a torn record at the end, after the last checkpoint HEAD names (an unclean stop); the next start cuts these bytes".into()));
                    }
                    let what = if what == SHORT {
                        "the segment ends inside a record (cut short, or damaged)".to_string()
                    } else if what == REORDERED_OR_REMOVED {
                        // reordered if the expected record comes later in this segment
                        let mut later = off;
                        let mut found = false;
                        while let Ok((p, _, m)) = record::frame(&bytes[later..]) {
                            if record::decode(p).is_ok_and(|r| r.seq() == seq) && later != off {
                                found = true;
                                break;
                            }
                            later += m;
                        }
                        let rs = record::frame(rest)
                            .ok()
                            .and_then(|(p, _, _)| record::decode(p).ok())
                            .map_or(seq, |r| r.seq());
                        if found {
                            format!(
                                "record {rs} out of order (reordered: record {seq} comes after it)"
                            )
                        } else {
                            format!("records {seq}..{} removed", rs - 1)
                        }
                    } else {
                        what.to_string()
                    };
                    return Err(bad(here, off as u64, seq, what));
                }
            };
            match &rec {
                Record::Event { event, .. } => {
                    if seq == 1 {
                        if let Some(what) = archive_problem(dir, event) {
                            return Err(bad(here, off as u64, seq, what));
                        }
                    }
                    s.events += 1;
                    visit(seq, event);
                }
                Record::Checkpoint {
                    head, signature, ..
                } => {
                    if *head != h {
                        return Err(bad(
                            here,
                            off as u64,
                            seq,
                            "checkpoint does not sign the chain head before it".into(),
                        ));
                    }
                    let sig = ed25519_dalek::Signature::from_bytes(signature);
                    if key
                        .verify_strict(&checkpoint_message(seq, head), &sig)
                        .is_err()
                    {
                        return Err(bad(
                            here,
                            off as u64,
                            seq,
                            "bad checkpoint signature".into(),
                        ));
                    }
                    s.checkpoints += 1;
                    s.last_checkpoint_seq = seq;
                    s.last_checkpoint_head = *head;
                    if let Some(ph) = pinned.get(&seq) {
                        if ph != head {
                            return Err(bad(here, off as u64, seq, "this checkpoint differs from the one pinned (--checkpoint, or one published with --fleet): the log was replaced or rolled back and rewritten".into()));
                        }
                        pinned_found.insert(seq);
                    }
                    if let Some(a) = anchor {
                        if a.seq == seq {
                            if a.head != *head {
                                return Err(bad(here, off as u64, seq, "this checkpoint differs from the one recorded in HEAD (replaced)".into()));
                            }
                            anchor_found = true;
                        }
                    }
                }
            }
            h = stored;
            s.last_seq = seq;
            seq += 1;
            off += n;
        }
        s.last_segment = index;
        s.last_segment_bytes = off as u64;
    }
    s.head = h;
    if let Some(a) = anchor {
        s.anchor_seq = a.seq;
        if !anchor_found {
            let what = if a.seq > s.last_seq {
                format!(
                    "truncated before checkpoint {} (the log ends at seq {}, its last checkpoint is {}): records were cut",
                    a.seq, s.last_seq, s.last_checkpoint_seq
                )
            } else {
                format!(
                    "HEAD names checkpoint {}, which is not a checkpoint in the log (replaced)",
                    a.seq
                )
            };
            return Err(bad(None, 0, a.seq, what));
        }
    }
    if let Some(ps) = pinned
        .keys()
        .copied()
        .filter(|p| !pinned_found.contains(p))
        .min()
    {
        return Err(bad(
            None,
            0,
            ps,
            format!("the pinned checkpoint {ps} (--checkpoint, or one published with --fleet) is not in the log: it was cut or replaced"),
        ));
    }
    Ok(Walked { summary: s, torn })
}

const SHORT: &str = "short";
const REORDERED_OR_REMOVED: &str = "reordered or removed";

/// One record at the start of `rest`, which must be record `seq` chained after `h`: the record,
/// its hash and its frame's length, or what is wrong and the frame's length when it has one.
#[allow(clippy::type_complexity)]
fn check_record<'a>(
    rest: &'a [u8],
    h: &[u8; 32],
    seq: u64,
) -> Result<(Record<'a>, [u8; 32], usize), (&'static str, Option<usize>)> {
    let (payload, stored, n) = match record::frame(rest) {
        Ok(f) => f,
        Err(FrameError::Short) => return Err((SHORT, None)),
        Err(FrameError::Malformed) => return Err(("malformed frame (modified)", None)),
    };
    let rec = record::decode(payload).map_err(|_| ("undecodable record (modified)", Some(n)))?;
    let rs = rec.seq();
    if rs > seq {
        return Err((REORDERED_OR_REMOVED, Some(n)));
    }
    if rs < seq {
        return Err(("record out of order (reordered or duplicated)", Some(n)));
    }
    if chain(h, payload) != stored {
        return Err((
            "hash mismatch: this record was modified (or one before it was replaced)",
            Some(n),
        ));
    }
    Ok((rec, stored, n))
}

/// Moves the log in `dir` aside, whole and as it is (damaged or not), into
/// `dir/archive-<time>/`: its segments, `HEAD`, public key and the archives it began from.
/// Returns the archive's path and what the new log's first record says of it: its name, its
/// segments, its `HEAD`, whether it verified, and the BLAKE3 digest of every file in it, which
/// `verify` checks so that the archive cannot be removed or changed without a trace. The caller
/// holds the lock and creates the new log.
pub(crate) fn move_aside(dir: &Path) -> Result<(PathBuf, String), AuditError> {
    let old_pub = dir.join("signing.pub");
    let old_key = match read_bounded(&old_pub, 4096) {
        Ok(Some(_)) => Some(super::load_public_key_own(&old_pub)?),
        Ok(None) => None,
        Err(m) => return Err(err(&old_pub, m)),
    };
    let (state, head) = match &old_key {
        None => (
            "no public key, not verified".to_string(),
            "HEAD not read".to_string(),
        ),
        Some(k) => (
            match verify(dir, k, |_, _| {}) {
                Ok(s) => format!(
                    "intact, {} events, head {}",
                    s.events,
                    crate::secrets::to_hex(&s.head)
                ),
                Err(b) => format!("damaged: {b}"),
            },
            match read_head(dir, k) {
                Ok(Some(h)) => format!(
                    "HEAD checkpoint {} {}",
                    h.seq,
                    crate::secrets::to_hex(&h.head)
                ),
                Ok(None) => "no HEAD".into(),
                Err(m) => m,
            },
        ),
    };
    let stamp = crate::time::wall_ns() / 1_000_000_000;
    let mut name = format!("archive-{stamp}");
    let mut n = 1;
    while std::fs::symlink_metadata(dir.join(&name)).is_ok() {
        n += 1;
        name = format!("archive-{stamp}-{n}");
    }
    let to = dir.join(&name);
    std::fs::create_dir(&to).map_err(|e| err(&to, format!("cannot create: {e}")))?;
    let mut moved = 0;
    let mut names: Vec<String> = segments(dir)?.into_iter().map(segment_name).collect();
    moved += names.len();
    names.extend(["HEAD", "HEAD.tmp", "signing.pub"].map(String::from));
    for e in std::fs::read_dir(dir).map_err(|e| err(dir, format!("cannot list: {e}")))? {
        let e = e.map_err(|e| err(dir, format!("cannot list: {e}")))?;
        if let Ok(n) = e.file_name().into_string() {
            if is_archive_name(&n) && n != name {
                names.push(n);
            }
        }
    }
    for f in names {
        let from = dir.join(&f);
        if std::fs::symlink_metadata(&from).is_ok() {
            std::fs::rename(&from, to.join(&f))
                .map_err(|e| err(&from, format!("cannot move into {name}: {e}")))?;
        }
    }
    sync_dir(&to);
    sync_dir(dir);
    let digest = tree_digest(&to).map_err(|m| err(&to, m))?;
    let origin = format!(
        "{name}: {moved} segments; {head}; {state}; digest {}",
        crate::secrets::to_hex(&digest)
    );
    Ok((to, origin))
}

/// `archive-<seconds>` or `archive-<seconds>-<n>`.
fn is_archive_name(n: &str) -> bool {
    n.strip_prefix("archive-").is_some_and(|r| {
        !r.is_empty()
            && r.split('-').count() <= 2
            && r.split('-')
                .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
    })
}

/// BLAKE3 over everything under `dir`, in path order: each regular file as its path, length
/// and bytes (read bounded), each symlink as its target (never followed), anything else (a
/// FIFO, a socket) as its kind. An archive keeps a damaged log as it found it, links included.
fn tree_digest(dir: &Path) -> Result<[u8; 32], String> {
    let mut entries = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let rd = std::fs::read_dir(dir.join(&rel)).map_err(|e| format!("cannot list: {e}"))?;
        for e in rd {
            let e = e.map_err(|e| format!("cannot list: {e}"))?;
            let t = e.file_type().map_err(|e| format!("cannot read: {e}"))?;
            let r = rel.join(e.file_name());
            if t.is_dir() {
                stack.push(r);
            } else {
                entries.push((r, t));
            }
        }
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut h = blake3::Hasher::new_derive_key("warden audit archive");
    for (f, t) in entries {
        let name = f.to_string_lossy();
        h.update(&(name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        let body: Vec<u8> = if t.is_file() {
            let mut b = b"file:".to_vec();
            b.extend(read_bounded(&dir.join(&f), MAX_SEGMENT_FILE_BYTES)?.unwrap_or_default());
            b
        } else if t.is_symlink() {
            let target =
                std::fs::read_link(dir.join(&f)).map_err(|e| format!("cannot read: {e}"))?;
            let mut b = b"link:".to_vec();
            b.extend(target.to_string_lossy().as_bytes());
            b
        } else {
            b"special".to_vec()
        };
        h.update(&(body.len() as u64).to_le_bytes());
        h.update(&body);
    }
    Ok(*h.finalize().as_bytes())
}

/// The archive a log's first record names, checked against the digest it recorded: `None` when
/// the record is not an archive's or the archive is there unchanged.
fn archive_problem(dir: &Path, e: &record::Event<'_>) -> Option<String> {
    if e.action != "audit_archive" || e.agent != "warden" {
        return None;
    }
    let name = e.resource.split(':').next().unwrap_or("");
    let want = e.resource.rsplit("digest ").next().unwrap_or("");
    if !is_archive_name(name) {
        return Some(format!(
            "the log's first record names an archive `{name}` that is no archive's name"
        ));
    }
    match tree_digest(&dir.join(name)) {
        Err(m) => Some(format!(
            "the archive this log began from, {name}, cannot be read ({m}): removed or damaged"
        )),
        Ok(d) if crate::secrets::to_hex(&d) != want => Some(format!(
            "the archive this log began from, {name}, was changed since (its digest differs)"
        )),
        Ok(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A copy of the lock's descriptor outliving the writer (a forked child before its `exec`)
    /// delays the next open; it does not refuse it.
    #[test]
    fn a_lock_held_by_a_copy_that_goes_away_is_waited_for() {
        let d = tempfile::tempdir().unwrap();
        let first = lock(d.path()).unwrap();
        let copy = first.try_clone().unwrap();
        drop(first);
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            drop(copy);
        });
        let again = lock(d.path());
        t.join().unwrap();
        assert!(again.is_ok(), "{:?}", again.err().map(|e| e.to_string()));
    }

    /// A lock that stays held is refused once the wait is over, naming what to do.
    #[test]
    fn a_lock_that_stays_held_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let _held = lock(d.path()).unwrap();
        let m = lock_within(d.path(), std::time::Duration::from_millis(30))
            .unwrap_err()
            .to_string();
        assert!(m.contains("another warden process"), "{m}");
        assert!(m.contains("its own log directory"), "{m}");
    }
}
