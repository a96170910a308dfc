//! Throw-away SoftHSM2 tokens for the HSM tests and benchmarks (`tools/softhsm.sh setup`).

/// Where the tokens are, from the variables `tools/softhsm.sh setup` prints. When they are not
/// set (not started by tools/test.sh), runs the script and sets them for this process: call it
/// before any PKCS#11 use, while no other thread reads the environment.
pub fn setup() -> (String, String, std::path::PathBuf) {
    if std::env::var("WARDEN_TEST_PKCS11_MODULE").is_err() {
        let dir = tempfile::tempdir().unwrap().keep();
        let out = std::process::Command::new("tools/softhsm.sh")
            .arg("setup")
            .arg(&dir)
            .output()
            .expect("run tools/softhsm.sh");
        assert!(
            out.status.success(),
            "tools/softhsm.sh setup failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            if let Some((k, v)) = line.trim_start_matches("export ").split_once('=') {
                std::env::set_var(k, v);
            }
        }
    }
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set"));
    (
        var("WARDEN_TEST_PKCS11_MODULE"),
        var("WARDEN_TEST_PIN_FILE"),
        std::path::PathBuf::from(var("WARDEN_TEST_TOKEN_DIR")),
    )
}

/// The engine the HSM tests and benchmarks run: `cores` unpinned cores, the example policy when
/// the identity requires tokens, neither anomaly monitor nor threat scan (they measure and test
/// the HSM path, nothing else). Callers adjust the engine's wait and spin settings.
pub fn engine_config(
    hsm: warden::config::HsmConfig,
    identity: warden::config::IdentityConfig,
    cores: usize,
) -> warden::Config {
    let policy = identity.require_token;
    warden::Config {
        engine: warden::config::EngineConfig {
            cores,
            pin: false,
            ..Default::default()
        },
        policy: warden::config::PolicyConfig {
            file: if policy {
                "examples/policy.toml".into()
            } else {
                String::new()
            },
        },
        anomaly: warden::config::AnomalyConfig {
            enabled: false,
            ..Default::default()
        },
        threat: warden::config::ThreatConfig {
            enabled: false,
            ..Default::default()
        },
        identity,
        hsm,
        ..Default::default()
    }
}
