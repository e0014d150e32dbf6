//! `seqrec serve`: many concurrent streams in one process, on tokio.
//!
//! Connections are async (axum on tokio): they parse messages, check limits
//! and forward input; nothing heavy runs on the async threads. The compute
//! runs on one engine thread per bundle ([`engine`]), which owns every
//! stream's state and runs the pieces of many streams together, one model
//! call per stage (cross-stream batching).
//!
//! Protocol (stable; README has the full text):
//!
//! * `GET /v1/stream?bundle=NAME&sample_rate=R&format=s16le|f32le[&emit=posteriors][&resume=TOKEN]`
//!   upgrades to a WebSocket. Binary messages carry mono PCM; text
//!   messages `{"type":"end"}` and `{"type":"snapshot"}`. The server sends
//!   `{"type":"event",...}`, optionally `{"type":"posteriors","t_s":[..],"scores":[[..]]}`,
//!   `{"type":"snapshot","token":..}` and at the end `{"type":"done","samples":N,"dropped":0}`;
//!   an error is `{"type":"error","message":..}` and a close frame.
//!   Video bundles: `format=rgb24&width=W&height=H&fps=F`, one frame per message.
//! * `POST /v1/recognize?bundle=NAME[&emit=events|posteriors|summary][&name=FILE]`:
//!   a whole file as the body; `seqrec batch`'s JSON Lines back.
//! * `GET /v1/bundles`, `GET /healthz`, `GET /metrics` (Prometheus text).
//!
//! Every stream is back-pressured: a connection holds at most
//! `queue_chunks` unprocessed messages, then stops reading its socket until
//! the engine catches up (TCP does the rest). A client that sends nothing
//! for `idle_timeout` is closed.

pub mod engine;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc, watch};

use crate::bundle::InputKind;
use crate::pipeline::{Recognizer, StreamState};
use crate::source::video::Frame;
use crate::{Error, Result};

pub use engine::BatchPolicy;
use engine::{Job, Reply};

/// Limits of a server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most streams open at once; more are refused ("server full").
    pub max_streams: usize,
    /// Largest WebSocket message, bytes.
    pub max_message_bytes: usize,
    /// Unprocessed messages a stream may have in flight before its socket
    /// stops being read.
    pub queue_chunks: usize,
    /// A stream that sends nothing for this long is closed.
    pub idle_timeout: Duration,
    /// Largest `POST /v1/recognize` body, bytes.
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_streams: 4096,
            max_message_bytes: 4 << 20,
            queue_chunks: 8,
            idle_timeout: Duration::from_secs(30),
            max_body_bytes: 512 << 20,
        }
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    open_streams: AtomicU64,
    streams_total: AtomicU64,
    refused_total: AtomicU64,
    /// Posterior rows computed (recurrent steps).
    steps: AtomicU64,
    errors: AtomicU64,
    samples_total: AtomicU64,
    /// Jobs waiting in the engines.
    queue_depth: AtomicU64,
    batches: AtomicU64,
    batch_items: AtomicU64,
    /// Batch sizes, buckets 1, 2, 4, ... 1024, +Inf.
    batch_hist: [AtomicU64; 12],
    /// From a message's arrival to its output being sent (seconds), buckets
    /// [`LATENCY_BUCKETS`], +Inf.
    latency_hist: [AtomicU64; 13],
    latency_sum_us: AtomicU64,
}

const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
];

impl Metrics {
    fn observe_batch(&self, n: usize) {
        self.batches.fetch_add(1, Relaxed);
        self.batch_items.fetch_add(n as u64, Relaxed);
        let k = (usize::BITS - n.max(1).leading_zeros() - 1) as usize;
        self.batch_hist[k.min(11)].fetch_add(1, Relaxed);
    }

    fn observe_latency(&self, d: Duration) {
        let s = d.as_secs_f64();
        let k = LATENCY_BUCKETS
            .iter()
            .position(|&b| s <= b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.latency_hist[k].fetch_add(1, Relaxed);
        self.latency_sum_us.fetch_add(d.as_micros() as u64, Relaxed);
    }

    /// Prometheus text format.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let g = |a: &AtomicU64| a.load(Relaxed);
        let mut s = String::new();
        let mut one = |name: &str, kind: &str, help: &str, v: u64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        one(
            "seqrec_open_streams",
            "gauge",
            "Streams open now.",
            g(&self.open_streams),
        );
        one(
            "seqrec_streams_total",
            "counter",
            "Streams opened.",
            g(&self.streams_total),
        );
        one(
            "seqrec_refused_total",
            "counter",
            "Streams refused (server full).",
            g(&self.refused_total),
        );
        one(
            "seqrec_steps_total",
            "counter",
            "Recurrent steps (posterior rows) computed.",
            g(&self.steps),
        );
        one(
            "seqrec_samples_total",
            "counter",
            "Audio samples (or video frames) received.",
            g(&self.samples_total),
        );
        one(
            "seqrec_errors_total",
            "counter",
            "Streams ended by an error.",
            g(&self.errors),
        );
        one(
            "seqrec_dropped_total",
            "counter",
            "Input dropped (never: streams are back-pressured).",
            0,
        );
        one(
            "seqrec_queue_depth",
            "gauge",
            "Messages waiting in the engines at the last round.",
            g(&self.queue_depth),
        );
        let _ = writeln!(
            s,
            "# HELP seqrec_batch_size Streams per engine round.\n# TYPE seqrec_batch_size histogram"
        );
        let mut cum = 0;
        for (k, b) in self.batch_hist.iter().enumerate() {
            cum += g(b);
            let le = if k == 11 {
                "+Inf".to_string()
            } else {
                (1u64 << k).to_string()
            };
            let _ = writeln!(s, "seqrec_batch_size_bucket{{le=\"{le}\"}} {cum}");
        }
        let _ = writeln!(
            s,
            "seqrec_batch_size_sum {}\nseqrec_batch_size_count {}",
            g(&self.batch_items),
            g(&self.batches)
        );
        let _ = writeln!(
            s,
            "# HELP seqrec_latency_seconds From a message's arrival to its output.\n# TYPE seqrec_latency_seconds histogram"
        );
        let mut cum = 0;
        for (k, b) in self.latency_hist.iter().enumerate() {
            cum += g(b);
            let le = LATENCY_BUCKETS
                .get(k)
                .map_or("+Inf".to_string(), |v| v.to_string());
            let _ = writeln!(s, "seqrec_latency_seconds_bucket{{le=\"{le}\"}} {cum}");
        }
        let _ = writeln!(
            s,
            "seqrec_latency_seconds_sum {}\nseqrec_latency_seconds_count {cum}",
            g(&self.latency_sum_us) as f64 / 1e6
        );
        s
    }
}

/// One bundle the server runs: its engines, each owning a share of its
/// streams (a stream stays on one engine for its whole life).
struct Served {
    rec: Arc<Recognizer>,
    shards: Vec<crossbeam_channel::Sender<Job>>,
}

/// A running server's shared state.
pub struct Server {
    bundles: BTreeMap<String, Served>,
    limits: Limits,
    metrics: Arc<Metrics>,
    next_id: AtomicU64,
    open: AtomicUsize,
    shutdown: watch::Receiver<bool>,
    engines: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("bundles", &self.bundles.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Server {
    /// Starts one engine thread per bundle. `shutdown` turning true asks
    /// every stream to finish (its final events and `done`) and close.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for no bundles or a repeated name.
    pub fn new(
        bundles: Vec<(String, Recognizer)>,
        limits: Limits,
        policy: BatchPolicy,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Arc<Server>> {
        if bundles.is_empty() {
            return Err(Error::config(
                "bundle",
                "give at least one --bundle NAME=DIR",
            ));
        }
        let metrics = Arc::new(Metrics::default());
        let mut map = BTreeMap::new();
        let mut engines = Vec::new();
        for (name, rec) in bundles {
            if map.contains_key(&name) {
                return Err(Error::config(
                    "bundle",
                    format!("two bundles are named `{name}`"),
                ));
            }
            let rec = Arc::new(rec);
            let mut shards = Vec::new();
            for k in 0..policy.engines.max(1) {
                let (tx, rx) = crossbeam_channel::unbounded();
                let (r, m) = (Arc::clone(&rec), Arc::clone(&metrics));
                engines.push(
                    std::thread::Builder::new()
                        .name(format!("engine-{name}-{k}"))
                        .spawn(move || engine::run(r, rx, policy, m))
                        .map_err(|e| {
                            Error::config("serve", format!("starting an engine thread: {e}"))
                        })?,
                );
                shards.push(tx);
            }
            map.insert(name, Served { rec, shards });
        }
        Ok(Arc::new(Server {
            bundles: map,
            limits,
            metrics,
            next_id: AtomicU64::new(1),
            open: AtomicUsize::new(0),
            shutdown,
            engines: std::sync::Mutex::new(engines),
        }))
    }

    /// The routes.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/", get(index))
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/metrics", get(metrics))
            .route("/v1/bundles", get(bundles))
            .route("/v1/stream", get(stream))
            .route("/v1/recognize", post(recognize))
            .layer(DefaultBodyLimit::max(self.limits.max_body_bytes))
            .with_state(Arc::clone(self))
    }

    /// Streams open now.
    pub fn open_streams(&self) -> usize {
        self.open.load(Relaxed)
    }

    /// The counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

/// Serves `server` on `listener` until `shutdown` turns true, then waits
/// (at most `grace`) for open streams to finish.
///
/// # Errors
/// [`Error::Io`]-like failures of the listener, as [`Error::InvalidConfig`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    server: Arc<Server>,
    grace: Duration,
) -> Result<()> {
    let mut stop = server.shutdown.clone();
    let app = server.router();
    let until = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(until)
    .await
    .map_err(|e| Error::config("listen", e.to_string()))?;
    let t0 = Instant::now();
    while server.open_streams() > 0 && t0.elapsed() < grace {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

impl Drop for Server {
    fn drop(&mut self) {
        // Closing the job channels ends the engines.
        self.bundles.clear();
        if let Ok(mut e) = self.engines.lock() {
            for h in e.drain(..) {
                let _ = h.join();
            }
        }
    }
}

async fn index() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        include_str!("client.html"),
    )
}

async fn metrics(State(s): State<Arc<Server>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

#[derive(Serialize)]
struct BundleInfo<'a> {
    name: &'a str,
    kind: &'static str,
    labels: &'a [String],
    sample_rate: Option<u32>,
    step_s: f64,
}

async fn bundles(State(s): State<Arc<Server>>) -> impl IntoResponse {
    let list: Vec<BundleInfo<'_>> = s
        .bundles
        .iter()
        .map(|(name, b)| BundleInfo {
            name,
            kind: match b.rec.kind() {
                InputKind::Audio => "audio",
                InputKind::Video => "video",
            },
            labels: b.rec.labels(),
            sample_rate: (b.rec.kind() == InputKind::Audio).then(|| b.rec.sample_rate()),
            step_s: b.rec.frame_period_s(),
        })
        .collect();
    axum::Json(serde_json::json!({ "bundles": list }))
}

/// The query of `/v1/stream`.
#[derive(Debug, Deserialize)]
pub struct StreamQuery {
    bundle: String,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    sample_rate: Option<u32>,
    #[serde(default)]
    width: Option<u32>,
    #[serde(default)]
    height: Option<u32>,
    #[serde(default)]
    fps: Option<f64>,
    #[serde(default)]
    emit: Option<String>,
    #[serde(default)]
    resume: Option<String>,
}

/// How a stream's binary messages are read.
#[derive(Debug, Clone, Copy)]
enum Wire {
    S16,
    F32,
    Rgb { width: u32, height: u32, fps: f64 },
}

/// Close codes (RFC 6455 §7.4.1).
mod code {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const UNSUPPORTED: u16 = 1003;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const INTERNAL: u16 = 1011;
    pub const TRY_LATER: u16 = 1013;
}

/// An error for one client: the message and the close code.
struct Refusal(u16, String);

fn check_query(
    s: &Server,
    q: &StreamQuery,
) -> std::result::Result<(Arc<Recognizer>, Wire), Refusal> {
    let b = s.bundles.get(&q.bundle).ok_or_else(|| {
        Refusal(
            code::POLICY,
            format!(
                "no bundle `{}` here; this server has: {}",
                q.bundle,
                s.bundles.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        )
    })?;
    let rec = Arc::clone(&b.rec);
    let bad = |m: String| Refusal(code::POLICY, m);
    let wire = match rec.kind() {
        InputKind::Audio => {
            let want = rec.sample_rate();
            match q.sample_rate {
                Some(r) if r == want => {}
                Some(r) => {
                    return Err(bad(format!(
                        "bundle `{}` takes {want} Hz audio, not {r} Hz: resample on the client (e.g. AudioContext({{sampleRate: {want}}}), ffmpeg -ar {want})",
                        q.bundle
                    )));
                }
                None => return Err(bad(format!("give sample_rate={want}"))),
            }
            match q.format.as_deref() {
                Some("s16le") | None => Wire::S16,
                Some("f32le") => Wire::F32,
                Some(f) => {
                    return Err(bad(format!(
                        "format `{f}`: audio bundles take s16le or f32le"
                    )));
                }
            }
        }
        InputKind::Video => {
            if q.format.as_deref() != Some("rgb24") {
                return Err(bad(format!(
                    "bundle `{}` is a video bundle: give format=rgb24&width=W&height=H&fps=F",
                    q.bundle
                )));
            }
            let (Some(width), Some(height), Some(fps)) = (q.width, q.height, q.fps) else {
                return Err(bad("video streams need width, height and fps".into()));
            };
            if width == 0 || height == 0 || !(fps.is_finite() && fps > 0.0) {
                return Err(bad(format!(
                    "{width}x{height} at {fps} fps is not a video size"
                )));
            }
            if (width as usize) * (height as usize) * 3 > s.limits.max_message_bytes {
                return Err(Refusal(
                    code::TOO_BIG,
                    format!(
                        "a {width}x{height} frame is over the {} byte message limit",
                        s.limits.max_message_bytes
                    ),
                ));
            }
            Wire::Rgb { width, height, fps }
        }
    };
    if let Some(e) = q.emit.as_deref()
        && e != "posteriors"
        && e != "events"
    {
        return Err(bad(format!(
            "emit=`{e}`: streams emit events, or events and posteriors (emit=posteriors)"
        )));
    }
    Ok((rec, wire))
}

async fn stream(
    State(s): State<Arc<Server>>,
    Query(q): Query<StreamQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    let limit = s.limits.max_message_bytes;
    ws.max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| async move {
            let mut socket = socket;
            if let Err(Refusal(c, m)) = run_stream(&s, &q, &mut socket).await {
                let _ = send_json(
                    &mut socket,
                    &serde_json::json!({"type": "error", "message": m}),
                )
                .await;
                let _ = socket
                    .send(Message::Close(Some(CloseFrame {
                        code: c,
                        reason: short_reason(&m).into(),
                    })))
                    .await;
            }
        })
}

/// Close frame reasons are limited to 123 bytes.
fn short_reason(m: &str) -> String {
    let mut end = m.len().min(120);
    while !m.is_char_boundary(end) {
        end -= 1;
    }
    m[..end].to_string()
}

async fn send_json(
    socket: &mut WebSocket,
    v: &serde_json::Value,
) -> std::result::Result<(), axum::Error> {
    socket.send(Message::Text(v.to_string().into())).await
}

/// Counts a stream as open while it lives.
struct OpenGuard<'a>(&'a Server);

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Relaxed);
        self.0.metrics.open_streams.fetch_sub(1, Relaxed);
    }
}

/// Tells the engine to forget a stream whose connection ends.
struct DropGuard<'a> {
    jobs: &'a crossbeam_channel::Sender<Job>,
    id: u64,
    armed: bool,
}

impl Drop for DropGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.jobs.send(Job::Drop { id: self.id });
        }
    }
}

/// The token of a snapshot: the bundle's name and the state, JSON, base64url.
#[derive(Serialize, Deserialize)]
struct Token {
    v: u32,
    bundle: String,
    state: StreamState,
}

/// Encodes a stream's state for `{"type":"snapshot"}`.
pub fn encode_token(bundle: &str, state: StreamState) -> String {
    let json = serde_json::to_vec(&Token {
        v: 1,
        bundle: bundle.to_string(),
        state,
    })
    .unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

/// Decodes a token of `bundle`.
///
/// # Errors
/// [`Error::InvalidConfig`] (key `resume`) naming what is wrong.
pub fn decode_token(bundle: &str, token: &str) -> Result<StreamState> {
    let bad = |m: String| Error::config("resume", m);
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim())
        .map_err(|e| bad(format!("not a snapshot token (base64url): {e}")))?;
    let t: Token =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("not a snapshot token: {e}")))?;
    if t.v != 1 {
        return Err(bad(format!("token version {} (this server reads 1)", t.v)));
    }
    if t.bundle != bundle {
        return Err(bad(format!(
            "the token is of bundle `{}`, not `{bundle}`",
            t.bundle
        )));
    }
    Ok(t.state)
}

async fn run_stream(
    s: &Arc<Server>,
    q: &StreamQuery,
    socket: &mut WebSocket,
) -> std::result::Result<(), Refusal> {
    let (rec, wire) = check_query(s, q)?;
    let resume = match &q.resume {
        Some(t) => Some(Box::new(
            decode_token(&q.bundle, t).map_err(|e| Refusal(code::POLICY, e.to_string()))?,
        )),
        None => None,
    };
    let going = *s.shutdown.borrow();
    if going {
        return Err(Refusal(
            code::GOING_AWAY,
            "the server is shutting down".into(),
        ));
    }
    // The stream limit.
    let n = s.open.fetch_add(1, Relaxed);
    s.metrics.open_streams.fetch_add(1, Relaxed);
    let _open = OpenGuard(s);
    if n >= s.limits.max_streams {
        s.metrics.refused_total.fetch_add(1, Relaxed);
        return Err(Refusal(
            code::TRY_LATER,
            format!(
                "server full: {} streams open (--max-streams); try again later",
                s.limits.max_streams
            ),
        ));
    }
    s.metrics.streams_total.fetch_add(1, Relaxed);
    let served = &s.bundles[&q.bundle];
    let id = s.next_id.fetch_add(1, Relaxed);
    // Streams are dealt to the bundle's engines in turn.
    let jobs = &served.shards[(id as usize) % served.shards.len()];
    let (reply_tx, mut replies) = mpsc::unbounded_channel::<Reply>();
    let internal = |_| {
        Refusal(
            code::INTERNAL,
            "the engine of this bundle has stopped".into(),
        )
    };
    jobs.send(Job::Open {
        id,
        resume,
        posteriors: q.emit.as_deref() == Some("posteriors"),
        reply: reply_tx,
    })
    .map_err(internal)?;
    let mut guard = DropGuard {
        jobs,
        id,
        armed: true,
    };
    match replies.recv().await {
        Some(Reply::Opened(Ok(()))) => {}
        Some(Reply::Opened(Err(e))) => return Err(Refusal(code::POLICY, e.to_string())),
        _ => {
            return Err(Refusal(
                code::INTERNAL,
                "the engine did not open the stream".into(),
            ));
        }
    }
    let permits = Arc::new(Semaphore::new(s.limits.queue_chunks.max(1)));
    let labels = rec.labels().to_vec();
    let (period, offset) = (rec.frame_period_s(), rec.time_offset_s());
    let stop = stopped(s.shutdown.clone());
    tokio::pin!(stop);
    let mut ended = false;
    let mut frames = 0u64;
    let idle = s.limits.idle_timeout;
    let mut last_input = Instant::now();
    loop {
        tokio::select! {
            reply = replies.recv() => {
                let Some(reply) = reply else {
                    return Err(Refusal(code::INTERNAL, "the engine of this bundle has stopped".into()));
                };
                match reply {
                    Reply::Output { events, first_row, posteriors, taken } => {
                        for e in &events {
                            let v = serde_json::json!({
                                "type": "event", "label": e.label,
                                "start_s": round_time(e.start_s), "end_s": round_time(e.end_s), "score": e.score,
                            });
                            if send_json(socket, &v).await.is_err() { return Ok(()); }
                        }
                        if !posteriors.is_empty() {
                            let n = labels.len().max(1);
                            let rows = posteriors.len() / n;
                            let t: Vec<f64> = (0..rows).map(|i| round_time(offset + (first_row + i as u64) as f64 * period)).collect();
                            let scores: Vec<&[f32]> = posteriors.chunks_exact(n).collect();
                            let v = serde_json::json!({"type": "posteriors", "t_s": t, "scores": scores, "samples": taken});
                            if send_json(socket, &v).await.is_err() { return Ok(()); }
                        }
                    }
                    Reply::Snapshot(Ok(st)) => {
                        let v = serde_json::json!({"type": "snapshot", "token": encode_token(&q.bundle, *st)});
                        if send_json(socket, &v).await.is_err() { return Ok(()); }
                    }
                    Reply::Snapshot(Err(e)) => {
                        let v = serde_json::json!({"type": "error", "message": e.to_string()});
                        if send_json(socket, &v).await.is_err() { return Ok(()); }
                    }
                    Reply::Done { samples } => {
                        guard.armed = false;
                        let v = serde_json::json!({"type": "done", "samples": samples, "dropped": 0});
                        let _ = send_json(socket, &v).await;
                        let going = *s.shutdown.borrow();
                        let reason = if going { code::GOING_AWAY } else { code::NORMAL };
                        let _ = socket.send(Message::Close(Some(CloseFrame { code: reason, reason: "done".into() }))).await;
                        return Ok(());
                    }
                    Reply::Failed(m) => {
                        guard.armed = false;
                        return Err(Refusal(code::INTERNAL, m));
                    }
                    Reply::Opened(_) => {}
                }
            }
            () = &mut stop, if !ended => {
                ended = true;
                jobs.send(Job::End { id }).map_err(internal)?;
            }
            msg = tokio::time::timeout(idle.saturating_sub(last_input.elapsed()), socket.recv()), if !ended => {
                let msg = match msg {
                    Err(_) => return Err(Refusal(code::POLICY, format!("no data for {} s: closing the stream", idle.as_secs_f64()))),
                    Ok(None) | Ok(Some(Err(_))) => return Ok(()),
                    Ok(Some(Ok(m))) => m,
                };
                last_input = Instant::now();
                match msg {
                    Message::Binary(b) => {
                        let at = Instant::now();
                        let job = decode(&b, wire, frames, id, at, &permits).await?;
                        if let Job::Frame { .. } = job { frames += 1; }
                        let n = match &job { Job::Audio { samples, .. } => samples.len() as u64, _ => 1 };
                        s.metrics.samples_total.fetch_add(n, Relaxed);
                        jobs.send(job).map_err(internal)?;
                    }
                    Message::Text(t) => {
                        match parse_control(t.as_str()).map_err(|m| Refusal(code::UNSUPPORTED, m))? {
                            Control::End => {
                                ended = true;
                                jobs.send(Job::End { id }).map_err(internal)?;
                            }
                            Control::Snapshot => jobs.send(Job::Snapshot { id }).map_err(internal)?,
                        }
                    }
                    Message::Close(_) => return Ok(()),
                    Message::Ping(_) | Message::Pong(_) => {}
                }
            }
        }
    }
}

/// A client's text message on a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// `{"type":"end"}`: no more input; final events, then `done`.
    End,
    /// `{"type":"snapshot"}`: send the stream's state as a token.
    Snapshot,
}

/// Parses a client's text message.
///
/// # Errors
/// What is wrong with it, as the error message the client gets.
pub fn parse_control(text: &str) -> std::result::Result<Control, String> {
    #[derive(Deserialize)]
    struct C {
        #[serde(rename = "type")]
        kind: String,
    }
    let c: C = serde_json::from_str(text)
        .map_err(|e| format!("text messages are JSON like {{\"type\":\"end\"}}: {e}"))?;
    match c.kind.as_str() {
        "end" => Ok(Control::End),
        "snapshot" => Ok(Control::Snapshot),
        other => Err(format!("unknown message type `{other}` (end, snapshot)")),
    }
}

/// Resolves when the server starts shutting down.
async fn stopped(mut rx: watch::Receiver<bool>) {
    if rx.wait_for(|s| *s).await.is_err() {
        // The server's sender is gone: never resolve.
        std::future::pending::<()>().await;
    }
}

fn round_time(t: f64) -> f64 {
    (t * 1e4).round() / 1e4
}

/// A binary message as a job; waits for room in the stream's queue.
async fn decode(
    b: &Bytes,
    wire: Wire,
    frames: u64,
    id: u64,
    at: Instant,
    permits: &Arc<Semaphore>,
) -> std::result::Result<Job, Refusal> {
    let bad = |m: String| Refusal(code::UNSUPPORTED, m);
    let pcm = |f| {
        crate::source::pcm::decode(f, b)
            .map(|x| (x, None))
            .map_err(|m| bad(format!("the message: {m}")))
    };
    let job = match wire {
        Wire::S16 => pcm(crate::source::pcm::PcmFormat::S16le)?,
        Wire::F32 => pcm(crate::source::pcm::PcmFormat::F32le)?,
        Wire::Rgb { width, height, fps } => {
            let want = width as usize * height as usize * 3;
            if b.len() != want {
                return Err(bad(format!(
                    "a {width}x{height} rgb24 frame is {want} bytes; this message has {}",
                    b.len()
                )));
            }
            let frame = Frame {
                index: frames,
                pts_s: frames as f64 / fps,
                width,
                height,
                rgb: b.to_vec(),
            };
            (Vec::new(), Some(Box::new(frame)))
        }
    };
    let permit = Arc::clone(permits)
        .acquire_owned()
        .await
        .map_err(|_| Refusal(code::INTERNAL, "stream queue closed".into()))?;
    Ok(match job {
        (_, Some(frame)) => Job::Frame {
            id,
            frame,
            at,
            permit,
        },
        (samples, None) => Job::Audio {
            id,
            samples,
            at,
            permit,
        },
    })
}

/// The query of `/v1/recognize`.
#[derive(Debug, Deserialize)]
pub struct RecognizeQuery {
    bundle: String,
    #[serde(default)]
    emit: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

async fn recognize(
    State(s): State<Arc<Server>>,
    Query(q): Query<RecognizeQuery>,
    body: Bytes,
) -> Response {
    let Some(b) = s.bundles.get(&q.bundle) else {
        let msg = format!("no bundle `{}` here", q.bundle);
        return (
            StatusCode::NOT_FOUND,
            format!("{}\n", serde_json::json!({"error": msg})),
        )
            .into_response();
    };
    let emit = match q.emit.as_deref() {
        None => crate::sink::records::Emit::Events,
        Some(e) if let Some(emit) = crate::sink::records::Emit::parse(e) => emit,
        Some(e) => {
            let msg = format!("emit=`{e}`: events, posteriors or summary");
            return (
                StatusCode::BAD_REQUEST,
                format!("{}\n", serde_json::json!({"error": msg})),
            )
                .into_response();
        }
    };
    let rec = Arc::clone(&b.rec);
    let name = q.name.unwrap_or_else(|| "body".into());
    let r = tokio::task::spawn_blocking(move || recognize_file(&rec, &body, &name, emit)).await;
    match r {
        Ok((ok, text)) => (
            if ok {
                StatusCode::OK
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            },
            [(header::CONTENT_TYPE, "application/x-ndjson")],
            text,
        )
            .into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "{\"error\":\"processing panicked\"}\n",
        )
            .into_response(),
    }
}

/// Runs a whole file as `seqrec batch` does; returns (succeeded, JSON Lines).
fn recognize_file(
    rec: &Recognizer,
    body: &[u8],
    name: &str,
    emit: crate::sink::records::Emit,
) -> (bool, String) {
    let dir = std::env::temp_dir().join(format!("seqrec-serve-{}", std::process::id()));
    static N: AtomicU64 = AtomicU64::new(0);
    let path: PathBuf = dir.join(format!("body-{}", N.fetch_add(1, Relaxed)));
    let written = std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(&dir, e))
        .and_then(|()| std::fs::write(&path, body).map_err(|e| Error::io(&path, e)));
    if let Err(e) = written {
        return (
            false,
            crate::sink::records::error_line(name, &e.to_string()),
        );
    }
    let r = crate::sink::records::file_records(rec, &path, name, emit, 1, None);
    let _ = std::fs::remove_file(&path);
    r
}
