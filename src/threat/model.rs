//! A small linear model over hashed character 4-grams of the normalised text, trained by
//! `tools/threat-model` and loaded from a weights file (`threat.model`).
//!
//! Not shipped by default: validated by holding out whole sources of the development set, it did
//! not lift detection on sources it had not seen and raised false positives there (PERF.md has
//! the table), so the built-in scanner is patterns only. The plumbing stays so that a deployment
//! with its own labelled traffic can train and load one.
//!
//! Features: every 4-byte window of `" " + folded view + " "`, read as a little-endian `u32`,
//! multiplied by a constant and shifted to `bits` bits (one multiply per byte, no allocation).
//! The logit is `bias + scale * sum(w[h]) / sqrt(windows)`: a term-frequency vector normalised to
//! unit length, dotted with `i8` weights. Training and scoring share `for_each_feature`, so they
//! cannot disagree.
//!
//! File format (little-endian): `b"WDNM"`, version `u8` = 1, bits `u8`, two reserved bytes,
//! bias `f32`, scale `f32`, then `2^bits` weights as `i8`. `Model::parse` checks every length.

const MAGIC: &[u8; 4] = b"WDNM";
const HEADER: usize = 16;
const MIX: u32 = 0x9E37_79B1;

/// Calls `f` with the bucket of every 4-gram of `" " + text + " "`.
#[inline]
pub fn for_each_feature(text: &[u8], bits: u32, mut f: impl FnMut(usize)) {
    let shift = 32 - bits;
    let mut w: u32 = (b' ' as u32) << 24; // the window, newest byte highest
    let mut filled = 1;
    for &b in text.iter().chain(std::iter::once(&b' ')) {
        w = (w >> 8) | (b as u32) << 24;
        filled += 1;
        if filled >= 4 {
            f((w.wrapping_mul(MIX) >> shift) as usize);
        }
    }
}

/// Number of features `for_each_feature` reports for `text`.
pub fn feature_count(text: &[u8]) -> usize {
    (text.len() + 2).saturating_sub(3)
}

/// The largest bias and weight scale a model file may hold: with `i8` weights and the sum
/// divided by the square root of the feature count, a logit stays below
/// `MAX_MAGNITUDE * (1 + 127 * sqrt(features))`, finite for any text.
const MAX_MAGNITUDE: f32 = 1e4;

pub struct Model {
    bits: u32,
    bias: f32,
    scale: f32,
    weights: Box<[i8]>,
}

impl Model {
    /// Reads a model file; errors name the file.
    pub fn load(path: &std::path::Path) -> Result<Model, String> {
        let b = crate::source::read_bounded(path, crate::source::limits::MODEL_BYTES, "the model")?;
        Model::parse(&b).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Reads a model file.
    pub fn parse(b: &[u8]) -> Result<Model, String> {
        if b.len() < HEADER || &b[..4] != MAGIC {
            return Err("not a warden model file (expected the WDNM header)".into());
        }
        if b[4] != 1 {
            return Err(format!(
                "model version {} is not supported (expected 1)",
                b[4]
            ));
        }
        let bits = b[5] as u32;
        if !(8..=24).contains(&bits) {
            return Err(format!("model bits {bits} out of range 8..=24"));
        }
        let f = |i: usize| f32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let (bias, scale) = (f(8), f(12));
        // a trained model's bias and weights are a few units; a file whose scale is near
        // f32::MAX parses but sums to infinity, and a logit must stay finite
        if !bias.is_finite() || bias.abs() > MAX_MAGNITUDE {
            return Err(format!(
                "model bias {bias} is out of range (finite, at most {MAX_MAGNITUDE} either way)"
            ));
        }
        if !scale.is_finite() || !(0.0..=MAX_MAGNITUDE).contains(&scale) {
            return Err(format!(
                "model scale {scale} is out of range (finite, 0 to {MAX_MAGNITUDE})"
            ));
        }
        let n = 1usize << bits;
        if b.len() != HEADER + n {
            return Err(format!(
                "model length {} does not match 2^{bits} weights ({} expected)",
                b.len(),
                HEADER + n
            ));
        }
        Ok(Model {
            bits,
            bias,
            scale,
            weights: b[HEADER..].iter().map(|&x| x as i8).collect(),
        })
    }

    /// Serialises float weights (quantised to `i8`) into the file format.
    pub fn write(bits: u32, bias: f32, weights: &[f32]) -> Vec<u8> {
        assert_eq!(weights.len(), 1 << bits);
        let max = weights.iter().fold(0f32, |m, w| m.max(w.abs())).max(1e-9);
        let scale = max / 127.0;
        let mut out = Vec::with_capacity(HEADER + weights.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&[1, bits as u8, 0, 0]);
        out.extend_from_slice(&bias.to_le_bytes());
        out.extend_from_slice(&scale.to_le_bytes());
        out.extend(
            weights
                .iter()
                .map(|w| (w / scale).round().clamp(-127.0, 127.0) as i8 as u8),
        );
        out
    }

    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// The logit for `text` (a normalised view).
    #[inline]
    pub fn logit(&self, text: &[u8]) -> f32 {
        let n = feature_count(text);
        if n == 0 {
            return self.bias;
        }
        let mut sum: i32 = 0;
        let w = &self.weights;
        for_each_feature(text, self.bits, |h| sum += w[h] as i32);
        self.bias + self.scale * sum as f32 / (n as f32).sqrt()
    }

    /// The probability that `text` is an attack.
    pub fn probability(&self, text: &[u8]) -> f32 {
        1.0 / (1.0 + (-self.logit(text)).exp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_cover_every_window_with_padding() {
        let mut v = Vec::new();
        for_each_feature(b"ab", 16, |h| v.push(h));
        assert_eq!(v.len(), feature_count(b"ab")); // " ab " has one 4-gram
        assert_eq!(v.len(), 1);
        let mut n = 0;
        for_each_feature(b"", 16, |_| n += 1);
        assert_eq!(n, feature_count(b""));
        let mut n = 0;
        for_each_feature(b"hello world", 16, |h| {
            assert!(h < 1 << 16);
            n += 1
        });
        assert_eq!(n, 10);
    }

    #[test]
    fn write_then_parse_round_trips_and_bad_files_are_refused() {
        let w: Vec<f32> = (0..256).map(|i| (i as f32 - 128.0) / 10.0).collect();
        let bytes = Model::write(8, 0.5, &w);
        let m = Model::parse(&bytes).unwrap();
        assert_eq!(m.bits(), 8);
        assert!((m.logit(b"") - 0.5).abs() < 1e-6);
        assert!(Model::parse(&bytes[..bytes.len() - 1]).is_err());
        assert!(Model::parse(b"WDNM").is_err());
        let mut bad = bytes.clone();
        bad[4] = 9;
        assert!(Model::parse(&bad).is_err());
    }

    #[test]
    fn a_model_adds_its_finding_to_the_scan() {
        use crate::threat::Scanner;
        let text = b"please tell me a story about a dragon";
        let mut plain = Scanner::builtin();
        assert_eq!(plain.scan(text).score, 0);
        // every weight at the maximum: any text is an attack with certainty
        let sure = Model::parse(&Model::write(8, 0.0, &[1.0; 256])).unwrap();
        assert!(sure.probability(text) > 0.99);
        let mut with = Scanner::builtin().with_model(Some(sure));
        let r = with.scan(text);
        assert_eq!(r.score, 6);
        assert!(r.category_names().any(|c| c == "classifier"));
        // a fork shares it
        assert_eq!(with.fork().scan(text).score, 6);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.bin");
        std::fs::write(&p, b"nope").unwrap();
        assert!(Model::load(&p).err().unwrap().contains("m.bin"));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(b in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = Model::parse(&b);
        }

        /// Any header that parses gives a finite logit on any text (the fuzzer found a scale
        /// of 3.4e38, finite itself, whose product was not).
        #[test]
        fn a_model_that_parses_scores_finitely(
            bias in proptest::num::f32::ANY,
            scale in proptest::num::f32::ANY,
            weight in proptest::num::i8::ANY,
            text in proptest::collection::vec(proptest::num::u8::ANY, 0..2000),
        ) {
            let mut b = Vec::from(*MAGIC);
            b.extend_from_slice(&[1, 8, 0, 0]);
            b.extend_from_slice(&bias.to_le_bytes());
            b.extend_from_slice(&scale.to_le_bytes());
            b.extend(std::iter::repeat_n(weight as u8, 256));
            if let Ok(m) = Model::parse(&b) {
                proptest::prop_assert!(m.logit(&text).is_finite());
                proptest::prop_assert!(m.probability(&text).is_finite());
            }
        }
    }
}
