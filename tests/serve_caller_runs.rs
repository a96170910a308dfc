//! `warden serve` with a stream socket (whose frames are served through in-process handles,
//! where caller-runs would apply) and shared-memory clients on the same core: a shared-memory
//! client's request must never wait for the core's epoll timeout because stream callers came
//! and went (the hostile review of caller-runs found each quiet phase stalled it; with the
//! engine serving shared-memory clients, callers no longer take a core's baton).
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};
use warden::ipc::client::Client;
use warden::ipc::shm;

#[path = "common/serve.rs"]
mod common;
use common::read;

#[test]
fn shm_client_not_stranded_by_stream_callers() {
    let dir = tempfile::tempdir().unwrap();
    let stream = dir.path().join("s.sock");
    let cfg = common::config(
        dir.path(),
        false,
        &format!("stream_socket = \"{}\"\n", stream.display()),
    );
    let mut child = common::spawn(&cfg);
    let sock = dir.path().join("w.sock");
    let t0 = Instant::now();
    while !(sock.exists() && stream.exists()) {
        assert!(t0.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    let c = Client::connect(&sock).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let streams: Vec<_> = (0..3)
        .map(|t| {
            let (stream, stop) = (stream.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut s = std::os::unix::net::UnixStream::connect(&stream).unwrap();
                let mut i = 0u64;
                let st = Instant::now();
                while !stop.load(SeqCst) {
                    if (st.elapsed().as_millis() / 400) % 2 == 1 {
                        std::thread::sleep(Duration::from_millis(1));
                        continue;
                    }
                    let r = read("planner-1", &format!("/data/acme/s{t}-{i}"));
                    let mut b = vec![0u8; r.encoded_len()];
                    r.encode(&mut b).unwrap();
                    s.write_all(&(b.len() as u32).to_le_bytes()).unwrap();
                    s.write_all(&b).unwrap();
                    let mut out = [0u8; 4 + shm::VERDICT_BYTES];
                    s.read_exact(&mut out).unwrap();
                    i += 1;
                    std::thread::sleep(Duration::from_micros((i * 37 % 400) + (t as u64) * 50));
                }
            })
        })
        .collect();
    let mut worst = Duration::ZERO;
    let mut slow = 0;
    let start = Instant::now();
    let mut i = 0u64;
    while start.elapsed() < Duration::from_secs(4) {
        let t = Instant::now();
        let v = c.validate(&read("planner-1", &format!("/data/acme/c-{i}")));
        let el = t.elapsed();
        if el > Duration::from_millis(100) {
            slow += 1;
            eprintln!(
                "shm request {i} took {el:?}: {:?} {:?}",
                v.decision, v.reason
            );
        }
        worst = worst.max(el);
        i += 1;
        std::thread::sleep(Duration::from_micros(i * 53 % 700));
    }
    stop.store(true, SeqCst);
    for s in streams {
        s.join().unwrap();
    }
    let _ = child.kill();
    let _ = child.wait();
    eprintln!("{i} shm requests, worst {worst:?}, {slow} over 20 ms");
    assert_eq!(slow, 0);
}
