//! The console's REST API: every handler with its OpenAPI description, collected in [`router`] so
//! that the document at `/api/openapi.json` is generated from the same table that serves requests.
//! One file per tag of the document (`session` holds `auth` and `tokens`, `teams` holds `teams`
//! and `users`, `quotas` is part of `usage`); the seed-compatible paths are in [`compat`].

pub mod alerts;
pub mod audit;
pub mod compat;
pub mod counters;
pub mod edge;
pub mod estimate;
pub mod ingest;
pub mod keys;
pub mod limits;
pub mod models;
pub mod prices;
pub mod quotas;
pub mod routes;
pub mod session;
pub mod settings;
pub mod teams;
pub mod usage;
pub mod views;
pub mod vocabulary;

use serde::{Deserialize, Deserializer};
use utoipa::openapi::security::{
    ApiKey as ApiKeyScheme, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::ConsoleState;
use tollgate_core::{Role, RouteKind};
use vocabulary::{AuditFormat, Bucket, ExportDataset, ExportFormat, Grouping, SortOrder};

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`) in PATCH bodies.
pub fn double_option<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKeyScheme::Cookie(ApiKeyValue::new(
                crate::auth::SESSION_COOKIE,
            ))),
        );
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("tgp_…")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "ingest_signature",
            SecurityScheme::ApiKey(ApiKeyScheme::Header(ApiKeyValue::with_description(
                "X-Tollgate-Signature",
                "sha256=<hex HMAC-SHA256 of \"{X-Tollgate-Timestamp}.{body}\"> keyed by the ingest secret; X-Tollgate-Timestamp is unix seconds within 300 s of the server's clock",
            ))),
        );
        components.add_security_scheme(
            "edge_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("tge_…")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "ingest_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "tollgate console API", description = "Control plane of tollgate: accounts, teams, keys, routes, audit, usage ingest."),
    modifiers(&Security),
    // The vocabulary, published whether or not an operation names it yet.
    components(schemas(Role, RouteKind, Grouping, SortOrder, Bucket, ExportFormat, ExportDataset, AuditFormat)),
    security(("session" = []), ("token" = [])),
    tags(
        (name = "auth", description = "Signing in, sessions, invitations"),
        (name = "tokens", description = "Personal access tokens"),
        (name = "teams", description = "Teams, members, invitations"),
        (name = "users", description = "Users (instance admins)"),
        (name = "keys", description = "API keys"),
        (name = "routes", description = "Routes"),
        (name = "models", description = "Model routing: models, aliases, pools and upstream targets"),
        (name = "limits", description = "Rate limits, concurrency limits and budgets"),
        (name = "usage", description = "Usage analytics, call logs, exports"),
        (name = "counters", description = "Token counters reported by other tools"),
        (name = "audit", description = "Audit log"),
        (name = "prices", description = "Prices per model: built in, configured, set from the console"),
        (name = "settings", description = "Instance settings"),
        (name = "alerts", description = "Alert channels and deliveries (instance admins)"),
        (name = "ingest", description = "Usage ingest"),
        (name = "edge", description = "Edge key sync: snapshot, change feed, edge tokens"),
        (name = "seed", description = "Seed-compatible paths"),
        (name = "health", description = "Health and metrics"),
    )
)]
struct ApiDoc;

/// Every API route with its documentation.
pub fn router() -> OpenApiRouter<ConsoleState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(session::login))
        .routes(routes!(session::logout))
        .routes(routes!(session::me))
        .routes(routes!(session::change_password))
        .routes(routes!(session::list_tokens, session::create_token))
        .routes(routes!(session::revoke_token))
        .routes(routes!(session::show_invitation))
        .routes(routes!(session::accept_invitation))
        .routes(routes!(teams::list_teams, teams::create_team))
        .routes(routes!(
            teams::get_team,
            teams::rename_team,
            teams::delete_team
        ))
        .routes(routes!(teams::list_members))
        .routes(routes!(teams::set_member, teams::remove_member))
        .routes(routes!(teams::create_invitation, teams::list_invitations))
        .routes(routes!(teams::delete_invitation))
        .routes(routes!(teams::list_users))
        .routes(routes!(teams::update_user))
        .routes(routes!(keys::list_keys, keys::create_key))
        .routes(routes!(keys::get_key, keys::update_key, keys::delete_key))
        .routes(routes!(keys::revoke_key))
        .routes(routes!(keys::reveal_key))
        .routes(routes!(routes::list_routes, routes::create_route))
        .routes(routes!(
            routes::get_route,
            routes::update_route,
            routes::delete_route
        ))
        .routes(routes!(models::list_models, models::create_model))
        .routes(routes!(
            models::get_model,
            models::update_model,
            models::delete_model
        ))
        .routes(routes!(models::list_targets, models::create_target))
        .routes(routes!(models::targets_health))
        .routes(routes!(
            models::get_target,
            models::update_target,
            models::delete_target
        ))
        .routes(routes!(usage::summary))
        .routes(routes!(usage::series))
        .routes(routes!(usage::top))
        .routes(routes!(usage::logs))
        .routes(routes!(usage::log_entry))
        .routes(routes!(usage::export))
        .routes(routes!(limits::list_limits, limits::create_limit))
        .routes(routes!(limits::update_limit, limits::delete_limit))
        .routes(routes!(quotas::list_quotas))
        .routes(routes!(quotas::set_instance_quota))
        .routes(routes!(quotas::set_team_quota))
        .routes(routes!(counters::list_counters))
        .routes(routes!(counters::counter_status))
        .routes(routes!(counters::create_reading, counters::list_readings))
        .routes(routes!(counters::set_quota))
        .routes(routes!(counters::parse))
        .routes(routes!(counters::estimate_reading))
        .routes(routes!(counters::correct_reading, counters::delete_reading))
        .routes(routes!(counters::import_sessions))
        .routes(routes!(estimate::estimate))
        .routes(routes!(audit::list_audit))
        .routes(routes!(prices::list_prices))
        .routes(routes!(prices::set_price, prices::remove_price))
        .routes(routes!(settings::get_settings))
        .routes(routes!(settings::rotate_ingest_secret))
        .routes(routes!(alerts::list_channels, alerts::create_channel))
        .routes(routes!(alerts::delete_channel))
        .routes(routes!(alerts::test_channel))
        .routes(routes!(alerts::list_deliveries))
        .routes(routes!(alerts::rules))
        .routes(routes!(ingest::usage_events))
        .routes(routes!(edge::edge_snapshot))
        .routes(routes!(edge::edge_changes))
        .routes(routes!(edge::list_edge_tokens, edge::create_edge_token))
        .routes(routes!(edge::revoke_edge_token))
        .routes(routes!(crate::health::health))
        .routes(routes!(crate::health::health_detailed))
        .routes(routes!(crate::health::metrics))
        .merge(compat::router())
}
