//! Every command README.md shows under "Running it" runs as written: each block of shell
//! commands is run by bash, line by line, with the built `warden` first on PATH and every
//! `/tmp/warden-` path moved into a directory of the test's own. A line's comment that says
//! `exit N` names the status it must end with; every other line must succeed. (The `cargo build`
//! line is skipped: the test runs the binary cargo built for it.)

use std::process::Command;

/// The shell blocks of the "Running it" section.
fn blocks() -> Vec<Vec<String>> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("\n## Running it")
        .nth(1)
        .expect("README.md has a `Running it` section");
    let section = section.split("\n## ").next().unwrap();
    let mut out = Vec::new();
    let mut cur: Option<Vec<String>> = None;
    for line in section.lines() {
        match (&mut cur, line.trim_end()) {
            (None, "```sh") => cur = Some(Vec::new()),
            (Some(_), "```") => out.push(cur.take().unwrap()),
            (Some(b), l) => b.push(l.to_string()),
            _ => {}
        }
    }
    out
}

fn expected_exit(line: &str) -> i32 {
    line.split_once(" # ")
        .and_then(|(_, c)| c.trim().strip_prefix("exit "))
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn every_readme_command_runs_as_written() {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_warden"))
        .parent()
        .unwrap()
        .to_path_buf();
    let tmp = tempfile::tempdir().unwrap();
    let blocks = blocks();
    assert!(blocks.len() >= 2, "the section has its shell blocks");
    // A server a block starts in the background is stopped however the script ends.
    let mut script = String::from("set -u\ntrap 'kill $(jobs -p) 2>/dev/null' EXIT\n");
    let mut n = 0;
    for line in blocks.iter().flatten() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with("cargo ") {
            continue;
        }
        let want = expected_exit(l);
        let cmd = l.replace("/tmp/warden-", &format!("{}/warden-", tmp.path().display()));
        script.push_str(&format!(
            "{{ {cmd}\n}} > \"$T/out.txt\" 2>&1; rc=$?; if [ $rc -ne {want} ]; then echo \"README line {n} ended $rc, not {want}: {}\"; cat \"$T/out.txt\"; exit 1; fi\n",
            l.replace('"', "'").replace('$', "")
        ));
        n += 1;
    }
    assert!(n >= 15, "{n} commands");
    // examples/tokens.toml names the README's key directory; give the test its own copy
    let tokens = std::fs::read_to_string("examples/tokens.toml")
        .unwrap()
        .replace("/tmp/warden-", &format!("{}/warden-", tmp.path().display()));
    let cfg_dir = tmp.path().join("examples");
    std::fs::create_dir(&cfg_dir).unwrap();
    std::fs::write(cfg_dir.join("tokens.toml"), tokens).unwrap();
    let script = script.replace(
        "-c examples/tokens.toml",
        &format!("-c {}", cfg_dir.join("tokens.toml").display()),
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .env("T", tmp.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
