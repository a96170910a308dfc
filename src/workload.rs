//! The mixed in-process workload behind `warden bench`: a population of tenants, agents and
//! tools drawn from a Zipf distribution (so popular keys repeat and hit the cache, as real
//! traffic does), several operations, classifications and priorities, driven by client threads
//! for a fixed time. Control plane: allocates its request population up front, then submits
//! without allocating.

use crate::engine::{Engine, EngineBuilder, Handle};
use crate::metrics::Metrics;
use crate::request::Request;
use crate::stage::{Outcome, Stage, StageResult};
use crate::types::{Classification, DenyReason, Obligations, Operation, Priority, Verdict};
use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Options of a workload run.
#[derive(Clone, Debug)]
pub struct WorkloadOptions {
    pub duration: Duration,
    /// Client threads submitting concurrently.
    pub threads: usize,
    /// Distinct requests in the population.
    pub keys: usize,
    /// Zipf exponent of key popularity (0 = uniform).
    pub zipf_s: f64,
    /// Requests per `validate_batch` call (1 = `validate`).
    pub batch: usize,
    /// Bytes of content per request.
    pub content_bytes: usize,
    /// CPUs to pin the client threads to, round robin (empty: unpinned). `warden bench` gives
    /// them the CPUs the engine's cores do not use, as a gateway's threads would have.
    pub client_cpus: Vec<usize>,
}

impl Default for WorkloadOptions {
    fn default() -> Self {
        WorkloadOptions {
            duration: Duration::from_secs(5),
            threads: 2,
            keys: 10_000,
            zipf_s: 1.0,
            batch: 16,
            content_bytes: 256,
            client_cpus: Vec::new(),
        }
    }
}

/// Outcome of a workload run: the client's view and the engine's metrics.
#[derive(Debug, Serialize)]
pub struct WorkloadReport {
    pub elapsed_s: f64,
    pub requests: u64,
    pub requests_per_s: f64,
    pub allowed: u64,
    pub denied: u64,
    pub metrics: Metrics,
}

/// A Zipf(s) sampler over `0..n` by inverse CDF.
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    pub fn new(n: usize, s: f64) -> Zipf {
        let mut acc = 0.0;
        let mut cdf: Vec<f64> = (1..=n.max(1))
            .map(|k| {
                acc += 1.0 / (k as f64).powf(s);
                acc
            })
            .collect();
        for c in &mut cdf {
            *c /= acc;
        }
        Zipf { cdf }
    }
    /// Maps a uniform `u` in [0, 1) to a rank.
    pub fn sample(&self, u: f64) -> usize {
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

/// xorshift64*: a tiny deterministic generator for workloads and benches.
pub struct Rng(pub u64);
impl Rng {
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    #[inline]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A stage the workload registers so that misses do real work: tools on a deny list are
/// refused, privileged tools get resource-limit obligations.
pub struct ToolListStage {
    pub denied: Vec<&'static str>,
}

impl Stage for ToolListStage {
    fn name(&self) -> &str {
        "workload-tool-list"
    }
    fn handles(&self, op: Operation) -> bool {
        matches!(op, Operation::Check | Operation::AuthorizeTool)
    }
    fn evaluate(&self, req: &Request<'_>, out: &mut Outcome) -> StageResult {
        if self.denied.contains(&req.tool) {
            out.rule = 1;
            return StageResult::Deny(DenyReason::Custom(1));
        }
        if req.tool.starts_with("admin.") {
            out.obligations.merge(&Obligations {
                memory_bytes: 1 << 30,
                cpu_time_ms: 30_000,
                file_bytes: 100 << 20,
                audit_required: true,
                ..Obligations::NONE
            });
        }
        StageResult::Pass
    }
}

/// A builder with the workload's stages registered (a tool list for `Check` and
/// `AuthorizeTool`, and custom validator 1, which refuses content containing `DROP TABLE`).
pub fn builder() -> EngineBuilder {
    Engine::builder()
        .stage(ToolListStage {
            denied: vec!["shell.exec", "net.raw"],
        })
        .custom(1, "workload-no-sql-drop", |req, _| {
            if req
                .content
                .windows(10)
                .any(|w| w.eq_ignore_ascii_case(b"drop table"))
            {
                StageResult::Deny(DenyReason::Custom(2))
            } else {
                StageResult::Pass
            }
        })
}

struct Population {
    strings: Vec<(String, String, &'static str, Vec<u8>)>,
    meta: Vec<(Operation, Classification, Priority)>,
}

impl Population {
    fn new(keys: usize, content_bytes: usize) -> Population {
        let tools = [
            "http.get",
            "fs.read",
            "fs.write",
            "admin.deploy",
            "shell.exec",
            "search",
        ];
        let ops = [
            Operation::Check,
            Operation::Check,
            Operation::AuthorizeTool,
            Operation::Custom(1),
        ];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut strings = Vec::with_capacity(keys);
        let mut meta = Vec::with_capacity(keys);
        for i in 0..keys {
            let tenant = format!("tenant-{}", i % 17);
            let agent = format!("agent-{i}");
            let tool = tools[(rng.next_u64() % tools.len() as u64) as usize];
            let mut content: Vec<u8> =
                format!("request {i}: summarise the quarterly report; ").into_bytes();
            content.resize(content_bytes, b'x');
            if i % 97 == 0 && content_bytes >= 12 {
                content[..10].copy_from_slice(b"DROP TABLE");
            }
            strings.push((tenant, agent, tool, content));
            let op = ops[(rng.next_u64() % ops.len() as u64) as usize];
            let class = Classification::ALL[(rng.next_u64() % 5) as usize];
            let prio = Priority::ALL[(rng.next_u64() % 3) as usize];
            meta.push((op, class, prio));
        }
        Population { strings, meta }
    }
    fn get(&self, i: usize) -> Request<'_> {
        let (t, a, tool, c) = &self.strings[i];
        let (op, class, prio) = self.meta[i];
        Request::new(op)
            .tenant(t)
            .agent(a)
            .tool(tool)
            .content(c)
            .classification(class)
            .priority(prio)
    }
}

/// What the workload is, in a sentence, for reports.
pub fn describe(opts: &WorkloadOptions) -> String {
    format!(
        "{} distinct requests drawn Zipf({}) from 17 tenants: check, authorize_tool and a custom operation over 6 tools at 5 classifications, {} bytes of content each; the bench's stages deny shell.exec and content holding DROP TABLE (1 in 97), so a share of the requests is denied by design",
        opts.keys, opts.zipf_s, opts.content_bytes
    )
}

/// Runs the workload against `engine` and reports.
pub fn run(engine: &Engine, opts: &WorkloadOptions) -> WorkloadReport {
    let pop = Arc::new(Population::new(opts.keys.max(1), opts.content_bytes));
    let zipf = Arc::new(Zipf::new(opts.keys.max(1), opts.zipf_s));
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let allowed = Arc::new(AtomicU64::new(0));
    let before = engine.metrics().validations;
    let t0 = Instant::now();
    let threads: Vec<_> = (0..opts.threads.max(1))
        .map(|t| {
            let (h, pop, zipf, stop, count, allowed) = (
                engine.handle(),
                pop.clone(),
                zipf.clone(),
                stop.clone(),
                count.clone(),
                allowed.clone(),
            );
            let batch = opts.batch.max(1);
            let cpu = (!opts.client_cpus.is_empty())
                .then(|| opts.client_cpus[t % opts.client_cpus.len()]);
            std::thread::spawn(move || {
                if let Some(id) = cpu {
                    core_affinity::set_for_current(core_affinity::CoreId { id });
                }
                client(&h, &pop, &zipf, &stop, &count, &allowed, batch, t as u64)
            })
        })
        .collect();
    std::thread::sleep(opts.duration);
    stop.store(true, Relaxed);
    for t in threads {
        let _ = t.join();
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let requests = count.load(Relaxed);
    let allowed = allowed.load(Relaxed);
    let mut metrics = engine.metrics();
    // The engine's throughput over the run's own window (its counter since start would also
    // count the engine's start-up), so that it and the clients' rate describe the same seconds.
    metrics.throughput_per_s = (metrics.validations - before) as f64 / elapsed;
    WorkloadReport {
        elapsed_s: elapsed,
        requests,
        requests_per_s: requests as f64 / elapsed,
        allowed,
        denied: requests - allowed,
        metrics,
    }
}

#[allow(clippy::too_many_arguments)]
fn client(
    h: &Handle,
    pop: &Population,
    zipf: &Zipf,
    stop: &AtomicBool,
    count: &AtomicU64,
    allowed: &AtomicU64,
    batch: usize,
    seed: u64,
) {
    let mut rng = Rng(0x1234_5678 ^ (seed + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut reqs: Vec<Request<'_>> = Vec::with_capacity(batch);
    let mut out = vec![Verdict::default(); batch];
    let (mut n, mut ok) = (0u64, 0u64);
    while !stop.load(Relaxed) {
        reqs.clear();
        for _ in 0..batch {
            reqs.push(pop.get(zipf.sample(rng.unit())));
        }
        if batch == 1 {
            out[0] = h.validate(&reqs[0]);
        } else {
            let prio = reqs[0].priority;
            h.validate_batch_into(&reqs, prio, &mut out);
        }
        n += batch as u64;
        ok += out.iter().filter(|v| v.is_allowed()).count() as u64;
    }
    count.fetch_add(n, Relaxed);
    allowed.fetch_add(ok, Relaxed);
}
