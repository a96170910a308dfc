//! The audit log with real files and real processes: tamper detection of every kind, recovery of
//! a torn tail, durability through an engine in each mode, a write failure (file size limit) that
//! denies instead of leaving a gap, and a crash test that SIGKILLs a child under load many times.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use warden::audit::log::{segment_name, HEADER_BYTES};
use warden::audit::record::{self, Event};
use warden::audit::{verify, Log};
use warden::config::{AuditConfig, AuditMode, EngineConfig};
use warden::{Classification, Config, Decision, DenyReason, Engine, Operation, Request};

fn key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[7; 32])
}

fn event(i: u64) -> (String, String) {
    (format!("tenant-{}", i % 3), format!("/data/{i}"))
}

/// Stages event `i` (tenant and resource from `event(i)`) with `decision` and `reason`.
fn stage(log: &mut Log, i: u64, decision: Decision, reason: DenyReason) {
    let (t, r) = event(i);
    log.stage_event(&Event {
        time_ns: i,
        latency_ns: 1,
        core: 0,
        decision,
        reason,
        classification: Classification::Cui,
        operation: Operation::Check,
        tenant: &t,
        agent: "a",
        tool: "fs.read",
        action: "read",
        resource: &r,
    });
}

/// A log of `n` events with a checkpoint after every `every`, closed cleanly.
fn write_log(dir: &Path, n: u64, every: u64) {
    let mut log = Log::open(dir, 1 << 30).unwrap();
    let k = key();
    for i in 0..n {
        stage(&mut log, i, Decision::Allow, DenyReason::None);
        if (i + 1) % every == 0 {
            let (seq, head, sig) = log.stage_checkpoint(&k, i);
            log.flush(true).unwrap();
            log.write_head(seq, &head, &sig).unwrap();
        }
    }
    log.flush(true).unwrap();
}

/// Byte ranges of every frame in segment 1.
fn frames(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut v = Vec::new();
    let mut off = HEADER_BYTES;
    while off < bytes.len() {
        let (_, _, n) = record::frame(&bytes[off..]).unwrap();
        v.push((off, off + n));
        off += n;
    }
    v
}

fn seg(dir: &Path) -> std::path::PathBuf {
    dir.join(segment_name(1))
}

fn check(dir: &Path) -> Result<warden::audit::Summary, warden::audit::Bad> {
    verify(dir, &key().verifying_key(), |_, _| {})
}

/// Rewrites every hash after `from` so the chain is consistent again, as an attacker who can
/// edit the files (but has no signing key) would.
fn rechain(bytes: &mut [u8]) {
    let mut h = [0u8; 32];
    for (a, b) in frames(bytes) {
        let len = u32::from_le_bytes(bytes[a..a + 4].try_into().unwrap()) as usize;
        h = record::chain(&h, &bytes[a + 4..a + 4 + len]);
        bytes[b - 32..b].copy_from_slice(&h);
    }
}

#[test]
fn an_intact_log_verifies_and_each_kind_of_damage_is_named() {
    let d = tempfile::tempdir().unwrap();
    write_log(d.path(), 40, 10);
    let s = check(d.path()).unwrap();
    assert_eq!((s.events, s.checkpoints, s.last_seq), (40, 4, 44));
    let pristine = std::fs::read(seg(d.path())).unwrap();
    let f = frames(&pristine);
    let damaged = |mutate: &dyn Fn(&mut Vec<u8>)| {
        let mut b = pristine.clone();
        mutate(&mut b);
        std::fs::write(seg(d.path()), &b).unwrap();
        let r = check(d.path()).unwrap_err();
        std::fs::write(seg(d.path()), &pristine).unwrap();
        r.to_string()
    };
    // modified: one byte of record 5's resource
    let (a, b) = f[5];
    let m = damaged(&|x| x[b - 33] ^= 1);
    assert!(m.contains("modified") && m.contains("seq 6"), "{m}");
    // modified, with the chain recomputed: the next checkpoint no longer signs the head
    let m = damaged(&|x| {
        x[b - 33] ^= 1;
        rechain(x)
    });
    assert!(m.contains("checkpoint does not sign"), "{m}");
    // removed: record 5 cut out
    let m = damaged(&|x| {
        x.drain(a..b);
    });
    assert!(m.contains("removed"), "{m}");
    // reordered: records 5 and 6 swapped
    let (c, e) = f[6];
    let m = damaged(&|x| {
        let r5 = x[a..b].to_vec();
        let r6 = x[c..e].to_vec();
        let mut y = x[..a].to_vec();
        y.extend_from_slice(&r6);
        y.extend_from_slice(&r5);
        y.extend_from_slice(&x[e..]);
        *x = y;
    });
    assert!(m.contains("out of order"), "{m}");
    // truncated before the last checkpoint (at a record boundary: every hash still links)
    let (cut, _) = f[f.len() - 3];
    let m = damaged(&|x| x.truncate(cut));
    assert!(m.contains("truncated before checkpoint 44"), "{m}");
    // a forged checkpoint signature, chain recomputed
    let (cp, cp_end) = f[10];
    assert_eq!(cp_end - cp, 4 + 1 + 8 + 8 + 32 + 64 + 32);
    let m = damaged(&|x| {
        x[cp_end - 40] ^= 1;
        rechain(x)
    });
    assert!(m.contains("bad checkpoint signature"), "{m}");
    // the wrong key
    let other = ed25519_dalek::SigningKey::from_bytes(&[9; 32]).verifying_key();
    assert!(verify(d.path(), &other, |_, _| {}).is_err());
    assert!(check(d.path()).is_ok(), "the pristine log is back");
}

#[test]
fn a_torn_tail_is_reported_then_cut_on_open_and_damage_elsewhere_refuses_to_start() {
    let d = tempfile::tempdir().unwrap();
    write_log(d.path(), 20, 100);
    let full = std::fs::read(seg(d.path())).unwrap();
    let torn = &full[..full.len() - 7];
    std::fs::write(seg(d.path()), torn).unwrap();
    assert!(check(d.path()).unwrap_err().to_string().contains("torn"));
    let log = Log::open(d.path(), 1 << 30).unwrap();
    assert_eq!(log.recovery.records, 19);
    assert!(log.recovery.torn_bytes > 0);
    assert_eq!(
        log.next_seq(),
        20,
        "the chain continues after the last good record"
    );
    drop(log);
    assert_eq!(check(d.path()).unwrap().events, 19);
    // a damaged record followed by good ones is not a torn tail: refuse
    let mut b = std::fs::read(seg(d.path())).unwrap();
    let f = frames(&b);
    b[f[3].1 - 40] ^= 1;
    std::fs::write(seg(d.path()), &b).unwrap();
    let e = Log::open(d.path(), 1 << 30).err().unwrap().to_string();
    assert!(
        e.contains("damaged record") && e.contains("warden audit verify"),
        "{e}"
    );
}

#[test]
fn segments_rotate_and_a_removed_segment_is_named() {
    let d = tempfile::tempdir().unwrap();
    let mut log = Log::open(d.path(), 1 << 16).unwrap();
    for i in 0..3000u64 {
        stage(&mut log, i, Decision::Deny, DenyReason::NotGranted);
        if i % 100 == 99 {
            log.flush(true).unwrap();
        }
    }
    log.flush(true).unwrap();
    drop(log);
    let segs = warden::audit::log::segments(d.path()).unwrap();
    assert!(segs.len() >= 3, "{segs:?}");
    assert_eq!(check(d.path()).unwrap().events, 3000);
    std::fs::remove_file(d.path().join(segment_name(2))).unwrap();
    let m = check(d.path()).unwrap_err().to_string();
    assert!(m.contains("segment 2 is missing"), "{m}");
}

fn audited_engine(dir: &Path, mode: AuditMode, every_request: bool) -> Engine {
    Engine::builder()
        .config(Config {
            engine: EngineConfig {
                cores: 1,
                spin_before_park_us: 20,
                ..Default::default()
            },
            audit: AuditConfig {
                dir: dir.display().to_string(),
                mode,
                every_request,
                checkpoint_records: 50,
                ..Default::default()
            },
            ..Default::default()
        })
        .build()
        .unwrap()
}

fn audit_req(i: u64, tenant: &str) -> (String, String) {
    (tenant.to_string(), format!("/records/{i}"))
}

#[test]
fn every_mode_writes_a_verifiable_log_and_durable_modes_answer_after_the_record() {
    for mode in [AuditMode::Always, AuditMode::Group, AuditMode::Async] {
        let d = tempfile::tempdir().unwrap();
        let e = audited_engine(d.path(), mode, false);
        let h = e.handle();
        let pubkey = warden::audit::load_public_key(&d.path().join("signing.pub")).unwrap();
        for i in 0..200u64 {
            let (t, r) = audit_req(i, if i % 2 == 0 { "acme" } else { "globex" });
            let v = h.validate(
                &Request::new(Operation::Audit)
                    .tenant(&t)
                    .agent("gw")
                    .tool("mail.send")
                    .resource(&r),
            );
            assert_eq!(v.decision, Decision::AllowWith, "{v:?}");
            assert!(v.obligations.audit_required);
            if mode != AuditMode::Async && i % 50 == 0 {
                // acknowledged: the record is already in the file
                let mut found = false;
                verify(d.path(), &pubkey, |_, ev| found |= ev.resource == r).unwrap();
                assert!(
                    found,
                    "{mode:?}: record {i} acknowledged but not in the log"
                );
            }
        }
        // an ordinary check is not audited unless every_request
        assert!(h
            .validate(&Request::new(Operation::Check).tenant("acme").agent("x"))
            .is_allowed());
        let m = e.metrics().audit.unwrap();
        assert_eq!(m.backpressure, 0);
        e.shutdown();
        let s = verify(d.path(), &pubkey, |_, _| {}).unwrap();
        assert_eq!(s.events, 200, "{mode:?}");
        // durable modes drain one request at a time here: a checkpoint every 50 records; async
        // drains in bulk and checkpoints per drained batch past 50
        let want = if mode == AuditMode::Async { 1 } else { 4 };
        assert!(s.checkpoints >= want, "{mode:?}: {s:?}");
        // a restart continues the chain
        let e = audited_engine(d.path(), mode, true);
        assert!(e
            .handle()
            .validate(&Request::new(Operation::Check).tenant("acme").agent("x"))
            .is_allowed());
        e.shutdown();
        assert_eq!(verify(d.path(), &pubkey, |_, _| {}).unwrap().events, 201);
    }
}

#[test]
fn an_unusable_directory_is_a_clear_error_at_build() {
    let e = Engine::builder()
        .config(Config {
            audit: AuditConfig {
                dir: "/proc/warden-audit-test".into(),
                ..Default::default()
            },
            ..Default::default()
        })
        .build()
        .err()
        .expect("cannot create an audit log under /proc");
    let m = e.to_string();
    assert!(
        m.contains("/proc/warden-audit-test") && m.contains("cannot create"),
        "{m}"
    );
}

/// Child side of the process tests (run only when the parent re-executes this binary).
#[test]
#[ignore]
fn audit_child() {
    let Ok(dir) = std::env::var("WARDEN_AUDIT_CHILD_DIR") else {
        return;
    };
    if let Ok(limit) = std::env::var("WARDEN_AUDIT_CHILD_FSIZE") {
        // a "full disk": writes past this size fail with EFBIG (SIGXFSZ ignored)
        let lim = libc::rlimit {
            rlim_cur: limit.parse().unwrap(),
            rlim_max: limit.parse().unwrap(),
        };
        // SAFETY: plain libc calls with valid arguments, before any thread of ours writes.
        unsafe {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            libc::setrlimit(libc::RLIMIT_FSIZE, &lim);
        }
    }
    let round = std::env::var("WARDEN_AUDIT_CHILD_ROUND").unwrap_or_default();
    let e = audited_engine(Path::new(&dir), AuditMode::Always, true);
    use std::io::Write;
    // libtest has printed "test audit_child ... " without a newline: end that line first, and
    // say that the engine is up (the parent times its kill from here)
    let _ = writeln!(std::io::stdout(), "\nready");
    let _ = std::io::stdout().flush();
    // four submitting threads, so the writer has batches to commit together
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let h = e.handle();
            let round = round.clone();
            std::thread::spawn(move || {
                for i in 0u64.. {
                    let r = format!("/records/{round}/{t}-{i}");
                    let v = h.validate(
                        &Request::new(Operation::Audit)
                            .tenant("acme")
                            .agent("gw")
                            .resource(&r),
                    );
                    // one line per answered request: what the parent may rely on
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{t}-{i} {}", v.reason.name());
                    let _ = out.flush();
                    if v.reason == DenyReason::AuditUnavailable && i > 2_000 {
                        break;
                    }
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    e.shutdown();
}

fn child(dir: &Path, round: u64, fsize: Option<u64>) -> std::process::Child {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        "audit_child",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("WARDEN_AUDIT_CHILD_DIR", dir)
    .env("WARDEN_AUDIT_CHILD_ROUND", round.to_string())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    if let Some(f) = fsize {
        c.env("WARDEN_AUDIT_CHILD_FSIZE", f.to_string());
    }
    c.spawn().unwrap()
}

#[test]
fn sigkill_under_load_never_loses_an_acknowledged_record() {
    let d = tempfile::tempdir().unwrap();
    let pubkey_path = d.path().join("signing.pub");
    let mut acked_total = 0u64;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..8 {
        let mut c = child(d.path(), round, None);
        let stdout = c.stdout.take().unwrap();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut acked = Vec::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line == "ready" {
                    let _ = ready_tx.send(());
                    continue;
                }
                let mut it = line.split(' ');
                if let (Some(id), Some("none")) = (it.next(), it.next()) {
                    acked.push(id.to_string());
                }
            }
            acked
        });
        // kill at a random moment, 50 to 550 ms after the child's engine is up (start-up time
        // varies a lot with the machine's load, so it is not part of the random window)
        ready_rx
            .recv_timeout(Duration::from_secs(120))
            .expect("the child started its engine");
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(50 + seed % 500));
        c.kill().unwrap(); // SIGKILL
        c.wait().unwrap();
        let acked = reader.join().unwrap();
        // recovery (what the next start does), then every acknowledged record must be there
        drop(Log::open(d.path(), 64 << 20).unwrap());
        let pubkey = warden::audit::load_public_key(&pubkey_path).unwrap();
        let mut present = std::collections::HashSet::new();
        let prefix = format!("/records/{round}/");
        verify(d.path(), &pubkey, |_, e| {
            if e.resource.starts_with(&prefix) {
                present.insert(e.resource.to_string());
            }
        })
        .unwrap_or_else(|b| panic!("round {round}: the log does not verify after recovery: {b}"));
        for i in &acked {
            assert!(
                present.contains(&format!("{prefix}{i}")),
                "round {round}: acknowledged record {i} lost ({} acknowledged)",
                acked.len()
            );
        }
        acked_total += acked.len() as u64;
    }
    assert!(
        acked_total > 100,
        "the children did some work: {acked_total}"
    );
}

#[test]
fn a_full_disk_denies_instead_of_leaving_a_gap() {
    let d = tempfile::tempdir().unwrap();
    let mut c = child(d.path(), 0, Some(256 * 1024));
    let stdout = c.stdout.take().unwrap();
    let started = Instant::now();
    let mut allowed = 0u64;
    let mut unavailable = 0u64;
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        // the test harness prints its own lines too
        if !line.starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        match line.split(' ').nth(1) {
            Some("none") => allowed += 1,
            Some("audit_unavailable") => unavailable += 1,
            other => panic!("unexpected verdict {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(120));
    }
    let status = c.wait().unwrap();
    assert!(status.success(), "the child must not crash: {status}");
    assert!(
        allowed > 100 && unavailable > 4_000,
        "{allowed} {unavailable}"
    );
    // every allowed request's record is there (none answered unaudited), and the chain verifies:
    // failed batches were rolled back, not left half-written
    let pubkey = warden::audit::load_public_key(&d.path().join("signing.pub")).unwrap();
    let s = verify(d.path(), &pubkey, |_, _| {}).unwrap();
    assert_eq!(s.events, allowed);
}
