//! `seqrec live --window`: a native window (eframe/egui on OpenGL) that shows
//! what the stream hears or sees and what it recognizes, as it happens.
//!
//! Recognition does not run here. The live loop (`live.rs`, `video.rs`) runs
//! on its own thread exactly as without a window and *offers* what it made
//! to a [`Link`]: the link merges offers into one pending [`Update`] and
//! hands it to the UI through a bounded channel with `try_send`, at most
//! every 25 ms. When the UI is slow the channel is full, the update stays
//! pending (its history bounded) and the loop goes on: the capture callback
//! and the processing thread never wait for the window; the window may skip.
//! Controls go the other way on an unbounded channel the loop polls without
//! blocking.
//!
//! Picking another bundle or input device in the window ends the running
//! loop (as Stop would) and `live.rs`'s supervisor starts it again on the
//! new recognizer and source; the link then carries a new [`Layout`] first,
//! and the window starts its views afresh from it. A choice that cannot be
//! opened keeps the running one and says why in the window.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use eframe::egui;
use egui::{Color32, ColorImage, Pos2, Rect, Stroke, TextureHandle, TextureOptions, Vec2};
use seqrec::decision::Event;

/// Seconds of history the window shows.
const SHOW_S: f64 = 10.0;
/// Least time between two updates sent to the UI.
const SEND_EVERY: Duration = Duration::from_millis(25);
/// Events the window keeps.
const KEEP_EVENTS: usize = 200;

/// What the loop made since the last update the UI took.
#[derive(Debug, Default)]
pub struct Update {
    /// Audio: new feature frames, `n_bins` values each.
    pub features: Vec<f32>,
    /// New posterior rows, one value per label.
    pub posteriors: Vec<f32>,
    /// Time of the first new posterior row on the run's timeline, seconds.
    pub posteriors_t0: Option<f64>,
    /// Events closed, on the run's timeline.
    pub events: Vec<Event>,
    /// Smoothed scores of the newest step.
    pub scores: Vec<f32>,
    /// Input level of the newest chunk, dBFS (audio).
    pub level_db: Option<f32>,
    /// The newest frame, downscaled: `(width, height, rgb)` (video).
    pub frame: Option<(u32, u32, Vec<u8>)>,
    /// Pose keypoints on that frame, `(y, x, score)` x 17 in its pixels.
    pub keypoints: Option<Vec<f32>>,
    /// Run statistics.
    pub stats: Option<StatsView>,
    /// Seconds of input so far.
    pub time_s: f64,
    /// Recording: the file names; `Some("")` when it stopped.
    pub recording: Option<String>,
    /// Events open now (begun, not closed): label index, start on the run's
    /// timeline, highest score so far. Replaced by every update.
    pub open: Option<Vec<(usize, f64, f32)>>,
    /// A new bundle or input runs from this update on: everything before
    /// it belongs to the old one.
    pub layout: Option<Layout>,
    /// A message for the status line (a switch that failed, ...).
    pub notice: Option<String>,
}

/// Statistics shown in the window.
#[derive(Debug, Clone, Default)]
pub struct StatsView {
    /// Capture-to-event latency, ms: (p50, p99, events measured).
    pub latency_ms: Option<(f64, f64, usize)>,
    /// Chunks (audio) or frames (video) the capture queue dropped.
    pub dropped: u64,
    /// Milliseconds per recurrent step: features, embedder, sequence, decision.
    pub stage_ms: [f64; 4],
    /// Recurrent steps so far.
    pub steps: u64,
}

/// What the window asks of the loop.
#[derive(Debug, Clone)]
pub enum Control {
    /// New per-label thresholds (on, off).
    Thresholds(Vec<f32>, Vec<f32>),
    /// Close open events and start every stage afresh.
    Reset,
    /// Stop the run (the window was closed).
    Stop,
    /// Start (true) or stop (false) recording the events (JSON Lines) and,
    /// for audio, the input (WAV) into the current directory.
    Record(bool),
    /// Run this bundle on this input from now on (ends the running loop,
    /// its open events closed and printed, and a recording).
    Switch(PathBuf, Input),
}

/// An input the window can switch to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A microphone: a name from `seqrec devices` (`None`: the default).
    Mic(Option<String>),
    /// A V4L2 camera by id (`seqrec devices`).
    Camera(String),
    /// The `--ffmpeg-input` given at the start.
    Ffmpeg,
}

/// A bundle the window offers.
#[derive(Debug, Clone)]
pub struct BundleChoice {
    pub path: PathBuf,
    pub name: String,
    pub video: bool,
}

/// An input the window offers, with its label.
#[derive(Debug, Clone)]
pub struct InputChoice {
    pub label: String,
    pub input: Input,
}

/// What the pickers offer: the recognizer bundles next to the one given
/// (its parent directory, e.g. `models/`), the audio input devices and the
/// video inputs (cameras, and the FFmpeg input if one was given).
#[derive(Debug, Clone, Default)]
pub struct Choices {
    pub bundles: Vec<BundleChoice>,
    pub audio: Vec<InputChoice>,
    pub video: Vec<InputChoice>,
}

impl Choices {
    /// Looks for bundles with a recurrent model in `dir` (embed-only bundles
    /// cannot run live), sorted by name, and lists the devices.
    /// `ffmpeg`: the `--ffmpeg-input` words, if given.
    pub fn scan(dir: &std::path::Path, ffmpeg: Option<&[String]>) -> Choices {
        let mut bundles: Vec<BundleChoice> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| seqrec::bundle::Bundle::load(e.path()).ok())
            .filter(|b| b.sequence.is_some())
            .map(|b| BundleChoice {
                video: b.kind == seqrec::bundle::InputKind::Video,
                name: b.name.clone(),
                path: b.dir.canonicalize().unwrap_or(b.dir),
            })
            .collect();
        bundles.sort_by(|a, b| a.path.cmp(&b.path));
        let mut audio = vec![InputChoice {
            label: "default microphone".into(),
            input: Input::Mic(None),
        }];
        for d in seqrec::source::mic::list_input_devices().unwrap_or_default() {
            audio.push(InputChoice {
                label: if d.description == d.name {
                    d.name.clone()
                } else {
                    format!("{} ({})", d.name, d.description)
                },
                input: Input::Mic(Some(d.name)),
            });
        }
        let mut video = Vec::new();
        if let Some(args) = ffmpeg {
            let mut label = format!("ffmpeg {}", args.join(" "));
            if label.len() > 60 {
                label.truncate(label.floor_char_boundary(57));
                label.push_str("...");
            }
            video.push(InputChoice {
                label,
                input: Input::Ffmpeg,
            });
        }
        for c in seqrec::source::video::camera::list().unwrap_or_default() {
            video.push(InputChoice {
                label: format!("camera {}: {}", c.id, c.name),
                input: Input::Camera(c.id),
            });
        }
        Choices {
            bundles,
            audio,
            video,
        }
    }
}

/// What the window asked that the loop must carry out itself.
#[derive(Debug, Default)]
pub struct Asked {
    /// Stop the run.
    pub stop: bool,
    /// Close open events and start afresh.
    pub reset: bool,
    /// Start or stop recording.
    pub record: Option<bool>,
}

/// What a stream shows: set at the start and at every switch.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Heading: the bundle and its input.
    pub title: String,
    /// The bundle directory and the input, as the pickers name them.
    pub bundle: PathBuf,
    pub input: Input,
    /// Labels in score order.
    pub labels: Vec<String>,
    /// Per-label thresholds (on, off) at the start.
    pub thresholds: (Vec<f32>, Vec<f32>),
    /// Values per feature frame (audio; 0 for video).
    pub n_bins: usize,
    /// Seconds between feature frames (audio).
    pub feature_period_s: f64,
    /// Seconds between posterior rows.
    pub step_period_s: f64,
}

/// `Record`: the events as JSON Lines (times on the run's timeline) and,
/// for audio, the input as 16-bit mono WAV at the bundle's rate, named
/// `seqrec-live-<unix seconds>.{jsonl,wav}` in the current directory.
pub struct Recorder {
    /// The file names, for the window.
    pub names: String,
    events: std::io::BufWriter<std::fs::File>,
    wav: Option<(std::io::BufWriter<std::fs::File>, u32)>,
}

impl Recorder {
    /// Creates the files; `rate`: the audio rate (None for video).
    ///
    /// # Errors
    /// When a file cannot be created.
    pub fn start(rate: Option<u32>) -> anyhow::Result<Recorder> {
        Self::start_in(std::path::Path::new("."), rate)
    }

    /// As [`Recorder::start`], into `dir`.
    ///
    /// # Errors
    /// When a file cannot be created.
    pub fn start_in(dir: &std::path::Path, rate: Option<u32>) -> anyhow::Result<Recorder> {
        use std::io::Write;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let stem = dir
            .join(format!("seqrec-live-{stamp}"))
            .display()
            .to_string();
        let stem = stem.strip_prefix("./").unwrap_or(&stem).to_string();
        let open = |ext: &str| -> anyhow::Result<std::io::BufWriter<std::fs::File>> {
            let name = format!("{stem}.{ext}");
            let f = std::fs::File::create(&name)
                .map_err(|e| anyhow::anyhow!("recording: cannot create {name}: {e}"))?;
            Ok(std::io::BufWriter::new(f))
        };
        let events = open("jsonl")?;
        let wav = match rate {
            Some(r) => {
                let mut w = open("wav")?;
                w.write_all(&wav_header(r, 0))?;
                Some((w, 0))
            }
            None => None,
        };
        let names = if wav.is_some() {
            format!("{stem}.jsonl, {stem}.wav")
        } else {
            format!("{stem}.jsonl")
        };
        eprintln!("recording: {names}");
        Ok(Recorder { names, events, wav })
    }

    /// Appends closed events (times on the run's timeline).
    pub fn events(&mut self, events: &[Event]) -> std::io::Result<()> {
        for e in events {
            super::common::write_event(&mut self.events, e, 0.0, true)?;
        }
        Ok(())
    }

    /// Appends input samples (audio).
    pub fn samples(&mut self, x: &[f32]) -> std::io::Result<()> {
        use std::io::Write;
        if let Some((w, n)) = self.wav.as_mut() {
            for v in x {
                let s = (v.clamp(-1.0, 1.0) * 32767.0).round() as i16;
                w.write_all(&s.to_le_bytes())?;
            }
            *n = n.saturating_add(x.len() as u32);
        }
        Ok(())
    }

    /// Flushes and writes the WAV sizes.
    pub fn finish(self, rate: Option<u32>) -> std::io::Result<()> {
        use std::io::{Seek, Write};
        let mut ev = self.events;
        ev.flush()?;
        if let (Some((w, n)), Some(r)) = (self.wav, rate) {
            let mut f = w.into_inner().map_err(|e| e.into_error())?;
            f.seek(std::io::SeekFrom::Start(0))?;
            f.write_all(&wav_header(r, n))?;
        }
        eprintln!("recorded: {}", self.names);
        Ok(())
    }
}

/// A 44-byte PCM WAV header: mono, 16-bit, `samples` samples at `rate`.
fn wav_header(rate: u32, samples: u32) -> [u8; 44] {
    let data = samples.saturating_mul(2);
    let mut h = [0u8; 44];
    let mut put = |at: usize, b: &[u8]| h[at..at + b.len()].copy_from_slice(b);
    put(0, b"RIFF");
    put(4, &data.saturating_add(36).to_le_bytes());
    put(8, b"WAVEfmt ");
    put(16, &16u32.to_le_bytes());
    put(20, &1u16.to_le_bytes());
    put(22, &1u16.to_le_bytes());
    put(24, &rate.to_le_bytes());
    put(28, &(rate * 2).to_le_bytes());
    put(32, &2u16.to_le_bytes());
    put(34, &16u16.to_le_bytes());
    put(36, b"data");
    put(40, &data.to_le_bytes());
    h
}

/// The loop's end of the window: see the [module documentation](self).
pub struct Link {
    tx: Sender<Update>,
    ctl: Receiver<Control>,
    pending: Update,
    last_send: Instant,
    /// Values per feature frame and labels, to bound the pending history.
    n_bins: usize,
    n_labels: usize,
    /// Most feature frames / posterior rows kept pending.
    max_rows: usize,
    step_period_s: f64,
    /// A switch the window asked for, for the supervisor.
    switch: Option<(PathBuf, Input)>,
}

impl Link {
    /// Offers what the loop made; cheap (copies into the pending update).
    pub fn offer(&mut self, f: impl FnOnce(&mut Update)) {
        f(&mut self.pending);
        let p = &mut self.pending;
        trim_rows(&mut p.features, self.n_bins, self.max_rows);
        let gone = trim_rows(&mut p.posteriors, self.n_labels, self.max_rows);
        if let Some(t0) = p.posteriors_t0.as_mut() {
            // the oldest rows went: the pending block starts later
            *t0 += gone as f64 * self.step_period_s;
        }
        if p.events.len() > KEEP_EVENTS {
            p.events.drain(..p.events.len() - KEEP_EVENTS);
        }
    }

    /// Is it time to offer and send again (every 25 ms)? The audio loop asks
    /// (its chunks come every 10 ms); the video loop sends every frame.
    pub fn due(&self) -> bool {
        self.last_send.elapsed() >= SEND_EVERY
    }

    /// Sends the pending update if the UI has room; never waits. (The UI
    /// repaints every 33 ms by itself.)
    pub fn flush(&mut self) {
        self.last_send = Instant::now();
        if let Err(TrySendError::Full(u)) = self.tx.try_send(std::mem::take(&mut self.pending)) {
            self.pending = u;
        }
    }

    /// Carries out a Record request (`want`): starts `recorder` (audio at
    /// `rate`) or finishes it, and tells the window; a failure is a warning,
    /// recognition goes on.
    pub fn record(
        &mut self,
        want: Option<bool>,
        recorder: &mut Option<Recorder>,
        rate: Option<u32>,
    ) {
        match (want, recorder.is_some()) {
            (Some(true), false) => match Recorder::start(rate) {
                Ok(r) => {
                    let names = r.names.clone();
                    *recorder = Some(r);
                    self.offer(|u| u.recording = Some(names));
                }
                Err(e) => eprintln!("\rwarning: {e:#}"),
            },
            (Some(false), true) => {
                if let Some(r) = recorder.take()
                    && let Err(e) = r.finish(rate)
                {
                    eprintln!("\rwarning: recording: {e}");
                }
                self.offer(|u| u.recording = Some(String::new()));
            }
            _ => {}
        }
    }

    /// Applies what the window asked since the last call (never waits):
    /// new thresholds go to `proc` at once; the rest is for the loop to
    /// carry out (a reset also closes and prints events). A switch stops
    /// the loop and waits in the link for [`Link::take_switch`].
    pub fn apply_controls(&mut self, proc: &mut seqrec::pipeline::StreamProcessor) -> Asked {
        let mut a = Asked::default();
        while let Ok(c) = self.ctl.try_recv() {
            match c {
                Control::Thresholds(on, off) => proc.set_thresholds(&on, &off),
                Control::Reset => a.reset = true,
                Control::Stop => {
                    a.stop = true;
                    // closing the window wins over a switch asked just before
                    self.switch = None;
                }
                Control::Record(on) => a.record = Some(on),
                Control::Switch(bundle, input) => {
                    a.stop = true;
                    self.switch = Some((bundle, input));
                }
            }
        }
        a
    }

    /// The switch the window asked for, if the loop stopped for one. A Stop
    /// that arrives meanwhile (the window closed) cancels it.
    pub fn take_switch(&mut self) -> Option<(PathBuf, Input)> {
        let s = self.switch.take()?;
        while let Ok(c) = self.ctl.try_recv() {
            if matches!(c, Control::Stop) {
                return None;
            }
        }
        Some(s)
    }

    /// From now on the loop runs `layout`: what is pending of the old one is
    /// dropped and the window gets the layout before anything of the new.
    pub fn set_layout(&mut self, layout: Layout) {
        self.n_bins = layout.n_bins;
        self.n_labels = layout.labels.len();
        self.max_rows = max_rows(&layout);
        self.step_period_s = layout.step_period_s;
        self.pending = Update {
            layout: Some(layout),
            ..Update::default()
        };
        self.flush();
    }

    /// Shows `msg` in the window's status line (and on stderr).
    pub fn notice(&mut self, msg: String) {
        eprintln!("\r{msg}");
        self.offer(|u| u.notice = Some(msg));
        self.flush();
    }
}

/// Feature frames / posterior rows a pending update keeps: SHOW_S of them.
fn max_rows(l: &Layout) -> usize {
    let rows = |period: f64| ((SHOW_S / period.max(1e-3)).ceil() as usize).max(16);
    rows(l.feature_period_s.min(l.step_period_s))
}

/// Keeps the last `max_rows` rows of `width` values; returns the rows dropped.
fn trim_rows(v: &mut Vec<f32>, width: usize, max_rows: usize) -> usize {
    if width == 0 || v.len() <= width * max_rows {
        return 0;
    }
    let gone = v.len() / width - max_rows;
    v.drain(..gone * width);
    gone
}

/// The stream's open events on the run's timeline (`seg_s`: where the
/// stream's own clock started on it), for [`Update::open`].
pub fn open_events(proc: &seqrec::pipeline::StreamProcessor, seg_s: f64) -> Vec<(usize, f64, f32)> {
    proc.open_events()
        .map(|(i, t, m)| (i, t + seg_s, m))
        .collect()
}

/// The window's statistics from a stream's stage times, the capture-to-event
/// latencies so far (ms) and the dropped chunks or frames.
pub fn stats_view(s: &seqrec::pipeline::StageStats, latencies: &[f64], dropped: u64) -> StatsView {
    let steps = if s.embeddings > 0 {
        s.embeddings
    } else {
        s.frames
    };
    let per = |v: f64| 1e3 * v / steps.max(1) as f64;
    let latency_ms = (!latencies.is_empty()).then(|| {
        let mut v = latencies.to_vec();
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        (at(0.5), at(0.99), v.len())
    });
    StatsView {
        latency_ms,
        dropped,
        stage_ms: [
            per(s.features_s),
            per(s.embed_s),
            per(s.sequence_s),
            per(s.decision_s),
        ],
        steps,
    }
}

/// How the window is set up.
pub struct WindowOptions {
    /// The first stream's layout.
    pub layout: Layout,
    /// What the bundle and input pickers offer.
    pub choices: Choices,
    /// Close after this many seconds.
    pub duration: Option<f64>,
    /// Write a PNG of the window just before it closes.
    pub screenshot: Option<PathBuf>,
}

/// Says why no window can open, if that is known before trying: no
/// `DISPLAY` and no `WAYLAND_DISPLAY`.
pub fn display_missing() -> Option<String> {
    let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    (!set("DISPLAY") && !set("WAYLAND_DISPLAY"))
        .then(|| "no display (DISPLAY and WAYLAND_DISPLAY are unset)".to_string())
}

/// The channels between a loop and a window.
pub fn link(layout: &Layout) -> (Link, Receiver<Update>, Sender<Control>) {
    let (tx, rx) = crossbeam_channel::bounded(2);
    let (ctl_tx, ctl_rx) = crossbeam_channel::unbounded();
    let link = Link {
        tx,
        ctl: ctl_rx,
        pending: Update::default(),
        last_send: Instant::now(),
        n_bins: layout.n_bins,
        n_labels: layout.labels.len(),
        max_rows: max_rows(layout),
        step_period_s: layout.step_period_s,
        switch: None,
    };
    (link, rx, ctl_tx)
}

/// Runs the window on this thread until it is closed, `duration` passes or
/// the loop ends (its [`Link`] is dropped); then asks the loop to stop.
///
/// # Errors
/// When no window can be opened (no display, no OpenGL).
pub fn run(opts: WindowOptions, rx: Receiver<Update>, ctl: Sender<Control>) -> Result<(), String> {
    let title = "seqrec live".to_string();
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title(title.clone())
            .with_inner_size([960.0, 700.0]),
        ..Default::default()
    };
    let ctl_on_close = ctl.clone();
    let res = eframe::run_native(
        &title,
        native,
        Box::new(move |_cc| Ok(Box::new(LiveApp::new(opts, rx, ctl)))),
    );
    let _ = ctl_on_close.send(Control::Stop);
    res.map_err(|e| e.to_string())
}

struct LiveApp {
    opts: WindowOptions,
    rx: Receiver<Update>,
    ctl: Sender<Control>,
    started: Instant,
    /// What is shown of the running stream (afresh at every layout).
    view: View,
    /// The slider: the first label's `on` threshold; others move with it.
    threshold: f32,
    base: (Vec<f32>, Vec<f32>),
    shot_asked: bool,
    closing: bool,
    loop_done: bool,
    recording: String,
    updates: u64,
    drawn: u64,
    reported: bool,
    /// The pickers: an index into `choices.bundles`, and one into the
    /// inputs of that bundle's kind.
    pick_bundle: usize,
    pick_input: usize,
    /// A switch was asked and its layout has not come yet.
    switching: bool,
    notice: String,
}

/// What the window shows of one stream: it starts empty with every layout.
struct View {
    /// Feature frames of the last SHOW_S seconds (audio).
    feats: VecDeque<Vec<f32>>,
    /// Posterior rows with their times.
    posts: VecDeque<(f64, Vec<f32>)>,
    /// Next posterior row's time when an update did not say.
    next_post_t: f64,
    events: VecDeque<Event>,
    /// Events open now, on the run's timeline.
    open: Vec<(usize, f64, f32)>,
    scores: Vec<f32>,
    level_db: f32,
    frame: Option<TextureHandle>,
    frame_size: Vec2,
    keypoints: Option<Vec<f32>>,
    stats: StatsView,
    time_s: f64,
    spectrogram: Option<TextureHandle>,
}

impl View {
    fn new(n_labels: usize) -> Self {
        View {
            feats: VecDeque::new(),
            posts: VecDeque::new(),
            next_post_t: 0.0,
            events: VecDeque::new(),
            open: Vec::new(),
            scores: vec![0.0; n_labels],
            level_db: -120.0,
            frame: None,
            frame_size: Vec2::ZERO,
            keypoints: None,
            stats: StatsView::default(),
            time_s: 0.0,
            spectrogram: None,
        }
    }
}

impl LiveApp {
    fn new(opts: WindowOptions, rx: Receiver<Update>, ctl: Sender<Control>) -> Self {
        let layout = opts.layout.clone();
        let mut app = Self {
            rx,
            ctl,
            started: Instant::now(),
            view: View::new(0),
            threshold: 0.5,
            base: (Vec::new(), Vec::new()),
            shot_asked: false,
            closing: false,
            loop_done: false,
            recording: String::new(),
            updates: 0,
            drawn: 0,
            reported: false,
            pick_bundle: 0,
            pick_input: 0,
            switching: false,
            notice: String::new(),
            opts,
        };
        app.start_layout(layout);
        app
    }

    /// A stream starts (the first, or after a switch): its layout replaces
    /// the old one, every view starts empty, the pickers and the slider
    /// follow it.
    fn start_layout(&mut self, layout: Layout) {
        (self.pick_bundle, self.pick_input) = picks_of(&self.opts.choices, &layout);
        self.base = layout.thresholds.clone();
        self.threshold = self.base.0.first().copied().unwrap_or(0.5);
        self.view = View::new(layout.labels.len());
        self.opts.layout = layout;
        self.recording.clear();
        self.switching = false;
        self.notice.clear();
    }

    fn take_updates(&mut self, ctx: &egui::Context) {
        let mut feats_changed = false;
        loop {
            let mut u = match self.rx.try_recv() {
                Ok(u) => u,
                Err(crossbeam_channel::TryRecvError::Empty) => break,
                Err(crossbeam_channel::TryRecvError::Disconnected) => {
                    // the loop ended (input over, --duration, an error)
                    self.loop_done = true;
                    break;
                }
            };
            self.updates += 1;
            if let Some(l) = u.layout.take() {
                self.start_layout(l);
                feats_changed = true;
            }
            if let Some(n) = u.notice.take() {
                self.notice = n;
                self.switching = false;
            }
            if let Some(o) = u.open.take() {
                self.view.open = o;
            }
            let n_labels = self.opts.layout.labels.len();
            if self.opts.layout.n_bins > 0 && !u.features.is_empty() {
                for f in u.features.chunks_exact(self.opts.layout.n_bins) {
                    self.view.feats.push_back(f.to_vec());
                }
                feats_changed = true;
            }
            if n_labels > 0 && !u.posteriors.is_empty() {
                let mut t = match u.posteriors_t0 {
                    Some(t) if t.is_finite() => t,
                    _ => self.view.next_post_t,
                };
                for row in u.posteriors.chunks_exact(n_labels) {
                    self.view.posts.push_back((t, row.to_vec()));
                    t += self.opts.layout.step_period_s;
                }
                self.view.next_post_t = t;
            }
            self.view.events.extend(u.events);
            if !u.scores.is_empty() {
                self.view.scores = u.scores;
            }
            if let Some(l) = u.level_db {
                self.view.level_db = l;
            }
            if let Some((w, h, rgb)) = u.frame {
                let img = ColorImage::from_rgb([w as usize, h as usize], &rgb);
                self.view.frame_size = Vec2::new(w as f32, h as f32);
                match &mut self.view.frame {
                    Some(t) => t.set(img, TextureOptions::LINEAR),
                    None => {
                        self.view.frame =
                            Some(ctx.load_texture("frame", img, TextureOptions::LINEAR))
                    }
                }
                self.view.keypoints = u.keypoints;
            }
            if let Some(s) = u.stats {
                self.view.stats = s;
            }
            if let Some(r) = u.recording {
                self.recording = r;
            }
            self.view.time_s = self.view.time_s.max(u.time_s);
        }
        let keep_feats = (SHOW_S / self.opts.layout.feature_period_s.max(1e-3)) as usize;
        while self.view.feats.len() > keep_feats {
            self.view.feats.pop_front();
        }
        let t_min = self.view.time_s - SHOW_S;
        while self.view.posts.front().is_some_and(|(t, _)| *t < t_min) {
            self.view.posts.pop_front();
        }
        while self.view.events.len() > KEEP_EVENTS {
            self.view.events.pop_front();
        }
        if feats_changed {
            self.spectrogram_texture(ctx);
        }
    }

    /// The feature frames as an image: time left to right, bin 0 at the
    /// bottom, colours scaled to the shown range.
    fn spectrogram_texture(&mut self, ctx: &egui::Context) {
        let (w, h) = (self.view.feats.len(), self.opts.layout.n_bins);
        if w == 0 || h == 0 {
            self.view.spectrogram = None;
            return;
        }
        let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
        for v in self.view.feats.iter().flatten().filter(|v| v.is_finite()) {
            lo = lo.min(*v);
            hi = hi.max(*v);
        }
        let span = (hi - lo).max(1e-6);
        let mut img = ColorImage::filled([w, h], Color32::BLACK);
        for (x, f) in self.view.feats.iter().enumerate() {
            for (b, v) in f.iter().enumerate() {
                let t = ((v - lo) / span).clamp(0.0, 1.0);
                img.pixels[(h - 1 - b) * w + x] = heat(t);
            }
        }
        match &mut self.view.spectrogram {
            Some(t) => t.set(img, TextureOptions::NEAREST),
            None => {
                self.view.spectrogram =
                    Some(ctx.load_texture("features", img, TextureOptions::NEAREST))
            }
        }
    }

    fn colour(&self, i: usize) -> Color32 {
        const C: [Color32; 10] = [
            Color32::from_rgb(31, 119, 180),
            Color32::from_rgb(255, 127, 14),
            Color32::from_rgb(44, 160, 44),
            Color32::from_rgb(214, 39, 40),
            Color32::from_rgb(148, 103, 189),
            Color32::from_rgb(140, 86, 75),
            Color32::from_rgb(227, 119, 194),
            Color32::from_rgb(127, 127, 127),
            Color32::from_rgb(188, 189, 34),
            Color32::from_rgb(23, 190, 207),
        ];
        C[i % C.len()]
    }

    fn top(&self, n: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.view.scores.len()).collect();
        order.sort_by(|&a, &b| self.view.scores[b].total_cmp(&self.view.scores[a]));
        order.truncate(n);
        order
    }

    fn controls(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.label(format!("{:7.1} s", self.view.time_s));
            ui.separator();
            let r = ui.add(egui::Slider::new(&mut self.threshold, 0.05..=0.99).text("threshold"));
            if r.changed() {
                let base_on = self.base.0.first().copied().unwrap_or(0.5).max(1e-3);
                let k = self.threshold / base_on;
                let on: Vec<f32> = self.base.0.iter().map(|v| (v * k).min(0.99)).collect();
                let off: Vec<f32> = self
                    .base
                    .1
                    .iter()
                    .zip(&on)
                    .map(|(o, n)| (o * k).min(*n))
                    .collect();
                let _ = self.ctl.send(Control::Thresholds(on, off));
            }
            if ui.button("Reset stream").clicked() {
                let _ = self.ctl.send(Control::Reset);
            }
            let rec = !self.recording.is_empty();
            if ui
                .button(if rec { "Stop recording" } else { "Record" })
                .clicked()
            {
                let _ = self.ctl.send(Control::Record(!rec));
            }
            if ui.button("Stop").clicked() {
                self.closing = true;
            }
            if rec {
                ui.colored_label(
                    Color32::from_rgb(230, 60, 60),
                    format!("● {}", self.recording),
                );
            }
        });
        self.pickers(ui);
    }

    /// Bundle and input pickers; Apply sends the switch.
    fn pickers(&mut self, ui: &mut egui::Ui) {
        let ch = &self.opts.choices;
        if ch.bundles.is_empty() {
            return;
        }
        ui.horizontal(|ui| {
            let before = self.pick_bundle;
            let shown = |b: &BundleChoice| {
                format!("{} ({})", b.name, if b.video { "video" } else { "audio" })
            };
            ui.label("bundle");
            egui::ComboBox::from_id_salt("bundle")
                .selected_text(shown(&ch.bundles[self.pick_bundle]))
                .show_ui(ui, |ui| {
                    for (i, b) in ch.bundles.iter().enumerate() {
                        ui.selectable_value(&mut self.pick_bundle, i, shown(b));
                    }
                });
            let video = ch.bundles[self.pick_bundle].video;
            let inputs = if video { &ch.video } else { &ch.audio };
            if self.pick_bundle != before && video != ch.bundles[before].video {
                self.pick_input = 0;
            }
            if inputs.is_empty() {
                ui.label(if video {
                    "no video input: no camera found (start with --ffmpeg-input to offer one)"
                } else {
                    "no audio input device found"
                });
                return;
            }
            self.pick_input = self.pick_input.min(inputs.len() - 1);
            ui.label("input");
            egui::ComboBox::from_id_salt("input")
                .width(280.0)
                .selected_text(inputs[self.pick_input].label.clone())
                .show_ui(ui, |ui| {
                    for (i, c) in inputs.iter().enumerate() {
                        ui.selectable_value(&mut self.pick_input, i, c.label.clone());
                    }
                });
            let (bundle, input) = (
                &ch.bundles[self.pick_bundle].path,
                &inputs[self.pick_input].input,
            );
            let same = *bundle == self.opts.layout.bundle && *input == self.opts.layout.input;
            let apply = ui.add_enabled(!same && !self.switching, egui::Button::new("Apply"));
            if apply.clicked() {
                self.switching = true;
                let _ = self
                    .ctl
                    .send(Control::Switch(bundle.clone(), input.clone()));
            }
            if self.switching {
                ui.label("switching…");
            } else if !self.notice.is_empty() {
                ui.colored_label(Color32::from_rgb(230, 160, 60), &self.notice);
            }
        });
    }

    fn stats_line(&self, ui: &mut egui::Ui) {
        let s = &self.view.stats;
        let lat = match s.latency_ms {
            Some((p50, p99, n)) => format!("latency p50 {p50:.0} ms, p99 {p99:.0} ms ({n} events)"),
            None => "latency: no event yet".into(),
        };
        ui.label(format!(
            "{lat}  |  dropped {}  |  per step: features {:.2} ms, embedder {:.2} ms, sequence {:.3} ms, decision {:.3} ms  |  {} steps",
            s.dropped, s.stage_ms[0], s.stage_ms[1], s.stage_ms[2], s.stage_ms[3], s.steps
        ));
    }

    fn bars(&self, ui: &mut egui::Ui) {
        for i in self.top(5) {
            let v = self.view.scores[i];
            let bar = egui::ProgressBar::new(v.clamp(0.0, 1.0))
                .desired_width(220.0)
                .fill(self.colour(i))
                .text(format!("{} {:.2}", self.opts.layout.labels[i], v));
            ui.add(bar);
        }
    }

    fn posteriors_plot(&self, ui: &mut egui::Ui, height: f32) {
        use egui_plot::{HLine, Line, LineStyle, Plot, PlotPoints};
        let t1 = self.view.time_s.max(SHOW_S);
        Plot::new("posteriors")
            .height(height)
            .include_y(0.0)
            .include_y(1.0)
            .include_x(t1 - SHOW_S)
            .include_x(t1)
            .allow_drag(false)
            .allow_zoom(false)
            .allow_scroll(false)
            .show(ui, |p| {
                for (i, name) in self.opts.layout.labels.iter().enumerate() {
                    let pts: PlotPoints = self
                        .view
                        .posts
                        .iter()
                        .map(|(t, row)| [*t, f64::from(row[i])])
                        .collect();
                    p.line(Line::new(name.clone(), pts).color(self.colour(i)));
                }
                let on = &self.base.0;
                let base_on = on.first().copied().unwrap_or(0.5).max(1e-3);
                let mut shown: Vec<f32> = Vec::new();
                for (i, v) in on.iter().enumerate() {
                    let thr = (v * self.threshold / base_on).min(0.99);
                    if !shown.iter().any(|s| (s - thr).abs() < 1e-3) {
                        shown.push(thr);
                        p.hline(
                            HLine::new(format!("threshold {}", self.opts.layout.labels[i]), thr)
                                .color(Color32::GRAY)
                                .style(LineStyle::dashed_dense()),
                        );
                    }
                }
            });
    }

    fn events_lane(&self, ui: &mut egui::Ui) {
        let (rect, _) =
            ui.allocate_exact_size(Vec2::new(ui.available_width(), 26.0), egui::Sense::hover());
        let p = ui.painter_at(rect);
        p.rect_filled(rect, 2.0, ui.visuals().extreme_bg_color);
        let t1 = self.view.time_s.max(SHOW_S);
        let x = |t: f64| rect.left() + ((t - (t1 - SHOW_S)) / SHOW_S) as f32 * rect.width();
        for e in &self.view.events {
            if e.end_s < t1 - SHOW_S {
                continue;
            }
            let i = self
                .opts
                .layout
                .labels
                .iter()
                .position(|l| *l == e.label)
                .unwrap_or(0);
            let r = Rect::from_min_max(
                Pos2::new(x(e.start_s).max(rect.left()), rect.top() + 2.0),
                Pos2::new(x(e.end_s).max(x(e.start_s) + 3.0), rect.bottom() - 2.0),
            );
            p.rect_filled(r, 3.0, self.colour(i));
            p.text(
                Pos2::new(r.left() + 3.0, r.center().y),
                egui::Align2::LEFT_CENTER,
                &e.label,
                egui::FontId::proportional(13.0),
                Color32::WHITE,
            );
        }
        // Open events run up to now, lighter, with an open right edge.
        for &(i, start_s, _) in &self.view.open {
            let Some(name) = self.opts.layout.labels.get(i) else {
                continue;
            };
            let r = Rect::from_min_max(
                Pos2::new(x(start_s).max(rect.left()), rect.top() + 2.0),
                Pos2::new(
                    x(self.view.time_s).max(x(start_s) + 3.0),
                    rect.bottom() - 2.0,
                ),
            );
            p.rect_filled(r, 3.0, self.colour(i).gamma_multiply(0.55));
            p.text(
                Pos2::new(r.left() + 3.0, r.center().y),
                egui::Align2::LEFT_CENTER,
                format!("{name}…"),
                egui::FontId::proportional(13.0),
                Color32::WHITE,
            );
        }
    }

    fn audio_view(&self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.vertical(|ui| {
                ui.label("input level");
                let lv = ((self.view.level_db + 60.0) / 60.0).clamp(0.0, 1.0);
                ui.add(
                    egui::ProgressBar::new(lv)
                        .desired_width(220.0)
                        .text(format!("{:.0} dBFS", self.view.level_db)),
                );
                ui.add_space(8.0);
                ui.label("top classes (smoothed)");
                self.bars(ui);
            });
            ui.vertical(|ui| {
                ui.label(format!("features (last {SHOW_S:.0} s)"));
                let size = Vec2::new(ui.available_width(), 170.0);
                // the texture holds what has been heard of the last SHOW_S
                // seconds: it fills the panel once SHOW_S have passed
                let keep = (SHOW_S / self.opts.layout.feature_period_s.max(1e-3)).max(1.0);
                let frac = (self.view.feats.len() as f64 / keep).clamp(0.02, 1.0) as f32;
                match &self.view.spectrogram {
                    Some(t) => {
                        let img = egui::Image::new(t)
                            .maintain_aspect_ratio(false)
                            .fit_to_exact_size(Vec2::new(size.x * frac, size.y));
                        ui.add(img);
                    }
                    None => {
                        ui.allocate_exact_size(size, egui::Sense::hover());
                    }
                }
            });
        });
    }

    fn video_view(&self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let Some(tex) = &self.view.frame else {
                ui.label("waiting for the first frame");
                return;
            };
            let scale =
                (420.0 / self.view.frame_size.x).min(300.0 / self.view.frame_size.y.max(1.0));
            let size = self.view.frame_size * scale;
            let r = ui.add(egui::Image::new(tex).fit_to_exact_size(size)).rect;
            let p = ui.painter_at(r);
            if let Some(kp) = &self.view.keypoints {
                let pt = |k: usize| {
                    Pos2::new(
                        r.left() + kp[3 * k + 1] * scale,
                        r.top() + kp[3 * k] * scale,
                    )
                };
                let seen = |k: usize| kp[3 * k + 2] >= 0.2;
                for (a, b) in SKELETON {
                    if seen(a) && seen(b) {
                        p.line_segment(
                            [pt(a), pt(b)],
                            Stroke::new(2.0, Color32::from_rgb(0, 255, 180)),
                        );
                    }
                }
                for k in (0..17).filter(|&k| seen(k)) {
                    p.circle_filled(pt(k), 3.0, Color32::YELLOW);
                }
            }
            if let Some(&i) = self.top(1).first() {
                let text = format!("{} {:.2}", self.opts.layout.labels[i], self.view.scores[i]);
                let at = r.left_top() + Vec2::new(8.0, 8.0);
                p.rect_filled(
                    Rect::from_min_size(
                        at - Vec2::new(4.0, 2.0),
                        Vec2::new(12.0 + 11.0 * text.len() as f32, 30.0),
                    ),
                    4.0,
                    Color32::from_black_alpha(160),
                );
                p.text(
                    at,
                    egui::Align2::LEFT_TOP,
                    text,
                    egui::FontId::proportional(22.0),
                    Color32::WHITE,
                );
            }
            ui.vertical(|ui| {
                ui.label("top classes (smoothed)");
                self.bars(ui);
            });
        });
    }
}

/// The pickers' positions for `layout`'s bundle and input (0 when the
/// choices do not hold them).
fn picks_of(ch: &Choices, layout: &Layout) -> (usize, usize) {
    let b = ch
        .bundles
        .iter()
        .position(|b| b.path == layout.bundle)
        .unwrap_or(0);
    let video = ch.bundles.get(b).is_some_and(|b| b.video);
    let inputs = if video { &ch.video } else { &ch.audio };
    let i = inputs
        .iter()
        .position(|c| c.input == layout.input)
        .unwrap_or(0);
    (b, i)
}

/// COCO keypoint pairs drawn as the skeleton.
const SKELETON: [(usize, usize); 16] = [
    (0, 1),
    (0, 2),
    (1, 3),
    (2, 4),
    (5, 6),
    (5, 7),
    (7, 9),
    (6, 8),
    (8, 10),
    (5, 11),
    (6, 12),
    (11, 12),
    (11, 13),
    (13, 15),
    (12, 14),
    (14, 16),
];

/// A dark-blue-to-yellow colour map.
fn heat(t: f32) -> Color32 {
    let c = |a: f32, b: f32, c: f32| (a + t * (b + t * c)).clamp(0.0, 1.0);
    let (r, g, b) = (c(0.05, 0.3, 0.6), c(0.0, 1.2, -0.3), c(0.3, 0.9, -1.1));
    Color32::from_rgb((r * 255.0) as u8, (g * 255.0) as u8, (b * 255.0) as u8)
}

impl eframe::App for LiveApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        self.take_updates(&ctx);
        // --screenshot: the reply arrives as an event a few frames later.
        let shot = ctx.input(|i| {
            i.raw.events.iter().find_map(|e| match e {
                egui::Event::Screenshot { image, .. } => Some(image.clone()),
                _ => None,
            })
        });
        if let (Some(img), Some(path)) = (shot, &self.opts.screenshot) {
            if let Err(e) = save_png(path, &img) {
                eprintln!("error: --screenshot {}: {e}", path.display());
            } else {
                eprintln!("screenshot: {}", path.display());
            }
            self.closing = true;
        }
        let due = self.loop_done
            || self
                .opts
                .duration
                .is_some_and(|d| self.started.elapsed().as_secs_f64() >= d);
        if due && !self.shot_asked {
            self.shot_asked = true;
            if self.opts.screenshot.is_some() {
                ctx.send_viewport_cmd(egui::ViewportCommand::Screenshot(Default::default()));
            } else {
                self.closing = true;
            }
        }
        self.drawn += 1;
        if self.closing {
            if !self.reported {
                self.reported = true;
                let secs = self.started.elapsed().as_secs_f64().max(1e-3);
                eprintln!(
                    "window: {} updates taken, {} frames drawn in {secs:.1} s ({:.1} per second)",
                    self.updates,
                    self.drawn,
                    self.drawn as f64 / secs
                );
            }
            let _ = self.ctl.send(Control::Stop);
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
        egui::CentralPanel::default().show(ui, |ui| self.panel(ui));
        ctx.request_repaint_after(Duration::from_millis(33));
    }
}

impl LiveApp {
    /// Everything the window shows, top to bottom.
    fn panel(&mut self, ui: &mut egui::Ui) {
        ui.heading(&self.opts.layout.title);
        self.controls(ui);
        ui.separator();
        if self.opts.layout.n_bins > 0 {
            self.audio_view(ui);
        } else {
            self.video_view(ui);
        }
        ui.separator();
        ui.label("posteriors and thresholds");
        self.posteriors_plot(ui, 200.0);
        ui.label("events");
        self.events_lane(ui);
        ui.separator();
        self.stats_line(ui);
    }
}

fn save_png(path: &std::path::Path, img: &ColorImage) -> anyhow::Result<()> {
    let [w, h] = img.size;
    let mut rgba = Vec::with_capacity(w * h * 4);
    for p in &img.pixels {
        rgba.extend_from_slice(&p.to_array());
    }
    image::save_buffer(
        path,
        &rgba,
        w as u32,
        h as u32,
        image::ExtendedColorType::Rgba8,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout {
            title: "t".into(),
            bundle: PathBuf::from("b"),
            input: Input::Mic(None),
            labels: vec!["a".into(), "b".into()],
            thresholds: (vec![0.5, 0.5], vec![0.4, 0.4]),
            n_bins: 3,
            feature_period_s: 0.5,
            step_period_s: 1.0,
        }
    }

    /// With nobody reading, the loop's offers and flushes never block:
    /// updates stay pending, their history cut to the last 10 s (20 feature
    /// frames at 0.5 s, rows of posteriors at 1 s with the block's start
    /// moved by the rows dropped); a reader then gets it all merged.
    /// Recording writes the events as JSON Lines and the samples as a WAV
    /// that decodes back to them (16-bit).
    #[test]
    fn recording_writes_events_and_a_wav() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Recorder::start_in(dir.path(), Some(16000)).unwrap();
        let x: Vec<f32> = (0..16000).map(|i| (i as f32 * 0.01).sin() * 0.5).collect();
        r.samples(&x[..7000]).unwrap();
        r.samples(&x[7000..]).unwrap();
        let e = Event {
            label: "yes".into(),
            start_s: 1.25,
            end_s: 1.5,
            score: 0.9,
        };
        r.events(std::slice::from_ref(&e)).unwrap();
        let names = r.names.clone();
        r.finish(Some(16000)).unwrap();
        let (jsonl, wav) = names.split_once(", ").unwrap();
        let line = std::fs::read_to_string(jsonl).unwrap();
        let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
        assert_eq!(
            (v["label"].as_str(), v["start_s"].as_f64()),
            (Some("yes"), Some(1.25))
        );
        let mut f = seqrec::source::AudioFile::open(wav, 16000).unwrap();
        let mut y = Vec::new();
        while f.read_chunk(&mut y).unwrap() > 0 {}
        assert_eq!(y.len(), x.len());
        let d = x
            .iter()
            .zip(&y)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(d < 1e-4, "{d}");
    }

    /// A switch stops the loop and waits in the link; a Stop sent after it
    /// (the window closed) cancels it; a new layout drops what was pending
    /// of the old stream and reaches the window before the new stream's rows.
    #[test]
    fn a_switch_stops_the_loop_and_the_new_layout_comes_first() {
        let l0 = layout();
        let (mut link, rx, ctl) = link(&l0);
        let rec = seqrec::pipeline::Recognizer::new(
            seqrec::bundle::Bundle::load(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/bundles/tone"),
            )
            .unwrap(),
        )
        .unwrap();
        let mut proc = rec.live_stream().unwrap();
        ctl.send(Control::Switch("x".into(), Input::Camera("1".into())))
            .unwrap();
        assert!(link.apply_controls(&mut proc).stop);
        assert_eq!(
            link.take_switch(),
            Some((PathBuf::from("x"), Input::Camera("1".into())))
        );
        ctl.send(Control::Switch("x".into(), Input::Ffmpeg))
            .unwrap();
        link.apply_controls(&mut proc);
        ctl.send(Control::Stop).unwrap();
        assert_eq!(link.take_switch(), None, "Stop after a switch wins");

        link.offer(|u| u.posteriors.extend_from_slice(&[0.5, 0.5]));
        let mut l1 = layout();
        l1.labels = vec!["x".into(), "y".into(), "z".into()];
        l1.step_period_s = 0.01;
        link.set_layout(l1);
        assert_eq!(link.n_labels, 3);
        assert_eq!(link.max_rows, 1000);
        let u = rx.try_recv().unwrap();
        assert_eq!(u.layout.map(|l| l.labels.len()), Some(3));
        assert!(u.posteriors.is_empty(), "the old stream's rows are dropped");
    }

    /// The pickers, driven as a user would (egui_kittest, no display):
    /// Apply is off while the running bundle and input are picked; picking
    /// another bundle and Apply asks the loop to switch (a video bundle
    /// takes a video input); the new layout, when it comes, resets the views
    /// and the pickers follow it.
    #[test]
    fn picking_a_bundle_and_applying_asks_the_loop_to_switch() {
        use egui_kittest::kittest::Queryable;
        let b = |p: &str, video| BundleChoice {
            path: p.into(),
            name: p.into(),
            video,
        };
        let choices = Choices {
            bundles: vec![b("b", false), b("other", false), b("cam", true)],
            audio: vec![
                InputChoice {
                    label: "default microphone".into(),
                    input: Input::Mic(None),
                },
                InputChoice {
                    label: "pulse".into(),
                    input: Input::Mic(Some("pulse".into())),
                },
            ],
            video: vec![InputChoice {
                label: "ffmpeg -i x".into(),
                input: Input::Ffmpeg,
            }],
        };
        let (tx, rx) = crossbeam_channel::bounded(2);
        let (ctl, ctl_rx) = crossbeam_channel::unbounded();
        let opts = WindowOptions {
            layout: layout(),
            choices,
            duration: None,
            screenshot: None,
        };
        let app = LiveApp::new(opts, rx, ctl);
        let mut h = egui_kittest::Harness::builder()
            .with_size(Vec2::new(960.0, 700.0))
            .build_ui_state(
                |ui, app: &mut LiveApp| {
                    app.take_updates(&ui.ctx().clone());
                    app.panel(ui);
                },
                app,
            );
        h.run();
        h.get_by_label("Apply").click();
        h.run();
        assert!(
            ctl_rx.try_recv().is_err(),
            "Apply is off for the running one"
        );
        let combo = |h: &egui_kittest::Harness<'_, LiveApp>, v: &str| {
            h.get_by(|n| n.value().as_deref() == Some(v)).click();
        };
        combo(&h, "b (audio)");
        h.run();
        h.get_by_label("other (audio)").click();
        h.run();
        h.get_by_label("Apply").click();
        h.run();
        match ctl_rx.try_recv() {
            Ok(Control::Switch(p, Input::Mic(None))) => assert_eq!(p, PathBuf::from("other")),
            other => panic!("{other:?}"),
        }
        assert!(h.state().switching);
        combo(&h, "other (audio)");
        h.run();
        h.get_by_label("cam (video)").click();
        h.run();
        h.get_by_label("Apply").click();
        h.run();
        assert!(
            ctl_rx.try_recv().is_err(),
            "no second switch while one runs"
        );
        let mut l = layout();
        l.bundle = "cam".into();
        l.input = Input::Ffmpeg;
        l.n_bins = 0;
        l.labels = vec!["x".into(), "y".into(), "z".into()];
        tx.send(Update {
            layout: Some(l),
            ..Update::default()
        })
        .unwrap();
        h.run();
        let app = h.state();
        assert!(!app.switching);
        assert_eq!((app.pick_bundle, app.pick_input), (2, 0));
        assert_eq!(app.view.scores.len(), 3);
        assert!(app.view.posts.is_empty() && app.view.events.is_empty());
    }

    #[test]
    fn a_slow_window_never_blocks_the_loop() {
        let (mut link, rx, _ctl) = link(&layout());
        let t = Instant::now();
        for i in 0..1000 {
            link.offer(|u| {
                u.features.extend_from_slice(&[i as f32; 3]);
                if u.posteriors.is_empty() {
                    u.posteriors_t0 = Some(i as f64);
                }
                u.posteriors.extend_from_slice(&[0.1, 0.9]);
                u.time_s = i as f64;
            });
            link.last_send = Instant::now() - SEND_EVERY;
            link.flush();
        }
        assert!(t.elapsed() < Duration::from_secs(2));
        // the two channel slots hold the first two updates; the rest pending
        let a = rx.try_recv().unwrap();
        assert_eq!(a.features, vec![0.0; 3]);
        let _ = rx.try_recv().unwrap();
        assert!(rx.try_recv().is_err());
        let p = &link.pending;
        assert_eq!(p.features.len(), 3 * link.max_rows);
        assert_eq!(p.features[0], (1000 - link.max_rows) as f32);
        assert_eq!(p.posteriors.len(), 2 * link.max_rows);
        assert_eq!(p.posteriors_t0, Some((1000 - link.max_rows) as f64));
        link.last_send = Instant::now() - SEND_EVERY;
        link.flush();
        assert_eq!(rx.try_recv().unwrap().time_s, 999.0);
    }
}
