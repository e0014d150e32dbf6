#!/usr/bin/env python3
"""Reference of seqrec's pose stage (src/features/pose.rs `CropTracker`, src/features/video.rs
`Preprocessor::process_region`): MoveNet run on a square region of the frame that follows the person,
the region carried from frame to frame as stream state.

    from track import Tracker
    t = Tracker(onnx_path)              # onnxruntime session of movenet_lightning.onnx
    kp = t.push(rgb)                    # uint8 [H, W, 3] -> float32 [17, 3]: (y, x, score), y/x in PIXELS
    t.reset()                           # a discontinuity: the next frame is seen whole

    python scripts/pose/track.py VIDEO_OR_FOLDER OUT.npy   # keypoints [frames, 51] and regions [frames, 3]

The algorithm is MoveNet's own (the TF Hub tutorial's `determine_crop_region`), in pixels:

* With no previous person (first frame, after a reset, or the torso was not seen), the region is the
  whole frame padded to a square: side max(W, H), centred.
* Otherwise, from the previous frame's keypoints: the centre is the hip midpoint; `torso` is the
  largest |dy| or |dx| of the shoulders and hips from the centre, `body` the same over every keypoint
  with score > 0.2; half side = max(1.9 torso, 1.2 body), at least MIN_HALF px, at most the largest
  distance from the centre to a frame edge. A region larger than the padded frame falls back to it.
  "Torso seen" = a hip and a shoulder (either side) with score > 0.2.
* The region is resampled to 192x192 with the preprocessing filter (antialiased triangle, PIL's
  convention, preprocess.py) over the region's pixels; outside the frame is black (zero padding: the
  weights are normalised over every tap, then taps outside the frame are dropped).
* MoveNet's (y, x) in [0, 1] of the region map back to frame pixels: y = top + y' * side.
"""
import math
import os
import sys

import numpy as np

SIZE = 192
MIN_SCORE = 0.2
MIN_HALF = 8.0


def region_weights(in_size, origin, extent, out_size):
    """[out_size, in_size] weights of a resample of [origin, origin + extent) to out_size pixels."""
    scale = extent / out_size
    fs = max(scale, 1.0)
    m = np.zeros((out_size, in_size))
    for i in range(out_size):
        c = origin + (i + 0.5) * scale
        lo, hi = math.floor(c - fs + 0.5), math.floor(c + fs + 0.5)
        x = np.arange(lo, hi, dtype=np.float64)
        w = np.maximum(0.0, 1.0 - np.abs((x - c + 0.5) / fs))
        t = w.sum()
        if t != 0.0:
            w = w / t
        keep = (x >= 0) & (x < in_size)
        m[i, x[keep].astype(int)] = w[keep]
    return m


def crop_region(rgb, region, size=SIZE):
    """uint8 [H, W, 3] and (top, left, side) -> float32 [size, size, 3] (0..255, NHWC)."""
    top, left, side = region
    h, w, _ = rgb.shape
    mx = region_weights(w, left, side, size)
    my = region_weights(h, top, side, size)
    rows = np.flatnonzero(my.any(0))
    cols = np.flatnonzero(mx.any(0))
    if len(rows) == 0 or len(cols) == 0:
        return np.zeros((size, size, 3), np.float32)
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    x = rgb[r0:r1, c0:c1].astype(np.float64)
    x = np.tensordot(x, mx[:, c0:c1], axes=([1], [1]))  # [rows, 3, size]
    x = np.tensordot(my[:, r0:r1], x, axes=([1], [0]))  # [size, 3, size]
    return np.ascontiguousarray(x.transpose(0, 2, 1)).astype(np.float32)


def full_region(h, w):
    side = float(max(h, w))
    return ((h - side) / 2.0, (w - side) / 2.0, side)


def next_region(kp, h, w):
    """The region for the next frame from this frame's keypoints [17, 3] (pixels)."""
    s = kp[:, 2]
    if not ((s[11] > MIN_SCORE or s[12] > MIN_SCORE) and (s[5] > MIN_SCORE or s[6] > MIN_SCORE)):
        return full_region(h, w)
    cy, cx = (kp[11, 0] + kp[12, 0]) / 2.0, (kp[11, 1] + kp[12, 1]) / 2.0
    torso = max(max(abs(cy - kp[k, 0]), abs(cx - kp[k, 1])) for k in (5, 6, 11, 12))
    body = max([max(abs(cy - kp[k, 0]), abs(cx - kp[k, 1])) for k in range(17) if s[k] > MIN_SCORE],
               default=0.0)
    half = max(1.9 * torso, 1.2 * body, MIN_HALF)
    half = min(half, max(cx, w - cx, cy, h - cy))
    if 2.0 * half >= max(h, w):
        return full_region(h, w)
    return (cy - half, cx - half, 2.0 * half)


class Tracker:
    def __init__(self, onnx_path, threads=2):
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        self.sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
        self.prev = None

    def reset(self):
        self.prev = None

    def region(self, h, w):
        return full_region(h, w) if self.prev is None else next_region(self.prev, h, w)

    def push(self, rgb):
        h, w, _ = rgb.shape
        top, left, side = reg = self.region(h, w)
        x = crop_region(rgb, reg)
        # seqrec rounds the preprocessed frame for an int32 model (half away from zero; values >= 0)
        xi = np.floor(x + 0.5).astype(np.int32)[None]
        out = self.sess.run(None, {self.sess.get_inputs()[0].name: xi})[0].reshape(17, 3).astype(np.float64)
        kp = out.copy()
        kp[:, 0] = top + out[:, 0] * side
        kp[:, 1] = left + out[:, 1] * side
        kp = kp.astype(np.float32).astype(np.float64)  # seqrec keeps f32 pixels
        self.prev = kp
        self.last_region = reg
        return kp.astype(np.float32)


def frames_of(path):
    """uint8 RGB frames of a video (ffmpeg) or a folder of images (sorted)."""
    if os.path.isdir(path):
        from PIL import Image
        for f in sorted(os.listdir(path)):
            if f.lower().endswith((".png", ".jpg", ".jpeg", ".bmp")):
                yield np.asarray(Image.open(os.path.join(path, f)).convert("RGB"))
        return
    import json
    import subprocess
    info = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height",
         "-of", "json", path], capture_output=True, check=True).stdout)["streams"][0]
    w, h = info["width"], info["height"]
    p = subprocess.Popen(["ffmpeg", "-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         stdout=subprocess.PIPE)
    while True:
        b = p.stdout.read(w * h * 3)
        if len(b) < w * h * 3:
            break
        yield np.frombuffer(b, np.uint8).reshape(h, w, 3)
    p.wait()


def main():
    src, out = sys.argv[1], sys.argv[2]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    t = Tracker(os.path.join(root, "models/pose-action/movenet_lightning.onnx"))
    kps, regs = [], []
    for rgb in frames_of(src):
        kps.append(t.push(rgb).reshape(-1))
        regs.append(t.last_region)
    np.save(out, np.array(kps, np.float32))
    np.save(out.replace(".npy", ".regions.npy"), np.array(regs, np.float64))
    s = np.array(kps)[:, 2::3]
    print(f"{len(kps)} frames; mean score {s.mean():.3f}; torso seen on "
          f"{np.mean([(r[2] < 1e9) for r in regs]):.2f}; median region side {np.median([r[2] for r in regs]):.0f} px")


if __name__ == "__main__":
    main()
