//! warden and Cedar give the same decision on thousands of random requests over random policies.

use warden::policy::Snapshot;
use warden::{Classification, Operation, Request};
use warden_cedar_bench::{random_policy, random_request, random_request_for, CedarPolicy};

#[test]
fn same_decisions_on_random_policies_and_requests() {
    let (mut total, mut allowed) = (0, 0);
    for seed in 0..200u64 {
        let (nt, ntools, nroles, nagents) = (
            1 + seed as usize % 3,
            1 + seed as usize % 5,
            1 + seed as usize % 3,
            2 + seed as usize % 6,
        );
        let src = random_policy(seed, nt, ntools, nroles, nagents);
        let w = Snapshot::from_toml(&src, "random.toml").unwrap();
        let c = CedarPolicy::from_snapshot(&w);
        for i in 0..100u64 {
            let r = if i % 2 == 0 {
                random_request(seed * 1000 + i, nt, ntools, nagents)
            } else {
                random_request_for(&w, seed * 1000 + i)
            };
            let wreq = Request::new(Operation::Check)
                .tenant(&r.tenant)
                .agent(&r.agent)
                .tool(&r.tool)
                .resource(&r.resource)
                .classification(Classification::from_code(r.class).unwrap());
            let ours = w.decide(&wreq, &["https"]).is_ok();
            let theirs =
                c.allows(&c.request(&r.tenant, &r.agent, &r.tool, &r.resource, r.class as i64));
            assert_eq!(
                ours, theirs,
                "seed {seed} request {i}: warden {ours}, cedar {theirs}\n{}/{}/{}/{} class {}\n{src}",
                r.tenant, r.agent, r.tool, r.resource, r.class
            );
            total += 1;
            allowed += ours as u32;
        }
    }
    assert_eq!(total, 20_000);
    assert!(
        allowed > 500,
        "the random requests exercise allows too ({allowed})"
    );
    println!("{total} decisions, {allowed} allows, all equal");
}
