//! Policy compilation and authorization: examples, every error kind, and property tests over
//! random policies for the invariants that matter.

use proptest::prelude::*;
use warden::policy::Snapshot;
use warden::{Classification, DenyReason, Operation, Request};

const WEB: &[&str] = &["https"];

fn example() -> Snapshot {
    Snapshot::load(std::path::Path::new("examples/policy.toml")).unwrap()
}

fn req<'a>(
    tenant: &'a str,
    agent: &'a str,
    tool: &'a str,
    resource: &'a str,
    c: Classification,
) -> Request<'a> {
    Request::new(Operation::Check)
        .tenant(tenant)
        .agent(agent)
        .tool(tool)
        .resource(resource)
        .classification(c)
}

#[test]
fn example_policy_decisions() {
    let p = example();
    use Classification::*;
    let ok = |r: Request| p.decide(&r, WEB).map(|g| g.classification);
    assert_eq!(
        ok(req(
            "acme",
            "planner-1",
            "fs.read",
            "/data/acme/q3.csv",
            Unclassified
        )),
        Ok(Cui)
    );
    let g = p
        .decide(
            &req("acme", "planner-1", "fs.read", "/data/acme/q3.csv", Cui),
            WEB,
        )
        .unwrap();
    assert_eq!(g.obligations.memory_bytes, 100 << 20);
    assert_eq!(g.obligations.cpu_time_ms, 5000);
    assert_eq!(g.obligations.file_bytes, 10 << 20);
    let deny = |r: Request| p.decide(&r, WEB).unwrap_err().0;
    assert_eq!(
        deny(req("nope", "planner-1", "fs.read", "", Cui)),
        DenyReason::UnknownTenant
    );
    assert_eq!(
        deny(req("globex", "planner-1", "fs.read", "", Cui)),
        DenyReason::UnknownAgent,
        "agents belong to one tenant"
    );
    assert_eq!(
        deny(req("acme", "planner-1", "rm", "", Cui)),
        DenyReason::UnknownTool
    );
    assert_eq!(
        deny(req(
            "acme",
            "planner-1",
            "fs.write",
            "/data/acme/out/x",
            Cui
        )),
        DenyReason::NotGranted
    );
    assert_eq!(
        deny(req(
            "acme",
            "planner-1",
            "fs.read",
            "/data/acme/x",
            TopSecret
        )),
        DenyReason::ReadUp
    );
    assert_eq!(
        deny(req("acme", "planner-1", "fs.read", "/etc/x", Cui)),
        DenyReason::ResourceNotAllowed
    );
    // acme's agent reading globex's data: globex did not share with acme
    assert_eq!(
        deny(req("acme", "planner-1", "fs.read", "/data/globex/x", Cui)),
        DenyReason::TenantIsolation
    );
    // globex's agent reading acme's data: acme shares with globex (reader has clearance cui)
    assert!(p
        .decide(
            &req("globex", "reader", "fs.read", "/data/acme/x", Cui),
            WEB
        )
        .is_ok());
    // write down: ops-bot holds secret data and writes to a confidential sink
    assert_eq!(
        deny(req(
            "acme",
            "ops-bot",
            "deploy",
            "https://deploy.acme.example/x",
            Secret
        )),
        DenyReason::WriteDown
    );
    let g = p
        .decide(
            &req(
                "acme",
                "ops-bot",
                "deploy",
                "https://deploy.acme.example/x",
                Cui,
            ),
            WEB,
        )
        .unwrap();
    assert!(
        g.obligations.audit_required,
        "privileged calls require audit"
    );
    assert_eq!(g.obligations.memory_bytes, 1 << 30);
    assert_eq!(
        deny(req("acme", "planner-1", "deploy", "", Cui)),
        DenyReason::NotGranted
    );
    // explain names the rule and its line
    let (_, rule) = p
        .decide(
            &req("acme", "planner-1", "fs.read", "/data/acme/x", TopSecret),
            WEB,
        )
        .unwrap_err();
    let e = p.explain(rule);
    assert!(
        e.contains("agent `planner-1`") && e.contains("examples/policy.toml:"),
        "{e}"
    );
}

#[test]
fn errors_name_file_line_and_field() {
    let cases: &[(&str, &str, usize)] = &[
        ("[[roles]]\nname = \"r\"\ntools = [\"ghost\"]\n", "roles[0].tools[0]", 3),
        ("[[tenants]]\nname = \"a\"\n[[tenants]]\nname = \"a\"\n", "tenants[1].name", 4),
        ("[[tenants]]\nname = \"a\"\n[[roles]]\nname = \"r\"\n[[agents]]\nname = \"x\"\ntenant = \"a\"\nrole = \"boss\"\n", "agents[0].role", 8),
        ("[[tools]]\nname = \"t\"\nlevel = \"godmode\"\n", "tools[0].level", 3),
        ("[[tools]]\nname = \"t\"\n[tools.resources]\nnowhere = [\"/x\"]\n", "tools[0].resources.nowhere", 4),
        ("[[tenants]]\nname = \"a\"\nshares_with = [\"b\"]\n", "tenants[0].shares_with[0]", 3),
        ("[[tools]]\nname = \"t\"\nclassification = \"ultra\"\n", "tools[0].classification", 3),
    ];
    for (src, field, line) in cases {
        let e = Snapshot::from_toml(src, "p.toml").unwrap_err();
        assert_eq!(e.field, *field, "{e}");
        assert_eq!(e.line, Some(*line), "{e}");
        assert!(e.to_string().starts_with(&format!("p.toml:{line}:")), "{e}");
    }
    let e = Snapshot::from_toml("[[agentz]]\n", "p.toml").unwrap_err();
    assert_eq!((e.line, e.field.as_str()), (Some(1), "agentz"), "{e}");
}

#[derive(Debug, Clone)]
struct Gen {
    tenants: usize,
    tools: Vec<(u8, u8, bool, Vec<usize>)>, // level, class, write, tenants with patterns
    shares: Vec<(usize, usize)>,
    roles: Vec<Vec<usize>>,
    agents: Vec<(usize, usize, u8, u8)>, // tenant, role, clearance, max level
}

const LEVELS: [&str; 3] = ["safe", "restricted", "privileged"];

fn gen() -> impl Strategy<Value = Gen> {
    (1usize..4, 1usize..5, 1usize..4).prop_flat_map(|(nt, ntools, nroles)| {
        (
            Just(nt),
            prop::collection::vec(
                (
                    0u8..3,
                    0u8..5,
                    any::<bool>(),
                    prop::collection::vec(0..nt, 0..3),
                ),
                ntools,
            ),
            prop::collection::vec((0..nt, 0..nt), 0..3),
            prop::collection::vec(prop::collection::vec(0..ntools, 0..4), nroles),
            prop::collection::vec((0..nt, 0..nroles, 0u8..5, 0u8..3), 1..6),
        )
            .prop_map(|(tenants, tools, shares, roles, agents)| Gen {
                tenants,
                tools,
                shares,
                roles,
                agents,
            })
    })
}

fn render(g: &Gen) -> String {
    let mut s = String::new();
    for t in 0..g.tenants {
        let shares: Vec<String> = g
            .shares
            .iter()
            .filter(|(a, b)| *a == t && a != b)
            .map(|(_, b)| format!("\"t{b}\""))
            .collect();
        s += &format!(
            "[[tenants]]\nname = \"t{t}\"\nshares_with = [{}]\n",
            shares.join(",")
        );
    }
    for (i, (lvl, class, write, ts)) in g.tools.iter().enumerate() {
        s += &format!(
            "[[tools]]\nname = \"tool{i}\"\nlevel = \"{}\"\nclassification = \"{}\"\naccess = \"{}\"\n[tools.resources]\n",
            LEVELS[*lvl as usize],
            Classification::from_code(*class).unwrap().name(),
            if *write { "write" } else { "read" }
        );
        let mut seen = vec![];
        for t in ts {
            if !seen.contains(t) {
                s += &format!("t{t} = [\"/t{t}/**\"]\n");
                seen.push(*t);
            }
        }
    }
    for (i, tools) in g.roles.iter().enumerate() {
        let tl: Vec<String> = tools.iter().map(|t| format!("\"tool{t}\"")).collect();
        s += &format!("[[roles]]\nname = \"r{i}\"\ntools = [{}]\n", tl.join(","));
    }
    for (i, (t, r, c, l)) in g.agents.iter().enumerate() {
        s += &format!(
            "[[agents]]\nname = \"a{i}\"\ntenant = \"t{t}\"\nrole = \"r{r}\"\nclearance = \"{}\"\nmax_level = \"{}\"\n",
            Classification::from_code(*c).unwrap().name(),
            LEVELS[*l as usize]
        );
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn authorization_invariants_hold_on_random_policies(
        g in gen(), agent in 0usize..7, tenant in 0usize..4, tool in 0usize..6, res_tenant in 0usize..4, class in 0u8..5
    ) {
        let src = render(&g);
        let p = Snapshot::from_toml(&src, "gen.toml").unwrap();
        let (tn, an, tl) = (format!("t{tenant}"), format!("a{agent}"), format!("tool{tool}"));
        let resource = format!("/t{res_tenant}/x");
        let c = Classification::from_code(class).unwrap();
        let r = req(&tn, &an, &tl, &resource, c);
        if let Ok(grant) = p.decide(&r, WEB) {
            let a = &g.agents[agent];
            let (lvl, tclass, write, _) = &g.tools[tool];
            // the agent is registered in the request's tenant
            prop_assert_eq!(a.0, tenant);
            // its role grants the tool
            prop_assert!(g.roles[a.1].contains(&tool));
            // no tool above the agent's level
            prop_assert!(*lvl <= a.3);
            // no read up, and the effective classification (the request's or the tool's,
            // whichever is higher) never above the agent's clearance, for writes too
            prop_assert!(a.2 >= class.max(*tclass));
            prop_assert!(grant.classification as u8 <= a.2);
            // no write down
            if *write { prop_assert!(*tclass >= class); }
            // no cross-tenant allow unless the owner shared with the requester
            if res_tenant != tenant {
                prop_assert!(g.shares.iter().any(|(owner, to)| *owner == res_tenant && *to == tenant), "cross-tenant allow without a grant");
            }
            // the resource is covered by a pattern of its owner tenant
            prop_assert!(g.tools[tool].3.contains(&res_tenant));
            prop_assert!(grant.classification >= c);
        }
    }
}

// ---- through the engine ----

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use warden::config::EngineConfig;
use warden::{Config, Decision, Engine};

fn engine_with(policy: Snapshot) -> Engine {
    Engine::builder()
        .config(Config {
            engine: EngineConfig {
                cores: 1,
                spin_before_park_us: 20,
                ..Default::default()
            },
            inputs: warden::config::InputsConfig {
                allowed_schemes: vec!["https".into()],
                ..Default::default()
            },
            ..Default::default()
        })
        .policy(policy)
        .build()
        .unwrap()
}

#[test]
fn check_authorizes_through_the_engine_and_cached_verdicts_still_pass_policy() {
    let e = engine_with(example());
    let h = e.handle();
    let r = req(
        "acme",
        "planner-1",
        "fs.read",
        "/data/acme/q3.csv",
        Classification::Cui,
    );
    let v1 = h.validate(&r);
    assert_eq!(v1.decision, Decision::AllowWith, "{v1:?}");
    assert_eq!(v1.obligations.memory_bytes, 100 << 20);
    assert_eq!(v1.classification, Classification::Cui);
    let v2 = h.validate(&r);
    assert!(v2.cache_hit && v2.decision == Decision::AllowWith && v2.obligations == v1.obligations);
    let d = h.validate(&req(
        "acme",
        "planner-1",
        "fs.read",
        "/data/globex/x",
        Classification::Cui,
    ));
    assert_eq!(d.reason, DenyReason::TenantIsolation);
    assert!(
        e.explain(d.rule).contains("tool `fs.read`"),
        "{}",
        e.explain(d.rule)
    );
    let d = h.validate(&req(
        "acme",
        "ghost",
        "fs.read",
        "/data/acme/x",
        Classification::Cui,
    ));
    assert_eq!(d.reason, DenyReason::UnknownAgent);
    let v = h.validate(
        &Request::new(Operation::ValidateAgent)
            .tenant("acme")
            .agent("planner-1"),
    );
    assert!(v.is_allowed(), "{v:?}");
}

#[test]
fn every_path_traversal_row_is_denied_by_check() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/threats/dev.jsonl"
    );
    let Ok(text) = std::fs::read_to_string(path) else {
        eprintln!("skipping: {path} not found");
        return;
    };
    let e = engine_with(example());
    let h = e.handle();
    let mut n = 0;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["category"] == "path_traversal" {
            let t = v["text"].as_str().unwrap();
            let verdict = h.validate(&req("acme", "planner-1", "fs.read", t, Classification::Cui));
            assert!(!verdict.is_allowed(), "allowed: {t:?}");
            n += 1;
        }
    }
    assert_eq!(n, 140);
}

#[test]
fn rate_limits_apply_to_cached_verdicts_with_a_retry_after() {
    let e = engine_with(example());
    let h = e.handle();
    let r = req(
        "acme",
        "planner-1",
        "search",
        "",
        Classification::Unclassified,
    );
    let (mut ok, mut limited) = (0, 0);
    let mut retry = 0;
    for _ in 0..400 {
        let v = h.validate(&r);
        match v.reason {
            DenyReason::None => ok += 1,
            DenyReason::RateLimited(ms) => {
                limited += 1;
                retry = ms;
            }
            other => panic!("{other:?}"),
        }
    }
    // 100/s with a burst of 200: about 200 pass at once, the rest are limited
    assert!((200..260).contains(&ok), "{ok} allowed");
    assert!(limited > 100);
    assert!((1..=20).contains(&retry), "retry after {retry} ms");
    assert!(
        e.metrics().cache_hits > 0,
        "the allows after the first were cache hits"
    );
}

#[test]
fn reload_takes_effect_on_the_next_request_cached_allows_included() {
    let e = engine_with(example());
    let h = e.handle();
    let r = req(
        "acme",
        "planner-1",
        "fs.read",
        "/data/acme/x",
        Classification::Cui,
    );
    assert!(h.validate(&r).is_allowed());
    assert!(h.validate(&r).cache_hit);
    // planner-1 removed from the policy (an operator revoking it)
    let src = std::fs::read_to_string("examples/policy.toml")
        .unwrap()
        .replace("name = \"planner-1\"", "name = \"planner-2\"");
    e.swap_policy(Snapshot::from_toml(&src, "v2.toml").unwrap())
        .unwrap();
    assert_eq!(h.validate(&r).reason, DenyReason::UnknownAgent);
    // a bad file changes nothing
    assert!(e
        .reload_policy(std::path::Path::new("/nonexistent.toml"))
        .is_err());
    assert_eq!(h.validate(&r).reason, DenyReason::UnknownAgent);
}

#[test]
fn reload_under_load_never_mixes_two_policies() {
    // v1: fs.read is restricted (100 MB) and reader has clearance cui;
    // v2: fs.read is safe (10 MB) and reader's clearance drops to unclassified.
    let template = |level: &str, class: &str, clearance: &str| {
        format!(
            "[[tenants]]\nname = \"globex\"\n[[roles]]\nname = \"analyst\"\ntools = [\"fs.read\"]\n\
             [[tools]]\nname = \"fs.read\"\nlevel = \"{level}\"\nclassification = \"{class}\"\n\
             [tools.resources]\nglobex = [\"/data/globex/**\"]\n\
             [[agents]]\nname = \"reader\"\ntenant = \"globex\"\nrole = \"analyst\"\nclearance = \"{clearance}\"\n"
        )
    };
    let v1 = template("restricted", "cui", "cui");
    let v2 = template("safe", "unclassified", "unclassified");
    let e = Arc::new(engine_with(Snapshot::from_toml(&v1, "v1").unwrap()));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (h, stop) = (e.handle(), stop.clone());
            std::thread::spawn(move || {
                let mut seen = [0u32; 2];
                while !stop.load(SeqCst) {
                    let v = h.validate(&req(
                        "globex",
                        "reader",
                        "fs.read",
                        "/data/globex/a",
                        Classification::Unclassified,
                    ));
                    match (v.decision, v.obligations.memory_bytes, v.classification) {
                        (Decision::AllowWith, m, Classification::Cui) if m == 100 << 20 => {
                            seen[0] += 1
                        }
                        (Decision::AllowWith, m, Classification::Unclassified) if m == 10 << 20 => {
                            seen[1] += 1
                        }
                        other => panic!("a verdict from neither policy: {other:?}"),
                    }
                }
                seen
            })
        })
        .collect();
    for i in 0..200 {
        let src = if i % 2 == 0 { &v2 } else { &v1 };
        e.swap_policy(Snapshot::from_toml(src, "v").unwrap())
            .unwrap();
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    stop.store(true, SeqCst);
    let seen: Vec<[u32; 2]> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    assert!(seen.iter().map(|s| s[0] + s[1]).sum::<u32>() > 100);
    assert!(
        seen.iter().any(|s| s[0] > 0) && seen.iter().any(|s| s[1] > 0),
        "{seen:?}"
    );
}
