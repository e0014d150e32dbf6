//! The pipeline: the one module that knows every stage.
//!
//! ```text
//!  source ──chunks──▶ features ──frames──▶ [embedder] ──▶ sequence ──posteriors──▶ decision ──events──▶ sink
//! ```
//!
//! The embedder (a frozen CNN in ONNX Runtime, see [`crate::embed`]) is
//! optional for audio bundles and required for video ones; without it, each
//! feature frame is one step of the recurrent model. A video bundle with
//! `[pose]` puts the pose stage around it ([`crate::features::pose`]): the
//! frame is cropped where the previous frame's person was, the embedder (a
//! pose CNN) gives keypoints, and their features are the recurrent steps:
//!
//! ```text
//!  frame ─▶ crop (tracked) ─▶ pose CNN ─▶ keypoints (pixels) ─▶ pose features ─▶ sequence
//!              ▲                              │
//!              └──────── next frame's crop ◀──┘
//! ```
//!
//! A [`Recognizer`] holds what all streams share (the bundle, the feature
//! plan, the embedder and recurrent models); [`Recognizer::stream`] gives a
//! [`StreamProcessor`] that owns one stream's state in every stage. Batch
//! processing runs one processor per worker thread and resets it between
//! files ([`process_source`] does both); live capture runs one processor on
//! the chunks a capture thread sends.

use std::time::{Duration, Instant};

use crate::bundle::{Bundle, InputKind};
use crate::decision::{Decider, DecisionConfig, Event};
use crate::embed::{EmbedStream, Embedder};
use crate::features::FrontEnd;
use crate::features::pose::{self, PoseStage};
use crate::features::video::{Decimator, Preprocessor, VideoConfig};
use crate::sequence::{OrtSpec, SequenceModel, Stream};
use crate::source::AudioSource;
use crate::source::video::{Frame, VideoSource};
use crate::{Error, Result};

/// What every stream of one bundle shares. Cheap to share by reference
/// across threads (`Sync`).
#[derive(Debug)]
pub struct Recognizer {
    bundle: Bundle,
    front: Front,
    embedder: Option<Embedder>,
    model: SequenceModel,
    decision: DecisionConfig,
    frame_period_s: f64,
    time_offset_s: f64,
}

impl Recognizer {
    /// Builds the stages of `bundle`: an audio bundle with `[features]`,
    /// optionally `[embedder]`, and `[sequence]`, or a video bundle with
    /// `[video]`, `[embedder]` and `[sequence]`.
    ///
    /// # Errors
    /// [`Error::Bundle`] if a section is missing or the model does not fit the
    /// features or labels; model loading errors as [`SequenceModel::load`].
    pub fn new(bundle: Bundle) -> Result<Recognizer> {
        let manifest = bundle.dir.join(crate::bundle::MANIFEST);
        let err = |key: &str, reason: String| Error::Bundle {
            path: manifest.clone(),
            key: key.into(),
            reason,
        };
        let front = match bundle.kind {
            InputKind::Audio => Front::Audio(Box::new(FrontEnd::new(bundle.feature_config()?)?)),
            InputKind::Video => Front::Video(
                bundle
                    .video
                    .clone()
                    .ok_or_else(|| err("video", "a video bundle needs a [video] section".into()))?,
            ),
        };
        let frame_len = match &front {
            Front::Audio(f) => f.n_bins(),
            Front::Video(v) => v.tensor_len(),
        };
        let seq = bundle.sequence()?.clone();
        let embedder = match &bundle.embedder {
            Some(section) => Some(Embedder::load(section, frame_len).map_err(|e| match e {
                Error::InvalidConfig { name, reason } => err(&name, reason),
                other => other,
            })?),
            None => None,
        };
        if bundle.pose.is_some()
            && let Some(e) = &embedder
            && e.output_size() != pose::INPUT_LEN
        {
            return Err(err(
                "pose",
                format!(
                    "[pose] needs an embedder giving 17 keypoints x (y, x, score) = {} values per frame; {} gives {}",
                    pose::INPUT_LEN,
                    e.path().display(),
                    e.output_size()
                ),
            ));
        }
        let (step_size, step_what) = match (&embedder, &bundle.pose) {
            (Some(_), Some(_)) => (pose::FEATURE_LEN, "the pose stage gives"),
            (Some(e), None) => (e.output_size(), "the embedder gives"),
            (None, _) => (frame_len, "the features give"),
        };
        let spec = OrtSpec {
            state: seq.state.clone(),
            constants: seq.constants.clone(),
            input: seq.input.clone(),
            output: seq.output.clone(),
            input_size: Some(step_size),
            ..OrtSpec::default()
        };
        let model = match &seq.templates {
            Some(t) => SequenceModel::Templates(std::sync::Arc::new(
                crate::sequence::TemplateModel::load(
                    t,
                    seq.template_center.as_deref(),
                    seq.template_labels.clone(),
                    seq.template_scales.clone(),
                )
                .map_err(|e| match e {
                    Error::Shape(reason) => err("sequence.templates", reason),
                    other => other,
                })?,
            )),
            None => SequenceModel::load(&seq.onnx, seq.backend, &spec)?,
        };
        if model.per_call_output() {
            return Err(err(
                "sequence.onnx",
                "the model's output has no time axis (one row per call, e.g. an embedding of the chunk); a bundle needs one score row per step: run it with `seqrec sequence`".into(),
            ));
        }
        if model.input_size() != step_size {
            return Err(err(
                if seq.templates.is_some() {
                    "sequence.templates"
                } else {
                    "sequence.onnx"
                },
                format!(
                    "the model takes {} values per step but {step_what} {step_size}",
                    model.input_size(),
                ),
            ));
        }
        if model.output_size() != bundle.labels.len() {
            return Err(err(
                "labels",
                format!(
                    "{} labels, but the model outputs {} scores per frame",
                    bundle.labels.len(),
                    model.output_size()
                ),
            ));
        }
        // One decision frame per recurrent step: a feature frame, or an
        // embedder window, timed at its last feature frame (the latest audio
        // it has heard). See FeatureConfig::frame_time: the centre of the
        // analysis window, or the start of a raw frame's new samples.
        let (step, last) = embedder
            .as_ref()
            .map_or((1, 0), |e| (e.step(), e.window() - 1));
        let (frame_period_s, time_offset_s) = match &front {
            Front::Audio(f) => {
                let cfg = f.config();
                (
                    (step * cfg.hop_length()) as f64 / cfg.sample_rate as f64,
                    cfg.frame_time(last as u64),
                )
            }
            // Until a source says its rate (StreamProcessor::begin_video):
            // the bundle's target rate, else 30 fps.
            Front::Video(v) => (1.0 / v.fps.unwrap_or(30.0), 0.0),
        };
        let decision =
            DecisionConfig::from_section(&bundle.decision, &bundle.labels, frame_period_s)?;
        Ok(Recognizer {
            front,
            embedder,
            model,
            decision,
            frame_period_s,
            time_offset_s,
            bundle,
        })
    }

    /// The bundle.
    pub fn bundle(&self) -> &Bundle {
        &self.bundle
    }

    /// What the bundle consumes.
    pub fn kind(&self) -> InputKind {
        self.bundle.kind
    }

    /// Input sample rate (0 for a video bundle).
    pub fn sample_rate(&self) -> u32 {
        match &self.front {
            Front::Audio(f) => f.config().sample_rate,
            Front::Video(_) => 0,
        }
    }

    /// Video preprocessing settings (video bundles).
    pub fn video_config(&self) -> Option<&VideoConfig> {
        match &self.front {
            Front::Audio(_) => None,
            Front::Video(v) => Some(v),
        }
    }

    /// Labels, in score order.
    pub fn labels(&self) -> &[String] {
        &self.bundle.labels
    }

    /// Seconds between frames.
    pub fn frame_period_s(&self) -> f64 {
        self.frame_period_s
    }

    /// Time of frame 0 (the centre of its analysis window), seconds.
    pub fn time_offset_s(&self) -> f64 {
        self.time_offset_s
    }

    /// The recurrent model.
    pub fn model(&self) -> &SequenceModel {
        &self.model
    }

    /// The embedder, if the bundle has one.
    pub fn embedder(&self) -> Option<&Embedder> {
        self.embedder.as_ref()
    }

    /// The decision settings (per-label thresholds).
    pub fn decision(&self) -> &DecisionConfig {
        &self.decision
    }

    /// A new stream for batch processing, in the initial state of every
    /// stage: the embedder batches up to its `batch` windows per call
    /// (throughput). For the ort backend and for embedders this builds
    /// sessions: keep one processor per worker and
    /// [`StreamProcessor::reset`] it between inputs.
    ///
    /// # Errors
    /// As [`SequenceModel::stream`].
    pub fn stream(&self) -> Result<StreamProcessor> {
        self.stream_batched(self.batch(), 1)
    }

    /// Most embedder items per call in batch processing: 1 when the pose
    /// stage tracks (each frame's crop needs the previous frame's keypoints).
    fn batch(&self) -> usize {
        if self.bundle.pose.as_ref().is_some_and(|p| p.track) {
            return 1;
        }
        self.embedder.as_ref().map_or(1, Embedder::max_batch)
    }

    /// As [`Recognizer::stream`], with `threads` ONNX Runtime threads for
    /// the embedder (for fewer inputs than cores: a CNN is worth splitting
    /// across cores, a small recurrent model is not).
    ///
    /// # Errors
    /// As [`Recognizer::stream`].
    pub fn stream_with_threads(&self, threads: usize) -> Result<StreamProcessor> {
        self.stream_batched(self.batch(), threads)
    }

    /// A new stream for live input: every embedder window runs as soon as
    /// it is complete (latency).
    ///
    /// # Errors
    /// As [`Recognizer::stream`].
    pub fn live_stream(&self) -> Result<StreamProcessor> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        self.stream_batched(1, cores)
    }

    /// A stream for a server that runs the model calls of many streams
    /// together ([`crate::serve`]): its embedder only gathers windows (no
    /// session of its own), which [`crate::serve`] runs for all streams in
    /// one [`crate::embed::EmbedRunner`] call, and an ONNX Runtime recurrent
    /// stage runs on the server's session.
    ///
    /// # Errors
    /// As [`Recognizer::stream`].
    pub fn shared_stream(&self) -> Result<StreamProcessor> {
        self.stream_batched(1, 0)
    }

    /// `threads == 0`: an embedder without a session ([`Self::shared_stream`]).
    fn stream_batched(&self, max_batch: usize, threads: usize) -> Result<StreamProcessor> {
        let (front, frame_len) = match &self.front {
            Front::Audio(f) => (FrontState::Audio(f.fork()), f.n_bins()),
            Front::Video(v) => (
                FrontState::Video {
                    prep: Preprocessor::new(v)?,
                    decim: Decimator::new(v, 1.0 / self.frame_period_s),
                    cfg: v.clone(),
                    pose: self
                        .bundle
                        .pose
                        .as_ref()
                        .map(|p| Box::new(PoseStage::new(p))),
                },
                v.tensor_len(),
            ),
        };
        Ok(StreamProcessor {
            front,
            frame_len,
            section: self.bundle.decision.clone(),
            embed: match &self.embedder {
                Some(e) if threads == 0 => Some(e.windows_only()),
                Some(e) => Some(e.stream_with_threads(max_batch, threads)?),
                None => None,
            },
            embs: Vec::new(),
            pose_steps: Vec::new(),
            seq: if threads == 0 {
                self.model.shared_stream()
            } else {
                self.model.stream()?
            },
            decider: Decider::new(
                self.decision.clone(),
                self.bundle.labels.clone(),
                self.frame_period_s,
                self.time_offset_s,
            ),
            feats: Vec::new(),
            step_src: StepInput::Features,
            posts: Vec::new(),
            stats: StageStats::default(),
        })
    }
}

/// Time spent per stage and amounts processed.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct StageStats {
    /// Samples in.
    pub samples: u64,
    /// Frames out of the front end.
    pub frames: u64,
    /// Embedder outputs (recurrent steps, when there is an embedder).
    pub embeddings: u64,
    /// Events emitted.
    pub events: u64,
    /// Seconds in the feature front end.
    pub features_s: f64,
    /// Seconds in the embedder.
    pub embed_s: f64,
    /// Seconds in the recurrent stage.
    pub sequence_s: f64,
    /// Seconds in the decision stage.
    pub decision_s: f64,
}

impl StageStats {
    /// Adds another stream's figures.
    pub fn add(&mut self, o: &StageStats) {
        self.samples += o.samples;
        self.frames += o.frames;
        self.embeddings += o.embeddings;
        self.embed_s += o.embed_s;
        self.events += o.events;
        self.features_s += o.features_s;
        self.sequence_s += o.sequence_s;
        self.decision_s += o.decision_s;
    }
}

/// What a [`StreamProcessor`] produced for the samples pushed so far.
#[derive(Debug, Default, Clone)]
pub struct Output {
    /// Keep features (for plots)? Off by default.
    pub keep_features: bool,
    /// Keep posteriors? Off by default.
    pub keep_posteriors: bool,
    /// Keep embeddings? Off by default.
    pub keep_embeddings: bool,
    /// Feature frames (`[frames * n_bins]`), when kept (audio only).
    pub features: Vec<f32>,
    /// Embeddings (`[steps * embedder output size]`), when kept.
    pub embeddings: Vec<f32>,
    /// Posteriors (`[frames * labels]`), when kept.
    pub posteriors: Vec<f32>,
    /// Events, in the order the decision stage closed them.
    pub events: Vec<Event>,
}

/// One stream through every stage; owns all of that stream's state.
pub struct StreamProcessor {
    front: FrontState,
    /// Values per front-end frame.
    frame_len: usize,
    /// To rebuild the decider when a video source sets the frame rate.
    section: crate::bundle::DecisionSection,
    embed: Option<EmbedStream>,
    /// Embedder outputs of the current call.
    embs: Vec<f32>,
    /// Pose features of the current call (`[pose]` bundles).
    pose_steps: Vec<f32>,
    seq: Box<dyn Stream>,
    decider: Decider,
    feats: Vec<f32>,
    /// Which buffer holds the steps of the current call.
    step_src: StepInput,
    posts: Vec<f32>,
    stats: StageStats,
}

impl std::fmt::Debug for StreamProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamProcessor")
            .field("stats", &self.stats)
            .finish()
    }
}

impl StreamProcessor {
    /// Feeds samples (mono, at the bundle's rate) through every stage.
    ///
    /// # Errors
    /// Errors of the recurrent stage (ONNX Runtime failures);
    /// [`Error::InvalidConfig`] (key `input`) when the processor is a video
    /// one (see [`Recognizer::kind`]): nothing is consumed.
    pub fn push(&mut self, samples: &[f32], out: &mut Output) -> Result<()> {
        let FrontState::Audio(f) = &mut self.front else {
            return Err(Error::config(
                "input",
                "audio given to a video bundle's stream: it takes frames (push_frame)",
            ));
        };
        self.stats.samples += samples.len() as u64;
        let t0 = Instant::now();
        self.feats.clear();
        f.push(samples, &mut self.feats);
        self.run_frames(t0, out)
    }

    /// Starts a video input delivering `fps` frames per second: sets the
    /// frame-rate decimation and the decision stage's clock (a step every
    /// kept frame), and resets every stage. Call it before the first
    /// [`StreamProcessor::push_frame`] of each input.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a rate that is not positive and finite,
    /// or decision settings that do not fit the resulting step period.
    pub fn begin_video(&mut self, fps: f64) -> Result<()> {
        if !(fps.is_finite() && fps > 0.0) {
            return Err(Error::config(
                "fps",
                format!("the source's frame rate {fps} is not a positive number"),
            ));
        }
        let FrontState::Video { decim, cfg, .. } = &mut self.front else {
            return Ok(());
        };
        *decim = Decimator::new(cfg, fps);
        let period = decim.period_s();
        let labels = self.decider.labels().to_vec();
        let decision = DecisionConfig::from_section(&self.section, &labels, period)?;
        self.decider = Decider::new(decision, labels, period, 0.0);
        self.reset();
        Ok(())
    }

    /// Feeds one video frame through every stage (frames the decimation
    /// skips cost nothing). Batch processors hold frames until the
    /// embedder's batch is full; [`StreamProcessor::finish`] runs the rest.
    ///
    /// # Errors
    /// Errors of the embedder and recurrent stages; [`Error::InvalidConfig`]
    /// (key `input`) when the processor is an audio one: nothing is consumed.
    pub fn push_frame(&mut self, frame: &Frame, out: &mut Output) -> Result<()> {
        let t0 = Instant::now();
        let FrontState::Video {
            prep, decim, pose, ..
        } = &mut self.front
        else {
            return Err(Error::config(
                "input",
                "a video frame given to an audio bundle's stream: it takes samples (push)",
            ));
        };
        if !decim.keep(frame) {
            return Ok(());
        }
        self.feats.clear();
        match pose {
            Some(p) => p.prepare(prep, frame, &mut self.feats),
            None => prep.process(frame, &mut self.feats),
        }
        self.run_frames(t0, out)
    }

    /// Ends the stream: flushes the front end's tail frames, closes open
    /// events, and returns every stage to its initial state.
    ///
    /// # Errors
    /// As [`StreamProcessor::push`].
    pub fn finish(&mut self, out: &mut Output) -> Result<()> {
        let t0 = Instant::now();
        self.feats.clear();
        if let FrontState::Audio(f) = &mut self.front {
            f.finish(&mut self.feats);
        }
        let r = self
            .run_frames(t0, out)
            .and_then(|()| self.flush_embedder(out));
        let n = out.events.len();
        self.decider.finish(&mut out.events);
        self.stats.events += (out.events.len() - n) as u64;
        self.reset();
        r
    }

    fn run_frames(&mut self, t0: Instant, out: &mut Output) -> Result<()> {
        let t1 = Instant::now();
        self.stats.features_s += (t1 - t0).as_secs_f64();
        if self.feats.is_empty() {
            return Ok(());
        }
        self.stats.frames += (self.feats.len() / self.frame_len) as u64;
        // Preprocessed video frames (150k values each) are not kept.
        if out.keep_features && matches!(self.front, FrontState::Audio(_)) {
            out.features.extend_from_slice(&self.feats);
        }
        match self.embed.as_mut() {
            None => self.run_steps(StepInput::Features, t1, out),
            Some(e) => {
                self.embs.clear();
                e.push(&self.feats, &mut self.embs)?;
                self.run_steps(StepInput::Embeddings, t1, out)
            }
        }
    }

    /// Runs the windows an embedder still holds back for its batch.
    fn flush_embedder(&mut self, out: &mut Output) -> Result<()> {
        let t1 = Instant::now();
        match self.embed.as_mut() {
            None => Ok(()),
            Some(e) => {
                self.embs.clear();
                e.flush(&mut self.embs)?;
                self.run_steps(StepInput::Embeddings, t1, out)
            }
        }
    }

    /// The recurrent and decision stages on the steps in `feats` (no
    /// embedder), `embs`, or the pose features of `embs`.
    fn run_steps(&mut self, input: StepInput, t1: Instant, out: &mut Output) -> Result<()> {
        self.prepare_steps(input, t1, out);
        if self.steps().is_empty() {
            return Ok(());
        }
        let t1 = Instant::now();
        self.posts.clear();
        let steps = match self.step_src {
            StepInput::Features => &self.feats,
            StepInput::Embeddings => &self.embs,
            StepInput::Pose => &self.pose_steps,
        };
        self.seq.process(steps, &mut self.posts)?;
        self.stats.sequence_s += t1.elapsed().as_secs_f64();
        self.decide(out)
    }

    /// Makes the recurrent stage's input from `input`: embeddings are
    /// counted and kept, and turned into pose features for `[pose]`
    /// bundles.
    fn prepare_steps(&mut self, input: StepInput, t1: Instant, out: &mut Output) {
        self.step_src = input;
        if let StepInput::Embeddings = input {
            let n = self.embed.as_ref().map_or(1, EmbedStream::output_size);
            self.stats.embeddings += (self.embs.len() / n) as u64;
            self.stats.embed_s += t1.elapsed().as_secs_f64();
            if let FrontState::Video { pose: Some(p), .. } = &mut self.front {
                // Keypoints to frame pixels (what `embeddings` keeps),
                // then their features.
                let rows = self.embs.len() / pose::INPUT_LEN;
                self.pose_steps.clear();
                self.pose_steps.resize(rows * pose::FEATURE_LEN, 0.0);
                p.keypoints_in_place(&mut self.embs);
                for (px, f) in self
                    .embs
                    .chunks_exact(pose::INPUT_LEN)
                    .zip(self.pose_steps.chunks_exact_mut(pose::FEATURE_LEN))
                {
                    p.features(px, f);
                }
                self.step_src = StepInput::Pose;
            }
            if out.keep_embeddings {
                out.embeddings.extend_from_slice(&self.embs);
            }
        }
    }

    /// The recurrent stage's input made by the last [`Self::prepare_steps`].
    fn steps(&self) -> &[f32] {
        match self.step_src {
            StepInput::Features => &self.feats,
            StepInput::Embeddings => &self.embs,
            StepInput::Pose => &self.pose_steps,
        }
    }

    /// The decision stage on `posts`.
    fn decide(&mut self, out: &mut Output) -> Result<()> {
        let t2 = Instant::now();
        let n = out.events.len();
        self.decider.push(&self.posts, &mut out.events)?;
        self.stats.events += (out.events.len() - n) as u64;
        self.stats.decision_s += t2.elapsed().as_secs_f64();
        if out.keep_posteriors {
            out.posteriors.extend_from_slice(&self.posts);
        }
        Ok(())
    }

    /// The whole state of this (audio) stream: samples the front end holds,
    /// the embedder's pending frames, the recurrent state, the decision
    /// state (thresholds, smoothing, open events). A stream of the same
    /// bundle given it by [`StreamProcessor::restore`] continues exactly
    /// where this one is: what `seqrec serve` sends as a snapshot token.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a video stream (its decimation and pose
    /// tracking state are not captured yet).
    pub fn snapshot(&self) -> Result<StreamState> {
        let FrontState::Audio(f) = &self.front else {
            return Err(Error::config(
                "snapshot",
                "video streams cannot be snapshotted yet (audio bundles only)",
            ));
        };
        Ok(StreamState {
            front: f.state(),
            embed: self.embed.as_ref().map(|e| {
                let (pending, base, next) = e.window_state();
                EmbedState {
                    pending: pending.to_vec(),
                    base,
                    next,
                }
            }),
            sequence: self.seq.snapshot(),
            decision: self.decider.state(),
            samples: self.stats.samples,
        })
    }

    /// Continues from a [`StreamProcessor::snapshot`] of a stream of the
    /// same bundle.
    ///
    /// # Errors
    /// [`Error::Shape`] or [`Error::InvalidConfig`] if the state does not
    /// fit this bundle's stages; the stream is then reset.
    pub fn restore(&mut self, st: &StreamState) -> Result<()> {
        let r = (|| {
            let FrontState::Audio(f) = &mut self.front else {
                return Err(Error::config("snapshot", "a video stream cannot resume"));
            };
            f.set_state(&st.front)?;
            match (self.embed.as_mut(), &st.embed) {
                (Some(e), Some(s)) => e.set_window_state(&s.pending, s.base, s.next)?,
                (None, None) => {}
                _ => {
                    return Err(Error::Shape(
                        "the state's embedder does not match this bundle's".into(),
                    ));
                }
            }
            self.seq.restore(&st.sequence)?;
            self.decider.set_state(&st.decision)?;
            self.stats.samples = st.samples;
            Ok(())
        })();
        if r.is_err() {
            self.reset();
        }
        r
    }

    /// Server phase 1 ([`crate::serve`]): the front end on `piece`, then the
    /// embedder's windows appended to `windows` (returns how many; the
    /// caller runs them and hands back [`Self::stage_embeddings`]), or, with
    /// no embedder, the steps made ready. `Piece::End` flushes the front
    /// end.
    pub(crate) fn stage_front(
        &mut self,
        piece: Piece<'_>,
        windows: &mut Vec<f32>,
        out: &mut Output,
    ) -> Result<usize> {
        let t0 = Instant::now();
        self.feats.clear();
        self.embs.clear();
        self.posts.clear();
        self.step_src = StepInput::Features;
        match (&mut self.front, piece) {
            (FrontState::Audio(f), Piece::Audio(x)) => {
                self.stats.samples += x.len() as u64;
                f.push(x, &mut self.feats);
            }
            (FrontState::Audio(f), Piece::End) => {
                f.finish(&mut self.feats);
            }
            (FrontState::Video { .. }, Piece::End) => {}
            (
                FrontState::Video {
                    prep, decim, pose, ..
                },
                Piece::Frame(frame),
            ) => {
                if decim.keep(frame) {
                    match pose {
                        Some(p) => p.prepare(prep, frame, &mut self.feats),
                        None => prep.process(frame, &mut self.feats),
                    }
                }
            }
            _ => {
                return Err(Error::config(
                    "input",
                    "audio sent to a video stream, or a frame to an audio stream",
                ));
            }
        }
        self.stats.features_s += t0.elapsed().as_secs_f64();
        self.stats.frames += (self.feats.len() / self.frame_len.max(1)) as u64;
        if out.keep_features && matches!(self.front, FrontState::Audio(_)) {
            out.features.extend_from_slice(&self.feats);
        }
        match self.embed.as_mut() {
            Some(e) => e.push_windows(&self.feats, windows),
            None => Ok(0),
        }
    }

    /// Server phase 2: the embeddings of the windows [`Self::stage_front`]
    /// gave, in order.
    pub(crate) fn stage_embeddings(&mut self, embs: &[f32], out: &mut Output) {
        self.embs.clear();
        self.embs.extend_from_slice(embs);
        self.prepare_steps(StepInput::Embeddings, Instant::now(), out);
    }

    /// The recurrent stage's input for this call (`[steps * input]`), its
    /// recurrent stream and its posteriors (a server steps the recurrent
    /// streams of many processors together, writing the posteriors).
    pub(crate) fn steps_and_sequence(&mut self) -> (&[f32], &mut dyn Stream, &mut Vec<f32>) {
        let steps = match self.step_src {
            StepInput::Features => &self.feats,
            StepInput::Embeddings => &self.embs,
            StepInput::Pose => &self.pose_steps,
        };
        (steps, self.seq.as_mut(), &mut self.posts)
    }

    /// The posteriors of this call, for a server that ran the recurrent
    /// stage itself.
    pub(crate) fn posteriors_mut(&mut self) -> &mut Vec<f32> {
        &mut self.posts
    }

    /// Server phase 3 for a stream stepped alone: the recurrent stage on
    /// this call's steps (an ONNX Runtime stage on `session`).
    pub(crate) fn stage_sequence(
        &mut self,
        session: Option<&mut ort::session::Session>,
    ) -> Result<()> {
        let t = Instant::now();
        self.posts.clear();
        let steps = match self.step_src {
            StepInput::Features => &self.feats,
            StepInput::Embeddings => &self.embs,
            StepInput::Pose => &self.pose_steps,
        };
        let r = match (session, self.seq.as_ort()) {
            (Some(s), Some(o)) => o.process_with(s, steps, &mut self.posts),
            _ => self.seq.process(steps, &mut self.posts),
        };
        self.stats.sequence_s += t.elapsed().as_secs_f64();
        r
    }

    /// Server phase 4: the decision stage on the posteriors; with `end`,
    /// open events are closed and every stage reset.
    pub(crate) fn stage_decide(&mut self, end: bool, out: &mut Output) -> Result<()> {
        let r = self.decide(out);
        if end {
            let n = out.events.len();
            self.decider.finish(&mut out.events);
            self.stats.events += (out.events.len() - n) as u64;
            self.reset();
        }
        r
    }

    /// Returns every stage to its initial state: call it at a discontinuity
    /// (new file, capture gap, device change). Statistics are kept.
    pub fn reset(&mut self) {
        match &mut self.front {
            FrontState::Audio(f) => f.reset(),
            FrontState::Video { decim, pose, .. } => {
                decim.reset();
                if let Some(p) = pose {
                    p.reset();
                }
            }
        }
        if let Some(e) = self.embed.as_mut() {
            e.reset();
        }
        self.seq.reset();
        self.decider.reset();
    }

    /// Time per stage so far.
    pub fn stats(&self) -> &StageStats {
        &self.stats
    }

    /// Changes the decision thresholds while the stream runs (see
    /// [`Decider::set_thresholds`]); the current ones are
    /// `decision_config().on` / `.off`.
    pub fn set_thresholds(&mut self, on: &[f32], off: &[f32]) {
        self.decider.set_thresholds(on, off);
    }

    /// The decision settings in force (thresholds as last set).
    pub fn decision_config(&self) -> &DecisionConfig {
        self.decider.config()
    }

    /// The events open now: label index, start time on this stream's clock
    /// and highest score so far (see [`Decider::open_events`]).
    pub fn open_events(&self) -> impl Iterator<Item = (usize, f64, f32)> + '_ {
        self.decider.open_events()
    }

    /// Smoothed scores of the most recent frame (for live displays).
    pub fn last_scores(&self) -> &[f32] {
        self.decider.last_smoothed()
    }

    /// Frames since the last reset.
    pub fn frames(&self) -> u64 {
        self.decider.frames()
    }

    /// Seconds between recurrent steps (posterior rows) of the current input.
    pub fn frame_period_s(&self) -> f64 {
        self.decider.frame_period_s()
    }

    /// Time of the first recurrent step of the current input, seconds.
    pub fn time_offset_s(&self) -> f64 {
        self.decider.time_offset_s()
    }
}

/// One piece of a stream's input, for the server's phases.
#[derive(Clone, Copy)]
pub(crate) enum Piece<'a> {
    /// Samples (mono, at the bundle's rate).
    Audio(&'a [f32]),
    /// One video frame.
    Frame(&'a Frame),
    /// The stream's end.
    End,
}

/// What [`StreamProcessor::snapshot`] gives: one audio stream's whole state.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StreamState {
    /// The front end's buffered samples.
    pub front: crate::features::FrontEndState,
    /// The embedder's pending frames, if the bundle has one.
    pub embed: Option<EmbedState>,
    /// The recurrent state.
    pub sequence: crate::sequence::State,
    /// The decision stage's state.
    pub decision: crate::decision::DeciderState,
    /// Samples the stream has taken so far.
    pub samples: u64,
}

/// The embedder's part of a [`StreamState`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EmbedState {
    /// Feature frames from frame `base` on.
    pub pending: Vec<f32>,
    /// Absolute index of the first pending frame.
    pub base: u64,
    /// Absolute index of the next window's first frame.
    pub next: u64,
}

/// The first stage, shared: audio front end or video preprocessing settings.
#[derive(Debug)]
enum Front {
    Audio(Box<FrontEnd>),
    Video(VideoConfig),
}

/// The first stage of one stream.
enum FrontState {
    Audio(FrontEnd),
    Video {
        prep: Preprocessor,
        decim: Decimator,
        cfg: VideoConfig,
        pose: Option<Box<PoseStage>>,
    },
}

/// Where the recurrent stage's input comes from.
#[derive(Clone, Copy)]
enum StepInput {
    /// Feature frames (`feats`).
    Features,
    /// Embedder outputs (`embs`).
    Embeddings,
    /// Pose features of the embedder's keypoints (`pose_steps`).
    Pose,
}

/// The result of running a whole finite source.
#[derive(Debug, Clone)]
pub struct SourceResult {
    /// Seconds of audio.
    pub duration_s: f64,
    /// What the stages produced.
    pub output: Output,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Seconds between posterior rows (video: depends on the source's rate).
    pub frame_period_s: f64,
    /// Time of the first posterior row, seconds.
    pub time_offset_s: f64,
}

/// Runs a finite source through `proc` to its end, then resets `proc`.
/// On error the processor is reset too, so it can take the next input.
///
/// # Errors
/// The source's or the stages' first error.
pub fn process_source(
    proc: &mut StreamProcessor,
    source: &mut dyn AudioSource,
    keep_features: bool,
    keep_posteriors: bool,
) -> Result<SourceResult> {
    let t0 = Instant::now();
    let mut out = Output {
        keep_features,
        keep_posteriors,
        ..Output::default()
    };
    let mut buf = Vec::with_capacity(1 << 14);
    let mut n = 0u64;
    let res = (|| {
        loop {
            buf.clear();
            if source.read(&mut buf)? == 0 {
                break;
            }
            n += buf.len() as u64;
            proc.push(&buf, &mut out)?;
        }
        proc.finish(&mut out)
    })();
    if res.is_err() {
        proc.reset();
    }
    res?;
    Ok(SourceResult {
        duration_s: n as f64 / source.sample_rate() as f64,
        output: out,
        elapsed: t0.elapsed(),
        frame_period_s: proc.frame_period_s(),
        time_offset_s: proc.time_offset_s(),
    })
}

/// Runs a finite video source through `proc` (a processor of a video
/// bundle) to its end, then resets `proc`, also on error.
///
/// # Errors
/// The source's or the stages' first error.
pub fn process_video(
    proc: &mut StreamProcessor,
    source: &mut dyn VideoSource,
    out: Output,
) -> Result<SourceResult> {
    let t0 = Instant::now();
    let mut out = out;
    let mut frame = Frame::new();
    let mut last_pts = 0.0f64;
    let mut n = 0u64;
    let fps = source.info().fps;
    let res = proc.begin_video(fps).and_then(|()| {
        while source.read(&mut frame)? {
            n += 1;
            last_pts = frame.pts_s;
            proc.push_frame(&frame, &mut out)?;
        }
        proc.finish(&mut out)
    });
    if res.is_err() {
        proc.reset();
    }
    res?;
    Ok(SourceResult {
        duration_s: if n == 0 { 0.0 } else { last_pts + 1.0 / fps },
        output: out,
        elapsed: t0.elapsed(),
        frame_period_s: proc.frame_period_s(),
        time_offset_s: proc.time_offset_s(),
    })
}

/// Opens the input at `path` as `rec`'s kind (an audio file; a video file
/// or image folder, the folder at `folder_fps`, default 30) and runs it
/// through `proc` to its end, as `seqrec batch` does for each input.
///
/// # Errors
/// The source's or the stages' first error.
pub fn process_path(
    rec: &Recognizer,
    proc: &mut StreamProcessor,
    path: &std::path::Path,
    folder_fps: Option<f64>,
    keep_features: bool,
    keep_posteriors: bool,
) -> Result<SourceResult> {
    match rec.kind() {
        InputKind::Audio => crate::source::AudioFile::open(path, rec.sample_rate())
            .and_then(|mut f| process_source(proc, &mut f, keep_features, keep_posteriors)),
        InputKind::Video => crate::source::video::open(path, folder_fps).and_then(|mut v| {
            let out = Output {
                keep_features,
                keep_posteriors,
                ..Output::default()
            };
            process_video(proc, &mut v, out)
        }),
    }
}

/// Video file extensions a directory walk picks up.
pub const VIDEO_EXTENSIONS: &[&str] = &[
    "mp4", "m4v", "mov", "webm", "mkv", "avi", "mpg", "mpeg", "ts", "ogv",
];

/// Audio file extensions a directory walk picks up.
pub const AUDIO_EXTENSIONS: &[&str] = &["wav", "wave", "flac", "mp3", "ogg", "oga"];

/// Expands inputs: files as given, directories recursed (sorted, by
/// extension), so the order of results is stable across runs and machines.
///
/// # Errors
/// [`Error::Io`] for a directory that cannot be read.
pub fn expand_inputs(
    inputs: &[std::path::PathBuf],
    extensions: &[&str],
) -> Result<Vec<std::path::PathBuf>> {
    expand(inputs, extensions, &[])
}

/// Expands the inputs of a video bundle: video files as given; a folder that
/// directly holds images is one image sequence; other folders are walked
/// (sorted) for video files and image-sequence subfolders.
///
/// # Errors
/// [`Error::Io`] for a directory that cannot be read.
pub fn expand_video_inputs(inputs: &[std::path::PathBuf]) -> Result<Vec<std::path::PathBuf>> {
    expand(
        inputs,
        VIDEO_EXTENSIONS,
        crate::source::video::IMAGE_EXTENSIONS,
    )
}

/// Files as given; directories walked in sorted order for files with one of
/// `extensions`, except that a directory directly holding a file with one of
/// `sequence_extensions` is itself one input (a sequence of images).
fn expand(
    inputs: &[std::path::PathBuf],
    extensions: &[&str],
    sequence_extensions: &[&str],
) -> Result<Vec<std::path::PathBuf>> {
    fn has_ext(p: &std::path::Path, exts: &[&str]) -> bool {
        p.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| exts.iter().any(|x| x.eq_ignore_ascii_case(e)))
    }
    fn walk(
        dir: &std::path::Path,
        exts: &[&str],
        seq: &[&str],
        out: &mut Vec<std::path::PathBuf>,
    ) -> Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| Error::io(dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        if entries.iter().any(|p| p.is_file() && has_ext(p, seq)) {
            out.push(dir.to_path_buf());
            return Ok(());
        }
        for p in entries {
            if p.is_dir() {
                walk(&p, exts, seq, out)?;
            } else if has_ext(&p, exts) {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in inputs {
        if p.is_dir() {
            walk(p, extensions, sequence_extensions, &mut out)?;
        } else {
            // Files are taken as given, even missing ones: they fail on their
            // own, as an error record, without stopping the others.
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Options of [`run_batch`].
#[derive(Debug, Clone, Copy)]
pub struct BatchOptions {
    /// Worker threads (each with its own stream state and, for ort, session).
    pub jobs: usize,
    /// Keep feature frames in each result (for plots).
    pub keep_features: bool,
    /// Keep posteriors in each result.
    pub keep_posteriors: bool,
    /// Frame rate of image folders (video bundles); `None` = 30 fps.
    pub folder_fps: Option<f64>,
    /// Cores to use in all: when there are fewer inputs than `jobs`, each
    /// worker's embedder gets `cores / workers` ONNX Runtime threads.
    pub cores: usize,
}

/// Processes `files` on `opts.jobs` workers and hands each result to
/// `on_result` in input order (whatever order they finish in), on the calling
/// thread. A file that fails gives `Err` for that file and the run goes on.
/// Work is pulled from a shared queue, so long and short files balance out.
///
/// # Errors
/// Only failures to create the workers' streams (e.g. ONNX Runtime missing).
pub fn run_batch(
    rec: &Recognizer,
    files: &[std::path::PathBuf],
    opts: BatchOptions,
    mut on_result: impl FnMut(usize, &std::path::Path, Result<SourceResult>),
) -> Result<StageStats> {
    use crossbeam_channel::{bounded, unbounded};
    let jobs = opts.jobs.clamp(1, files.len().max(1));
    // Fewer inputs than cores: the embedder's CNN gets the spare cores.
    let threads = (opts.cores.max(1) / jobs).max(1);
    let mut procs = (0..jobs)
        .map(|_| rec.stream_with_threads(threads))
        .collect::<Result<Vec<_>>>()?;
    let (job_tx, job_rx) = unbounded::<usize>();
    for i in 0..files.len() {
        let _ = job_tx.send(i);
    }
    drop(job_tx);
    // Bounded: a slow consumer (e.g. writing plots) holds the workers back
    // instead of letting finished results pile up in memory.
    let (res_tx, res_rx) = bounded::<(usize, Result<SourceResult>)>(jobs * 2);
    let mut total = StageStats::default();
    std::thread::scope(|scope| {
        for proc in procs.iter_mut() {
            let (job_rx, res_tx) = (job_rx.clone(), res_tx.clone());
            scope.spawn(move || {
                for i in job_rx {
                    let r = process_path(
                        rec,
                        proc,
                        &files[i],
                        opts.folder_fps,
                        opts.keep_features,
                        opts.keep_posteriors,
                    );
                    if res_tx.send((i, r)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(res_tx);
        let mut pending = std::collections::BTreeMap::new();
        let mut next = 0;
        for (i, r) in res_rx {
            pending.insert(i, r);
            while let Some(r) = pending.remove(&next) {
                on_result(next, &files[next], r);
                next += 1;
            }
        }
    });
    for p in &procs {
        total.add(p.stats());
    }
    Ok(total)
}
