//! Builds the phrase tables of the built-in threat catalogue's three views (light, folded and
//! both) into `$OUT_DIR/phrase_tables.bin`, which `src/threat/embedded.rs` includes in the
//! binary, and the catalogue itself as Rust (`builtin_catalogue.rs`, a start reads it instead
//! of parsing the TOML). It runs the run-time code itself (`walk.rs` and `scan/plan.rs`, included below), so
//! a stored table is the one a start would build; a start uses one only for exactly the
//! patterns it was built from. Where the catalogue does not read here, nothing is stored and
//! every start builds its tables (and reports the catalogue's error, naming the pattern).

#[allow(dead_code)]
#[path = "src/threat/walk.rs"]
mod walk;

#[allow(dead_code)]
#[path = "src/threat/scan/plan.rs"]
mod plan;

const CATALOGUE: &str = "src/threat/patterns.toml";

fn main() {
    for f in [
        CATALOGUE,
        "src/threat/walk.rs",
        "src/threat/scan/plan.rs",
        "build.rs",
    ] {
        println!("cargo:rerun-if-changed={f}");
    }
    let dir = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // the catalogue as Rust, read at start instead of its TOML (None: it does not read here)
    let parsed = std::fs::read_to_string(CATALOGUE)
        .ok()
        .and_then(|src| toml::from_str::<plan::CatalogueFile>(&src).ok())
        .map_or("None".to_string(), |f| {
            format!("Some({})", static_patterns_source(&f))
        });
    let rs = dir.join("builtin_catalogue.rs");
    std::fs::write(&rs, format!("{parsed}\n"))
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", rs.display()));
    let out = dir.join("phrase_tables.bin");
    let blob = tables().unwrap_or_else(|e| {
        println!(
            "cargo:warning=the built-in catalogue's phrase tables are not stored in the binary \
             ({e}); every start builds them"
        );
        Vec::new()
    });
    std::fs::write(&out, blob).unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}

/// `file`'s patterns as Rust source: a `&[StaticPattern]` expression (`Debug` writes a string
/// as a Rust literal, escapes included).
fn static_patterns_source(file: &plan::CatalogueFile) -> String {
    let mut out = String::from("&[\n");
    for p in &file.pattern {
        out.push_str(&format!(
            "    StaticPattern {{ category: {:?}, weight: {}, view: {:?}, phrase: {:?}, \
             regex: {:?}, corroborates: {}, data_weight: {:?}, unless_before: {:?}, \
             unless_after: {:?} }},\n",
            p.category,
            p.weight,
            p.view,
            p.phrase,
            p.regex,
            p.corroborates,
            p.data_weight,
            p.unless_before,
            p.unless_after
        ));
    }
    out.push(']');
    out
}

/// The stored tables: one entry per view, with the patterns it was built from.
fn tables() -> Result<Vec<u8>, String> {
    let src = std::fs::read_to_string(CATALOGUE).map_err(|e| format!("{CATALOGUE}: {e}"))?;
    let file: plan::CatalogueFile =
        toml::from_str(&src).map_err(|e| format!("{CATALOGUE}: {e}"))?;
    // (phrases, regexes) of the light and folded views, as `Scanner::from_toml` sorts them
    let mut views: [(Vec<String>, Vec<String>); 2] = Default::default();
    for (i, p) in file.pattern.iter().enumerate() {
        let v = plan::view_index(&p.view).ok_or(format!("pattern[{i}].view"))?;
        match (&p.phrase, &p.regex) {
            (Some(ph), None) if !ph.is_empty() => views[v].0.extend(plan::phrase_keys(ph)),
            (None, Some(re)) => views[v].1.push(plan::regex_source(re)),
            _ => return Err(format!("pattern[{i}]: neither a phrase nor a regex")),
        }
    }
    // the light and folded views planned alone, the merged one from their plans, as
    // `View::build` and `View::merged` do
    let mut planned = Vec::new();
    for (phrases, regexes) in &views {
        let pieces = regexes
            .iter()
            .map(|re| plan::parse(re).map(|h| plan::analyse(&h)))
            .collect::<Result<Vec<_>, String>>()?;
        let triggers = plan::triggers_of(pieces.iter().map(|p| &p[..]))?;
        planned.push((phrases.clone(), pieces.iter().map(Vec::len).sum(), triggers));
    }
    let both = (
        [planned[0].0.clone(), planned[1].0.clone()].concat(),
        plan::Triggers::merged(&planned[0].2, planned[0].1, &planned[1].2, planned[1].1)?,
    );
    let mut blob = Vec::new();
    for (phrases, triggers) in [
        (&planned[0].0, &planned[0].2),
        (&planned[1].0, &planned[1].2),
        (&both.0, &both.1),
    ] {
        let patterns = triggers.automaton_patterns(phrases);
        let table = walk::Table::from_patterns(&patterns)?;
        walk::write_table(&table, &patterns, &mut blob);
    }
    Ok(blob)
}
