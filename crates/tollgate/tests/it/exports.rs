//! CSV exports never hand a spreadsheet a formula: text cells starting with `= + - @`, TAB or CR
//! get a leading `'` in the console's and the CLI's exports (OWASP CSV injection).

use reqwest::Method;
use serde_json::json;
use sha2::Digest;

use crate::both_backends;
use crate::console::{ADMIN_EMAIL, ADMIN_PASSWORD, Api, console_env};
use crate::harness::{Backend, Server, TestDb, cli};

const KEY_NAME: &str = "=cmd|' /C calc'!A0";
const MODEL: &str = "@SUM(1+1)*cmd|' /C calc'!A0";
const AGENT: &str = "-2+3+cmd|' /C calc'!A0";

/// The cells of a CSV text (header included), parsed by a real CSV reader.
fn cells(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.expect("csv row").iter().map(str::to_owned).collect())
        .collect()
}

fn has_cell(rows: &[Vec<String>], cell: &str) -> bool {
    rows.iter().flatten().any(|c| c == cell)
}

/// No cell of `rows` starts with a formula character.
fn no_formula(rows: &[Vec<String>]) -> bool {
    rows.iter()
        .flatten()
        .all(|c| !c.starts_with(['=', '+', '@', '\t', '\r']) && !c.starts_with("-2+3"))
}

async fn csv_exports_neutralise_formulas(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db, &console_env()).await;
    let admin = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let team = admin
        .ok(
            Method::POST,
            "/api/v1/teams",
            Some(json!({"name": "sheets"})),
            201,
        )
        .await["id"]
        .as_i64()
        .expect("id");
    let key = admin
        .ok(
            Method::POST,
            "/api/v1/keys",
            Some(json!({"team_id": team, "name": KEY_NAME})),
            201,
        )
        .await;
    let hash = hex::encode(sha2::Sha256::digest(
        key["key"].as_str().expect("key").as_bytes(),
    ));
    let now = tollgate_core::time::now_ms();
    crate::console::ingest(
        &server,
        &[json!({"id": "csv-1", "ts": now - 1_000, "key_hash": hash, "method": "POST",
                  "path": "/v1/chat", "status": 200, "latency_ms": 3.0, "model": MODEL,
                  "user_agent": AGENT, "prompt_tokens": 5, "completion_tokens": 7, "cost_usd": 0.5})],
    )
    .await;
    let range = format!("from={}&to={}", now - 3_600_000, now + 60_000);

    // Top keys by name: the key's name is a formula.
    let top = admin
        .raw(
            Method::GET,
            &format!("/api/v1/usage/export?{range}&format=csv&dataset=top&by=key"),
            None,
        )
        .await
        .text()
        .await
        .expect("csv");
    let rows = cells(&top);
    assert!(has_cell(&rows, &format!("'{KEY_NAME}")), "{top}");
    assert!(no_formula(&rows), "{top}");

    // Events: the model and the user agent are formulas.
    let events = admin
        .raw(
            Method::GET,
            &format!("/api/v1/usage/export?{range}&format=csv"),
            None,
        )
        .await
        .text()
        .await
        .expect("csv");
    let rows = cells(&events);
    assert_eq!(rows.len(), 2, "{events}");
    assert!(has_cell(&rows, &format!("'{MODEL}")), "{events}");
    assert!(has_cell(&rows, &format!("'{AGENT}")), "{events}");
    assert!(no_formula(&rows), "{events}");

    // The CLI's export uses the same cells.
    let out = cli(
        &db,
        &["usage", "export", "--format", "csv", "--since", "1d"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let rows = cells(&text);
    assert!(has_cell(&rows, &format!("'{MODEL}")), "{text}");
    assert!(no_formula(&rows), "{text}");

    // The audit log's CSV: every text cell goes through the same rule.
    let audit = admin
        .raw(Method::GET, "/api/dashboard/audit-logs?format=csv", None)
        .await
        .text()
        .await
        .expect("csv");
    let rows = cells(&audit);
    assert!(rows.len() > 1, "{audit}");
    assert!(no_formula(&rows), "{audit}");
}
both_backends!(csv_exports_neutralise_formulas);
