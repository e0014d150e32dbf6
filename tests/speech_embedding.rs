//! The speech_embedding mel front end (`models/speech-embedding/`) against its
//! ONNX model, `melspectrogram.onnx`, run by onnxruntime.
//!
//! References: `fixtures/features/*.se_mel*.npy` and the filterbank, made by
//! `scripts/make_speech_embedding_refs.py`; every mel reference has
//! openWakeWord's `x / 10 + 2` applied, so the errors below are on that scale.

use seqrec::bundle::Bundle;
use seqrec::features::batch::{BatchOptions, extract_frames};
use seqrec::features::{FeatureConfig, FrontEnd, MelScale, mel_filterbank};
use seqrec::npy::read_f32;
use seqrec::source::file::read_all;

/// Bound on the max abs error, on the `x / 10 + 2` scale (0.01 dB).
const TOL: f32 = 1e-3;

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bundle_config() -> FeatureConfig {
    Bundle::load(root().join("models/speech-embedding"))
        .unwrap()
        .feature_config()
        .unwrap()
        .clone()
}

/// The bundle's settings with `top_db` over the whole clip, as one call of
/// the ONNX model on the whole clip computes it.
fn whole_clip_config() -> FeatureConfig {
    FeatureConfig {
        top_db_group: 0,
        top_db_first: None,
        ..bundle_config()
    }
}

fn clip(name: &str) -> Vec<f32> {
    match name {
        "speech" => read_all(root().join("fixtures/clips/speech_16k.wav"), 16000).unwrap(),
        "pauses" => {
            let mut x =
                read_all(root().join("fixtures/clips/vad/speech_pauses.wav"), 16000).unwrap();
            x.truncate(64000);
            x
        }
        _ => unreachable!(),
    }
}

/// `got` against the reference's first rows (it may have fewer frames than
/// `got`: openWakeWord's streaming drops the tail after the last 1280-sample
/// chunk). Returns the max abs error.
fn compare(got: &[f32], reference: &str) -> f32 {
    let want = read_f32(root().join("fixtures/features").join(reference)).unwrap();
    assert_eq!(want.shape.len(), 2, "{reference}");
    assert_eq!(want.shape[1], 32, "{reference}");
    assert!(
        want.data.len() <= got.len() && got.len() - want.data.len() < 8 * 32,
        "{reference}: {} frames here, {} in the reference",
        got.len() / 32,
        want.shape[0]
    );
    got.iter()
        .zip(&want.data)
        .fold(0f32, |a, (g, w)| a.max((g - w).abs()))
}

fn pushed(cfg: &FeatureConfig, x: &[f32], chunk: usize) -> Vec<f32> {
    let mut fe = FrontEnd::new(cfg).unwrap();
    let mut out = Vec::new();
    for c in x.chunks(chunk) {
        let before = out.len();
        let n = fe.push(c, &mut out);
        assert_eq!(out.len() - before, n * 32);
    }
    fe.finish(&mut out);
    out
}

#[test]
fn bundle_settings() {
    let c = bundle_config();
    assert_eq!(c.n_bins(), 32);
    assert_eq!(c.hop_length(), 160);
    assert_eq!(c.win_length(), 400);
    assert_eq!(c.n_frames(57336), 1 + (57336 - 512) / 160);
}

/// The ONNX model's mel matrix is librosa's Slaney filterbank, 60-3800 Hz.
#[test]
fn filterbank_is_the_models() {
    let want = read_f32(root().join("fixtures/features/speech_embedding.melfb.npy")).unwrap();
    assert_eq!(want.shape, vec![32, 257]);
    let fb = mel_filterbank(16000, 512, 32, 60.0, 3800.0, MelScale::Slaney);
    let d = fb
        .iter()
        .zip(&want.data)
        .fold(0f64, |a, (g, &w)| a.max((g - w as f64).abs()));
    eprintln!("speech_embedding filterbank max abs diff {d:e}");
    assert!(d < 1e-8, "{d}");
}

/// One ONNX call on the whole clip: `top_db` relative to the clip's maximum
/// (the speech clip's digital silence is clamped by it).
#[test]
fn whole_clip_matches_onnx() {
    let cfg = whole_clip_config();
    for name in ["speech", "pauses"] {
        let x = clip(name);
        let got = FrontEnd::new(&cfg).unwrap().process_all(&x);
        assert_eq!(got.len(), cfg.n_frames(x.len()) * 32);
        let d = compare(&got, &format!("{name}.se_mel.npy"));
        eprintln!("{name}: whole clip max abs diff {d:e}");
        assert!(d <= TOL, "{name}: {d}");
        // Any chunking gives the same bits; frames only come out at the end.
        assert_eq!(pushed(&cfg, &x, 1237), got);
    }
}

/// openWakeWord's streaming: the model runs on the last 1280 + 480 samples
/// at every 1280-sample chunk, so `top_db` acts per group of 5, 8, 8, ...
/// frames: the bundle's settings.
#[test]
fn streaming_calls_match_onnx() {
    let cfg = bundle_config();
    for name in ["speech", "pauses"] {
        let x = clip(name);
        let whole = FrontEnd::new(&cfg).unwrap().process_all(&x);
        let d = compare(&whole, &format!("{name}.se_mel_stream.npy"));
        eprintln!("{name}: streaming groups max abs diff {d:e}");
        assert!(d <= TOL, "{name}: {d}");
        for chunk in [1, 7, 160, 333, 1280, 1281, 4096] {
            assert_eq!(pushed(&cfg, &x, chunk), whole, "{name}, chunks of {chunk}");
        }
    }
}

/// Frames come out group by group: with 1280-sample pushes, exactly when
/// openWakeWord's call would make them (5 frames, then 8 per push).
#[test]
fn groups_come_out_with_each_80ms_chunk() {
    let cfg = bundle_config();
    let x = clip("speech");
    let mut fe = FrontEnd::new(&cfg).unwrap();
    let mut out = Vec::new();
    let counts: Vec<usize> = x
        .chunks_exact(1280)
        .take(4)
        .map(|c| fe.push(c, &mut out))
        .collect();
    assert_eq!(counts, vec![5, 8, 8, 8]);
    assert_eq!(fe.frames_emitted(), 29);
}

/// livekit-wakeword feeds the model samples in [-1, 1) (gain 1): the same
/// features 9.03 lower, except where the amin/top_db floors act.
#[test]
fn livekit_scale_matches_onnx() {
    let cfg = FeatureConfig {
        gain: 1.0,
        ..whole_clip_config()
    };
    let got = FrontEnd::new(&cfg).unwrap().process_all(&clip("speech"));
    let d = compare(&got, "speech.se_mel_lk.npy");
    eprintln!("speech: livekit input scale max abs diff {d:e}");
    assert!(d <= TOL, "{d}");
}

/// The multi-threaded whole-file path gives the streaming bits, with
/// `top_db` groups across its blocks.
#[test]
fn batch_path_is_bit_identical() {
    let x = clip("pauses");
    for cfg in [bundle_config(), whole_clip_config()] {
        let want = FrontEnd::new(&cfg).unwrap().process_all(&x);
        let fe = FrontEnd::new(&cfg).unwrap();
        for (threads, block_frames) in [(1, 2048), (3, 7), (2, 8)] {
            let mut pos = 0;
            let (got, n) = extract_frames(
                &fe,
                BatchOptions {
                    threads,
                    block_frames,
                },
                |buf| {
                    let end = (pos + 3000).min(x.len());
                    buf.extend_from_slice(&x[pos..end]);
                    let n = end - pos;
                    pos = end;
                    Ok(n)
                },
            )
            .unwrap();
            assert_eq!(n, x.len());
            assert_eq!(got, want, "{cfg:?} threads {threads} blocks {block_frames}");
        }
    }
}

/// The embedding references (for the `[embedder]` stage) have one row per
/// 76-frame window, stride 8, of the streaming mel reference.
#[test]
fn embedding_references_are_shaped() {
    for (name, mel) in [
        ("speech.embed.npy", "speech.se_mel_stream.npy"),
        ("speech.embed_whole.npy", "speech.se_mel.npy"),
        ("pauses.embed.npy", "pauses.se_mel_stream.npy"),
    ] {
        let e = read_f32(root().join("fixtures/features").join(name)).unwrap();
        let m = read_f32(root().join("fixtures/features").join(mel)).unwrap();
        assert_eq!(e.shape, vec![(m.shape[0] - 76) / 8 + 1, 96], "{name}");
        assert!(e.data.iter().all(|v| v.is_finite()), "{name}");
    }
}

/// Each new `[features]` key is checked, and the error names it.
#[test]
fn manifest_errors_name_the_key() {
    let good = std::fs::read_to_string(root().join("models/speech-embedding/bundle.toml")).unwrap();
    let key_of = |text: &str| -> (String, String) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bundle.toml"), text).unwrap();
        match Bundle::load(dir.path()) {
            Err(seqrec::Error::Bundle { key, reason, .. }) => (key, reason),
            other => panic!("expected a bundle error for\n{text}\ngot {other:?}"),
        }
    };
    let cases = [
        ("gain = 32768.0", "gain = 0.0", "features.gain"),
        ("gain = 32768.0", "gain = -1.0", "features.gain"),
        ("gain = 32768.0", "gain = nan", "features.gain"),
        ("amin = 1e-10", "amin = 0.0", "features.amin"),
        ("amin = 1e-10", "amin = \"x\"", "features.amin"),
        ("top_db = 80.0", "top_db = -1.0", "features.top_db"),
        ("kind = \"db\"", "kind = \"logmel\"", "features.top_db"),
        ("kind = \"db\"", "kind = \"decibel\"", "features.kind"),
        ("top_db = 80.0", "", "features.top_db_group"),
        ("top_db_group = 8", "", "features.top_db_first"),
        (
            "top_db_first = 5",
            "top_db_first = 0",
            "features.top_db_first",
        ),
        (
            "top_db_group = 8",
            "top_db_group = -8",
            "features.top_db_group",
        ),
        ("scale = 0.1", "scale = inf", "features.scale"),
        ("offset = 2.0", "offset = nan", "features.offset"),
        ("offset = 2.0", "ofset = 2.0", "features.ofset"),
    ];
    for (from, to, key) in cases {
        assert!(good.contains(from), "{from}");
        let (k, reason) = key_of(&good.replace(from, to));
        eprintln!("{to:>22} -> {k}: {reason}");
        assert_eq!(k, key, "{from} -> {to}: {reason}");
    }
}
