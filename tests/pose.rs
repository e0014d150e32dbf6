//! The converted MoveNet SinglePose Lightning (`models/pose-action/
//! movenet_lightning.onnx`, `scripts/pose/export_movenet.py`) run by seqrec's
//! ONNX Runtime, pinned to the ORIGINAL TFJS graph's keypoints (pure-JS tfjs,
//! `scripts/pose/make_pose_refs.py`) on two committed frames.

mod common;

use common::{max_abs_diff, root};
use ort::value::TensorRef;
use seqrec::runtime::{SessionOptions, session};

#[test]
fn movenet_onnx_matches_the_original_tfjs_graph() {
    let mut s = session(
        &root().join("models/pose-action/movenet_lightning.onnx"),
        SessionOptions::default(),
    )
    .unwrap();
    for name in ["astronaut", "vtest_f200"] {
        let img = image::open(root().join(format!("fixtures/pose/{name}_192.png")))
            .unwrap()
            .to_rgb8();
        assert_eq!(img.dimensions(), (192, 192));
        let px: Vec<i32> = img.as_raw().iter().map(|&v| i32::from(v)).collect();
        let input = TensorRef::from_array_view(([1usize, 192, 192, 3], &px[..])).unwrap();
        let out = s.run(ort::inputs!["input:0" => input]).unwrap();
        let (shape, got) = out["Identity:0"].try_extract_tensor::<f32>().unwrap();
        assert_eq!(&**shape, &[1, 1, 17, 3]);
        let want =
            seqrec::npy::read_f32(root().join(format!("fixtures/pose/{name}.movenet_tfjs.npy")))
                .unwrap();
        assert_eq!(want.shape, [17, 3]);
        let d = max_abs_diff(got, &want.data);
        // Measured in Python (onnxruntime 1.31 vs tfjs 4.22): 1.5e-6 and 8.1e-7.
        assert!(d < 1e-4, "{name}: keypoints differ from tfjs by {d}");
        // The astronaut's face is found: nose, eyes and ears with confident scores.
        if name == "astronaut" {
            for k in 0..5 {
                assert!(
                    got[3 * k + 2] > 0.3,
                    "keypoint {k}: {:?}",
                    &got[3 * k..3 * k + 3]
                );
            }
        }
    }
}

/// The same through seqrec's video pipeline: `seqrec embed` with
/// `models/movenet` on a folder of the two frames (192x192 in, so the
/// resize is the identity), int32 input rounded from the preprocessed
/// frame; one row of 51 values (17 x (y, x, score)) per frame.
#[test]
fn seqrec_embed_gives_movenet_keypoints_per_frame() {
    let dir = tempfile::tempdir().unwrap();
    let frames = dir.path().join("frames");
    std::fs::create_dir(&frames).unwrap();
    let names = ["astronaut", "vtest_f200"];
    for (k, name) in names.iter().enumerate() {
        std::fs::copy(
            root().join(format!("fixtures/pose/{name}_192.png")),
            frames.join(format!("{k:02}.png")),
        )
        .unwrap();
    }
    let out = dir.path().join("kp.npy");
    common::seqrec_ok([
        "embed",
        frames.to_str().unwrap(),
        "--bundle",
        "models/movenet",
        "--out",
        out.to_str().unwrap(),
    ]);
    let got = seqrec::npy::read_f32(&out).unwrap();
    assert_eq!(got.shape, [2, 51]);
    for (k, name) in names.iter().enumerate() {
        let want =
            seqrec::npy::read_f32(root().join(format!("fixtures/pose/{name}.movenet_tfjs.npy")))
                .unwrap();
        let d = max_abs_diff(&got.data[51 * k..51 * (k + 1)], &want.data);
        // Measured: 1.5e-6 and 8.0e-7.
        assert!(d < 1e-4, "{name}: seqrec embed vs tfjs {d}");
    }
}

/// A manifest asking for more items per call than the model's fixed batch
/// axis takes is refused at load, naming the key and the fix.
#[test]
fn an_embedder_batch_above_the_models_fixed_batch_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = std::fs::read_to_string(root().join("models/movenet/bundle.toml"))
        .unwrap()
        .replace("batch = 1", "batch = 4")
        .replace(
            "../pose-action/movenet_lightning.onnx",
            root()
                .join("models/pose-action/movenet_lightning.onnx")
                .to_str()
                .unwrap(),
        );
    std::fs::write(dir.path().join("bundle.toml"), manifest).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_seqrec"))
        .args(["embed", "fixtures/pose", "--bundle"])
        .arg(dir.path())
        .arg("--out")
        .arg(dir.path().join("kp.npy"))
        .current_dir(root())
        .output()
        .unwrap();
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{msg}");
    assert!(
        msg.contains("embedder.batch") && msg.contains("set batch = 1"),
        "{msg}"
    );
    assert!(!msg.contains("panicked"), "{msg}");
}

/// The keypoint features (`seqrec::features::pose`) of a noisy projected
/// walk with dropped joints, frame by frame with the state carried, equal
/// the Python definition the head trains on (`scripts/pose/train_head.py`
/// `features()`, via `scripts/pose/make_feature_refs.py`).
#[test]
fn pose_features_match_the_python_definition() {
    use seqrec::features::pose::{FEATURE_LEN, INPUT_LEN, PoseFeatures};
    let kp = seqrec::npy::read_f32(root().join("fixtures/pose/features.in.npy")).unwrap();
    let want = seqrec::npy::read_f32(root().join("fixtures/pose/features.out.npy")).unwrap();
    assert_eq!(kp.shape, [40, INPUT_LEN]);
    assert_eq!(want.shape, [40, FEATURE_LEN]);
    let mut f = PoseFeatures::new();
    let mut out = [0f32; FEATURE_LEN];
    let mut worst = 0f32;
    for t in 0..40 {
        f.push(&kp.data[t * INPUT_LEN..(t + 1) * INPUT_LEN], &mut out);
        for (a, b) in out
            .iter()
            .zip(&want.data[t * FEATURE_LEN..(t + 1) * FEATURE_LEN])
        {
            worst = worst.max((a - b).abs());
        }
    }
    // f32 here, f64 there, on values up to ~3 torso lengths.
    assert!(worst < 1e-5, "max |diff| {worst}");
}

fn vtest_walk_frame(name: &str) -> seqrec::source::video::Frame {
    let img = image::open(root().join(format!("fixtures/pose/vtest_walk/{name}.png")))
        .unwrap()
        .to_rgb8();
    seqrec::source::video::Frame {
        width: img.width(),
        height: img.height(),
        rgb: img.into_raw(),
        ..Default::default()
    }
}

/// The pose stage's crop resampling (`Preprocessor::process_region`) on
/// squares that reach past the frame (black there), upsampling and
/// downsampling, equals `crop_region` of `scripts/pose/track.py`
/// (`scripts/pose/make_track_refs.py`).
#[test]
fn tracked_crop_resampling_matches_the_reference() {
    use seqrec::features::video::{Layout, Preprocessor, Region, VideoConfig};
    let want = seqrec::npy::read_f32(root().join("fixtures/pose/vtest_walk.crops.npy")).unwrap();
    assert_eq!(want.shape, [2, 40, 40, 3]);
    let frame = vtest_walk_frame("f100");
    let cfg = VideoConfig {
        width: 40,
        height: 40,
        layout: Layout::Nhwc,
        ..VideoConfig::default()
    };
    let mut prep = Preprocessor::new(&cfg).unwrap();
    // (top, left, side) as in make_track_refs.py CROPS
    for (k, (top, left, side)) in [(-20.5, -10.25, 60.7), (40.0, -80.5, 230.0)]
        .into_iter()
        .enumerate()
    {
        let mut got = Vec::new();
        let region = Region {
            left,
            top,
            width: side,
            height: side,
        };
        prep.process_region(&frame, region, &mut got);
        let want = &want.data[k * 4800..(k + 1) * 4800];
        let d = max_abs_diff(&got, want);
        eprintln!("crop {k}: {d:.2e} (0..255 units)");
        assert!(d < 5e-4, "crop {k}: {d} (0..255 units)");
        // The part outside the frame is black: the top-left output pixel of
        // the first square lies above and left of the frame.
        assert_eq!(&got[..3], &[0.0, 0.0, 0.0]);
        assert!(want.iter().any(|&v| v > 50.0));
    }
}

/// The crop follows the person as MoveNet's tutorial does
/// (`scripts/pose/track.py`): from each reference frame's keypoints,
/// `CropTracker` picks the reference's next square (the first frame is seen
/// whole: a 256x192 frame padded to a 256 px square).
#[test]
fn the_crop_tracker_picks_the_reference_squares() {
    use seqrec::features::pose::CropTracker;
    use seqrec::features::video::Region;
    let kp = seqrec::npy::read_f32(root().join("fixtures/pose/vtest_walk.track.npy")).unwrap();
    let regs = seqrec::npy::read_f32(root().join("fixtures/pose/vtest_walk.regions.npy")).unwrap();
    assert_eq!(regs.shape, [4, 3]);
    let mut t = CropTracker::new();
    let unit = Region {
        left: 0.0,
        top: 0.0,
        width: 1.0,
        height: 1.0,
    };
    let mut px = [0f32; 51];
    for f in 0..4 {
        let r = t.region(256, 192);
        let want = &regs.data[3 * f..3 * f + 3];
        let got = [r.top, r.left, r.width];
        for (g, w) in got.iter().zip(want) {
            assert!(
                (g - f64::from(*w)).abs() < 1e-3,
                "frame {f}: {got:?} vs {want:?}"
            );
        }
        assert_eq!(r.width, r.height);
        // The reference keypoints (already pixels) through a unit region.
        t.to_frame(&kp.data[51 * f..51 * (f + 1)], unit, &mut px);
    }
    assert!(
        regs.data[5] < 100.0,
        "the second square is around one person"
    );
    t.reset();
    assert_eq!(t.region(256, 192), CropTracker::full_region(256, 192));
}

/// `seqrec embed` through a `[pose]` bundle follows the person and gives
/// keypoints in frame pixels. On the first frame (seen whole) they equal
/// `scripts/pose/track.py`'s to 0.02 px; later frames are cropped where the
/// previous keypoints were, and MoveNet's argmax heatmap decoding turns the
/// 1e-2 px differences of f32 vs f64 preprocessing into jumps (measured: up
/// to 0.19 px and 0.15 in a score by the fourth frame), so those are held to
/// the reference loosely. The crop is what makes MoveNet sure of the
/// person: mean score 0.32 on the whole frame, 0.5-0.7 once cropped.
#[test]
fn seqrec_embed_with_pose_tracking_follows_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let onnx = root().join("models/pose-action/movenet_lightning.onnx");
    let manifest = format!(
        "name = \"t\"\nkind = \"video\"\nlabels = [\"keypoints\"]\n\
         [video]\nwidth = 192\nheight = 192\nlayout = \"nhwc\"\n\
         [embedder]\nonnx = {:?}\nbatch = 1\n[pose]\ntrack = true\n",
        onnx.to_str().unwrap()
    );
    std::fs::write(dir.path().join("bundle.toml"), manifest).unwrap();
    let out = dir.path().join("kp.npy");
    common::seqrec_ok([
        "embed",
        "fixtures/pose/vtest_walk",
        "--bundle",
        dir.path().to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let got = seqrec::npy::read_f32(&out).unwrap();
    let want = seqrec::npy::read_f32(root().join("fixtures/pose/vtest_walk.track.npy")).unwrap();
    assert_eq!(got.shape, [4, 51]);
    assert_eq!(want.shape, [4, 51]);
    let d0 = max_abs_diff(&got.data[..51], &want.data[..51]);
    let d = max_abs_diff(&got.data, &want.data);
    eprintln!("first frame {d0:.2e}, all four {d:.2e}");
    assert!(d0 < 0.02, "first frame: {d0}");
    assert!(
        d < 1.0,
        "keypoints differ from track.py by {d} (pixels or score)"
    );
    let mean_score = |t: usize| (0..17).map(|k| got.data[51 * t + 3 * k + 2]).sum::<f32>() / 17.0;
    assert!(
        mean_score(0) < 0.4 && mean_score(1) > 0.6,
        "{} {}",
        mean_score(0),
        mean_score(1)
    );
}

/// The action head (`models/pose-action/pose_head.onnx`, LSTM 28 -> 32 ->
/// 10 with softmax) on both sequence backends equals onnxruntime's
/// posteriors on the same features (`train_head.py --export`: the features
/// of two rendered takes joined, walk then punch, 60 steps with the state
/// carried).
#[test]
fn pose_head_matches_onnxruntime_on_both_backends() {
    use seqrec::bundle::{Backend, Bundle};
    use seqrec::pipeline::Recognizer;
    let x = seqrec::npy::read_f32(root().join("fixtures/pose/head.in.npy")).unwrap();
    let want = seqrec::npy::read_f32(root().join("fixtures/pose/head.out.npy")).unwrap();
    let f = seqrec::features::pose::FEATURE_LEN;
    assert_eq!(x.shape[1], f);
    for backend in [Backend::Native, Backend::Ort] {
        let mut b = Bundle::load(root().join("models/pose-action")).unwrap();
        b.sequence.as_mut().unwrap().backend = backend;
        let rec = Recognizer::new(b).unwrap();
        let mut s = rec.model().stream().unwrap();
        let mut y = Vec::new();
        // in uneven chunks: the state is carried across calls
        let mut pos = 0;
        for n in [1usize, 7, 22, 30].iter().cycle() {
            if pos >= x.shape[0] {
                break;
            }
            let n = (*n).min(x.shape[0] - pos);
            s.process(&x.data[pos * f..(pos + n) * f], &mut y).unwrap();
            pos += n;
        }
        assert_eq!(y.len(), want.data.len());
        let d = max_abs_diff(&y, &want.data);
        eprintln!("{backend:?}: {d:.2e}");
        assert!(d < 1e-5, "{backend:?}: posteriors differ by {d}");
    }
}

/// The whole path, frames to posteriors, through the `models/pose-action`
/// bundle on the four vtest frames (a folder at 10 fps, vtest's rate, so
/// the bundle's 15 fps cap keeps them all): keypoints in pixels as
/// `track.py`, posteriors as onnxruntime's head on the Python features of
/// those keypoints (`make_head_refs.py`). Loose bounds: the tracked crop
/// makes MoveNet's argmax decoding jump by tenths of a pixel (see above).
#[test]
fn pose_action_bundle_runs_frames_to_posteriors_like_the_reference() {
    use seqrec::bundle::Bundle;
    use seqrec::pipeline::{Output, Recognizer, process_video};
    let rec = Recognizer::new(Bundle::load(root().join("models/pose-action")).unwrap()).unwrap();
    let mut p = rec.stream().unwrap();
    let mut src =
        seqrec::source::video::open(&root().join("fixtures/pose/vtest_walk"), Some(10.0)).unwrap();
    let out = Output {
        keep_posteriors: true,
        keep_embeddings: true,
        ..Output::default()
    };
    let r = process_video(&mut p, src.as_mut(), out).unwrap();
    let kp = seqrec::npy::read_f32(root().join("fixtures/pose/vtest_walk.track.npy")).unwrap();
    let want =
        seqrec::npy::read_f32(root().join("fixtures/pose/vtest_walk.posteriors.npy")).unwrap();
    assert_eq!(r.output.embeddings.len(), kp.data.len());
    assert!(max_abs_diff(&r.output.embeddings, &kp.data) < 1.0);
    assert_eq!(r.output.posteriors.len(), want.data.len());
    let d = max_abs_diff(&r.output.posteriors, &want.data);
    eprintln!("posteriors vs reference: {d:.2e}");
    // Measured 1.6e-3 (2.7e-3 through the release binary).
    assert!(d < 0.02, "posteriors differ from the reference by {d}");
}

/// `[pose]` with an embedder that does not give 17 keypoints (here
/// EfficientNet-Lite0's 1280 features) is refused at load, naming the
/// section, the model and the sizes.
#[test]
fn a_pose_bundle_with_a_non_pose_embedder_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let m = root().join("models");
    let manifest = format!(
        "name = \"t\"\nkind = \"video\"\nlabels = [\"a\", \"b\", \"c\", \"d\", \"e\", \"f\", \"g\"]\n\
         [video]\nwidth = 224\nheight = 224\n\
         [embedder]\nonnx = {:?}\nbatch = 1\n[pose]\n\
         [sequence]\nonnx = {:?}\nstate = [[\"h0\", \"hn\"], [\"c0\", \"cn\"]]\n",
        m.join("action/efficientnet_lite0_features.onnx")
            .to_str()
            .unwrap(),
        m.join("pose-action/pose_head.onnx").to_str().unwrap()
    );
    std::fs::write(dir.path().join("bundle.toml"), manifest).unwrap();
    let b = seqrec::bundle::Bundle::load(dir.path()).unwrap();
    let e = seqrec::pipeline::Recognizer::new(b)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("pose") && e.contains("51") && e.contains("1280"),
        "{e}"
    );
}
