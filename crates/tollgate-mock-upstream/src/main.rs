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
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use tollgate_mock_upstream::{MockUpstream, Recording};

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
    runtime.block_on(run(cli.listen))
}

async fn run(listen: SocketAddr) -> anyhow::Result<()> {
    // Recording would grow without bound under a benchmark; nobody reads it here.
    let mock = MockUpstream::start_with(listen, Recording::CountOnly)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    println!("listening on {}", mock.addr());
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    mock.shutdown().await;
    Ok(())
}
