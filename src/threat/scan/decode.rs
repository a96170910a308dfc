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
