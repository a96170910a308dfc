//! One normalised view's matcher: the phrase automaton and the regex parts (gated, triggered,
//! start-anchored, or in one set), built from the catalogue's syntax trees with the bounds that
//! keep tries linear (`try_reads`, `first_bytes`, the required literals).
//!
//! How a regex part runs. Each catalogue regex is one part, or two when it begins `(^|…)` (the
//! `^` branch runs at offset 0 only, and only when the text's first byte is one its matches can
//! begin with: `first_bytes` on the syntax tree, a superset). A part is start-anchored; gated
//! (every match begins with one of at most 250 literals of 5 bytes or more, or made only of
//! punctuation: the literals sit in the phrase automaton and the part is tried anchored where one
//! matched, at most 16 times a pass, or once per 128 bytes of text for a part whose tries read at
//! most 256 bytes, so tries stay linear; then once over the text); triggered (one of at most 64
//! literals, found by `required_literals`, occurs in every match: the part runs once if one
//! matched); or, failing all three, in one overlapping set. `try_reads` bounds what a try reads
//! from the syntax tree, resting on the normaliser's invariant that no view holds two whitespace
//! characters in a row (so `\s*` reads one) and on earliest-match tries reading a final
//! repetition only to its minimum; a test fails if over a fifth of the built-in gated parts are
//! unbounded. A gated part whose every match also holds literals beyond its prefix keeps them in
//! a Teddy searcher (`View::confirm`) and, after one try per 512 bytes of text, looks for them
//! once: without one it tries no more in that pass. A gated part past its tries runs from the
//! first occurrence it did not try, less the longest literal (the walk reports a window's
//! matches in the order they end).

#[allow(unused_imports)]
use super::*;

/// One view's patterns before its automata are built: phrases, and regexes compiled alone
/// (each regex once; `MetaRegex` clones share it).
#[derive(Clone, Default)]
pub(super) struct Pending {
    pub(super) phrases: Vec<String>,
    pub(super) phrase_meta: Vec<Meta>,
    pub(super) regexes: Vec<(String, MetaRegex)>,
    pub(super) regex_meta: Vec<Meta>,
}

impl Pending {
    /// Both views' patterns, for text whose two views are the same.
    pub(super) fn merged(a: &Pending, b: &Pending) -> Pending {
        Pending {
            phrases: [a.phrases.clone(), b.phrases.clone()].concat(),
            phrase_meta: [a.phrase_meta.clone(), b.phrase_meta.clone()].concat(),
            regexes: [a.regexes.clone(), b.regexes.clone()].concat(),
            regex_meta: [a.regex_meta.clone(), b.regex_meta.clone()].concat(),
        }
    }
}

/// Compiled automata are immutable and shared (`Arc` inside); each scanner has its own regex
/// caches, so a search never touches the regex crate's internal cache pool (a mutex for
/// threads other than the one that built the regex).
///
/// Regexes rarely run on the whole text. Each is compiled as one part, or two where it begins
/// `(^|…)`: the `^` branch apart, which runs only at the start of the text. A part is then, in
/// order of preference:
/// - *start-anchored*: tried at offset 0 of every text (a few bytes of work);
/// - *gated*: the literals one of which begins every match (its prefix set, `regex-syntax`'s
///   extractor, each `MIN_GATE_BYTES` or more) join the view's aho-corasick automaton after the
///   phrases, and the part is tried anchored where one matches;
/// - *triggered*: literals one of which occurs in every match (`required_literals`) join the
///   automaton, and the part runs once over the text if one matched;
/// - otherwise in the set, one automaton over every text.
///
/// A regex counts once whichever of its parts matched.
#[derive(Clone)]
pub(super) struct View {
    /// Phrases (ids below `ac_meta.len()`), then trigger literals, as a DFA table walked byte
    /// by byte (`walk::Table`): every match, overlapping, at 1 MiB or so per view.
    pub(super) ac: Table,
    /// The aho-corasick DFA the table was laid out from: the tests' reference.
    #[cfg(test)]
    pub(super) ac_dfa: DFA,
    /// Most DFA matches one walk of a window can report (`walk`).
    pub(super) ac_most_hits: usize,
    pub(super) ac_meta: Vec<Meta>, // per phrase
    /// Per trigger literal: the parts it opens.
    pub(super) triggers: Vec<Vec<Trigger>>,
    pub(super) parts: Vec<MetaRegex>,
    /// Per part: its regex (index into `re_meta`).
    pub(super) part_of: Vec<u16>,
    /// Per part: whether its tries read at most `SHORT_MATCH_BYTES` (`try_reads`).
    pub(super) short: Vec<bool>,
    /// Per gated part: literals one of which every match holds beyond its prefix
    /// (`required_beyond_prefix`), as a Teddy searcher. The first time a pass meets the part's
    /// gate it looks for them once over the text; without one, the part cannot match and its
    /// tries are skipped (`explain the attached report` opens no try of `explain … the
    /// instructions`). None where the part has no such literals, or Teddy does not run here.
    pub(super) confirm: Vec<Option<aho_corasick::packed::Searcher>>,
    pub(super) re_meta: Vec<Meta>,
    /// Parts anchored at the start of the text, each with the bytes its matches can begin with
    /// (`first_bytes`; every byte where it may match the empty string): most texts begin with
    /// none of them, and a search saved is ~30 ns.
    pub(super) starts: Vec<(u16, [bool; 256])>,
    /// The parts with neither anchor nor literal, as one automaton reporting every one that
    /// matches, and their regexes.
    pub(super) set: MetaRegex,
    pub(super) set_ids: Vec<u16>,
    /// The whole regexes, for the reference the gating is tested against.
    #[cfg(test)]
    pub(super) res: Vec<MetaRegex>,
}

/// What a trigger literal does to a part: try it anchored where the literal begins (a gate), or
/// run it over the text once the pass is over (a required literal).
#[derive(Clone, Copy, PartialEq)]
pub(super) struct Trigger {
    pub(super) part: u16,
    pub(super) anchored: bool,
}

/// Most literals a regex's gate may have; a longer prefix set means the regex runs always.
pub(super) const MAX_GATE_LITERALS: usize = 250;

/// Shortest gate literal: shorter ones (`no `, `the`) open their regex at most words of prose,
/// and an anchored search at each costs more than one pass of the set.
pub(super) const MIN_GATE_BYTES: usize = 5;

/// Anchored tries of one part in one pass, after which it runs once over the text instead: a
/// gate that opens often costs no more than one search. A try of a part whose matches can run to
/// the end of the text costs up to the whole text, so those stop at this many (linear: at most
/// this many passes); a part whose matches are at most `SHORT_MATCH_BYTES` long may try once more
/// per `BYTES_PER_ANCHORED_TRY` bytes of text (linear too: each try reads at most that many).
pub(super) const MIN_ANCHORED_TRIES: usize = 16;

/// Bytes of text that buy one more anchored try of a short-match part: a try costs about what an
/// unanchored search spends on this many bytes, so neither way costs more than twice the other.
pub(super) const BYTES_PER_ANCHORED_TRY: usize = 128;

/// Longest match of a part that may try more than `MIN_ANCHORED_TRIES` times.
pub(super) const SHORT_MATCH_BYTES: usize = 256;

/// Most required literals a part may have.
pub(super) const MAX_REQUIRED_LITERALS: usize = 64;

/// A part looks for its confirming literals after `len / BYTES_PER_CONFIRM_TRY` tries (two at
/// least): roughly where a search of the text stops costing more than the tries it may save.
/// Set by measurement (PERF.md), not derived.
pub(super) const BYTES_PER_CONFIRM_TRY: usize = 512;

/// Most confirming literals a gated part may have (`View::confirm`): Teddy's fast range.
pub(super) const MAX_CONFIRM_LITERALS: usize = 16;

impl View {
    pub(super) fn build(p: Pending) -> Result<View, String> {
        use regex_syntax::hir::literal::{ExtractKind, Extractor};
        use regex_syntax::hir::Look;
        let regexes = &p.regexes;
        let mut trigger_of: std::collections::HashMap<Vec<u8>, usize> = Default::default();
        let mut triggers: Vec<Vec<Trigger>> = Vec::new();
        let mut trigger_lits: Vec<Vec<u8>> = Vec::new();
        let mut add = |lits: &[regex_syntax::hir::literal::Literal], t: Trigger| {
            for l in lits {
                let g = *trigger_of.entry(l.as_bytes().to_vec()).or_insert_with(|| {
                    trigger_lits.push(l.as_bytes().to_vec());
                    triggers.push(Vec::new());
                    triggers.len() - 1
                });
                if !triggers[g].contains(&t) {
                    triggers[g].push(t);
                }
            }
        };
        let (mut parts, mut part_of, mut starts) = (Vec::new(), Vec::new(), Vec::new());
        let mut short = Vec::new();
        let mut confirm = Vec::new();
        let (mut set_hirs, mut set_ids) = (Vec::new(), Vec::new());
        for (i, (re, whole)) in regexes.iter().enumerate() {
            let hir = regex_syntax::ParserBuilder::new()
                .utf8(false)
                .build()
                .parse(re)
                .map_err(|e| e.to_string())?;
            let pieces = match split_start(&hir) {
                Some((a, b)) => vec![a, b],
                None => vec![hir],
            };
            let split = pieces.len() > 1;
            for h in pieces {
                let part = parts.len();
                if part >= u16::MAX as usize {
                    return Err(format!(
                        "{} regexes in one view; at most {} are supported",
                        regexes.len(),
                        u16::MAX / 2
                    ));
                }
                parts.push(match split {
                    true => build_regex_from_hir(&h)?,
                    false => whole.clone(),
                });
                part_of.push(i as u16);
                short.push(try_reads(&h).is_some_and(|n| n <= SHORT_MATCH_BYTES));
                confirm.push(None);
                let part = part as u16;
                if h.properties().look_set_prefix().contains(Look::Start) {
                    let (first, empty) = first_bytes(&h);
                    starts.push((part, if empty { [true; 256] } else { first }));
                    continue;
                }
                // a bounded prefix set: past the limits the extractor shortens literals
                // (`ignore ` for every `ignore (all |any |…)` variant), which keeps the gate sound
                let seq = Extractor::new()
                    .kind(ExtractKind::Prefix)
                    .limit_class(4)
                    .limit_repeat(2)
                    .limit_total(MAX_GATE_LITERALS)
                    .extract(&h);
                // a literal of punctuation (`;`, `$(`, `{{`) is rare in prose however short
                let rare = |l: &regex_syntax::hir::literal::Literal| {
                    let b = l.as_bytes();
                    b.len() >= MIN_GATE_BYTES
                        || (!b.is_empty()
                            && b.iter().all(|c| !c.is_ascii_alphanumeric() && *c != b' '))
                };
                match seq.literals() {
                    Some(lits)
                        if !lits.is_empty()
                            && lits.len() <= MAX_GATE_LITERALS
                            && lits.iter().all(rare) =>
                    {
                        add(
                            lits,
                            Trigger {
                                part,
                                anchored: true,
                            },
                        );
                        confirm[part as usize] = required_beyond_prefix(&h)
                            .filter(|req| req.len() <= MAX_CONFIRM_LITERALS)
                            .and_then(|req| {
                                aho_corasick::packed::Config::new()
                                    .builder()
                                    .extend(req.iter().map(|l| l.as_bytes()))
                                    .build()
                            });
                        continue;
                    }
                    _ => {}
                }
                if let Some(lits) = required_literals(&h) {
                    add(
                        &lits,
                        Trigger {
                            part,
                            anchored: false,
                        },
                    );
                    continue;
                }
                set_hirs.push(h);
                set_ids.push(i as u16);
            }
        }
        let set = MetaRegex::builder()
            .configure(
                MetaRegex::config()
                    .match_kind(regex_automata::MatchKind::All)
                    .utf8_empty(false),
            )
            .build_many_from_hir(&set_hirs)
            .map_err(|e| e.to_string())?;
        // the automaton's patterns: phrases (ids below `ac_meta.len()`), then trigger literals
        let lens: Vec<&[u8]> = p
            .phrases
            .iter()
            .map(|p| p.as_bytes())
            .chain(trigger_lits.iter().map(|l| l.as_slice()))
            .collect();
        let ac_longest = lens.iter().map(|l| l.len()).max().unwrap_or(0);
        // matches ending at one byte are suffixes of the longest of them: for each pattern,
        // how many patterns (with repeats) are its suffixes, by a lookup of each suffix
        // (linear in the catalogue's bytes, not quadratic in its patterns)
        let mut count: std::collections::HashMap<&[u8], usize> =
            std::collections::HashMap::with_capacity(lens.len());
        for l in &lens {
            *count.entry(l).or_default() += 1;
        }
        let per_byte = lens
            .iter()
            .map(|l| {
                (0..l.len())
                    .map(|i| count.get(&l[i..]).copied().unwrap_or(0))
                    .sum::<usize>()
            })
            .max()
            .unwrap_or(0);
        let ac_most_hits = (WINDOW_BYTES + LANES * ac_longest) * per_byte;
        if ac_most_hits > MAX_WINDOW_HITS {
            return Err(format!(
                "up to {per_byte} phrases or literals can end at one byte and the longest has \
                 {ac_longest} bytes, so one window of text could hold {ac_most_hits} matches \
                 (at most {MAX_WINDOW_HITS}); shorten the longest phrases or drop phrases that \
                 end other phrases"
            ));
        }
        // The table is the automaton itself, built directly (`Table::from_patterns`): no
        // dense DFA is built only to be re-laid and dropped.
        let table = Table::from_patterns(&lens)?;
        Ok(View {
            ac: table,
            // the reference the walk is tested against: the dense DFA, built independently
            #[cfg(test)]
            ac_dfa: aho_corasick::dfa::Builder::new()
                .match_kind(aho_corasick::MatchKind::Standard)
                .prefilter(false)
                .build(&lens)
                .map_err(|e| e.to_string())?,
            ac_most_hits,
            ac_meta: p.phrase_meta,
            triggers,
            parts,
            part_of,
            short,
            confirm,
            re_meta: p.regex_meta,
            starts,
            set,
            set_ids,
            #[cfg(test)]
            res: p.regexes.into_iter().map(|(_, r)| r).collect(),
        })
    }
}

/// `(^|x…)rest` as `^rest` and `(x…)rest`: the first runs only at the start of the text, the
/// second may have a literal to wait for. None for any other shape.
pub(super) fn split_start(
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
pub(super) fn try_reads(h: &regex_syntax::hir::Hir) -> Option<usize> {
    use regex_syntax::hir::{Hir, HirKind, Repetition};
    // `\s` as the parser builds it: a class of whitespace characters only
    pub(super) fn whitespace(h: &Hir) -> bool {
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
    pub(super) fn cut(h: &Hir, last: bool) -> Hir {
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
pub(super) fn first_bytes(h: &regex_syntax::hir::Hir) -> ([bool; 256], bool) {
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
pub(super) fn required_beyond_prefix(
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
pub(super) fn required_literals(
    h: &regex_syntax::hir::Hir,
) -> Option<Vec<regex_syntax::hir::literal::Literal>> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor, Literal};
    use regex_syntax::hir::{Hir, HirKind};
    // (weakest literal's strength: its length, punctuation counting 2 more)
    pub(super) fn strength(lits: &[Literal]) -> Option<usize> {
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

/// One regex from its syntax tree (parsed on bytes, without UTF-8 mode, as `build_regex` does).
pub(super) fn build_regex_from_hir(hir: &regex_syntax::hir::Hir) -> Result<MetaRegex, String> {
    MetaRegex::builder()
        .configure(MetaRegex::config().utf8_empty(false))
        .build_from_hir(hir)
        .map_err(|e| error_chain(&e))
}

/// One regex on bytes, without UTF-8 mode.
pub(super) fn build_regex(pattern: &str) -> Result<MetaRegex, String> {
    MetaRegex::builder()
        .configure(MetaRegex::config().utf8_empty(false))
        .syntax(regex_automata::util::syntax::Config::new().utf8(false))
        .build(pattern)
        .map_err(|e| error_chain(&e))
}

/// An error and its sources, `: `-joined: a regex build error alone says only "error parsing
/// pattern 0"; its source says what and where.
pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        next = cause.source();
    }
    s
}

/// The indices of the set bits of a bit set kept as words (bit `i % 64` of word `i / 64`),
/// lowest first.
pub(super) fn set_bits(words: &[u64]) -> impl Iterator<Item = usize> + '_ {
    words.iter().enumerate().flat_map(|(w, &bits)| {
        std::iter::successors(Some(bits), |b| Some(b & b.wrapping_sub(1)))
            .take_while(|&b| b != 0)
            .map(move |b| w * 64 + b.trailing_zeros() as usize)
    })
}
