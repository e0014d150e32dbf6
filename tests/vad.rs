//! The Silero VAD bundle (`models/vad`) against Silero's own streaming loop.
//!
//! References by `scripts/make_vad_refs.py`: per-chunk probabilities from
//! onnxruntime in Python (cross-checked against the silero-vad package's
//! OnnxWrapper/VADIterator), and the speech segments of VADIterator's rules.

mod common;

use common::root;

use seqrec::bundle::Bundle;
use seqrec::pipeline::{Recognizer, process_source};
use seqrec::source::AudioFile;

#[test]
fn probabilities_and_segments_match_silero() {
    let rec = Recognizer::new(Bundle::load(root().join("models/vad")).unwrap()).unwrap();
    let segs: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("fixtures/clips/vad/reference_segments.json"))
            .unwrap(),
    )
    .unwrap();
    let mut p = rec.stream().unwrap();
    for (name, wav) in [
        ("speech_pauses", "fixtures/clips/vad/speech_pauses.wav"),
        ("noise_only", "fixtures/clips/vad/noise_only.wav"),
        ("speech_16k", "fixtures/clips/speech_16k.wav"),
    ] {
        let mut f = AudioFile::open(root().join(wav), 16000).unwrap();
        let out = process_source(&mut p, &mut f, false, true).unwrap().output;
        let want =
            seqrec::npy::read_f32(root().join(format!("fixtures/clips/vad/{name}.probs.npy")))
                .unwrap();
        assert_eq!(
            out.posteriors.len(),
            want.data.len(),
            "{name}: one probability per whole 512-sample chunk"
        );
        let d = common::max_abs_diff(&out.posteriors, &want.data);
        assert!(d <= 1e-4, "{name}: max difference {d}");
        let want_segs = segs[name].as_array().unwrap();
        assert_eq!(
            out.events.len(),
            want_segs.len(),
            "{name}: {:?}",
            out.events
        );
        for (e, w) in out.events.iter().zip(want_segs) {
            assert!(
                (e.start_s - w["start_s"].as_f64().unwrap()).abs() < 1e-6,
                "{name}: {e:?} vs {w}"
            );
            assert!(
                (e.end_s - w["end_s"].as_f64().unwrap()).abs() < 1e-6,
                "{name}: {e:?} vs {w}"
            );
        }
    }
}

/// The same through the command line users run: `seqrec batch` on the clips
/// gives Silero's segments, one JSON line per segment, in file order.
#[test]
fn seqrec_batch_gives_silero_segments() {
    let segs: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("fixtures/clips/vad/reference_segments.json"))
            .unwrap(),
    )
    .unwrap();
    // speech_16k.wav lives one folder up (it is also the features fixture).
    let path = |name: &str| {
        let p = format!("fixtures/clips/vad/{name}.wav");
        if root().join(&p).exists() {
            p
        } else {
            format!("fixtures/clips/{name}.wav")
        }
    };
    let files: Vec<String> = segs.as_object().unwrap().keys().map(|n| path(n)).collect();
    let mut args = vec!["batch".to_string()];
    args.extend(files.iter().cloned());
    args.extend(["--bundle".to_string(), "models/vad".to_string()]);
    let lines = common::seqrec_jsonl(&args);
    for (name, want) in segs.as_object().unwrap() {
        let file = path(name);
        let got: Vec<&serde_json::Value> = lines
            .iter()
            .filter(|l| l["file"] == file.as_str())
            .collect();
        let want = want.as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{name}: {got:?}");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g["label"], "speech");
            for k in ["start_s", "end_s"] {
                // JSON output is rounded to 0.1 ms.
                let d = (g[k].as_f64().unwrap() - w[k].as_f64().unwrap()).abs();
                assert!(d <= 1e-4, "{name} {k}: {g} vs {w}");
            }
        }
    }
}
