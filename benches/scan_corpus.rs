//! Threat scan time per text over the varied speed corpus (`benches/corpus/`): 400 distinct 4 KiB
//! texts a category (prompts, role-play prompts, documents, licences, manual pages, code, tables,
//! Russian, Chinese, six other languages, attacks). The texts of a category are scanned in
//! sweeps, each text once a sweep, one untimed sweep then 5 timed; per text the median of its 5
//! times is kept, and the table gives, per category, the median, p90, p99 and largest of those,
//! and the same over all English texts. A gateway scans a stream of different texts: scanning one
//! text several times in a row (the second table, `--repeated` alone; this bench's method until
//! the thirty-fourth session) lets the branch predictor and the caches learn that text, and
//! reads 1.4 to 2 times faster. Beside them, the repeated paragraph of `benches/scan.rs` (the best
//! case), measured the same ways in the same run.
//! `cargo bench --bench scan_corpus [--sweeps | --repeated | --parts] [--bytes=N] [CATEGORY...]`
//! (`--parts`: the normaliser's views and the suffix statistics timed alone, beside the scan;
//! `--bytes`: texts of N bytes instead of 4,096, 1,024 being `Check`'s budgeted size).

mod corpus;

use std::hint::black_box;
use std::time::Instant;
use warden::threat::Scanner;

/// Bytes a text, unless `--bytes=N` says otherwise.
const SIZE_BYTES: usize = 4096;

/// The text size of this run: `--bytes=N`, or `SIZE_BYTES`.
fn size_bytes() -> usize {
    std::env::args()
        .find_map(|a| a.strip_prefix("--bytes=").map(str::to_owned))
        .map_or(SIZE_BYTES, |n| {
            n.parse()
                .unwrap_or_else(|_| panic!("--bytes={n}: not a number of bytes"))
        })
}
const PER_CATEGORY: usize = 400;
const RUNS: usize = 5;

/// Per-text medians in nanoseconds, each text scanned once a sweep over all of them.
fn sweeps(scanner: &mut Scanner, texts: &[Vec<u8>]) -> Vec<u64> {
    sweeps_of(texts, |t| {
        black_box(scanner.scan(black_box(t)));
    })
}

/// Per-text medians in nanoseconds of `f`, run on each text once a sweep over all of them.
fn sweeps_of(texts: &[Vec<u8>], mut f: impl FnMut(&[u8])) -> Vec<u64> {
    for t in texts {
        f(t);
    }
    let mut runs = vec![[0u64; RUNS]; texts.len()];
    for r in 0..RUNS {
        for (t, runs) in texts.iter().zip(runs.iter_mut()) {
            let start = Instant::now();
            f(t);
            runs[r] = start.elapsed().as_nanos() as u64;
        }
    }
    runs.iter_mut()
        .map(|r| {
            r.sort_unstable();
            r[RUNS / 2]
        })
        .collect()
}

/// `--parts`: per category, the sweep medians of two parts of the scan measured alone, the
/// normaliser's two views (`Normalizer::prepare`) and the suffix statistics
/// (`gibberish::suffix_except` over the raw text), beside the whole scan's.
fn parts(scanner: &mut Scanner, corpus: &[(String, Vec<Vec<u8>>)]) {
    let size = size_bytes();
    println!(
        "\n== parts of the scan, µs per {size}-byte text, median of per-text sweep medians =="
    );
    println!(
        "{:<14} {:>9} {:>9} {:>9}",
        "category", "views", "suffix", "scan"
    );
    let mut normalizer = warden::threat::Normalizer::new();
    for (c, texts) in corpus {
        let views = sweeps_of(texts, |t| {
            black_box(normalizer.prepare(black_box(t)));
        });
        let suffix = sweeps_of(texts, |t| {
            black_box(warden::threat::gibberish::suffix_except(black_box(t), &[]));
        });
        let scan = sweeps(scanner, texts);
        println!(
            "{c:<14} {:>9.1} {:>9.1} {:>9.1}",
            quantile(&sorted(views), 0.5),
            quantile(&sorted(suffix), 0.5),
            quantile(&sorted(scan), 0.5)
        );
    }
}

/// Per-text medians in nanoseconds, each text scanned `RUNS` times in a row after one untimed
/// scan (flattering: see the module's comment).
fn repeated(scanner: &mut Scanner, texts: &[Vec<u8>]) -> Vec<u64> {
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

/// `ns` in rising order.
fn sorted(mut ns: Vec<u64>) -> Vec<u64> {
    ns.sort_unstable();
    ns
}

/// The `p` quantile of nanoseconds in rising order, in µs.
fn quantile(sorted: &[u64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0
}

fn row(name: &str, ns: Vec<u64>) {
    let ns = sorted(ns);
    let q = |p: f64| quantile(&ns, p);
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
    // (`--sweeps` or `--repeated`: that method alone)
    let flag = |f: &str| std::env::args().any(|a| a == f);
    let (sweeps_only, repeated_only) = (flag("--sweeps"), flag("--repeated"));
    let size = size_bytes();
    let mut scanner = Scanner::builtin();
    let paragraph: Vec<Vec<u8>> = (0..PER_CATEGORY)
        .map(|i| {
            let mut t = format!("{i} ").into_bytes();
            let p = b"Hi team, following up on yesterday's planning call: the quarterly report \
is due on Friday and we still need the revenue figures for the northern region. ";
            t.extend(p.iter().cycle().take(size - t.len()));
            t
        })
        .collect();
    let corpus: Vec<(String, Vec<Vec<u8>>)> = corpus::texts(size, PER_CATEGORY)
        .into_iter()
        .filter(|(c, _)| only.is_empty() || only.contains(c))
        .collect();
    if flag("--parts") {
        return parts(&mut scanner, &corpus);
    }
    type Method = fn(&mut Scanner, &[Vec<u8>]) -> Vec<u64>;
    let methods: [(&str, Method); 2] = [
        ("each text once a sweep, median of 5 sweeps", sweeps),
        ("each text 5 times in a row (flattering)", repeated),
    ];
    for (name, time) in methods {
        let is_sweeps = name.starts_with("each text once");
        if (repeated_only && is_sweeps) || (sweeps_only && !is_sweeps) {
            continue;
        }
        println!("\n== threat scan, µs per {size}-byte text, {name} ==");
        println!(
            "{:<14} {:>6} {:>9} {:>9} {:>9} {:>9}",
            "category", "texts", "median", "p90", "p99", "max"
        );
        row("paragraph", time(&mut scanner, &paragraph));
        let mut english = Vec::new();
        for (c, texts) in &corpus {
            let ns = time(&mut scanner, texts);
            if corpus::ENGLISH.contains(&c.as_str()) {
                english.extend_from_slice(&ns);
            }
            row(c, ns);
        }
        if !english.is_empty() {
            row("ENGLISH", english);
        }
    }
}
