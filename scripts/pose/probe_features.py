#!/usr/bin/env python3
"""Which per-frame pose features carry over between motion sources? A quick probe used to choose
train_head.features(): 2 s windows of every source (30 clean, and each rendered take), window
statistics (mean, std, max, min over the graded frames) of the per-frame features, a logistic
regression (C=0.1) leave-one-source-out over train_head.FOLDS; accuracy per held-out source.

    /work/venv-genre/bin/python scripts/pose/probe_features.py PYBULLET_DATA TAKES_DIR

Compares train_head.features() ("symmetric") with the raw 87 of the first head ("raw": 34 hip-centred
torso-scaled coordinates, their 34 velocities, the hip velocity, 17 seen flags). ~10 s.
"""
import os
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_head as th  # noqa: E402


def raw(uv, score):
    ok, _, _, _, rel, vel, hv = th.normalised(uv, score)
    return np.concatenate([rel.reshape(len(uv), -1), vel.reshape(len(uv), -1), hv, ok], 1)


SETS = {"symmetric": th.features, "raw": raw}


def stats(f):
    return np.concatenate([f.mean(0), f.std(0), f.max(0), f.min(0)])


def main():
    srcs, takes = th.load_sources(sys.argv[1]), th.load_takes(sys.argv[2])
    rng = np.random.default_rng(0)
    X, y, names, kinds = {k: [] for k in SETS}, [], [], []

    def add(uv, sc, yy, name, kind):
        g = yy >= 0
        if not g.any():
            return
        for k, fn in SETS.items():
            X[k].append(stats(fn(uv, sc)[g]))
        y.append(np.bincount(yy[g]).argmax())
        names.append(name)
        kinds.append(kind)

    for name in srcs:
        for _ in range(30):
            x3, yy = th.timeline(srcs[name], rng, 2.0, fps=rng.uniform(*th.FPS_RANGE))
            add(*th.camera_view(x3, rng), yy, name, "clean")
        if name in takes:
            for i in range(len(takes[name][0])):
                kp, yy = th.take_piece(takes, name, rng, 2.0, i=i)
                k = kp.reshape(len(kp), 17, 3).astype(np.float64)
                add(k[:, :, [1, 0]], k[:, :, 2], yy, name, "rendered")
    y, names, kinds = np.array(y), np.array(names), np.array(kinds)
    for fs in SETS:
        Xf = np.array(X[fs])
        res = {}
        for held in [h for hs in th.FOLDS.values() for h in hs]:
            test = np.array([n.startswith(held) for n in names])
            m = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
            p = m.fit(Xf[~test], y[~test]).predict(Xf[test])
            for kd in ("clean", "rendered"):
                sel = kinds[test] == kd
                if sel.any():
                    res.setdefault(kd, {})[held] = round(float((p[sel] == y[test][sel]).mean()), 2)
        for kd, v in res.items():
            print(f"{fs:9s} {kd:8s} mean {np.mean(list(v.values())):.3f}  {v}")


if __name__ == "__main__":
    main()
