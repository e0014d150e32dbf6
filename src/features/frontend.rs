//! The streaming spectral front end.

use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

use super::mel::{SparseRow, dct_ortho, mel_filterbank, sparse_rows};
use super::{FeatureConfig, FeatureKind};
use crate::Result;
use crate::simd::{self, Isa};

/// Zero bins kept past the end of the power spectrum, so padded filterbank
/// rows can be read 8 at a time.
const MEL_PAD: usize = 8;

/// Floor added before the natural log of `logmel`.
pub const LOGMEL_EPS: f64 = 1e-6;
/// `10 * log10(x) = DB_PER_NEPER * ln(x)`.
const DB_PER_NEPER: f64 = 10.0 / std::f64::consts::LN_10;

/// What every stream with the same settings shares: the FFT plan, the window,
/// the filterbank and the DCT. Built once, immutable.
struct Plan {
    /// A complex FFT of `n_fft` points on the real frame: rustfft's AVX
    /// butterflies on the full size are faster here than a half-size FFT plus
    /// the scalar real-to-complex post-processing.
    fft: Arc<dyn Fft<f32>>,
    /// Periodic Hann window of `win_length`, zero-padded centrally to `n_fft`,
    /// times `gain`.
    window: Vec<f32>,
    /// `gain`, for `raw` frames.
    gain: f32,
    /// `amin` as used by `mfcc` (f64) and `db` (f32, like ONNX front ends).
    amin: f64,
    amin32: f32,
    /// `log_gain`, for `log10p`.
    log_gain: f64,
    mel: Vec<SparseRow>,
    /// `[n_mfcc][n_mels]`, only for MFCC output.
    dct: Vec<f64>,
    isa: Isa,
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
    work: Work,
    frames_emitted: u64,
    /// With `top_db`: frames computed but not yet emitted (the current group),
    /// before the output stage.
    held: Vec<f32>,
}

/// What [`FrontEnd::state`] gives: everything a stream has buffered.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FrontEndState {
    pending: Vec<f32>,
    skip: usize,
    started: bool,
    frames_emitted: u64,
    held: Vec<f32>,
}

/// Per-stream buffers of one frame's computation.
#[derive(Debug, Clone)]
struct Work {
    /// The windowed frame, transformed in place into its spectrum.
    spectrum: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    /// `n_fft / 2 + 1` power bins, then [`MEL_PAD`] zeros.
    power: Vec<f32>,
    mel: Vec<f64>,
}

impl Work {
    fn new(plan: &Plan, n_fft: usize, n_mels: usize) -> Work {
        Work {
            spectrum: vec![Complex::default(); n_fft],
            scratch: vec![Complex::default(); plan.fft.get_inplace_scratch_len()],
            power: vec![0.0; n_fft / 2 + 1 + MEL_PAD],
            mel: vec![0.0; n_mels],
        }
    }
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
        let fft = FftPlanner::<f32>::new().plan_fft_forward(n_fft);
        let win = cfg.win_length();
        let offset = (n_fft - win) / 2;
        let mut window = vec![0.0f32; n_fft];
        for i in 0..win {
            // Periodic Hann (scipy `get_window('hann', win, fftbins=True)`).
            let w = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / win as f64).cos();
            // A power-of-two gain scales exactly, so it may as well live here.
            window[offset + i] = (w * cfg.gain) as f32;
        }
        let n_freqs = n_fft / 2 + 1;
        let n_mels = if cfg.kind == FeatureKind::Raw {
            0
        } else {
            cfg.n_mels
        };
        let dense = mel_filterbank(
            cfg.sample_rate,
            n_fft,
            n_mels,
            cfg.fmin,
            cfg.fmax(),
            cfg.mel_scale,
        );
        let mel = sparse_rows(&dense, n_mels, n_freqs);
        let dct = match cfg.kind {
            FeatureKind::Mfcc => dct_ortho(cfg.n_mfcc, cfg.n_mels),
            _ => Vec::new(),
        };
        let plan = Arc::new(Plan {
            fft,
            window,
            gain: cfg.gain as f32,
            amin: cfg.amin,
            amin32: cfg.amin as f32,
            log_gain: cfg.log_gain,
            mel,
            dct,
            isa: Isa::detect(),
        });
        Ok(Self::with_plan(cfg.clone(), plan))
    }

    fn with_plan(cfg: FeatureConfig, plan: Arc<Plan>) -> Self {
        let n_fft = cfg.n_fft;
        FrontEnd {
            work: Work::new(&plan, n_fft, cfg.n_mels),
            cfg,
            plan,
            pending: Vec::with_capacity(4 * n_fft),
            skip: 0,
            started: false,
            frames_emitted: 0,
            held: Vec::new(),
        }
    }

    /// A second front end with the same settings that shares this one's plan
    /// (FFT, window, filterbank) but has its own, fresh stream state.
    pub fn fork(&self) -> Self {
        Self::with_plan(self.cfg.clone(), Arc::clone(&self.plan))
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
        self.held.clear();
    }

    /// The stream's whole state (for moving a stream; see
    /// [`FrontEnd::set_state`]): samples not yet framed and the frames of an
    /// unfinished `top_db` group.
    pub fn state(&self) -> FrontEndState {
        FrontEndState {
            pending: self.pending.clone(),
            skip: self.skip,
            started: self.started,
            frames_emitted: self.frames_emitted,
            held: self.held.clone(),
        }
    }

    /// Continues a stream from a state [`FrontEnd::state`] gave on a front
    /// end of the same settings.
    ///
    /// # Errors
    /// [`crate::Error::Shape`] if the state cannot come from these settings
    /// (more samples pending than one frame needs, partial held frames).
    pub fn set_state(&mut self, st: &FrontEndState) -> Result<()> {
        let n_bins = self.n_bins();
        let most = self.cfg.n_fft + self.cfg.hop_length() + self.cfg.n_fft / 2 + self.cfg.pad_left;
        // held frames: fewer than the rest of the group they belong to
        let room = match (self.cfg.top_db, group_size(&self.cfg, st.frames_emitted)) {
            (None, _) => 0,
            (Some(_), 0) => usize::MAX,
            (Some(_), g) => g - 1,
        };
        if st.pending.len() > most
            || !st.held.len().is_multiple_of(n_bins)
            || st.held.len() / n_bins > room
            || st.skip > self.cfg.hop_length()
        {
            return Err(crate::Error::Shape(format!(
                "front-end state ({} pending samples, {} held values, skip {}) does not fit these features ({n_bins} bins, n_fft {})",
                st.pending.len(),
                st.held.len(),
                st.skip,
                self.cfg.n_fft
            )));
        }
        self.pending.clone_from(&st.pending);
        self.held.clone_from(&st.held);
        self.skip = st.skip;
        self.started = st.started;
        self.frames_emitted = st.frames_emitted;
        Ok(())
    }

    fn ensure_started(&mut self) {
        if !self.started {
            self.started = true;
            let pad = if self.cfg.center {
                self.cfg.n_fft / 2
            } else {
                0
            };
            self.pending
                .resize(self.pending.len() + pad + self.cfg.pad_left, 0.0);
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
    /// last frames; with `top_db`, emits the frames of the last (partial)
    /// group. Then resets, ready for a new stream. Returns the number of
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
        let zeros = if self.skip == 0 {
            self.cfg.end_padding(self.pending.len())
        } else {
            0
        };
        if zeros > 0 {
            self.pending.resize(self.pending.len() + zeros, 0.0);
            n += self.drain_frames(out);
        }
        if !self.held.is_empty() {
            let start = out.len();
            out.extend_from_slice(&self.held);
            let len = self.held.len();
            self.plan.clamp_top_db(&self.cfg, &mut out[start..]);
            self.plan.affine(&self.cfg, &mut out[start..]);
            n += len / self.n_bins();
        }
        self.reset();
        n
    }

    fn drain_frames(&mut self, out: &mut Vec<f32>) -> usize {
        let pending = std::mem::take(&mut self.pending);
        let computed = if self.cfg.top_db.is_some() {
            let mut held = std::mem::take(&mut self.held);
            let n = self.frames_of(&pending, &mut held);
            self.held = held;
            n
        } else {
            let start = out.len();
            let n = self.frames_of(&pending, out);
            self.plan.affine(&self.cfg, &mut out[start..]);
            n
        };
        self.pending = pending;
        let pos = computed * self.cfg.hop_length();
        let consumed = pos.min(self.pending.len());
        self.skip += pos - consumed;
        self.pending.copy_within(consumed.., 0);
        self.pending.truncate(self.pending.len() - consumed);
        let emitted = if self.cfg.top_db.is_some() {
            self.release_groups(out)
        } else {
            computed
        };
        self.frames_emitted += emitted as u64;
        emitted
    }

    /// Emits every complete `top_db` group at the front of `held`.
    fn release_groups(&mut self, out: &mut Vec<f32>) -> usize {
        let n_bins = self.n_bins();
        let mut released = 0usize;
        let mut index = self.frames_emitted;
        let mut from = 0usize;
        loop {
            let size = group_size(&self.cfg, index);
            let held = self.held.len() / n_bins - released;
            if size == 0 || held < size {
                break;
            }
            let start = out.len();
            out.extend_from_slice(&self.held[from..from + size * n_bins]);
            self.plan.clamp_top_db(&self.cfg, &mut out[start..]);
            self.plan.affine(&self.cfg, &mut out[start..]);
            from += size * n_bins;
            released += size;
            index += size as u64;
        }
        self.held.copy_within(from.., 0);
        self.held.truncate(self.held.len() - from);
        released
    }

    /// The output stage of a whole stream, for callers that computed its
    /// frames with [`FrontEnd::frames_of`] (frame 0 first, nothing left out):
    /// the `top_db` clamp group by group, then `scale` and `offset`. What
    /// [`FrontEnd::push`] and [`FrontEnd::finish`] emit has been through it.
    pub fn output_stage(&self, frames: &mut [f32]) {
        let n_bins = self.n_bins();
        if self.cfg.top_db.is_some() {
            let mut index = 0u64;
            let mut rest = &mut frames[..];
            while !rest.is_empty() {
                let size = match group_size(&self.cfg, index) {
                    0 => rest.len() / n_bins,
                    s => s.min(rest.len() / n_bins),
                };
                let (group, tail) = rest.split_at_mut(size * n_bins);
                self.plan.clamp_top_db(&self.cfg, group);
                rest = tail;
                index += size as u64;
            }
        }
        self.plan.affine(&self.cfg, frames);
    }

    /// The frames that start at `0, hop, 2 hop, ...` and lie wholly inside
    /// `samples`, appended to `out` before the output stage (`top_db`,
    /// `scale`, `offset`: see [`FrontEnd::output_stage`]); no padding, no
    /// stream state touched. Returns how many. Streaming and the parallel
    /// batch path both reduce to this, which is why they agree bit for bit.
    pub fn frames_of(&mut self, samples: &[f32], out: &mut Vec<f32>) -> usize {
        let n_fft = self.cfg.n_fft;
        let hop = self.cfg.hop_length();
        let n_bins = self.n_bins();
        let mut pos = 0;
        let mut emitted = 0;
        while pos + n_fft <= samples.len() {
            let start = out.len();
            out.resize(start + n_bins, 0.0);
            self.plan.frame(
                self.cfg.kind,
                &samples[pos..pos + n_fft],
                &mut self.work,
                &mut out[start..],
            );
            pos += hop;
            emitted += 1;
        }
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

/// Size of the `top_db` group that starts at frame `index` (0: the whole stream).
fn group_size(cfg: &FeatureConfig, index: u64) -> usize {
    let (first, group) = (cfg.top_db_first() as u64, cfg.top_db_group as u64);
    if group == 0 {
        0
    } else if index < first {
        (first - index) as usize
    } else {
        (group - (index - first) % group) as usize
    }
}

impl Plan {
    /// `top_db` on one group of frames (values in dB): everything below the
    /// group's maximum minus `top_db` is raised to that level, in f32 as
    /// ONNX front ends do it.
    fn clamp_top_db(&self, cfg: &FeatureConfig, group: &mut [f32]) {
        let Some(top_db) = cfg.top_db else { return };
        let max = group.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let floor = max - top_db as f32;
        for v in group {
            *v = v.max(floor);
        }
    }

    /// `scale * v + offset` on every value, in f32.
    fn affine(&self, cfg: &FeatureConfig, values: &mut [f32]) {
        if cfg.scale == 1.0 && cfg.offset == 0.0 {
            return;
        }
        let (scale, offset) = (cfg.scale as f32, cfg.offset as f32);
        for v in values {
            *v = *v * scale + offset;
        }
    }

    /// One frame: window, FFT, power, mel, log or MFCC. The element-wise
    /// loops are compiled for the best ISA this CPU has (they contain no
    /// fused operations, so the choice does not change results).
    fn frame(&self, kind: FeatureKind, samples: &[f32], work: &mut Work, out: &mut [f32]) {
        if kind == FeatureKind::Raw {
            out.copy_from_slice(samples);
            if self.gain != 1.0 {
                for v in out.iter_mut() {
                    *v *= self.gain;
                }
            }
            return;
        }
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Isa::detect` found these features on this CPU.
            Isa::Avx512 => unsafe { self.frame_avx512(kind, samples, work, out) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Isa::Avx2 => unsafe { self.frame_avx2(kind, samples, work, out) },
            _ => self.frame_body(kind, samples, work, out),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
    unsafe fn frame_avx512(
        &self,
        kind: FeatureKind,
        samples: &[f32],
        work: &mut Work,
        out: &mut [f32],
    ) {
        self.frame_body(kind, samples, work, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn frame_avx2(
        &self,
        kind: FeatureKind,
        samples: &[f32],
        work: &mut Work,
        out: &mut [f32],
    ) {
        self.frame_body(kind, samples, work, out)
    }

    #[inline(always)]
    fn frame_body(&self, kind: FeatureKind, samples: &[f32], work: &mut Work, out: &mut [f32]) {
        let plan = self;
        let Work {
            spectrum,
            scratch,
            power,
            mel,
        } = work;
        for ((f, &s), &w) in spectrum.iter_mut().zip(samples).zip(&plan.window) {
            *f = Complex::new(s * w, 0.0);
        }
        plan.fft.process_with_scratch(spectrum, scratch);
        let n_freqs = power.len() - MEL_PAD;
        for (p, c) in power[..n_freqs].iter_mut().zip(spectrum.iter()) {
            *p = c.re * c.re + c.im * c.im;
        }
        for (m, row) in mel.iter_mut().zip(&plan.mel) {
            // Eight partial sums (rows are zero-padded to a multiple of 8): no
            // long dependency chain, and a fixed order, so results are repeatable.
            let mut acc = [0f32; 8];
            let bins = &power[row.start..row.start + row.weights.len()];
            for (w8, p8) in row.weights.chunks_exact(8).zip(bins.chunks_exact(8)) {
                for l in 0..8 {
                    acc[l] += w8[l] * p8[l];
                }
            }
            *m = acc.iter().map(|&v| v as f64).sum();
        }
        match kind {
            // Handled in `frame`, before any transform.
            FeatureKind::Raw => {}
            FeatureKind::Mel => {
                for (o, &m) in out.iter_mut().zip(mel.iter()) {
                    *o = m as f32;
                }
            }
            FeatureKind::Logmel => {
                for (o, &m) in out.iter_mut().zip(mel.iter()) {
                    *o = simd::ln((m + LOGMEL_EPS) as f32);
                }
            }
            FeatureKind::Db => {
                // As `10 * log(x) / ln(10)` in f32, the way torch exports
                // `10 * log10` to ONNX.
                for (o, &m) in out.iter_mut().zip(mel.iter()) {
                    let p = (m as f32).max(plan.amin32);
                    *o = simd::ln(p) * 10.0 / std::f32::consts::LN_10;
                }
            }
            FeatureKind::Log10p => {
                // In f64 (like librosa on float64 mels), one rounding to f32.
                for (o, &m) in out.iter_mut().zip(mel.iter()) {
                    *o = ((m * plan.log_gain).ln_1p() / std::f64::consts::LN_10) as f32;
                }
            }
            FeatureKind::Mfcc => {
                for m in mel.iter_mut() {
                    *m = DB_PER_NEPER * simd::ln(m.max(plan.amin) as f32) as f64;
                }
                let n_in = mel.len();
                for (k, o) in out.iter_mut().enumerate() {
                    let row = &plan.dct[k * n_in..(k + 1) * n_in];
                    *o = row.iter().zip(mel.iter()).map(|(a, b)| a * b).sum::<f64>() as f32;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log10p_is_log10_of_one_plus_gain_times_mel() {
        let mel_cfg = FeatureConfig {
            kind: FeatureKind::Mel,
            ..FeatureConfig::speech_16k()
        };
        let cfg = FeatureConfig {
            kind: FeatureKind::Log10p,
            ..FeatureConfig::speech_16k()
        };
        let x = signal(4000);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        FrontEnd::new(&mel_cfg).unwrap().push(&x, &mut a);
        FrontEnd::new(&cfg).unwrap().push(&x, &mut b);
        assert_eq!(a.len(), b.len());
        for (m, v) in a.iter().zip(&b) {
            let want = (1.0 + 10000.0 * *m as f64).log10();
            assert!(
                (*v as f64 - want).abs() <= 1e-6 * want.max(1.0),
                "{v} vs {want}"
            );
        }
        // `log_gain` is refused where it means nothing.
        let bad = FeatureConfig {
            log_gain: 10.0,
            ..mel_cfg
        };
        assert!(bad.validate().unwrap_err().to_string().contains("log_gain"));
    }

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
    fn top_db_groups() {
        let c = FeatureConfig {
            kind: FeatureKind::Db,
            top_db: Some(80.0),
            top_db_group: 8,
            top_db_first: Some(5),
            ..cfg(false, 160)
        };
        let sizes: Vec<usize> = [0, 3, 4, 5, 12, 13, 21].map(|i| group_size(&c, i)).into();
        assert_eq!(sizes, vec![5, 2, 1, 8, 1, 8, 8]);
        let whole = FeatureConfig {
            top_db_group: 0,
            top_db_first: None,
            ..c
        };
        assert_eq!(group_size(&whole, 7), 0);
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
