//! `seqrec enroll`: a bundle for your own word from a few recordings, then
//! `seqrec batch` with it. The clips (fixtures/clips/enroll, made here by
//! `scripts/kws/enroll_eval.py fixtures`): flite's awb voice says "banana"
//! 4 times to enroll; the test clip has it 3 more times, faster or slower,
//! in noise at 10-25 dB SNR, then "window" twice (banana_test.json: where).
//! The held-out evaluation (other voices, false alarms per hour) is in
//! models/kws/README.md.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::root;

fn seqrec() -> Command {
    Command::new(env!("CARGO_BIN_EXE_seqrec"))
}

fn enroll_clips() -> Vec<PathBuf> {
    (0..4)
        .map(|k| root().join(format!("fixtures/clips/enroll/banana_enroll_{k}.wav")))
        .collect()
}

/// Runs `seqrec enroll` into `out`; returns (success, stderr).
fn enroll(out: &Path, extra: &[&str], clips: &[PathBuf]) -> (bool, String) {
    let o = seqrec()
        .args(["enroll", "--bundle"])
        .arg(root().join("models/kws"))
        .args(["--keyword", "banana", "--out"])
        .arg(out)
        .args(extra)
        .args(clips)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!err.contains("panicked"), "{err}");
    (o.status.success(), err)
}

#[test]
fn an_enrolled_word_is_found_in_new_recordings_and_other_words_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path().join("banana");
    let (ok, err) = enroll(&b, &[], &enroll_clips());
    assert!(ok, "{err}");
    assert!(
        err.contains("4/4 recordings left out in turn are found"),
        "{err}"
    );
    assert!(
        err.contains("28 templates"),
        "4 recordings x (itself + 2 shifted + 2 faster/slower + 2 noisy): {err}"
    );
    for f in ["bundle.toml", "templates.npy", "center.npy", "enroll.json"] {
        assert!(b.join(f).is_file(), "{f}");
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(b.join("enroll.json")).unwrap()).unwrap();
    let scale = report["scale"].as_f64().unwrap();
    let closest = report["negatives"]["closest_distance"].as_f64().unwrap();
    assert!(
        scale < closest,
        "the shipped negatives never fire: {scale} vs {closest}"
    );

    let test = root().join("fixtures/clips/enroll/banana_test.wav");
    let events = common::seqrec_jsonl([
        "batch".as_ref(),
        "--bundle".as_ref(),
        b.as_os_str(),
        test.as_os_str(),
    ]);
    let spans: Vec<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(root().join("fixtures/clips/enroll/banana_test.json")).unwrap(),
    )
    .unwrap();
    // which rendition each event falls in (by its start)
    let mut found = vec![0; spans.len()];
    for e in &events {
        assert_eq!(e["label"], "banana", "{e}");
        let t = e["start_s"].as_f64().unwrap();
        let i = spans
            .iter()
            .position(|s| s["start_s"].as_f64().unwrap() <= t && t < s["end_s"].as_f64().unwrap())
            .unwrap_or_else(|| panic!("event outside the clip: {e}"));
        found[i] += 1;
    }
    assert_eq!(
        found,
        [1, 1, 1, 0, 0],
        "each banana once, no window: {events:?}"
    );
}

/// `--no-augment`: one template per recording, and the clean recordings
/// still find each other when left out in turn.
#[test]
fn no_augment_enrolls_the_recordings_only() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, err) = enroll(&dir.path().join("b"), &["--no-augment"], &enroll_clips());
    assert!(ok, "{err}");
    assert!(err.contains(" 4 templates"), "{err}");
    assert!(err.contains("4/4 recordings left out"), "{err}");
}

/// A 16-bit mono WAV file.
fn write_wav16(path: &Path, samples: &[i16], rate: u32) {
    let data = 2 * samples.len() as u32;
    let mut w = Vec::with_capacity(44 + data as usize);
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + data).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes()); // PCM
    w.extend_from_slice(&1u16.to_le_bytes()); // mono
    w.extend_from_slice(&rate.to_le_bytes());
    w.extend_from_slice(&(2 * rate).to_le_bytes());
    w.extend_from_slice(&2u16.to_le_bytes());
    w.extend_from_slice(&16u16.to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&data.to_le_bytes());
    for v in samples {
        w.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, w).unwrap();
}

#[test]
fn bad_enrollments_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    // one recording: nothing to check the threshold on
    let (ok, err) = enroll(&dir.path().join("a"), &[], &enroll_clips()[..1]);
    assert!(!ok && err.contains("at least 2"), "{err}");
    // a silent recording
    let quiet = dir.path().join("quiet.wav");
    write_wav16(&quiet, &[0; 16000], 16000);
    let mut clips = enroll_clips();
    clips[2] = quiet.clone();
    let (ok, err) = enroll(&dir.path().join("b"), &[], &clips);
    assert!(
        !ok && err.contains("quiet.wav") && err.contains("no word found"),
        "{err}"
    );
    // an --out that holds something
    let full = dir.path().join("full");
    std::fs::create_dir_all(&full).unwrap();
    std::fs::write(full.join("x"), "x").unwrap();
    let (ok, err) = enroll(&full, &[], &enroll_clips());
    assert!(!ok && err.contains("--force"), "{err}");
    // a label that looks like seqrec's own
    let o = seqrec()
        .args(["enroll", "--bundle"])
        .arg(root().join("models/kws"))
        .args(["--keyword", "_silence_", "--out"])
        .arg(dir.path().join("c"))
        .args(enroll_clips())
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("plain word"));
}
