//! The server's compute side: one engine thread per bundle owns every
//! stream of that bundle and runs their pending input in rounds.
//!
//! A round gathers what streams have sent (waiting at most `batch_wait` for
//! more once the first piece is in, and taking at most `max_batch` streams),
//! then runs each stage once for all of them (`CrossBatch`):
//!
//! ```text
//!  stream 1 ─ front end ─┐                      ┌─ steps ─┐            ┌─ decision ─▶ replies
//!  stream 2 ─ front end ─┼─ windows ─▶ one ONNX ─┼─ steps ─┼─ one native ┼─ decision ─▶
//!  stream 3 ─ front end ─┘   Runtime call        └─ steps ─┘  step / row └─ decision ─▶
//! ```
//!
//! Front end and decision are per stream (cheap, and their state is the
//! stream's own). The embedder's windows of all streams go through one
//! session in one call; the native recurrent stage steps all streams that
//! have a step ready in one matrix product per layer
//! ([`NativeBatch::step_first`]): streams are sorted by how many steps they
//! have, so the ones still stepping are always a prefix of the batch. Each
//! stream's recurrent state is copied into its row before the round and back
//! after it ([`NativeBatch::exchange`]), so a stream owns its state between
//! rounds and can be snapshotted, moved or dropped on its own. Row results
//! are bit-identical to the stream stepped alone (tested).
//!
//! Jobs of one stream are handled in order; a round takes at most one piece
//! per stream (a stream's audio messages waiting together are joined into
//! one piece; a video stream gives one frame per round because pose tracking
//! crops each frame where the previous one found the person).

use std::collections::{HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use tokio::sync::OwnedSemaphorePermit;
use tokio::sync::mpsc::UnboundedSender;

use crate::decision::Event;
use crate::embed::EmbedRunner;
use crate::pipeline::{Output, Piece, Recognizer, StreamProcessor, StreamState};
use crate::sequence::{NativeBatch, OrtModel, SequenceModel};
use crate::source::video::Frame;
use crate::{Error, Result};

use super::Metrics;

/// How an engine batches.
#[derive(Debug, Clone, Copy)]
pub struct BatchPolicy {
    /// Run the stages of many streams together (off: each stream's piece
    /// runs alone, one call per stream and stage).
    pub enabled: bool,
    /// Longest wait for more streams once a round has its first piece.
    pub wait: Duration,
    /// Most streams per round.
    pub max_batch: usize,
    /// ONNX Runtime threads of each engine's embedder session.
    pub threads: usize,
    /// Engine threads per bundle, each owning a share of the streams (one
    /// engine is one core at most).
    pub engines: usize,
}

/// What a stream's connection sends to the engine.
pub(crate) enum Job {
    /// A new stream (optionally continuing a snapshot).
    Open {
        id: u64,
        resume: Option<Box<StreamState>>,
        posteriors: bool,
        reply: UnboundedSender<Reply>,
    },
    /// Samples (mono, the bundle's rate). The permit bounds the stream's
    /// queue: it returns when the samples have been processed.
    Audio {
        id: u64,
        samples: Vec<f32>,
        at: Instant,
        permit: OwnedSemaphorePermit,
    },
    /// One video frame.
    Frame {
        id: u64,
        frame: Box<Frame>,
        at: Instant,
        permit: OwnedSemaphorePermit,
    },
    /// The stream's state, as a token.
    Snapshot { id: u64 },
    /// The input is over: close open events, reply `Done`, forget the stream.
    End { id: u64 },
    /// The connection went away: forget the stream.
    Drop { id: u64 },
}

impl Job {
    fn id(&self) -> u64 {
        match self {
            Job::Open { id, .. }
            | Job::Audio { id, .. }
            | Job::Frame { id, .. }
            | Job::Snapshot { id }
            | Job::End { id }
            | Job::Drop { id } => *id,
        }
    }
}

/// What the engine sends back to a stream's connection.
#[derive(Debug)]
pub(crate) enum Reply {
    /// The stream is open (or could not be opened).
    Opened(Result<()>),
    /// Output of one piece: closed events and, when asked for, posterior
    /// rows starting at row `first_row`.
    Output {
        events: Vec<Event>,
        first_row: u64,
        posteriors: Vec<f32>,
        /// Samples (video: frames) the stream has taken up to this piece.
        taken: u64,
    },
    /// The state token.
    Snapshot(Result<Box<StreamState>>),
    /// After `End`: samples (or frames) taken in all.
    Done { samples: u64 },
    /// The stream failed and is gone.
    Failed(String),
}

/// One stream as the engine holds it.
struct Slot {
    proc: Box<StreamProcessor>,
    reply: UnboundedSender<Reply>,
    posteriors: bool,
    /// Posterior rows sent so far.
    rows: u64,
    /// Frames taken (video streams; audio counts samples in the processor).
    frames: u64,
}

/// Runs the engine of `rec` on the calling thread until every sender of
/// `jobs` is gone.
pub(crate) fn run(
    rec: Arc<Recognizer>,
    jobs: Receiver<Job>,
    policy: BatchPolicy,
    metrics: Arc<Metrics>,
) {
    let mut cross = match CrossBatch::new(&rec, policy) {
        Ok(c) => c,
        Err(e) => {
            // Every stream will be refused with this message.
            for job in jobs {
                if let Job::Open { reply, .. } = job {
                    let _ = reply.send(Reply::Opened(Err(Error::config(
                        "bundle",
                        format!("the server could not start this bundle: {e}"),
                    ))));
                }
            }
            return;
        }
    };
    let mut slots: HashMap<u64, Slot> = HashMap::new();
    let mut backlog: VecDeque<Job> = VecDeque::new();
    loop {
        // Gather a round.
        if backlog.is_empty() {
            match jobs.recv() {
                Ok(j) => backlog.push_back(j),
                Err(_) => return,
            }
        }
        let deadline = Instant::now() + policy.wait;
        loop {
            while let Ok(j) = jobs.try_recv() {
                backlog.push_back(j);
            }
            let streams = distinct_streams(&backlog);
            if !policy.enabled || streams >= policy.max_batch {
                break;
            }
            match jobs.recv_deadline(deadline) {
                Ok(j) => backlog.push_back(j),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        metrics
            .queue_depth
            .store(backlog.len() as u64, std::sync::atomic::Ordering::Relaxed);
        // One piece (or control job) per stream, in arrival order.
        let mut round: Vec<Job> = Vec::new();
        let mut taken: HashMap<u64, usize> = HashMap::new();
        let mut rest = VecDeque::new();
        for job in backlog.drain(..) {
            let id = job.id();
            match (taken.get(&id), job) {
                (None, job) => {
                    taken.insert(id, round.len());
                    round.push(job);
                }
                // Audio right behind audio of the same stream joins it.
                (
                    Some(&k),
                    Job::Audio {
                        samples, permit, ..
                    },
                ) if matches!(round[k], Job::Audio { .. })
                    && rest.iter().all(|j: &Job| j.id() != id) =>
                {
                    if let Job::Audio {
                        samples: s,
                        permit: p,
                        ..
                    } = &mut round[k]
                    {
                        s.extend_from_slice(&samples);
                        p.merge(permit);
                    }
                }
                (Some(_), job) => rest.push_back(job),
            }
            if round.len() >= policy.max_batch.max(1) && !policy.enabled {
                // Batching off still processes one stream at a time below.
            }
        }
        backlog = rest;
        run_round(&rec, &mut cross, &mut slots, round, policy, &metrics);
    }
}

fn distinct_streams(jobs: &VecDeque<Job>) -> usize {
    let mut ids: Vec<u64> = jobs.iter().map(Job::id).collect();
    ids.sort_unstable();
    ids.dedup();
    ids.len()
}

/// Runs one round: control jobs at once, pieces through the stages.
fn run_round(
    rec: &Recognizer,
    cross: &mut CrossBatch,
    slots: &mut HashMap<u64, Slot>,
    round: Vec<Job>,
    policy: BatchPolicy,
    metrics: &Metrics,
) {
    use std::sync::atomic::Ordering::Relaxed;
    // (stream, piece data, end?, arrival, permit)
    let mut pieces: Vec<(
        u64,
        PieceData,
        Option<Instant>,
        Option<OwnedSemaphorePermit>,
    )> = Vec::new();
    for job in round {
        match job {
            Job::Open {
                id,
                resume,
                posteriors,
                reply,
            } => {
                let opened = catch_unwind(AssertUnwindSafe(|| -> Result<Box<StreamProcessor>> {
                    let mut p = Box::new(rec.shared_stream()?);
                    if let Some(st) = resume {
                        p.restore(&st)?;
                    }
                    Ok(p)
                }))
                .unwrap_or_else(|_| Err(Error::config("stream", "opening the stream panicked")));
                match opened {
                    Ok(proc) => {
                        let _ = reply.send(Reply::Opened(Ok(())));
                        slots.insert(
                            id,
                            Slot {
                                proc,
                                reply,
                                posteriors,
                                rows: 0,
                                frames: 0,
                            },
                        );
                    }
                    Err(e) => {
                        let _ = reply.send(Reply::Opened(Err(e)));
                    }
                }
            }
            Job::Snapshot { id } => {
                if let Some(s) = slots.get(&id) {
                    let _ = s
                        .reply
                        .send(Reply::Snapshot(s.proc.snapshot().map(Box::new)));
                }
            }
            Job::Drop { id } => {
                slots.remove(&id);
            }
            Job::Audio {
                id,
                samples,
                at,
                permit,
            } => pieces.push((id, PieceData::Audio(samples), Some(at), Some(permit))),
            Job::Frame {
                id,
                frame,
                at,
                permit,
            } => pieces.push((id, PieceData::Frame(frame), Some(at), Some(permit))),
            Job::End { id } => pieces.push((id, PieceData::End, None, None)),
        }
    }
    pieces.retain(|(id, ..)| slots.contains_key(id));
    if pieces.is_empty() {
        return;
    }
    // Take the streams out of the map for the round (each at most once).
    let mut work: Vec<Active> = Vec::with_capacity(pieces.len());
    let mut permits = Vec::with_capacity(pieces.len());
    for (id, data, at, permit) in pieces {
        if let Some(slot) = slots.remove(&id) {
            work.push(Active {
                id,
                slot,
                data,
                at,
                done: false,
            });
        }
        permits.extend(permit);
    }
    let per_chunk = if policy.enabled {
        policy.max_batch.max(1)
    } else {
        1
    };
    for chunk in work.chunks_mut(per_chunk) {
        let mut outs: Vec<Output> = chunk
            .iter()
            .map(|_| Output {
                keep_posteriors: true,
                ..Output::default()
            })
            .collect();
        let mut results: Vec<Result<()>> = Vec::with_capacity(chunk.len());
        {
            let mut items: Vec<Item<'_>> = chunk
                .iter_mut()
                .zip(outs.iter_mut())
                .map(|(Active { slot, data, .. }, out)| {
                    let end = matches!(data, PieceData::End);
                    Item {
                        proc: &mut slot.proc,
                        piece: match data {
                            PieceData::Audio(x) => Piece::Audio(x),
                            PieceData::Frame(f) => Piece::Frame(f),
                            PieceData::End => Piece::End,
                        },
                        end,
                        out,
                        result: Ok(()),
                        windows: 0,
                    }
                })
                .collect();
            let n = items.len();
            let ok = catch_unwind(AssertUnwindSafe(|| cross.run(&mut items))).is_ok();
            for it in items {
                results.push(if ok {
                    it.result
                } else {
                    Err(Error::config(
                        "stream",
                        "processing panicked (a bug: please report it with the input)",
                    ))
                });
            }
            metrics.observe_batch(n);
        }
        for ((a, out), res) in chunk.iter_mut().zip(outs).zip(results) {
            let Active {
                slot,
                data,
                at,
                done,
                ..
            } = a;
            let end = matches!(data, PieceData::End);
            if let PieceData::Frame(_) = data {
                slot.frames += 1;
            }
            let rows = (out.posteriors.len() / rec.labels().len().max(1)) as u64;
            metrics.steps.fetch_add(rows, Relaxed);
            match res {
                Ok(()) => {
                    let first_row = slot.rows;
                    slot.rows += rows;
                    let posteriors = if slot.posteriors {
                        out.posteriors
                    } else {
                        Vec::new()
                    };
                    if !out.events.is_empty() || !posteriors.is_empty() {
                        let taken = match rec.kind() {
                            crate::bundle::InputKind::Audio => slot.proc.stats().samples,
                            crate::bundle::InputKind::Video => slot.frames,
                        };
                        let _ = slot.reply.send(Reply::Output {
                            events: out.events,
                            first_row,
                            posteriors,
                            taken,
                        });
                    }
                    if let Some(at) = at {
                        metrics.observe_latency(at.elapsed());
                    }
                    if end {
                        let samples = match rec.kind() {
                            crate::bundle::InputKind::Audio => slot.proc.stats().samples,
                            crate::bundle::InputKind::Video => slot.frames,
                        };
                        let _ = slot.reply.send(Reply::Done { samples });
                        *done = true;
                    }
                }
                Err(e) => {
                    metrics.errors.fetch_add(1, Relaxed);
                    let _ = slot.reply.send(Reply::Failed(e.to_string()));
                    *done = true;
                }
            }
        }
    }
    drop(permits);
    for a in work {
        if !a.done {
            slots.insert(a.id, a.slot);
        }
    }
}

/// A stream taking part in a round.
struct Active {
    id: u64,
    slot: Slot,
    data: PieceData,
    /// When its input arrived (for the latency histogram).
    at: Option<Instant>,
    /// Ended or failed: forget it after the round.
    done: bool,
}

/// A piece's input, owned.
enum PieceData {
    Audio(Vec<f32>),
    Frame(Box<Frame>),
    End,
}

/// One stream's piece in a [`CrossBatch`] round.
pub(crate) struct Item<'a> {
    pub proc: &'a mut StreamProcessor,
    pub piece: Piece<'a>,
    /// The piece ends the stream.
    pub end: bool,
    pub out: &'a mut Output,
    pub result: Result<()>,
    /// Windows this item added (scratch).
    windows: usize,
}

/// Runs the stages of many streams' pieces with one model call per stage.
pub(crate) struct CrossBatch {
    runner: Option<EmbedRunner>,
    /// The native recurrent model's batch, when the bundle has one and
    /// batching is on.
    native: Option<NativeBatch>,
    /// The session every stream's ONNX Runtime recurrent stage runs on.
    ort: Option<ort::session::Session>,
    /// The ONNX Runtime model, when its streams can be stepped together
    /// ([`OrtModel::batch_axes`]) and batching is on.
    ort_model: Option<Arc<OrtModel>>,
    windows: Vec<f32>,
    embs: Vec<f32>,
    x: Vec<f32>,
    y: Vec<f32>,
    order: Vec<(usize, usize)>,
}

impl CrossBatch {
    pub(crate) fn new(rec: &Recognizer, policy: BatchPolicy) -> Result<CrossBatch> {
        let runner = match rec.embedder() {
            Some(e) => Some(e.runner(policy.threads)?),
            None => None,
        };
        let native = match (rec.model(), policy.enabled) {
            (SequenceModel::Native(m), true) => Some(NativeBatch::new(m, 0)),
            _ => None,
        };
        let ort = match rec.model() {
            SequenceModel::Ort(m) => Some(m.session()?),
            _ => None,
        };
        let ort_model = match (rec.model(), policy.enabled) {
            (SequenceModel::Ort(m), true) if m.batch_axes().is_some() => Some(Arc::clone(m)),
            _ => None,
        };
        Ok(CrossBatch {
            runner,
            native,
            ort,
            ort_model,
            windows: Vec::new(),
            embs: Vec::new(),
            x: Vec::new(),
            y: Vec::new(),
            order: Vec::new(),
        })
    }

    /// Runs `items` through every stage; each item's `result` says how its
    /// stream fared (one stream's error leaves the others alone).
    pub(crate) fn run(&mut self, items: &mut [Item<'_>]) {
        // 1. front ends, gathering the embedder's windows
        self.windows.clear();
        for it in items.iter_mut() {
            let start = self.windows.len();
            match it.proc.stage_front(it.piece, &mut self.windows, it.out) {
                Ok(n) => it.windows = n,
                Err(e) => {
                    self.windows.truncate(start);
                    it.windows = 0;
                    it.result = Err(e);
                }
            }
        }
        // 2. the embedder, once for all windows
        if let Some(runner) = self.runner.as_mut() {
            let total: usize = items.iter().map(|i| i.windows).sum();
            if let Some(per_window) = self.windows.len().checked_div(total) {
                self.embs.clear();
                match runner.run(&self.windows, &mut self.embs) {
                    Ok(()) => {
                        let d = self.embs.len() / total;
                        let mut off = 0;
                        for it in items.iter_mut().filter(|i| i.result.is_ok()) {
                            let n = it.windows * d;
                            it.proc.stage_embeddings(&self.embs[off..off + n], it.out);
                            off += n;
                        }
                    }
                    Err(_) => {
                        // Find whose windows fail: each stream alone.
                        let mut off = 0;
                        for it in items.iter_mut().filter(|i| i.result.is_ok()) {
                            let n = it.windows * per_window;
                            self.embs.clear();
                            match runner.run(&self.windows[off..off + n], &mut self.embs) {
                                Ok(()) => it.proc.stage_embeddings(&self.embs, it.out),
                                Err(e) => it.result = Err(e),
                            }
                            off += n;
                        }
                    }
                }
            } else {
                for it in items.iter_mut().filter(|i| i.result.is_ok()) {
                    it.proc.stage_embeddings(&[], it.out);
                }
            }
        }
        // 3. the recurrent stage
        match (self.native.as_mut(), self.ort.as_mut(), &self.ort_model) {
            (Some(nb), ..) => step_native(nb, items, &mut self.order, &mut self.x, &mut self.y),
            (None, Some(session), Some(model)) => {
                match step_ort(model, session, items, &mut self.x) {
                    Ok(()) => {}
                    // The first call is where a model that does not take a
                    // batch fails: no state has changed; alone from now on.
                    Err((0, _)) => {
                        self.ort_model = None;
                        for it in items.iter_mut().filter(|i| i.result.is_ok()) {
                            it.result = it.proc.stage_sequence(Some(session));
                        }
                    }
                    Err((_, e)) => {
                        let m = e.to_string();
                        for it in items.iter_mut().filter(|i| i.result.is_ok()) {
                            it.result = Err(Error::Shape(m.clone()));
                        }
                    }
                }
            }
            (None, session, _) => {
                let mut session = session;
                for it in items.iter_mut().filter(|i| i.result.is_ok()) {
                    it.result = it.proc.stage_sequence(session.as_deref_mut());
                }
            }
        }
        // 4. decisions
        for it in items.iter_mut() {
            if it.result.is_ok() {
                it.result = it.proc.stage_decide(it.end, it.out);
            } else {
                it.proc.reset();
            }
        }
    }
}

/// The native recurrent stage of every item in one batch: items sorted by
/// their number of steps (most first), state rows copied in, one
/// `step_first` per time step over the items still stepping, rows copied
/// back.
fn step_native(
    nb: &mut NativeBatch,
    items: &mut [Item<'_>],
    order: &mut Vec<(usize, usize)>,
    x: &mut Vec<f32>,
    y: &mut Vec<f32>,
) {
    order.clear();
    let mut input = 0;
    let mut output = 0;
    for (i, it) in items.iter_mut().enumerate() {
        if it.result.is_err() {
            continue;
        }
        it.proc.posteriors_mut().clear();
        let (steps, seq, _) = it.proc.steps_and_sequence();
        let Some(ns) = seq.as_native() else {
            it.result = it.proc.stage_sequence(None);
            continue;
        };
        input = ns.model().input_size();
        output = ns.model().output_size();
        let t = steps.len() / input.max(1);
        if t > 0 {
            order.push((i, t));
        }
    }
    if order.is_empty() {
        return;
    }
    order.sort_by_key(|&(_, t)| std::cmp::Reverse(t));
    nb.ensure_slots(order.len());
    for (slot, &(i, _)) in order.iter().enumerate() {
        let (_, seq, _) = items[i].proc.steps_and_sequence();
        if let Some(ns) = seq.as_native() {
            nb.exchange(slot, ns, true);
        }
    }
    let t_max = order[0].1;
    for r in 0..t_max {
        let n = order.iter().take_while(|&&(_, t)| t > r).count();
        x.clear();
        for &(i, _) in &order[..n] {
            let (steps, _, _) = items[i].proc.steps_and_sequence();
            x.extend_from_slice(&steps[r * input..(r + 1) * input]);
        }
        y.clear();
        y.resize(n * output, 0.0);
        if let Err(e) = nb.step_first(n, x, y) {
            for &(i, _) in &order[..n] {
                items[i].result = Err(Error::Shape(e.to_string()));
            }
            return;
        }
        for (k, &(i, _)) in order[..n].iter().enumerate() {
            items[i]
                .proc
                .posteriors_mut()
                .extend_from_slice(&y[k * output..(k + 1) * output]);
        }
    }
    for (slot, &(i, _)) in order.iter().enumerate() {
        let (_, seq, _) = items[i].proc.steps_and_sequence();
        if let Some(ns) = seq.as_native() {
            nb.exchange(slot, ns, false);
        }
    }
}

/// The ONNX Runtime recurrent stage of every item, one frame of each stream
/// per call ([`OrtModel::step_many`]), streams sorted by their number of
/// frames so that the ones still stepping are a prefix. An error says after
/// how many rounds it came (streams have advanced by that many frames).
fn step_ort(
    model: &OrtModel,
    session: &mut ort::session::Session,
    items: &mut [Item<'_>],
    x: &mut Vec<f32>,
) -> std::result::Result<(), (usize, Error)> {
    let input = model.input_size();
    let mut parts: Vec<(&[f32], &mut crate::sequence::OrtStream, &mut Vec<f32>)> = Vec::new();
    for it in items.iter_mut().filter(|i| i.result.is_ok()) {
        let (steps, seq, posts) = it.proc.steps_and_sequence();
        posts.clear();
        if let Some(o) = seq.as_ort()
            && !steps.is_empty()
        {
            parts.push((steps, o, posts));
        }
    }
    parts.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
    let t_max = parts.first().map_or(0, |p| p.0.len() / input);
    for r in 0..t_max {
        let n = parts.iter().take_while(|p| p.0.len() / input > r).count();
        x.clear();
        for p in &parts[..n] {
            x.extend_from_slice(&p.0[r * input..(r + 1) * input]);
        }
        let mut group: Vec<(&mut crate::sequence::OrtStream, &mut Vec<f32>)> = parts[..n]
            .iter_mut()
            .map(|p| (&mut *p.1, &mut *p.2))
            .collect();
        model
            .step_many(session, &mut group, x)
            .map_err(|e| (r, e))?;
    }
    Ok(())
}
