//! `seqrec serve`: a WebSocket / HTTP server for many concurrent streams.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args as ClapArgs;
use seqrec::serve::{BatchPolicy, Limits, Server};

/// Arguments of `seqrec serve`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Address to listen on (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// A bundle to serve, as NAME=DIR (repeat for more); clients pick it with ?bundle=NAME.
    #[arg(long = "bundle", value_name = "NAME=DIR", required = true)]
    bundles: Vec<String>,
    /// Most streams open at once; more are refused with "server full" (close code 1013).
    #[arg(long, default_value_t = 4096)]
    max_streams: usize,
    /// Largest WebSocket message, bytes.
    #[arg(long, default_value_t = 4 << 20)]
    max_message_bytes: usize,
    /// Unprocessed messages per stream before its socket stops being read (back-pressure).
    #[arg(long, default_value_t = 8)]
    queue: usize,
    /// Close a stream that sends nothing for this many seconds.
    #[arg(long, default_value_t = 30.0)]
    idle_timeout: f64,
    /// Longest wait (ms) for more streams' input once a batch has its first piece.
    #[arg(long, default_value_t = 2.0)]
    batch_wait_ms: f64,
    /// Most streams per batch.
    #[arg(long, default_value_t = 1024)]
    max_batch: usize,
    /// Run each stream's stages alone (one model call per stream), for comparison.
    #[arg(long)]
    no_batching: bool,
    /// Engine threads per bundle, each batching its share of the streams (default: the cores).
    #[arg(long)]
    engines: Option<usize>,
    /// ONNX Runtime threads per engine for the embedder (default: cores / engines).
    #[arg(long)]
    threads: Option<usize>,
    /// Seconds open streams get to finish after SIGTERM / Ctrl-C.
    #[arg(long, default_value_t = 10.0)]
    grace: f64,
}

/// Runs the server until SIGTERM or Ctrl-C.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let bundles = super::common::named_bundles(&a.bundles)?;
    if !(a.idle_timeout > 0.0 && a.idle_timeout.is_finite()) {
        anyhow::bail!("--idle-timeout must be a positive number of seconds");
    }
    if !(a.batch_wait_ms >= 0.0 && a.batch_wait_ms <= 1000.0) {
        anyhow::bail!("--batch-wait-ms must be between 0 and 1000");
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let limits = Limits {
        max_streams: a.max_streams,
        max_message_bytes: a.max_message_bytes.max(1024),
        queue_chunks: a.queue.max(1),
        idle_timeout: Duration::from_secs_f64(a.idle_timeout),
        ..Limits::default()
    };
    let policy = BatchPolicy {
        enabled: !a.no_batching,
        wait: Duration::from_secs_f64(a.batch_wait_ms / 1000.0),
        max_batch: a.max_batch.max(1),
        threads: a
            .threads
            .unwrap_or(cores / a.engines.unwrap_or(cores).max(1))
            .max(1),
        engines: a.engines.unwrap_or(cores).max(1),
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let names: Vec<String> = bundles.iter().map(|(n, _)| n.clone()).collect();
    let server = Server::new(bundles, limits, policy, stop_rx)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores.min(4))
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(a.listen)
            .await
            .with_context(|| format!("listening on {}", a.listen))?;
        let addr = listener.local_addr()?;
        eprintln!(
            "listening on {addr}: bundles {} (ws://{addr}/v1/stream?bundle=NAME&sample_rate=16000&format=s16le; http://{addr}/ in a browser)",
            names.join(", ")
        );
        tokio::spawn(async move {
            super::common::shutdown_signal().await;
            eprintln!("shutting down: open streams get their final events");
            let _ = stop_tx.send(true);
        });
        seqrec::serve::serve(listener, server, Duration::from_secs_f64(a.grace.max(0.0))).await?;
        eprintln!("stopped");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
