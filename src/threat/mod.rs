//! Threat detection: what an agent sends is read here. The normaliser undoes evasions
//! (`normalize`); the scanner matches the pattern catalogue kept as data (`patterns.toml`) and
//! gives a score, a threat level and the categories that fired (`scan`); the stage denies at
//! `threat.deny_at` and obliges below it (`stage`); an optional n-gram model adds points
//! (`model`); adversarial suffixes are character statistics (`gibberish`), and a passage of
//! them that is Morse code is decoded and scanned again (`morse`); the phrase automaton
//! is a table walked in eight lanes (`walk`). Behaviour anomalies and quarantine live in `crate::anomaly`.
use serde::Deserialize;

pub mod embedded;
pub mod gibberish;
pub mod model;
pub mod morse;
pub mod normalize;
pub mod scan;
#[cfg(target_arch = "x86_64")]
mod simd;
pub mod stage;
pub mod walk;

pub use normalize::Normalizer;
pub use scan::{ScanResult, Scanner, CATEGORIES};
pub use stage::ThreatStage;

pub use crate::types::LevelName;

// ---- settings (`[threat]` in the config file) ----

/// What the threat scan does with content longer than `max_scan_bytes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Oversize {
    /// Deny with `content_too_large`.
    #[default]
    Deny,
    /// Scan the first `max_scan_bytes` and judge on that.
    ScanPrefix,
}

#[derive(Clone, Debug, PartialEq, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThreatConfig {
    /// Scan the content of `check` and `scan_content` requests.
    pub enabled: bool,
    /// Deny at or above this level; below it, a request where something fired is allowed with
    /// obligations (audit required, the fired categories to redact).
    pub deny_at: LevelName,
    /// Longest content scanned, bytes.
    pub max_scan_bytes: usize,
    /// Longer content: `deny` or `scan_prefix`.
    pub oversize: Oversize,
    /// A pattern catalogue file replacing the built-in one (empty: built-in).
    pub catalogue: String,
    /// An n-gram model weights file (`tools/threat-model`); empty: patterns only.
    pub model: String,
    /// Read the cell borders of Markdown tables as text, not as shell pipes (`scan/table.rs`).
    pub markdown_tables: bool,
}

impl Default for ThreatConfig {
    fn default() -> Self {
        ThreatConfig {
            enabled: true,
            deny_at: LevelName::High,
            max_scan_bytes: 65536,
            oversize: Oversize::Deny,
            catalogue: String::new(),
            model: String::new(),
            markdown_tables: true,
        }
    }
}
