//! The `warden` command: a thin shell over the library.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};
use std::io::Read;
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
    /// Validates one JSON request (from FILE, or stdin) and prints the JSON verdict.
    /// Exit status: 0 allowed, 1 denied, 2 usage error.
    Validate {
        /// A JSON request file; `-` or nothing reads stdin.
        file: Option<PathBuf>,
    },
    /// Runs a mixed in-process workload against the engine and prints its metrics.
    Bench {
        /// How long to run, seconds.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Client threads submitting concurrently.
        #[arg(long, default_value_t = 1)]
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
    },
    /// Checks a configuration file and prints the effective configuration.
    Config { file: PathBuf },
    /// Policy files.
    Policy {
        #[command(subcommand)]
        cmd: PolicyCmd,
    },
}

#[derive(Subcommand)]
enum PolicyCmd {
    /// Compiles a policy file and reports its first error with file, line and field
    /// (exit 1), or a summary (exit 0).
    Check { file: PathBuf },
}

fn load_config(path: &Option<PathBuf>) -> Result<Config, String> {
    match path {
        Some(p) => Config::load(p).map_err(|e| e.to_string()),
        None => Ok(Config::default()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("warden: {msg}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.cmd {
        Cmd::Validate { file } => {
            let text = match file.as_deref() {
                Some(p) if p.as_os_str() != "-" => std::fs::read_to_string(p)
                    .map_err(|e| format!("cannot read {}: {e}", p.display()))?,
                _ => {
                    let mut s = String::new();
                    std::io::stdin()
                        .read_to_string(&mut s)
                        .map_err(|e| format!("cannot read stdin: {e}"))?;
                    s
                }
            };
            let mut cfg = load_config(&cli.config)?;
            if cfg.engine.cores == 0 {
                cfg.engine.cores = 1;
            }
            let parsed = JsonRequest::parse(&text).and_then(|j| {
                j.to_request()?;
                Ok(j)
            });
            let out = match parsed {
                Err(e) => malformed_verdict(&e),
                Ok(j) => {
                    let engine = Engine::builder()
                        .config(cfg)
                        .build()
                        .map_err(|e| e.to_string())?;
                    let req = j.to_request().map_err(|e| e.to_string())?;
                    let v = engine.handle().validate(&req);
                    engine.shutdown();
                    JsonVerdict::from(&v)
                }
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&out).expect("verdict serializes")
            );
            Ok(if out.decision == "deny" {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
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
        } => {
            let mut cfg = load_config(&cli.config)?;
            if let Some(c) = cores {
                cfg.engine.cores = c;
            }
            let engine = workload::builder()
                .config(cfg)
                .build()
                .map_err(|e| e.to_string())?;
            let opts = WorkloadOptions {
                duration: Duration::from_secs_f64(seconds),
                threads,
                keys,
                zipf_s: zipf,
                batch,
                content_bytes,
            };
            let report = workload::run(&engine, &opts);
            engine.shutdown();
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("report serializes")
                );
            } else {
                let m = &report.metrics;
                println!(
                    "warden bench: {} cores, {} client threads, batch {}, {} keys (zipf {}), {} s",
                    m.cores, threads, batch, keys, zipf, seconds
                );
                println!(
                    "  validations      {:>12}   ({:.0}/s)",
                    report.requests, report.requests_per_s
                );
                println!(
                    "  allowed/denied   {:>12} / {}",
                    report.allowed, report.denied
                );
                println!(
                    "  cache hit rate   {:>11.1}%   entries {}",
                    m.cache_hit_rate * 100.0,
                    m.cache_entries
                );
                println!(
                    "  latency ns       avg {:.0}  p50 {}  p95 {}  p99 {}  p999 {}  max {}",
                    m.latency.avg_ns,
                    m.latency.p50_ns,
                    m.latency.p95_ns,
                    m.latency.p99_ns,
                    m.latency.p999_ns,
                    m.latency.max_ns
                );
                println!(
                    "  steals {}  shed {:?}  aged {}  parks {}  stage panics {}",
                    m.steals, m.shed, m.aged, m.core_parks, m.stage_panics
                );
                for c in &m.per_core {
                    println!(
                        "  core {} (cpu {:?}): {} validations, p50 {} ns, p99 {} ns",
                        c.core, c.cpu, c.validations, c.latency.p50_ns, c.latency.p99_ns
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Policy {
            cmd: PolicyCmd::Check { file },
        } => match warden::policy::Snapshot::load(&file) {
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
            Err(e) => {
                eprintln!("{e}");
                Ok(ExitCode::from(1))
            }
        },
        Cmd::Config { file } => {
            let cfg = Config::load(&file).map_err(|e| e.to_string())?;
            println!(
                "{}: ok ({} cores would start)\n{cfg:#?}",
                file.display(),
                cfg.core_count()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
