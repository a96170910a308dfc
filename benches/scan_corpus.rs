//! Threat scan time per text over the varied speed corpus (`benches/corpus/`): 400 distinct 4 KiB
//! texts a category (prompts, role-play prompts, documents, licences, manual pages, code, tables,
//! Russian, Chinese, six other languages, attacks). Each text is scanned 5 times and its median
//! kept; the table gives, per category, the median, p99 and largest of those, and the same over
//! all English texts. Beside it, the repeated paragraph of `benches/scan.rs` (the best case),
//! measured the same way in the same run. `cargo bench --bench scan_corpus [CATEGORY...]`.

mod corpus;

use std::hint::black_box;
use std::time::Instant;
use warden::threat::Scanner;

const SIZE_BYTES: usize = 4096;
const PER_CATEGORY: usize = 400;
const RUNS: usize = 5;

/// Per-text medians in nanoseconds.
fn time(scanner: &mut Scanner, texts: &[Vec<u8>]) -> Vec<u64> {
    let mut out = Vec::with_capacity(texts.len());
    let mut runs = [0u64; RUNS];
    for t in texts {
        black_box(scanner.scan(black_box(t)));
        for r in runs.iter_mut() {
            let start = Instant::now();
            black_box(scanner.scan(black_box(t)));
            *r = start.elapsed().as_nanos() as u64;
        }
        runs.sort_unstable();
        out.push(runs[RUNS / 2]);
    }
    out
}

fn row(name: &str, mut ns: Vec<u64>) {
    ns.sort_unstable();
    let q = |p: f64| ns[((ns.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0;
    println!(
        "{name:<14} {:>6} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
        ns.len(),
        q(0.5),
        q(0.9),
        q(0.99),
        q(1.0)
    );
}

fn main() {
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let mut scanner = Scanner::builtin();
    println!("\n== threat scan, µs per {SIZE_BYTES}-byte text (median of {RUNS} runs each) ==");
    println!(
        "{:<14} {:>6} {:>9} {:>9} {:>9} {:>9}",
        "category", "texts", "median", "p90", "p99", "max"
    );
    let paragraph: Vec<Vec<u8>> = (0..PER_CATEGORY)
        .map(|i| {
            let mut t = format!("{i} ").into_bytes();
            let p = b"Hi team, following up on yesterday's planning call: the quarterly report \
is due on Friday and we still need the revenue figures for the northern region. ";
            t.extend(p.iter().cycle().take(SIZE_BYTES - t.len()));
            t
        })
        .collect();
    row("paragraph", time(&mut scanner, &paragraph));
    let mut english = Vec::new();
    for (c, texts) in corpus::texts(SIZE_BYTES, PER_CATEGORY) {
        if !only.is_empty() && !only.contains(&c) {
            continue;
        }
        let ns = time(&mut scanner, &texts);
        if corpus::ENGLISH.contains(&c.as_str()) {
            english.extend_from_slice(&ns);
        }
        row(&c, ns);
    }
    if !english.is_empty() {
        row("ENGLISH", english);
    }
}
