//! A stage that panics with a large payload, request after request: the payloads are freed
//! (contained panics cost no memory), whether a core or a caller serves them. Alone in its own
//! test binary, since it measures the process's resident memory.

use std::time::Duration;
use warden::config::EngineConfig;
use warden::{Config, DenyReason, Engine, Operation, Request, StageResult};

fn rss() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap();
    s.split(' ').nth(1).unwrap().parse::<u64>().unwrap() * 4096
}

#[test]
fn contained_panics_free_their_payloads() {
    std::panic::set_hook(Box::new(|_| {})); // keep stderr quiet (and the harness's capture small)
    const BAD: u16 = 9;
    for caller_runs in [true, false] {
        let e = Engine::builder()
            .config(Config {
                engine: EngineConfig {
                    cores: 1,
                    pin: false,
                    spin_before_park_us: 0,
                    caller_runs,
                    ..Default::default()
                },
                threat: warden::threat::ThreatConfig {
                    enabled: false,
                    ..Default::default()
                },
                ..Default::default()
            })
            .custom(BAD, "parser", |r, _| {
                // the common unwrap of a parse error that carries the whole input: 48 KiB a panic
                let s = std::str::from_utf8(r.content).unwrap();
                let n: u64 = s.parse().map_err(|_| s.to_string()).unwrap();
                let _ = n;
                StageResult::Pass
            })
            .build()
            .unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let h = e.handle();
        let body = vec![b'x'; 48 * 1024];
        let send = |from: u64, n: u64| {
            for i in from..from + n {
                let mut b = body.clone();
                b[..8].copy_from_slice(&i.to_le_bytes().map(|x| b'a' + (x % 26)));
                let v = h.validate(
                    &Request::new(Operation::Custom(BAD))
                        .tenant("t")
                        .agent("a")
                        .nonce(i)
                        .content(&b),
                );
                assert_eq!(v.reason, DenyReason::Internal);
            }
        };
        send(0, 200); // warm up
        let before = rss();
        send(1000, 4000);
        let grew = rss().saturating_sub(before);
        eprintln!(
            "caller_runs = {caller_runs}: +{} MiB over 4,000 contained panics",
            grew >> 20
        );
        assert!(
            grew < 32 << 20,
            "caller_runs = {caller_runs}: memory grew {} MiB over 4,000 contained panics of 48 KiB payloads",
            grew >> 20
        );
        assert!(e.metrics().stage_panics >= 4200);
    }
    let _ = std::panic::take_hook();
}
