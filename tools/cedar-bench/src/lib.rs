//! Translates a compiled warden policy into Cedar (a `PolicySet` and `Entities`) so both engines
//! decide the same questions, and generates random policies and requests for the differential
//! test and the benchmark.
//!
//! The translation: each agent is an `Agent::"tenant/name"` entity in its `Role::"name"`, with
//! `tenant`, `clearance` and `max_level` attributes; each tool a `Tool::"name"` with `level`,
//! `class` and `write`; each (role, tool) grant one `permit` whose `when` clause carries the
//! level check, Bell-LaPadula, and the resource patterns of every tenant the requester may
//! reach. Patterns translate `**` to Cedar's `*`; a single `*` (one segment) has no Cedar
//! equivalent, so the generator only uses `**` patterns.

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid,
    PolicySet, Request, RestrictedExpression,
};
use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use warden::policy::{Access, Snapshot};

fn uid(ty: &str, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(EntityTypeName::from_str(ty).unwrap(), EntityId::new(id))
}

fn cedar_str(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The Cedar side of one warden policy.
pub struct CedarPolicy {
    pub policies: PolicySet,
    pub entities: Entities,
    pub authorizer: Authorizer,
    action: EntityUid,
}

impl CedarPolicy {
    pub fn from_snapshot(p: &Snapshot) -> CedarPolicy {
        let mut text = String::new();
        for role in &p.roles {
            for (t, tool) in p.tools.iter().enumerate() {
                if !role.grants[t] {
                    continue;
                }
                // the effective classification (the tool's or the data's) within the
                // clearance, for writes too; and no write down
                let blp = match tool.access {
                    Access::Read => "principal.clearance >= resource.class".to_string(),
                    Access::Write => "principal.clearance >= resource.class && resource.class >= context.data_class".to_string(),
                };
                // resource clause: empty when the tool takes no resource at all, else a pattern
                // of a tenant that is the requester's or shared it with the requester
                let mut alts = Vec::new();
                if tool.patterns.iter().all(|p| p.is_empty()) {
                    alts.push("context.resource == \"\"".to_string());
                }
                for (owner, pats) in tool.patterns.iter().enumerate() {
                    for g in pats.iter() {
                        let like = cedar_str(&g.as_str().replace("**", "*"));
                        let reachers: Vec<String> = p
                            .tenants
                            .iter()
                            .enumerate()
                            .filter(|(req, t)| *req == owner || t.shared_from[owner])
                            .map(|(_, t)| format!("principal.tenant == \"{}\"", cedar_str(&t.name)))
                            .collect();
                        alts.push(format!(
                            "(context.resource like \"{like}\" && ({}))",
                            reachers.join(" || ")
                        ));
                    }
                }
                text += &format!(
                    "permit(principal in Role::\"{}\", action == Action::\"use\", resource == Tool::\"{}\") when {{ \
                     principal.tenant == context.tenant && principal.max_level >= resource.level && \
                     principal.clearance >= context.data_class && {blp} && ({}) }};\n",
                    cedar_str(&role.name),
                    cedar_str(&tool.name),
                    alts.join(" || ")
                );
            }
        }
        let policies = PolicySet::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let mut ents = Vec::new();
        for r in &p.roles {
            ents.push(Entity::new_no_attrs(uid("Role", &r.name), HashSet::new()));
        }
        for a in &p.agents {
            let tenant = &p.tenants[a.tenant as usize].name;
            let attrs: HashMap<String, RestrictedExpression> = [
                (
                    "tenant".to_string(),
                    RestrictedExpression::new_string(tenant.to_string()),
                ),
                (
                    "clearance".to_string(),
                    RestrictedExpression::new_long(a.clearance as i64),
                ),
                (
                    "max_level".to_string(),
                    RestrictedExpression::new_long(a.max_level as i64),
                ),
            ]
            .into_iter()
            .collect();
            let parents = HashSet::from([uid("Role", &p.roles[a.role as usize].name)]);
            ents.push(
                Entity::new(
                    uid("Agent", &format!("{tenant}/{}", a.name)),
                    attrs,
                    parents,
                )
                .unwrap(),
            );
        }
        for t in &p.tools {
            let attrs: HashMap<String, RestrictedExpression> = [
                (
                    "level".to_string(),
                    RestrictedExpression::new_long(t.level as i64),
                ),
                (
                    "class".to_string(),
                    RestrictedExpression::new_long(t.classification as i64),
                ),
                (
                    "write".to_string(),
                    RestrictedExpression::new_bool(t.access == Access::Write),
                ),
            ]
            .into_iter()
            .collect();
            ents.push(Entity::new(uid("Tool", &t.name), attrs, HashSet::new()).unwrap());
        }
        CedarPolicy {
            policies,
            entities: Entities::from_entities(ents, None).unwrap(),
            authorizer: Authorizer::new(),
            action: uid("Action", "use"),
        }
    }

    /// Builds the Cedar request for (tenant, agent, tool, resource, data classification).
    pub fn request(
        &self,
        tenant: &str,
        agent: &str,
        tool: &str,
        resource: &str,
        data_class: i64,
    ) -> Request {
        let ctx = Context::from_pairs([
            (
                "tenant".to_string(),
                RestrictedExpression::new_string(tenant.to_string()),
            ),
            (
                "resource".to_string(),
                RestrictedExpression::new_string(resource.to_string()),
            ),
            (
                "data_class".to_string(),
                RestrictedExpression::new_long(data_class),
            ),
        ])
        .unwrap();
        Request::new(
            uid("Agent", &format!("{tenant}/{agent}")),
            self.action.clone(),
            uid("Tool", tool),
            ctx,
            None,
        )
        .unwrap()
    }

    pub fn allows(&self, r: &Request) -> bool {
        self.authorizer
            .is_authorized(r, &self.policies, &self.entities)
            .decision()
            == Decision::Allow
    }
}

/// A random policy in warden's TOML, from a seed: `tenants` tenants, `tools` tools, `roles`
/// roles and `agents` agents, with random levels, classifications, access, patterns, shares
/// and grants.
pub fn random_policy(
    seed: u64,
    tenants: usize,
    tools: usize,
    roles: usize,
    agents: usize,
) -> String {
    let mut rng = warden::workload::Rng(seed | 1);
    let mut pick = |n: usize| (rng.next_u64() % n as u64) as usize;
    let levels = ["safe", "restricted", "privileged"];
    let classes = [
        "unclassified",
        "cui",
        "confidential",
        "secret",
        "top_secret",
    ];
    let mut s = String::new();
    for t in 0..tenants {
        let shares: Vec<String> = (0..tenants)
            .filter(|&o| o != t && pick(4) == 0)
            .map(|o| format!("\"t{o}\""))
            .collect();
        s += &format!(
            "[[tenants]]\nname = \"t{t}\"\nshares_with = [{}]\n",
            shares.join(",")
        );
    }
    for i in 0..tools {
        s += &format!(
            "[[tools]]\nname = \"tool{i}\"\nlevel = \"{}\"\nclassification = \"{}\"\naccess = \"{}\"\n[tools.resources]\n",
            levels[pick(3)],
            classes[pick(5)],
            if pick(2) == 0 { "read" } else { "write" }
        );
        for t in 0..tenants {
            if pick(2) == 0 {
                s += &format!("t{t} = [\"/t{t}/d{}/**\"]\n", pick(3));
            }
        }
    }
    for r in 0..roles {
        let granted: Vec<String> = (0..tools)
            .filter(|_| pick(2) == 0)
            .map(|t| format!("\"tool{t}\""))
            .collect();
        s += &format!(
            "[[roles]]\nname = \"r{r}\"\ntools = [{}]\n",
            granted.join(",")
        );
    }
    for a in 0..agents {
        s += &format!(
            "[[agents]]\nname = \"a{a}\"\ntenant = \"t{}\"\nrole = \"r{}\"\nclearance = \"{}\"\nmax_level = \"{}\"\n",
            pick(tenants),
            pick(roles),
            classes[pick(5)],
            levels[pick(3)]
        );
    }
    s
}

/// A random request against a policy made by `random_policy` (names sometimes unknown).
pub struct RandomRequest {
    pub tenant: String,
    pub agent: String,
    pub tool: String,
    pub resource: String,
    pub class: u8,
}

pub fn random_request(seed: u64, tenants: usize, tools: usize, agents: usize) -> RandomRequest {
    let mut rng = warden::workload::Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut pick = |n: usize| (rng.next_u64() % n as u64) as usize;
    let resource = match pick(4) {
        0 => String::new(),
        _ => format!("/t{}/d{}/file{}.csv", pick(tenants + 1), pick(3), pick(10)),
    };
    RandomRequest {
        tenant: format!("t{}", pick(tenants + 1)),
        agent: format!("a{}", pick(agents + 1)),
        tool: format!("tool{}", pick(tools + 1)),
        resource,
        class: pick(5) as u8,
    }
}

/// A random request drawn from the policy itself: a real agent, usually its own tenant, usually
/// a tool its role grants, usually a resource under one of that tool's patterns. Exercises the
/// allow paths and the near misses around them.
pub fn random_request_for(p: &Snapshot, seed: u64) -> RandomRequest {
    let mut rng = warden::workload::Rng(seed.wrapping_mul(0xd134_2543_de82_ef95) | 1);
    let mut pick = |n: usize| (rng.next_u64() % n.max(1) as u64) as usize;
    let a = &p.agents[pick(p.agents.len())];
    let tenant = if pick(5) == 0 {
        pick(p.tenants.len())
    } else {
        a.tenant as usize
    };
    let granted: Vec<usize> = (0..p.tools.len())
        .filter(|&t| p.roles[a.role as usize].grants[t])
        .collect();
    let tool = if !granted.is_empty() && pick(4) != 0 {
        granted[pick(granted.len())]
    } else {
        pick(p.tools.len())
    };
    let pats: Vec<(usize, String)> = p.tools[tool]
        .patterns
        .iter()
        .enumerate()
        .flat_map(|(t, ps)| ps.iter().map(move |g| (t, g.as_str().to_string())))
        .collect();
    let resource = match pick(5) {
        0 => String::new(),
        1 => format!("/t{}/d{}/x.csv", pick(p.tenants.len()), pick(3)),
        _ if !pats.is_empty() => {
            let (_, g) = &pats[pick(pats.len())];
            g.replace("**", &format!("sub/file{}.csv", pick(10)))
        }
        _ => String::new(),
    };
    RandomRequest {
        tenant: p.tenants[tenant].name.to_string(),
        agent: a.name.to_string(),
        tool: p.tools[tool].name.to_string(),
        resource,
        class: pick(5) as u8,
    }
}
