//! The threat scan's speed corpus (`benches/corpus/scan.jsonl`, made by `tools/speed-corpus.py`):
//! pieces of text by category, joined here into distinct texts of one size. Shared by
//! `benches/scan_corpus.rs` (4 KiB texts through the scanner) and `benches/check.rs` (1 KiB texts
//! through a full `Check`).

/// Categories measured as English (the speed targets' "4 KiB of English"); the others are
/// reported apart: `ru`, `zh`, `multilingual` (not ASCII), `attack` (the worst case).
#[allow(dead_code)]
pub const ENGLISH: [&str; 7] = [
    "prompt", "roleplay", "document", "licence", "manual", "code", "table",
];

/// `(category, texts)` in the file's order of first appearance: `per_category` texts of at most
/// `size_bytes` bytes each (whole characters), each the category's pieces in an order of its own
/// (a fixed xorshift seed), joined by a blank line until the text is full.
pub fn texts(size_bytes: usize, per_category: usize) -> Vec<(String, Vec<Vec<u8>>)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/corpus/scan.jsonl");
    let data = std::fs::read_to_string(path).expect("benches/corpus/scan.jsonl");
    let mut cats: Vec<(String, Vec<String>)> = Vec::new();
    for (n, line) in data.lines().enumerate() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{path}:{}: {e}", n + 1));
        let (Some(c), Some(t)) = (v["category"].as_str(), v["text"].as_str()) else {
            panic!("{path}:{}: a row needs `category` and `text`", n + 1)
        };
        match cats.iter_mut().find(|(k, _)| k == c) {
            Some((_, v)) => v.push(t.to_string()),
            None => cats.push((c.to_string(), vec![t.to_string()])),
        }
    }
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    cats.into_iter()
        .map(|(c, pieces)| {
            let texts = (0..per_category)
                .map(|_| {
                    let mut order: Vec<usize> = (0..pieces.len()).collect();
                    for i in (1..order.len()).rev() {
                        order.swap(i, (next() % (i as u64 + 1)) as usize);
                    }
                    let mut t = String::new();
                    for &i in order.iter().cycle().take(order.len() * 4) {
                        for ch in pieces[i].chars() {
                            if t.len() + ch.len_utf8() > size_bytes {
                                return t.into_bytes();
                            }
                            t.push(ch);
                        }
                        t.push_str("\n\n");
                    }
                    t.into_bytes()
                })
                .collect();
            (c, texts)
        })
        .collect()
}
