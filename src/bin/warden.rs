//! The `warden` command: a thin shell over the library.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use warden::json::{malformed_verdict, JsonRequest, JsonVerdict};
use warden::workload::{self, WorkloadOptions};
use warden::{Config, Engine};

#[derive(Parser)]
#[command(
    name = "warden",
    version,
    about = "Security validation data plane for AI-agent traffic"
)]
struct Cli {
    /// Configuration file (TOML); every field has a default (see examples/warden.toml).
    #[arg(long, short, global = true, env = "WARDEN_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serves shared-memory clients on a Unix socket (serve.socket) until SIGTERM or SIGINT;
    /// SIGHUP reloads the policy. Clients: warden::ipc::Client (Rust), include/warden.h (C),
    /// examples/python/warden.py (Python).
    Serve {
        /// The socket to listen on (overrides serve.socket).
        #[arg(long)]
        socket: Option<PathBuf>,
        /// Serve Prometheus metrics at http://ADDR/metrics (a loopback address such as
        /// 127.0.0.1:9464; overrides serve.metrics).
        #[arg(long, value_name = "ADDR")]
        metrics: Option<String>,
        /// On SIGTERM, how long to wait for the requests clients already queued, milliseconds.
        #[arg(long, default_value_t = 5000)]
        drain_ms: u64,
        /// Policy file (overrides policy.file in the config; SIGHUP then reloads this file).
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// Validates one JSON request (from FILE, or stdin) and prints the JSON verdict.
    /// Exit status: 0 allowed, 1 denied, 2 a request that cannot be read (the verdict printed
    /// says why) or a usage error. A request with a `credential` and no `timestamp_ms` or
    /// `nonce` field is given the current time and a random nonce, as a gateway would (a 0
    /// given is judged as 0).
    Validate {
        /// A JSON request file; `-` or nothing reads stdin.
        file: Option<PathBuf>,
        /// Policy file (overrides policy.file in the config).
        #[arg(long)]
        policy: Option<PathBuf>,
        /// One JSON request per line in, one JSON verdict per line out, in order, from one
        /// engine: replay a day of requests against a new policy. A line that cannot be read
        /// gets a `malformed` deny in its place. Exit 0 once every line is answered.
        #[arg(long)]
        jsonl: bool,
        /// The request's credential (a wdn1 token), in place of the one the request holds.
        #[arg(long)]
        credential: Option<String>,
    },
    /// Runs a mixed in-process workload against the engine and prints its metrics.
    Bench {
        /// How long to run, seconds.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Client threads submitting concurrently (0: one per core, as a gateway runs a worker
        /// per CPU).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Engine cores (overrides engine.cores).
        #[arg(long)]
        cores: Option<usize>,
        /// Requests per validate_batch call (1 = validate one at a time).
        #[arg(long, default_value_t = 16)]
        batch: usize,
        /// Distinct requests in the population.
        #[arg(long, default_value_t = 10_000)]
        keys: usize,
        /// Zipf exponent of key popularity.
        #[arg(long, default_value_t = 1.0)]
        zipf: f64,
        /// Bytes of content per request.
        #[arg(long, default_value_t = 256)]
        content_bytes: usize,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Audit every request into this directory (sets audit.dir and audit.every_request);
        /// then `warden audit verify DIR` and `warden audit tail DIR`.
        #[arg(long)]
        audit: Option<PathBuf>,
        /// Write an SVG flame graph of the run to FILE (in-process sampling at 999 Hz; needs a
        /// build with `--features flamegraph`; tools/flamegraph.sh does the same with perf).
        #[arg(long, value_name = "FILE")]
        flamegraph: Option<std::path::PathBuf>,
        /// Audit durability mode with --audit: always, group or async (default: the config's).
        #[arg(long)]
        audit_mode: Option<String>,
    },
    /// The tamper-evident audit log.
    Audit {
        #[command(subcommand)]
        cmd: AuditCmd,
    },
    /// Checks a configuration file as a start would (a dry run: policy, keys, threat
    /// catalogue and model, HSM, audit log, CPUs) and prints the effective configuration as
    /// TOML. FILE, or the file `-c`/`WARDEN_CONFIG` names.
    Config { file: Option<PathBuf> },
    /// Scans JSONL (`{"text": ...}` per line, FILE or stdin) for threats; prints one JSON line
    /// per input line, in order, with threat_level, score and categories. With --eval, reads a
    /// labeled file (`label`: attack|benign, `category`) and prints detection and false-positive
    /// rates per category instead.
    Scan {
        file: Option<PathBuf>,
        /// Reads labelled lines (`label`: attack | benign, `category`, optional `tuned`:
        /// whether the catalogue was written from that row's source) and prints, per category,
        /// how many attacks were caught at --threshold or above and how many benign texts were
        /// flagged; then, apart for sources tuned on and held out, the mean detection over the
        /// attack categories and the worst benign category.
        #[arg(long)]
        eval: bool,
        /// Level counted as a detection in --eval (default high, the level `check` denies at).
        #[arg(long)]
        threshold: Option<String>,
        /// An n-gram model weights file (tools/threat-model) to add to the patterns.
        #[arg(long)]
        model: Option<PathBuf>,
        /// A pattern catalogue file (the format of `threat.catalogue`) instead of the built-in one.
        #[arg(long)]
        catalogue: Option<PathBuf>,
        /// Adds `patterns` to each output line: the catalogue patterns that matched (index,
        /// category, weight, phrase or regex), decoded runs included; the probes (path tokens,
        /// suffix statistics, the model) show in `categories` only.
        #[arg(long, conflicts_with = "eval")]
        explain: bool,
        /// Where the texts come from: prompt (written to an agent; the default), data (what an
        /// agent read: a tool's result, a page, a document, a mail), which weighs words
        /// addressed to the model more (the catalogue's `data_weight`), or user (a person's chat
        /// message, where commands and paths in prose are mentions and count at most medium). A
        /// line's own `origin` field overrides it.
        #[arg(long, default_value = "prompt")]
        origin: String,
    },
    /// The HSM: `init` creates the keys warden needs on the token (idempotent); `status`
    /// reports module, token and keys and times a test operation (exit 1 when unusable).
    Hsm {
        #[command(subcommand)]
        cmd: HsmCmd,
    },
    /// Credential tokens.
    Token {
        #[command(subcommand)]
        cmd: TokenCmd,
    },
    /// Policy files.
    Policy {
        #[command(subcommand)]
        cmd: PolicyCmd,
    },
    /// What an operator does on every node of a fleet at once (`[fleet]` in --config).
    Fleet {
        #[command(subcommand)]
        cmd: FleetCmd,
    },
}

#[derive(Subcommand)]
enum HsmCmd {
    /// Creates the HMAC, AES and signature keys named in [hsm] on the token, where missing.
    Init,
    /// Module, token, keys and a timed HMAC sign + verify; exit 1 when unusable.
    Status,
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Creates an Ed25519 key pair: DIR/ed25519.key (secret seed, hex, mode 0600) and
    /// DIR/ed25519.pub (public key, hex) for `identity.ed25519_public_keys`.
    Keygen {
        /// The directory for the key pair (made if missing); neither file may exist yet.
        #[arg(long)]
        out: PathBuf,
    },
    /// Mints a wdn1 token. Signs with an Ed25519 seed file (--ed25519-key), an HMAC-SHA256
    /// secret file (--hmac-key), or the keystore of the config's [hsm] (--keystore hmac|ed25519:
    /// on a PKCS#11 token the key never leaves it); prints the token on stdout.
    Issue {
        /// The tenant the token is for (it must equal the request's).
        #[arg(long)]
        tenant: String,
        /// The agent the token is for (it must equal the request's).
        #[arg(long)]
        agent: String,
        /// A role name carried in the token (informational; the policy decides the role).
        #[arg(long, default_value = "")]
        role: String,
        /// The highest classification the token may act at: unclassified, cui, confidential,
        /// secret or top_secret.
        #[arg(long, default_value = "unclassified")]
        clearance: String,
        /// The highest tool security level the token may use: safe, restricted or privileged.
        #[arg(long, default_value = "restricted")]
        max_level: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        /// Key id the verifier knows this key by.
        #[arg(long, default_value_t = 1)]
        key_id: u16,
        /// Sign with this Ed25519 seed file (`token keygen` makes one).
        #[arg(long, conflicts_with = "hmac_key")]
        ed25519_key: Option<PathBuf>,
        /// Sign with this HMAC-SHA256 secret file (32 bytes or more, raw or hex).
        #[arg(long, conflicts_with = "keystore")]
        hmac_key: Option<PathBuf>,
        /// Sign with the keystore the config's [hsm] names: hmac or ed25519 (on a PKCS#11 token
        /// the key never leaves it).
        #[arg(long, conflicts_with = "ed25519_key")]
        keystore: Option<String>,
        /// Make the token delegable through at most this many links (1 to 4). Needs
        /// --holder-key: the holder's secret goes there, and `token delegate` needs it.
        #[arg(long, requires = "holder_key")]
        delegable: Option<u8>,
        /// With --delegable: a new file (mode 0600) for the holder's secret, which never
        /// travels with the token (whoever sees a token can present it, not extend it).
        #[arg(long, requires = "delegable")]
        holder_key: Option<PathBuf>,
    },
    /// Delegates a delegable credential to another agent: appends a link no wider than the
    /// credential (a subset of its tools, a resource prefix under its own, a lower clearance or
    /// level, an earlier expiry, fewer further links), signed offline with the credential's
    /// proof, and prints the new credential with the delegate's proof.
    Delegate {
        /// File holding the credential to delegate (`-`: standard input). Not an argument, so
        /// it does not show in the process list.
        #[arg(long)]
        from: PathBuf,
        /// The credential holder's secret (from `token issue --holder-key`, or an earlier
        /// `token delegate --key-out`).
        #[arg(long)]
        holder_key: PathBuf,
        /// A new file (mode 0600) for the delegate's secret, so it can delegate further; not
        /// needed with --depth 0.
        #[arg(long)]
        key_out: Option<PathBuf>,
        /// The agent delegated to (it must be the request's agent).
        #[arg(long)]
        agent: String,
        /// A tool the delegate may use (repeat; default: the credential's tools).
        #[arg(long = "tool")]
        tools: Vec<String>,
        /// Resource prefix the delegate is held to: an absolute path or a URL as warden
        /// serializes it (default: the credential's).
        #[arg(long, default_value = "")]
        resource: String,
        /// Clearance at most the credential's (default: the credential's).
        #[arg(long)]
        clearance: Option<String>,
        /// Tool level at most the credential's: safe, restricted or privileged.
        #[arg(long)]
        max_level: Option<String>,
        /// Lifetime in seconds, cut to the credential's own expiry.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        /// Links that may follow this one (default: one fewer than the credential allows).
        #[arg(long)]
        depth: Option<u8>,
    },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Verifies a log: every segment, record, hash link and checkpoint signature. Exit 0 with a
    /// summary when intact; exit 1 naming the first bad record.
    Verify {
        dir: PathBuf,
        /// Ed25519 public key of the checkpoints (default: DIR/signing.pub; pin your own copy).
        #[arg(long)]
        public_key: Option<PathBuf>,
        /// A checkpoint copied elsewhere earlier, as SEQ:HEAD: what an earlier verify printed
        /// after "keep a copy of: --checkpoint". The log must still hold it. A pinned key alone
        /// does not tell a log replaced wholesale under the same key, or rolled back with its
        /// HEAD.
        #[arg(long)]
        checkpoint: Option<String>,
        /// Pins the newest checkpoint this node published to the fleet (`[fleet]` in
        /// `--config`): a log rolled back or cut on the node, HEAD with it, lacks it. Needs a
        /// build with `--features fleet`.
        #[arg(long, conflicts_with = "checkpoint")]
        fleet: bool,
        /// The node whose published checkpoints pin the log (default: the config's
        /// fleet.node_id, or the host name).
        #[arg(long, requires = "fleet")]
        node: Option<String>,
    },
    /// Moves the log in DIR aside, as it is, into DIR/archive-<time>/ (with a copy of its
    /// public key, so `audit verify` still reads it) and begins a new log whose first record
    /// names the old one's head and state. A damaged log refuses to start; this is how a new
    /// log begins deliberately, itself audited. Signs with the config's audit.signing_key
    /// (default DIR/signing.key).
    Archive { dir: PathBuf },
    /// Prints the log's events as JSON lines, oldest first.
    Tail {
        dir: PathBuf,
        /// Only this tenant's events.
        #[arg(long)]
        tenant: Option<String>,
        /// Only the last N events.
        #[arg(long)]
        last: Option<usize>,
        #[arg(long)]
        public_key: Option<PathBuf>,
        /// `json` (warden's own fields) or `ocsf` (OCSF 1.1 API Activity objects, as the SIEM
        /// forwarder sends them).
        #[arg(long, default_value = "json", value_parser = ["json", "ocsf"])]
        format: String,
    },
}

#[derive(Subcommand)]
enum FleetCmd {
    /// Releases a revoked agent on every node: a record signed with the operator's key (a
    /// node's own release stays on that node). Needs `--features fleet`.
    Release {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        agent: String,
        /// The operator's Ed25519 secret key file.
        #[arg(long)]
        operator_key: PathBuf,
    },
    /// Ends an agent's quarantine on every node, as `release` does a revocation.
    Unquarantine {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        agent: String,
        #[arg(long)]
        operator_key: PathBuf,
    },
}

#[derive(Subcommand)]
enum PolicyCmd {
    /// Compiles a policy file and reports every error with file, line and field (exit 1), or
    /// a summary (exit 0).
    Check { file: PathBuf },
    /// Runs a policy's test cases (TOML: `policy = "FILE"` and `[[case]]`s of `name`, `request`,
    /// `expect` = allow | allow_with | deny, and optionally the deny `reason`) through an engine
    /// with that policy, in the manner of `opa test`. Prints each failure and a summary; exit 1
    /// when any case fails. `examples/policy.test.toml` tests `examples/policy.toml`.
    Test {
        file: PathBuf,
        /// The policy to test, instead of the one the test file names.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Also print the cases that pass.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Compiles a policy file, then publishes it to the fleet (`[fleet]` in `--config`) as the
    /// next version: every node compiles it and swaps it in; a node where it does not compile
    /// keeps its last good one and counts it (`fleet_policy_rejected_total`). Prints the
    /// version. Signed with the fleet operator's Ed25519 key (nodes check it against
    /// `fleet.operator_public_key`). Needs a build with `--features fleet`.
    Push {
        file: PathBuf,
        /// The operator's Ed25519 secret key file (as `warden token keygen` writes it).
        #[arg(long)]
        operator_key: PathBuf,
    },
}

/// A policy test file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyTests {
    /// The policy, relative to the test file.
    #[serde(default)]
    policy: Option<String>,
    #[serde(default)]
    case: Vec<PolicyCase>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyCase {
    name: String,
    request: JsonRequest,
    expect: String,
    #[serde(default)]
    reason: Option<String>,
    /// The agent's trust score to judge the case at (default: trust.baseline).
    #[serde(default)]
    trust: Option<f32>,
}

/// The operator's signing key for `policy push` and `fleet` (a secret key file, mode 600).
#[cfg(feature = "fleet")]
fn operator_signing_key(path: &std::path::Path) -> Result<ed25519_dalek::SigningKey, String> {
    let b = warden::secrets::read_secret_key_file(&path.display().to_string(), Some(32))
        .map_err(|e| format!("--operator-key: {e}"))?;
    let mut k = [0u8; 32];
    k.copy_from_slice(&b);
    Ok(ed25519_dalek::SigningKey::from_bytes(&k))
}

/// `warden fleet ...`: what an operator does to every node at once.
fn fleet_cmd(cmd: FleetCmd, config: &Option<PathBuf>) -> Result<ExitCode, String> {
    let cfg = load_config(config)?;
    if !cfg.fleet.enabled() {
        return Err(
            "fleet: the config has no fleet (set fleet.servers, and pass it with --config)".into(),
        );
    }
    #[cfg(feature = "fleet")]
    {
        use warden::fleet::state::Record;
        let (what, record, key) = match cmd {
            FleetCmd::Release {
                tenant,
                agent,
                operator_key,
            } => (
                format!("agent {tenant}/{agent} released"),
                Record::Agent {
                    tenant,
                    agent,
                    revoked: false,
                },
                operator_key,
            ),
            FleetCmd::Unquarantine {
                tenant,
                agent,
                operator_key,
            } => (
                format!("quarantine of {tenant}/{agent} ended"),
                Record::Quarantine {
                    tenant,
                    agent,
                    until_unix_ms: 0,
                },
                operator_key,
            ),
        };
        let key = operator_signing_key(&key)?;
        let rev = warden::fleet::put_signed(&cfg.fleet, record, &key)?;
        println!("{what} on every node (revision {rev})");
        Ok(ExitCode::SUCCESS)
    }
    #[cfg(not(feature = "fleet"))]
    {
        let _ = cmd;
        Err("fleet: this warden was built without the `fleet` feature; rebuild it with `cargo build --release --features fleet`".into())
    }
}

/// `warden policy push FILE`.
fn policy_push(
    file: &std::path::Path,
    operator_key: &std::path::Path,
    config: &Option<PathBuf>,
) -> Result<ExitCode, String> {
    let cfg = load_config(config)?;
    if !cfg.fleet.enabled() {
        return Err(
            "policy push: the config has no fleet (set fleet.servers, and pass it with \
                    --config)"
                .into(),
        );
    }
    let src = warden::source::read_text_bounded(
        file,
        warden::source::limits::POLICY_BYTES,
        "the policy file",
    )?;
    #[cfg(feature = "fleet")]
    {
        let key = operator_signing_key(operator_key)?;
        let v = warden::fleet::push_policy(&cfg.fleet, &src, &file.display().to_string(), &key)?;
        println!("{}: published as fleet policy version {v}", file.display());
        Ok(ExitCode::SUCCESS)
    }
    #[cfg(not(feature = "fleet"))]
    {
        let _ = (src, operator_key);
        Err(
            "policy push: this warden was built without the `fleet` feature; rebuild it with \
             `cargo build --release --features fleet`"
                .into(),
        )
    }
}

fn load_config(path: &Option<PathBuf>) -> Result<Config, String> {
    match path {
        Some(p) => Config::load(p).map_err(|e| e.to_string()),
        None => Ok(Config::default()),
    }
}

fn main() -> ExitCode {
    // A command whose output goes to a pipe that closes (`warden config f | head -1`) ends
    // quietly, as Unix tools do, instead of panicking in `println!`: the default action of
    // SIGPIPE, which Rust's runtime replaced with "ignore".
    // SAFETY: setting a signal's disposition to SIG_DFL at start, before any thread exists,
    // races with nothing; SIG_DFL is a valid handler value.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("warden: {msg}");
            ExitCode::from(2)
        }
    }
}

/// Writes `v` to stdout as pretty JSON; false (said on stderr) when it cannot be written (a
/// full disk: `println!` panicked there, exit 101).
fn print_verdict<T: serde::Serialize>(v: &T) -> bool {
    use std::io::Write;
    let text = serde_json::to_string_pretty(v).expect("verdict serializes");
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => true,
        Err(e) => {
            eprintln!("warden: cannot write the verdict: {e}");
            false
        }
    }
}

/// Ends the process now with `code`, once stdout is flushed: no destructor runs, nor the
/// allocator's teardown (which returns every freed page to the kernel one call at a time), so
/// call it only once everything that must reach a file or the terminal has.
fn exit_now(code: i32) -> ! {
    use std::io::Write;
    let flushed = std::io::stdout().flush();
    // SAFETY: `_exit` ends the process; nothing runs after it, so no Rust state can be
    // observed half-dropped. stdout was flushed above; stderr is unbuffered.
    unsafe { libc::_exit(if flushed.is_ok() { code } else { 2 }) }
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.cmd {
        Cmd::Serve {
            socket,
            metrics,
            drain_ms,
            policy,
        } => {
            let mut cfg = load_config(&cli.config)?;
            if let Some(p) = &policy {
                cfg.policy.file = p.display().to_string();
            }
            if let Some(s) = socket {
                cfg.serve.socket = s.display().to_string();
            }
            // The server's callers are other processes, which caller-runs cannot serve for:
            // by default its cores take half the CPUs and leave the rest to its clients.
            if cfg.engine.cores == 0 && cfg.engine.cpus.is_empty() {
                cfg.engine.cores = (warden::config::available_cpus().len() / 2).max(1);
            }
            let engine = Engine::builder()
                .config(cfg)
                .build()
                .map_err(|e| e.to_string())?;
            let mut server = warden::ipc::server::Server::new(&engine, cli.config.clone())?
                .policy_override(policy);
            let summary = server.run(
                metrics.as_deref(),
                Duration::from_millis(drain_ms),
                |path| {
                    eprintln!(
                        "warden serve: listening on {} ({} cores, policy epoch {}); SIGHUP reloads the policy, SIGTERM stops",
                        path.display(),
                        engine.cores(),
                        engine.epoch()
                    )
                },
            )?;
            engine.shutdown();
            eprintln!(
                "warden serve: stopped: {} clients served, {} requests taken from their rings, drained in {} ms",
                summary.clients_served, summary.requests, summary.drained_ms
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Validate {
            file,
            policy,
            jsonl,
            credential,
        } => {
            let mut cfg = load_config(&cli.config)?;
            // The largest request the limits admit, as JSON whose every byte is escaped
            // (`\u00XX`, six bytes for one), plus room for the field names: anything longer is
            // refused while it is read, not after.
            let max_json = cfg.limits.limits().max_encoded_bytes() * 6 + (64 << 10);
            if cfg.engine.cores == 0 {
                cfg.engine.cores = 1;
            }
            if let Some(p) = policy {
                cfg.policy.file = p.display().to_string();
            }
            let mut input: Box<dyn std::io::BufRead> = match file.as_deref() {
                Some(p) if p.as_os_str() != "-" => Box::new(std::io::BufReader::new(
                    std::fs::File::open(p)
                        .map_err(|e| format!("cannot read {}: {e}", p.display()))?,
                )),
                _ => Box::new(std::io::BufReader::new(std::io::stdin())),
            };
            if jsonl {
                let engine = Engine::builder()
                    .config(cfg)
                    .build()
                    .map_err(|e| e.to_string())?;
                let h = engine.handle();
                let stdout = std::io::stdout();
                let mut out = std::io::BufWriter::new(stdout.lock());
                let mut buf = Vec::new();
                let mut n = 0u64;
                loop {
                    let (got, whole) = read_line_bounded(&mut *input, &mut buf, max_json)
                        .map_err(|e| format!("cannot read: {e}"))?;
                    if !got {
                        break;
                    }
                    n += 1;
                    let v = match request_of(
                        whole.then_some(&buf[..]),
                        max_json,
                        credential.as_deref(),
                    ) {
                        Err(mut e) => {
                            e.message = format!("input line {n}: {}", e.message);
                            malformed_verdict(&e)
                        }
                        Ok(j) => verdict_json(&engine, &h, &j),
                    };
                    writeln!(
                        out,
                        "{}",
                        serde_json::to_string(&v).expect("verdict serializes")
                    )
                    .map_err(|e| e.to_string())?;
                }
                out.flush().map_err(|e| e.to_string())?;
                engine.shutdown();
                return Ok(ExitCode::SUCCESS);
            }
            let bytes =
                read_bounded(&mut input, max_json).map_err(|e| format!("cannot read: {e}"))?;
            let j = match request_of(bytes.as_deref(), max_json, credential.as_deref()) {
                Err(e) => {
                    print_verdict(&malformed_verdict(&e));
                    exit_now(2);
                }
                Ok(j) => j,
            };
            // One request can never hit a verdict cache: build none (its table is 8 MiB of a
            // 65,536-entry default, written at start).
            cfg.cache.capacity_per_core = 0;
            let engine = Engine::builder()
                .config(cfg)
                .build()
                .map_err(|e| e.to_string())?;
            let v = verdict_json(&engine, &engine.handle(), &j);
            // the cores, the audit writer and the HSM core stop here: what must be written is
            // written and synced
            engine.shutdown();
            let code = if v.decision == "deny" { 1 } else { 0 };
            // Then the process ends without freeing the engine's memory piece by piece (a
            // tenth of a start's time: PERF.md, "Start-up with the catalogue built in"); a
            // verdict that cannot be written ends it with 2.
            exit_now(if print_verdict(&v) { code } else { 2 })
        }
        Cmd::Bench {
            seconds,
            threads,
            cores,
            batch,
            keys,
            zipf,
            content_bytes,
            json,
            audit,
            audit_mode,
            flamegraph,
        } => {
            if !(seconds.is_finite() && seconds > 0.0 && seconds <= 86_400.0) {
                return Err(format!(
                    "--seconds {seconds}: give a duration of more than 0 and at most 86400 seconds"
                ));
            }
            if audit_mode.is_some() && audit.is_none() {
                return Err("--audit-mode: give --audit DIR too (the mode is the log's)".into());
            }
            if threads > 1024 {
                return Err(format!(
                    "--threads {threads}: give a number between 0 (one per core) and 1024"
                ));
            }
            for (flag, v, max) in [("--batch", batch, 4096), ("--keys", keys, 10_000_000)] {
                if v == 0 || v > max {
                    return Err(format!("{flag} {v}: give a number between 1 and {max}"));
                }
            }
            if !(zipf.is_finite() && (0.0..=10.0).contains(&zipf)) {
                return Err(format!("--zipf {zipf}: give an exponent between 0 and 10"));
            }
            let mut cfg = load_config(&cli.config)?;
            if content_bytes > cfg.limits.max_content_bytes {
                return Err(format!(
                    "--content-bytes {content_bytes}: more than limits.max_content_bytes ({})",
                    cfg.limits.max_content_bytes
                ));
            }
            if let Some(c) = cores {
                cfg.engine.cores = c;
            }
            // The workload's synthetic agents are denied often by design; quarantining the
            // hottest of them would change what is measured.
            cfg.anomaly.enabled = false;
            if let Some(dir) = &audit {
                cfg.audit.dir = dir.display().to_string();
                cfg.audit.every_request = true;
            }
            if let Some(m) = &audit_mode {
                cfg.audit.mode = config_enum("--audit-mode", m, "always, group or async")?;
            }
            let engine = workload::builder()
                .config(cfg)
                .build()
                .map_err(|e| e.to_string())?;
            // The clients run where the cores do not, as a gateway's threads would.
            let core_cpus = engine.core_cpus();
            let client_cpus: Vec<usize> = warden::config::available_cpus()
                .into_iter()
                .filter(|c| !core_cpus.contains(c))
                .collect();
            let cpus = warden::config::available_cpus().len();
            let cores_n = engine.metrics().cores;
            let threads = if threads == 0 { cores_n } else { threads };
            if !json && cores_n + threads > cpus && !engine.config().engine.caller_runs {
                eprintln!(
                    "warden bench: note: {cores_n} cores and {threads} client threads share {cpus} CPUs; a core spins while idle, so the clients wait for CPU time and the figures below show that, not warden's speed (try --cores {})",
                    cpus.saturating_sub(threads).max(1)
                );
            }
            let opts = WorkloadOptions {
                duration: Duration::from_secs_f64(seconds),
                threads,
                keys,
                zipf_s: zipf,
                batch,
                content_bytes,
                client_cpus,
            };
            let profiler = flamegraph.as_deref().map(Profiler::start).transpose()?;
            let report = workload::run(&engine, &opts);
            if let (Some(p), Some(f)) = (profiler, &flamegraph) {
                p.write(f)?;
                if !json {
                    println!(
                        "  flame graph    {} (in-process samples at 999 Hz)",
                        f.display()
                    );
                }
            }
            engine.shutdown();
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("report serializes")
                );
            } else {
                let m = &report.metrics;
                let us = |ns: u64| ns as f64 / 1000.0;
                println!(
                    "warden bench: {} cores, {} client thread{} submitting batches of {}, {:.1} s",
                    m.cores,
                    threads,
                    if threads == 1 { "" } else { "s" },
                    batch,
                    report.elapsed_s
                );
                if let Some(a) = &m.audit {
                    println!(
                        "  audit log      every request recorded: {} written, {} checkpoints, mode {:?} (a durable mode answers a request once its record is on disk)",
                        a.written,
                        a.checkpoints,
                        audit_mode.as_deref().unwrap_or("from the config")
                    );
                }
                println!("  workload       {}", workload::describe(&opts));
                println!(
                    "  throughput     {:.0} validations/s ({} in all)",
                    report.requests_per_s, report.requests
                );
                println!(
                    "  decisions      {} allowed, {} denied ({:.1} %)",
                    report.allowed,
                    report.denied,
                    report.denied as f64 * 100.0 / report.requests.max(1) as f64
                );
                println!(
                    "  cache          {:.1} % hits, {} entries",
                    m.cache_hit_rate * 100.0,
                    m.cache_entries
                );
                println!(
                    "  latency        p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.1} µs (enqueue to verdict, on the cores)",
                    us(m.latency.p50_ns),
                    us(m.latency.p99_ns),
                    us(m.latency.p999_ns),
                    us(m.latency.max_ns)
                );
                let shed: Vec<String> = warden::Priority::ALL
                    .iter()
                    .zip(&m.shed)
                    .filter(|(_, n)| **n > 0)
                    .map(|(p, n)| format!("{} {n}", p.name()))
                    .collect();
                println!(
                    "  overload       {} shed{} (refused for lack of room), {} stolen by an idle core, {} served first for waiting past their priority's deadline",
                    m.shed.iter().sum::<u64>(),
                    if shed.is_empty() { String::new() } else { format!(" ({})", shed.join(", ")) },
                    m.steals,
                    m.aged
                );
                println!(
                    "  cores          went to sleep {} times when idle ({} spins cut short by the scheduler); {} requests served by callers while a core slept; {} stage panics",
                    m.core_parks, m.preempted_spins, m.caller_served, m.stage_panics
                );
                for c in &m.per_core {
                    let cpu = c.cpu.map_or("unpinned".to_string(), |n| format!("CPU {n}"));
                    println!(
                        "  core {} on {cpu}: {} validations, p50 {:.1} µs, p99 {:.1} µs",
                        c.core,
                        c.validations,
                        us(c.latency.p50_ns),
                        us(c.latency.p99_ns)
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Token { cmd } => token_cmd(cmd, &cli.config),
        Cmd::Hsm { cmd } => {
            let cfg = load_config(&cli.config)?;
            match cmd {
                HsmCmd::Init => {
                    for (kind, label, created) in warden::hsm::init(&cfg.hsm)? {
                        let what = if created { "created" } else { "present" };
                        println!("{kind:<12} {label:<24} {what}");
                    }
                    Ok(ExitCode::SUCCESS)
                }
                HsmCmd::Status => {
                    let st = warden::hsm::status(&cfg.hsm);
                    println!("backend      {}", st.backend);
                    for (k, v) in &st.details {
                        println!("{k:<12} {v}");
                    }
                    for (kind, label, present) in &st.keys {
                        let p = if *present { "present" } else { "MISSING" };
                        println!("key          {kind:<12} {label:<24} {p}");
                    }
                    if let Some(ns) = st.test_op_ns {
                        println!(
                            "test         HMAC sign + verify: {:.1} µs (median of 101)",
                            ns as f64 / 1000.0
                        );
                    }
                    match st.problem {
                        None => {
                            println!("status       usable");
                            Ok(ExitCode::SUCCESS)
                        }
                        Some(p) => {
                            println!("status       UNUSABLE: {p}");
                            Ok(ExitCode::from(1))
                        }
                    }
                }
            }
        }
        Cmd::Audit { cmd } => audit_cmd(cmd, &cli.config),
        Cmd::Scan {
            file,
            eval,
            threshold,
            model,
            catalogue,
            explain,
            origin,
        } => scan_cmd(
            file,
            eval,
            threshold.as_deref(),
            model,
            catalogue,
            explain,
            &origin,
        ),
        Cmd::Policy {
            cmd:
                PolicyCmd::Test {
                    file,
                    policy,
                    verbose,
                },
        } => policy_test(&file, policy, verbose, &cli.config),
        Cmd::Policy {
            cmd: PolicyCmd::Push { file, operator_key },
        } => policy_push(&file, &operator_key, &cli.config),
        Cmd::Fleet { cmd } => fleet_cmd(cmd, &cli.config),
        Cmd::Policy {
            cmd: PolicyCmd::Check { file },
        } => {
            let src = warden::source::read_text_bounded(
                &file,
                warden::source::limits::POLICY_BYTES,
                "the policy file",
            )?;
            match warden::policy::Snapshot::from_toml_all(&src, &file.display().to_string()) {
                Ok(p) => {
                    println!(
                        "{}: ok: {} tenants, {} roles, {} tools, {} agents",
                        file.display(),
                        p.tenants.len(),
                        p.roles.len(),
                        p.tools.len(),
                        p.agents.len()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(errs) => {
                    for e in &errs {
                        eprintln!("{e}");
                    }
                    if errs.len() <= warden::policy::MAX_REPORTED_ERRORS {
                        eprintln!("{}: {} error(s)", file.display(), errs.len());
                    }
                    Ok(ExitCode::from(1))
                }
            }
        }
        Cmd::Config { file } => {
            let file = match (file, &cli.config) {
                (Some(f), Some(c)) if f != *c => {
                    return Err(format!(
                        "config: two files named ({} and -c {}); name one",
                        f.display(),
                        c.display()
                    ))
                }
                (Some(f), _) => f,
                (None, Some(c)) => c.clone(),
                (None, None) => {
                    return Err("config: name the file to check (warden config FILE)".into())
                }
            };
            let cfg = Config::load(&file).map_err(|e| e.to_string())?;
            // A dry run: everything a start builds, nothing started.
            let notes = Engine::builder()
                .config(cfg.clone())
                .check()
                .map_err(|e| match e {
                    // Errors found while building name a field but not where it is written.
                    warden::BuildError::Config(mut ce) => {
                        ce.file = file.display().to_string();
                        ce.line = std::fs::read_to_string(&file)
                            .ok()
                            .and_then(|src| warden::config::line_of_field(&src, &ce.field));
                        ce.to_string()
                    }
                    other => format!("{}: {other}", file.display()),
                })?;
            println!(
                "# {}: ok ({} cores would start)",
                file.display(),
                cfg.core_count()
            );
            for n in notes {
                println!("# {n}");
            }
            println!("# the effective configuration, every default filled in:\n");
            print!(
                "{}",
                toml::to_string_pretty(&cfg)
                    .map_err(|e| format!("cannot print the config: {e}"))?
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Reads at most `max` bytes; `None` when there is more.
fn read_bounded(r: impl Read, max: usize) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    r.take(max as u64 + 1).read_to_end(&mut buf)?;
    Ok((buf.len() <= max).then_some(buf))
}

/// `bench --flamegraph`: pprof-rs sampling the whole process while the workload runs.
#[cfg(feature = "flamegraph")]
struct Profiler(pprof::ProfilerGuard<'static>);

#[cfg(feature = "flamegraph")]
impl Profiler {
    fn start(out: &std::path::Path) -> Result<Profiler, String> {
        // fail before the run, not after it: the file must be writable
        std::fs::File::create(out).map_err(|e| format!("--flamegraph {}: {e}", out.display()))?;
        pprof::ProfilerGuardBuilder::default()
            .frequency(999)
            .blocklist(&["libc", "libgcc", "pthread", "vdso"])
            .build()
            .map(Profiler)
            .map_err(|e| format!("--flamegraph: cannot start the profiler: {e}"))
    }

    fn write(self, out: &std::path::Path) -> Result<(), String> {
        let report = self
            .0
            .report()
            .build()
            .map_err(|e| format!("--flamegraph: {e}"))?;
        let f = std::fs::File::create(out)
            .map_err(|e| format!("--flamegraph {}: {e}", out.display()))?;
        report
            .flamegraph(f)
            .map_err(|e| format!("--flamegraph {}: {e}", out.display()))
    }
}

/// `bench --flamegraph` in a build without the profiler: says how to get one.
#[cfg(not(feature = "flamegraph"))]
struct Profiler;

#[cfg(not(feature = "flamegraph"))]
impl Profiler {
    fn start(_out: &std::path::Path) -> Result<Profiler, String> {
        Err("--flamegraph: this build has no profiler; run `cargo run --release --features flamegraph -- bench --flamegraph out.svg`, or `tools/flamegraph.sh out.svg -- warden bench` (perf)".into())
    }

    fn write(self, _out: &std::path::Path) -> Result<(), String> {
        Ok(())
    }
}

/// A JSON request from bytes read bounded (`None`: longer than `max`). Empty input, bytes that
/// are not UTF-8 and JSON that is not a request are errors naming what is wrong.
fn request_of(
    bytes: Option<&[u8]>,
    max: usize,
    credential: Option<&str>,
) -> Result<JsonRequest, warden::json::JsonError> {
    let bad = |message: String| warden::json::JsonError {
        field: "-".into(),
        message,
    };
    let bytes = bytes.ok_or_else(|| {
        bad(format!(
            "the request is larger than {max} bytes, more than the limits admit (limits.* in the config)"
        ))
    })?;
    let text = std::str::from_utf8(bytes).map_err(|e| {
        bad(format!(
            "the request is not UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    if text.trim().is_empty() {
        return Err(bad("no request: the input is empty".into()));
    }
    let mut j = JsonRequest::parse(text)?;
    if let Some(c) = credential {
        // an empty --credential would silently drop the token the request holds
        if c.trim().is_empty() {
            return Err(warden::json::JsonError {
                field: "credential".into(),
                message: "--credential is empty: give a wdn1 token, or leave the flag out to use the request's own".into(),
            });
        }
        j.credential = c.trim().to_string();
    }
    complete(j)
}

/// A parsed request checked, with a token's timestamp and nonce filled in.
fn complete(mut j: JsonRequest) -> Result<JsonRequest, warden::json::JsonError> {
    let bad = |message: String| warden::json::JsonError {
        field: "-".into(),
        message,
    };
    j.to_request()?;
    // A request with a token needs a timestamp and a nonce; a person at the command line gets
    // them filled in, as a gateway would fill them.
    if !j.credential.is_empty() {
        // only what is absent: a 0 given is a 0 judged
        if j.timestamp_ms.is_none() {
            j.timestamp_ms = Some(warden::time::wall_ns() / 1_000_000);
        }
        if j.nonce.is_none() {
            let mut n = [0u8; 8];
            warden::secrets::random_bytes(&mut n).map_err(bad)?;
            j.nonce = Some(u64::from_le_bytes(n) | 1);
        }
    }
    Ok(j)
}

/// The engine's verdict on `j`, as JSON, its rule explained.
fn verdict_json(engine: &Engine, h: &warden::Handle, j: &JsonRequest) -> JsonVerdict {
    let req = match j.to_request() {
        Ok(r) => r,
        Err(e) => return malformed_verdict(&e),
    };
    let v = h.validate(&req);
    let mut out = JsonVerdict::from(&v);
    if v.rule != 0 {
        out.rule = Some(engine.explain(v.rule));
    }
    if !engine.has_policy() && v.is_allowed() {
        out.explain.push_str(
            " (no policy is loaded: only the request's shape, the input checks and the threat scan were judged; give --policy FILE or policy.file)",
        );
    }
    out
}

fn policy_test(
    file: &std::path::Path,
    policy: Option<PathBuf>,
    verbose: bool,
    config: &Option<PathBuf>,
) -> Result<ExitCode, String> {
    let src = warden::source::read_text_bounded(
        file,
        warden::source::limits::POLICY_BYTES,
        "the test file",
    )?;
    let tests: PolicyTests = toml::from_str(&src).map_err(|e| {
        warden::source::from_toml_error(&e, &src, &file.display().to_string()).to_string()
    })?;
    let policy = match (policy, &tests.policy) {
        (Some(p), _) => p,
        (None, Some(p)) => file.parent().unwrap_or(std::path::Path::new(".")).join(p),
        (None, None) => {
            return Err(format!(
                "{}: name the policy (`policy = \"FILE\"` in the file, or --policy FILE)",
                file.display()
            ))
        }
    };
    let reasons = warden::types::DenyReason::names();
    for (i, c) in tests.case.iter().enumerate() {
        if let Some(r) = &c.reason {
            if !reasons.contains(&r.as_str()) {
                return Err(format!(
                    "{}: case[{i}].reason `{r}` is no reason warden gives; the reasons are: {}",
                    file.display(),
                    reasons.join(", ")
                ));
            }
        }
        if !matches!(c.expect.as_str(), "allow" | "allow_with" | "deny") {
            return Err(format!(
                "{}: case[{i}].expect `{}`: expected allow, allow_with or deny",
                file.display(),
                c.expect
            ));
        }
    }
    let mut cfg = load_config(config)?;
    cfg.policy.file = policy.display().to_string();
    if cfg.engine.cores == 0 {
        cfg.engine.cores = 1;
    }
    cfg.anomaly.enabled = false; // cases are independent; no case quarantines the next
    let engine_cfg_baseline = cfg.trust.baseline as f32;
    let engine = Engine::builder()
        .config(cfg)
        .build()
        .map_err(|e| e.to_string())?;
    let h = engine.handle();
    let mut failed = 0;
    for (i, c) in tests.case.iter().enumerate() {
        let mut j = match complete(c.request.clone()) {
            Ok(j) => j,
            Err(e) => {
                println!("FAIL case[{i}] {}: the request: {e}", c.name);
                failed += 1;
                continue;
            }
        };
        if j.nonce.is_none() {
            j.nonce = Some(i as u64 + 1);
        }
        // cases are independent: each starts from its own trust score, or the baseline
        if let Some(t) = c.trust {
            if !(0.0..=1.0).contains(&t) {
                return Err(format!(
                    "{}: case[{i}].trust {t}: a trust score is between 0 and 1",
                    file.display()
                ));
            }
        }
        let set = engine.set_trust(&j.tenant, &j.agent, c.trust.unwrap_or(engine_cfg_baseline));
        if c.trust.is_some() && !set {
            return Err(format!(
                "{}: case[{i}].trust: trust scores are off in the config (trust.enabled = false)",
                file.display()
            ));
        }
        let v = verdict_json(&engine, &h, &j);
        let ok = v.decision == c.expect && c.reason.as_deref().is_none_or(|r| r == v.reason);
        if !ok {
            failed += 1;
            let want = match &c.reason {
                Some(r) => format!("{} ({r})", c.expect),
                None => c.expect.clone(),
            };
            println!(
                "FAIL case[{i}] {}: expected {want}, got {} ({}): {}",
                c.name, v.decision, v.reason, v.explain
            );
        } else if verbose {
            println!("ok   case[{i}] {}", c.name);
        }
    }
    engine.shutdown();
    println!(
        "{}: {} cases, {} passed, {} failed (policy {})",
        file.display(),
        tests.case.len(),
        tests.case.len() - failed,
        failed,
        policy.display()
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn token_cmd(cmd: TokenCmd, config: &Option<PathBuf>) -> Result<ExitCode, String> {
    use warden::identity::token::{assemble, encode_claims, Alg, Claims};
    match cmd {
        TokenCmd::Keygen { out } => {
            std::fs::create_dir_all(&out)
                .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
            let (key, public) = (out.join("ed25519.key"), out.join("ed25519.pub"));
            warden::secrets::create_ed25519_key(&key, Some(&public))?;
            println!("{}\n{}", key.display(), public.display());
            Ok(ExitCode::SUCCESS)
        }
        TokenCmd::Issue {
            tenant,
            agent,
            role,
            clearance,
            max_level,
            ttl,
            key_id,
            ed25519_key,
            hmac_key,
            keystore,
            delegable,
            holder_key,
        } => {
            let clearance = parse_clearance(&clearance)?;
            let max_level = parse_level(&max_level)?;
            let holder = match delegable {
                None => None,
                Some(d) if (1..=warden::identity::chain::MAX_LINKS as u8).contains(&d) => {
                    Some(warden::identity::chain::new_holder(d)?)
                }
                Some(d) => {
                    return Err(format!(
                        "--delegable {d}: a token may be delegable through 1 to {} links",
                        warden::identity::chain::MAX_LINKS
                    ))
                }
            };
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_err(|e| e.to_string())?
                .as_millis() as u64;
            let mut nonce = [0u8; 8];
            warden::secrets::random_bytes(&mut nonce)?;
            let alg = match (&ed25519_key, keystore.as_deref()) {
                (Some(_), _) | (None, Some("ed25519")) => Alg::Ed25519,
                (None, Some("hmac")) | (None, None) => Alg::HmacSha256,
                (None, Some(other)) => {
                    return Err(format!("--keystore: `{other}` is neither hmac nor ed25519"))
                }
            };
            for (flag, k) in [("--ed25519-key", &ed25519_key), ("--hmac-key", &hmac_key)] {
                if k.as_ref()
                    .and_then(|p| p.extension())
                    .is_some_and(|e| e == "pub")
                {
                    return Err(format!(
                        "{flag} {}: a .pub file is a public key; sign with the secret key beside it",
                        k.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
                    ));
                }
            }
            if keystore.is_some() {
                let cfg = load_config(config)?;
                if cfg.hsm.module.is_empty() && cfg.hsm.keystore_file.is_empty() {
                    return Err("--keystore: the config names no keystore ([hsm] module or keystore_file), so its keys would be made in this process and lost with it: no engine could verify the token; give -c with an [hsm] section".into());
                }
            }
            if ttl == 0 || ttl > MAX_TOKEN_TTL_S {
                return Err(format!(
                    "--ttl: {ttl} s; a token lives between 1 s and {MAX_TOKEN_TTL_S} s (366 days)"
                ));
            }
            let claims = Claims {
                alg,
                key_id,
                clearance,
                max_level,
                issued_at_ms: now,
                expires_at_ms: now + ttl * 1000,
                nonce: u64::from_le_bytes(nonce),
                tenant: &tenant,
                agent: &agent,
                role: &role,
                holder: holder.map(|h| h.0),
            };
            let signed = encode_claims(&claims)?;
            let token = match (ed25519_key, hmac_key) {
                _ if keystore.is_some() => {
                    let cfg = load_config(config)?;
                    let (keys, fault) = warden::hsm::open(&cfg.hsm)?;
                    if let Some(f) = fault {
                        return Err(format!("the keystore is unusable: {f}"));
                    }
                    let tag = match alg {
                        Alg::Ed25519 => {
                            if !matches!(keys.public_key(), Ok(warden::hsm::PublicKey::Ed25519(_)))
                            {
                                return Err("the keystore's signature key is not Ed25519".into());
                            }
                            keys.token_sign(&signed).map_err(|e| e.to_string())?
                        }
                        Alg::HmacSha256 => keys
                            .token_hmac_sign(&signed)
                            .map_err(|e| e.to_string())?
                            .to_vec(),
                    };
                    keys.shutdown();
                    assemble(&signed, &tag)
                }
                (Some(k), _) => {
                    use ed25519_dalek::Signer;
                    let seed =
                        warden::secrets::read_secret_key_file(&k.display().to_string(), Some(32))?;
                    let mut s = [0u8; 32];
                    s.copy_from_slice(&seed);
                    let sk = ed25519_dalek::SigningKey::from_bytes(&s);
                    assemble(&signed, &sk.sign(&signed).to_bytes())
                }
                (None, Some(k)) => {
                    use hmac::Mac;
                    let secret =
                        warden::secrets::read_secret_key_file(&k.display().to_string(), None)?;
                    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&secret)
                        .map_err(|e| e.to_string())?;
                    mac.update(&signed);
                    assemble(&signed, &mac.finalize().into_bytes())
                }
                (None, None) => {
                    return Err(
                        "give --ed25519-key FILE, --hmac-key FILE or --keystore hmac|ed25519"
                            .into(),
                    )
                }
            };
            match (holder, holder_key) {
                (Some((_, secret)), Some(path)) => {
                    warden::secrets::create_secret_file(&path, &secret)?;
                    println!("{}", warden::identity::chain::with_proof(&token, &secret));
                }
                _ => println!("{token}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        TokenCmd::Delegate {
            from,
            holder_key,
            key_out,
            agent,
            tools,
            resource,
            clearance,
            max_level,
            ttl,
            depth,
        } => {
            let text = if from.as_os_str() == "-" {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin().take(64 * 1024), &mut s)
                    .map_err(|e| format!("--from -: {e}"))?;
                s
            } else {
                read_small(&from, 64 * 1024)?
            };
            let credential = text.trim();
            if ttl == 0 || ttl > MAX_TOKEN_TTL_S {
                return Err(format!(
                    "--ttl: {ttl} s; a delegation lives between 1 s and {MAX_TOKEN_TTL_S} s"
                ));
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_err(|e| e.to_string())?
                .as_millis() as u64;
            let caveats = warden::identity::chain::Caveats {
                agent,
                clearance: clearance.as_deref().map(parse_clearance).transpose()?,
                max_level: max_level.as_deref().map(parse_level).transpose()?,
                expires_at_ms: Some(now + ttl * 1000),
                depth,
                resource_prefix: resource,
                tools,
            };
            if key_out.is_none() && depth != Some(0) {
                return Err("--key-out FILE: where the delegate's secret goes, so it can delegate further (or --depth 0: it may not)".into());
            }
            let secret =
                warden::secrets::read_secret_key_file(&holder_key.display().to_string(), Some(32))?;
            let secret: [u8; 32] = secret
                .try_into()
                .map_err(|_| format!("{}: not a 32-byte key", holder_key.display()))?;
            let mut nonce = [0u8; 8];
            warden::secrets::random_bytes(&mut nonce)?;
            let (out, next) = warden::identity::chain::delegate(
                credential,
                &secret,
                &caveats,
                u64::from_le_bytes(nonce),
            )
            .map_err(|e| format!("{}: {e}", from.display()))?;
            if let Some(path) = key_out {
                warden::secrets::create_secret_file(&path, &next)?;
            }
            println!("{out}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn parse_clearance(s: &str) -> Result<warden::Classification, String> {
    warden::Classification::parse(s).ok_or_else(|| {
        format!("--clearance: unknown classification `{s}`; expected unclassified, cui, confidential, secret or top_secret")
    })
}

fn parse_level(s: &str) -> Result<warden::SecurityLevel, String> {
    Ok(match s {
        "safe" => warden::SecurityLevel::Safe,
        "restricted" => warden::SecurityLevel::Restricted,
        "privileged" => warden::SecurityLevel::Privileged,
        other => {
            return Err(format!(
                "--max-level: unknown level `{other}`; expected safe, restricted or privileged"
            ))
        }
    })
}

/// A small file read whole, refused past `max` bytes.
fn read_small(path: &std::path::Path, max: u64) -> Result<String, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut s = String::new();
    f.take(max + 1)
        .read_to_string(&mut s)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if s.len() as u64 > max {
        return Err(format!("{}: larger than {max} bytes", path.display()));
    }
    Ok(s)
}

/// The longest lifetime `token issue` gives a token.
const MAX_TOKEN_TTL_S: u64 = 366 * 24 * 3600;

/// Parses a flag's value with the config file's own names for it (one spelling everywhere).
fn config_enum<T: serde::de::DeserializeOwned>(
    flag: &str,
    value: &str,
    expected: &str,
) -> Result<T, String> {
    use serde::de::IntoDeserializer;
    T::deserialize(value.into_deserializer()).map_err(|_: serde::de::value::Error| {
        format!("{flag}: unknown value `{value}`; expected {expected}")
    })
}

fn audit_cmd(cmd: AuditCmd, config: &Option<PathBuf>) -> Result<ExitCode, String> {
    let (dir, public_key) = match &cmd {
        AuditCmd::Verify {
            dir, public_key, ..
        }
        | AuditCmd::Tail {
            dir, public_key, ..
        } => (dir.clone(), public_key.clone()),
        AuditCmd::Archive { dir } => return archive_cmd(dir, config),
    };
    // a key given is read where it lies; the log's own DIR/signing.pub must be a regular file
    let key_path = public_key
        .clone()
        .unwrap_or_else(|| dir.join("signing.pub"));
    let key = match public_key {
        Some(p) => warden::audit::load_public_key(&p),
        None => warden::audit::load_public_key_own(&key_path),
    }
    .map_err(|e| e.to_string())?;
    match cmd {
        AuditCmd::Verify {
            checkpoint,
            fleet,
            node,
            ..
        } => match warden::audit::verify_pinned_all(
            &dir,
            &key,
            |_, _| {},
            &if fleet {
                fleet_checkpoints(config, node.as_deref(), &key)?
            } else {
                checkpoint
                    .as_deref()
                    .map(parse_checkpoint)
                    .transpose()?
                    .into_iter()
                    .collect()
            },
        ) {
            Ok(s) => {
                println!(
                    "{}: intact: {} segments, {} events, {} checkpoints, last seq {}, last checkpoint {} (HEAD names {}), head {} (key {})\n  to detect a later rollback or replacement, keep a copy of: --checkpoint {}:{}",
                    dir.display(),
                    s.segments,
                    s.events,
                    s.checkpoints,
                    s.last_seq,
                    s.last_checkpoint_seq,
                    s.anchor_seq,
                    warden::secrets::to_hex(&s.head),
                    key_path.display(),
                    s.last_checkpoint_seq,
                    warden::secrets::to_hex(&s.last_checkpoint_head)
                );
                if s.last_seq > s.last_checkpoint_seq {
                    println!(
                        "  records {}..={} follow the last checkpoint unsigned: the chain links them, but no signature vouches for them yet (the next checkpoint, or the next start, signs them; a start first writes a record naming them)",
                        s.last_checkpoint_seq + 1,
                        s.last_seq
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(bad) => {
                println!("{}: NOT intact: {bad}", dir.display());
                Ok(ExitCode::from(1))
            }
        },
        AuditCmd::Archive { dir } => archive_cmd(&dir, config),
        AuditCmd::Tail {
            tenant,
            last,
            format,
            ..
        } => {
            use std::io::Write;
            let mut lines: std::collections::VecDeque<String> = Default::default();
            let keep = last.unwrap_or(usize::MAX);
            let out = std::io::stdout();
            let mut out = std::io::BufWriter::new(out.lock());
            let res = warden::audit::verify(&dir, &key, |seq, e| {
                if tenant.as_deref().is_some_and(|t| t != e.tenant) {
                    return;
                }
                let line = if format == "ocsf" {
                    warden::audit::siem::ocsf(seq, e).to_string()
                } else {
                    warden::audit::record::event_json(seq, e).to_string()
                };
                if keep == usize::MAX {
                    let _ = writeln!(out, "{line}");
                } else {
                    lines.push_back(line);
                    if lines.len() > keep {
                        lines.pop_front();
                    }
                }
            });
            for l in lines {
                let _ = writeln!(out, "{l}");
            }
            let _ = out.flush();
            match res {
                Ok(_) => Ok(ExitCode::SUCCESS),
                Err(bad) => {
                    eprintln!("{}: stopped at a bad record: {bad}", dir.display());
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}

/// `SEQ:HEAD` (a sequence number and 64 hex digits).
/// Every checkpoint `node` published to the fleet, each signed by the log's key (`audit verify
/// --fleet`): the log must hold them all.
fn fleet_checkpoints(
    config: &Option<PathBuf>,
    node: Option<&str>,
    key: &ed25519_dalek::VerifyingKey,
) -> Result<Vec<(u64, [u8; 32])>, String> {
    let cfg = load_config(config)?;
    if !cfg.fleet.enabled() {
        return Err("audit verify --fleet: the config has no fleet (set fleet.servers, and pass it with --config)".into());
    }
    #[cfg(feature = "fleet")]
    {
        let node = node.map_or_else(|| cfg.fleet.node_name(), str::to_string);
        let (all, refused) = warden::fleet::published_checkpoints(&cfg.fleet, &node)?;
        // Every message on the node's subject must be a checkpoint signed by this log's key:
        // one that is not (another key: the log replaced, key and all; garbage: a flood) is
        // refused outright, not skipped. The highest then pins the log: a replayed or later
        // lower one never lowers it.
        let foreign = all
            .iter()
            .filter(|(seq, head, sig)| {
                let msg = warden::audit::record::checkpoint_message(*seq, head);
                key.verify_strict(&msg, &ed25519_dalek::Signature::from_bytes(sig))
                    .is_err()
            })
            .count();
        if foreign + refused > 0 {
            return Err(format!(
                "audit verify --fleet: of the {} messages node {node} published, {foreign} are checkpoints not signed by this log's key and {refused} are no checkpoints at all: the log was replaced (key and all), or someone published in the node's name; nothing here can be vouched for",
                all.len() + refused
            ));
        }
        let Some(&(seq, _, _)) = all.iter().max_by_key(|(seq, _, _)| *seq) else {
            return Err(format!(
                "audit verify --fleet: node {node} published no checkpoint"
            ));
        };
        eprintln!(
            "fleet: node {node} published {} checkpoints (the highest {seq}), all signed by this log's key; the log must hold every one",
            all.len()
        );
        // two checkpoints at one sequence number with different heads: the log forked (rolled
        // back and written again); the pins would otherwise keep only one of them
        let mut seen = std::collections::HashMap::new();
        for (s, h, _) in &all {
            if let Some(other) = seen.insert(*s, *h) {
                if other != *h {
                    return Err(format!(
                        "audit verify --fleet: node {node} published two different checkpoints at seq {s}: its log was rolled back and written again"
                    ));
                }
            }
        }
        Ok(seen.into_iter().collect())
    }
    #[cfg(not(feature = "fleet"))]
    {
        let _ = (node, key);
        Err("audit verify --fleet: this warden was built without the `fleet` feature; rebuild it with `cargo build --release --features fleet`".into())
    }
}

fn parse_checkpoint(s: &str) -> Result<(u64, [u8; 32]), String> {
    let bad = || {
        format!("--checkpoint {s}: give SEQ:HEAD, a sequence number and the 64 hex digits of its head, as `audit verify` prints them")
    };
    let (seq, head) = s.split_once(':').ok_or_else(bad)?;
    let seq: u64 = seq.parse().map_err(|_| bad())?;
    let h = warden::secrets::from_hex(head).ok_or_else(bad)?;
    let head: [u8; 32] = h.try_into().map_err(|_| bad())?;
    Ok((seq, head))
}

fn archive_cmd(dir: &std::path::Path, config: &Option<PathBuf>) -> Result<ExitCode, String> {
    let mut cfg = load_config(config)?;
    cfg.audit.dir = dir.display().to_string();
    let (keys, fault) = warden::hsm::open(&cfg.hsm)?;
    if let (Some(f), "keystore") = (fault, cfg.audit.signing_key.as_str()) {
        return Err(format!("the keystore is unusable: {f}"));
    }
    let to = warden::audit::archive(&cfg.audit, &keys).map_err(|e| e.to_string());
    keys.shutdown();
    let to = to?;
    println!(
        "{}: the old log is in {} (verify it with `warden audit verify {}`); a new log begins, its first record naming the old one and pinning its contents",
        dir.display(),
        to.display(),
        to.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The longest input line `scan` reads: the largest text `threat.max_scan_bytes` admits, with
/// room for JSON escapes.
const MAX_SCAN_LINE_BYTES: usize = 32 << 20;

/// Reads one line (without its newline) into `buf`, keeping at most `max` bytes and skipping
/// the rest of a longer one. Returns (a line was there, it was whole).
fn read_line_bounded(
    r: &mut dyn std::io::BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<(bool, bool)> {
    buf.clear();
    let (mut got, mut whole) = (false, true);
    loop {
        let chunk = match r.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok((got, whole));
        }
        got = true;
        let (take, done) = match memchr::memchr(b'\n', chunk) {
            Some(i) => (i, true),
            None => (chunk.len(), false),
        };
        let room = max.saturating_sub(buf.len());
        if take > room {
            whole = false;
        }
        buf.extend_from_slice(&chunk[..take.min(room)]);
        r.consume(take + done as usize);
        if done {
            return Ok((true, whole));
        }
    }
}

/// The fields of a `scan` line that warden reads, parsed apart only to refuse one given twice
/// (serde refuses a struct's field repeated; other fields are ignored here).
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct ScanLineFields {
    text: Option<serde::de::IgnoredAny>,
    origin: Option<serde::de::IgnoredAny>,
    label: Option<serde::de::IgnoredAny>,
    category: Option<serde::de::IgnoredAny>,
    tuned: Option<serde::de::IgnoredAny>,
}

fn scan_cmd(
    file: Option<PathBuf>,
    eval: bool,
    threshold: Option<&str>,
    model: Option<PathBuf>,
    catalogue: Option<PathBuf>,
    explain: bool,
    origin: &str,
) -> Result<ExitCode, String> {
    use std::io::{BufRead, Write};
    use warden::ContentOrigin;
    if threshold.is_some() && !eval {
        return Err("--threshold: it sets what --eval counts as caught; give --eval too".into());
    }
    let threshold = threshold.unwrap_or("high");
    const ORIGINS: &str = "prompt (written to an agent), data (what an agent read: a tool's result, a page, a document) or user (a person's chat message)";
    let default_origin = ContentOrigin::parse(origin)
        .ok_or_else(|| format!("--origin: unknown origin `{origin}`; expected {ORIGINS}"))?;
    let threshold = config_enum::<warden::config::LevelName>(
        "--threshold",
        threshold,
        "low, medium, high or critical",
    )?
    .level();
    let input: Box<dyn BufRead> = match file.as_deref() {
        Some(p) if p.as_os_str() != "-" => Box::new(std::io::BufReader::new(
            std::fs::File::open(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?,
        )),
        _ => Box::new(std::io::BufReader::new(std::io::stdin())),
    };
    let model = match model {
        Some(p) => {
            Some(warden::threat::model::Model::load(&p).map_err(|e| format!("--model: {e}"))?)
        }
        None => None,
    };
    let scanner = match catalogue {
        Some(p) => {
            let src = warden::source::read_text_bounded(
                &p,
                warden::source::limits::CATALOGUE_BYTES,
                "--catalogue",
            )?;
            warden::threat::Scanner::from_toml(&src, &p.display().to_string())
                .map_err(|e| format!("--catalogue: {e}"))?
        }
        None => warden::threat::Scanner::builtin(),
    };
    let mut scanner = scanner.with_model(model);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    // (label, category) -> (rows, flagged, rows tuned on)
    let mut stats: std::collections::BTreeMap<(String, String), (u64, u64, u64)> =
        Default::default();
    // whether any row says `tuned`
    let mut marked = false;
    let mut input = input;
    let mut buf = Vec::new();
    let mut n = 0usize;
    // One output line per input line, always: a line that cannot be read as a text (blank, not
    // UTF-8, longer than any text warden scans, not JSON) gets an error object in its place.
    loop {
        let (got, whole) = read_line_bounded(&mut input, &mut buf, MAX_SCAN_LINE_BYTES)
            .map_err(|e| format!("line {}: {e}", n + 1))?;
        if !got {
            break;
        }
        n += 1;
        let n = n - 1;
        let problem = if !whole {
            Some(format!("longer than {MAX_SCAN_LINE_BYTES} bytes"))
        } else if buf.iter().all(u8::is_ascii_whitespace) {
            Some("blank line".to_string())
        } else {
            std::str::from_utf8(&buf)
                .err()
                .map(|e| format!("not UTF-8 (invalid byte at offset {})", e.valid_up_to()))
        };
        if let Some(p) = problem {
            if eval {
                return Err(format!("line {}: {p}", n + 1));
            }
            writeln!(out, "{}", serde_json::json!({"line": n + 1, "error": p}))
                .map_err(|e| e.to_string())?;
            continue;
        }
        let line = std::str::from_utf8(&buf).expect("checked above");
        let v: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                if eval {
                    return Err(format!("line {}: not JSON: {e}", n + 1));
                }
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"line": n + 1, "error": format!("not JSON: {e}")})
                )
                .map_err(|e| e.to_string())?;
                continue;
            }
        };
        // a field given twice is refused: `Value` keeps the last, another reader of the same
        // line may take the first (the text scanned would not be the text it saw)
        if let Err(e) = serde_json::from_str::<ScanLineFields>(line) {
            let p = format!("{e}; give each field once");
            if eval {
                return Err(format!("line {}: {p}", n + 1));
            }
            writeln!(out, "{}", serde_json::json!({"line": n + 1, "error": p}))
                .map_err(|e| e.to_string())?;
            continue;
        }
        let Some(text) = v.get("text").and_then(|t| t.as_str()) else {
            if eval {
                return Err(format!(
                    "line {}: field `text` is missing or not a string",
                    n + 1
                ));
            }
            writeln!(out, "{}", serde_json::json!({"line": n + 1, "error": "field `text` is missing or not a string"})).map_err(|e| e.to_string())?;
            continue;
        };
        let origin = match v.get("origin") {
            None => default_origin,
            Some(o) => match o.as_str().and_then(ContentOrigin::parse) {
                Some(o) => o,
                None => {
                    let p =
                        format!("field `origin` must be \"prompt\", \"data\" or \"user\", got {o}");
                    if eval {
                        return Err(format!("line {}: {p}", n + 1));
                    }
                    writeln!(out, "{}", serde_json::json!({"line": n + 1, "error": p}))
                        .map_err(|e| e.to_string())?;
                    continue;
                }
            },
        };
        let (r, matched) = if explain {
            scanner.explain_as(text.as_bytes(), origin)
        } else {
            (scanner.scan_as(text.as_bytes(), origin), Vec::new())
        };
        if eval {
            let label = match v.get("label").and_then(|x| x.as_str()) {
                Some(l @ ("attack" | "benign")) => l.to_string(),
                _ => {
                    return Err(format!(
                        "line {}: field `label` must be \"attack\" or \"benign\"",
                        n + 1
                    ))
                }
            };
            let Some(cat) = v.get("category").and_then(|x| x.as_str()) else {
                return Err(format!(
                    "line {}: field `category` is missing or not a string",
                    n + 1
                ));
            };
            let tuned = match v.get("tuned") {
                None => false,
                Some(serde_json::Value::Bool(b)) => {
                    marked = true;
                    *b
                }
                Some(_) => {
                    return Err(format!(
                        "line {}: field `tuned` must be true or false",
                        n + 1
                    ))
                }
            };
            let cat = cat.to_string();
            let e = stats.entry((label, cat)).or_default();
            e.0 += 1;
            e.1 += (r.level >= threshold) as u64;
            e.2 += tuned as u64;
        } else {
            let cats: Vec<&str> = r.category_names().collect();
            let mut line = serde_json::json!({"threat_level": r.level.name(), "score": r.score, "categories": cats});
            if explain {
                let all = scanner.patterns();
                line["patterns"] = matched
                    .iter()
                    .map(|&i| {
                        let p = &all[i as usize];
                        let weight = match origin {
                            ContentOrigin::Data => p.data_weight,
                            ContentOrigin::Prompt | ContentOrigin::User => p.weight,
                        };
                        serde_json::json!({"index": i, "category": p.category, "weight": weight, "pattern": p.text})
                    })
                    .collect();
            }
            writeln!(out, "{line}").map_err(|e| e.to_string())?;
        }
    }
    if eval {
        // the category column as wide as its longest name, at least 20
        let w = stats
            .keys()
            .map(|(_, c)| c.len())
            .max()
            .unwrap_or(0)
            .max(20);
        writeln!(
            out,
            "{:<8} {:<w$} {:>6} {:>8} {:>8}",
            "label", "category", "rows", "flagged", "rate"
        )
        .map_err(|e| e.to_string())?;
        // per group (tuned on, held out): (attack categories, sum of their rates, worst benign
        // (rate, category))
        type Group<'a> = (u32, f64, Option<(f64, &'a str)>);
        let mut groups: [Group; 2] = [(0, 0.0, None), (0, 0.0, None)];
        for ((label, cat), (rows, flagged, tuned)) in &stats {
            let what = if label == "attack" {
                "detected"
            } else {
                "false +"
            };
            let rate = *flagged as f64 * 100.0 / *rows as f64;
            let mark = match (marked, *tuned) {
                (false, _) => "",
                (true, 0) => "  held out",
                (true, t) if t == *rows => "  tuned on",
                (true, _) => "  partly tuned on",
            };
            writeln!(
                out,
                "{label:<8} {cat:<w$} {rows:>6} {flagged:>8} {rate:>7.1}%  {what}{mark}"
            )
            .map_err(|e| e.to_string())?;
            // a category partly tuned on counts as tuned on: it does not flatter the held out
            let g = &mut groups[(*tuned == 0) as usize];
            if label == "attack" {
                g.0 += 1;
                g.1 += rate;
            } else if g.2.is_none_or(|(worst, _)| rate > worst) {
                g.2 = Some((rate, cat));
            }
        }
        let names = match marked {
            true => ["tuned on", "held out"],
            false => ["", "all rows"],
        };
        for ((attacks, sum, worst), name) in groups.iter().zip(names) {
            if name.is_empty() || (*attacks == 0 && worst.is_none()) {
                continue;
            }
            let mean = match attacks {
                0 => "no attack category".to_string(),
                n => format!(
                    "mean detection {:.1}% over {n} attack categories",
                    sum / *n as f64
                ),
            };
            let worst = match worst {
                Some((r, c)) => format!("worst benign {r:.1}% ({c})"),
                None => "no benign category".to_string(),
            };
            writeln!(out, "{name}: {mean}; {worst}").map_err(|e| e.to_string())?;
        }
    }
    out.flush().map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}
