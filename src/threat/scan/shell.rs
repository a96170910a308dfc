//! Shell quoting undone where a shell reads a command's name: the word after a separator
//! (`;`, `|`, `&`, a backtick, `$(`) expanded as `bash` expands it. A payload quotes or escapes
//! inside the name to pass a filter that looks for `;id` or `|whoami`: `;i''d`, `|w\hoami`,
//! `;who$'a'mi`, `;$'\x69\x64'`, `;{id,}`, `$(i""d)`, `;c$@at`. The shell runs each as the
//! plain command.
//!
//! Invariants: only a word in a command's place is rewritten, and only where its expansion used
//! a trick (two parts or more, quoted and unquoted, a backslash, `$'…'`, `$@`, `$*`, `$IFS`, or a
//! brace list); everything else is copied as it is. `expand_word` expands what it knows exactly
//! as `bash` does (a property test runs `bash` as the reference) and refuses the rest (`$HOME`,
//! an unclosed quote, `~`, a brace inside a word): a refused word is copied as it is. An
//! expansion is never longer than its word, so the reading is never longer than the text. Linear:
//! each byte is looked at a bounded number of times; nothing allocates.

use super::decode::{MAX_DECODED_BYTES, UNESCAPE_OVERLAP};

/// Longest word read in a command's place: a longer one is no command name and is copied as it
/// is.
pub(super) const MAX_WORD_BYTES: usize = 128;

/// Whether `b` ends a shell word: whitespace, a separator, a parenthesis, a redirection.
fn word_end(b: u8) -> bool {
    matches!(
        b,
        b' ' | b'\t'
            | b'\n'
            | b'\r'
            | 0x0b
            | 0x0c
            | b';'
            | b'|'
            | b'&'
            | b'('
            | b')'
            | b'<'
            | b'>'
            | b'`'
    )
}

/// The words in a command's place, in order: each word after a `;`, `|`, `&`, backtick or `$(`
/// (spaces and tabs between), as (start, end) byte offsets, where it is 1 to `MAX_WORD_BYTES`
/// bytes long and holds a byte quoting can begin with (`'`, `"`, `\`, `$`, or a `{` first).
/// Two memchr searches, each resumed where it stopped: linear.
struct CommandWords<'a> {
    text: &'a [u8],
    /// Where the next separator is looked for.
    from: usize,
    /// The next `;`, `|` or `&` at or after `from` (`usize::MAX`: not looked for yet).
    next3: usize,
    /// The next backtick or `(` at or after `from` (likewise).
    next2: usize,
}

impl<'a> CommandWords<'a> {
    fn new(text: &'a [u8]) -> Self {
        CommandWords {
            text,
            from: 0,
            next3: usize::MAX,
            next2: usize::MAX,
        }
    }
}

impl Iterator for CommandWords<'_> {
    type Item = (usize, usize);

    fn next(&mut self) -> Option<(usize, usize)> {
        let t = self.text;
        loop {
            if self.next3 == usize::MAX || self.next3 < self.from {
                self.next3 = memchr::memchr3(b';', b'|', b'&', &t[self.from.min(t.len())..])
                    .map_or(t.len(), |k| self.from + k);
            }
            if self.next2 == usize::MAX || self.next2 < self.from {
                self.next2 = memchr::memchr2(b'`', b'(', &t[self.from.min(t.len())..])
                    .map_or(t.len(), |k| self.from + k);
            }
            let s = self.next3.min(self.next2);
            if s >= t.len() {
                return None;
            }
            self.from = s + 1;
            // `(` begins a command only after `$`
            if t[s] == b'(' && (s == 0 || t[s - 1] != b'$') {
                continue;
            }
            let mut start = s + 1;
            while start < t.len() && matches!(t[start], b' ' | b'\t') {
                start += 1;
            }
            let mut end = start;
            let mut quoting = false;
            while end < t.len() && end - start <= MAX_WORD_BYTES && !word_end(t[end]) {
                quoting |= matches!(t[end], b'\'' | b'"' | b'\\' | b'$');
                end += 1;
            }
            quoting |= t.get(start) == Some(&b'{');
            if end > start && end - start <= MAX_WORD_BYTES && quoting {
                return Some((start, end));
            }
        }
    }
}

/// Expands one shell word (it holds no whitespace and no separator) into `out` as `bash -c`
/// with globbing off and no positional parameters expands it, its fields joined by a space:
/// quote removal (`'…'`, `"…"` with `\` before `$`, a backtick, `"` or `\`), a backslash before
/// any byte, ANSI-C quoting (`$'…'` with `\xH`, `\xHH`, octal `\N` to `\NNN`, `\\`, `\'`, `\"`,
/// `\n`, `\t`, `\r`), `$@` and `$*` (nothing), `$IFS` and `${IFS}` (a field break), and a word
/// that is a whole brace list (`{a,b}`: its non-empty items as fields). Returns the expansion's
/// length and whether it used a trick: more than one part (`i''d`, `c"a"t`), a backslash,
/// `$'…'`, `$@`, `$*`, `$IFS` or a brace list; a word that is one quoted part (`"id"`) used
/// none. None where the word holds anything else (another `$`, an unclosed quote, a brace
/// elsewhere, a `~`, `#` first, a NUL from `$'\0'`): what `bash` would do with it is not read
/// here. The expansion is never longer than the word.
pub(super) fn expand_word(w: &[u8], out: &mut [u8; MAX_WORD_BYTES]) -> Option<(usize, bool)> {
    if w.is_empty() || w.len() > MAX_WORD_BYTES || w[0] == b'#' || w.contains(&b'~') {
        return None;
    }
    // (the expansion is never longer than the word, so `n` stays below `MAX_WORD_BYTES`)
    let mut n = 0;
    macro_rules! push {
        ($b:expr) => {{
            out[n] = $b;
            n += 1;
        }};
    }
    // a whole brace list
    if w[0] == b'{' {
        let inner = w
            .get(1..w.len() - 1)
            .filter(|_| w.len() >= 3 && w[w.len() - 1] == b'}')?;
        if !inner.contains(&b',')
            || inner
                .iter()
                .any(|b| matches!(b, b'{' | b'}' | b'\'' | b'"' | b'\\' | b'$' | b'~'))
        {
            return None;
        }
        for (k, item) in inner
            .split(|&b| b == b',')
            .filter(|i| !i.is_empty())
            .enumerate()
        {
            if k > 0 {
                push!(b' ');
            }
            for &b in item {
                push!(b);
            }
        }
        return Some((n, true));
    }
    let (mut parts, mut trick) = (0usize, false);
    // whether the last part was unquoted text (so the next unquoted byte continues it)
    let mut plain = false;
    let mut i = 0;
    while i < w.len() {
        match w[i] {
            b'\'' => {
                let close = i + 1 + memchr::memchr(b'\'', &w[i + 1..])?;
                for &b in &w[i + 1..close] {
                    push!(b);
                }
                (parts, plain, i) = (parts + 1, false, close + 1);
            }
            b'"' => {
                let mut j = i + 1;
                loop {
                    match *w.get(j)? {
                        b'"' => break,
                        b'$' | b'`' => return None,
                        b'\\' => {
                            let c = *w.get(j + 1)?;
                            if matches!(c, b'$' | b'`' | b'"' | b'\\') {
                                push!(c);
                            } else if c == b'\n' {
                                return None;
                            } else {
                                push!(b'\\');
                                push!(c);
                            }
                            j += 2;
                        }
                        b => {
                            push!(b);
                            j += 1;
                        }
                    }
                }
                (parts, plain, i) = (parts + 1, false, j + 1);
            }
            b'\\' => {
                let c = *w.get(i + 1)?;
                if c == b'\n' {
                    return None;
                }
                push!(c);
                (trick, i) = (true, i + 2);
            }
            b'$' => match w.get(i + 1) {
                Some(b'\'') => {
                    let mut j = i + 2;
                    loop {
                        match *w.get(j)? {
                            b'\'' => break,
                            b'\\' => {
                                let c = *w.get(j + 1)?;
                                let (b, len) = match c {
                                    b'x' => {
                                        let digits = w[j + 2..]
                                            .iter()
                                            .take(2)
                                            .take_while(|b| b.is_ascii_hexdigit())
                                            .count();
                                        if digits == 0 {
                                            return None;
                                        }
                                        let s =
                                            std::str::from_utf8(&w[j + 2..j + 2 + digits]).ok()?;
                                        (u8::from_str_radix(s, 16).ok()?, 2 + digits)
                                    }
                                    b'0'..=b'7' => {
                                        let digits = w[j + 1..]
                                            .iter()
                                            .take(3)
                                            .take_while(|b| matches!(b, b'0'..=b'7'))
                                            .count();
                                        let s =
                                            std::str::from_utf8(&w[j + 1..j + 1 + digits]).ok()?;
                                        (
                                            u8::try_from(u32::from_str_radix(s, 8).ok()?).ok()?,
                                            1 + digits,
                                        )
                                    }
                                    b'\\' | b'\'' | b'"' => (c, 2),
                                    b'n' => (b'\n', 2),
                                    b't' => (b'\t', 2),
                                    b'r' => (b'\r', 2),
                                    _ => return None,
                                };
                                if b == 0 {
                                    return None;
                                }
                                push!(b);
                                j += len;
                            }
                            b => {
                                push!(b);
                                j += 1;
                            }
                        }
                    }
                    (parts, plain, trick, i) = (parts + 1, false, true, j + 1);
                }
                Some(b'@' | b'*') => (trick, i) = (true, i + 2),
                Some(b'{') if w[i + 2..].starts_with(b"IFS}") => {
                    push!(b' ');
                    (trick, plain, i) = (true, false, i + 6);
                }
                Some(b'I')
                    if w[i + 1..].starts_with(b"IFS")
                        && !w
                            .get(i + 4)
                            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_') =>
                {
                    push!(b' ');
                    (trick, plain, i) = (true, false, i + 4);
                }
                _ => return None,
            },
            b'{' | b'}' => return None,
            b => {
                if !plain {
                    parts += 1;
                    plain = true;
                }
                push!(b);
                i += 1;
            }
        }
    }
    Some((n, trick || parts > 1))
}

/// Whether some word in a command's place in `text` expands with a trick (`expand_word`): the
/// gate of `dequote`.
pub(super) fn shell_tricks(text: &[u8]) -> bool {
    let mut scratch = [0u8; MAX_WORD_BYTES];
    CommandWords::new(text)
        .any(|(s, e)| matches!(expand_word(&text[s..e], &mut scratch), Some((_, true))))
}

/// What `dequote` read and found.
pub(super) struct Dequoted {
    /// Words in a command's place expanded with a trick.
    pub(super) tricks: usize,
    /// Bytes of the text read: all of it, or up to where the output filled.
    pub(super) read: usize,
    /// Where the next window starts: the input byte whose output begins the last
    /// `UNESCAPE_OVERLAP` bytes of this one (`read` where the output did not fill).
    pub(super) resume: usize,
}

/// Writes `text` to `out` with each word in a command's place that expands with a trick
/// replaced by its expansion (`expand_word`), until `MAX_DECODED_BYTES` of output. Everything
/// else is copied as it is. Linear; nothing is written past `MAX_DECODED_BYTES`, so a buffer of
/// that capacity never grows.
pub(super) fn dequote(text: &[u8], out: &mut Vec<u8>) -> Dequoted {
    out.clear();
    let mut d = Dequoted {
        tricks: 0,
        read: 0,
        resume: usize::MAX,
    };
    let mark = MAX_DECODED_BYTES - UNESCAPE_OVERLAP;
    let mut words = CommandWords::new(text);
    let mut scratch = [0u8; MAX_WORD_BYTES];
    let mut i = 0;
    while i < text.len() {
        let (ws, we) = words.next().unwrap_or((text.len(), text.len()));
        // the text before the word, as it is
        let take = (ws - i).min(MAX_DECODED_BYTES - out.len());
        if d.resume == usize::MAX && out.len() + take >= mark {
            d.resume = i + mark.saturating_sub(out.len());
        }
        out.extend_from_slice(&text[i..i + take]);
        i += take;
        if i < ws || i >= text.len() || we - ws > MAX_DECODED_BYTES - out.len() {
            break;
        }
        let word = &text[ws..we];
        match expand_word(word, &mut scratch) {
            Some((n, true)) => {
                out.extend_from_slice(&scratch[..n]);
                d.tricks += 1;
            }
            _ => out.extend_from_slice(word),
        }
        if d.resume == usize::MAX && out.len() > mark {
            d.resume = ws;
        }
        i = we;
    }
    d.read = i;
    d.resume = d.resume.min(i);
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(w: &str) -> Option<(String, bool)> {
        let mut out = [0u8; MAX_WORD_BYTES];
        expand_word(w.as_bytes(), &mut out)
            .map(|(n, t)| (String::from_utf8_lossy(&out[..n]).into_owned(), t))
    }

    #[test]
    fn tricks_in_a_command_name_are_undone() {
        for (w, want) in [
            ("i''d", "id"),
            ("w'h'oami", "whoami"),
            (r"w\hoami", "whoami"),
            ("who$'a'mi", "whoami"),
            (r"$'\x69\x64'", "id"),
            (r"$'\151\144'", "id"),
            ("{id,}", "id"),
            ("{cat,/etc/passwd}", "cat /etc/passwd"),
            ("i\"\"d", "id"),
            ("c$@at", "cat"),
            ("who$*ami", "whoami"),
            ("cat${IFS}/etc/passwd", "cat /etc/passwd"),
            ("cat$IFS/etc/passwd", "cat /etc/passwd"),
            ("\"w\"h\"o\"ami", "whoami"),
        ] {
            assert_eq!(expand(w), Some((want.to_string(), true)), "{w}");
        }
    }

    #[test]
    fn plain_and_wholly_quoted_words_use_no_trick_and_others_are_refused() {
        for (w, want) in [("\"id\"", "id"), ("'x'", "x"), ("ls", "ls"), ("a=b", "a=b")] {
            assert_eq!(expand(w), Some((want.to_string(), false)), "{w}");
        }
        for w in [
            "'a", "\"a", "a\\", "$HOME", "~root", "#x", "a{b,c}", "{a}", "$'\\0'", "$'\\q'",
            "\"$x\"", "$(id", "{a,$b}",
        ] {
            assert_eq!(expand(w), None, "{w}");
        }
    }

    #[test]
    fn only_words_in_a_command_place_are_rewritten() {
        let mut out = Vec::new();
        for (text, want, tricks) in [
            ("127.0.0.1;i''d", "127.0.0.1;id", 1),
            ("x | w\\hoami", "x | whoami", 1),
            ("$(i\"\"d)", "$(id)", 1),
            ("`w\\ho\\ami`", "`whoami`", 1),
            ("x;{id,}", "x;id", 1),
            ("x && c'a't /e't'c/passwd", "x && cat /e't'c/passwd", 1),
            // not in a command's place, or no trick
            ("it''s fine; \"id\" stays", "it''s fine; \"id\" stays", 0),
            ("\"name\";\"id\";\"cat\"", "\"name\";\"id\";\"cat\"", 0),
            ("f(i''d)", "f(i''d)", 0),
        ] {
            let d = dequote(text.as_bytes(), &mut out);
            assert_eq!(
                (String::from_utf8_lossy(&out).as_ref(), d.tricks),
                (want, tricks),
                "{text}"
            );
            assert_eq!(shell_tricks(text.as_bytes()), tricks > 0, "{text}");
            assert_eq!(d.read, text.len());
        }
    }

    /// A long text is read a window at a time: no window is longer than `MAX_DECODED_BYTES`,
    /// and the next begins no later than where this one's last `UNESCAPE_OVERLAP` bytes began.
    #[test]
    fn long_texts_are_read_in_bounded_windows() {
        let text = "a;i''d ".repeat(2000);
        let mut out = Vec::with_capacity(MAX_DECODED_BYTES);
        let d = dequote(text.as_bytes(), &mut out);
        assert!(out.len() <= MAX_DECODED_BYTES && out.capacity() == MAX_DECODED_BYTES);
        assert!(d.read < text.len() && d.resume > 0 && d.resume <= d.read);
        assert!(out.starts_with(b"a;id a;id "));
    }

    /// `word` expanded by `bash` (here on every machine this project builds on: its scripts are
    /// bash's), its fields joined by a space; None where bash refuses it (a syntax error).
    fn bash_expand(word: &str) -> Option<String> {
        let script = format!("set -f; f() {{ local IFS=' '; printf '%s' \"$*\"; }}; f {word}");
        let o = std::process::Command::new("bash")
            .args(["--norc", "--noprofile", "-c", &script])
            .env_clear()
            .output()
            .expect("bash runs");
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
    }

    fn fields(s: &str) -> String {
        s.split_ascii_whitespace().collect::<Vec<_>>().join(" ")
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(384))]
        /// Wherever `expand_word` expands a word, `bash` expands it to the same fields; where
        /// `bash` refuses one (an unclosed quote), so does `expand_word`.
        #[test]
        fn words_expand_as_bash_expands_them(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "i", "d", "who", "ami", "c", "at", "/etc/", "-", "=", ".", "1", "''", "\"\"",
                "'x y'", "\"a b\"", "'", "\"", "\\a", "\\'", "\\\"", "\\\\", "$'\\x69'",
                "$'\\x6'", "$'\\151'", "$'\\7'", "$'\\n'", "$'\\''", "$'a\\\\b'", "$@", "$*",
                "${IFS}", "$IFS", "$IFSx", "$HOME", "\"\\$\"", "\"a\\b\"", "\"\\\\\"", "{", "}",
                ",", "~", "#", "*", "?", "[a]", "!", "é",
            ]), 1..8),
            brace in proptest::bool::ANY,
        ) {
            let w = match brace {
                true => format!("{{{}}}", parts.join(",")),
                false => parts.concat(),
            };
            let ours = expand(&w);
            let theirs = bash_expand(&w);
            match (ours, theirs) {
                (Some((o, _)), Some(t)) => proptest::prop_assert_eq!(fields(&o), fields(&t), "{}", w),
                (Some((o, _)), None) => proptest::prop_assert!(false, "{} -> {:?}, bash refuses", w, o),
                (None, _) => {}
            }
        }
    }
}
