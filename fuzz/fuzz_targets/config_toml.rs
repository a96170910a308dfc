//! Config files are operator input: any text gives a config or an error naming a field.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        match warden::Config::from_toml(s, "fuzz.toml") {
            Ok(c) => assert!(c.validate().is_ok()),
            Err(e) => assert!(!e.field.is_empty()),
        }
    }
});
