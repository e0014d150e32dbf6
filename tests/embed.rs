//! The embedder stage (`src/embed.rs`) on Google's speech_embedding CNN
//! (`models/speech-embedding/embedding_model.onnx`, 76 x 32 mel frames in,
//! 96 values out, every 8 frames): windows do not depend on how the input is
//! chunked or batched, and bad settings are clear errors.

mod common;

use common::root;
use std::path::PathBuf;

use proptest::prelude::*;
use seqrec::Error;
use seqrec::embed::{EmbedStream, Embedder, EmbedderSection};

fn section() -> EmbedderSection {
    let mut s: EmbedderSection = toml::from_str(
        r#"
onnx = "embedding_model.onnx"
window = 76
step = 8
input_shape = [76, 32, 1]
"#,
    )
    .unwrap();
    s.onnx = model_dir().join(s.onnx);
    s
}

fn model_dir() -> PathBuf {
    root().join("models/speech-embedding")
}

fn embedder() -> Embedder {
    Embedder::load(&section(), 32).unwrap()
}

/// Deterministic pseudo-random "mel" frames in the model's usual range.
fn frames(n: usize, seed: u64) -> Vec<f32> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n * 32)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 1.0
        })
        .collect()
}

fn run(s: &mut EmbedStream, input: &[f32], chunk_frames: &[usize]) -> Vec<f32> {
    let mut out = Vec::new();
    let mut pos = 0;
    let mut k = 0;
    while pos < input.len() {
        let n = (chunk_frames[k % chunk_frames.len()].max(1) * 32).min(input.len() - pos);
        s.push(&input[pos..pos + n], &mut out).unwrap();
        pos += n;
        k += 1;
    }
    s.flush(&mut out).unwrap();
    out
}

#[test]
fn one_window_per_step_with_the_models_output_size() {
    let e = embedder();
    assert_eq!((e.window(), e.step(), e.output_size()), (76, 8, 96));
    let mut s = e.stream(1).unwrap();
    // 75 frames: no complete window yet; the 76th completes window 0.
    let x = frames(100, 1);
    let mut out = Vec::new();
    s.push(&x[..75 * 32], &mut out).unwrap();
    assert!(out.is_empty());
    s.push(&x[75 * 32..76 * 32], &mut out).unwrap();
    assert_eq!(out.len(), 96);
    // 100 frames hold windows 0, 1, 2, 3 (starts 0, 8, 16, 24; 24 + 76 = 100).
    s.push(&x[76 * 32..], &mut out).unwrap();
    assert_eq!(out.len(), 4 * 96);
    assert!(out.iter().all(|v| v.is_finite()));
}

#[test]
fn batching_and_reset_do_not_change_the_windows() {
    let e = embedder();
    let x = frames(300, 2); // 29 windows
    let one = run(&mut e.stream(1).unwrap(), &x, &[300]);
    assert_eq!(one.len(), 29 * 96);
    let mut s16 = e.stream(16).unwrap();
    let batched = run(&mut s16, &x, &[300]);
    // Batch size changes how ONNX Runtime groups the work, not the result
    // beyond float rounding of its convolution kernels.
    let err = one
        .iter()
        .zip(&batched)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(err <= 1e-4, "batch 16 vs 1: max abs err {err}");
    // After reset, the same input gives the same output bits.
    s16.reset();
    assert_eq!(run(&mut s16, &x, &[300]), batched);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]
    #[test]
    fn chunking_does_not_change_the_windows(chunks in proptest::collection::vec(1usize..40, 1..8)) {
        let e = embedder();
        let x = frames(180, 3);
        let whole = run(&mut e.stream(1).unwrap(), &x, &[180]);
        let chunked = run(&mut e.stream(1).unwrap(), &x, &chunks);
        prop_assert_eq!(whole, chunked);
    }
}

fn load_err(edit: impl Fn(&mut EmbedderSection), frame_len: usize) -> String {
    let mut s = section();
    edit(&mut s);
    match Embedder::load(&s, frame_len) {
        Err(Error::InvalidConfig { name, .. }) => name,
        Err(e) => panic!("expected a config error, got {e}"),
        Ok(_) => panic!("expected an error"),
    }
}

#[test]
fn bad_settings_name_the_key() {
    // 40 mel bins: 76 x 40 does not fit [76, 32, 1].
    assert_eq!(load_err(|_| {}, 40), "embedder.input_shape");
    assert_eq!(
        load_err(|s| s.input_shape = Some(vec![76, 16, 2]), 32),
        "embedder.input_shape"
    );
    assert_eq!(load_err(|s| s.window = 0, 32), "embedder.window");
    assert_eq!(load_err(|s| s.step = 0, 32), "embedder.step");
    assert_eq!(
        load_err(|s| s.input = Some("nope".into()), 32),
        "embedder.input"
    );
    assert_eq!(
        load_err(|s| s.output = Some("nope".into()), 32),
        "embedder.output"
    );
    // A missing file is an I/O error naming it.
    let mut s = section();
    s.onnx = model_dir().join("missing.onnx");
    let e = Embedder::load(&s, 32).unwrap_err().to_string();
    assert!(e.contains("missing.onnx"), "{e}");
    // A partial frame is a shape error, not a panic.
    let mut st = embedder().stream(1).unwrap();
    assert!(matches!(
        st.push(&[0.0; 33], &mut Vec::new()),
        Err(Error::Shape(_))
    ));
}

/// The whole audio path of `models/speech-embedding` (seqrec's mel front end,
/// then the CNN through the embedder stage) against Python onnxruntime
/// running `melspectrogram.onnx` + `embedding_model.onnx` on the same clip
/// (`scripts/make_speech_embedding_refs.py` -> `speech.embed.npy`, windows
/// `[8j, 8j+76)` of the streaming-grouped mel).
#[test]
fn speech_embeddings_match_python_onnxruntime() {
    let out = tempfile::tempdir().unwrap();
    let npy = out.path().join("e.npy");
    common::seqrec_ok([
        "embed",
        "fixtures/clips/speech_16k.wav",
        "--bundle",
        model_dir().to_str().unwrap(),
        "--out",
        npy.to_str().unwrap(),
    ]);
    let got = seqrec::npy::read_f32(&npy).unwrap();
    let want = seqrec::npy::read_f32(root().join("fixtures/features/speech.embed.npy")).unwrap();
    // The reference streams whole 1280-sample pushes as openWakeWord does,
    // so it stops at the last complete push; a file run also flushes the
    // tail (here one more window). Compare what both have.
    assert_eq!(got.shape[1], 96);
    assert!(
        got.shape[0] >= want.shape[0] && got.shape[0] <= want.shape[0] + 1,
        "{:?} vs {:?}",
        got.shape,
        want.shape
    );
    let shape = want.shape.clone();
    let (got, want) = (&got.data[..want.data.len()], want.data);
    let err = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    eprintln!("speech embeddings {shape:?}: max abs err {err:e} (values up to {scale})");
    // The mel agrees within 6e-5 (tests/speech_embedding.rs); the CNN
    // amplifies that a little.
    assert!(err <= 2e-3, "max abs err {err}");
}
