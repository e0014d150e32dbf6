//! The `seqrec` binary as users run it: real processes, each in its own temp dir.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use seqrec::npy::read_f32;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn seqrec() -> Command {
    Command::cargo_bin("seqrec").unwrap()
}

fn stderr_of(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!err.contains("panicked"), "the process panicked: {err}");
    (out.status.success(), err)
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()))
}

#[test]
fn features_with_a_bundle_match_librosa() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f.npy");
    let (ok, err) = stderr_of(
        seqrec()
            .args(["features"])
            .arg(root().join("fixtures/clips/speech_16k.wav"))
            .arg("--bundle")
            .arg(root().join("models/speech-features"))
            .arg("--out")
            .arg(&out),
    );
    assert!(ok, "{err}");
    assert!(err.contains("356 x 40"), "{err}");
    let got = read_f32(&out).unwrap();
    let want = read_f32(root().join("fixtures/features/speech.logmel.npy")).unwrap();
    assert_eq!(got.shape, want.shape);
    assert!(max_diff(&got.data, &want.data) <= 1e-3);
}

#[test]
fn features_chunking_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let clip = root().join("fixtures/clips/music_22k.wav");
    let run = |name: &str, extra: &[&str]| -> Vec<u8> {
        let out = dir.path().join(name);
        let (ok, err) = stderr_of(
            seqrec()
                .arg("features")
                .arg(&clip)
                .args([
                    "--sample-rate",
                    "22050",
                    "--n-fft",
                    "1024",
                    "--win-length",
                    "1024",
                    "--hop-length",
                    "256",
                ])
                .args([
                    "--n-mels",
                    "96",
                    "--fmin",
                    "0",
                    "--fmax",
                    "11025",
                    "--mel-scale",
                    "htk",
                    "--center",
                ])
                .args(["--kind", "mfcc", "--n-mfcc", "20", "--out"])
                .arg(&out)
                .args(extra),
        );
        assert!(ok, "{err}");
        std::fs::read(out).unwrap()
    };
    let whole = run("a.npy", &[]);
    assert_eq!(whole, run("b.npy", &["--chunk", "1"]));
    assert_eq!(whole, run("c.npy", &["--chunk", "777"]));
    let got = read_f32(dir.path().join("a.npy")).unwrap();
    let want = read_f32(root().join("fixtures/features/music.mfcc.npy")).unwrap();
    assert_eq!(got.shape, want.shape);
    assert!(max_diff(&got.data, &want.data) <= 1e-2);
}

/// The `db` flags reproduce the speech_embedding bundle's front end exactly.
#[test]
fn db_flags_match_the_speech_embedding_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let clip = root().join("fixtures/clips/speech_16k.wav");
    let (a, b) = (dir.path().join("a.npy"), dir.path().join("b.npy"));
    let (ok, err) = stderr_of(
        seqrec()
            .arg("features")
            .arg(&clip)
            .args([
                "--kind", "db", "--n-mels", "32", "--fmin", "60", "--fmax", "3800",
            ])
            .args(["--gain", "32768", "--top-db", "80", "--top-db-group", "8"])
            .args([
                "--top-db-first",
                "5",
                "--scale",
                "0.1",
                "--offset",
                "2",
                "--out",
            ])
            .arg(&a),
    );
    assert!(ok, "{err}");
    let (ok, err) = stderr_of(
        seqrec()
            .arg("features")
            .arg(&clip)
            .arg("--bundle")
            .arg(root().join("models/speech-embedding"))
            .arg("--out")
            .arg(&b),
    );
    assert!(ok, "{err}");
    assert_eq!(std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
}

#[test]
fn features_resample_other_rates() {
    // The 22.05 kHz clip asked for at 16 kHz: resampled first, frames at 100/s.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f.npy");
    let (ok, err) = stderr_of(
        seqrec()
            .arg("features")
            .arg(root().join("fixtures/clips/music_22k.wav"))
            .arg("--out")
            .arg(&out),
    );
    assert!(ok, "{err}");
    let a = read_f32(&out).unwrap();
    // 3.0 s at 16 kHz = 48000 samples -> 1 + (48000 - 512) / 160 = 297 frames.
    assert!((a.shape[0] as i64 - 297).abs() <= 1, "{:?}", a.shape);
}

#[test]
fn bad_inputs_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.wav");
    std::fs::write(&text, "this is not audio\n").unwrap();
    let out = dir.path().join("o.npy");
    let (ok, err) = stderr_of(seqrec().arg("features").arg(&text).arg("--out").arg(&out));
    assert!(!ok);
    assert!(err.contains("notes.wav"), "{err}");
    assert!(!out.exists(), "no output on failure");

    let (ok, err) = stderr_of(
        seqrec()
            .arg("features")
            .arg(dir.path().join("missing.flac"))
            .arg("--out")
            .arg(&out),
    );
    assert!(!ok);
    assert!(err.contains("missing.flac"), "{err}");

    let (ok, err) = stderr_of(
        seqrec()
            .arg("features")
            .arg(root().join("fixtures/clips/speech_16k.wav"))
            .args(["--win-length", "1000", "--out"])
            .arg(&out),
    );
    assert!(!ok);
    assert!(err.contains("win_length"), "{err}");

    let bundle = dir.path().join("b");
    std::fs::create_dir(&bundle).unwrap();
    std::fs::write(bundle.join("bundle.toml"), "name = \"x\"\nkind = \"audio\"\nlabels = [\"a\"]\n[audio]\nsample_rate = 16000\n[features]\nn_fft = 512\nn_mel = 40\n").unwrap();
    let (ok, err) = stderr_of(
        seqrec()
            .arg("features")
            .arg(root().join("fixtures/clips/speech_16k.wav"))
            .arg("--bundle")
            .arg(&bundle)
            .arg("--out")
            .arg(&out),
    );
    assert!(!ok);
    assert!(
        err.contains("bundle.toml") && err.contains("n_mel"),
        "{err}"
    );

    let (ok, err) = stderr_of(
        seqrec()
            .arg("features")
            .arg(root().join("fixtures/clips/speech_16k.wav"))
            .arg("--bundle")
            .arg(dir.path())
            .arg("--out")
            .arg(&out),
    );
    assert!(!ok);
    assert!(err.contains("no manifest"), "{err}");
}

fn rnn(name: &str) -> PathBuf {
    root().join("fixtures/rnn").join(name)
}

/// `sequence fixtures/rnn/MODEL --input fixtures/rnn/INPUT --out OUT`.
fn sequence_args(model: &str, input: &str, out: &Path) -> Vec<std::ffi::OsString> {
    vec![
        "sequence".into(),
        rnn(model).into(),
        "--input".into(),
        rnn(input).into(),
        "--out".into(),
        out.into(),
    ]
}

#[test]
fn sequence_native_and_ort_agree_and_write_final_states() {
    let dir = tempfile::tempdir().unwrap();
    let (yn, yo) = (dir.path().join("n.npy"), dir.path().join("o.npy"));
    let fs = dir.path().join("state");
    let (ok, err) = stderr_of(
        seqrec()
            .args(sequence_args("gru_l2_head.onnx", "gru_l2_head.x.npy", &yn))
            .args(["--chunk", "3", "--final-state"])
            .arg(&fs),
    );
    assert!(ok, "{err}");
    let (ok, err) = stderr_of(
        seqrec()
            .args(sequence_args("gru_l2_head.onnx", "gru_l2_head.x.npy", &yo))
            .args(["--backend", "ort", "--state", "h0=hn", "--chunk", "11"]),
    );
    assert!(ok, "{err}");
    let (a, b) = (read_f32(&yn).unwrap(), read_f32(&yo).unwrap());
    assert_eq!(a.shape, vec![50, 4]);
    assert_eq!(a.shape, b.shape);
    assert!(max_diff(&a.data, &b.data) <= 1e-5);
    let hn = read_f32(fs.join("hn.npy")).unwrap();
    let want = read_f32(rnn("gru_l2_head.hn.npy")).unwrap();
    assert_eq!(hn.shape, want.shape);
    assert!(max_diff(&hn.data, &want.data) <= 1e-5);
}

#[test]
fn sequence_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("y.npy");
    let (ok, err) = stderr_of(seqrec().args(sequence_args(
        "lstm_bidirectional.onnx",
        "lstm_l2.x.npy",
        &out,
    )));
    assert!(!ok);
    assert!(
        err.contains("bidirectional") && err.contains("--backend ort"),
        "{err}"
    );
    let (ok, err) = stderr_of(seqrec().args(sequence_args("lstm_l2.onnx", "gru_l2.x.npy", &out)));
    assert!(!ok);
    assert!(err.contains("does not fit"), "{err}");
    let (ok, err) = stderr_of(
        seqrec()
            .args(sequence_args("lstm_l2.onnx", "lstm_l2.x.npy", &out))
            .args(["--backend", "ort", "--state", "h0=nope"]),
    );
    assert!(!ok);
    assert!(err.contains("nope") && err.contains("outputs ["), "{err}");
    let (ok, err) = stderr_of(
        seqrec()
            .args(sequence_args("lstm_l2.onnx", "lstm_l2.x.npy", &out))
            .args(["--state", "h0=cn"]),
    );
    assert!(!ok);
    assert!(err.contains("h0=hn"), "{err}");
}

/// A copied binary with no ONNX Runtime in reach says what to do instead of panicking.
#[test]
fn missing_onnx_runtime_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("seqrec");
    std::fs::copy(assert_cmd::cargo::cargo_bin("seqrec"), &exe).unwrap();
    let out = dir.path().join("y.npy");
    // The copied binary, with no ORT_DYLIB_PATH and run from its own directory.
    let run_copy = || {
        std::process::Command::new(&exe)
            .env_remove("ORT_DYLIB_PATH")
            .current_dir(dir.path())
            .args(sequence_args("lstm_l2.onnx", "lstm_l2.x.npy", &out))
            .args(["--backend", "ort", "--state", "h0=hn", "--state", "c0=cn"])
            .output()
            .unwrap()
    };
    let o = run_copy();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("ONNX Runtime library not found") && err.contains("scripts/setup.sh"),
        "{err}"
    );
    // With the library beside the binary, the same copy works.
    let lib = root().join(".ort/onnxruntime/capi/libonnxruntime.so.1.31.1");
    std::fs::copy(lib, dir.path().join("libonnxruntime.so.1.31.1")).unwrap();
    let o = run_copy();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
