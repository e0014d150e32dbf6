//! The baseline keyword spotter (`models/kws-logmel`, made by `scripts/kws/`) through
//! the whole pipeline. This pins seqrec's behaviour against the Python
//! reference (onnxruntime posteriors and the reference decision rule in
//! `scripts/kws/common.py`), including the clip where the model is wrong
//! ("off" heard as "on"): the model's accuracy is the model card's business,
//! not this test's.

use std::path::PathBuf;

use seqrec::bundle::{Backend, Bundle};
use seqrec::pipeline::{Recognizer, process_source};
use seqrec::source::AudioFile;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn kws_events_and_posteriors_match_the_python_reference() {
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("fixtures/clips/kws-logmel/expected.json")).unwrap(),
    )
    .unwrap();
    for backend in [Backend::Native, Backend::Ort] {
        let mut b = Bundle::load(root().join("models/kws-logmel")).unwrap();
        b.sequence.as_mut().unwrap().backend = backend;
        let rec = Recognizer::new(b).unwrap();
        let mut p = rec.stream().unwrap();
        for (clip, want) in expected.as_object().unwrap() {
            let mut f = AudioFile::open(root().join("fixtures/clips/kws-logmel").join(clip), 16000)
                .unwrap();
            let out = process_source(&mut p, &mut f, false, true).unwrap().output;
            let want = want["events"].as_array().unwrap();
            assert_eq!(
                out.events.len(),
                want.len(),
                "{backend:?} {clip}: {:?}",
                out.events
            );
            for (e, w) in out.events.iter().zip(want) {
                assert_eq!(e.label, w["label"].as_str().unwrap(), "{backend:?} {clip}");
                // One frame of slack for threshold crossings within float noise.
                assert!(
                    (e.start_s - w["start_s"].as_f64().unwrap()).abs() <= 0.011,
                    "{backend:?} {clip}: {e:?} vs {w}"
                );
                assert!(
                    (e.end_s - w["end_s"].as_f64().unwrap()).abs() <= 0.011,
                    "{backend:?} {clip}: {e:?} vs {w}"
                );
            }
            let post = root()
                .join("fixtures/clips/kws-logmel")
                .join(clip.replace(".wav", ".posteriors.npy"));
            if post.exists() {
                let want = seqrec::npy::read_f32(post).unwrap();
                assert_eq!(out.posteriors.len(), want.data.len());
                let d = out
                    .posteriors
                    .iter()
                    .zip(&want.data)
                    .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                assert!(d <= 1e-4, "{backend:?} {clip}: posteriors differ by {d}");
            }
        }
    }
}
