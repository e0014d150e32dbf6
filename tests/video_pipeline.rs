//! The video path end to end with the `models/action` bundle (EfficientNet-Lite0
//! features -> LSTM head -> decision): CNN features against Python
//! onnxruntime on the same preprocessing (`scripts/video/train_action.py`
//! wrote the references from frames decoded by `ffmpeg ... rgb24`, run through
//! `scripts/video/preprocess.py`), every container through `seqrec batch`,
//! batching and chunking invariance, the live path on a real-time FFmpeg
//! source, and clear errors.

mod common;

use common::root;
use std::process::Command;

use seqrec::bundle::Bundle;
use seqrec::pipeline::{Output, Recognizer, process_video};
use seqrec::source::video::{self, VideoSource};

fn seqrec() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_seqrec"));
    c.current_dir(root());
    c
}

const CLIPS: [&str; 2] = ["chelsea_motions", "rocket_motions"];

#[test]
fn cnn_features_match_python_onnxruntime() {
    let dir = tempfile::tempdir().unwrap();
    for clip in CLIPS {
        let out = dir.path().join(format!("{clip}.npy"));
        common::seqrec_ok([
            "embed",
            &format!("fixtures/clips/action/{clip}.mp4"),
            "--bundle",
            "models/action",
            "--out",
            out.to_str().unwrap(),
        ]);
        let got = seqrec::npy::read_f32(&out).unwrap();
        let want = seqrec::npy::read_f32(
            root().join(format!("fixtures/clips/action/{clip}.features3.npy")),
        )
        .unwrap();
        assert_eq!(got.shape[1], 1280);
        assert_eq!(want.shape[1], 1280);
        let n = want.data.len();
        let err = common::max_abs_diff(&got.data[..n], &want.data);
        eprintln!(
            "{clip}: {} frames, first 3 max abs err {err:e}",
            got.shape[0]
        );
        assert!(err <= 1e-4, "{clip}: max abs err {err}");
    }
}

/// The fixture clips (held-out photos, known camera motions): posteriors and
/// events as the Python reference (`scripts/video/train_action.py`: ffmpeg
/// decode, preprocess.py, onnxruntime CNN, torch head, seqrec's decision
/// rules). How well they follow the true motions is the model card's
/// business (a weak baseline); this pins seqrec to the reference.
#[test]
fn action_posteriors_and_events_match_the_python_reference() {
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("fixtures/clips/action/reference_events.json"))
            .unwrap(),
    )
    .unwrap();
    let rec = Recognizer::new(Bundle::load(root().join("models/action")).unwrap()).unwrap();
    let mut p = rec.stream().unwrap();
    for clip in CLIPS {
        let mut src = video::open(
            &root().join(format!("fixtures/clips/action/{clip}.mp4")),
            None,
        )
        .unwrap();
        let out = Output {
            keep_posteriors: true,
            ..Output::default()
        };
        let r = process_video(&mut p, &mut src, out).unwrap();
        let want = seqrec::npy::read_f32(
            root().join(format!("fixtures/clips/action/{clip}.posteriors.npy")),
        )
        .unwrap();
        assert_eq!(r.output.posteriors.len(), want.data.len(), "{clip}");
        let err = common::max_abs_diff(&r.output.posteriors, &want.data);
        eprintln!(
            "{clip}: posteriors max abs err {err:e}; events {:?}",
            r.output.events
        );
        assert!(err <= 1e-4, "{clip}: {err}");
        let want_ev = reference[format!("{clip}.mp4")].as_array().unwrap();
        assert_eq!(
            r.output.events.len(),
            want_ev.len(),
            "{clip}: {:?}",
            r.output.events
        );
        for (e, w) in r.output.events.iter().zip(want_ev) {
            assert_eq!(e.label, w["label"].as_str().unwrap());
            assert!((e.start_s - w["start_s"].as_f64().unwrap()).abs() < 1e-3);
            assert!((e.end_s - w["end_s"].as_f64().unwrap()).abs() < 1e-3);
        }
    }
}

/// Every container decodes through the whole pipeline, with the same
/// number of steps as frames kept by the decimation, in input order, and
/// bad files are error records that do not stop the others.
#[test]
fn every_container_runs_and_bad_files_are_error_records() {
    let files = [
        "fixtures/video/testsrc2_160x120_25fps.mp4",
        "fixtures/video/mandelbrot_128x96_15fps.webm",
        "fixtures/video/testsrc_96x64_10fps.avi",
        "fixtures/video/testsrc2_98x62_30fps.mkv",
        "fixtures/video/frames",
        "fixtures/video/truncated.mp4",
        "fixtures/video/random_bytes.mp4",
        "fixtures/video/audio_only.m4a",
    ];
    let st = seqrec()
        .arg("batch")
        .args(files)
        .args([
            "--bundle",
            "models/action",
            "--emit",
            "posteriors",
            "--jobs",
            "2",
        ])
        .output()
        .unwrap();
    assert_eq!(
        st.status.code(),
        Some(1),
        "bad files make the exit status 1"
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&st.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let count = |f: &str| {
        lines
            .iter()
            .filter(|l| l["file"] == f && l.get("scores").is_some())
            .count()
    };
    let error = |f: &str| {
        lines
            .iter()
            .find(|l| l["file"] == f)
            .and_then(|l| l["error"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    // The bundle keeps at most 15 fps: 25 -> 13 of 25 (1 s), 15 -> 15, 10 -> 8,
    // 30 -> 18 of 36 (1.2 s), image folder at 30 fps -> 2 of 4.
    let bundle = Bundle::load(root().join("models/action")).unwrap();
    let target = bundle.video.as_ref().unwrap().fps.unwrap_or(f64::INFINITY);
    for (f, frames, fps) in [
        (files[0], 25, 25.0),
        (files[1], 15, 15.0),
        (files[2], 8, 10.0),
        (files[3], 36, 30.0),
        (files[4], 4, 30.0),
    ] {
        let mut v = video::open(&root().join(f), Some(30.0)).unwrap();
        let mut d = seqrec::features::video::Decimator::new(bundle.video.as_ref().unwrap(), fps);
        let mut fr = video::Frame::new();
        let mut kept = 0;
        while v.read(&mut fr).unwrap() {
            kept += usize::from(d.keep(&fr));
        }
        assert!(kept <= frames && (fps <= target || kept < frames));
        assert_eq!(count(f), kept, "{f}: one posterior row per kept frame");
    }
    for f in &files[5..] {
        let e = error(f);
        assert!(e.contains(f) && e.contains("video"), "{f}: {e}");
    }
    // Results in input order.
    let order: Vec<&str> = lines.iter().map(|l| l["file"].as_str().unwrap()).collect();
    let mut first_seen: Vec<&str> = Vec::new();
    for f in order {
        if first_seen.last() != Some(&f) {
            first_seen.push(f);
        }
    }
    assert_eq!(first_seen, files);
}

/// Batched CNN calls (batch mode) and single-frame calls (live mode) give the
/// same posteriors up to the convolution kernels' float rounding.
#[test]
fn batch_and_live_processing_agree() {
    let rec = Recognizer::new(Bundle::load(root().join("models/action")).unwrap()).unwrap();
    let run = |mut p: seqrec::pipeline::StreamProcessor| {
        let mut src = video::open(
            &root().join("fixtures/clips/action/rocket_motions.mp4"),
            None,
        )
        .unwrap();
        let out = Output {
            keep_posteriors: true,
            keep_embeddings: true,
            ..Output::default()
        };
        process_video(&mut p, &mut src, out).unwrap()
    };
    let batched = run(rec.stream().unwrap());
    let live = run(rec.live_stream().unwrap());
    assert_eq!(
        batched.output.posteriors.len(),
        live.output.posteriors.len()
    );
    assert!(!batched.output.posteriors.is_empty());
    let ef = common::max_abs_diff(&batched.output.embeddings, &live.output.embeddings);
    let ep = common::max_abs_diff(&batched.output.posteriors, &live.output.posteriors);
    eprintln!("batch vs live: features {ef:e}, posteriors {ep:e}");
    assert!(ef <= 1e-3 && ep <= 1e-3, "features {ef}, posteriors {ep}");
    assert!((batched.frame_period_s - 1.0 / 15.0).abs() < 1e-9);
}

/// `seqrec live` on a real-time FFmpeg source playing a fixture clip: paced in
/// real time, every one of the 105 frames either processed or counted as
/// dropped, and — when the machine kept up (the usual case: ~30 fps measured
/// by `scripts/bench_video.sh`, the source gives 15) — the same labels as
/// batch. Whether it keeps up depends on the load of the machine (a busy
/// 2-core box dropped 42 of 105), so keeping up is a benchmark figure, not an
/// assertion here; dropping instead of falling behind is the live contract.
#[test]
fn live_ffmpeg_source_runs_in_real_time() {
    let stats = tempfile::NamedTempFile::new().unwrap();
    let t0 = std::time::Instant::now();
    let st = seqrec()
        .args(["live", "--bundle", "models/action", "--format", "jsonl"])
        .args([
            "--ffmpeg-input",
            "-re -i fixtures/clips/action/chelsea_motions.mp4",
        ])
        .arg("--stats-json")
        .arg(stats.path())
        .output()
        .unwrap();
    let wall = t0.elapsed().as_secs_f64();
    let err = String::from_utf8_lossy(&st.stderr);
    assert!(st.status.success(), "{err}");
    assert!(wall >= 6.0, "a 7 s clip played in real time took {wall} s");
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(stats.path()).unwrap()).unwrap();
    let dropped = s["dropped_chunks"].as_u64().unwrap();
    let processed = s["stages"]["embeddings"].as_u64().unwrap();
    assert_eq!(processed + dropped, 105, "{s}");
    assert!(processed > 0, "{s}");
    let live: Vec<String> = String::from_utf8_lossy(&st.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["label"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let batch: Vec<String> = common::seqrec_jsonl([
        "batch",
        "fixtures/clips/action/chelsea_motions.mp4",
        "--bundle",
        "models/action",
    ])
    .iter()
    .map(|e| e["label"].as_str().unwrap().to_string())
    .collect();
    if dropped == 0 {
        assert_eq!(live, batch);
    } else {
        eprintln!(
            "this machine was too busy: {dropped} of 105 frames dropped; labels not compared"
        );
    }
}

#[test]
fn video_errors_are_clear() {
    // An audio bundle given --camera, a video bundle given no input, a missing camera.
    let st = seqrec()
        .args(["live", "--bundle", "models/action"])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&st.stderr);
    assert!(!st.status.success() && e.contains("--camera"), "{e}");
    let st = seqrec()
        .args([
            "live",
            "--bundle",
            "models/action",
            "--camera",
            "--device",
            "7",
        ])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&st.stderr);
    assert!(!st.status.success() && e.contains("camera"), "{e}");
    assert!(!e.contains("panicked"), "{e}");
    // A video given to an audio bundle is an audio decoding error naming it.
    let st = seqrec()
        .args([
            "batch",
            "fixtures/video/testsrc2_160x120_25fps.mp4",
            "--bundle",
            "models/vad",
        ])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&st.stdout);
    assert!(
        !st.status.success() && out.contains("testsrc2_160x120_25fps.mp4"),
        "{out}"
    );
}

/// The wrong kind of input is an error, not a panic, and leaves the stream
/// as it was.
#[test]
fn the_wrong_kind_of_input_is_an_error() {
    let video = Recognizer::new(Bundle::load(root().join("models/action")).unwrap()).unwrap();
    let mut p = video.stream().unwrap();
    let e = p.push(&[0.0; 160], &mut Output::default()).unwrap_err();
    assert!(e.to_string().contains("video bundle's stream"), "{e}");
    assert_eq!(p.stats().samples, 0);
    let audio =
        Recognizer::new(Bundle::load(root().join("fixtures/bundles/tone")).unwrap()).unwrap();
    let mut p = audio.stream().unwrap();
    let frame = seqrec::source::Frame {
        width: 2,
        height: 2,
        rgb: vec![0; 12],
        ..Default::default()
    };
    let e = p.push_frame(&frame, &mut Output::default()).unwrap_err();
    assert!(e.to_string().contains("audio bundle's stream"), "{e}");
}
