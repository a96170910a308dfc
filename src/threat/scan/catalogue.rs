//! Reading and compiling a pattern catalogue: the categories, the file's form, and
//! `Scanner::from_toml`, which builds the views and the scanner; errors name the pattern.

#[allow(unused_imports)]
use super::*;

/// Threat categories, by bit index in `ScanResult::categories`.
pub const CATEGORIES: [&str; 11] = [
    "instruction_override",
    "jailbreak_persona",
    "prompt_extraction",
    "delimiter_injection",
    "encoded_payload",
    "exfiltration",
    "path_traversal",
    "command_injection",
    "secret_leak",
    "gibberish",
    "classifier",
];

impl Scanner {
    /// The built-in catalogue: as the build script read it (`BUILTIN_PARSED`), or from its
    /// TOML where the build script could not read it.
    pub fn builtin() -> Scanner {
        Self::builtin_many(1).remove(0)
    }

    /// `n` scanners (at least one) over one compiled built-in catalogue, as `fork` would make
    /// them but sooner: their caches are made while the merged view is built.
    pub fn builtin_many(n: usize) -> Vec<Scanner> {
        match BUILTIN_PARSED {
            Some(p) => Self::from_file(
                CatalogueFile {
                    pattern: p.iter().map(PatternFile::from).collect(),
                },
                "patterns.toml",
                n,
            ),
            None => Self::from_toml_many(BUILTIN, "patterns.toml", n),
        }
        .expect("the built-in catalogue compiles")
    }

    /// Compiles a catalogue; errors name the file, line and field.
    pub fn from_toml(src: &str, file: &str) -> Result<Scanner, crate::source::SourceError> {
        Self::from_toml_many(src, file, 1).map(|mut v| v.remove(0))
    }

    /// `n` scanners (at least one) over one compiled catalogue (`builtin_many`).
    pub fn from_toml_many(
        src: &str,
        file: &str,
        n: usize,
    ) -> Result<Vec<Scanner>, crate::source::SourceError> {
        let f: CatalogueFile =
            toml::from_str(src).map_err(|e| crate::source::from_toml_error(&e, src, file))?;
        Self::from_file(f, file, n)
    }

    /// Compiles a catalogue read from `file` into `n` scanners (at least one); errors name the
    /// file and field.
    fn from_file(
        f: CatalogueFile,
        file: &str,
        n: usize,
    ) -> Result<Vec<Scanner>, crate::source::SourceError> {
        let bad = |i: usize, field: &str, message: String| crate::source::SourceError {
            file: file.into(),
            line: None,
            field: format!("pattern[{i}].{field}"),
            message,
        };
        if f.pattern.len() > MAX_PATTERNS {
            return Err(crate::source::SourceError {
                file: file.into(),
                line: None,
                field: "pattern".into(),
                message: format!(
                    "{} patterns; a catalogue holds at most {MAX_PATTERNS}: split it, or drop patterns",
                    f.pattern.len()
                ),
            });
        }
        let mut views: [Pending; 2] = Default::default();
        let mut catalogue = Vec::with_capacity(f.pattern.len());
        // (pattern, view, regex) in catalogue order
        let mut regexes: Vec<(usize, usize, String)> = Vec::new();
        // the patterns read in context (`veto.rs`), in catalogue order
        let mut vetoes = Vec::new();
        for (i, p) in f.pattern.iter().enumerate() {
            let cat = CATEGORIES
                .iter()
                .position(|c| *c == p.category)
                .ok_or_else(|| {
                    bad(
                        i,
                        "category",
                        format!(
                            "unknown category `{}`; expected one of {}",
                            p.category,
                            CATEGORIES.join(", ")
                        ),
                    )
                })? as u8;
            if p.weight == 0 && cat != JAILBREAK && cat != ENCODED {
                return Err(bad(
                    i,
                    "weight",
                    "weight 0 marks a context pattern (category jailbreak_persona) or a reversal marker (category encoded_payload), which no other category has; give a weight of 1 or more".into(),
                ));
            }
            let Some(v) = view_index(&p.view) else {
                return Err(bad(
                    i,
                    "view",
                    format!("unknown view `{}`; expected light or folded", p.view),
                ));
            };
            let meta = (cat, p.weight, i as u32);
            let text = match (&p.phrase, &p.regex) {
                (Some(ph), None) if !ph.is_empty() => {
                    for key in phrase_keys(ph) {
                        views[v].phrases.push(key);
                        views[v].phrase_meta.push(meta);
                    }
                    ph
                }
                (None, Some(re)) => {
                    // compiled below, two threads at a time, in this order
                    regexes.push((i, v, regex_source(re)));
                    views[v].regex_meta.push(meta);
                    re
                }
                _ => {
                    return Err(bad(
                        i,
                        "phrase",
                        "give exactly one of `phrase` (non-empty) or `regex`".into(),
                    ))
                }
            };
            if p.unless_before.is_some() || p.unless_after.is_some() {
                let field = match p.unless_before {
                    Some(_) => "unless_before",
                    None => "unless_after",
                };
                let Some(re) = &p.regex else {
                    return Err(bad(
                        i,
                        field,
                        "a veto reads a regex's matches in context; write the phrase as a regex (`\\bwords\\b`), or remove the field".into(),
                    ));
                };
                let veto = Veto::new(
                    i as u32,
                    re,
                    p.unless_before.as_deref(),
                    p.unless_after.as_deref(),
                )
                .map_err(|(field, e)| bad(i, field, e))?;
                vetoes.push(veto);
            }
            if !p.corroborates && cat != JAILBREAK && cat != OVERRIDE {
                return Err(bad(
                    i,
                    "corroborates",
                    "only jailbreak_persona and instruction_override patterns corroborate; remove the field".into(),
                ));
            }
            // data weighs words addressed to the model more, never less, and never a context
            // pattern's or a reversal marker's (weight 0: not evidence)
            if let Some(d) = p.data_weight {
                if TECHNICAL & 1 << cat != 0 {
                    return Err(bad(
                        i,
                        "data_weight",
                        format!(
                            "a data weight is for words addressed to the model (a prose category); {} is technical evidence, which long prose caps whatever its weight: remove the field",
                            p.category
                        ),
                    ));
                }
                if p.weight == 0 || d <= p.weight {
                    return Err(bad(
                        i,
                        "data_weight",
                        format!(
                            "data_weight ({d}) raises a pattern's weight ({}) where the text is data an agent read; give more than the weight, or remove the field{}",
                            p.weight,
                            if p.weight == 0 { " (a weight-0 pattern is context, not evidence)" } else { "" }
                        ),
                    ));
                }
            }
            catalogue.push(PatternInfo {
                category: CATEGORIES[cat as usize],
                weight: p.weight,
                text: text.clone(),
                corroborates: p.corroborates,
                data_weight: p.data_weight.unwrap_or(p.weight),
            });
        }
        // Each regex parsed, planned and compiled alone (an error names its pattern), the
        // second half on a thread of its own meanwhile (where a second CPU is free, that
        // halves the larger part of a start).
        let compile = |part: &[(usize, usize, String)]| {
            part.iter()
                .map(|(i, _, re)| Compiled::new(re).map_err(|e| bad(*i, "regex", e)))
                .collect::<Vec<_>>()
        };
        let (first, second) = regexes.split_at(regexes.len() / 2);
        let compiled = std::thread::scope(|s| {
            let other = std::thread::Builder::new()
                .name("warden-catalogue".into())
                .spawn_scoped(s, || compile(second));
            let mut all = compile(first);
            match other {
                Ok(t) => all.extend(t.join().unwrap_or_else(|p| std::panic::resume_unwind(p))),
                Err(_) => all.extend(compile(second)),
            }
            all
        });
        for ((_, v, _), c) in regexes.into_iter().zip(compiled) {
            views[v].regexes.push(c?);
        }
        // each pattern compiled alone above; what fails here is the catalogue as a whole
        let whole = |e: String| crate::source::SourceError {
            file: file.into(),
            line: None,
            field: "pattern".into(),
            message: format!("the catalogue does not compile as a whole: {e}"),
        };
        // The light and folded views side by side where a second CPU is free (a thread that
        // cannot start leaves its view to this one); the merged view reuses both.
        let [pl, pf] = &views;
        let (light, folded) = std::thread::scope(|s| {
            let other = std::thread::Builder::new()
                .name("warden-catalogue".into())
                .spawn_scoped(s, || View::build(pf));
            let light = View::build(pl);
            let folded = match other {
                Ok(t) => t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
                Err(_) => View::build(pf),
            };
            (light, folded)
        });
        let (light, folded) = (light.map_err(whole)?, folded.map_err(whole)?);
        // The merged view on a thread of its own while the scanners' caches are made here.
        let (both, caches) = std::thread::scope(|s| {
            let other = std::thread::Builder::new()
                .name("warden-catalogue".into())
                .spawn_scoped(s, || View::merged(&light, pl, &folded, pf));
            let caches: Vec<_> = (0..n.max(1))
                .map(|_| part_caches(&light, &folded))
                .collect();
            let both = match other {
                Ok(t) => t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
                Err(_) => View::merged(&light, pl, &folded, pf),
            };
            (both, caches)
        });
        // (the two views' inner literals together past the merged automaton's limits: both
        // views planned without inner parts, as `View::build` does for one alone)
        let (light, folded, both, caches) = match both {
            Ok(both) => (light, folded, both, caches),
            Err(_) => {
                let light = View::build_planned(pl, true).map_err(whole)?;
                let folded = View::build_planned(pf, true).map_err(whole)?;
                let both = View::merged(&light, pl, &folded, pf).map_err(whole)?;
                let caches = (0..n.max(1))
                    .map(|_| part_caches(&light, &folded))
                    .collect();
                (light, folded, both, caches)
            }
        };
        let both = std::sync::Arc::new(both);
        let (light, folded) = (std::sync::Arc::new(light), std::sync::Arc::new(folded));
        let catalogue: std::sync::Arc<[PatternInfo]> = catalogue.into();
        let vetoes: std::sync::Arc<[Veto]> = vetoes.into();
        Ok(caches
            .into_iter()
            .map(|c| {
                Scanner::with_views(
                    light.clone(),
                    folded.clone(),
                    both.clone(),
                    catalogue.clone(),
                    vetoes.clone(),
                    c,
                )
            })
            .collect())
    }

    /// A scanner over compiled views. The views are immutable and shared by every fork (one
    /// copy of the automata per process, not per core); each scanner owns only its buffers and
    /// regex caches.
    pub(super) fn with_views(
        light: std::sync::Arc<View>,
        folded: std::sync::Arc<View>,
        both: std::sync::Arc<View>,
        catalogue: std::sync::Arc<[PatternInfo]>,
        vetoes: std::sync::Arc<[Veto]>,
        caches: Vec<PartCache>,
    ) -> Scanner {
        // the merged view's parts are the light view's, then the folded view's, and share their
        // caches (`View::merged`)
        assert_eq!(both.parts.len(), light.parts.len() + folded.parts.len());
        assert_eq!(caches.len(), both.parts.len());
        let patterns = catalogue.len();
        let parts = [&light, &folded, &both]
            .map(|v| v.parts.len())
            .into_iter()
            .max()
            .unwrap_or(0);
        Scanner {
            caches,
            open_from: vec![u32::MAX; parts],
            opened: vec![0; parts.div_ceil(64)],
            tries: vec![0; parts],
            confirm_looked: vec![0; parts.div_ceil(64)],
            confirm_found: vec![0; parts.div_ceil(64)],
            hits: Vec::with_capacity(
                [&light, &folded, &both]
                    .map(|v| v.ac_most_hits)
                    .into_iter()
                    .max()
                    .unwrap_or(0),
            ),
            set_caches: [&light, &folded, &both].map(|v| v.set.create_cache()),
            cand: vec![0; patterns.div_ceil(64)],
            // (one slot per part in a set: a regex split into branches may have several there)
            re_hits: regex_automata::PatternSet::new(
                [&light, &folded, &both]
                    .map(|v| v.set.pattern_len())
                    .into_iter()
                    .max()
                    .unwrap_or(0)
                    .max(1),
            ),
            light,
            folded,
            both,
            normalizer: Normalizer::new(),
            decoded: Vec::with_capacity(MAX_DECODED_BYTES),
            decoded_again: Vec::with_capacity(MAX_DECODED_BYTES),
            rows: Vec::new(),
            markdown_tables: true,
            catalogue,
            veto_caches: vetoes.iter().map(Veto::create_cache).collect(),
            flood_order_cache: super::decode::FLOOD_ORDER.create_cache(),
            vetoes,
            seen: vec![0; patterns.div_ceil(64)],
            counted: vec![0; patterns.div_ceil(64)],
            counted_edge: vec![0; patterns.div_ceil(64)],
            edge_text: Vec::new(),
            edge_normalizer: Normalizer::new(),
            model: None,
            trace: None,
            trace_every_reading: false,
            data: false,
            user: false,
        }
    }
}

/// A scanner's caches for the light view's parts, then the folded view's (the merged view's
/// parts are the same regexes in that order, `View::merged`, and use them too).
pub(super) fn part_caches(light: &View, folded: &View) -> Vec<PartCache> {
    let parts = light.parts.iter().chain(&folded.parts);
    let inner = light.inner.iter().chain(&folded.inner);
    parts
        .zip(inner)
        .map(|(whole, inner)| PartCache {
            whole: whole.create_cache(),
            inner: inner.as_ref().map(InnerPart::create_cache),
        })
        .collect()
}
