//! musicnn's input and embedder in seqrec (`models/musicnn`), pinned to
//! Python references (`scripts/genre/make_refs.py`, librosa + onnxruntime)
//! on `fixtures/genre/bach_16k.wav` (a Bach chorale rendered here from the
//! music21 corpus with FluidR3_GM; see `fixtures/genre/README.md`).

mod common;

use common::{root, seqrec_ok};

fn npy(name: &str) -> (Vec<usize>, Vec<f32>) {
    let a = seqrec::npy::read_f32(root().join(name)).unwrap();
    (a.shape, a.data)
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// `kind = "log10p"`: librosa's centred (zero-padded) 96-band Slaney mel of
/// the 16 kHz clip, `log10(1 + 10000 mel)`, computed in float64 there.
#[test]
fn musicnn_front_end_matches_librosa() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mel.npy");
    seqrec_ok([
        "features",
        "fixtures/genre/bach_16k.wav",
        "--bundle",
        "models/musicnn",
        "--out",
        out.to_str().unwrap(),
    ]);
    let got = seqrec::npy::read_f32(&out).unwrap();
    let (shape, want) = npy("fixtures/genre/bach.mel_zeros.npy");
    assert_eq!(got.shape, shape);
    let d = max_abs_diff(&got.data, &want);
    // Measured 2.9e-6 (values up to ~5.5); f32 FFT round-off.
    assert!(d < 2e-5, "log10p mel vs librosa: max |diff| {d}");
}

/// The embedder's windows (187 frames every 62) through the converted MSD
/// musicnn give onnxruntime's outputs on librosa's features.
#[test]
fn musicnn_embeddings_match_python() {
    let dir = tempfile::tempdir().unwrap();
    for (output, reference) in [
        ("taggram", "fixtures/genre/bach.onnx_msd.taggram.npy"),
        (
            "penultimate",
            "fixtures/genre/bach.onnx_msd.penultimate.npy",
        ),
    ] {
        // The same bundle with another output selected by name.
        let bundle = dir.path().join(output);
        std::fs::create_dir_all(&bundle).unwrap();
        let manifest = std::fs::read_to_string(root().join("models/musicnn/bundle.toml"))
            .unwrap()
            .replace(
                "onnx = \"../genre/musicnn_msd.onnx\"",
                &format!(
                    "onnx = \"{}\"",
                    root().join("models/genre/musicnn_msd.onnx").display()
                ),
            )
            .replace("output = \"taggram\"", &format!("output = \"{output}\""));
        std::fs::write(bundle.join("bundle.toml"), manifest).unwrap();
        let out = dir.path().join(format!("{output}.npy"));
        seqrec_ok([
            "embed",
            "fixtures/genre/bach_16k.wav",
            "--bundle",
            bundle.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        let got = seqrec::npy::read_f32(&out).unwrap();
        let (shape, want) = npy(reference);
        assert_eq!(got.shape, shape, "{output}");
        let d = max_abs_diff(&got.data, &want);
        // Measured 1.8e-7 on the taggram.
        assert!(d < 1e-4, "{output} vs Python: max |diff| {d}");
    }
}
