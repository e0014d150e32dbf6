//! The recurrent stage against PyTorch and ONNX Runtime references.
//!
//! `fixtures/rnn/` is made by `scripts/make_rnn_refs.py`: torch-exported
//! RNN/LSTM/GRU models (1-3 layers, with and without a dense head), their
//! inputs, and torch's outputs and final states; plus hand-built ONNX graphs
//! (GRU with linear_before_reset=0, LSTM with peepholes) whose references come
//! from onnxruntime.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use proptest::prelude::*;
use seqrec::bundle::Backend;
use seqrec::npy::read_f32;
use seqrec::sequence::{NativeBatch, OrtSpec, SequenceModel, Stream, import_onnx};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/rnn")
}

struct Case {
    name: String,
    onnx: PathBuf,
    x: Vec<f32>,
    y: Vec<f32>,
    states: Vec<(String, String, Vec<f32>)>,
    input_size: usize,
}

fn meta() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join("meta.json")).unwrap()).unwrap()
}

/// Every case with references (all but the bidirectional model).
fn cases() -> Vec<Case> {
    let meta = meta();
    let mut out = Vec::new();
    for (name, c) in meta["cases"].as_object().unwrap() {
        if c["bidirectional"].as_bool() == Some(true) {
            continue;
        }
        let x = read_f32(dir().join(format!("{name}.x.npy"))).unwrap();
        let y = read_f32(dir().join(format!("{name}.y.npy"))).unwrap();
        let ins = c["state_inputs"].as_array().unwrap();
        let outs = c["state_outputs"].as_array().unwrap();
        let states = ins
            .iter()
            .zip(outs)
            .map(|(i, o)| {
                let o = o.as_str().unwrap().to_string();
                let v = read_f32(dir().join(format!("{name}.{o}.npy")))
                    .unwrap()
                    .data;
                (i.as_str().unwrap().to_string(), o, v)
            })
            .collect();
        out.push(Case {
            name: name.clone(),
            onnx: dir().join(format!("{name}.onnx")),
            input_size: *x.shape.last().unwrap(),
            x: x.data,
            y: y.data,
            states,
        });
    }
    assert!(
        out.len() >= 15,
        "expected the full fixture set, found {}",
        out.len()
    );
    out
}

fn ort_spec(c: &Case) -> OrtSpec {
    OrtSpec {
        state: c
            .states
            .iter()
            .map(|(i, o, _)| [i.clone(), o.clone()])
            .collect(),
        ..OrtSpec::default()
    }
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()))
}

fn run_whole(s: &mut dyn Stream, x: &[f32]) -> Vec<f32> {
    let mut y = Vec::new();
    s.process(x, &mut y).unwrap();
    y
}

/// The model of case `c`, the inputs of `b` streams (the case's input
/// scaled by `scale(stream)`), and each stream's output run alone.
#[allow(clippy::type_complexity)]
fn streams_alone(
    c: &Case,
    b: usize,
    scale: impl Fn(usize) -> f32,
) -> (
    Arc<seqrec::sequence::NativeModel>,
    Vec<Vec<f32>>,
    Vec<Vec<f32>>,
) {
    let m = Arc::new(import_onnx(&c.onnx).unwrap());
    let xs: Vec<Vec<f32>> = (0..b)
        .map(|s| c.x.iter().map(|v| v * scale(s)).collect())
        .collect();
    let want = xs.iter().map(|x| run_whole(&mut m.stream(), x)).collect();
    (m, xs, want)
}

fn run_chunked(s: &mut dyn Stream, x: &[f32], frame: usize, sizes: &[usize]) -> Vec<f32> {
    let mut y = Vec::new();
    let mut pos = 0;
    let mut k = 0;
    while pos < x.len() {
        let n = (sizes[k % sizes.len()] * frame).min(x.len() - pos);
        s.process(&x[pos..pos + n], &mut y).unwrap();
        pos += n;
        k += 1;
    }
    y
}

#[test]
fn native_matches_torch_and_final_states() {
    for c in cases() {
        let m = Arc::new(import_onnx(&c.onnx).unwrap_or_else(|e| panic!("{}: {e}", c.name)));
        let mut s = m.stream();
        let y = run_whole(&mut s, &c.x);
        let d = max_diff(&y, &c.y);
        eprintln!(
            "{:24} native vs reference: y {d:.2e}  ({})",
            c.name,
            m.describe()
        );
        assert!(d <= 1e-5, "{}: y differs by {d}", c.name);
        let snap = s.snapshot();
        assert_eq!(snap.tensors.len(), c.states.len(), "{}", c.name);
        for (t, (i, o, want)) in snap.tensors.iter().zip(&c.states) {
            assert_eq!((&t.input, &t.output), (i, o), "{}: state names", c.name);
            let d = max_diff(&t.data, want);
            assert!(d <= 1e-5, "{}: state {o} differs by {d}", c.name);
        }
    }
}

#[test]
fn ort_matches_torch_and_native() {
    for c in cases() {
        let ort = SequenceModel::load(&c.onnx, Backend::Ort, &ort_spec(&c)).unwrap();
        let mut so = ort.stream().unwrap();
        let yo = run_whole(so.as_mut(), &c.x);
        let native = Arc::new(import_onnx(&c.onnx).unwrap());
        let yn = run_whole(&mut native.stream(), &c.x);
        let d_ref = max_diff(&yo, &c.y);
        let d_nat = max_diff(&yo, &yn);
        eprintln!(
            "{:24} ort vs reference {d_ref:.2e}, ort vs native {d_nat:.2e}",
            c.name
        );
        assert!(
            d_ref <= 1e-5 && d_nat <= 1e-5,
            "{}: {d_ref} {d_nat}",
            c.name
        );
        // ort carries state across chunks too.
        so.reset();
        let yc = run_chunked(so.as_mut(), &c.x, c.input_size, &[7, 1, 13]);
        let d = max_diff(&yc, &yo);
        assert!(d <= 1e-6, "{}: ort chunked vs whole {d}", c.name);
    }
}

#[test]
fn reset_restores_initial_outputs_and_streams_are_independent() {
    for c in cases() {
        let m = Arc::new(import_onnx(&c.onnx).unwrap());
        let mut a = m.stream();
        let mut b = m.stream();
        let first = run_whole(&mut a, &c.x);
        // b runs something else in between; a's second pass after reset is identical.
        let noise: Vec<f32> = c.x.iter().map(|v| -v * 1.7 + 0.3).collect();
        run_whole(&mut b, &noise);
        a.reset();
        assert_eq!(run_whole(&mut a, &c.x), first, "{}: reset", c.name);
        let mut fresh = m.stream();
        assert_eq!(
            run_whole(&mut fresh, &c.x),
            first,
            "{}: a fresh stream",
            c.name
        );
        // Without reset, the state carries on and the outputs differ.
        assert_ne!(
            run_whole(&mut a, &c.x),
            first,
            "{}: state is carried",
            c.name
        );
    }
}

#[test]
fn snapshot_restore_resumes_exactly() {
    for c in cases() {
        let m = Arc::new(import_onnx(&c.onnx).unwrap());
        let f = c.input_size;
        let split = 17 * f;
        let mut a = m.stream();
        let whole = run_whole(&mut a, &c.x);
        let mut b = m.stream();
        let mut y = run_whole(&mut b, &c.x[..split]);
        let saved = b.snapshot();
        let dir = tempfile::tempdir().unwrap();
        saved.save_npy(dir.path()).unwrap();
        let loaded = seqrec::sequence::State::load_npy(dir.path(), &saved).unwrap();
        assert_eq!(loaded, saved);
        let mut moved = m.stream();
        moved.restore(&loaded).unwrap();
        moved.process(&c.x[split..], &mut y).unwrap();
        assert_eq!(y, whole, "{}", c.name);
    }
}

#[test]
fn batch_equals_separate_streams_bit_for_bit() {
    for c in cases() {
        let b = 5;
        // Stream s sees the input scaled by (1 + s/4), so slots differ.
        let (m, xs, want) = streams_alone(&c, b, |s| 1.0 + s as f32 / 4.0);
        let (i, o) = (m.input_size(), m.output_size());
        let t = c.x.len() / i;
        let mut batch = NativeBatch::new(&m, b);
        let mut xin = vec![0.0; b * i];
        let mut yout = vec![0.0; b * o];
        for step in 0..t {
            for s in 0..b {
                xin[s * i..(s + 1) * i].copy_from_slice(&xs[s][step * i..(step + 1) * i]);
            }
            batch.step(&xin, &mut yout).unwrap();
            for s in 0..b {
                assert_eq!(
                    &yout[s * o..(s + 1) * o],
                    &want[s][step * o..(step + 1) * o],
                    "{} slot {s} step {step}",
                    c.name
                );
            }
        }
    }
}

/// What `seqrec serve` does: streams with different numbers of steps, their
/// states moved into batch rows (`exchange`), stepped as a shrinking prefix
/// (`step_first`), moved back: every stream bit-identical to itself alone,
/// and it goes on from the moved-back state.
#[test]
fn prefix_steps_with_moved_states_equal_separate_streams_bit_for_bit() {
    for c in cases() {
        let b = 4;
        let (m, xs, want) = streams_alone(&c, b, |s| 1.0 - s as f32 / 5.0);
        let (i, o) = (m.input_size(), m.output_size());
        let t = c.x.len() / i;
        // stream s takes its first `cut[s]` steps in the batch (most first)
        let cut: Vec<usize> = (0..b).map(|s| t - s * t / (2 * b)).collect();
        let mut streams: Vec<_> = (0..b).map(|_| m.stream()).collect();
        let mut batch = NativeBatch::new(&m, 0);
        batch.ensure_slots(b);
        for (s, st) in streams.iter_mut().enumerate() {
            batch.exchange(s, st, true);
        }
        let mut got: Vec<Vec<f32>> = vec![Vec::new(); b];
        for step in 0..cut[0] {
            let n = cut.iter().take_while(|&&c| c > step).count();
            let x: Vec<f32> = (0..n)
                .flat_map(|s| xs[s][step * i..(step + 1) * i].iter().copied())
                .collect();
            let mut y = vec![0.0; n * o];
            batch.step_first(n, &x, &mut y).unwrap();
            for s in 0..n {
                got[s].extend_from_slice(&y[s * o..(s + 1) * o]);
            }
        }
        for (s, st) in streams.iter_mut().enumerate() {
            batch.exchange(s, st, false);
            st.process(&xs[s][cut[s] * i..], &mut got[s]).unwrap();
            assert_eq!(got[s], want[s], "{} stream {s}", c.name);
        }
        assert!(batch.step_first(b + 1, &[], &mut []).is_err());
    }
}

#[test]
fn bidirectional_is_refused_with_a_clear_error() {
    let e = import_onnx(&dir().join("lstm_bidirectional.onnx"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("lstm_bidirectional.onnx"), "{e}");
    assert!(
        e.contains("bidirectional") && e.contains("cannot stream"),
        "{e}"
    );
    assert!(e.contains("--backend ort"), "{e}");
}

#[test]
fn wrong_frame_size_is_an_error_not_a_panic() {
    let m = Arc::new(import_onnx(&dir().join("lstm_l2.onnx")).unwrap());
    let mut s = m.stream();
    let mut y = Vec::new();
    let e = s.process(&[0.0; 7], &mut y).unwrap_err().to_string();
    assert!(e.contains("not a whole number"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Any chunking carrying state equals one call over the whole sequence:
    /// bit for bit on the native backend.
    #[test]
    fn native_chunking_is_invisible(case in 0usize..15, sizes in prop::collection::vec(1usize..20, 1..8)) {
        let cs = cases();
        let c = &cs[case % cs.len()];
        let m = Arc::new(import_onnx(&c.onnx).unwrap());
        let whole = run_whole(&mut m.stream(), &c.x);
        let chunked = run_chunked(&mut m.stream(), &c.x, c.input_size, &sizes);
        prop_assert_eq!(whole, chunked);
    }
}

/// A real pretrained batch-first model (resemblyzer's voice encoder:
/// `mels [1, T, 40]`, `h0/c0 [3, 1, 256]`, output `embed [1, 256]`, one per
/// call): `seqrec sequence` reads the layout from the model, takes the input
/// as `[T, 40]` or `[1, T, 40]`, carries the state across chunks and writes
/// one embedding per chunk, as torch computes them.
#[test]
fn a_batch_first_pretrained_lstm_runs_in_chunks_like_torch() {
    let d = dir().join("resemblyzer_ref");
    let tmp = tempfile::tempdir().unwrap();
    let mels = read_f32(d.join("mels.npy")).unwrap();
    let as_3d = tmp.path().join("mels3.npy");
    seqrec::npy::write_f32(&as_3d, &[1, 200, 40], &mels.data).unwrap();
    let run = |input: &Path, chunk: Option<&str>, out: &str| {
        let out = tmp.path().join(out);
        let mut args = vec![
            "sequence".to_string(),
            dir().join("resemblyzer.onnx").display().to_string(),
            "--input".into(),
            input.display().to_string(),
            "--out".into(),
            out.display().to_string(),
            "--backend".into(),
            "ort".into(),
            "--state".into(),
            "h0=hn".into(),
            "--state".into(),
            "c0=cn".into(),
        ];
        if let Some(c) = chunk {
            args.extend(["--chunk".into(), c.to_string()]);
        }
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_seqrec"))
            .args(&args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        read_f32(out).unwrap()
    };
    let want = read_f32(d.join("embeds_50.npy")).unwrap();
    for input in [d.join("mels.npy"), as_3d.clone()] {
        let got = run(&input, Some("50"), "e50.npy");
        assert_eq!(got.shape, vec![4, 256], "one embedding per chunk");
        let diff = got
            .data
            .iter()
            .zip(&want.data)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(diff < 1e-5, "{diff}");
    }
    let whole = run(&as_3d, None, "e200.npy");
    let want = read_f32(d.join("embed_200.npy")).unwrap();
    assert_eq!(whole.shape, vec![1, 256]);
    let diff = whole
        .data
        .iter()
        .zip(&want.data)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(diff < 1e-5, "{diff}");
}
