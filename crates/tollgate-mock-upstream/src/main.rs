#![expect(
    clippy::print_stdout,
    reason = "benchmark scripts read the bound address from stdout"
)]
#![expect(
    clippy::print_stderr,
    reason = "a failure to start is reported in one line"
)]
//! `tollgate-mock-upstream`: runs the mock upstream until Ctrl-C, for benchmarks and manual tests.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use tollgate_mock_upstream::{MockUpstream, Recording, TlsOffer};

/// What to offer by ALPN over TLS.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Tls {
    /// `h2` and `http/1.1`.
    H2,
    /// `http/1.1` only.
    Http1,
}

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(
    version,
    about = "OpenAI/Anthropic/plain-HTTP mock upstream for tollgate"
)]
struct Cli {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
    /// Worker threads (default: one per core).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,
    /// Serve TLS with a fresh self-signed certificate, offering this by ALPN (default: plain
    /// HTTP/1.1 and h2c).
    #[arg(long, value_enum)]
    tls: Option<Tls>,
    /// With --tls: write the certificate (PEM) here, for the client to trust.
    #[arg(long, requires = "tls")]
    cert_out: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match start(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, without the backtrace anyhow adds under RUST_BACKTRACE.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn start(cli: Cli) -> anyhow::Result<()> {
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = cli.threads {
        runtime.worker_threads(usize::from(threads));
    }
    let runtime = runtime
        .enable_all()
        .build()
        .context("cannot start the Tokio runtime")?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let listen = cli.listen;
    let tls = cli.tls.map(|tls| match tls {
        Tls::H2 => TlsOffer::H2AndHttp1,
        Tls::Http1 => TlsOffer::Http1Only,
    });
    // Recording would grow without bound under a benchmark; nobody reads it here.
    let mock = MockUpstream::start_configured(listen, Recording::CountOnly, tls)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    if let (Some(path), Some(pem)) = (&cli.cert_out, mock.ca_pem()) {
        std::fs::write(path, pem)
            .with_context(|| format!("cannot write --cert-out {}", path.display()))?;
    }
    println!("listening on {}", mock.addr());
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    mock.shutdown().await;
    Ok(())
}
