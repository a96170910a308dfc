//! One normalised view's matcher: the phrase automaton and the regex parts (gated, inner,
//! triggered, start-anchored, or in one set), built from the catalogue's syntax trees with the
//! bounds that keep tries linear (`try_reads`, `first_bytes`, the required literals).
//!
//! How a regex part runs. Each catalogue regex is one part, one per branch where it is an
//! alternation of at most 8 (`split_branches`), and two where a part begins `(^|…)` (the `^`
//! branch runs at offset 0 only, and only when the text's first byte is one its matches can
//! begin with: `first_bytes` on the syntax tree, a superset). Whitespace is planned as the views
//! hold it, single spaces (`view_whitespace`: `;\s*cat` gates on `;cat` and `; cat`). A part is
//! start-anchored; gated
//! (every match begins with one of at most 250 literals of 5 bytes or more, or made only of
//! punctuation: the literals sit in the phrase automaton and the part is tried anchored where one
//! matched, at most 16 times a pass, or once per 128 bytes of text for a part whose tries read at
//! most 256 bytes, so tries stay linear; then once over the text); inner (a concatenation whose
//! tail begins with one of at most 250 literals of 3 bytes or more, `inner_split`: tried where
//! one matched, the tail anchored forwards from there and the head anchored backwards, by a
//! reverse lazy DFA, with the same budget of tries, then once over the whole text, since a match
//! may begin anywhere before its literal);
//! triggered (one of at most 64
//! literals, found by `required_literals`, occurs in every match: the part runs once if one
//! matched); or, failing all four, in one overlapping set. `try_reads` bounds what a try reads
//! from the syntax tree, resting on the normaliser's invariant that no view holds two whitespace
//! characters in a row (so `\s*` reads one) and on earliest-match tries reading a final
//! repetition only to its minimum; a test fails if over a fifth of the built-in gated parts are
//! unbounded. A gated part whose every match also holds literals beyond its prefix keeps them in
//! a Teddy searcher (`View::confirm`) and, after one try per 512 bytes of text, looks for them
//! once: without one it tries no more in that pass. A gated part past its tries runs from the
//! first occurrence it did not try, less the longest literal (the least such place: the walk's
//! lanes report a window's matches interleaved, not in text order).

#[allow(unused_imports)]
use super::*;

/// One view's patterns before its automata are built: phrases, and regexes compiled alone
/// (each regex once; `MetaRegex` clones share it).
#[derive(Default)]
pub(super) struct Pending {
    pub(super) phrases: Vec<String>,
    pub(super) phrase_meta: Vec<Meta>,
    pub(super) regexes: Vec<Compiled>,
    pub(super) regex_meta: Vec<Meta>,
}

/// One catalogue regex, parsed, planned (`plan::analyse`) and compiled alone: what can be done
/// a regex at a time, on any thread, before its view is assembled.
pub(super) struct Compiled {
    /// The whole regex: the tests' reference.
    #[cfg(test)]
    pub(super) whole: MetaRegex,
    /// Its parts, and per part: its compiled form (`whole` where the regex is not split) and
    /// its confirming literals' searcher (`View::confirm`).
    pub(super) pieces: Vec<Piece>,
    pub(super) parts: Vec<MetaRegex>,
    pub(super) confirm: Vec<Option<aho_corasick::packed::Searcher>>,
    /// Per part: its halves where it is an inner part (`PieceKind::Inner`).
    pub(super) inner: Vec<Option<InnerPart>>,
}

/// Most NFA states an inner part's head may have; a larger one runs the part over the text
/// (the built-in catalogue's largest has 390). A lazy DFA builds a state in time proportional to
/// the NFA, and one that builds states often but not often enough to give up read back from 16
/// literals at 2.5 µs a byte: `c(?u:\w){20}a[^.]*` is 28,745 states (a hostile review).
const MOST_HEAD_STATES: usize = 1000;

/// An inner part's halves (`PieceKind::Inner`): `after`, tried anchored where one of its
/// literals begins, and `before` reversed, tried anchored backwards from there. The part
/// matches where both do.
#[derive(Clone)]
pub(super) struct InnerPart {
    pub(super) after: MetaRegex,
    pub(super) before: regex_automata::hybrid::dfa::DFA,
}

impl InnerPart {
    fn new(
        before: &regex_syntax::hir::Hir,
        after: &regex_syntax::hir::Hir,
    ) -> Result<InnerPart, String> {
        use regex_automata::nfa::thompson;
        let nfa = thompson::Compiler::new()
            .configure(
                thompson::Config::new()
                    .reverse(true)
                    .utf8(false)
                    .which_captures(thompson::WhichCaptures::None),
            )
            .build_from_hir(before)
            .map_err(|e| error_chain(&e))?;
        if nfa.states().len() > MOST_HEAD_STATES {
            return Err(format!("a head of {} NFA states", nfa.states().len()));
        }
        // (a lazy DFA whose cache fills again and again gives up, as the regex crate's own
        // engines do, and the part then runs over the text: a head such as `c\w{20}a[^.]*`
        // read back from each literal rebuilt states at every byte, 45 µs a byte)
        let before = regex_automata::hybrid::dfa::DFA::builder()
            .configure(
                regex_automata::hybrid::dfa::Config::new()
                    .minimum_cache_clear_count(Some(3))
                    .minimum_bytes_per_state(Some(10)),
            )
            .build_from_nfa(nfa)
            .map_err(|e| error_chain(&e))?;
        Ok(InnerPart {
            after: build_part(after, false)?,
            before,
        })
    }

    /// Whether the part matches around the literal that begins at `at` in `bytes`: `after`
    /// from there and `before` up to there. An error of the lazy DFA (it gave up) is `None`:
    /// the caller then runs the whole part over the text.
    pub(super) fn matches_at(
        &self,
        cache: &mut InnerCache,
        bytes: &[u8],
        at: usize,
    ) -> Option<bool> {
        let forward = Input::new(bytes)
            .range(at..)
            .anchored(Anchored::Yes)
            .earliest(true);
        if self
            .after
            .search_half_with(&mut cache.after, &forward)
            .is_none()
        {
            return Some(false);
        }
        let backward = Input::new(bytes)
            .range(..at)
            .anchored(Anchored::Yes)
            .earliest(true);
        match self.before.try_search_rev(&mut cache.before, &backward) {
            Ok(found) => Some(found.is_some()),
            Err(_) => None,
        }
    }

    pub(super) fn create_cache(&self) -> InnerCache {
        InnerCache {
            after: self.after.create_cache(),
            before: self.before.create_cache(),
        }
    }
}

/// A scanner's caches for one part: the whole part's, and its halves' where it is an inner
/// part.
pub(super) struct PartCache {
    pub(super) whole: regex_automata::meta::Cache,
    pub(super) inner: Option<InnerCache>,
}

/// A scanner's caches for one inner part's halves.
pub(super) struct InnerCache {
    after: regex_automata::meta::Cache,
    before: regex_automata::hybrid::dfa::Cache,
}

impl Compiled {
    /// Parses, plans and compiles `re` (as `regex_source` wrote it).
    pub(super) fn new(re: &str) -> Result<Compiled, String> {
        let hir = parse(re)?;
        let pieces = analyse(&hir);
        // A gated or start-anchored part is tried anchored, where a literal search (a
        // prefilter) is no use, and building one was a tenth of a start; a part run over the
        // whole text keeps it.
        let parts = pieces
            .iter()
            .map(|p| {
                let over_text = matches!(
                    p.kind,
                    PieceKind::Triggered(_) | PieceKind::Set | PieceKind::Inner { .. }
                );
                build_part(&p.hir, over_text)
            })
            .collect::<Result<Vec<_>, String>>()?;
        let confirm = pieces
            .iter()
            .map(|p| match &p.kind {
                PieceKind::Gated {
                    confirm: Some(req), ..
                } => aho_corasick::packed::Config::new()
                    .builder()
                    .extend(req.iter().map(|l| l.as_bytes()))
                    .build(),
                _ => None,
            })
            .collect();
        // (halves that do not build, a head too large for a lazy DFA's cache, leave the part
        // to run over the text where its literal matched, as a triggered part does)
        let inner = pieces
            .iter()
            .map(|p| match &p.kind {
                PieceKind::Inner { before, after, .. } => InnerPart::new(before, after).ok(),
                _ => None,
            })
            .collect();
        Ok(Compiled {
            // the reference: the regex alone, as the regex crate compiles it by default
            #[cfg(test)]
            whole: MetaRegex::builder()
                .configure(MetaRegex::config().utf8_empty(false))
                .build_from_hir(&hir)
                .map_err(|e| error_chain(&e))?,
            pieces,
            parts,
            confirm,
            inner,
        })
    }
}

/// What a view keeps of its patterns besides its compiled parts.
struct Kept<'a> {
    phrases: &'a [String],
    phrase_meta: Vec<Meta>,
    regex_meta: Vec<Meta>,
    /// The whole regexes, for the tests' reference.
    #[cfg(test)]
    res: Vec<MetaRegex>,
}

/// Compiled automata are immutable and shared (`Arc` inside); each scanner has its own regex
/// caches, so a search never touches the regex crate's internal cache pool (a mutex for
/// threads other than the one that built the regex).
///
/// Regexes rarely run on the whole text. Each is compiled as one part, one per branch of an
/// alternation (`split_branches`), and two where a part begins `(^|…)`: the `^` branch apart,
/// which runs only at the start of the text. A part is then, in order of preference:
/// - *start-anchored*: tried at offset 0 of every text (a few bytes of work);
/// - *gated*: the literals one of which begins every match (its prefix set, `regex-syntax`'s
///   extractor, each `MIN_GATE_BYTES` or more) join the view's aho-corasick automaton after the
///   phrases, and the part is tried anchored where one matches;
/// - *inner*: the part is a head, then a tail whose every match begins with one of a set of
///   literals (`inner_split`; each of 3 bytes or more); they join the automaton, and where one matches the tail is tried
///   anchored from there and the head backwards from there (roleplay prompts say `rules` and
///   `prompt` often, and running `explain … your … (rules|prompt)` and its kin over the whole of
///   each was an eighth of their scan's instructions);
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
    /// The trigger literals (`ac`'s patterns after the phrases) and, per literal, the parts it
    /// opens (`triggers.parts`).
    pub(super) triggers: Triggers,
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
    /// Per inner part: its halves (`InnerPart`).
    pub(super) inner: Vec<Option<InnerPart>>,
    pub(super) re_meta: Vec<Meta>,
    /// Parts anchored at the start of the text, each with the bytes its matches can begin with
    /// (`first_bytes`; every byte where it may match the empty string): most texts begin with
    /// none of them, and a search saved is ~30 ns.
    pub(super) starts: Vec<(u16, [bool; 256])>,
    /// The parts with neither anchor nor literal, as one automaton reporting every one that
    /// matches, and their regexes.
    pub(super) set: MetaRegex,
    pub(super) set_ids: Vec<u16>,
    /// The syntax trees the set was built from (for a merged view's set).
    pub(super) set_hirs: Vec<regex_syntax::hir::Hir>,
    /// The whole regexes, for the reference the gating is tested against.
    #[cfg(test)]
    pub(super) res: Vec<MetaRegex>,
}

/// Anchored tries of one part in one pass, after which it runs once over the text instead: a
/// gate that opens often costs no more than one search. A try of a part whose matches can run to
/// the end of the text costs up to the whole text, so those stop at this many (linear: at most
/// this many passes); a part whose matches are at most `SHORT_MATCH_BYTES` long may try once more
/// per `BYTES_PER_ANCHORED_TRY` bytes of text (linear too: each try reads at most that many).
pub(super) const MIN_ANCHORED_TRIES: usize = 16;

/// Bytes of text that buy one more anchored try of a short-match part: a try costs about what an
/// unanchored search spends on this many bytes, so neither way costs more than twice the other.
pub(super) const BYTES_PER_ANCHORED_TRY: usize = 128;

/// A part looks for its confirming literals after `len / BYTES_PER_CONFIRM_TRY` tries (two at
/// least): roughly where a search of the text stops costing more than the tries it may save.
/// Set by measurement (PERF.md), not derived.
pub(super) const BYTES_PER_CONFIRM_TRY: usize = 512;

impl View {
    /// The view of `p`'s patterns; planned without inner parts (`Piece::without_inner`) where
    /// their literals take the phrase automaton past its limits: they join it where a part in
    /// the set added none (a hostile review's catalogues loaded before inner parts and not with
    /// them).
    pub(super) fn build(p: &Pending) -> Result<View, String> {
        View::build_planned(p, false).or_else(|_| View::build_planned(p, true))
    }

    /// `build`, with or without inner parts.
    pub(super) fn build_planned(p: &Pending, without_inner: bool) -> Result<View, String> {
        let planned: Vec<std::borrow::Cow<'_, [Piece]>> = p
            .regexes
            .iter()
            .map(|c| match without_inner {
                false => std::borrow::Cow::Borrowed(&c.pieces[..]),
                true => c.pieces.iter().map(Piece::without_inner).collect(),
            })
            .collect();
        let triggers = triggers_of(planned.iter().map(|c| &c[..]))?;
        let (mut parts, mut part_of, mut starts) = (Vec::new(), Vec::new(), Vec::new());
        let mut short = Vec::new();
        let mut confirm = Vec::new();
        let mut inner = Vec::new();
        let (mut set_hirs, mut set_ids) = (Vec::new(), Vec::new());
        for (i, (c, pieces)) in p.regexes.iter().zip(&planned).enumerate() {
            for (k, piece) in pieces.iter().enumerate() {
                let part = parts.len() as u16;
                parts.push(c.parts[k].clone());
                part_of.push(i as u16);
                short.push(piece.short);
                confirm.push(c.confirm[k].clone());
                inner.push(c.inner[k].clone().filter(|_| !without_inner));
                match &piece.kind {
                    PieceKind::Start(first) => starts.push((part, **first)),
                    PieceKind::Set => {
                        set_hirs.push(piece.hir.clone());
                        set_ids.push(i as u16);
                    }
                    PieceKind::Gated { .. } | PieceKind::Inner { .. } | PieceKind::Triggered(_) => {
                    }
                }
            }
        }
        View::assemble(
            Kept {
                phrases: &p.phrases,
                phrase_meta: p.phrase_meta.clone(),
                regex_meta: p.regex_meta.clone(),
                #[cfg(test)]
                res: p.regexes.iter().map(|c| c.whole.clone()).collect(),
            },
            triggers,
            Parts {
                parts,
                part_of,
                short,
                confirm,
                inner,
                starts,
                set_hirs,
                set_ids,
            },
        )
    }

    /// Both views in one, for text whose two views are the same: `a`'s patterns, then `b`'s,
    /// as `build` would make them from both lists one after the other, but with the parts
    /// already compiled (the same `MetaRegex`es, so a scanner's caches for `a`'s and `b`'s
    /// parts serve this view's too) and without planning the regexes again. Only the set of
    /// ungated parts is compiled anew.
    pub(super) fn merged(a: &View, pa: &Pending, b: &View, pb: &Pending) -> Result<View, String> {
        let (na, ra) = (a.parts.len(), pa.regexes.len());
        // first: it refuses a sum of parts past u16 before any part number is shifted
        let triggers = Triggers::merged(&a.triggers, na, &b.triggers, b.parts.len())?;
        let shift = |ids: &[u16], by: usize| ids.iter().map(|&i| i + by as u16).collect::<Vec<_>>();
        let phrases = [pa.phrases.clone(), pb.phrases.clone()].concat();
        let kept = Kept {
            phrases: &phrases,
            phrase_meta: [pa.phrase_meta.clone(), pb.phrase_meta.clone()].concat(),
            regex_meta: [pa.regex_meta.clone(), pb.regex_meta.clone()].concat(),
            #[cfg(test)]
            res: [a.res.clone(), b.res.clone()].concat(),
        };
        View::assemble(
            kept,
            triggers,
            Parts {
                parts: [a.parts.clone(), b.parts.clone()].concat(),
                part_of: [a.part_of.clone(), shift(&b.part_of, ra)].concat(),
                short: [a.short.clone(), b.short.clone()].concat(),
                confirm: [a.confirm.clone(), b.confirm.clone()].concat(),
                inner: [a.inner.clone(), b.inner.clone()].concat(),
                starts: a
                    .starts
                    .iter()
                    .copied()
                    .chain(
                        b.starts
                            .iter()
                            .map(|&(part, first)| (part + na as u16, first)),
                    )
                    .collect(),
                set_hirs: [a.set_hirs.clone(), b.set_hirs.clone()].concat(),
                set_ids: [a.set_ids.clone(), shift(&b.set_ids, ra)].concat(),
            },
        )
    }

    /// A view from its compiled parts: the set of ungated parts, and the phrase table.
    fn assemble(p: Kept<'_>, triggers: Triggers, parts: Parts) -> Result<View, String> {
        let set = MetaRegex::builder()
            .configure(
                MetaRegex::config()
                    .match_kind(regex_automata::MatchKind::All)
                    .utf8_empty(false),
            )
            .build_many_from_hir(&parts.set_hirs)
            .map_err(|e| e.to_string())?;
        // the automaton's patterns: phrases (ids below `ac_meta.len()`), then trigger literals
        let lens = triggers.automaton_patterns(p.phrases);
        // The table is the automaton itself: for the built-in catalogue's views, the one the
        // build script made from these very patterns (`threat::embedded`, compared whole);
        // otherwise built here directly (`Table::from_patterns`), no dense DFA on the way.
        let table = match super::super::embedded::table_for(&lens) {
            Some(t) => t,
            None => Table::from_patterns(&lens)?,
        };
        let ac_longest = table.longest();
        // matches ending at one byte are those of one state: the most any state reports
        let per_byte = table.most_matches_per_state();
        let ac_most_hits = (WINDOW_BYTES + LANES * ac_longest) * per_byte;
        if ac_most_hits > MAX_WINDOW_HITS {
            return Err(format!(
                "up to {per_byte} phrases or literals can end at one byte and the longest has \
                 {ac_longest} bytes, so one window of text could hold {ac_most_hits} matches \
                 (at most {MAX_WINDOW_HITS}); shorten the longest phrases or drop phrases that \
                 end other phrases"
            ));
        }
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
            parts: parts.parts,
            part_of: parts.part_of,
            short: parts.short,
            confirm: parts.confirm,
            inner: parts.inner,
            re_meta: p.regex_meta,
            starts: parts.starts,
            set,
            set_ids: parts.set_ids,
            set_hirs: parts.set_hirs,
            #[cfg(test)]
            res: p.res,
        })
    }
}

/// A view's compiled regex parts, before its set and phrase table are built.
struct Parts {
    parts: Vec<MetaRegex>,
    part_of: Vec<u16>,
    short: Vec<bool>,
    confirm: Vec<Option<aho_corasick::packed::Searcher>>,
    inner: Vec<Option<InnerPart>>,
    starts: Vec<(u16, [bool; 256])>,
    set_hirs: Vec<regex_syntax::hir::Hir>,
    set_ids: Vec<u16>,
}

/// One regex part from its syntax tree (parsed on bytes, without UTF-8 mode: `plan::parse`),
/// built for what the scan asks of it: where a match ends (`search_half`), never captures, so
/// no one-pass DFA; no full DFA either (the lazy DFA serves as fast once warm, and building
/// full DFAs for the catalogue's small regexes was a sixth of a start); and a prefilter only
/// where `over_text` (the part runs over the whole text, not anchored where a literal matched).
/// The tests hold every part to the regex compiled with the regex crate's defaults.
pub(super) fn build_part(
    hir: &regex_syntax::hir::Hir,
    over_text: bool,
) -> Result<MetaRegex, String> {
    MetaRegex::builder()
        .configure(
            MetaRegex::config()
                .utf8_empty(false)
                .onepass(false)
                .dfa(false)
                .auto_prefilter(over_text),
        )
        .build_from_hir(hir)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(regexes: &[&str]) -> Pending {
        Pending {
            phrases: vec!["abcde".into()],
            phrase_meta: vec![(0, 1, 0)],
            regexes: regexes
                .iter()
                .map(|r| Compiled::new(&regex_source(r)).unwrap())
                .collect(),
            regex_meta: (0..regexes.len()).map(|i| (0, 1, i as u32 + 1)).collect(),
        }
    }

    /// The merged view numbers the second view's parts after the first's, start-anchored ones
    /// included; and the part count is checked on both views together, start-anchored parts
    /// (which no literal names) counted: a hostile review's 40,000 + 30,000 parts loaded and
    /// wrapped when only the parts a literal names were counted.
    #[test]
    fn a_merged_view_counts_every_part_of_both_views() {
        let (pa, pb) = (pending(&["^abc", "xyzzy+q"]), pending(&["^def", "^ghi"]));
        let (a, b) = (View::build(&pa).unwrap(), View::build(&pb).unwrap());
        let m = View::merged(&a, &pa, &b, &pb).unwrap();
        assert_eq!(m.parts.len(), 4);
        assert_eq!(
            m.starts.iter().map(|s| s.0).collect::<Vec<_>>(),
            vec![0, 2, 3]
        );
        let none = Triggers::default();
        assert!(Triggers::merged(&none, 30_000, &none, 30_000).is_ok());
        let e = Triggers::merged(&none, 40_000, &none, 30_000)
            .err()
            .unwrap();
        assert!(e.contains("70000 regex parts"), "{e}");
    }
}
