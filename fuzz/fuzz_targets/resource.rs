//! Resources are the hostile input the policy matches: whatever the bytes, the checks never
//! panic, and a resource the policy allows lies inside its pattern as the references read it: a
//! path, percent-decoded any number of times up to four and resolved as POSIX does, stays under
//! `/data/acme/`; a URL, as a WHATWG parser (the `url` crate) reads it, is on
//! `api.acme.example` under `/public/`, and so is its path decoded and resolved as a server would.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;
use warden::policy::Snapshot;
use warden::{Operation, Request};

static POLICY: LazyLock<Snapshot> = LazyLock::new(|| {
    Snapshot::from_toml(
        r#"
[[tenants]]
name = "acme"
[[roles]]
name = "r"
tools = ["t"]
[[tools]]
name = "t"
[tools.resources]
acme = ["/data/acme/**", "https://api.acme.example/public/**"]
[[agents]]
name = "a"
tenant = "acme"
role = "r"
"#,
        "fuzz.toml",
    )
    .unwrap()
});

fn inside(p: &[u8], layers: usize, prefix: &[&[u8]]) -> bool {
    let mut b = p.to_vec();
    for _ in 0..layers {
        b = percent_encoding::percent_decode(&b).collect();
    }
    let mut segs: Vec<&[u8]> = Vec::new();
    for s in b.split(|&c| c == b'/') {
        match s {
            b"" | b"." => {}
            b".." => {
                segs.pop();
            }
            s => segs.push(s),
        }
    }
    segs.len() >= prefix.len() && prefix.iter().zip(&segs).all(|(a, b)| a == b)
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = warden::inputs::check_resource(s, &["https", "http"]);
    let r = Request::new(Operation::Check)
        .tenant("acme")
        .agent("a")
        .tool("t")
        .resource(s);
    if POLICY.decide(&r, &["https"]).is_err() {
        return;
    }
    if warden::inputs::is_url(s) {
        let u = url::Url::parse(s).expect("an allowed URL parses");
        assert_eq!(u.host_str(), Some("api.acme.example"), "{s}");
        for layers in 0..=4 {
            assert!(inside(u.path().as_bytes(), layers, &[b"public"]), "{s}");
        }
    } else {
        for layers in 0..=4 {
            assert!(inside(s.as_bytes(), layers, &[b"data", b"acme"]), "{s}");
        }
    }
});
