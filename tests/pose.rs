//! The converted MoveNet SinglePose Lightning (`models/pose-action/
//! movenet_lightning.onnx`, `scripts/pose/export_movenet.py`) run by seqrec's
//! ONNX Runtime, pinned to the ORIGINAL TFJS graph's keypoints (pure-JS tfjs,
//! `scripts/pose/make_pose_refs.py`) on two committed frames.

mod common;

use common::root;
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
        let d = got
            .iter()
            .zip(&want.data)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        // Measured in Python (onnxruntime 1.31 vs tfjs 4.22): 1.5e-6 and 8.1e-7.
        assert!(d < 1e-4, "{name}: keypoints differ from tfjs by {d}");
        // The astronaut's face is found: nose, eyes and ears with confident scores.
        if name == "astronaut" {
            for k in 0..5 {
                assert!(
                    want.data[3 * k + 2] > 0.3,
                    "keypoint {k}: {:?}",
                    &want.data[3 * k..3 * k + 3]
                );
            }
        }
    }
}
