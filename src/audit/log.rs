//! Segment files: append, rotate, recover a torn tail, verify a whole log.
//!
//! A log is a directory of segments `segment-00000001.wal`, `segment-00000002.wal`, ... Each
//! starts with a 64-byte header (magic `WDNAUDT1`, segment index, first sequence number, the
//! chain hash the segment continues from, 8 reserved bytes) followed by framed records
//! (`record.rs`). `HEAD` holds the latest signed checkpoint (sequence number, chain head,
//! signature), replaced atomically (write, fsync, rename), so a log cut short before its last
//! checkpoint is detected.
//!
//! Invariants: records are only appended; a batch is written with one `write_all` and, in the
//! durable modes, made durable with one `fdatasync` before anything in it is acknowledged; a
//! failed write is rolled back (`set_len` to the size before the batch) so the file never holds
//! half a batch that a later batch follows; recovery truncates only a torn tail (a short last
//! frame, or a bad last frame followed by nothing or only zero bytes) and refuses to start on
//! damage anywhere else.

use super::record::{self, chain, checkpoint_message, FrameError, Record};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

pub const HEADER_BYTES: usize = 64;
const MAGIC: &[u8; 8] = b"WDNAUDT1";

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
    let mut v: Vec<u64> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().into_string().ok()?;
            n.strip_prefix("segment-")?
                .strip_suffix(".wal")?
                .parse()
                .ok()
        })
        .collect();
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
    if b.len() < HEADER_BYTES || &b[..8] != MAGIC {
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

/// What recovery found when the log was opened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Records in the last segment that verified.
    pub records: u64,
    /// Bytes of a torn tail that were cut off (0: none).
    pub torn_bytes: u64,
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
}

impl Log {
    /// Opens (or creates) the log in `dir`, recovering a torn tail.
    pub fn open(dir: &Path, segment_bytes: u64) -> Result<Log, AuditError> {
        std::fs::create_dir_all(dir).map_err(|e| err(dir, format!("cannot create: {e}")))?;
        let segs = segments(dir)?;
        let mut recovery = Recovery::default();
        let (segment, len, next_seq, head) = match segs.last() {
            None => (1, 0, 1, [0u8; 32]),
            Some(&last) => {
                let path = dir.join(segment_name(last));
                let mut bytes = Vec::new();
                File::open(&path)
                    .and_then(|mut f| f.read_to_end(&mut bytes))
                    .map_err(|e| err(&path, format!("cannot read: {e}")))?;
                let Some((index, first_seq, prev)) = parse_header(&bytes) else {
                    if bytes.len() < HEADER_BYTES && bytes.iter().all(|&b| b == 0) {
                        // a crash while creating the segment: start it again
                        std::fs::remove_file(&path)
                            .map_err(|e| err(&path, format!("cannot remove: {e}")))?;
                        return Log::open(dir, segment_bytes);
                    }
                    return Err(err(
                        &path,
                        "not a warden audit segment (bad header); run `warden audit verify`",
                    ));
                };
                if index != last {
                    return Err(err(&path, format!("header says segment {index}")));
                }
                let (mut off, mut seq, mut h) = (HEADER_BYTES, first_seq, prev);
                loop {
                    if off == bytes.len() {
                        break;
                    }
                    let rest = &bytes[off..];
                    let good = match record::frame(rest) {
                        Ok((payload, stored, n)) => {
                            let ok = chain(&h, payload) == stored
                                && record::decode(payload).is_ok_and(|r| r.seq() == seq);
                            ok.then_some((stored, n))
                        }
                        Err(_) => None,
                    };
                    match good {
                        Some((stored, n)) => {
                            h = stored;
                            seq += 1;
                            off += n;
                            recovery.records += 1;
                        }
                        None => {
                            let torn = match record::frame(rest) {
                                Err(FrameError::Short) => true,
                                Ok((_, _, n)) => rest[n..].iter().all(|&b| b == 0),
                                Err(FrameError::Malformed) => rest.iter().all(|&b| b == 0),
                            };
                            if !torn {
                                return Err(err(
                                    &path,
                                    format!("damaged record at byte {off} (seq {seq}), not a torn tail; run `warden audit verify`"),
                                ));
                            }
                            recovery.torn_bytes = (bytes.len() - off) as u64;
                            let f = OpenOptions::new()
                                .write(true)
                                .open(&path)
                                .map_err(|e| err(&path, format!("cannot open: {e}")))?;
                            f.set_len(off as u64)
                                .and_then(|_| f.sync_all())
                                .map_err(|e| {
                                    err(&path, format!("cannot truncate the torn tail: {e}"))
                                })?;
                            break;
                        }
                    }
                }
                (last, off as u64, seq, h)
            }
        };
        let path = dir.join(segment_name(segment));
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| err(&path, format!("cannot open for append: {e}")))?;
        let len = if len == 0 {
            file.write_all(&header(segment, next_seq, &head))
                .and_then(|_| file.sync_all())
                .map_err(|e| err(&path, format!("cannot write the header: {e}")))?;
            sync_dir(dir);
            HEADER_BYTES as u64
        } else {
            len
        };
        Ok(Log {
            dir: dir.to_path_buf(),
            file,
            path,
            segment,
            len,
            segment_bytes: segment_bytes.max(HEADER_BYTES as u64 + 1024),
            written_seq: next_seq,
            head,
            buf: Vec::with_capacity(1 << 20),
            staged_head: head,
            staged_seq: next_seq,
            recovery,
        })
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
        self.stage_checkpoint_with(|m| Some(key.sign(m).to_bytes()), time_ns)
            .expect("a software key always signs")
    }

    /// Stages a checkpoint signed by `sign` (given the checkpoint message); `None` when it
    /// could not sign (an HSM that is down): nothing is staged, the next interval tries again.
    pub fn stage_checkpoint_with(
        &mut self,
        sign: impl FnOnce(&[u8]) -> Option<[u8; 64]>,
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
        let mut b = Vec::with_capacity(8 + 32 + 64);
        b.extend_from_slice(&seq.to_le_bytes());
        b.extend_from_slice(head);
        b.extend_from_slice(sig);
        File::create(&tmp)
            .and_then(|mut f| f.write_all(&b).and_then(|_| f.sync_all()))
            .and_then(|_| std::fs::rename(&tmp, self.dir.join("HEAD")))
            .map_err(|e| err(&tmp, format!("cannot record the checkpoint: {e}")))?;
        sync_dir(&self.dir);
        Ok(())
    }
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
    pub head: [u8; 32],
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

/// Verifies every segment, every record, every checkpoint signature (against `key`), and the
/// `HEAD` anchor. `visit` sees each event in order (for `tail`).
pub fn verify(
    dir: &Path,
    key: &ed25519_dalek::VerifyingKey,
    mut visit: impl FnMut(u64, &record::Event<'_>),
) -> Result<Summary, Bad> {
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
    // The anchor, read first: the latest checkpoint, which must be in the log as written.
    let anchor = match std::fs::read(dir.join("HEAD")) {
        Err(_) => None,
        Ok(b) if b.len() != 8 + 32 + 64 => return Err(bad(None, 0, 0, "HEAD is malformed".into())),
        Ok(b) => {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[..8]);
            let cp = u64::from_le_bytes(a);
            let mut head = [0u8; 32];
            head.copy_from_slice(&b[8..40]);
            let mut sig = [0u8; 64];
            sig.copy_from_slice(&b[40..]);
            let sig = ed25519_dalek::Signature::from_bytes(&sig);
            if key
                .verify_strict(&checkpoint_message(cp, &head), &sig)
                .is_err()
            {
                return Err(bad(None, 0, cp, "HEAD has a bad signature".into()));
            }
            Some((cp, head))
        }
    };
    let mut anchor_found = false;
    let (mut seq, mut h) = (1u64, [0u8; 32]);
    for (i, &index) in segs.iter().enumerate() {
        let path = dir.join(segment_name(index));
        let here = Some(index);
        if index != i as u64 + 1 {
            return Err(bad(here, 0, seq, format!("segment {} is missing", i + 1)));
        }
        let bytes =
            std::fs::read(&path).map_err(|e| bad(here, 0, seq, format!("cannot read: {e}")))?;
        let Some((hi, first, prev)) = parse_header(&bytes) else {
            return Err(bad(here, 0, seq, "bad segment header".into()));
        };
        if hi != index || first != seq || prev != h {
            return Err(bad(here, 0, seq, format!(
                "segment header does not continue the chain (says first seq {first}; expected {seq}): a segment was removed, replaced or reordered"
            )));
        }
        let mut off = HEADER_BYTES;
        while off < bytes.len() {
            let (payload, stored, n) = match record::frame(&bytes[off..]) {
                Ok(f) => f,
                Err(FrameError::Short) => {
                    return Err(bad(here, off as u64, seq, "torn record at the end (an unclean stop; warden truncates it on its next start)".into()))
                }
                Err(FrameError::Malformed) => {
                    return Err(bad(here, off as u64, seq, "malformed frame (modified)".into()))
                }
            };
            let rec = record::decode(payload).map_err(|_| {
                bad(
                    here,
                    off as u64,
                    seq,
                    "undecodable record (modified)".into(),
                )
            })?;
            let rs = rec.seq();
            if rs > seq {
                // reordered if the expected record comes later in this segment, else removed
                let mut later = off + n;
                let mut found = false;
                while let Ok((p, _, m)) = record::frame(&bytes[later..]) {
                    if record::decode(p).is_ok_and(|r| r.seq() == seq) {
                        found = true;
                        break;
                    }
                    later += m;
                }
                let what = if found {
                    format!("record {rs} out of order (reordered: record {seq} comes after it)")
                } else {
                    format!("records {seq}..{} removed", rs - 1)
                };
                return Err(bad(here, off as u64, seq, what));
            }
            if rs < seq {
                return Err(bad(
                    here,
                    off as u64,
                    seq,
                    format!("record {rs} out of order (reordered or duplicated)"),
                ));
            }
            if chain(&h, payload) != stored {
                return Err(bad(
                    here,
                    off as u64,
                    seq,
                    "hash mismatch: this record was modified (or one before it was replaced)"
                        .into(),
                ));
            }
            match &rec {
                Record::Event { event, .. } => {
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
                    if let Some((cp, ahead)) = anchor {
                        if cp == seq {
                            if ahead != *head {
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
    }
    s.head = h;
    if let Some((cp, _)) = anchor {
        if !anchor_found {
            let what = if cp > s.last_seq {
                format!(
                    "truncated before checkpoint {cp} (the log ends at seq {}, its last checkpoint is {})",
                    s.last_seq, s.last_checkpoint_seq
                )
            } else {
                format!(
                    "HEAD names checkpoint {cp}, which is not a checkpoint in the log (replaced)"
                )
            };
            return Err(bad(None, 0, cp, what));
        }
    }
    Ok(s)
}
