//! SIEM export with real parts: a private rsyslog (`tools/rsyslog.sh`, from Debian's
//! packages) receives the audit log's events over UDP and over a Unix datagram socket, and its
//! own RFC 5424 parser must find warden's APP-NAME, MSGID and structured data, with the OCSF
//! JSON as the message; `warden audit tail --format ocsf` prints the same objects; a receiver
//! that is not there never holds a request up and is counted.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use warden::config::{AuditConfig, AuditMode};
use warden::{Config, Engine, Operation, Request};

struct Rsyslog {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Rsyslog {
    fn start() -> Rsyslog {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("tools/rsyslog.sh")
            .arg(dir.path())
            .arg(port.to_string())
            .stdout(Stdio::null())
            .spawn()
            .expect("tools/rsyslog.sh");
        let until = Instant::now() + Duration::from_secs(60);
        while !dir.path().join("log.sock").exists() {
            assert!(Instant::now() < until, "rsyslogd did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        // imudp binds after imuxsock: a probe line tells when both listen.
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        loop {
            probe
                .send_to(b"<14>1 - - probe - - - ready", ("127.0.0.1", port))
                .unwrap();
            std::thread::sleep(Duration::from_millis(50));
            if Self::lines_in(dir.path())
                .iter()
                .any(|l| l.starts_with("probe|"))
            {
                break;
            }
            assert!(Instant::now() < until, "rsyslogd does not take UDP");
        }
        Rsyslog { child, dir, port }
    }

    fn lines_in(dir: &Path) -> Vec<String> {
        std::fs::read_to_string(dir.join("out.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// warden's lines, once there are `n` of them.
    fn wait_for(&self, n: usize) -> Vec<String> {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let got: Vec<String> = Self::lines_in(self.dir.path())
                .into_iter()
                .filter(|l| l.starts_with("warden|"))
                .collect();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < until,
                "{} of {n} lines: {got:?}",
                got.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn engine(audit: &Path, syslog: String, queue: usize) -> Engine {
    let mut cfg = Config::default();
    cfg.engine.cores = 1;
    cfg.engine.pin = false;
    cfg.policy.file = "examples/policy.toml".into();
    cfg.anomaly.enabled = false;
    cfg.audit = AuditConfig {
        dir: audit.display().to_string(),
        mode: AuditMode::Async,
        every_request: true,
        ..AuditConfig::default()
    };
    cfg.siem.syslog = syslog;
    cfg.siem.queue_capacity = queue;
    Engine::builder().config(cfg).build().unwrap()
}

/// The requests: allowed, denied, and ones whose fields try to break a syslog line.
fn requests() -> Vec<(String, String)> {
    let mut v = Vec::new();
    for i in 0..20 {
        v.push(("planner-1".to_string(), format!("/data/acme/{i}.csv")));
        v.push(("planner-1".to_string(), format!("/data/globex/{i}")));
    }
    v.push((
        "planner-1".into(),
        "/data/acme/x\"] [forged@1 a=\"b\"]".into(),
    ));
    v.push((
        "planner-1\"]".into(),
        "/data/acme/y\n<13>1 - - forged - - - x".into(),
    ));
    v
}

fn run_and_check(target: String, rs: &Rsyslog) {
    let audit = tempfile::tempdir().unwrap();
    let reqs = requests();
    {
        let e = engine(&audit.path().join("log"), target, 8192);
        let h = e.handle();
        for (agent, resource) in &reqs {
            h.validate(
                &Request::new(Operation::Check)
                    .tenant("acme")
                    .agent(agent)
                    .tool("fs.read")
                    .resource(resource),
            );
        }
        e.shutdown();
        let m = e.metrics().audit.unwrap();
        assert_eq!(m.siem_sent, reqs.len() as u64, "{m:?}");
        assert_eq!((m.siem_dropped, m.siem_errors), (0, 0));
    }
    let lines = rs.wait_for(reqs.len());
    assert_eq!(lines.len(), reqs.len(), "{lines:#?}");
    let mut seqs = Vec::new();
    for l in &lines {
        // rsyslog's parser split it: APP-NAME|MSGID|STRUCTURED-DATA|MSG
        let mut parts = l.splitn(4, '|');
        let (app, msgid, sd, msg) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        assert_eq!(app, "warden");
        assert!(msgid == "allow" || msgid == "deny", "{l}");
        assert!(sd.starts_with("[warden@32473 seq=\""), "{l}");
        assert!(
            !sd.contains("[forged"),
            "a field forged structured data: {l}"
        );
        let json: serde_json::Value =
            serde_json::from_str(msg.trim()).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert_eq!(json["class_uid"], 6003);
        assert_eq!(json["actor"]["user"]["org"]["name"], "acme");
        assert_eq!(
            json["disposition"],
            if msgid == "deny" {
                "Blocked"
            } else {
                "Allowed"
            }
        );
        seqs.push(json["metadata"]["sequence"].as_u64().unwrap());
    }
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), reqs.len(), "every event once");
    // The hostile resource came through whole, inside the JSON.
    assert!(lines
        .iter()
        .any(|l| l.contains(r#"/data/acme/y\n<13>1 - - forged"#)));
    // The log holds the same events: `audit tail --format ocsf` prints the same sequence numbers.
    let out = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["audit", "tail", "--format", "ocsf"])
        .arg(audit.path().join("log"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let tail: Vec<u64> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let j: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(j["class_uid"], 6003);
            j["metadata"]["sequence"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(tail.len(), reqs.len());
    for s in &tail {
        assert!(seqs.contains(s), "sequence {s} in the log, not in rsyslog");
    }
}

#[test]
fn a_real_rsyslog_receives_each_event_over_udp_as_rfc5424_with_its_ocsf_json() {
    let rs = Rsyslog::start();
    let target = format!("udp:127.0.0.1:{}", rs.port);
    run_and_check(target, &rs);
}

#[test]
fn a_real_rsyslog_receives_each_event_over_a_unix_socket() {
    let rs = Rsyslog::start();
    let target = format!("unix:{}", rs.dir.path().join("log.sock").display());
    run_and_check(target, &rs);
}

/// Nobody listening, and a queue of one: every request is answered as fast as without a
/// forwarder, and what could not go is counted, never silently lost.
#[test]
fn a_receiver_that_is_not_there_holds_nothing_up_and_is_counted() {
    let audit = tempfile::tempdir().unwrap();
    let e = engine(
        &audit.path().join("log"),
        format!("unix:{}", audit.path().join("nobody.sock").display()),
        1,
    );
    let h = e.handle();
    let n = 2000u64;
    for i in 0..n {
        let v = h.validate(
            &Request::new(Operation::Check)
                .tenant("acme")
                .agent("planner-1")
                .tool("fs.read")
                .resource(&format!("/data/acme/{i}")),
        );
        assert!(
            v.is_allowed() || v.reason == warden::DenyReason::RateLimited(v.reason.arg()),
            "{v:?}"
        );
    }
    e.shutdown();
    let m = e.metrics().audit.unwrap();
    assert!(m.written >= n, "the log is whole: {m:?}");
    assert_eq!(m.siem_sent, 0);
    assert_eq!(m.siem_errors + m.siem_dropped, n, "{m:?}");
}

#[test]
fn a_bad_syslog_target_is_a_config_error_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("w.toml");
    for (toml, field) in [
        ("[siem]\nsyslog = \"tcp:1.2.3.4:514\"\n[audit]\ndir = \"/tmp/x\"\n", "siem.syslog"),
        ("[siem]\nsyslog = \"udp:127.0.0.1:514\"\n", "siem.syslog"),
        (
            "[siem]\nsyslog = \"udp:127.0.0.1:514\"\nfacility = \"local9\"\n[audit]\ndir = \"/tmp/x\"\n",
            "siem.facility",
        ),
    ] {
        std::fs::write(&cfg, toml).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_warden"))
            .arg("config")
            .arg(&cfg)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{toml}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(field), "{toml}: {err}");
    }
}
