//! Live streams across workers: the producer side ([`Producer`]) and the
//! owner side (one worker at a time runs a stream, under a lease).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use async_nats::jetstream::{kv, stream};
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};

use super::{
    Cluster, END_HEADER, INDEX_HEADER, KIND_HEADER, SEQ_HEADER, check_name, header_u64, now_s,
    retry,
};
use crate::error::{Error, Result};
use crate::pipeline::Recognizer;
use crate::source::pcm::PcmFormat;

/// How long stream registrations, chunks and checkpoints are kept.
pub(crate) const KEEP: Duration = Duration::from_secs(86400);

/// A live stream's registration in `ns-streams`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StreamMeta {
    pub bundle: String,
    pub sample_rate: u32,
    /// `f32le` or `s16le`, mono.
    pub format: String,
    #[serde(default)]
    pub ended: bool,
    #[serde(default)]
    pub started_s: f64,
}

/// A live stream's checkpoint in `ns-checkpoints`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    /// [`crate::serve::encode_token`] of the stream's state after chunk `seq`.
    pub token: String,
    /// The producer's sequence number of the last chunk in the state.
    pub seq: u64,
    /// That chunk's sequence number in the `ns-live` stream.
    pub stream_seq: u64,
    /// Output records made up to it (all published).
    pub outputs: u64,
    /// Samples in the state.
    pub samples: u64,
}

/// Publishes one live stream's audio to the cluster.
#[derive(Debug)]
pub struct Producer {
    cl: Cluster,
    id: String,
    seq: u64,
}

impl Producer {
    /// Registers stream `id` of `bundle` (whose workers must be running) at
    /// `sample_rate` with f32 samples. An id whose earlier stream has ended is
    /// reused: its old chunks and outputs are purged first.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a bad id, a bundle no worker offers, a
    /// rate that is not the bundle's, or an id in use by a running stream;
    /// [`Error::Cluster`].
    pub async fn open(cl: &Cluster, id: &str, bundle: &str, sample_rate: u32) -> Result<Producer> {
        check_name("stream id", id)?;
        let info = cl.bundle_info(bundle).await?.ok_or_else(|| {
            Error::config(
                "bundle",
                format!(
                    "no worker offers `{bundle}` (start one: seqrec worker --bundle {bundle}=DIR)"
                ),
            )
        })?;
        if info.kind != "audio" {
            return Err(Error::config(
                "bundle",
                format!(
                    "`{bundle}` is a {} bundle; live streams on the cluster are audio",
                    info.kind
                ),
            ));
        }
        if info.sample_rate != sample_rate {
            return Err(Error::config(
                "sample_rate",
                format!(
                    "{sample_rate} Hz, but `{bundle}` takes {} Hz: resample first",
                    info.sample_rate
                ),
            ));
        }
        let live = cl.live_stream().await?;
        let out = cl.out_stream().await?;
        let streams = cl.bucket("streams", KEEP).await?;
        let meta = StreamMeta {
            bundle: bundle.into(),
            sample_rate,
            format: "f32le".into(),
            ended: false,
            started_s: now_s(),
        };
        let v: bytes::Bytes = serde_json::to_vec(&meta).unwrap_or_default().into();
        match streams.create(id, v.clone()).await {
            Ok(_) => {}
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                let old = streams
                    .entry(id)
                    .await
                    .map_err(|e| Error::cluster("reading ns-streams", e))?;
                let Some(old) = old else {
                    return Err(Error::cluster(
                        "registering the stream",
                        "it vanished; try again",
                    ));
                };
                let m: Option<StreamMeta> = serde_json::from_slice(&old.value).ok();
                if !m.is_some_and(|m| m.ended) {
                    return Err(Error::config(
                        "stream id",
                        format!(
                            "`{id}` is a running stream; pick another id (or wait until it ends)"
                        ),
                    ));
                }
                // An ended stream of that name: start afresh.
                let _ = live.purge().filter(cl.layout.chunk_subject(id)).await;
                let _ = out.purge().filter(cl.layout.out_subject(id)).await;
                if let Ok(ck) = cl.bucket("checkpoints", KEEP).await {
                    let _ = ck.purge(id).await;
                }
                streams
                    .update(id, v, old.revision)
                    .await
                    .map_err(|e| Error::cluster("registering the stream", e))?;
            }
            Err(e) => return Err(Error::cluster("registering the stream", e)),
        }
        Ok(Producer {
            cl: cl.clone(),
            id: id.into(),
            seq: 0,
        })
    }

    /// The stream's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Chunks sent so far.
    pub fn chunks(&self) -> u64 {
        self.seq
    }

    async fn publish(&mut self, payload: bytes::Bytes, end: bool) -> Result<()> {
        let subject = self.cl.layout.chunk_subject(&self.id);
        let seq = self.seq;
        let msg_id = format!("{}:{seq}", self.id);
        let mut h = async_nats::HeaderMap::new();
        h.insert(SEQ_HEADER, seq.to_string().as_str());
        h.insert("Nats-Msg-Id", msg_id.as_str());
        if end {
            h.insert(END_HEADER, "1");
        }
        // One chunk at a time, each stored before the next: a chunk whose
        // store failed (a node died, its stream is electing a leader) is sent
        // again under the same id (stored once), and the order holds.
        self.cl
            .publish_stored("sending a chunk", subject, h, payload)
            .await?;
        self.seq += 1;
        Ok(())
    }

    /// Sends samples (mono, at the stream's rate) as the next chunk.
    ///
    /// # Errors
    /// [`Error::Cluster`] when the chunk cannot be stored.
    pub async fn send(&mut self, samples: &[f32]) -> Result<()> {
        let mut b = Vec::with_capacity(samples.len() * 4);
        for s in samples {
            b.extend_from_slice(&s.to_le_bytes());
        }
        self.publish(b.into(), false).await
    }

    /// Sends a chunk exactly as given (for tests of malformed input, and
    /// producers that already hold f32le bytes).
    ///
    /// # Errors
    /// [`Error::Cluster`].
    pub async fn send_raw(&mut self, bytes: Vec<u8>) -> Result<()> {
        self.publish(bytes.into(), false).await
    }

    /// Ends the stream: its owner finishes it (final events, then `done`).
    ///
    /// # Errors
    /// [`Error::Cluster`].
    pub async fn end(&mut self) -> Result<()> {
        self.publish(bytes::Bytes::new(), true).await
    }

    /// The stream's outputs from the first, as workers publish them.
    ///
    /// # Errors
    /// [`Error::Cluster`].
    pub async fn outputs(&self) -> Result<impl Stream<Item = Result<Output>> + use<>> {
        follow(&self.cl, &self.id).await
    }
}

/// One output record of a live stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// Its index among the stream's outputs, from 0.
    pub index: u64,
    /// `event`, `error` or `done`.
    pub kind: String,
    /// The record, one JSON object: an event or error as `seqrec batch`
    /// writes them (`file` = the stream id), or `{"file","done","samples"}`.
    pub record: String,
}

/// Follows stream `id`'s outputs from the first (each index once).
///
/// # Errors
/// [`Error::Cluster`].
pub async fn follow(cl: &Cluster, id: &str) -> Result<impl Stream<Item = Result<Output>> + use<>> {
    let out = cl.out_stream().await?;
    let subject = cl.layout.out_subject(id);
    let c = retry("following the outputs", || {
        let (out, subject) = (out.clone(), subject.clone());
        async move {
            out.create_consumer(pull::OrderedConfig {
                filter_subject: subject,
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            })
            .await
        }
    })
    .await?;
    let msgs = c
        .messages()
        .await
        .map_err(|e| Error::cluster("following the outputs", e))?;
    let mut next = 0u64;
    Ok(msgs.filter_map(move |m| {
        let r = match m {
            Err(e) => Some(Err(Error::cluster("following the outputs", e))),
            Ok(m) => {
                let index = header_u64(m.headers.as_ref(), INDEX_HEADER).unwrap_or(u64::MAX);
                if index < next {
                    None
                } else {
                    next = index + 1;
                    let kind = m
                        .headers
                        .as_ref()
                        .and_then(|h| h.get(KIND_HEADER))
                        .map_or("event".to_string(), |v| v.as_str().to_string());
                    Some(Ok(Output {
                        index,
                        kind,
                        record: String::from_utf8_lossy(&m.payload).into_owned(),
                    }))
                }
            }
        };
        std::future::ready(r)
    }))
}

/// Samples of a chunk, or why it is not one.
fn decode_chunk(format: &str, b: &[u8]) -> std::result::Result<Vec<f32>, String> {
    let f = PcmFormat::parse(format)
        .ok_or_else(|| format!("sample format `{format}`: f32le or s16le"))?;
    crate::source::pcm::decode(f, b)
}

/// A worker's side of one stream it holds the lease of.
pub(crate) struct Owner {
    pub cl: Cluster,
    pub rec: Arc<Recognizer>,
    pub id: String,
    pub meta: StreamMeta,
    pub worker: String,
    pub leases: kv::Store,
    pub lease: Duration,
    pub checkpoints: kv::Store,
    pub streams: kv::Store,
    pub every: u64,
    pub idle: Duration,
    pub verbose: bool,
    /// Set when the worker shuts down: checkpoint and hand the stream back.
    pub stop: tokio::sync::watch::Receiver<bool>,
}

/// How an owner's run ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    /// The stream ended (or failed) and is closed.
    Done,
    /// Another worker holds the lease now.
    Lost,
    /// The worker is shutting down; the stream is checkpointed and free.
    HandedBack,
}

impl Owner {
    /// Runs the stream from its checkpoint to its end, or until the lease is
    /// lost or the worker stops.
    pub(crate) async fn run(mut self, rev: u64) -> Result<Ended> {
        let t0 = Instant::now();
        // Keep the lease: compare-and-set renewals four times per lease.
        let lost = Arc::new(AtomicBool::new(false));
        let rev = Arc::new(std::sync::Mutex::new(rev));
        let renew = {
            let (leases, id, me) = (self.leases.clone(), self.id.clone(), self.worker.clone());
            let (lost, rev, lease) = (Arc::clone(&lost), Arc::clone(&rev), self.lease);
            tokio::spawn(async move {
                let mut last_ok = Instant::now();
                loop {
                    tokio::time::sleep(lease / 4).await;
                    let r = *rev.lock().unwrap_or_else(|e| e.into_inner());
                    match leases.update(&id, me.clone().into(), r).await {
                        Ok(n) => {
                            *rev.lock().unwrap_or_else(|e| e.into_inner()) = n;
                            last_ok = Instant::now();
                        }
                        Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => break,
                        Err(_) if last_ok.elapsed() >= lease * 3 / 4 => break,
                        Err(_) => {}
                    }
                }
                lost.store(true, Ordering::SeqCst);
            })
        };
        let r = self.stream_on(&lost, t0).await;
        renew.abort();
        let r = match r {
            Ok(e) => e,
            Err(e) => {
                // The cluster failed us for longer than retries cover: leave
                // the lease to expire; another worker goes on from the
                // checkpoint.
                eprintln!("worker {}: stream {}: {e}", self.worker, self.id);
                return Err(e);
            }
        };
        if r != Ended::Lost {
            let last = *rev.lock().unwrap_or_else(|e| e.into_inner());
            let _ = self
                .leases
                .delete_expect_revision(&self.id, Some(last))
                .await;
        }
        Ok(r)
    }

    async fn stream_on(&mut self, lost: &AtomicBool, t0: Instant) -> Result<Ended> {
        let live = self.cl.live_stream().await?;
        let out = self.cl.out_stream().await?;
        let bundle = self.meta.bundle.clone();
        let ck: Option<Checkpoint> = retry("reading the checkpoint", || {
            let (c, id) = (self.checkpoints.clone(), self.id.clone());
            async move { c.get(id).await }
        })
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok());
        let rec = Arc::clone(&self.rec);
        let mut proc = Some(rec.stream_with_threads(1)?);
        if let (Some(c), Some(p)) = (&ck, proc.as_mut()) {
            p.restore(&crate::serve::decode_token(&bundle, &c.token)?)?;
        }
        let mut outputs = ck.as_ref().map_or(0, |c| c.outputs);
        let mut samples = ck.as_ref().map_or(0, |c| c.samples);
        let mut last_seq: Option<u64> = ck.as_ref().map(|c| c.seq);
        let mut stream_seq = ck.as_ref().map_or(0, |c| c.stream_seq);
        // Outputs already on the stream (the previous owner published past
        // its checkpoint before it died): not published again.
        let out_subject = self.cl.layout.out_subject(&self.id);
        let published = retry("reading the last output", || {
            let (out, s) = (out.clone(), out_subject.clone());
            async move {
                match out.get_last_raw_message_by_subject(&s).await {
                    Ok(m) => Ok(header_u64(Some(&m.headers), INDEX_HEADER).map_or(0, |i| i + 1)),
                    Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(0),
                    Err(e) => Err(e),
                }
            }
        })
        .await?;
        if self.verbose {
            eprintln!(
                "worker {}: took stream {} at {} (outputs {outputs}, {published} already published) in {:.3} s",
                self.worker,
                self.id,
                last_seq.map_or("its start".into(), |s| format!("chunk {s}")),
                t0.elapsed().as_secs_f64()
            );
        }
        let mut msgs = self.chunks(&live, stream_seq + 1).await?;
        let mut since_ck = 0u64;
        let format = self.meta.format.clone();
        let (mut caught_up, mut replayed) = (false, 0u64);
        loop {
            if lost.load(Ordering::SeqCst) {
                return Ok(Ended::Lost);
            }
            let next = tokio::select! {
                n = tokio::time::timeout(self.idle, msgs.next()) => n,
                _ = self.stop.changed() => {
                    // Shutting down: checkpoint where we are and let go.
                    let state = proc.as_ref().map(|p| p.snapshot()).transpose()?;
                    if let Some(st) = state {
                        self.checkpoint(st, last_seq, stream_seq, outputs, samples).await?;
                    }
                    return Ok(Ended::HandedBack);
                }
            };
            let m = match next {
                Err(_) => {
                    // The producer went silent: close the stream.
                    let msg = format!(
                        "no chunk for {:.0} s: the stream is closed",
                        self.idle.as_secs_f64()
                    );
                    let lines = vec![("error", error_record(&self.id, &msg))];
                    self.publish(&mut outputs, published, lines, lost).await?;
                    return self.close(&mut outputs, published, samples, lost).await;
                }
                Ok(Some(Ok(m))) => m,
                // The consumer broke (its node died): again from the next chunk.
                Ok(_) => {
                    msgs = self.chunks(&live, stream_seq + 1).await?;
                    continue;
                }
            };
            let (sseq, pending) = m
                .info()
                .map_or((stream_seq + 1, 0), |i| (i.stream_sequence, i.pending));
            if pending == 0 && !caught_up {
                caught_up = true;
                if self.verbose {
                    eprintln!(
                        "worker {}: caught up with stream {} after {replayed} chunks, {:.3} s after taking it",
                        self.worker,
                        self.id,
                        t0.elapsed().as_secs_f64()
                    );
                }
            }
            replayed += 1;
            let Some(seq) = header_u64(m.headers.as_ref(), SEQ_HEADER) else {
                let lines = vec![(
                    "error",
                    error_record(
                        &self.id,
                        &format!(
                            "a chunk without a {SEQ_HEADER} header (stream sequence {sseq}): skipped"
                        ),
                    ),
                )];
                self.publish(&mut outputs, published, lines, lost).await?;
                stream_seq = sseq;
                continue;
            };
            if last_seq.is_some_and(|l| seq <= l) {
                stream_seq = sseq;
                continue; // a duplicate of a chunk already in the state
            }
            let end = m
                .headers
                .as_ref()
                .is_some_and(|h| h.get(END_HEADER).is_some());
            let mut lines = Vec::new();
            let x = match decode_chunk(&format, &m.payload) {
                Ok(x) => x,
                Err(why) => {
                    let msg = format!("chunk {seq}: {why}: skipped");
                    lines.push(("error", error_record(&self.id, &msg)));
                    Vec::new()
                }
            };
            if !x.is_empty() || end {
                samples += x.len() as u64;
                let mut p = proc.take().expect("processor present");
                let id = self.id.clone();
                let (p, r) = tokio::task::spawn_blocking(move || {
                    let mut o = crate::pipeline::Output::default();
                    let mut r = p.push(&x, &mut o);
                    if r.is_ok() && end {
                        r = p.finish(&mut o);
                    }
                    let l: Vec<_> = o
                        .events
                        .iter()
                        .map(|e| ("event", event_record(&id, e)))
                        .collect();
                    (p, r.map(|()| l))
                })
                .await
                .map_err(|_| Error::cluster("processing a chunk", "the worker thread panicked"))?;
                proc = Some(p);
                match r {
                    Ok(l) => lines.extend(l),
                    Err(e) => {
                        // A failure of the stages: say so and close the
                        // stream (every worker would fail on it in turn).
                        lines.push(("error", error_record(&self.id, &e.to_string())));
                        self.publish(&mut outputs, published, lines, lost).await?;
                        return self.close(&mut outputs, published, samples, lost).await;
                    }
                }
            }
            self.publish(&mut outputs, published, lines, lost).await?;
            last_seq = Some(seq);
            stream_seq = sseq;
            if end {
                return self.close(&mut outputs, published, samples, lost).await;
            }
            since_ck += 1;
            if since_ck >= self.every {
                since_ck = 0;
                let state = proc.as_ref().map(|p| p.snapshot()).transpose()?;
                if let Some(st) = state {
                    self.checkpoint(st, last_seq, stream_seq, outputs, samples)
                        .await?;
                }
            }
        }
    }

    /// An ordered consumer of the stream's chunks from `start` (a stream sequence).
    async fn chunks(&self, live: &stream::Stream, start: u64) -> Result<pull::Ordered> {
        let subject = self.cl.layout.chunk_subject(&self.id);
        retry("reading the chunks", || {
            let (live, subject) = (live.clone(), subject.clone());
            async move {
                let c = live
                    .create_consumer(pull::OrderedConfig {
                        filter_subject: subject,
                        deliver_policy: DeliverPolicy::ByStartSequence {
                            start_sequence: start.max(1),
                        },
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| e.to_string())?;
                c.messages().await.map_err(|e| e.to_string())
            }
        })
        .await
    }

    /// Publishes records `outputs..`, skipping those under `published`
    /// (already on the stream), each stored before the next.
    async fn publish(
        &self,
        outputs: &mut u64,
        published: u64,
        lines: Vec<(&str, String)>,
        lost: &AtomicBool,
    ) -> Result<()> {
        let subject = self.cl.layout.out_subject(&self.id);
        for (kind, line) in lines {
            let k = *outputs;
            *outputs += 1;
            if k < published {
                continue;
            }
            if lost.load(Ordering::SeqCst) {
                return Ok(());
            }
            let msg_id = format!("{}:{k}", self.id);
            let mut h = async_nats::HeaderMap::new();
            h.insert(INDEX_HEADER, k.to_string().as_str());
            h.insert(KIND_HEADER, kind);
            // The same id from any owner: the stream keeps one copy.
            h.insert("Nats-Msg-Id", msg_id.as_str());
            self.cl
                .publish_stored("publishing an output", subject.clone(), h, line.into())
                .await?;
        }
        Ok(())
    }

    async fn checkpoint(
        &self,
        state: crate::pipeline::StreamState,
        seq: Option<u64>,
        stream_seq: u64,
        outputs: u64,
        samples: u64,
    ) -> Result<()> {
        let Some(seq) = seq else { return Ok(()) };
        let token = crate::serve::encode_token(&self.meta.bundle, state);
        let v = serde_json::to_vec(&Checkpoint {
            token,
            seq,
            stream_seq,
            outputs,
            samples,
        })
        .unwrap_or_default();
        retry("storing a checkpoint", || {
            let (c, id, v) = (self.checkpoints.clone(), self.id.clone(), v.clone());
            async move { c.put(id, v.into()).await }
        })
        .await?;
        Ok(())
    }

    /// `done`, the registration marked ended, the checkpoint dropped.
    async fn close(
        &self,
        outputs: &mut u64,
        published: u64,
        samples: u64,
        lost: &AtomicBool,
    ) -> Result<Ended> {
        let done =
            serde_json::json!({"file": self.id, "done": true, "samples": samples}).to_string();
        self.publish(outputs, published, vec![("done", done)], lost)
            .await?;
        if lost.load(Ordering::SeqCst) {
            return Ok(Ended::Lost);
        }
        let mut m = self.meta.clone();
        m.ended = true;
        let v = serde_json::to_vec(&m).unwrap_or_default();
        retry("marking the stream ended", || {
            let (s, id, v) = (self.streams.clone(), self.id.clone(), v.clone());
            async move { s.put(id, v.into()).await }
        })
        .await?;
        let _ = self.checkpoints.purge(&self.id).await;
        if self.verbose {
            eprintln!(
                "worker {}: stream {} ended ({samples} samples, {outputs} outputs)",
                self.worker, self.id
            );
        }
        Ok(Ended::Done)
    }
}

fn event_record(id: &str, e: &crate::decision::Event) -> String {
    let mut w = crate::sink::records::RecordWriter::new(
        Vec::new(),
        crate::sink::records::Format::Jsonl,
        crate::sink::records::Emit::Events,
        Vec::new(),
    );
    let _ = w.events(id, std::slice::from_ref(e));
    let mut s = String::from_utf8_lossy(&w.into_inner().unwrap_or_default()).into_owned();
    s.truncate(s.trim_end().len());
    s
}

fn error_record(id: &str, msg: &str) -> String {
    let mut s = crate::sink::records::error_line(id, msg);
    s.truncate(s.trim_end().len());
    s
}
