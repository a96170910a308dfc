//! `Request<'a>`: a builder over borrowed fields, and its wire format.
//!
//! The wire format is what a reply slot (and, later, a shared-memory ring slot) carries: a fixed
//! 56-byte little-endian header followed by the seven variable fields back to back.
//!
//! ```text
//!  0  u16 magic 0x5744 ("WD")      2  u8 version (2)         3  u8 priority
//!  4  u32 flags (0)                8  u64 timestamp_ms      16  u64 nonce
//! 24  u8 operation kind           25  u8 classification     26  u16 operation argument
//! 28  u32 × 7 lengths: tenant, agent, credential, tool, action, resource, content
//! 56  body: the seven fields in that order
//! ```
//!
//! The operation argument of `scan_content` (kind 2) and `check` (kind 3) is the content's
//! origin (`ContentOrigin`: 0 prompt, 1 data, 2 user); any other value there is malformed.
//!
//! What changes from one presentation of the same question to the next (priority, timestamp,
//! nonce) sits before byte 24; everything from byte 24 on is what a cache key covers, in one
//! contiguous run (`KeyedHash::request`).
//!
//! Invariants: `decode` never panics and never reads outside its input, whatever the bytes; a
//! decoded request borrows from the input; `decode(encode(r)) == r` for every encodable `r`.
//! Every failure names the field at fault.

use crate::types::{Classification, ContentOrigin, DenyReason, Field, Operation, Priority};
use serde::Deserialize;

/// Size of the fixed header in bytes.
pub const HEADER_BYTES: usize = 56;
const MAGIC: u16 = 0x5744;
const VERSION: u8 = 2;
/// Where the part a cache key covers begins.
pub const KEYED_FROM: usize = 24;
const LENGTHS: usize = 28;
const FIELDS: [Field; 7] = [
    Field::Tenant,
    Field::Agent,
    Field::Credential,
    Field::Tool,
    Field::Action,
    Field::Resource,
    Field::Content,
];

/// One agent action to validate. All fields are borrowed; building one never allocates.
///
/// ```
/// use warden::{Request, Operation, Classification, Priority};
/// let r = Request::new(Operation::Check)
///     .tenant("acme").agent("planner-7").tool("http.get")
///     .resource("https://example.com/").classification(Classification::Cui)
///     .priority(Priority::High);
/// assert_eq!(r.agent, "planner-7");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub operation: Operation,
    pub tenant: &'a str,
    pub agent: &'a str,
    /// Credential token bytes (`wdn1.…`), opaque here.
    pub credential: &'a [u8],
    pub tool: &'a str,
    pub action: &'a str,
    pub resource: &'a str,
    pub content: &'a [u8],
    /// Where `content` comes from (`check` and `scan_content`; `Prompt` for every other
    /// operation, which has no content to scan).
    pub origin: ContentOrigin,
    pub classification: Classification,
    pub priority: Priority,
    /// Caller's wall-clock time, milliseconds since the Unix epoch (0 = not given).
    pub timestamp_ms: u64,
    pub nonce: u64,
}

impl<'a> Request<'a> {
    pub const fn new(operation: Operation) -> Request<'static> {
        Request {
            operation,
            tenant: "",
            agent: "",
            credential: b"",
            tool: "",
            action: "",
            resource: "",
            content: b"",
            origin: ContentOrigin::Prompt,
            classification: Classification::Unclassified,
            priority: Priority::Medium,
            timestamp_ms: 0,
            nonce: 0,
        }
    }
    pub fn operation(mut self, op: Operation) -> Self {
        self.operation = op;
        self
    }
    pub fn tenant<'b>(self, v: &'b str) -> Request<'b>
    where
        'a: 'b,
    {
        Request { tenant: v, ..self }
    }
    pub fn agent<'b>(self, v: &'b str) -> Request<'b>
    where
        'a: 'b,
    {
        Request { agent: v, ..self }
    }
    pub fn credential<'b>(self, v: &'b [u8]) -> Request<'b>
    where
        'a: 'b,
    {
        Request {
            credential: v,
            ..self
        }
    }
    pub fn tool<'b>(self, v: &'b str) -> Request<'b>
    where
        'a: 'b,
    {
        Request { tool: v, ..self }
    }
    pub fn action<'b>(self, v: &'b str) -> Request<'b>
    where
        'a: 'b,
    {
        Request { action: v, ..self }
    }
    pub fn resource<'b>(self, v: &'b str) -> Request<'b>
    where
        'a: 'b,
    {
        Request {
            resource: v,
            ..self
        }
    }
    pub fn content<'b>(self, v: &'b [u8]) -> Request<'b>
    where
        'a: 'b,
    {
        Request { content: v, ..self }
    }
    pub fn classification(mut self, c: Classification) -> Self {
        self.classification = c;
        self
    }
    /// Where the content comes from: `Data` for what the agent read (a tool's result, a page, a
    /// document), which the threat scan reads for words addressed to the model.
    pub fn origin(mut self, o: ContentOrigin) -> Self {
        self.origin = o;
        self
    }
    pub fn priority(mut self, p: Priority) -> Self {
        self.priority = p;
        self
    }
    pub fn timestamp_ms(mut self, t: u64) -> Self {
        self.timestamp_ms = t;
        self
    }
    pub fn nonce(mut self, n: u64) -> Self {
        self.nonce = n;
        self
    }

    fn field_bytes(&self) -> [&'a [u8]; 7] {
        [
            self.tenant.as_bytes(),
            self.agent.as_bytes(),
            self.credential,
            self.tool.as_bytes(),
            self.action.as_bytes(),
            self.resource.as_bytes(),
            self.content,
        ]
    }

    /// Bytes `encode` needs.
    pub fn encoded_len(&self) -> usize {
        HEADER_BYTES + self.field_bytes().iter().map(|f| f.len()).sum::<usize>()
    }

    /// Writes the wire form into `out`; returns the length written. Fails, naming the field that
    /// does not fit, when `out` is too small; fails with `Malformed(Operation)` when an
    /// operation that scans no content is given the `Data` or `User` origin.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, DenyReason> {
        if out.len() < HEADER_BYTES {
            return Err(DenyReason::FieldTooLarge(Field::Header));
        }
        let fields = self.field_bytes();
        let mut pos = HEADER_BYTES;
        for (i, f) in fields.iter().enumerate() {
            if f.len() > u32::MAX as usize || out.len() - pos < f.len() {
                return Err(if FIELDS[i] == Field::Content {
                    DenyReason::ContentTooLarge
                } else {
                    DenyReason::FieldTooLarge(FIELDS[i])
                });
            }
            out[pos..pos + f.len()].copy_from_slice(f);
            out[LENGTHS + 4 * i..LENGTHS + 4 + 4 * i]
                .copy_from_slice(&(f.len() as u32).to_le_bytes());
            pos += f.len();
        }
        // a scanned content's origin rides in its operation's argument; an operation that
        // scans nothing has no origin to carry, and one given to it would be lost
        let (kind, arg) = self
            .operation
            .code_with(self.origin)
            .ok_or(DenyReason::Malformed(Field::Operation))?;
        out[0..2].copy_from_slice(&MAGIC.to_le_bytes());
        out[2] = VERSION;
        out[3] = self.priority as u8;
        out[4..8].copy_from_slice(&0u32.to_le_bytes());
        out[8..16].copy_from_slice(&self.timestamp_ms.to_le_bytes());
        out[16..24].copy_from_slice(&self.nonce.to_le_bytes());
        out[24] = kind;
        out[25] = self.classification.code();
        out[26..28].copy_from_slice(&arg.to_le_bytes());
        Ok(pos)
    }

    /// Parses the wire form. Treats `buf` as hostile: every length is checked against the
    /// input, strings must be UTF-8, enum codes must be known. Never panics.
    pub fn decode(buf: &'a [u8]) -> Result<Request<'a>, DenyReason> {
        let hdr = buf
            .get(..HEADER_BYTES)
            .ok_or(DenyReason::Malformed(Field::Header))?;
        if u16::from_le_bytes([hdr[0], hdr[1]]) != MAGIC || hdr[2] != VERSION || hdr[4..8] != [0; 4]
        {
            return Err(DenyReason::Malformed(Field::Header));
        }
        // scan_content and check carry the content's origin as their argument
        let (operation, origin) =
            Operation::from_code_with(hdr[24], u16::from_le_bytes([hdr[26], hdr[27]]))
                .ok_or(DenyReason::Malformed(Field::Operation))?;
        let classification = Classification::from_code(hdr[25])
            .ok_or(DenyReason::Malformed(Field::Classification))?;
        let priority = Priority::from_code(hdr[3]).ok_or(DenyReason::Malformed(Field::Priority))?;
        let u64_at = |o: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&hdr[o..o + 8]);
            u64::from_le_bytes(b)
        };
        let mut parts: [&'a [u8]; 7] = [b""; 7];
        let mut pos = HEADER_BYTES;
        for (i, part) in parts.iter_mut().enumerate() {
            let o = LENGTHS + 4 * i;
            let len = u32::from_le_bytes([hdr[o], hdr[o + 1], hdr[o + 2], hdr[o + 3]]) as usize;
            let end = pos
                .checked_add(len)
                .filter(|&e| e <= buf.len())
                .ok_or(DenyReason::Malformed(FIELDS[i]))?;
            *part = &buf[pos..end];
            pos = end;
        }
        if pos != buf.len() {
            return Err(DenyReason::Malformed(Field::Header));
        }
        let s =
            |i: usize| core::str::from_utf8(parts[i]).map_err(|_| DenyReason::Malformed(FIELDS[i]));
        Ok(Request {
            operation,
            tenant: s(0)?,
            agent: s(1)?,
            credential: parts[2],
            tool: s(3)?,
            action: s(4)?,
            resource: s(5)?,
            content: parts[6],
            origin,
            classification,
            priority,
            timestamp_ms: u64_at(8),
            nonce: u64_at(16),
        })
    }
}

/// Size limits on request fields (`[limits]` in the config).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_id_bytes: usize,
    pub max_credential_bytes: usize,
    pub max_resource_bytes: usize,
    pub max_content_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_id_bytes: 256,
            max_credential_bytes: 2048,
            max_resource_bytes: 4096,
            max_content_bytes: 64 * 1024,
        }
    }
}

impl Limits {
    /// Bytes a reply slot must hold to carry any request within these limits.
    pub fn max_encoded_bytes(&self) -> usize {
        HEADER_BYTES
            + 4 * self.max_id_bytes
            + self.max_credential_bytes
            + self.max_resource_bytes
            + self.max_content_bytes
    }

    /// The request-shape check every request passes before any stage: required fields present,
    /// every field within its limit. Which fields are required depends on the operation.
    pub fn check(&self, r: &Request<'_>) -> Result<(), DenyReason> {
        let ids = [
            (r.tenant.len(), Field::Tenant),
            (r.agent.len(), Field::Agent),
            (r.tool.len(), Field::Tool),
            (r.action.len(), Field::Action),
        ];
        for (len, f) in ids {
            if len > self.max_id_bytes {
                return Err(DenyReason::FieldTooLarge(f));
            }
        }
        if r.credential.len() > self.max_credential_bytes {
            return Err(DenyReason::FieldTooLarge(Field::Credential));
        }
        if r.resource.len() > self.max_resource_bytes {
            return Err(DenyReason::FieldTooLarge(Field::Resource));
        }
        if r.content.len() > self.max_content_bytes {
            return Err(DenyReason::ContentTooLarge);
        }
        if r.tenant.is_empty() {
            return Err(DenyReason::MissingField(Field::Tenant));
        }
        if r.agent.is_empty() {
            return Err(DenyReason::MissingField(Field::Agent));
        }
        // `warden` is the agent of the audit log's own records (archive, unsigned tail,
        // quarantine): no request may pass for one of them.
        if r.agent.eq_ignore_ascii_case(RESERVED_AGENT) {
            return Err(DenyReason::Malformed(Field::Agent));
        }
        // What validate_agent, scan_content and the crypto operations answer is not about a
        // tool or a resource: naming one is a malformed request, not one whose tool goes
        // unjudged (a crypto request naming a secret tool must not pass for unclassified).
        // only the operations that scan content take an origin (`encode` refuses one too)
        if r.operation.code_with(r.origin).is_none() {
            return Err(DenyReason::Malformed(Field::Operation));
        }
        if matches!(
            r.operation,
            Operation::ValidateAgent | Operation::ScanContent | Operation::Crypto(_)
        ) {
            if !r.tool.is_empty() {
                return Err(DenyReason::Malformed(Field::Tool));
            }
            if !r.resource.is_empty() {
                return Err(DenyReason::Malformed(Field::Resource));
            }
        }
        match r.operation {
            Operation::AuthorizeTool if r.tool.is_empty() => {
                Err(DenyReason::MissingField(Field::Tool))
            }
            Operation::ScanContent if r.content.is_empty() => {
                Err(DenyReason::MissingField(Field::Content))
            }
            _ => Ok(()),
        }
    }
}

/// The agent name of warden's own audit records; a request naming it is malformed.
pub const RESERVED_AGENT: &str = "warden";

// ---- settings (`[request]` in the config file) ----

#[derive(Clone, Debug, PartialEq, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    pub max_id_bytes: usize,
    pub max_credential_bytes: usize,
    pub max_resource_bytes: usize,
    pub max_content_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let l = Limits::default();
        LimitsConfig {
            max_id_bytes: l.max_id_bytes,
            max_credential_bytes: l.max_credential_bytes,
            max_resource_bytes: l.max_resource_bytes,
            max_content_bytes: l.max_content_bytes,
        }
    }
}

impl LimitsConfig {
    pub fn limits(&self) -> Limits {
        Limits {
            max_id_bytes: self.max_id_bytes,
            max_credential_bytes: self.max_credential_bytes,
            max_resource_bytes: self.max_resource_bytes,
            max_content_bytes: self.max_content_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::CryptoOp;
    use proptest::prelude::*;

    fn sample() -> Request<'static> {
        Request::new(Operation::Crypto(CryptoOp::Verify))
            .tenant("acme")
            .agent("a-1")
            .credential(b"wdn1.xxx.yyy")
            .tool("fs.read")
            .action("read")
            .resource("/data/x")
            .content(b"hello")
            .classification(Classification::Secret)
            .priority(Priority::Low)
            .timestamp_ms(1_700_000_000_000)
            .nonce(42)
    }

    #[test]
    fn round_trip() {
        let r = sample();
        let mut buf = vec![0u8; r.encoded_len()];
        let n = r.encode(&mut buf).unwrap();
        assert_eq!(n, buf.len());
        assert_eq!(Request::decode(&buf).unwrap(), r);
    }

    #[test]
    fn encode_names_the_field_that_does_not_fit() {
        let r = sample();
        let mut buf = vec![0u8; r.encoded_len() - 1];
        assert_eq!(r.encode(&mut buf), Err(DenyReason::ContentTooLarge));
        let mut buf = vec![0u8; HEADER_BYTES + 5];
        assert_eq!(
            r.encode(&mut buf),
            Err(DenyReason::FieldTooLarge(Field::Agent))
        );
    }

    #[test]
    fn decode_rejects_each_kind_of_damage() {
        let r = sample();
        let mut buf = vec![0u8; r.encoded_len()];
        r.encode(&mut buf).unwrap();
        let mut b = buf.clone();
        b[0] = 0;
        assert_eq!(
            Request::decode(&b),
            Err(DenyReason::Malformed(Field::Header))
        );
        let mut b = buf.clone();
        b[24] = 99;
        assert_eq!(
            Request::decode(&b),
            Err(DenyReason::Malformed(Field::Operation))
        );
        let mut b = buf.clone();
        b[25] = 9;
        assert_eq!(
            Request::decode(&b),
            Err(DenyReason::Malformed(Field::Classification))
        );
        let mut b = buf.clone();
        b[3] = 9;
        assert_eq!(
            Request::decode(&b),
            Err(DenyReason::Malformed(Field::Priority))
        );
        let mut b = buf.clone();
        b[5] = 1; // flags: none defined, so none may be set
        assert_eq!(
            Request::decode(&b),
            Err(DenyReason::Malformed(Field::Header))
        );
        let mut b = buf.clone();
        b[28..32].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            Request::decode(&b),
            Err(DenyReason::Malformed(Field::Tenant))
        );
        let mut b = buf.clone();
        b[HEADER_BYTES] = 0xff; // tenant's first byte: invalid UTF-8
        assert_eq!(
            Request::decode(&b),
            Err(DenyReason::Malformed(Field::Tenant))
        );
        let mut b = buf.clone();
        b.push(0);
        assert_eq!(
            Request::decode(&b),
            Err(DenyReason::Malformed(Field::Header))
        );
        assert_eq!(
            Request::decode(&buf[..10]),
            Err(DenyReason::Malformed(Field::Header))
        );
    }

    #[test]
    fn limits_check_names_fields() {
        let l = Limits::default();
        // crypto, validate_agent and scan_content take no tool and no resource
        assert_eq!(l.check(&sample()), Err(DenyReason::Malformed(Field::Tool)));
        assert_eq!(
            l.check(&sample().tool("")),
            Err(DenyReason::Malformed(Field::Resource))
        );
        assert_eq!(l.check(&sample().tool("").resource("")), Ok(()));
        // a data origin on an operation that scans nothing
        assert_eq!(
            l.check(&sample().tool("").resource("").origin(ContentOrigin::Data)),
            Err(DenyReason::Malformed(Field::Operation))
        );
        let sample = || Request {
            operation: Operation::Check,
            ..sample()
        };
        assert_eq!(l.check(&sample()), Ok(()));
        assert_eq!(
            l.check(&sample().tenant("")),
            Err(DenyReason::MissingField(Field::Tenant))
        );
        assert_eq!(
            l.check(&sample().agent("")),
            Err(DenyReason::MissingField(Field::Agent))
        );
        let long = "x".repeat(l.max_id_bytes + 1);
        assert_eq!(
            l.check(&sample().tool(&long)),
            Err(DenyReason::FieldTooLarge(Field::Tool))
        );
        let big = vec![0u8; l.max_content_bytes + 1];
        assert_eq!(
            l.check(&sample().content(&big)),
            Err(DenyReason::ContentTooLarge)
        );
        assert_eq!(
            l.check(&sample().operation(Operation::AuthorizeTool).tool("")),
            Err(DenyReason::MissingField(Field::Tool))
        );
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Request::decode(&bytes);
        }

        #[test]
        fn decode_never_panics_on_mutated_valid_input(
            pos in 0usize..200, val in any::<u8>(), cut in 0usize..200
        ) {
            let r = sample();
            let mut buf = vec![0u8; r.encoded_len()];
            r.encode(&mut buf).unwrap();
            let p = pos % buf.len();
            buf[p] = val;
            let c = cut % (buf.len() + 1);
            let _ = Request::decode(&buf[..c]);
            let _ = Request::decode(&buf);
        }

        #[test]
        fn encode_decode_round_trip(
            tenant in "\\PC{0,20}", agent in "\\PC{0,20}", tool in "[a-z.]{0,12}",
            resource in "\\PC{0,40}", content in proptest::collection::vec(any::<u8>(), 0..300),
            cred in proptest::collection::vec(any::<u8>(), 0..64),
            class in 0u8..5, prio in 0u8..5, kind in 0u8..7, arg in any::<u16>(),
            ts in any::<u64>(), nonce in any::<u64>(), o in 0u16..3
        ) {
            let op = Operation::from_code(kind, if kind == 6 { arg } else if kind == 4 { arg % 4 } else { 0 }).unwrap();
            // only the operations that scan content carry an origin
            let scans = op.scans_content();
            let origin = match scans {
                true => ContentOrigin::from_code(o).unwrap(),
                false => ContentOrigin::Prompt,
            };
            let r = Request::new(op).tenant(&tenant).agent(&agent).tool(&tool).resource(&resource)
                .content(&content).credential(&cred).origin(origin)
                .classification(Classification::from_code(class).unwrap())
                .priority(Priority::from_code(prio).unwrap()).timestamp_ms(ts).nonce(nonce);
            let mut buf = vec![0u8; r.encoded_len()];
            prop_assert_eq!(r.encode(&mut buf), Ok(buf.len()));
            prop_assert_eq!(Request::decode(&buf), Ok(r));
            // and the origin is in the part a cache key covers: the same question asked of
            // data is another key
            if scans {
                let other = r.origin(ContentOrigin::from_code((o + 1) % 3).unwrap());
                let mut b2 = vec![0u8; other.encoded_len()];
                other.encode(&mut b2).unwrap();
                prop_assert_ne!(&buf[KEYED_FROM..], &b2[KEYED_FROM..]);
                prop_assert_eq!(Request::decode(&b2).map(|d| d.origin), Ok(other.origin));
            } else {
                // an operation that scans nothing refuses an origin rather than drop it
                let mut b2 = vec![0u8; r.encoded_len()];
                prop_assert_eq!(
                    r.origin(ContentOrigin::Data).encode(&mut b2),
                    Err(DenyReason::Malformed(Field::Operation))
                );
            }
        }

        /// The argument of kinds 2 and 3 is an origin: 0, 1 and 2 read, every other value is
        /// malformed; a model of the rule, over every argument.
        #[test]
        fn only_known_origins_decode(kind in 0u8..8, arg in any::<u16>()) {
            let r = Request::new(Operation::Check).tenant("t").agent("a").content(b"x");
            let mut buf = vec![0u8; r.encoded_len()];
            r.encode(&mut buf).unwrap();
            buf[24] = kind;
            buf[26..28].copy_from_slice(&arg.to_le_bytes());
            // and what decodes encodes back to the same bytes (the wire form is canonical)
            if let Ok(d) = Request::decode(&buf) {
                let mut again = vec![0u8; d.encoded_len()];
                prop_assert_eq!(d.encode(&mut again), Ok(buf.len()));
                prop_assert_eq!(&again, &buf);
            }
            let got = Request::decode(&buf).map(|d| (d.operation, d.origin));
            let want = match (kind, arg) {
                (2 | 3, 0..=2) => Ok((
                    Operation::from_code(kind, 0).unwrap(),
                    ContentOrigin::from_code(arg).unwrap(),
                )),
                (2 | 3, _) => Err(DenyReason::Malformed(Field::Operation)),
                _ => Operation::from_code(kind, arg)
                    .map(|o| (o, ContentOrigin::Prompt))
                    .ok_or(DenyReason::Malformed(Field::Operation)),
            };
            prop_assert_eq!(got, want);
        }
    }
}
