//! A `warden serve` config for the server's tests and benchmarks.

use std::path::{Path, PathBuf};
use warden::{Operation, Request};

/// Writes into `dir` the example policy without its rate limits (the tests and benchmarks send
/// thousands of requests a second from one agent) and a config that serves it with one core
/// (pinned or not), no anomaly monitor, on the socket `dir/w.sock`, with `extra` lines in
/// `[serve]`. Returns the config's path. An existing `dir/policy.toml` is kept (a restart).
pub fn config(dir: &Path, pin: bool, extra: &str) -> PathBuf {
    let pol = dir.join("policy.toml");
    if !pol.exists() {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/policy.toml"),
        )
        .unwrap()
        .replace("rate_per_s = 5000", "rate_per_s = 0")
        .replace("rate_per_s = 100 ", "rate_per_s = 0 ");
        std::fs::write(&pol, text).unwrap();
    }
    let cfg = dir.join("warden.toml");
    std::fs::write(
        &cfg,
        format!(
            "[engine]\ncores = 1\npin = {pin}\n[anomaly]\nenabled = false\n[policy]\nfile = \"{}\"\n[serve]\nsocket = \"{}\"\n{extra}\n",
            pol.display(),
            dir.join("w.sock").display()
        ),
    )
    .unwrap();
    cfg
}

/// `warden serve` with `cfg`, its stderr piped to the caller.
pub fn spawn(cfg: &Path) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--config")
        .arg(cfg)
        .arg("serve")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start warden serve")
}

/// A `Check` read of `resource` by `agent` in tenant acme (the bench that includes this file
/// does not use it).
#[allow(dead_code)]
pub fn read(agent: &str, resource: &str) -> Request<'static> {
    let agent: &'static str = Box::leak(agent.to_string().into_boxed_str());
    let resource: &'static str = Box::leak(resource.to_string().into_boxed_str());
    Request::new(Operation::Check)
        .tenant("acme")
        .agent(agent)
        .tool("fs.read")
        .resource(resource)
}

/// A port no socket holds now: bound to port 0 and let go. (A port made of the test's pid
/// lands in the ephemeral range, where a parallel test's connection may hold it: "Address
/// already in use" once in a fresh-clone run.) Not every includer uses it.
#[allow(dead_code)]
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
