//! Threat detection (issue 4, in progress): what an agent sends is read here. So far: the
//! normaliser that undoes evasions before matching. The pattern catalogue, scanner, scoring,
//! `warden scan` and behaviour anomalies come next.

pub mod normalize;

pub use normalize::Normalizer;
