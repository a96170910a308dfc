//! Threat detection: what an agent sends is read here. The normaliser undoes evasions
//! (`normalize`); the scanner matches the pattern catalogue kept as data (`patterns.toml`) and
//! gives a score, a threat level and the categories that fired (`scan`); the stage denies at
//! `threat.deny_at` and obliges below it (`stage`); an optional n-gram model adds points
//! (`model`); adversarial suffixes are character statistics (`gibberish`), and a passage of
//! them that is Morse code is decoded and scanned again (`morse`); the phrase automaton
//! is a table walked in eight lanes (`walk`). Behaviour anomalies and quarantine live in `crate::anomaly`.

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
