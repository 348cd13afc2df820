//! `tollgate serve`: wires the store, the usage writer, the gateway and the console, and shuts them
//! down in order: stop accepting → drain in-flight calls → flush the usage queue → close the store.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::ConnectInfo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tollgate_console::{ConsoleSettings, ConsoleState};
use tollgate_core::pricing::Prices;
use tollgate_gateway::listener::ListenerSettings;
use tollgate_gateway::metrics::Metrics;
use tollgate_gateway::writer::{UsageWriter, WriterConfig};
use tollgate_gateway::{Gateway, GatewayConfig};
use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};
use crate::store;

fn init_logging(config: &Config) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&config.log_level).map_err(|e| {
        anyhow::anyhow!(
            "log_level `{}` is not a valid filter: {e}",
            config.log_level
        )
    })?;
    // Colours only for a person at a terminal: files and log collectors get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let result = match config.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot start logging: {e}"))
}

async fn bind(what: &str, addr: std::net::SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("{what} listener {addr} cannot be bound"))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Both listeners' settings, their connection caps lowered to what the open-file limit (raised to
/// its hard limit first) can hold: one descriptor per client connection. A call to an HTTP/1.1
/// upstream needs a second one while it runs; calls to h2 upstreams share a connection per 100,
/// so the caps are not halved for them, and a limit too short for two per gateway connection is
/// reported instead.
fn listener_settings(config: &Config) -> (ListenerSettings, ListenerSettings) {
    let g = &config.gateway;
    let c = &config.console;
    let mut gateway = ListenerSettings {
        name: "gateway",
        header_read_timeout: Duration::from_secs(g.header_read_timeout_secs),
        idle_timeout: Duration::from_secs(g.idle_timeout_secs),
        keepalive_ping: Duration::from_secs(g.keepalive_ping_secs),
        max_connections: g.max_connections,
        drain_timeout: Duration::from_secs(g.drain_timeout_secs),
        tls: None,
    };
    let mut console = ListenerSettings {
        name: "console",
        header_read_timeout: Duration::from_secs(c.header_read_timeout_secs),
        idle_timeout: Duration::from_secs(c.idle_timeout_secs),
        keepalive_ping: Duration::from_secs(c.keepalive_ping_secs),
        max_connections: c.max_connections,
        drain_timeout: CONSOLE_DRAIN,
        tls: None,
    };
    let limit = tollgate_gateway::listener::raise_fd_limit();
    if let Some(limit) = limit {
        // Room for the store, the spool, logs and upstream pools beyond the client connections.
        let usable = usize::try_from(limit.saturating_sub(FD_RESERVE)).unwrap_or(usize::MAX);
        let console_cap = (usable / 4).max(1);
        let gateway_room = usable.saturating_sub(console.max_connections.min(console_cap));
        let gateway_cap = gateway_room.max(1);
        let needed = FD_RESERVE
            .saturating_add(u64::try_from(gateway.max_connections).unwrap_or(u64::MAX) * 2)
            .saturating_add(u64::try_from(console.max_connections).unwrap_or(u64::MAX));
        if limit < needed {
            let http1_calls = gateway_room / 2;
            tracing::warn!(
                open_file_limit = limit,
                needed,
                http1_calls,
                "the open-file limit, raised as far as the hard limit allows, is below what the \
                 connection caps need (two per gateway connection, one per console connection, \
                 {FD_RESERVE} for the rest): past about {http1_calls} calls at once to HTTP/1.1 \
                 upstreams, new ones cannot connect (502); h2 upstreams share connections. Raise \
                 the hard limit (`ulimit -Hn`, systemd `LimitNOFILE=`) to serve more"
            );
        }
        for (settings, cap) in [(&mut gateway, gateway_cap), (&mut console, console_cap)] {
            if settings.max_connections > cap {
                tracing::warn!(
                    listener = settings.name,
                    configured = settings.max_connections,
                    lowered_to = cap,
                    open_file_limit = limit,
                    "max_connections lowered to fit the open-file limit"
                );
                settings.max_connections = cap;
            }
        }
    }
    tracing::info!(
        open_file_limit = limit,
        gateway_max_connections = gateway.max_connections,
        console_max_connections = console.max_connections,
        "connection limits"
    );
    (gateway, console)
}

/// File descriptors kept out of the connection caps.
const FD_RESERVE: u64 = 256;
/// Longest wait for in-flight console calls at shutdown.
const CONSOLE_DRAIN: Duration = Duration::from_secs(5);

/// Serves the console through the shared accept loop, each request carrying the peer's
/// `ConnectInfo<SocketAddr>`.
async fn serve_console(
    listener: TcpListener,
    app: axum::Router,
    settings: ListenerSettings,
    metrics: std::sync::Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let builders = settings.builders();
    let over_tls = settings.tls.is_some();
    tollgate_gateway::listener::serve(
        listener,
        settings,
        builders,
        metrics,
        move |peer: SocketAddr| {
            let app = app.clone();
            hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                if over_tls {
                    req.extensions_mut()
                        .insert(tollgate_console::auth::ListenerTls);
                }
                tower::ServiceExt::oneshot(app.clone(), req)
            })
        },
        shutdown,
    )
    .await
}

/// Runs until SIGTERM or Ctrl-C, then shuts down without losing a usage event.
#[expect(
    clippy::disallowed_methods,
    reason = "serve owns shutdown: it signals and awaits both listeners' tasks in order"
)]
pub async fn serve(config: Config, ready_file: Option<PathBuf>) -> anyhow::Result<()> {
    init_logging(&config)?;
    let started = Instant::now();
    // Certificates first: a wrong path stops the start before anything is opened.
    let gateway_tls = config
        .gateway
        .tls
        .as_ref()
        .map(|files| crate::tls::server_config(files, "gateway.tls"))
        .transpose()?;
    let console_tls = config
        .console
        .tls
        .as_ref()
        .map(|files| crate::tls::server_config(files, "console.tls"))
        .transpose()?;
    tollgate_store::private::create_dir(&config.data_dir)
        .with_context(|| format!("data_dir {} cannot be created", config.data_dir.display()))?;
    let _instance_lock = crate::instance_lock::acquire(&config)?;
    let store = store::open_or_create(&config).await?;
    if let Some(master) = config.master_key() {
        crate::reseal::reseal_legacy(store.as_ref(), &master).await?;
    } else {
        crate::reseal::warn_unsealed(store.as_ref()).await?;
    }
    let metrics = Metrics::with_settings(config.metrics_settings());
    let traces = match config.otel() {
        None => None,
        Some(otel) => {
            let traces = tollgate_gateway::otel::Tracing::start(&otel)
                .map_err(|e| anyhow::anyhow!("traces cannot be set up: {e}"))?;
            tracing::info!(
                endpoint = %crate::config::redact_url(&otel.endpoint),
                sampling_ratio = otel.sampling_ratio,
                "gateway calls are traced (OTLP/HTTP)"
            );
            Some(traces)
        }
    };
    let (writer, sink) = UsageWriter::start(
        store.clone(),
        WriterConfig {
            queue_capacity: config.writer.queue_capacity,
            batch_size: config.writer.batch_size,
            batch_interval: config.batch_interval(),
            spool_dir: config.spool_dir(),
            durability: config.durability(),
        },
        metrics.clone(),
    )
    .with_context(|| format!("spool {} cannot be opened", config.spool_dir().display()))?;
    let limits = crate::limits::build(&config, store.clone()).await?;
    let (mut gateway_listener_settings, mut console_listener_settings) = listener_settings(&config);
    gateway_listener_settings.tls = gateway_tls;
    console_listener_settings.tls = console_tls;
    if let Some(error) = &tollgate_core::pricing::built_in().error {
        anyhow::bail!("the built-in price table cannot be read: {error}");
    }
    let prices = Arc::new(Prices::new(config.prices.clone()));
    let gateway_config = GatewayConfig {
        max_body_bytes: config.gateway.max_body_bytes,
        llm_peek_bytes: config.gateway.llm_peek_bytes,
        max_header_bytes: config.gateway.max_header_bytes,
        master_key: config.master_key(),
        prices: prices.clone(),
        refresh_interval: Duration::from_millis(config.gateway.refresh_interval_ms),
        drain_timeout: Duration::from_secs(config.gateway.drain_timeout_secs),
        listener: gateway_listener_settings,
        body_read_timeout: Duration::from_secs(config.gateway.body_read_timeout_secs),
        peek_budget_bytes: config.gateway.peek_budget_bytes,
        failed_key_lookups_per_minute: config.gateway.failed_key_lookups_per_minute,
        trusted_proxies: config.trusted_proxies(),
        limits: Some(limits.clone()),
        tracing: traces.clone(),
        upstream_ca: match &config.gateway.upstream_ca_file {
            Some(path) => tollgate_gateway::read_upstream_ca(path)
                .map_err(|e| anyhow::anyhow!("gateway.upstream_ca_file: {e}"))?,
            None => Vec::new(),
        },
        upstream_http2: config.gateway.upstream_http2,
        pools: tollgate_gateway::PoolSettings {
            max_attempts: config.gateway.llm_max_attempts,
            retry_after_cap: Duration::from_secs(config.gateway.llm_retry_after_cap_secs),
            circuit_failures: config.gateway.llm_circuit_failures,
            circuit_cooldown: Duration::from_millis(config.gateway.llm_circuit_cooldown_ms),
        },
    };
    let sink_for_console = sink.clone();
    let gateway = Gateway::new(store.clone(), sink, metrics.clone(), gateway_config).await?;
    let refresher = gateway.spawn_refresher();

    let gateway_listener = bind("gateway", config.gateway_listen).await?;
    let console_listener = bind("console", config.console_listen).await?;
    crate::accounts::bootstrap_admin(&config, store.as_ref()).await?;
    let own_listeners = vec![
        gateway_listener.local_addr()?,
        console_listener.local_addr()?,
    ];
    // Alerts: the dispatcher, the evaluation loop, and the limiter's budget crossings.
    let alerts = crate::alerts::start(
        &config,
        store.clone(),
        metrics.clone(),
        Some(limits.limiter().clone()),
        own_listeners.clone(),
    )?;
    let mut console_state = ConsoleState::new(
        store.clone(),
        metrics.clone(),
        gateway.clone(),
        sink_for_console,
        started,
        config.master_key(),
        prices,
        ConsoleSettings {
            ingest_secret: config.ingest_secret.clone(),
            ingest_open: config.ingest_allow_unauthenticated,
            retention_days: config.retention.days,
            trusted_proxies: config.trusted_proxies(),
            upstream_allowlist: config.upstream_allowlist(),
            own_listeners,
        },
    );
    // The console shows, changes and feeds readings to the limiter the gateway enforces with.
    console_state.limiter = Some(limits.limiter().clone());
    console_state.alerts = Some(alerts.dispatcher.clone());
    console_state.alert_rules = Some(alerts.rules.clone());
    let console = tollgate_console::router(console_state);
    let (gateway_addr, console_addr) = (
        gateway_listener.local_addr()?,
        console_listener.local_addr()?,
    );
    if let Some(path) = &ready_file {
        let ready = serde_json::json!({"gateway": gateway_addr, "console": console_addr});
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, ready.to_string())
            .and_then(|()| std::fs::rename(&tmp, path))
            .with_context(|| format!("--ready-file {} cannot be written", path.display()))?;
    }
    tracing::info!(
        gateway = %gateway_addr,
        console = %console_addr,
        store = store.backend(),
        routes = gateway.route_count(),
        trusted_proxies = config.trusted_proxies.len(),
        "tollgate ready"
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let wait_stop = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stopped| *stopped).await;
    };
    let gateway_task = {
        let gateway = gateway.clone();
        let stop = wait_stop(stop_rx.clone());
        tokio::spawn(async move { gateway.serve(gateway_listener, stop).await })
    };
    let console_task = {
        let stop = wait_stop(stop_rx.clone());
        tokio::spawn(serve_console(
            console_listener,
            console,
            console_listener_settings,
            metrics.clone(),
            stop,
        ))
    };

    let cleaner = crate::retention::spawn(
        store.clone(),
        config.retention.clone(),
        config.cleanup_interval(),
        stop_rx.clone(),
    );

    shutdown_signal().await;
    tracing::info!("shutting down: draining in-flight calls");
    let _ = stop_tx.send(true);
    match gateway_task.await {
        Ok(Err(e)) => tracing::error!(error = %e, "gateway stopped with an error"),
        Err(e) => tracing::error!(error = %e, "gateway task failed"),
        Ok(Ok(())) => {}
    }
    refresher.abort();
    alerts.stop();
    let _ = cleaner.await;
    tracing::info!("flushing usage events");
    writer.shutdown().await;
    if let Some(traces) = traces {
        // The last spans go out, or are given up on after the export timeout.
        let _ = tokio::task::spawn_blocking(move || traces.shutdown()).await;
    }
    if tokio::time::timeout(Duration::from_secs(5), console_task)
        .await
        .is_err()
    {
        tracing::warn!("console did not stop within 5 s");
    }
    store.close().await;
    tracing::info!(dropped = metrics.dropped_now(), "tollgate stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use axum::routing::get;

    use super::*;

    #[expect(clippy::disallowed_methods, reason = "the test awaits the served task")]
    #[tokio::test]
    async fn console_handlers_see_the_peer_address() -> anyhow::Result<()> {
        let app = axum::Router::new().route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let settings = ListenerSettings {
            name: "console",
            ..ListenerSettings::default()
        };
        let served = tokio::spawn(serve_console(
            listener,
            app,
            settings,
            Metrics::new(),
            async move {
                let _ = stopped.await;
            },
        ));
        let local = std::net::TcpStream::connect(addr)?;
        let client_addr = local.local_addr()?;
        drop(local);
        let text = reqwest::get(format!("http://{addr}/peer"))
            .await?
            .text()
            .await?;
        let peer: SocketAddr = text.parse()?;
        assert_eq!(peer.ip(), client_addr.ip());
        assert_ne!(
            peer.port(),
            addr.port(),
            "the client's port, not the server's"
        );
        let _ = stop.send(());
        served.await??;
        Ok(())
    }
}
