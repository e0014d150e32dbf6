//! `seqrec worker`: joins a NATS JetStream cluster and runs the batch jobs and
//! live streams of the bundles it has.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use seqrec::cluster::{Cluster, ClusterOptions, WorkerOptions};

/// Where the cluster is and which namespace of it (shared by `worker`, `submit`, `live --publish`).
#[derive(Debug, Clone, clap::Args)]
pub struct NatsFlags {
    /// NATS server URLs, comma-separated or repeated (any nodes of the cluster; give several
    /// so the client can move when one dies).
    #[arg(long = "nats", value_name = "URL", required = true)]
    pub urls: Vec<String>,
    /// Prefix of every subject, stream and bucket seqrec uses (several deployments, or
    /// tests, can share a cluster).
    #[arg(long, default_value = "seqrec")]
    pub namespace: String,
    /// Replicas of the streams and buckets created (default: 3 on a cluster of 3 or more
    /// nodes, else 1). Existing ones keep theirs.
    #[arg(long)]
    pub replicas: Option<usize>,
}

impl NatsFlags {
    pub fn options(&self, name: &str) -> ClusterOptions {
        let mut o = ClusterOptions::new(&self.urls, name);
        o.namespace = self.namespace.clone();
        o.replicas = self.replicas;
        o
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    nats: NatsFlags,
    /// A bundle this worker runs, as NAME=DIR (repeat for more); jobs and streams name it.
    #[arg(long = "bundle", value_name = "NAME=DIR", required = true)]
    bundles: Vec<String>,
    /// Batch jobs run at once [default: the cores].
    #[arg(long)]
    jobs: Option<usize>,
    /// Seconds a job may go without a sign of life before another worker gets it (the job
    /// consumer's ack wait: the first worker of a bundle sets it). A running job says it is
    /// alive every third of it.
    #[arg(long, default_value_t = 30.0)]
    ack_wait: f64,
    /// Deliveries of a job before it gets an error record instead of another try.
    #[arg(long, default_value_t = 3)]
    max_deliveries: i64,
    /// Seconds a live stream's lease lasts without renewal: after its owner dies, another
    /// worker takes the stream this long after the last renewal (the first worker sets it).
    #[arg(long, default_value_t = 5.0)]
    lease: f64,
    /// Checkpoint each live stream every this many chunks (a takeover replays at most that many).
    #[arg(long, default_value_t = 50)]
    checkpoint_every: u64,
    /// Live streams this worker owns at most.
    #[arg(long, default_value_t = 256)]
    max_streams: usize,
    /// Close a live stream that sends no chunk for this many seconds.
    #[arg(long, default_value_t = 600.0)]
    stream_idle: f64,
    /// This worker's name in leases and results [default: host-pid].
    #[arg(long)]
    name: Option<String>,
    /// Say on standard error what the worker does (each job, each stream taken or ended).
    #[arg(long, short)]
    verbose: bool,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let secs = |what: &str, v: f64| {
        if v.is_finite() && v > 0.0 {
            Ok(Duration::from_secs_f64(v))
        } else {
            Err(anyhow::anyhow!(
                "--{what} must be a positive number of seconds"
            ))
        }
    };
    let (ack_wait, lease, idle) = (
        secs("ack-wait", a.ack_wait)?,
        secs("lease", a.lease)?,
        secs("stream-idle", a.stream_idle)?,
    );
    let bundles: Vec<_> = super::common::named_bundles(&a.bundles)?
        .into_iter()
        .map(|(n, r)| (n, Arc::new(r)))
        .collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let host = super::common::hostname();
    let name = a
        .name
        .clone()
        .unwrap_or_else(|| format!("{host}-{}", std::process::id()));
    let names: Vec<String> = bundles.iter().map(|(n, _)| n.clone()).collect();
    let o = WorkerOptions {
        bundles,
        jobs: a.jobs.unwrap_or(cores).max(1),
        cores,
        ack_wait,
        max_deliveries: a.max_deliveries.max(1),
        lease,
        checkpoint_every: a.checkpoint_every.max(1),
        max_streams: a.max_streams,
        stream_idle: idle,
        name: name.clone(),
        verbose: a.verbose,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores.min(4))
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(async move {
        let cl = Cluster::connect(&a.nats.options(&name)).await?;
        let ready = || {
            eprintln!(
                "worker {name}: ready: bundles {} on {} (namespace {}, replicas {})",
                names.join(", "),
                a.nats.urls.join(","),
                a.nats.namespace,
                cl.replicas()
            )
        };
        seqrec::cluster::worker(&cl, o, ready, super::common::shutdown_signal()).await?;
        eprintln!("worker {name}: stopped");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
