//! Encoded payloads: base64 and hex runs found and decoded (bounded), and path-like tokens
//! judged by the input checks.

#[allow(unused_imports)]
use super::*;

pub(super) const MAX_DECODED_RUNS: usize = 4;

/// Shortest base64 or hex run that is decoded.
pub(super) const MIN_RUN: usize = 24;

pub(super) const MAX_DECODED_BYTES: usize = 4096;

/// The first run of `MIN_RUN` bytes or more of `B64` in `text` that begins at or after `from`,
/// whole (`start..end`, no `B64` byte on either side), where no such run holds `from - 1`: the
/// runs are found one after the other, each search from the last one's end. A block pass finds
/// where `MIN_RUN` such bytes in a row begin (the class mask ANDed with itself shifted, doubling);
/// only a run that long is read byte by byte, for its ends. Prose has no such run; a probe every
/// `MIN_RUN` bytes, each measuring the word it landed in, took English from 32.6 to 35.0 µs a
/// 4 KiB text in sweeps.
pub(super) fn next_run(text: &[u8], from: usize) -> Option<(usize, usize)> {
    #[cfg(target_arch = "x86_64")]
    return crate::threat::simd::dispatch!(
        next_run_avx512,
        next_run_avx2,
        next_run_sse2,
        (text, from)
    );
    #[cfg(not(target_arch = "x86_64"))]
    next_run_scalar(text, from)
}

/// `next_run` byte by byte (its reference, and its form on other processors).
#[cfg_attr(all(target_arch = "x86_64", not(test)), allow(dead_code))]
fn next_run_scalar(text: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while i < text.len() {
        if !B64[text[i] as usize] {
            i += 1;
            continue;
        }
        let start = i;
        while i < text.len() && B64[text[i] as usize] {
            i += 1;
        }
        if i - start >= MIN_RUN {
            return Some((start, i));
        }
    }
    None
}

/// `next_run`'s byte class: `B64`.
#[cfg(target_arch = "x86_64")]
struct RunClass;

#[cfg(target_arch = "x86_64")]
impl crate::threat::simd::Classes<1> for RunClass {
    #[inline(always)]
    unsafe fn classes<V: crate::threat::simd::Vector>(v: V) -> [V; 1] {
        // SAFETY: `V`'s instruction set is present (this function's safety).
        unsafe {
            [v.range(b'a', 26)
                .or(v.range(b'A', 26))
                .or(v.range(b'0', 10))
                .or(v.eq(b'+'))
                .or(v.eq(b'/'))
                .or(v.eq(b'-'))
                .or(v.eq(b'_'))
                .or(v.eq(b'='))]
        }
    }
    const TABLE: Option<[u8; 128]> = Some({
        let mut t = [0u8; 128];
        let mut b = 0;
        while b < 128 {
            t[b] = B64[b] as u8;
            b += 1;
        }
        t
    });
}

/// `next_run` a block at a time.
/// # Safety
/// `V`'s instruction set is present.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn next_run_with<V: crate::threat::simd::Vector>(
    text: &[u8],
    from: usize,
) -> Option<(usize, usize)> {
    const _: () = assert!(MIN_RUN == 24, "the shifts below find 24 bytes in a row");
    use crate::threat::simd::block_masks;
    let mut k = from / 64;
    // SAFETY: `V`'s instruction set is present (this function's safety, as below).
    let mut cur = unsafe { block_masks::<V, RunClass, 1>(text, k) }[0];
    while k * 64 < text.len() {
        // SAFETY: as above.
        let next = unsafe { block_masks::<V, RunClass, 1>(text, k + 1) }[0];
        // bit `i`: bytes `i..i + 24` of this block and the next are all of the class
        let w = cur as u128 | (next as u128) << 64;
        let two = w & w >> 1;
        let four = two & two >> 2;
        let eight = four & four >> 4;
        let sixteen = eight & eight >> 8;
        let mut long = (sixteen & eight >> 16) as u64;
        if k == from / 64 {
            long &= u64::MAX << (from % 64);
        }
        if long != 0 {
            let at = k * 64 + long.trailing_zeros() as usize;
            let mut start = at;
            while start > from && B64[text[start - 1] as usize] {
                start -= 1;
            }
            let mut end = at + MIN_RUN;
            while end < text.len() && B64[text[end] as usize] {
                end += 1;
            }
            return Some((start, end));
        }
        (cur, k) = (next, k + 1);
    }
    None
}

#[cfg(target_arch = "x86_64")]
crate::threat::simd::entry_points!(
    "next_run",
    next_run_with,
    [next_run_avx512, next_run_avx2, next_run_sse2],
    (text: &[u8], from: usize) -> Option<(usize, usize)>
);

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
    // Only tokens holding `/`, `\`, a percent escape (`percent_judged_at`) or a separator
    // look-alike (`∕`, `⁄`, …) are judged, so the text is searched for those bytes (and the
    // look-alikes' lead bytes) in one pass (`path_bytes`), and each hit widened to its token (a
    // maximal run of non-separators), not split whole: a token is read once, hits inside one
    // already judged are passed over, and the backward widening never passes the last token's
    // end. Linear.
    // (a `%` that is no escape is judged where its token holds a low-byte separator: each token
    // looked at once, for its first such `%`, and the answer kept for the others)
    // (two `memchr3` searches, each restarted at every hit, where Chinese program messages hold
    // ~80 `%` in 4 KiB and an `EF` lead byte in most punctuation: one pass took Chinese from
    // 48.5 to 46.9 µs in three rounds of `scan_corpus --sweeps`)
    let mut low_bytes = (0, false);
    let (mut best, mut judged_to) = (0, 0);
    path_bytes(text, |p| {
        if p < judged_to {
            return false;
        }
        let hit = match text[p] {
            b'/' | b'\\' => true,
            b'%' if percent_judged_at(&text[p..]) => true,
            b'%' => {
                if p >= low_bytes.0 {
                    let (start, end) = token_around(text, 0, p);
                    low_bytes = (end, crate::inputs::low_byte_separator(&text[start..end]));
                }
                low_bytes.1
            }
            _ => separator_lookalike_at(&text[p..]),
        };
        if !hit {
            return false;
        }
        let (start, end) = token_around(text, judged_to, p);
        judged_to = end;
        best = best.max(path_weight(&text[start..end]));
        best == 6
    });
    best
}

/// Calls `f` with each offset in `text` of a byte that can make its token a path (`/`, `\`,
/// `%`) or begin a separator look-alike (`C2`, `E2`, `EF`: `separator_lookalike_at`), lowest
/// first, until `f` says true.
fn path_bytes(text: &[u8], f: impl FnMut(usize) -> bool) {
    #[cfg(target_arch = "x86_64")]
    crate::threat::simd::dispatch!(
        path_bytes_avx512,
        path_bytes_avx2,
        path_bytes_sse2,
        (text, f)
    );
    #[cfg(not(target_arch = "x86_64"))]
    {
        let mut f = f;
        let _ = (0..text.len()).find(|&i| path_class(text[i]) && f(i));
    }
}

/// The bytes `path_bytes` finds (its classes' reference, and its form on other processors).
#[cfg_attr(all(target_arch = "x86_64", not(test)), allow(dead_code))]
fn path_class(c: u8) -> bool {
    matches!(c, b'/' | b'\\' | b'%' | 0xC2 | 0xE2 | 0xEF)
}

/// `path_bytes`' one byte class.
#[cfg(target_arch = "x86_64")]
struct PathClasses;

#[cfg(target_arch = "x86_64")]
impl crate::threat::simd::Classes<1> for PathClasses {
    #[inline(always)]
    unsafe fn classes<V: crate::threat::simd::Vector>(v: V) -> [V; 1] {
        // SAFETY: `V`'s instruction set is present (this function's safety).
        unsafe {
            [v.eq(b'/')
                .or(v.eq(b'\\'))
                .or(v.eq(b'%'))
                .or(v.eq(0xC2))
                .or(v.eq(0xE2))
                .or(v.eq(0xEF))]
        }
    }
}

/// `path_bytes` a block at a time.
/// # Safety
/// `V`'s instruction set is present.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn path_bytes_with<V: crate::threat::simd::Vector>(
    text: &[u8],
    mut f: impl FnMut(usize) -> bool,
) {
    let mut s = 0;
    while s < text.len() {
        // (a short last block is padded with a byte of no class)
        let mut tail = [b' '; 64];
        let block = crate::threat::simd::block(text, s, &mut tail);
        // SAFETY: `V`'s instruction set is present (this function's safety).
        let [mut m] = unsafe { crate::threat::simd::masks::<V, PathClasses, 1>(block) };
        while m != 0 {
            if f(s + m.trailing_zeros() as usize) {
                return;
            }
            m &= m - 1;
        }
        s += 64;
    }
}

#[cfg(target_arch = "x86_64")]
crate::threat::simd::entry_points!(
    "path_bytes",
    path_bytes_with,
    [path_bytes_avx512, path_bytes_avx2, path_bytes_sse2],
    (text: &[u8], f: impl FnMut(usize) -> bool)
);

/// Whether the `%` that `s` begins with makes its token a path (`path_token_weight`): where it
/// begins a percent escape (`inputs::percent_escape_at`), or where a character past ASCII or a
/// sign stands in an escape's digits, which some readers decode: Java's `URLDecoder` takes any
/// Unicode digit and full-width `Ａ`–`Ｆ` for hex digits (`%2Ｆ` and `%٢f` are `/` there) and
/// reads a sign before them (`%+0` is a NUL there, as in C's `strtol`). A `%` before ASCII that
/// begins none of these (`printf`'s `%s`, `100%`, `%zz`) decodes to itself: the token reads as
/// written, a name, which the scan does not judge alone, unless it holds a low-byte separator
/// (`inputs::low_byte_separator`). Chinese and Russian program messages hold hundreds of such `%`
/// (`%s：%s`), whose reading cost a fifth of their scan.
fn percent_judged_at(s: &[u8]) -> bool {
    crate::inputs::percent_escape_at(s) || crate::inputs::lenient_percent_at(s)
}

/// Whether `s` starts with the UTF-8 of a separator look-alike or a best-fit backslash
/// (`inputs::SEPARATOR_LOOKALIKES`, `inputs::BEST_FIT_BACKSLASHES`), told by the two bytes after
/// a lead byte `path_bytes` found: a match on bytes, not a comparison with each of the 17
/// (Chinese text has an `EF` lead byte in most punctuation, and comparing cost a sixth of its
/// scan). Exhaustive test against the lists: `separator_lookalike_bytes_are_the_lists`.
fn separator_lookalike_at(s: &[u8]) -> bool {
    crate::inputs::best_fit_backslash_at(s)
        || matches!(
            s,
            [0xE2, 0x88, 0x95 | 0x96, ..]
                | [0xE2, 0x81, 0x84, ..]
                | [0xE2, 0x95, 0xB1 | 0xB2, ..]
                | [0xE2, 0x9F, 0x8B | 0x8D, ..]
                | [0xE2, 0xA7, 0xB5 | 0xB8 | 0xB9, ..]
                | [0xEF, 0xB9, 0xA8, ..]
                | [0xEF, 0xBC, 0x8F | 0xBC, ..]
        )
}

/// The path-like token around byte `p` of `text` (`path_separator`s bound it), looked for back
/// no further than `floor`.
fn token_around(text: &[u8], floor: usize, p: usize) -> (usize, usize) {
    let start = text[floor..p]
        .iter()
        .rposition(|&c| path_separator(c))
        .map_or(floor, |i| floor + i + 1);
    let end = text[p..]
        .iter()
        .position(|&c| path_separator(c))
        .map_or(text.len(), |i| p + i);
    (start, end)
}

/// What ends a path-like token in text: white space, quotes, brackets and shell operators.
fn path_separator(c: u8) -> bool {
    c.is_ascii_whitespace() || matches!(c, b'"' | b'\'' | b'`' | b'(' | b')' | b';' | b'|' | b'&')
}

/// One token's weight as a path (`path_token_weight`): 6 for a sensitive target, a NUL, or
/// traversal of two steps or percent-encoded; 3 for a plain path in the kernel's trees; else 0.
/// A token the input checks refuse for anything else (an encoding, a look-alike separator, a
/// drive letter, a stray escape or blank) weighs by its steps as the most permissive reader
/// reads them (`inputs::traversal_steps`), or, written with look-alike separators, as the path
/// they stand for (`∕etc∕shadow`). A path that hides where it leads (`hides_path`) weighs 6
/// where it reaches a sensitive target (`inputs::reaches_sensitive`: `/etc/./shadow`).
fn path_weight(t: &[u8]) -> u32 {
    let w = decoded_path_weight(t);
    if w == 6 || !t.contains(&b'%') {
        return w;
    }
    w.max(lenient_readings_weight(t))
}

/// A token's weight as Java's and Node's lenient decoders read it, where they read a `%` that
/// warden's decoding leaves (`inputs::java_readings`, `inputs::node_readings`): the input checks
/// refuse such a resource, and the scan weighs what the reading reaches. A Java reading weighs 6
/// where it climbs a step (a digit of another script or a full-width letter in an escape is
/// written to hide: `..%٢f..%٢fetc%٢fpasswd`; a step the token holds as written, beside a `%`,
/// weighs 6 as written already), else as warden weighs it (`decoded_path_weight`);
/// Node's where it climbs two (a character's low byte is a dot or a separator by chance in
/// Chinese prose: `帮帮/10%.txt` reads `../10%.txt`), else by what it names
/// (`named_target_weight`).
fn lenient_readings_weight(t: &[u8]) -> u32 {
    let mut best = 0;
    let java = |r: &mut [u8]| {
        // (a NUL is a name's character: Java refuses a path that holds one, and its sign forms
        // make one in prose, `100%-0` and `2026%-01-15` being `100\0` and `2026\01-15` there)
        for b in r.iter_mut().filter(|b| **b == 0) {
            *b = b'x';
        }
        // (and so is a `%` Java could not read and that begins no escape: not the encoding that
        // `decoded_path_weight` weighs beside a step, `%९९%..\\data` being `?%..\\data`)
        for i in 0..r.len() {
            if r[i] == b'%' && !crate::inputs::percent_escape_at(&r[i..]) {
                r[i] = b'x';
            }
        }
        let w = if crate::inputs::traversal_steps(r) >= 1 {
            6
        } else {
            decoded_path_weight(r)
        };
        best = best.max(w);
        best == 6
    };
    if crate::inputs::java_readings(t, java) {
        return 6;
    }
    crate::inputs::node_readings(t, |r| {
        // (and `~` a name's character: a character's low byte makes an 8.3 alias's `~N` by
        // chance in Chinese prose, `未找到` reads `*~0`, and any alias is a sensitive name to
        // the checks)
        for b in r.iter_mut() {
            *b = match crate::inputs::node_plain(*b) {
                b'~' => b'x',
                b => b,
            };
        }
        let w = if crate::inputs::traversal_steps(r) >= 2 {
            6
        } else {
            named_target_weight(r)
        };
        best = best.max(w);
        best == 6
    });
    best
}

/// The weight of one of Node's readings by what it names, not by how it is written: a sensitive
/// target (`sensitive_weight`), or, where the checks refuse it for anything else, one it reaches
/// (`inputs::reaches_sensitive`: `/x/../etc/passwd`, `x%uD800/.ssh/id_rsa`); else 0. Node's
/// reading of Chinese prose holds `..`, `\\` and escapes by chance (`从%d到%d中选择UID\\...` reads
/// `?%d0%d-??UID\\...`, where `%d0` decodes), which `decoded_path_weight` would weigh as encoded
/// traversal; and a NUL by chance (`从5%到0.5%/年` reads `%00`, `到` being `0`), which weighs
/// nothing: Node refuses a path that holds one, so only what the path names around it counts.
fn named_target_weight(r: &[u8]) -> u32 {
    use crate::inputs::{check_path_as_decoded as check_path, InputIssue};
    let Ok(s) = core::str::from_utf8(r) else {
        return 0;
    };
    match check_path(s) {
        Err(i @ InputIssue::SensitiveTarget) => sensitive_weight(s, i),
        // (refused for anything else, a NUL, a climb, or an escape Node leaves such as `%uD800`:
        // what the path reaches, read leniently)
        Err(_) if crate::inputs::reaches_sensitive(r) => 6,
        _ => 0,
    }
}

/// `path_weight` of a token as warden decodes it.
fn decoded_path_weight(t: &[u8]) -> u32 {
    use crate::inputs::{check_path_as_decoded as check_path, InputIssue};
    if t.len() < 3 || t.len() > crate::inputs::MAX_RESOURCE_BYTES {
        return 0;
    }
    let Ok(s) = core::str::from_utf8(t) else {
        return 0;
    };
    match check_path(s) {
        Ok(()) => 0,
        Err(i @ (InputIssue::NulByte | InputIssue::SensitiveTarget)) => sensitive_weight(s, i),
        // ASCII with no `%u` escape (which may stand for a look-alike): two dot pairs, or any
        // encoding, as the checks read it
        Err(InputIssue::PathTraversal) if t.is_ascii() && !percent_u(t) => {
            if memchr::memmem::find_iter(t, b"..").count() >= 2
                || t.contains(&b'%')
                || (dot_segment_inside(s) && crate::inputs::reaches_sensitive(t))
            {
                6
            } else {
                0
            }
        }
        // (no dot and nothing that decodes or folds to one: no step, and no look-alike)
        Err(_) if t.is_ascii() && !t.contains(&b'.') && !t.contains(&b'%') => 0,
        Err(_) => {
            let steps = crate::inputs::traversal_steps(t);
            // what a hidden path reaches, read the most permissive way (`..∕.ssh∕id_rsa`)
            if steps >= 2
                || (steps == 1 && t.contains(&b'%'))
                || (hides_path(s) && crate::inputs::reaches_sensitive(t))
            {
                return 6;
            }
            // the path a best-fit reader opens, for what it names (not its dots: those are
            // `steps`, and a price's dot leader before `¥` is none)
            crate::inputs::best_fit_reading(t, |r| match check_path(r) {
                Err(i @ (InputIssue::NulByte | InputIssue::SensitiveTarget)) => {
                    sensitive_weight(r, i)
                }
                _ => 0,
            })
            .unwrap_or(0)
        }
    }
}

/// Whether the spelling of path `t` hides where it leads: a percent escape that decodes (`%2f`,
/// `%u2215`), a character `inputs::spelling_hides_path` names (a look-alike, an invisible
/// character inside the path), or a `.` or `..` segment after a name. Not any other character
/// past ASCII (a user's name, `C:\Users\Çağla\.ssh`), not `%USERNAME%`, not a fullwidth `＼`
/// or a bidi mark around the path: hostile reviews found 402 and 296 benign texts made high
/// that way.
fn hides_path(t: &str) -> bool {
    // (an invisible character at an end is typography, a bidi mark around a path in Hebrew or
    // Arabic prose: it hides nothing inside the path)
    let t = t.trim_matches(|c: char| !c.is_ascii() && crate::inputs::invisible(c));
    let b = t.as_bytes();
    memchr::memchr_iter(b'%', b).any(|i| crate::inputs::percent_escape_at(&b[i..]))
        || (!t.is_ascii() && t.chars().any(crate::inputs::spelling_hides_path))
        || dot_segment_inside(t)
}

/// Whether path `t` has a segment of blanks or invisible characters, or a `.` or `..` segment
/// (or `..;x`) after a name (`/etc/./shadow`,
/// `/etc/x/../shadow`, `a\..\b`, `C:¥x¥..¥y`): a path written to hide where it leads. A
/// leading run (`./.env`, `../.env`) is how a relative path is written every day, and is left to
/// the step count: a target one step up is named in documentation and chat all the time
/// (`--env-file ../.env`), and a plain drive letter path is too
/// (`C:\Windows\System32\drivers\etc\hosts`). Three dots or more elide a path
/// (`C:\Users\...\.ssh`).
fn dot_segment_inside(t: &str) -> bool {
    let separator = |c: char| {
        matches!(c, '/' | '\\')
            || crate::inputs::BEST_FIT_BACKSLASHES.contains(&c)
            || crate::inputs::TYPED_SEPARATORS.contains(&c)
    };
    let mut named = false;
    for seg in t.split(separator).filter(|s| !s.is_empty()) {
        // (a segment of nothing but blanks or invisible characters hides one anywhere:
        // `/root/\u{301}/.ssh`, refused before its names are looked at)
        if crate::inputs::blank_or_invisible(seg) {
            return true;
        }
        match seg.split(';').next().unwrap_or(seg) {
            "." | ".." if named => return true,
            "." | ".." => {}
            _ => named = true,
        }
    }
    false
}

/// `path_weight` of a path the checks refuse as `issue`, a NUL or a sensitive target: 6, but 3
/// for a plain path in the kernel's trees (`/dev/null`, `/proc/mounts`), refused as a tool's
/// argument, but named in prose all the time: only what else makes it sensitive
/// (`/proc/self/environ`, `/proc/1/mem`, `/dev/tcp/…`) weighs 6 there.
fn sensitive_weight(s: &str, issue: crate::inputs::InputIssue) -> u32 {
    use crate::inputs::{check_path_as_decoded as check_path, InputIssue};
    match issue {
        InputIssue::SensitiveTarget if kernel_tree(s) => match check_path(&s[1..]) {
            Err(InputIssue::SensitiveTarget) => 6,
            _ if names_process_secrets(s) => 6,
            _ => 3,
        },
        _ => 6,
    }
}

/// Whether `t` holds a `%u` escape (`%u2215`, `%U002E`).
fn percent_u(t: &[u8]) -> bool {
    memchr::memchr_iter(b'%', t).any(|i| matches!(t.get(i + 1), Some(b'u' | b'U')))
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

/// A run of base64 or hex cut into chunks (`69 67 6e …`, `aWdub3Jl IGFsbCBw …`), as
/// `chunked_run` finds it: `text[start..end]`, chunks of `len` bytes one separator apart, the
/// last maybe shorter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Chunked {
    pub start: usize,
    pub end: usize,
    pub len: usize,
    /// Whether it has two chunks or more and `MIN_RUN` bytes of them or more.
    pub long: bool,
}

/// One separator between chunks: a space, a tab, a line break or `\r\n`; its length where `at`
/// begins one.
fn chunk_separator(text: &[u8], at: usize) -> Option<usize> {
    match text.get(at..at + 2) {
        Some(b"\r\n") => Some(2),
        _ => matches!(text.get(at), Some(b' ' | b'\t' | b'\n')).then_some(1),
    }
}

/// Whether the 16 bytes from 8 before `probe` hold a digit or a lower-case letter right before
/// an upper-case one (within either 8-byte half): base64 and hex chunks of text nearly always
/// do (hex of text has a digit every pair, base64 a digit or a capital in most 4 bytes), prose
/// seldom. `chunked_run` is asked only where this holds, or within 8 bytes of the text's ends:
/// two loads and a few word operations a probe instead of walking the words around it.
#[inline]
pub(super) fn chunk_marks_near(text: &[u8], probe: usize) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // the high bit of each byte of `x` that is ASCII and within `lo..=hi`
    let within = |x: u64, lo: u8, hi: u8| {
        let ge = (x | HIGH).wrapping_sub(ONES * lo as u64);
        let gt = (x | HIGH).wrapping_sub(ONES * (hi as u64 + 1));
        ge & !gt & !x & HIGH
    };
    let marks = |x: u64| {
        let lower = within(x, b'a', b'z');
        // byte i's mark moves to byte i + 1 (little-endian)
        within(x, b'0', b'9') | (lower << 8 & within(x, b'A', b'Z'))
    };
    let word = |at: usize| {
        text.get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    match (probe.checked_sub(8).and_then(word), word(probe)) {
        (Some(a), Some(b)) => marks(a) | marks(b) != 0,
        _ => true,
    }
}

/// The chunked run through `probe`, if there is one: chunks of `len` bytes of base64 or hex,
/// `len` even and below `MIN_RUN` (longer ones are runs of their own), each one separator
/// (`chunk_separator`) from the next, the last one maybe shorter; two chunks or more and
/// `MIN_RUN` bytes of them or more (`long`); `decode_chunked` reads them. The run is looked for
/// no further back than `from` (where the caller's last run ended): with the caller going on
/// past `end`, every byte is walked a bounded number of times.
pub(super) fn chunked_run(text: &[u8], probe: usize, from: usize) -> Option<Chunked> {
    let b64 = |i: usize| text.get(i).is_some_and(|&b| B64[b as usize]);
    // the chunk at the probe, or right after a separator there
    let q = match chunk_separator(text, probe) {
        Some(n) => probe + n,
        None => probe,
    };
    if !b64(q) {
        return None;
    }
    // a chunk's bounds, no longer than `MIN_RUN` either way
    let start_of = |end: usize| {
        let mut s = end;
        while s > from && end - s <= MIN_RUN && b64(s - 1) {
            s -= 1;
        }
        s
    };
    let end_of = |start: usize| {
        let mut e = start;
        while e - start <= MIN_RUN && b64(e) {
            e += 1;
        }
        e
    };
    // the chunk before the one starting at `s`, one separator back
    let before = |s: usize| -> Option<(usize, usize)> {
        let sep = if s >= 2 && &text[s - 2..s] == b"\r\n" {
            2
        } else {
            1
        };
        let e = s.checked_sub(sep)?;
        (e > from && chunk_separator(text, e) == Some(sep) && b64(e - 1)).then(|| (start_of(e), e))
    };
    let (s0, e0) = (start_of(q + 1), end_of(q));
    let cur = e0 - s0;
    if cur >= MIN_RUN || (s0 > 0 && b64(s0 - 1)) {
        return None;
    }
    // the chunk length: this chunk's, or the one before's where this is the shorter last
    let prev = before(s0).filter(|&(_, pe)| text[pe - 1] != b'=');
    let len = match prev {
        Some((ps, pe)) if pe - ps > cur => pe - ps,
        _ => cur,
    };
    if !(2..MIN_RUN).contains(&len) || len % 2 == 1 {
        return None;
    }
    // a run of three chunks has two of `len` side by side here: this one and the one before or
    // after it, or (this the shorter last) the two before; a run of two, possible where `len`
    // is half a run or more, is this chunk and a shorter one after it, or (this the shorter
    // last) the one before. Most words around a probe are neither.
    let two = 2 * len >= MIN_RUN;
    let next = chunk_separator(text, e0).map(|n| end_of(e0 + n) - (e0 + n));
    let follows = next.is_some_and(|l| l == len || (two && l > 0 && l < len));
    let paired = match prev {
        Some((ps, pe)) if cur == len => pe - ps == len || follows,
        Some((ps, _)) => two || before(ps).is_some_and(|(qs, qe)| qe - qs == len),
        None => follows,
    };
    if !paired {
        return None;
    }
    // back over whole chunks to the run's first
    let mut start = if cur == len { s0 } else { prev?.0 };
    while let Some((ps, pe)) = before(start) {
        if pe - ps != len || text[pe - 1] == b'=' || (ps > 0 && b64(ps - 1)) {
            break;
        }
        start = ps;
    }
    // forward over whole chunks, then one shorter last chunk; base64's padding ends a run
    let mut end = e0;
    if cur == len && text[e0 - 1] != b'=' {
        while let Some(n) = chunk_separator(text, end) {
            let (ns, ne) = (end + n, end_of(end + n));
            if ne == ns || ne - ns > len {
                break;
            }
            end = ne;
            if ne - ns < len || text[ne - 1] == b'=' {
                break;
            }
        }
    }
    let (chunks, bytes) =
        chunks_of(text, start, end).fold((0, 0), |(n, b), (s, e)| (n + 1, b + e - s));
    Some(Chunked {
        start,
        end,
        len,
        long: chunks >= 2 && bytes >= MIN_RUN,
    })
}

/// The (start, end) of each chunk of `text[start..end]`, a chunked run.
fn chunks_of(text: &[u8], start: usize, end: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut at = start;
    std::iter::from_fn(move || {
        if at >= end {
            return None;
        }
        let s = at;
        let e = s + text[s..end]
            .iter()
            .take_while(|&&b| B64[b as usize])
            .count();
        at = e + chunk_separator(text, e).unwrap_or(1);
        Some((s, e))
    })
}

/// Decodes a chunked run (`chunked_run`) into `out`, its chunks joined in `joined`, where it
/// decodes to text (`decode_run`): what it holds, and the part of the run that decoded. Hex:
/// the longest stretch of chunks that are all hex, each of even length. Base64 (chunks a multiple of 4 long): all the chunks;
/// failing that, without the last chunk, the first, both, or the first two and the last (words
/// that happen to be of a chunk's length, or shorter, before or after the run): at most five
/// decodings of `MAX_DECODED_BYTES` a run.
pub(super) fn decode_chunked(
    text: &[u8],
    run: Chunked,
    joined: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Option<(Decoded, usize, usize)> {
    let join = |joined: &mut Vec<u8>, from: usize, to: usize| {
        joined.clear();
        for (s, e) in chunks_of(text, from, to) {
            let room = MAX_DECODED_BYTES - joined.len();
            if room == 0 {
                break;
            }
            joined.extend_from_slice(&text[s..e.min(s + room)]);
        }
    };
    // the longest stretch of hex chunks
    let (mut best, mut cur) = ((0, 0, 0), (run.start, 0));
    for (s, e) in chunks_of(text, run.start, run.end) {
        // (a shorter last chunk of odd length is a word after the run)
        if (e - s) % 2 == 0 && text[s..e].iter().all(u8::is_ascii_hexdigit) {
            cur.1 += e - s;
            if cur.1 > best.2 {
                best = (cur.0, e, cur.1);
            }
        } else {
            cur = (e + 1, 0);
        }
    }
    if best.2 >= MIN_RUN {
        let (from, to, _) = best;
        // from the first hex chunk: `cur.0` may point at a separator's second byte
        let from = from
            + text[from..to]
                .iter()
                .take_while(|&&b| !B64[b as usize])
                .count();
        join(joined, from, to);
        if let d @ (Decoded::Whole | Decoded::Stretch) = decode_run(joined, out) {
            return Some((d, from, to));
        }
    }
    if !run.len.is_multiple_of(4) {
        return None;
    }
    // where the second, third and last chunks start (the run without its last chunk ends
    // there: `chunks_of` stops at a chunk that starts at its end)
    let mut starts = chunks_of(text, run.start, run.end).map(|(s, _)| s).skip(1);
    let (second, third) = (starts.next(), starts.next());
    let last = chunks_of(text, run.start, run.end)
        .last()
        .map_or(run.end, |(s, _)| s);
    [
        (Some(run.start), run.end),
        (Some(run.start), last),
        (second, run.end),
        (second, last),
        (third, last),
    ]
    .into_iter()
    .filter_map(|(from, to)| from.filter(|&f| f < to).map(|f| (f, to)))
    .find_map(|(from, to)| {
        join(joined, from, to);
        let d = match joined.len() >= MIN_RUN {
            true => decode_run(joined, out),
            false => Decoded::Not,
        };
        d.text().then_some((d, from, to))
    })
}

/// Writes `text`'s lines to `out`, each with its characters in reverse order (a UTF-8 sequence
/// kept whole; a stray continuation byte goes with the byte before it, up to 4 bytes): text
/// written backwards, as `text[::-1]` does. See `per_line` for the window.
pub(super) fn reverse_lines(text: &[u8], out: &mut Vec<u8>) -> (usize, usize) {
    per_line(text, out, reverse_chars)
}

/// Appends `s`'s characters to `out` in reverse order (a UTF-8 sequence kept whole; a stray
/// continuation byte goes with the byte before it, up to 4 bytes).
fn reverse_chars(s: &[u8], out: &mut Vec<u8>) {
    let mut i = s.len();
    while i > 0 {
        let mut k = i - 1;
        while k > 0 && i - k < 4 && continuation(s[k]) {
            k -= 1;
        }
        out.extend_from_slice(&s[k..i]);
        i = k;
    }
}

/// Writes `text`'s lines to `out`, each word's characters in reverse order and the words in
/// their order (`erongI lla suoiverp`), blanks as they are. See `per_line`.
pub(super) fn reverse_each_word(text: &[u8], out: &mut Vec<u8>) -> (usize, usize) {
    per_line(text, out, |line, out| {
        for (k, word) in line.split(|&b| b == b' ' || b == b'\t').enumerate() {
            if k > 0 {
                out.push(b' ');
            }
            reverse_chars(word, out);
        }
    })
}

/// Writes `text`'s lines to `out`, each with its words (runs between spaces and tabs) in
/// reverse order, one space apart: an injection written last word first. See `per_line`.
pub(super) fn reverse_words(text: &[u8], out: &mut Vec<u8>) -> (usize, usize) {
    per_line(text, out, |line, out| {
        let blank = |b: u8| b == b' ' || b == b'\t';
        let (mut e, mut first) = (line.len(), true);
        loop {
            while e > 0 && blank(line[e - 1]) {
                e -= 1;
            }
            if e == 0 {
                break;
            }
            let s = line[..e]
                .iter()
                .rposition(|&b| blank(b))
                .map_or(0, |p| p + 1);
            if !first {
                out.push(b' ');
            }
            out.extend_from_slice(&line[s..e]);
            (e, first) = (s, false);
        }
    })
}

/// Writes `text`'s lines to `out` in ROT13 (ASCII letters 13 on, the rest as it is): text
/// written in ROT13 read back. See `per_line`.
pub(super) fn rot13_lines(text: &[u8], out: &mut Vec<u8>) -> (usize, usize) {
    per_line(text, out, |line, out| {
        out.extend(line.iter().map(|&b| rot13(b)))
    })
}

/// Whether `b` continues a UTF-8 sequence.
fn continuation(b: u8) -> bool {
    b & 0xC0 == 0x80
}

/// Writes each line of `text` to `out` as `rewrite` writes it (no longer than the line), a
/// line break after each, until `MAX_DECODED_BYTES`; returns how many bytes of `text` were
/// read (whole lines, or, where the first line is longer than that, its first
/// `MAX_DECODED_BYTES` cut at a character's start) and where the next window starts: where it
/// was read to, or, in a line cut, `UNESCAPE_OVERLAP` bytes before that, so that a phrase
/// across the cut is whole in one window. Linear when `rewrite` is (a cut line is read at most
/// 4/3 times).
fn per_line(
    text: &[u8],
    out: &mut Vec<u8>,
    mut rewrite: impl FnMut(&[u8], &mut Vec<u8>),
) -> (usize, usize) {
    out.clear();
    let (mut at, mut cut) = (0, false);
    while at < text.len() && out.len() < MAX_DECODED_BYTES {
        let end = memchr::memchr(b'\n', &text[at..]).map_or(text.len(), |n| at + n);
        let room = MAX_DECODED_BYTES - out.len();
        let mut stop = end;
        if end - at > room {
            if !out.is_empty() {
                break;
            }
            cut = true;
            // a line longer than a window: its first `room` bytes, at a character's start
            stop = at + room;
            while stop > at && continuation(text[stop]) {
                stop -= 1;
            }
            if stop == at {
                stop = at + room;
            }
        }
        let before = out.len();
        rewrite(&text[at..stop], out);
        debug_assert!(
            out.len() - before <= stop - at,
            "a rewritten line is no longer"
        );
        at = stop;
        if stop == end && end < text.len() && out.len() < MAX_DECODED_BYTES {
            out.push(b'\n');
            at = end + 1;
        }
    }
    match cut {
        true => (at, at.saturating_sub(UNESCAPE_OVERLAP).max(1)),
        false => (at, at),
    }
}

/// Decodes a base64 (standard or URL-safe) or hex run into `out`, and says whether it is text
/// to read, whole or a stretch of it (`read_as_text`). Bounded by `MAX_DECODED_BYTES`.
pub(super) fn decode_run(run: &[u8], out: &mut Vec<u8>) -> Decoded {
    use base64::Engine as _;
    out.clear();
    let run = &run[..run.len().min(MAX_DECODED_BYTES * 4 / 3)];
    if base32_run(run) {
        // RFC 4648 base32: upper-case letters and 2-7, `=` padding to a multiple of 8
        let spec = &data_encoding::BASE32;
        let run = &run[..run.len() / 8 * 8];
        if let Ok(n) = spec.decode_len(run.len()) {
            out.resize(n, 0);
            match spec.decode_mut(run, out) {
                Ok(n) => out.truncate(n),
                Err(_) => out.clear(),
            }
            if let d @ (Decoded::Whole | Decoded::Stretch) = read_as_text(out) {
                return d;
            }
        }
        out.clear();
    }
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
            Err(_) => return Decoded::Not,
        }
    }
    read_as_text(out)
}

/// What a decoding holds for the scan to read (`decode_run`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Decoded {
    /// Nothing: it did not decode, or to no text.
    Not,
    /// Text, all of it (`printable`).
    Whole,
    /// Binary with stretches of text in it, which `out` now holds alone, one a line.
    Stretch,
}

impl Decoded {
    pub(super) fn text(self) -> bool {
        self != Decoded::Not
    }
}

/// Shortest stretch of printable bytes read out of a decoding that is not text as a whole:
/// random bytes (about 37 % printable) make one this long about once in 10^10 tries, an
/// injection beside the bytes of a hex dump is one.
const MIN_STRETCH: usize = 24;

/// Whether a decoding in `out` is text (`printable`), or holds stretches of `MIN_STRETCH`
/// printable bytes or more, which then replace it, in order, a line break between each (every
/// one: a benign string beside an injection in a hex dump must not hide it). In place, one pass.
fn read_as_text(out: &mut Vec<u8>) -> Decoded {
    if printable(out) {
        return Decoded::Whole;
    }
    // `w`: where the next stretch is written (never past where it is read from)
    let (mut w, mut at) = (0, 0);
    for i in 0..=out.len() {
        if i < out.len() && text_byte(out[i]) {
            continue;
        }
        if i - at >= MIN_STRETCH {
            if w > 0 {
                out[w] = b'\n';
                w += 1;
            }
            out.copy_within(at..i, w);
            w += i - at;
        }
        at = i + 1;
    }
    out.truncate(w);
    match w {
        0 => Decoded::Not,
        _ => Decoded::Stretch,
    }
}

/// Whether every byte of `out` is printable ASCII or white space: a decoding with nothing else
/// in it (`decode_chunked`'s span is left out of the suffix statistics only then).
pub(super) fn clean(out: &[u8]) -> bool {
    out.iter().all(|&c| text_byte(c))
}

/// A byte of text in a decoding: printable ASCII or white space (`read_as_text`, `clean`).
fn text_byte(c: u8) -> bool {
    c.is_ascii_graphic() || matches!(c, b' ' | b'\n' | b'\t' | b'\r')
}

/// Whether decoded bytes are mostly printable text: 8 or more, nine in ten of them `text_byte`s.
fn printable(out: &[u8]) -> bool {
    let printable = out.iter().filter(|&&c| text_byte(c)).count();
    out.len() >= 8 && printable * 10 >= out.len() * 9
}

/// Whether a run is base32 (RFC 4648): 16 bytes or more of `A`–`Z` and `2`–`7`, then `=`
/// padding only, to a multiple of 8 bytes with it.
fn base32_run(run: &[u8]) -> bool {
    let body = run.iter().take_while(|&&b| b != b'=').count();
    run.len() >= 16
        && run.len().is_multiple_of(8)
        && run[..body]
            .iter()
            .all(|&b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
        && run[body..].iter().all(|&b| b == b'=')
        && run.len() - body < 8
}

/// Whether `text` has what `undisguise` could take for markup: an HTML comment or tag
/// (`markup_at`), or `**`, `~~` or `__` (emphasis; `__` between words a space away too). A `<`
/// in a comparison or around a mail address and a lone `*` are none, and are most of code and
/// prose's: `undisguise` is run only where this, `joined_chain`, words spelled out or U+202E
/// say it may undo something.
pub(super) fn markup_possible(text: &[u8]) -> bool {
    markup_from(text, 0, text.len()).is_some()
}

/// The first position in `text[from..to]` where markup may start: a `<` that `markup_at` takes,
/// or a run of two `*`, `~` or `_` (`undisguise` judges a run of `_` as emphasis too).
fn markup_from(text: &[u8], from: usize, to: usize) -> Option<usize> {
    let runs = |i: usize, c: u8| text.get(i + 1) == Some(&c);
    let emphasis = memchr::memchr3_iter(b'*', b'~', b'_', &text[from..to])
        .map(|k| from + k)
        .find(|&i| runs(i, text[i]));
    let to = emphasis.unwrap_or(to);
    memchr::memchr_iter(b'<', &text[from..to])
        .map(|k| from + k)
        .find(|&i| markup_at(&text[i..]).is_some())
        .or(emphasis)
}

/// Where `undisguise` may undo something next (a superset of where it does), read forward
/// through one text: markup (`markup_from`), a token that `joined_token` takes apart, U+202E,
/// and, where words spelled out are looked for, a word spelled out (`spelled_out`) at a line's
/// start or after a space or tab. `undisguise` skips the lines before it: they would be written
/// and dropped. Each kind keeps its next position and is searched again only once the reading
/// has passed it, so each kind's searches cover the text once in all.
struct DisguiseCursor {
    /// The next position of each kind: markup, joint, U+202E, word spelled out; `usize::MAX`
    /// before the first search, the text's length where there is none.
    next: [usize; 4],
    spelled_words: bool,
}

impl DisguiseCursor {
    fn new(spelled_words: bool) -> DisguiseCursor {
        DisguiseCursor {
            next: [usize::MAX; 4],
            spelled_words,
        }
    }

    /// The first position at or after `from` where something may be undone, or the end of
    /// the search, `DISGUISE_HORIZON` bytes on (the line there is read as a place where
    /// something may be: a window that stops before it searched no further than it read, so
    /// the windows of one text search it a bounded number of times in all); the text's length
    /// where nothing may be.
    fn at(&mut self, text: &[u8], from: usize) -> usize {
        let end = text.len();
        let to = end.min(from.saturating_add(DISGUISE_HORIZON));
        const RLO: &[u8] = "\u{202E}".as_bytes();
        for kind in 0..self.next.len() {
            if self.next[kind] != usize::MAX && self.next[kind] >= from {
                continue;
            }
            let found = match kind {
                0 => markup_from(text, from, to),
                1 => joint_from(text, from, to),
                2 => memchr::memmem::find(&text[from..end.min(to + RLO.len() - 1)], RLO)
                    .map(|k| from + k),
                _ if !self.spelled_words => None,
                _ if spelled_out(&text[from..]) => Some(from),
                _ => spelled_word_after(text, from, to),
            };
            self.next[kind] = found.unwrap_or(to);
        }
        self.next.iter().copied().min().unwrap_or(end)
    }
}

/// Bytes of a line that has undone nothing yet that `undisguise` keeps, once its window is full:
/// the words before a disguise further on the line, which a phrase may begin with.
const LINE_CONTEXT_BYTES: usize = 256;

/// How far `DisguiseCursor` searches from where it is asked: a window of `undisguise` writes at
/// most `MAX_DECODED_BYTES`, and reads on at least three quarters of that before the next.
const DISGUISE_HORIZON: usize = MAX_DECODED_BYTES;

/// The first `_`, `.` or `-` in `text[from..to]` between two letters whose token `joined_token`
/// takes apart (a token is judged once, from its start, which may lie before `from`).
fn joint_from(text: &[u8], from: usize, to: usize) -> Option<usize> {
    let mut judged_to = 0;
    letter_joints(text, from, to, |i| {
        if i < judged_to || lone_joint(text, i) {
            return false;
        }
        let start = token_start(text, i, judged_to);
        let (split, len) = joined_token(&text[start..]);
        judged_to = start + len;
        split
    })
}

/// Whether the joint at `i` (a `.`, `_` or `-` between two letters) is the only one in its
/// token (letters, `.`, `_` and `-`), as in `well-known` or `os.path`: `joined_token` takes a
/// token apart only at two joints or more, so such a token need not be judged. Looks at most
/// `MAX_TOKEN_BYTES` each way, and says false where it would look further or where the token
/// goes on past a run of two joint bytes (`a--b-c`): those are judged.
fn lone_joint(text: &[u8], i: usize) -> bool {
    let joint = |b: u8| matches!(b, b'.' | b'_' | b'-');
    // after the letters that follow it, joint bytes and then no letter
    let end = (i + 1 + MAX_TOKEN_BYTES).min(text.len());
    let mut j = i + 1;
    while j < end && text[j].is_ascii_alphabetic() {
        j += 1;
    }
    while j < end && joint(text[j]) {
        j += 1;
    }
    if (j == end && end < text.len()) || text.get(j).is_some_and(u8::is_ascii_alphabetic) {
        return false;
    }
    // before the letters that precede it, joint bytes and then no letter
    let stop = i.saturating_sub(MAX_TOKEN_BYTES);
    let mut k = i;
    while k > stop && text[k - 1].is_ascii_alphabetic() {
        k -= 1;
    }
    while k > stop && joint(text[k - 1]) {
        k -= 1;
    }
    !((k == stop && stop > 0) || (k > 0 && text[k - 1].is_ascii_alphabetic()))
}

/// Whether `text[i]` is a joint: a `.`, `_` or `-` with an ASCII letter on either side. The one
/// rule `letter_joints`, its references and `joined_token` count joints by.
fn letter_joint(text: &[u8], i: usize) -> bool {
    matches!(text.get(i), Some(b'.' | b'_' | b'-'))
        && i > 0
        && text[i - 1].is_ascii_alphabetic()
        && text.get(i + 1).is_some_and(u8::is_ascii_alphabetic)
}

/// `joint_from` with each `.`, `_` and `-` found by `memchr3` and its letters looked at: the
/// reference the block form is tested against (prose has a `.` or `-` every few dozen bytes,
/// and a call per byte found cost more than the masks).
#[cfg_attr(all(target_arch = "x86_64", not(test)), allow(dead_code))]
fn joint_from_scalar(text: &[u8], from: usize, to: usize) -> Option<usize> {
    let mut judged_to = 0;
    for i in memchr::memchr3_iter(b'.', b'_', b'-', &text[from..to]).map(|k| from + k) {
        if i < judged_to || !letter_joint(text, i) {
            continue;
        }
        let start = token_start(text, i, judged_to);
        let (split, len) = joined_token(&text[start..]);
        if split {
            return Some(i);
        }
        judged_to = start + len;
    }
    None
}

/// Calls `f` with each `.`, `_` or `-` in `text[from..to]` with an ASCII letter on either side
/// (in the whole text), lowest first, until `f` says true; returns where it did.
fn letter_joints(
    text: &[u8],
    from: usize,
    to: usize,
    f: impl FnMut(usize) -> bool,
) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    return crate::threat::simd::dispatch!(
        letter_joints_avx512,
        letter_joints_avx2,
        letter_joints_sse2,
        (text, from, to, f)
    );
    #[cfg(not(target_arch = "x86_64"))]
    {
        let mut f = f;
        (from..to).find(|&i| letter_joint(text, i) && f(i))
    }
}

/// `letter_joints`' byte classes: ASCII letters; `.`, `_` and `-`.
#[cfg(target_arch = "x86_64")]
struct JointClasses;

#[cfg(target_arch = "x86_64")]
impl crate::threat::simd::Classes<2> for JointClasses {
    #[inline(always)]
    unsafe fn classes<V: crate::threat::simd::Vector>(v: V) -> [V; 2] {
        // SAFETY: `V`'s instruction set is present (this function's safety).
        unsafe { [v.letter(), v.eq(b'.').or(v.eq(b'_')).or(v.eq(b'-'))] }
    }
    const TABLE: Option<[u8; 128]> = Some({
        let mut t = [0u8; 128];
        let mut b = 0;
        while b < 128 {
            let c = b as u8;
            t[b] = c.is_ascii_alphabetic() as u8 | (matches!(c, b'.' | b'_' | b'-') as u8) << 1;
            b += 1;
        }
        t
    });
}

/// `letter_joints` 64 bytes a step: the block's letters and joint bytes as masks, a joint kept
/// where a letter is on either side (the bytes just outside the block looked at alone).
/// # Safety
/// `V`'s instruction set is present.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn letter_joints_with<V: crate::threat::simd::Vector>(
    text: &[u8],
    from: usize,
    to: usize,
    mut f: impl FnMut(usize) -> bool,
) -> Option<usize> {
    let mut s = from;
    while s < to {
        let mut tail = [b' '; 64];
        let block = crate::threat::simd::block(text, s, &mut tail);
        // SAFETY: `V`'s instruction set is present (this function's safety).
        let [letter, joint] = unsafe { crate::threat::simd::masks::<V, JointClasses, 2>(block) };
        let before = (s > 0 && text[s - 1].is_ascii_alphabetic()) as u64;
        let after = text.get(s + 64).is_some_and(u8::is_ascii_alphabetic) as u64;
        let mut m = joint & (letter << 1 | before) & (letter >> 1 | after << 63);
        if to - s < 64 {
            m &= (1u64 << (to - s)) - 1;
        }
        while m != 0 {
            let i = s + m.trailing_zeros() as usize;
            if f(i) {
                return Some(i);
            }
            m &= m - 1;
        }
        s += 64;
    }
    None
}

#[cfg(target_arch = "x86_64")]
crate::threat::simd::entry_points!(
    "letter_joints",
    letter_joints_with,
    [letter_joints_avx512, letter_joints_avx2, letter_joints_sse2],
    (text: &[u8], from: usize, to: usize, f: impl FnMut(usize) -> bool) -> Option<usize>
);

/// Whether `text` has a token that `joined_token` takes apart at its `_` or `.` (`undisguise`
/// is run only then, or where other markup is): one look per `_` or `.` between two letters,
/// each token judged once.
pub(super) fn joined_chain(text: &[u8]) -> bool {
    joint_from(text, 0, text.len()).is_some()
}

/// Whether markup is left out: only where it sits beside a word, a letter right before or after
/// it, or a letter a space away on both sides. Inside a word (`pre<b>vious`) it is dropped and
/// counted as hiding; beside words (`**Ignore** **all**`, `<b>Ignore</b> <b>all</b>`) it is
/// dropped and counted as formatting (whose findings count less: `Reading::Formatted`, so a
/// Markdown label `**System**:` read as the role line `System:` stays Low). Elsewhere (`a ** b`,
/// `x <br> y` at a line's start) it stays: the caller writes it.
fn within_words(u: &mut Undisguised, out: &[u8], after: &[u8]) -> bool {
    // (a letter right beside it, a letter one space away)
    let before = match out {
        [.., c] if c.is_ascii_alphabetic() => (true, false),
        [.., c, b' '] if c.is_ascii_alphabetic() => (false, true),
        _ => (false, false),
    };
    let next = match after {
        [c, ..] if c.is_ascii_alphabetic() => (true, false),
        [b' ', c, ..] if c.is_ascii_alphabetic() => (false, true),
        _ => (false, false),
    };
    match (before, next) {
        ((true, _), (true, _)) => u.hidden += 1,
        // beside a letter on one side at least (`**Ignore**`, `<b>all</b>`), or a letter a
        // space away on both
        ((true, _), _) | (_, (true, _)) | ((_, true), (_, true)) => u.markup += 1,
        _ => return false,
    }
    true
}

/// A flood `flood_ends` always finds, in bytes (shorter ones, down to half this, where
/// they cover an aligned window).
pub(super) const FLOOD_BYTES: usize = 512;

/// Whether `text` holds a flood of a short unit (`floods` without the order; the tests' name):
/// `FLOOD_BYTES` or more of one unit of up to 4 bytes repeated
/// (`ö ö ö …`, `%%%%…`, `\\n\\n…`), not whitespace or a drawn rule, as hijacking attacks send to
/// push a prompt's instructions out of a model's attention. Such a run covers a whole aligned
/// window of half that, so only those windows are compared with themselves shifted by 1 to 4
/// bytes (a comparison stops at its first difference): a few hundred byte comparisons on any
/// 4 KiB.
#[cfg(test)]
pub(super) fn repetition_flood(text: &[u8]) -> bool {
    flood_ends(text).any(|(_, unit, _)| unit <= FLOOD_UNIT_BYTES)
}

/// Longest unit of a flood that counts beside other evidence (`floods`): a longer one is a word or a phrase repeated
/// (`please `, `om shanti `), which a chant, a song's refrain or a reply read back holds too
/// (the fortieth session's review); such a flood counts only right before an order for a fixed
/// reply (`FLOOD_ORDER`), up to `WORD_FLOOD_UNIT_BYTES`.
pub(super) const FLOOD_UNIT_BYTES: usize = 4;

/// Longest unit of a flood that counts before an order for a fixed reply (`please `, `lol `).
pub(super) const WORD_FLOOD_UNIT_BYTES: usize = 8;

/// Whether a flood's unit is drawn, not written: white space, the ASCII rule and border
/// characters (`=`, `-`, `_`, `~`, `*`, `#`, `.`, `+`, `:`, `|`: `+---+---`, `|:---:|`), dashes
/// (U+2010-2015, U+2E3A-2E3B), box drawing and block elements (U+2500-259F). The window may
/// begin inside a character, so the unit is read from its first character's start, round.
fn drawn_unit(u: &[u8]) -> bool {
    let Some(first) = u.iter().position(|&b| b & 0xc0 != 0x80) else {
        return false;
    };
    let mut round = [0u8; WORD_FLOOD_UNIT_BYTES];
    let Some(round) = round.get_mut(..u.len()) else {
        return false;
    };
    for (i, b) in round.iter_mut().enumerate() {
        *b = u[(first + i) % u.len()];
    }
    std::str::from_utf8(round).is_ok_and(|t| {
        t.chars().all(|c| {
            c.is_ascii_whitespace()
                || matches!(c, '=' | '-' | '_' | '~' | '*' | '#' | '.' | '+' | ':' | '|')
                || matches!(c, '\u{2010}'..='\u{2015}' | '\u{2e3a}'..='\u{2e3b}')
                || matches!(c, '\u{2500}'..='\u{259f}')
        })
    })
}

/// Where each flood ends, with its unit's length and the run's: the first byte past a run of
/// one unit of up to `WORD_FLOOD_UNIT_BYTES` (its shortest, which is not drawn: `drawn_unit`)
/// that covers an aligned window of half `FLOOD_BYTES`, runs in order. Each window is compared
/// once, each run's end is read once (the windows it covers are skipped) and its start at most
/// a window back: linear in the text.
pub(super) fn flood_ends(text: &[u8]) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
    const W: usize = FLOOD_BYTES / 2;
    let mut at = 0;
    std::iter::from_fn(move || {
        while at + W <= text.len() {
            let w = &text[at..at + W];
            // (the window's last two bytes first: on text they differ from those `p` before,
            // and the whole comparison, a call, is skipped; every text is read here)
            let unit = (1..=WORD_FLOOD_UNIT_BYTES).find(|&p| {
                w[W - 1] == w[W - 1 - p] && w[W - 2] == w[W - 2 - p] && w[p..] == w[..W - p]
            });
            at += W;
            if let Some(p) = unit.filter(|&p| !drawn_unit(&w[..p])) {
                let mut end = at;
                while end < text.len() && text[end] == text[end - p] {
                    end += 1;
                }
                // (the window before was no flood, so the run begins less than a window back)
                let window = at - W;
                let mut start = window;
                while start > window.saturating_sub(W) && text[start - 1] == text[start - 1 + p] {
                    start -= 1;
                }
                // (the next window begins past the run: none of it is compared twice)
                at = end.next_multiple_of(W);
                return Some((end, p, end - start));
            }
        }
        None
    })
}

/// An order for a fixed reply, as the catalogue's two patterns after a dismissal or a framed
/// end of the input write it (`patterns.toml`, forty-second session; a test holds that both
/// contain this text): a quoted phrase to say, output, repeat or answer with, the verb and the
/// quote a space, a comma or a colon apart (not `"output": "1"`, a JSON key; not one of
/// several choices, which the catalogue's veto reads); `say … and nothing else` (not `respond
/// with the label and nothing else`, a template's); the reply to be, to begin or to end with a
/// quoted phrase; a quoted phrase to prepend; the answer replaced; the only thing to output; a
/// phrase as the first line of the reply. `print`, `type` and `write` with a quote are orders
/// to people and programs (`type 'make clean'`), not here.
pub(super) const FIXED_REPLY_ORDER: &str = r#"((say|output|repeat|reply|respond|answer)( with| only| just| exactly| verbatim| simply| this| the words?| the phrase| the text| the string| the following( sentence| phrase| text| words?)?| back| after me)*(: ?| |, )("|'|“|「)|say\b[^.!?\n]{1,60}\b(and|but) nothing (else|more)\b|your (entire |whole |only |next |final )?(response|reply|answer|output) (must|should|shall|will)( only)? ((be|consist of|contain)( exactly| only| just| nothing but)?:? ?("|'|“|「)|(start|begin|end) with:? ?("|'|“|「))|(begin|start|end|prefix|preface|prepend) (your|the|each|every) (response|reply|answer|output)s? with:? ?("|'|“|「)|(prepend|prefix) ("|'|“|「)|replace (your|the) (entire |whole |full )?(response|reply|answer|output) with\b|the only thing you (should|must|will|may|can|are to) (say|output|write|print|type|reply|respond|return)\b|(say|print|output|write|type|put) [^.!?\n]{1,60} as the (first|only) (line|word|words|sentence) of (your|the) (response|reply|answer|output)\b)"#;

/// Words that may stand between what clears the way and the order (`Now, say …`, `OK then,
/// you must say …`), as the catalogue's two patterns write them (a test holds that both
/// contain this text).
pub(super) const ORDER_FILLERS: &str = r#"((and|then|now|so|instead|just|simply|only|please|ok|okay|from now on|kindly|you must|you should|you will|you have to|you need to|i want you to)[,;:]? )*"#;

/// Most bytes that are neither ASCII letters nor digits between a flood's end and the order
/// after it.
pub(super) const ORDER_GAP_BYTES: usize = 16;

/// An order for a fixed reply right where a flood ends (`floods`), ASCII case ignored: at most
/// `ORDER_GAP_BYTES` bytes that are not ASCII letters or digits, `ORDER_FILLERS`, then
/// `FIXED_REPLY_ORDER`; run anchored over `FLOOD_ORDER_BYTES` after the flood. Parsed and
/// built as the catalogue's regexes are (`plan::parse`, `view::build_part`: over bytes, ASCII
/// classes and word boundaries; a Unicode word boundary needs a feature only the tests'
/// dependencies enable, and failed the release binary at start).
pub(super) static FLOOD_ORDER: std::sync::LazyLock<MetaRegex> = std::sync::LazyLock::new(|| {
    let re = format!("(?i)[^a-z0-9]{{0,{ORDER_GAP_BYTES}}}{ORDER_FILLERS}{FIXED_REPLY_ORDER}");
    plan::parse(&plan::regex_source(&re))
        .and_then(|hir| view::build_part(&hir, false))
        .expect("FLOOD_ORDER compiles (its text is a constant; a test compiles it)")
});

/// Most bytes after a flood's end that `FLOOD_ORDER` reads: the gap, the fillers and the
/// longest order (`… and nothing else` after 60 bytes of phrase) fit.
pub(super) const FLOOD_ORDER_BYTES: usize = 320;

/// Whether `text` holds a flood of a unit of up to `FLOOD_UNIT_BYTES` (`flood_ends`), and
/// whether any flood (units up to `WORD_FLOOD_UNIT_BYTES`) ends right before an order for a
/// fixed reply (`FLOOD_ORDER`). Every text is read here; kept out of line, where it costs the
/// caller's loops nothing (inlined, it cost `scan_text` 1.5 % of its instructions in the
/// registers it took).
#[inline(never)]
pub(super) fn floods(text: &[u8], cache: &mut regex_automata::meta::Cache) -> (bool, bool) {
    let (mut short, mut ordered) = (false, false);
    for (end, unit, run) in flood_ends(text) {
        short |= unit <= FLOOD_UNIT_BYTES;
        // (a shorter run, a chat's laughter or emoji, may stand before a reply to send: the
        // order counts after padding of `FLOOD_BYTES`, which covers an aligned window wherever
        // it begins)
        if run >= FLOOD_BYTES {
            let after = &text[end..text.len().min(end + FLOOD_ORDER_BYTES)];
            ordered |= FLOOD_ORDER
                .search_with(cache, &Input::new(after).anchored(Anchored::Yes))
                .is_some();
        }
    }
    (short, ordered)
}

/// What `undisguise` read and found.
pub(super) struct Undisguised {
    /// Disguises that hide text: markup inside a word (`pre<!-- x -->vious`), text stored
    /// reversed behind a right-to-left override, a word spelled out letter by letter
    /// (`i g n o r e`, `i.g.n.o.r.e`).
    pub(super) hidden: usize,
    /// Markup left out around words (`**Ignore**`, `<b>…</b>`).
    pub(super) markup: usize,
    /// Words joined by `_` or `.` (`ignore_all_previous_instructions`), taken apart.
    pub(super) inside: usize,
    /// As `Unescaped::read` and `Unescaped::resume`.
    pub(super) read: usize,
    pub(super) resume: usize,
}

/// Most bytes of an HTML comment, or a tag with its attributes, that `undisguise` leaves out.
const MAX_MARKUP_BYTES: usize = 128;

/// The length of the markup at the start of `s` (which starts with `<`): an HTML comment
/// `<!-- … -->` or a tag `<b>`, `</span>`, `<i class="x">` of up to `MAX_MARKUP_BYTES`; None for
/// anything else (`a < b`, `<=`).
fn markup_at(s: &[u8]) -> Option<usize> {
    let s = &s[..s.len().min(MAX_MARKUP_BYTES)];
    if s.starts_with(b"<!--") {
        return memchr::memmem::find(&s[4..], b"-->").map(|n| 4 + n + 3);
    }
    let name = usize::from(s.get(1) == Some(&b'/')) + 1;
    if !s.get(name).is_some_and(u8::is_ascii_alphabetic) {
        return None;
    }
    let end = memchr::memchr(b'>', s)?;
    let inner = &s[name..end];
    let word = inner
        .iter()
        .take_while(|&&b| b.is_ascii_alphanumeric() || b == b'-')
        .count();
    let rest = &inner[word..];
    // `<b>`, `<br/>`, `<x-y>`, `<i class="x">`
    (word <= 16 && (rest.is_empty() || rest == b"/" || rest[0] == b' ') && !inner.contains(&b'<'))
        .then_some(end + 1)
}

/// The decision for the token of letters, `_` and `.` at the start of `s`: whether its `_` and
/// `.` between two letters are word joints to read as spaces (three joints or more, or two or
/// more between single letters: `ignore_all_previous_instructions`, `i.g.n.o.r.e`; not
/// `snake_case`, `os.path`, `e.g.`), and the token's length. A token of single letters is one
/// word spelled out: its joints are left out, not read as spaces (`ignore`, not `i g n o r e`).
fn joined_token(s: &[u8]) -> (bool, usize) {
    let (split, _, len) = joined_token_letters(s);
    (split, len)
}

/// Most bytes of a token of letters, `_`, `.` and `-` judged at once (`joined_token`): a longer
/// one is judged a piece at a time, so that windows that each start inside one giant token read
/// a bounded part of it, not all of it (which was quadratic in the token's length).
const MAX_TOKEN_BYTES: usize = 1024;

/// Where the token of letters, `_`, `.` and `-` that `text[i]` lies in starts, looked for at
/// most `MAX_TOKEN_BYTES` back and not before `judged_to` (where the piece judged before ended).
fn token_start(text: &[u8], i: usize, judged_to: usize) -> usize {
    i - text[i.saturating_sub(MAX_TOKEN_BYTES).max(judged_to).min(i)..i]
        .iter()
        .rev()
        .take_while(|&&b| b.is_ascii_alphabetic() || matches!(b, b'_' | b'.' | b'-'))
        .count()
}

/// `joined_token`, and whether the token's parts are all single letters.
fn joined_token_letters(s: &[u8]) -> (bool, bool, usize) {
    let len = s
        .iter()
        .take(MAX_TOKEN_BYTES)
        .take_while(|&&b| b.is_ascii_alphabetic() || matches!(b, b'_' | b'.' | b'-'))
        .count();
    let t = &s[..len];
    let (mut joints, mut hyphens) = (0, 0);
    for i in (0..t.len()).filter(|&i| letter_joint(t, i)) {
        match t[i] {
            b'-' => hyphens += 1,
            _ => joints += 1,
        }
    }
    let singles = t
        .split(|&b| matches!(b, b'_' | b'.' | b'-'))
        .filter(|p| !p.is_empty())
        .all(|p| p.len() == 1);
    // words joined by hyphens are ordinary English (`state-of-the-art`, taken apart by the
    // normaliser already); letters joined by them are a word spelled out
    let split = (joints >= 3 && hyphens == 0) || (singles && joints + hyphens >= 2);
    (split, singles, len)
}

/// Whether `s` starts a word spelled out letter by letter (three single letters or more, each
/// one space apart: `i g n o r e`); `undisguise` then joins each such word and reads a gap of
/// two spaces or more between them as one space, which the normaliser (whitespace runs are one
/// space, single-letter runs join across them) cannot tell apart.
fn spelled_out(s: &[u8]) -> bool {
    s.len() >= 5
        && (0..3).all(|k| {
            s.get(2 * k).is_some_and(u8::is_ascii_alphabetic)
                && (k == 2 || s.get(2 * k + 1) == Some(&b' '))
        })
        && !s.get(1 + 4).is_some_and(u8::is_ascii_alphanumeric)
}

/// Whether a word spelled out letter by letter (`spelled_out`) starts anywhere in `text`: at its
/// start or after a space, tab or line break, where `undisguise` looks for one. A word spelled
/// out on each line (`i g n o r e` / `a l l` / …) reads as one run of letters to the normaliser,
/// and only `undisguise` gives its words back.
pub(super) fn spelled_word_starts(text: &[u8]) -> bool {
    spelled_out(text) || spelled_word_after(text, 0, text.len()).is_some()
}

/// The first space, tab or line break in `text[from..to]` that a word spelled out letter by
/// letter (`spelled_out`) follows; the word may run past `to`.
fn spelled_word_after(text: &[u8], from: usize, to: usize) -> Option<usize> {
    let to = to.min(text.len());
    if from >= to {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    return crate::threat::simd::dispatch!(
        spelled_word_after_avx512,
        spelled_word_after_avx2,
        spelled_word_after_sse2,
        (text, from, to)
    );
    #[cfg(not(target_arch = "x86_64"))]
    spelled_word_after_scalar(text, from, to)
}

/// `spelled_word_after`, a `spelled_out` look after each space, tab or line break: the
/// reference the block form is tested against (a call per word cost more than the masks, 6 %
/// of a scan of English where words spelled out are looked for).
#[cfg_attr(all(target_arch = "x86_64", not(test)), allow(dead_code))]
fn spelled_word_after_scalar(text: &[u8], from: usize, to: usize) -> Option<usize> {
    memchr::memchr3_iter(b' ', b'\n', b'\t', &text[from..to])
        .map(|k| from + k)
        .find(|&b| spelled_out(&text[b + 1..]))
}

/// `spelled_word_starts`' byte classes: ASCII letters, letters and digits, the space, and the
/// bytes a word may start after (space, tab, line feed).
#[cfg(target_arch = "x86_64")]
struct SpelledClasses;

#[cfg(target_arch = "x86_64")]
impl crate::threat::simd::Classes<4> for SpelledClasses {
    #[inline(always)]
    unsafe fn classes<V: crate::threat::simd::Vector>(v: V) -> [V; 4] {
        // SAFETY: `V`'s instruction set is present (this function's safety).
        unsafe {
            let space = v.eq(b' ');
            [
                v.letter(),
                v.letter().or(v.range(b'0', 10)),
                space,
                space.or(v.eq(b'\n')).or(v.eq(b'\t')),
            ]
        }
    }
    const TABLE: Option<[u8; 128]> = Some({
        let mut t = [0u8; 128];
        let mut b = 0;
        while b < 128 {
            let c = b as u8;
            t[b] = c.is_ascii_alphabetic() as u8
                | (c.is_ascii_alphanumeric() as u8) << 1
                | ((c == b' ') as u8) << 2
                | (matches!(c, b' ' | b'\n' | b'\t') as u8) << 3;
            b += 1;
        }
        t
    });
}

/// `spelled_word_after` 64 bytes a step: a space, tab or line break, then a letter, a space, a
/// letter, a space, a letter, then no letter or digit (`spelled_out`), each condition a block
/// mask shifted into place; the next block's masks give the bytes the last positions of a
/// block look ahead at (past the text: no class). Blocks lie at multiples of 64; the first and
/// last are cut to `from..to`.
/// # Safety
/// `V`'s instruction set is present.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn spelled_word_after_with<V: crate::threat::simd::Vector>(
    text: &[u8],
    from: usize,
    to: usize,
) -> Option<usize> {
    use crate::threat::simd::block_masks;
    // SAFETY (both calls): `V`'s instruction set is present (this function's safety).
    let mut cur = unsafe { block_masks::<V, SpelledClasses, 4>(text, from / 64) };
    for k in from / 64..to.div_ceil(64) {
        // SAFETY: as above.
        let next = unsafe { block_masks::<V, SpelledClasses, 4>(text, k + 1) };
        // class `c` of the byte `j` after each position of this block
        let ahead = |c: usize, j: u32| ((cur[c] as u128 | (next[c] as u128) << 64) >> j) as u64;
        let [letter, alnum, space, boundary] = [0, 1, 2, 3];
        let mut after = cur[boundary]
            & ahead(letter, 1)
            & ahead(space, 2)
            & ahead(letter, 3)
            & ahead(space, 4)
            & ahead(letter, 5)
            & !ahead(alnum, 6);
        if k == from / 64 {
            after &= u64::MAX << (from % 64);
        }
        if to - k * 64 < 64 {
            after &= (1u64 << (to - k * 64)) - 1;
        }
        if after != 0 {
            return Some(k * 64 + after.trailing_zeros() as usize);
        }
        cur = next;
    }
    None
}

#[cfg(target_arch = "x86_64")]
crate::threat::simd::entry_points!(
    "spelled_word_after",
    spelled_word_after_with,
    [spelled_word_after_avx512, spelled_word_after_avx2, spelled_word_after_sse2],
    (text: &[u8], from: usize, to: usize) -> Option<usize>
);

/// Whether `text` has words spelled out letter by letter with wider gaps between them (a
/// single letter, two spaces or more or a tab, a single letter): where `undisguise` is worth
/// running. Asked of most English texts (wherever the normaliser saw single letters in a row),
/// and never true of the speed corpus's: its search for each double space cost a tenth of a
/// manual page's scan, so the blocks' masks find the candidates (`spelled_out_gaps_with`).
pub(super) fn spelled_out_gaps(text: &[u8]) -> bool {
    #[cfg(target_arch = "x86_64")]
    return crate::threat::simd::dispatch!(
        spelled_out_gaps_avx512,
        spelled_out_gaps_avx2,
        spelled_out_gaps_sse2,
        (text)
    );
    #[cfg(not(target_arch = "x86_64"))]
    spelled_out_gaps_scalar(text)
}

/// `spelled_out_gaps` after each double space and tab: the reference the block form is tested
/// against. (A gap is measured only after a single letter: measuring every match inside a long
/// run of blanks first was quadratic in the run.) Its matches do not overlap, so a run of
/// blanks is judged where it begins, and a run that begins with a space and then a tab is none.
#[cfg_attr(all(target_arch = "x86_64", not(test)), allow(dead_code))]
fn spelled_out_gaps_scalar(text: &[u8]) -> bool {
    let single = |i: usize| {
        text.get(i).is_some_and(u8::is_ascii_alphabetic)
            && (i == 0 || matches!(text[i - 1], b' ' | b'\t'))
            && text.get(i + 1).is_none_or(|&b| b == b' ' || b == b'\t')
    };
    // (a gap is measured only after a single letter: measuring every match inside a long run
    // of blanks first was quadratic in the run)
    let gap = |i: usize| {
        i > 0
            && single(i - 1)
            && single(
                i + text[i..]
                    .iter()
                    .take_while(|&&b| b == b' ' || b == b'\t')
                    .count(),
            )
    };
    memchr::memmem::find_iter(text, b"  ").any(gap) || memchr::memchr_iter(b'\t', text).any(gap)
}

/// Whether blanks after the single letter at `p`, then a single letter, follow (the second
/// half of a gap: `spelled_out_gaps`). Reads the run of blanks after `p`.
fn gap_closes(text: &[u8], p: usize) -> bool {
    let blank = |b: &u8| matches!(b, b' ' | b'\t');
    let j = p + 1 + text[p + 1..].iter().take_while(|&b| blank(b)).count();
    text.get(j).is_some_and(u8::is_ascii_alphabetic) && text.get(j + 1).is_none_or(blank)
}

/// `spelled_out_gaps`' byte classes: ASCII letters, the space, the tab.
#[cfg(target_arch = "x86_64")]
struct GapClasses;

#[cfg(target_arch = "x86_64")]
impl crate::threat::simd::Classes<3> for GapClasses {
    #[inline(always)]
    unsafe fn classes<V: crate::threat::simd::Vector>(v: V) -> [V; 3] {
        // SAFETY: `V`'s instruction set is present (this function's safety).
        unsafe { [v.letter(), v.eq(b' '), v.eq(b'\t')] }
    }
    const TABLE: Option<[u8; 128]> = Some({
        let mut t = [0u8; 128];
        let mut b = 0;
        while b < 128 {
            let c = b as u8;
            t[b] = c.is_ascii_alphabetic() as u8
                | ((c == b' ') as u8) << 1
                | ((c == b'\t') as u8) << 2;
            b += 1;
        }
        t
    });
}

/// `spelled_out_gaps` 64 bytes a step: a gap can begin only at a letter after a blank (or at
/// the text's start) followed by two spaces or a tab, which the block masks give at once; each
/// such letter is then read on by `gap_closes`. A run of blanks has one letter before it, so
/// each is read once: linear. Blocks past the text have no class.
/// # Safety
/// `V`'s instruction set is present.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn spelled_out_gaps_with<V: crate::threat::simd::Vector>(text: &[u8]) -> bool {
    use crate::threat::simd::block_masks;
    // SAFETY (both calls): `V`'s instruction set is present (this function's safety).
    let mut cur = unsafe { block_masks::<V, GapClasses, 3>(text, 0) };
    // whether the byte before the block is a blank (before the text: as if one)
    let mut blank_before = 1u64;
    for k in 0..text.len().div_ceil(64) {
        // SAFETY: as above.
        let next = unsafe { block_masks::<V, GapClasses, 3>(text, k + 1) };
        // class `c` of the byte `j` after each position of this block
        let ahead = |c: usize, j: u32| ((cur[c] as u128 | (next[c] as u128) << 64) >> j) as u64;
        let [letter, space, tab] = [0, 1, 2];
        let blank = cur[space] | cur[tab];
        let mut starts = cur[letter]
            & (blank << 1 | blank_before)
            & (ahead(space, 1) & ahead(space, 2) | ahead(tab, 1));
        while starts != 0 {
            if gap_closes(text, k * 64 + starts.trailing_zeros() as usize) {
                return true;
            }
            starts &= starts - 1;
        }
        blank_before = blank >> 63;
        cur = next;
    }
    false
}

#[cfg(target_arch = "x86_64")]
crate::threat::simd::entry_points!(
    "spelled_out_gaps",
    spelled_out_gaps_with,
    [spelled_out_gaps_avx512, spelled_out_gaps_avx2, spelled_out_gaps_sse2],
    (text: &[u8]) -> bool
);

/// Writes the lines of `text` that hold a disguise an eye reads through to `out`, the disguises
/// undone, until `MAX_DECODED_BYTES` of output: HTML comments and tags and Markdown emphasis (`**`, `__`,
/// `~~`) left out, words joined by `_` or `.` (`joined_token`) apart, and text behind a
/// right-to-left override (U+202E, to U+202C or the line's end) reversed, as it shows. Linear:
/// each byte is looked at a bounded number of times (a token twice, markup up to
/// `MAX_MARKUP_BYTES` once); nothing is written past `MAX_DECODED_BYTES`.
pub(super) fn undisguise(text: &[u8], out: &mut Vec<u8>, spelled_words: bool) -> Undisguised {
    undisguise_lines::<true>(text, out, spelled_words, true)
}

/// `undisguise` with the text behind a right-to-left override left in the order it is stored,
/// which is the order a model reads: a lone U+202E before an injection split by markup
/// (`ig<b></b>nore all pr<b></b>evious …`) had the line reversed, its markup with it, and the
/// injection read as neither (review 41, third round).
pub(super) fn undisguise_in_order(
    text: &[u8],
    out: &mut Vec<u8>,
    spelled_words: bool,
) -> Undisguised {
    undisguise_lines::<true>(text, out, spelled_words, false)
}

/// `undisguise`, which skips lines before the next place something may be undone where `SKIP`
/// (`DisguiseCursor`), and writes and drops them where not (the reference its tests hold it to).
fn undisguise_lines<const SKIP: bool>(
    text: &[u8],
    out: &mut Vec<u8>,
    spelled_words: bool,
    reverse: bool,
) -> Undisguised {
    const RLO: &[u8] = "\u{202E}".as_bytes();
    const PDF: &[u8] = "\u{202C}".as_bytes();
    // bytes where something may start: markup, a joint, a line's end, U+202E's first byte, and
    // a space (before a word spelled out: looked at only where `spelled_words`)
    static STOP: [bool; 256] = {
        let mut t = [false; 256];
        let mut k = 0;
        let stops = b"<*~_.-\n\xe2";
        while k < stops.len() {
            t[stops[k] as usize] = true;
            k += 1;
        }
        t
    };
    out.clear();
    let mut u = Undisguised {
        hidden: 0,
        markup: 0,
        inside: 0,
        read: 0,
        resume: usize::MAX,
    };
    let mark = MAX_DECODED_BYTES - UNESCAPE_OVERLAP;
    let letter = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphabetic);
    let mut i = 0;
    // the tokens up to here were judged by `joined_token`; up to `joined_to`, `_` and `.`
    // between letters are joints, read as spaces (or, in a word spelled out, left out)
    let (mut judged_to, mut joined_to, mut spelled) = (0, 0, false);
    // Only lines where something was undone are written: where the current line began in
    // `out`, and the disguises counted before it (the rest is what the text itself reads, and
    // reading it twice cost code and Markdown twice the scan)
    let (mut line_at, mut undone_before) = (0, 0);
    // the next place where something may be undone (`DisguiseCursor`): the lines before it are
    // skipped, at the text's start and after each line that undid nothing
    let mut cursor = DisguiseCursor::new(spelled_words);
    let mut next = match SKIP {
        true => cursor.at(text, 0),
        false => 0,
    };
    i = line_start(text, i, next);
    // where the current line began in the text, and where the line of the last U+202E ends
    let (mut line_in, mut line_end) = (i, 0);
    // a word spelled out at the very start
    let mut spelled_at = spelled_words && spelled_out(&text[i..]);
    while i < text.len() {
        if out.len() >= MAX_DECODED_BYTES {
            // A line that has undone nothing yet is kept only as its last `LINE_CONTEXT_BYTES`
            // (the words a disguise later on it may continue): a long line that undoes nothing
            // does not end the window, and the lines after it are read in the same one.
            let pending = u.hidden + u.inside + u.markup == undone_before;
            if !pending || out.len() - line_at <= 2 * LINE_CONTEXT_BYTES {
                break;
            }
            out.drain(line_at..out.len() - LINE_CONTEXT_BYTES);
            if u.resume != usize::MAX && u.resume >= line_in {
                u.resume = usize::MAX;
            }
        }
        if spelled_at {
            // words spelled out letter by letter: each joined, a gap of two spaces or more one
            // space
            spelled_at = false;
            let room = MAX_DECODED_BYTES - out.len();
            let mut j = i;
            let mut written = 0;
            while j < text.len() && written < room {
                let c = text[j];
                let single = c.is_ascii_alphabetic()
                    && text.get(j + 1).is_none_or(|&b| !b.is_ascii_alphanumeric());
                if !single {
                    break;
                }
                out.push(c);
                written += 1;
                j += 1;
                let gap = text[j..]
                    .iter()
                    .take_while(|&&b| b == b' ' || b == b'\t')
                    .count();
                let next_single = text.get(j + gap).is_some_and(u8::is_ascii_alphabetic)
                    && text
                        .get(j + gap + 1)
                        .is_none_or(|&b| !b.is_ascii_alphanumeric());
                if gap == 0 || !next_single {
                    break;
                }
                // a wider gap, or a tab, between two words
                if (gap >= 2 || text[j..j + gap].contains(&b'\t')) && written < room {
                    out.push(b' ');
                    written += 1;
                }
                j += gap;
            }
            u.hidden += 1;
            i = j;
            continue;
        }
        // copy up to the next byte where something may start
        let k = text[i..]
            .iter()
            .position(|&b| STOP[b as usize] || (spelled_words && (b == b' ' || b == b'\t')))
            .unwrap_or(text.len() - i);
        let take = k.min(MAX_DECODED_BYTES - out.len());
        copy_noting(out, &text[i..i + take], i, mark, &mut u.resume);
        i += take;
        if i >= text.len() {
            break;
        }
        if take < k {
            // the window is full (or only this line's start is to be let go: above)
            continue;
        }
        if u.resume == usize::MAX && out.len() >= mark {
            u.resume = i;
        }
        let b = text[i];
        match b {
            b'\n' => {
                if u.hidden + u.inside + u.markup == undone_before {
                    out.truncate(line_at);
                } else {
                    out.push(b'\n');
                }
                (line_at, undone_before) = (out.len(), u.hidden + u.inside + u.markup);
                i += 1;
                if SKIP && next < i {
                    next = cursor.at(text, i);
                }
                i = line_start(text, i, next);
                line_in = i;
                spelled_at = spelled_words && spelled_out(&text[i..]);
                continue;
            }
            b' ' | b'\t' => {
                out.push(b);
                i += 1;
                spelled_at = spelled_out(&text[i..]);
                continue;
            }
            b'_' | b'.' | b'-' if letter(out.last()) && letter(text.get(i + 1)) => {
                // the first joint of a token not judged yet: judge the whole token, from its
                // start (what was written of it is as the text has it: letters)
                if i >= judged_to {
                    let start = token_start(text, i, judged_to);
                    let (split, singles, len) = joined_token_letters(&text[start..]);
                    judged_to = start + len;
                    if split {
                        (joined_to, spelled) = (start + len, singles);
                        match singles {
                            true => u.hidden += 1,
                            false => u.inside += 1,
                        }
                    }
                }
                if i < joined_to {
                    if !spelled {
                        out.push(b' ');
                    }
                    i += 1;
                    continue;
                }
            }
            _ => {}
        }
        match b {
            b'<' => {
                if let Some(len) = markup_at(&text[i..]) {
                    if !within_words(&mut u, out, &text[i + len..]) {
                        let room = MAX_DECODED_BYTES - out.len();
                        out.extend_from_slice(&text[i..i + len.min(room)]);
                    }
                    i += len;
                    continue;
                }
            }
            b'*' | b'~' | b'_' => {
                let n = text[i..].iter().take_while(|&&c| c == b).count();
                if n >= 2 {
                    if !within_words(&mut u, out, &text[i + n..]) {
                        let room = MAX_DECODED_BYTES - out.len();
                        out.extend_from_slice(&text[i..i + n.min(room)]);
                    }
                    i += n;
                    continue;
                }
            }
            0xE2 if reverse && text[i..].starts_with(RLO) => {
                // to the line's end or the first U+202C on the line, whichever comes first
                let from = i + RLO.len();
                let span = &text[from..];
                // (the line's end is found once a line: overrides one after another on one long
                // line each searched to it, which was quadratic)
                if line_end < from {
                    line_end = from + memchr::memchr(b'\n', span).unwrap_or(span.len());
                }
                let line = line_end - from;
                let pdf = memchr::memmem::find(&span[..line], PDF);
                let end = pdf.unwrap_or(line).min(MAX_DECODED_BYTES - out.len());
                // whole characters, last first (a cut character at the end is left out)
                let chars = std::str::from_utf8(&span[..end]).unwrap_or_else(|e| {
                    std::str::from_utf8(&span[..e.valid_up_to()]).unwrap_or("")
                });
                for c in chars.chars().rev() {
                    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                }
                u.hidden += 1;
                i = from + end + if pdf == Some(end) { PDF.len() } else { 0 };
                continue;
            }
            _ => {}
        }
        out.push(b);
        i += 1;
    }
    if u.hidden + u.inside + u.markup == undone_before {
        out.truncate(line_at);
    }
    u.read = i;
    u.resume = u.resume.min(i);
    u
}

/// The start of the line of `text` that holds position `at`, looked for from `from` (a line's
/// start) on: `from` where `at` is on its line or before it, the text's end where `at` is past
/// it.
fn line_start(text: &[u8], from: usize, at: usize) -> usize {
    if at >= text.len() {
        return text.len();
    }
    match memchr::memrchr(b'\n', &text[from.min(at)..at]) {
        Some(k) => from + k + 1,
        None => from,
    }
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
    /// Escapes that decoded to a shell control byte (`;`, `|`, a backtick, `$`; from a byte
    /// escape, `%XX` or `\xXX`, a line break or `&` after `&` too): a payload escapes its
    /// separator to pass a filter (`%3Bid`, `%7Cid`, `%26%26id`, `%C0%BBid`, `\u003bid`), and
    /// one is enough to read it unescaped. Also a separator look-alike escaped as a character
    /// (`&#x2215;`, `%u2215`), and a separator or control by its HTML5 name (`&sol;`,
    /// `&dollar;`): hidden from the path reading or the command patterns.
    pub(super) controls: usize,
    /// Escapes that decoded to a path's separator or dot (`/`, `\`, `.`, a look-alike): only
    /// then are the unescaped reading's path-like tokens judged (judging every reading's cost
    /// Chinese and Russian texts with escapes 30 µs at p99).
    pub(super) path: usize,
    /// Bytes of the text read: all of it, or up to where the output filled.
    pub(super) read: usize,
    /// Where the next window starts: the input byte whose output begins the last
    /// `UNESCAPE_OVERLAP` bytes of this one (`read` where the output did not fill).
    pub(super) resume: usize,
}

/// Copies `raw`, the text from input byte `at` on, to `out` as it is, and where this copy reaches
/// output byte `mark` and no earlier one did (`resume` still `usize::MAX`), notes in `resume` the
/// input byte copied there: where the next window of a reading starts (`Unescaped::resume`).
pub(super) fn copy_noting(
    out: &mut Vec<u8>,
    raw: &[u8],
    at: usize,
    mark: usize,
    resume: &mut usize,
) {
    if *resume == usize::MAX && out.len() + raw.len() >= mark {
        *resume = at + mark.saturating_sub(out.len());
    }
    out.extend_from_slice(raw);
}

/// Writes `text` to `out` with its escapes decoded until `MAX_DECODED_BYTES` of output:
/// percent-encoding (`%69`; `%2569` and up to four layers of `25` as the same byte encoded
/// again; `%u0069`), HTML character references (`&#105;`, `&#x69;`, with or without the `;`, up
/// to 10 digits with leading zeros, `&lt; &gt; &amp; &quot; &apos; &nbsp;`, and the HTML5 names
/// of `/ \ . ; | $ ` %` and of the separator look-alikes, `&sol;`, `&frasl;` and the like), and
/// `\uXXXX` (a surrogate pair joined), `\u{X…}`, `\UXXXXXXXX` and `\xXX` escapes. `%XX` and `\xXX` stand
/// for bytes (escaped UTF-8 comes together again), the others for characters; a code point that
/// is no character becomes U+FFFD. Linear: each byte is copied or decoded once; nothing is
/// written past `MAX_DECODED_BYTES`, so a buffer of that capacity never grows.
pub(super) fn unescape(text: &[u8], out: &mut Vec<u8>) -> Unescaped {
    out.clear();
    let mut u = Unescaped {
        escapes: 0,
        letters: 0,
        controls: 0,
        path: 0,
        read: 0,
        resume: usize::MAX,
    };
    let mark = MAX_DECODED_BYTES - UNESCAPE_OVERLAP;
    let mut i = 0;
    while i < text.len() {
        let k = memchr::memchr3(b'%', b'&', b'\\', &text[i..]).unwrap_or(text.len() - i);
        let room = MAX_DECODED_BYTES - out.len();
        let take = k.min(room);
        copy_noting(out, &text[i..i + take], i, mark, &mut u.resume);
        i += take;
        if k > room || i >= text.len() {
            break;
        }
        let (bytes, width, consumed, letter, control) = match escape_at(&text[i..]) {
            Some((Escaped::Byte(b), len)) => {
                // (`&` only doubled: one is a nested query string's, `?q=dog%26cat`)
                let control = matches!(b, b';' | b'|' | b'`' | b'$' | b'\n' | b'\r')
                    || (b == b'&' && out.last() == Some(&b'&'));
                ([b, 0, 0, 0], 1, len, b.is_ascii_alphanumeric(), control)
            }
            Some((Escaped::Char(c), len)) => {
                let ch = char::from_u32(c).unwrap_or('\u{FFFD}');
                let mut buf = [0u8; 4];
                let w = ch.encode_utf8(&mut buf).len();
                // (`\u003b`, `%u007c`: a separator escaped as a character. Not a line break, not
                // `\u0026\u0026`, which Go's JSON writes for every `&&`, and not a character
                // reference, markup's own: `&#59;`, `&amp;&amp;`)
                // A separator look-alike escaped (`&#x2215;`, `%u2215`), or a separator or a
                // shell control by HTML5's names (`&sol;`, `&dollar;`), is escaped only to hide
                // it: markup writes those plainly.
                let control = (text[i] != b'&' && matches!(ch, ';' | '|' | '`' | '$'))
                    || crate::inputs::SEPARATOR_LOOKALIKES.contains(&ch)
                    || (matches!(ch, '/' | '\\' | ';' | '|' | '`' | '$')
                        && text[i] == b'&'
                        && text.get(i + 1).is_some_and(u8::is_ascii_alphabetic));
                (buf, w, len, ch.is_ascii_alphanumeric(), control)
            }
            None => ([text[i], 0, 0, 0], 1, 1, false, false),
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
            u.controls += usize::from(control);
            u.path += usize::from(path_byte(&bytes[..width]));
        }
        i += consumed;
    }
    u.read = i;
    u.resume = u.resume.min(i);
    u
}

/// Whether an escape's output is a path's separator or dot: `/`, `\`, `.`, or the UTF-8 of a
/// separator or dot look-alike.
fn path_byte(out: &[u8]) -> bool {
    match out {
        [b'/' | b'\\' | b'.'] => true,
        [_, ..] => core::str::from_utf8(out).is_ok_and(|s| {
            s.chars().all(|c| {
                crate::inputs::SEPARATOR_LOOKALIKES.contains(&c)
                    || crate::inputs::spelling_hides_path(c)
            })
        }),
        [] => false,
    }
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
            let b = hex(s.get(at..at + 2)?)? as u8;
            // an overlong UTF-8 form of an ASCII byte (`%C0%BB` for `;`, `%C0%AE` for `.`,
            // `%E0%80%BB`): no encoder writes one; a decoder that accepts it reads the ASCII byte
            let continuation = |k: usize| {
                (s.get(k) == Some(&b'%'))
                    .then(|| s.get(k + 1..k + 3).and_then(hex))
                    .flatten()
                    .filter(|c| (0x80..0xC0).contains(c))
            };
            if matches!(b, 0xC0 | 0xC1) {
                if let Some(c) = continuation(at + 2) {
                    return Some((Byte(((b & 1) << 6) | (c as u8 & 0x3F)), at + 5));
                }
            }
            if b == 0xE0 {
                if let (Some(c1 @ 0x80..=0x81), Some(c2)) =
                    (continuation(at + 2), continuation(at + 5))
                {
                    return Some((Byte(((c1 as u8 & 1) << 6) | (c2 as u8 & 0x3F)), at + 8));
                }
            }
            Some((Byte(b), at + 2))
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
                // HTML5's names for the separators and operators a payload needs (`&sol;` for
                // `/`): a browser, or a tool that renders its input, reads them so
                (b"&sol;", '/'),
                (b"&bsol;", '\\'),
                (b"&period;", '.'),
                (b"&semi;", ';'),
                (b"&verbar;", '|'),
                (b"&vert;", '|'),
                (b"&dollar;", '$'),
                (b"&grave;", '`'),
                (b"&percnt;", '%'),
                // and of the separator look-alikes (`&frasl;` is `⁄`)
                (b"&frasl;", '\u{2044}'),
                (b"&setminus;", '\u{2216}'),
                (b"&setmn;", '\u{2216}'),
                (b"&Backslash;", '\u{2216}'),
                (b"&smallsetminus;", '\u{2216}'),
                (b"&ssetmn;", '\u{2216}'),
                (b"&sbsol;", '\u{FE68}'),
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

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn joint_classes_table_is_its_class_code() {
        crate::threat::simd::tests::table_agrees::<JointClasses, 2>();
        crate::threat::simd::tests::table_agrees::<SpelledClasses, 4>();
        crate::threat::simd::tests::table_agrees::<GapClasses, 3>();
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]
        /// The block form of `spelled_word_after` finds what a `spelled_out` look after every
        /// space, tab and line break finds, on each instruction set this processor has, with
        /// words spelled out at every offset around the 64-byte blocks and ranges that start
        /// and end anywhere.
        #[test]
        fn spelled_word_after_is_its_scalar_form(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "a", "b", "Z", " ", "  ", "\n", "\t", "1", "ab", "a b", "a b c", "i g n", ".",
                "ö", "x y z1", "word ",
            ]), 0..80),
            cut in (0usize..400, 0usize..400),
        ) {
            let text = parts.concat().into_bytes();
            let (from, to) = (cut.0.min(text.len()), cut.1.min(text.len()));
            let want = (from < to).then(|| spelled_word_after_scalar(&text, from, to)).flatten();
            proptest::prop_assert_eq!(spelled_word_after(&text, from, to), want, "{:?}", String::from_utf8_lossy(&text));
            let whole = spelled_out(&text) || spelled_word_after_scalar(&text, 0, text.len()).is_some();
            proptest::prop_assert_eq!(spelled_word_starts(&text), whole);
            #[cfg(target_arch = "x86_64")]
            if from < to {
                // SAFETY: SSE2 is part of every x86_64 processor.
                proptest::prop_assert_eq!(unsafe { spelled_word_after_sse2(&text, from, to) }, want, "sse2");
                if crate::threat::simd::avx2() {
                    // SAFETY: AVX2 is present (checked).
                    proptest::prop_assert_eq!(unsafe { spelled_word_after_avx2(&text, from, to) }, want, "avx2");
                }
                if crate::threat::simd::avx512() {
                    // SAFETY: AVX-512BW and VBMI are present (checked).
                    proptest::prop_assert_eq!(unsafe { spelled_word_after_avx512(&text, from, to) }, want, "avx512");
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]
        /// The block form of `spelled_out_gaps` answers what a look after every double space
        /// and tab answers, on each instruction set this processor has, with gaps, runs of
        /// blanks and single letters at every offset around the 64-byte blocks.
        #[test]
        fn spelled_out_gaps_is_its_scalar_form(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "a", "b", "Z", " ", "  ", "   ", "\t", " \t", "\t ", "\n", "1", "ab", "a  b",
                "a\tb", "a \tb", ".", "ö", "x  y  z", "word ", "                ",
            ]), 0..90),
        ) {
            let text = parts.concat().into_bytes();
            let want = spelled_out_gaps_scalar(&text);
            proptest::prop_assert_eq!(spelled_out_gaps(&text), want, "{:?}", String::from_utf8_lossy(&text));
            #[cfg(target_arch = "x86_64")]
            {
                // SAFETY: SSE2 is part of every x86_64 processor.
                proptest::prop_assert_eq!(unsafe { spelled_out_gaps_sse2(&text) }, want, "sse2");
                if crate::threat::simd::avx2() {
                    // SAFETY: AVX2 is present (checked).
                    proptest::prop_assert_eq!(unsafe { spelled_out_gaps_avx2(&text) }, want, "avx2");
                }
                if crate::threat::simd::avx512() {
                    // SAFETY: AVX-512BW and VBMI are present (checked).
                    proptest::prop_assert_eq!(unsafe { spelled_out_gaps_avx512(&text) }, want, "avx512");
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1024))]
        /// The block form of `joint_from` finds the joint the byte-by-byte form finds, in any
        /// part of a text of joined words, spelled-out letters and punctuation, across the
        /// 64-byte blocks.
        #[test]
        fn joint_from_is_its_scalar_form(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "a", "b", "Z", ".", "_", "-", " ", "ab", "ig_nore", "a.b.c", "x-y-z", "e.g.", "1",
                "\n", "os.path", "a_b_c_d", "ö", "well-known", "a.-b", "ab..c", "--", "x-y",
            ]), 0..120),
            cut in (0usize..600, 0usize..600),
        ) {
            let text = parts.concat().into_bytes();
            let (a, b) = (cut.0.min(text.len()), cut.1.min(text.len()));
            let (from, to) = (a.min(b), a.max(b));
            proptest::prop_assert_eq!(
                joint_from(&text, from, to),
                joint_from_scalar(&text, from, to),
                "{:?} {}..{}", String::from_utf8_lossy(&text), from, to
            );
            // every joint, on each instruction set this processor has
            #[cfg(target_arch = "x86_64")]
            {
                let want: Vec<usize> = (from..to).filter(|&i| letter_joint(&text, i)).collect();
                let mut got = Vec::new();
                // SAFETY: SSE2 is part of every x86_64 processor.
                unsafe { letter_joints_sse2(&text, from, to, |i| { got.push(i); false }) };
                proptest::prop_assert_eq!(&got, &want, "sse2");
                if crate::threat::simd::avx2() {
                    got.clear();
                    // SAFETY: AVX2 is present (checked).
                    unsafe { letter_joints_avx2(&text, from, to, |i| { got.push(i); false }) };
                    proptest::prop_assert_eq!(&got, &want, "avx2");
                }
                if crate::threat::simd::avx512() {
                    got.clear();
                    // SAFETY: AVX-512BW and VBMI are present (checked).
                    unsafe { letter_joints_avx512(&text, from, to, |i| { got.push(i); false }) };
                    proptest::prop_assert_eq!(&got, &want, "avx512");
                }
            }
        }
    }

    #[test]
    fn separator_lookalike_bytes_are_the_lists() {
        use crate::inputs::{BEST_FIT_BACKSLASHES, SEPARATOR_LOOKALIKES};
        for c in (0x80..=0xFFFFu32).filter_map(char::from_u32) {
            let mut b = [0u8; 4];
            let want = SEPARATOR_LOOKALIKES.contains(&c) || BEST_FIT_BACKSLASHES.contains(&c);
            assert_eq!(
                separator_lookalike_at(c.encode_utf8(&mut b).as_bytes()),
                want,
                "{c:?}"
            );
        }
    }

    /// A `%` that begins no escape does not make a token a path: `printf`'s formats beside a
    /// name weigh what the name alone weighs (nothing: a bare name is not judged), and an
    /// escape anywhere in a token has it judged as before.
    #[test]
    fn printf_formats_are_not_paths() {
        for t in [
            "%s.pem",
            "id_rsa%s",
            ".env.%d",
            "%s\u{FF1A}\u{7533}\u{8BF7}\u{5185}\u{5B58}\u{5931}\u{8D25}\u{FF1A}%s",
            "100%",
            "%1$s",
            "%zz.htaccess",
            "%u12.pem",
            "%s\u{4E2D}\u{6587}.pem",
            "%+z.pem",
        ] {
            assert_eq!(path_token_weight(t.as_bytes()), 0, "{t}");
        }
        for t in [
            "%2e%2e%2fetc%2fpasswd",
            "id_rsa%00",
            "%s.pem%00",
            "..%c0%af..%c0%afetc%c0%afpasswd",
            "%u002e%u002e%u2215etc%u2215shadow",
            "%s/../../etc/passwd",
            "%s\u{FF0F}etc\u{FF0F}shadow",
            // escapes whose digits some reader decodes past ASCII, judged as written (here by
            // the name they end in): Java's Unicode digits, Node's low bytes
            "%2\u{FF26}etc%2\u{FF26}ssl%2\u{FF26}private%2\u{FF26}server.key",
            "..%\u{662}f..%\u{662}fconfig%\u{662}fmaster.key",
            "%u\u{FF10}\u{FF10}2fkeys.p12",
            "x%\u{12F}\u{12E}\u{12E}\u{12F}etc\u{12F}server.key",
            "x%zz\u{12F}\u{12E}\u{12E}\u{12F}etc\u{12F}server.key",
            // (each token's own answer: the first one's is no)
            "see 5%s ok, y%zz\u{12F}\u{12E}\u{12E}\u{12F}etc\u{12F}server.key",
            "%s\u{15C}\u{12E}\u{12E}\u{15C}keys\u{15C}prod.pfx",
            "id_rsa%+0",
            "id_rsa%-0.png",
        ] {
            assert_eq!(path_token_weight(t.as_bytes()), 6, "{t}");
        }
    }

    /// A token weighs as Java's and Node's lenient decoders read it: the paths they open, not
    /// the spelling; Node's chance readings of prose weigh nothing.
    #[test]
    fn lenient_readings_are_weighed() {
        for t in [
            // Java: digits of other scripts and full-width letters in escapes
            "..%\u{662}f..%\u{662}f..%\u{662}fetc%\u{662}fpasswd",
            "x/..%\u{662}fnotes.txt",
            "/static/%\u{E52}e%\u{E52}e/%\u{E52}e%\u{E52}e/etc/shadow",
            "/home/u/%\u{662}essh/id_rsa",
            "%\u{662}e%\u{662}e%\u{662}f.env",
            // a service that decodes twice: `%25` is `%` first
            "..%25\u{662}f..%25\u{662}fetc%25\u{662}fpasswd",
            // Node: low bytes where a `%` fails
            "x%zz/\u{12E}\u{12E}\u{12F}\u{12E}\u{12E}\u{12F}etc",
            "\u{12E}\u{12E}\u{12F}\u{12E}\u{12E}\u{12F}etc\u{12F}passwd%zz",
            "x%zz/\u{12E}env",
            "x%zz/\u{12E}\u{12E}\u{12F}etc\u{12F}passwd",
            "x%zz\\\u{12E}\u{12E}\u{15C}\u{12E}\u{12E}\u{15C}etc",
            // a `%` Java cannot read elsewhere in the token: a service decodes the path alone
            "http://h/files/..%\u{662}f..%\u{662}fetc%\u{662}fpasswd?v=100%",
            "..%\u{662}f..%\u{662}fetc%\u{662}fpasswd/%s",
            // escapes that are not UTF-8 make Node fall back too
            "%ff/\u{12E}\u{12E}\u{12F}\u{12E}\u{12E}\u{12F}etc",
            "%ff/app/\u{12E}env",
            "%e4%b8\u{12E}\u{12E}\u{12F}\u{12E}\u{12E}\u{12F}etc\u{12F}shadow",
            // a NUL Node's reading makes, beside a secret
            "x%zz\u{125}00\u{12F}etc\u{12F}passwd",
            // review 24: a separator in a surrogate (U+1BC65 is `/e` to Node), an overlong
            // escape of a letter before a twice-decoded Java form, `%u` escapes Node leaves
            "%zz\u{1BC69}d_rsa",
            "\u{1BC65}tc\u{1BC70}asswd%zz",
            "/files/a%c1%81/..%25\u{662}f..%25\u{662}f..%25\u{662}fetc%25\u{662}fpasswd",
            "x%uD800\u{42F}home\u{42F}u\u{42F}\u{12E}ssh\u{42F}id_rsa",
            "%u002e\u{42F}\u{12E}env",
        ] {
            assert_eq!(path_token_weight(t.as_bytes()), 6, "{t}");
        }
        assert_eq!(
            path_token_weight("%\u{662}fproc%\u{662}fmounts".as_bytes()),
            3
        );
        for t in [
            // one step in Node's reading (`../10%.txt`), a chance `%d0` escape beside `\...`,
            // an 8.3 alias's `~0` from `找到`
            "\u{5E2E}\u{5E2E}/10%.txt",
            "\u{4ECE}%d\u{5230}%d\u{4E2D}\u{9009}\u{62E9}UID\\...",
            "%d/%s\u{FF1A}\u{672A}\u{627E}\u{5230}",
            "%zz\u{12E}\u{12E}\u{12F}\u{12E}\u{12E}\u{12F}home",
            // Java's sign forms make a NUL, which Java refuses in a path
            "2026%-01-15/report",
            "100%-0/x",
            "%\u{662}fusr%\u{662}fshare",
            // a `%` Java cannot read beside a step that is a name's (Hindi digits after a `%`)
            "%\u{96F}\u{96F}%..\\data\\in.csv",
            // `到` is `0` to Node: `%到0` reads `%00`, a NUL, which Node refuses in a path
            "\u{5E74}\u{5316}5%\u{5230}0.5%/\u{5E74}",
            "CPU\u{5360}\u{7528}\u{4ECE}100%\u{5230}0%\u{FF0C}\u{89C1}/var/log/syslog",
        ] {
            assert_eq!(path_token_weight(t.as_bytes()), 0, "{t}");
        }
    }

    /// `path_token_weight` as first written: the whole text split into tokens, a percent
    /// escape found by the regex crate.
    fn path_token_weight_reference(text: &[u8]) -> u32 {
        let escape = regex::bytes::Regex::new(
            "(?-u)%([0-9A-Fa-f]{2}|[uU][0-9A-Fa-f]{4}|[\\x80-\\xFF]|[0-9A-Fa-f][\\x80-\\xFF]|[uU][\\x00-\\x7F]{0,3}[\\x80-\\xFF]|[+-][0-9A-Fa-f\\x80-\\xFF])",
        )
        .unwrap();
        text.split(|&c| path_separator(c))
            .filter(|t| {
                t.iter().any(|&c| matches!(c, b'/' | b'\\'))
                    || escape.is_match(t)
                    || (t.contains(&b'%')
                        && String::from_utf8_lossy(t).chars().any(|c| {
                            let units: Vec<u16> = c.encode_utf16(&mut [0; 2]).to_vec();
                            c as u32 > 0xFF
                                && units.iter().any(|u| matches!(u & 0xFF, 0x2E | 0x2F | 0x5C))
                        }))
                    || String::from_utf8_lossy(t).contains(
                        &[
                            &crate::inputs::SEPARATOR_LOOKALIKES[..],
                            &crate::inputs::BEST_FIT_BACKSLASHES[..],
                        ]
                        .concat()[..],
                    )
            })
            .map(path_weight)
            .max()
            .unwrap_or(0)
    }

    proptest::proptest! {
        /// Where none of its gates holds, `undisguise` undoes nothing: the gates skip no text
        /// it would read differently.
        #[test]
        fn undisguise_undoes_nothing_its_gates_pass_over(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "<", "<!--", "-->", "</", "<b>", "</b>", ">", "*", "**", "~", "~~", "_", "__", ".",
                "-", "!", "/", "a", "ig", "nore", "word", " ", "  ", "\n", "\t", "\u{202E}", "1",
                "i g n", "a ", " b", "\r\n", "ö",
            ]), 0..60),
        ) {
            let t = parts.concat();
            let b = t.as_bytes();
            let rlo = memchr::memmem::find(b, "\u{202E}".as_bytes()).is_some();
            if !markup_possible(b) && !joined_chain(b) && !rlo {
                // with and without words spelled out (the normaliser's `letter_runs`)
                let spelled = spelled_out_gaps(b) || spelled_word_starts(b);
                for words in [false, true].into_iter().filter(|&w| !(w && spelled)) {
                    let mut out = Vec::new();
                    let u = undisguise(b, &mut out, words);
                    proptest::prop_assert!(
                        out.is_empty() && u.hidden + u.inside + u.markup == 0,
                        "{:?} ({}) -> {:?}", t, words, String::from_utf8_lossy(&out)
                    );
                }
            }
        }

        /// Skipping the lines before the next place something may be undone (`DisguiseCursor`)
        /// changes nothing that a reading of the whole text in one window writes or counts:
        /// against `undisguise_lines::<false>`, which writes every line and drops those that
        /// undid nothing.
        #[test]
        fn skipping_lines_undoes_what_reading_every_line_undoes(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "<", "<!--", "-->", "</", "<b>", "</b>", "<a@b.c>", ">", "*", "**", "~", "~~",
                "_", "__", ".", "-", "!", "/", "a", "ig", "nore", "word", " ", "  ", "\n",
                "\n\n", "\t", "\u{202E}", "\u{202C}", "1", "i g n", "a ", " b", "\r\n", "ö",
                "x_y_z_w", "e.g.", "a.b.c", "i-g-n", "state-of-the-art",
            ]), 0..80),
            spelled_words: bool,
        ) {
            let t = parts.concat();
            let b = t.as_bytes();
            let (mut skipped, mut every) = (Vec::new(), Vec::new());
            let s = undisguise_lines::<true>(b, &mut skipped, spelled_words, true);
            let e = undisguise_lines::<false>(b, &mut every, spelled_words, true);
            proptest::prop_assert_eq!(
                (s.hidden, s.inside, s.markup, s.read),
                (e.hidden, e.inside, e.markup, e.read),
                "{:?}", t
            );
            proptest::prop_assert_eq!(skipped, every, "{:?}", t);
        }

        /// The word operations say what a byte loop says: a digit, or a small letter right
        /// before a capital, within one of the two 8-byte halves; true near the text's ends.
        #[test]
        fn chunk_marks_near_is_its_byte_rule(
            text in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
            probe in 0usize..40,
        ) {
            let half = |h: &[u8]| {
                h.iter().any(u8::is_ascii_digit)
                    || h.windows(2).any(|w| w[0].is_ascii_lowercase() && w[1].is_ascii_uppercase())
            };
            let want = match (probe.checked_sub(8), text.get(probe..probe + 8)) {
                (Some(a), Some(b)) => half(&text[a..probe]) || half(b),
                _ => true,
            };
            proptest::prop_assert_eq!(chunk_marks_near(&text, probe), want);
        }

        /// Against `str::chars().rev()` line by line: what fits in a window is every line
        /// reversed; a longer text is read in whole lines, or a first line's characters up to
        /// the window, and never past it.
        #[test]
        fn reverse_lines_reverses_each_line_by_characters(
            lines in proptest::collection::vec("[a-zé中😀 .\r]{0,40}", 0..8),
            long in 0usize..3,
        ) {
            let mut text = lines.join("\n");
            if long > 0 {
                text = text.repeat(MAX_DECODED_BYTES / text.len().max(1) * long + 1);
            }
            let mut out = Vec::new();
            let (read, resume) = reverse_lines(text.as_bytes(), &mut out);
            proptest::prop_assert!(out.len() <= MAX_DECODED_BYTES && read <= text.len());
            proptest::prop_assert!(read > 0 || text.is_empty());
            // a window that cut a line starts the next one a seam's overlap back, else at the
            // next line
            let b = text.as_bytes();
            let cut = read < b.len() && b[read] != b'\n' && !b[..read].ends_with(b"\n");
            let want_resume = if cut { read - UNESCAPE_OVERLAP } else { read };
            proptest::prop_assert_eq!(resume, want_resume);
            let taken = &text[..read];
            let want: Vec<String> = taken.split('\n').map(|l| l.chars().rev().collect()).collect();
            let want = want.join("\n");
            proptest::prop_assert_eq!(String::from_utf8(out).unwrap(), want);
        }

        /// Against splitting on blanks and joining reversed: each line's words last first.
        #[test]
        fn reverse_words_reverses_each_lines_words(
            lines in proptest::collection::vec("[a-zé中 \t.;]{0,40}", 0..8),
        ) {
            let text = lines.join("\n");
            let mut out = Vec::new();
            let (read, _) = reverse_words(text.as_bytes(), &mut out);
            proptest::prop_assert_eq!(read, text.len());
            let want: Vec<String> = lines
                .iter()
                .map(|l| {
                    let mut w: Vec<&str> = l.split([' ', '\t']).filter(|w| !w.is_empty()).collect();
                    w.reverse();
                    w.join(" ")
                })
                .collect();
            proptest::prop_assert_eq!(String::from_utf8(out).unwrap(), want.join("\n"));
        }

        /// Against split-and-join: each word's characters reversed, the words in order.
        #[test]
        fn reverse_each_word_reverses_the_characters_of_each_word(
            lines in proptest::collection::vec("[a-zé中 \t.;]{0,40}", 0..8),
        ) {
            let text = lines.join("\n");
            let mut out = Vec::new();
            let (read, _) = reverse_each_word(text.as_bytes(), &mut out);
            proptest::prop_assert_eq!(read, text.len());
            let want: Vec<String> = lines
                .iter()
                .map(|l| {
                    l.split([' ', '\t'])
                        .map(|w| w.chars().rev().collect::<String>())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect();
            proptest::prop_assert_eq!(String::from_utf8(out).unwrap(), want.join("\n"));
        }

        /// Against a character model of ROT13: letters 13 on, all else kept, line by line.
        #[test]
        fn rot13_lines_is_rot13(lines in proptest::collection::vec("[a-zA-Zé中 .;0-9]{0,40}", 0..8)) {
            let text = lines.join("\n");
            let mut out = Vec::new();
            let (read, _) = rot13_lines(text.as_bytes(), &mut out);
            proptest::prop_assert_eq!(read, text.len());
            let want: String = text
                .chars()
                .map(|c| match c {
                    'a'..='m' | 'A'..='M' => (c as u8 + 13) as char,
                    'n'..='z' | 'N'..='Z' => (c as u8 - 13) as char,
                    c => c,
                })
                .collect();
            proptest::prop_assert_eq!(String::from_utf8(out).unwrap(), want);
        }

        /// Against a model (split on the bytes that are not printable, keep the parts of
        /// `MIN_STRETCH` bytes or more): text stays whole, else those stretches stand, one a
        /// line, else nothing.
        #[test]
        fn read_as_text_keeps_text_or_its_longest_stretch(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    "[ -~\n]{0,40}",
                    proptest::strategy::Strategy::prop_map(
                        proptest::collection::vec(0u8..=255, 0..12),
                        |v| v.iter().map(|&b| b as char).collect::<String>(),
                    ),
                ],
                0..6,
            ),
        ) {
            // (a char below 256 stands for its byte)
            let bytes: Vec<u8> = parts.concat().chars().map(|c| c as u32 as u8).collect();
            let mut out = bytes.clone();
            let got = read_as_text(&mut out);
            let is = |c: &u8| c.is_ascii_graphic() || matches!(c, b' ' | b'\n' | b'\t' | b'\r');
            let stretches: Vec<&[u8]> =
                bytes.split(|c| !is(c)).filter(|p| p.len() >= MIN_STRETCH).collect();
            let want = if printable(&bytes) {
                (Decoded::Whole, bytes.clone())
            } else if !stretches.is_empty() {
                (Decoded::Stretch, stretches.join(&b'\n'))
            } else {
                (Decoded::Not, Vec::new())
            };
            proptest::prop_assert_eq!((got, out), want);
        }

        #[test]
        fn path_tokens_are_those_of_the_split_text(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just("/".to_string()),
                    proptest::strategy::Just("../".to_string()),
                    proptest::strategy::Just("..\\".to_string()),
                    proptest::strategy::Just("%2e%2e%2f".to_string()),
                    proptest::strategy::Just("etc".to_string()),
                    proptest::strategy::Just("passwd".to_string()),
                    proptest::strategy::Just("proc".to_string()),
                    proptest::strategy::Just("dev/null".to_string()),
                    proptest::strategy::Just("self/environ".to_string()),
                    proptest::strategy::Just("%00".to_string()),
                    proptest::strategy::Just("..\u{2215}".to_string()),
                    proptest::strategy::Just("\u{29F9}".to_string()),
                    proptest::strategy::Just("\u{2014}\u{FF0C}".to_string()),
                    proptest::strategy::Just("%u2216".to_string()),
                    proptest::strategy::Just("%u002e%u002e%u2215".to_string()),
                    proptest::strategy::Just("%s".to_string()),
                    proptest::strategy::Just("..\u{A5}".to_string()),
                    proptest::strategy::Just("\u{2026}\u{FF0F}".to_string()),
                    proptest::strategy::Just("\u{A9}".to_string()),
                    "[ \t\n\r\x0b\x0c\"'`();|&]{1,3}",
                    "[a-z.%/\\\\]{1,6}",
                    "%[0-9a-fA-FuUsdgz%]{0,5}",
                    "%[0-9a-fuUs+-]{0,3}[\u{662}\u{FF12}\u{FF46}\u{12F}\u{FF1A}\u{4E2D}]",
                    "[\u{12E}\u{12F}\u{15C}\u{4E2E}\u{4E2F}\u{1BC65}\u{1BC70}]{1,3}",
                    "%[sz+-][0-9a-f]?",
                    proptest::prelude::any::<String>(),
                ],
                0..40,
            )
        ) {
            let text = parts.concat();
            proptest::prop_assert_eq!(
                path_token_weight(text.as_bytes()),
                path_token_weight_reference(text.as_bytes())
            );
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn run_class_table_is_its_class_code() {
        crate::threat::simd::tests::table_agrees::<RunClass, 1>();
    }

    proptest::proptest! {
        /// The runs `next_run` gives one after the other are the text's maximal runs of `B64`
        /// bytes `MIN_RUN` long or longer, in order (the text split at every other byte), on
        /// each instruction set this processor has: runs of every length, across block edges.
        #[test]
        fn runs_are_the_long_runs_of_the_split_text(
            pieces in proptest::collection::vec(
                (0usize..70, proptest::sample::select(vec![" ", ",", "\u{e9}", "\n", "."])),
                0..12,
            ),
            letters in proptest::sample::select(vec!["aZ9", "+/=", "-_x", "q"]),
        ) {
            let mut t = Vec::new();
            for (n, gap) in &pieces {
                t.extend(letters.bytes().cycle().take(*n));
                t.extend(gap.bytes());
            }
            let mut want = Vec::new();
            let mut at = 0;
            for piece in t.split(|&b| !B64[b as usize]) {
                if piece.len() >= MIN_RUN {
                    want.push((at, at + piece.len()));
                }
                at += piece.len() + 1;
            }
            type Next = fn(&[u8], usize) -> Option<(usize, usize)>;
            let runs = |next: Next| {
                let (mut got, mut from) = (Vec::new(), 0);
                while let Some((start, end)) = next(&t, from) {
                    got.push((start, end));
                    from = end;
                }
                got
            };
            proptest::prop_assert_eq!(&runs(next_run), &want);
            proptest::prop_assert_eq!(&runs(next_run_scalar), &want);
            #[cfg(target_arch = "x86_64")]
            {
                // SAFETY: SSE2 is part of every x86_64 processor.
                proptest::prop_assert_eq!(&runs(|t, f| unsafe { next_run_sse2(t, f) }), &want);
                if crate::threat::simd::avx2() {
                    // SAFETY: AVX2 is present (checked).
                    let got = runs(|t, f| unsafe { next_run_avx2(t, f) });
                    proptest::prop_assert_eq!(&got, &want);
                }
                if crate::threat::simd::avx512() {
                    // SAFETY: AVX-512BW and VBMI are present (checked).
                    let got = runs(|t, f| unsafe { next_run_avx512(t, f) });
                    proptest::prop_assert_eq!(&got, &want);
                }
            }
        }
    }

    proptest::proptest! {
        /// `path_bytes` finds every byte of its class, lowest first, on each instruction set
        /// this processor has, across block edges and in a short last block, and stops where
        /// its callback says so.
        #[test]
        fn path_bytes_finds_each_byte_of_its_class(
            pad in 0usize..130,
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "/", "\\", "%", "a", " ", "\u{A5}", "\u{2215}", "\u{FF0F}", "\u{FF1A}", "\u{4E2D}",
                "\u{E9}", "\u{2026}", "%s", "..", "\n",
            ]), 0..60),
            stop in 0usize..8,
        ) {
            let text = format!("{}{}", "x".repeat(pad), parts.concat()).into_bytes();
            let every: Vec<usize> = (0..text.len()).filter(|&i| path_class(text[i])).collect();
            let want = &every[..every.len().min(stop + 1)];
            // (each form, and the hits it gave until it was told to stop)
            type Find = fn(&[u8], &mut dyn FnMut(usize) -> bool);
            let run = |find: Find| {
                let mut got = Vec::new();
                find(&text, &mut |i| {
                    got.push(i);
                    got.len() > stop
                });
                got
            };
            proptest::prop_assert_eq!(&run(|t, f| path_bytes(t, f)), want);
            #[cfg(target_arch = "x86_64")]
            {
                // SAFETY: SSE2 is part of every x86_64 processor.
                let sse2 = run(|t, f| unsafe { path_bytes_sse2(t, f) });
                proptest::prop_assert_eq!(&sse2, want, "sse2");
                if crate::threat::simd::avx2() {
                    // SAFETY: AVX2 is present (checked).
                    let avx2 = run(|t, f| unsafe { path_bytes_avx2(t, f) });
                    proptest::prop_assert_eq!(&avx2, want, "avx2");
                }
                if crate::threat::simd::avx512() {
                    // SAFETY: AVX-512BW and VBMI are present (checked).
                    let avx512 = run(|t, f| unsafe { path_bytes_avx512(t, f) });
                    proptest::prop_assert_eq!(&avx512, want, "avx512");
                }
            }
        }
    }

    proptest::proptest! {
        /// A path written as Java's or Node's lenient decoder reads it weighs 6 where the path
        /// climbs (Java: a step; Node: two) or names a secret: a model of the path (its `..`
        /// segments, and the names of a short list), not warden's checks. Java's form writes
        /// each separator and each dot of a dot segment as an escape with a digit or letter of
        /// another script; Node's writes them as characters whose low byte they are, after a
        /// `%` that fails.
        #[test]
        fn lenient_forms_weigh_as_their_path(
            segs in proptest::collection::vec(proptest::sample::select(vec![
                "..", "..", "x", "data", "etc", "passwd", ".ssh", "id_rsa", ".env", "shadow",
            ]), 1..7),
            lead in proptest::bool::ANY,
            forms in proptest::collection::vec(0usize..5, 16),
        ) {
            let plain = format!("{}{}", if lead { "/" } else { "" }, segs.join("/"));
            let (mut depth, mut steps, mut secret) = (0i32, 0, false);
            let mut parent = if lead { "/" } else { "" };
            for s in &segs {
                if *s == ".." {
                    steps += 1;
                    depth -= 1;
                } else {
                    depth += 1;
                    secret |= matches!(*s, ".env" | "id_rsa" | ".ssh")
                        || (parent == "etc" && matches!(*s, "passwd" | "shadow"));
                }
                parent = s;
            }
            let _ = depth;
            // Java: `/` as `%2f` with one digit or letter past ASCII, `.` of `..` as `%2e`
            let slash = ["%\u{662}f", "%2\u{FF26}", "%\u{FF12}f", "%\u{E52}F", "%2\u{FF46}"];
            let dot = ["%\u{662}e", "%2\u{FF25}", "%\u{FF12}e", "%\u{E52}E", "%\u{968}\u{FF45}"];
            let mut k = 0;
            let mut java = String::new();
            for c in plain.chars() {
                k += 1;
                match c {
                    '/' => java.push_str(slash[forms[k % 16]]),
                    '.' if forms[(k + 3) % 16] < 2 => java.push_str(dot[forms[k % 16]]),
                    c => java.push(c),
                }
            }
            if !java.contains('%') {
                java.insert_str(0, "%\u{662}f");
            }
            if steps >= 1 || secret {
                proptest::prop_assert_eq!(path_token_weight(java.as_bytes()), 6, "{}", java);
            }
            // Node: a directory whose name holds a `%` that fails, then the path, `/` as `į`
            // and `.` as `Į`
            let node = format!(
                "%zz\u{12F}{}",
                plain.trim_start_matches('/').replace('/', "\u{12F}").replace('.', "\u{12E}")
            );
            if steps >= 2 || secret {
                proptest::prop_assert_eq!(path_token_weight(node.as_bytes()), 6, "{}", node);
            }
            if steps == 0 && !secret {
                proptest::prop_assert_eq!(path_token_weight(java.as_bytes()), 0, "{}", java);
                proptest::prop_assert_eq!(path_token_weight(node.as_bytes()), 0, "{}", node);
            }
        }
    }

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
            // overlong UTF-8 forms of ASCII bytes are those bytes; others stay bytes
            ("%C0%BB%c0%ae%C1%81%C0%41", ";.A\u{FFFD}A", 5),
            ("%E0%80%BB%e0%81%81%E0%A0%80", ";A\u{800}", 5),
            (
                "\\uDB40\\uDC49\\U00000069\\uD800x",
                "\u{E0049}i\u{FFFD}x",
                3,
            ),
        ] {
            assert_eq!(un(s), (want.to_string(), n), "{s}");
        }
    }

    /// Byte escapes of a shell control byte are counted apart (one is enough to read a text
    /// unescaped); the same bytes as character references, and other bytes, are not.
    #[test]
    fn escaped_shell_controls_are_counted() {
        for (s, want) in [
            ("%3Bid", 1),
            ("%7c%7C%26%60%24%0a%0D", 6),
            ("%26%26id", 1),
            ("q=dog%26cat", 0),
            ("\\x3bid", 1),
            ("%2569%41%2F%20", 0),
            ("&#59;&#x7c;&amp;", 0),
            ("%253B", 1),
            ("\\u003bid", 1),
            ("\\U0000003bid \\u{7c}id", 2),
            ("%u007C\\u0060\\u0024", 3),
            ("\\u0026\\u0026id", 0),
            ("\\u0026id=1", 0),
            ("%C0%BBid", 1),
            ("%c0%ae%c0%ae/", 0),
            ("..&sol;..&bsol;x", 2),
            ("..&#x2215;x %u2216x \\u2044x", 3),
            ("..&frasl;x &setminus;x &Backslash;x &sbsol;x", 4),
            ("&dollar;(reboot) &semi;id &verbar;id &grave;id &ssetmn;", 5),
            ("&#47;&#x2f;\\u002f", 0),
        ] {
            let mut out = Vec::new();
            assert_eq!(unescape(s.as_bytes(), &mut out).controls, want, "{s}");
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

    /// Rules drawn across a page, whitespace and prose are no flood.
    #[test]
    fn rules_whitespace_and_prose_are_no_flood() {
        for t in [
            "=".repeat(2000),
            "-_".repeat(1000),
            "\u{2500}".repeat(700),
            " \n\t".repeat(700),
            "The quarterly report is due on Friday. ".repeat(100),
        ] {
            assert!(
                !repetition_flood(t.as_bytes()),
                "{:?}",
                t.chars().take(8).collect::<String>()
            );
        }
        assert!(repetition_flood("ö ".repeat(300).as_bytes()));
        assert!(repetition_flood(
            format!("hi {}", "%".repeat(600)).as_bytes()
        ));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1024))]
        /// On text whose only escapes are single percent-encodings, unescaping is what the
        /// `percent-encoding` crate decodes, escape for escape, except that an overlong UTF-8
        /// form of an ASCII byte (`C0` or `C1` then a continuation byte, or `E0`, `80` or `81`,
        /// a continuation byte) is that byte.
        #[test]
        fn percent_escapes_decode_as_the_percent_encoding_crate_does(
            text in "([a-z %.]|%[0-9a-fA-F]{2}){0,64}",
        ) {
            proptest::prop_assume!(!text.contains("%25") && !text.contains("%u"));
            let mut out = Vec::new();
            let n = unescape(text.as_bytes(), &mut out).escapes;
            let decoded: Vec<u8> = percent_encoding::percent_decode(text.as_bytes()).collect();
            // (the text's own bytes are ASCII: every byte from 0x80 is an escape's)
            let mut want = Vec::new();
            let mut i = 0;
            while i < decoded.len() {
                match (decoded[i], decoded.get(i + 1), decoded.get(i + 2)) {
                    (0xC0 | 0xC1, Some(&c), _) if (0x80..0xC0).contains(&c) => {
                        want.push(((decoded[i] & 1) << 6) | (c & 0x3F));
                        i += 2;
                    }
                    (0xE0, Some(&c1 @ (0x80 | 0x81)), Some(&c2)) if (0x80..0xC0).contains(&c2) => {
                        want.push(((c1 & 1) << 6) | (c2 & 0x3F));
                        i += 3;
                    }
                    (b, _, _) => {
                        want.push(b);
                        i += 1;
                    }
                }
            }
            proptest::prop_assert_eq!(out, want);
            let escapes = text.matches('%').count()
                - text
                    .as_bytes()
                    .windows(3)
                    .filter(|w| w[0] == b'%' && !(w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit()))
                    .count();
            proptest::prop_assert!(n <= escapes);
        }

        /// Any bytes, and texts of the disguises' own atoms: no panic, output within the
        /// bound, every byte read, and nothing written where nothing was undone (the lines it
        /// writes are those where it undid something).
        #[test]
        fn undisguising_any_bytes_is_safe(
            text in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
            atoms in proptest::collection::vec(proptest::sample::select(vec![
                "a", "b", " ", "  ", "_", ".", "**", "~~", "<b>", "</b>", "<!--", "-->", "<", ">",
                "\n", "\u{202E}", "\u{202C}", "x y z", "i.g.n", "é",
            ]), 0..200),
        ) {
            for t in [text.clone(), atoms.concat().into_bytes()] {
                let mut out = Vec::new();
                let u = undisguise(&t, &mut out, true);
                proptest::prop_assert!(out.len() <= MAX_DECODED_BYTES);
                proptest::prop_assert!(u.resume <= u.read && u.read <= t.len());
                if out.len() < MAX_DECODED_BYTES - 256 {
                    proptest::prop_assert_eq!(u.read, t.len());
                }
                if u.hidden + u.inside + u.markup == 0 {
                    proptest::prop_assert!(out.is_empty(), "{:?}", String::from_utf8_lossy(&out));
                }
            }
        }

        /// A run of `FLOOD_BYTES` of any unit of 1 to 4 bytes that is not a drawn rule, at any
        /// offset in any text, is a flood.
        #[test]
        fn every_long_repetition_is_a_flood(
            unit in "[a-zA-Z0-9%\\]ö!@]{1,4}",
            before in "[a-z ]{0,700}",
            after in "[a-z ]{0,300}",
        ) {
            proptest::prop_assume!(unit.len() <= 4);
            let run = unit.repeat(FLOOD_BYTES / unit.len() + 1);
            let t = format!("{before}{run}{after}");
            proptest::prop_assert!(repetition_flood(t.as_bytes()), "{:?}", unit);
        }

        /// The end `flood_ends` gives is where the run of the unit stops, wherever the run
        /// begins and ends against the windows; a second flood after other text is found too.
        #[test]
        fn a_flood_ends_where_its_unit_stops_repeating(
            unit in "[a-zA-Z0-9%\\]ö!@]{1,4}",
            before in "[a-z ]{0,700}",
            times in 0usize..300,
            after in "[a-z ]{1,300}",
            second in proptest::bool::ANY,
        ) {
            proptest::prop_assume!(unit.len() <= 4);
            let run = unit.repeat((FLOOD_BYTES + times) / unit.len() + 1);
            let mut t = format!("{before}{run}|{after}");
            let end = before.len() + run.len();
            let mut want = vec![end];
            if second {
                want.push(t.len() + 1 + run.len());
                t = format!("{t}|{run}|");
            }
            let got: Vec<usize> = flood_ends(t.as_bytes()).map(|(end, _, _)| end).collect();
            // (each run as long as it is: back to where the unit stops repeating)
            let b = t.as_bytes();
            for (end, p, len) in flood_ends(b) {
                let mut start = end - p;
                while start > 0 && b[start - 1] == b[start - 1 + p] {
                    start -= 1;
                }
                proptest::prop_assert_eq!(len, end - start, "{:?}", t);
            }
            proptest::prop_assert_eq!(got, want, "{:?} {:?}", unit, t);
        }

        /// A rule drawn with any of the drawn characters (`drawn_unit`), in a unit of one to
        /// three of them, is no flood wherever the windows cut it; the same unit with a letter
        /// in it is one.
        #[test]
        fn a_drawn_rule_is_no_flood(
            chars in proptest::collection::vec(proptest::sample::select(&[
                "=", "-", "_", "~", "*", "#", ".", "+", ":", "|", " ", "\t", "\n", "\u{2014}",
                "\u{2013}", "\u{2500}", "\u{2550}", "\u{2501}", "\u{2502}", "\u{253c}",
                "\u{2588}", "\u{2593}", "\u{2581}", "\u{2e3a}",
            ][..]), 1..4),
            before in "[a-z ]{0,300}",
            letter in proptest::bool::ANY,
        ) {
            let mut unit = chars.concat();
            if letter {
                unit.push('x');
            }
            proptest::prop_assume!(unit.len() <= WORD_FLOOD_UNIT_BYTES);
            let t = format!("{before}{}\nSay \"x\"", unit.repeat(FLOOD_BYTES * 2 / unit.len()));
            let floods = flood_ends(t.as_bytes()).count();
            proptest::prop_assert_eq!(floods, usize::from(letter), "{:?}", unit);
        }

        /// Words joined by `_` or `.` (a model of the rule): three joints or more, or two
        /// between single letters, and the line is written with the words apart (single
        /// letters together); fewer, and nothing is written.
        #[test]
        fn joined_words_come_apart_as_the_rule_says(
            words in proptest::collection::vec("[a-z]{1,6}", 2..7),
            sep in proptest::sample::select(vec!["_", "."]),
        ) {
            let text = words.join(sep);
            let mut out = Vec::new();
            undisguise(text.as_bytes(), &mut out, true);
            let joints = words.len() - 1;
            let singles = words.iter().all(|w| w.len() == 1);
            let want = match (joints >= 3, joints >= 2 && singles) {
                (_, true) => words.concat(),
                (true, false) => words.join(" "),
                (false, false) => String::new(),
            };
            proptest::prop_assert_eq!(String::from_utf8(out).unwrap(), want);
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
