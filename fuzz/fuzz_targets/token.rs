//! Credential tokens arrive from agents: any bytes give claims or a named refusal, and accepted
//! claims re-encode to the bytes that were signed.
#![no_main]
use libfuzzer_sys::fuzz_target;
use warden::identity::token::{encode_claims, parse, MAX_TOKEN_BYTES};

fuzz_target!(|data: &[u8]| {
    let mut buf = [0u8; MAX_TOKEN_BYTES];
    if let Ok(p) = parse(data, &mut buf) {
        let signed = p.signed.to_vec();
        assert_eq!(encode_claims(&p.claims).unwrap(), signed);
    }
});
