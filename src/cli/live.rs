//! `seqrec live`: microphone (audio bundles) or camera / live FFmpeg input
//! (video bundles) -> events as they happen.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use seqrec::decision::Event;
use seqrec::pipeline::{Output, Recognizer};
use seqrec::source::mic::{MicOptions, Microphone};

use super::common::{
    DecisionFlags, LatencyStats, StatsFlags, StatsReport, load_bundle, write_event,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LiveFormat {
    /// Events as readable lines, with a status line (input level, top classes) on a terminal.
    Pretty,
    /// One JSON object per event: {"label", "start_s", "end_s", "score"}.
    Jsonl,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The model bundle directory.
    #[arg(long)]
    bundle: PathBuf,
    /// Input device. Audio: an index or (part of) a name from `seqrec devices` [default: the
    /// system default]. Camera: an index N (/dev/videoN) or a device path [default: 0].
    #[arg(long)]
    device: Option<String>,
    /// Video bundles: read a V4L2 camera (see --device, --size, --fps).
    #[arg(long, conflicts_with = "ffmpeg_input")]
    camera: bool,
    /// Video bundles: read a live FFmpeg input, given as FFmpeg's input options in one
    /// argument, e.g. "-re -f lavfi -i testsrc=size=320x240:rate=30" or "-i rtsp://host/cam".
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    ffmpeg_input: Option<String>,
    /// Camera resolution, WIDTHxHEIGHT [default: the camera's].
    #[arg(long, value_parser = parse_size)]
    size: Option<(u32, u32)>,
    /// Camera frame rate [default: the camera's].
    #[arg(long)]
    fps: Option<f64>,
    /// Stop after this many seconds (default: until Ctrl-C).
    #[arg(long)]
    duration: Option<f64>,
    /// Output style.
    #[arg(long, value_enum, default_value = "pretty")]
    format: LiveFormat,
    /// Audio bundles: when live stops, write a PNG of what it heard (the features on the
    /// posteriors' clock, the posteriors with thresholds, the events), as `batch --plot` does.
    /// Covers the first 30 minutes.
    #[arg(long, value_name = "FILE.png")]
    plot: Option<PathBuf>,
    /// Show a window: the features or frames, posteriors with thresholds, events, stats and
    /// controls (threshold, reset), updated as it runs. Events still go to stdout.
    #[arg(long)]
    window: bool,
    /// With --window --duration S: write a PNG of the window just before it closes.
    #[arg(long, value_name = "FILE.png", requires = "window")]
    screenshot: Option<PathBuf>,
    /// With --window: start recording at once (as the window's Record button does): the events
    /// to seqrec-live-<time>.jsonl and, for audio, the input to seqrec-live-<time>.wav here.
    #[arg(long, requires = "window")]
    record: bool,
    /// Audio bundles: do not recognize here; publish the microphone's audio as a live
    /// stream to this NATS JetStream cluster (comma-separated URLs), where `seqrec worker`s
    /// recognize it, and print the events they publish.
    #[arg(long, value_name = "URL", conflicts_with_all = ["window", "plot", "camera", "ffmpeg_input"])]
    publish: Option<String>,
    /// With --publish: the stream's id [default: live-<host>-<pid>].
    #[arg(long, requires = "publish")]
    stream: Option<String>,
    /// With --publish: the bundle's name on the cluster [default: the bundle folder's name].
    #[arg(long, requires = "publish")]
    cluster_bundle: Option<String>,
    /// With --publish: the cluster namespace (as the workers').
    #[arg(long, requires = "publish", default_value = "seqrec")]
    namespace: String,
    #[command(flatten)]
    stats: StatsFlags,
    #[command(flatten)]
    decision: DecisionFlags,
}

/// How much of a live run `--plot` keeps (bounded memory: 30 min of musicnn
/// features are ~43 MB).
const PLOT_KEEP_S: f64 = 1800.0;

/// Splits FFmpeg input options given as one argument into words, as a
/// shell would for simple cases: whitespace separates, single or double
/// quotes group (`-i "my camera.mp4"`), a backslash escapes the next
/// character.
fn split_args(s: &str) -> anyhow::Result<Vec<String>> {
    let (mut out, mut cur, mut quote, mut word) = (Vec::new(), String::new(), None, false);
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (c, quote) {
            ('\\', q) if q != Some('\'') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                    word = true;
                }
            }
            (q @ ('"' | '\''), None) => {
                quote = Some(q);
                word = true;
            }
            (c, Some(q)) if c == q => quote = None,
            (c, None) if c.is_whitespace() => {
                if word {
                    out.push(std::mem::take(&mut cur));
                    word = false;
                }
            }
            (c, _) => {
                cur.push(c);
                word = true;
            }
        }
    }
    if quote.is_some() {
        anyhow::bail!("--ffmpeg-input: unclosed quote in `{s}`");
    }
    if word {
        out.push(cur);
    }
    Ok(out)
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("`{s}` is not WIDTHxHEIGHT"))?;
    let p = |v: &str| {
        v.trim()
            .parse::<u32>()
            .map_err(|_| format!("`{s}` is not WIDTHxHEIGHT"))
    };
    Ok((p(w)?, p(h)?))
}

fn level_dbfs(x: &[f32]) -> f32 {
    if x.is_empty() {
        return -120.0;
    }
    let ms = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    (10.0 * ms.max(1e-12).log10()).max(-120.0)
}

/// The Ctrl-C flag, its handler installed once per process (the window's
/// supervisor runs the loops again after a switch, and a second handler
/// would be refused).
pub fn interrupted() -> anyhow::Result<Arc<AtomicBool>> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    if let Some(f) = FLAG.get() {
        return Ok(f.clone());
    }
    let f = Arc::new(AtomicBool::new(false));
    let g = f.clone();
    ctrlc::set_handler(move || g.store(true, Ordering::Release))
        .context("installing the Ctrl-C handler")?;
    Ok(FLAG.get_or_init(|| f).clone())
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let bundle = load_bundle(&a.bundle, &a.decision)?;
    let rec = Recognizer::new(bundle)?;
    if a.plot.is_some() && rec.kind() == seqrec::bundle::InputKind::Video {
        anyhow::bail!(
            "--plot is for audio bundles; {} is a video bundle",
            a.bundle.display()
        );
    }
    if rec.kind() == seqrec::bundle::InputKind::Video && a.publish.is_some() {
        anyhow::bail!(
            "--publish: live streams on the cluster are audio; {} is a video bundle",
            a.bundle.display()
        );
    }
    if rec.kind() == seqrec::bundle::InputKind::Video {
        let input = match (&a.ffmpeg_input, a.camera) {
            (Some(args), _) => super::video::LiveInput::Ffmpeg(split_args(args)?),
            (None, true) => super::video::LiveInput::Camera {
                device: a.device.clone(),
                size: a.size,
                fps: a.fps,
            },
            (None, false) => anyhow::bail!(
                "bundle {} is a video bundle: give --camera [--device N] or --ffmpeg-input ARGS",
                a.bundle.display()
            ),
        };
        #[cfg(feature = "window")]
        if a.window {
            return with_window(rec, &a, Some(input));
        }
        #[cfg(not(feature = "window"))]
        if a.window {
            anyhow::bail!("--window: this seqrec was built without the `window` feature");
        }
        return super::video::live(
            &rec,
            input,
            a.duration,
            a.format == LiveFormat::Jsonl,
            &a.stats,
            None,
        );
    }
    if let Some(urls) = &a.publish {
        let host = super::common::hostname();
        let folder = a
            .bundle
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "bundle".into());
        return super::publish::run(super::publish::Publish {
            nats: super::worker::NatsFlags {
                urls: vec![urls.clone()],
                namespace: a.namespace.clone(),
                replicas: None,
            },
            stream: a
                .stream
                .clone()
                .unwrap_or_else(|| format!("live-{host}-{}", std::process::id())),
            bundle: a.cluster_bundle.clone().unwrap_or(folder),
            sample_rate: rec.sample_rate(),
            device: a.device.as_deref(),
            duration: a.duration,
            jsonl: a.format == LiveFormat::Jsonl,
        });
    }
    if a.camera || a.ffmpeg_input.is_some() {
        anyhow::bail!(
            "bundle {} is an audio bundle: it listens to a microphone (drop --camera/--ffmpeg-input)",
            a.bundle.display()
        );
    }
    #[cfg(feature = "window")]
    if a.window {
        return with_window(rec, &a, None);
    }
    #[cfg(not(feature = "window"))]
    if a.window {
        anyhow::bail!("--window: this seqrec was built without the `window` feature");
    }
    audio_loop(&rec, &a, a.device.as_deref(), a.duration, None)
}

/// `--window`: the live loop on a worker thread, the window on this one.
/// The worker is a supervisor: when the window picks another bundle or
/// input, the loop ends and starts again on the new ones (see [`supervise`]).
#[cfg(feature = "window")]
fn with_window(
    rec: Recognizer,
    a: &Args,
    video: Option<super::video::LiveInput>,
) -> anyhow::Result<ExitCode> {
    use super::window;
    if let Some(why) = window::display_missing() {
        eprintln!(
            "error: --window: {why}; run without --window (--format pretty prints a status line)"
        );
        return Ok(ExitCode::from(2));
    }
    let ffmpeg = match &video {
        Some(super::video::LiveInput::Ffmpeg(args)) => Some(args.clone()),
        _ => None,
    };
    // the pickers name bundles by their canonical directory
    let dir = &rec.bundle().dir;
    let here = dir.canonicalize().unwrap_or_else(|_| dir.clone());
    let choices = window::Choices::scan(here.parent().unwrap_or(&here), ffmpeg.as_deref());
    let input = match &video {
        None => window::Input::Mic(a.device.clone()),
        Some(super::video::LiveInput::Ffmpeg(_)) => window::Input::Ffmpeg,
        Some(super::video::LiveInput::Camera { device, .. }) => {
            window::Input::Camera(device.clone().unwrap_or_else(|| "0".into()))
        }
    };
    let layout = layout_of(&rec, &here, input)?;
    let opts = window::WindowOptions {
        layout,
        choices,
        duration: a.duration,
        screenshot: a.screenshot.clone(),
    };
    let (mut link, rx, ctl) = window::link(&opts.layout);
    if a.record {
        let _ = ctl.send(window::Control::Record(true));
    }
    std::thread::scope(|s| {
        let worker = s.spawn(move || supervise(rec, a, video, ffmpeg, &mut link));
        let shown = window::run(opts, rx, ctl);
        let res = worker
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the live loop panicked")));
        match shown {
            Ok(()) => res,
            Err(e) => {
                eprintln!(
                    "error: --window: could not open a window ({e}); run without --window (--format pretty prints a status line)"
                );
                Ok(ExitCode::from(2))
            }
        }
    })
}

/// What the window shows of `rec` on `input`.
#[cfg(feature = "window")]
fn layout_of(
    rec: &Recognizer,
    bundle: &std::path::Path,
    input: super::window::Input,
) -> anyhow::Result<super::window::Layout> {
    use super::window::Input;
    let cfg = rec.decision();
    let (n_bins, feature_period_s) = match rec.kind() {
        seqrec::bundle::InputKind::Audio => {
            let f = rec.bundle().feature_config()?;
            (f.n_bins(), f.hop_length() as f64 / f.sample_rate as f64)
        }
        seqrec::bundle::InputKind::Video => (0, rec.frame_period_s()),
    };
    let on = match &input {
        Input::Mic(None) => "the default microphone".to_string(),
        Input::Mic(Some(d)) => d.clone(),
        Input::Camera(c) => format!("camera {c}"),
        Input::Ffmpeg => "the FFmpeg input".into(),
    };
    Ok(super::window::Layout {
        title: format!("seqrec live: {} on {on}", rec.bundle().name),
        bundle: bundle.to_path_buf(),
        input,
        labels: rec.labels().to_vec(),
        thresholds: (cfg.on.clone(), cfg.off.clone()),
        n_bins,
        feature_period_s,
        step_period_s: rec.frame_period_s(),
    })
}

/// Runs the live loop for the window and starts it again on another bundle
/// or input when the window asks (the loop stops first: its open events are
/// closed and printed, a recording finished). `--duration` counts from the
/// first start. A choice that cannot be opened (bundle error, busy device)
/// is reported in the window and the previous one runs on. Returns when a
/// loop ends without a switch (Stop, window closed, input over, error).
#[cfg(feature = "window")]
fn supervise(
    mut rec: Recognizer,
    a: &Args,
    mut video: Option<super::video::LiveInput>,
    ffmpeg: Option<Vec<String>>,
    link: &mut Link,
) -> anyhow::Result<ExitCode> {
    use super::video::LiveInput;
    use super::window::Input;
    let started = Instant::now();
    let mut device = a.device.clone();
    loop {
        let left = a
            .duration
            .map(|d| (d - started.elapsed().as_secs_f64()).max(0.0));
        let res = match &video {
            Some(input) => super::video::live(
                &rec,
                input.clone(),
                left,
                a.format == LiveFormat::Jsonl,
                &a.stats,
                Some(&mut *link),
            ),
            None => audio_loop(&rec, a, device.as_deref(), left, Some(&mut *link)),
        };
        let Some((path, input)) = link.take_switch() else {
            return res;
        };
        if let Err(e) = &res {
            eprintln!("\rwarning: {e:#}");
        }
        let opened = (|| -> anyhow::Result<Recognizer> {
            let rec = Recognizer::new(load_bundle(&path, &a.decision)?)?;
            match (rec.kind(), &input) {
                (seqrec::bundle::InputKind::Audio, Input::Mic(_))
                | (seqrec::bundle::InputKind::Video, Input::Camera(_) | Input::Ffmpeg) => Ok(rec),
                _ => anyhow::bail!("{} does not read that kind of input", path.display()),
            }
        })();
        let rec_new = match opened {
            Ok(r) => r,
            Err(e) => {
                link.notice(format!(
                    "could not switch to {}: {e:#}; kept {}",
                    path.display(),
                    rec.bundle().name
                ));
                continue;
            }
        };
        rec = rec_new;
        match &input {
            Input::Mic(d) => {
                device = d.clone();
                video = None;
            }
            Input::Camera(id) => {
                video = Some(LiveInput::Camera {
                    device: Some(id.clone()),
                    size: a.size,
                    fps: a.fps,
                })
            }
            Input::Ffmpeg => video = ffmpeg.clone().map(LiveInput::Ffmpeg),
        }
        eprintln!("\rswitched to bundle {}", rec.bundle().name);
        link.set_layout(layout_of(&rec, &path, input)?);
    }
}

/// The live loops' end of the window (nothing without the `window` feature).
#[cfg(feature = "window")]
pub type Link = super::window::Link;
#[cfg(not(feature = "window"))]
pub type Link = ();

/// The microphone loop: capture -> stages -> events, until the input ends,
/// `--duration` passes, Ctrl-C, or the window asks to stop.
#[cfg_attr(
    not(feature = "window"),
    allow(unused_mut, unused_variables, unused_assignments)
)]
fn audio_loop(
    rec: &Recognizer,
    a: &Args,
    device: Option<&str>,
    duration: Option<f64>,
    mut link: Option<&mut Link>,
) -> anyhow::Result<ExitCode> {
    let mut proc = rec.live_stream()?;
    let mut mic = Microphone::open(&MicOptions {
        device: device.map(str::to_string),
        target_rate: rec.sample_rate(),
        ..MicOptions::default()
    })?;
    let stop = interrupted()?;
    let sr = rec.sample_rate() as f64;
    let status = a.format == LiveFormat::Pretty && std::io::stderr().is_terminal();
    eprintln!(
        "listening on {} ({} Hz, {} ch) with bundle {}{}",
        mic.device_name(),
        mic.native_rate(),
        mic.native_channels(),
        rec.bundle().name,
        if duration.is_some() {
            ""
        } else {
            "; Ctrl-C to stop"
        }
    );

    let t0 = Instant::now();
    let deadline = duration.map(|d| t0 + Duration::from_secs_f64(d.max(0.0)));
    let mut out = Output {
        keep_features: a.plot.is_some() || link.is_some(),
        keep_posteriors: a.plot.is_some() || link.is_some(),
        ..Output::default()
    };
    // What of out.features / out.posteriors the window has been offered.
    let (mut feats_sent, mut posts_sent) = (0usize, 0usize);
    let n_labels = rec.labels().len();
    let mut buf = Vec::with_capacity(4096);
    // Samples consumed since the start (the timeline), and since the last reset.
    let (mut total_samples, mut segment_start) = (0u64, 0u64);
    let mut dropped_seen = 0u64;
    let mut latencies = Vec::new();
    let mut last_status = Instant::now();
    let stdout = std::io::stdout();
    // Events on the whole timeline, for --plot and the window.
    let mut plotted: Vec<Event> = Vec::new();
    let keep_events = a.plot.is_some() || link.is_some();
    let mut shown_events = 0usize;
    #[cfg(feature = "window")]
    let mut recorder: Option<super::window::Recorder> = None;
    let emit = |plotted: &mut Vec<Event>,
                events: &mut Vec<Event>,
                seg_start_s: f64,
                latency: &mut Vec<f64>,
                lat_ms: Option<f64>|
     -> anyhow::Result<()> {
        let mut w = stdout.lock();
        for e in events.drain(..) {
            if keep_events {
                plotted.push(Event {
                    start_s: e.start_s + seg_start_s,
                    end_s: e.end_s + seg_start_s,
                    ..e.clone()
                });
            }
            if status {
                eprint!("\r\x1b[2K");
            }
            write_event(&mut w, &e, seg_start_s, a.format == LiveFormat::Jsonl)?;
            if let Some(l) = lat_ms {
                latency.push(l);
            }
        }
        w.flush()?;
        Ok(())
    };

    let result: anyhow::Result<()> = loop {
        if stop.load(Ordering::Acquire) || deadline.is_some_and(|d| Instant::now() >= d) {
            break Ok(());
        }
        #[cfg(feature = "window")]
        if let Some(l) = link.as_deref_mut() {
            let asked = l.apply_controls(&mut proc);
            if asked.stop {
                break Ok(());
            }
            l.record(asked.record, &mut recorder, Some(rec.sample_rate()));
            if asked.reset {
                let seg_s = segment_start as f64 / sr;
                if let Err(e) = proc.finish(&mut out) {
                    break Err(e.into());
                }
                emit(&mut plotted, &mut out.events, seg_s, &mut latencies, None)?;
                segment_start = total_samples;
            }
        }
        buf.clear();
        let n = match mic.read(&mut buf, Duration::from_millis(100)) {
            Ok(n) => n,
            Err(e) => {
                break Err(
                    anyhow::Error::new(e).context("the input device failed; capture stopped")
                );
            }
        };
        let dropped = mic.dropped_chunks();
        if dropped > dropped_seen {
            // A gap in the input: close what was open and start the stages afresh.
            let seg_s = segment_start as f64 / sr;
            if let Err(e) = proc.finish(&mut out) {
                break Err(e.into());
            }
            emit(&mut plotted, &mut out.events, seg_s, &mut latencies, None)?;
            let newly = dropped - dropped_seen;
            // Chunks are MicOptions::chunk_ms (10 ms) long: keep the timeline true.
            total_samples += newly * (sr as u64) / 100;
            segment_start = total_samples;
            dropped_seen = dropped;
            eprintln!(
                "\rwarning: {newly} chunk(s) dropped (processing fell behind); stream state reset"
            );
        }
        if n == 0 {
            continue;
        }
        #[cfg(feature = "window")]
        if let Some(r) = recorder.as_mut()
            && let Err(e) = r.samples(&buf)
        {
            eprintln!("\rwarning: recording stopped: {e}");
            recorder = None;
        }
        let level = level_dbfs(&buf);
        if let Err(e) = proc.push(&buf, &mut out) {
            break Err(e.into());
        }
        total_samples += n as u64;
        if out.keep_posteriors && total_samples as f64 / sr >= PLOT_KEEP_S {
            out.keep_features = false;
            out.keep_posteriors = false;
            eprintln!("\rnote: --plot keeps the first {PLOT_KEEP_S} s only");
        }
        if !out.events.is_empty() {
            // Latency: from the capture of the newest sample to now, the moment the event is out.
            let lat = mic
                .last_chunk_captured_at()
                .map(|c| c.elapsed().as_secs_f64() * 1e3 - 1e3 * n as f64 / sr);
            emit(
                &mut plotted,
                &mut out.events,
                segment_start as f64 / sr,
                &mut latencies,
                lat,
            )?;
        }
        #[cfg(feature = "window")]
        if let Some(l) = link.as_deref_mut()
            && l.due()
        {
            let period = proc.frame_period_s();
            let rows = (out.posteriors.len() - posts_sent) / n_labels.max(1);
            let t0 = segment_start as f64 / sr
                + proc.time_offset_s()
                + (proc.frames() as f64 - rows as f64) * period;
            let stats = super::window::stats_view(proc.stats(), &latencies, mic.dropped_chunks());
            l.offer(|u| {
                u.features.extend_from_slice(&out.features[feats_sent..]);
                if rows > 0 {
                    if u.posteriors.is_empty() {
                        u.posteriors_t0 = Some(t0);
                    }
                    u.posteriors
                        .extend_from_slice(&out.posteriors[posts_sent..]);
                }
                u.events.extend_from_slice(&plotted[shown_events..]);
                if let Some(r) = recorder.as_mut() {
                    let _ = r.events(&plotted[shown_events..]);
                }
                u.scores = proc.last_scores().to_vec();
                let seg_s = segment_start as f64 / sr;
                u.open = Some(super::window::open_events(&proc, seg_s));
                u.level_db = Some(level);
                u.stats = Some(stats);
                u.time_s = total_samples as f64 / sr;
            });
            l.flush();
            shown_events = plotted.len();
            if a.plot.is_some() {
                (feats_sent, posts_sent) = (out.features.len(), out.posteriors.len());
            } else {
                out.features.clear();
                out.posteriors.clear();
                plotted.clear();
                shown_events = 0;
            }
        }
        if status && last_status.elapsed() > Duration::from_millis(100) {
            last_status = Instant::now();
            let scores = proc.last_scores();
            let mut order: Vec<usize> = (0..scores.len()).collect();
            order.sort_by(|&x, &y| scores[y].total_cmp(&scores[x]));
            let top: Vec<String> = order
                .iter()
                .take(3)
                .map(|&i| format!("{} {:.2}", rec.labels()[i], scores[i]))
                .collect();
            let bars = ((level + 60.0) / 60.0 * 20.0).clamp(0.0, 20.0) as usize;
            eprint!(
                "\r\x1b[2K{:7.1} s  level {:>6.1} dBFS [{:<20}]  {}",
                total_samples as f64 / sr,
                level,
                "#".repeat(bars),
                top.join("  ")
            );
        }
    };
    if status {
        eprint!("\r\x1b[2K");
    }
    // Close events still open at the end.
    let seg_s = segment_start as f64 / sr;
    proc.finish(&mut out)?;
    emit(&mut plotted, &mut out.events, seg_s, &mut latencies, None)?;
    #[cfg(feature = "window")]
    if let Some(mut r) = recorder.take() {
        let done = r
            .events(&plotted[shown_events.min(plotted.len())..])
            .and_then(|()| r.finish(Some(rec.sample_rate())));
        if let Err(e) = done {
            eprintln!("warning: recording: {e}");
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    if let Some(path) = &a.plot {
        let title = format!("live: {} on {}", rec.bundle().name, mic.device_name());
        let clock = (rec.frame_period_s(), rec.time_offset_s());
        out.events = plotted;
        super::common::plot(rec, path.clone(), &title, &out, clock)
            .with_context(|| format!("writing the plot {}", path.display()))?;
        eprintln!("plot: {}", path.display());
    }
    let report = StatsReport::new(
        proc.stats(),
        total_samples as f64 / sr,
        wall,
        1,
        0,
        mic.dropped_chunks(),
    )
    .with_latency(LatencyStats::from_samples(latencies));
    a.stats.emit(&report)?;
    result?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::split_args;

    /// The window's supervisor on a live FFmpeg input (no display needed:
    /// the test plays the window's part on the channels). It runs
    /// models/action, switches to models/pose-action when asked (the new
    /// layout comes first, then posteriors of its 7 labels), keeps running
    /// with a notice when asked for a bundle that does not load, and returns
    /// when asked to stop.
    #[cfg(feature = "window")]
    #[test]
    fn the_window_switches_bundles_without_a_restart() {
        use super::super::window::{Control, Input, Update};
        use std::time::{Duration, Instant};
        #[derive(clap::Parser)]
        struct T {
            #[command(flatten)]
            a: super::Args,
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let action = root.join("models/action");
        let t = <T as clap::Parser>::try_parse_from([
            "t",
            "--bundle",
            action.to_str().unwrap(),
            "--format",
            "jsonl",
            "--duration",
            "60",
        ])
        .unwrap();
        let rec =
            seqrec::pipeline::Recognizer::new(super::load_bundle(&action, &t.a.decision).unwrap())
                .unwrap();
        let ff: Vec<String> = "-re -f lavfi -i testsrc2=size=160x120:rate=15"
            .split(' ')
            .map(String::from)
            .collect();
        let layout = super::layout_of(&rec, &action, Input::Ffmpeg).unwrap();
        let n0 = layout.labels.len();
        let (mut link, rx, ctl) = super::super::window::link(&layout);
        let a = &t.a;
        std::thread::scope(|s| {
            let input = super::super::video::LiveInput::Ffmpeg(ff.clone());
            let worker =
                s.spawn(move || super::supervise(rec, a, Some(input), Some(ff), &mut link));
            let deadline = Instant::now() + Duration::from_secs(50);
            let next = || -> Update {
                let left = deadline.saturating_duration_since(Instant::now());
                rx.recv_timeout(left).expect("an update from the loop")
            };
            // posteriors of the first bundle
            while next().posteriors.len() < n0 {}
            ctl.send(Control::Switch(
                root.join("models/nonexistent"),
                Input::Ffmpeg,
            ))
            .unwrap();
            let notice = loop {
                if let Some(n) = next().notice {
                    break n;
                }
            };
            assert!(notice.contains("could not switch"), "{notice}");
            let u = loop {
                let u = next();
                assert!(u.layout.is_none());
                if !u.posteriors.is_empty() {
                    break u;
                }
            };
            assert_eq!(u.posteriors.len() % n0, 0, "still the first bundle");
            ctl.send(Control::Switch(
                root.join("models/pose-action"),
                Input::Ffmpeg,
            ))
            .unwrap();
            let l = loop {
                if let Some(l) = next().layout {
                    break l;
                }
            };
            assert_eq!(l.labels.len(), 7, "{:?}", l.labels);
            assert!(l.title.contains("pose"), "{}", l.title);
            let u = loop {
                let u = next();
                if !u.posteriors.is_empty() {
                    break u;
                }
            };
            assert_eq!(u.posteriors.len() % 7, 0);
            assert!(u.keypoints.is_some(), "a pose bundle shows keypoints");
            ctl.send(Control::Stop).unwrap();
            let code = worker.join().unwrap().unwrap();
            assert_eq!(code, std::process::ExitCode::SUCCESS);
        });
    }

    #[test]
    fn ffmpeg_input_splits_like_a_shell() {
        assert_eq!(
            split_args(r#"-re -i "my clip.mp4" -f  lavfi 'a b' x\ y """#).unwrap(),
            ["-re", "-i", "my clip.mp4", "-f", "lavfi", "a b", "x y", ""]
        );
        assert!(split_args("-i 'open").is_err());
        assert!(split_args("  ").unwrap().is_empty());
    }
}
