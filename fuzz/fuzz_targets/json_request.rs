//! JSON requests come from gateways and the CLI: any bytes give a request or a field-named error.
#![no_main]
use libfuzzer_sys::fuzz_target;
use warden::json::JsonRequest;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(j) = JsonRequest::parse(s) {
            if let Ok(r) = j.to_request() {
                let _ = warden::Limits::default().check(&r);
            }
        }
    }
});
