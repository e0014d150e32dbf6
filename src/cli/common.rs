//! Pieces shared by the recognition subcommands.

use std::path::{Path, PathBuf};

use anyhow::Context;

use seqrec::bundle::{Backend, Bundle};
use seqrec::pipeline::{Output, Recognizer, StageStats};

/// Decision settings that override the bundle's `[decision]` section.
#[derive(Debug, Clone, clap::Args)]
pub struct DecisionFlags {
    /// Score at which an event starts (all labels).
    #[arg(long)]
    threshold: Option<f64>,
    /// Score below which an event ends (hysteresis).
    #[arg(long)]
    off_threshold: Option<f64>,
    /// Moving-average window over posteriors, seconds.
    #[arg(long)]
    smoothing: Option<f64>,
    /// Minimum event duration, seconds.
    #[arg(long)]
    min_duration: Option<f64>,
    /// Time after an event during which its label cannot fire again, seconds.
    #[arg(long)]
    refractory: Option<f64>,
    /// Run the recurrent model with this backend instead of the bundle's.
    #[arg(long)]
    backend: Option<Backend>,
}

/// Loads a bundle and applies the overrides (validated again, like the manifest).
pub fn load_bundle(dir: &Path, f: &DecisionFlags) -> anyhow::Result<Bundle> {
    let mut b = Bundle::load(dir)?;
    let d = &mut b.decision;
    if let Some(t) = f.threshold {
        d.threshold = t;
        d.thresholds.clear();
        if d.off_threshold.is_some_and(|o| o > t) {
            d.off_threshold = Some(t);
        }
    }
    if f.off_threshold.is_some() {
        d.off_threshold = f.off_threshold;
    }
    if let Some(s) = f.smoothing {
        d.smoothing_s = s;
    }
    if let Some(s) = f.min_duration {
        d.min_duration_s = s;
    }
    if let Some(s) = f.refractory {
        d.refractory_s = s;
    }
    if let (Some(be), Some(seq)) = (f.backend, b.sequence.as_mut()) {
        seq.backend = be;
    }
    Ok(b)
}

/// Writes the PNG of one result.
pub fn plot(
    rec: &Recognizer,
    path: PathBuf,
    title: &str,
    out: &Output,
    (period_s, offset_s): (f64, f64),
) -> anyhow::Result<()> {
    let events: Vec<(String, f64, f64, f32)> = out
        .events
        .iter()
        .map(|e| (e.label.clone(), e.start_s, e.end_s, e.score))
        .collect();
    // Audio features are drawn on the posteriors' clock: with an embedder a
    // step comes every `step` frames, so each step's column shows the
    // loudest of the `step` newest frames of its window. Video frames have
    // no spectrogram.
    let n_bins = match (rec.kind(), rec.bundle().features.as_ref()) {
        (seqrec::bundle::InputKind::Audio, Some(f)) => f.n_bins(),
        _ => 0,
    };
    let stepped;
    let features: &[f32] = match (n_bins, rec.embedder()) {
        (0, _) => &[],
        (_, None) => &out.features,
        (n, Some(e)) => {
            stepped = per_step(&out.features, n, e.window(), e.step());
            &stepped
        }
    };
    let input = seqrec::sink::plot::PlotInput {
        title,
        features,
        n_bins,
        posteriors: &out.posteriors,
        labels: rec.labels(),
        frame_period_s: period_s,
        time_offset_s: offset_s,
        events: &events,
        thresholds: Some(&rec.decision().on),
    };
    seqrec::sink::plot::write_png(&path, &input)?;
    Ok(())
}

/// Feature frames `[frames * n]` -> one row per embedder step: the maximum
/// over frames `[j*step + window - step, j*step + window)` of step `j`.
fn per_step(frames: &[f32], n: usize, window: usize, step: usize) -> Vec<f32> {
    let total = frames.len() / n;
    if total < window {
        return Vec::new();
    }
    let steps = (total - window) / step + 1;
    let mut out = vec![f32::NEG_INFINITY; steps * n];
    for j in 0..steps {
        let last = j * step + window;
        let row = &mut out[j * n..(j + 1) * n];
        for f in last.saturating_sub(step)..last {
            for (o, &v) in row.iter_mut().zip(&frames[f * n..(f + 1) * n]) {
                *o = o.max(v);
            }
        }
    }
    out
}

/// Writes one event of `seqrec live` with its times shifted by `offset_s`:
/// a JSON object (times rounded to 0.1 ms) or a readable line.
pub fn write_event(
    w: &mut impl std::io::Write,
    e: &seqrec::decision::Event,
    offset_s: f64,
    jsonl: bool,
) -> std::io::Result<()> {
    let (s, en) = (e.start_s + offset_s, e.end_s + offset_s);
    if jsonl {
        writeln!(
            w,
            "{}",
            serde_json::json!({"label": e.label, "start_s": (s * 1e4).round() / 1e4, "end_s": (en * 1e4).round() / 1e4, "score": e.score})
        )
    } else {
        writeln!(w, "{s:9.2} s - {en:9.2} s  {:<16} {:.2}", e.label, e.score)
    }
}

/// Where a run's statistics go.
#[derive(Debug, Clone, clap::Args)]
pub struct StatsFlags {
    /// Print per-stage processing time, the real-time factor, dropped chunks and (live)
    /// end-to-end latency on stderr at the end.
    #[arg(long)]
    stats: bool,
    /// Write the same statistics as JSON to this file.
    #[arg(long, value_name = "FILE")]
    stats_json: Option<PathBuf>,
}

impl StatsFlags {
    /// Prints and/or writes `report` as asked.
    pub fn emit(&self, report: &StatsReport) -> anyhow::Result<()> {
        if self.stats {
            eprintln!("{}", report.human());
        }
        if let Some(p) = &self.stats_json {
            std::fs::write(p, report.json())
                .map_err(|e| anyhow::anyhow!("writing {}: {e}", p.display()))?;
        }
        Ok(())
    }
}

/// Statistics of a run, for humans and as JSON.
#[derive(Debug, serde::Serialize)]
pub struct StatsReport {
    files: usize,
    failed: usize,
    audio_s: f64,
    wall_s: f64,
    realtime_factor: f64,
    dropped_chunks: u64,
    stages: StageStats,
    #[serde(skip_serializing_if = "Option::is_none")]
    latency_ms: Option<LatencyStats>,
}

/// End-to-end latency percentiles (live input only).
#[derive(Debug, Clone, serde::Serialize)]
pub struct LatencyStats {
    /// Median, milliseconds.
    pub p50: f64,
    /// 95th percentile, milliseconds.
    pub p95: f64,
    /// 99th percentile, milliseconds.
    pub p99: f64,
    /// Maximum, milliseconds.
    pub max: f64,
    /// Number of measurements.
    pub count: usize,
}

impl LatencyStats {
    pub fn from_samples(mut v: Vec<f64>) -> Option<Self> {
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        Some(LatencyStats {
            p50: at(0.5),
            p95: at(0.95),
            p99: at(0.99),
            max: v[v.len() - 1],
            count: v.len(),
        })
    }
}

impl StatsReport {
    pub fn new(
        stages: &StageStats,
        audio_s: f64,
        wall_s: f64,
        files: usize,
        failed: usize,
        dropped: u64,
    ) -> Self {
        StatsReport {
            files,
            failed,
            audio_s,
            wall_s,
            realtime_factor: audio_s / wall_s.max(1e-9),
            dropped_chunks: dropped,
            stages: *stages,
            latency_ms: None,
        }
    }

    pub fn with_latency(mut self, l: Option<LatencyStats>) -> Self {
        self.latency_ms = l;
        self
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn human(&self) -> String {
        let s = &self.stages;
        let busy = s.features_s + s.embed_s + s.sequence_s + s.decision_s;
        let pct = |x: f64| 100.0 * x / busy.max(1e-12);
        let embed = if s.embeddings > 0 {
            format!(
                ", embedder {:.3} s ({:.0}%, {} steps)",
                s.embed_s,
                pct(s.embed_s),
                s.embeddings
            )
        } else {
            String::new()
        };
        let mut out = format!(
            "stats: {:.1} s of input, {} frames, {} events\n  features {:.3} s ({:.0}%){embed}, sequence {:.3} s ({:.0}%), decision {:.3} s ({:.0}%)\n  per core: {:.0}x real time; wall: {:.2} s ({:.0}x real time); dropped chunks: {}",
            self.audio_s,
            s.frames,
            s.events,
            s.features_s,
            pct(s.features_s),
            s.sequence_s,
            pct(s.sequence_s),
            s.decision_s,
            pct(s.decision_s),
            self.audio_s / busy.max(1e-9),
            self.wall_s,
            self.realtime_factor,
            self.dropped_chunks
        );
        if let Some(l) = &self.latency_ms {
            out += &format!(
                "\n  latency capture->event: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} events)",
                l.p50, l.p95, l.p99, l.max, l.count
            );
        }
        out
    }
}

/// Cores this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Loads `NAME=DIR` bundle specifications (`serve`, `worker`).
pub fn named_bundles(
    specs: &[String],
) -> anyhow::Result<Vec<(String, seqrec::pipeline::Recognizer)>> {
    let mut bundles = Vec::new();
    for spec in specs {
        let (name, dir) = spec
            .split_once('=')
            .with_context(|| format!("--bundle `{spec}`: give NAME=DIR, e.g. kws=models/kws"))?;
        if name.is_empty() {
            anyhow::bail!("--bundle `{spec}`: the name before `=` is empty");
        }
        if bundles.iter().any(|(n, _)| n == name) {
            anyhow::bail!("--bundle `{spec}`: the name `{name}` is given twice");
        }
        let dir = Path::new(dir);
        let b = Bundle::load(dir)?;
        let rec = seqrec::pipeline::Recognizer::new(b)
            .with_context(|| format!("loading bundle {}", dir.display()))?;
        bundles.push((name.to_string(), rec));
    }
    Ok(bundles)
}

/// Resolves at SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}

/// Where results go: standard output, a device or pipe as it is, or a file
/// written under a temporary name and renamed by [`ResultsOut::finish`], so
/// an interrupted run never leaves half a file under the real name.
pub struct ResultsOut {
    tmp: Option<PathBuf>,
    out: Option<PathBuf>,
}

impl ResultsOut {
    /// Opens `out` (None: standard output) and returns the writer with what
    /// finishes it. Ctrl-C removes the temporary file.
    pub fn open(out: Option<&Path>) -> anyhow::Result<(Box<dyn std::io::Write>, ResultsOut)> {
        let (w, tmp): (Box<dyn std::io::Write>, Option<PathBuf>) = match out {
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
        Ok((
            w,
            ResultsOut {
                tmp,
                out: out.map(Path::to_path_buf),
            },
        ))
    }

    /// Flushes the writer (or takes the first write error) and renames the
    /// file into place; on an error, removes the temporary file instead.
    pub fn finish(
        self,
        written: std::io::Result<Box<dyn std::io::Write>>,
        first_error: Option<std::io::Error>,
    ) -> anyhow::Result<()> {
        let flushed = written.and_then(|mut w| w.flush());
        if let Some(e) = first_error.or(flushed.err()) {
            if let Some(t) = &self.tmp {
                let _ = std::fs::remove_file(t);
            }
            return Err(e).context("writing results");
        }
        if let (Some(t), Some(out)) = (&self.tmp, &self.out) {
            std::fs::rename(t, out)
                .with_context(|| format!("renaming {} to {}", t.display(), out.display()))?;
        }
        Ok(())
    }
}

/// This machine's name (for default worker and stream names).
pub fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into())
}
