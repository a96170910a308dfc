//! `warden serve` measured from client processes, with same-run baselines.
//!
//! 1. Round trip of one cache-hit validation, one request at a time, from a client process:
//!    shared memory (`warden::ipc::Client`), the stream socket (length-prefixed frames over a
//!    Unix socket, the same server and requests), and the embedded handle (an engine with the
//!    same config inside this process). p50, p99, p99.9 from HdrHistogram.
//! 2. Throughput with 1, 2 and 4 client processes over shared memory, one request at a time
//!    and in batches of 32.
//! 3. The C example and the Python client, each a process of its own (`--bench N`).
//!
//!     cargo build --release && cargo run --release -p warden-ipc-bench -- --warden target/release/warden

use clap::Parser;
use hdrhistogram::Histogram;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use warden::ipc::client::Client;
use warden::{Operation, Priority, Request};

#[derive(Parser)]
struct Args {
    /// The warden binary to serve with (a release build).
    #[arg(long, default_value = "target/release/warden")]
    warden: PathBuf,
    /// Round trips measured per transport (after as many again to warm up).
    #[arg(long, default_value_t = 200_000)]
    round_trips: u64,
    /// Seconds per throughput run.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Engine cores of the server (and of the embedded engine).
    #[arg(long, default_value_t = 1)]
    cores: usize,
    /// Client process counts for the throughput runs.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    clients: Vec<usize>,
    /// Skip the C and Python clients.
    #[arg(long)]
    no_c: bool,
    /// Internal: run as a client process (shm|shm-batch SOCKET SECONDS).
    #[arg(long, num_args = 3, hide = true)]
    child: Option<Vec<String>>,
}

fn request() -> Request<'static> {
    Request::new(Operation::Check)
        .tenant("acme")
        .agent("planner-1")
        .tool("fs.read")
        .resource("/data/acme/q3.csv")
}

fn config(dir: &Path, cores: usize) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let policy = std::fs::read_to_string(root.join("examples/policy.toml"))
        .expect("examples/policy.toml")
        .replace("rate_per_s = 5000", "rate_per_s = 0")
        .replace("rate_per_s = 100 ", "rate_per_s = 0 ");
    let pol = dir.join("policy.toml");
    std::fs::write(&pol, policy).unwrap();
    let cfg = dir.join("warden.toml");
    std::fs::write(
        &cfg,
        format!(
            "[engine]\ncores = {cores}\n[anomaly]\nenabled = false\n[policy]\nfile = \"{}\"\n\
             [serve]\nsocket = \"{}\"\nstream_socket = \"{}\"\nmax_clients = 16\n",
            pol.display(),
            dir.join("w.sock").display(),
            dir.join("s.sock").display()
        ),
    )
    .unwrap();
    cfg
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap()
}

fn report(name: &str, h: &Histogram<u64>) {
    println!(
        "| {name} | {:.2} | {:.2} | {:.2} | {:.2} |",
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.value_at_quantile(0.999) as f64 / 1000.0,
        h.mean() / 1000.0
    );
}

fn time_each(n: u64, mut f: impl FnMut()) -> Histogram<u64> {
    for _ in 0..n {
        f();
    }
    let mut h = histogram();
    for _ in 0..n {
        let t = Instant::now();
        f();
        h.record(t.elapsed().as_nanos() as u64).unwrap();
    }
    h
}

fn child(mode: &str, socket: &str, seconds: f64) {
    let c = Client::connect(socket).expect("connect");
    let r = request();
    let batch: Vec<Request<'static>> = (0..32).map(|_| request()).collect();
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let mut n = 0u64;
    while Instant::now() < until {
        if mode == "shm-batch" {
            let v = c.validate_batch(&batch, Priority::Medium);
            assert!(v.iter().all(|v| v.is_allowed()));
            n += 32;
        } else {
            assert!(c.validate(&r).is_allowed());
            n += 1;
        }
    }
    println!("{n}");
}

fn main() {
    let args = Args::parse();
    if let Some(c) = &args.child {
        return child(&c[0], &c[1], c[2].parse().unwrap());
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), args.cores);
    let sock = dir.path().join("w.sock");
    let mut server = Command::new(&args.warden)
        .arg("--config")
        .arg(&cfg)
        .arg("serve")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start warden serve (build it first: cargo build --release)");
    let mut err = BufReader::new(server.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("listening on") {
        line.clear();
        if err.read_line(&mut line).unwrap() == 0 {
            panic!("warden serve exited before listening");
        }
    }
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "warden serve, {} core(s), {cpus} CPUs; one cache-hit `check`, one at a time; microseconds\n",
        args.cores
    );
    println!("| transport | p50 | p99 | p99.9 | mean |\n| --- | --- | --- | --- | --- |");
    let r = request();
    let n = args.round_trips;
    // shared memory
    let c = Client::connect(&sock).expect("connect");
    let h_shm = time_each(n, || assert!(c.validate(&r).is_allowed()));
    report("shared memory (warden::ipc::Client)", &h_shm);
    drop(c);
    // stream socket: the same requests as length-prefixed frames
    let mut s = std::os::unix::net::UnixStream::connect(dir.path().join("s.sock")).unwrap();
    let mut wire = vec![0u8; r.encoded_len()];
    r.encode(&mut wire).unwrap();
    let mut frame = (wire.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&wire);
    let mut reply = [0u8; 68];
    let h_stream = time_each(n, || {
        s.write_all(&frame).unwrap();
        s.read_exact(&mut reply).unwrap();
        assert!(reply[4] != 1, "denied");
    });
    report("Unix socket, length-prefixed frames", &h_stream);
    drop(s);
    // embedded: the same config, in this process
    let mut ecfg = warden::Config::load(&cfg).unwrap();
    ecfg.serve = Default::default();
    let engine = warden::Engine::builder().config(ecfg).build().unwrap();
    let h = engine.handle();
    let h_emb = time_each(n, || assert!(h.validate(&r).is_allowed()));
    report("embedded Handle::validate (in process)", &h_emb);
    drop(h);
    drop(engine);
    println!(
        "\nshared memory against the socket at p50: {:.1}x faster\n",
        h_stream.value_at_quantile(0.5) as f64 / h_shm.value_at_quantile(0.5) as f64
    );
    // throughput with several client processes
    println!("| client processes | one at a time, validations/s | batches of 32, validations/s |\n| --- | --- | --- |");
    let me = std::env::current_exe().unwrap();
    for &k in &args.clients {
        let mut row = Vec::new();
        for mode in ["shm", "shm-batch"] {
            let procs: Vec<_> = (0..k)
                .map(|_| {
                    Command::new(&me)
                        .args(["--child", mode])
                        .arg(&sock)
                        .arg(args.seconds.to_string())
                        .stdout(Stdio::piped())
                        .spawn()
                        .unwrap()
                })
                .collect();
            let total: u64 = procs
                .into_iter()
                .map(|p| {
                    let out = p.wait_with_output().unwrap();
                    assert!(out.status.success());
                    String::from_utf8_lossy(&out.stdout)
                        .trim()
                        .parse::<u64>()
                        .unwrap()
                })
                .sum();
            row.push(total as f64 / args.seconds);
        }
        println!("| {k} | {:.0} | {:.0} |", row[0], row[1]);
    }
    if !args.no_c {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let lib = dir.path().join("libwarden.so");
        let exe = dir.path().join("validate");
        let ok = Command::new("cc")
            .args([
                "-O2",
                "-shared",
                "-fPIC",
                "-DWARDEN_IMPLEMENTATION",
                "-x",
                "c",
            ])
            .arg(root.join("include/warden.h"))
            .arg("-o")
            .arg(&lib)
            .status()
            .unwrap()
            .success()
            && Command::new("cc")
                .arg("-O2")
                .arg("-I")
                .arg(root.join("include"))
                .arg(root.join("examples/c/validate.c"))
                .arg("-o")
                .arg(&exe)
                .arg("-lpthread")
                .status()
                .unwrap()
                .success();
        assert!(ok, "cc failed");
        println!("\n| client | round trips | p50 µs | p99 µs |\n| --- | --- | --- | --- |");
        let args_req = [
            "acme",
            "planner-1",
            "fs.read",
            "/data/acme/q3.csv",
            "--bench",
        ];
        for (name, mut cmd, count) in [
            ("C (examples/c/validate.c)", Command::new(&exe), n),
            (
                "Python (examples/python/warden.py, ctypes)",
                {
                    let mut c = Command::new("python3");
                    c.arg(root.join("examples/python/warden.py"))
                        .env("WARDEN_LIBRARY", &lib);
                    c
                },
                n / 4,
            ),
        ] {
            let out = cmd
                .arg(&sock)
                .args(args_req)
                .arg(count.to_string())
                .output()
                .unwrap();
            let s = String::from_utf8_lossy(&out.stdout);
            let num = |k: &str| -> f64 {
                let i = s.find(k).unwrap_or_else(|| panic!("{name}: {s}")) + k.len() + 3;
                s[i..]
                    .split(|c: char| !c.is_ascii_digit())
                    .next()
                    .unwrap()
                    .parse::<f64>()
                    .unwrap()
                    / 1000.0
            };
            println!(
                "| {name} | {count} | {:.2} | {:.2} |",
                num("p50_ns"),
                num("p99_ns")
            );
        }
    }
    // SAFETY: kill(2) on our own child.
    unsafe { libc_kill(server.id() as i32) };
    let _ = server.wait();
}

extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

/// SIGTERM to the server.
unsafe fn libc_kill(pid: i32) {
    // SAFETY: the caller passes its own child's pid; 15 is SIGTERM.
    unsafe { kill(pid, 15) };
}
