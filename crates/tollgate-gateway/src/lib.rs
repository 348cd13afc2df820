//! The tollgate data plane.
//!
//! A gateway call passes, in this order: catch-panic → request id → header size → key extraction
//! and checksum (no store look-up for garbage) → key look-up through the cache → route match
//! (longest prefix) → route permission → body size → request inspection for LLM routes → the key's
//! model allow-list and the rate, concurrency and budget limits of the instance, team, key and
//! route ([`limits`]) → proxy with streaming both ways → usage capture, which also settles the
//! call's limits → [`writer::UsageSink::record`], which never waits on the store.
//!
//! The steps are one hand-written hyper service (the `proxy` module) rather than a stack of tower layers:
//! each layer would box a future per call, and the gateway's budget is under a millisecond.

pub mod capture;
pub mod error;
pub mod limits;
pub mod listener;
pub mod metrics;
pub mod otel;
pub mod outcomes;
pub mod spool;
pub mod target_health;
pub mod usage_series;
pub mod writer;

mod auth;
mod keys;
mod llm;
mod proxy;
mod server;
mod state;
mod upstream;
mod vocab;

pub use error::GatewayError;
pub use llm::PoolSettings;
pub use server::{Gateway, GatewayConfig};
pub use state::read_upstream_ca;
