#!/usr/bin/env python3
"""Propagation across a fleet on one machine: how long from a revocation on one node until every
other node refuses the agent, and from its release until every node allows it again.

Starts a private nats-server (tools/nats.sh) and N node processes (examples/fleet_node.rs, a
gateway embedding warden with [fleet]); then, R times: every other node starts asking about
the agent every 200 us (`await-deny`), node 0 revokes it, and each other node reports the
CLOCK_MONOTONIC instant it was first refused; the same for the operator's signed release (made
from node 0's process as `warden fleet release` makes it: a connection of its own, so it
includes connecting). The figure for one revocation is the slowest node's. Prints p50, p99 and
max for both.

    cargo build --release --features fleet --example fleet_node --bin warden
    tools/fleet-bench.py --nodes 3 --rounds 1000
    tools/fleet-bench.py --nodes 10 --rounds 1000
"""
import argparse, os, shutil, socket, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POLICY = """
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
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1000)
    ap.add_argument("--profile", default="release")
    ap.add_argument("--budget", type=int, default=0, metavar="MS",
                    help="instead: tenant acme limited to 100/s (burst 10); every node asks as hard as it can for MS ms; the fleet's total")
    ap.add_argument("--rebalance-ms", type=int, default=1000)
    ap.add_argument("--request-path", type=int, default=0, metavar="N",
                    help="also time N checks on node 0 and on a node without [fleet], alternately, 3 times")
    a = ap.parse_args()
    tgt = os.path.join(ROOT, "target", a.profile)
    node_bin = os.path.join(tgt, "examples", "fleet_node")
    warden = os.path.join(tgt, "warden")
    for b in (node_bin, warden):
        if not os.path.exists(b):
            sys.exit(f"{b} is missing: cargo build --{a.profile} --features fleet --example fleet_node --bin warden")
    d = tempfile.mkdtemp(prefix="warden-fleet-bench-")
    nats = None
    nodes = []
    try:
        subprocess.run([warden, "token", "keygen", "--out", d], check=True, capture_output=True)
        op = os.path.join(d, "op")
        subprocess.run([warden, "token", "keygen", "--out", op], check=True, capture_output=True)
        policy = POLICY
        if a.budget:
            policy = POLICY.replace('name = "acme"\n', 'name = "acme"\nrate_per_s = 100\nburst = 10\n', 1)
        open(os.path.join(d, "policy.toml"), "w").write(policy)
        tok = subprocess.run(
            [warden, "token", "issue", "--tenant", "acme", "--agent", "a1", "--clearance", "secret",
             "--ed25519-key", os.path.join(d, "ed25519.key")],
            check=True, capture_output=True, text=True).stdout.strip()
        port = free_port()
        ns = subprocess.run([os.path.join(ROOT, "tools", "nats.sh"), "--path"], check=True,
                            capture_output=True, text=True).stdout.strip()
        nats = subprocess.Popen([ns, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", os.path.join(d, "js")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        until = time.time() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.time() > until:
                    sys.exit("nats-server did not start")
                time.sleep(0.02)
        for i in range(a.nodes):
            cfg = os.path.join(d, f"n{i}.toml")
            open(cfg, "w").write(f"""[engine]
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
servers = ["nats://127.0.0.1:{port}"]
node_id = "n{i}"
operator_public_key = "{op}/ed25519.pub"
rebalance_ms = {a.rebalance_ms}
""")
            p = subprocess.Popen([node_bin, cfg], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
            assert p.stdout.readline().strip() == "ready"
            nodes.append(p)

        def send(n, cmd):
            n.stdin.write(cmd + "\n")
            n.stdin.flush()

        def ask(n, cmd):
            send(n, cmd)
            return n.stdout.readline().split()

        for n in nodes:
            got = ask(n, "await-fresh")
            assert got[:1] == ["fresh"], f"a node not in step with the fleet: {' '.join(got)}"
        if a.budget:
            def hammer(ms):
                for n in nodes:
                    send(n, f"hammer acme a1 {tok} {ms}")
                return [int(n.stdout.readline().split()[1]) for n in nodes]
            hammer(3 * max(a.rebalance_ms, 100))  # demand known everywhere
            got = hammer(a.budget)
            want = 100 * a.budget / 1000
            print(f"{a.nodes} nodes, tenant rate 100/s burst 10, rebalance_ms {a.rebalance_ms}, {a.budget} ms of checks every 100 us on every node")
            print(f"  admitted per node {got}: total {sum(got)} against the rate's {want:.0f} ({sum(got) / want:.2f}x)")
            return
        if a.request_path:
            # the same binary and request on a node without [fleet], alternately
            cfg = open(os.path.join(d, "n0.toml")).read().split("[fleet]")[0]
            open(os.path.join(d, "solo.toml"), "w").write(cfg)
            solo = subprocess.Popen([node_bin, os.path.join(d, "solo.toml")], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True, bufsize=1)
            assert solo.stdout.readline().strip() == "ready"
            for i in range(3):
                for name, n in (("with the fleet", nodes[0]), ("without", solo)):
                    print(f"  check {name:15}", " ".join(ask(n, f"bench acme a1 {tok} {a.request_path}")))
            solo.stdin.close()
            solo.wait(timeout=10)
        rev, rel = [], []
        others = nodes[1:]
        for r in range(a.rounds):
            for want, verb, out in (("deny", "revoke acme a1", rev),
                                    ("allow", f"release-signed acme a1 {op}/ed25519.key", rel)):
                for n in others:
                    send(n, f"await-{want} acme a1 {tok}")
                time.sleep(0.002)  # let every node start asking
                t0 = int(ask(nodes[0], verb)[1])
                worst = 0
                for n in others:
                    w = n.stdout.readline().split()
                    if w[0] == "timeout":
                        sys.exit(f"round {r}: a node never saw the {verb}")
                    worst = max(worst, int(w[1]) - t0)
                out.append(worst / 1e6)
        m = [ask(n, "metrics") for n in nodes]
        print(f"{a.nodes} nodes, {a.rounds} revocations and releases, {os.cpu_count()} CPUs, nats-server on 127.0.0.1")
        for name, v in (("revocation", rev), ("release", rel)):
            print(f"  {name:10} until every other node enforces it: p50 {pct(v, .5):.3f} ms  p99 {pct(v, .99):.3f} ms  max {max(v):.3f} ms")
        print("  node 0 metrics:", " ".join(m[0]))
    finally:
        for n in nodes:
            try:
                n.stdin.close()
            except OSError:
                pass
            n.wait(timeout=10)
        if nats:
            nats.kill()
            nats.wait()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
