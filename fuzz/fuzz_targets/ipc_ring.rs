//! The shared-memory server's ring and slot reader against a client that writes anything
//! anywhere in its memory, at any time (`warden::ipc::shm::fuzz_ring` states the invariants).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    warden::ipc::shm::fuzz_ring(data);
});
