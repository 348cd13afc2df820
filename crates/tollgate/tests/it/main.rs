//! End-to-end tests: the real `tollgate` binary on loopback, a real HTTP client, real SQLite and
//! PostgreSQL, and the mock upstream. One test binary, so the suite links once.

#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "the scenarios run inside generated #[test]s and helpers; they fail loudly too"
)]

mod harness;

mod analytics;
mod cli;
mod config;
mod console;
mod counters;
mod exports;
mod files;
mod gateway;
mod matrix;
mod middleware;
mod reports;
mod resilience;
mod schema;
mod scopes;
mod sealing;
mod usage;
mod web;
