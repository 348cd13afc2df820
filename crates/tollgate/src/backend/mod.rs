//! Where the CLI's data commands act: on the local store, as the operator (the shared rules,
//! audited as `cli:<os-user>`), or on a running console through its REST API, as the user of a
//! personal access token. Both answer with the console API's own response types, so a command
//! prints the same table or JSON whichever it talks to, and both refuse with the API's error
//! detail (code, field, message), printed alike.

mod access;
mod accounts;
mod analytics;
mod budgets;
mod models;
mod readings;

pub use analytics::UsageAsk;
pub use budgets::limit_of;

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;
use reqwest::Method;
use tollgate_console::api::counters::{
    CounterEstimate, CounterImport, CounterImported, CounterStatus, Figure, Moment,
    ReadingCorrection, ReadingCreate, ReadingRecorded, ReadingView, SessionImport,
};
use tollgate_console::api::keys::{KeyCreate, KeyCreated, KeyPatch};
use tollgate_console::api::limits::{LimitCreate, LimitList, LimitView, views as limit_views};
use tollgate_console::api::routes::{RouteCreate, RoutePatch};
use tollgate_console::api::session::{SessionView, TokenCreate, TokenCreated, TokenView};
use tollgate_console::api::teams::{
    InvitationCreate, InvitationCreated, InvitationView, RoleChange, TeamName, UserPatch,
};
use tollgate_console::api::usage::{self, ExportFormat, SummaryView, TopItem, UsageSummary};
use tollgate_console::api::views::{KeyView, MembershipView, RouteView, TeamView, UserView};
use tollgate_console::error::{ApiError, ErrorDetail};
use tollgate_console::rules::counters::{self, ReadingNote};
use tollgate_console::rules::keys::{self, KeyChange, KeyDraft};
use tollgate_console::rules::limits::{self, LimitDraft, LimitFilter, StoreSeed};
use tollgate_console::rules::routes::{self, RouteChange, RouteDraft};
use tollgate_console::rules::users::{self, UserChange};
use tollgate_console::rules::{Actor, RuleError, Rules, members, teams, tokens};
use tollgate_core::Role;
use tollgate_core::crypto::MasterKey;
use tollgate_core::time::{HOUR_MS, now_ms};
use tollgate_limits::{Limit, LimitUsage, Limiter, LimiterConfig, LocalCounters};
use tollgate_store::{EventCursor, EventFilter, RollupFilter, Store, StoreError, User};

use crate::admin::os_user;
use crate::config::Config;
use crate::remote::{Remote, segment};
use crate::store;

/// Why a backend call failed: refused by a rule or the API (the same detail either way), or
/// something else (the store, the network) in one line.
#[derive(Debug)]
pub enum Failure {
    /// Refused, with the HTTP status the API gives such a refusal.
    Refused {
        /// 403, 404, 409, 422, …
        status: u16,
        /// Code, message and field.
        detail: ErrorDetail,
    },
    /// Anything else.
    Other(anyhow::Error),
}

/// Result of a backend call.
pub type Outcome<T> = Result<T, Failure>;

impl From<RuleError> for Failure {
    fn from(e: RuleError) -> Self {
        match e {
            RuleError::Store(e) => Self::Other(e.into()),
            other => {
                let api = ApiError::from(other);
                Self::Refused {
                    status: api.status().as_u16(),
                    detail: api.detail(),
                }
            }
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Self::Other(e.into())
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Self::Other(e)
    }
}

impl Failure {
    /// Whether the thing asked for does not exist (or is not visible).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Refused { status: 404, .. })
    }

    /// One CLI line: a refused field is named by this command's flag (`flags` maps the API's
    /// field names to flags).
    pub fn cli(self, flags: &[(&str, &str)]) -> anyhow::Error {
        match self {
            Self::Other(e) => e,
            Self::Refused { detail, .. } => match detail.field.as_deref() {
                Some(field) => {
                    let flag = flags
                        .iter()
                        .find(|(f, _)| *f == field)
                        .map_or(field, |(_, flag)| *flag);
                    let message = detail
                        .message
                        .strip_prefix(field)
                        .and_then(|m| m.strip_prefix(": "))
                        .unwrap_or(&detail.message);
                    anyhow::anyhow!("{flag}: {message}")
                }
                None => anyhow::anyhow!("{}", detail.message),
            },
        }
    }

    /// [`Failure::cli`], with `missing` as the line when the thing does not exist.
    pub fn cli_or(self, flags: &[(&str, &str)], missing: impl FnOnce() -> String) -> anyhow::Error {
        if self.is_not_found() {
            anyhow::anyhow!("{}", missing())
        } else {
            self.cli(flags)
        }
    }
}

/// The local store and what acting on it needs.
pub struct Local {
    /// The store, opened (never created) from the configuration.
    pub store: Arc<dyn Store>,
    master: Option<MasterKey>,
    operator: String,
    /// `limits.time_zone`: where budget periods start (the server's limiter uses the same).
    limits_zone: String,
}

/// Where a data command will act, before anything is opened: commands that check their input
/// first open it only once the input is good.
pub enum Target<'a> {
    /// The configured local store.
    Local(&'a Config),
    /// A running console.
    Remote(Remote),
}

impl Target<'_> {
    /// Opens the store, or takes the client.
    pub async fn open(self) -> anyhow::Result<Backend> {
        match self {
            Target::Local(config) => Backend::local(config).await,
            Target::Remote(remote) => Ok(Backend::Remote(remote)),
        }
    }
}

/// Where a data command acts.
pub enum Backend {
    /// The local store, as the operator.
    Local(Local),
    /// A running console, as the token's user.
    Remote(Remote),
}

impl Backend {
    /// The configured local store (which must exist).
    pub async fn local(config: &Config) -> anyhow::Result<Self> {
        Ok(Self::Local(Local {
            store: store::open(config).await?,
            master: config.master_key(),
            operator: os_user(),
            limits_zone: config.limits.time_zone.clone(),
        }))
    }

    /// Closes the store, if one is open.
    pub async fn close(self) {
        if let Self::Local(local) = self {
            local.store.close().await;
        }
    }
}

impl Local {
    /// The rules over the store, with the configured master key.
    pub fn rules(&self) -> Rules<'_> {
        Rules::new(self.store.as_ref()).with_master_key(self.master.as_ref())
    }

    /// The operator, audited as `cli:<os-user>`.
    pub fn actor(&self) -> Actor<'_> {
        Actor::Operator(&self.operator)
    }
}
