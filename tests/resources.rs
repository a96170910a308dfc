//! Resources under attack: paths and URLs in every encoding, SSRF in every spelling. Each class
//! is stated as a property against a reference that is not warden's code: a POSIX resolver over
//! percent-decoding (the `percent-encoding` crate), the WHATWG reading (the `url` crate), the
//! RFC 3986 reading (its Appendix B regex and the section 5.2.4 dot-segment removal), and the
//! IANA special-purpose registries written out as CIDR blocks.

use percent_encoding::percent_decode;
use proptest::prelude::*;
use warden::inputs::{check_resource, InputIssue};
use warden::policy::Snapshot;
use warden::{Classification, DenyReason, Operation, Request};

const WEB: &[&str] = &["https", "http"];

fn policy(pattern: &str) -> Snapshot {
    let src = format!(
        r#"
[[tenants]]
name = "acme"
[[tenants]]
name = "globex"
[[roles]]
name = "r"
tools = ["t"]
[[tools]]
name = "t"
[tools.resources]
acme = ["{pattern}"]
globex = ["/data/globex/**", "https://api.globex.example/**"]
[[agents]]
name = "a"
tenant = "acme"
role = "r"
clearance = "top_secret"
"#
    );
    Snapshot::from_toml(&src, "test.toml").unwrap()
}

fn decide(p: &Snapshot, resource: &str) -> Result<(), DenyReason> {
    let r = Request::new(Operation::Check)
        .tenant("acme")
        .agent("a")
        .tool("t")
        .resource(resource)
        .classification(Classification::Unclassified);
    p.decide(&r, WEB).map(|_| ()).map_err(|e| e.0)
}

// ---- references ----

/// One layer of percent-decoding.
fn decode_once(s: &[u8]) -> Vec<u8> {
    percent_decode(s).collect()
}

/// POSIX lexical resolution: empty and `.` segments vanish, `..` climbs (not above the root).
fn resolve_posix(p: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for seg in p.split(|&c| c == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            s => out.push(s.to_vec()),
        }
    }
    out
}

/// Whether `p`, read by a tool that decodes it `layers` times and resolves it, lies under the
/// directory `prefix` (given as segments).
fn posix_inside(p: &[u8], layers: usize, prefix: &[&str]) -> bool {
    let mut b = p.to_vec();
    for _ in 0..layers {
        b = decode_once(&b);
    }
    let inside = |b: &[u8]| {
        let segs = resolve_posix(b);
        segs.len() >= prefix.len()
            && prefix
                .iter()
                .zip(&segs)
                .all(|(a, b)| a.as_bytes() == &b[..])
    };
    // as a reader that folds compatibility characters (NFKC: `‥` is `..`) and drops trailing
    // dots and spaces from names (Windows: `.. ` is `..`) reads it
    let folded = |b: &[u8]| -> Vec<u8> {
        use unicode_normalization::UnicodeNormalization;
        let s: String = String::from_utf8_lossy(b).nfkc().collect();
        s.split('/')
            .map(|seg| {
                let name = seg.split(';').next().unwrap_or("");
                if name.contains('.') && name.bytes().all(|c| c == b'.' || c == b' ') {
                    ".."
                } else {
                    seg
                }
            })
            .collect::<Vec<_>>()
            .join("/")
            .into_bytes()
    };
    inside(&b) && inside(&folded(&b))
}

/// RFC 3986 section 5.2.4.
fn remove_dot_segments(input: &str) -> String {
    let mut inp = input.to_string();
    let mut out = String::new();
    while !inp.is_empty() {
        if let Some(r) = inp.strip_prefix("../") {
            inp = r.to_string();
        } else if let Some(r) = inp.strip_prefix("./") {
            inp = r.to_string();
        } else if inp.starts_with("/./") {
            inp = inp[2..].to_string();
        } else if inp == "/." {
            inp = "/".into();
        } else if inp.starts_with("/../") || inp == "/.." {
            inp = if inp == "/.." {
                "/".into()
            } else {
                inp[3..].to_string()
            };
            match out.rfind('/') {
                Some(i) => out.truncate(i),
                None => out.clear(),
            }
        } else if inp == "." || inp == ".." {
            inp.clear();
        } else {
            let start = usize::from(inp.starts_with('/'));
            let end = inp[start..].find('/').map_or(inp.len(), |i| i + start);
            out.push_str(&inp[..end]);
            inp = inp[end..].to_string();
        }
    }
    out
}

/// The RFC 3986 reading of a URL: (authority, path), by Appendix B's regex.
fn rfc3986(url: &str) -> Option<(String, String)> {
    let re =
        regex::Regex::new(r"^(([^:/?#]+):)?(//([^/?#]*))?([^?#]*)(\?([^#]*))?(#(.*))?").unwrap();
    let c = re.captures(url)?;
    Some((
        c.get(4)?.as_str().to_string(),
        c.get(5)?.as_str().to_string(),
    ))
}

// ---- paths ----

#[test]
fn the_reviews_path_examples_are_refused() {
    let p = policy("/data/acme/**");
    for r in [
        "/data/acme/x?/../../globex/secret",
        "/data/acme/x%3f/../../globex/secret",
        "/data/acme/x%23/../../globex/secret",
        "/data/acme/x%253f/../../globex/secret",
        "/data/acme/#/../../../etc/shadow",
        "/data/acme/x/..;/..;/globex/secret",
    ] {
        assert!(decide(&p, r).is_err(), "{r} allowed");
    }
    assert_eq!(
        decide(&p, "/data/acme/#/../../../etc/shadow"),
        Err(DenyReason::Input(InputIssue::PathTraversal))
    );
    // `?` and `#` are name characters: harmless where nothing climbs
    assert_eq!(decide(&p, "/data/acme/what?.txt"), Ok(()));
    assert_eq!(decide(&p, "/data/acme/notes#1.md"), Ok(()));
    // an empty resource no longer skips the patterns
    assert_eq!(decide(&p, ""), Err(DenyReason::ResourceNotAllowed));
    // `*` is one non-empty segment
    let p = policy("/data/acme/*/report.txt");
    assert_eq!(decide(&p, "/data/acme/q3/report.txt"), Ok(()));
    assert_eq!(
        decide(&p, "/data/acme//report.txt"),
        Err(DenyReason::ResourceNotAllowed)
    );
    // an encoded separator that `*` would take as one segment: the decoded form has two
    assert_eq!(
        decide(&p, "/data/acme/a%2fb/report.txt"),
        Err(DenyReason::ResourceNotAllowed)
    );
}

fn path_piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "x",
        "globex",
        "acme",
        "data",
        "etc",
        "..",
        ".",
        "",
        "%2e",
        "%2E",
        "%2e%2e",
        ".%2e",
        "%252e%252e",
        "%25",
        "?",
        "#",
        "%3f",
        "%23",
        "%253f",
        ";",
        "..;",
        "%c0%ae%c0%ae",
        "a%2fb",
        "q?x=1",
        "*",
        "\u{FF0E}\u{FF0E}",
        "%5c",
        "..%5c",
        "\u{2025}",
        "\u{FE30}",
        "\u{2026}",
        "\u{FE19}",
        "\u{2100}",
        "%E2%80%A5",
        "%EF%B8%B0",
        "%25E2%2580%25A5",
        ".. ",
        ". .",
        "..%20",
        ".%20.",
    ])
}

fn sep() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["/", "/", "/", "//", "%2f", "%2F", "%252f", "%c0%af"])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// No path is allowed that a tool reading it (decoding it any number of times, up to the
    /// four layers warden decodes, then resolving it) would find outside the granted directory.
    #[test]
    fn no_path_outside_its_pattern_in_any_encoding(
        pieces in prop::collection::vec((sep(), path_piece()), 1..7),
        pattern in prop::sample::select(vec!["/data/acme/**", "/data/acme/*/x", "/data/acme/*"]),
    ) {
        let mut r = String::from("/data/acme");
        for (s, p) in &pieces {
            r.push_str(s);
            r.push_str(p);
        }
        let p = policy(pattern);
        if decide(&p, &r).is_ok() {
            for layers in 0..=4 {
                prop_assert!(posix_inside(r.as_bytes(), layers, &["data", "acme"]),
                    "{} allowed by {} but resolves outside after {} decoding layers", r, pattern, layers);
            }
        }
    }
}

// ---- URLs ----

const PUBLIC: &str = "https://api.acme.example/public/**";

/// The second review's findings: characters whose compatibility form is `..` or holds a `/`,
/// and dot segments with trailing spaces, in paths and URLs; internal names it found.
#[test]
fn compatibility_characters_and_windows_names_do_not_hide_a_climb() {
    let p = policy("/data/acme/**");
    for r in [
        "/data/acme/\u{2025}/\u{2025}/data/globex/secret.txt",
        "/data/acme/%E2%80%A5/%E2%80%A5/data/globex/x",
        "/data/acme/%25E2%2580%25A5/x",
        "/data/acme/\u{FE30}/\u{FE30}/data/globex/x",
        "/data/acme/\u{2026}/x",
        "/data/acme/\u{FE19}/x",
        "/data/acme/.. /x",
        "/data/acme/..%20/x",
        "/data/acme/. . /x",
        "/data/acme/.%20./x",
    ] {
        assert!(decide(&p, r).is_err(), "{r} allowed");
    }
    let p = policy("/d/*/r.txt");
    assert!(
        decide(&p, "/d/\u{2100}/r.txt").is_err(),
        "a/c hides a separator"
    );
    let p = policy(PUBLIC);
    for r in [
        "https://api.acme.example/%E2%80%A5/admin",
        "https://api.acme.example/public/%EF%B8%B0/private",
        "https://api.acme.example/public/..%20/private",
    ] {
        assert!(decide(&p, r).is_err(), "{r} allowed");
    }
    for u in [
        "https://ipv4only.arpa/",
        "https://x.resolver.arpa/",
        "https://x.service.arpa/",
        "https://x.alt/",
        "https://x.onion/",
        "https://x.test/",
        "https://kubernetes.default.svc/",
        "https://foo.lan/",
        "https://foo.home/",
        "https://foo.corp/",
        "https://foo.private/",
        "https://foo.intranet/",
        "https://a..b/",
    ] {
        assert!(check_resource(u, WEB).is_err(), "{u} passed");
    }
}

#[test]
fn a_resource_without_a_tool_is_refused_under_a_policy() {
    let p = policy("/data/acme/**");
    let r = Request::new(Operation::Check)
        .tenant("acme")
        .agent("a")
        .resource("/data/globex/x");
    assert_eq!(
        p.decide(&r, WEB).map(|_| ()).map_err(|e| e.0),
        Err(DenyReason::ResourceNotAllowed)
    );
    let r = r.resource("");
    assert!(
        p.decide(&r, WEB).is_ok(),
        "no tool and no resource: identity only"
    );
}

#[test]
fn the_reviews_url_examples_are_refused() {
    let p = policy(PUBLIC);
    assert_eq!(decide(&p, "https://api.acme.example/public/x"), Ok(()));
    assert_eq!(decide(&p, "HTTPS://API.acme.example:443/public/x"), Ok(()));
    for r in [
        "https://api.acme.example/admin",
        "https://api.acme.example/public/../admin",
        "https://api.acme.example/public/%2e%2e/admin",
        "https://api.acme.example/public/.%2e/admin",
        "https://api.acme.example/public/..%2fadmin",
        "https://api.acme.example/public/%252e%252e/admin",
        "https://api.acme.example/public/..;/admin",
        "https://api.acme.example/public/x/../../admin",
        "https://api.acme.example/public%2f..%2fadmin",
        "https://api.acme.example@evil.example/public/x",
        "https://evil.example/?https://api.acme.example/public/x",
        "https:api.acme.example/public/x",
        "https:/api.acme.example/public/x",
        "https:///api.acme.example/public/x",
        "//api.acme.example/public/x",
    ] {
        assert!(decide(&p, r).is_err(), "{r} allowed");
    }
}

/// The second hostile review's ways past the first fixes: empty segments before a sensitive
/// name, the kernel's trees, a URL pattern's `*` crossing an encoded separator, an encoded
/// backslash, and host patterns that do not pin the host.
#[test]
fn the_second_reviews_resources_are_refused() {
    use warden::inputs::check_path;
    for r in [
        "/etc//shadow",
        "/etc///passwd",
        "//etc/shadow",
        "/etc/%2fshadow",
        "/proc/1/environ",
        "/proc/thread-self/mem",
        "/PROC/self/maps",
        "/sys/kernel/debug",
        "/home/u/.git-credentials",
        "/etc/shadow-",
        "/run/secrets/db",
    ] {
        assert_eq!(
            check_path(r),
            Err(InputIssue::SensitiveTarget),
            "{r} not refused as sensitive"
        );
    }
    // a name that only contains a kernel tree's name is a name
    assert_eq!(check_path("/data/proc/x"), Ok(()));
    assert_eq!(
        check_path("proc/1"),
        Ok(()),
        "relative: not the kernel's tree"
    );
    // `*` is one segment in the URL as a decoding server reads it too
    let p = policy("https://api.acme.example/v1/*/info");
    assert_eq!(decide(&p, "https://api.acme.example/v1/users/info"), Ok(()));
    assert_eq!(
        decide(&p, "https://api.acme.example/v1/users%2f..%2fadmin/info"),
        Err(DenyReason::Input(InputIssue::PathTraversal))
    );
    assert_eq!(
        decide(&p, "https://api.acme.example/v1/admin%2fsecrets/info"),
        Err(DenyReason::ResourceNotAllowed)
    );
    // an encoded backslash is a separator to some servers
    assert_eq!(
        decide(&p, "https://api.acme.example/v1/a%5cb/info"),
        Err(DenyReason::Input(InputIssue::ForeignSeparator))
    );
    // a URL pattern pins its host: a star only for leading labels
    for pattern in [
        "https://**.acme.example/**",
        "https://acme.example*/**",
        "https://*acme.example/**",
        "https://api.*.example/**",
    ] {
        let src = format!(
            "[[tenants]]\nname = \"acme\"\n[[roles]]\nname = \"r\"\ntools = [\"t\"]\n[[tools]]\nname = \"t\"\n[tools.resources]\nacme = [\"{pattern}\"]\n"
        );
        let e = Snapshot::from_toml(&src, "p.toml").unwrap_err().to_string();
        assert!(e.contains("leading labels"), "{pattern}: {e}");
    }
    let p = policy("https://*.acme.example/**");
    assert_eq!(decide(&p, "https://api.acme.example/x"), Ok(()));
    assert_eq!(
        decide(&p, "https://evil.example/.acme.example/x"),
        Err(DenyReason::ResourceNotAllowed)
    );
    assert_eq!(
        decide(&p, "https://api.acme.example.evil.example/x"),
        Err(DenyReason::ResourceNotAllowed)
    );
}

fn url_scheme() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "https://",
        "https://",
        "https:",
        "https:/",
        "https:///",
        "HTTPS://",
        "//",
        "http://",
    ])
}

fn url_host() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "api.acme.example",
        "api.acme.example",
        "API.ACME.example",
        "api.acme.example.",
        "api.acme.example:443",
        "api.acme.%65xample",
        "evil.example",
        "api.acme.example@evil.example",
        "evil.example#@api.acme.example",
        "api.acme.example.evil.example",
        "127.0.0.1",
    ])
}

fn url_piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "public",
        "public",
        "admin",
        "x",
        "..",
        ".",
        "%2e%2e",
        ".%2e",
        "%2e.",
        "%2E%2E",
        "..%2f",
        "%2e%2e%2f",
        "%252e%252e",
        "..;",
        "",
        "%3f",
        "%23",
        "?",
        "#",
        "%2f",
        ";",
        "x?y=../..",
        "%E2%80%A5",
        "%EF%B8%B0",
        "..%20",
        "%E2%84%80",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// No URL is allowed outside `https://api.acme.example/public/**` as a WHATWG parser reads
    /// it, as an RFC 3986 parser reads it, or as a server that percent-decodes the path (any
    /// number of times) and then resolves it reads it.
    #[test]
    fn no_url_outside_its_pattern_under_any_reading(
        scheme in url_scheme(), host in url_host(),
        pieces in prop::collection::vec(url_piece(), 0..6),
    ) {
        let mut r = format!("{scheme}{host}/public");
        for p in &pieces {
            r.push('/');
            r.push_str(p);
        }
        let p = policy(PUBLIC);
        if decide(&p, &r).is_ok() {
            // WHATWG
            let u = url::Url::parse(&r).unwrap();
            prop_assert_eq!(u.host_str(), Some("api.acme.example"), "{}", r);
            prop_assert!(u.path().starts_with("/public/"), "{} -> {}", r, u.path());
            // RFC 3986
            let (authority, path) = rfc3986(&r).unwrap();
            let authority = percent_decode(authority.as_bytes()).decode_utf8_lossy().to_ascii_lowercase();
            prop_assert!(authority == "api.acme.example" || authority == "api.acme.example:443", "{} authority {}", r, authority);
            prop_assert!(remove_dot_segments(&path).starts_with("/public/"), "{}", r);
            // a server that decodes, then resolves
            for layers in 0..=4 {
                prop_assert!(posix_inside(u.path().as_bytes(), layers, &["public"]), "{} after {} layers", r, layers);
                prop_assert!(posix_inside(path.as_bytes(), layers, &["public"]), "{} after {} layers", r, layers);
            }
        }
    }
}

// ---- SSRF ----

/// The IANA IPv4 Special-Purpose Address Registry's blocks that are not globally reachable,
/// the deprecated 6to4 relay block, and multicast.
const V4_SPECIAL: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "255.255.255.255/32",
];

fn cidr(s: &str) -> (u32, u32) {
    let (a, l) = s.split_once('/').unwrap();
    let a: std::net::Ipv4Addr = a.parse().unwrap();
    let l: u32 = l.parse().unwrap();
    (u32::from(a), l)
}

fn in_v4_special(a: u32) -> bool {
    V4_SPECIAL.iter().any(|s| {
        let (net, len) = cidr(s);
        len == 0 || (a >> (32 - len)) == (net >> (32 - len))
    })
}

fn special_v4() -> impl Strategy<Value = u32> {
    (prop::sample::select(V4_SPECIAL.to_vec()), any::<u32>()).prop_map(|(b, r)| {
        let (net, len) = cidr(b);
        let mask = if len == 32 { 0 } else { u32::MAX >> len };
        net | (r & mask)
    })
}

/// The spellings of an IPv4 host that URL parsers (WHATWG, inet_aton) accept.
fn spell_v4(a: u32, how: u8) -> String {
    let o = a.to_be_bytes();
    match how % 12 {
        0 => format!("{}.{}.{}.{}", o[0], o[1], o[2], o[3]),
        1 => format!("{a}"),
        2 => format!("0x{a:x}"),
        3 => format!("0{:o}.0{:o}.0{:o}.0{:o}", o[0], o[1], o[2], o[3]),
        4 => format!("{}.{}", o[0], a & 0xff_ffff),
        5 => format!("{}.{}.{}", o[0], o[1], a & 0xffff),
        6 => format!("0x{:02X}.{}.0{:o}.{}", o[0], o[1], o[2], o[3]),
        7 => format!("[::ffff:{}.{}.{}.{}]", o[0], o[1], o[2], o[3]),
        8 => format!("[2002:{:x}:{:x}::1]", a >> 16, a & 0xffff),
        9 => format!("[64:ff9b::{}.{}.{}.{}]", o[0], o[1], o[2], o[3]),
        10 => format!("{}.{}.{}.{}", percent_first(o[0]), o[1], o[2], o[3]),
        _ => format!("{}.{}.{}.{}.", o[0], o[1], o[2], o[3]),
    }
}

/// The first octet with its first digit percent-encoded (`127` as `%3127`).
fn percent_first(octet: u8) -> String {
    let s = octet.to_string();
    format!("%3{}{}", &s[..1], &s[1..])
}

fn url_around(host: &str, how: u8) -> String {
    match how % 4 {
        0 => format!("https://{host}/"),
        1 => format!("http://{host}:8080/x"),
        2 => format!("HTTPS://{host}/a?b"),
        _ => format!("https://{host}"),
    }
}

#[test]
fn the_reviews_ssrf_spellings_are_refused() {
    for u in [
        "https:127.0.0.1",
        "https:/127.0.0.1/",
        "//127.0.0.1/",
        "https://[2002:7f00:1::]/",
        "https://[::ffff:0:127.0.0.1]/",
        "https://[fec0::1]/",
        "https://198.18.0.1/",
        "https://[64:ff9b::10.0.0.1]/",
        "https://[64:ff9b:1::1]/",
        "https://[2001:db8::1]/",
        "https://[2001::1]/",
        "https://[100::1]/",
        "https://[::127.0.0.1]/",
        "https://\u{ff11}\u{ff12}\u{ff17}.0.0.1/",
        "https://%31%32%37.0.0.1/",
        "https://metadata/computeMetadata/v1/",
        "https://metadata.google.internal/",
        "https://printer.local/",
        "https://router.home.arpa/",
        "https://localhost./",
    ] {
        assert!(check_resource(u, WEB).is_err(), "{u} passed");
    }
    for u in [
        "https://8.8.8.8/",
        "https://[2606:4700::1111]/",
        "https://[2002:808:808::1]/",
        "https://[64:ff9b::8.8.8.8]/",
        "https://api.acme.example/",
    ] {
        assert_eq!(check_resource(u, WEB), Ok(()), "{u}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn no_special_purpose_ipv4_in_any_spelling(a in special_v4(), how in any::<u8>(), wrap in any::<u8>()) {
        let host = spell_v4(a, how);
        let url = url_around(&host, wrap);
        prop_assert!(check_resource(&url, WEB).is_err(), "{} ({}) passed", url, std::net::Ipv4Addr::from(a));
    }

    /// The converse, so the property above cannot hold by refusing everything: a globally
    /// reachable address passes written as dotted decimal (and as mapped IPv6), and in every
    /// other spelling (decimal, hex, octal, short, percent-encoded, a trailing dot), which
    /// readers disagree on, it is refused as malformed, never passed.
    #[test]
    fn global_ipv4_passes_only_in_its_plain_spelling(a in any::<u32>(), how in 0u8..12, wrap in any::<u8>()) {
        prop_assume!(!in_v4_special(a));
        let url = url_around(&spell_v4(a, how), wrap);
        let expected = match how {
            0 => Ok(()),
            // inside IPv6 (mapped, 6to4, NAT64): judged by the IPv4 it holds
            7..=9 => Ok(()),
            _ => Err(InputIssue::MalformedUrl),
        };
        prop_assert_eq!(check_resource(&url, WEB), expected, "{}", url);
    }

    #[test]
    fn no_special_purpose_ipv6(
        prefix in prop::sample::select(vec![
            ("::", 128u32), ("::1", 128), ("fc00::", 7), ("fe80::", 10), ("fec0::", 10),
            ("ff00::", 8), ("100::", 64), ("2001::", 23), ("2001:db8::", 32), ("3fff::", 20),
            ("64:ff9b:1::", 48), ("::", 96), ("::ffff:0:0:0", 96), ("5f00::", 16),
        ]),
        bits in any::<u128>(), wrap in any::<u8>(),
    ) {
        let (net, len) = prefix;
        let net: std::net::Ipv6Addr = net.parse().unwrap();
        let mask = if len == 128 { 0 } else { u128::MAX >> len };
        let a = std::net::Ipv6Addr::from(u128::from(net) | (bits & mask));
        let url = url_around(&format!("[{a}]"), wrap);
        prop_assert!(check_resource(&url, WEB).is_err(), "{} passed", url);
    }
}
