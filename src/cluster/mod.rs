//! Many machines: seqrec workers on a NATS JetStream cluster.
//!
//! NATS JetStream gives what a distributed recognizer needs without a
//! home-made coordinator: persistent streams, work queues with
//! acknowledgement and redelivery, and key-value buckets with
//! compare-and-set. seqrec uses them so:
//!
//! | what | JetStream object (namespace `ns`, default `seqrec`) |
//! |---|---|
//! | batch jobs, one per input file | work-queue stream `ns-jobs`, subject `ns.jobs.<bundle>`; one durable pull consumer `ns-workers-<bundle>` shared by every worker with that bundle |
//! | input files | object store `ns-inputs`, object `<batch>.<index>` (or a shared path in the job) |
//! | batch results | KV `ns-results`, key `<batch>.<index>`: the input's JSON Lines, as `seqrec batch` writes them |
//! | which bundles the workers have | KV `ns-bundles`, key `<bundle>` |
//! | live streams | KV `ns-streams`, key `<stream>`: bundle, rate, sample format, ended |
//! | live chunks | stream `ns-live`, subject `ns.live.<stream>`, headers `Seqrec-Seq` (0, 1, ...), `Seqrec-End` on the last |
//! | who owns a live stream | KV `ns-leases`, key `<stream>`: the owner; the bucket's max age is the lease time |
//! | a live stream's checkpoint | KV `ns-checkpoints`, key `<stream>`: snapshot token, last chunk, outputs so far |
//! | a live stream's events | stream `ns-out`, subject `ns.out.<stream>`, header `Seqrec-Index` (0, 1, ...) |
//!
//! **Batch** ([`submit`]): each input is stored, one job per input is put on
//! the work queue, and results are read back by key, in input order. A
//! worker acknowledges a job only after its result is stored, and tells the
//! server it is still working every third of the ack wait, so a job is
//! redelivered only when its worker is gone. A result is keyed by the job,
//! so a job done twice (its worker died between storing and acknowledging)
//! is still one result.
//!
//! **Live** ([`Producer`], [`worker`]): a stream's owner holds its lease by
//! compare-and-set renewals; it publishes each output record once, with a
//! deterministic message id and index, and checkpoints the stream's state
//! ([`crate::pipeline::StreamProcessor::snapshot`]) after the records up to
//! that chunk are stored. When the owner dies, its lease expires, another
//! worker takes it, restores the checkpoint, replays the chunks after it and
//! skips the records already published: the outputs equal those of one
//! uninterrupted run, because a stream's records are a deterministic
//! function of its chunks.

mod jobs;
mod live;
mod worker;

use std::time::Duration;

use async_nats::jetstream::{self, kv, object_store, stream};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub use jobs::{Job, SubmitOptions, SubmitProgress, parse_job, submit};
pub use live::{Output, Producer};
pub use worker::{WorkerOptions, worker};

/// Header of a live chunk: its sequence number in the stream, from 0.
pub const SEQ_HEADER: &str = "Seqrec-Seq";
/// Header of the last message of a live stream (value `1`, body empty or the
/// last samples).
pub const END_HEADER: &str = "Seqrec-End";
/// Header of an output record: its index in the stream's outputs, from 0.
pub const INDEX_HEADER: &str = "Seqrec-Index";
/// Header of an output record: `event`, `error` or `done`.
pub const KIND_HEADER: &str = "Seqrec-Kind";
/// Header of a batch job: its id (`<batch>.<index>`), so that a job whose
/// body cannot be read still gets an error record.
pub const JOB_HEADER: &str = "Seqrec-Job";

/// Settings every cluster client shares.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Server URLs (any of the cluster's nodes; more give the client others to
    /// reconnect to when one dies).
    pub urls: Vec<String>,
    /// Prefix of every subject, stream and bucket: clusters can hold several
    /// independent seqrec deployments (and tests their own).
    pub namespace: String,
    /// Replicas of every stream and bucket this client creates: `None` = 3
    /// when the cluster has at least 3 nodes, else 1.
    pub replicas: Option<usize>,
    /// This client's name in the server's connection list.
    pub name: String,
}

impl ClusterOptions {
    /// Options for `urls` (comma-separated lists are split) with the default
    /// namespace.
    pub fn new(urls: &[String], name: &str) -> ClusterOptions {
        ClusterOptions {
            urls: urls
                .iter()
                .flat_map(|u| u.split(','))
                .map(|u| u.trim().to_string())
                .filter(|u| !u.is_empty())
                .collect(),
            namespace: "seqrec".into(),
            replicas: None,
            name: name.into(),
        }
    }
}

/// The names of everything seqrec keeps in a cluster (see the module docs).
#[derive(Debug, Clone)]
pub struct Layout {
    ns: String,
}

impl Layout {
    /// The layout of namespace `ns`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `ns` is not a name NATS takes.
    pub fn new(ns: &str) -> Result<Layout> {
        check_name("namespace", ns)?;
        Ok(Layout { ns: ns.into() })
    }
    /// The work-queue stream of batch jobs.
    pub fn jobs_stream(&self) -> String {
        format!("{}-jobs", self.ns)
    }
    /// The subject of `bundle`'s jobs.
    pub fn job_subject(&self, bundle: &str) -> String {
        format!("{}.jobs.{bundle}", self.ns)
    }
    /// The pull consumer the workers of `bundle` share.
    pub fn job_consumer(&self, bundle: &str) -> String {
        format!("{}-workers-{bundle}", self.ns)
    }
    /// The stream of live chunks.
    pub fn live_stream(&self) -> String {
        format!("{}-live", self.ns)
    }
    /// The subject of stream `id`'s chunks.
    pub fn chunk_subject(&self, id: &str) -> String {
        format!("{}.live.{id}", self.ns)
    }
    /// The stream of live outputs.
    pub fn out_stream(&self) -> String {
        format!("{}-out", self.ns)
    }
    /// The subject of stream `id`'s outputs.
    pub fn out_subject(&self, id: &str) -> String {
        format!("{}.out.{id}", self.ns)
    }
    /// A bucket of this namespace: `results`, `inputs`, `bundles`, `streams`,
    /// `leases`, `checkpoints`.
    pub fn bucket(&self, what: &str) -> String {
        format!("{}-{what}", self.ns)
    }
}

/// Bundle names, stream ids and namespaces become subject tokens and keys:
/// letters, digits, `_` and `-` only.
///
/// # Errors
/// [`Error::InvalidConfig`] naming `what`.
pub fn check_name(what: &str, s: &str) -> Result<()> {
    if s.is_empty()
        || s.len() > 64
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(Error::config(
            what,
            format!(
                "`{s}`: use 1-64 letters, digits, `_` or `-` (it names NATS subjects and keys)"
            ),
        ));
    }
    Ok(())
}

/// What workers say of a bundle they have, in `ns-bundles`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BundleInfo {
    /// `audio` or `video`.
    pub kind: String,
    /// Input sample rate (audio bundles).
    pub sample_rate: u32,
    /// Labels, in score order.
    pub labels: Vec<String>,
}

/// A connection and the layout of one namespace.
#[derive(Clone)]
pub struct Cluster {
    client: async_nats::Client,
    js: jetstream::Context,
    layout: Layout,
    replicas: usize,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("namespace", &self.layout.ns)
            .field("replicas", &self.replicas)
            .finish()
    }
}

/// Keeps going through a node's death: JetStream calls that fail (timeouts
/// while a stream elects a new leader, a connection moving to another node)
/// are retried for this long before the error counts.
pub(crate) const RETRY_FOR: Duration = Duration::from_secs(30);

/// How long any one JetStream request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(4);

impl Cluster {
    /// Connects to the cluster (any reachable URL of `o.urls`).
    ///
    /// # Errors
    /// [`Error::Cluster`] when no server answers within 10 s.
    pub async fn connect(o: &ClusterOptions) -> Result<Cluster> {
        let layout = Layout::new(&o.namespace)?;
        if o.urls.is_empty() {
            return Err(Error::config("nats", "no server URL given"));
        }
        let client = async_nats::ConnectOptions::new()
            .name(&o.name)
            .connection_timeout(Duration::from_secs(10))
            .request_timeout(Some(REQUEST_TIMEOUT))
            .max_reconnects(None)
            .connect(o.urls.clone())
            .await
            .map_err(|e| {
                Error::cluster(
                    format!("connecting to {}", o.urls.join(",")),
                    format!("{e} (is nats-server running with JetStream, `-js`?)"),
                )
            })?;
        let nodes = client.server_info().connect_urls.len().max(1);
        let replicas = o
            .replicas
            .unwrap_or(if nodes >= 3 { 3 } else { 1 })
            .clamp(1, 5);
        let mut js = jetstream::new(client.clone());
        js.set_timeout(REQUEST_TIMEOUT);
        Ok(Cluster {
            client,
            js,
            layout,
            replicas,
        })
    }

    /// The names this client uses.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Replicas of the streams and buckets this client creates.
    pub fn replicas(&self) -> usize {
        self.replicas
    }

    /// The underlying NATS client.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// Waits until everything published so far has reached the server.
    ///
    /// # Errors
    /// [`Error::Cluster`] when the connection cannot flush.
    pub async fn flush(&self) -> Result<()> {
        self.client
            .flush()
            .await
            .map_err(|e| Error::cluster("flushing", e))
    }

    /// Publishes to a stream and waits until it is stored, retrying through
    /// failures with the same headers: they carry a `Nats-Msg-Id`, so a
    /// message stored before a lost acknowledgement is stored once.
    pub(crate) async fn publish_stored(
        &self,
        what: &str,
        subject: String,
        headers: async_nats::HeaderMap,
        body: bytes::Bytes,
    ) -> Result<()> {
        retry(what, || {
            let (js, subject, h, body) = (
                self.js.clone(),
                subject.clone(),
                headers.clone(),
                body.clone(),
            );
            async move { js.publish_with_headers(subject, h, body).await?.await }
        })
        .await?;
        Ok(())
    }

    async fn stream(&self, config: stream::Config) -> Result<stream::Stream> {
        let name = config.name.clone();
        retry(&format!("stream {name}"), || {
            let c = config.clone();
            async move { self.js.get_or_create_stream(c).await }
        })
        .await
    }

    /// The work-queue stream of batch jobs.
    pub(crate) async fn jobs_stream(&self) -> Result<stream::Stream> {
        self.stream(stream::Config {
            name: self.layout.jobs_stream(),
            subjects: vec![self.layout.job_subject("*")],
            retention: stream::RetentionPolicy::WorkQueue,
            num_replicas: self.replicas,
            max_age: Duration::from_secs(7 * 86400),
            ..Default::default()
        })
        .await
    }

    /// The stream of live chunks.
    pub(crate) async fn live_stream(&self) -> Result<stream::Stream> {
        self.stream(stream::Config {
            name: self.layout.live_stream(),
            subjects: vec![self.layout.chunk_subject("*")],
            num_replicas: self.replicas,
            max_age: Duration::from_secs(86400),
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
    }

    /// The stream of live outputs.
    pub(crate) async fn out_stream(&self) -> Result<stream::Stream> {
        self.stream(stream::Config {
            name: self.layout.out_stream(),
            subjects: vec![self.layout.out_subject("*")],
            num_replicas: self.replicas,
            max_age: Duration::from_secs(86400),
            duplicate_window: Duration::from_secs(600),
            ..Default::default()
        })
        .await
    }

    /// A key-value bucket of this namespace (created if missing; an existing
    /// one is used as it is, e.g. with the lease time its creator chose).
    pub(crate) async fn bucket(&self, what: &str, max_age: Duration) -> Result<kv::Store> {
        let name = self.layout.bucket(what);
        retry(&format!("bucket {name}"), || {
            let name = name.clone();
            async move {
                match self.js.get_key_value(&name).await {
                    Ok(s) => Ok(s),
                    Err(_) => {
                        // The stream a KV bucket is, made directly: the
                        // client's create_key_value first reads account
                        // information in a form nats-server 2.9 does not send.
                        self.js
                            .get_or_create_stream(stream::Config {
                                name: format!("KV_{name}"),
                                subjects: vec![format!("$KV.{name}.>")],
                                max_messages_per_subject: 1,
                                max_age,
                                max_message_size: 8 << 20,
                                allow_rollup: true,
                                deny_delete: true,
                                allow_direct: true,
                                discard: stream::DiscardPolicy::New,
                                num_replicas: self.replicas,
                                ..Default::default()
                            })
                            .await
                            .map_err(|e| e.to_string())?;
                        self.js
                            .get_key_value(&name)
                            .await
                            .map_err(|e| e.to_string())
                    }
                }
            }
        })
        .await
    }

    /// The object store of batch inputs.
    pub(crate) async fn inputs(&self) -> Result<object_store::ObjectStore> {
        let name = self.layout.bucket("inputs");
        retry(&format!("object store {name}"), || {
            let name = name.clone();
            async move {
                match self.js.get_object_store(&name).await {
                    Ok(s) => Ok(s),
                    Err(_) => {
                        self.js
                            .create_object_store(object_store::Config {
                                bucket: name,
                                max_age: Duration::from_secs(86400),
                                num_replicas: self.replicas,
                                ..Default::default()
                            })
                            .await
                    }
                }
            }
        })
        .await
    }

    /// The max age of the lease bucket: the lease time every worker uses.
    pub(crate) async fn lease_time(&self, wanted: Duration) -> Result<(kv::Store, Duration)> {
        let store = self.bucket("leases", wanted).await?;
        let age = retry("lease bucket status", || {
            let s = store.clone();
            async move { s.status().await.map(|st| st.max_age()) }
        })
        .await?;
        Ok((store, if age.is_zero() { wanted } else { age }))
    }

    /// The bundles the workers have offered.
    ///
    /// # Errors
    /// [`Error::Cluster`].
    pub async fn bundle_info(&self, bundle: &str) -> Result<Option<BundleInfo>> {
        let kv = self.bucket("bundles", Duration::ZERO).await?;
        let v = retry("reading ns-bundles", || {
            let kv = kv.clone();
            let b = bundle.to_string();
            async move { kv.get(b).await }
        })
        .await?;
        Ok(v.and_then(|b| serde_json::from_slice(&b).ok()))
    }
}

/// Retries a JetStream call through transient failures for [`RETRY_FOR`].
pub(crate) async fn retry<T, E, F, Fut>(what: &str, mut f: F) -> Result<T>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, E>>,
{
    let t0 = std::time::Instant::now();
    let mut wait = Duration::from_millis(50);
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if t0.elapsed() > RETRY_FOR => return Err(Error::cluster(what, e)),
            Err(_) => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_millis(500));
            }
        }
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn now_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A header's value as a number.
pub(crate) fn header_u64(h: Option<&async_nats::HeaderMap>, name: &str) -> Option<u64> {
    h?.get(name)?.as_str().trim().parse().ok()
}
