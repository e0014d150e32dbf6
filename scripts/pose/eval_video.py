#!/usr/bin/env python3
"""What the pose-action bundle says on a real video, over time, through the seqrec binary.

    /work/venv-genre/bin/python scripts/pose/eval_video.py VIDEO [--expect walk] [--seqrec PATH] [--plot OUT.png]

Runs `seqrec embed` (tracked keypoints, pixels) and `seqrec batch --emit posteriors` with
models/pose-action on VIDEO, and reports, over the steps where a person is visible (the tracker's
torso is seen: a hip and a shoulder with score > 0.2, and >= 8 of 17 keypoints with score >= 0.3):
the share of steps whose arg-max label is each label (`--expect`: the share of that one), the share
with the 1 s smoothed posterior's arg-max, and how often the followed person jumps (the hip moves
more than one torso length between steps: the crop went to someone else, e.g. when people cross).
"""
import json
import os
import subprocess
import sys
import tempfile
import tomllib

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    video = sys.argv[1]
    arg = lambda k, d: sys.argv[sys.argv.index(k) + 1] if k in sys.argv else d  # noqa: E731
    exe = arg("--seqrec", os.path.join(ROOT, "target/release/seqrec"))
    expect = arg("--expect", None)
    bundle = os.path.join(ROOT, "models/pose-action")
    with open(os.path.join(bundle, "bundle.toml"), "rb") as f:
        labels = tomllib.load(f)["labels"]
    with tempfile.TemporaryDirectory() as d:
        kp_path = os.path.join(d, "kp.npy")
        subprocess.run([exe, "embed", video, "--bundle", bundle, "--out", kp_path], check=True,
                       stderr=subprocess.DEVNULL)
        kp = np.load(kp_path).reshape(-1, 17, 3)
        out = subprocess.run([exe, "batch", video, "--bundle", bundle, "--emit", "posteriors"], check=True,
                             capture_output=True, text=True).stdout
    rows = [json.loads(x) for x in out.splitlines() if x.strip()]
    p = np.array([r["scores"] for r in rows])
    t = np.array([r["t_s"] for r in rows])
    assert len(p) == len(kp), (len(p), len(kp))
    s = kp[:, :, 2]
    torso = ((s[:, 11] > 0.2) | (s[:, 12] > 0.2)) & ((s[:, 5] > 0.2) | (s[:, 6] > 0.2))
    visible = torso & ((s >= 0.3).sum(1) >= 8)
    hip = kp[:, 11:13, :2].mean(1)
    tl = np.linalg.norm(kp[:, 5:7, :2].mean(1) - hip, axis=1)
    jumps = int((np.linalg.norm(np.diff(hip, axis=0), axis=1) > np.maximum(tl[1:], 1.0)).sum())
    period = float(np.median(np.diff(t))) if len(t) > 1 else 0.1
    k = max(1, int(round(1.0 / period)))
    smooth = np.stack([np.convolve(p[:, j], np.ones(k) / k, mode="full")[: len(p)] for j in range(p.shape[1])], 1)
    arg_raw, arg_s = p.argmax(1), smooth.argmax(1)
    v = visible
    print(f"{video}: {len(p)} steps ({period * 1000:.0f} ms), person visible on {v.sum()} ({v.mean():.1%}); "
          f"median keypoint score {np.median(s.mean(1)):.3f}; followed person jumped {jumps} times")
    share = {lab: float((arg_raw[v] == i).mean()) if v.any() else 0.0 for i, lab in enumerate(labels)}
    share_s = {lab: float((arg_s[v] == i).mean()) if v.any() else 0.0 for i, lab in enumerate(labels)}
    print("  arg-max per step (visible):", {a: round(b, 3) for a, b in share.items() if b > 0})
    print("  arg-max of 1 s mean (visible):", {a: round(b, 3) for a, b in share_s.items() if b > 0})
    if expect:
        print(f"  '{expect}': {share[expect]:.1%} of visible steps (per step), {share_s[expect]:.1%} (1 s mean)")
    if "--plot" in sys.argv:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(2, 1, figsize=(12, 5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
        for j, lab in enumerate(labels):
            ax[0].plot(t, smooth[:, j], label=lab, lw=1)
        ax[0].legend(ncol=5, fontsize=8)
        ax[0].set_ylabel("posterior (1 s mean)")
        ax[1].plot(t, s.mean(1), "k", lw=1)
        ax[1].fill_between(t, 0, v.astype(float), color="g", alpha=0.2, step="mid")
        ax[1].set_ylabel("mean score / visible")
        ax[1].set_xlabel("s")
        fig.tight_layout()
        fig.savefig(arg("--plot", "pose.png"), dpi=80)


if __name__ == "__main__":
    main()
