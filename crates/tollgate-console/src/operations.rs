//! One table of API operations, two routers made from it: the served one (every handler on the
//! path and methods its `#[utoipa::path]` names) and the documented one (utoipa-axum's
//! `OpenApiRouter`, whose OpenAPI document `/api/openapi.json` serves). Building the document
//! runs every operation's and schema's description code and holds its result, ~25 M
//! instructions and a few MiB of code and heap at start; the served router needs only each
//! operation's path and methods, so the document is built when it is first asked for
//! ([`crate::openapi_json`]). Both come from the same table ([`crate::api::router`] and
//! [`crate::api::served`]), so a handler cannot be served without being documented.
//!
//! A table is a list of groups, one group a path, written `[module::handler, …]`: a group is one
//! `utoipa_axum::routes!` call of the documented router.

/// The served router of a table: each handler on its documented path and methods; nothing of the
/// OpenAPI document is built.
macro_rules! served_operations {
    ($([$($m:ident :: $f:ident),+ $(,)?]),+ $(,)?) => {{
        use utoipa_axum::PathItemExt as _;
        let router = axum::Router::<$crate::ConsoleState>::new();
        $($(
            let (path, methods) = utoipa_axum::paste! {(
                <$m::[<__path_ $f>] as utoipa::Path>::path(),
                <$m::[<__path_ $f>] as utoipa::Path>::methods(),
            )};
            let handler = methods.iter().fold(axum::routing::MethodRouter::new(), |served, method| {
                served.on(method.to_method_filter(), $m::$f)
            });
            // axum merges the method routers of one path, as `OpenApiRouter::routes` does.
            let router = router.route(&path, handler);
        )+)+
        router
    }};
}

/// The documented router of a table, starting from `$openapi`: utoipa-axum's `routes!` for each
/// group.
macro_rules! documented_operations {
    ($openapi:expr; $([$($m:ident :: $f:ident),+ $(,)?]),+ $(,)?) => {
        utoipa_axum::router::OpenApiRouter::<$crate::ConsoleState>::with_openapi($openapi)
            $(.routes(utoipa_axum::routes!($($m::$f),+)))+
    };
}
