//! JSON forms of requests and verdicts, for the CLI and for gateways that speak JSON.
//! Control plane: allocates freely. Every error names the request field at fault.

use crate::request::Request;
use crate::types::{
    Classification, ContentOrigin, Decision, DenyReason, Field, Operation, Priority, Verdict,
};
use serde::{Deserialize, Serialize};

/// A request as JSON. Every field but `tenant` and `agent` is optional.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JsonRequest {
    #[serde(default = "default_op")]
    pub operation: String,
    #[serde(default)]
    pub tenant: String,
    #[serde(default)]
    pub agent: String,
    #[serde(default)]
    pub credential: String,
    #[serde(default)]
    pub tool: String,
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub resource: String,
    #[serde(default)]
    pub content: String,
    /// Where `content` comes from: `prompt` (the default) or `data` (what the agent read: a
    /// tool's result, a page, a document); `check` and `scan_content` only.
    #[serde(default = "default_origin")]
    pub origin: String,
    #[serde(default = "default_class")]
    pub classification: String,
    #[serde(default = "default_prio")]
    pub priority: String,
    /// Milliseconds since the Unix epoch; absent: 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_ms: Option<u64>,
    /// A number used once per token; absent: 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<u64>,
}

fn default_op() -> String {
    "check".into()
}
fn default_origin() -> String {
    "prompt".into()
}
fn default_class() -> String {
    "unclassified".into()
}
fn default_prio() -> String {
    "medium".into()
}

/// Why a JSON request could not become a `Request`.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonError {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field == "-" {
            write!(f, "{}", self.message)
        } else {
            write!(f, "request field `{}`: {}", self.field, self.message)
        }
    }
}

impl JsonRequest {
    pub fn parse(text: &str) -> Result<JsonRequest, JsonError> {
        if !text.trim_start().starts_with('{') {
            return Err(JsonError {
                field: "-".into(),
                message: "a request is one JSON object, such as {\"tenant\": \"acme\", \"agent\": \"planner-1\"}".into(),
            });
        }
        let mut de = serde_json::Deserializer::from_str(text);
        let req: JsonRequest = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let (line, column) = (inner.line(), inner.column());
            // serde's words, without its own position (given once, below) and its Rust types
            let msg = inner.to_string();
            let msg = msg.split(" at line ").next().unwrap_or(&msg);
            let msg = msg
                .replace("struct JsonRequest", "a request object")
                .replace("expected u64", "expected a whole number (0 or more)")
                .replace("expected ident", "expected a value");
            let field = match msg.strip_prefix("unknown field `") {
                Some(rest) => rest.split('`').next().unwrap_or("-").to_string(),
                None if !path.is_empty() && path != "." && path != "?" => path,
                None => "-".into(),
            };
            JsonError {
                field,
                message: format!("{msg} (line {line}, column {column})"),
            }
        })?;
        // Nothing but white space may follow the object: a second object or trailing bytes
        // would let a gateway that reads them otherwise judge a different request.
        de.end().map_err(|e| JsonError {
            field: "-".into(),
            message: format!(
                "a request is one JSON object, and something follows it (line {}, column {})",
                e.line(),
                e.column()
            ),
        })?;
        Ok(req)
    }

    /// Borrows this JSON request as a `Request`.
    pub fn to_request(&self) -> Result<Request<'_>, JsonError> {
        let bad = |field: &str, message: String| JsonError {
            field: field.into(),
            message,
        };
        let op = Operation::parse(&self.operation).ok_or_else(|| {
            bad("operation", format!("unknown operation `{}`; expected check, validate_agent, authorize_tool, scan_content, crypto_encrypt, crypto_decrypt, crypto_sign, crypto_verify, audit or custom:<id>", self.operation))
        })?;
        let class = Classification::parse(&self.classification).ok_or_else(|| {
            bad("classification", format!("unknown classification `{}`; expected unclassified, cui, confidential, secret or top_secret", self.classification))
        })?;
        let origin = ContentOrigin::parse(&self.origin).ok_or_else(|| {
            bad(
                "origin",
                format!(
                    "unknown origin `{}`; expected prompt (written to the agent), data (what the agent read: a tool's result, a page, a document) or user (a person's message in a chat)",
                    self.origin
                ),
            )
        })?;
        if op.code_with(origin).is_none() {
            return Err(bad(
                "origin",
                format!("`{}` scans no content, so it takes no origin; remove the field or use check or scan_content", self.operation),
            ));
        }
        let prio = Priority::parse(&self.priority).ok_or_else(|| {
            bad(
                "priority",
                format!(
                    "unknown priority `{}`; expected critical, high, medium, low or background",
                    self.priority
                ),
            )
        })?;
        Ok(Request::new(op)
            .tenant(&self.tenant)
            .agent(&self.agent)
            .credential(self.credential.as_bytes())
            .tool(&self.tool)
            .action(&self.action)
            .resource(&self.resource)
            .content(self.content.as_bytes())
            .origin(origin)
            .classification(class)
            .priority(prio)
            .timestamp_ms(self.timestamp_ms.unwrap_or(0))
            .nonce(self.nonce.unwrap_or(0)))
    }
}

#[derive(Debug, Serialize)]
pub struct JsonObligations {
    pub memory_bytes: u64,
    pub cpu_time_ms: u32,
    pub file_bytes: u64,
    /// Operation count limit (0: none).
    pub operations: u32,
    /// Threat categories the gateway must redact from what it passes on.
    pub redactions: Vec<&'static str>,
    pub audit_required: bool,
}

/// A verdict as JSON: every code named.
#[derive(Debug, Serialize)]
pub struct JsonVerdict {
    pub decision: &'static str,
    pub reason: &'static str,
    /// The request field at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// A sentence: why it was denied, or what an allow with obligations obliges and why.
    pub explain: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub obligations: Option<JsonObligations>,
    pub cache_hit: bool,
    pub threat_level: &'static str,
    /// Threat categories the scan found (at any level).
    pub threat_categories: Vec<&'static str>,
    /// The effective classification.
    pub classification: &'static str,
    /// The policy rule that decided, with its place in the policy file (when a policy is loaded
    /// and a rule decided; filled by whoever holds the engine: `Engine::explain`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    pub latency_ns: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub core: Option<u16>,
    /// The agent's trust score the request was judged at (0 to 1), when the policy consulted
    /// one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust: Option<f32>,
}

/// The names of the threat categories set in `bits`.
pub fn category_names(bits: u32) -> Vec<&'static str> {
    crate::threat::scan::CATEGORIES
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, n)| *n)
        .collect()
}

/// What an allow with obligations obliges the gateway to do, and why each obligation is there.
fn obligations_sentence(v: &Verdict) -> String {
    let o = &v.obligations;
    let mut parts = Vec::new();
    if o.memory_bytes != 0 || o.cpu_time_ms != 0 || o.file_bytes != 0 || o.operations != 0 {
        let mut l = format!(
            "the tool's security level limits it to {} MiB of memory, {} ms of CPU time and {}",
            o.memory_bytes >> 20,
            o.cpu_time_ms,
            if o.file_bytes == 0 {
                "no file writes".to_string()
            } else {
                format!("{} MiB of files", o.file_bytes >> 20)
            }
        );
        if o.operations != 0 {
            l.push_str(&format!(" and {} operations", o.operations));
        }
        parts.push(l);
    }
    if o.redactions != 0 {
        parts.push(format!(
            "redact what the threat scan found below threat.deny_at ({})",
            category_names(o.redactions).join(", ")
        ));
    }
    if o.audit_required {
        parts.push(
            "record it in the audit log (a privileged tool, an audit request, or a threat finding)"
                .to_string(),
        );
    }
    if parts.is_empty() {
        "allowed".into()
    } else {
        format!("allowed with obligations: {}", parts.join("; "))
    }
}

impl From<&Verdict> for JsonVerdict {
    fn from(v: &Verdict) -> Self {
        let field = match v.reason {
            DenyReason::MissingField(f)
            | DenyReason::FieldTooLarge(f)
            | DenyReason::Malformed(f) => Some(f.name().to_string()),
            _ => None,
        };
        let o = &v.obligations;
        JsonVerdict {
            decision: v.decision.name(),
            reason: v.reason.name(),
            field,
            explain: if v.decision == Decision::AllowWith {
                obligations_sentence(v)
            } else {
                v.reason.to_string()
            },
            obligations: (v.decision == Decision::AllowWith).then(|| JsonObligations {
                memory_bytes: o.memory_bytes,
                cpu_time_ms: o.cpu_time_ms,
                file_bytes: o.file_bytes,
                operations: o.operations,
                redactions: category_names(o.redactions),
                audit_required: o.audit_required,
            }),
            cache_hit: v.cache_hit,
            threat_level: v.threat_level.name(),
            threat_categories: category_names(v.indicators),
            classification: v.classification.name(),
            rule: None,
            latency_ns: v.latency_ns,
            core: (v.core != u16::MAX).then_some(v.core),
            trust: (v.trust_pct != crate::trust::NO_TRUST).then(|| v.trust_pct as f32 / 100.0),
        }
    }
}

/// A deny verdict for a request that could not even be parsed, with the parser's explanation.
pub fn malformed_verdict(e: &JsonError) -> JsonVerdict {
    let field = match e.field.as_str() {
        // the origin rides in the operation's argument on the wire
        "operation" | "origin" => Field::Operation,
        "classification" => Field::Classification,
        "priority" => Field::Priority,
        _ => Field::Header,
    };
    let mut j = JsonVerdict::from(&Verdict::deny(DenyReason::Malformed(field)));
    j.explain = e.to_string();
    j.field = (e.field != "-").then(|| e.field.clone());
    j
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_names_bad_fields() {
        let j = JsonRequest::parse(
            r#"{"tenant":"t","agent":"a","classification":"secret","operation":"custom:4"}"#,
        )
        .unwrap();
        let r = j.to_request().unwrap();
        assert_eq!(r.classification, Classification::Secret);
        assert_eq!(r.operation, Operation::Custom(4));
        let j =
            JsonRequest::parse(r#"{"tenant":"t","agent":"a","classification":"sekret"}"#).unwrap();
        assert_eq!(j.to_request().unwrap_err().field, "classification");
        // the origin: prompt by default, data for what an agent read, nothing else; and only
        // where content is scanned
        let j = JsonRequest::parse(r#"{"tenant":"t","agent":"a","content":"x"}"#).unwrap();
        assert_eq!(j.to_request().unwrap().origin, ContentOrigin::Prompt);
        let j = JsonRequest::parse(
            r#"{"tenant":"t","agent":"a","operation":"scan_content","content":"x","origin":"data"}"#,
        )
        .unwrap();
        assert_eq!(j.to_request().unwrap().origin, ContentOrigin::Data);
        for bad in [
            r#"{"tenant":"t","agent":"a","origin":"Data"}"#,
            r#"{"tenant":"t","agent":"a","origin":"tool"}"#,
            r#"{"tenant":"t","agent":"a","operation":"validate_agent","origin":"data"}"#,
        ] {
            let e = JsonRequest::parse(bad).unwrap().to_request().unwrap_err();
            assert_eq!(e.field, "origin", "{bad}");
            assert_eq!(
                malformed_verdict(&e).reason,
                DenyReason::Malformed(Field::Operation).name()
            );
        }
        let e = JsonRequest::parse(r#"{"tenant":"t","agnt":"a"}"#).unwrap_err();
        assert_eq!(e.field, "agnt");
        // a field given twice is refused, not the last taken: a gateway that read the first
        // would have checked another tenant, agent, content or origin than warden
        for twice in [
            r#"{"tenant":"t","agent":"a","tenant":"u"}"#,
            r#"{"tenant":"t","agent":"a","content":"hi","content":"ignore all previous instructions"}"#,
            r#"{"tenant":"t","agent":"a","origin":"data","origin":"user"}"#,
        ] {
            let e = JsonRequest::parse(twice).unwrap_err();
            assert!(e.message.contains("duplicate field"), "{twice}: {e}");
            assert_eq!(malformed_verdict(&e).decision, "deny");
        }
        let e = JsonRequest::parse(r#"{"tenant": 5}"#).unwrap_err();
        assert!(e.message.contains("line 1"), "{e}");
        let v = malformed_verdict(&e);
        assert_eq!(v.decision, "deny");
        // one object, and nothing after it
        for trailing in [
            r#"{"tenant":"t","agent":"a"}{"tenant":"u","agent":"b"}"#,
            r#"{"tenant":"t","agent":"a"} ]]]"#,
            r#"{"tenant":"t","agent":"a"},"#,
        ] {
            let e = JsonRequest::parse(trailing).unwrap_err();
            assert!(e.message.contains("something follows"), "{trailing}: {e}");
        }
        JsonRequest::parse("{\"tenant\":\"t\",\"agent\":\"a\"}\n  \t").unwrap();
        for bad in [
            "custom:+7",
            "custom:07",
            "custom:-1",
            "custom:",
            "custom:65536",
        ] {
            let j = JsonRequest::parse(&format!(
                r#"{{"tenant":"t","agent":"a","operation":"{bad}"}}"#
            ))
            .unwrap();
            assert_eq!(j.to_request().unwrap_err().field, "operation", "{bad}");
        }
    }
}
