//! SIEM export: the audit log's events as OCSF-shaped JSON, and a live forwarder of them to
//! syslog (RFC 5424, over a Unix datagram socket or UDP) for a local rsyslog or any collector.
//!
//! Invariants:
//! - the forwarder never blocks a core, nor the audit writer: the writer offers each event to a
//!   bounded queue (`try_send`); a full queue drops it and counts it (`siem_dropped`), a send
//!   that fails counts it (`siem_errors`); only the forwarder's own thread waits on the socket,
//!   and with a timeout;
//! - events are offered as the writer stages them, with the log's sequence number, so a SIEM
//!   can tell a gap (`metadata.sequence`); a batch whose write then fails was forwarded
//!   already (its requests were denied `audit_unavailable`, and the log reuses those numbers):
//!   the log, not the SIEM, is the record of truth;
//! - fields a client chose (tenant, agent, tool, resource) are escaped for the structured data
//!   of RFC 5424 (`"`, `\` and `]`) and carried in the JSON as JSON strings; control characters
//!   never reach a syslog line raw.
//!
//! OCSF mapping (OCSF 1.1, class API Activity 6003, category Application Activity 6): the
//! agent is the `actor.user`, the tenant its `actor.user.org`, the tool the `api.service`, the
//! operation the `api.operation`, the resource a `resources` entry, allow and deny the
//! `status` (Success / Failure) and `disposition` (Allowed / Blocked), the deny reason the
//! `status_detail`; what OCSF has no field for (classification, latency, core, a scanned
//! content's origin) goes in `unmapped`.

use super::record::Event;
use crate::types::Decision;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// `[siem]`: where audit events go besides the log.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SiemConfig {
    /// The syslog receiver: `unix:/dev/log` (a Unix datagram socket), `udp:127.0.0.1:514`, or
    /// empty (no forwarding). Needs the audit log (`audit.dir`): it forwards the log's events.
    pub syslog: String,
    /// Syslog facility: kern, user, daemon, auth, authpriv, local0 .. local7.
    pub facility: String,
    /// APP-NAME of the syslog messages.
    pub app_name: String,
    /// HOSTNAME of the messages; empty: the machine's host name.
    pub hostname: String,
    /// Events waiting for the forwarder; past it, an event is dropped and counted.
    pub queue_capacity: usize,
}

impl Default for SiemConfig {
    fn default() -> Self {
        SiemConfig {
            syslog: String::new(),
            facility: "authpriv".into(),
            app_name: "warden".into(),
            hostname: String::new(),
            queue_capacity: 8192,
        }
    }
}

const FACILITIES: [(&str, u8); 16] = [
    ("kern", 0),
    ("user", 1),
    ("daemon", 3),
    ("auth", 4),
    ("authpriv", 10),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
    ("security", 13),
    ("audit", 13),
    ("syslog", 5),
];

/// Where to send.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    Unix(std::path::PathBuf),
    Udp(std::net::SocketAddr),
}

impl SiemConfig {
    /// Semantic checks; (dotted field, what to do).
    pub fn validate(&self, audit_dir: &str) -> Result<(), (String, String)> {
        if self.syslog.is_empty() {
            return Ok(());
        }
        self.target().map_err(|m| ("siem.syslog".to_string(), m))?;
        if audit_dir.is_empty() {
            return Err((
                "siem.syslog".into(),
                "forwards the audit log's events: set audit.dir too".into(),
            ));
        }
        if self.facility_code().is_none() {
            return Err((
                "siem.facility".into(),
                format!(
                    "`{}` is no syslog facility; give one of {}",
                    self.facility,
                    FACILITIES.map(|f| f.0).join(", ")
                ),
            ));
        }
        if self.app_name.is_empty()
            || self.app_name.len() > 48
            || !self.app_name.bytes().all(|b| (33..=126).contains(&b))
        {
            return Err((
                "siem.app_name".into(),
                "1 to 48 printable ASCII characters without spaces (RFC 5424 APP-NAME)".into(),
            ));
        }
        if self.hostname.len() > 255 || !self.hostname.bytes().all(|b| (33..=126).contains(&b)) {
            return Err((
                "siem.hostname".into(),
                "up to 255 printable ASCII characters without spaces (RFC 5424 HOSTNAME)".into(),
            ));
        }
        if self.queue_capacity == 0 || self.queue_capacity > 1 << 20 {
            return Err((
                "siem.queue_capacity".into(),
                "must be between 1 and 1048576".into(),
            ));
        }
        Ok(())
    }

    pub fn facility_code(&self) -> Option<u8> {
        FACILITIES
            .iter()
            .find(|f| f.0 == self.facility)
            .map(|f| f.1)
    }

    /// The receiver `syslog` names.
    pub fn target(&self) -> Result<Target, String> {
        if let Some(p) = self.syslog.strip_prefix("unix:") {
            if p.is_empty() {
                return Err("unix: needs a socket path, such as unix:/dev/log".into());
            }
            return Ok(Target::Unix(p.into()));
        }
        if let Some(a) = self.syslog.strip_prefix("udp:") {
            return a.parse().map(Target::Udp).map_err(|_| {
                format!("`{a}` is not an address and port such as udp:127.0.0.1:514")
            });
        }
        Err(format!(
            "`{}`: give unix:PATH (a Unix datagram socket such as /dev/log) or udp:HOST:PORT",
            self.syslog
        ))
    }
}

fn activity(op: crate::types::Operation) -> (u8, &'static str) {
    use crate::types::Operation as O;
    match op {
        O::Check | O::AuthorizeTool => (99, "Other"),
        O::ValidateAgent => (2, "Read"),
        O::ScanContent => (2, "Read"),
        O::Audit => (1, "Create"),
        O::Crypto(_) => (99, "Other"),
        O::Custom(_) => (99, "Other"),
    }
}

/// The event as an OCSF API Activity object (`warden audit tail --format ocsf`, and the
/// message of each syslog line).
pub fn ocsf(seq: u64, e: &Event<'_>) -> serde_json::Value {
    let (activity_id, activity_name) = activity(e.operation);
    let allowed = e.decision != Decision::Deny;
    let mut resources = Vec::new();
    if !e.resource.is_empty() {
        resources.push(serde_json::json!({
            "name": e.resource,
            "type": if e.resource.contains("://") { "url" } else { "path" },
        }));
    }
    let mut v = serde_json::json!({
        "class_uid": 6003,
        "class_name": "API Activity",
        "category_uid": 6,
        "category_name": "Application Activity",
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": 6003 * 100 + activity_id as u32,
        "time": e.time_ns / 1_000_000,
        "severity_id": if allowed { 1 } else { 3 },
        "severity": if allowed { "Informational" } else { "Medium" },
        "status_id": if allowed { 1 } else { 2 },
        "status": if allowed { "Success" } else { "Failure" },
        "status_detail": e.reason.name(),
        "disposition_id": if allowed { 1 } else { 2 },
        "disposition": if allowed { "Allowed" } else { "Blocked" },
        "actor": {
            "user": {
                "name": e.agent,
                "uid": e.agent,
                "type": "Other",
                "org": { "name": e.tenant, "uid": e.tenant },
            },
        },
        "api": {
            "operation": e.operation.to_string(),
            "service": { "name": e.tool },
            "request": { "uid": seq.to_string() },
        },
        "src_endpoint": { "name": e.tenant },
        "resources": resources,
        "metadata": {
            "version": "1.1.0",
            "product": { "name": "warden", "vendor_name": "warden", "version": env!("CARGO_PKG_VERSION") },
            "sequence": seq,
            "log_name": "warden-audit",
        },
        "unmapped": {
            "decision": e.decision.name(),
            "action": e.action,
            "classification": e.classification.name(),
            "latency_ns": e.latency_ns,
            "core": e.core,
        },
    });
    if !e.chain.is_empty() {
        v["unmapped"]["delegation_chain"] = e.chain.into();
    }
    if e.operation.scans_content() {
        v["unmapped"]["origin"] = e.origin.name().into();
    }
    v
}

/// Appends `s` as an RFC 5424 PARAM-VALUE: `"`, `\` and `]` escaped; control characters
/// replaced by `?` so a value cannot end the line or forge a field.
fn param(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' | '\\' | ']' => {
                out.push('\\');
                out.push(c);
            }
            // control characters, line and paragraph separators, bidirectional overrides and
            // isolates: nothing that ends a line or makes it read otherwise than it is
            c if c.is_control()
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}')
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c) =>
            {
                out.push('?')
            }
            c => out.push(c),
        }
    }
}

/// One RFC 5424 line for `e`: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG`, the
/// structured data `warden@32473` with tenant, agent, tool, decision, reason and sequence, the
/// message the OCSF JSON (no BOM: plain JSON is ASCII-safe once escaped by serde_json).
pub fn rfc5424(out: &mut String, facility: u8, hostname: &str, app: &str, seq: u64, e: &Event<'_>) {
    use std::fmt::Write;
    let severity = if e.decision == Decision::Deny { 4 } else { 6 };
    let _ = write!(
        out,
        "<{}>1 {} {} {} {} {} [warden@32473 seq=\"{seq}\" tenant=\"",
        facility as u32 * 8 + severity,
        crate::time::rfc3339(e.time_ns),
        if hostname.is_empty() { "-" } else { hostname },
        app,
        std::process::id(),
        if e.decision == Decision::Deny {
            "deny"
        } else {
            "allow"
        },
    );
    param(out, e.tenant);
    out.push_str("\" agent=\"");
    param(out, e.agent);
    out.push_str("\" tool=\"");
    param(out, e.tool);
    let _ = write!(
        out,
        "\" decision=\"{}\" reason=\"{}\"] ",
        e.decision.name(),
        e.reason.name()
    );
    // serde_json escapes every control character, so the message is one line.
    out.push_str(&ocsf(seq, e).to_string());
}

/// The forwarder's counters.
#[derive(Default)]
pub struct SiemCounters {
    pub sent: AtomicU64,
    pub dropped: AtomicU64,
    pub errors: AtomicU64,
}

/// An event owned, on its way to the forwarder thread.
struct Owned {
    seq: u64,
    time_ns: u64,
    latency_ns: u32,
    core: u16,
    decision: Decision,
    reason: crate::types::DenyReason,
    classification: crate::types::Classification,
    operation: crate::types::Operation,
    origin: crate::types::ContentOrigin,
    strings: [String; 6],
}

/// The audit writer's handle on the forwarder thread.
pub struct Forwarder {
    tx: Option<flume::Sender<Owned>>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub counters: Arc<SiemCounters>,
}

enum Socket {
    Unix(std::os::unix::net::UnixDatagram, std::path::PathBuf),
    Udp(std::net::UdpSocket),
}

impl Socket {
    fn open(t: &Target) -> std::io::Result<Socket> {
        Ok(match t {
            Target::Unix(p) => {
                let s = std::os::unix::net::UnixDatagram::unbound()?;
                s.set_write_timeout(Some(Duration::from_millis(100)))?;
                Socket::Unix(s, p.clone())
            }
            Target::Udp(a) => {
                let bind: std::net::SocketAddr = if a.is_ipv4() {
                    "0.0.0.0:0".parse().expect("an address")
                } else {
                    "[::]:0".parse().expect("an address")
                };
                let s = std::net::UdpSocket::bind(bind)?;
                s.connect(a)?;
                s.set_write_timeout(Some(Duration::from_millis(100)))?;
                Socket::Udp(s)
            }
        })
    }
    fn send(&self, b: &[u8]) -> std::io::Result<usize> {
        match self {
            Socket::Unix(s, p) => s.send_to(b, p),
            Socket::Udp(s) => s.send(b),
        }
    }
}

fn host_name() -> String {
    let mut b = [0u8; 256];
    // SAFETY: gethostname writes at most `b.len()` bytes into the live buffer.
    let r = unsafe { libc::gethostname(b.as_mut_ptr().cast(), b.len()) };
    if r != 0 {
        return String::new();
    }
    let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..n])
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .collect()
}

impl Forwarder {
    /// Starts the forwarder thread for `cfg` (which names a target).
    pub fn start(cfg: &SiemConfig) -> Result<Forwarder, String> {
        let target = cfg.target()?;
        let socket = Socket::open(&target).map_err(|e| format!("siem.syslog: {e}"))?;
        let facility = cfg.facility_code().ok_or("siem.facility: unknown")?;
        let hostname = if cfg.hostname.is_empty() {
            host_name()
        } else {
            cfg.hostname.clone()
        };
        let app = cfg.app_name.clone();
        let (tx, rx) = flume::bounded::<Owned>(cfg.queue_capacity);
        let counters = Arc::new(SiemCounters::default());
        let c = counters.clone();
        let thread = std::thread::Builder::new()
            .name("warden-siem".into())
            .spawn(move || {
                let mut line = String::with_capacity(2048);
                for o in rx.iter() {
                    let e = Event {
                        time_ns: o.time_ns,
                        latency_ns: o.latency_ns,
                        core: o.core,
                        decision: o.decision,
                        reason: o.reason,
                        classification: o.classification,
                        operation: o.operation,
                        origin: o.origin,
                        tenant: &o.strings[0],
                        agent: &o.strings[1],
                        tool: &o.strings[2],
                        action: &o.strings[3],
                        resource: &o.strings[4],
                        chain: &o.strings[5],
                    };
                    line.clear();
                    rfc5424(&mut line, facility, &hostname, &app, o.seq, &e);
                    match socket.send(line.as_bytes()) {
                        Ok(_) => c.sent.fetch_add(1, Relaxed),
                        Err(_) => c.errors.fetch_add(1, Relaxed),
                    };
                }
            })
            .map_err(|e| format!("cannot start the SIEM forwarder: {e}"))?;
        Ok(Forwarder {
            tx: Some(tx),
            thread: Some(thread),
            counters,
        })
    }

    /// Offers the staged event `seq` to the forwarder; never blocks (a full queue drops it,
    /// counted).
    pub fn offer(&self, seq: u64, e: &Event<'_>) {
        let Some(tx) = &self.tx else { return };
        // A saturated forwarder costs the writer one check, not five copies.
        if tx.is_full() {
            self.counters.dropped.fetch_add(1, Relaxed);
            return;
        }
        let o = Owned {
            seq,
            time_ns: e.time_ns,
            latency_ns: e.latency_ns,
            core: e.core,
            decision: e.decision,
            reason: e.reason,
            classification: e.classification,
            operation: e.operation,
            origin: e.origin,
            strings: [e.tenant, e.agent, e.tool, e.action, e.resource, e.chain].map(str::to_string),
        };
        if tx.try_send(o).is_err() {
            self.counters.dropped.fetch_add(1, Relaxed);
        }
    }
}

impl Drop for Forwarder {
    /// Sends what is queued, then stops the thread.
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Classification, DenyReason, Operation};

    fn ev<'a>(tenant: &'a str, agent: &'a str, resource: &'a str) -> Event<'a> {
        Event {
            time_ns: 1_700_000_000_123_456_789,
            latency_ns: 900,
            core: 1,
            decision: Decision::Deny,
            reason: DenyReason::TenantIsolation,
            classification: Classification::Cui,
            operation: Operation::Check,
            origin: crate::types::ContentOrigin::Data,
            tenant,
            agent,
            tool: "fs.read",
            action: "",
            resource,
            chain: "",
        }
    }

    #[test]
    fn an_event_is_one_rfc5424_line_whose_message_is_its_ocsf_json() {
        let mut s = String::new();
        rfc5424(
            &mut s,
            10,
            "gw1",
            "warden",
            42,
            &ev("acme", "planner-1", "/data/globex/x"),
        );
        assert!(
            s.starts_with("<84>1 2023-11-14T22:13:20.123Z gw1 warden "),
            "{s}"
        );
        assert!(s.contains(" deny [warden@32473 seq=\"42\" tenant=\"acme\" agent=\"planner-1\" tool=\"fs.read\" decision=\"deny\" reason=\"tenant_isolation\"] {"), "{s}");
        let json: serde_json::Value =
            serde_json::from_str(&s[s.find("] {").unwrap() + 2..]).unwrap();
        assert_eq!(json["class_uid"], 6003);
        assert_eq!(json["status"], "Failure");
        assert_eq!(json["disposition"], "Blocked");
        assert_eq!(json["actor"]["user"]["name"], "planner-1");
        assert_eq!(json["metadata"]["sequence"], 42);
        assert_eq!(json["resources"][0]["name"], "/data/globex/x");
        // a check of data an agent read says so
        assert_eq!(json["unmapped"]["origin"], "data");
    }

    proptest::proptest! {
        /// Whatever a client put in its fields, a line stays one line, the structured data
        /// keeps its five parameters, and the JSON message parses back to the same strings.
        #[test]
        fn hostile_fields_cannot_break_a_line(
            tenant in "\\PC{0,12}", agent in ".{0,12}", resource in "(.|\n|\r|\\]|\"|\\\\){0,24}"
        ) {
            let mut s = String::new();
            rfc5424(&mut s, 16, "h", "warden", 7, &ev(&tenant, &agent, &resource));
            proptest::prop_assert!(!s.contains('\n') && !s.contains('\r'));
            // the structured data ends at the first unescaped `]`
            let sd = &s[s.find('[').unwrap()..];
            let mut end = None;
            let mut esc = false;
            for (i, c) in sd.char_indices() {
                if esc { esc = false; continue; }
                match c { '\\' => esc = true, ']' => { end = Some(i); break; } _ => {} }
            }
            let end = end.unwrap();
            let ends_sd = sd[end..].starts_with("] {");
            proptest::prop_assert!(ends_sd, "structured data not closed before the message");
            let json: serde_json::Value = serde_json::from_str(&sd[end + 2..]).unwrap();
            proptest::prop_assert_eq!(json["actor"]["user"]["org"]["name"].as_str().unwrap(), tenant.as_str());
            proptest::prop_assert_eq!(json["actor"]["user"]["name"].as_str().unwrap(), agent.as_str());
        }
    }

    #[test]
    fn config_names_the_field_at_fault() {
        let c = SiemConfig {
            syslog: "tcp:1.2.3.4:5".into(),
            ..SiemConfig::default()
        };
        assert_eq!(c.validate("/var/log/w").unwrap_err().0, "siem.syslog");
        let c = SiemConfig {
            syslog: "udp:127.0.0.1:514".into(),
            ..SiemConfig::default()
        };
        assert!(c.validate("").unwrap_err().1.contains("audit.dir"));
        let c = SiemConfig {
            syslog: "unix:/dev/log".into(),
            facility: "local9".into(),
            ..SiemConfig::default()
        };
        assert_eq!(c.validate("d").unwrap_err().0, "siem.facility");
        assert!(SiemConfig::default().validate("").is_ok());
    }
}
