//! `seqrec batch`: recognize recorded files, in parallel, results in input order.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use seqrec::pipeline::{self, BatchOptions, Recognizer};
use seqrec::sink::records::{Emit, Format, RecordWriter};

use super::common::{DecisionFlags, ResultsOut, StatsFlags, load_bundle};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Inputs. Audio bundles: audio files or directories (recursed: .wav .flac .mp3 .ogg).
    /// Video bundles: video files (.mp4 .webm .mkv .avi ...), folders of images (one image
    /// sequence each), or directories holding them (recursed).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// The model bundle directory.
    #[arg(long)]
    bundle: PathBuf,
    /// Write results here (atomically: a temporary file renamed at the end).
    /// Default: standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Output syntax.
    #[arg(long, value_enum, default_value = "jsonl")]
    format: Format,
    /// Write label events, per-frame posteriors with timestamps, or one summary per file
    /// (the label with the highest mean posterior, and every label's mean).
    #[arg(long, value_enum, default_value = "events")]
    emit: Emit,
    /// Inputs processed at once, and cores used in all: with fewer inputs than jobs, each
    /// worker's CNN (embedder) gets jobs/workers ONNX Runtime threads [default: all cores].
    #[arg(long)]
    jobs: Option<usize>,
    /// Write a PNG per input (spectrogram, posteriors, events) into this directory.
    #[arg(long, value_name = "DIR")]
    plot: Option<PathBuf>,
    /// Frame rate of image-folder inputs (video bundles), frames per second.
    #[arg(long, default_value_t = 30.0)]
    fps: f64,
    #[command(flatten)]
    stats: StatsFlags,
    #[command(flatten)]
    decision: DecisionFlags,
}

/// `dir/a/b.wav` -> `a/b.wav` relative to the input it was found under, for plot names.
fn plot_name(file: &Path) -> String {
    let s = file.to_string_lossy();
    let cleaned: String = s
        .trim_start_matches("./")
        .chars()
        .map(|c| if c == '/' || c == '\\' { '_' } else { c })
        .collect();
    format!("{cleaned}.png")
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let bundle = load_bundle(&a.bundle, &a.decision)?;
    let rec = Recognizer::new(bundle)?;
    let video = rec.kind() == seqrec::bundle::InputKind::Video;
    let files = if video {
        pipeline::expand_video_inputs(&a.inputs)?
    } else {
        pipeline::expand_inputs(&a.inputs, pipeline::AUDIO_EXTENSIONS)?
    };
    if files.is_empty() {
        anyhow::bail!(
            "no {} found in {:?}",
            if video {
                "videos or image folders"
            } else {
                "audio files"
            },
            a.inputs
        );
    }
    if !(a.fps.is_finite() && a.fps > 0.0) {
        anyhow::bail!("--fps must be a positive number of frames per second");
    }
    if let Some(dir) = &a.plot {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);

    let (sink, out) = ResultsOut::open(a.out.as_deref())?;
    let mut writer = RecordWriter::new(sink, a.format, a.emit, rec.labels().to_vec());

    let progress = if std::io::stderr().is_terminal() {
        let pb = indicatif::ProgressBar::new(files.len() as u64);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} files, {elapsed} elapsed, ETA {eta} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(pb)
    } else {
        None
    };

    let t0 = Instant::now();
    let mut failed = 0usize;
    let mut audio_s = 0.0;
    let mut write_err: Option<std::io::Error> = None;
    let opts = BatchOptions {
        jobs,
        keep_features: a.plot.is_some(),
        keep_posteriors: a.plot.is_some() || a.emit != Emit::Events,
        folder_fps: Some(a.fps),
        cores: jobs,
    };
    let stats = pipeline::run_batch(&rec, &files, opts, |_, path, res| {
        let name = path.to_string_lossy();
        let w = match res {
            Ok(r) => {
                audio_s += r.duration_s;
                if let Some(dir) = &a.plot
                    && let Err(e) = super::common::plot(
                        &rec,
                        dir.join(plot_name(path)),
                        &name,
                        &r.output,
                        (r.frame_period_s, r.time_offset_s),
                    )
                {
                    eprintln!("warning: plot of {name}: {e}");
                }
                writer.result(&name, &r, &rec.decision().ignore)
            }
            Err(e) => {
                failed += 1;
                let msg = e.to_string();
                if progress.is_none() {
                    eprintln!("error: {msg}");
                }
                writer.error(&name, &msg)
            }
        };
        if let (Err(e), None) = (w, &write_err) {
            write_err = Some(e);
        }
        if let Some(pb) = &progress {
            pb.inc(1);
        }
    })?;
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    let wall = t0.elapsed().as_secs_f64();
    out.finish(writer.into_inner(), write_err)?;
    let report = super::common::StatsReport::new(&stats, audio_s, wall, files.len(), failed, 0);
    a.stats.emit(&report)?;
    eprintln!(
        "{} file(s), {:.1} s of {} in {:.2} s ({:.0}x real time){}",
        files.len(),
        audio_s,
        if video { "video" } else { "audio" },
        wall,
        audio_s / wall.max(1e-9),
        if failed > 0 {
            format!(", {failed} failed")
        } else {
            String::new()
        }
    );
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
