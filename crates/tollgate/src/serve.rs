//! `tollgate serve`: wires the store, the usage writer, the gateway and the console, and shuts them
//! down in order: stop accepting → drain in-flight calls → flush the usage queue → close the store.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tollgate_console::{ConsoleSettings, ConsoleState};
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

/// Runs until SIGTERM or Ctrl-C, then shuts down without losing a usage event.
pub async fn serve(config: Config, ready_file: Option<PathBuf>) -> anyhow::Result<()> {
    init_logging(&config)?;
    let started = Instant::now();
    tollgate_store::private::create_dir(&config.data_dir)
        .with_context(|| format!("data_dir {} cannot be created", config.data_dir.display()))?;
    let store = store::open(&config).await?;
    let metrics = Metrics::new();
    let (writer, sink) = UsageWriter::start(
        store.clone(),
        WriterConfig {
            queue_capacity: config.writer.queue_capacity,
            batch_size: config.writer.batch_size,
            batch_interval: config.batch_interval(),
            spool_dir: config.spool_dir(),
        },
        metrics.clone(),
    )
    .with_context(|| format!("spool {} cannot be opened", config.spool_dir().display()))?;
    let gateway_config = GatewayConfig {
        max_body_bytes: config.gateway.max_body_bytes,
        llm_peek_bytes: config.gateway.llm_peek_bytes,
        max_header_bytes: config.gateway.max_header_bytes,
        master_key: config.master_key(),
        prices: config.prices.clone(),
        refresh_interval: Duration::from_millis(config.gateway.refresh_interval_ms),
        drain_timeout: Duration::from_secs(config.gateway.drain_timeout_secs),
    };
    let sink_for_console = sink.clone();
    let gateway = Gateway::new(store.clone(), sink, metrics.clone(), gateway_config).await?;
    let refresher = gateway.spawn_refresher();

    let gateway_listener = bind("gateway", config.gateway_listen).await?;
    let console_listener = bind("console", config.console_listen).await?;
    crate::accounts::bootstrap_admin(&config, store.as_ref()).await?;
    let console = tollgate_console::router(ConsoleState::new(
        store.clone(),
        metrics.clone(),
        gateway.clone(),
        sink_for_console,
        started,
        config.master_key(),
        config.prices.clone(),
        ConsoleSettings {
            ingest_secret: config.ingest_secret.clone(),
            ingest_open: config.ingest_allow_unauthenticated,
            retention_days: config.retention.days,
        },
    ));
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
        tokio::spawn(async move {
            axum::serve(console_listener, console)
                .with_graceful_shutdown(stop)
                .await
        })
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
    let _ = cleaner.await;
    tracing::info!("flushing usage events");
    writer.shutdown().await;
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
