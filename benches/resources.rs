//! What judging a resource costs on a cache miss: the path checks (stack buffers, no
//! allocation), a URL read by the `url` crate and its host checked, and the policy's resource
//! half (`authorize_resource`: resolve, then match the tool's patterns) for each, beside the
//! glob match alone. `cargo bench --bench resources`.

use criterion::{black_box, Criterion};
use std::time::Duration;
use warden::policy::Snapshot;
use warden::{Operation, Request};

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let p = Snapshot::load(std::path::Path::new("examples/policy.toml")).unwrap();
    let web = ["https"];
    let path = "/data/acme/reports/2026/q3-summary.csv";
    let url = "https://api.acme.example/v1/reports/2026/q3?format=csv";
    let glob = warden::policy::glob::Glob::new("/data/acme/**").unwrap();
    let mut g = c.benchmark_group("resource");
    g.bench_function("glob_match_path", |b| {
        b.iter(|| glob.matches(black_box(path)))
    });
    g.bench_function("check_path", |b| {
        b.iter(|| warden::inputs::check_resource(black_box(path), &web))
    });
    g.bench_function("check_url", |b| {
        b.iter(|| warden::inputs::check_resource(black_box(url), &web))
    });
    for (name, tool, res) in [
        ("authorize_resource_path", "fs.read", path),
        ("authorize_resource_url", "http.get", url),
    ] {
        let r = Request::new(Operation::Check)
            .tenant("acme")
            .agent("planner-1")
            .tool(tool)
            .resource(res);
        assert!(p.authorize_resource(&r, &web).is_ok(), "{name}");
        g.bench_function(name, |b| {
            b.iter(|| p.authorize_resource(black_box(&r), &web))
        });
    }
    g.finish();
    c.final_summary();
}
