//! Feature front end: audio samples -> frames of spectral features.
//!
//! The definitions follow librosa (>= 0.10) so that models trained in Python
//! see the same numbers in seqrec:
//!
//! * frames of `n_fft` samples every `hop_length` samples; with `center`, the
//!   signal is padded with `n_fft / 2` zeros on each side first;
//! * a periodic Hann window of `win_length` samples, zero-padded centrally to
//!   `n_fft`;
//! * power spectrum `|FFT|^2` of each frame (`n_fft / 2 + 1` bins);
//! * `mel`: a triangular mel filterbank (Slaney or HTK mel scale, Slaney area
//!   normalisation) applied to the power spectrum;
//! * `logmel` = `ln(mel + 1e-6)`;
//! * `mfcc` = orthonormal DCT-II of `10 * log10(max(mel, 1e-10))`, keeping the
//!   first `n_mfcc` coefficients.
//!
//! [`FrontEnd`] is streaming: samples pushed in chunks of any size produce
//! exactly (bit for bit) the frames of the whole signal processed at once.

pub mod batch;
mod frontend;
mod mel;

pub use frontend::FrontEnd;
pub use mel::{MelScale, hz_to_mel, mel_filterbank, mel_to_hz};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Which features a [`FrontEnd`] emits per frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FeatureKind {
    /// Mel power spectrum (`n_mels` values).
    Mel,
    /// `ln(mel + 1e-6)` (`n_mels` values).
    #[default]
    Logmel,
    /// Orthonormal DCT-II of the mel power in dB (`n_mfcc` values).
    Mfcc,
    /// The samples themselves, `n_fft` per frame, no window or transform:
    /// for models that take raw audio windows (e.g. Silero VAD).
    Raw,
}

impl std::str::FromStr for FeatureKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "mel" => Ok(FeatureKind::Mel),
            "logmel" => Ok(FeatureKind::Logmel),
            "mfcc" => Ok(FeatureKind::Mfcc),
            "raw" => Ok(FeatureKind::Raw),
            _ => Err(Error::config(
                "kind",
                format!("`{s}` is not one of mel, logmel, mfcc, raw"),
            )),
        }
    }
}

/// Settings of the spectral front end. Every field has the meaning it has in
/// librosa; [`FeatureConfig::validate`] checks them together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureConfig {
    /// Sample rate of the input in Hz (the audio is resampled to it first).
    pub sample_rate: u32,
    /// FFT size in samples.
    pub n_fft: usize,
    /// Window length in samples (<= `n_fft`). Default: `n_fft`.
    #[serde(default)]
    pub win_length: Option<usize>,
    /// Hop between frames in samples. Default: `win_length / 4`.
    #[serde(default)]
    pub hop_length: Option<usize>,
    /// Number of mel bands (not used by `raw`). Default 40.
    #[serde(default = "default_n_mels")]
    pub n_mels: usize,
    /// Lowest filterbank frequency in Hz. Default 0.
    #[serde(default)]
    pub fmin: f64,
    /// Highest filterbank frequency in Hz. Default: `sample_rate / 2`.
    #[serde(default)]
    pub fmax: Option<f64>,
    /// Mel scale. Default Slaney (librosa's default).
    #[serde(default)]
    pub mel_scale: MelScale,
    /// Pad `n_fft / 2` zeros on each side (librosa `center=True`). Default false.
    #[serde(default)]
    pub center: bool,
    /// Zeros before the first sample (after any `center` padding), e.g. the
    /// 64 samples of context Silero VAD expects before its first chunk. Default 0.
    #[serde(default)]
    pub pad_left: usize,
    /// What to emit. Default `logmel`.
    #[serde(default)]
    pub kind: FeatureKind,
    /// Number of MFCC coefficients (for `kind = "mfcc"`). Default 13.
    #[serde(default = "default_n_mfcc")]
    pub n_mfcc: usize,
}

fn default_n_mfcc() -> usize {
    13
}

fn default_n_mels() -> usize {
    40
}

impl FeatureConfig {
    /// The speech settings used by the bundled keyword models: 16 kHz, 25 ms
    /// windows every 10 ms, 40 Slaney mels from 20 to 7600 Hz, log-mel.
    pub fn speech_16k() -> Self {
        FeatureConfig {
            sample_rate: 16000,
            n_fft: 512,
            win_length: Some(400),
            hop_length: Some(160),
            n_mels: 40,
            fmin: 20.0,
            fmax: Some(7600.0),
            mel_scale: MelScale::Slaney,
            center: false,
            kind: FeatureKind::Logmel,
            n_mfcc: 13,
            pad_left: 0,
        }
    }

    /// Window length, defaulted.
    pub fn win_length(&self) -> usize {
        self.win_length.unwrap_or(self.n_fft)
    }

    /// Hop length, defaulted.
    pub fn hop_length(&self) -> usize {
        self.hop_length.unwrap_or(self.win_length() / 4)
    }

    /// Upper filterbank edge, defaulted.
    pub fn fmax(&self) -> f64 {
        self.fmax.unwrap_or(self.sample_rate as f64 / 2.0)
    }

    /// Number of values per output frame.
    pub fn n_bins(&self) -> usize {
        match self.kind {
            FeatureKind::Mel | FeatureKind::Logmel => self.n_mels,
            FeatureKind::Mfcc => self.n_mfcc,
            FeatureKind::Raw => self.n_fft,
        }
    }

    /// Time of frame `i`'s reference point, seconds from the first input
    /// sample: the centre of its analysis window for spectral kinds, and the
    /// first sample after its `pad_left` context for `raw` (Silero's chunk
    /// start convention).
    pub fn frame_time(&self, i: u64) -> f64 {
        let sr = self.sample_rate as f64;
        let start = i as f64 * self.hop_length() as f64;
        let pad = if self.center {
            (self.n_fft / 2) as f64
        } else {
            0.0
        };
        match self.kind {
            FeatureKind::Raw => (start - pad) / sr,
            _ => (start + (self.n_fft / 2) as f64 - pad - self.pad_left as f64) / sr,
        }
    }

    /// Frames per second of output.
    pub fn frame_rate(&self) -> f64 {
        self.sample_rate as f64 / self.hop_length() as f64
    }

    /// Number of frames the front end emits for a signal of `n_samples`
    /// samples, once [`FrontEnd::finish`] has been called.
    pub fn n_frames(&self, n_samples: usize) -> usize {
        let pad = if self.center { self.n_fft / 2 } else { 0 };
        let total = n_samples + 2 * pad + self.pad_left;
        if total < self.n_fft {
            0
        } else {
            1 + (total - self.n_fft) / self.hop_length()
        }
    }

    /// Checks the settings together.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first offending setting.
    pub fn validate(&self) -> Result<()> {
        const MAX_FFT: usize = 1 << 16;
        if self.sample_rate == 0 || self.sample_rate > 1_000_000 {
            return Err(Error::config(
                "sample_rate",
                format!("{} Hz is not in 1..=1000000", self.sample_rate),
            ));
        }
        if self.n_fft < 2 || self.n_fft > MAX_FFT {
            return Err(Error::config(
                "n_fft",
                format!("{} is not in 2..={MAX_FFT}", self.n_fft),
            ));
        }
        let win = self.win_length();
        if win == 0 || win > self.n_fft {
            return Err(Error::config(
                "win_length",
                format!("{win} must be in 1..=n_fft ({})", self.n_fft),
            ));
        }
        if self.hop_length() == 0 {
            return Err(Error::config("hop_length", "must be at least 1"));
        }
        if self.pad_left > self.n_fft {
            return Err(Error::config(
                "pad_left",
                format!("{} must be at most n_fft ({})", self.pad_left, self.n_fft),
            ));
        }
        if self.kind == FeatureKind::Raw {
            return Ok(());
        }
        if self.n_mels == 0 || self.n_mels > 1024 {
            return Err(Error::config(
                "n_mels",
                format!("{} is not in 1..=1024", self.n_mels),
            ));
        }
        let nyquist = self.sample_rate as f64 / 2.0;
        let fmax = self.fmax();
        if !(self.fmin.is_finite() && self.fmin >= 0.0) {
            return Err(Error::config("fmin", format!("{} must be >= 0", self.fmin)));
        }
        if !(fmax.is_finite() && fmax > self.fmin && fmax <= nyquist) {
            return Err(Error::config(
                "fmax",
                format!(
                    "{fmax} Hz must be above fmin ({} Hz) and at most the Nyquist frequency ({nyquist} Hz)",
                    self.fmin
                ),
            ));
        }
        if self.kind == FeatureKind::Mfcc && (self.n_mfcc == 0 || self.n_mfcc > self.n_mels) {
            return Err(Error::config(
                "n_mfcc",
                format!("{} must be in 1..=n_mels ({})", self.n_mfcc, self.n_mels),
            ));
        }
        Ok(())
    }
}
