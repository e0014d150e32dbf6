#!/usr/bin/env python3
"""Reference for src/features/pose.rs: fixtures/pose/features.in.npy ([40, 51]: MoveNet-format
keypoints (y, x, score), a projected DeepMimic walk with detector-like noise, dropped joints and
scores near the threshold,
in [0, 1] of a square image) and features.out.npy ([40, 28]: train_head.features() on them).

    /work/venv-genre/bin/python scripts/pose/make_feature_refs.py PYBULLET_DATA
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_head as th  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
srcs = th.load_sources(sys.argv[1])
rng = np.random.default_rng(5)
x3, _ = th.timeline(srcs["dm_walk"], rng, 40 / th.FPS)
uv, score = th.camera_view(x3, rng)
# scores near the 0.2 threshold, on both sides, so that the test sees where it cuts
near = rng.random(score.shape) < 0.1
score[near] = rng.uniform(0.15, 0.3, near.sum())
uv = uv / 640.0  # any scale: the features are in torso lengths
kp = np.stack([uv[..., 1], uv[..., 0], score], -1).reshape(len(uv), 51).astype(np.float32)
# the reference computes from the same float32 inputs the Rust code reads
uv32 = np.stack([kp.reshape(-1, 17, 3)[..., 1], kp.reshape(-1, 17, 3)[..., 0]], -1).astype(np.float64)
out = th.features(uv32, kp.reshape(-1, 17, 3)[..., 2].astype(np.float64))
fx = os.path.join(ROOT, "fixtures", "pose")
np.save(os.path.join(fx, "features.in.npy"), kp)
np.save(os.path.join(fx, "features.out.npy"), out.astype(np.float32))
print(kp.shape, out.shape, "missing keypoints:", int((kp.reshape(-1, 17, 3)[..., 2] < th.MIN_SCORE).sum()))
