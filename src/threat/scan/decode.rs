//! Encoded payloads: base64 and hex runs found and decoded (bounded), and path-like tokens
//! judged by the input checks.

#[allow(unused_imports)]
use super::*;

pub(super) const MAX_DECODED_RUNS: usize = 4;

/// Shortest base64 or hex run that is decoded.
pub(super) const MIN_RUN: usize = 24;

pub(super) const MAX_DECODED_BYTES: usize = 4096;

/// Whether the 8 bytes before `probe` (itself included) and the 8 from it both hold a byte that
/// no base64 or hex run holds: a byte below `+` (a space, most often). A run of `MIN_RUN` (14 or
/// more) bytes through `probe` begins 7 or more bytes before it, or else runs on 8 or more from
/// it, so then none passes here; in prose this answers for most probes what walking the word
/// both ways would. False where the text ends within 8 bytes of `probe`.
#[inline]
pub(super) fn no_run_through(text: &[u8], probe: usize) -> bool {
    const _: () = assert!(
        MIN_RUN >= 14,
        "a run through a probe holds 8 bytes on a side"
    );
    // some byte of `w` is below `+`, each byte of the word tested at once (every base64 and hex
    // byte is `+` or above; bytes from 0x80 are above too)
    let below = |w: u64| w.wrapping_sub(0x2b2b_2b2b_2b2b_2b2b) & !w & 0x8080_8080_8080_8080 != 0;
    let word = |at: usize| {
        text.get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    match (probe.checked_sub(7).and_then(word), word(probe)) {
        (Some(before), Some(after)) => below(before) && below(after),
        _ => false,
    }
}

/// Bytes of a base64 (standard or URL-safe) or hex run.
pub(super) static B64: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_' | b'=');
        c += 1;
    }
    t
};

/// 6 when a whitespace- or quote-separated token that looks like a path is refused by the input
/// checks as a sensitive target or a NUL byte, or as traversal that climbs two levels or more
/// (`../../x`) or is encoded; else 0. One relative step (`../README`, everyday in documentation)
/// is left to the catalogue's weak `..` pattern.
pub(super) fn path_token_weight(text: &[u8]) -> u32 {
    use crate::inputs::{check_path, InputIssue};
    let mut best = 0;
    let tokens = text
        .split(|&c| {
            c.is_ascii_whitespace()
                || matches!(c, b'"' | b'\'' | b'`' | b'(' | b')' | b';' | b'|' | b'&')
        })
        .filter(|t| t.len() >= 3 && t.len() <= crate::inputs::MAX_RESOURCE_BYTES)
        .filter(|t| t.iter().any(|&c| matches!(c, b'/' | b'\\' | b'%')));
    for t in tokens {
        let Ok(s) = core::str::from_utf8(t) else {
            continue;
        };
        let w = match check_path(s) {
            // a path in the kernel's trees (`/dev/null`, `/proc/mounts`) is refused as a tool's
            // argument, but named in prose all the time: only what else makes it sensitive
            // (`/proc/self/environ`, `/proc/1/mem`, `/dev/tcp/…`) weighs 6 here
            Err(InputIssue::SensitiveTarget) if kernel_tree(s) => match check_path(&s[1..]) {
                Err(InputIssue::SensitiveTarget) => 6,
                _ if names_process_secrets(s) => 6,
                _ => 3,
            },
            Err(InputIssue::NulByte | InputIssue::SensitiveTarget) => 6,
            Err(InputIssue::PathTraversal) => {
                let steps = memchr::memmem::find_iter(t, b"..").count();
                if steps >= 2 || t.contains(&b'%') {
                    6
                } else {
                    0
                }
            }
            _ => 0,
        };
        best = best.max(w);
        if best == 6 {
            break;
        }
    }
    best
}

/// Whether `s` is an absolute path in the kernel's trees (`/proc/…`, `/dev/…`, `/sys/…`, any
/// case), with nothing but a name after the tree's own name.
fn kernel_tree(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() > 5
        && b[0] == b'/'
        && [&b"proc/"[..], b"dev/", b"sys/"]
            .iter()
            .any(|t| b[1..].len() > t.len() && b[1..1 + t.len()].eq_ignore_ascii_case(t))
}

/// Whether a path in the kernel's trees has a segment that names another process's memory,
/// environment or files, the machine's memory, or a network socket.
fn names_process_secrets(s: &str) -> bool {
    s.split('/').any(|seg| {
        [
            "environ",
            "mem",
            "kmem",
            "kcore",
            "cmdline",
            "maps",
            "smaps",
            "auxv",
            "fd",
            "root",
            "cwd",
            "exe",
            "port",
            "tcp",
            "udp",
            "stdin",
            "stdout",
            "stderr",
            "shm",
            "sysrq-trigger",
        ]
        .iter()
        .any(|n| seg.eq_ignore_ascii_case(n))
    })
}

/// Decodes a base64 (standard or URL-safe) or hex run into `out` if it decodes to mostly
/// printable text. Bounded by `MAX_DECODED_BYTES`.
pub(super) fn decode_run(run: &[u8], out: &mut Vec<u8>) -> bool {
    use base64::Engine as _;
    out.clear();
    let run = &run[..run.len().min(MAX_DECODED_BYTES * 4 / 3)];
    if !crate::secrets::hex_decode_into(run, out) {
        let trimmed: &[u8] = {
            let mut t = run;
            while let [rest @ .., b'='] = t {
                t = rest;
            }
            t
        };
        let cut = &trimmed[..trimmed.len() / 4 * 4
            + if trimmed.len() % 4 >= 2 {
                trimmed.len() % 4
            } else {
                0
            }];
        out.resize(cut.len() * 3 / 4 + 3, 0);
        let engine = if cut.iter().any(|&c| c == b'-' || c == b'_') {
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
        } else {
            &base64::engine::general_purpose::STANDARD_NO_PAD
        };
        match engine.decode_slice(cut, out) {
            Ok(n) => out.truncate(n),
            Err(_) => return false,
        }
    }
    let printable = out
        .iter()
        .filter(|&&c| c.is_ascii_graphic() || c == b' ' || c == b'\n')
        .count();
    out.len() >= 8 && printable * 10 >= out.len() * 9
}

/// Fewest escapes a text holds before its unescaped form is scanned too: fewer are everyday
/// (`50% off`, `&amp;`, a `\x1b` in a log line) and hide no sentence.
pub(super) const MIN_ESCAPES: usize = 4;

/// Bytes of unescaped text a window re-reads of the one before it (`Scanner::scan`), so a
/// phrase across the seam is whole in one of them, however many bytes of input its escapes took.
pub(super) const UNESCAPE_OVERLAP: usize = 1024;

/// What `unescape` read and found.
pub(super) struct Unescaped {
    /// Escapes decoded.
    pub(super) escapes: usize,
    /// Escapes that decoded to an ASCII letter or digit: text escapes those only to hide it.
    pub(super) letters: usize,
    /// Bytes of the text read: all of it, or up to where the output filled.
    pub(super) read: usize,
    /// Where the next window starts: the input byte whose output begins the last
    /// `UNESCAPE_OVERLAP` bytes of this one (`read` where the output did not fill).
    pub(super) resume: usize,
}

/// Writes `text` to `out` with its escapes decoded until `MAX_DECODED_BYTES` of output:
/// percent-encoding (`%69`; `%2569` and up to four layers of `25` as the same byte encoded
/// again; `%u0069`), HTML character references (`&#105;`, `&#x69;`, with or without the `;`, up
/// to 10 digits with leading zeros, and `&lt; &gt; &amp; &quot; &apos; &nbsp;`), and `\uXXXX`
/// (a surrogate pair joined), `\u{X…}`, `\UXXXXXXXX` and `\xXX` escapes. `%XX` and `\xXX` stand
/// for bytes (escaped UTF-8 comes together again), the others for characters; a code point that
/// is no character becomes U+FFFD. Linear: each byte is copied or decoded once; nothing is
/// written past `MAX_DECODED_BYTES`, so a buffer of that capacity never grows.
pub(super) fn unescape(text: &[u8], out: &mut Vec<u8>) -> Unescaped {
    out.clear();
    let mut u = Unescaped {
        escapes: 0,
        letters: 0,
        read: 0,
        resume: usize::MAX,
    };
    let mark = MAX_DECODED_BYTES - UNESCAPE_OVERLAP;
    let mut i = 0;
    while i < text.len() {
        let k = memchr::memchr3(b'%', b'&', b'\\', &text[i..]).unwrap_or(text.len() - i);
        let room = MAX_DECODED_BYTES - out.len();
        let take = k.min(room);
        if u.resume == usize::MAX && out.len() + take >= mark {
            u.resume = i + mark.saturating_sub(out.len());
        }
        out.extend_from_slice(&text[i..i + take]);
        i += take;
        if k > room || i >= text.len() {
            break;
        }
        let (bytes, width, consumed, letter) = match escape_at(&text[i..]) {
            Some((Escaped::Byte(b), len)) => ([b, 0, 0, 0], 1, len, b.is_ascii_alphanumeric()),
            Some((Escaped::Char(c), len)) => {
                let ch = char::from_u32(c).unwrap_or('\u{FFFD}');
                let mut buf = [0u8; 4];
                let w = ch.encode_utf8(&mut buf).len();
                (buf, w, len, ch.is_ascii_alphanumeric())
            }
            None => ([text[i], 0, 0, 0], 1, 1, false),
        };
        if out.len() + width > MAX_DECODED_BYTES {
            break;
        }
        if u.resume == usize::MAX && out.len() + width > mark {
            u.resume = i;
        }
        out.extend_from_slice(&bytes[..width]);
        if consumed > 1 {
            u.escapes += 1;
            u.letters += usize::from(letter);
        }
        i += consumed;
    }
    u.read = i;
    u.resume = u.resume.min(i);
    u
}

/// What an escape stands for: a byte (`%XX`, `\xXX`: the bytes of UTF-8 text are escaped one
/// by one, and come together again) or a code point (a character reference, `\u`).
enum Escaped {
    Byte(u8),
    Char(u32),
}

/// The escape at the start of `s` (which starts with `%`, `&` or `\`): what it stands for and
/// its length in bytes, or None where `s` starts with no escape.
fn escape_at(s: &[u8]) -> Option<(Escaped, usize)> {
    use Escaped::{Byte, Char};
    let hex = |b: &[u8]| -> Option<u32> {
        if b.is_empty() || !b.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        u32::from_str_radix(std::str::from_utf8(b).ok()?, 16).ok()
    };
    match s.first()? {
        b'%' => {
            if s.get(1) == Some(&b'u') {
                return Some((Char(hex(s.get(2..6)?)?), 6));
            }
            // `%25` followed by an escape's two hex digits is that byte encoded again
            let mut at = 1;
            while at < 9
                && s.get(at..at + 2) == Some(&b"25"[..])
                && s.get(at + 2..at + 4).is_some_and(|h| hex(h).is_some())
            {
                at += 2;
            }
            Some((Byte(hex(s.get(at..at + 2)?)? as u8), at + 2))
        }
        b'\\' => match s.get(1)? {
            b'u' if s.get(2) == Some(&b'{') => {
                let close = s.iter().take(10).position(|&b| b == b'}')?;
                Some((Char(hex(&s[3..close]).filter(|_| close <= 9)?), close + 1))
            }
            b'u' => {
                let v = hex(s.get(2..6)?)?;
                // a surrogate pair (how JSON writes a character past U+FFFF) is one character
                if (0xD800..0xDC00).contains(&v) && s.get(6..8) == Some(&b"\\u"[..]) {
                    if let Some(lo) = s.get(8..12).and_then(hex) {
                        if (0xDC00..0xE000).contains(&lo) {
                            return Some((
                                Char(0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00)),
                                12,
                            ));
                        }
                    }
                }
                Some((Char(v), 6))
            }
            b'U' => Some((Char(hex(s.get(2..10)?)?), 10)),
            b'x' => Some((Byte(hex(s.get(2..4)?)? as u8), 4)),
            _ => None,
        },
        b'&' => {
            if s.get(1) == Some(&b'#') {
                let (digits_at, radix) = match s.get(2) {
                    Some(b'x' | b'X') => (3, 16),
                    _ => (2, 10),
                };
                let end = s[digits_at..]
                    .iter()
                    .take(11)
                    .position(|b| !b.is_ascii_hexdigit() || (radix == 10 && !b.is_ascii_digit()))
                    .map_or(s.len().min(digits_at + 11), |p| digits_at + p);
                if end == digits_at || end - digits_at > 10 {
                    return None;
                }
                let v = u32::from_str_radix(std::str::from_utf8(&s[digits_at..end]).ok()?, radix)
                    .ok()?;
                let len = if s.get(end) == Some(&b';') {
                    end + 1
                } else {
                    end
                };
                return Some((Char(v), len));
            }
            for (name, c) in [
                (&b"&lt;"[..], '<'),
                (b"&gt;", '>'),
                (b"&amp;", '&'),
                (b"&quot;", '"'),
                (b"&apos;", '\''),
                (b"&nbsp;", ' '),
            ] {
                if s.len() >= name.len() && s[..name.len()].eq_ignore_ascii_case(name) {
                    return Some((Char(c as u32), name.len()));
                }
            }
            None
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn un(s: &str) -> (String, usize) {
        let mut out = Vec::new();
        let u = unescape(s.as_bytes(), &mut out);
        assert_eq!(u.read, s.len());
        (String::from_utf8_lossy(&out).into_owned(), u.escapes)
    }

    #[test]
    fn every_escape_form_decodes() {
        for (s, want, n) in [
            ("%69%67%6E%6f re", "igno re", 4),
            ("caf%C3%A9 \\xc3\\xa9", "café é", 4),
            ("%2569%2567", "ig", 2),
            ("&#105;&#x67;&#X6e;&#111", "igno", 4),
            ("&lt;b&GT; &amp; &quot;&apos;&nbsp;", "<b> & \"' ", 6),
            ("\\u0069\\u{67}\\x6e\\u{1F600}", "ign😀", 4),
            ("&#55296; \\u{110000}", "\u{FFFD} \u{FFFD}", 2),
            ("%252569%25252569%u0069", "iii", 3),
            ("&#00000105;&#x0000000069;", "ii", 2),
            (
                "\\uDB40\\uDC49\\U00000069\\uD800x",
                "\u{E0049}i\u{FFFD}x",
                3,
            ),
        ] {
            assert_eq!(un(s), (want.to_string(), n), "{s}");
        }
    }

    #[test]
    fn what_is_not_an_escape_stays() {
        for s in [
            "50% off",
            "%6",
            "%zz",
            "&#",
            "&#;",
            "&#x;",
            "&",
            "&foo;",
            "\\u12",
            "\\u{",
            "\\u{}",
            "\\u{1234567}",
            "\\q",
            "\\",
            "&#12345678901;",
            "%u12",
            "\\U1234",
            "a % b & c \\ d",
        ] {
            assert_eq!(un(s), (s.to_string(), 0), "{s}");
        }
    }

    #[test]
    fn the_output_is_bounded() {
        let text = "%41".repeat(3 * MAX_DECODED_BYTES);
        let mut out = Vec::with_capacity(MAX_DECODED_BYTES);
        let at = out.as_ptr();
        let u = unescape(text.as_bytes(), &mut out);
        assert_eq!(out.len(), MAX_DECODED_BYTES);
        assert_eq!(
            (u.escapes, u.read),
            (MAX_DECODED_BYTES, 3 * MAX_DECODED_BYTES)
        );
        assert_eq!(
            (u.letters, u.resume),
            (
                MAX_DECODED_BYTES,
                3 * (MAX_DECODED_BYTES - UNESCAPE_OVERLAP)
            )
        );
        let plain = "x".repeat(3 * MAX_DECODED_BYTES);
        let u = unescape(plain.as_bytes(), &mut out);
        assert_eq!(
            (u.read, u.resume),
            (MAX_DECODED_BYTES, MAX_DECODED_BYTES - UNESCAPE_OVERLAP)
        );
        assert_eq!(out.len(), MAX_DECODED_BYTES);
        // four-byte characters up to the bound: never past it, so the buffer never grows
        let wide = "\\u{1F600}".repeat(2 * MAX_DECODED_BYTES);
        unescape(wide.as_bytes(), &mut out);
        assert_eq!(out.len(), MAX_DECODED_BYTES);
        assert_eq!(out.as_ptr(), at, "the buffer was reallocated");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1024))]
        /// On text whose only escapes are single percent-encodings, unescaping is what the
        /// `percent-encoding` crate decodes, escape for escape.
        #[test]
        fn percent_escapes_decode_as_the_percent_encoding_crate_does(
            text in "([a-z %.]|%[0-9a-fA-F]{2}){0,64}",
        ) {
            proptest::prop_assume!(!text.contains("%25") && !text.contains("%u"));
            let mut out = Vec::new();
            let n = unescape(text.as_bytes(), &mut out).escapes;
            let want: Vec<u8> = percent_encoding::percent_decode(text.as_bytes()).collect();
            proptest::prop_assert_eq!(out, want);
            let escapes = text.matches('%').count()
                - text
                    .as_bytes()
                    .windows(3)
                    .filter(|w| w[0] == b'%' && !(w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit()))
                    .count();
            proptest::prop_assert!(n <= escapes);
        }

        /// Any bytes: no panic, output within the bound, and no more escapes than `%`, `&` and
        /// `\` bytes.
        #[test]
        fn unescaping_any_bytes_is_safe(text in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let mut out = Vec::new();
            let u = unescape(&text, &mut out);
            proptest::prop_assert!(out.len() <= MAX_DECODED_BYTES);
            proptest::prop_assert_eq!(u.read, text.len());
            proptest::prop_assert!(u.resume <= u.read && u.letters <= u.escapes);
            let n = u.escapes;
            proptest::prop_assert!(n <= text.iter().filter(|&&b| matches!(b, b'%' | b'&' | b'\\')).count());
        }
    }
}
