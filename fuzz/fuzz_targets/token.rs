//! Credential tokens arrive from agents: any bytes give claims or a named refusal, and accepted
//! claims re-encode to the bytes that were signed. Delegation chains (links and proof after the
//! tag) parse to a refusal or a chain whose links lie inside the input's decoded bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use warden::identity::chain;
use warden::identity::token::{encode_claims, parse, MAX_TOKEN_BYTES};

fuzz_target!(|data: &[u8]| {
    let mut buf = [0u8; MAX_TOKEN_BYTES];
    if let Ok(p) = parse(data, &mut buf) {
        let signed = p.signed.to_vec();
        assert_eq!(encode_claims(&p.claims).unwrap(), signed);
    }
    let mut buf2 = [0u8; 2 * MAX_TOKEN_BYTES];
    if let Ok(c) = chain::parse(data, &mut buf2) {
        let n = c.links().len();
        assert!(n <= chain::MAX_LINKS);
        assert!(c.prefix_len(n) <= data.len());
        assert_eq!(c.proof.is_some(), c.root.claims.holder.is_some());
        let _ = chain::check_narrowing(&c);
    }
    let mut names = [0u8; chain::MAX_CHAIN_NAMES_BYTES];
    let n = chain::chain_names(data, &mut names);
    assert!(n <= names.len());
});
