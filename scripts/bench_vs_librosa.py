#!/usr/bin/env python3
"""Runs `seqrec features` and the equivalent librosa script on the same
10-minute clip, side by side, and prints the median wall times and the ratio.

    python3 scripts/bench_vs_librosa.py [--runs 5] [--clip target/bench/speech_10min_16k.wav]

Both are timed as whole processes (start-up, decoding, features, writing the
.npy), alternating runs so machine noise hits both alike. The outputs are
compared too (max abs difference of the log-mel arrays), so the two programs
are known to do the same work. Needs: a release build (`cargo build --release`),
librosa 0.11 (`pip install librosa==0.11.*`), espeak-ng and sox for the clip.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def timed(cmd):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--clip", default=os.path.join(ROOT, "target/bench/speech_10min_16k.wav"))
    a = ap.parse_args()
    if not os.path.exists(a.clip):
        subprocess.run([os.path.join(ROOT, "scripts/make_bench_clip.sh"), a.clip], check=True)
    exe = os.path.join(ROOT, "target/release/seqrec")
    if not os.path.exists(exe):
        sys.exit("build first: cargo build --release")
    out_r = os.path.join(ROOT, "target/bench/seqrec.npy")
    out_p = os.path.join(ROOT, "target/bench/librosa.npy")
    rust = [exe, "features", a.clip, "--bundle", os.path.join(ROOT, "models/speech-features"), "--out", out_r]
    py = [sys.executable, os.path.join(ROOT, "scripts/librosa_features.py"), a.clip, out_p]
    tr, tp = [], []
    for _ in range(a.runs):
        tr.append(timed(rust))
        tp.append(timed(py))
    r, p = np.load(out_r), np.load(out_p)
    assert r.shape == p.shape, (r.shape, p.shape)
    mr, mp = statistics.median(tr), statistics.median(tp)
    dur = 600.0
    print(f"clip: {a.clip} ({r.shape[0]} frames x {r.shape[1]} log-mels)")
    print(f"max abs difference seqrec vs librosa: {np.abs(r - p).max():.2e}")
    print(f"seqrec features : median {mr:.3f} s over {a.runs} runs ({dur / mr:.0f}x real time)")
    print(f"librosa 0.11    : median {mp:.3f} s over {a.runs} runs ({dur / mp:.0f}x real time)")
    print(f"ratio           : seqrec is {mp / mr:.1f}x faster")


if __name__ == "__main__":
    main()
