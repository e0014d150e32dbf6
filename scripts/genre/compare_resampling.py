#!/usr/bin/env python3
"""What seqrec's resampler (rubato, inside `seqrec batch`) does to the genre head, against the
FFmpeg resampling its training audio went through: for real 44.1/48 kHz test-split recordings,
the file summary (mean posteriors over the first 60 s) from `seqrec batch --emit summary` on the
original file vs the same head in Python on FFmpeg's 16 kHz version.

    /work/venv-genre/bin/python scripts/genre/compare_resampling.py [N_PER_SOURCE]

Needs target/release/seqrec and the packages of render.py (wesnoth-1.16-music, nexuiz-music).
"""
import glob
import json
import os
import random
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import render  # noqa: E402
import train_head as th  # noqa: E402

ROOT = th.ROOT
n = int(sys.argv[1]) if len(sys.argv) > 1 else 4
wes = sorted(glob.glob("/usr/share/games/wesnoth/1.16/data/core/music/*.ogg"))
random.Random(7).shuffle(wes)  # render.py's order: the first 10 are the test split
z = zipfile.ZipFile("/usr/share/games/nexuiz/data/music.pk3")
nx = [m for i, m in enumerate(sorted(m for m in z.namelist() if m.endswith(".ogg"))) if i % 3 != 0]
run = th.ort_head()
rows = []
with tempfile.TemporaryDirectory() as d:
    files = []
    for f in wes[:n]:
        files.append(("classical", f))
    for m in nx[:n]:
        p = os.path.join(d, os.path.basename(m))
        open(p, "wb").write(z.read(m))
        files.append(("electronic", p))
    for label, f in files:
        # both sides hear the first 60 s
        cut = os.path.join(d, "cut_" + os.path.basename(f))
        subprocess.run(["ffmpeg", "-v", "quiet", "-y", "-i", f, "-t", "60", "-c", "copy", cut], check=True)
        out = subprocess.run([os.path.join(ROOT, "target/release/seqrec"), "batch", cut, "--bundle",
                              os.path.join(ROOT, "models/genre"), "--emit", "summary"],
                             capture_output=True, text=True, check=True).stdout
        rec = json.loads(out.splitlines()[0])
        y = render.decode(cut)
        pen = th.musicnn(y)[1]
        m = run(pen).mean(0)
        got = np.array([rec["scores"][k] for k in th.LABELS])
        rate = subprocess.run(["ffprobe", "-v", "quiet", "-show_entries", "stream=sample_rate", "-of", "csv=p=0",
                               cut], capture_output=True, text=True).stdout.strip()
        rows.append(dict(file=os.path.basename(f), rate=rate, truth=label, seqrec=rec["label"],
                         python_ffmpeg=th.LABELS[int(m.argmax())], max_abs_mean_diff=float(np.abs(got - m).max())))
        print(json.dumps(rows[-1]), flush=True)
agree = sum(r["seqrec"] == r["python_ffmpeg"] for r in rows)
print(f"labels agree on {agree} of {len(rows)}; largest mean-posterior difference "
      f"{max(r['max_abs_mean_diff'] for r in rows):.4f}; median "
      f"{float(np.median([r['max_abs_mean_diff'] for r in rows])):.4f}")
