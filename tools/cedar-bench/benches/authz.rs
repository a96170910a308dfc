//! The authorization decision alone: warden's compiled snapshot against cedar-policy on the
//! same policy, side by side. Cedar's `PolicySet` and `Entities` are built outside the timed
//! loop, as its users do; its `Request` is measured both prebuilt and built per decision.
//! `cargo bench -p warden-cedar-bench`.

use criterion::{black_box, Criterion};
use std::time::Duration;
use warden::policy::Snapshot;
use warden::{Classification, Operation, Request};
use warden_cedar_bench::{
    random_policy, random_request, random_request_for, CedarPolicy, RandomRequest,
};

fn main() {
    let mut cr = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args();
    // A small policy (2 tenants, 6 tools, 2 roles, 10 agents) and a mid-sized one
    // (8 tenants, 40 tools, 10 roles, 200 agents).
    for (name, nt, ntools, nroles, nagents) in [("small", 2, 6, 2, 10), ("mid", 8, 40, 10, 200)] {
        let src = random_policy(7, nt, ntools, nroles, nagents);
        let w = Snapshot::from_toml(&src, "bench.toml").unwrap();
        let c = CedarPolicy::from_snapshot(&w);
        // Half drawn from the policy (allows and near misses), half arbitrary.
        let reqs: Vec<RandomRequest> = (0..1024)
            .map(|i| {
                if i % 2 == 0 {
                    random_request_for(&w, i)
                } else {
                    random_request(i, nt, ntools, nagents)
                }
            })
            .collect();
        let cedar_reqs: Vec<_> = reqs
            .iter()
            .map(|r| c.request(&r.tenant, &r.agent, &r.tool, &r.resource, r.class as i64))
            .collect();
        let agree = reqs
            .iter()
            .zip(&cedar_reqs)
            .filter(|(r, cr)| w.decide(&wreq(r), &["https"]).is_ok() == c.allows(cr))
            .count();
        let allows = reqs
            .iter()
            .filter(|r| w.decide(&wreq(r), &["https"]).is_ok())
            .count();
        println!(
            "\n[{name}] {agree} of 1024 decisions agree; {allows} allows; {} cedar policies",
            c.policies.policies().count()
        );
        let mut g = cr.benchmark_group(format!("authorize_{name}"));
        let mut i = 0usize;
        g.bench_function("warden_snapshot", |b| {
            b.iter(|| {
                i = (i + 1) & 1023;
                black_box(w.decide(&wreq(&reqs[i]), &["https"]).is_ok())
            })
        });
        g.bench_function("cedar_prebuilt_request", |b| {
            b.iter(|| {
                i = (i + 1) & 1023;
                black_box(c.allows(&cedar_reqs[i]))
            })
        });
        g.bench_function("cedar_request_per_decision", |b| {
            b.iter(|| {
                i = (i + 1) & 1023;
                let r = &reqs[i];
                black_box(c.allows(&c.request(
                    &r.tenant,
                    &r.agent,
                    &r.tool,
                    &r.resource,
                    r.class as i64,
                )))
            })
        });
        g.finish();
    }
    cr.final_summary();
}

fn wreq(r: &RandomRequest) -> Request<'_> {
    Request::new(Operation::Check)
        .tenant(&r.tenant)
        .agent(&r.agent)
        .tool(&r.tool)
        .resource(&r.resource)
        .classification(Classification::from_code(r.class).unwrap())
}
