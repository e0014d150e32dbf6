//! The keyword spotters through the whole pipeline: `models/kws` (Google
//! speech_embedding through the embedder stage + GRU head, made by
//! `scripts/kws/*_embed.py`) and the log-mel baseline `models/kws-logmel`
//! (`scripts/kws/evaluate.py`). This pins seqrec's behaviour against the
//! Python references (onnxruntime posteriors and the reference decision rule
//! in `scripts/kws/common.py`), including clips where the models are wrong:
//! their accuracy is the model cards' business, not this test's.

mod common;

use common::root;

use seqrec::bundle::{Backend, Bundle};
use seqrec::pipeline::{Recognizer, process_source};
use seqrec::source::AudioFile;

/// Runs every clip of `clips` (with `expected.json`) through `bundle` on both
/// backends; `decision` picks the expected events (`events`, or an override
/// entry such as `override_low` with its thresholds) and `slack_s` is one
/// step of timing slack for threshold crossings within float noise.
fn check(bundle: &str, clips: &str, decision: Option<&str>, slack_s: f64) {
    let dir = root().join(clips);
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    for backend in [Backend::Native, Backend::Ort] {
        for (clip, want) in expected.as_object().unwrap() {
            let mut b = Bundle::load(root().join(bundle)).unwrap();
            b.sequence.as_mut().unwrap().backend = backend;
            let want = match decision {
                None => want,
                Some(key) => {
                    let o = &want[key];
                    // As `--threshold T --off-threshold O` (which clears per-label values).
                    b.decision.threshold = o["threshold"].as_f64().unwrap();
                    b.decision.thresholds.clear();
                    b.decision.off_threshold = o["off_threshold"].as_f64();
                    o
                }
            };
            let rec = Recognizer::new(b).unwrap();
            let mut p = rec.stream().unwrap();
            let mut f = AudioFile::open(dir.join(clip), 16000).unwrap();
            let out = process_source(&mut p, &mut f, false, true).unwrap().output;
            let want = want["events"].as_array().unwrap();
            assert_eq!(
                out.events.len(),
                want.len(),
                "{bundle} {backend:?} {clip}: {:?}",
                out.events
            );
            for (e, w) in out.events.iter().zip(want) {
                assert_eq!(e.label, w["label"].as_str().unwrap(), "{backend:?} {clip}");
                assert!(
                    (e.start_s - w["start_s"].as_f64().unwrap()).abs() <= slack_s,
                    "{bundle} {backend:?} {clip}: {e:?} vs {w}"
                );
                assert!(
                    (e.end_s - w["end_s"].as_f64().unwrap()).abs() <= slack_s,
                    "{bundle} {backend:?} {clip}: {e:?} vs {w}"
                );
            }
            let post = dir.join(clip.replace(".wav", ".posteriors.npy"));
            if post.exists() {
                let want = seqrec::npy::read_f32(post).unwrap();
                assert_eq!(out.posteriors.len(), want.data.len(), "{bundle} {clip}");
                let d = common::max_abs_diff(&out.posteriors, &want.data);
                assert!(
                    d <= 1e-4,
                    "{bundle} {backend:?} {clip}: posteriors differ by {d}"
                );
            }
        }
    }
}

#[test]
fn kws_logmel_events_and_posteriors_match_the_python_reference() {
    check(
        "models/kws-logmel",
        "fixtures/clips/kws-logmel",
        None,
        0.011,
    );
}

#[test]
fn kws_embedding_events_and_posteriors_match_the_python_reference() {
    // One step is 80 ms.
    check("models/kws", "fixtures/clips/kws", None, 0.081);
}

#[test]
fn kws_embedding_with_lower_thresholds_matches_the_python_reference() {
    check(
        "models/kws",
        "fixtures/clips/kws",
        Some("override_low"),
        0.081,
    );
}

/// `seqrec batch` on the keyword clips (the README's first command) prints
/// the reference events of every clip, in file order.
#[test]
fn seqrec_batch_prints_the_reference_keyword_events() {
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("fixtures/clips/kws/expected.json")).unwrap(),
    )
    .unwrap();
    let lines = common::seqrec_jsonl(["batch", "fixtures/clips/kws", "--bundle", "models/kws"]);
    let mut n = 0;
    for (clip, want) in expected.as_object().unwrap() {
        let file = format!("fixtures/clips/kws/{clip}");
        let got: Vec<&serde_json::Value> = lines
            .iter()
            .filter(|l| l["file"] == file.as_str())
            .collect();
        let want = want["events"].as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{clip}: {got:?}");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g["label"], w["label"], "{clip}");
            let d = (g["start_s"].as_f64().unwrap() - w["start_s"].as_f64().unwrap()).abs();
            assert!(d <= 0.081, "{clip}: {g} vs {w}");
        }
        n += want.len();
    }
    assert_eq!(lines.len(), n, "no other lines: {lines:?}");
}
