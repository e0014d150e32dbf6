//! The pose stage: MoveNet's crop that follows the person, and keypoints ->
//! per-frame features for an action head.
//!
//! # Crop tracking ([`CropTracker`])
//!
//! MoveNet sees a 192x192 image. A whole 768x576 street scene squeezed to
//! that leaves people ~15 px tall; MoveNet's own answer (the TF Hub
//! tutorial's `determine_crop_region`) is to look next at a square around
//! the person it found in this frame. That square is stream state, like an
//! LSTM's `h`: carried from frame to frame, reset at a discontinuity (the
//! next frame is then seen whole), never shared between streams. The
//! reference is `scripts/pose/track.py`; in pixels:
//!
//! * no previous person (first frame, after a reset, or its torso was not
//!   seen: no hip or no shoulder with score > [`MIN_SCORE`]): the whole
//!   frame padded to a square, side `max(W, H)`, centred;
//! * otherwise the square is centred on the previous hip midpoint, half side
//!   `max(1.9 torso, 1.2 body, 8 px)` (`torso`: the largest `|dy|` or `|dx|`
//!   of the shoulders and hips from the centre; `body`: the same over every
//!   keypoint with score > [`MIN_SCORE`]), at most the largest distance from
//!   the centre to a frame edge; a square larger than the frame falls back
//!   to the whole frame.
//!
//! The square is resampled by [`crate::features::video::Preprocessor::process_region`]
//! (black outside the frame), and MoveNet's `(y, x)` in `[0, 1]` of the
//! square map back to frame pixels ([`CropTracker::to_frame`]). With several
//! people, MoveNet picks one in the whole frame and the crop then keeps to
//! that one while it stays found; when two cross, the crop may move to the
//! other (one person is followed, not identified).
//!
//! # Features ([`PoseFeatures`])
//!
//! The definition is `features()` in `scripts/pose/train_head.py`, which the
//! head is trained on; `tests/pose.rs` pins this module to it. For each
//! frame of 17 COCO keypoints `(y, x, score)` (MoveNet's output order, any
//! isotropic unit: the pose stage gives pixels):
//!
//! * the centre is the hip midpoint, the scale the torso length (shoulder
//!   midpoint to hip midpoint, at least 1e-3): `rel = (p - hip) / torso`;
//!   a keypoint under [`MIN_SCORE`] is missing: its `rel` is 0, and so is
//!   its velocity on this frame and the next (the hips and shoulders enter
//!   the centre and scale whatever their scores, as in the reference);
//! * `vel = rel[t] - rel[t - 1]`, the hip's velocity `hv = (hip[t] -
//!   hip[t-1]) / torso[t]`, both 0 on the first frame.
//!
//! Out ([`FEATURE_LEN`] = 28): the torso direction `(shoulders - hips) /
//! torso` as x² and y; `|hv.x|` and `hv.y`; for each pair (wrists, ankles,
//! elbows, knees) the lower and higher `rel.y`, the larger `|rel.x|`, the
//! larger and smaller speed `|vel|`; ankle-to-ankle and wrist-to-wrist
//! distances; the nose's `rel.y`; the share of joints seen.
//!
//! **Why these, not the raw coordinates.** They are left/right symmetric (a
//! mirrored camera, or MoveNet swapping the sides of a person seen from the
//! side, changes nothing) and few: with one or two motion-capture clips per
//! action, a head on the 68 raw coordinates and velocities learns the clip;
//! on 2 s windows held out by source a linear probe reaches 0.60 / 0.41
//! (clean / rendered) with these, 0.44 / 0.35 with the raw ones
//! (`scripts/pose/probe_features.py`). Which joints are seen enters as a
//! share, not the scores: their level differs between MoveNet on real
//! video, on rendered figures and simulated detections.
//!
//! The previous frame is stream state: [`PoseFeatures::reset`] at a
//! discontinuity (a new file, dropped frames, a lost person).

use crate::features::video::{Preprocessor, Region};
use crate::source::video::Frame;

/// COCO keypoints per frame.
pub const KEYPOINTS: usize = 17;
/// Values per frame in: `(y, x, score)` per keypoint.
pub const INPUT_LEN: usize = 3 * KEYPOINTS;
/// Values per frame out (see the [module documentation](self)).
pub const FEATURE_LEN: usize = 4 + 5 * PAIRS.len() + 4;
/// Left/right keypoint pairs summarised by the features: wrists, ankles,
/// elbows, knees.
const PAIRS: [(usize, usize); 4] = [(9, 10), (15, 16), (7, 8), (13, 14)];
/// Scores below this mark a keypoint as missing.
pub const MIN_SCORE: f32 = 0.2;

const L_SHOULDER: usize = 5;
const R_SHOULDER: usize = 6;
const L_HIP: usize = 11;
const R_HIP: usize = 12;

/// `[pose]` of a video bundle: the embedder is a MoveNet-style pose model
/// (one frame in, [`INPUT_LEN`] values out) and its keypoints become
/// [`FEATURE_LEN`] features per step for the `[sequence]` model.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoseSection {
    /// Follow the person with MoveNet's crop (default `true`); `false` sees
    /// every frame through `[video]`'s fixed geometry.
    #[serde(default = "yes")]
    pub track: bool,
}

fn yes() -> bool {
    true
}

impl Default for PoseSection {
    fn default() -> Self {
        Self { track: true }
    }
}

/// One stream's pose stage: the crop it looks at, keypoints back in frame
/// pixels, features for the head. Between the preprocessing and the
/// embedder ([`PoseStage::prepare`]) and after it ([`PoseStage::keypoints`],
/// [`PoseStage::features`]).
#[derive(Debug, Clone)]
pub struct PoseStage {
    track: bool,
    tracker: CropTracker,
    feats: PoseFeatures,
    /// The region of the frame most recently prepared.
    region: Region,
}

impl PoseStage {
    /// A stream at its start.
    pub fn new(section: &PoseSection) -> Self {
        Self {
            track: section.track,
            tracker: CropTracker::new(),
            feats: PoseFeatures::new(),
            region: Region {
                left: 0.0,
                top: 0.0,
                width: 1.0,
                height: 1.0,
            },
        }
    }

    /// Does the next frame's input depend on this frame's output? Then the
    /// embedder must run each frame before the next is prepared (batch 1).
    pub fn tracks(&self) -> bool {
        self.track
    }

    /// Appends the model input of `frame` to `out`: the tracked crop, or
    /// `prep`'s own geometry.
    pub fn prepare(&mut self, prep: &mut Preprocessor, frame: &Frame, out: &mut Vec<f32>) {
        if self.track {
            self.region = self.tracker.region(frame.width, frame.height);
            prep.process_region(frame, self.region, out);
        } else {
            self.region = prep.source_region(frame.width, frame.height);
            prep.process(frame, out);
        }
    }

    /// The model's keypoints of the frame last prepared, `(y, x, score)` in
    /// `[0, 1]` of the model input, to frame pixels in `out`; the tracker
    /// remembers them.
    ///
    /// # Panics
    /// If `kp` or `out` is not [`INPUT_LEN`] long.
    pub fn keypoints(&mut self, kp: &[f32], out: &mut [f32]) {
        self.tracker.to_frame(kp, self.region, out);
    }

    /// [`PoseStage::keypoints`] in place on rows of [`INPUT_LEN`] values
    /// (the embedder's output for consecutive frames, all of the same size).
    pub fn keypoints_in_place(&mut self, rows: &mut [f32]) {
        let mut px = [0f32; INPUT_LEN];
        for kp in rows.chunks_exact_mut(INPUT_LEN) {
            self.keypoints(kp, &mut px);
            kp.copy_from_slice(&px);
        }
    }

    /// [`PoseFeatures::push`] on keypoints in pixels.
    ///
    /// # Panics
    /// As [`PoseFeatures::push`].
    pub fn features(&mut self, px: &[f32], out: &mut [f32]) {
        self.feats.push(px, out);
    }

    /// A discontinuity: the next frame is seen whole, its velocities are 0.
    pub fn reset(&mut self) {
        self.tracker.reset();
        self.feats.reset();
    }
}

/// Smallest half side of a tracked crop, pixels.
pub const MIN_HALF: f64 = 8.0;

/// One stream's crop region state: the previous frame's keypoints (pixels).
#[derive(Debug, Clone, Default)]
pub struct CropTracker {
    prev: Option<[f32; INPUT_LEN]>,
}

impl CropTracker {
    /// A stream at its start: the first frame is seen whole.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets the person: the next frame is seen whole.
    pub fn reset(&mut self) {
        self.prev = None;
    }

    /// The whole `w` x `h` frame padded to a centred square.
    pub fn full_region(w: u32, h: u32) -> Region {
        let side = f64::from(w.max(h));
        Region {
            left: (f64::from(w) - side) / 2.0,
            top: (f64::from(h) - side) / 2.0,
            width: side,
            height: side,
        }
    }

    /// The square to look at in the next `w` x `h` frame (see the [module
    /// documentation](self)).
    pub fn region(&self, w: u32, h: u32) -> Region {
        let Some(kp) = &self.prev else {
            return Self::full_region(w, h);
        };
        let s = |k: usize| kp[3 * k + 2];
        let seen = |a: usize, b: usize| s(a) > MIN_SCORE || s(b) > MIN_SCORE;
        if !(seen(L_HIP, R_HIP) && seen(L_SHOULDER, R_SHOULDER)) {
            return Self::full_region(w, h);
        }
        let y = |k: usize| f64::from(kp[3 * k]);
        let x = |k: usize| f64::from(kp[3 * k + 1]);
        let cy = (y(L_HIP) + y(R_HIP)) / 2.0;
        let cx = (x(L_HIP) + x(R_HIP)) / 2.0;
        let reach = |k: usize| (cy - y(k)).abs().max((cx - x(k)).abs());
        let torso = [L_SHOULDER, R_SHOULDER, L_HIP, R_HIP]
            .into_iter()
            .map(reach)
            .fold(0.0, f64::max);
        let body = (0..KEYPOINTS)
            .filter(|&k| s(k) > MIN_SCORE)
            .map(reach)
            .fold(0.0, f64::max);
        let (fw, fh) = (f64::from(w), f64::from(h));
        let half = (1.9 * torso).max(1.2 * body).max(MIN_HALF);
        let half = half.min(cx.max(fw - cx).max(cy).max(fh - cy));
        if !half.is_finite() || 2.0 * half >= fw.max(fh) {
            return Self::full_region(w, h);
        }
        Region {
            left: cx - half,
            top: cy - half,
            width: 2.0 * half,
            height: 2.0 * half,
        }
    }

    /// Maps the model's keypoints on `region` (`(y, x, score)`, y and x in
    /// `[0, 1]` of the region) to frame pixels in `out`, and remembers them
    /// for the next [`CropTracker::region`].
    ///
    /// # Panics
    /// If `kp` or `out` is not [`INPUT_LEN`] long.
    pub fn to_frame(&mut self, kp: &[f32], region: Region, out: &mut [f32]) {
        assert_eq!(kp.len(), INPUT_LEN, "keypoints per frame");
        assert_eq!(out.len(), INPUT_LEN, "keypoints per frame");
        let mut prev = [0f32; INPUT_LEN];
        for k in 0..KEYPOINTS {
            prev[3 * k] = (region.top + f64::from(kp[3 * k]) * region.height) as f32;
            prev[3 * k + 1] = (region.left + f64::from(kp[3 * k + 1]) * region.width) as f32;
            prev[3 * k + 2] = kp[3 * k + 2];
        }
        out.copy_from_slice(&prev);
        self.prev = Some(prev);
    }
}

/// One stream's pose feature state: the previous frame.
#[derive(Debug, Clone, Default)]
pub struct PoseFeatures {
    prev: Option<Prev>,
}

#[derive(Debug, Clone)]
struct Prev {
    rel: [f32; 2 * KEYPOINTS],
    ok: [bool; KEYPOINTS],
    hip: [f32; 2],
}

impl PoseFeatures {
    /// A stream at its start.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets the previous frame: the next frame's velocities are 0.
    pub fn reset(&mut self) {
        self.prev = None;
    }

    /// The features of one frame (`kp`: [`INPUT_LEN`] values) into `out`
    /// ([`FEATURE_LEN`] values).
    ///
    /// # Panics
    /// If `kp` or `out` has the wrong length.
    pub fn push(&mut self, kp: &[f32], out: &mut [f32]) {
        assert_eq!(kp.len(), INPUT_LEN, "keypoints per frame");
        assert_eq!(out.len(), FEATURE_LEN, "features per frame");
        let xy = |k: usize| [kp[3 * k + 1], kp[3 * k]];
        let mid = |a: usize, b: usize| {
            let (p, q) = (xy(a), xy(b));
            [(p[0] + q[0]) / 2.0, (p[1] + q[1]) / 2.0]
        };
        let hip = mid(L_HIP, R_HIP);
        let sh = mid(L_SHOULDER, R_SHOULDER);
        let torso = (sh[0] - hip[0]).hypot(sh[1] - hip[1]).max(1e-3);
        let mut rel = [0f32; 2 * KEYPOINTS];
        let mut ok = [false; KEYPOINTS];
        for k in 0..KEYPOINTS {
            ok[k] = kp[3 * k + 2] >= MIN_SCORE;
            if ok[k] {
                let p = xy(k);
                rel[2 * k] = (p[0] - hip[0]) / torso;
                rel[2 * k + 1] = (p[1] - hip[1]) / torso;
            }
        }
        let mut vel = [0f32; 2 * KEYPOINTS];
        let mut hv = [0f32; 2];
        if let Some(p) = &self.prev {
            for k in 0..KEYPOINTS {
                if ok[k] && p.ok[k] {
                    vel[2 * k] = rel[2 * k] - p.rel[2 * k];
                    vel[2 * k + 1] = rel[2 * k + 1] - p.rel[2 * k + 1];
                }
            }
            hv[0] = (hip[0] - p.hip[0]) / torso;
            hv[1] = (hip[1] - p.hip[1]) / torso;
        }
        let speed = |k: usize| vel[2 * k].hypot(vel[2 * k + 1]);
        let (rx, ry) = (|k: usize| rel[2 * k], |k: usize| rel[2 * k + 1]);
        let dist = |a: usize, b: usize| (rx(a) - rx(b)).hypot(ry(a) - ry(b));
        let axis = [(sh[0] - hip[0]) / torso, (sh[1] - hip[1]) / torso];
        out[0] = axis[0] * axis[0];
        out[1] = axis[1];
        out[2] = hv[0].abs();
        out[3] = hv[1];
        for (i, &(a, b)) in PAIRS.iter().enumerate() {
            let o = &mut out[4 + 5 * i..9 + 5 * i];
            o[0] = ry(a).min(ry(b));
            o[1] = ry(a).max(ry(b));
            o[2] = rx(a).abs().max(rx(b).abs());
            o[3] = speed(a).max(speed(b));
            o[4] = speed(a).min(speed(b));
        }
        let n = 4 + 5 * PAIRS.len();
        out[n] = dist(15, 16);
        out[n + 1] = dist(9, 10);
        out[n + 2] = ry(0);
        out[n + 3] = ok.iter().filter(|&&o| o).count() as f32 / KEYPOINTS as f32;
        self.prev = Some(Prev { rel, ok, hip });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_makes_velocities_zero_again() {
        let mut f = PoseFeatures::new();
        let mut kp = [0.5f32; INPUT_LEN];
        // shoulders above hips so the torso is not degenerate
        for (k, y) in [(5, 0.3), (6, 0.3), (11, 0.6), (12, 0.6)] {
            kp[3 * k] = y;
        }
        let mut out = [0f32; FEATURE_LEN];
        f.push(&kp, &mut out);
        kp[3 * 9 + 1] += 0.1; // a wrist moves
        f.push(&kp, &mut out);
        // the wrists' larger speed: 0.1 / torso 0.3
        assert!((out[7] - 0.1 / 0.3).abs() < 1e-5, "{}", out[7]);
        f.reset();
        f.push(&kp, &mut out);
        let speeds = [2, 3]
            .into_iter()
            .chain((0..PAIRS.len()).flat_map(|i| [7 + 5 * i, 8 + 5 * i]));
        for i in speeds {
            assert_eq!(out[i], 0.0, "feature {i}");
        }
    }
}
