//! The authorisation matrix: every console endpoint × every kind of caller, with the expected
//! status, from one table. The table must list exactly the operations of `/api/openapi.json`, so
//! an endpoint cannot be added without a row.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::Method;
use serde_json::{Value, json};
use sha2::Digest;

use crate::console::{ADMIN_EMAIL, ADMIN_PASSWORD, Api, console_env, invite_user};
use crate::harness::{Backend, Server, TestDb, client};

/// The callers, in the order of each row's expectations.
const CALLERS: [&str; 9] = [
    "anonymous",
    "viewer",
    "member",
    "admin",
    "owner",
    "other_owner",
    "instance_admin",
    "pat",
    "disabled",
];

/// `(method, OpenAPI path, URL template, body template, expected status per caller)`.
/// Placeholders: `{team}` the callers' team, `{viewer}` the viewer's user id, `{n}` a fresh number,
/// `{fresh_team}` a new team where the callers hold their roles, `{fresh_member}` a new member of
/// `{team}`, `{fresh_inv}` / `{inv_token}` a new invitation's id / secret, `{key}` and `{route}` new
/// ones in `{team}` made by the instance admin, `{limit}` a new limit on `{team}` made by the
/// instance admin, `{channel}` a new alert channel, `{own_token}` a token of the caller's own,
/// `{edge_token}` a new edge token made by the instance admin, `{reading}` a new reading on
/// `{team}`'s `default` counter recorded by the instance admin, `{target}` / `{target_name}` a new
/// model-routing target's id / name and `{model}` a new model served by it, both made by the
/// instance admin.
type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    [u16; 9],
);

const A: u16 = 401; // anonymous and disabled callers on protected paths
const ROWS: &[Row] = &[
    (
        "POST",
        "/api/v1/auth/login",
        "/api/v1/auth/login",
        r#"{"email":"nobody{n}@example.com","password":"wrong password"}"#,
        [401, 401, 401, 401, 401, 401, 401, 401, 401],
    ),
    (
        "GET",
        "/api/v1/auth/me",
        "/api/v1/auth/me",
        "",
        [A, 200, 200, 200, 200, 200, 200, 200, A],
    ),
    (
        "POST",
        "/api/v1/auth/password",
        "/api/v1/auth/password",
        r#"{"current_password":"not it at all","new_password":"zebra quantum lantern 77"}"#,
        [A, 422, 422, 422, 422, 422, 422, 422, A],
    ),
    (
        "GET",
        "/api/v1/tokens",
        "/api/v1/tokens",
        "",
        [A, 200, 200, 200, 200, 200, 200, 200, A],
    ),
    (
        "POST",
        "/api/v1/tokens",
        "/api/v1/tokens",
        r#"{"name":"t{n}"}"#,
        [A, 201, 201, 201, 201, 201, 201, 201, A],
    ),
    (
        "DELETE",
        "/api/v1/tokens/{id}",
        "/api/v1/tokens/{own_token}",
        "",
        [A, 204, 204, 204, 204, 204, 204, 204, A],
    ),
    (
        "GET",
        "/api/v1/invitations/{token}",
        "/api/v1/invitations/{inv_token}",
        "",
        [200; 9],
    ),
    (
        "POST",
        "/api/v1/invitations/{token}/accept",
        "/api/v1/invitations/{inv_token}/accept",
        r#"{"password":"violet tractor marmalade 42"}"#,
        [201; 9],
    ),
    (
        "GET",
        "/api/v1/teams",
        "/api/v1/teams",
        "",
        [A, 200, 200, 200, 200, 200, 200, 200, A],
    ),
    (
        "POST",
        "/api/v1/teams",
        "/api/v1/teams",
        r#"{"name":"team{n}"}"#,
        [A, 403, 403, 403, 403, 403, 201, 403, A],
    ),
    (
        "GET",
        "/api/v1/teams/{id}",
        "/api/v1/teams/{team}",
        "",
        [A, 200, 200, 200, 200, 404, 200, 200, A],
    ),
    (
        "PATCH",
        "/api/v1/teams/{id}",
        "/api/v1/teams/{team}",
        r#"{"name":"alpha"}"#,
        [A, 403, 403, 200, 200, 404, 200, 200, A],
    ),
    (
        "DELETE",
        "/api/v1/teams/{id}",
        "/api/v1/teams/{fresh_team}",
        "",
        [A, 403, 403, 403, 204, 404, 204, 403, A],
    ),
    (
        "GET",
        "/api/v1/teams/{id}/members",
        "/api/v1/teams/{team}/members",
        "",
        [A, 200, 200, 200, 200, 404, 200, 200, A],
    ),
    (
        "PUT",
        "/api/v1/teams/{id}/members/{user_id}",
        "/api/v1/teams/{team}/members/{viewer}",
        r#"{"role":"viewer"}"#,
        [A, 403, 403, 200, 200, 404, 200, 200, A],
    ),
    (
        "DELETE",
        "/api/v1/teams/{id}/members/{user_id}",
        "/api/v1/teams/{team}/members/{fresh_member}",
        "",
        [A, 403, 403, 204, 204, 404, 204, 204, A],
    ),
    (
        "POST",
        "/api/v1/teams/{id}/invitations",
        "/api/v1/teams/{team}/invitations",
        r#"{"email":"inv{n}@example.com","role":"member"}"#,
        [A, 403, 403, 201, 201, 404, 201, 201, A],
    ),
    (
        "GET",
        "/api/v1/teams/{id}/invitations",
        "/api/v1/teams/{team}/invitations",
        "",
        [A, 403, 403, 200, 200, 404, 200, 200, A],
    ),
    (
        "DELETE",
        "/api/v1/teams/{id}/invitations/{invitation_id}",
        "/api/v1/teams/{team}/invitations/{fresh_inv}",
        "",
        [A, 403, 403, 204, 204, 404, 204, 204, A],
    ),
    (
        "GET",
        "/api/v1/users",
        "/api/v1/users",
        "",
        [A, 403, 403, 403, 403, 403, 200, 403, A],
    ),
    (
        "PATCH",
        "/api/v1/users/{id}",
        "/api/v1/users/{viewer}",
        r#"{"display_name":"Vee"}"#,
        [A, 403, 403, 403, 403, 403, 200, 403, A],
    ),
    (
        "GET",
        "/api/v1/keys",
        "/api/v1/keys",
        "",
        [A, 200, 200, 200, 200, 200, 200, 200, A],
    ),
    (
        "POST",
        "/api/v1/keys",
        "/api/v1/keys",
        r#"{"team_id":{team},"name":"k{n}"}"#,
        [A, 403, 201, 201, 201, 404, 201, 201, A],
    ),
    (
        "GET",
        "/api/v1/keys/{id}",
        "/api/v1/keys/{key}",
        "",
        [A, 200, 200, 200, 200, 404, 200, 200, A],
    ),
    (
        "PATCH",
        "/api/v1/keys/{id}",
        "/api/v1/keys/{key}",
        r#"{"name":"renamed{n}"}"#,
        [A, 403, 403, 200, 200, 404, 200, 200, A],
    ),
    (
        "DELETE",
        "/api/v1/keys/{id}",
        "/api/v1/keys/{key}",
        "",
        [A, 403, 403, 204, 204, 404, 204, 204, A],
    ),
    (
        "POST",
        "/api/v1/keys/{id}/revoke",
        "/api/v1/keys/{key}/revoke",
        "",
        [A, 403, 403, 200, 200, 404, 200, 200, A],
    ),
    (
        "POST",
        "/api/v1/keys/{id}/reveal",
        "/api/v1/keys/{key}/reveal",
        "",
        [A, 403, 403, 200, 200, 404, 200, 200, A],
    ),
    (
        "GET",
        "/api/v1/routes",
        "/api/v1/routes",
        "",
        [A, 200, 200, 200, 200, 200, 200, 200, A],
    ),
    (
        "POST",
        "/api/v1/routes",
        "/api/v1/routes",
        r#"{"team_id":{team},"name":"r{n}","prefix":"/r{n}","upstream_url":"http://192.0.2.1:9"}"#,
        [A, 403, 403, 201, 201, 404, 201, 201, A],
    ),
    (
        "GET",
        "/api/v1/routes/{id}",
        "/api/v1/routes/{route}",
        "",
        [A, 200, 200, 200, 200, 404, 200, 200, A],
    ),
    (
        "PATCH",
        "/api/v1/routes/{id}",
        "/api/v1/routes/{route}",
        r#"{"enabled":true}"#,
        [A, 403, 403, 200, 200, 404, 200, 200, A],
    ),
    (
        "DELETE",
        "/api/v1/routes/{id}",
        "/api/v1/routes/{route}",
        "",
        [A, 403, 403, 204, 204, 404, 204, 204, A],
    ),
    (
        "GET",
        "/api/v1/targets",
        "/api/v1/targets",
        "",
        [A, 403, 403, 403, 403, 403, 200, 403, A],
    ),
    (
        "POST",
        "/api/v1/targets",
        "/api/v1/targets",
        r#"{"name":"t{n}","provider":"openai_compatible","base_url":"http://127.0.0.1:9/v1"}"#,
        [A, 403, 403, 403, 403, 403, 201, 403, A],
    ),
    (
        "GET",
        "/api/v1/targets/health",
        "/api/v1/targets/health",
        "",
        [A, 403, 403, 403, 403, 403, 200, 403, A],
    ),
    (
        "GET",
        "/api/v1/targets/{id}",
        "/api/v1/targets/{target}",
        "",
        [A, 403, 403, 403, 403, 403, 200, 403, A],
    ),
    (
        "PATCH",
        "/api/v1/targets/{id}",
        "/api/v1/targets/{target}",
        r#"{"weight":2}"#,
        [A, 403, 403, 403, 403, 403, 200, 403, A],
    ),
    (
        "DELETE",
        "/api/v1/targets/{id}",
        "/api/v1/targets/{target}",
        "",
        [A, 403, 403, 403, 403, 403, 204, 403, A],
    ),
    (
        "GET",
        "/api/v1/models",
        "/api/v1/models",
        "",
        [A, 200, 200, 200, 200, 200, 200, 200, A],
    ),
    (
        "POST",
        "/api/v1/models",
        "/api/v1/models",
        r#"{"name":"m{n}","pool":[{"target":"{target_name}"}]}"#,
        [A, 403, 403, 403, 403, 403, 201, 403, A],
    ),
    (
        "GET",
        "/api/v1/models/{id}",
        "/api/v1/models/{model}",
        "",
        [A, 200, 200, 200, 200, 200, 200, 200, A],
    ),
    (
        "PATCH",
        "/api/v1/models/{id}",
        "/api/v1/models/{model}",
        r#"{"strategy":"least_busy"}"#,
        [A, 403, 403, 403, 403, 403, 200, 403, A],
    ),
    (
        "DELETE",
        "/api/v1/models/{id}",
        "/api/v1/models/{model}",
        "",
        [A, 403, 403, 403, 403, 403, 204, 403, A],
    ),
    (
        "GET",
        "/api/v1/usage/summary",
        "/api/v1/usage/summary?range=7d",
        "",
        [A, 200, 200, 200, 200, 200, 200, 200, A],
    ),
    (
        "GET",
        "/api/v1/usage/series",
        "/api/v1/usage/series?range=7d&bucket=day",
        "",
        [A, 200, 200, 200, 200, 200, 200, 200, A],
    ),
    (
        "GET",
        "/api/v1/usage/top",
        "/api/v1/usage/top?by=model&order=tokens",
        "",
        [A, 200, 200, 200, 200, 200, 200, 200, A],
    ),
    (
        "GET",
        "/api/v1/usage/export",
        "/api/v1/usage/export?format=ndjson",
        "",
        [A, 200, 200, 200, 200, 200, 200, 200, A],
    ),
    (
        "GET",
        "/api/v1/logs",
        "/api/v1/logs?status=2xx",
        "",
        [A, 200, 200, 200, 200, 200, 200, 200, A],
    ),
    (
        "GET",
        "/api/v1/logs/{id}",
        "/api/v1/logs/{log}",
        "",
        [A, 200, 200, 200, 200, 404, 200, 200, A],
    ),
    (
        "GET",
        "/api/v1/limits",
        "/api/v1/limits",
        "",
        [A, 200, 200, 200, 200, 200, 200, 200, A],
    ),
    (
        "POST",
        "/api/v1/limits",
        "/api/v1/limits",
        r#"{"scope":{"type":"team","id":{team}},"kind":{"type":"requests","per":"minute","max":100}}"#,
        [A, 403, 403, 201, 201, 404, 201, 201, A],
    ),
    (
        "PUT",
        "/api/v1/limits/{id}",
        "/api/v1/limits/{limit}",
        r#"{"kind":{"type":"requests","per":"minute","max":50}}"#,
        [A, 403, 403, 200, 200, 404, 200, 200, A],
    ),
    (
        "DELETE",
        "/api/v1/limits/{id}",
        "/api/v1/limits/{limit}",
        "",
        [A, 403, 403, 204, 204, 404, 204, 204, A],
    ),
    (
        "GET",
        "/api/v1/quotas",
        "/api/v1/quotas",
        "",
        [A, 200, 200, 200, 200, 200, 200, 200, A],
    ),
    (
        "PUT",
        "/api/v1/quotas/instance",
        "/api/v1/quotas/instance",
        r#"{"tokens":1000000}"#,
        [A, 403, 403, 403, 403, 403, 200, 403, A],
    ),
    (
        "PUT",
        "/api/v1/quotas/teams/{id}",
        "/api/v1/quotas/teams/{team}",
        r#"{"tokens":5000,"period":"total"}"#,
        [A, 403, 403, 403, 403, 404, 200, 403, A],
    ),
    (
        "GET",
        "/api/usage/stats",
        "/api/usage/stats",
        "",
        [A, 200, 200, 200, 200, 200, 200, 200, A],
    ),
    (
        "GET",
        "/api/usage/token/{id}",
        "/api/usage/token/{key}",
        "",
        [A, 200, 200, 200, 200, 404, 200, 200, A],
    ),
    (
        "GET",
        "/api/usage/route",
        "/api/usage/route",
        "",
        [A, 200, 200, 200, 200, 200, 200, 200, A],
    ),
    (
        "GET",
        "/api/dashboard/overview",
        "/api/dashboard/overview",
        "",
        [A, 200, 200, 200, 200, 200, 200, 200, A],
    ),
    (
        "GET",
        "/api/console/stats",
        "/api/console/stats",
        "",
        [A, 200, 200, 200, 200, 200, 200, 200, A],
    ),
    (
        "GET",
        "/api/console/usage-trend",
        "/api/console/usage-trend?days=30",
        "",
        [A, 200, 200, 200, 200, 200, 200, 200, A],
    ),
    (
        "GET",
        "/api/console/logs",
        "/api/console/logs?limit=10",
        "",
        [A, 200, 200, 200, 200, 200, 200, 200, A],
    ),
    (
        "GET",
        "/api/console/export",
        "/api/console/export",
        "",
        [A, 200, 200, 200, 200, 200, 200, 200, A],
    ),
    (
        "POST",
        "/api/record_token_usage",
        "/api/record_token_usage",
        r#"{"tokens":"35万","event":"matrix","team_id":{team}}"#,
        [A, 403, 200, 200, 200, 404, 200, 200, A],
    ),
    (
        "GET",
        "/api/v1/counters",
        "/api/v1/counters",
        "",
        [A, 200, 200, 200, 200, 200, 200, 200, A],
    ),
    (
        "GET",
        "/api/v1/counters/{name}",
        "/api/v1/counters/default?team_id={team}",
        "",
        [A, 200, 200, 200, 200, 404, 200, 200, A],
    ),
    (
        "POST",
        "/api/v1/counters/{name}/readings",
        "/api/v1/counters/default/readings?team_id={team}",
        r#"{"reading":"1.2M","event":"matrix"}"#,
        [A, 403, 201, 201, 201, 404, 201, 201, A],
    ),
    (
        "GET",
        "/api/v1/counters/{name}/readings",
        "/api/v1/counters/default/readings?team_id={team}",
        "",
        [A, 200, 200, 200, 200, 404, 200, 200, A],
    ),
    (
        "PUT",
        "/api/v1/counters/{name}/quota",
        "/api/v1/counters/default/quota?team_id={team}",
        r#"{"quota":"2M"}"#,
        [A, 403, 403, 200, 200, 404, 200, 200, A],
    ),
    (
        "POST",
        "/api/v1/counters/parse",
        "/api/v1/counters/parse",
        r#"{"text":"350,000 tokens used"}"#,
        [A, 200, 200, 200, 200, 200, 200, 200, A],
    ),
    (
        "PATCH",
        "/api/v1/counters/{name}/readings/{id}",
        "/api/v1/counters/default/readings/{reading}?team_id={team}",
        r#"{"reading":"150K"}"#,
        [A, 403, 403, 200, 200, 404, 200, 200, A],
    ),
    (
        "DELETE",
        "/api/v1/counters/{name}/readings/{id}",
        "/api/v1/counters/default/readings/{reading}?team_id={team}",
        "",
        [A, 403, 403, 200, 200, 404, 200, 200, A],
    ),
    (
        "POST",
        "/api/v1/counters/{name}/estimate",
        "/api/v1/counters/default/estimate?team_id={team}",
        r#"{"user":"how many tokens is this?","assistant":"a handful"}"#,
        [A, 403, 201, 201, 201, 404, 201, 201, A],
    ),
    (
        "POST",
        "/api/v1/counters/{name}/import",
        "/api/v1/counters/default/import?team_id={team}",
        r#"{"sessions":[{"tokens":"5K","event":"matrix"},{"tokens":800}]}"#,
        [A, 403, 201, 201, 201, 404, 201, 201, A],
    ),
    (
        "POST",
        "/api/v1/estimate",
        "/api/v1/estimate",
        r#"{"text":"count me","model":"gpt-4o"}"#,
        [A, 200, 200, 200, 200, 200, 200, 200, A],
    ),
    (
        "GET",
        "/api/v1/audit",
        "/api/v1/audit",
        "",
        [A, 200, 200, 200, 200, 200, 200, 200, A],
    ),
    (
        "GET",
        "/api/dashboard/audit-logs",
        "/api/dashboard/audit-logs",
        "",
        [A, 200, 200, 200, 200, 200, 200, 200, A],
    ),
    (
        "GET",
        "/api/v1/prices",
        "/api/v1/prices",
        "",
        [A, 200, 200, 200, 200, 200, 200, 200, A],
    ),
    (
        "PUT",
        "/api/v1/prices/{model}",
        "/api/v1/prices/house-model-{n}",
        r#"{"input":1.5,"output":2}"#,
        [A, 403, 403, 403, 403, 403, 200, 403, A],
    ),
    (
        "DELETE",
        "/api/v1/prices/{model}",
        "/api/v1/prices/never-set-{n}",
        "",
        [A, 403, 403, 403, 403, 403, 404, 403, A],
    ),
    (
        "GET",
        "/api/v1/settings",
        "/api/v1/settings",
        "",
        [A, 403, 403, 403, 403, 403, 200, 403, A],
    ),
    (
        "POST",
        "/api/v1/settings/ingest-secret",
        "/api/v1/settings/ingest-secret",
        "",
        [A, 403, 403, 403, 403, 403, 201, 403, A],
    ),
    (
        "GET",
        "/api/v1/alerts/channels",
        "/api/v1/alerts/channels",
        "",
        [A, 403, 403, 403, 403, 403, 200, 403, A],
    ),
    (
        "POST",
        "/api/v1/alerts/channels",
        "/api/v1/alerts/channels",
        r#"{"name":"c{n}","url":"https://hooks.example.com/services/{n}","format":"slack"}"#,
        [A, 403, 403, 403, 403, 403, 201, 403, A],
    ),
    (
        "DELETE",
        "/api/v1/alerts/channels/{id}",
        "/api/v1/alerts/channels/{channel}",
        "",
        [A, 403, 403, 403, 403, 403, 204, 403, A],
    ),
    (
        "POST",
        "/api/v1/alerts/channels/{id}/test",
        "/api/v1/alerts/channels/{channel}/test",
        "",
        [A, 403, 403, 403, 403, 403, 200, 403, A],
    ),
    (
        "GET",
        "/api/v1/alerts/deliveries",
        "/api/v1/alerts/deliveries",
        "",
        [A, 403, 403, 403, 403, 403, 200, 403, A],
    ),
    (
        "GET",
        "/api/v1/alerts/rules",
        "/api/v1/alerts/rules",
        "",
        [A, 403, 403, 403, 403, 403, 200, 403, A],
    ),
    (
        "GET",
        "/api/console/keys",
        "/api/console/keys",
        "",
        [A, 200, 200, 200, 200, 200, 200, 200, A],
    ),
    (
        "POST",
        "/api/console/keys",
        "/api/console/keys",
        r#"{"name":"seed{n}"}"#,
        [A, 403, 201, 201, 201, 201, 201, 201, A],
    ),
    (
        "DELETE",
        "/api/console/keys/{id}",
        "/api/console/keys/{key}",
        "",
        [A, 403, 403, 200, 200, 404, 200, 200, A],
    ),
    (
        "POST",
        "/api/usage-log",
        "/api/usage-log",
        r#"{"token_hash":"0000000000000000000000000000000000000000000000000000000000000000","route":"/x","timestamp":1700000000000}"#,
        [401; 9],
    ),
    (
        "POST",
        "/api/v1/usage/events",
        "/api/v1/usage/events",
        r#"[{"ts":1700000000000,"method":"GET","path":"/x","status":200,"latency_ms":1}]"#,
        [401; 9],
    ),
    (
        "GET",
        "/api/v1/edge/snapshot",
        "/api/v1/edge/snapshot",
        "",
        [A, 403, 403, 403, 403, 403, 200, 403, A],
    ),
    (
        "GET",
        "/api/v1/edge/changes",
        "/api/v1/edge/changes?since=0",
        "",
        [A, 403, 403, 403, 403, 403, 200, 403, A],
    ),
    (
        "GET",
        "/api/v1/edge/tokens",
        "/api/v1/edge/tokens",
        "",
        [A, 403, 403, 403, 403, 403, 200, 403, A],
    ),
    (
        "POST",
        "/api/v1/edge/tokens",
        "/api/v1/edge/tokens",
        r#"{"name":"edge{n}"}"#,
        [A, 403, 403, 403, 403, 403, 201, 403, A],
    ),
    (
        "DELETE",
        "/api/v1/edge/tokens/{id}",
        "/api/v1/edge/tokens/{edge_token}",
        "",
        [A, 403, 403, 403, 403, 403, 204, 403, A],
    ),
    ("GET", "/health", "/health", "", [200; 9]),
    ("GET", "/health/detailed", "/health/detailed", "", [200; 9]),
    ("GET", "/metrics", "/metrics", "", [200; 9]),
    // Last: it ends the caller's session.
    (
        "POST",
        "/api/v1/auth/logout",
        "/api/v1/auth/logout",
        "",
        [A, 204, 204, 204, 204, 204, 204, 400, A],
    ),
];

/// Paths served outside the OpenAPI document (the document itself and its docs page).
const UNDOCUMENTED: &[&str] = &["/api/openapi.json", "/api/docs", "/api/docs.js"];

struct World {
    server: Server,
    root: Api,
    callers: Vec<Api>,
    team: i64,
    viewer: i64,
    log: i64,
    counter: AtomicUsize,
}

impl World {
    fn fresh(&self) -> usize {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }

    async fn invitation(&self) -> Value {
        let n = self.fresh();
        self.root
            .ok(
                Method::POST,
                &format!("/api/v1/teams/{}/invitations", self.team),
                Some(json!({"email": format!("fresh{n}@example.com")})),
                201,
            )
            .await
    }

    /// Resolves the placeholders of `template` for caller `c`.
    async fn fill(&self, template: &str, c: usize, n: usize) -> String {
        let mut out = template
            .replace("{team}", &self.team.to_string())
            .replace("{viewer}", &self.viewer.to_string())
            .replace("{log}", &self.log.to_string());
        out = out.replace("{n}", &n.to_string());
        if out.contains("{inv_token}") {
            out = out.replace(
                "{inv_token}",
                self.invitation().await["token"].as_str().expect("token"),
            );
        }
        if out.contains("{fresh_inv}") {
            out = out.replace("{fresh_inv}", &self.invitation().await["id"].to_string());
        }
        if out.contains("{fresh_member}") {
            let user = invite_user(
                &self.server,
                &self.root,
                self.team,
                &format!("member{n}@example.com"),
                "member",
            )
            .await;
            let id = user.ok(Method::GET, "/api/v1/auth/me", None, 200).await["user"]["id"].clone();
            out = out.replace("{fresh_member}", &id.to_string());
        }
        if out.contains("{key}") {
            let key = self
                .root
                .ok(
                    Method::POST,
                    "/api/v1/keys",
                    Some(json!({"team_id": self.team, "name": format!("fixture{n}")})),
                    201,
                )
                .await;
            out = out.replace("{key}", &key["id"].to_string());
        }
        if out.contains("{reading}") {
            let path = format!("/api/v1/counters/default/readings?team_id={}", self.team);
            let body = json!({"reading": 1000 + n, "event": format!("fixture{n}")});
            let recorded = self.root.ok(Method::POST, &path, Some(body), 201).await;
            out = out.replace("{reading}", &recorded["reading"]["id"].to_string());
        }
        if out.contains("{route}") {
            let body = json!({"team_id": self.team, "name": format!("fixture{n}"), "prefix": format!("/fixture{n}"), "upstream_url": "http://127.0.0.1:9"});
            let route = self
                .root
                .ok(Method::POST, "/api/v1/routes", Some(body), 201)
                .await;
            out = out.replace("{route}", &route["id"].to_string());
        }
        if out.contains("{target}") || out.contains("{target_name}") || out.contains("{model}") {
            let name = format!("fixture{n}");
            let body = json!({"name": name, "provider": "openai_compatible", "base_url": "http://127.0.0.1:9/v1"});
            let target = self
                .root
                .ok(Method::POST, "/api/v1/targets", Some(body), 201)
                .await;
            out = out.replace("{target}", &target["id"].to_string());
            out = out.replace("{target_name}", &name);
            if out.contains("{model}") {
                let body = json!({"name": format!("fixture-model{n}"), "pool": [{"target": name}]});
                let model = self
                    .root
                    .ok(Method::POST, "/api/v1/models", Some(body), 201)
                    .await;
                out = out.replace("{model}", &model["id"].to_string());
            }
        }
        if out.contains("{limit}") {
            let body = json!({"scope": {"type": "team", "id": self.team}, "kind": {"type": "requests", "per": "hour", "max": 1000 + n}});
            let limit = self
                .root
                .ok(Method::POST, "/api/v1/limits", Some(body), 201)
                .await;
            out = out.replace("{limit}", &limit["id"].to_string());
        }
        if out.contains("{channel}") {
            // On loopback's discard port, which the matrix server allows: a test sends nowhere.
            let body = json!({"name": format!("fixture{n}"), "url": "http://127.0.0.1:9/hook"});
            let channel = self
                .root
                .ok(Method::POST, "/api/v1/alerts/channels", Some(body), 201)
                .await;
            out = out.replace("{channel}", &channel["channel"]["id"].to_string());
        }
        if out.contains("{edge_token}") {
            let token = self
                .root
                .ok(
                    Method::POST,
                    "/api/v1/edge/tokens",
                    Some(json!({"name": format!("fixture{n}")})),
                    201,
                )
                .await;
            out = out.replace("{edge_token}", &token["id"].to_string());
        }
        if out.contains("{fresh_team}") {
            let team = self
                .root
                .ok(
                    Method::POST,
                    "/api/v1/teams",
                    Some(json!({"name": format!("fresh{n}")})),
                    201,
                )
                .await;
            let id = team["id"].as_i64().expect("id");
            // The callers hold the same roles there as in {team}.
            for m in self
                .root
                .ok(
                    Method::GET,
                    &format!("/api/v1/teams/{}/members", self.team),
                    None,
                    200,
                )
                .await
                .as_array()
                .expect("members")
            {
                let path = format!("/api/v1/teams/{id}/members/{}", m["user_id"]);
                self.root
                    .ok(Method::PUT, &path, Some(json!({"role": m["role"]})), 200)
                    .await;
            }
            out = out.replace("{fresh_team}", &id.to_string());
        }
        if out.contains("{own_token}") {
            let caller = &self.callers[c];
            let (status, token) = caller
                .call(
                    Method::POST,
                    "/api/v1/tokens",
                    Some(json!({"name": format!("own{n}")})),
                )
                .await;
            let id = if status.is_success() {
                token["id"].to_string()
            } else {
                "999999".into()
            };
            out = out.replace("{own_token}", &id);
        }
        out
    }
}

async fn setup(backend: Backend) -> (TestDb, World) {
    let db = TestDb::new(backend).await;
    let mut env = console_env();
    // Alert channels of the fixtures point at loopback.
    env.push(("TOLLGATE_UPSTREAM_ALLOWLIST", r#"["127.0.0.1"]"#));
    let server = Server::start(&db, &env).await;
    let root = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let team = root
        .ok(
            Method::POST,
            "/api/v1/teams",
            Some(json!({"name": "alpha"})),
            201,
        )
        .await["id"]
        .as_i64()
        .expect("id");
    let beta = root
        .ok(
            Method::POST,
            "/api/v1/teams",
            Some(json!({"name": "beta"})),
            201,
        )
        .await["id"]
        .as_i64()
        .expect("id");
    let viewer = invite_user(&server, &root, team, "viewer@example.com", "viewer").await;
    let member = invite_user(&server, &root, team, "member@example.com", "member").await;
    let admin = invite_user(&server, &root, team, "admin@example.com", "admin").await;
    let owner = invite_user(&server, &root, team, "owner@example.com", "owner").await;
    let other_owner = invite_user(&server, &root, beta, "other@example.com", "owner").await;
    let pat = admin
        .ok(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "matrix"})),
            201,
        )
        .await;
    let pat = Api::with_token(&server, pat["token"].as_str().expect("token"));
    let disabled = invite_user(&server, &root, team, "gone@example.com", "member").await;
    let gone_id = disabled.ok(Method::GET, "/api/v1/auth/me", None, 200).await["user"]["id"]
        .as_i64()
        .expect("id");
    root.ok(
        Method::PATCH,
        &format!("/api/v1/users/{gone_id}"),
        Some(json!({"disabled": true})),
        200,
    )
    .await;
    let viewer_id = viewer.ok(Method::GET, "/api/v1/auth/me", None, 200).await["user"]["id"]
        .as_i64()
        .expect("id");
    // The instance admin caller is a second session of root, so that its logout leaves `root` working.
    let instance_admin = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let callers = vec![
        Api::anonymous(&server),
        viewer,
        member,
        admin,
        owner,
        other_owner,
        instance_admin,
        pat,
        disabled,
    ];
    let log = one_call_in(&server, &root, team).await;
    let world = World {
        server,
        root,
        callers,
        team,
        viewer: viewer_id,
        log,
        counter: AtomicUsize::new(0),
    };
    (db, world)
}

/// Records one call of a key of `team` through ingest and returns its call-log id.
async fn one_call_in(server: &Server, root: &Api, team: i64) -> i64 {
    let key = root
        .ok(
            Method::POST,
            "/api/v1/keys",
            Some(json!({"team_id": team, "name": "logged"})),
            201,
        )
        .await;
    let hash = hex::encode(sha2::Sha256::digest(
        key["key"].as_str().expect("key").as_bytes(),
    ));
    let event = json!([{"ts": tollgate_core::time::now_ms(), "key_hash": hash, "method": "GET", "path": "/x", "status": 200, "latency_ms": 1.0}]);
    crate::console::ingest(server, &event).await;
    let page = root
        .ok(
            Method::GET,
            &format!("/api/v1/logs?team_id={team}"),
            None,
            200,
        )
        .await;
    page["items"][0]["id"]
        .as_i64()
        .expect("the ingested call is in the log")
}

async fn every_endpoint_checks_every_role(backend: Backend) {
    let (_db, world) = setup(backend).await;
    // The table covers exactly the documented operations.
    let spec: Value = client()
        .get(world.server.console_url("/api/openapi.json"))
        .send()
        .await
        .expect("spec")
        .json()
        .await
        .expect("json");
    let documented: BTreeSet<(String, String)> = spec["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .expect("ops")
                .keys()
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let tabled: BTreeSet<(String, String)> = ROWS
        .iter()
        .map(|(m, p, ..)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(tabled.len(), ROWS.len(), "a row is listed twice");
    assert_eq!(
        documented, tabled,
        "the matrix must have one row per documented operation"
    );

    let mut failures = Vec::new();
    for (method, spec_path, url, body, expected) in ROWS {
        for (c, caller) in world.callers.iter().enumerate() {
            let n = world.fresh();
            let path = world.fill(url, c, n).await;
            let json_body = if body.is_empty() {
                None
            } else {
                Some(
                    serde_json::from_str::<Value>(&world.fill(body, c, n).await)
                        .expect("row body is JSON"),
                )
            };
            let (status, answer) = caller
                .call(
                    Method::from_bytes(method.as_bytes()).expect("method"),
                    &path,
                    json_body,
                )
                .await;
            if url.contains("{fresh_team}") {
                // A refused delete leaves the team behind: remove it so that callers keep one team.
                let _ = world.root.call(Method::DELETE, &path, None).await;
            }
            if status.as_u16() != expected[c] {
                failures.push(format!(
                    "{method} {spec_path} as {}: expected {}, got {status} {answer}",
                    CALLERS[c], expected[c]
                ));
            }
        }
    }
    for path in UNDOCUMENTED {
        for caller in &world.callers {
            let (status, _) = caller.call(Method::GET, path, None).await;
            assert!(status.is_success(), "{path} is public");
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
crate::both_backends!(every_endpoint_checks_every_role);
