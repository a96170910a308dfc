//! What the catalogue's regexes become, decided from their syntax trees alone: which part of
//! each runs where (start-anchored, gated, inner, triggered, or in the set), and the literals that
//! join the phrase automaton as gates and triggers. Pure `regex-syntax` and `std`, no compiled
//! automaton: the build script includes this file too (`build.rs`), so the phrase tables it
//! builds for the built-in catalogue come from exactly the patterns `View::build` asks for at
//! run time (`threat::embedded`).

use regex_syntax::hir::literal::Literal;
use regex_syntax::hir::Hir;
use serde::Deserialize;

/// A catalogue file's form (`patterns.toml`).
#[derive(Deserialize, PartialEq, Debug)]
#[serde(deny_unknown_fields)]
pub struct CatalogueFile {
    pub pattern: Vec<PatternFile>,
}

#[derive(Deserialize, PartialEq, Debug)]
#[serde(deny_unknown_fields)]
pub struct PatternFile {
    pub category: String,
    pub weight: u32,
    #[serde(default = "folded")]
    pub view: String,
    pub phrase: Option<String>,
    pub regex: Option<String>,
    /// Whether a match counts as one of the two jailbreak patterns that corroborate
    /// (`CORROBORATION`); `false` for evidence of another kind filed under a prose category,
    /// such as a slot for the request a template carries.
    #[serde(default = "yes")]
    pub corroborates: bool,
    /// The weight where the text is data an agent read (`ContentOrigin::Data`), when that is
    /// more than `weight`: for words addressed to the model that reads them.
    pub data_weight: Option<u32>,
    /// A regex pattern's match does not count where this regex ends right where it begins
    /// (a look-behind within `VETO_WINDOW_BYTES`: `veto.rs`).
    pub unless_before: Option<String>,
    /// A regex pattern's match does not count where this regex matches from right where it
    /// ends (a look-ahead within `VETO_WINDOW_BYTES`: `veto.rs`).
    pub unless_after: Option<String>,
}

/// A pattern of the built-in catalogue as the build script read it (`build.rs` writes them as
/// Rust, so a start does not parse the catalogue's TOML).
pub struct StaticPattern {
    pub category: &'static str,
    pub weight: u32,
    pub view: &'static str,
    pub phrase: Option<&'static str>,
    pub regex: Option<&'static str>,
    pub corroborates: bool,
    pub data_weight: Option<u32>,
    pub unless_before: Option<&'static str>,
    pub unless_after: Option<&'static str>,
}

impl From<&StaticPattern> for PatternFile {
    fn from(p: &StaticPattern) -> PatternFile {
        PatternFile {
            category: p.category.into(),
            weight: p.weight,
            view: p.view.into(),
            phrase: p.phrase.map(String::from),
            regex: p.regex.map(String::from),
            corroborates: p.corroborates,
            data_weight: p.data_weight,
            unless_before: p.unless_before.map(String::from),
            unless_after: p.unless_after.map(String::from),
        }
    }
}

fn folded() -> String {
    "folded".into()
}

fn yes() -> bool {
    true
}

/// The view a pattern's `view` names (0 light, 1 folded).
pub fn view_index(view: &str) -> Option<usize> {
    match view {
        "light" => Some(0),
        "folded" => Some(1),
        _ => None,
    }
}

/// The phrases a catalogue phrase puts in the automaton: itself, lower-cased, and where it has
/// two words or more, its ROT13 too (a model reads ROT13; a phrase of several words in ROT13 is
/// no English text, where a single word's, `gpt` as `tcg`, may be some other word).
pub fn phrase_keys(phrase: &str) -> impl Iterator<Item = String> {
    let key = phrase.to_lowercase();
    let rot13 = key.contains(' ').then(|| {
        key.chars()
            .map(|c| match c.is_ascii() {
                true => rot13(c as u8) as char,
                false => c,
            })
            .collect::<String>()
    });
    std::iter::once(key).chain(rot13)
}

/// A byte in ROT13: ASCII letters 13 on, in their case; every other byte as it is. The one rule
/// for the catalogue's ROT13 phrases and the scan's ROT13 reading (`rot13_lines`).
pub fn rot13(b: u8) -> u8 {
    match b {
        b'a'..=b'm' | b'A'..=b'M' => b + 13,
        b'n'..=b'z' | b'N'..=b'Z' => b - 13,
        b => b,
    }
}

/// A regex as it is compiled: ASCII word boundaries (Unicode `\b` would push the whole set onto
/// the slow PikeVM; the views are already normalised toward ASCII).
pub fn regex_source(regex: &str) -> String {
    format!("(?-u){regex}")
}

/// Most literals a regex's gate may have; a longer prefix set means the regex runs always.
pub const MAX_GATE_LITERALS: usize = 250;

/// Shortest gate literal: shorter ones (`no `, `the`) open their regex at most words of prose,
/// and an anchored search at each costs more than one pass of the set.
pub const MIN_GATE_BYTES: usize = 5;

/// Longest match of a part that may try more than `MIN_ANCHORED_TRIES` times.
pub const SHORT_MATCH_BYTES: usize = 256;

/// Most required literals a part may have.
pub const MAX_REQUIRED_LITERALS: usize = 64;

/// Most confirming literals a gated part may have (`View::confirm`): Teddy's fast range.
pub const MAX_CONFIRM_LITERALS: usize = 16;

/// What a trigger literal does to a part.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct Trigger {
    pub part: u16,
    pub kind: TriggerKind,
}

/// How a trigger literal opens a part, by the part's kind (`triggers_of`).
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum TriggerKind {
    /// Try the part anchored where the literal begins (a gate).
    Gate,
    /// Try the part around the literal: its `after` anchored where the literal begins, its
    /// `before` backwards from there (`PieceKind::Inner`).
    Inner,
    /// Run the part over the text once the pass is over (a required literal).
    Required,
}

/// How one part of a regex runs.
#[derive(Clone)]
pub enum PieceKind {
    /// Anchored at the start of the text; the bytes its matches can begin with (every byte
    /// where it may match the empty string).
    Start(Box<[bool; 256]>),
    /// Tried anchored where one of `gate` (the literals every match begins with) matched;
    /// `confirm`: the literals every match holds beyond its prefix, where there are few enough
    /// to confirm with (`View::confirm`).
    Gated {
        gate: Vec<Literal>,
        confirm: Option<Vec<Literal>>,
    },
    /// Every match is a match of `before` that ends where a match of `after` begins, and every
    /// match of `after` begins with one of `lits` (`inner_split`): tried where one of them
    /// matched, `after` anchored there and `before` backwards from there.
    Inner {
        before: Hir,
        lits: Vec<Literal>,
        after: Hir,
    },
    /// Run once over the text where one of these literals (in every match) matched.
    Triggered(Vec<Literal>),
    /// In the one overlapping set run over every text.
    Set,
}

/// One part of a catalogue regex: the whole regex, or one branch of a `(^|…)` split.
#[derive(Clone)]
pub struct Piece {
    pub hir: Hir,
    /// Whether its tries read at most `SHORT_MATCH_BYTES` (`try_reads`).
    pub short: bool,
    pub kind: PieceKind,
}

impl Piece {
    /// This part as it was planned before inner parts: an inner part triggered by its required
    /// literals, or in the set (`View::build` plans a view so where its inner parts' literals
    /// take the phrase automaton past its limits).
    pub fn without_inner(&self) -> Piece {
        match &self.kind {
            PieceKind::Inner { .. } => Piece {
                hir: self.hir.clone(),
                short: short_tries(&self.hir),
                kind: required_kind(&self.hir),
            },
            _ => self.clone(),
        }
    }
}

/// The literals that join a view's phrase automaton after its phrases (ids from
/// `phrases.len()` on, in this order), each with the parts it opens.
#[derive(Clone, Default)]
pub struct Triggers {
    pub lits: Vec<Vec<u8>>,
    pub parts: Vec<Vec<Trigger>>,
}

impl Triggers {
    /// Adds `t` to the parts `lit` opens (`of`: each literal's index in `lits`).
    fn add(&mut self, of: &mut std::collections::HashMap<Vec<u8>, usize>, lit: &[u8], t: Trigger) {
        let g = match of.get(lit) {
            Some(&g) => g,
            None => {
                of.insert(lit.to_vec(), self.lits.len());
                self.lits.push(lit.to_vec());
                self.parts.push(Vec::new());
                self.parts.len() - 1
            }
        };
        if !self.parts[g].contains(&t) {
            self.parts[g].push(t);
        }
    }

    /// The phrase automaton's patterns: `phrases` (ids below `phrases.len()`), then these
    /// literals.
    pub fn automaton_patterns<'a>(&'a self, phrases: &'a [String]) -> Vec<&'a [u8]> {
        phrases
            .iter()
            .map(|p| p.as_bytes())
            .chain(self.lits.iter().map(|l| l.as_slice()))
            .collect()
    }

    /// The triggers of two views' regexes planned one after the other (`b`'s parts numbered
    /// after `a`'s `a_parts`): what `plan` gives for `a`'s regexes followed by `b`'s, without
    /// planning them again.
    /// Errs where the two views' parts together (`a_parts + b_parts`) are too many to number
    /// in u16: counting only the parts a literal names let start-anchored parts wrap.
    pub fn merged(
        a: &Triggers,
        a_parts: usize,
        b: &Triggers,
        b_parts: usize,
    ) -> Result<Triggers, String> {
        if a_parts + b_parts >= u16::MAX as usize {
            return Err(format!(
                "{} regex parts in the light and folded views together ({a_parts} and \
                 {b_parts}); at most {} are supported",
                a_parts + b_parts,
                u16::MAX - 1
            ));
        }
        let mut all = a.clone();
        let mut of: std::collections::HashMap<&[u8], usize> = a
            .lits
            .iter()
            .enumerate()
            .map(|(i, l)| (l.as_slice(), i))
            .collect();
        for (lit, parts) in b.lits.iter().zip(&b.parts) {
            let g = *of.entry(lit.as_slice()).or_insert_with(|| {
                all.lits.push(lit.clone());
                all.parts.push(Vec::new());
                all.parts.len() - 1
            });
            // `b`'s parts are not `a`'s, and each is listed once for `lit` in `b`
            all.parts[g].extend(parts.iter().map(|t| Trigger {
                part: t.part + a_parts as u16,
                ..*t
            }));
        }
        Ok(all)
    }
}

/// Parses a regex (as `regex_source` wrote it) the way it is compiled: on bytes, without UTF-8
/// mode.
pub fn parse(re: &str) -> Result<Hir, String> {
    regex_syntax::ParserBuilder::new()
        .utf8(false)
        .build()
        .parse(re)
        .map_err(|e| e.to_string())
}

/// One regex's parts and how each runs, decided from its syntax tree alone (its whitespace as
/// views hold it, `view_whitespace`; one part per branch of an alternation, `split_branches`;
/// and a `(^|…)` beginning as two, `split_start`): the work of planning a view that can be done
/// a regex at a time, on any thread (`triggers_of` then numbers the parts and gathers their
/// literals).
pub fn analyse(hir: &Hir) -> Vec<Piece> {
    let hir = view_whitespace(hir);
    let branches = split_branches(&hir).unwrap_or_else(|| vec![hir]);
    branches
        .into_iter()
        .flat_map(|h| match split_start(&h) {
            Some((a, b)) => vec![a, b],
            None => vec![h],
        })
        .flat_map(|h| {
            let piece = plan_part(h);
            // a gate of punctuation alone (`;`, `|`) is tried at every one in code and tables,
            // and a part without a gate runs over the text: where each alternative of the part's
            // first piece has a longer gate (`;cat`, `|ls`), one part per alternative
            if shortest_gate(&piece) >= MIN_GATE_BYTES {
                return vec![piece];
            }
            let split = split_leading(&piece.hir)
                .map(|alts| alts.into_iter().map(plan_part).collect::<Vec<_>>());
            match split {
                Some(parts)
                    if parts
                        .iter()
                        .all(|p| shortest_gate(p) > shortest_gate(&piece)) =>
                {
                    parts
                }
                _ => vec![piece],
            }
        })
        .collect()
}

/// The shortest literal of a part's gate; 0 for a part that is not gated.
fn shortest_gate(p: &Piece) -> usize {
    match &p.kind {
        PieceKind::Gated { gate, .. } => gate.iter().map(|l| l.as_bytes().len()).min().unwrap_or(0),
        _ => 0,
    }
}

/// The literals one of which begins every match of `h`, where they make a gate: a bounded
/// prefix set (past the limits the extractor shortens literals, `ignore ` for every `ignore (all
/// |any |…)` variant, which keeps the gate sound) of at most `MAX_GATE_LITERALS`, each
/// `rare_gate`.
fn gate_literals(h: &Hir) -> Option<Vec<Literal>> {
    prefix_literals(h, rare_gate)
}

/// `h`'s bounded prefix set (`gate_literals`), where every literal is `fit`.
fn prefix_literals(h: &Hir, fit: fn(&Literal) -> bool) -> Option<Vec<Literal>> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let seq = Extractor::new()
        .kind(ExtractKind::Prefix)
        .limit_class(4)
        .limit_repeat(2)
        .limit_total(MAX_GATE_LITERALS)
        .extract(h);
    let lits = seq.literals()?;
    (!lits.is_empty() && lits.len() <= MAX_GATE_LITERALS && lits.iter().all(fit))
        .then(|| lits.to_vec())
}

/// Whether an inner part may be tried at literal `l`: one a gate may open at (`rare_gate`), or
/// one of three bytes or more (a required literal's least, `required_literals`). A part whose
/// only literals are short would run over the whole text wherever one occurs, and the regex
/// crate finds no literal to skip to in `\b[a-z]+gpt\b`: 6.7 µs for 4 KiB of a role-play
/// prompt that names `…\u{202f}GPT`, where a try at each `gpt` costs a tenth of a microsecond.
fn inner_literal(l: &Literal) -> bool {
    rare_gate(l) || l.as_bytes().len() >= 3
}

/// How one part runs (`analyse`).
fn plan_part(h: Hir) -> Piece {
    use regex_syntax::hir::Look;
    let kind = if h.properties().look_set_prefix().contains(Look::Start) {
        let (first, empty) = first_bytes(&h);
        PieceKind::Start(Box::new(if empty { [true; 256] } else { first }))
    } else {
        match gate_literals(&h) {
            Some(gate) => PieceKind::Gated {
                gate,
                confirm: required_beyond_prefix(&h).filter(|req| req.len() <= MAX_CONFIRM_LITERALS),
            },
            _ => match inner_split(&h) {
                Some((before, lits, after)) => PieceKind::Inner {
                    before,
                    lits,
                    after,
                },
                None => required_kind(&h),
            },
        }
    };
    // an inner part's try reads `after` forwards and `before` backwards
    let short = match &kind {
        PieceKind::Inner { before, after, .. } => {
            short_tries(after)
                && before
                    .properties()
                    .maximum_len()
                    .is_some_and(|n| n <= SHORT_MATCH_BYTES)
        }
        _ => short_tries(&h),
    };
    Piece {
        hir: h,
        short,
        kind,
    }
}

/// A part triggered by literals one of which occurs in every match, where it has such
/// (`required_literals`), else one in the set.
fn required_kind(h: &Hir) -> PieceKind {
    match required_literals(h) {
        Some(lits) => PieceKind::Triggered(lits),
        None => PieceKind::Set,
    }
}

/// Whether a try of `h` reads at most `SHORT_MATCH_BYTES` (`try_reads`).
fn short_tries(h: &Hir) -> bool {
    try_reads(h).is_some_and(|n| n <= SHORT_MATCH_BYTES)
}

/// An inner part's literals this long are rare enough: past it, `inner_split` prefers the later
/// tail to one with longer literals (the cross products of everything before: ` have a content
/// filter` and a hundred more, where `filter` and six more serve), and so a smaller phrase table.
const RARE_ENOUGH_BYTES: usize = 6;

/// `h` as `before`, then `after` whose every match begins with one of `lits`, where `h` is a
/// concatenation and some tail of it (`after`, not all of `h`) has a bounded prefix set of
/// `inner_literal`s (at most `MAX_GATE_LITERALS`): the tail whose shortest literal is longest
/// (up to `RARE_ENOUGH_BYTES`), the last of equals. `h` matches exactly where `before` matches
/// up to a place where `after` matches from: a concatenation's matches, with its look-around
/// assertions read on the same text. A literal that another of them begins (`instruction`,
/// `instructions`) is dropped: both begin there.
pub fn inner_split(h: &Hir) -> Option<(Hir, Vec<Literal>, Hir)> {
    use regex_syntax::hir::HirKind;
    let HirKind::Concat(seq) = h.kind() else {
        return None;
    };
    let first = seq
        .iter()
        .position(|p| !matches!(p.kind(), HirKind::Look(_)))?;
    (first + 1..seq.len())
        .filter_map(|i| {
            let after = Hir::concat(seq[i..].to_vec());
            let lits = prefix_literals(&after, inner_literal)?;
            let mut kept: Vec<Literal> = Vec::new();
            for l in &lits {
                let b = l.as_bytes();
                let begins =
                    |k: &Literal| k.as_bytes().len() < b.len() && b.starts_with(k.as_bytes());
                if !lits.iter().any(begins) && !kept.iter().any(|k| k.as_bytes() == b) {
                    kept.push(l.clone());
                }
            }
            let weakest = kept.iter().map(|l| l.as_bytes().len()).min()?;
            Some(((weakest.min(RARE_ENOUGH_BYTES), i), i, kept, after))
        })
        .max_by_key(|c| c.0)
        .map(|(_, i, lits, after)| (Hir::concat(seq[..i].to_vec()), lits, after))
}

/// Whether a gate may open at literal `l`: one of `MIN_GATE_BYTES` or more, or of punctuation
/// (`;`, `$(`, `{{`, `; `), rare in prose however short, or of three bytes or more that holds
/// some (`;ls`, `|sh`).
fn rare_gate(l: &Literal) -> bool {
    let b = l.as_bytes();
    let punct = b.iter().any(|c| !c.is_ascii_alphanumeric() && *c != b' ');
    b.len() >= MIN_GATE_BYTES
        || (punct && (b.len() >= 3 || b.iter().all(|c| !c.is_ascii_alphanumeric())))
}

/// `h` as one regex per alternative of its first piece that is not an assertion, where that is
/// an alternation (under any captures) or a class of at most `MAX_SPLIT_BRANCHES` bytes, an
/// alternation's classes of a few bytes taken a byte at a time too: `([;&|]|\$\()\s*cat`
/// as `;\s*cat`, `&\s*cat`, `\|\s*cat` and `\$\(\s*cat`. Each matches where `h` matches
/// with that alternative, so together they match where `h` does. None for any other shape or
/// more than `MAX_SPLIT_BRANCHES` alternatives.
pub fn split_leading(h: &Hir) -> Option<Vec<Hir>> {
    use regex_syntax::hir::{Class, HirKind};
    let HirKind::Concat(seq) = h.kind() else {
        return None;
    };
    let first = seq
        .iter()
        .position(|p| !matches!(p.kind(), HirKind::Look(_)))?;
    let mut lead = &seq[first];
    while let HirKind::Capture(c) = lead.kind() {
        lead = &c.sub;
    }
    // a class of a few bytes, one literal a byte; else None
    let bytes = |h: &Hir| match h.kind() {
        HirKind::Class(Class::Bytes(c)) => {
            let n: usize = c.ranges().iter().map(|r| r.len()).sum();
            (n <= MAX_SPLIT_BRANCHES).then(|| {
                c.iter()
                    .flat_map(|r| r.start()..=r.end())
                    .map(|b| Hir::literal([b]))
                    .collect::<Vec<_>>()
            })
        }
        _ => None,
    };
    let alts: Vec<Hir> = match lead.kind() {
        HirKind::Alternation(alts) => alts
            .iter()
            .flat_map(|a| bytes(a).unwrap_or_else(|| vec![a.clone()]))
            .collect(),
        _ => bytes(lead)?,
    };
    if alts.len() < 2 || alts.len() > MAX_SPLIT_BRANCHES {
        return None;
    }
    Some(
        alts.into_iter()
            .map(|a| {
                let mut parts = seq[..first].to_vec();
                parts.push(a);
                parts.extend_from_slice(&seq[first + 1..]);
                Hir::concat(parts)
            })
            .collect(),
    )
}

/// A view's trigger literals, from its regexes' parts (`analyse`) in order: the parts are
/// numbered in that order, and each gate or required literal joins once, with every part it
/// opens. Errors past `u16::MAX` parts.
pub fn triggers_of<'a>(regexes: impl IntoIterator<Item = &'a [Piece]>) -> Result<Triggers, String> {
    let mut of: std::collections::HashMap<Vec<u8>, usize> = Default::default();
    let mut triggers = Triggers::default();
    let mut part = 0usize;
    for pieces in regexes {
        for piece in pieces {
            if part >= u16::MAX as usize {
                return Err(format!("over {} regex parts in one view", u16::MAX - 1));
            }
            let (lits, kind) = match &piece.kind {
                PieceKind::Gated { gate, .. } => (&gate[..], TriggerKind::Gate),
                PieceKind::Inner { lits, .. } => (&lits[..], TriggerKind::Inner),
                PieceKind::Triggered(lits) => (&lits[..], TriggerKind::Required),
                PieceKind::Start(_) | PieceKind::Set => (&[][..], TriggerKind::Required),
            };
            let t = Trigger {
                part: part as u16,
                kind,
            };
            for l in lits {
                triggers.add(&mut of, l.as_bytes(), t);
            }
            part += 1;
        }
    }
    Ok(triggers)
}

/// Most branches a top-level alternation is split into (`split_branches`).
pub const MAX_SPLIT_BRANCHES: usize = 8;

/// The branches of `h` where it is an alternation (under any captures), at most
/// `MAX_SPLIT_BRANCHES` of them, each with the assertions before it where `regex-syntax` lifted
/// those out of the branches (`\bA|\bB` parses as `\b(A|B)`): `A|B` matches where `A` or `B`
/// does, and the scan asks only whether a regex matches anywhere, so each branch can be
/// planned, gated and run alone (a branch that begins with common words, `all`, `any`, no
/// longer makes the whole regex run over every text). None for any other shape.
pub fn split_branches(h: &Hir) -> Option<Vec<Hir>> {
    use regex_syntax::hir::HirKind;
    let uncaptured = |mut h: &Hir| {
        while let HirKind::Capture(c) = h.kind() {
            h = &c.sub;
        }
        h.clone()
    };
    let (looks, top) = match uncaptured(h).kind() {
        HirKind::Concat(seq) => {
            let (last, looks) = seq.split_last()?;
            if !looks.iter().all(|p| matches!(p.kind(), HirKind::Look(_))) {
                return None;
            }
            (looks.to_vec(), uncaptured(last))
        }
        _ => (vec![], uncaptured(h)),
    };
    match top.kind() {
        HirKind::Alternation(alts) if alts.len() <= MAX_SPLIT_BRANCHES => Some(
            alts.iter()
                .map(|a| Hir::concat([&looks[..], std::slice::from_ref(a)].concat()))
                .collect(),
        ),
        _ => None,
    }
}

/// `h` as it can match a normalised view, which holds no whitespace byte but the space and never
/// two in a row (`normalize`, both property-tested): tab, line feed, vertical tab, form feed and
/// carriage return leave every byte class that holds something else (`\s` becomes ` `), and a
/// repetition of a space matches at most one (`\s*` becomes ` ?`, `\s+` becomes ` `). The same
/// matches on any view, and longer prefix literals: `;\s*cat` gates on `;cat` and `; cat`, not
/// on `;` alone.
pub fn view_whitespace(h: &Hir) -> Hir {
    use regex_syntax::hir::{Capture, Class, ClassBytes, ClassBytesRange, HirKind, Repetition};
    match h.kind() {
        HirKind::Class(Class::Bytes(c)) => {
            let mut narrowed = c.clone();
            for b in [b'\t', b'\n', 0x0b, 0x0c, b'\r'] {
                narrowed.difference(&ClassBytes::new([ClassBytesRange::new(b, b)]));
            }
            match narrowed.ranges().is_empty() {
                true => h.clone(),
                false => Hir::class(Class::Bytes(narrowed)),
            }
        }
        HirKind::Repetition(r) => {
            let sub = view_whitespace(&r.sub);
            let space = matches!(sub.kind(), HirKind::Literal(l) if &l.0[..] == b" ");
            match (space, r.min, r.max) {
                (true, 0, m) if m != Some(0) => Hir::repetition(Repetition {
                    min: 0,
                    max: Some(1),
                    greedy: r.greedy,
                    sub: Box::new(sub),
                }),
                (true, 1, _) => sub,
                _ => Hir::repetition(Repetition {
                    sub: Box::new(sub),
                    ..r.clone()
                }),
            }
        }
        HirKind::Capture(c) => Hir::capture(Capture {
            sub: Box::new(view_whitespace(&c.sub)),
            ..c.clone()
        }),
        HirKind::Concat(seq) => Hir::concat(seq.iter().map(view_whitespace).collect()),
        HirKind::Alternation(alts) => Hir::alternation(alts.iter().map(view_whitespace).collect()),
        _ => h.clone(),
    }
}

/// `(^|x…)rest` as `^rest` and `(x…)rest`: the first runs only at the start of the text, the
/// second may have a literal to wait for. None for any other shape.
pub fn split_start(
    h: &regex_syntax::hir::Hir,
) -> Option<(regex_syntax::hir::Hir, regex_syntax::hir::Hir)> {
    use regex_syntax::hir::{Hir, HirKind, Look};
    let HirKind::Concat(seq) = h.kind() else {
        return None;
    };
    let mut first = seq.first()?;
    while let HirKind::Capture(c) = first.kind() {
        first = &c.sub;
    }
    let HirKind::Alternation(alts) = first.kind() else {
        return None;
    };
    let is_start = |a: &Hir| matches!(a.kind(), HirKind::Look(Look::Start));
    if !alts.iter().any(is_start) {
        return None;
    }
    let others: Vec<Hir> = alts.iter().filter(|a| !is_start(a)).cloned().collect();
    let rest = &seq[1..];
    let anchored = Hir::concat([&[Hir::look(Look::Start)][..], rest].concat());
    let other = Hir::concat([&[Hir::alternation(others)][..], rest].concat());
    Some((anchored, other))
}

/// Most bytes an anchored, earliest-match try of `h` reads on a normalised view, or None where
/// that is unbounded. Two facts bound it more tightly than `h`'s longest match:
/// - the views never hold two whitespace characters in a row (`normalize`, property-tested), so
///   a repetition of whitespace (`\s*`, `\s+`) reads at most one;
/// - the try stops at the first match, so a repetition that ends `h` (`[a-z]+` last, no
///   assertion after it) is read only to its minimum: once that many are read, `h` has matched.
pub fn try_reads(h: &regex_syntax::hir::Hir) -> Option<usize> {
    use regex_syntax::hir::{Hir, HirKind, Repetition};
    // `\s` as the parser builds it: a class of whitespace characters only
    fn whitespace(h: &Hir) -> bool {
        use regex_syntax::hir::Class;
        match h.kind() {
            HirKind::Class(Class::Unicode(c)) => c
                .ranges()
                .iter()
                .all(|r| (r.start()..=r.end()).all(char::is_whitespace)),
            HirKind::Class(Class::Bytes(c)) => c
                .ranges()
                .iter()
                .all(|r| (r.start()..=r.end()).all(|b| (b as char).is_whitespace() && b < 128)),
            HirKind::Literal(l) => std::str::from_utf8(&l.0)
                .is_ok_and(|t| t.chars().count() == 1 && t.chars().all(char::is_whitespace)),
            HirKind::Capture(c) => whitespace(&c.sub),
            _ => false,
        }
    }
    // `h` with whitespace repetitions read once at most, and (`last`) its final repetition cut
    // to its minimum
    fn cut(h: &Hir, last: bool) -> Hir {
        match h.kind() {
            HirKind::Repetition(r) if r.min <= 1 && whitespace(&r.sub) => {
                Hir::repetition(Repetition {
                    max: Some(1),
                    sub: Box::new(cut(&r.sub, false)),
                    ..r.clone()
                })
            }
            HirKind::Repetition(r) if last && r.max.is_none() => Hir::repetition(Repetition {
                max: Some(r.min),
                sub: Box::new(cut(&r.sub, false)),
                ..r.clone()
            }),
            HirKind::Repetition(r) => Hir::repetition(Repetition {
                sub: Box::new(cut(&r.sub, false)),
                ..r.clone()
            }),
            HirKind::Capture(c) => Hir::capture(regex_syntax::hir::Capture {
                sub: Box::new(cut(&c.sub, last)),
                ..c.clone()
            }),
            HirKind::Concat(seq) => Hir::concat(
                seq.iter()
                    .enumerate()
                    .map(|(i, p)| cut(p, last && i + 1 == seq.len()))
                    .collect(),
            ),
            HirKind::Alternation(alts) => {
                Hir::alternation(alts.iter().map(|a| cut(a, last)).collect())
            }
            _ => h.clone(),
        }
    }
    cut(h, true).properties().maximum_len()
}

/// The bytes a match of `h` can begin with (a superset: every leading byte of UTF-8 for a
/// class past ASCII), and whether `h` matches the empty string (then a match may begin with
/// anything).
pub fn first_bytes(h: &regex_syntax::hir::Hir) -> ([bool; 256], bool) {
    use regex_syntax::hir::{Class, HirKind};
    let mut set = [false; 256];
    let empty = match h.kind() {
        HirKind::Empty | HirKind::Look(_) => true,
        HirKind::Literal(l) => match l.0.first() {
            Some(&b) => {
                set[b as usize] = true;
                false
            }
            None => true,
        },
        HirKind::Class(Class::Bytes(c)) => {
            for r in c.ranges() {
                (r.start()..=r.end()).for_each(|b| set[b as usize] = true);
            }
            false
        }
        HirKind::Class(Class::Unicode(c)) => {
            for r in c.ranges() {
                (r.start() as u32..=(r.end() as u32).min(127)).for_each(|b| set[b as usize] = true);
                if r.end() as u32 >= 128 {
                    (0xc2..=0xf4).for_each(|b| set[b] = true);
                }
            }
            false
        }
        HirKind::Repetition(r) => {
            let (f, e) = first_bytes(&r.sub);
            set = f;
            e || r.min == 0
        }
        HirKind::Capture(c) => {
            let (f, e) = first_bytes(&c.sub);
            set = f;
            e
        }
        HirKind::Concat(seq) => {
            let mut all_empty = true;
            for h in seq {
                let (f, e) = first_bytes(h);
                (0..256).for_each(|b| set[b] |= f[b]);
                if !e {
                    all_empty = false;
                    break;
                }
            }
            all_empty
        }
        HirKind::Alternation(alts) => {
            let mut any_empty = false;
            for h in alts {
                let (f, e) = first_bytes(h);
                (0..256).for_each(|b| set[b] |= f[b]);
                any_empty |= e;
            }
            any_empty
        }
    };
    (set, empty)
}

/// `required_literals` of what follows the first piece of `h` that is not an assertion (the
/// piece a gate's prefix literals come from), the strongest set of them: none when `h` is not a
/// sequence or nothing after that piece has such literals.
pub fn required_beyond_prefix(
    h: &regex_syntax::hir::Hir,
) -> Option<Vec<regex_syntax::hir::literal::Literal>> {
    use regex_syntax::hir::HirKind;
    let HirKind::Concat(seq) = h.kind() else {
        return None;
    };
    let first = seq
        .iter()
        .position(|p| !matches!(p.kind(), HirKind::Look(_)))?;
    let weakest = |lits: &Vec<regex_syntax::hir::literal::Literal>| {
        lits.iter().map(|l| l.as_bytes().len()).min().unwrap_or(0)
    };
    seq[first + 1..]
        .iter()
        .filter_map(required_literals)
        .max_by_key(weakest)
}

/// Literals one of which occurs in every match of `h`, chosen to be rare in prose: each of three
/// bytes or more, or holding punctuation (`;`, `$(`, `../`). None when `h` has no such set of at
/// most `MAX_REQUIRED_LITERALS`.
pub fn required_literals(
    h: &regex_syntax::hir::Hir,
) -> Option<Vec<regex_syntax::hir::literal::Literal>> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor, Literal};
    use regex_syntax::hir::{Hir, HirKind};
    // (weakest literal's strength: its length, punctuation counting 2 more)
    fn strength(lits: &[Literal]) -> Option<usize> {
        if lits.is_empty() || lits.len() > MAX_REQUIRED_LITERALS {
            return None;
        }
        lits.iter()
            .map(|l| {
                let b = l.as_bytes();
                let punct = b.iter().any(|c| !c.is_ascii_alphanumeric() && *c != b' ');
                match (b.len(), punct) {
                    (0, _) => None,
                    (n, true) => Some(n + 2),
                    (n, false) if n >= 3 => Some(n),
                    _ => None,
                }
            })
            .min()
            .flatten()
    }
    let prefixes = |h: &Hir| {
        let seq = Extractor::new()
            .kind(ExtractKind::Prefix)
            .limit_class(4)
            .limit_repeat(2)
            .limit_literal_len(16)
            .limit_total(MAX_REQUIRED_LITERALS)
            .extract(h);
        seq.literals().map(|l| l.to_vec())
    };
    match h.kind() {
        HirKind::Literal(l) => {
            Some(vec![Literal::exact(l.0.to_vec())]).filter(|v| strength(v).is_some())
        }
        HirKind::Capture(c) => required_literals(&c.sub),
        HirKind::Repetition(r) if r.min >= 1 => required_literals(&r.sub),
        HirKind::Alternation(alts) => {
            let mut all = Vec::new();
            for a in alts {
                all.extend(required_literals(a)?);
            }
            all.dedup();
            strength(&all).map(|_| all)
        }
        HirKind::Concat(seq) => {
            // candidates: what every match of each piece holds, and the prefixes of every
            // suffix of the concatenation; the strongest wins (ties: the later one)
            let mut best: Option<(usize, Vec<Literal>)> = None;
            for i in 0..seq.len() {
                let cands = [
                    required_literals(&seq[i]),
                    prefixes(&Hir::concat(seq[i..].to_vec())),
                ];
                for c in cands.into_iter().flatten() {
                    if let Some(st) = strength(&c) {
                        if best.as_ref().is_none_or(|(b, _)| st >= *b) {
                            best = Some((st, c));
                        }
                    }
                }
            }
            best.map(|(_, c)| c)
        }
        _ => None,
    }
}
