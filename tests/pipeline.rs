//! The whole pipeline on fixture clips: source -> features -> sequence ->
//! decision, with the tone-detector test bundle (`fixtures/bundles/tone`,
//! made by `scripts/make_tone_bundle.py`).

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use proptest::prelude::*;
use seqrec::bundle::{Backend, Bundle};
use seqrec::pipeline::{Output, Recognizer, process_source};
use seqrec::source::{AudioFile, read_all};

mod common;
use common::{root, seqrec_jsonl, seqrec_ok};

fn clip(name: &str) -> PathBuf {
    root().join("fixtures/clips/tone").join(name)
}

fn recognizer(backend: Backend) -> Recognizer {
    let mut b = Bundle::load(root().join("fixtures/bundles/tone")).unwrap();
    b.sequence.as_mut().unwrap().backend = backend;
    Recognizer::new(b).unwrap()
}

/// (label, start, end) of the true events, as synthesized.
fn expected(name: &str) -> Vec<(String, f64, f64)> {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(clip("expected.json")).unwrap()).unwrap();
    v[name]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["label"].as_str().unwrap().to_string(),
                e["start_s"].as_f64().unwrap(),
                e["end_s"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn run_file(rec: &Recognizer, name: &str) -> Output {
    let mut p = rec.stream().unwrap();
    let mut f = AudioFile::open(clip(name), rec.sample_rate()).unwrap();
    process_source(&mut p, &mut f, false, true).unwrap().output
}

#[test]
fn events_match_the_truth_within_60_ms_on_both_backends() {
    for backend in [Backend::Native, Backend::Ort] {
        let rec = recognizer(backend);
        for name in [
            "beeps_whistle.wav",
            "beeps_whistle_44k_stereo.wav",
            "edge_beeps.wav",
            "noise_only.wav",
        ] {
            let got = run_file(&rec, name).events;
            let want = expected(name);
            assert_eq!(got.len(), want.len(), "{backend:?} {name}: {got:?}");
            for (g, (label, s, e)) in got.iter().zip(&want) {
                assert_eq!(&g.label, label, "{name}");
                assert!(
                    (g.start_s - s).abs() <= 0.06 && (g.end_s - e).abs() <= 0.06,
                    "{backend:?} {name}: got {g:?}, want {label} {s}..{e}"
                );
            }
        }
    }
}

#[test]
fn posteriors_match_the_python_reference() {
    // onnxruntime in Python over librosa features (scripts/make_tone_bundle.py).
    let want = seqrec::npy::read_f32(clip("beeps_whistle.posteriors.npy")).unwrap();
    for backend in [Backend::Native, Backend::Ort] {
        let got = run_file(&recognizer(backend), "beeps_whistle.wav").posteriors;
        assert_eq!(got.len(), want.data.len());
        let d = common::max_abs_diff(&got, &want.data);
        assert!(d <= 1e-3, "{backend:?}: {d}");
    }
}

#[test]
fn reset_between_files_leaves_no_trace() {
    let rec = recognizer(Backend::Native);
    let fresh = run_file(&rec, "noise_only.wav");
    let mut p = rec.stream().unwrap();
    for name in ["beeps_whistle.wav", "noise_only.wav"] {
        let mut f = AudioFile::open(clip(name), rec.sample_rate()).unwrap();
        let out = process_source(&mut p, &mut f, false, true).unwrap().output;
        if name == "noise_only.wav" {
            assert_eq!(out.posteriors, fresh.posteriors);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Posteriors and events through the whole pipeline do not depend on how
    /// the samples are chunked.
    #[test]
    fn chunking_is_invisible_through_the_pipeline(sizes in prop::collection::vec(1usize..5000, 1..6)) {
        let rec = recognizer(Backend::Native);
        let x = read_all(clip("beeps_whistle.wav"), 16000).unwrap();
        let whole = {
            let mut p = rec.stream().unwrap();
            let mut out = Output { keep_posteriors: true, ..Output::default() };
            p.push(&x, &mut out).unwrap();
            p.finish(&mut out).unwrap();
            out
        };
        let mut p = rec.stream().unwrap();
        let mut out = Output { keep_posteriors: true, ..Output::default() };
        let (mut pos, mut k) = (0, 0);
        while pos < x.len() {
            let n = sizes[k % sizes.len()].min(x.len() - pos);
            p.push(&x[pos..pos + n], &mut out).unwrap();
            pos += n;
            k += 1;
        }
        p.finish(&mut out).unwrap();
        prop_assert_eq!(&out.posteriors, &whole.posteriors);
        prop_assert_eq!(&out.events, &whole.events);
    }
}

fn seqrec() -> Command {
    Command::cargo_bin("seqrec").unwrap()
}

#[test]
fn batch_cli_jobs_and_formats() {
    let dir = tempfile::tempdir().unwrap();
    let run = |jobs: &str, extra: &[&str], out: &Path| {
        let o = seqrec()
            .arg("batch")
            .arg(root().join("fixtures/clips/tone"))
            .arg("--bundle")
            .arg(root().join("fixtures/bundles/tone"))
            .args(["--jobs", jobs, "--out"])
            .arg(out)
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read_to_string(out).unwrap()
    };
    for extra in [
        &["--emit", "events"][..],
        &["--emit", "posteriors"],
        &["--format", "csv"],
    ] {
        let a = run("1", extra, &dir.path().join("a"));
        let b = run("2", extra, &dir.path().join("b"));
        assert_eq!(a, b, "--jobs 1 vs 2 with {extra:?}");
        assert!(!a.is_empty());
    }
    // No temporary files left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");

    let events = run("2", &[], &dir.path().join("e.jsonl"));
    let lines: Vec<serde_json::Value> = events
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 8);
    for l in &lines {
        let keys: Vec<_> = l.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["end_s", "file", "label", "score", "start_s"]);
    }
    // Files come in input order (sorted directory walk).
    let files: Vec<&str> = lines.iter().map(|l| l["file"].as_str().unwrap()).collect();
    let mut sorted = files.clone();
    sorted.sort();
    assert_eq!(files, sorted);

    let posts = run("2", &["--emit", "posteriors"], &dir.path().join("p.jsonl"));
    let first: serde_json::Value = serde_json::from_str(posts.lines().next().unwrap()).unwrap();
    assert_eq!(first["scores"].as_array().unwrap().len(), 3);
    assert!((first["t_s"].as_f64().unwrap() - 0.016).abs() < 1e-9);
}

#[test]
fn batch_cli_bad_files_among_good_ones() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.wav");
    std::fs::write(&bad, b"RIFF\x10\x00\x00\x00WAVEfmt garbage").unwrap();
    let text = dir.path().join("readme.mp3");
    std::fs::write(&text, "hello").unwrap();
    let out = dir.path().join("r.jsonl");
    let o = seqrec()
        .arg("batch")
        .arg(clip("beeps_whistle.wav"))
        .arg(&bad)
        .arg(dir.path().join("missing.wav"))
        .arg(&text)
        .arg(clip("edge_beeps.wav"))
        .arg("--bundle")
        .arg(root().join("fixtures/bundles/tone"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success(),
        "a failed file makes the exit status non-zero"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("3 failed"), "{stderr}");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let errors: Vec<_> = lines.iter().filter(|l| l.get("error").is_some()).collect();
    assert_eq!(errors.len(), 3);
    for e in &errors {
        let file = e["file"].as_str().unwrap();
        assert!(
            e["error"]
                .as_str()
                .unwrap()
                .contains(Path::new(file).file_name().unwrap().to_str().unwrap())
        );
    }
    // The good files around them were processed: 3 + 2 events.
    assert_eq!(lines.len() - errors.len(), 5);
}

#[test]
fn batch_cli_plots_and_stats() {
    let dir = tempfile::tempdir().unwrap();
    let stats = dir.path().join("stats.json");
    let o = seqrec()
        .arg("batch")
        .arg(clip("beeps_whistle.wav"))
        .arg("--bundle")
        .arg(root().join("fixtures/bundles/tone"))
        .arg("--plot")
        .arg(dir.path().join("plots"))
        .arg("--stats")
        .arg("--stats-json")
        .arg(&stats)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("features"));
    let plots: Vec<_> = std::fs::read_dir(dir.path().join("plots"))
        .unwrap()
        .collect();
    assert_eq!(plots.len(), 1);
    let img = image::open(plots[0].as_ref().unwrap().path()).unwrap();
    assert!(img.width() >= 800);
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    assert_eq!(s["stages"]["frames"].as_u64(), Some(297));
    assert_eq!(s["stages"]["events"].as_u64(), Some(3));
}

#[test]
fn synthetic_source_through_the_pipeline() {
    use seqrec::source::synthetic::{Segment, Synthetic};
    let rec = recognizer(Backend::Native);
    let mut src = Synthetic::new(
        16000,
        160,
        &[
            Segment::Silence(0.5),
            Segment::Tone {
                hz: 1000.0,
                amp: 0.3,
                secs: 0.4,
            },
            Segment::Silence(0.6),
        ],
    );
    let mut p = rec.stream().unwrap();
    let r = process_source(&mut p, &mut src, false, false).unwrap();
    assert!((r.duration_s - 1.5).abs() < 1e-9);
    let ev = &r.output.events;
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].label, "beep");
    assert!(
        (ev[0].start_s - 0.5).abs() <= 0.06 && (ev[0].end_s - 0.9).abs() <= 0.06,
        "{ev:?}"
    );
}

/// `--emit summary`: one record per file, the best non-ignored label by mean
/// posterior, checked against the means of the same run's `--emit posteriors`.
#[test]
fn batch_cli_summary_is_the_mean_of_the_posteriors() {
    let bundle = root().join("fixtures/bundles/tone");
    let clips = root().join("fixtures/clips/tone");
    let args = |emit: &str| {
        vec![
            "batch".to_string(),
            clips.to_string_lossy().into_owned(),
            "--bundle".into(),
            bundle.to_string_lossy().into_owned(),
            "--emit".into(),
            emit.into(),
        ]
    };
    let summary = seqrec_jsonl(args("summary"));
    let posts = seqrec_jsonl(args("posteriors"));
    let labels = ["_silence_", "beep", "whistle"];
    let files: Vec<&str> = summary
        .iter()
        .map(|l| l["file"].as_str().unwrap())
        .collect();
    assert_eq!(files.len(), 4, "{files:?}");
    for s in &summary {
        let file = s["file"].as_str().unwrap();
        let rows: Vec<Vec<f64>> = posts
            .iter()
            .filter(|p| p["file"] == file)
            .map(|p| {
                p["scores"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect()
            })
            .collect();
        assert!(!rows.is_empty());
        let keys: Vec<&str> = s["scores"]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        let mut sorted_labels = labels.to_vec();
        sorted_labels.sort();
        assert_eq!(keys, sorted_labels);
        let mut best = (None, f64::NEG_INFINITY);
        for (j, l) in labels.iter().enumerate() {
            let mean = rows.iter().map(|r| r[j]).sum::<f64>() / rows.len() as f64;
            let got = s["scores"][l].as_f64().unwrap();
            assert!((got - mean).abs() < 1e-5, "{file} {l}: {got} vs {mean}");
            // `_silence_` is in the tone bundle's decision.ignore.
            if j > 0 && mean > best.1 {
                best = (Some(*l), mean);
            }
        }
        assert_eq!(s["label"].as_str(), best.0, "{file}");
        assert!((s["score"].as_f64().unwrap() - best.1).abs() < 1e-5);
    }
}

#[test]
fn batch_cli_summary_csv_has_a_row_per_file() {
    let o = seqrec_ok([
        "batch".to_string(),
        root()
            .join("fixtures/clips/tone")
            .to_string_lossy()
            .into_owned(),
        "--bundle".into(),
        root()
            .join("fixtures/bundles/tone")
            .to_string_lossy()
            .into_owned(),
        "--emit".into(),
        "summary".into(),
        "--format".into(),
        "csv".into(),
    ]);
    let text = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "file,label,score,_silence_,beep,whistle,error");
    assert_eq!(lines.len(), 5, "{text}");
    for l in &lines[1..] {
        assert_eq!(l.split(',').count(), 7, "{l}");
    }
}
