//! Audit log speed. `cargo bench --bench audit`.
//!
//! 1. The log alone: records per second written in each durability mode's pattern (async:
//!    buffered writes, synced every 64 KiB; group: fdatasync per 256 records; always: fdatasync
//!    per record, the single-submitter case), each in a fresh directory on the same disk.
//! 2. Through the engine: validation latency from one foreign thread with every request audited
//!    (cache hits), per mode, against the same engine without an audit log, in the same run.
//! 3. Throughput through the engine: `validate_batch` of 64 from four threads, audited in each
//!    mode and not audited.
//! 4. The write path itself: glommio DMA (O_DIRECT through io_uring) against buffered std
//!    writes, both with fdatasync per group of 256 records.

use std::time::{Duration, Instant};
use warden::audit::record::Event;
use warden::audit::Log;
use warden::config::{AuditConfig, AuditMode, EngineConfig};
use warden::{Classification, Config, Decision, DenyReason, Engine, Operation, Request};

fn event(i: u64) -> Event<'static> {
    Event {
        time_ns: i,
        latency_ns: 1200,
        core: 0,
        decision: Decision::Allow,
        reason: DenyReason::None,
        classification: Classification::Cui,
        operation: Operation::Check,
        origin: warden::ContentOrigin::Prompt,
        tenant: "acme",
        agent: "planner-1",
        tool: "fs.read",
        action: "read",
        resource: "/data/acme/reports/q3.csv",
        chain: "",
    }
}

fn log_alone() {
    println!("== the log alone (records/s) ==");
    for (name, n, per_flush, sync) in [
        (
            "async: buffered, synced every 64 KiB",
            500_000u64,
            0u64,
            false,
        ),
        ("group: fdatasync per 256 records", 200_000, 256, true),
        ("always: fdatasync per record", 3_000, 1, true),
    ] {
        let d = tempfile::tempdir().unwrap();
        let mut log = Log::open(
            d.path(),
            1 << 30,
            &ed25519_dalek::SigningKey::from_bytes(&[3; 32]),
        )
        .unwrap();
        let t = Instant::now();
        for i in 0..n {
            log.stage_event(&event(i));
            let due = if per_flush == 0 {
                log.staged_bytes() >= 64 << 10
            } else {
                log.staged() >= per_flush
            };
            if due {
                log.flush(sync).unwrap();
            }
        }
        log.flush(true).unwrap();
        let s = t.elapsed().as_secs_f64();
        println!(
            "{name:<42} {n:>8} records in {s:>6.2} s: {:>10.0} records/s",
            n as f64 / s
        );
    }
}

fn engine(audit: Option<(&std::path::Path, AuditMode)>) -> Engine {
    Engine::builder()
        .config(Config {
            engine: EngineConfig {
                cores: 1,
                ..Default::default()
            },
            audit: match audit {
                Some((dir, mode)) => AuditConfig {
                    dir: dir.display().to_string(),
                    mode,
                    every_request: true,
                    ..Default::default()
                },
                None => AuditConfig::default(),
            },
            ..Default::default()
        })
        .build()
        .unwrap()
}

fn req() -> Request<'static> {
    Request::new(Operation::Check)
        .tenant("acme")
        .agent("planner-1")
        .tool("fs.read")
        .resource("/data/acme/reports/q3.csv")
        .classification(Classification::Cui)
}

fn latency() {
    println!("\n== validate() latency, every request audited, cache hits, 1 core, 1 thread ==");
    let modes = [
        ("no audit log (baseline)", None, 100_000),
        ("async", Some(AuditMode::Async), 100_000),
        ("group", Some(AuditMode::Group), 5_000),
        ("always", Some(AuditMode::Always), 2_000),
    ];
    for (name, mode, n) in modes {
        let d = tempfile::tempdir().unwrap();
        let e = engine(mode.map(|m| (d.path(), m)));
        let h = e.handle();
        let r = req();
        for _ in 0..1000.min(n) {
            h.validate(&r);
        }
        let mut hist =
            hdrhistogram::Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).unwrap();
        for _ in 0..n {
            let t = Instant::now();
            let v = h.validate(&r);
            hist.record(t.elapsed().as_nanos() as u64).unwrap();
            assert!(v.is_allowed(), "{v:?}");
        }
        println!(
            "{name:<26} p50 {:>9} ns  p99 {:>9} ns  mean {:>9.0} ns",
            hist.value_at_quantile(0.5),
            hist.value_at_quantile(0.99),
            hist.mean()
        );
        e.shutdown();
    }
}

fn throughput() {
    println!("\n== validate_batch(64) throughput from 4 threads (256 in flight), 1 core, 2 s ==");
    for (name, mode) in [
        ("no audit log (baseline)", None),
        ("group, every request audited", Some(AuditMode::Group)),
        ("async, every request audited", Some(AuditMode::Async)),
        ("always, every request audited", Some(AuditMode::Always)),
    ] {
        let d = tempfile::tempdir().unwrap();
        let e = engine(mode.map(|m| (d.path(), m)));
        let t = Instant::now();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let h = e.handle();
                std::thread::spawn(move || {
                    let reqs: Vec<Request<'_>> = (0..64).map(|_| req()).collect();
                    let mut out = vec![warden::Verdict::deny(DenyReason::None); 64];
                    let mut n = 0u64;
                    while t.elapsed() < Duration::from_secs(2) {
                        h.validate_batch_into(&reqs, warden::Priority::Medium, &mut out);
                        n += 64;
                    }
                    n
                })
            })
            .collect();
        let n: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        let s = t.elapsed().as_secs_f64();
        let m = e.metrics();
        e.shutdown();
        println!(
            "{name:<32} {:>10.0} validations/s   audit backpressure {}",
            n as f64 / s,
            m.audit.map(|a| a.backpressure).unwrap_or(0)
        );
    }
}

/// Buffered std writes against glommio DMA writes, fdatasync per 256 records, same bytes.
fn dma_vs_buffered() {
    use std::io::Write;
    println!("\n== write path: buffered std::fs vs glommio DMA, fdatasync per 256 records ==");
    // one group of 256 framed records, as the writer produces them
    let mut group = Vec::new();
    let mut h = [0u8; 32];
    for i in 0..256 {
        h = warden::audit::record::encode(
            &mut group,
            &h,
            &warden::audit::record::Record::Event {
                seq: i + 1,
                event: event(i),
            },
        );
    }
    let groups = 2_000;
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("buffered");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&p)
        .unwrap();
    let t = Instant::now();
    for _ in 0..groups {
        f.write_all(&group).unwrap();
        f.sync_data().unwrap();
    }
    let buffered = t.elapsed().as_secs_f64();
    let p2 = d.path().join("dma");
    let g2 = group.clone();
    let dma = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .spawn(move || async move {
            let file = glommio::io::DmaFile::create(&p2).await.unwrap();
            // DMA needs aligned buffers and offsets: records are padded to 4 KiB pages here,
            // which a real log would have to carry (or re-write the last partial page).
            let page = 4096usize;
            let len = g2.len().div_ceil(page) * page;
            let t = Instant::now();
            let mut off = 0u64;
            for _ in 0..groups {
                let mut buf = file.alloc_dma_buffer(len);
                buf.as_bytes_mut()[..g2.len()].copy_from_slice(&g2);
                file.write_at(buf, off).await.unwrap();
                file.fdatasync().await.unwrap();
                off += len as u64;
            }
            let s = t.elapsed().as_secs_f64();
            file.close().await.unwrap();
            s
        })
        .unwrap()
        .join()
        .unwrap();
    let recs = (groups * 256) as f64;
    println!(
        "buffered std writes      {:>10.0} records/s ({:.2} s)",
        recs / buffered,
        buffered
    );
    println!(
        "glommio DMA writes       {:>10.0} records/s ({:.2} s)   ratio buffered/DMA time {:.2}",
        recs / dma,
        dma,
        buffered / dma
    );
}

fn main() {
    let only = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    let run = |name: &str| only.as_deref().is_none_or(|o| name.contains(o));
    if run("log") {
        log_alone();
    }
    if run("latency") {
        latency();
    }
    if run("throughput") {
        throughput();
    }
    if run("dma") {
        dma_vs_buffered();
    }
}
