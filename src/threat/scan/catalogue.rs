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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CatalogueFile {
    pub(super) pattern: Vec<PatternFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PatternFile {
    pub(super) category: String,
    pub(super) weight: u32,
    #[serde(default = "folded")]
    pub(super) view: String,
    pub(super) phrase: Option<String>,
    pub(super) regex: Option<String>,
    /// Whether a match counts as one of the two jailbreak patterns that corroborate
    /// (`CORROBORATION`); `false` for evidence of another kind filed under a prose category,
    /// such as a slot for the request a template carries.
    #[serde(default = "yes")]
    pub(super) corroborates: bool,
}

pub(super) fn folded() -> String {
    "folded".into()
}

pub(super) fn yes() -> bool {
    true
}

impl Scanner {
    /// The built-in catalogue.
    pub fn builtin() -> Scanner {
        Self::from_toml(BUILTIN, "patterns.toml").expect("the built-in catalogue compiles")
    }

    /// Compiles a catalogue; errors name the file, line and field.
    pub fn from_toml(src: &str, file: &str) -> Result<Scanner, crate::source::SourceError> {
        let f: CatalogueFile =
            toml::from_str(src).map_err(|e| crate::source::from_toml_error(&e, src, file))?;
        let bad = |i: usize, field: &str, message: String| crate::source::SourceError {
            file: file.into(),
            line: None,
            field: format!("pattern[{i}].{field}"),
            message,
        };
        let mut views: [Pending; 2] = Default::default();
        let mut catalogue = Vec::with_capacity(f.pattern.len());
        // (pattern, view, regex) in catalogue order
        let mut regexes: Vec<(usize, usize, String)> = Vec::new();
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
            if p.weight == 0 && cat != JAILBREAK {
                return Err(bad(
                    i,
                    "weight",
                    "weight 0 marks a context pattern, which only category jailbreak_persona has; give a weight of 1 or more".into(),
                ));
            }
            let v = match p.view.as_str() {
                "light" => 0,
                "folded" => 1,
                other => {
                    return Err(bad(
                        i,
                        "view",
                        format!("unknown view `{other}`; expected light or folded"),
                    ))
                }
            };
            let meta = (cat, p.weight, i as u32);
            let text = match (&p.phrase, &p.regex) {
                (Some(ph), None) if !ph.is_empty() => {
                    views[v].phrases.push(ph.to_lowercase());
                    views[v].phrase_meta.push(meta);
                    ph
                }
                (None, Some(re)) => {
                    // ASCII word boundaries: Unicode `\b` would push the whole set onto the
                    // slow PikeVM; the views are already normalised toward ASCII. Compiled
                    // below, two threads at a time, in this order.
                    regexes.push((i, v, format!("(?-u){re}")));
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
            if !p.corroborates && cat != JAILBREAK && cat != OVERRIDE {
                return Err(bad(
                    i,
                    "corroborates",
                    "only jailbreak_persona and instruction_override patterns corroborate; remove the field".into(),
                ));
            }
            catalogue.push(PatternInfo {
                category: CATEGORIES[cat as usize],
                weight: p.weight,
                text: text.clone(),
                corroborates: p.corroborates,
            });
        }
        // Each regex compiled alone (an error names its pattern): the second half on a thread
        // of its own meanwhile (a fifth of a start where a second CPU is free).
        let compile = |part: &[(usize, usize, String)]| {
            part.iter()
                .map(|(i, _, re)| build_regex(re).map_err(|e| bad(*i, "regex", e)))
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
        for ((_, v, re), c) in regexes.into_iter().zip(compiled) {
            views[v].regexes.push((re, c?));
        }
        // each pattern compiled alone above; what fails here is the catalogue as a whole
        let build = |p: Pending| {
            View::build(p).map_err(|e| crate::source::SourceError {
                file: file.into(),
                line: None,
                field: "pattern".into(),
                message: format!("the catalogue does not compile as a whole: {e}"),
            })
        };
        let both = Pending::merged(&views[0], &views[1]);
        let [light, folded] = views;
        // The merged view is as large as the other two together: built on a thread of its
        // own meanwhile, start-up takes about half as long where a second CPU is free.
        let (light, folded, both) = std::thread::scope(|s| {
            let both = std::thread::Builder::new()
                .name("warden-catalogue".into())
                .spawn_scoped(s, || build(both));
            let (light, folded) = (build(light), build(folded));
            let both = match both {
                Ok(t) => t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
                Err(e) => Err(crate::source::SourceError {
                    file: file.into(),
                    line: None,
                    field: "pattern".into(),
                    message: format!("cannot start a thread to compile the catalogue: {e}"),
                }),
            };
            (light, folded, both)
        });
        Ok(Scanner::with_views(
            light?.into(),
            folded?.into(),
            both?.into(),
            catalogue.into(),
        ))
    }

    /// A scanner over compiled views. The views are immutable and shared by every fork (one
    /// copy of the automata per process, not per core); each scanner owns only its buffers and
    /// regex caches.
    pub(super) fn with_views(
        light: std::sync::Arc<View>,
        folded: std::sync::Arc<View>,
        both: std::sync::Arc<View>,
        catalogue: std::sync::Arc<[PatternInfo]>,
    ) -> Scanner {
        let patterns = catalogue.len();
        let parts = [&light, &folded, &both]
            .map(|v| v.parts.len())
            .into_iter()
            .max()
            .unwrap_or(0);
        Scanner {
            caches: [&light, &folded, &both]
                .map(|v| v.parts.iter().map(MetaRegex::create_cache).collect()),
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
            re_hits: regex_automata::PatternSet::new(patterns.max(1)),
            light,
            folded,
            both,
            normalizer: Normalizer::new(),
            decoded: Vec::with_capacity(MAX_DECODED_BYTES),
            catalogue,
            seen: vec![0; patterns.div_ceil(64)],
            model: None,
            trace: None,
        }
    }
}
