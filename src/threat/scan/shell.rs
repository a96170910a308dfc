//! Shell quoting undone where a shell reads a command's name: the word after a separator
//! (`;`, `|`, `&`, a backtick, `$(`) expanded as `bash` expands it. A payload quotes or escapes
//! inside the name to pass a filter that looks for `;id` or `|whoami`: `;i''d`, `|w\hoami`,
//! `;who$'a'mi`, `;$'\x69\x64'`, `;{id,}`, `$(i""d)`, `;c$@at`. The shell runs each as the
//! plain command.
//!
//! Invariants: only a word in a command's place is rewritten, and only where its expansion used
//! a trick inside a name and reads as a command name (`expand_word`, `tricked`); everything else
//! is copied as it is. `expand_word` expands what it knows exactly
//! as `bash` does (a property test runs `bash` as the reference) and refuses the rest (`$HOME`,
//! an unclosed quote, `~`, a brace inside a word): a refused word is copied as it is. An
//! expansion is never longer than its word, so the reading is never longer than the text. Linear:
//! each byte is looked at a bounded number of times; nothing allocates.

use super::decode::{copy_noting, MAX_DECODED_BYTES, UNESCAPE_OVERLAP};

/// Most of the text one window of `dequote` reads: four windows' output (every trick takes a
/// byte out, prefixes go: a window's input is longer than its output).
const HORIZON_BYTES: usize = 4 * MAX_DECODED_BYTES;

/// Longest word read in a command's place: a longer one is no command name and is copied as it
/// is.
pub(super) const MAX_WORD_BYTES: usize = 128;

/// Byte classes for reading a word in one lookup a byte: `END` ends a shell word (`word_end`),
/// `QUOTE` may begin quoting or an expansion (`'`, `"`, `\`, `$`), `EQ` is `=` (an assignment).
const END: u8 = 1;
const QUOTE: u8 = 2;
const EQ: u8 = 4;
static CLASS: [u8; 256] = {
    let mut c = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        c[b] = if word_end(b as u8) {
            END
        } else if matches!(b as u8, b'\'' | b'"' | b'\\' | b'$') {
            QUOTE
        } else if b as u8 == b'=' {
            EQ
        } else {
            0
        };
        b += 1;
    }
    c
};

/// Whether `b` ends a shell word: whitespace, a separator, a parenthesis, a redirection.
const fn word_end(b: u8) -> bool {
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

/// Words that put the next word in a command's place too: a group or a negation opened,
/// command prefixes (`command i''d`, `nohup i''d`).
const PREFIXES: [&[u8]; 11] = [
    b"{", b"!", b"command", b"exec", b"env", b"nohup", b"time", b"nice", b"sudo", b"builtin",
    b"eval",
];

/// Most words a command's place is looked through for (prefixes, assignments, redirections).
const MAX_PREFIXES: usize = 4;

/// Whether `w` is a variable assignment (`FOO=1`), which a command may follow.
fn assignment(w: &[u8]) -> bool {
    let name = w
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
        .count();
    name > 0 && !w[0].is_ascii_digit() && w.get(name) == Some(&b'=')
}

/// The end of the redirection at `at` (`>/tmp/x`, `2>&1`, `<in`), or None where none is there.
fn redirection(t: &[u8], at: usize) -> Option<usize> {
    let mut i = at;
    while i < t.len() && t[i].is_ascii_digit() && i - at < 3 {
        i += 1;
    }
    if !matches!(t.get(i), Some(b'<' | b'>')) {
        return None;
    }
    while i < t.len() && matches!(t[i], b'<' | b'>' | b'&') && i - at < 6 {
        i += 1;
    }
    while i < t.len() && matches!(t[i], b' ' | b'\t') && i - at < 8 {
        i += 1;
    }
    while i < t.len() && !word_end(t[i]) && i - at < MAX_WORD_BYTES {
        i += 1;
    }
    Some(i)
}

/// Past the blanks at `at` (spaces, tabs, line breaks: a line break after `;` is no command).
fn past_blanks(t: &[u8], mut at: usize) -> usize {
    while at < t.len() && matches!(t[at], b' ' | b'\t' | b'\n' | b'\r') {
        at += 1;
    }
    at
}

/// A word in a command's place: `after` is the byte after its separator (`;`, `|`, `&`, a
/// backtick or `(`, at `after - 1`), `start..end` the word (what lies between is blanks,
/// prefixes, assignments and redirections).
#[derive(Clone, Copy)]
struct Place {
    after: usize,
    start: usize,
    end: usize,
}

/// The words in a command's place, in order: the word after a `;`, `|`, `&`, backtick, `$(`,
/// or `(` after `;` or `&`, with blanks, up to `MAX_PREFIXES` prefixes (`PREFIXES`,
/// assignments, redirections) between. Each is given as a `Place` where the word is 1 to
/// `MAX_WORD_BYTES` bytes long and holds a byte quoting can begin with (`'`, `"`, `\`, `$`, or a
/// `{` first). Two memchr searches for separators and two for quoting bytes, each resumed where
/// it stopped (`resume`), and each word read once: linear. No separator lies inside a word or
/// the blanks and prefixes before it but a redirection's `&` (`2>&1`), so the next search starts
/// at the word's end.
struct CommandWords {
    /// Where the next separator is looked for.
    from: usize,
    /// The next `;`, `|` or `&` at or after `from` (`usize::MAX`: not looked for yet).
    next3: usize,
    /// The next backtick or `(` at or after `from` (likewise).
    next2: usize,
    /// The next `'`, `"` or `\`, and the next `$` or `{`, at or after the byte after the last
    /// separator (likewise): a word worth giving holds one of them.
    quote3: usize,
    quote2: usize,
}

impl CommandWords {
    fn new() -> Self {
        CommandWords {
            from: 0,
            next3: usize::MAX,
            next2: usize::MAX,
            quote3: usize::MAX,
            quote2: usize::MAX,
        }
    }

    /// The next place, where `SKIP`: separators with no word worth giving before the next are
    /// passed over unread (without, every separator's word is read: the reference).
    fn next_in<const SKIP: bool>(&mut self, t: &[u8]) -> Option<Place> {
        loop {
            if self.from >= t.len() {
                return None;
            }
            let (seps3, seps2) = (memchr3_of(b";|&"), memchr2_of(b"`("));
            resume(&mut self.next3, t, self.from, seps3);
            resume(&mut self.next2, t, self.from, seps2);
            let s = self.next3.min(self.next2);
            if s >= t.len() {
                return None;
            }
            self.from = s + 1;
            // The word worth giving lies before the next separator but `&` (blanks, prefixes,
            // assignments and words end at each; a redirection, `2>&1`, holds a `&`), and holds
            // a byte of `QUOTE` or begins with `{`: where none lies before that separator, this
            // one is passed over unread (a table's `|`, prose's `(` and `&`).
            if SKIP {
                resume(&mut self.next3, t, s + 1, seps3);
                resume(&mut self.next2, t, s + 1, seps2);
                resume(&mut self.quote3, t, s + 1, memchr3_of(b"'\"\\"));
                resume(&mut self.quote2, t, s + 1, memchr2_of(b"${"));
                let following = self.next3.min(self.next2);
                if self.quote3.min(self.quote2) > following && t.get(following) != Some(&b'&') {
                    continue;
                }
            }
            // `(` begins a command after `$`, or as a subshell after `;` or `&` (not after
            // another `(`: `.map(({id,name}) => id)` is JavaScript; not at the start, after `|`
            // or a backtick, where a regex's groups open: `(x|i\d)`, `a|(m\d|i\d)`)
            if t[s] == b'(' {
                let before = t[..s].iter().rposition(|b| !matches!(b, b' ' | b'\t'));
                let opens = before.is_some_and(|k| matches!(t[k], b'$' | b';' | b'&'));
                if !opens {
                    continue;
                }
            }
            let mut start = past_blanks(t, s + 1);
            let (mut end, mut seen);
            let mut prefixes = 0;
            loop {
                if let Some(r) = redirection(t, start).filter(|_| prefixes < MAX_PREFIXES) {
                    (start, prefixes) = (past_blanks(t, r), prefixes + 1);
                    continue;
                }
                (end, seen) = (start, 0);
                while end < t.len() && end - start <= MAX_WORD_BYTES {
                    let c = CLASS[t[end] as usize];
                    if c & END != 0 {
                        break;
                    }
                    (seen, end) = (seen | c, end + 1);
                }
                let w = &t[start..end];
                let prefix =
                    (seen & EQ != 0 && assignment(w)) || (w.len() <= 7 && PREFIXES.contains(&w));
                if prefixes < MAX_PREFIXES && prefix {
                    (start, prefixes) = (past_blanks(t, end), prefixes + 1);
                    continue;
                }
                break;
            }
            let w = &t[start..end];
            let quoting = seen & QUOTE != 0 || w.first() == Some(&b'{');
            if !w.is_empty() && w.len() <= MAX_WORD_BYTES && quoting {
                self.from = end;
                return Some(Place {
                    after: s + 1,
                    start,
                    end,
                });
            }
        }
    }
}

/// Resumes a search of `CommandWords`: `*at`, the next hit of `find` at or after `from`, is
/// searched for again only where it lies before `from` (or was never searched for,
/// `usize::MAX`); the text's length where there is none.
fn resume(at: &mut usize, t: &[u8], from: usize, find: impl Fn(&[u8]) -> Option<usize>) {
    if *at == usize::MAX || *at < from {
        *at = find(&t[from..]).map_or(t.len(), |k| from + k);
    }
}

/// A search for any of three bytes.
fn memchr3_of(&[a, b, c]: &[u8; 3]) -> impl Fn(&[u8]) -> Option<usize> + Copy {
    move |h| memchr::memchr3(a, b, c, h)
}

/// A search for either of two bytes.
fn memchr2_of(&[a, b]: &[u8; 2]) -> impl Fn(&[u8]) -> Option<usize> + Copy {
    move |h| memchr::memchr2(a, b, h)
}

/// Expands one shell word (it holds no whitespace and no separator) into `out` as `bash -c`
/// with globbing off, no positional parameters and no lower-case variables expands it, its
/// fields joined by a space:
/// - quote removal (`'…'`, `"…"` with `\` before `$`, a backtick, `"` or `\`), a backslash
///   before any byte;
/// - ANSI-C quoting, `$'…'`, with `\xH`, `\xHH`, octal `\N` to `\NNN`, `\uH…` and `\UH…` (ASCII
///   only), `\\`, `\'`, `\"`, `\n`, `\t`, `\r`;
/// - `$@`, `$*`, `${@}`, `${*}`, `$1`…`$9`, and a lower-case variable, `$u` or `${u}` (nothing);
///   `$IFS` and `${IFS}` (a field break);
/// - a word that is a whole brace list (`{a,b}`, `{i''d,}`: each non-empty item, expanded as
///   above, a field).
///
/// Returns the expansion's length and whether it used a trick: quoting that splits a name (a part
/// boundary with a letter or digit on both sides: `i''d`, `c"a"t`), a backslash between two of
/// them (`w\hoami`), `$'…'`, an expansion to nothing inside a name (`i$@d`, `${u}id`), `$IFS`, or
/// a brace list with an empty item, an argument or a trick in it (`{id,}`, `{cat,/etc/passwd}`).
/// None of these is a trick: a word that is one quoted part (`"id"`), one with a method after
/// its quotes (`"id".split`), one that opens with a backslash (`\rm`: LaTeX, regexes and Windows
/// paths write that) or a variable (`$reader`), `{id,name}` (JavaScript) or `{'a','b'}`
/// (Python). None where the word holds
/// anything else (another `$`, an unclosed quote, a brace elsewhere, a `~`, `#` first, a NUL or
/// a character past ASCII from `$'…'`): what `bash` would do with it is not read here. The
/// expansion is never longer than the word.
pub(super) fn expand_word(w: &[u8], out: &mut [u8; MAX_WORD_BYTES]) -> Option<(usize, bool)> {
    if w.is_empty() || w.len() > MAX_WORD_BYTES || w[0] == b'#' || w.contains(&b'~') {
        return None;
    }
    // a whole brace list: each item expanded alone (an item is shorter than the word)
    if w[0] == b'{' {
        let inner = w
            .get(1..w.len() - 1)
            .filter(|_| w.len() >= 3 && w[w.len() - 1] == b'}')?;
        if !inner.contains(&b',') || inner.iter().any(|b| matches!(b, b'{' | b'}')) {
            return None;
        }
        let (mut n, mut item_out) = (0, [0u8; MAX_WORD_BYTES]);
        // a list is a command's hiding place with an empty item (`{id,}`), an argument
        // (`{cat,/etc/passwd}`, `{ls,-la}`) or a trick inside; `{id,name}` is JavaScript's
        // shorthand and `{'cat','dog'}` a Python set
        let mut hiding = inner.split(|&b| b == b',').any(|i| i.is_empty());
        for item in inner.split(|&b| b == b',').filter(|i| !i.is_empty()) {
            let (len, tricked) = expand_plain(item, &mut item_out)?;
            hiding |= tricked || matches!(item[0], b'-' | b'/');
            if len == 0 {
                continue;
            }
            if n > 0 {
                out[n] = b' ';
                n += 1;
            }
            out[n..n + len].copy_from_slice(&item_out[..len]);
            n += len;
        }
        return Some((n, hiding));
    }
    expand_plain(w, out)
}

/// `expand_word` of a word that is no brace list (or of one item of a list): `expand_word` has
/// refused what no part may hold.
fn expand_plain(w: &[u8], out: &mut [u8; MAX_WORD_BYTES]) -> Option<(usize, bool)> {
    debug_assert!(!w.is_empty() && w.len() <= MAX_WORD_BYTES && !w.contains(&b'~'));
    // (the expansion is never longer than the word, so `n` stays below `MAX_WORD_BYTES`)
    let mut n = 0;
    macro_rules! push {
        ($b:expr) => {{
            out[n] = $b;
            n += 1;
        }};
    }
    let mut trick = false;
    // where in the output each part (quoted or not) began: a trick by quoting is a part
    // boundary with a letter or digit on both sides (`i''d`, `c"a"t`), not a quoted word with a
    // method after it (`"id".split`) or empty quotes at its end (`IP''`)
    let mut starts = 0u128;
    // whether the last part was unquoted text (so the next unquoted byte continues it)
    let mut plain = false;
    // a lower-case name (`u`, `foo_1`): `bash -c` sets none
    let lower_name = |at: usize| -> usize {
        match w.get(at) {
            Some(b'a'..=b'z') => w[at..]
                .iter()
                .take_while(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
                .count(),
            _ => 0,
        }
    };
    // whether an expansion to nothing ending at `to` stands inside a name (`i$@d`, `${u}id`): a
    // letter or digit before or after it; a word that opens with a variable (`$reader`, `$1`) or
    // has one after a dot (`"id".$suffix`, PHP) hides no name
    macro_rules! inside {
        ($to:expr) => {
            (n > 0 && out[n - 1].is_ascii_alphanumeric())
                || w.get($to).is_some_and(u8::is_ascii_alphanumeric)
        };
    }
    let mut i = 0;
    while i < w.len() {
        match w[i] {
            b'\'' => {
                let close = i + 1 + memchr::memchr(b'\'', &w[i + 1..])?;
                starts |= 1 << n;
                for &b in &w[i + 1..close] {
                    push!(b);
                }
                (plain, i) = (false, close + 1);
            }
            b'"' => {
                starts |= 1 << n;
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
                (plain, i) = (false, j + 1);
            }
            b'\\' => {
                let c = *w.get(i + 1)?;
                if c == b'\n' {
                    return None;
                }
                if !plain {
                    starts |= 1 << n;
                    plain = true;
                }
                // (inside a name: `w\hoami`; not `\rm`, `a\.b`)
                trick |= n > 0 && out[n - 1].is_ascii_alphanumeric() && c.is_ascii_alphanumeric();
                push!(c);
                i += 2;
            }
            b'$' => match w.get(i + 1) {
                Some(b'\'') => {
                    starts |= 1 << n;
                    let mut j = i + 2;
                    loop {
                        match *w.get(j)? {
                            b'\'' => break,
                            b'\\' => {
                                let (b, len) = ansi_c_escape(&w[j..])?;
                                push!(b);
                                j += len;
                            }
                            b => {
                                push!(b);
                                j += 1;
                            }
                        }
                    }
                    (plain, trick, i) = (false, true, j + 1);
                }
                Some(b'@' | b'*' | b'!' | b'1'..=b'9') => {
                    (trick, i) = (trick || inside!(i + 2), i + 2)
                }
                Some(b'{') => {
                    let close = i + 2 + memchr::memchr(b'}', &w[i + 2..])?;
                    let name = &w[i + 2..close];
                    if name == b"IFS" {
                        push!(b' ');
                        plain = false;
                    } else if !(matches!(name, b"@" | b"*")
                        || (!name.is_empty() && name.iter().all(u8::is_ascii_digit))
                        || (!name.is_empty() && lower_name(i + 2) == name.len()))
                    {
                        return None;
                    }
                    (trick, i) = (trick || inside!(close + 1) || name == b"IFS", close + 1);
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
                Some(b'a'..=b'z') => {
                    let to = i + 1 + lower_name(i + 1);
                    (trick, i) = (trick || inside!(to), to);
                }
                _ => return None,
            },
            b'{' | b'}' => return None,
            b => {
                if !plain {
                    starts |= 1 << n;
                    plain = true;
                }
                push!(b);
                i += 1;
            }
        }
    }
    let joined = (1..n).any(|b| {
        starts & (1 << b) != 0
            && out[b - 1].is_ascii_alphanumeric()
            && out[b].is_ascii_alphanumeric()
    });
    Some((n, trick || joined))
}

/// The ANSI-C escape at the start of `e` (which starts with `\`, inside `$'…'`): the byte it
/// stands for and its length, or None where it is one this does not read (or a NUL, or past
/// ASCII from `\u` or `\U`).
fn ansi_c_escape(e: &[u8]) -> Option<(u8, usize)> {
    let hex = |from: usize, most: usize| -> Option<(u32, usize)> {
        let digits = e
            .get(from..)?
            .iter()
            .take(most)
            .take_while(|b| b.is_ascii_hexdigit())
            .count();
        let s = std::str::from_utf8(&e[from..from + digits]).ok()?;
        Some((u32::from_str_radix(s, 16).ok()?, digits))
    };
    let (v, len) = match *e.get(1)? {
        b'x' => hex(2, 2).map(|(v, d)| (v, 2 + d))?,
        b'u' => hex(2, 4).map(|(v, d)| (v, 2 + d))?,
        b'U' => hex(2, 8).map(|(v, d)| (v, 2 + d))?,
        b'0'..=b'7' => {
            let digits = e[1..]
                .iter()
                .take(3)
                .take_while(|b| matches!(b, b'0'..=b'7'))
                .count();
            let s = std::str::from_utf8(&e[1..1 + digits]).ok()?;
            (u32::from_str_radix(s, 8).ok()?, 1 + digits)
        }
        c @ (b'\\' | b'\'' | b'"') => (u32::from(c), 2),
        b'n' => (u32::from(b'\n'), 2),
        b't' => (u32::from(b'\t'), 2),
        b'r' => (u32::from(b'\r'), 2),
        _ => return None,
    };
    // (`\x`, `\u` with no digit are no escape to bash: they stay; not read here)
    if len == 2 && matches!(e[1], b'x' | b'u' | b'U') {
        return None;
    }
    let ascii = matches!(e[1], b'u' | b'U');
    match v {
        0 => None,
        v if ascii && v >= 0x80 => None,
        v => u8::try_from(v).ok().map(|b| (b, len)),
    }
}

/// The expansion of the word at `p` where it used a trick and reads as a command name: its first
/// field is made of small letters, digits, `_`, `.`, `/` and `-` (`df['col']` is pandas; bash's
/// `Id` is no `id`, and SQL, YAML and PowerShell write "I'd" `I''d`). Not where the word follows a
/// `|` inside a group no shell opened (`(x|i\d)`, `^(t\d|i\d)\.` are regexes: `group_before`).
/// Its length, in `scratch`.
fn tricked(text: &[u8], p: Place, scratch: &mut [u8; MAX_WORD_BYTES]) -> Option<usize> {
    let (n, trick) = expand_word(&text[p.start..p.end], scratch)?;
    let from = scratch[..n].iter().position(|&b| b != b' ').unwrap_or(n);
    let name = scratch[from..n].split(|&b| b == b' ').next().unwrap_or(&[]);
    let named = !name.is_empty()
        && name.iter().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'/' | b'-')
        });
    let regex = text[p.after - 1] == b'|' && group_before(text, p.after - 1);
    (trick && named && !regex).then_some(n)
}

/// Most bytes `group_before` looks back.
const GROUP_HORIZON_BYTES: usize = 256;

/// Whether the separator at `s` stands inside a parenthesised group that no shell opened: an
/// unclosed `(` within `GROUP_HORIZON_BYTES` before it, with no `$`, `;` or `&` before that
/// `(` (which would open a command substitution or a subshell).
fn group_before(text: &[u8], s: usize) -> bool {
    let mut depth = 0usize;
    let lo = s.saturating_sub(GROUP_HORIZON_BYTES);
    for k in (lo..s).rev() {
        match text[k] {
            b')' => depth += 1,
            b'(' if depth > 0 => depth -= 1,
            b'(' => {
                let before = text[..k].iter().rposition(|b| !matches!(b, b' ' | b'\t'));
                // (`(` at the start or after `|` opens a regex's group far more often than a
                // subshell: `(x|i\d)`, `a|(m\d|i\d)`)
                return !matches!(before.map(|j| text[j]), Some(b'$' | b';' | b'&'));
            }
            _ => {}
        }
    }
    false
}

/// Whether some word in a command's place in `text` expands with a trick (`expand_word`): the
/// gate of `dequote`.
pub(super) fn shell_tricks(text: &[u8]) -> bool {
    let mut scratch = [0u8; MAX_WORD_BYTES];
    let mut words = CommandWords::new();
    while let Some(p) = words.next_in::<true>(text) {
        if tricked(text, p, &mut scratch).is_some() {
            return true;
        }
    }
    false
}

/// What `dequote` read and found.
pub(super) struct Dequoted {
    /// Words in a command's place expanded with a trick.
    pub(super) tricks: usize,
    /// As `Unescaped::read` and `Unescaped::resume`.
    pub(super) read: usize,
    pub(super) resume: usize,
}

/// Writes `text` to `out` with each word in a command's place that expands with a trick
/// replaced by its expansion (`expand_word`), until `MAX_DECODED_BYTES` of output: what stands
/// between the separator and the word (blanks, prefixes, assignments, redirections) becomes one
/// `;`, so that the catalogue's command patterns, which look for a name right after a separator,
/// read it (`x;FOO=1 i''d` reads `x;;id`); after a backtick, nothing does: `` `i''d` `` reads
/// `` `id` ``, no more than a name in backticks says (Markdown's inline code). Every trick takes
/// a byte or more out of the word, so the `;` and the expansion take no more room than the place
/// did. Everything else is copied as it is. Linear; nothing is written past
/// `MAX_DECODED_BYTES`, so a buffer of that capacity never grows.
pub(super) fn dequote(text: &[u8], out: &mut Vec<u8>) -> Dequoted {
    out.clear();
    let mut d = Dequoted {
        tricks: 0,
        read: 0,
        resume: usize::MAX,
    };
    let mark = MAX_DECODED_BYTES - UNESCAPE_OVERLAP;
    // (a window reads at most `HORIZON_BYTES` of the text: the words are looked for there only,
    // so a long run of separators with no word worth reading before the next window is not
    // searched again by every window; linear in all)
    let text = &text[..text.len().min(HORIZON_BYTES)];
    let mut words = CommandWords::new();
    let mut scratch = [0u8; MAX_WORD_BYTES];
    let mut i = 0;
    while i < text.len() {
        let end = Place {
            after: text.len(),
            start: text.len(),
            end: text.len(),
        };
        let p = words.next_in::<true>(text).unwrap_or(end);
        let (ws, we) = (p.after, p.end);
        // the text before the place, its separator included, as it is
        let take = (ws - i).min(MAX_DECODED_BYTES - out.len());
        copy_noting(out, &text[i..i + take], i, mark, &mut d.resume);
        i += take;
        if i < ws || i >= text.len() || we - ws > MAX_DECODED_BYTES - out.len() {
            break;
        }
        match tricked(text, p, &mut scratch) {
            Some(n) => {
                if text[p.after - 1] != b'`' {
                    out.push(b';');
                }
                out.extend_from_slice(&scratch[..n]);
                d.tricks += 1;
            }
            _ => out.extend_from_slice(&text[ws..we]),
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
            ("{i''d,}", "id"),
            ("{$'\\x69\\x64',}", "id"),
            ("i${@}d", "id"),
            ("i$u'd'", "id"),
            ("w${u}hoami", "whoami"),
            ("i$9d", "id"),
            (r"$'\u0069\u0064'", "id"),
            (r"\w\hoami", "whoami"),
            ("${u}id", "id"),
            ("$@id", "id"),
            ("i${1}d", "id"),
            ("i$!d", "id"),
            ("{ls,-la}", "ls -la"),
        ] {
            assert_eq!(expand(w), Some((want.to_string(), true)), "{w}");
        }
    }

    #[test]
    fn plain_and_wholly_quoted_words_use_no_trick_and_others_are_refused() {
        for (w, want) in [
            ("\"id\"", "id"),
            ("'x'", "x"),
            ("ls", "ls"),
            ("a=b", "a=b"),
            // a backslash only at the start: LaTeX (`$(\rm km)`), regexes, Windows paths
            (r"\rm", "rm"),
            (r"\id", "id"),
            // quotes that split no name, and brace lists that hide nothing
            ("\"id\".split", "id.split"),
            ("IP''", "IP"),
            ("df['col']", "df[col]"),
            ("{id,name}", "id name"),
            ("{'cat','dog'}", "cat dog"),
            (r"a\.b", "a.b"),
            // a variable opening a word hides no name (PHP, Perl, Rust macros)
            ("$reader", ""),
            ("$v1", ""),
            ("$tt:tt", ":tt"),
            ("\"id\".$suffix", "id."),
        ] {
            assert_eq!(expand(w), Some((want.to_string(), false)), "{w}");
        }
        for w in [
            "'a",
            "\"a",
            "a\\",
            "$HOME",
            "~root",
            "#x",
            "a{b,c}",
            "{a}",
            "$'\\0'",
            "$'\\q'",
            "\"$x\"",
            "$(id",
            "${}",
            "$'\\u00e9'",
            "${U}",
            "${u:-id}",
            "$'\\x'",
            "{a,{b,c}}",
        ] {
            assert_eq!(expand(w), None, "{w}");
        }
    }

    #[test]
    fn only_words_in_a_command_place_are_rewritten() {
        let mut out = Vec::new();
        for (text, want, tricks) in [
            ("127.0.0.1;i''d", "127.0.0.1;;id", 1),
            ("x | w\\hoami", "x |;whoami", 1),
            ("$(i\"\"d)", "$(;id)", 1),
            ("`w\\ho\\ami`", "`whoami`", 1),
            ("x;{id,}", "x;;id", 1),
            ("x && c'a't /e't'c/passwd", "x &&;cat /e't'c/passwd", 1),
            // not in a command's place, or no trick
            ("it''s fine; \"id\" stays", "it''s fine; \"id\" stays", 0),
            ("\"name\";\"id\";\"cat\"", "\"name\";\"id\";\"cat\"", 0),
            ("f(i''d)", "f(i''d)", 0),
            // prefixes, assignments, redirections, groups and line breaks before the name
            (";FOO=1 i''d", ";;id", 1),
            (";command i''d", ";;id", 1),
            (";(i''d)", ";(;id)", 1),
            (";{ i''d;}", ";;id;}", 1),
            (";! i''d", ";;id", 1),
            (";>/tmp/x i''d", ";;id", 1),
            ("a;\n i''d", "a;;id", 1),
            // a backslash only at the start is no trick
            ("velocity $(\\rm km s^-1)", "velocity $(\\rm km s^-1)", 0),
            (
                "C:\\Windows\\System32;\\curl",
                "C:\\Windows\\System32;\\curl",
                0,
            ),
            ("regex = \"(a|\\id)\"", "regex = \"(a|\\id)\"", 0),
            ("int a = 1;\\nc = a * 2;", "int a = 1;\\nc = a * 2;", 0),
            // an expansion that reads as no command name
            ("x = 1; df['col'] = 2", "x = 1; df['col'] = 2", 0),
            (
                "INSERT INTO t VALUES ('Thanks; I''d recommend it');",
                "INSERT INTO t VALUES ('Thanks; I''d recommend it');",
                0,
            ),
            (
                "columns: id | ${project}Id | createdAt",
                "columns: id | ${project}Id | createdAt",
                0,
            ),
            // a `|` inside a group no shell opened: a regex
            (
                r"^(t\d|m\d|i\d)\.(nano|large)$",
                r"^(t\d|m\d|i\d)\.(nano|large)$",
                0,
            ),
            (r"re.compile(r'(x|i\d)')", r"re.compile(r'(x|i\d)')", 0),
            (r"(x|i\d)", r"(x|i\d)", 0),
            (r"^[a-z]+$|(m\d|i\d)", r"^[a-z]+$|(m\d|i\d)", 0),
            // but a group a shell opened, or none
            ("a$(x|i''d)", "a$(x|;id)", 1),
            ("f(1); x|i''d", "f(1); x|;id", 1),
            ("for (;$i < 3; $i++)", "for (;$i < 3; $i++)", 0),
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
        assert!(out.starts_with(b"a;;id a;;id "));
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
        /// Passing over separators with no word worth giving before the next (`next_in`'s
        /// `SKIP`) gives the same places, in the same order, as reading every separator's word:
        /// separators of each kind, quoting, blanks, prefixes, assignments and redirections
        /// (whose `&` is no separator's end of a word).
        #[test]
        fn passing_over_separators_gives_every_place(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                ";", "|", "&", "`", "(", "$(", ")", " ", "  ", "\n", "\t", "2>&1", ">/tmp/x",
                "<in", "&>", "1>", "i''d", "w\\hoami", "c\"a\"t", "$'\\x69'", "{id,}", "{",
                "}", "FOO=1", "a=b", "nohup", "env", "sudo", "id", "cat", "x", "'", "\"", "$",
                "\\", "=", "word", ",", ".",
            ]), 0..40),
        ) {
            let t = parts.concat();
            let t = t.as_bytes();
            let places = |skip: bool| {
                let (mut w, mut got) = (CommandWords::new(), Vec::new());
                while let Some(p) = match skip {
                    true => w.next_in::<true>(t),
                    false => w.next_in::<false>(t),
                } {
                    got.push((p.after, p.start, p.end));
                }
                got
            };
            proptest::prop_assert_eq!(places(true), places(false), "{:?}", String::from_utf8_lossy(t));
        }
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
                "$u", "${u}", "${@}", "${*}", "$1", "${}", "${U}", "$'\\u0069'", "$'\\u00e9'",
                "$'\\U00000064'", "$'\\x'", "$u_1", "$!", "${1}", "${12}",
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
