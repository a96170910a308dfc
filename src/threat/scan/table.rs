//! Markdown tables: a row's cell borders are no shell pipes.
//!
//! A table row (`| id | name |`) puts a pipe before every cell, and a cell is often a word the
//! command patterns know (`id`, `cat`, `python`, `ssh`, `ping`, `sleep`): read as shell, every
//! such table was a pipe into a command, High. No shell runs such a line where a command may
//! begin: `sh`, `bash`, `zsh`, `cmd.exe` and PowerShell all refuse a command line whose first
//! byte past spaces and tabs is `|`. Elsewhere (inside a quote, a substitution, an arithmetic
//! expression or a test opened on a line before) the row's pipes are literal or no pipes, up to
//! the first byte that could close that: a quote, a backtick, `)`, `]` or `}`. Past it they may
//! be real pipes (`x'` on one line, `| ' |` on the next and `id` on the third pipe into `id`).
//!
//! So in a line that begins with `|` past spaces and tabs, ends with `|` past spaces, tabs and
//! `\r`, and does not continue a line that ends with `\` (which would join the two), each pipe
//! before the line's first closing byte with a space, a tab or the line's edge on both sides is
//! read as `)`: a byte that ends a shell word and a path token as `|` does, and that no pattern
//! reads as a separator. A property test holds the rule against `bash -n` and `sh -n`.
//!
//! Invariants: only those pipes change, one byte for one, so the text keeps its length and every
//! other byte. A pipe with anything else beside it stays (`<|im_start|>`, `||`, `|id|`), and so
//! does every other separator in a row (`;`, `&&`, a backtick, `$(`): a payload in a cell is read
//! as before. Linear (each byte is looked at a bounded number of times); `out` is reused.

/// Spaces and tabs: what a shell passes over before a command (not `\r`: bash reads it as a
/// word, and `\r| id` pipes that word into `id`).
fn blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Whether `b` may close a quote, a substitution, a group, an arithmetic expression or a test
/// opened before the line it is in.
fn closing(b: u8) -> bool {
    matches!(b, b'\'' | b'"' | b'`' | b')' | b']' | b'}')
}

/// Writes into `out` the text with the cell borders of its Markdown table rows read as `)` (see
/// the module's doc), and says whether there was one; where there was none, `out` is not
/// written and the text is read as it is.
pub(super) fn blank_cell_borders(text: &[u8], out: &mut Vec<u8>) -> bool {
    let mut written = false;
    // the line of the last pipe looked at: its end, and where its pipes stop being cell borders
    // (its first closing byte; its start where it is no table row)
    let (mut line_end, mut borders_end) = (0, 0);
    for p in memchr::memchr_iter(b'|', text) {
        if p >= line_end {
            let start = memchr::memrchr(b'\n', &text[..p]).map_or(0, |n| n + 1);
            line_end = memchr::memchr(b'\n', &text[p..]).map_or(text.len(), |n| p + n);
            borders_end = match table_row(text, start, line_end) {
                true => text[start..line_end]
                    .iter()
                    .position(|&b| closing(b))
                    .map_or(line_end, |i| start + i),
                false => start,
            };
        }
        if p >= borders_end {
            continue;
        }
        // (a blank, or the line's edge: its `\n`, the text's ends, `\r`s before the `\n`)
        let before = p == 0 || text[p - 1] == b'\n' || blank(text[p - 1]);
        let after = p + 1 == line_end
            || blank(text[p + 1])
            || (text[p + 1] == b'\r'
                && text[p + 1..line_end]
                    .iter()
                    .all(|&b| b == b'\r' || blank(b)));
        if before && after {
            if !written {
                out.clear();
                out.extend_from_slice(text);
                written = true;
            }
            out[p] = b')';
        }
    }
    written
}

/// Whether `text[start..end]` (a line, without its `\n`) is a table row: its first byte past
/// spaces and tabs is `|`, its last before spaces, tabs and `\r` is another `|`, and the line
/// before it (if any) does not end with `\` (blanks and `\r` aside) and so join it.
fn table_row(text: &[u8], start: usize, end: usize) -> bool {
    let line = &text[start..end];
    let Some(first) = line.iter().position(|&b| !blank(b)) else {
        return false;
    };
    let Some(last) = line.iter().rposition(|&b| !blank(b) && b != b'\r') else {
        return false;
    };
    if line[first] != b'|' || line[last] != b'|' || last == first {
        return false;
    }
    // (start - 1 is the `\n` that ends the line before)
    let before = &text[..start.saturating_sub(1)];
    let joined = before
        .iter()
        .rposition(|&b| !blank(b) && b != b'\r')
        .is_some_and(|i| before[i] == b'\\');
    !(start > 0 && joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> String {
        let mut out = Vec::new();
        match blank_cell_borders(text.as_bytes(), &mut out) {
            true => String::from_utf8(out).unwrap(),
            false => text.to_string(),
        }
    }

    #[test]
    fn a_rows_cell_borders_are_read_as_closing_parentheses() {
        assert_eq!(read("| id | name |"), ") id ) name )");
        assert_eq!(
            read("  | a |\t| b |  \r\n|--|\n"),
            "  ) a )\t) b )  \r\n|--|\n"
        );
        assert_eq!(
            read("text\n| cat | ls |\r\nmore"),
            "text\n) cat ) ls )\r\nmore"
        );
        assert_eq!(read("| id |\r\r"), ") id )\r\r");
        // a separator row has no blank beside its pipes but at the edges
        assert_eq!(read("|---|---|"), "|---|---|");
    }

    #[test]
    fn pipes_that_are_not_a_rows_cell_borders_stay() {
        for t in [
            "ping x | id",
            "a | id |",
            "| id",
            "id |",
            "|",
            "| <|im_start|>system |",
            "|id|name|",
            "x \\\n| id |",
            "x \\ \r\n| id |",
            "\r| id |",
            "\u{a0}| id |",
            "echo a || id |",
        ] {
            let got = read(t);
            // only the outer borders of `| <|im_start|>system |` change
            let want = match t {
                "| <|im_start|>system |" => ") <|im_start|>system )".to_string(),
                _ => t.to_string(),
            };
            assert_eq!(got, want, "{t:?}");
        }
        // the other separators of a row stay; past its first closing byte, its pipes too
        assert_eq!(
            read("| a; id | && whoami | $(id | a || id |"),
            ") a; id ) && whoami ) $(id ) a || id )"
        );
        assert_eq!(read("| `id` | cat |"), ") `id` | cat |");
        assert_eq!(read("| id (pk) | cat |"), ") id (pk) | cat |");
        for closer in ["'", "\"", ")", "]", "}"] {
            let row = format!("| a {closer} | id |");
            assert_eq!(read(&row), format!(") a {closer} | id |"));
        }
    }

    /// Whether `shell` refuses `script` (`-n`: read, not run): a syntax error, a quote or a
    /// construct left open. bash reports an error inside `[[ ]]` and exits 0, so an error
    /// message counts as refusing too.
    fn refused(shell: &str, script: &str) -> bool {
        let o = std::process::Command::new(shell)
            .args(["-n", "-c", script])
            .env_clear()
            .output()
            .expect("the shell runs");
        !o.status.success() || !o.stderr.is_empty()
    }

    /// What may stand before a text: nothing, a command ended, a line joined to the next, an
    /// operator that continues onto the next line, and things a row may close (a quote, a
    /// substitution, a group, an arithmetic expression, a test).
    const CONTEXTS: [&str; 20] = [
        "",
        "true\n",
        "true\r\n",
        "x=1\n",
        "true \\\n",
        "true \\ \n",
        "true &\n",
        "true &&\n",
        "true |\n",
        "{ true\n",
        "( true\n",
        "if true; then\n",
        "x'\n",
        "x\"\n",
        "x`\n",
        "echo $((1\n",
        "echo ${a\n",
        "echo $(\n",
        "[[ a &&\n",
        "((1\n",
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// Against the shells themselves: wherever a pipe is read as a cell border, it is no
        /// pipe into what follows. The text up to it, then a line with a command, is refused by
        /// `bash -n` and `sh -n` (a syntax error, or a quote or a construct left open): were it a
        /// pipe, that would pipe into the command. Only pipes change, to `)`.
        #[test]
        fn a_pipe_read_as_a_cell_border_pipes_into_nothing(
            context in proptest::sample::select(CONTEXTS.to_vec()),
            lines in proptest::collection::vec((
                proptest::sample::select(vec!["", "|", "| ", " |", "\t| ", "\r| ", "x| ", "||"]),
                proptest::collection::vec(proptest::sample::select(vec![
                    "|", " | ", "||", " ", "\t", "\r", "id", "cat", "ls", " x", "-la", ";", "&&",
                    "&", "`", "$(", "$((", "((", ")", "))", "]]", "}", "'", "\"", "\\", "#", "<",
                    ">", "{", "!", "a=b", "---", ":", " ' | ", " \" | ", " ) | ", " )) | ",
                    " ]] | ", " } | ", " ` | ",
                ]), 0..8),
                proptest::sample::select(vec!["", "|", " |", "| ", " |\r", "\\", " | \\", "|x"]),
            ), 1..5),
        ) {
            let lines: Vec<String> = lines
                .iter()
                .map(|(first, body, last)| format!("{first}{}{last}", body.concat()))
                .collect();
            let text = format!("{context}{}", lines.join("\n"));
            let t = text.as_bytes();
            let mut out = Vec::new();
            if !blank_cell_borders(t, &mut out) {
                return Ok(());
            }
            proptest::prop_assert_eq!(out.len(), t.len());
            for k in (0..t.len()).filter(|&k| out[k] != t[k]) {
                proptest::prop_assert!(t[k] == b'|' && out[k] == b')', "{:?}", text);
                for shell in ["bash", "sh"] {
                    let script = format!("{}\nid", &text[..=k]);
                    proptest::prop_assert!(
                        refused(shell, &script),
                        "{} runs {:?} (from {:?})", shell, script, text
                    );
                }
            }
        }
    }
}
