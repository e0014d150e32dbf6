//! `seqrec features`: what a model sees, for debugging inputs.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use seqrec::bundle::Bundle;
use seqrec::features::batch::{BatchOptions, extract_frames};
use seqrec::features::{FeatureConfig, FeatureKind, FrontEnd, MelScale};
use seqrec::source::file::AudioFile;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Audio file (WAV, FLAC, MP3, OGG/Vorbis). Resampled to the feature sample rate.
    input: PathBuf,
    /// Output .npy file, float32 [frames, bins].
    #[arg(long)]
    out: PathBuf,
    /// Take the feature settings from this bundle; the flags below override them.
    #[arg(long)]
    bundle: Option<PathBuf>,
    /// Push the decoded audio through the streaming front end in chunks of this many samples,
    /// on one thread, as a live stream would (the output is identical whatever the chunking,
    /// and identical to the default multi-threaded path; this lets you check it).
    #[arg(long)]
    chunk: Option<usize>,
    /// Worker threads for a whole file [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Sample rate in Hz [default: 16000].
    #[arg(long)]
    sample_rate: Option<u32>,
    /// FFT size [default: 512].
    #[arg(long)]
    n_fft: Option<usize>,
    /// Window length [default: 400].
    #[arg(long)]
    win_length: Option<usize>,
    /// Hop length [default: 160].
    #[arg(long)]
    hop_length: Option<usize>,
    /// Number of mel bands [default: 40].
    #[arg(long)]
    n_mels: Option<usize>,
    /// Lowest mel frequency, Hz [default: 20].
    #[arg(long)]
    fmin: Option<f64>,
    /// Highest mel frequency, Hz [default: 7600].
    #[arg(long)]
    fmax: Option<f64>,
    /// Mel scale: slaney or htk [default: slaney].
    #[arg(long)]
    mel_scale: Option<MelScale>,
    /// Pad n_fft/2 zeros on both sides (librosa center=True).
    #[arg(long)]
    center: bool,
    /// mel, logmel, mfcc, db, log10p or raw [default: logmel].
    #[arg(long)]
    kind: Option<FeatureKind>,
    /// Multiply the samples by this first (32768 = int16 scale) [default: 1].
    #[arg(long)]
    gain: Option<f64>,
    /// Floor before the dB conversion (db, mfcc) [default: 1e-10].
    #[arg(long)]
    amin: Option<f64>,
    /// db: raise values to at least the loudest of their group minus this many dB.
    #[arg(long)]
    top_db: Option<f64>,
    /// db: frames per top_db group (0 = the whole input) [default: 0].
    #[arg(long)]
    top_db_group: Option<usize>,
    /// db: size of the first top_db group [default: top_db_group].
    #[arg(long)]
    top_db_first: Option<usize>,
    /// Multiply every output value by this [default: 1].
    #[arg(long)]
    scale: Option<f64>,
    /// Then add this [default: 0].
    #[arg(long)]
    offset: Option<f64>,
    /// log10p: the factor in log10(1 + log_gain * mel) [default: 10000].
    #[arg(long)]
    log_gain: Option<f64>,
    /// Number of MFCCs [default: 13].
    #[arg(long)]
    n_mfcc: Option<usize>,
}

impl Args {
    fn config(&self) -> anyhow::Result<FeatureConfig> {
        let mut c = match &self.bundle {
            Some(dir) => Bundle::load(dir)?.feature_config()?.clone(),
            None => FeatureConfig::speech_16k(),
        };
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { c.$f = v; } )* };
        }
        set!(
            sample_rate,
            n_fft,
            n_mels,
            fmin,
            mel_scale,
            kind,
            n_mfcc,
            gain,
            amin,
            top_db_group,
            scale,
            offset,
            log_gain
        );
        if self.top_db.is_some() {
            c.top_db = self.top_db;
        }
        if self.top_db_first.is_some() {
            c.top_db_first = self.top_db_first;
        }
        if self.win_length.is_some() {
            c.win_length = self.win_length;
        }
        if self.hop_length.is_some() {
            c.hop_length = self.hop_length;
        }
        if self.fmax.is_some() {
            c.fmax = self.fmax;
        }
        if self.center {
            c.center = true;
        }
        c.validate()?;
        Ok(c)
    }
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let cfg = a.config()?;
    if a.chunk == Some(0) {
        anyhow::bail!("--chunk must be at least 1 sample");
    }
    let t0 = Instant::now();
    let mut file = AudioFile::open(&a.input, cfg.sample_rate)?;
    let fe = FrontEnd::new(&cfg)?;
    let (frames, n_samples) = match a.chunk {
        Some(k) => {
            let mut fe = fe;
            let mut samples = Vec::with_capacity(1 << 16);
            let mut frames = Vec::new();
            let mut n_samples = 0usize;
            loop {
                samples.clear();
                if file.read_chunk(&mut samples)? == 0 {
                    break;
                }
                n_samples += samples.len();
                for c in samples.chunks(k) {
                    fe.push(c, &mut frames);
                }
            }
            fe.finish(&mut frames);
            (frames, n_samples)
        }
        None => {
            let mut opts = BatchOptions::default();
            if let Some(t) = a.threads {
                opts.threads = t.max(1);
            }
            extract_frames(&fe, opts, |buf| file.read_chunk(buf))?
        }
    };
    let bins = cfg.n_bins();
    let n_frames = frames.len() / bins;
    seqrec::npy::write_f32(&a.out, &[n_frames, bins], &frames)
        .with_context(|| format!("writing {}", a.out.display()))?;
    let secs = t0.elapsed().as_secs_f64();
    let dur = n_samples as f64 / cfg.sample_rate as f64;
    let (lo, hi, sum) = summary(&frames);
    eprintln!(
        "{}: {:.2} s of audio at {} Hz ({} Hz, {} ch in the file) -> {n_frames} x {bins} {} frames",
        a.input.display(),
        dur,
        cfg.sample_rate,
        file.source_rate(),
        file.source_channels(),
        format!("{:?}", cfg.kind).to_lowercase(),
    );
    if !frames.is_empty() {
        eprintln!(
            "  values: min {lo:.4}, max {hi:.4}, mean {:.4}",
            sum / frames.len() as f64
        );
    }
    eprintln!(
        "  wrote {} in {:.3} s ({:.0}x real time)",
        a.out.display(),
        secs,
        dur / secs.max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
}

/// Min, max and sum, in blocks so the loops vectorise (this runs over every value).
fn summary(v: &[f32]) -> (f32, f32, f64) {
    let (mut lo, mut hi, mut sum) = (f32::INFINITY, f32::NEG_INFINITY, 0f64);
    for block in v.chunks(1024) {
        let mut s = 0f32;
        for &x in block {
            lo = lo.min(x);
            hi = hi.max(x);
            s += x;
        }
        sum += s as f64;
    }
    (lo, hi, sum)
}
