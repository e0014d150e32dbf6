//! Mel scales, the mel filterbank and the DCT used for MFCCs.
//!
//! Computed in f64 exactly as `librosa.filters.mel` does, then stored as f32.

use serde::{Deserialize, Serialize};

/// The mel scale used to place the filterbank's triangles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MelScale {
    /// Slaney's Auditory Toolbox scale: linear below 1 kHz, logarithmic above
    /// (librosa's default, `htk=False`).
    #[default]
    Slaney,
    /// HTK's `2595 * log10(1 + f / 700)` (librosa `htk=True`).
    Htk,
}

impl std::str::FromStr for MelScale {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "slaney" => Ok(MelScale::Slaney),
            "htk" => Ok(MelScale::Htk),
            _ => Err(crate::Error::config(
                "mel_scale",
                format!("`{s}` is not one of slaney, htk"),
            )),
        }
    }
}

const SLANEY_F_SP: f64 = 200.0 / 3.0;
const SLANEY_MIN_LOG_HZ: f64 = 1000.0;
const SLANEY_MIN_LOG_MEL: f64 = SLANEY_MIN_LOG_HZ / SLANEY_F_SP;

fn slaney_logstep() -> f64 {
    6.4f64.ln() / 27.0
}

/// Hertz to mels on the given scale.
pub fn hz_to_mel(hz: f64, scale: MelScale) -> f64 {
    match scale {
        MelScale::Htk => 2595.0 * (1.0 + hz / 700.0).log10(),
        MelScale::Slaney => {
            if hz >= SLANEY_MIN_LOG_HZ {
                SLANEY_MIN_LOG_MEL + (hz / SLANEY_MIN_LOG_HZ).ln() / slaney_logstep()
            } else {
                hz / SLANEY_F_SP
            }
        }
    }
}

/// Mels to hertz on the given scale (inverse of [`hz_to_mel`]).
pub fn mel_to_hz(mel: f64, scale: MelScale) -> f64 {
    match scale {
        MelScale::Htk => 700.0 * (10f64.powf(mel / 2595.0) - 1.0),
        MelScale::Slaney => {
            if mel >= SLANEY_MIN_LOG_MEL {
                SLANEY_MIN_LOG_HZ * (slaney_logstep() * (mel - SLANEY_MIN_LOG_MEL)).exp()
            } else {
                SLANEY_F_SP * mel
            }
        }
    }
}

/// The mel filterbank as a dense `[n_mels][n_fft / 2 + 1]` matrix (row-major),
/// with Slaney area normalisation (`norm='slaney'`): each triangle is scaled by
/// `2 / (f_right - f_left)` so that bands have equal energy per Hz.
pub fn mel_filterbank(
    sample_rate: u32,
    n_fft: usize,
    n_mels: usize,
    fmin: f64,
    fmax: f64,
    scale: MelScale,
) -> Vec<f64> {
    let n_freqs = n_fft / 2 + 1;
    let sr = sample_rate as f64;
    let fft_freq = |k: usize| k as f64 * sr / n_fft as f64;
    let (mel_lo, mel_hi) = (hz_to_mel(fmin, scale), hz_to_mel(fmax, scale));
    let edges: Vec<f64> = (0..n_mels + 2)
        .map(|i| {
            let m = mel_lo + (mel_hi - mel_lo) * i as f64 / (n_mels + 1) as f64;
            mel_to_hz(m, scale)
        })
        .collect();
    let mut weights = vec![0.0f64; n_mels * n_freqs];
    for m in 0..n_mels {
        let (left, mid, right) = (edges[m], edges[m + 1], edges[m + 2]);
        let enorm = 2.0 / (right - left);
        for k in 0..n_freqs {
            let f = fft_freq(k);
            let lower = (f - left) / (mid - left);
            let upper = (right - f) / (right - mid);
            let w = lower.min(upper).max(0.0);
            weights[m * n_freqs + k] = w * enorm;
        }
    }
    weights
}

/// A filterbank row stored sparsely: the first nonzero bin and the weights
/// from there on (a multiple of 8 of them, zero-padded; may run up to 7 bins
/// past the spectrum). Mel triangles are narrow, so this skips most multiplies.
#[derive(Debug, Clone)]
pub(crate) struct SparseRow {
    pub start: usize,
    pub weights: Vec<f32>,
}

pub(crate) fn sparse_rows(dense: &[f64], n_rows: usize, n_cols: usize) -> Vec<SparseRow> {
    (0..n_rows)
        .map(|r| {
            let row = &dense[r * n_cols..(r + 1) * n_cols];
            let first = row.iter().position(|&w| w != 0.0).unwrap_or(0);
            let last = row.iter().rposition(|&w| w != 0.0).map_or(first, |p| p + 1);
            // Zero-padded to a multiple of 8 weights for the 8-lane
            // accumulation; the power buffer has 8 zero bins past the end.
            let len = (last - first).div_ceil(8) * 8;
            let weights = (first..first + len)
                .map(|k| row.get(k).map_or(0.0, |&w| w as f32))
                .collect();
            SparseRow {
                start: first,
                weights,
            }
        })
        .collect()
}

/// The orthonormal DCT-II matrix, `[n_out][n_in]` row-major (scipy `dct(type=2, norm='ortho')`).
pub(crate) fn dct_ortho(n_out: usize, n_in: usize) -> Vec<f64> {
    let n = n_in as f64;
    let mut m = vec![0.0; n_out * n_in];
    for k in 0..n_out {
        let scale = if k == 0 {
            (1.0 / n).sqrt()
        } else {
            (2.0 / n).sqrt()
        };
        for i in 0..n_in {
            m[k * n_in + i] = scale
                * (std::f64::consts::PI * k as f64 * (2.0 * i as f64 + 1.0) / (2.0 * n)).cos();
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_invert() {
        for scale in [MelScale::Slaney, MelScale::Htk] {
            for hz in [0.0, 20.0, 440.0, 999.0, 1000.0, 1001.0, 7600.0, 11025.0] {
                let back = mel_to_hz(hz_to_mel(hz, scale), scale);
                assert!(
                    (back - hz).abs() < 1e-9 * hz.max(1.0),
                    "{scale:?} {hz} -> {back}"
                );
            }
        }
    }

    #[test]
    fn known_values() {
        // librosa.hz_to_mel(1000) == 15.0, hz_to_mel(1000, htk=True) == 999.98553...
        assert!((hz_to_mel(1000.0, MelScale::Slaney) - 15.0).abs() < 1e-12);
        assert!((hz_to_mel(1000.0, MelScale::Htk) - 999.985_537_139_624_4).abs() < 1e-9);
    }

    #[test]
    fn dct_is_orthonormal() {
        let n = 16;
        let m = dct_ortho(n, n);
        for a in 0..n {
            for b in 0..n {
                let dot: f64 = (0..n).map(|i| m[a * n + i] * m[b * n + i]).sum();
                let want = if a == b { 1.0 } else { 0.0 };
                assert!((dot - want).abs() < 1e-12);
            }
        }
    }
}
