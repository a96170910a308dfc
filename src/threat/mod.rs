//! Threat detection (issue 4, in progress): what an agent sends is read here. So far: the
//! normaliser that undoes evasions, and the scanner over a pattern catalogue kept as data
//! (`patterns.toml`) with a score and threat level per request. Not yet: the stage wiring
//! (`Check` denying at a level), the n-gram model, behaviour anomalies and quarantine.

pub mod model;
pub mod normalize;
pub mod scan;
pub mod stage;

pub use normalize::Normalizer;
pub use scan::{ScanResult, Scanner, CATEGORIES};
pub use stage::ThreatStage;
