//! The slot wire format is decoded from bytes a client controls: it must never panic, and a
//! request it accepts must re-encode to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use warden::Request;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = Request::decode(data) {
        let mut buf = vec![0u8; r.encoded_len()];
        assert_eq!(r.encode(&mut buf), Ok(data.len()));
        // the wire form is canonical: one request, one byte string (flags must be zero)
        assert_eq!(&buf[..], data);
        let _ = warden::Limits::default().check(&r);
    }
});
