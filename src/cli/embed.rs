//! `seqrec embed`: what the embedder (the bundle's frozen CNN) makes of an
//! input, as a .npy array [steps, dims] — per-frame CNN features of a video,
//! or speech embeddings of an audio file. For inspecting inputs and for
//! training new recurrent heads on seqrec's own features.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use seqrec::bundle::InputKind;
use seqrec::embed::Embedder;

use seqrec::bundle::Bundle;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Input: a video file or a folder of images (video bundles), or an audio file (audio
    /// bundles with an [embedder]).
    input: PathBuf,
    /// Bundle whose [features]/[video] and [embedder] sections to use.
    #[arg(long)]
    bundle: PathBuf,
    /// Output .npy file, float32 [steps, dims].
    #[arg(long)]
    out: PathBuf,
    /// Items per embedder call [default: the bundle's embedder.batch].
    #[arg(long)]
    batch: Option<usize>,
    /// Frames per second of an image folder [default: 30].
    #[arg(long, default_value_t = 30.0)]
    fps: f64,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let bundle = Bundle::load(&a.bundle)?;
    let Some(section) = bundle.embedder.clone() else {
        anyhow::bail!(
            "{}: the bundle has no [embedder] section, so there is nothing to embed (see models/README.md)",
            a.bundle.display()
        );
    };
    if a.batch == Some(0) {
        anyhow::bail!("--batch must be at least 1");
    }
    let t0 = Instant::now();
    let (embs, dims, steps, what) = match bundle.kind {
        InputKind::Audio => {
            let cfg = bundle.feature_config()?.clone();
            let e = Embedder::load(&section, cfg.n_bins())?;
            // all cores for the one input, as `seqrec batch` does
            let mut s =
                e.stream_with_threads(a.batch.unwrap_or(e.max_batch()), super::common::cores())?;
            let mut fe = seqrec::features::FrontEnd::new(&cfg)?;
            let mut file = seqrec::source::AudioFile::open(&a.input, cfg.sample_rate)?;
            let (mut samples, mut feats, mut embs) = (Vec::new(), Vec::new(), Vec::new());
            let mut n = 0usize;
            loop {
                samples.clear();
                if file.read_chunk(&mut samples)? == 0 {
                    break;
                }
                n += samples.len();
                feats.clear();
                fe.push(&samples, &mut feats);
                s.push(&feats, &mut embs)?;
            }
            feats.clear();
            fe.finish(&mut feats);
            s.push(&feats, &mut embs)?;
            s.flush(&mut embs)?;
            let d = e.output_size();
            let steps = embs.len() / d;
            let what = format!(
                "{:.2} s of audio -> {steps} embeddings ({} mel frames each, every {} ms)",
                n as f64 / cfg.sample_rate as f64,
                e.window(),
                e.step() as f64 * cfg.hop_length() as f64 * 1000.0 / cfg.sample_rate as f64
            );
            (embs, d, steps, what)
        }
        InputKind::Video => super::video::embed(&bundle, &section, &a.input, a.batch, a.fps)?,
    };
    seqrec::npy::write_f32(&a.out, &[steps, dims], &embs)
        .with_context(|| format!("writing {}", a.out.display()))?;
    let secs = t0.elapsed().as_secs_f64();
    eprintln!("{}: {what}", a.input.display());
    eprintln!(
        "  wrote {} [{steps}, {dims}] in {secs:.2} s ({:.1} steps/s)",
        a.out.display(),
        steps as f64 / secs.max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
}
