//! The fleet end to end: real nats-server processes (`tools/nats.sh`), real node processes
//! (`examples/fleet_node.rs`: a gateway embedding warden with `[fleet]`), real tokens.
//!
//! What must hold: a revocation or quarantine made on one node is enforced on every other;
//! releases spread the same way; a policy pushed once is live everywhere, and one that does
//! not compile is refused by every node, which keep the last good one; a forged entry is
//! refused; a node keeps serving while the servers are away, denies once its view is older
//! than `stale_after_ms`, and catches up (changes made meanwhile included) when they return;
//! a node started later learns what was decided before it; a cluster of three servers with
//! one killed keeps the fleet working.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

fn warden(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .output()
        .unwrap()
}

fn nats_server() -> String {
    let out = Command::new("tools/nats.sh")
        .arg("--path")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tools/nats.sh --path: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn free_port() -> u16 {
    free_ports(1)[0]
}

/// `n` distinct free ports. The listeners are held until all are chosen: bound and dropped one
/// by one, the kernel may hand out the same port twice, and a cluster server given one port for
/// clients and routes fails to start ("bind: address already in use" on its route port).
fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

fn wait_for_port(port: u16) {
    let until = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < until,
            "nats-server on {port} did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One nats-server with JetStream, its store in a directory that outlives restarts.
struct Nats {
    args: Vec<String>,
    port: u16,
    child: Option<Child>,
}

impl Nats {
    fn start(dir: &Path, cluster: Option<(&str, u16, &[u16])>) -> Nats {
        let port = free_port();
        Self::start_on(dir, port, cluster)
    }

    fn start_on(dir: &Path, port: u16, cluster: Option<(&str, u16, &[u16])>) -> Nats {
        let store = dir.join(format!("js-{port}"));
        let mut args: Vec<String> = [
            "-a",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-js",
            "-sd",
            store.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if let Some((name, cport, routes)) = cluster {
            let r: Vec<String> = routes
                .iter()
                .map(|p| format!("nats-route://127.0.0.1:{p}"))
                .collect();
            args.extend([
                "-n".to_string(),
                name.to_string(),
                "--cluster_name".into(),
                "warden".into(),
                "--cluster".into(),
                format!("nats://127.0.0.1:{cport}"),
                "--routes".into(),
                r.join(","),
            ]);
        }
        let mut n = Nats {
            args,
            port,
            child: None,
        };
        n.restart();
        n
    }

    fn restart(&mut self) {
        assert!(self.child.is_none());
        let log = std::fs::File::create(std::env::temp_dir().join(format!(
            "warden-fleet-nats-{}-{}.log",
            std::process::id(),
            self.port
        )))
        .unwrap();
        self.child = Some(
            Command::new(nats_server())
                .args(&self.args)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
        wait_for_port(self.port);
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Keys, a token and a policy in a temporary directory.
struct Setup {
    dir: tempfile::TempDir,
    token: String,
    /// A second token of a1's.
    other: String,
}

const POLICY: &str = r#"
[[tenants]]
name = "acme"
[[roles]]
name = "analyst"
tools = ["fs.read"]
[[tools]]
name = "fs.read"
[tools.resources]
acme = ["/data/acme/**"]
[[agents]]
name = "a1"
tenant = "acme"
role = "analyst"
clearance = "secret"
[[agents]]
name = "a2"
tenant = "acme"
role = "analyst"
clearance = "secret"
"#;

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        assert!(warden(&["token", "keygen", "--out", d]).status.success());
        // the fleet operator's key pair (releases and policies are signed with it)
        let op = format!("{d}/op");
        assert!(warden(&["token", "keygen", "--out", &op]).status.success());
        std::fs::write(dir.path().join("policy.toml"), POLICY).unwrap();
        let key = format!("{d}/ed25519.key");
        let issue = || {
            let out = warden(&[
                "token",
                "issue",
                "--tenant",
                "acme",
                "--agent",
                "a1",
                "--clearance",
                "secret",
                "--ed25519-key",
                &key,
            ]);
            assert!(out.status.success());
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        };
        let (token, other) = (issue(), issue());
        assert_ne!(token, other);
        Setup { token, other, dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn operator_key(&self) -> String {
        format!("{}/op/ed25519.key", self.path().display())
    }

    /// The operator's signing key, for entries a test writes past the CLI.
    fn operator(&self) -> ed25519_dalek::SigningKey {
        let b = warden::secrets::read_secret_key_file(&self.operator_key(), Some(32)).unwrap();
        ed25519_dalek::SigningKey::from_bytes(&b.try_into().unwrap())
    }

    /// `warden fleet VERB --tenant acme --agent a1` with the operator's key, through `cfg`.
    fn fleet_cli(&self, cfg: &Path, verb: &str) {
        let out = warden(&[
            "--config",
            cfg.to_str().unwrap(),
            "fleet",
            verb,
            "--tenant",
            "acme",
            "--agent",
            "a1",
            "--operator-key",
            &self.operator_key(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A node's config: `fleet` is the `[fleet]` table's body.
    fn config(&self, name: &str, fleet: &str) -> PathBuf {
        let d = self.path().display();
        let p = self.path().join(format!("{name}.toml"));
        std::fs::write(
            &p,
            format!(
                r#"[engine]
cores = 1
pin = false
[policy]
file = "{d}/policy.toml"
[identity]
require_token = true
ed25519_public_keys = [{{ id = 1, file = "{d}/ed25519.pub" }}]
[threat]
enabled = false
[anomaly]
enabled = false
[trust]
enabled = false
[fleet]
node_id = "{name}"
operator_public_key = "{d}/op/ed25519.pub"
{fleet}
"#
            ),
        )
        .unwrap();
        p
    }

    fn fleet(servers: &[String], extra: &str) -> String {
        let s: Vec<String> = servers.iter().map(|u| format!("\"{u}\"")).collect();
        format!("servers = [{}]\n{extra}", s.join(", "))
    }
}

/// A gateway node process (`examples/fleet_node.rs`).
struct Node {
    /// The config's name (`c1`), for the messages of a failed wait.
    name: String,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// An example's binary. A whole `cargo test` builds the examples before any test runs, but
/// `cargo test --test fleet` alone does not: so it is built here (once, a no-op when fresh)
/// rather than run stale.
fn example(name: &str) -> PathBuf {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    // target/debug/deps/fleet-HASH -> target/debug/examples/NAME
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut c = Command::new(cargo);
        c.args(["build", "--quiet", "--features", "fleet", "--example", name]);
        if dir.file_name().is_some_and(|n| n == "release") {
            c.arg("--release");
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "building the example {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    dir.join("examples").join(name)
}

impl Node {
    fn start(config: &Path) -> Node {
        let mut child = Command::new(example("fleet_node"))
            .arg(config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut l = String::new();
        stdout.read_line(&mut l).unwrap();
        assert_eq!(l.trim(), "ready", "the node did not start");
        Node {
            name: config
                .file_stem()
                .map_or(String::new(), |n| n.to_string_lossy().into_owned()),
            child,
            stdin,
            stdout,
        }
    }

    fn ask(&mut self, cmd: &str) -> String {
        writeln!(self.stdin, "{cmd}").unwrap();
        self.stdin.flush().unwrap();
        let mut l = String::new();
        self.stdout.read_line(&mut l).unwrap();
        l.trim().to_string()
    }

    fn check(&mut self, s: &Setup) -> String {
        self.ask(&format!("check acme a1 {}", s.token))
    }

    fn await_deny(&mut self, s: &Setup) -> String {
        let r = self.ask(&format!("await-deny acme a1 {}", s.token));
        // "denied NS REASON"
        r.split_whitespace()
            .enumerate()
            .filter(|(i, _)| *i != 1)
            .map(|(_, w)| w)
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn await_allow(&mut self, s: &Setup) -> String {
        let r = self.ask(&format!("await-allow acme a1 {}", s.token));
        r.split_whitespace().next().unwrap_or("").to_string()
    }

    /// Asks `check` until it answers `want` (20 s at most).
    fn await_check(&mut self, s: &Setup, want: &str) {
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            let r = self.check(s);
            if r == want {
                return;
            }
            assert!(Instant::now() < until, "still `{r}`, not `{want}`");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits until the node is in step with the fleet (60 s at most); a failure names the node
    /// and prints what its fleet metrics said, at the caller's line.
    #[track_caller]
    fn fresh(&mut self) {
        let a = self.ask("await-fresh");
        assert!(
            a.split_whitespace().next() == Some("fresh"),
            "node {} not in step with the fleet: {a}",
            self.name
        );
    }

    fn metrics(&mut self) -> serde_json::Value {
        serde_json::from_str(&self.ask("metrics")).unwrap()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn push(s: &Setup, cfg: &Path, policy: &str) -> std::process::Output {
    let f = s.path().join("push.toml");
    std::fs::write(&f, policy).unwrap();
    warden(&[
        "--config",
        cfg.to_str().unwrap(),
        "policy",
        "push",
        f.to_str().unwrap(),
        "--operator-key",
        &s.operator_key(),
    ])
}

/// Nodes on fleet settings `f`, each in step and allowing a1.
fn fresh_nodes<const N: usize>(s: &Setup, f: &str, names: [&str; N]) -> Vec<Node> {
    let mut n: Vec<Node> = names
        .iter()
        .map(|name| Node::start(&s.config(name, f)))
        .collect();
    for x in &mut n {
        x.fresh();
        assert_eq!(x.check(s), "allow_with");
    }
    n
}

#[test]
fn a_revocation_or_quarantine_on_one_node_is_enforced_on_every_other_and_so_is_its_release() {
    // (and a token's revocation, which travels as its digest)
    let s = Setup::new();
    let nats = Nats::start(s.path(), None);
    let f = Setup::fleet(&[nats.url()], "");
    let mut n = fresh_nodes(&s, &f, ["n1", "n2", "n3"]);
    let cli = s.config("cli", &f);
    assert!(n[0].ask("revoke acme a1").ends_with("true"));
    assert_eq!(n[0].check(&s), "deny revoked");
    for x in &mut n[1..] {
        assert_eq!(x.await_deny(&s), "denied revoked");
    }
    // a release written by a node's credentials (unsigned) is refused everywhere: one node
    // can narrow what the fleet allows, never widen it (a node's own release stays local)
    put_raw(
        &nats,
        unsigned(
            "n3",
            1,
            warden::fleet::state::Record::Agent {
                tenant: "acme".into(),
                agent: "a1".into(),
                revoked: false,
            },
        ),
    );
    assert!(n[2].ask("release acme a1").ends_with("true"));
    let until = Instant::now() + Duration::from_secs(20);
    while n[0].metrics()["updates_rejected"] != 1 {
        assert!(Instant::now() < until);
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(n[0].check(&s), "deny revoked");
    assert_eq!(n[1].check(&s), "deny revoked");
    // the operator's release, signed, reaches every node
    s.fleet_cli(&cli, "release");
    for x in &mut n {
        assert_eq!(x.await_allow(&s), "allowed");
    }
    // a quarantine from the second node, released from the third
    assert!(n[1].ask("quarantine acme a1 60000").ends_with("true"));
    for x in &mut n {
        assert_eq!(x.await_deny(&s), "denied quarantined");
    }
    s.fleet_cli(&cli, "unquarantine");
    for x in &mut n {
        assert_eq!(x.await_allow(&s), "allowed");
    }
    // a node started now learns what the fleet decided before it existed
    n[0].ask("revoke acme a1");
    n[1].await_deny(&s);
    let mut late = Node::start(&s.config("n4", &f));
    late.fresh();
    assert_eq!(late.check(&s), "deny revoked");
    s.fleet_cli(&cli, "release");
    // a token revoked on one node is refused on the others; a1's other token still serves
    for x in &mut n {
        assert_eq!(x.await_allow(&s), "allowed");
    }
    assert!(n[2]
        .ask(&format!("revoke-token {}", s.token))
        .ends_with("true"));
    for x in &mut n[..2] {
        assert_eq!(x.await_deny(&s), "denied revoked");
        assert_eq!(
            x.ask(&format!("check acme a1 {}", s.other)),
            "allow_with",
            "only the revoked token is refused"
        );
    }
    let m = n[0].metrics();
    assert_eq!(m["publish_failures"], 0, "{m}");
    assert_eq!(m["published"], 2, "{m}");
    assert_eq!(n[1].metrics()["updates_rejected"], 1);
}

/// The second review's wrong allows, by a bucket writer without the operator's key: the
/// operator's old signed release written again after a new revocation, a garbage value and a
/// delete over the revocation. Neither the running nodes nor a node started afterwards (which
/// reads every entry ever written) let the agent through.
#[test]
fn a_replayed_release_or_an_erased_revocation_lets_no_agent_through() {
    let s = Setup::new();
    let nats = Nats::start(s.path(), None);
    let f = Setup::fleet(&[nats.url()], "");
    let mut n = fresh_nodes(&s, &f, ["e1", "e2"]);
    let cli = s.config("cli", &f);
    use warden::fleet::state::{signed_at, Origin, Record};
    let origin = |op| Origin {
        node: "e2".into(),
        incarnation: 7,
        op,
    };
    let release = Record::Agent {
        tenant: "acme".into(),
        agent: "a1".into(),
        revoked: false,
    };
    // the operator's release signed a minute ago, kept by the attacker
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let old = signed_at(origin(1), release.clone(), &s.operator(), now_ms - 60_000);
    n[0].ask("revoke acme a1");
    assert_eq!(n[1].await_deny(&s), "denied revoked");
    s.fleet_cli(&cli, "release");
    assert_eq!(n[1].await_allow(&s), "allowed");
    n[0].ask("revoke acme a1");
    assert_eq!(n[1].await_deny(&s), "denied revoked");
    put_raw(&nats, old);
    let key = warden::fleet::state::agent_key("acme", "a1");
    let garbage = unsigned(
        "e2",
        2,
        Record::Agent {
            tenant: "acme".into(),
            agent: "zz".into(),
            revoked: true,
        },
    );
    put_raw_at(&nats, &key, garbage);
    with_bucket(&nats, async |js, kv| {
        kv.delete(&key).await.unwrap();
        // a purge (a roll-up) and a delete through the stream's API are refused outright
        assert!(kv.purge(&key).await.is_err());
        let stream = js.get_stream("KV_warden").await.unwrap();
        assert!(stream.delete_message(1).await.is_err());
    });
    let until = Instant::now() + Duration::from_secs(20);
    while n[1].metrics()["updates_rejected"].as_u64().unwrap() < 3 {
        assert!(Instant::now() < until, "{}", n[1].metrics());
        std::thread::sleep(Duration::from_millis(10));
    }
    for (i, x) in n.iter_mut().enumerate() {
        let v = x.check(&s);
        assert_eq!(v, "deny revoked", "node {i}: {}", x.metrics());
    }
    let mut late = Node::start(&s.config("e3", &f));
    late.fresh();
    assert_eq!(late.check(&s), "deny revoked", "a node started later");
}

#[test]
fn a_pushed_policy_is_live_on_every_node_and_a_broken_one_is_refused_everywhere() {
    let s = Setup::new();
    let nats = Nats::start(s.path(), None);
    let f = Setup::fleet(&[nats.url()], "");
    let mut n = fresh_nodes(&s, &f, ["p1", "p2", "p3"]);
    let cli = s.config("cli", &f);
    // a policy without a1: every node now denies it as unknown
    let without_a1 = POLICY.replace("name = \"a1\"", "name = \"a9\"");
    let out = push(&s, &cli, &without_a1);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v1 = version_of(&out);
    for x in &mut n {
        let r = x.await_deny(&s);
        assert!(r.starts_with("denied "), "{r}");
    }
    let denied = n[0].check(&s);
    // a broken policy is refused by the CLI before anything is published
    let out = push(&s, &cli, "[[tenants]]\nname = 1\n");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("push.toml"), "{err}");
    // one that reaches the bucket anyway, signed (written past the CLI), is refused by every
    // node, which keep version 1
    use warden::fleet::state::{signed, Origin, Record};
    let origin = |op| Origin {
        node: "elsewhere".into(),
        incarnation: 1,
        op,
    };
    let broken = "[[agents]]\nname = \"x\"\ntenant = \"nowhere\"\nrole = \"none\"\n";
    put_raw(
        &nats,
        signed(
            origin(1),
            Record::policy(v1 + 1, broken.into()),
            &s.operator(),
        ),
    );
    // an open policy without the operator's signature: refused
    put_raw(
        &nats,
        unsigned("elsewhere", 2, Record::policy(v1 + 2, POLICY.into())),
    );
    // an entry under a key that is not its own (tampering)
    let forged = unsigned(
        "elsewhere",
        3,
        Record::Agent {
            tenant: "acme".into(),
            agent: "a2".into(),
            revoked: true,
        },
    );
    put_raw_at(
        &nats,
        &warden::fleet::state::agent_key("acme", "a1"),
        forged,
    );
    let until = Instant::now() + Duration::from_secs(20);
    for x in &mut n {
        loop {
            let m = x.metrics();
            if m["policy_rejected"] == 1 && m["updates_rejected"] == 2 {
                assert_eq!(m["policy_version"], v1, "{m}");
                break;
            }
            assert!(Instant::now() < until, "{m}");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(x.check(&s), denied, "the last good policy stays");
    }
    // the next good push rises above every version seen, and is live everywhere
    let out = push(&s, &cli, POLICY);
    let v3 = version_of(&out);
    assert!(v3 > v1 + 2, "{v3} after {v1}");
    for x in &mut n {
        assert_eq!(x.await_allow(&s), "allowed");
        assert_eq!(x.metrics()["policy_version"], v3);
    }
    // the operator's first policy written again: a node started afterwards reads every
    // version and keeps the highest
    put_raw(
        &nats,
        signed(
            origin(4),
            Record::policy(v1, without_a1.clone()),
            &s.operator(),
        ),
    );
    let mut late = Node::start(&s.config("p4", &f));
    late.fresh();
    assert_eq!(late.metrics()["policy_version"], v3);
    assert_eq!(late.check(&s), "allow_with");
}

/// The version `warden policy push` printed.
fn version_of(out: &std::process::Output) -> u64 {
    let o = String::from_utf8_lossy(&out.stdout);
    o.rsplit("version ")
        .next()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{o} {}", String::from_utf8_lossy(&out.stderr)))
}

/// An entry as a bucket writer without the operator's key writes it.
fn unsigned(
    node: &str,
    op: u64,
    record: warden::fleet::state::Record,
) -> warden::fleet::state::Wire {
    warden::fleet::state::Wire {
        v: 1,
        origin: warden::fleet::state::Origin {
            node: node.into(),
            incarnation: 1,
            op,
        },
        record,
        operator: None,
        issued_at_ms: None,
    }
}

/// Writes `w` into the bucket under its own key, past every node (as a bucket writer can).
fn put_raw(nats: &Nats, w: warden::fleet::state::Wire) {
    let key = w.record.key();
    put_raw_at(nats, &key, w);
}

fn put_raw_at(nats: &Nats, key: &str, w: warden::fleet::state::Wire) {
    with_bucket(nats, async |_, kv| {
        kv.put(key, warden::fleet::state::encode(&w).into())
            .await
            .unwrap();
    });
}

/// Runs `f` with a JetStream context on `nats` and the fleet's state bucket, on a runtime of
/// its own: how the tests write to the bucket as an attacker with its credentials would.
fn with_bucket(
    nats: &Nats,
    f: impl AsyncFnOnce(async_nats::jetstream::Context, async_nats::jetstream::kv::Store),
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = async_nats::connect(nats.url()).await.unwrap();
        let js = async_nats::jetstream::new(c);
        let kv = js.get_key_value("warden").await.unwrap();
        f(js, kv).await;
    });
}

#[test]
fn without_its_servers_a_node_serves_until_stale_then_denies_and_catches_up_on_return() {
    let s = Setup::new();
    let mut nats = Nats::start(s.path(), None);
    let f = Setup::fleet(
        &[nats.url()],
        "stale_after_ms = 1500\nheartbeat_ms = 100\nrequest_timeout_ms = 300",
    );
    let fa = Setup::fleet(
        &[nats.url()],
        "stale_after_ms = 1500\nheartbeat_ms = 100\nrequest_timeout_ms = 300\nwhen_stale = \"audit_required\"",
    );
    let mut a = Node::start(&s.config("s1", &f));
    let mut b = Node::start(&s.config("s2", &f));
    let mut c = Node::start(&s.config("s3", &fa));
    for x in [&mut a, &mut b, &mut c] {
        x.fresh();
    }
    nats.stop();
    // still serving on what it knew (each node judges staleness from its last contact, which a
    // loaded machine may have made long before the stop: so no node is asked to hold out for a
    // fixed time after it, only to serve at once and to fail closed later)
    assert_eq!(a.check(&s), "allow_with");
    assert_eq!(b.check(&s), "allow_with");
    // a revocation made while the servers are away holds here at once
    a.ask("revoke acme a1");
    assert_eq!(a.check(&s), "deny revoked");
    // past the limit: fail closed (or audit, where configured)
    let r = b.await_deny(&s);
    assert_eq!(r, "denied fleet_stale");
    c.await_check(&s, "allow_with audit_required");
    assert!(b.metrics()["stale_requests"].as_u64().unwrap() >= 1);
    // the servers return: every node catches up, the revocation made meanwhile included
    nats.restart();
    for x in [&mut a, &mut b, &mut c] {
        x.fresh();
    }
    b.await_check(&s, "deny revoked");
    c.await_check(&s, "deny revoked");
    assert!(a.metrics()["reconnects"].as_u64().unwrap() >= 2);
}

/// The review's first wrong allow: the servers come back with an empty store (the bucket made
/// anew, its sequences from 1 again) and, by the time a node reconnects, the new stream is
/// already past where the node had read the old one. The node reads the new stream from its
/// start: a revocation at sequence 1 is not skipped.
#[test]
fn a_bucket_made_anew_is_read_from_its_start() {
    let s = Setup::new();
    let mut nats = Nats::start(s.path(), None);
    let f = Setup::fleet(
        &[nats.url()],
        "stale_after_ms = 3000\nheartbeat_ms = 100\nrequest_timeout_ms = 500",
    );
    let mut a = Node::start(&s.config("z1", &f));
    a.fresh();
    use warden::fleet::state::Record;
    let filler = |nats: &Nats, from: u64, n: u64| {
        for i in from..from + n {
            put_raw(
                nats,
                unsigned(
                    "filler",
                    i,
                    Record::Agent {
                        tenant: "acme".into(),
                        agent: format!("f{i}"),
                        revoked: true,
                    },
                ),
            );
        }
    };
    filler(&nats, 0, 20);
    a.fresh();
    // the store is lost while the servers are down
    nats.stop();
    std::fs::remove_dir_all(s.path().join(format!("js-{}", nats.port))).unwrap();
    nats.restart();
    // another node makes the bucket again and revokes a1: sequence 1 of the new stream
    let mut b = Node::start(&s.config("z2", &f));
    b.fresh();
    assert!(b.ask("revoke acme a1").ends_with("true"));
    filler(&nats, 100, 40);
    assert_eq!(a.await_deny(&s), "denied revoked");
    a.fresh();
    assert_eq!(a.check(&s), "deny revoked");
}

#[test]
fn a_cluster_of_three_servers_with_one_killed_keeps_the_fleet_in_step() {
    let s = Setup::new();
    let all = free_ports(6);
    let (ports, cports) = all.split_at(3);
    let mut servers: Vec<Nats> = (0..3)
        .map(|i| {
            let routes: Vec<u16> = cports
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, p)| *p)
                .collect();
            Nats::start_on(
                s.path(),
                ports[i],
                Some((&format!("s{i}"), cports[i], &routes)),
            )
        })
        .collect();
    let urls: Vec<String> = servers.iter().map(Nats::url).collect();
    // each node prefers a different server; the bucket is replicated on all three
    let cfg = |name: &str, first: usize| {
        let mut u = urls.clone();
        u.rotate_left(first);
        s.config(
            name,
            &Setup::fleet(
                &u,
                "replicas = 3\nstale_after_ms = 30000\nheartbeat_ms = 200",
            ),
        )
    };
    let mut a = Node::start(&cfg("c1", 0));
    let mut b = Node::start(&cfg("c2", 1));
    let mut c = Node::start(&cfg("c3", 2));
    for x in [&mut a, &mut b, &mut c] {
        x.fresh();
    }
    a.ask("revoke acme a1");
    for x in [&mut b, &mut c] {
        assert_eq!(x.await_deny(&s), "denied revoked");
    }
    servers[0].stop();
    // the nodes that used it reconnect elsewhere; changes still spread
    s.fleet_cli(&cfg("cli", 1), "release");
    for x in [&mut a, &mut b, &mut c] {
        assert_eq!(x.await_allow(&s), "allowed");
    }
    c.ask("revoke acme a1");
    for x in [&mut a, &mut b] {
        assert_eq!(x.await_deny(&s), "denied revoked");
    }
    for x in [&mut a, &mut b, &mut c] {
        x.fresh();
        assert_eq!(x.metrics()["publish_failures"], 0);
    }
}

/// Fleet-wide rate budgets: three nodes asked as hard as each other for one tenant share its
/// rate; the fleet's total stays near the tenant's rate (ARCHITECTURE.md "Fleet" gives the
/// bound), not three times it, and no node is starved.
#[test]
fn three_nodes_share_a_tenants_rate() {
    let s = Setup::new();
    std::fs::write(
        s.path().join("policy.toml"),
        POLICY.replacen(
            "name = \"acme\"\n",
            "name = \"acme\"\nrate_per_s = 100\nburst = 10\n",
            1,
        ),
    )
    .unwrap();
    let nats = Nats::start(s.path(), None);
    let f = Setup::fleet(&[nats.url()], "rebalance_ms = 200");
    let mut n: Vec<Node> = ["r1", "r2", "r3"]
        .iter()
        .map(|name| Node::start(&s.config(name, &f)))
        .collect();
    for x in &mut n {
        x.fresh();
    }
    let hammer = |n: &mut Vec<Node>, ms: u64| -> Vec<(u64, u64)> {
        for x in n.iter_mut() {
            writeln!(x.stdin, "hammer acme a1 {} {ms}", s.token).unwrap();
            x.stdin.flush().unwrap();
        }
        n.iter_mut()
            .map(|x| {
                let mut l = String::new();
                x.stdout.read_line(&mut l).unwrap();
                let w: Vec<u64> = l
                    .split_whitespace()
                    .filter_map(|w| w.parse().ok())
                    .collect();
                assert_eq!(w[2], 0, "only the rate refuses: {l}");
                (w[0], w[1])
            })
            .collect()
    };
    // demand known everywhere, then measured
    hammer(&mut n, 1000);
    let ms = 3000;
    let r = hammer(&mut n, ms);
    let total: u64 = r.iter().map(|(a, _)| a).sum();
    let rate_total = 100 * ms / 1000;
    for x in &mut n {
        let a = x.ask("share acme");
        let share: f64 = a
            .strip_prefix("Some(")
            .and_then(|v| v.strip_suffix(')'))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{a}"));
        assert!((0.2..0.5).contains(&share), "{share}");
    }
    assert!(
        total <= rate_total * 5 / 4 + 3 * 10,
        "the fleet admitted {total} in {ms} ms at 100/s: {r:?}"
    );
    assert!(
        total >= rate_total * 6 / 10,
        "the fleet admitted only {total} in {ms} ms at 100/s: {r:?}"
    );
    for (a, _) in &r {
        assert!(*a >= rate_total / 10, "a node was starved: {r:?}");
    }
}

/// Audit checkpoints pinned off the node: a log rolled back on the node, HEAD with it, passes
/// `audit verify` alone but not `audit verify --fleet`.
#[test]
fn a_log_rolled_back_on_its_node_is_caught_by_the_checkpoints_it_published() {
    let s = Setup::new();
    let nats = Nats::start(s.path(), None);
    let audit = s.path().join("audit-k1");
    let f = Setup::fleet(&[nats.url()], "");
    let cfg = s.config(
        "k1",
        &format!(
            "{f}\n[audit]\ndir = \"{}\"\nevery_request = true\ncheckpoint_ms = 50\n",
            audit.display()
        ),
    );
    let verify = |fleet: bool| {
        let mut args = vec!["--config", cfg.to_str().unwrap(), "audit", "verify"];
        args.push(audit.to_str().unwrap());
        if fleet {
            args.push("--fleet");
        }
        warden(&args)
    };
    let run = |checks: usize| {
        let mut n = Node::start(&cfg);
        n.fresh();
        for _ in 0..checks {
            assert_eq!(n.check(&s), "allow_with");
        }
        // the node's last checkpoint is published as it stops
    };
    run(5);
    let out = verify(true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // the attacker's copy, then more records (and checkpoints, published)
    let copy = s.path().join("audit-copy");
    copy_dir(&audit, &copy);
    run(5);
    assert!(verify(true).status.success());
    // roll the log back to the copy, HEAD with it
    std::fs::remove_dir_all(&audit).unwrap();
    copy_dir(&copy, &audit);
    let alone = verify(false);
    assert!(
        alone.status.success(),
        "a consistent older copy passes on its own: {}",
        String::from_utf8_lossy(&alone.stderr)
    );
    let pinned = verify(true);
    assert_eq!(pinned.status.code(), Some(1), "the rollback is caught");
    let out = String::from_utf8_lossy(&pinned.stdout);
    assert!(
        out.contains("NOT intact") && out.contains("is not in the log"),
        "{out}"
    );
    // the node restarted on the rolled-back log publishes lower checkpoints: the highest it
    // ever published still pins the log
    run(1);
    assert!(!verify(true).status.success(), "still caught");
    // however far it grows: its checkpoints and the lost branch's share sequence numbers
    run(12);
    let v = verify(true);
    assert!(!v.status.success(), "still caught");
    // the log replaced wholesale, key and all: its checkpoints are not all signed by one key
    std::fs::remove_dir_all(&audit).unwrap();
    run(1);
    let replaced = verify(true);
    assert!(!replaced.status.success());
    let err = String::from_utf8_lossy(&replaced.stderr);
    assert!(err.contains("not signed by this log's key"), "{err}");
    // and a message that is no checkpoint, on the node's subject, is refused outright
    std::fs::remove_dir_all(&audit).unwrap();
    copy_dir(&copy, &audit);
    with_bucket(&nats, async |js, _| {
        js.publish("warden_checkpoints.k1", "garbage".into())
            .await
            .unwrap()
            .await
            .unwrap();
    });
    let err = String::from_utf8_lossy(&verify(true).stderr).to_string();
    assert!(err.contains("no checkpoints at all"), "{err}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn a_config_with_a_fleet_is_checked_and_push_needs_one() {
    let s = Setup::new();
    let bad = s.config("bad", "servers = [\"http://127.0.0.1:1\"]");
    let out = warden(&["config", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fleet.servers[0]"), "{err}");
    let none = s.path().join("none.toml");
    std::fs::write(&none, "").unwrap();
    let out = push(&s, &none, POLICY);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("fleet.servers"));
    // a node id is one subject token: wildcards and dots would read other nodes' checkpoints
    let cfg = s.config("v1", "servers = [\"nats://127.0.0.1:1\"]");
    let key = s.path().join("ed25519.pub");
    for node in [">", "*", "a.b", "", "a b"] {
        let out = warden(&[
            "--config",
            cfg.to_str().unwrap(),
            "audit",
            "verify",
            s.path().to_str().unwrap(),
            "--public-key",
            key.to_str().unwrap(),
            "--fleet",
            "--node",
            node,
        ]);
        assert!(!out.status.success(), "{node:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("node id"), "{node:?}: {err}");
    }
}
