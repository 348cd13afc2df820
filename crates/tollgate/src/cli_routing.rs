//! Command-line arguments of `tollgate route …`, `tollgate target …` and `tollgate model …`:
//! where calls go. Definitions only: the work is done in `admin.rs` and `model_cmd.rs`.

use clap::{Args, Subcommand};

use crate::cli::RouteKindArg;

/// `tollgate route …`
#[derive(Debug, Subcommand)]
pub enum RouteCommand {
    /// Add a route.
    Add(RouteAddArgs),
    /// List routes.
    List(RouteListArgs),
    /// Change a route. Pointing it at another host removes its upstream credential unless the
    /// same command sets one.
    Update(RouteUpdateArgs),
    /// Remove a route by name.
    Remove(RouteRemoveArgs),
}

/// Flags of `route update`.
#[derive(Debug, Args)]
pub struct RouteUpdateArgs {
    /// The route: its name, id or prefix.
    pub route: String,
    /// New upstream base URL.
    #[arg(long)]
    pub upstream: Option<String>,
    /// Environment variable holding a new upstream credential (stored encrypted; needs a master key).
    #[arg(long, value_name = "VAR", conflicts_with = "clear_credential")]
    pub upstream_key_env: Option<String>,
    /// Remove the stored upstream credential.
    #[arg(long)]
    pub clear_credential: bool,
    /// How the credential is sent, `Header-Name: format` with {key} for the secret (e.g.
    /// `X-Internal-Token: Token {key}`); `default` goes back to the kind's.
    #[arg(long, value_name = "HEADER")]
    pub credential_header: Option<String>,
    /// New name.
    #[arg(long)]
    pub name: Option<String>,
    /// New path prefix.
    #[arg(long)]
    pub prefix: Option<String>,
    /// What the route forwards.
    #[arg(long, value_enum)]
    pub kind: Option<RouteKindArg>,
    /// Remove the prefix before forwarding (true or false).
    #[arg(long, value_name = "BOOL")]
    pub strip_prefix: Option<bool>,
    /// Enable or disable the route (true or false).
    #[arg(long, value_name = "BOOL")]
    pub enabled: Option<bool>,
    /// Connect timeout.
    #[arg(long, value_name = "DURATION")]
    pub connect_timeout: Option<String>,
    /// Longest wait for the response head and between body chunks.
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `route add`.
#[derive(Debug, Args)]
pub struct RouteAddArgs {
    /// Unique name.
    #[arg(long)]
    pub name: String,
    /// Path prefix, e.g. /openai.
    #[arg(long)]
    pub prefix: String,
    /// Upstream base URL, e.g. https://api.openai.com (not needed with --kind llm, whose calls
    /// go to the targets of their models).
    #[arg(long)]
    pub upstream: Option<String>,
    /// What the route forwards.
    #[arg(long, value_enum, default_value_t = RouteKindArg::Http)]
    pub kind: RouteKindArg,
    /// Remove the prefix before forwarding.
    #[arg(long)]
    pub strip_prefix: bool,
    /// Environment variable holding the upstream credential to inject (stored encrypted; needs a master key).
    #[arg(long, value_name = "VAR")]
    pub upstream_key_env: Option<String>,
    /// How the credential is sent, `Header-Name: format` with {key} for the secret (e.g.
    /// `X-Internal-Token: Token {key}`; default `Authorization: Bearer {key}`, `x-api-key` on
    /// anthropic routes).
    #[arg(long, value_name = "HEADER")]
    pub credential_header: Option<String>,
    /// Owning team (default: shared by every team).
    #[arg(long)]
    pub team: Option<String>,
    /// Connect timeout.
    #[arg(long, default_value = "5s", value_name = "DURATION")]
    pub connect_timeout: String,
    /// Longest wait for the response head and between body chunks.
    #[arg(long, default_value = "300s", value_name = "DURATION")]
    pub timeout: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `route list`.
#[derive(Debug, Args)]
pub struct RouteListArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `route remove`.
#[derive(Debug, Args)]
pub struct RouteRemoveArgs {
    /// Name of the route.
    pub name: String,
}

/// `tollgate target …`
#[derive(Debug, Subcommand)]
pub enum TargetCommand {
    /// Add an upstream target: a provider, its base URL and a credential.
    Add(Box<TargetAddArgs>),
    /// List targets (never their credentials).
    List(JsonArgs),
    /// Remove a target no model uses, by name.
    Remove(NameArgs),
}

/// `tollgate model …`
#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Add a model: a name or wildcard clients send as `model`, served by a pool of targets.
    Add(ModelAddArgs),
    /// List models with their pools, aliases and fallbacks.
    List(JsonArgs),
    /// Remove a model no other model falls back to, by name.
    Remove(NameArgs),
}

/// Flags of `target add`.
#[derive(Debug, Args)]
pub struct TargetAddArgs {
    /// Unique name, e.g. openai-1.
    pub name: String,
    /// openai, anthropic, azure, gemini or openai_compatible.
    #[arg(long)]
    pub provider: String,
    /// Base URL up to where /chat/completions or /messages follows (default: the provider's;
    /// needed for azure and openai_compatible).
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Environment variable holding the upstream credential (stored encrypted; needs a master key).
    #[arg(long, value_name = "VAR")]
    pub key_env: Option<String>,
    /// How the credential is sent, `Header-Name: format` with {key} for the secret, e.g.
    /// `api-key: {key}` (default: the provider's way).
    #[arg(long, value_name = "HEADER")]
    pub credential_header: Option<String>,
    /// A query parameter added to every call, `name=value` (repeatable), e.g. api-version=2024-10-21.
    #[arg(long = "query", value_name = "NAME=VALUE")]
    pub query: Vec<String>,
    /// Azure deployment name.
    #[arg(long)]
    pub deployment: Option<String>,
    /// Share of its pools' calls, 1 to 1000.
    #[arg(long, default_value_t = 1)]
    pub weight: u32,
    /// Most requests per minute sent to it.
    #[arg(long)]
    pub rpm: Option<u32>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `model add`.
#[derive(Debug, Args)]
pub struct ModelAddArgs {
    /// The name clients send as `model`: exact (gpt-4o) or a wildcard (claude-*).
    pub name: String,
    /// A target serving it, `NAME` or `NAME=UPSTREAM_MODEL` to send another model name
    /// (repeatable).
    #[arg(long = "target", value_name = "TARGET[=MODEL]", required = true)]
    pub targets: Vec<String>,
    /// Another name clients may use for it (repeatable).
    #[arg(long = "alias", value_name = "NAME")]
    pub aliases: Vec<String>,
    /// A model to try when every target of this one is down, in order (repeatable).
    #[arg(long = "fallback", value_name = "MODEL")]
    pub fallbacks: Vec<String>,
    /// weighted or least_busy.
    #[arg(long, default_value = "weighted")]
    pub strategy: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// A `--json` flag alone.
#[derive(Debug, Args)]
pub struct JsonArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// A name alone.
#[derive(Debug, Args)]
pub struct NameArgs {
    /// The name.
    pub name: String,
}
