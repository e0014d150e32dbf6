//! Pose keypoints -> per-frame features for an action head (issue 12; not
//! yet wired into the pipeline).
//!
//! The definition is `features()` in `scripts/pose/train_head.py`, which the
//! head is trained on; `tests/pose.rs` pins this module to it. For each
//! frame of 17 COCO keypoints `(y, x, score)` (MoveNet's output order):
//!
//! * the centre is the hip midpoint, the scale the torso length (shoulder
//!   midpoint to hip midpoint, at least 1e-3): `rel = (p - hip) / torso`,
//!   34 values as `(x, y)` pairs in keypoint order;
//! * `vel = rel[t] - rel[t - 1]`, 34 values, 0 on the first frame;
//! * the hip midpoint's velocity in torso lengths, `(hip[t] - hip[t-1]) /
//!   torso[t]`, 2 values, 0 on the first frame;
//! * the 17 scores.
//!
//! A keypoint under [`MIN_SCORE`] is missing: its `rel` is 0, and so is its
//! `vel` on this frame and the next. The hips and shoulders enter the centre
//! and scale whatever their scores (as in the reference).
//!
//! The previous frame is stream state: [`PoseFeatures::reset`] at a
//! discontinuity (a new file, dropped frames, a lost person).

/// COCO keypoints per frame.
pub const KEYPOINTS: usize = 17;
/// Values per frame in: `(y, x, score)` per keypoint.
pub const INPUT_LEN: usize = 3 * KEYPOINTS;
/// Values per frame out: 34 positions + 34 velocities + 2 hip velocity + 17 scores.
pub const FEATURE_LEN: usize = 4 * KEYPOINTS + 2 + KEYPOINTS;
/// Scores below this mark a keypoint as missing.
pub const MIN_SCORE: f32 = 0.2;

const L_SHOULDER: usize = 5;
const R_SHOULDER: usize = 6;
const L_HIP: usize = 11;
const R_HIP: usize = 12;

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
        let (pos, rest) = out.split_at_mut(2 * KEYPOINTS);
        let (vel, rest) = rest.split_at_mut(2 * KEYPOINTS);
        let (hv, scores) = rest.split_at_mut(2);
        pos.copy_from_slice(&rel);
        vel.fill(0.0);
        hv.fill(0.0);
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
        for (k, s) in scores.iter_mut().enumerate() {
            *s = kp[3 * k + 2];
        }
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
        assert!(out[2 * KEYPOINTS + 18] > 0.0);
        f.reset();
        f.push(&kp, &mut out);
        assert!(
            out[2 * KEYPOINTS..4 * KEYPOINTS + 2]
                .iter()
                .all(|&v| v == 0.0)
        );
    }
}
