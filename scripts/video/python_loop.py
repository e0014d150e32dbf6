#!/usr/bin/env python3
"""The Python baseline of scripts/bench_video.sh: what a Python user writes to
run a video bundle's CNN + recurrent head on a clip.

    python3 scripts/video/python_loop.py CLIP.mp4 --bundle models/action [--batch 16] [--threads 2]

ffmpeg decodes to rgb24 through a pipe (its own process, as seqrec does),
frames are decimated to the bundle's [video] fps the same way
(src/features/video.rs Decimator: keep a frame when its time reaches the next
tick), resized/cropped with PIL (bilinear, antialiased: the usual choice;
seqrec's own resampler is reproduced exactly by scripts/video/preprocess.py,
which is slower in numpy), normalised with numpy, then onnxruntime runs the
CNN on batches of frames and the LSTM head on the resulting features with its
state carried. Prints one JSON line: frames read, frames run, wall seconds,
frames/s (run), and the per-stage seconds.

Interpreter: pyenv python3 (numpy, onnxruntime, Pillow, tomllib).
"""
import argparse
import json
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image


def probe(path):
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=width,height,avg_frame_rate,r_frame_rate", "-of", "json", str(path)],
        check=True, capture_output=True, text=True).stdout
    s = json.loads(out)["streams"][0]
    num, den = (s.get("avg_frame_rate") or s["r_frame_rate"]).split("/")
    fps = float(num) / float(den) if float(den) else 30.0
    return s["width"], s["height"], fps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("clip")
    ap.add_argument("--bundle", default="models/action")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()

    b = Path(a.bundle)
    m = tomllib.loads((b / "bundle.toml").read_text())
    v, e, sq = m["video"], m["embedder"], m["sequence"]
    W, H = v["width"], v["height"]
    mean = np.array(v.get("mean", [0, 0, 0]), np.float32)[:, None, None]
    std = np.array(v.get("std", [1, 1, 1]), np.float32)[:, None, None]
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    t_load = time.perf_counter()
    cnn = ort.InferenceSession(str(b / e["onnx"]), so, providers=["CPUExecutionProvider"])
    so1 = ort.SessionOptions()
    so1.intra_op_num_threads = 1
    head = ort.InferenceSession(str(b / sq["onnx"]), so1, providers=["CPUExecutionProvider"])
    cnn_in = cnn.get_inputs()[0].name
    state_pairs = sq.get("state", [])
    shapes = {i.name: [d if isinstance(d, int) else 1 for d in i.shape] for i in head.get_inputs()}
    state = {i: np.zeros(shapes[i], np.float32) for i, _ in state_pairs}
    x_name = [i.name for i in head.get_inputs() if i.name not in state][0]
    out_names = [o.name for o in head.get_outputs()]
    y_name = [n for n in out_names if n not in {o for _, o in state_pairs}][0]
    load_s = time.perf_counter() - t_load

    t0 = time.perf_counter()
    w, h, fps = probe(a.clip)
    target = v.get("fps")
    # src/features/video.rs Decimator: slots of 1/target from the first frame,
    # a quarter of a source frame of tolerance.
    period = 1.0 / target if target and target < fps else None
    tol = min(0.25 / fps, period / 4) if period else 0.25 / fps
    proc = subprocess.Popen(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", a.clip, "-map", "0:v:0", "-f", "rawvideo",
         "-pix_fmt", "rgb24", "-"], stdout=subprocess.PIPE)
    size = w * h * 3
    # Geometry: shorter side to the target, centre crop (resize = "crop").
    s = max(W / w, H / h)
    rw, rh = max(W, round(w * s)), max(H, round(h * s))
    box = ((rw - W) // 2, (rh - H) // 2, (rw - W) // 2 + W, (rh - H) // 2 + H)
    n_read = n_run = 0
    slot = 0
    batch = []
    posts = []
    t_pre = t_cnn = t_head = 0.0

    def run(batch):
        nonlocal t_cnn, t_head
        t = time.perf_counter()
        f = cnn.run(None, {cnn_in: np.stack(batch)})[0]
        t_cnn += time.perf_counter() - t
        t = time.perf_counter()
        feeds = {x_name: f.reshape(len(batch), 1, -1).astype(np.float32), **state}
        outs = dict(zip(out_names, head.run(out_names, feeds)))
        for i, o in state_pairs:
            state[i] = outs[o]
        posts.append(outs[y_name].reshape(len(batch), -1))
        t_head += time.perf_counter() - t

    while True:
        buf = proc.stdout.read(size)
        if len(buf) < size:
            break
        pts = n_read / fps
        n_read += 1
        if period:
            if pts + tol < slot * period:
                continue
            slot = int((pts + tol) // period) + 1
        t = time.perf_counter()
        img = Image.frombuffer("RGB", (w, h), buf, "raw", "RGB", 0, 1)
        img = img.resize((rw, rh), Image.BILINEAR).crop(box)
        x = np.asarray(img, np.float32).transpose(2, 0, 1)
        batch.append((x - mean) / std)
        t_pre += time.perf_counter() - t
        n_run += 1
        if len(batch) == a.batch:
            run(batch)
            batch = []
    if batch:
        run(batch)
    proc.wait()
    wall = time.perf_counter() - t0
    print(json.dumps({
        "frames_read": n_read, "frames_run": n_run, "wall_s": round(wall, 4),
        "fps_run": round(n_run / wall, 2), "fps_read": round(n_read / wall, 2),
        "load_s": round(load_s, 3), "preprocess_s": round(t_pre, 3), "cnn_s": round(t_cnn, 3),
        "head_s": round(t_head, 3), "batch": a.batch, "threads": a.threads,
    }))


if __name__ == "__main__":
    sys.exit(main())
