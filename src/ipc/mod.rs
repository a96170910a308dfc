//! `warden serve`: warden as a local service over shared memory.
//!
//! - `shm`: the mapping one client shares with the server (layout, verdict bytes) and the
//!   server's private table of clients. No I/O, no engine.
//! - `server`: the accept thread (peer credentials, a sealed memfd and a wake-up socket over `SCM_RIGHTS`,
//!   closing clients, signals), the stream-socket protocol, the metrics endpoint.
//! - `client`: `Client`, the Rust client (blocking, batch, async).
//!
//! The cores' side (taking requests off the rings, writing verdicts back) is `engine/ipc.rs`.

pub mod client;
pub mod server;
pub mod shm;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `[serve]`: the shared-memory server.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// Path of the Unix socket clients connect to.
    pub socket: String,
    /// Uids allowed to connect; empty: only the server's own uid.
    pub uids: Vec<u32>,
    /// Gids allowed to connect (a client passes when its uid or its gid is listed).
    pub gids: Vec<u32>,
    /// Per uid (a decimal string), the tenants its clients may ask for. Empty table: any
    /// tenant; otherwise a uid not listed may ask for none.
    pub tenants: BTreeMap<String, Vec<String>>,
    /// Clients connected at once; one more is refused.
    pub max_clients: usize,
    /// Clients of one uid connected at once (so one user cannot take every place); the
    /// shared-memory and stream sockets count apart.
    pub max_clients_per_uid: usize,
    /// Request slots per client (its requests in flight at most), a power of two.
    pub slots_per_client: u32,
    /// Bytes of one request in the wire format; a larger request is refused by the client
    /// library with `content_too_large` before it is sent.
    pub slot_bytes: u32,
    /// How long a client spins for its verdict before it sleeps, microseconds (a hint the
    /// server passes to the client libraries).
    pub client_spin_us: u32,
    /// A second socket speaking length-prefixed frames (a u32 little-endian length, then the
    /// request's wire bytes; the reply a u32 length and the 64 verdict bytes), for clients that
    /// cannot map memory. Empty: off. The same uid and tenant rules apply.
    pub stream_socket: String,
    /// Loopback address of the Prometheus metrics endpoint (`127.0.0.1:9464`); empty: off.
    /// `warden serve --metrics ADDR` overrides it.
    pub metrics: String,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            socket: "warden.sock".into(),
            uids: Vec::new(),
            gids: Vec::new(),
            tenants: BTreeMap::new(),
            max_clients: 64,
            max_clients_per_uid: 16,
            slots_per_client: 64,
            slot_bytes: 16384,
            client_spin_us: 50,
            stream_socket: String::new(),
            metrics: String::new(),
        }
    }
}

impl ServeConfig {
    /// Semantic checks; (dotted field, what to do).
    pub fn validate(&self) -> Result<(), (String, String)> {
        let e = |f: &str, m: String| Err((format!("serve.{f}"), m));
        if self.socket.is_empty() {
            return e(
                "socket",
                "give the path of the Unix socket to listen on".into(),
            );
        }
        if self.max_clients == 0 || self.max_clients > shm::MAX_CLIENTS {
            return e(
                "max_clients",
                format!("must be between 1 and {}", shm::MAX_CLIENTS),
            );
        }
        if self.max_clients_per_uid == 0 {
            return e(
                "max_clients_per_uid",
                "must be at least 1 (and at most max_clients to mean anything)".into(),
            );
        }
        if !self.slots_per_client.is_power_of_two()
            || self.slots_per_client < 2
            || self.slots_per_client as usize > shm::MAX_SLOTS
        {
            return e(
                "slots_per_client",
                format!(
                    "{} is not a power of two between 2 and {}",
                    self.slots_per_client,
                    shm::MAX_SLOTS
                ),
            );
        }
        if self.slot_bytes < 256 || self.slot_bytes > 1 << 24 {
            return e(
                "slot_bytes",
                "must be between 256 and 16777216 bytes".into(),
            );
        }
        for (uid, tenants) in &self.tenants {
            if uid.parse::<u32>().is_err() {
                return e(
                    &format!("tenants.{uid}"),
                    format!("`{uid}` is not a uid; the keys of serve.tenants are decimal uids"),
                );
            }
            if tenants.iter().any(|t| t.is_empty()) {
                return e(&format!("tenants.{uid}"), "a tenant name is empty".into());
            }
        }
        if !self.metrics.is_empty() {
            server::loopback(&self.metrics).map_err(|m| ("serve.metrics".to_string(), m))?;
        }
        Ok(())
    }
}
