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
//! * `mfcc` = orthonormal DCT-II of `10 * log10(max(mel, amin))`, keeping the
//!   first `n_mfcc` coefficients;
//! * `db` = `10 * log10(max(mel, amin))` (librosa `power_to_db` with `ref=1`),
//!   optionally clamped from below at `top_db` under the loudest value of a
//!   group of frames (see [`FeatureConfig::top_db`]);
//! * `log10p` = `log10(1 + log_gain * mel)`, musicnn's compression
//!   (`log_gain` = 10000), computed in f64 and rounded once to f32.
//!
//! Two settings outside librosa frame this: `gain` multiplies the samples
//! first (e.g. 32768 to analyse int16-scaled audio) and every output value
//! becomes `scale * value + offset` last, so a model's input normalisation
//! (speech_embedding's `x / 10 + 2`) can live in the bundle manifest.
//!
//! [`FrontEnd`] is streaming: samples pushed in chunks of any size produce
//! exactly (bit for bit) the frames of the whole signal processed at once.

pub mod batch;
mod frontend;
mod mel;
pub mod pose;
pub mod video;

pub use frontend::{FrontEnd, FrontEndState};
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
    /// Mel power in dB, `10 * log10(max(mel, amin))`, with the optional
    /// `top_db` clamp (`n_mels` values).
    Db,
    /// The samples themselves, `n_fft` per frame, no window or transform:
    /// for models that take raw audio windows (e.g. Silero VAD).
    Raw,
    /// `log10(1 + log_gain * mel)` (`n_mels` values): musicnn's input
    /// compression, which stays finite and near 0 on silence.
    Log10p,
}

impl std::str::FromStr for FeatureKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "mel" => Ok(FeatureKind::Mel),
            "logmel" => Ok(FeatureKind::Logmel),
            "mfcc" => Ok(FeatureKind::Mfcc),
            "raw" => Ok(FeatureKind::Raw),
            "db" => Ok(FeatureKind::Db),
            "log10p" => Ok(FeatureKind::Log10p),
            _ => Err(Error::config(
                "kind",
                format!("`{s}` is not one of mel, logmel, mfcc, db, log10p, raw"),
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
    /// At the end of the stream, a last frame that holds new samples but
    /// fewer than a whole frame is completed with zeros and emitted, instead
    /// of dropped (Silero VAD's `get_speech_timestamps` scores its partial
    /// last chunk this way). Default false.
    #[serde(default)]
    pub pad_end: bool,
    /// What to emit. Default `logmel`.
    #[serde(default)]
    pub kind: FeatureKind,
    /// Number of MFCC coefficients (for `kind = "mfcc"`). Default 13.
    #[serde(default = "default_n_mfcc")]
    pub n_mfcc: usize,
    /// Factor applied to every input sample before anything else (all kinds).
    /// E.g. 32768 analyses `[-1, 1)` audio as int16 values, as openWakeWord
    /// feeds speech_embedding's mel model. Default 1. A power of two scales
    /// the results exactly.
    #[serde(default = "one")]
    pub gain: f64,
    /// Floor of the mel power before the dB conversion of `db` and `mfcc`
    /// (librosa's `amin`). Default 1e-10.
    #[serde(default = "default_amin")]
    pub amin: f64,
    /// `db` only: clamp values from below at `top_db` dB under the largest
    /// value of their group of frames (librosa `power_to_db`'s `top_db`,
    /// where the group is the whole input). Default: no clamp.
    #[serde(default)]
    pub top_db: Option<f64>,
    /// Frames per `top_db` group; 0 (the default) makes the whole stream one
    /// group, so no frame is emitted before [`FrontEnd::finish`]: for files
    /// only. A live stream needs a group size, which delays output by up to
    /// that many frames.
    #[serde(default)]
    pub top_db_group: usize,
    /// Frames in the first `top_db` group (then `top_db_group` each).
    /// Default: `top_db_group`. openWakeWord's streaming calls make groups of
    /// 5, 8, 8, ... frames.
    #[serde(default)]
    pub top_db_first: Option<usize>,
    /// Output affine map, last: every emitted value `v` becomes
    /// `scale * v + offset` (all kinds). Default 1.
    #[serde(default = "one")]
    pub scale: f64,
    /// See `scale`. Default 0.
    #[serde(default)]
    pub offset: f64,
    /// `log10p` only: the factor inside `log10(1 + log_gain * mel)`.
    /// Default 10000 (musicnn).
    #[serde(default = "default_log_gain")]
    pub log_gain: f64,
}

fn default_log_gain() -> f64 {
    10000.0
}

fn one() -> f64 {
    1.0
}

fn default_amin() -> f64 {
    1e-10
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
            pad_end: false,
            gain: 1.0,
            amin: default_amin(),
            top_db: None,
            top_db_group: 0,
            top_db_first: None,
            scale: 1.0,
            offset: 0.0,
            log_gain: default_log_gain(),
        }
    }

    /// Size of the first `top_db` group, defaulted.
    pub fn top_db_first(&self) -> usize {
        self.top_db_first.unwrap_or(self.top_db_group)
    }

    /// Whether the output stage (`top_db`, `scale`, `offset`) changes anything.
    pub(crate) fn has_output_stage(&self) -> bool {
        self.top_db.is_some() || self.scale != 1.0 || self.offset != 0.0
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
            FeatureKind::Mel | FeatureKind::Logmel | FeatureKind::Db | FeatureKind::Log10p => {
                self.n_mels
            }
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
        let full = if total < self.n_fft {
            0
        } else {
            1 + (total - self.n_fft) / self.hop_length()
        };
        let tail = total.saturating_sub(full * self.hop_length());
        full + usize::from(self.end_padding(tail) > 0)
    }

    /// With `pad_end`: the zeros that complete the last frame, given the
    /// `tail` samples from the next frame's start to the end of the (padded)
    /// signal; 0 when there is no partial frame with new samples in it (the
    /// tail is only the previous frame's overlap) or no `pad_end`.
    pub(crate) fn end_padding(&self, tail: usize) -> usize {
        let overlap = self.n_fft.saturating_sub(self.hop_length());
        if self.pad_end && tail > overlap && tail < self.n_fft {
            self.n_fft - tail
        } else {
            0
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
        let finite = |name: &str, v: f64| {
            if v.is_finite() {
                Ok(())
            } else {
                Err(Error::config(name, format!("{v} is not a finite number")))
            }
        };
        finite("gain", self.gain)?;
        if self.gain <= 0.0 {
            return Err(Error::config("gain", format!("{} must be > 0", self.gain)));
        }
        finite("scale", self.scale)?;
        finite("offset", self.offset)?;
        if !(self.log_gain.is_finite() && self.log_gain > 0.0) {
            return Err(Error::config(
                "log_gain",
                format!("{} must be a finite number > 0", self.log_gain),
            ));
        }
        if self.log_gain != default_log_gain() && self.kind != FeatureKind::Log10p {
            return Err(Error::config(
                "log_gain",
                "only applies to kind = \"log10p\"",
            ));
        }
        if let Some(t) = self.top_db {
            if self.kind != FeatureKind::Db {
                return Err(Error::config("top_db", "only applies to kind = \"db\""));
            }
            if !(t.is_finite() && t >= 0.0) {
                return Err(Error::config("top_db", format!("{t} must be >= 0")));
            }
        } else if self.top_db_group != 0 || self.top_db_first.is_some() {
            let name = if self.top_db_group != 0 {
                "top_db_group"
            } else {
                "top_db_first"
            };
            return Err(Error::config(name, "needs top_db"));
        }
        if let Some(first) = self.top_db_first {
            if self.top_db_group == 0 {
                return Err(Error::config(
                    "top_db_first",
                    "needs top_db_group (with top_db_group = 0 the whole stream is one group)",
                ));
            }
            if first == 0 {
                return Err(Error::config("top_db_first", "must be at least 1"));
            }
        }
        if self.kind == FeatureKind::Raw {
            return Ok(());
        }
        if !(self.amin.is_finite() && self.amin >= 1e-30) {
            return Err(Error::config(
                "amin",
                format!("{} must be a finite number >= 1e-30", self.amin),
            ));
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
