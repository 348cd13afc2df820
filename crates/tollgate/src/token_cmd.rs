//! `tollgate token create|list|revoke`: personal access tokens, on the local store (for the user
//! `--email` names) or on a server (the token's own user's). The secret alone on standard output.

use serde::Serialize;
use tollgate_console::api::session::TokenCreate;
use tollgate_core::time::{format_ms, now_ms};

use crate::backend::Backend;
use crate::cli::TokenCreateArgs;
use crate::cli_team::{TokenListArgs, TokenRevokeArgs};
use crate::output;

/// `tollgate token create`: the secret alone on standard output.
pub async fn create_token(backend: Backend, args: TokenCreateArgs) -> anyhow::Result<()> {
    if let Some(text) = &args.expires {
        tollgate_core::time::parse_duration(text).map_err(|e| anyhow::anyhow!("--expires: {e}"))?;
    }
    let request = TokenCreate {
        name: args.name.clone(),
        expires_in: args.expires.clone(),
    };
    let result = backend.create_token(args.email.as_deref(), request).await;
    backend.close().await;
    let (created, email) = result?;
    if args.json {
        output::json(&serde_json::json!({
            "id": created.id,
            "token": created.token,
            "prefix": created.view.prefix,
        }))
    } else {
        output::line(&created.token);
        output::note(&format!(
            "token {} `{}` for {email}: shown once, keep it safe",
            created.id, created.view.name
        ));
        Ok(())
    }
}

/// One personal access token as scripts see it.
#[derive(Debug, Serialize)]
struct TokenLine {
    id: i64,
    name: String,
    prefix: String,
    status: &'static str,
    created_at: String,
    expires_at: Option<String>,
    revoked_at: Option<String>,
    last_used_at: Option<String>,
}

/// `tollgate token list`.
pub async fn list_tokens(backend: Backend, args: TokenListArgs) -> anyhow::Result<()> {
    let result = backend.tokens(args.email.as_deref()).await;
    backend.close().await;
    let now = now_ms();
    let lines: Vec<TokenLine> = result?
        .into_iter()
        .map(|t| TokenLine {
            id: t.id,
            name: t.name,
            prefix: t.prefix,
            status: if t.revoked_at.is_some() {
                "revoked"
            } else if t.expires_at.is_some_and(|e| e <= now) {
                "expired"
            } else {
                "active"
            },
            created_at: format_ms(t.created_at),
            expires_at: t.expires_at.map(format_ms),
            revoked_at: t.revoked_at.map(format_ms),
            last_used_at: t.last_used_at.map(format_ms),
        })
        .collect();
    if args.json {
        return output::json(&lines);
    }
    output::table(
        &[
            "ID",
            "NAME",
            "TOKEN",
            "STATUS",
            "CREATED",
            "EXPIRES",
            "LAST USED",
        ],
        lines
            .into_iter()
            .map(|t| {
                vec![
                    t.id.to_string(),
                    t.name,
                    t.prefix,
                    t.status.into(),
                    t.created_at,
                    time_or(t.expires_at, "never"),
                    time_or(t.last_used_at, "never used"),
                ]
            })
            .collect(),
    );
    Ok(())
}

fn time_or(text: Option<String>, none: &str) -> String {
    text.unwrap_or_else(|| none.to_owned())
}

/// `tollgate token revoke`.
pub async fn revoke_token(backend: Backend, args: TokenRevokeArgs) -> anyhow::Result<()> {
    let result = backend.revoke_token(args.email.as_deref(), args.id).await;
    backend.close().await;
    result?;
    output::line(&format!("Token {} revoked.", args.id));
    Ok(())
}
