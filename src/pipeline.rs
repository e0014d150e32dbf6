//! The pipeline: the one module that knows every stage.
//!
//! ```text
//!  source ──chunks──▶ features ──frames──▶ sequence ──posteriors──▶ decision ──events──▶ sink
//! ```
//!
//! A [`Recognizer`] holds what all streams share (the bundle, the feature
//! plan, the recurrent model); [`Recognizer::stream`] gives a
//! [`StreamProcessor`] that owns one stream's state in every stage. Batch
//! processing runs one processor per worker thread and resets it between
//! files ([`process_source`] does both); live capture runs one processor on
//! the chunks a capture thread sends.

use std::time::{Duration, Instant};

use crate::bundle::{Bundle, InputKind};
use crate::decision::{Decider, DecisionConfig, Event};
use crate::features::FrontEnd;
use crate::sequence::{OrtSpec, SequenceModel, Stream};
use crate::source::AudioSource;
use crate::{Error, Result};

/// What every stream of one bundle shares. Cheap to share by reference
/// across threads (`Sync`).
#[derive(Debug)]
pub struct Recognizer {
    bundle: Bundle,
    front: FrontEnd,
    model: SequenceModel,
    decision: DecisionConfig,
    frame_period_s: f64,
    time_offset_s: f64,
}

impl Recognizer {
    /// Builds the stages of `bundle` (an audio bundle with `[features]` and `[sequence]`).
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
        if bundle.kind != InputKind::Audio {
            return Err(err(
                "kind",
                "only audio bundles can run on audio input".into(),
            ));
        }
        let cfg = bundle.feature_config()?.clone();
        let seq = bundle.sequence()?.clone();
        let spec = OrtSpec {
            state: seq.state.clone(),
            constants: seq.constants.clone(),
            input: seq.input.clone(),
            output: seq.output.clone(),
            input_size: Some(cfg.n_bins()),
            ..OrtSpec::default()
        };
        let model = SequenceModel::load(&seq.onnx, seq.backend, &spec)?;
        if model.input_size() != cfg.n_bins() {
            return Err(err(
                "sequence.onnx",
                format!(
                    "the model takes {} values per frame but the features give {}",
                    model.input_size(),
                    cfg.n_bins()
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
        let frame_period_s = cfg.hop_length() as f64 / cfg.sample_rate as f64;
        // See FeatureConfig::frame_time: the centre of the analysis window,
        // or the start of a raw frame's new samples.
        let time_offset_s = cfg.frame_time(0);
        let decision =
            DecisionConfig::from_section(&bundle.decision, &bundle.labels, frame_period_s)?;
        Ok(Recognizer {
            front: FrontEnd::new(&cfg)?,
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

    /// Input sample rate.
    pub fn sample_rate(&self) -> u32 {
        self.front.config().sample_rate
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

    /// The decision settings (per-label thresholds).
    pub fn decision(&self) -> &DecisionConfig {
        &self.decision
    }

    /// A new stream in the initial state of every stage. For the ort backend
    /// this builds a session: keep one processor per worker and
    /// [`StreamProcessor::reset`] it between inputs.
    ///
    /// # Errors
    /// As [`SequenceModel::stream`].
    pub fn stream(&self) -> Result<StreamProcessor> {
        Ok(StreamProcessor {
            front: self.front.fork(),
            seq: self.model.stream()?,
            decider: Decider::new(
                self.decision.clone(),
                self.bundle.labels.clone(),
                self.frame_period_s,
                self.time_offset_s,
            ),
            feats: Vec::new(),
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
    /// Events emitted.
    pub events: u64,
    /// Seconds in the feature front end.
    pub features_s: f64,
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
    /// Feature frames (`[frames * n_bins]`), when kept.
    pub features: Vec<f32>,
    /// Posteriors (`[frames * labels]`), when kept.
    pub posteriors: Vec<f32>,
    /// Events, in the order the decision stage closed them.
    pub events: Vec<Event>,
}

/// One stream through every stage; owns all of that stream's state.
pub struct StreamProcessor {
    front: FrontEnd,
    seq: Box<dyn Stream>,
    decider: Decider,
    feats: Vec<f32>,
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
    /// Errors of the recurrent stage (ONNX Runtime failures).
    pub fn push(&mut self, samples: &[f32], out: &mut Output) -> Result<()> {
        self.stats.samples += samples.len() as u64;
        let t0 = Instant::now();
        self.feats.clear();
        self.front.push(samples, &mut self.feats);
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
        self.front.finish(&mut self.feats);
        let r = self.run_frames(t0, out);
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
        self.stats.frames += (self.feats.len() / self.front.n_bins()) as u64;
        self.posts.clear();
        self.seq.process(&self.feats, &mut self.posts)?;
        let t2 = Instant::now();
        self.stats.sequence_s += (t2 - t1).as_secs_f64();
        let n = out.events.len();
        self.decider.push(&self.posts, &mut out.events)?;
        self.stats.events += (out.events.len() - n) as u64;
        self.stats.decision_s += t2.elapsed().as_secs_f64();
        if out.keep_features {
            out.features.extend_from_slice(&self.feats);
        }
        if out.keep_posteriors {
            out.posteriors.extend_from_slice(&self.posts);
        }
        Ok(())
    }

    /// Returns every stage to its initial state: call it at a discontinuity
    /// (new file, capture gap, device change). Statistics are kept.
    pub fn reset(&mut self) {
        self.front.reset();
        self.seq.reset();
        self.decider.reset();
    }

    /// Time per stage so far.
    pub fn stats(&self) -> &StageStats {
        &self.stats
    }

    /// Smoothed scores of the most recent frame (for live displays).
    pub fn last_scores(&self) -> &[f32] {
        self.decider.last_smoothed()
    }

    /// Frames since the last reset.
    pub fn frames(&self) -> u64 {
        self.decider.frames()
    }
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
    })
}

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
    fn walk(dir: &std::path::Path, exts: &[&str], out: &mut Vec<std::path::PathBuf>) -> Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| Error::io(dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, exts, out)?;
            } else if p
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| exts.iter().any(|x| x.eq_ignore_ascii_case(e)))
            {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in inputs {
        if p.is_dir() {
            walk(p, extensions, &mut out)?;
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
    let mut procs = (0..jobs)
        .map(|_| rec.stream())
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
                    let path = &files[i];
                    let r = crate::source::AudioFile::open(path, rec.sample_rate()).and_then(
                        |mut f| {
                            process_source(proc, &mut f, opts.keep_features, opts.keep_posteriors)
                        },
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
