//! The front end against librosa 0.11 on committed clips.
//!
//! References: `fixtures/features/*.npy`, made by `scripts/make_feature_refs.py`
//! (float64 librosa, saved as float32). Tolerances are the issue's: logmel
//! <= 1e-3 and MFCC <= 1e-2 absolute; mel is compared relative to the array max.

use seqrec::features::{FeatureConfig, FeatureKind, FrontEnd, MelScale, mel_filterbank};
use seqrec::npy::read_f32;
use seqrec::source::file::read_all;

fn fixture(p: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(p)
}

fn speech(kind: FeatureKind) -> FeatureConfig {
    FeatureConfig {
        kind,
        n_mfcc: 13,
        ..FeatureConfig::speech_16k()
    }
}

fn music(kind: FeatureKind) -> FeatureConfig {
    FeatureConfig {
        sample_rate: 22050,
        n_fft: 1024,
        win_length: Some(1024),
        hop_length: Some(256),
        n_mels: 96,
        fmin: 0.0,
        fmax: Some(11025.0),
        mel_scale: MelScale::Htk,
        center: true,
        kind,
        n_mfcc: 20,
        pad_left: 0,
        ..FeatureConfig::speech_16k()
    }
}

/// Max abs difference, after checking shapes agree.
fn max_abs_diff(cfg: &FeatureConfig, clip: &str, reference: &str) -> (f32, f32) {
    let x = read_all(fixture(clip), cfg.sample_rate).unwrap();
    let got = FrontEnd::new(cfg).unwrap().process_all(&x);
    let want = read_f32(fixture(reference)).unwrap();
    assert_eq!(
        want.shape,
        vec![cfg.n_frames(x.len()), cfg.n_bins()],
        "{reference}"
    );
    assert_eq!(got.len(), want.data.len(), "{reference}");
    let max_ref = want.data.iter().fold(0f32, |a, &b| a.max(b.abs()));
    let diff = got
        .iter()
        .zip(&want.data)
        .fold(0f32, |a, (g, w)| a.max((g - w).abs()));
    (diff, max_ref)
}

#[test]
fn speech_logmel_matches_librosa() {
    let (d, _) = max_abs_diff(
        &speech(FeatureKind::Logmel),
        "clips/speech_16k.wav",
        "features/speech.logmel.npy",
    );
    eprintln!("speech logmel max abs diff {d:e}");
    assert!(d <= 1e-3, "{d}");
}

#[test]
fn speech_mfcc_matches_librosa() {
    let (d, _) = max_abs_diff(
        &speech(FeatureKind::Mfcc),
        "clips/speech_16k.wav",
        "features/speech.mfcc.npy",
    );
    eprintln!("speech mfcc max abs diff {d:e}");
    assert!(d <= 1e-2, "{d}");
}

#[test]
fn speech_mel_matches_librosa() {
    let (d, m) = max_abs_diff(
        &speech(FeatureKind::Mel),
        "clips/speech_16k.wav",
        "features/speech.mel.npy",
    );
    eprintln!("speech mel max abs diff {d:e} (max {m})");
    assert!(d <= 1e-5 * m, "{d} vs max {m}");
}

#[test]
fn music_logmel_matches_librosa() {
    let (d, _) = max_abs_diff(
        &music(FeatureKind::Logmel),
        "clips/music_22k.wav",
        "features/music.logmel.npy",
    );
    eprintln!("music logmel max abs diff {d:e}");
    assert!(d <= 1e-3, "{d}");
}

#[test]
fn music_mfcc_matches_librosa() {
    let (d, _) = max_abs_diff(
        &music(FeatureKind::Mfcc),
        "clips/music_22k.wav",
        "features/music.mfcc.npy",
    );
    eprintln!("music mfcc max abs diff {d:e}");
    assert!(d <= 1e-2, "{d}");
}

#[test]
fn music_mel_matches_librosa() {
    let (d, m) = max_abs_diff(
        &music(FeatureKind::Mel),
        "clips/music_22k.wav",
        "features/music.mel.npy",
    );
    eprintln!("music mel max abs diff {d:e} (max {m})");
    assert!(d <= 1e-5 * m, "{d} vs max {m}");
}

#[test]
fn filterbanks_match_librosa() {
    for (name, sr, n_fft, n_mels, fmin, fmax, scale) in [
        (
            "features/speech.melfb.npy",
            16000,
            512,
            40,
            20.0,
            7600.0,
            MelScale::Slaney,
        ),
        (
            "features/music.melfb.npy",
            22050,
            1024,
            96,
            0.0,
            11025.0,
            MelScale::Htk,
        ),
    ] {
        let want = read_f32(fixture(name)).unwrap();
        assert_eq!(want.shape, vec![n_mels, n_fft / 2 + 1]);
        let got = mel_filterbank(sr, n_fft, n_mels, fmin, fmax, scale);
        let d = got
            .iter()
            .zip(&want.data)
            .fold(0f64, |a, (g, &w)| a.max((g - w as f64).abs()));
        assert!(d < 1e-7, "{name}: {d}");
    }
}
