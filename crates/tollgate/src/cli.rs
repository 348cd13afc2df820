//! Command-line arguments of the `tollgate` binary. Definitions only: the work is done elsewhere.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// A flag's fixed set of words as a clap `ValueEnum` (so `--help` and completions list them),
/// with the word each stands for.
macro_rules! words {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
        pub enum $name {
            $($(#[$vm])* #[value(name = $word)] $variant),+
        }
        impl $name {
            /// The word, as the API and the store spell it.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $word),+ }
            }
        }
    };
}

words!(
    /// What a route forwards.
    RouteKindArg {
        /// Any HTTP API: forwarded as is.
        Http = "http",
        /// OpenAI-compatible: model and token usage recorded.
        Openai = "openai",
        /// Anthropic Messages: model and token usage recorded.
        Anthropic = "anthropic",
        /// Model-routed LLM endpoint: each call goes to a target of its model's pool.
        Llm = "llm",
    }
);

words!(
    /// An alert channel's payload.
    ChannelFormatArg {
        /// Signed JSON.
        Generic = "generic",
        /// A Slack-compatible incoming webhook.
        Slack = "slack",
    }
);

words!(
    /// What `usage top` groups by.
    TopByArg {
        /// API keys.
        Key = "key",
        /// Routes.
        Route = "route",
        /// Models.
        Model = "model",
        /// Teams.
        Team = "team",
        /// Status classes (2xx, 4xx, 5xx).
        StatusClass = "status_class",
    }
);

words!(
    /// What `usage top` orders by.
    TopOrderArg {
        /// Calls.
        Calls = "calls",
        /// Tokens.
        Tokens = "tokens",
    }
);

words!(
    /// An export's format.
    ExportFormatArg {
        /// Comma-separated values with a header row.
        Csv = "csv",
        /// One JSON array.
        Json = "json",
        /// One JSON object per line.
        Ndjson = "ndjson",
    }
);

words!(
    /// A budget's period.
    PeriodArg {
        /// A calendar day.
        Day = "day",
        /// A calendar week (from Monday).
        Week = "week",
        /// A calendar month.
        Month = "month",
        /// For ever.
        Total = "total",
    }
);

words!(
    /// A BPE vocabulary.
    VocabularyArg {
        /// GPT-4o, GPT-4.1, GPT-5, o-series.
        O200kBase = "o200k_base",
        /// GPT-4, GPT-3.5, embeddings; the approximation for other vendors.
        Cl100kBase = "cl100k_base",
    }
);

words!(
    /// A shell to complete in.
    ShellArg {
        /// Bash.
        Bash = "bash",
        /// Zsh.
        Zsh = "zsh",
        /// Fish.
        Fish = "fish",
    }
);

/// tollgate: a self-hosted API-key gateway and token-usage console.
#[derive(Debug, Parser)]
#[command(name = "tollgate", version, about, max_term_width = 100)]
pub struct Cli {
    /// Configuration file (default: ./tollgate.toml when it exists).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Store URL: sqlite://PATH or postgres://… (overrides TOLLGATE_DATABASE_URL).
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Data folder: SQLite file, spool (overrides TOLLGATE_DATA_DIR).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Act on a running console through its REST API instead of the local store, e.g.
    /// http://127.0.0.1:8317 (or TOLLGATE_SERVER); needs --token.
    #[arg(long, global = true, value_name = "URL", env = "TOLLGATE_SERVER")]
    pub server: Option<String>,
    /// Personal access token (tgp_…) for --server; prefer TOLLGATE_TOKEN, as arguments show in
    /// process lists. The token's user's roles apply.
    #[arg(long, global = true, value_name = "TOKEN", env = "TOLLGATE_TOKEN",
        hide_env_values = true, value_parser = crate::cli_team::secret)]
    pub token: Option<secrecy::SecretString>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway and the console.
    Serve(ServeArgs),
    /// Apply pending store migrations and exit.
    Migrate,
    /// Manage API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Manage routes.
    #[command(subcommand)]
    Route(crate::cli_routing::RouteCommand),
    /// Manage model-routing targets: providers, base URLs, credentials (instance admins).
    #[command(subcommand)]
    Target(crate::cli_routing::TargetCommand),
    /// Manage models of `llm` routes: names, wildcards, aliases, pools and fallbacks.
    #[command(subcommand)]
    Model(crate::cli_routing::ModelCommand),
    /// Manage rate limits, concurrency limits and budgets.
    #[command(subcommand)]
    Limit(LimitCommand),
    /// Print the effective configuration (secrets redacted).
    Config(ConfigArgs),
    /// Manage console accounts.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Manage personal access tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage teams.
    #[command(subcommand)]
    Team(crate::cli_team::TeamCommand),
    /// Manage a team's members and their roles.
    #[command(subcommand)]
    Member(crate::cli_team::MemberCommand),
    /// Invite people to a team.
    #[command(subcommand)]
    Invitation(crate::cli_team::InvitationCommand),
    /// Manage console users (instance admins).
    #[command(subcommand)]
    User(crate::cli_team::UserCommand),
    /// Count the tokens of a text with a model's BPE vocabulary (o200k_base, cl100k_base).
    Estimate(EstimateArgs),
    /// Prices per model: list the table in force, set or remove a model's price.
    #[command(subcommand)]
    Prices(crate::cli_prices::PricesCommand),
    /// Usage statistics, top lists and exports from the store.
    #[command(subcommand)]
    Usage(UsageCommand),
    /// Write realistic demo usage (teams, keys, routes, models, a daily rhythm, errors).
    Demo(DemoArgs),
    /// Token-count sync: record what an AI tool reports against a quota.
    #[command(subcommand)]
    Sync(SyncCommand),
    /// Alert channels: where budget crossings, expiring keys and outages are announced.
    #[command(subcommand)]
    Alert(AlertCommand),
    /// Copy the store to a file, while it serves (the master key is not in it).
    ///
    /// SQLite: a consistent online copy (`VACUUM INTO`). PostgreSQL: `pg_dump --format=custom
    /// --no-owner --no-privileges` in the snapshot whose rows it counts. The master key is
    /// configuration, not stored data: keep it apart from the backup.
    Backup(BackupArgs),
    /// Restore a backup into an empty data folder (SQLite) or an empty database (PostgreSQL).
    Restore(RestoreArgs),
    /// Whole-store operations: copy a SQLite store into PostgreSQL.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Master-key operations: rotate it.
    #[command(subcommand)]
    MasterKey(MasterKeyCommand),
    /// Print the console API's OpenAPI document (the web console's types are generated from it).
    Openapi,
    /// Print a shell completion script: `tollgate completions bash > /etc/bash_completion.d/tollgate`.
    Completions(CompletionsArgs),
    /// Print the manual page (roff): `tollgate man | man -l -`.
    Man,
}

/// Flags of `backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The backup file to write; it must not exist yet.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Print JSON: {"file","backend","bytes","tables"}.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A file written by `tollgate backup`.
    pub file: PathBuf,
    /// Print JSON: {"backend","tables"}.
    #[arg(long)]
    pub json: bool,
}

/// `tollgate store …`
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy every row of this SQLite store into an empty PostgreSQL database, then check that
    /// every table's count and the usage totals are equal.
    Copy(StoreCopyArgs),
}

/// Flags of `store copy`.
#[derive(Debug, Args)]
pub struct StoreCopyArgs {
    /// The PostgreSQL database to fill: postgres://user:password@host:port/database.
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// Print JSON: the rows per table on both sides.
    #[arg(long)]
    pub json: bool,
}

/// `tollgate master-key …`
#[derive(Debug, Subcommand)]
pub enum MasterKeyCommand {
    /// Seal every stored secret (revealable keys, route credentials, the ingest secret, alert
    /// channel secrets) with a new master key, in one transaction.
    Rotate(MasterKeyRotateArgs),
}

/// Flags of `master-key rotate`.
#[derive(Debug, Args)]
pub struct MasterKeyRotateArgs {
    /// Read the new master key from this file (default: a new random one).
    #[arg(long, value_name = "FILE", conflicts_with = "new_key_env")]
    pub new_key_file: Option<PathBuf>,
    /// Read the new master key from this environment variable.
    #[arg(long, value_name = "VAR")]
    pub new_key_env: Option<String>,
    /// Write a generated key to this new file (0600) instead of standard output.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["new_key_file", "new_key_env"])]
    pub out: Option<PathBuf>,
    /// Print JSON: the counts re-sealed (and `master_key` when one was generated without --out).
    #[arg(long)]
    pub json: bool,
}

/// How `config` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConfigFormatArg {
    /// JSON, secrets redacted.
    Json,
    /// A TOML file that `--config` accepts back; secrets left out and named in comments.
    Toml,
}

/// Flags of `config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// What to print.
    #[arg(long, value_enum, default_value_t = ConfigFormatArg::Json)]
    pub format: ConfigFormatArg,
}

/// Flags of `completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: ShellArg,
}

/// `tollgate alert …`
#[derive(Debug, Subcommand)]
pub enum AlertCommand {
    /// Manage alert channels.
    #[command(subcommand)]
    Channel(AlertChannelCommand),
    /// Send a test alert to a channel now and show the attempt.
    Test(AlertTestArgs),
}

/// `tollgate alert channel …`
#[derive(Debug, Subcommand)]
pub enum AlertChannelCommand {
    /// Add a webhook channel and print its signing secret once (needs a master key).
    Add(AlertChannelAddArgs),
    /// List the channels (webhook URLs by origin only).
    List(AlertChannelListArgs),
    /// Remove a channel and its delivery records.
    Remove(AlertChannelRemoveArgs),
}

/// Flags of `alert channel add`.
#[derive(Debug, Args)]
pub struct AlertChannelAddArgs {
    /// Unique name.
    #[arg(long)]
    pub name: String,
    /// Webhook URL (http or https).
    #[arg(long)]
    pub webhook: String,
    /// The payload's shape.
    #[arg(long, value_enum, default_value_t = ChannelFormatArg::Generic)]
    pub format: ChannelFormatArg,
    /// Print JSON: {"id","secret"}.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `alert channel list`.
#[derive(Debug, Args)]
pub struct AlertChannelListArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `alert channel remove`.
#[derive(Debug, Args)]
pub struct AlertChannelRemoveArgs {
    /// Channel id.
    pub id: i64,
}

/// Flags of `alert test`.
#[derive(Debug, Args)]
pub struct AlertTestArgs {
    /// Channel id.
    pub id: i64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `tollgate sync …`
#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Record the tool's cumulative figure: 350000, 350K, 1.2M, 35万, "350,000 tokens used".
    Record(SyncRecordArgs),
    /// Record the figure on the clipboard.
    Quick(SyncQuickArgs),
    /// Show used, quota, percent, remaining and sessions.
    Status(SyncStatusArgs),
    /// Count a user and an assistant text with a BPE tokenizer and add the sum as an estimate.
    Estimate(SyncEstimateArgs),
    /// Import sessions {tokens, event, timestamp} from a JSON array or a CSV file.
    Import(SyncImportArgs),
    /// Correct a wrong reading, by id (the console's history shows it, `sync record --json`
    /// prints it): the readings after it are recomputed.
    Correct(SyncCorrectArgs),
    /// Delete a wrong reading: the readings after it are recomputed.
    Delete(SyncDeleteArgs),
}

/// Flags of `sync correct`.
#[derive(Debug, Args)]
pub struct SyncCorrectArgs {
    /// The reading's id.
    pub id: i64,
    /// The figure it should have been: 150000, 150K, 15万…
    #[arg(allow_hyphen_values = true)]
    pub reading: String,
    /// Counter name.
    #[arg(long, default_value = "default")]
    pub counter: String,
    /// The counter's team (by name).
    #[arg(long, default_value = "default")]
    pub team: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `sync delete`.
#[derive(Debug, Args)]
pub struct SyncDeleteArgs {
    /// The reading's id.
    pub id: i64,
    /// Counter name.
    #[arg(long, default_value = "default")]
    pub counter: String,
    /// The counter's team (by name).
    #[arg(long, default_value = "default")]
    pub team: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `sync record`.
#[derive(Debug, Args)]
pub struct SyncRecordArgs {
    /// The cumulative figure.
    #[arg(allow_hyphen_values = true)]
    pub reading: String,
    /// What happened.
    #[arg(default_value = "")]
    pub event: String,
    /// Counter name.
    #[arg(long, default_value = "default")]
    pub counter: String,
    /// The counter's team (by name); counters belong to a team.
    #[arg(long, default_value = "default")]
    pub team: String,
    /// Conversation id.
    #[arg(long)]
    pub conversation: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `sync quick`.
#[derive(Debug, Args)]
pub struct SyncQuickArgs {
    /// What happened.
    pub event: Option<String>,
    /// Counter name.
    #[arg(long, default_value = "default")]
    pub counter: String,
    /// The counter's team (by name); counters belong to a team.
    #[arg(long, default_value = "default")]
    pub team: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `sync status`.
#[derive(Debug, Args)]
pub struct SyncStatusArgs {
    /// Counter name.
    #[arg(long, default_value = "default")]
    pub counter: String,
    /// The counter's team (by name); counters belong to a team.
    #[arg(long, default_value = "default")]
    pub team: String,
    /// Print JSON: used, quota, percent, remaining, sessions.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `sync estimate`.
#[derive(Debug, Args)]
pub struct SyncEstimateArgs {
    /// The user's text.
    pub user: String,
    /// The assistant's text.
    pub assistant: String,
    /// Model whose vocabulary to use.
    #[arg(long)]
    pub model: Option<String>,
    /// What happened (default: the counts).
    #[arg(long)]
    pub event: Option<String>,
    /// Counter name.
    #[arg(long, default_value = "default")]
    pub counter: String,
    /// The counter's team (by name); counters belong to a team.
    #[arg(long, default_value = "default")]
    pub team: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `sync import`.
#[derive(Debug, Args)]
pub struct SyncImportArgs {
    /// JSON (array) or CSV (header: tokens,event,timestamp) file.
    pub file: PathBuf,
    /// Counter name.
    #[arg(long, default_value = "default")]
    pub counter: String,
    /// The counter's team (by name); counters belong to a team.
    #[arg(long, default_value = "default")]
    pub team: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `tollgate usage …`
#[derive(Debug, Subcommand)]
pub enum UsageCommand {
    /// Totals: calls, errors, latency percentiles, tokens, cost.
    Stats(UsageStatsArgs),
    /// Top keys, routes, models, teams or status classes.
    Top(UsageTopArgs),
    /// Export raw events as CSV, JSON or NDJSON (streamed).
    Export(UsageExportArgs),
}

/// Filters shared by the usage commands.
#[derive(Debug, Args)]
pub struct UsageFilterArgs {
    /// How far back, e.g. 24h, 7d, 90d (at most 400d).
    #[arg(long, default_value = "24h", value_name = "DURATION")]
    pub since: String,
    /// Up to this long ago (default: now).
    #[arg(long, value_name = "DURATION")]
    pub until: Option<String>,
    /// Only this key id.
    #[arg(long)]
    pub key: Option<i64>,
    /// Only this route id.
    #[arg(long)]
    pub route: Option<i64>,
    /// Only this model.
    #[arg(long)]
    pub model: Option<String>,
}

/// Flags of `usage stats`.
#[derive(Debug, Args)]
pub struct UsageStatsArgs {
    /// Filters.
    #[command(flatten)]
    pub filter: UsageFilterArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `usage top`.
#[derive(Debug, Args)]
pub struct UsageTopArgs {
    /// What to group by.
    #[arg(long, value_enum, default_value_t = TopByArg::Key)]
    pub by: TopByArg,
    /// What to order by.
    #[arg(long, value_enum, default_value_t = TopOrderArg::Calls)]
    pub order: TopOrderArg,
    /// How many, 1 to 1000.
    #[arg(long, default_value_t = 10)]
    pub limit: i64,
    /// Filters.
    #[command(flatten)]
    pub filter: UsageFilterArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `usage export`.
#[derive(Debug, Args)]
pub struct UsageExportArgs {
    /// The file's format.
    #[arg(long, value_enum, default_value_t = ExportFormatArg::Csv)]
    pub format: ExportFormatArg,
    /// Write to this file instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Filters.
    #[command(flatten)]
    pub filter: UsageFilterArgs,
}

/// Flags of `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Number of events, 1 to 100000000.
    #[arg(long, default_value_t = 100_000)]
    pub events: u64,
    /// Days of history, 1 to 400.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Random seed, for repeatable data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// Flags of `estimate`.
#[derive(Debug, Args)]
pub struct EstimateArgs {
    /// Model whose vocabulary to use (default: o200k_base, today's OpenAI default).
    #[arg(long)]
    pub model: Option<String>,
    /// Vocabulary by name, overriding --model.
    #[arg(long, value_enum)]
    pub vocabulary: Option<VocabularyArg>,
    /// Print JSON: {"tokens","vocabulary","model","characters","bytes"}.
    #[arg(long)]
    pub json: bool,
    /// File to count; `-` or nothing for standard input.
    pub file: Option<PathBuf>,
}

/// `tollgate admin …`
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an instance admin. The password is read from standard input (or asked for at a terminal), never an argument.
    Create(AdminCreateArgs),
}

/// Flags of `admin create`.
#[derive(Debug, Args)]
pub struct AdminCreateArgs {
    /// E-mail address of the new admin.
    #[arg(long)]
    pub email: String,
    /// Display name (default: the part of the address before @).
    #[arg(long)]
    pub name: Option<String>,
}

/// `tollgate token …`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a personal access token (tgp_…) for a user and print it once.
    Create(TokenCreateArgs),
    /// List a user's personal access tokens (with --server: the token's own user's).
    List(crate::cli_team::TokenListArgs),
    /// Revoke a personal access token: it stops working at once.
    Revoke(crate::cli_team::TokenRevokeArgs),
    /// Create an edge access token (tge_…), which reads only the edge key snapshot and change
    /// feed, and print it once.
    CreateEdge(EdgeTokenCreateArgs),
    /// Revoke an edge access token: it stops working at once.
    RevokeEdge(EdgeTokenRevokeArgs),
}

/// Flags of `token create-edge`.
#[derive(Debug, Args)]
pub struct EdgeTokenCreateArgs {
    /// Name of the token (say, the edge it is for).
    #[arg(long)]
    pub name: String,
    /// Lifetime, e.g. 90d (default: never expires).
    #[arg(long, value_name = "DURATION")]
    pub expires: Option<String>,
    /// Print JSON: {"id","token","prefix"}.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `token revoke-edge`.
#[derive(Debug, Args)]
pub struct EdgeTokenRevokeArgs {
    /// The edge token's id.
    #[arg(long)]
    pub id: i64,
}

/// Flags of `token create`.
#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// The user's e-mail address (with --server: the token's own user, the default).
    #[arg(long)]
    pub email: Option<String>,
    /// Name of the token.
    #[arg(long)]
    pub name: String,
    /// Lifetime, e.g. 30d (default: never expires).
    #[arg(long, value_name = "DURATION")]
    pub expires: Option<String>,
    /// Print JSON: {"id","token"}.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Gateway listener (default 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    pub gateway_listen: Option<SocketAddr>,
    /// Console listener (default 127.0.0.1:8317).
    #[arg(long, value_name = "ADDR")]
    pub console_listen: Option<SocketAddr>,
    /// Once listening, write the bound addresses as JSON {"gateway","console"} to this file (for
    /// supervisors and tests that listen on port 0).
    #[arg(long, value_name = "FILE")]
    pub ready_file: Option<PathBuf>,
}

/// `tollgate key …`
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a key and print it once.
    Create(KeyCreateArgs),
    /// List keys (masked).
    List(KeyListArgs),
    /// Revoke a key: the gateway refuses it within a second.
    Revoke(KeyRevokeArgs),
    /// Change a key's name, description, expiry, routes or model allow-list.
    Update(KeyUpdateArgs),
}

/// Flags of `key update`.
#[derive(Debug, Args)]
pub struct KeyUpdateArgs {
    /// Id of the key (see `tollgate key list`).
    pub id: i64,
    /// New name.
    #[arg(long)]
    pub name: Option<String>,
    /// New description.
    #[arg(long)]
    pub description: Option<String>,
    /// New lifetime from now, e.g. 30d, 12h; `never` removes the expiry.
    #[arg(long, value_name = "DURATION")]
    pub expires: Option<String>,
    /// Route names the key may call, comma-separated; `all` for all of its team's and shared
    /// routes.
    #[arg(long, value_name = "NAME,…", value_delimiter = ',')]
    pub routes: Option<Vec<String>>,
    /// Models the key may call on LLM routes, as comma-separated glob patterns
    /// (`gpt-4o*,claude-*`); an empty value ('') allows every model again.
    #[arg(long, value_name = "PATTERN,…")]
    pub models: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `key create`.
#[derive(Debug, Args)]
pub struct KeyCreateArgs {
    /// Name of the key.
    #[arg(long)]
    pub name: String,
    /// Team that owns it.
    #[arg(long, default_value = "default")]
    pub team: String,
    /// Free-text description.
    #[arg(long, default_value = "")]
    pub description: String,
    /// Lifetime, e.g. 30d, 12h (default: never expires).
    #[arg(long, value_name = "DURATION")]
    pub expires: Option<String>,
    /// Route names the key may call, comma-separated (default: all of its team's and shared routes).
    #[arg(long, value_name = "NAME,…", value_delimiter = ',')]
    pub routes: Option<Vec<String>>,
    /// Models the key may call on LLM routes, as comma-separated glob patterns
    /// (`gpt-4o*,claude-*`; default: every model).
    #[arg(long, value_name = "PATTERN,…")]
    pub models: Option<String>,
    /// Print JSON: {"id","key","prefix"}.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `key list`.
#[derive(Debug, Args)]
pub struct KeyListArgs {
    /// Only this team's keys.
    #[arg(long)]
    pub team: Option<String>,
    /// Only keys that have never been used.
    #[arg(long, conflicts_with = "idle_days")]
    pub unused: bool,
    /// Only keys not used in the last N days (never-used keys included), 1 to 3650.
    #[arg(long, value_name = "N")]
    pub idle_days: Option<u32>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `key revoke`.
#[derive(Debug, Args)]
pub struct KeyRevokeArgs {
    /// Id of the key (see `tollgate key list`).
    pub id: i64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `tollgate limit …`
#[derive(Debug, Subcommand)]
pub enum LimitCommand {
    /// Set limits on the instance, a team, a key or a route: one limit per kind given.
    Set(Box<LimitSetArgs>),
    /// List limits with their current use and reset time.
    List(LimitListArgs),
    /// Remove a limit by id.
    Remove(LimitRemoveArgs),
}

/// Flags of `limit set`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("scope").required(true).multiple(false)
    .args(["instance", "team", "key", "route"])))]
pub struct LimitSetArgs {
    /// On every call through the instance.
    #[arg(long)]
    pub instance: bool,
    /// On the keys of this team (id).
    #[arg(long, value_name = "ID")]
    pub team: Option<i64>,
    /// On this key (id).
    #[arg(long, value_name = "ID")]
    pub key: Option<i64>,
    /// On this route (name).
    #[arg(long, value_name = "NAME")]
    pub route: Option<String>,
    /// Requests per second.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub rps: Option<u64>,
    /// Requests per minute.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub rpm: Option<u64>,
    /// Requests per hour.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub rph: Option<u64>,
    /// Tokens (prompt + completion) per minute.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub tpm: Option<u64>,
    /// Calls in flight at once.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub concurrency: Option<u64>,
    /// A token budget per --period.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub tokens: Option<u64>,
    /// A cost budget in US dollars per --period (e.g. 12.50).
    #[arg(long, value_name = "USD")]
    pub cost_usd: Option<String>,
    /// The budgets' period.
    #[arg(long, value_enum, value_name = "PERIOD")]
    pub period: Option<PeriodArg>,
    /// Only alert, never refuse.
    #[arg(long)]
    pub soft: bool,
    /// Alert thresholds in percent, comma-separated (default 80,100).
    #[arg(long, value_name = "PCT,…", value_delimiter = ',')]
    pub alert_at: Option<Vec<u16>>,
    /// Token-counter readings count towards the budgets.
    #[arg(long)]
    pub include_reported: bool,
    /// Print JSON: {"id"} (or {"ids"} when several limits were set).
    #[arg(long)]
    pub json: bool,
}

/// Flags of `limit list`.
#[derive(Debug, Args)]
pub struct LimitListArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `limit remove`.
#[derive(Debug, Args)]
pub struct LimitRemoveArgs {
    /// Id of the limit (see `tollgate limit list`).
    pub id: i64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}
