//! Usage capture for LLM routes: the model and stream flags from the request body, token usage
//! from JSON answers and SSE streams (OpenAI and Anthropic), and the tokenizer fallback.
//!
//! Everything here is pure: the proxy hands over the peeked request body and then each response
//! chunk, and forwards what comes back. Response chunks pass through untouched and at once, with
//! one exception: when the gateway itself asked an OpenAI upstream for `include_usage`, whole SSE
//! events are forwarded with the extra usage removed, so the client sees exactly the stream it
//! asked for, at most one event late.
//!
//! Bodies must be identity-encoded: a compressed answer is passed through but not understood.
//!
//! One file per mechanism and one per provider: `request` (request inspection), `tap` (the
//! response tap and the usage it settles on), `sse` (SSE framing, and holding events back while
//! injected usage is hidden), `json_edit` (byte-level JSON edits), `lenient` and `text` (the
//! readers and text buffer providers share), `provider` (what a provider supplies), and one file
//! per provider. A provider is one file implementing `provider::Provider` plus its line in
//! `provider_for`.

mod anthropic;
mod json_edit;
mod lenient;
mod openai;
mod provider;
mod request;
mod sse;
mod tap;
#[cfg(test)]
mod tests;
mod text;

use tollgate_core::RouteKind;

pub use request::{RequestInfo, inspect_request};
pub use tap::{CapturedUsage, Counting, ResponseTap, Settled};

use provider::Provider;

/// The provider that reads a route kind's bodies; `None` for plain HTTP routes, whose bodies are
/// never read.
fn provider_for(kind: RouteKind) -> Option<&'static dyn Provider> {
    match kind {
        // An `llm` route's calls are read in the shape of the endpoint they call; OpenAI's by default.
        RouteKind::Openai | RouteKind::Llm => Some(&openai::Openai),
        RouteKind::Anthropic => Some(&anthropic::Anthropic),
        RouteKind::Http => None,
    }
}
