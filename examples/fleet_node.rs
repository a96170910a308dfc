//! A gateway node embedding warden with `[fleet]`, driven line by line over stdin: what the
//! fleet tests (`tests/fleet.rs`) and the propagation measurement (`tools/fleet-bench.py`)
//! run, several at once, against a real nats-server.
//!
//! `cargo run --features fleet --example fleet_node -- CONFIG`, then one command a line; each
//! answers one line on stdout. `NS` is CLOCK_MONOTONIC in nanoseconds (the same clock in every
//! process on a machine, so a driver can subtract one node's time from another's).
//!
//! ```text
//! check TENANT AGENT TOKEN        allow | allow_with | deny REASON
//! await-deny TENANT AGENT TOKEN   asks every 200 µs until denied: denied NS REASON (timeout
//!                                 REASON after 45 s)
//! await-allow TENANT AGENT TOKEN  likewise until allowed: allowed NS
//! revoke TENANT AGENT             ok NS (the time just before the call)
//! release TENANT AGENT            ok NS (on this node only)
//! release-signed TENANT AGENT KEY ok NS (on every node: the operator's signed release)
//! revoke-token TOKEN              ok NS
//! quarantine TENANT AGENT MS      ok NS
//! unquarantine TENANT AGENT       ok NS
//! await-fresh                     fresh MS | stale MS FLEET_METRICS_JSON (after 60 s: a first
//!                                 sync with a 3-server JetStream cluster forming on a starved
//!                                 machine took over 20); MS: how long it waited
//! metrics                         the fleet's metrics, JSON
//! bench TENANT AGENT TOKEN N      N checks one after another: p50 NS p99 NS ns
//! hammer TENANT AGENT TOKEN MS    a check every 100 µs for MS ms: allowed A limited L other O
//! share TENANT                    this node's share of the tenant's rate: Some(F) | None
//! ```
//!
//! A check is `fs.read` on `/data/TENANT/x` unclassified, with a fresh nonce; the policy in the
//! config decides the rest.

use std::io::{BufRead, Write};
use std::time::{Duration, Instant};
use warden::{Classification, Config, Decision, Engine, Operation, Request, Verdict};

fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the live local we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: fleet_node CONFIG (commands on stdin)");
    let cfg = Config::load(std::path::Path::new(&path)).unwrap_or_else(|e| {
        eprintln!("fleet_node: {e}");
        std::process::exit(2)
    });
    let engine = Engine::builder().config(cfg).build().unwrap_or_else(|e| {
        eprintln!("fleet_node: {e}");
        std::process::exit(2)
    });
    let h = engine.handle();
    let mut nonce = mono_ns();
    let mut check = |t: &str, a: &str, tok: &str| -> Verdict {
        nonce += 1;
        let resource = format!("/data/{t}/x");
        h.validate(
            &Request::new(Operation::Check)
                .tenant(t)
                .agent(a)
                .tool("fs.read")
                .resource(&resource)
                .classification(Classification::Unclassified)
                .credential(tok.as_bytes())
                .nonce(nonce)
                .timestamp_ms(wall_ms()),
        )
    };
    let out = std::io::stdout();
    let mut out = out.lock();
    println!("ready");
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let w: Vec<&str> = line.split_whitespace().collect();
        let reply = match w.as_slice() {
            ["check", t, a, tok] => {
                let v = check(t, a, tok);
                match v.decision {
                    Decision::Allow => "allow".to_string(),
                    Decision::AllowWith if v.obligations.audit_required => {
                        "allow_with audit_required".to_string()
                    }
                    Decision::AllowWith => "allow_with".to_string(),
                    Decision::Deny => format!("deny {}", v.reason.name()),
                }
            }
            ["await-deny", t, a, tok] | ["await-allow", t, a, tok] => {
                let want_deny = w[0] == "await-deny";
                let until = Instant::now() + Duration::from_secs(45);
                loop {
                    let v = check(t, a, tok);
                    let now = mono_ns();
                    if (v.decision == Decision::Deny) == want_deny {
                        break if want_deny {
                            format!("denied {now} {}", v.reason.name())
                        } else {
                            format!("allowed {now}")
                        };
                    }
                    if Instant::now() > until {
                        break format!("timeout {}", v.reason.name());
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            ["revoke", t, a] => {
                let ns = mono_ns();
                format!("ok {ns} {}", engine.revoke_agent(t, a))
            }
            ["revoke-token", tok] => {
                let ns = mono_ns();
                format!("ok {ns} {}", engine.revoke_token(tok))
            }
            ["release-signed", t, a, key] => {
                // the operator's release, as `warden fleet release` makes it (a connection of
                // its own, the record signed), from this process
                let b = warden::secrets::read_secret_key_file(key, Some(32)).unwrap();
                let k = ed25519_dalek::SigningKey::from_bytes(&b.try_into().unwrap());
                let ns = mono_ns();
                let r = warden::fleet::put_signed(
                    &engine.config().fleet,
                    warden::fleet::state::Record::Agent {
                        tenant: t.to_string(),
                        agent: a.to_string(),
                        revoked: false,
                    },
                    &k,
                );
                format!("ok {ns} {}", r.is_ok())
            }
            ["release", t, a] => {
                let ns = mono_ns();
                format!("ok {ns} {}", engine.release_agent(t, a))
            }
            ["quarantine", t, a, ms] => {
                let ns = mono_ns();
                format!(
                    "ok {ns} {}",
                    engine.quarantine(t, a, ms.parse().unwrap_or(60_000))
                )
            }
            ["unquarantine", t, a] => {
                let ns = mono_ns();
                format!("ok {ns} {}", engine.release_quarantine(t, a))
            }
            ["await-fresh"] => {
                let start = Instant::now();
                let until = start + Duration::from_secs(60);
                loop {
                    let fleet = engine.metrics().fleet;
                    let fresh = fleet.as_ref().is_some_and(|f| f.fresh);
                    if fresh || Instant::now() > until {
                        let ms = start.elapsed().as_millis();
                        break match fresh {
                            true => format!("fresh {ms}"),
                            // what a stale node saw, for the test that waited on it
                            false => format!("stale {ms} {}", serde_json::json!(fleet)),
                        };
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            ["bench", t, a, tok, n] => {
                // the request path's own cost: N checks one after another, each timed
                let n: usize = n.parse().unwrap_or(100_000);
                let mut ns: Vec<u64> = Vec::with_capacity(n);
                for _ in 0..n {
                    let t0 = mono_ns();
                    let v = check(t, a, tok);
                    ns.push(mono_ns() - t0);
                    assert!(v.decision != Decision::Deny, "{:?}", v.reason);
                }
                ns.sort_unstable();
                format!("p50 {} p99 {} ns", ns[n / 2], ns[n * 99 / 100])
            }
            ["hammer", t, a, tok, ms] => {
                // checks every 100 µs for MS milliseconds: how many the rate let through
                let until = Instant::now() + Duration::from_millis(ms.parse().unwrap_or(1000));
                let (mut allowed, mut limited, mut other) = (0u64, 0u64, 0u64);
                while Instant::now() < until {
                    let v = check(t, a, tok);
                    match v.reason {
                        _ if v.decision != Decision::Deny => allowed += 1,
                        warden::DenyReason::RateLimited(_) => limited += 1,
                        _ => other += 1,
                    }
                    std::thread::sleep(Duration::from_micros(100));
                }
                format!("allowed {allowed} limited {limited} other {other}")
            }
            ["share", t] => format!("{:?}", engine.tenant_share(t)),
            ["metrics"] => serde_json::to_string(&engine.metrics().fleet).unwrap(),
            ["quit"] | [] => break,
            _ => format!("error: unknown command `{line}`"),
        };
        if writeln!(out, "{reply}").and_then(|_| out.flush()).is_err() {
            break;
        }
    }
    engine.shutdown();
}
