//! Resource patterns: `*` matches within one path segment, `**` matches across segments, every
//! other byte matches itself. Compiled once at policy load; matching allocates nothing and runs
//! in O(pattern × input) at worst (one backtrack point per star kind), bounded by field limits.

/// A compiled pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    pattern: Box<[u8]>,
}

impl Glob {
    /// Fails when the pattern is empty or has three or more stars in a row.
    pub fn new(p: &str) -> Result<Glob, String> {
        if p.is_empty() {
            return Err("a resource pattern may not be empty".into());
        }
        if p.contains("***") {
            return Err(format!(
                "`{p}`: use `*` (one segment) or `**` (any depth), not `***`"
            ));
        }
        Ok(Glob {
            pattern: p.as_bytes().into(),
        })
    }

    pub fn as_str(&self) -> &str {
        // The pattern was a &str.
        core::str::from_utf8(&self.pattern).unwrap_or("")
    }

    /// Whether `s` matches.
    pub fn matches(&self, s: &str) -> bool {
        glob_match(&self.pattern, s.as_bytes())
    }
}

fn glob_match(p: &[u8], s: &[u8]) -> bool {
    // Iterative matcher with backtracking to the last `**` (crosses '/') or `*` (does not).
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize, bool)> = None; // (pattern index after star, input index, deep)
    let mut steps = 0usize;
    let budget = (p.len() + 1) * (s.len() + 1) + 16;
    while si < s.len() || pi < p.len() {
        steps += 1;
        if steps > budget {
            return false;
        }
        if pi < p.len() && p[pi] == b'*' {
            let deep = pi + 1 < p.len() && p[pi + 1] == b'*';
            pi += if deep { 2 } else { 1 };
            star = Some((pi, si, deep));
            continue;
        }
        if si < s.len() && pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
            continue;
        }
        // Mismatch: let the last star swallow one more byte, if it may.
        match star {
            Some((sp, ss, deep)) if ss < s.len() && (deep || s[ss] != b'/') => {
                star = Some((sp, ss + 1, deep));
                pi = sp;
                si = ss + 1;
            }
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn stars() {
        let g = |p: &str, s: &str| Glob::new(p).unwrap().matches(s);
        assert!(g("/data/acme/**", "/data/acme/a/b/c.csv"));
        assert!(g("/data/acme/**", "/data/acme/"));
        assert!(!g("/data/acme/**", "/data/acmex/a"));
        assert!(g("/data/*/x", "/data/acme/x"));
        assert!(!g("/data/*/x", "/data/a/b/x"));
        assert!(g(
            "https://api.acme.com/**",
            "https://api.acme.com/v1/items?id=3"
        ));
        assert!(!g(
            "https://api.acme.com/**",
            "https://api.acme.com.evil.io/"
        ));
        assert!(g("*.csv", "report.csv"));
        assert!(!g("*.csv", "dir/report.csv"));
        assert!(g("**.csv", "dir/report.csv"));
        assert!(g("exact", "exact"));
        assert!(!g("exact", "exactly"));
        assert!(Glob::new("").is_err());
        assert!(Glob::new("a/***").is_err());
    }

    proptest! {
        #[test]
        fn never_panics_and_literal_matches_itself(s in "[a-z/.]{0,40}", p in "[a-z/.*]{1,20}") {
            if let Ok(g) = Glob::new(&p) {
                let _ = g.matches(&s);
            }
            if !s.is_empty() && !s.contains('*') {
                prop_assert!(Glob::new(&s).unwrap().matches(&s));
            }
        }
    }
}
