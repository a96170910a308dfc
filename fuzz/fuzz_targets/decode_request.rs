//! The slot wire format is decoded from bytes a client controls: it must never panic, and a
//! request it accepts must re-encode to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use warden::Request;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = Request::decode(data) {
        let mut buf = vec![0u8; r.encoded_len()];
        assert_eq!(r.encode(&mut buf), Ok(data.len()));
        assert_eq!(&buf[..24], &data[..24]);
        assert_eq!(&buf[56..], &data[56..]);
        let _ = warden::Limits::default().check(&r);
    }
});
