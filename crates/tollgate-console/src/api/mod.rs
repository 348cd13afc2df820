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

use crate::ConsoleState;
use crate::health;
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

/// Every documented operation of the API, grouped by path: the one table that both the served
/// router ([`served`]) and the documented one ([`router`]) are made from (see `operations.rs`).
macro_rules! operations {
    ($make:ident $(, $openapi:expr)?) => {
        $make!(
            $($openapi;)?
            [session::login],
            [session::logout],
            [session::me],
            [session::change_password],
            [session::list_tokens, session::create_token],
            [session::revoke_token],
            [session::show_invitation],
            [session::accept_invitation],
            [teams::list_teams, teams::create_team],
            [teams::get_team, teams::rename_team, teams::delete_team],
            [teams::list_members],
            [teams::set_member, teams::remove_member],
            [teams::create_invitation, teams::list_invitations],
            [teams::delete_invitation],
            [teams::list_users],
            [teams::update_user],
            [keys::list_keys, keys::create_key],
            [keys::get_key, keys::update_key, keys::delete_key],
            [keys::revoke_key],
            [keys::reveal_key],
            [routes::list_routes, routes::create_route],
            [routes::get_route, routes::update_route, routes::delete_route],
            [models::list_models, models::create_model],
            [models::get_model, models::update_model, models::delete_model],
            [models::list_targets, models::create_target],
            [models::targets_health],
            [models::get_target, models::update_target, models::delete_target],
            [usage::summary],
            [usage::series],
            [usage::top],
            [usage::logs],
            [usage::log_entry],
            [usage::export],
            [limits::list_limits, limits::create_limit],
            [limits::update_limit, limits::delete_limit],
            [quotas::list_quotas],
            [quotas::set_instance_quota],
            [quotas::set_team_quota],
            [counters::list_counters],
            [counters::counter_status],
            [counters::create_reading, counters::list_readings],
            [counters::set_quota],
            [counters::parse],
            [counters::estimate_reading],
            [counters::correct_reading, counters::delete_reading],
            [counters::import_sessions],
            [estimate::estimate],
            [audit::list_audit],
            [prices::list_prices],
            [prices::set_price, prices::remove_price],
            [settings::get_settings],
            [settings::rotate_ingest_secret],
            [alerts::list_channels, alerts::create_channel],
            [alerts::delete_channel],
            [alerts::test_channel],
            [alerts::list_deliveries],
            [alerts::rules],
            [ingest::usage_events],
            [edge::edge_snapshot],
            [edge::edge_changes],
            [edge::list_edge_tokens, edge::create_edge_token],
            [edge::revoke_edge_token],
            [health::health],
            [health::health_detailed],
            [health::metrics],
        )
    };
}

/// Every API route with its documentation: the OpenAPI document ([`crate::openapi_json`]), built
/// on demand; requests are served by [`served`], made from the same table.
pub fn router() -> OpenApiRouter<ConsoleState> {
    operations!(documented_operations, ApiDoc::openapi()).merge(compat::router())
}

/// Every API route as served: [`router`]'s table without its documentation.
pub fn served() -> axum::Router<ConsoleState> {
    operations!(served_operations).merge(compat::served())
}
