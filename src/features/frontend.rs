//! The streaming spectral front end.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

use super::mel::{SparseRow, dct_ortho, mel_filterbank, sparse_rows};
use super::{FeatureConfig, FeatureKind};
use crate::Result;

/// Floor added before the natural log of `logmel`.
pub const LOGMEL_EPS: f64 = 1e-6;
/// Floor of the mel power before converting to dB for MFCCs (librosa's `amin`).
pub const MFCC_AMIN: f64 = 1e-10;

/// What every stream with the same settings shares: the FFT plan, the window,
/// the filterbank and the DCT. Built once, immutable.
struct Plan {
    fft: Arc<dyn RealToComplex<f32>>,
    /// Periodic Hann window of `win_length`, zero-padded centrally to `n_fft`.
    window: Vec<f32>,
    mel: Vec<SparseRow>,
    /// `[n_mfcc][n_mels]`, only for MFCC output.
    dct: Vec<f64>,
}

/// Streaming log-mel / MFCC extractor.
///
/// Push samples in chunks of any size with [`FrontEnd::push`]; each complete
/// frame is appended to the caller's buffer as `n_bins` values. The frames are
/// bit-identical to processing the whole signal at once, whatever the
/// chunking. Call [`FrontEnd::finish`] at the end of a stream (it emits the
/// right-padded tail frames when `center` is set), or [`FrontEnd::reset`] at a
/// discontinuity (a new file, a capture gap) so samples of the old stream never
/// mix into frames of the new one.
///
/// After the first pushes have grown the internal buffers, pushing does not
/// allocate (the caller's output `Vec` aside).
pub struct FrontEnd {
    cfg: FeatureConfig,
    plan: Arc<Plan>,
    /// Samples not yet fully consumed; `pending[0]` is the first sample of the next frame.
    pending: Vec<f32>,
    /// Samples still to drop before the next frame starts (only when `hop > n_fft`).
    skip: usize,
    /// Whether the left `center` padding has been inserted for this stream.
    started: bool,
    frame: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    power: Vec<f32>,
    mel: Vec<f64>,
    frames_emitted: u64,
}

impl std::fmt::Debug for FrontEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrontEnd")
            .field("cfg", &self.cfg)
            .field("pending", &self.pending.len())
            .field("frames_emitted", &self.frames_emitted)
            .finish()
    }
}

impl FrontEnd {
    /// Builds a front end (plans the FFT, computes window and filterbank).
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] when the settings are inconsistent.
    pub fn new(cfg: &FeatureConfig) -> Result<Self> {
        cfg.validate()?;
        let n_fft = cfg.n_fft;
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n_fft);
        let win = cfg.win_length();
        let offset = (n_fft - win) / 2;
        let mut window = vec![0.0f32; n_fft];
        for i in 0..win {
            // Periodic Hann (scipy `get_window('hann', win, fftbins=True)`).
            let w = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / win as f64).cos();
            window[offset + i] = w as f32;
        }
        let n_freqs = n_fft / 2 + 1;
        let dense = mel_filterbank(
            cfg.sample_rate,
            n_fft,
            cfg.n_mels,
            cfg.fmin,
            cfg.fmax(),
            cfg.mel_scale,
        );
        let mel = sparse_rows(&dense, cfg.n_mels, n_freqs);
        let dct = match cfg.kind {
            FeatureKind::Mfcc => dct_ortho(cfg.n_mfcc, cfg.n_mels),
            _ => Vec::new(),
        };
        let scratch = fft.make_scratch_vec();
        Ok(FrontEnd {
            cfg: cfg.clone(),
            plan: Arc::new(Plan {
                fft,
                window,
                mel,
                dct,
            }),
            pending: Vec::with_capacity(4 * n_fft),
            skip: 0,
            started: false,
            frame: vec![0.0; n_fft],
            spectrum: vec![Complex::default(); n_freqs],
            scratch,
            power: vec![0.0; n_freqs],
            mel: vec![0.0; cfg.n_mels],
            frames_emitted: 0,
        })
    }

    /// A second front end with the same settings that shares this one's plan
    /// (FFT, window, filterbank) but has its own, fresh stream state.
    pub fn fork(&self) -> Self {
        let n_fft = self.cfg.n_fft;
        FrontEnd {
            cfg: self.cfg.clone(),
            plan: Arc::clone(&self.plan),
            pending: Vec::with_capacity(4 * n_fft),
            skip: 0,
            started: false,
            frame: vec![0.0; n_fft],
            spectrum: vec![Complex::default(); self.spectrum.len()],
            scratch: self.plan.fft.make_scratch_vec(),
            power: vec![0.0; self.power.len()],
            mel: vec![0.0; self.mel.len()],
            frames_emitted: 0,
        }
    }

    /// The settings.
    pub fn config(&self) -> &FeatureConfig {
        &self.cfg
    }

    /// Values per frame.
    pub fn n_bins(&self) -> usize {
        self.cfg.n_bins()
    }

    /// Frames emitted since the last reset: the index of the next frame.
    pub fn frames_emitted(&self) -> u64 {
        self.frames_emitted
    }

    /// Forgets the current stream: buffered samples, padding state, frame count.
    /// Call it at every discontinuity (new file, capture gap, device change).
    pub fn reset(&mut self) {
        self.pending.clear();
        self.skip = 0;
        self.started = false;
        self.frames_emitted = 0;
    }

    fn ensure_started(&mut self) {
        if !self.started {
            self.started = true;
            if self.cfg.center {
                self.pending
                    .resize(self.pending.len() + self.cfg.n_fft / 2, 0.0);
            }
        }
    }

    /// Feeds samples; appends every frame completed by them to `out`
    /// (`n_bins` values each). Returns the number of frames appended.
    pub fn push(&mut self, samples: &[f32], out: &mut Vec<f32>) -> usize {
        self.ensure_started();
        let dropped = self.skip.min(samples.len());
        self.skip -= dropped;
        self.pending.extend_from_slice(&samples[dropped..]);
        self.drain_frames(out)
    }

    /// Ends the stream: with `center`, pads `n_fft / 2` zeros and emits the
    /// last frames. Then resets, ready for a new stream. Returns the number of
    /// frames appended.
    pub fn finish(&mut self, out: &mut Vec<f32>) -> usize {
        self.ensure_started();
        let mut n = 0;
        if self.cfg.center {
            let pad = self.cfg.n_fft / 2;
            let kept = pad.saturating_sub(self.skip);
            self.pending.resize(self.pending.len() + kept, 0.0);
            n = self.drain_frames(out);
        }
        self.reset();
        n
    }

    fn drain_frames(&mut self, out: &mut Vec<f32>) -> usize {
        let n_fft = self.cfg.n_fft;
        let hop = self.cfg.hop_length();
        let n_bins = self.n_bins();
        let mut pos = 0;
        let mut emitted = 0;
        while pos + n_fft <= self.pending.len() {
            let start = out.len();
            out.resize(start + n_bins, 0.0);
            compute_frame(
                &self.plan,
                self.cfg.kind,
                &self.pending[pos..pos + n_fft],
                &mut self.frame,
                &mut self.spectrum,
                &mut self.scratch,
                &mut self.power,
                &mut self.mel,
                &mut out[start..],
            );
            pos += hop;
            emitted += 1;
        }
        let consumed = pos.min(self.pending.len());
        self.skip += pos - consumed;
        self.pending.copy_within(consumed.., 0);
        self.pending.truncate(self.pending.len() - consumed);
        self.frames_emitted += emitted as u64;
        emitted
    }

    /// Convenience: the frames of a whole signal (`[frames * n_bins]`, row-major),
    /// as `push` of everything followed by `finish`.
    pub fn process_all(&mut self, samples: &[f32]) -> Vec<f32> {
        self.reset();
        let mut out = Vec::with_capacity(self.cfg.n_frames(samples.len()) * self.n_bins());
        self.push(samples, &mut out);
        self.finish(&mut out);
        out
    }
}

#[allow(clippy::too_many_arguments)]
fn compute_frame(
    plan: &Plan,
    kind: FeatureKind,
    samples: &[f32],
    frame: &mut [f32],
    spectrum: &mut [Complex<f32>],
    scratch: &mut [Complex<f32>],
    power: &mut [f32],
    mel: &mut [f64],
    out: &mut [f32],
) {
    for ((f, &s), &w) in frame.iter_mut().zip(samples).zip(&plan.window) {
        *f = s * w;
    }
    // Lengths are fixed at construction, so this cannot fail.
    let _ = plan.fft.process_with_scratch(frame, spectrum, scratch);
    for (p, c) in power.iter_mut().zip(spectrum.iter()) {
        *p = c.re * c.re + c.im * c.im;
    }
    for (m, row) in mel.iter_mut().zip(&plan.mel) {
        let bins = &power[row.start..row.start + row.weights.len()];
        *m = row
            .weights
            .iter()
            .zip(bins)
            .map(|(&w, &p)| w as f64 * p as f64)
            .sum();
    }
    match kind {
        FeatureKind::Mel => {
            for (o, &m) in out.iter_mut().zip(mel.iter()) {
                *o = m as f32;
            }
        }
        FeatureKind::Logmel => {
            for (o, &m) in out.iter_mut().zip(mel.iter()) {
                *o = (m + LOGMEL_EPS).ln() as f32;
            }
        }
        FeatureKind::Mfcc => {
            for m in mel.iter_mut() {
                *m = 10.0 * m.max(MFCC_AMIN).log10();
            }
            let n_in = mel.len();
            for (k, o) in out.iter_mut().enumerate() {
                let row = &plan.dct[k * n_in..(k + 1) * n_in];
                *o = row.iter().zip(mel.iter()).map(|(a, b)| a * b).sum::<f64>() as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(center: bool, hop: usize) -> FeatureConfig {
        FeatureConfig {
            center,
            hop_length: Some(hop),
            ..FeatureConfig::speech_16k()
        }
    }

    fn signal(n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i as f32 * 0.013).sin() + 0.3 * (i as f32 * 0.27).cos()) * 0.5)
            .collect()
    }

    #[test]
    fn frame_count_matches_librosa_formula() {
        for center in [false, true] {
            for n in [0, 100, 511, 512, 513, 4000, 16000] {
                let c = cfg(center, 160);
                let mut fe = FrontEnd::new(&c).unwrap();
                let out = fe.process_all(&signal(n));
                assert_eq!(
                    out.len() / c.n_bins(),
                    c.n_frames(n),
                    "center={center} n={n}"
                );
            }
        }
        // librosa center=True: 1 + n // hop frames.
        assert_eq!(cfg(true, 160).n_frames(16000), 101);
        assert_eq!(cfg(false, 160).n_frames(16000), 1 + (16000 - 512) / 160);
    }

    #[test]
    fn hop_longer_than_fft_skips_samples() {
        let c = FeatureConfig {
            hop_length: Some(700),
            ..cfg(false, 700)
        };
        let x = signal(5000);
        let whole = FrontEnd::new(&c).unwrap().process_all(&x);
        let mut fe = FrontEnd::new(&c).unwrap();
        let mut out = Vec::new();
        for chunk in x.chunks(37) {
            fe.push(chunk, &mut out);
        }
        fe.finish(&mut out);
        assert_eq!(whole, out);
        assert_eq!(out.len() / 40, c.n_frames(5000));
    }

    #[test]
    fn silence_gives_the_log_floor() {
        let mut fe = FrontEnd::new(&cfg(false, 160)).unwrap();
        let out = fe.process_all(&vec![0.0; 2000]);
        let floor = (LOGMEL_EPS).ln() as f32;
        assert!(!out.is_empty());
        assert!(out.iter().all(|&v| v == floor));
    }

    #[test]
    fn fork_shares_plan_not_state() {
        let c = cfg(true, 160);
        let x = signal(3000);
        let mut a = FrontEnd::new(&c).unwrap();
        let mut sink = Vec::new();
        a.push(&x[..1234], &mut sink);
        let mut b = a.fork();
        assert_eq!(b.frames_emitted(), 0);
        assert_eq!(
            b.process_all(&x),
            FrontEnd::new(&c).unwrap().process_all(&x)
        );
    }
}
