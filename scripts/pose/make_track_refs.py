#!/usr/bin/env python3
"""References for tests/pose.rs: the tracked-crop resampling and MoveNet through the tracker
(scripts/pose/track.py) on fixtures/pose/vtest_walk (4 frames of opencv-doc's vtest.avi, frames
100-103 cropped to 256x192 at (300, 110)).

    /work/venv-genre/bin/python scripts/pose/make_track_refs.py

Writes fixtures/pose/vtest_walk.track.npy (float32 [4, 51]: y, x, score, pixels),
vtest_walk.regions.npy (float32 [4, 3]: top, left, side of each frame's crop) and
vtest_walk.crops.npy (float32 [2, 40, 40, 3]: f100 resampled from two squares reaching past the
frame, 0..255 NHWC).
"""
import os
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import track  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DIR = os.path.join(ROOT, "fixtures/pose/vtest_walk")
# (top, left, side): a small square over the top-left corner (upsampling) and a large one past the
# left and bottom edges (downsampling)
CROPS = [(-20.5, -10.25, 60.7), (40.0, -80.5, 230.0)]


def main():
    t = track.Tracker(os.path.join(ROOT, "models/pose-action/movenet_lightning.onnx"), threads=1)
    kps, regs = [], []
    for f in sorted(os.listdir(DIR)):
        rgb = np.asarray(Image.open(os.path.join(DIR, f)).convert("RGB"))
        kps.append(t.push(rgb).reshape(-1))
        regs.append(t.last_region)
    np.save(DIR + ".track.npy", np.array(kps, np.float32))
    np.save(DIR + ".regions.npy", np.array(regs, np.float32))
    rgb = np.asarray(Image.open(os.path.join(DIR, "f100.png")).convert("RGB"))
    crops = np.stack([track.crop_region(rgb, c, size=40) for c in CROPS])
    np.save(DIR + ".crops.npy", crops.astype(np.float32))
    for r, k in zip(regs, kps):
        print("region (top, left, side)", np.round(r, 2), "mean score", k[2::3].mean().round(3))


if __name__ == "__main__":
    main()
