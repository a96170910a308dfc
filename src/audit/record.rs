//! The audit record: an event (one validation) or a checkpoint (the signed chain head), framed
//! and hash-chained. Pure functions, no I/O.
//!
//! Frame, little-endian:
//!
//! ```text
//! len: u32            payload length (1 ..= MAX_PAYLOAD)
//! payload: len bytes  kind: u8, seq: u64, then the kind's fields
//! hash: [u8; 32]      blake3(previous record's hash || payload)
//! ```
//!
//! Event fields: time_ns u64, latency_ns u32, core u16, decision u8, reason code u16, reason arg
//! u16, classification u8, operation kind u8, operation arg u16 (for `scan_content` and `check`
//! the content's origin, as on the wire: 0 prompt, 1 data, 2 user), then five length-prefixed
//! (u16) strings: tenant, agent (the principal), tool, action, resource. A delegated event
//! (kind 3) is an event followed by a sixth string, never empty: the delegation chain as
//! presented, its agents root first joined by `>` (verified when the decision is an allow).
//! Checkpoint fields: time_ns u64, the chain head it signs (the hash of the record before it,
//! 32 bytes), signature (64 bytes, Ed25519 over `b"warden-audit-checkpoint" || seq || head`).
//!
//! Invariants: `decode` takes hostile bytes and never panics; a frame decodes only if its
//! length is in range, every field fits and every code is in its canonical form; `encode` then
//! `decode` is the identity and `decode` then `encode` gives the same bytes (property test,
//! fuzz target); the chain hash covers the payload and the previous hash, so modifying, removing or
//! reordering any record changes every hash after it.

use crate::types::{Classification, ContentOrigin, Decision, DenyReason, Operation, Verdict};

pub const MAX_PAYLOAD: usize = 16 * 1024;
pub const FRAME_OVERHEAD: usize = 4 + 32;
pub const KIND_EVENT: u8 = 1;
pub const KIND_CHECKPOINT: u8 = 2;
pub const KIND_DELEGATED_EVENT: u8 = 3;
const CHECKPOINT_CONTEXT: &[u8] = b"warden-audit-checkpoint";

/// One audited validation, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event<'a> {
    pub time_ns: u64,
    pub latency_ns: u32,
    pub core: u16,
    pub decision: Decision,
    pub reason: DenyReason,
    pub classification: Classification,
    pub operation: Operation,
    /// Where the scanned content came from (`check`, `scan_content`; `Prompt` otherwise).
    pub origin: ContentOrigin,
    pub tenant: &'a str,
    pub agent: &'a str,
    pub tool: &'a str,
    pub action: &'a str,
    pub resource: &'a str,
    /// The delegation chain the credential presented, root first, `>`-joined (empty: none).
    pub chain: &'a str,
}

impl<'a> Event<'a> {
    /// The event for `req` answered with `v` at `time_ns`.
    pub fn of(req: &crate::Request<'a>, v: &Verdict, time_ns: u64) -> Event<'a> {
        Event {
            time_ns,
            latency_ns: v.latency_ns,
            core: v.core,
            decision: v.decision,
            reason: v.reason,
            classification: v.classification.max(req.classification),
            operation: req.operation,
            origin: req.origin,
            tenant: req.tenant,
            agent: req.agent,
            tool: req.tool,
            action: req.action,
            resource: req.resource,
            chain: "",
        }
    }
}

/// A decoded record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record<'a> {
    Event {
        seq: u64,
        event: Event<'a>,
    },
    Checkpoint {
        seq: u64,
        time_ns: u64,
        head: [u8; 32],
        signature: [u8; 64],
    },
}

impl Record<'_> {
    pub fn seq(&self) -> u64 {
        match self {
            Record::Event { seq, .. } | Record::Checkpoint { seq, .. } => *seq,
        }
    }
}

/// The chain hash of a payload after `prev`.
pub fn chain(prev: &[u8; 32], payload: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(prev);
    h.update(payload);
    *h.finalize().as_bytes()
}

/// What a checkpoint signs.
pub fn checkpoint_message(seq: u64, head: &[u8; 32]) -> [u8; 23 + 8 + 32] {
    let mut m = [0u8; 23 + 8 + 32];
    m[..23].copy_from_slice(CHECKPOINT_CONTEXT);
    m[23..31].copy_from_slice(&seq.to_le_bytes());
    m[31..].copy_from_slice(head);
    m
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let b = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    out.extend_from_slice(&(b.len() as u16).to_le_bytes());
    out.extend_from_slice(b);
}

/// Appends the framed record to `out` and returns its hash. `out` is reused by the writer, so
/// after warm-up this allocates nothing.
pub fn encode(out: &mut Vec<u8>, prev: &[u8; 32], rec: &Record<'_>) -> [u8; 32] {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    match rec {
        Record::Event { seq, event: e } => {
            out.push(if e.chain.is_empty() {
                KIND_EVENT
            } else {
                KIND_DELEGATED_EVENT
            });
            out.extend_from_slice(&seq.to_le_bytes());
            out.extend_from_slice(&e.time_ns.to_le_bytes());
            out.extend_from_slice(&e.latency_ns.to_le_bytes());
            out.extend_from_slice(&e.core.to_le_bytes());
            out.push(e.decision as u8);
            out.extend_from_slice(&e.reason.code().to_le_bytes());
            out.extend_from_slice(&e.reason.arg().to_le_bytes());
            out.push(e.classification as u8);
            // (an event takes its origin from a request, which cannot hold a data origin on an
            // operation that scans nothing; were one to, the operation is written alone)
            let (k, a) = e
                .operation
                .code_with(e.origin)
                .unwrap_or(e.operation.code());
            out.push(k);
            out.extend_from_slice(&a.to_le_bytes());
            // strings are bounded by the request limits; the frame by MAX_PAYLOAD
            let room = MAX_PAYLOAD - 64;
            let mut left = room;
            for s in [e.tenant, e.agent, e.tool, e.action, e.resource] {
                let s = truncate(s, left.saturating_sub(2));
                put_str(out, s);
                left = left.saturating_sub(2 + s.len());
            }
            if !e.chain.is_empty() {
                // (a queued event holds at most 2 KiB of fields, so the chain fits; a chain
                // truncated to nothing still says there was one)
                let chain = truncate(e.chain, left.saturating_sub(2));
                put_str(out, if chain.is_empty() { ">" } else { chain });
            }
        }
        Record::Checkpoint {
            seq,
            time_ns,
            head,
            signature,
        } => {
            out.push(KIND_CHECKPOINT);
            out.extend_from_slice(&seq.to_le_bytes());
            out.extend_from_slice(&time_ns.to_le_bytes());
            out.extend_from_slice(head);
            out.extend_from_slice(signature);
        }
    }
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    let h = chain(prev, &out[start + 4..]);
    out.extend_from_slice(&h);
    h
}

/// The longest prefix of `s` of at most `n` bytes that ends on a character boundary.
fn truncate(s: &str, n: usize) -> &str {
    if s.len() <= n {
        return s;
    }
    let mut i = n;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    &s[..i]
}

/// Why bytes are not a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Fewer bytes than the frame says: a torn write at the end of a log.
    Short,
    /// A length out of range or fields that do not fit.
    Malformed,
}

/// Splits one frame off `buf`: (payload, stored hash, total frame length).
pub fn frame(buf: &[u8]) -> Result<(&[u8], [u8; 32], usize), FrameError> {
    if buf.len() < 4 {
        return Err(FrameError::Short);
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len == 0 || len > MAX_PAYLOAD {
        return Err(FrameError::Malformed);
    }
    let total = 4 + len + 32;
    if buf.len() < total {
        return Err(FrameError::Short);
    }
    let mut h = [0u8; 32];
    h.copy_from_slice(&buf[4 + len..total]);
    Ok((&buf[4..4 + len], h, total))
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.b.len() < n {
            return None;
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Some(h)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8).map(|b| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            u64::from_le_bytes(a)
        })
    }
    fn str(&mut self) -> Option<&'a str> {
        let n = self.u16()? as usize;
        std::str::from_utf8(self.take(n)?).ok()
    }
}

/// Decodes a payload (hostile bytes).
pub fn decode(payload: &[u8]) -> Result<Record<'_>, FrameError> {
    let mut r = Reader { b: payload };
    let bad = FrameError::Malformed;
    let kind = r.u8().ok_or(bad)?;
    let seq = r.u64().ok_or(bad)?;
    let rec = match kind {
        KIND_EVENT | KIND_DELEGATED_EVENT => {
            let time_ns = r.u64().ok_or(bad)?;
            let latency_ns = r.u32().ok_or(bad)?;
            let core = r.u16().ok_or(bad)?;
            let decision = match r.u8().ok_or(bad)? {
                0 => Decision::Allow,
                1 => Decision::Deny,
                2 => Decision::AllowWith,
                _ => return Err(bad),
            };
            let (code, arg) = (r.u16().ok_or(bad)?, r.u16().ok_or(bad)?);
            let reason = DenyReason::from_code(code, arg).ok_or(bad)?;
            // canonical only: an argument the reason does not carry must be zero
            if reason.arg() != arg {
                return Err(bad);
            }
            let classification = Classification::from_code(r.u8().ok_or(bad)?).ok_or(bad)?;
            let (k, a) = (r.u8().ok_or(bad)?, r.u16().ok_or(bad)?);
            // scan_content and check carry the content's origin as their argument, as on the wire
            let (operation, origin) = Operation::from_code_with(k, a).ok_or(bad)?;
            if operation.code_with(origin) != Some((k, a)) {
                return Err(bad);
            }
            let mut event = Event {
                time_ns,
                latency_ns,
                core,
                decision,
                reason,
                classification,
                operation,
                origin,
                tenant: r.str().ok_or(bad)?,
                agent: r.str().ok_or(bad)?,
                tool: r.str().ok_or(bad)?,
                action: r.str().ok_or(bad)?,
                resource: r.str().ok_or(bad)?,
                chain: "",
            };
            if kind == KIND_DELEGATED_EVENT {
                event.chain = r.str().ok_or(bad)?;
                // canonical: an empty chain is written as a plain event
                if event.chain.is_empty() {
                    return Err(bad);
                }
            }
            Record::Event { seq, event }
        }
        KIND_CHECKPOINT => {
            let time_ns = r.u64().ok_or(bad)?;
            let mut head = [0u8; 32];
            head.copy_from_slice(r.take(32).ok_or(bad)?);
            let mut signature = [0u8; 64];
            signature.copy_from_slice(r.take(64).ok_or(bad)?);
            Record::Checkpoint {
                seq,
                time_ns,
                head,
                signature,
            }
        }
        _ => return Err(bad),
    };
    if !r.b.is_empty() {
        return Err(bad);
    }
    Ok(rec)
}

/// The event as one JSON object (for `warden audit tail`).
pub fn event_json(seq: u64, e: &Event<'_>) -> serde_json::Value {
    let mut v = serde_json::json!({
        "seq": seq,
        "time": crate::time::rfc3339(e.time_ns),
        "time_ns": e.time_ns,
        "tenant": e.tenant,
        "principal": e.agent,
        "operation": e.operation.to_string(),
        "tool": e.tool,
        "action": e.action,
        "resource": e.resource,
        "decision": e.decision.name(),
        "reason": e.reason.name(),
        "classification": e.classification.name(),
        "latency_ns": e.latency_ns,
        "core": e.core,
    });
    if !e.chain.is_empty() {
        v["delegation_chain"] = e.chain.into();
    }
    if e.operation.scans_content() {
        v["origin"] = e.origin.name().into();
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ev<'a>(t: &'a str, a: &'a str, r: &'a str) -> Event<'a> {
        Event {
            time_ns: 123,
            latency_ns: 456,
            core: 3,
            decision: Decision::Deny,
            reason: DenyReason::RateLimited(40),
            classification: Classification::Secret,
            operation: Operation::Check,
            origin: ContentOrigin::Prompt,
            tenant: t,
            agent: a,
            tool: "fs.read",
            action: "read",
            resource: r,
            chain: "",
        }
    }

    #[test]
    fn events_and_checkpoints_round_trip_and_chain() {
        let mut out = Vec::new();
        let h1 = encode(
            &mut out,
            &[0; 32],
            &Record::Event {
                seq: 1,
                event: ev("acme", "a1", "/data/x"),
            },
        );
        let cp = Record::Checkpoint {
            seq: 2,
            time_ns: 9,
            head: h1,
            signature: [7; 64],
        };
        let h2 = encode(&mut out, &h1, &cp);
        let (p1, s1, n1) = frame(&out).unwrap();
        assert_eq!(s1, h1);
        assert_eq!(chain(&[0; 32], p1), h1);
        assert_eq!(
            decode(p1).unwrap(),
            Record::Event {
                seq: 1,
                event: ev("acme", "a1", "/data/x")
            }
        );
        let (p2, s2, n2) = frame(&out[n1..]).unwrap();
        assert_eq!((s2, n1 + n2), (h2, out.len()));
        assert_eq!(decode(p2).unwrap(), cp);
        assert_eq!(frame(&out[..n1 - 1]), Err(FrameError::Short));
    }

    #[test]
    fn oversized_fields_are_truncated_to_fit_the_frame() {
        let big = "é".repeat(20_000);
        let mut out = Vec::new();
        encode(
            &mut out,
            &[0; 32],
            &Record::Event {
                seq: 1,
                event: ev("t", "a", &big),
            },
        );
        let (p, _, _) = frame(&out).unwrap();
        match decode(p).unwrap() {
            Record::Event { event, .. } => assert!(event.resource.len() < MAX_PAYLOAD),
            _ => unreachable!(),
        }
    }

    #[test]
    fn a_delegated_event_with_an_empty_chain_is_not_canonical() {
        let mut out = Vec::new();
        let e = Event {
            chain: "a>b",
            ..ev("t", "a", "r")
        };
        encode(&mut out, &[0; 32], &Record::Event { seq: 1, event: e });
        let (p, _, _) = frame(&out).unwrap();
        assert_eq!(p[0], KIND_DELEGATED_EVENT);
        let mut cut = p[..p.len() - 5].to_vec();
        cut.extend_from_slice(&[0, 0]); // the chain as an empty string
        assert_eq!(decode(&cut), Err(FrameError::Malformed));
        assert_eq!(decode(&p[..p.len() - 5]), Err(FrameError::Malformed));
    }

    #[test]
    fn non_canonical_codes_are_refused() {
        // found by the fuzz target: a reason without an argument, stored with one
        let mut e = ev("t", "a", "r");
        e.reason = DenyReason::None;
        let mut out = Vec::new();
        encode(&mut out, &[0; 32], &Record::Event { seq: 1, event: e });
        let (p, _, _) = frame(&out).unwrap();
        let mut p = p.to_vec();
        assert!(decode(&p).is_ok());
        p[1 + 8 + 8 + 4 + 2 + 1 + 2] = 7; // the reason's argument
        assert_eq!(decode(&p), Err(FrameError::Malformed));
    }

    proptest! {
        /// A record's operation argument read back as the wire reads it: for scan_content and
        /// check an origin, 0, 1 or 2, and nothing else; for the others what the operation takes.
        #[test]
        fn a_records_origin_decodes_only_as_the_wire_does(kind in 0u8..8, arg in any::<u16>()) {
            let mut out = Vec::new();
            let e = Event { origin: ContentOrigin::Data, ..ev("t", "a", "/r") };
            encode(&mut out, &[1; 32], &Record::Event { seq: 1, event: e });
            let (p, _, _) = frame(&out).unwrap();
            let mut p = p.to_vec();
            // (kind, seq, time, latency, core, decision, reason, classification: 29 bytes)
            prop_assert_eq!(&p[29..32], &[3, 1, 0][..], "the operation's place in the record");
            p[29] = kind;
            p[30..32].copy_from_slice(&arg.to_le_bytes());
            let got = decode(&p).ok().map(|r| match r {
                Record::Event { event, .. } => (event.operation, event.origin),
                _ => unreachable!("an event record"),
            });
            let want = match (kind, arg) {
                (2 | 3, 0..=2) => Some((
                    Operation::from_code(kind, 0).unwrap(),
                    ContentOrigin::from_code(arg).unwrap(),
                )),
                (2 | 3, _) => None,
                _ => Operation::from_code(kind, arg)
                    .filter(|o| o.code() == (kind, arg))
                    .map(|o| (o, ContentOrigin::Prompt)),
            };
            prop_assert_eq!(got, want);
        }

        #[test]
        fn decode_never_panics(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&b);
            let _ = frame(&b);
        }

        #[test]
        fn encode_decode_is_identity(t in "[a-z]{0,20}", a in "\\PC{0,20}", r in "\\PC{0,60}", c in "\\PC{0,40}", seq: u64,
            kind in 0u8..7, o in 0u16..3) {
            let mut out = Vec::new();
            // every operation; the origin only where content is scanned (kinds 2 and 3)
            let operation = Operation::from_code(kind, 0).unwrap();
            let origin = match operation.scans_content() {
                true => ContentOrigin::from_code(o).unwrap(),
                false => ContentOrigin::Prompt,
            };
            let e = Event { chain: &c, operation, origin, ..ev(&t, &a, &r) };
            encode(&mut out, &[1; 32], &Record::Event { seq, event: e });
            let (p, _, n) = frame(&out).unwrap();
            prop_assert_eq!(n, out.len());
            prop_assert_eq!(decode(p).unwrap(), Record::Event { seq, event: e });
        }
    }
}
