//! Batch jobs: `seqrec submit` puts one job per input on the work queue and
//! reads the results back in input order; workers take jobs, store results
//! and acknowledge only then.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind, kv};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::{Cluster, JOB_HEADER, now_s, retry};
use crate::error::{Error, Result};
use crate::pipeline::Recognizer;
use crate::sink::records::{Emit, error_line};

/// How long results and inputs are kept when nobody collects them.
const KEEP: Duration = Duration::from_secs(86400);

/// A job on the work queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    /// `<batch>.<index>`: the key of its result and the name of its object.
    pub id: String,
    /// What the records call the input (as `seqrec batch` would: the path given).
    pub name: String,
    /// `events`, `posteriors` or `summary`.
    pub emit: String,
    /// The input is this object of `ns-inputs` ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// ... or this path, which every worker can read (a shared file system).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Frame rate of an image-folder input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fps: Option<f64>,
}

/// Reads a job message's body (what `seqrec submit` puts on the queue).
///
/// # Errors
/// Why it is not a job.
pub fn parse_job(body: &[u8]) -> std::result::Result<Job, String> {
    let j: Job = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if j.id.is_empty() || j.id.len() > 200 {
        return Err("the job id is empty or too long".into());
    }
    if j.object.is_none() && j.path.is_none() {
        return Err("the job names no input (object or path)".into());
    }
    Ok(j)
}

/// A stored result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct JobResult {
    /// Did the input decode and run?
    pub ok: bool,
    /// Its JSON Lines, exactly as `seqrec batch` writes them for it.
    pub lines: String,
    /// Which worker made it.
    pub worker: String,
    /// Which delivery of the job it was (1 = the first).
    pub delivered: i64,
}

/// What `seqrec submit` asks for.
#[derive(Debug, Clone)]
pub struct SubmitOptions {
    /// The bundle's name, as the workers were given it.
    pub bundle: String,
    /// Records per input.
    pub emit: Emit,
    /// Put paths in the jobs instead of uploading the files (every worker
    /// must see the same files at the same paths).
    pub shared_path: bool,
    /// Frame rate of image-folder inputs.
    pub folder_fps: Option<f64>,
    /// Give up when no result came for this long.
    pub stall_timeout: Duration,
}

/// What [`submit`] reports as it goes.
#[derive(Debug, Clone, Copy)]
pub enum SubmitProgress {
    /// This many inputs are stored and queued.
    Queued(usize),
    /// No result came for this long and no worker of the bundle is waiting
    /// for jobs.
    NoWorkers(Duration),
}

/// Runs `files` on the cluster's workers of `o.bundle` and hands each
/// input's JSON Lines to `on_result` in input order, with whether it
/// succeeded; `on_progress` hears of queueing and stalls.
///
/// # Errors
/// [`Error::Cluster`] when no worker offers the bundle, the cluster fails
/// for longer than retries cover, or no result comes for
/// `o.stall_timeout`; [`Error::Io`] for an input that cannot be read for
/// upload is not an error of the run: it becomes that input's error record.
pub async fn submit(
    cl: &Cluster,
    o: &SubmitOptions,
    files: &[PathBuf],
    mut on_result: impl FnMut(usize, &str, bool),
    mut on_progress: impl FnMut(SubmitProgress),
) -> Result<()> {
    if cl.bundle_info(&o.bundle).await?.is_none() {
        return Err(Error::cluster(
            format!("bundle `{}`", o.bundle),
            format!(
                "no worker offers it (start one: seqrec worker --nats URL --bundle {}=DIR)",
                o.bundle
            ),
        ));
    }
    cl.jobs_stream().await?;
    let results = cl.bucket("results", KEEP).await?;
    let inputs = if o.shared_path {
        None
    } else {
        Some(cl.inputs().await?)
    };
    let batch = format!(
        "{:x}{:05x}",
        (now_s() * 1e6) as u64,
        std::process::id() & 0xfffff
    );
    let prefix = format!("{batch}.");
    // Watch before queueing: no result can come before the watch sees it.
    let mut watch = retry("watching results", || {
        let r = results.clone();
        let k = format!("{batch}.>");
        async move { r.watch_with_history(k).await }
    })
    .await?;

    // Queue (upload + publish) in a task while results are read here.
    let n = files.len();
    let (qtx, mut qrx) =
        tokio::sync::mpsc::unbounded_channel::<std::result::Result<usize, Error>>();
    let queue = {
        let cl = cl.clone();
        let files: Vec<PathBuf> = files.to_vec();
        let (bundle, emit, fps, batch) = (o.bundle.clone(), o.emit, o.folder_fps, batch.clone());
        let results = results.clone();
        tokio::spawn(async move {
            for (i, f) in files.iter().enumerate() {
                let id = format!("{batch}.{i}");
                let name = f.to_string_lossy().into_owned();
                let mut job = Job {
                    id: id.clone(),
                    name: name.clone(),
                    emit: emit.name().into(),
                    object: None,
                    path: None,
                    fps,
                };
                match &inputs {
                    None => {
                        let abs = std::path::absolute(f).unwrap_or_else(|_| f.clone());
                        job.path = Some(abs.to_string_lossy().into_owned());
                    }
                    Some(store) => match upload(store, f, &id).await {
                        Ok(()) => job.object = Some(id.clone()),
                        // Unreadable here: its error record, as batch writes one.
                        Err(e) => {
                            let (ok, lines) = (false, error_line(&name, &e.to_string()));
                            let r = JobResult {
                                ok,
                                lines,
                                worker: "submit".into(),
                                delivered: 0,
                            };
                            if let Err(e) = put_result(&results, &id, &r).await {
                                let _ = qtx.send(Err(e));
                                return;
                            }
                            let _ = qtx.send(Ok(i + 1));
                            continue;
                        }
                    },
                }
                if let Err(e) = publish_job(&cl, &bundle, &job).await {
                    let _ = qtx.send(Err(e));
                    return;
                }
                let _ = qtx.send(Ok(i + 1));
            }
        })
    };

    let mut pending: BTreeMap<usize, JobResult> = BTreeMap::new();
    let (mut next, mut queued) = (0usize, 0usize);
    let mut last_result = Instant::now();
    let consumer = cl.layout.job_consumer(&o.bundle);
    let mut warned = false;
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    while next < n {
        tokio::select! {
            q = qrx.recv(), if queued < n => match q {
                Some(Ok(k)) => { queued = k; on_progress(SubmitProgress::Queued(k)); }
                Some(Err(e)) => { queue.abort(); return Err(e); }
                None => queued = n,
            },
            e = watch.next() => match e {
                Some(Ok(entry)) => {
                    last_result = Instant::now();
                    if entry.operation != kv::Operation::Put { continue; }
                    let Some(i) = entry.key.strip_prefix(&prefix).and_then(|k| k.parse::<usize>().ok()) else { continue };
                    if i < next || i >= n { continue; }
                    if let Ok(r) = serde_json::from_slice::<JobResult>(&entry.value) {
                        pending.insert(i, r);
                    }
                    while let Some(r) = pending.remove(&next) {
                        on_result(next, &r.lines, r.ok);
                        next += 1;
                    }
                }
                // The watch broke (its node died): watch again from the
                // history; results already taken are skipped by index.
                _ => {
                    watch = retry("watching results", || {
                        let r = results.clone();
                        let k = format!("{batch}.>");
                        async move { r.watch_with_history(k).await }
                    }).await?;
                }
            },
            _ = tick.tick() => {
                let idle = last_result.elapsed();
                if idle > o.stall_timeout {
                    queue.abort();
                    return Err(Error::cluster(
                        format!("batch {batch}"),
                        format!("no result for {:.0} s ({next} of {n} done); are the workers of `{}` running?", idle.as_secs_f64(), o.bundle),
                    ));
                }
                if idle > Duration::from_secs(10) && !warned {
                    let info = cl.js.get_consumer_from_stream::<jetstream::consumer::pull::Config, _, _>(&consumer, cl.layout.jobs_stream()).await;
                    let idle_workers = match info {
                        Ok(mut c) => c.info().await.map(|i| i.num_waiting).unwrap_or(0),
                        Err(_) => 0,
                    };
                    if idle_workers == 0 {
                        warned = true;
                        on_progress(SubmitProgress::NoWorkers(idle));
                    }
                }
            }
        }
    }
    // Tidy up what this batch left (best effort: both expire anyway).
    let store = if o.shared_path {
        None
    } else {
        cl.inputs().await.ok()
    };
    for i in 0..n {
        let id = format!("{batch}.{i}");
        let _ = results.purge(&id).await;
        if let Some(store) = &store {
            let _ = store.delete(&id).await;
        }
    }
    Ok(())
}

async fn upload(store: &jetstream::object_store::ObjectStore, f: &Path, id: &str) -> Result<()> {
    if f.is_dir() {
        return Err(Error::config(
            "inputs",
            format!(
                "{}: a folder (image sequence) cannot be uploaded; use --shared-path",
                f.display()
            ),
        ));
    }
    // Read once here: a file that cannot be read is that input's error.
    let bytes = tokio::fs::read(f).await.map_err(|e| Error::io(f, e))?;
    retry(&format!("storing {}", f.display()), || {
        let store = store.clone();
        let bytes = bytes.clone();
        let id = id.to_string();
        async move { store.put(id.as_str(), &mut bytes.as_slice()).await }
    })
    .await?;
    Ok(())
}

async fn publish_job(cl: &Cluster, bundle: &str, job: &Job) -> Result<()> {
    let body = serde_json::to_vec(job).unwrap_or_default();
    let subject = cl.layout.job_subject(bundle);
    let mut h = async_nats::HeaderMap::new();
    h.insert(JOB_HEADER, job.id.as_str());
    // The same id on a retry: the stream keeps one copy.
    h.insert("Nats-Msg-Id", job.id.as_str());
    cl.publish_stored(&format!("queueing {}", job.name), subject, h, body.into())
        .await
}

pub(crate) async fn put_result(results: &kv::Store, id: &str, r: &JobResult) -> Result<()> {
    let v = serde_json::to_vec(r).unwrap_or_default();
    retry(&format!("storing the result of {id}"), || {
        let (results, v) = (results.clone(), v.clone());
        let id = id.to_string();
        async move { results.put(id, v.into()).await }
    })
    .await?;
    Ok(())
}

/// What a worker needs to run one bundle's jobs.
pub(crate) struct JobRunner {
    pub rec: Arc<Recognizer>,
    pub results: kv::Store,
    pub inputs: jetstream::object_store::ObjectStore,
    pub worker: String,
    pub ack_wait: Duration,
    pub threads: usize,
    pub tmp: PathBuf,
    pub verbose: bool,
    pub max_deliveries: i64,
}

impl JobRunner {
    /// Runs one delivered job to a stored result and an acknowledgement.
    pub(crate) async fn handle(&self, msg: jetstream::Message) {
        let delivered = msg.info().map_or(1, |i| i.delivered);
        let header_id = msg
            .headers
            .as_ref()
            .and_then(|h| h.get(JOB_HEADER))
            .map(|v| v.as_str().to_string());
        let job = match parse_job(&msg.payload) {
            Ok(j) => j,
            Err(e) => {
                // A job nobody can read: an error record under its id when it
                // has one, and never again on the queue.
                if let Some(id) = header_id {
                    let r = JobResult {
                        ok: false,
                        lines: error_line(&id, &format!("not a seqrec job: {e}")),
                        worker: self.worker.clone(),
                        delivered,
                    };
                    if put_result(&self.results, &id, &r).await.is_err() {
                        return;
                    }
                }
                let _ = msg.ack_with(AckKind::Term).await;
                eprintln!("worker: dropped a job that is not JSON: {e}");
                return;
            }
        };
        // Done already (the previous worker stored it, then died before its
        // ack): acknowledge, do not run it twice.
        if let Ok(Some(_)) = self.results.get(&job.id).await {
            let _ = msg.double_ack().await;
            if self.verbose {
                eprintln!(
                    "worker {}: {} was done already (delivery {delivered})",
                    self.worker, job.name
                );
            }
            return;
        }
        if self.verbose {
            eprintln!(
                "worker {}: taking {} (delivery {delivered})",
                self.worker, job.name
            );
        }
        // Tell the server this job is alive while it runs.
        let beat = {
            let acker = msg.clone();
            let every = (self.ack_wait / 3).max(Duration::from_millis(200));
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let _ = acker.ack_with(AckKind::Progress).await;
                }
            })
        };
        let t0 = Instant::now();
        let (ok, lines) = if delivered > self.max_deliveries {
            // Workers died on it before: do not let it take down another.
            let msg = format!(
                "given to workers {} times without a result (they died or stalled on it); not tried again",
                delivered - 1
            );
            (false, error_line(&job.name, &msg))
        } else {
            self.run(&job).await
        };
        beat.abort();
        let r = JobResult {
            ok,
            lines,
            worker: self.worker.clone(),
            delivered,
        };
        if put_result(&self.results, &job.id, &r).await.is_err() {
            // Not stored: no ack, so the job comes back after the ack wait.
            eprintln!("worker: could not store the result of {}", job.name);
            return;
        }
        let acked = retry("acknowledging a job", || msg.double_ack()).await;
        if self.verbose {
            eprintln!(
                "worker {}: {} {} in {:.2} s (delivery {delivered}){}",
                self.worker,
                if ok { "did" } else { "failed" },
                job.name,
                t0.elapsed().as_secs_f64(),
                if acked.is_err() { ", ack lost" } else { "" }
            );
        }
    }

    async fn run(&self, job: &Job) -> (bool, String) {
        let Some(emit) = Emit::parse(&job.emit) else {
            return (
                false,
                error_line(
                    &job.name,
                    &format!("emit `{}`: events, posteriors or summary", job.emit),
                ),
            );
        };
        let (path, tmp) = match (&job.object, &job.path) {
            (_, Some(p)) => (PathBuf::from(p), None),
            (Some(obj), None) => match self.download(obj, &job.name).await {
                Ok(p) => (p.clone(), Some(p)),
                Err(e) => return (false, error_line(&job.name, &e.to_string())),
            },
            (None, None) => return (false, error_line(&job.name, "the job names no input")),
        };
        let rec = Arc::clone(&self.rec);
        let (name, threads, fps) = (job.name.clone(), self.threads, job.fps);
        let p = path.clone();
        let r = tokio::task::spawn_blocking(move || {
            crate::sink::records::file_records(&rec, &p, &name, emit, threads, fps)
        })
        .await
        .unwrap_or_else(|_| (false, error_line(&job.name, "processing panicked")));
        if let Some(t) = tmp {
            let _ = tokio::fs::remove_file(t).await;
        }
        r
    }

    /// Fetches an input object into the worker's temporary folder, keeping
    /// the original file's extension (the audio decoder takes it as a hint).
    async fn download(&self, obj: &str, name: &str) -> Result<PathBuf> {
        use tokio::io::AsyncReadExt;
        let ext = Path::new(name)
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_default();
        let path = self.tmp.join(format!("{obj}{ext}"));
        let bytes = retry(&format!("fetching {name}"), || {
            let store = self.inputs.clone();
            let obj = obj.to_string();
            async move {
                let mut o = store.get(obj).await.map_err(|e| e.to_string())?;
                let mut v = Vec::new();
                o.read_to_end(&mut v).await.map_err(|e| e.to_string())?;
                Ok::<_, String>(v)
            }
        })
        .await?;
        tokio::fs::write(&path, bytes)
            .await
            .map_err(|e| Error::io(&path, e))?;
        Ok(path)
    }
}
