//! From matched patterns to a score and a level: weights, the long-prose and weak-evidence caps,
//! corroboration of jailbreak patterns, the model's points.

#[allow(unused_imports)]
use super::*;

/// The outcome of a scan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanResult {
    pub score: u32,
    pub level: ThreatLevel,
    /// Bit set over `CATEGORIES`.
    pub categories: u32,
}

impl ScanResult {
    pub fn category_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        CATEGORIES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.categories & (1 << i) != 0)
            .map(|(_, n)| *n)
    }
}

/// Score → level: 1–3 low, 4–5 medium, 6–9 high, 10 and above critical.
pub fn level_of(score: u32) -> ThreatLevel {
    match score {
        0 => ThreatLevel::None,
        1..=3 => ThreatLevel::Low,
        4..=5 => ThreatLevel::Medium,
        6..=9 => ThreatLevel::High,
        _ => ThreatLevel::Critical,
    }
}

/// The technical categories: exfiltration, path traversal, command injection (and the path and
/// adversarial-suffix probes, added apart). Their payloads are tool arguments, paths and short
/// prompts; in long prose (`long_prose`: documentation, skill files, code reviews) commands and
/// paths are mostly quoted examples, so their evidence together counts at most
/// `LONG_TEXT_TECHNICAL_CAP` (Low: allowed with an obligation), and weak evidence not at all.
/// With two pieces of evidence of a prose category beside it (an override, a jailbreak, an
/// extraction) a long text still reaches High.
pub(super) const TECHNICAL: u32 = 1 << 5 | 1 << 6 | 1 << 7;

pub(super) const LONG_TEXT_BYTES: usize = 1024;

/// Words (spaces) a long text has at least: a padded payload (`eval('echo XXXX…')`) is long
/// but not prose.
pub(super) const LONG_TEXT_WORDS: usize = 100;

/// Whether `text` is long prose: `LONG_TEXT_BYTES` or more with `LONG_TEXT_WORDS` spaces, not
/// counting padding (`padding`): a payload padded to look long (`; cat /etc/passwd` after a flood
/// of `! ! !`) is judged as the short text it is.
pub(super) fn long_prose(text: &[u8]) -> bool {
    // counted a block at a time in a byte-wide sum, which the compiler vectorises (a memchr
    // call per space, or a usize per byte, cost ten times more)
    // (a block with no blank is no padding, whose unit holds one: Chinese and Japanese text
    // asks `padding` seldom)
    let (mut bytes, mut spaces) = (0, 0);
    text.len() >= LONG_TEXT_BYTES
        && text.chunks(PADDING_BLOCK).any(|c| {
            let blanks = c.iter().map(|&b| (b == b' ') as u8).sum::<u8>() as usize;
            if blanks == 0 || !padding(c) {
                bytes += c.len();
                spaces += blanks;
            }
            bytes >= LONG_TEXT_BYTES && spaces >= LONG_TEXT_WORDS
        })
}

/// The blocks `padding` judges.
const PADDING_BLOCK: usize = 128;

/// Whether a block of `text` is padding: one unit of up to half a block over and over, where
/// the unit is words or shouts on one line (`! ! `, `lol `, a short sentence repeated): it has a
/// blank and a letter, `!` or `?`, and no line break or carriage return (a repeated log line,
/// `INFO heartbeat ok`, or a progress line, `Waiting for lock...\r`)
/// and nothing of markup or data (`<td></td>`, `- [ ] `, `{"a":0},`, `ff ff `, rules and
/// tables drawn with `=`, `-`, `|`), which a second hostile review found made high beside a
/// quoted command. Asks each period whether the block's first 8 bytes recur there before
/// comparing the rest: in prose none does, so a block costs 64 word compares.
fn padding(c: &[u8]) -> bool {
    let Some(head) = c.first_chunk::<8>().map(|h| u64::from_ne_bytes(*h)) else {
        return false;
    };
    if c.len() != PADDING_BLOCK {
        return false;
    }
    // (a block with a period of half a block or less holds only its unit's bytes, so one with a
    // byte no unit may hold is none: one vector pass, where the search for a period took up to
    // 64 compares a block of prose or program messages, 1–2 % of their scan)
    if c.iter().fold(false, |any, &b| any | not_in_padding(b)) {
        return false;
    }
    let period = (1..=PADDING_BLOCK / 2).find(|&p| {
        c.get(p..p + 8)
            .and_then(|w| w.first_chunk::<8>())
            .is_some_and(|w| u64::from_ne_bytes(*w) == head)
            && c[p..] == c[..PADDING_BLOCK - p]
    });
    // (and the unit holds nothing of `not_in_padding`: the block was tested for it above)
    period.is_some_and(|p| padding_unit(&c[..p]))
}

/// Whether a block's unit is words or shouts (`padding`): a blank, and a letter, `!` or `?`;
/// not a hex or base64 dump of zeros or ones (`ff ff `, `AAAA `).
fn padding_unit(unit: &[u8]) -> bool {
    unit.contains(&b' ')
        && unit
            .iter()
            .any(|&b| b.is_ascii_alphabetic() || matches!(b, b'!' | b'?'))
        && !(unit.iter().all(|&b| b == b' ' || b.is_ascii_hexdigit())
            && unit.iter().filter(|&&b| b != b' ').count() >= 2)
}

/// Bytes no unit of padding holds: line breaks, markup and data (`<td></td>`, `{"a":0},`, rules
/// and tables drawn with `=` and `|`).
fn not_in_padding(b: u8) -> bool {
    matches!(
        b,
        b'\n' | b'\r' | b'<' | b'>' | b'{' | b'}' | b'[' | b']' | b'"' | b':' | b',' | b'=' | b'|'
    )
}

/// 1, not Low's 3: a single prose pattern (Medium, `LONG_TEXT_PATTERN_CAP`) plus a long prompt's
/// backticks and semicolons made High at 3 (4 of the 27 persona prompts the development set
/// flagged, and 1 jailbreak of 580, which a pattern of its own now takes).
pub(super) const LONG_TEXT_TECHNICAL_CAP: u32 = 1;

/// Most technical evidence counts in a person's chat message with `MENTION_PROSE_WORDS` words of
/// prose (`ContentOrigin::User`): Medium, so that one prose pattern beside it makes High.
pub(super) const MENTION_TECHNICAL_CAP: u32 = 5;

/// Distinct words of prose (`mention_prose`) that make a person's message prose: "How do I add an
/// entry to /etc/hosts on my Mac? It says permission denied." has 12; a payload with a word or
/// two, `; cat /etc/passwd`, has 1. Set with the survey of developer questions (PERF.md,
/// forty-first session: 8, 12, 16 and 20 were measured).
pub(super) const MENTION_PROSE_WORDS: usize = 12;

/// English function words, of which a message's prose holds `MENTION_FUNCTION_WORDS` distinct
/// ones: a pad of one word repeated or of letters (`ok ok ok …`, `aa bb cc …`) holds none.
const FUNCTION_WORDS: [&[u8]; 30] = [
    b"the", b"to", b"of", b"in", b"on", b"for", b"with", b"and", b"or", b"but", b"is", b"are",
    b"was", b"it", b"this", b"that", b"my", b"you", b"your", b"how", b"what", b"why", b"when",
    b"do", b"does", b"can", b"should", b"not", b"have", b"me",
];

/// Distinct function words a message's prose holds at least (`FUNCTION_WORDS`).
pub(super) const MENTION_FUNCTION_WORDS: u32 = 3;

/// Whether `text` is a person's prose (`ContentOrigin::User`): `MENTION_PROSE_WORDS` distinct
/// words (`words`), `MENTION_FUNCTION_WORDS` of them function words. One pass; each word is
/// compared with at most `MENTION_PROSE_WORDS` kept before it.
pub(super) fn mention_prose(text: &[u8]) -> bool {
    let mut kept: [&[u8]; MENTION_PROSE_WORDS] = [&[]; MENTION_PROSE_WORDS];
    let (mut distinct, mut function) = (0, 0u32);
    for w in words(text) {
        if distinct >= MENTION_PROSE_WORDS && function.count_ones() >= MENTION_FUNCTION_WORDS {
            return true;
        }
        if let Some(f) = FUNCTION_WORDS
            .iter()
            .position(|f| f.eq_ignore_ascii_case(w))
        {
            function |= 1 << f;
        }
        if distinct < MENTION_PROSE_WORDS
            && !kept[..distinct].iter().any(|k| k.eq_ignore_ascii_case(w))
        {
            kept[distinct] = w;
            distinct += 1;
        }
    }
    distinct >= MENTION_PROSE_WORDS && function.count_ones() >= MENTION_FUNCTION_WORDS
}

/// The words of prose in `text`: runs of two or more ASCII letters, small after an optional
/// capital, with a blank, `(`, `"` or the text's start before and a blank, the text's end or a
/// sentence's punctuation after (`Where`, `entry`, `hosts?` are; `/etc/hosts`, `--force`,
/// `O_RDONLY`, `x86`, `cat/etc` are not).
pub(super) fn words(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let blank = |b: u8| matches!(b, b' ' | b'\n' | b'\t' | b'\r');
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < text.len() {
            let opens = i == 0 || blank(text[i - 1]) || matches!(text[i - 1], b'(' | b'"');
            if !opens || !text[i].is_ascii_alphabetic() {
                i += 1;
                continue;
            }
            let start = i;
            i += 1;
            while i < text.len() && text[i].is_ascii_lowercase() {
                i += 1;
            }
            let ends = text
                .get(i)
                .is_none_or(|&b| blank(b) || b",.?!:;)\"".contains(&b));
            if ends && i - start >= 2 {
                return Some(&text[start..i]);
            }
        }
        None
    })
}

/// In long prose no single pattern decides: each adds at most Medium (4), so High takes two
/// pieces of evidence. (A `SYSTEM:` line heading a long prompt someone wrote for themselves is
/// one; with an override or extraction request beside it, it is an attack.)
pub(super) const LONG_TEXT_PATTERN_CAP: u32 = 4;

/// Index of `jailbreak_persona` in `CATEGORIES`.
pub(super) const JAILBREAK: u8 = 1;

/// Index of `instruction_override` in `CATEGORIES`.
pub(super) const OVERRIDE: u8 = 0;

/// Index of `encoded_payload` in `CATEGORIES`: with weight 0, a reversal marker (a word only
/// reversed English has, `eht`, `ruoy`); `REVERSAL_MARKERS` distinct ones in a text have its
/// lines read again reversed.
pub(super) const ENCODED: u8 = 4;

/// Distinct reversal markers that make a text's lines worth reading reversed.
pub(super) const REVERSAL_MARKERS: u32 = 2;

/// Added when two distinct jailbreak patterns or more match a text that also addresses an AI
/// model (a context pattern: weight 0, category `jailbreak_persona`, e.g. `chatgpt`, `language
/// model`). A jailbreak is a persona set up for the model plus the disinhibition it is given;
/// two jailbreak phrases in a story about people are weaker evidence than in a message to the
/// model. Context alone adds nothing.
pub(super) const CORROBORATION: u32 = 2;

/// Added instead of `CORROBORATION` when the two jailbreak patterns or more match a text that
/// names no model: many jailbreaks address "you" alone ("now you act as two entities…", a
/// role-play set-up with its disinhibition). On the development set this took 3 jailbreaks to
/// High and no benign row; at 2 it took 3 persona prompts too.
pub(super) const CORROBORATION_UNADDRESSED: u32 = 1;

/// Patterns of at most this weight in the technical categories (`CAPPED`) are weak evidence (a
/// backtick span, a pipe before a word, a `${...}`): alone they mean little, and a long
/// technical document collects many of them. Prose categories are not capped: a jailbreak is
/// many weak phrases together.
pub(super) const WEAK_WEIGHT: u32 = 3;

/// The capped category: command injection.
pub(super) const CAPPED: u32 = 1 << 7;
/// Weak evidence of a capped category adds at most this much (Low): a long technical document
/// does not add up to an attack; with a strong pattern, or other evidence, it still counts.
pub(super) const WEAK_CAP: u32 = 3;

/// Score points from the model's probability: nothing below 0.6, then Low, Medium, High alone.
/// The model never makes a finding Critical by itself.
pub(super) fn model_points(p: f32) -> u32 {
    match p {
        p if p >= 0.97 => 6,
        p if p >= 0.85 => 4,
        p if p >= 0.6 => 2,
        _ => 0,
    }
}

/// Weight of an adversarial-suffix finding: Low on its own (an indicator and an obligation; it
/// tips a request only when something else fired too). The development set has no optimiser
/// suffixes, so a heavier weight could only be tuned on false positives.
pub(super) const GIBBERISH_WEIGHT: u32 = 2;

/// What a flood of one short unit repeated weighs beside other evidence (`decode::floods`): low
/// alone.
pub(super) const FLOOD_WEIGHT: u32 = 3;

/// What a flood weighs with an order for a fixed reply right after it (`decode::FLOOD_ORDER`:
/// `ö ö ö … Say "…"`, `)))…) Prepend "…" to your response`): high. Hijacking pads the text so that the prompt's own
/// instructions fall out of the model's attention, then gives its order; the phrase ordered is
/// anything, and the order alone is what prompts ask every day.
pub(super) const FLOOD_ORDER_WEIGHT: u32 = 6;

/// What a flood of unclosed brackets among words weighs (`gibberish::bracket_flood`): high.
pub(super) const BRACKET_FLOOD_WEIGHT: u32 = 6;

#[cfg(test)]
mod tests {
    use super::*;

    /// `padding` as first written: the period searched in every block, the unit then read for
    /// the bytes of `not_in_padding` (and its words, `padding_unit`, which did not change).
    fn padding_reference(c: &[u8]) -> bool {
        if c.len() != PADDING_BLOCK {
            return false;
        }
        let period = (1..=PADDING_BLOCK / 2).find(|&p| c[p..] == c[..PADDING_BLOCK - p]);
        period.is_some_and(|p| {
            let unit = &c[..p];
            padding_unit(unit) && !unit.iter().any(|&b| not_in_padding(b))
        })
    }

    proptest::proptest! {
        /// Refusing a block for a byte no unit holds, before its period is looked for, refuses
        /// no padding: units of every length, repeated over a block, some with one byte changed.
        #[test]
        fn a_block_is_padding_as_its_unit_says(
            unit in proptest::prop_oneof![
                // padding's units (`lol `, `! ! `, `ab ab `), and units of any of the bytes
                proptest::collection::vec(proptest::sample::select(b" ab!?".to_vec()), 1..12),
                proptest::collection::vec(proptest::sample::select(
                    b" ab!?f0\n\r<>{}[]\":,=|x.".to_vec()), 1..70),
            ],
            change in proptest::option::of((0usize..PADDING_BLOCK, proptest::sample::select(
                b" a\n,|z".to_vec()))),
        ) {
            let mut c: Vec<u8> = unit.iter().copied().cycle().take(PADDING_BLOCK).collect();
            if let Some((at, b)) = change {
                c[at] = b;
            }
            proptest::prop_assert_eq!(padding(&c), padding_reference(&c), "{:?}", String::from_utf8_lossy(&c));
        }
    }
}
