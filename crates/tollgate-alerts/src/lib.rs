//! Alert delivery for tollgate: what is worth telling an operator, and getting it to them once.
//!
//! - [`Alert`]: the kinds (budget crossings, expiring keys, route error rates, unreachable
//!   upstreams, degraded Redis or store, a spool that does not drain, a test), each with a stable
//!   [`Alert::dedup_key`] and two renderings: a generic JSON body and a Slack-compatible one.
//! - [`Channel`]: where alerts go (a generic webhook or a Slack-compatible incoming webhook), with
//!   URL validation and a secret made by [`new_secret`].
//! - [`Dispatcher`]: takes alerts from a tokio channel, claims each crossing once in an
//!   [`AlertLedger`] (shared by every instance), fans it out to the channels, retries with
//!   exponential backoff and full jitter, and records every attempt in a [`DeliveryLog`].
//! - [`Evaluator`]: pure rules turning observations (keys, per-route errors, upstream health,
//!   degraded components, spool stats) into alerts; [`Lease`] lets one instance evaluate at a time.
//!
//! Every webhook is checked against the outbound-address policy ([`OutboundPolicy`]) before it is
//! sent and again whenever a connection resolves its host, so a webhook cannot reach loopback,
//! private or link-local addresses unless the operator listed them.
//!
//! # Signatures (generic webhooks)
//!
//! A generic delivery carries two headers:
//!
//! ```text
//! X-Tollgate-Timestamp: 1765000000
//! X-Tollgate-Signature: sha256=<hex of HMAC-SHA256(key = the channel secret, "<timestamp>.<body>")>
//! ```
//!
//! The key is the channel secret exactly as it was shown when the channel was made, prefix
//! included (`whsec_` followed by 64 hex digits, 32 random bytes). The timestamp is Unix seconds;
//! the signed message is the timestamp's decimal text, one `.`, and the raw request body bytes. A
//! receiver recomputes the HMAC over the body it received (before parsing it), compares in
//! constant time, and refuses timestamps far from its clock (replays). [`verify`] does all three
//! and has no dependency on the rest of this crate, so receivers written in Rust can copy it. Each
//! retry is signed afresh with a new timestamp; the body (and its `dedup_key`, which receivers can
//! use to drop repeats) stays the same.
//!
//! Slack-compatible deliveries are not signed: Slack's incoming webhooks ignore extra headers and
//! their URL is the credential.

mod alert;
mod channel;
mod delivery;
mod dispatcher;
mod evaluator;
mod outbound;
mod signature;

pub use alert::{Alert, AlertKind, BudgetUnit, Component};
pub use channel::{Channel, ChannelError, ChannelFormat, WebhookUrl, new_secret};
pub use delivery::{
    AlertLedger, Attempt, AttemptStatus, BackendError, ChannelDirectory, DeliveryLog,
    MemoryDeliveryLog, MemoryLedger, StaticChannels,
};
pub use dispatcher::{DispatchOutcome, Dispatcher, DispatcherConfig, Jitter, RetryPolicy};
pub use evaluator::{
    Degradation, Evaluator, EvaluatorConfig, KeyExpiry, Lease, MemoryLease, MemoryLeases,
    ObservationSource, Observations, RouteTraffic, SpoolStats, UpstreamHealth, budget_crossing,
};
pub use outbound::{OutboundPolicy, OutboundRefusal};
pub use signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, VerifyError, sign, verify};
