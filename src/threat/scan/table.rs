//! Markdown tables: a table's cell borders are no shell pipes.
//!
//! A table row (`| id | name |`) puts a pipe before every cell, and a cell is often a word the
//! command patterns know (`id`, `cat`, `python`, `ssh`, `ping`, `sleep`): read as shell, every
//! such table was a pipe into a command, High. A text may be a fragment that a sink pastes into a
//! command line (`sh -c "grep $ARG notes.txt"`), where a leading `|` is a real pipe: `| id |`
//! alone runs `id`. But two rows one after the other meet as `|` at a line's end and `|` at the
//! next one's start: a pipe continued onto the next line into an empty command, which `sh`,
//! `bash`, `zsh` and PowerShell refuse, and the shell runs nothing of the command list it stands
//! in. So pipes are cell borders only in a table of two rows or more in a row.
//!
//! That holds only where the meeting is shell grammar, so a row must hold nothing that could open
//! or close something the meeting would fall inside, or end the command list before it (review
//! 31 ran each of these): no quote, backtick, `\`, `$` or `#` (a comment hides the pipe at the
//! line's end); no bracket of any kind (`((1 |` then `| 2 |` is arithmetic, `[[ x =~ (a|` then
//! `|b) ]]` a regex, `@(a|` an extended glob, `)` closes what opened on a line before); no `<` (a
//! here-document takes the next lines) or `^` (cmd.exe's escape: `^|` ends its line); no `&|`
//! (zsh ends the list there), no `--%` (PowerShell reads the rest of the line as text), not the
//! word `case` (a `case` pattern list may span lines in `sh`), and no control byte but the tab (a
//! NUL ends the text where a C-string sink, `system(3)`, reads it; a `\r` before the `\n` of a
//! Windows line ending is a word to a shell, which ends the pipe there).
//!
//! So in a line that begins and ends with `|` past spaces and tabs, holds none of those, and
//! stands next to another such line, each pipe with a space, a tab or the line's edge on
//! both sides is read as `)`: a byte that ends a shell word and a path token as `|` does, and
//! that no pattern reads as a separator. A property test runs `bash` and `sh` on texts pasted
//! into command lines and here-documents, with every command a logging stand-in, and finds no
//! command after such a pipe run; another runs each exclusion's case and sees its command run.
//!
//! Invariants: only those pipes change, one byte for one, so the text keeps its length and every
//! other byte. A pipe with anything else beside it stays (`<|im_start|>`, `||`, `|id|`), and so
//! does every other separator in a row (`;`, `&&`): a payload in a cell is read as before. A row
//! alone, or one with a quote, a bracket or a `$`, is read as it is.
//!
//! Not covered (review 32): the rule holds where a text reaches the shell with its line breaks as
//! written. A sink that runs each line as a command line of its own (`xargs -I{} sh -c …`), turns
//! `\n` into `\r\n` or `\r` (a browser's form submission, `unix2dos`), deletes line breaks
//! (`tr -d '\n'`) or joins lines with a word (`paste -sd,`) runs the rows' commands. Where text
//! reaches a shell that way, `threat.markdown_tables = false` reads every pipe as a pipe.
//!
//! Linear (each line is read a bounded number of times); `out` is reused.

/// Spaces and tabs: what a shell passes over before a command (not `\r`: bash reads it as a
/// word, and `\r| id` pipes that word into `id`).
fn blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Writes into `out` the text with the cell borders of its Markdown tables read as `)` (see the
/// module's doc), and says whether there was one; where there was none, `out` is not written
/// and the text is read as it is.
pub(super) fn blank_cell_borders(text: &[u8], out: &mut Vec<u8>) -> bool {
    if memchr::memchr(b'|', text).is_none() {
        return false;
    }
    let mut written = false;
    // lines in turn, each judged once: the one before, this one, and whether each is a row
    let mut lines = memchr::memchr_iter(b'\n', text)
        .chain(std::iter::once(text.len()))
        .scan(0, |start, end| {
            let line = (*start, end);
            *start = end + 1;
            Some(line)
        })
        .map(|(s, e)| (s, e, table_row(&text[s..e])));
    let (mut before, mut this) = (false, lines.next());
    while let Some((s, e, row)) = this {
        let next = lines.next();
        if row && (before || next.is_some_and(|(_, _, r)| r)) {
            for p in memchr::memchr_iter(b'|', &text[s..e]).map(|i| s + i) {
                // (a blank, or the line's edge)
                let edge_before = p == s || blank(text[p - 1]);
                let edge_after = p + 1 == e || blank(text[p + 1]);
                if edge_before && edge_after {
                    if !written {
                        out.clear();
                        out.extend_from_slice(text);
                        written = true;
                    }
                    out[p] = b')';
                }
            }
        }
        (before, this) = (row, next);
    }
    written
}

/// A byte that makes a line no table row (`table_row`).
const NO_ROW: u8 = 1;
/// A byte that may begin a sequence that makes a line no row: `&|`, `--%`, the word `case`.
const LOOK: u8 = 2;
static ROW_CLASS: [u8; 256] = {
    let mut c = [0u8; 256];
    let no_row = *b"'\"`\\$#()[]{}<^";
    let mut i = 0;
    while i < no_row.len() {
        c[no_row[i] as usize] = NO_ROW;
        i += 1;
    }
    // control bytes but the tab: a NUL ends the command where a C-string sink (`system(3)`,
    // perl's `system`, awk's) reads the text, before the next row (review 32)
    let mut b = 0;
    while b < 0x20 {
        if b != b'\t' as usize {
            c[b] = NO_ROW;
        }
        b += 1;
    }
    c[0x7f] = NO_ROW;
    let look = *b"&-cC";
    let mut i = 0;
    while i < look.len() {
        c[look[i] as usize] = LOOK;
        i += 1;
    }
    c
};

/// Whether `line` (without its `\n`) is a table row: its first and last bytes past spaces and
/// tabs are two pipes, and it holds nothing that could open or close a construct two rows'
/// meeting would fall inside, or end the command list before it (see the module's doc): one
/// lookup a byte (`ROW_CLASS`), and a look at the neighbours of `&`, `-` and `c`.
fn table_row(line: &[u8]) -> bool {
    let Some(first) = line.iter().position(|&b| !blank(b)) else {
        return false;
    };
    if line[first] != b'|' {
        return false;
    }
    let last = line.iter().rposition(|&b| !blank(b)).unwrap_or(first);
    if line[last] != b'|' || last == first {
        return false;
    }
    let alnum = |i: usize| line.get(i).is_some_and(u8::is_ascii_alphanumeric);
    for (i, &b) in line.iter().enumerate() {
        match ROW_CLASS[b as usize] {
            0 => {}
            NO_ROW => return false,
            _ => {
                let rest = &line[i..];
                let seen = match b {
                    b'&' => rest.starts_with(b"&|"),
                    b'-' => rest.starts_with(b"--%"),
                    // the word `case`, in any case
                    _ => {
                        (i == 0 || !alnum(i - 1))
                            && rest.len() >= 4
                            && rest[..4].eq_ignore_ascii_case(b"case")
                            && !alnum(i + 4)
                    }
                };
                if seen {
                    return false;
                }
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::Strategy;

    fn read(text: &str) -> String {
        let mut out = Vec::new();
        match blank_cell_borders(text.as_bytes(), &mut out) {
            true => String::from_utf8(out).unwrap(),
            false => text.to_string(),
        }
    }

    #[test]
    fn a_tables_cell_borders_are_read_as_closing_parentheses() {
        assert_eq!(
            read("| id | name |\n|----|------|\n| 1 | cat |"),
            ") id ) name )\n|----|------|\n) 1 ) cat )"
        );
        assert_eq!(
            read("text\n  | a |\t| b |  \n|--|--|\nmore"),
            "text\n  ) a )\t) b )  \n|--|--|\nmore"
        );
        // a separator row has no blank beside its pipes but at the edges: it stays, and makes
        // the row beside it one of a table
        assert_eq!(read("|---|---|\n| id | x |"), "|---|---|\n) id ) x )");
    }

    #[test]
    fn pipes_outside_a_table_of_two_rows_stay() {
        for t in [
            // a row alone: a fragment pasted into a command line runs it
            "| id | name |",
            "| id |",
            "text\n| cat | ls |\nmore",
            "| a |\n\n| id |",
            // no rows
            "ping x | id\n| a |",
            "a | id |\nb | ls |",
            "| id\n| ls",
            "id |\nls |",
            "|\n|",
            "|id|name|\n|1|cat|",
            "\r| id |\n\r| ls |",
            // a Windows line ending: `\r` is a word to a shell, which ends the pipe
            "| id |\r\n| ls |\r\n",
            "\u{a0}| id |\n\u{a0}| ls |",
            // rows that could change how the shell reads the next lines
            "| a ' |\n| ' | id |",
            "| a \" |\n| \" | id |",
            "| a ` |\n| ` | id |",
            "| id \\|\n| a |",
            "| id # |\n| a |",
            "| id <<x |\n| a |\nx",
            "| a $((1 |\n| 2 )) | id |",
            "| ((1 |\n| 2)) | id |",
            "| $x | id |\n| a |",
        ] {
            assert_eq!(read(t), t, "{t:?}");
        }
        // in a table, the other separators of a row stay, and so do pipes with a byte beside
        assert_eq!(
            read("| a; id | && whoami | a || id |\n| x|y | z |"),
            ") a; id ) && whoami ) a || id )\n) x|y ) z )"
        );
        // (`<` could begin a here-document: a row with a chat template's token is no row)
        let template = "| <|im_start|>system | x |\n| a | b |";
        assert_eq!(read(template), template);
        // brackets, and what review 31 found two rows' meeting can fall inside
        for t in [
            "| id (pk) | cat |\n| 1 | x |",
            "| [a] | cat |\n| 1 | x |",
            "| {b} | cat |\n| 1 | x |",
            "| id | ((1 |\n| 2 |\n));",
            "| nc x | [[ x =~ (a|\n|b) ]] |",
            "| sh | [[ x == @(a|\n|b) ]] |",
            "| whoami | case x in a|\n|b) ;; esac |",
            "| whoami | case x in a |\n| b |\n) ;; esac",
            "| id &|\n| a |",
            "| id ^|\n|---|---|",
            "| id --% x |\n| whoami --% y |",
        ] {
            assert_eq!(read(t), t, "{t:?}");
        }
    }

    /// `table_row` as the module's doc words it, written the plain way.
    fn table_row_reference(line: &[u8]) -> bool {
        let blank = |b: &u8| *b == b' ' || *b == b'\t';
        let lead = line.iter().take_while(|b| blank(b)).count();
        let end = line.iter().rposition(|b| !blank(b)).map_or(lead, |i| i + 1);
        let body = &line[lead..end.max(lead)];
        body.len() >= 2
            && body[0] == b'|'
            && body[body.len() - 1] == b'|'
            && !line.iter().any(|b| b"'\"`\\$#()[]{}<^".contains(b))
            && !line.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f)
            && !line.windows(2).any(|w| w == b"&|")
            && !line.windows(3).any(|w| w == b"--%")
            && !line
                .split(|b| !b.is_ascii_alphanumeric())
                .any(|w| w.eq_ignore_ascii_case(b"case"))
    }

    proptest::proptest! {
        /// `table_row`'s one pass with its byte classes says what the plain reading says.
        #[test]
        fn a_row_is_what_the_rule_says(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "|", " ", "\t", "\r", "a", "id", "case", "Case", "CASE", "cases", "xcase", "case1",
                "_case", "&", "&|", "& |", "-", "--", "--%", "% ", "c", "C", "'", "\"", "`", "\\",
                "$", "#", "(", ")", "[", "]", "{", "}", "<", ">", "^", ";", "é", "\u{a0}",
                "\0", "\u{1}", "\u{b}", "\u{c}", "\u{1b}", "\u{7f}",
            ]), 0..12),
            wrap in proptest::bool::weighted(0.8),
        ) {
            // (mostly between a row's pipes: elsewhere nearly every line is no row)
            let line = match wrap {
                true => format!("| {} |", parts.concat()),
                false => parts.concat(),
            };
            proptest::prop_assert_eq!(
                table_row(line.as_bytes()),
                table_row_reference(line.as_bytes()),
                "{:?}", line
            );
        }
    }

    /// A directory of stand-in commands `c0`…: each appends its name to `log` when run.
    struct StandIns {
        dir: std::path::PathBuf,
    }

    impl StandIns {
        const COMMANDS: usize = 12;

        fn new() -> StandIns {
            static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("warden-table-{}-{n}", std::process::id()));
            let bin = dir.join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            for c in 0..Self::COMMANDS {
                let path = bin.join(format!("c{c}"));
                let log = dir.join("log");
                std::fs::write(
                    &path,
                    format!("#!/bin/sh\necho c{c} >> '{}'\n", log.display()),
                )
                .unwrap();
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
            StandIns { dir }
        }

        /// The stand-ins `shell` ran for `script` (its PATH holds them alone, its input is empty,
        /// it has two seconds).
        fn ran(&self, shell: &str, script: &str) -> Vec<String> {
            let log = self.dir.join("log");
            let _ = std::fs::remove_file(&log);
            let work = self.dir.join("work");
            let _ = std::fs::remove_dir_all(&work);
            std::fs::create_dir_all(&work).unwrap();
            let _ = std::process::Command::new("/usr/bin/timeout")
                .args(["2", shell, "-c", script])
                .env_clear()
                .env("PATH", self.dir.join("bin"))
                .current_dir(&work)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .expect("the shell runs");
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect()
        }
    }

    impl Drop for StandIns {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// Each exclusion guards a command that runs: pasted after `c10 `, each text makes the shell
    /// run `c0` (the danger is real, checked by running it), and the rule reads the pipe before
    /// `c0` as a pipe (a row alone; a `\r` ending, which the control bytes cover; a comment; a
    /// quote across two rows; arithmetic, a `[[ =~ ]]` regex and a `case` pattern list spanning
    /// two rows).
    #[test]
    fn each_exclusion_guards_a_command_that_runs() {
        let stand_ins = StandIns::new();
        for (shell, text) in [
            ("/bin/sh", "| c0 |"),
            ("/bin/sh", "| c0 |\r\n| c1 |"),
            ("/bin/sh", "| c0 # |\n| c1 |"),
            ("/bin/sh", "| a ' |\n| ' | c0 |"),
            ("/bin/bash", "| c0 | ((1 |\n| 2 |\n));"),
            ("/bin/bash", "| c0 | [[ x =~ (a|\n|b) ]] |"),
            ("/bin/sh", "| c0 | case x in a |\n| b |\n) ;; esac;"),
        ] {
            let script = format!("c10 {text} c11");
            assert!(
                stand_ins.ran(shell, &script).contains(&"c0".to_string()),
                "{shell} does not run c0 in {script:?}: the case guards nothing"
            );
            let at = text.find("c0").unwrap();
            let pipe = text[..at].rfind('|').unwrap();
            assert_eq!(read(text).as_bytes()[pipe], b'|', "{text:?}");
        }
    }

    /// Where a sink may paste a text: alone, into a command line (after a command, after one
    /// with an argument, inside quotes, a substitution, an arithmetic expression or a test
    /// left open), after a line joined to it, into a here-document fed to a shell.
    const SINKS: [(&str, &str); 12] = [
        ("", ""),
        ("c10 ", " c11"),
        ("c10 -n ", " notes.txt"),
        ("c10 \\\n", "\nc11"),
        ("c10 'x", "' | c11"),
        ("c10 \"x", "\" | c11"),
        ("c10 $(c11 ", ")"),
        ("c10 $((1 ", ")) | c11"),
        ("[[ a &&\n", " ]] | c11"),
        ("if c10; then\n", "\nfi"),
        ("c10 <<EOF\n", "\nEOF\nc11"),
        ("case x in a) c10\n", " ;; esac"),
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1024))]
        /// Against the shells themselves: wherever a pipe is read as a cell border, the command
        /// after it is not run, wherever the text is pasted (`SINKS`), by `bash` or `sh`. Each
        /// command in a text is a distinct logging stand-in, so the log says which ones ran.
        /// Only pipes change, to `)`.
        #[test]
        fn no_command_after_a_cell_border_runs(
            sink in proptest::sample::select(SINKS.to_vec()),
            lines in proptest::collection::vec(proptest::prop_oneof![
                // a table row: cells between pipes, a command stand-in among them
                4 => (
                    proptest::sample::select(vec!["| ", "|", "  | ", "\t| "]),
                    proptest::collection::vec(proptest::prop_oneof![
                        // cells a table holds
                        8 => proptest::sample::select(vec![
                            "C", "C -la", "a", "x|y", "---", "", "!", "a=b", "C &", "Q & A", ";",
                            "; C", "&& C", ">out", "1", "ok",
                        ]),
                        // and what could make two rows' meeting something else
                        1 => proptest::sample::select(vec![
                            "(pk)", "[x]", "{y}", ")", "(", "'", "\"", "`", "#", "C #", "\\",
                            "<<EOF", "$(", "$((1", "))", "EOF", "((1", "2))", "case x in a",
                            "b) ;; esac", "[[ x =~ (a", "b) ]]", "[[ x == @(a", "C ^",
                        ]),
                    ], 1..4),
                    proptest::sample::select(vec![" |", " |", "|", " | ", " |\r"]),
                )
                    .prop_map(|(first, cells, last)| format!("{first}{}{last}", cells.join(" | "))),
                // anything else
                1 => (
                    proptest::sample::select(vec!["", "|", "| ", " |", "\t| ", "\r| ", "x| ", "||"]),
                    proptest::collection::vec(proptest::sample::select(vec![
                        " | C ", " | C", "|", " | ", "||", " ", "\t", "\r", "C", "-la", ";", "&&",
                        "&", "`", "$(", "$((", "((", "(", ")", "))", "]]", "{", "}", "'", "\"",
                        "\\", "#", "<", "<<EOF", ">", "!", "a=b", "---", ":", "EOF", " ' | ",
                        " ) | ",
                    ]), 0..7),
                    proptest::sample::select(vec!["", "|", " |", "| ", " |\r", "\\", "|x", " | C |"]),
                )
                    .prop_map(|(first, body, last)| format!("{first}{}{last}", body.concat())),
            ], 1..6),
        ) {
            // each command placeholder becomes its own stand-in
            let mut text = String::new();
            let mut n = 0;
            for ch in lines.join("\n").chars() {
                match ch {
                    'C' if n < 10 => {
                        text.push_str(&format!("c{n}"));
                        n += 1;
                    }
                    'C' => text.push('x'),
                    _ => text.push(ch),
                }
            }
            let t = text.as_bytes();
            let mut out = Vec::new();
            if !blank_cell_borders(t, &mut out) {
                return Ok(());
            }
            proptest::prop_assert_eq!(out.len(), t.len());
            let mut after_borders = Vec::new();
            for k in (0..t.len()).filter(|&k| out[k] != t[k]) {
                proptest::prop_assert!(t[k] == b'|' && out[k] == b')', "{:?}", text);
                let rest = &text[k + 1..];
                let word = rest.trim_start_matches([' ', '\t']);
                let word: String = word.chars().take_while(char::is_ascii_alphanumeric).collect();
                if word.starts_with('c') {
                    after_borders.push(word);
                }
            }
            let stand_ins = StandIns::new();
            let (before, after) = sink;
            let script = format!("{before}{text}{after}");
            for shell in ["/bin/bash", "/bin/sh"] {
                let ran = stand_ins.ran(shell, &script);
                for c in &after_borders {
                    proptest::prop_assert!(
                        !ran.contains(c),
                        "{} ran {} after a cell border in {:?}", shell, c, script
                    );
                }
            }
        }
    }
}
