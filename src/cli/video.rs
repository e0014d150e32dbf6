//! The video halves of `seqrec embed` and `seqrec live`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::Context;
use seqrec::bundle::Bundle;
use seqrec::embed::{Embedder, EmbedderSection};
use seqrec::features::pose::{self, PoseStage};
use seqrec::features::video::{Decimator, Preprocessor};
use seqrec::pipeline::{Output, Recognizer};
use seqrec::source::video::{self, Frame, VideoSource};

use super::common::{LatencyStats, StatsReport, write_event};

/// Per-frame CNN features of a video file or image folder:
/// `(values, dims, steps, summary)`.
pub fn embed(
    bundle: &Bundle,
    section: &EmbedderSection,
    input: &Path,
    batch: Option<usize>,
    folder_fps: f64,
) -> anyhow::Result<(Vec<f32>, usize, usize, String)> {
    let cfg = bundle
        .video
        .clone()
        .context("a video bundle needs a [video] section")?;
    let e = Embedder::load(section, cfg.tensor_len())?;
    let mut pose = bundle.pose.as_ref().map(PoseStage::new);
    if let Some(p) = &pose {
        if e.output_size() != pose::INPUT_LEN {
            anyhow::bail!(
                "{}: [pose] needs an embedder giving {} values per frame (17 x (y, x, score)), {} gives {}",
                bundle.dir.display(),
                pose::INPUT_LEN,
                e.path().display(),
                e.output_size()
            );
        }
        if p.tracks() && batch.is_some_and(|b| b > 1) {
            anyhow::bail!(
                "--batch: the pose crop follows the person frame by frame, so frames run one at a time"
            );
        }
    }
    let tracked = pose.as_ref().is_some_and(PoseStage::tracks);
    let batch = if tracked { Some(1) } else { batch };
    // One input on all cores, as `seqrec batch` gives a lone file: the
    // CNN's ONNX Runtime session gets every core (was 1: 87 frames/s).
    let mut s = e.stream_with_threads(batch.unwrap_or(e.max_batch()), super::common::cores())?;
    let mut src = video::open(input, Some(folder_fps))?;
    let info = src.info().clone();
    let mut prep = Preprocessor::new(&cfg)?;
    let mut decim = Decimator::new(&cfg, info.fps);
    let (mut frame, mut tensor, mut embs) = (Frame::new(), Vec::new(), Vec::new());
    let (mut read, mut kept) = (0u64, 0u64);
    // Rows of `embs` already mapped to frame pixels.
    let mut mapped = 0;
    while src.read(&mut frame)? {
        read += 1;
        if !decim.keep(&frame) {
            continue;
        }
        kept += 1;
        tensor.clear();
        match pose.as_mut() {
            Some(p) => p.prepare(&mut prep, &frame, &mut tensor),
            None => prep.process(&frame, &mut tensor),
        }
        s.push(&tensor, &mut embs)?;
        if let Some(p) = pose.as_mut() {
            p.keypoints_in_place(&mut embs[mapped..]);
            mapped = embs.len();
        }
    }
    s.flush(&mut embs)?;
    if let Some(p) = pose.as_mut() {
        p.keypoints_in_place(&mut embs[mapped..]);
    }
    let d = e.output_size();
    let steps = embs.len() / d;
    let what = match &pose {
        Some(p) => format!(
            "{read} frames of {}x{} at {:.2} fps -> {kept} kept -> {steps} x 17 keypoints (y, x, score; pixels){}",
            info.width,
            info.height,
            info.fps,
            if p.tracks() {
                ", crop following the person"
            } else {
                ""
            }
        ),
        None => format!(
            "{read} frames of {}x{} at {:.2} fps -> {kept} kept -> {steps} x {d} features",
            info.width, info.height, info.fps
        ),
    };
    Ok((embs, d, steps, what))
}

/// Offers the window the newest frame (at most 320 px wide), its pose
/// keypoints, the posteriors and events since the last offer, and stats.
#[cfg(feature = "window")]
#[allow(clippy::too_many_arguments)]
fn offer_frame(
    l: &mut super::window::Link,
    frame: &Frame,
    proc: &seqrec::pipeline::StreamProcessor,
    out: &mut Output,
    seg_s: f64,
    shown: &mut Vec<seqrec::decision::Event>,
    latencies: &[f64],
    dropped: u64,
) {
    let k = frame.width.div_ceil(320).max(1);
    let (w, h) = (frame.width / k, frame.height / k);
    let mut small = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            small.extend_from_slice(&frame.pixel(x * k, y * k));
        }
    }
    let n = proc.last_scores().len().max(1);
    let rows = out.posteriors.len() / n;
    let period = proc.frame_period_s();
    let t0 = seg_s + proc.time_offset_s() + (proc.frames() as f64 - rows as f64) * period;
    let kp = (out.embeddings.len() >= 51).then(|| {
        let last = &out.embeddings[out.embeddings.len() - 51..];
        last.iter()
            .enumerate()
            .map(|(i, v)| if i % 3 == 2 { *v } else { v / k as f32 })
            .collect()
    });
    let stats = super::window::stats_view(proc.stats(), latencies, dropped);
    l.offer(|u| {
        if rows > 0 {
            if u.posteriors.is_empty() {
                u.posteriors_t0 = Some(t0);
            }
            u.posteriors.extend_from_slice(&out.posteriors);
        }
        u.events.append(shown);
        u.scores = proc.last_scores().to_vec();
        u.open = Some(super::window::open_events(proc, seg_s));
        u.frame = Some((w, h, small));
        if kp.is_some() {
            u.keypoints = kp;
        }
        u.stats = Some(stats);
        u.time_s = seg_s + proc.time_offset_s() + proc.frames() as f64 * period;
    });
    l.flush();
    out.posteriors.clear();
    out.embeddings.clear();
}

/// Where live frames come from.
#[derive(Debug, Clone)]
pub enum LiveInput {
    /// A V4L2 camera: device index or path, optional size and rate.
    Camera {
        device: Option<String>,
        size: Option<(u32, u32)>,
        fps: Option<f64>,
    },
    /// A live FFmpeg input (its input options), e.g. `-re -f lavfi -i testsrc`.
    Ffmpeg(Vec<String>),
}

/// Runs a video bundle on live frames until the input ends, `duration`
/// passes or Ctrl-C; events are printed as they close.
#[cfg_attr(
    not(feature = "window"),
    allow(unused_mut, unused_variables, unused_assignments)
)]
pub fn live(
    rec: &Recognizer,
    input: LiveInput,
    duration: Option<f64>,
    jsonl: bool,
    stats: &super::common::StatsFlags,
    mut link: Option<&mut super::live::Link>,
) -> anyhow::Result<ExitCode> {
    let mut src: Box<dyn VideoSource> = match input {
        LiveInput::Camera { device, size, fps } => Box::new(video::Camera::open(
            device.as_deref().unwrap_or("0"),
            size,
            fps.map(|f| f.round().max(1.0) as u32),
        )?),
        LiveInput::Ffmpeg(args) => Box::new(video::FfmpegVideo::live(&args)?),
    };
    let stop = super::live::interrupted()?;
    let info = src.info().clone();
    eprintln!(
        "watching {} ({}x{}, {:.2} fps) with bundle {}{}",
        info.name,
        info.width,
        info.height,
        info.fps,
        rec.bundle().name,
        if duration.is_some() {
            ""
        } else {
            "; Ctrl-C to stop"
        }
    );
    let mut proc = rec.live_stream()?;
    proc.begin_video(info.fps)?;
    let mut out = Output {
        keep_posteriors: link.is_some(),
        keep_embeddings: link.is_some() && rec.bundle().pose.is_some(),
        ..Output::default()
    };
    let mut frame = Frame::new();
    let t0 = Instant::now();
    let mut latencies = Vec::new();
    let (mut frames, mut last_pts) = (0u64, 0.0f64);
    let stdout = std::io::stdout();
    // The decision stage's clock restarts at a reset (window control): the
    // time of the reset on the run's timeline, and the events for the window.
    let mut seg_s = 0.0f64;
    let mut shown: Vec<seqrec::decision::Event> = Vec::new();
    let keep = link.is_some();
    #[cfg(feature = "window")]
    let mut recorder: Option<super::window::Recorder> = None;
    let emit = |out: &mut Output,
                seg_s: f64,
                shown: &mut Vec<seqrec::decision::Event>,
                lat: Option<f64>,
                lats: &mut Vec<f64>|
     -> anyhow::Result<()> {
        let mut w = stdout.lock();
        for e in out.events.drain(..) {
            write_event(&mut w, &e, seg_s, jsonl)?;
            if keep {
                shown.push(seqrec::decision::Event {
                    start_s: e.start_s + seg_s,
                    end_s: e.end_s + seg_s,
                    ..e.clone()
                });
            }
            if let Some(l) = lat {
                lats.push(l);
            }
        }
        w.flush()?;
        Ok(())
    };
    let result: anyhow::Result<()> = loop {
        if stop.load(Ordering::Acquire) || duration.is_some_and(|d| t0.elapsed().as_secs_f64() >= d)
        {
            break Ok(());
        }
        match src.read(&mut frame) {
            Ok(true) => {}
            Ok(false) => break Ok(()),
            Err(e) => break Err(anyhow::Error::new(e).context("the video input failed")),
        }
        let got = Instant::now();
        frames += 1;
        last_pts = frame.pts_s;
        if let Err(e) = proc.push_frame(&frame, &mut out) {
            break Err(e.into());
        }
        if !out.events.is_empty() {
            // From the frame's arrival here to the event being out.
            let lat = got.elapsed().as_secs_f64() * 1e3;
            emit(&mut out, seg_s, &mut shown, Some(lat), &mut latencies)?;
        }
        #[cfg(feature = "window")]
        if let Some(l) = link.as_deref_mut() {
            let asked = l.apply_controls(&mut proc);
            l.record(asked.record, &mut recorder, None);
            if asked.reset {
                if let Err(e) = proc.finish(&mut out) {
                    break Err(e.into());
                }
                emit(&mut out, seg_s, &mut shown, None, &mut latencies)?;
                seg_s = last_pts;
            }
            // Every frame: frames arrive at most at the source's rate, and
            // a time gate would drop every other one of a 30 fps source
            // whose processing ends just before the next frame.
            if let Some(r) = recorder.as_mut() {
                let _ = r.events(&shown);
            }
            offer_frame(
                l,
                &frame,
                &proc,
                &mut out,
                seg_s,
                &mut shown,
                &latencies,
                src.dropped_frames(),
            );
            if asked.stop {
                break Ok(());
            }
        }
    };
    proc.finish(&mut out)?;
    emit(&mut out, seg_s, &mut shown, None, &mut latencies)?;
    #[cfg(feature = "window")]
    if let Some(mut r) = recorder.take()
        && let Err(e) = r.events(&shown).and_then(|()| r.finish(None))
    {
        eprintln!("warning: recording: {e}");
    }
    let wall = t0.elapsed().as_secs_f64();
    let seconds = if frames == 0 {
        0.0
    } else {
        last_pts + 1.0 / info.fps
    };
    let report = StatsReport::new(proc.stats(), seconds, wall, 1, 0, src.dropped_frames())
        .with_latency(LatencyStats::from_samples(latencies));
    stats.emit(&report)?;
    eprintln!(
        "{frames} frames in {wall:.1} s ({:.1} fps), {} dropped",
        frames as f64 / wall.max(1e-9),
        src.dropped_frames()
    );
    result?;
    Ok(ExitCode::SUCCESS)
}
