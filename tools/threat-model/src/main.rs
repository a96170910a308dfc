//! Trains warden's threat model (a logistic regression over hashed character 4-grams of the
//! normalised text, `warden::threat::model`) and validates it by holding out whole sources.
//!
//! ```text
//! cargo run --release -p warden-threat-model -- eval  [DEV.jsonl]   # leave-one-source-out table
//! cargo run --release -p warden-threat-model -- train [DEV.jsonl] [OUT]  # default target/threat-model.bin
//! ```
//!
//! `eval` trains once per source on every other source and scores the held-out source with the
//! patterns alone and with patterns plus model: a model is worth loading (`threat.model`) only
//! if it lifts detection on sources it never saw without raising false positives there. On the
//! development set it does not (PERF.md), so warden ships patterns only. Deterministic: a fixed
//! seed.

use std::collections::BTreeMap;
use warden::threat::model::{feature_count, for_each_feature, Model};
use warden::threat::{Normalizer, Scanner};
use warden::ThreatLevel;

const BITS: u32 = 17;
const EPOCHS: usize = 12;
const RATE: f32 = 0.2;
const L2: f32 = 1e-6;

struct Row {
    text: String,
    attack: bool,
    category: String,
    source: String,
    /// (bucket, value) with value = count / sqrt(windows), as `Model::logit` computes it.
    x: Vec<(u32, f32)>,
}

fn load(path: &str) -> Vec<Row> {
    let src = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let mut norm = Normalizer::new();
    src.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let v: serde_json::Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{path}:{}: not JSON: {e}", i + 1));
            let field = |k: &str| {
                v[k].as_str()
                    .unwrap_or_else(|| panic!("{path}:{}: field `{k}` missing", i + 1))
                    .to_string()
            };
            let text = field("text");
            let view = norm.normalize(text.as_bytes()).as_bytes().to_vec();
            let mut counts: BTreeMap<u32, f32> = BTreeMap::new();
            for_each_feature(&view, BITS, |h| *counts.entry(h as u32).or_default() += 1.0);
            let n = (feature_count(&view) as f32).max(1.0).sqrt();
            Row {
                attack: field("label") == "attack",
                category: field("category"),
                source: field("source"),
                text,
                x: counts.into_iter().map(|(h, c)| (h, c / n)).collect(),
            }
        })
        .collect()
}

/// Logistic regression, AdaGrad, classes weighted to balance, rows in a seeded shuffled order.
fn train(rows: &[&Row]) -> (f32, Vec<f32>) {
    let mut w = vec![0f32; 1 << BITS];
    let mut g2 = vec![1e-6f32; 1 << BITS];
    let (mut b, mut gb) = (0f32, 1e-6f32);
    let pos = rows.iter().filter(|r| r.attack).count().max(1) as f32;
    let neg = (rows.len() as f32 - pos).max(1.0);
    let mut order: Vec<usize> = (0..rows.len()).collect();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..EPOCHS {
        for i in (1..order.len()).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            order.swap(i, (seed % (i as u64 + 1)) as usize);
        }
        for &i in &order {
            let r = rows[i];
            let z = b + r.x.iter().map(|&(h, v)| w[h as usize] * v).sum::<f32>();
            let p = 1.0 / (1.0 + (-z).exp());
            let y = r.attack as u8 as f32;
            let weight = if r.attack {
                0.5 * rows.len() as f32 / pos
            } else {
                0.5 * rows.len() as f32 / neg
            };
            let g = (p - y) * weight;
            for &(h, v) in &r.x {
                let h = h as usize;
                let gi = g * v + L2 * w[h];
                g2[h] += gi * gi;
                w[h] -= RATE * gi / g2[h].sqrt();
            }
            gb += g * g;
            b -= RATE * g / gb.sqrt();
        }
    }
    (b, w)
}

/// Flagged = the scanner's level reaches High (what `check` denies at by default).
fn flagged(scanner: &mut Scanner, text: &str) -> bool {
    scanner.scan(text.as_bytes()).level >= ThreatLevel::High
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map(String::as_str).unwrap_or("eval");
    let data = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "../shared/data/threats/dev.jsonl".into());
    let rows = load(&data);
    eprintln!("{} rows from {data}", rows.len());
    match mode {
        "train" => {
            let out = args
                .get(2)
                .cloned()
                .unwrap_or_else(|| "target/threat-model.bin".into());
            let all: Vec<&Row> = rows.iter().collect();
            let (b, w) = train(&all);
            std::fs::write(&out, Model::write(BITS, b, &w)).unwrap();
            eprintln!("wrote {out} ({} buckets)", w.len());
        }
        "eval" => {
            let sources: Vec<String> = {
                let mut s: Vec<String> = rows.iter().map(|r| r.source.clone()).collect();
                s.sort();
                s.dedup();
                s
            };
            let mut patterns = Scanner::builtin().with_model(None);
            println!("held-out source (category)                         rows  patterns  +model  model alone");
            for s in &sources {
                let train_rows: Vec<&Row> = rows.iter().filter(|r| &r.source != s).collect();
                let test: Vec<&Row> = rows.iter().filter(|r| &r.source == s).collect();
                let (b, w) = train(&train_rows);
                let model = Model::parse(&Model::write(BITS, b, &w)).unwrap();
                let alone = test
                    .iter()
                    .filter(|r| {
                        model.probability(Normalizer::new().normalize(r.text.as_bytes()).as_bytes())
                            >= 0.5
                    })
                    .count();
                let mut with = Scanner::builtin().with_model(Some(model));
                let p = test
                    .iter()
                    .filter(|r| flagged(&mut patterns, &r.text))
                    .count();
                let m = test.iter().filter(|r| flagged(&mut with, &r.text)).count();
                let pct = |k: usize| 100.0 * k as f64 / test.len() as f64;
                println!(
                    "{:<44} {:>10} {:>5}  {:>7.1}% {:>6.1}% {:>9.1}%   ({})",
                    s,
                    test[0].category,
                    test.len(),
                    pct(p),
                    pct(m),
                    pct(alone),
                    if test[0].attack {
                        "detected"
                    } else {
                        "false +"
                    }
                );
            }
        }
        other => {
            eprintln!("unknown mode `{other}`: use eval or train");
            std::process::exit(2);
        }
    }
}
