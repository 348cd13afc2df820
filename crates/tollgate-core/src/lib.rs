//! Domain types and pure logic of tollgate. No I/O, no HTTP framework, no SQL.

pub mod crypto;
pub mod ingest;
pub mod key;
pub mod llm;
pub mod net;
pub mod pricing;
pub mod reading;
pub mod role;
pub mod route;
pub mod route_policy;
pub mod sketch;
pub mod spreadsheet;
pub mod time;
pub mod tokenize;
pub mod upstream;
pub mod usage;

pub use key::{ApiKey, KeyError, KeyHash};
pub use role::Role;
pub use route::{RouteKind, RouteTable};
pub use usage::{TokenUsage, UsageEvent, UsageSource};
