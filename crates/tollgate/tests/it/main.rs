//! End-to-end tests: the real `tollgate` binary on loopback, a real HTTP client, real SQLite and
//! PostgreSQL, and the mock upstream. One test binary, so the suite links once.

#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "the scenarios run inside generated #[test]s and helpers; they fail loudly too"
)]
#![expect(
    clippy::disallowed_methods,
    reason = "tests start servers and workers on their own runtime, which ends with the test"
)]

mod harness;

mod alert_sealing;
mod alerts;
mod analytics;
mod backup;
mod cli;
mod cli_extra;
mod client_addr;
mod compat;
mod config;
mod config_toml;
mod consistency;
mod console;
mod counters;
mod durability;
mod edge;
mod exports;
mod fd_limit;
mod files;
mod first_call;
mod gateway;
mod gateway_paths;
mod ingest_attribution;
mod ingest_replay;
mod limits_api;
mod limits_gateway;
mod limits_leases;
mod limits_seed;
mod listeners;
mod llm_api;
mod llm_health;
mod llm_pools;
mod llm_routing;
mod llm_sdk;
mod matrix;
mod metrics;
mod middleware;
mod mistakes;
mod percentiles;
mod platform;
mod prices;
mod remote_cli;
mod reports;
mod resilience;
mod route_rules;
mod schema;
mod scopes;
mod sealing;
mod signin_memory;
mod upstream_h2;
mod usage;
mod web;
