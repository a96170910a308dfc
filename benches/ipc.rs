//! `warden serve` round trip, criterion's view: one cache-hit `check` at a time from this
//! process to a `warden serve` process over shared memory, over the stream socket
//! (length-prefixed frames on a Unix socket: the baseline), and through the embedded handle,
//! in the same run. `cargo bench --bench ipc`. Percentiles and client processes:
//! `tools/ipc-bench` (PERF.md).

use criterion::{criterion_group, criterion_main, Criterion};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use warden::ipc::client::Client;
use warden::{Operation, Request};

#[path = "../tests/common/serve.rs"]
mod common;

fn request() -> Request<'static> {
    Request::new(Operation::Check)
        .tenant("acme")
        .agent("planner-1")
        .tool("fs.read")
        .resource("/data/acme/q3.csv")
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("w.sock");
    let stream = dir.path().join("s.sock");
    let cfg = common::config(
        dir.path(),
        true,
        &format!("stream_socket = \"{}\"", stream.display()),
    );
    let mut server = common::spawn(&cfg);
    let mut err = BufReader::new(server.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("listening on") {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "warden serve exited");
    }
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let r = request();
    let mut g = c.benchmark_group("round_trip");
    let client = Client::connect(&sock).unwrap();
    g.bench_function("shared_memory", |b| {
        b.iter(|| assert!(client.validate(&r).is_allowed()))
    });
    let mut s = std::os::unix::net::UnixStream::connect(&stream).unwrap();
    let mut frame = vec![0u8; 4 + r.encoded_len()];
    let n = r.encode(&mut frame[4..]).unwrap();
    frame[..4].copy_from_slice(&(n as u32).to_le_bytes());
    let mut reply = [0u8; 68];
    g.bench_function("unix_socket_frames", |b| {
        b.iter(|| {
            s.write_all(&frame).unwrap();
            s.read_exact(&mut reply).unwrap();
        })
    });
    let mut ecfg = warden::Config::load(Path::new(&cfg)).unwrap();
    ecfg.serve = Default::default();
    let engine = warden::Engine::builder().config(ecfg).build().unwrap();
    let h = engine.handle();
    g.bench_function("embedded_handle", |b| {
        b.iter(|| assert!(h.validate(&r).is_allowed()))
    });
    g.finish();
    // SAFETY: SIGTERM to our own child.
    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    let _ = server.wait();
}

criterion_group!(benches, bench);
criterion_main!(benches);
