//! Model routing: upstream targets (a provider, a base URL, a credential and how it is sent) and
//! models (a name or wildcard, its aliases, a pool of targets and an ordered fallback list), with
//! the checks and the name resolution the control plane and the gateway share.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Longest model name, alias or upstream model name.
pub const MAX_MODEL_NAME: usize = 128;
/// Largest weight of a target.
pub const MAX_WEIGHT: u32 = 1_000;
/// Azure OpenAI `api-version` sent when a target names none.
pub const DEFAULT_AZURE_API_VERSION: &str = "2024-10-21";
/// The placeholder of a credential format that the secret replaces.
pub const KEY_PLACEHOLDER: &str = "{key}";

/// Which API an upstream target speaks and how it is addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// OpenAI (`https://api.openai.com/v1`).
    Openai,
    /// Anthropic (`https://api.anthropic.com/v1`): `/messages`, and its OpenAI-compatible paths.
    Anthropic,
    /// Azure OpenAI: `{base}/openai/deployments/{deployment}/…?api-version=…`.
    Azure,
    /// Google Gemini's OpenAI-compatible endpoint
    /// (`https://generativelanguage.googleapis.com/v1beta/openai`).
    Gemini,
    /// Any OpenAI-compatible server (vLLM, Ollama, OpenRouter, DeepSeek, …); its base URL is needed.
    OpenaiCompatible,
}

impl Provider {
    /// Every provider, in the order help texts list them.
    pub const ALL: [Self; 5] = [
        Self::Openai,
        Self::Anthropic,
        Self::Azure,
        Self::Gemini,
        Self::OpenaiCompatible,
    ];

    /// The name used in the store, the CLI and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Openai => "openai",
            Self::Anthropic => "anthropic",
            Self::Azure => "azure",
            Self::Gemini => "gemini",
            Self::OpenaiCompatible => "openai_compatible",
        }
    }

    /// The base URL a target of this provider gets when it names none (`None`: one is needed).
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            Self::Openai => Some("https://api.openai.com/v1"),
            Self::Anthropic => Some("https://api.anthropic.com/v1"),
            Self::Gemini => Some("https://generativelanguage.googleapis.com/v1beta/openai"),
            Self::Azure | Self::OpenaiCompatible => None,
        }
    }

    /// How the provider expects its key: `Authorization: Bearer` for the OpenAI-likes,
    /// `x-api-key` for Anthropic, `api-key` for Azure, `x-goog-api-key` for Gemini.
    pub fn default_credential_header(self) -> CredentialHeader {
        let (name, format) = match self {
            Self::Openai | Self::OpenaiCompatible => ("authorization", "Bearer {key}"),
            Self::Anthropic => ("x-api-key", KEY_PLACEHOLDER),
            Self::Azure => ("api-key", KEY_PLACEHOLDER),
            Self::Gemini => ("x-goog-api-key", KEY_PLACEHOLDER),
        };
        CredentialHeader {
            name: name.to_owned(),
            format: format.to_owned(),
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Provider {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown provider `{s}` (expected openai, anthropic, azure, gemini or openai_compatible)"
                )
            })
    }
}

/// The header an upstream credential is sent in, and its value with `{key}` standing for the
/// secret: `authorization: Bearer {key}`, `x-api-key: {key}`, `x-internal-token: Token {key}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CredentialHeader {
    /// Header name, lower case.
    pub name: String,
    /// Header value; `{key}` is replaced by the credential.
    pub format: String,
}

/// Headers a credential may not be sent in: the gateway or HTTP itself owns them.
const RESERVED_HEADERS: [&str; 12] = [
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
    "proxy-connection",
    "x-forwarded-for",
    "x-request-id",
];

impl CredentialHeader {
    /// Checks and normalises a header name and format: an HTTP token as the name (not one the
    /// gateway owns), a printable format holding `{key}` once.
    pub fn new(name: &str, format: &str) -> Result<Self, String> {
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty() || name.len() > 64 {
            return Err("the credential header name must be 1 to 64 characters".into());
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        {
            return Err(format!(
                "credential header `{name}` is not a valid header name (letters, digits and -)"
            ));
        }
        if RESERVED_HEADERS.contains(&name.as_str()) {
            return Err(format!(
                "credential header `{name}` is managed by the gateway and cannot carry a credential"
            ));
        }
        if format.matches(KEY_PLACEHOLDER).count() != 1 {
            return Err(format!(
                "the credential format `{format}` must hold {KEY_PLACEHOLDER} exactly once"
            ));
        }
        if format.len() > 256 || format.bytes().any(|b| !(0x20..0x7f).contains(&b)) {
            return Err(
                "the credential format must be at most 256 printable ASCII characters".into(),
            );
        }
        Ok(Self {
            name,
            format: format.to_owned(),
        })
    }

    /// Parses `Name: format` (the CLI's `--credential-header`); a bare name sends the key as is.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.split_once(':') {
            Some((name, format)) => Self::new(name, format.trim()),
            None => Self::new(text, KEY_PLACEHOLDER),
        }
    }

    /// The header value carrying `secret`.
    pub fn value(&self, secret: &str) -> String {
        self.format.replacen(KEY_PLACEHOLDER, secret, 1)
    }
}

impl fmt::Display for CredentialHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.format)
    }
}

/// How a model's pool picks a target for each call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// At random, in proportion to the targets' weights.
    #[default]
    Weighted,
    /// The target with the fewest calls in flight (per weight); ties by weight.
    LeastBusy,
}

impl Strategy {
    /// The name used in the API and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Weighted => "weighted",
            Self::LeastBusy => "least_busy",
        }
    }
}

impl FromStr for Strategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "weighted" => Ok(Self::Weighted),
            "least_busy" | "least-busy" => Ok(Self::LeastBusy),
            other => Err(format!(
                "unknown strategy `{other}` (expected weighted or least_busy)"
            )),
        }
    }
}

/// What a target is besides its name, provider, base URL and credential (stored as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetSettings {
    /// How the credential is sent; `None`: the provider's way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_header: Option<CredentialHeader>,
    /// Query parameters added to every call (Azure's `api-version`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
    /// Azure deployment name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    /// Share of the pool's calls, 1 to 1000.
    pub weight: u32,
    /// Most requests per minute this target is sent (over all models using it); `None`: no ceiling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u32>,
}

impl Default for TargetSettings {
    fn default() -> Self {
        Self {
            credential_header: None,
            query: BTreeMap::new(),
            deployment: None,
            weight: 1,
            rpm: None,
        }
    }
}

impl TargetSettings {
    /// Checks the settings for `provider`; the error names the field.
    pub fn check(&self, provider: Provider) -> Result<(), (&'static str, String)> {
        if !(1..=MAX_WEIGHT).contains(&self.weight) {
            return Err(("weight", format!("weight must be 1 to {MAX_WEIGHT}")));
        }
        if self.rpm == Some(0) {
            return Err((
                "rpm",
                "rpm must be at least 1 (leave it out for no ceiling)".into(),
            ));
        }
        for (name, value) in &self.query {
            if name.is_empty()
                || name.len() > 64
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
            {
                return Err((
                    "query",
                    format!(
                        "query parameter `{name}` must be 1 to 64 letters, digits, -, _, . or ~"
                    ),
                ));
            }
            if value.len() > 256
                || !value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
            {
                return Err((
                    "query",
                    format!(
                        "query parameter `{name}` must be at most 256 letters, digits, -, _, . or ~"
                    ),
                ));
            }
        }
        match (&self.deployment, provider) {
            (None, Provider::Azure) => {
                return Err((
                    "deployment",
                    "an azure target needs its deployment name".into(),
                ));
            }
            (Some(_), p) if p != Provider::Azure => {
                return Err((
                    "deployment",
                    "a deployment is only used by azure targets".into(),
                ));
            }
            (Some(d), _) if !valid_deployment(d) => {
                return Err((
                    "deployment",
                    format!("deployment `{d}` must be 1 to 64 letters, digits, -, _ or ."),
                ));
            }
            _ => {}
        }
        Ok(())
    }

    /// The header the credential of a `provider` target is sent in.
    pub fn header_for(&self, provider: Provider) -> CredentialHeader {
        self.credential_header
            .clone()
            .unwrap_or_else(|| provider.default_credential_header())
    }

    /// The query parameters sent: the target's, plus Azure's default `api-version`.
    pub fn query_for(&self, provider: Provider) -> Vec<(String, String)> {
        let mut query: Vec<(String, String)> = self
            .query
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if provider == Provider::Azure && !self.query.contains_key("api-version") {
            query.push(("api-version".into(), DEFAULT_AZURE_API_VERSION.into()));
        }
        query
    }
}

fn valid_deployment(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 64
        && d.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// One target of a model's pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolMember {
    /// The target's name.
    pub target: String,
    /// The model name sent to this target; `None`: the name the client asked for (for a
    /// wildcard) or the model's own name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_model: Option<String>,
}

/// What a model is besides its name (stored as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelSettings {
    /// The targets that serve it.
    pub pool: Vec<PoolMember>,
    /// Other names clients may use for it (`fast` → `gpt-4o-mini`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Models tried in this order when every target of the pool failed or is cooling down.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallbacks: Vec<String>,
    /// How a target is picked.
    #[serde(default)]
    pub strategy: Strategy,
}

/// Checks a model name, alias or upstream model name: 1 to 128 printable characters without
/// spaces; `*` only where `wildcard` allows it.
pub fn validate_model_name(name: &str, wildcard: bool) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_MODEL_NAME {
        return Err(format!(
            "model name `{name}` must be 1 to {MAX_MODEL_NAME} characters"
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\\'))
    {
        return Err(format!(
            "model name `{name}` may not hold `{}`",
            bad.escape_default()
        ));
    }
    if !wildcard && name.contains('*') {
        return Err(format!(
            "`{name}`: only a model's own name may hold the wildcard *"
        ));
    }
    Ok(())
}

/// Whether `name` is a wildcard pattern.
pub fn is_wildcard(name: &str) -> bool {
    name.contains('*')
}

/// Whether `pattern` (`*` matches any run of characters) matches `name`.
pub fn wildcard_matches(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The literal characters of a pattern: more of them is a more specific wildcard.
fn specificity(pattern: &str) -> usize {
    pattern.chars().filter(|&c| c != '*').count()
}

/// Why a set of models does not hold together; the field named is the offending model's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogueError {
    /// `name`, `aliases`, `fallbacks` or `pool`.
    pub field: &'static str,
    /// One human line.
    pub message: String,
}

fn refuse(field: &'static str, message: String) -> CatalogueError {
    CatalogueError { field, message }
}

/// Checks one model against the others (`others` excludes its own stored version): names and
/// aliases unique across models, fallbacks naming existing models without a cycle, pool members
/// naming existing targets.
pub fn check_model<'a>(
    name: &str,
    settings: &ModelSettings,
    others: impl IntoIterator<Item = (&'a str, &'a ModelSettings)> + Clone,
    targets: &HashSet<&str>,
) -> Result<(), CatalogueError> {
    validate_model_name(name, true).map_err(|e| refuse("name", e))?;
    if settings.pool.is_empty() {
        return Err(refuse(
            "pool",
            format!("model `{name}` needs at least one target"),
        ));
    }
    let mut seen_targets = HashSet::new();
    for member in &settings.pool {
        if !targets.contains(member.target.as_str()) {
            return Err(refuse(
                "pool",
                format!("no target named `{}`", member.target),
            ));
        }
        if !seen_targets.insert(member.target.as_str()) {
            return Err(refuse(
                "pool",
                format!("target `{}` is listed twice", member.target),
            ));
        }
        if let Some(upstream) = &member.upstream_model {
            validate_model_name(upstream, false).map_err(|e| refuse("pool", e))?;
        }
    }
    // Every name a client can ask for, other than this model's.
    let mut taken: HashMap<&str, &str> = HashMap::new();
    for (other, s) in others.clone() {
        taken.insert(other, other);
        for alias in &s.aliases {
            taken.insert(alias.as_str(), other);
        }
    }
    if let Some(owner) = taken.get(name) {
        return Err(refuse(
            "name",
            if *owner == name {
                format!("a model named `{name}` already exists")
            } else {
                format!("`{name}` is already an alias of model `{owner}`")
            },
        ));
    }
    let mut own = HashSet::new();
    for alias in &settings.aliases {
        validate_model_name(alias, false).map_err(|e| refuse("aliases", e))?;
        if alias == name {
            return Err(refuse(
                "aliases",
                format!("alias `{alias}` is the model's own name"),
            ));
        }
        if !own.insert(alias.as_str()) {
            return Err(refuse(
                "aliases",
                format!("alias `{alias}` is listed twice"),
            ));
        }
        if let Some(owner) = taken.get(alias.as_str()) {
            return Err(refuse(
                "aliases",
                if *owner == alias.as_str() {
                    format!(
                        "alias `{alias}` is the name of another model; an alias may not point at a name that is itself routed"
                    )
                } else {
                    format!("alias `{alias}` already belongs to model `{owner}`")
                },
            ));
        }
    }
    // Fallbacks: existing models, not itself, no cycle through the others' fallbacks.
    let fallbacks_of: HashMap<&str, &[String]> = others
        .clone()
        .into_iter()
        .map(|(n, s)| (n, s.fallbacks.as_slice()))
        .collect();
    let mut listed = HashSet::new();
    for fallback in &settings.fallbacks {
        if fallback == name {
            return Err(refuse(
                "fallbacks",
                format!("model `{name}` cannot fall back to itself"),
            ));
        }
        if !fallbacks_of.contains_key(fallback.as_str()) {
            return Err(refuse("fallbacks", format!("no model named `{fallback}`")));
        }
        if !listed.insert(fallback.as_str()) {
            return Err(refuse(
                "fallbacks",
                format!("fallback `{fallback}` is listed twice"),
            ));
        }
        let mut stack = vec![fallback.as_str()];
        let mut visited = HashSet::new();
        while let Some(current) = stack.pop() {
            if current == name {
                return Err(refuse(
                    "fallbacks",
                    format!("falling back to `{fallback}` would loop back to `{name}`"),
                ));
            }
            if visited.insert(current) {
                stack.extend(
                    fallbacks_of
                        .get(current)
                        .into_iter()
                        .flat_map(|f| f.iter().map(String::as_str)),
                );
            }
        }
    }
    Ok(())
}

/// How a requested name was resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matched {
    /// The model's own name.
    Exact,
    /// One of its aliases.
    Alias,
    /// Its wildcard pattern.
    Wildcard,
}

/// Resolves requested model names: alias, then exact name, then the most specific wildcard.
#[derive(Debug, Clone, Default)]
pub struct Resolver {
    exact: HashMap<String, usize>,
    aliases: HashMap<String, usize>,
    /// Wildcards, most specific first.
    wildcards: Vec<(String, usize)>,
}

impl Resolver {
    /// Indexes `names` (model name and aliases); the index is the position in the iterator.
    pub fn new<'a>(models: impl IntoIterator<Item = (&'a str, &'a [String])>) -> Self {
        let mut resolver = Self::default();
        for (i, (name, aliases)) in models.into_iter().enumerate() {
            if is_wildcard(name) {
                resolver.wildcards.push((name.to_owned(), i));
            } else {
                resolver.exact.insert(name.to_owned(), i);
            }
            for alias in aliases {
                resolver.aliases.insert(alias.clone(), i);
            }
        }
        resolver.wildcards.sort_by(|a, b| {
            specificity(&b.0)
                .cmp(&specificity(&a.0))
                .then(a.0.cmp(&b.0))
        });
        resolver
    }

    /// The model `requested` names, and how.
    pub fn resolve(&self, requested: &str) -> Option<(usize, Matched)> {
        if let Some(&i) = self.aliases.get(requested) {
            return Some((i, Matched::Alias));
        }
        if let Some(&i) = self.exact.get(requested) {
            return Some((i, Matched::Exact));
        }
        self.wildcards
            .iter()
            .find(|(pattern, _)| wildcard_matches(pattern, requested))
            .map(|&(_, i)| (i, Matched::Wildcard))
    }
}

/// The endpoint of an `llm` route a call is for (the path after the route's prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v1/chat/completions`.
    ChatCompletions,
    /// `/v1/completions`.
    Completions,
    /// `/v1/embeddings`.
    Embeddings,
    /// `/v1/models`.
    Models,
    /// Anthropic's `/v1/messages`.
    Messages,
}

impl Endpoint {
    /// The endpoint a path names (with or without the `/v1`), if any.
    pub fn from_path(path: &str) -> Option<Self> {
        let path = path.trim_end_matches('/');
        let path = path.strip_prefix("/v1").unwrap_or(path);
        match path {
            "/chat/completions" => Some(Self::ChatCompletions),
            "/completions" => Some(Self::Completions),
            "/embeddings" => Some(Self::Embeddings),
            "/models" => Some(Self::Models),
            "/messages" => Some(Self::Messages),
            _ => None,
        }
    }

    /// The path after a target's base URL, e.g. `/chat/completions`.
    pub fn suffix(self) -> &'static str {
        match self {
            Self::ChatCompletions => "/chat/completions",
            Self::Completions => "/completions",
            Self::Embeddings => "/embeddings",
            Self::Models => "/models",
            Self::Messages => "/messages",
        }
    }

    /// Whether the client speaks Anthropic's API (errors then take Anthropic's shape).
    pub fn is_anthropic(self) -> bool {
        self == Self::Messages
    }
}

/// The upstream path of a call to `endpoint` on a target: the base URL's path, then
/// `/openai/deployments/{deployment}` on Azure, then the endpoint.
pub fn upstream_path(
    base_path: &str,
    provider: Provider,
    deployment: Option<&str>,
    endpoint: Endpoint,
) -> String {
    let base = base_path.trim_end_matches('/');
    match (provider, deployment) {
        (Provider::Azure, Some(deployment)) => {
            format!(
                "{base}/openai/deployments/{deployment}{}",
                endpoint.suffix()
            )
        }
        _ => format!("{base}{}", endpoint.suffix()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(pool: &[&str], aliases: &[&str], fallbacks: &[&str]) -> ModelSettings {
        ModelSettings {
            pool: pool
                .iter()
                .map(|t| PoolMember {
                    target: (*t).to_owned(),
                    upstream_model: None,
                })
                .collect(),
            aliases: aliases.iter().map(|s| (*s).to_owned()).collect(),
            fallbacks: fallbacks.iter().map(|s| (*s).to_owned()).collect(),
            strategy: Strategy::Weighted,
        }
    }

    #[test]
    fn wildcards_match_runs_of_characters() {
        assert!(wildcard_matches("claude-*", "claude-3-5-sonnet"));
        assert!(wildcard_matches("claude-*", "claude-"));
        assert!(!wildcard_matches("claude-*", "gpt-4o"));
        assert!(wildcard_matches("*-mini", "gpt-4o-mini"));
        assert!(wildcard_matches("gpt-*-mini", "gpt-4o-mini"));
        assert!(!wildcard_matches("gpt-*-mini", "gpt-4o"));
        assert!(wildcard_matches("*", "anything"));
        assert!(!wildcard_matches("a*a", "a"));
    }

    #[test]
    fn resolution_prefers_alias_then_exact_then_the_longest_wildcard() {
        let models = [
            ("gpt-*".to_owned(), vec![]),
            ("gpt-4o-*".to_owned(), vec![]),
            ("gpt-4o-mini".to_owned(), vec!["fast".to_owned()]),
        ];
        let resolver = Resolver::new(models.iter().map(|(n, a)| (n.as_str(), a.as_slice())));
        assert_eq!(resolver.resolve("fast"), Some((2, Matched::Alias)));
        assert_eq!(resolver.resolve("gpt-4o-mini"), Some((2, Matched::Exact)));
        assert_eq!(
            resolver.resolve("gpt-4o-2024"),
            Some((1, Matched::Wildcard))
        );
        assert_eq!(resolver.resolve("gpt-3.5"), Some((0, Matched::Wildcard)));
        assert_eq!(resolver.resolve("claude"), None);
    }

    #[test]
    fn model_checks_name_the_field() {
        let targets: HashSet<&str> = ["a", "b"].into_iter().collect();
        let existing = model(&["a"], &["fast"], &[]);
        let others = [("gpt-4o-mini", &existing)];
        let ok = model(&["a", "b"], &["smart"], &["gpt-4o-mini"]);
        assert_eq!(check_model("gpt-4o", &ok, others, &targets), Ok(()));
        let err = |name: &str, m: &ModelSettings| {
            check_model(name, m, others, &targets).unwrap_err().field
        };
        assert_eq!(err("gpt-4o-mini", &ok), "name");
        assert_eq!(err("fast", &ok), "name");
        assert_eq!(err("x", &model(&[], &[], &[])), "pool");
        assert_eq!(err("x", &model(&["c"], &[], &[])), "pool");
        assert_eq!(err("x", &model(&["a", "a"], &[], &[])), "pool");
        assert_eq!(err("x", &model(&["a"], &["fast"], &[])), "aliases");
        assert_eq!(err("x", &model(&["a"], &["gpt-4o-mini"], &[])), "aliases");
        assert_eq!(err("x", &model(&["a"], &["x"], &[])), "aliases");
        assert_eq!(err("x", &model(&["a"], &["y*"], &[])), "aliases");
        assert_eq!(err("x", &model(&["a"], &[], &["x"])), "fallbacks");
        assert_eq!(err("x", &model(&["a"], &[], &["nope"])), "fallbacks");
    }

    #[test]
    fn fallback_cycles_are_refused() {
        let targets: HashSet<&str> = ["a"].into_iter().collect();
        let b = model(&["a"], &[], &["c"]);
        let c = model(&["a"], &[], &["a-model"]);
        let others = [("b", &b), ("c", &c)];
        let err =
            check_model("a-model", &model(&["a"], &[], &["b"]), others, &targets).unwrap_err();
        assert_eq!(err.field, "fallbacks");
        assert!(err.message.contains("loop"), "{}", err.message);
    }

    #[test]
    fn credential_headers_are_checked_and_formatted() {
        let h = CredentialHeader::parse("X-Internal-Token: Token {key}").unwrap();
        assert_eq!(h.name, "x-internal-token");
        assert_eq!(h.value("s3cret"), "Token s3cret");
        assert_eq!(CredentialHeader::parse("api-key").unwrap().value("k"), "k");
        assert!(CredentialHeader::parse("Host: {key}").is_err());
        assert!(CredentialHeader::parse("bad header: {key}").is_err());
        assert!(CredentialHeader::parse("x-token: Bearer").is_err());
        assert!(CredentialHeader::parse("x-token: {key}{key}").is_err());
    }

    #[test]
    fn providers_have_their_header_and_path_shapes() {
        assert_eq!(Provider::Azure.default_credential_header().name, "api-key");
        assert_eq!(
            Provider::Gemini.default_credential_header().name,
            "x-goog-api-key"
        );
        assert_eq!(
            upstream_path(
                "",
                Provider::Azure,
                Some("gpt4o-prod"),
                Endpoint::ChatCompletions
            ),
            "/openai/deployments/gpt4o-prod/chat/completions"
        );
        assert_eq!(
            upstream_path(
                "/v1beta/openai",
                Provider::Gemini,
                None,
                Endpoint::ChatCompletions
            ),
            "/v1beta/openai/chat/completions"
        );
        assert_eq!(
            Endpoint::from_path("/v1/messages"),
            Some(Endpoint::Messages)
        );
        assert_eq!(Endpoint::from_path("/v1/files"), None);
        let azure = TargetSettings {
            deployment: Some("d".into()),
            ..TargetSettings::default()
        };
        assert_eq!(
            azure.query_for(Provider::Azure),
            vec![(
                "api-version".to_owned(),
                DEFAULT_AZURE_API_VERSION.to_owned()
            )]
        );
        assert_eq!(
            TargetSettings::default()
                .check(Provider::Azure)
                .unwrap_err()
                .0,
            "deployment"
        );
        let zero = TargetSettings {
            weight: 0,
            ..TargetSettings::default()
        };
        assert_eq!(zero.check(Provider::Openai).unwrap_err().0, "weight");
    }
}
