"""What musicnn's preprocessing choices do to its MSD tags on a real track.

    /work/venv-tf/bin/python scripts/genre/compare_preprocessing.py \
        /usr/share/games/frozen-bubble/snd/frozen-mainzik-1p.ogg     # apt frozen-bubble-data

Baseline = seqrec's choice (zero padding, no float16 cast) after soxr_hq
resampling (librosa's default); compared with reflect padding (librosa 0.7),
musicnn's float16 cast, and resampy's kaiser_best filter (what musicnn's
training used).
"""
import json
import sys

import librosa
import numpy as np
import onnxruntime as ort

tags = json.load(open("models/genre/musicnn_tags.json"))["MSD_musicnn"]
sess = ort.InferenceSession("models/genre/musicnn_msd.onnx")


def taggram(y, pad, f16):
    m = librosa.feature.melspectrogram(
        y=y, sr=16000, n_fft=512, hop_length=256, n_mels=96, pad_mode=pad
    ).T
    if f16:
        m = m.astype(np.float16)
    x = np.ascontiguousarray(np.log10(10000 * m.astype(np.float64) + 1), dtype=np.float32)
    w = np.stack([x[62 * j : 62 * j + 187] for j in range((len(x) - 187) // 62 + 1)])
    return sess.run(["taggram"], {"melspec": w})[0]


def top(t):
    m = t.mean(0)
    return [(tags[i], round(float(m[i]), 3)) for i in np.argsort(-m)[:5]]


y, sr = librosa.load(sys.argv[1], sr=None, mono=True)
ys = librosa.resample(y, orig_sr=sr, target_sr=16000, res_type="soxr_hq")
yr = librosa.resample(y, orig_sr=sr, target_sr=16000, res_type="kaiser_best")
base = taggram(ys, "constant", False)
print("windows", len(base), "baseline", top(base))
for name, t in [
    ("reflect", taggram(ys, "reflect", False)),
    ("float16", taggram(ys, "constant", True)),
    ("resampy kaiser_best", taggram(yr, "constant", False)),
    ("resampy + reflect + float16 (musicnn)", taggram(yr, "reflect", True)),
]:
    d_win = float(np.abs(t - base).max())
    d_mean = float(np.abs(t.mean(0) - base.mean(0)).max())
    print(f"{name}: max|d| per window {d_win:.3g}, of the mean {d_mean:.3g}, top-5 {top(t)}")
