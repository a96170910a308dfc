//! The threat scanner in a loop, for profilers: scans the 4 KiB benign prose and attack-heavy
//! texts of `benches/scan.rs` (or, named, CHECK: the 1 KiB content of `benches/check.rs`;
//! UNICODE: the prose with typographic apostrophes; FILE: the file TEXT names) and prints the best per-scan time of BATCHES (default 30) batches
//! of 100 (SIZE=N: N bytes of the bench texts instead of 4 KiB). With SCANS=N it only scans each text N times and prints nothing, for instruction
//! counters: `tools/scan-instructions.sh` runs it under cachegrind with N = 0 and N = 100 and
//! prints the difference per scan, a figure this noisy VM cannot move. CATALOGUE=FILE scans
//! with that catalogue instead of the built-in one.
//!
//! `cargo build --release --example scan_profile && ./target/release/examples/scan_profile [PROSE|ATTACKS]`

use std::time::Instant;

/// A `const NAME: &str = "...";` of the bench, line continuations joined.
fn bench_text(src: &str, name: &str) -> String {
    let head = format!("const {name}: &str = \"");
    let start = src.find(&head).expect("the bench defines the text") + head.len();
    let end = start + src[start..].find("\";").expect("the text ends");
    src[start..end].replace("\\\n", "")
}

/// `text` repeated, whole characters up to `n` bytes.
fn whole_chars(text: &str, n: usize) -> Vec<u8> {
    let mut t = String::new();
    for c in text.chars().cycle() {
        if t.len() + c.len_utf8() > n {
            break;
        }
        t.push(c);
    }
    t.into_bytes()
}

fn main() {
    let src = include_str!("../benches/scan.rs");
    let which: Vec<String> = std::env::args().skip(1).collect();
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    // CATALOGUE=FILE: that catalogue instead of the built-in one, to weigh a catalogue edit
    // without a rebuild
    let mut s = match std::env::var("CATALOGUE") {
        Ok(file) => {
            let src = std::fs::read_to_string(&file).expect("CATALOGUE names a readable file");
            warden::threat::Scanner::from_toml(&src, &file).unwrap_or_else(|e| panic!("{e}"))
        }
        Err(_) => warden::threat::Scanner::builtin(),
    };
    for name in ["PROSE", "ATTACKS", "CHECK", "UNICODE", "FILE"] {
        if !which.iter().any(|w| w == name)
            && (!which.is_empty() || matches!(name, "CHECK" | "UNICODE" | "FILE"))
        {
            continue;
        }
        let text: Vec<u8> = match name {
            // the content of `benches/check.rs`: 1 KiB of prose, its first 16 bytes a hex counter
            "CHECK" => {
                let mut t: Vec<u8> = b"Please summarise the attached report for the board and \
                      flag any figures that look off. "
                    .iter()
                    .copied()
                    .cycle()
                    .take(1024)
                    .collect();
                // the bench stamps its request counter over the first 16 bytes, as hex digits
                // from the lowest nibble (CHECK_COUNTER=N: that counter; by default one whose
                // nibbles hold letters, so that the folded view differs from the light one)
                let n = env("CHECK_COUNTER", 0xabc12) as u64;
                for (k, c) in t[..16].iter_mut().enumerate() {
                    *c = b"0123456789abcdef"[(n >> (4 * k)) as usize & 15];
                }
                t
            }
            // `benches/scan.rs`'s `benign_4k_unicode`: the prose with U+2019 apostrophes, whole
            // characters up to SIZE bytes (text that takes the normaliser's general path)
            "UNICODE" => whole_chars(
                &bench_text(src, "PROSE").replace('\'', "\u{2019}"),
                env("SIZE", 4096),
            ),
            // FILE: the text of the file TEXT names (its first SIZE bytes, whole characters),
            // for text in other scripts
            "FILE" => {
                let path = std::env::var("TEXT").expect("FILE scans the file TEXT names");
                let all = std::fs::read_to_string(&path).expect("TEXT names a UTF-8 file");
                whole_chars(&all, env("SIZE", 4096))
            }
            _ => bench_text(src, name)
                .bytes()
                .cycle()
                .take(env("SIZE", 4096))
                .collect(),
        };
        if std::env::var("SCANS").is_ok() {
            for _ in 0..env("SCANS", 0) {
                std::hint::black_box(s.scan(std::hint::black_box(&text)));
            }
            continue;
        }
        let mut best = f64::MAX;
        for _ in 0..env("BATCHES", 30) {
            let t = Instant::now();
            for _ in 0..100 {
                std::hint::black_box(s.scan(std::hint::black_box(&text)));
            }
            best = best.min(t.elapsed().as_secs_f64() / 100.0 * 1e6);
        }
        print!("{name}: best {best:.2} µs  ");
    }
    println!();
}
