#!/usr/bin/env python3
"""End-to-end reference for tests/pose.rs: the pose-action head (models/pose-action/pose_head.onnx,
onnxruntime) on the features (train_head.kp_features) of the tracked keypoints of
fixtures/pose/vtest_walk (fixtures/pose/vtest_walk.track.npy, by make_track_refs.py).

    /work/venv-genre/bin/python scripts/pose/make_head_refs.py

Writes fixtures/pose/vtest_walk.posteriors.npy (float32 [4, 10]). (The head's own reference,
fixtures/pose/head.{in,out}.npy, is written by train_head.py --export.)
"""
import os
import sys

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_head as th  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    kp = np.load(os.path.join(ROOT, "fixtures/pose/vtest_walk.track.npy"))
    x = th.kp_features(kp)
    s = ort.InferenceSession(os.path.join(ROOT, "models/pose-action/pose_head.onnx"),
                             providers=["CPUExecutionProvider"])
    H = s.get_inputs()[1].shape[2]
    z = np.zeros((1, 1, H), np.float32)
    y = s.run(None, {"x": x[:, None], "h0": z, "c0": z})[0][:, 0]
    np.save(os.path.join(ROOT, "fixtures/pose/vtest_walk.posteriors.npy"), y.astype(np.float32))
    for t, p in enumerate(y):
        print(t, th.LABELS[int(p.argmax())], p.round(3))


if __name__ == "__main__":
    main()
