//! `seqrec worker`: takes batch jobs and live streams of the bundles it has.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, kv};
use futures_util::StreamExt;

use super::jobs::JobRunner;
use super::live::{Ended, KEEP, Owner, StreamMeta};
use super::{BundleInfo, Cluster, check_name, retry};
use crate::bundle::InputKind;
use crate::error::{Error, Result};
use crate::pipeline::Recognizer;

/// What a worker runs and how.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Bundles by the name jobs and streams ask for.
    pub bundles: Vec<(String, Arc<Recognizer>)>,
    /// Batch jobs run at once (each on its own core).
    pub jobs: usize,
    /// Cores in all (for the embedder threads of each job).
    pub cores: usize,
    /// How long a job may go without a sign of life before it is given to
    /// another worker (the consumer's ack wait; set by the first worker).
    pub ack_wait: Duration,
    /// A job delivered this many times (its workers died on it) gets an error
    /// record instead of a further try.
    pub max_deliveries: i64,
    /// Lease time of live streams (the lease bucket's max age; set by the
    /// first worker, used as found by the others).
    pub lease: Duration,
    /// Checkpoint a live stream every this many chunks.
    pub checkpoint_every: u64,
    /// Live streams this worker owns at most.
    pub max_streams: usize,
    /// A live stream without a chunk for this long is closed.
    pub stream_idle: Duration,
    /// This worker's name (leases and results say who).
    pub name: String,
    /// Log each job and stream on standard error.
    pub verbose: bool,
}

/// How often a worker looks for live streams without an owner.
const CLAIM_EVERY: Duration = Duration::from_millis(100);

/// Runs a worker until `shutdown` resolves (`on_ready` is called once its
/// bundles are offered and it takes work); then it takes no more work,
/// finishes (and acknowledges) the jobs it has, checkpoints its live streams
/// and releases their leases so that other workers take them at once.
///
/// # Errors
/// [`Error::Cluster`] when the streams and buckets cannot be set up.
pub async fn worker(
    cl: &Cluster,
    o: WorkerOptions,
    on_ready: impl FnOnce(),
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    for (name, _) in &o.bundles {
        check_name("bundle name", name)?;
    }
    let tmp = std::env::temp_dir().join(format!("seqrec-worker-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let results = cl.bucket("results", KEEP).await?;
    let inputs = cl.inputs().await?;
    let jobs_stream = cl.jobs_stream().await?;
    let bundles_kv = cl.bucket("bundles", Duration::ZERO).await?;
    let streams_kv = cl.bucket("streams", KEEP).await?;
    let checkpoints = cl.bucket("checkpoints", KEEP).await?;
    let (leases, lease) = cl.lease_time(o.lease).await?;
    if lease != o.lease && o.verbose {
        eprintln!(
            "worker {}: the cluster's lease time is {:.1} s (set by the first worker), not {:.1} s",
            o.name,
            lease.as_secs_f64(),
            o.lease.as_secs_f64()
        );
    }
    cl.live_stream().await?;
    cl.out_stream().await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let jobs = o.jobs.max(1);
    let threads = (o.cores.max(1) / jobs).max(1);
    for (name, rec) in &o.bundles {
        let info = BundleInfo {
            kind: match rec.kind() {
                InputKind::Audio => "audio".into(),
                InputKind::Video => "video".into(),
            },
            sample_rate: rec.sample_rate(),
            labels: rec.labels().to_vec(),
        };
        retry("offering a bundle", || {
            let (kv, name) = (bundles_kv.clone(), name.clone());
            let v = serde_json::to_vec(&info).unwrap_or_default();
            async move { kv.put(name, v.into()).await }
        })
        .await?;
        let cname = cl.layout.job_consumer(name);
        let consumer: jetstream::consumer::Consumer<pull::Config> =
            retry("the job consumer", || {
                let (s, cname) = (jobs_stream.clone(), cname.clone());
                let subject = cl.layout.job_subject(name);
                async move {
                    s.get_or_create_consumer(
                        &cname,
                        pull::Config {
                            durable_name: Some(cname.clone()),
                            filter_subject: subject,
                            ack_policy: jetstream::consumer::AckPolicy::Explicit,
                            ack_wait: o.ack_wait,
                            max_ack_pending: 10_000,
                            ..Default::default()
                        },
                    )
                    .await
                }
            })
            .await?;
        let runner = Arc::new(JobRunner {
            rec: Arc::clone(rec),
            results: results.clone(),
            inputs: inputs.clone(),
            worker: o.name.clone(),
            ack_wait: o.ack_wait,
            threads,
            tmp: tmp.clone(),
            verbose: o.verbose,
            max_deliveries: o.max_deliveries,
        });
        let mut stop = stop_rx.clone();
        tasks.spawn(async move { job_loop(runner, consumer, jobs, &mut stop).await });
    }
    {
        let claim = Claim {
            cl: cl.clone(),
            bundles: o.bundles.iter().cloned().collect(),
            streams: streams_kv,
            leases,
            lease,
            checkpoints,
            o: o.clone(),
        };
        let stop = stop_rx.clone();
        tasks.spawn(async move { claim.run(stop).await });
    }
    on_ready();
    shutdown.await;
    if o.verbose {
        eprintln!("worker {}: stopping", o.name);
    }
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    let _ = cl.flush().await;
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}

/// Pulls `bundle`'s jobs, at most `jobs` at a time, until `stop`.
async fn job_loop(
    runner: Arc<JobRunner>,
    consumer: jetstream::consumer::Consumer<pull::Config>,
    jobs: usize,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(jobs));
    let mut running = tokio::task::JoinSet::new();
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&slots).acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = stop.changed() => break,
        };
        let fetched = tokio::select! {
            b = consumer.fetch().max_messages(1).expires(Duration::from_secs(2)).messages() => b,
            _ = stop.changed() => break,
        };
        let mut batch = match fetched {
            Ok(b) => b,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(300)).await;
                continue;
            }
        };
        // The pull ends by itself when it expires, but not when its node dies
        // mid-request: bounded here too.
        let msg = tokio::select! {
            m = tokio::time::timeout(Duration::from_secs(3), batch.next()) => m.unwrap_or(None),
            _ = stop.changed() => break,
        };
        match msg {
            Some(Ok(m)) => {
                let r = Arc::clone(&runner);
                running.spawn(async move {
                    r.handle(m).await;
                    drop(permit);
                });
            }
            Some(Err(_)) => tokio::time::sleep(Duration::from_millis(300)).await,
            None => {}
        }
        while running.try_join_next().is_some() {}
    }
    // Shutting down: the jobs taken are finished and acknowledged.
    while running.join_next().await.is_some() {}
}

/// Finds live streams without an owner and takes their leases.
struct Claim {
    cl: Cluster,
    bundles: HashMap<String, Arc<Recognizer>>,
    streams: kv::Store,
    leases: kv::Store,
    lease: Duration,
    checkpoints: kv::Store,
    o: WorkerOptions,
}

impl Claim {
    async fn run(self, stop: tokio::sync::watch::Receiver<bool>) {
        let mut known: HashMap<String, StreamMeta> = HashMap::new();
        let owned: Arc<Mutex<HashSet<String>>> = Arc::default();
        let mut owners = tokio::task::JoinSet::new();
        let mut watch = None;
        let mut tick = tokio::time::interval(CLAIM_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut stop_w = stop.clone();
        loop {
            if watch.is_none() {
                watch = self.streams.watch_with_history(">").await.ok();
            }
            tokio::select! {
                _ = stop_w.changed() => break,
                e = async { match watch.as_mut() { Some(w) => w.next().await, None => None } } => match e {
                    Some(Ok(e)) => {
                        let m: Option<StreamMeta> = serde_json::from_slice(&e.value).ok();
                        match m {
                            Some(m) if e.operation == kv::Operation::Put && !m.ended => { known.insert(e.key, m); }
                            _ => { known.remove(&e.key); }
                        }
                    }
                    _ => {
                        watch = None;
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                },
                _ = tick.tick() => {
                    while owners.try_join_next().is_some() {}
                    let n_owned = owned.lock().unwrap_or_else(|e| e.into_inner()).len();
                    for (id, meta) in &known {
                        let Some(rec) = self.bundles.get(&meta.bundle) else { continue };
                        if owned.lock().unwrap_or_else(|e| e.into_inner()).contains(id) || n_owned >= self.o.max_streams {
                            continue;
                        }
                        let me = self.o.name.clone();
                        let Ok(rev) = self.leases.create(id, me.into()).await else { continue };
                        if self.o.verbose {
                            eprintln!("worker {}: won the lease of {id}", self.o.name);
                        }
                        owned.lock().unwrap_or_else(|e| e.into_inner()).insert(id.clone());
                        let owner = Owner {
                            cl: self.cl.clone(),
                            rec: Arc::clone(rec),
                            id: id.clone(),
                            meta: meta.clone(),
                            worker: self.o.name.clone(),
                            leases: self.leases.clone(),
                            lease: self.lease,
                            checkpoints: self.checkpoints.clone(),
                            streams: self.streams.clone(),
                            every: self.o.checkpoint_every.max(1),
                            idle: self.o.stream_idle,
                            verbose: self.o.verbose,
                            stop: stop.clone(),
                        };
                        let (owned, id, verbose, name) = (Arc::clone(&owned), id.clone(), self.o.verbose, self.o.name.clone());
                        owners.spawn(async move {
                            let r = owner.run(rev).await;
                            if verbose && r.as_ref().is_ok_and(|e| *e == Ended::Lost) {
                                eprintln!("worker {name}: lost the lease of {id}");
                            }
                            owned.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                        });
                        // One new stream per tick: the others' workers get a turn.
                        break;
                    }
                }
            }
        }
        while owners.join_next().await.is_some() {}
    }
}
