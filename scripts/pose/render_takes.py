#!/usr/bin/env python3
"""Motion capture -> rendered figures -> MoveNet with seqrec's tracked crop (track.py): "takes" of
keypoints as seqrec would see them from video, for training and for the held-out evaluation of the
pose-action head (train_head.py --takes DIR).

    /work/venv-genre/bin/python scripts/pose/render_takes.py PYBULLET_DATA OUT_DIR [--takes N] [--jobs 2]

Per source (train_head.load_sources) N takes of 3 s, each with its own random camera (azimuth 0-360,
elevation -6..29 deg, 3-9 m, focal 1.0-2.2 on a 320x240 frame, mirrored half the time), speed
(0.8-1.25x), frame rate (8-16 fps), figure look and background (render.py). `idle` takes: a frozen
frame of train_head.IDLE_FROM with a slow sway. Writes OUT_DIR/<source>.npz with `kp` [N, T, 51]
(y, x, score in pixels, as seqrec's pose stage gives them), `label` [N, T] (indices into `labels`,
-1 ungraded, -2 past the take's end) and `fps` [N].
~40 ms per frame per job (rendering, resampling, MoveNet on one thread).
"""
import os
import sys
import zlib
from multiprocessing import Pool

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mocap  # noqa: E402
import render  # noqa: E402
import track  # noqa: E402
import train_head as th  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SECONDS = 3.0
W, H = 320, 240


def take(srcs, name, seed, tracker):
    rng = np.random.default_rng(seed)
    fps = rng.uniform(8, 16)
    if name == "idle":
        x3, lab = th.idle_timeline(srcs, rng, SECONDS, list(srcs), fps=fps)
    else:
        x3, lab = th.timeline(srcs[name], rng, SECONDS, fps=fps)
    az, el = rng.uniform(0, 2 * np.pi), rng.uniform(-0.1, 0.5)
    dist, focal = rng.uniform(3, 9), rng.uniform(1.0, 2.2)
    uv, z = mocap.project(x3, az, el, dist, focal, mirror=rng.random() < 0.5, with_depth=True)
    uv = uv * (W / 2) + np.array([W / 2, H / 2])
    r = render.Renderer(rng, size=(W, H))
    tracker.reset()
    kp = np.stack([tracker.push(r.frame(uv[i], z[i])).reshape(-1) for i in range(len(uv))])
    return kp, lab, fps


def work(args):
    data, name, n, out = args
    srcs = th.load_sources(data)
    tracker = track.Tracker(os.path.join(ROOT, "models/pose-action/movenet_lightning.onnx"), threads=1)
    seed0 = zlib.crc32(name.encode()) % (1 << 30)
    takes = [take(srcs, name, seed0 + i, tracker) for i in range(n)]
    # the frame rate differs per take: pad to the longest, label -2 past each take's end
    T = max(len(t[0]) for t in takes)
    kp = np.zeros((n, T, 51), np.float32)
    lab = np.full((n, T), -2, np.int64)  # -2: past the end of this take
    for i, (k, y, _) in enumerate(takes):
        kp[i, : len(k)] = k
        lab[i, : len(y)] = y
    fps = np.array([t[2] for t in takes])
    np.savez(os.path.join(out, f"{name}.npz"), kp=kp, label=lab, fps=fps, labels=np.array(th.LABELS))
    s = kp[..., 2::3][lab >= 0]
    return f"{name:24s} {n} takes, mean score {s.mean() if s.size else 0:.2f}"


def main():
    data, out = sys.argv[1], sys.argv[2]
    n = int(sys.argv[sys.argv.index("--takes") + 1]) if "--takes" in sys.argv else 10
    jobs = int(sys.argv[sys.argv.index("--jobs") + 1]) if "--jobs" in sys.argv else 2
    os.makedirs(out, exist_ok=True)
    names = list(th.load_sources(data)) + ["idle"]
    todo = [(data, nm, n, out) for nm in names if not os.path.exists(os.path.join(out, f"{nm}.npz"))]
    with Pool(jobs) as p:
        for line in p.imap_unordered(work, todo):
            print(line, flush=True)


if __name__ == "__main__":
    main()
