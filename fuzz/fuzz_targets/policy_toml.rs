//! Policy files are operator input: any text compiles or gives an error naming a field, and a
//! compiled policy answers any request without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;
use warden::policy::Snapshot;
use warden::{Operation, Request};

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        match Snapshot::from_toml(s, "fuzz.toml") {
            Ok(p) => {
                let r = Request::new(Operation::Check).tenant("acme").agent("a").tool("t").resource("/x");
                let _ = p.authorize(&r);
            }
            Err(e) => assert!(!e.field.is_empty()),
        }
    }
});
