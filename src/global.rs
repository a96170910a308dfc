//! A process-wide engine, for callers that do not want to carry a handle around.
//!
//! ```
//! let cfg = warden::Config { engine: warden::config::EngineConfig { cores: 1, ..Default::default() }, ..Default::default() };
//! warden::global::init(cfg).unwrap();
//! let v = warden::global::get().unwrap().validate(
//!     &warden::Request::new(warden::Operation::Check).tenant("t").agent("a"));
//! assert!(v.is_allowed());
//! warden::global::shutdown();
//! ```

use crate::config::Config;
use crate::engine::{BuildError, Engine, Handle};
use std::sync::OnceLock;

static ENGINE: OnceLock<(Engine, Handle)> = OnceLock::new();

/// Starts the global engine with `config` and no extra stages. Fails if it is already running
/// (once shut down, the global engine cannot be started again in this process).
pub fn init(config: Config) -> Result<(), BuildError> {
    init_with(Engine::builder().config(config))
}

/// Starts the global engine from a configured builder.
pub fn init_with(builder: crate::engine::EngineBuilder) -> Result<(), BuildError> {
    if ENGINE.get().is_some() {
        return Err(BuildError::Core {
            core: usize::MAX,
            message: "the global engine is already initialized".into(),
        });
    }
    let engine = builder.build()?;
    let handle = engine.handle();
    ENGINE.set((engine, handle)).map_err(|_| BuildError::Core {
        core: usize::MAX,
        message: "the global engine is already initialized".into(),
    })
}

/// The global handle, if `init` ran.
pub fn get() -> Option<&'static Handle> {
    ENGINE.get().map(|(_, h)| h)
}

/// The global engine, if `init` ran (for metrics and epoch bumps).
pub fn engine() -> Option<&'static Engine> {
    ENGINE.get().map(|(e, _)| e)
}

/// Drains and stops the global engine. Later validations get `Deny(ShuttingDown)`.
pub fn shutdown() {
    if let Some((e, _)) = ENGINE.get() {
        e.shutdown();
    }
}
