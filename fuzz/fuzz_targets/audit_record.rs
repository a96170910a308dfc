//! Audit segments are read back from disk by `warden audit verify` and by recovery: any bytes
//! give a record or a named refusal, and a record re-encodes to the same payload.
#![no_main]
use libfuzzer_sys::fuzz_target;
use warden::audit::record::{decode, encode, frame};

fuzz_target!(|data: &[u8]| {
    if let Ok((payload, _, n)) = frame(data) {
        assert!(n <= data.len());
        if let Ok(rec) = decode(payload) {
            let mut out = Vec::new();
            encode(&mut out, &[0; 32], &rec);
            let (again, _, _) = frame(&out).unwrap();
            assert_eq!(again, payload);
        }
    }
});
