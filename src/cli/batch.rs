//! `seqrec batch`: recognize recorded files, in parallel, results in input order.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use seqrec::pipeline::{self, BatchOptions, Recognizer};
use seqrec::sink::records::{Emit, Format, RecordWriter};

use super::common::{DecisionFlags, StatsFlags, load_bundle};

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

    // Results go to a temporary file next to the target, renamed at the end,
    // so an interrupted run never leaves half a file under the real name.
    let (sink, tmp): (Box<dyn Write>, Option<PathBuf>) = match &a.out {
        // Not a regular file (/dev/null, a pipe): write to it directly.
        Some(path) if path.exists() && !path.is_file() => {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .with_context(|| format!("opening {}", path.display()))?;
            (Box::new(std::io::BufWriter::new(f)), None)
        }
        Some(path) => {
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
            let f = std::fs::File::create(&tmp)
                .with_context(|| format!("creating {}", tmp.display()))?;
            let t = tmp.clone();
            // Ctrl-C: remove the temporary file, leave no partial output.
            let _ = ctrlc::set_handler(move || {
                let _ = std::fs::remove_file(&t);
                eprintln!("\ninterrupted; no output written");
                std::process::exit(130);
            });
            (Box::new(std::io::BufWriter::new(f)), Some(tmp))
        }
        None => (
            Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            None,
        ),
    };
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
                match a.emit {
                    Emit::Events => writer.events(&name, &r.output.events),
                    Emit::Posteriors => writer.posteriors(
                        &name,
                        &r.output.posteriors,
                        r.time_offset_s,
                        r.frame_period_s,
                    ),
                    Emit::Summary => {
                        writer.summary(&name, &r.output.posteriors, &rec.decision().ignore)
                    }
                }
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
    let flushed = writer.into_inner().and_then(|mut w| w.flush());
    if let Some(e) = write_err.or(flushed.err()) {
        if let Some(t) = &tmp {
            let _ = std::fs::remove_file(t);
        }
        return Err(e).context("writing results");
    }
    if let (Some(t), Some(out)) = (&tmp, &a.out) {
        std::fs::rename(t, out)
            .with_context(|| format!("renaming {} to {}", t.display(), out.display()))?;
    }
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
