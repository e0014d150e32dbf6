"""Reference preprocessed tensors for tests/video_source.rs (fixtures/video/refs/).

For a few frames of the fixture clips: the frame as FFmpeg decodes it to rgb24 (saved as a
lossless PNG, <case>.rgb.png), and scripts/video/preprocess.py's output for one preprocessing
configuration (<case>.npy, float32). params.json lists the cases. The Rust test decodes the
PNG, runs seqrec's Preprocessor and compares, so only preprocessing is tested; it also checks
that FfmpegVideo delivers exactly the PNG's pixels for that frame.

    python3 scripts/video/make_video_refs.py      (numpy, Pillow; ffmpeg on PATH)
"""

import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from preprocess import preprocess  # noqa: E402

ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
VIDEO = os.path.join(ROOT, "fixtures", "video")
OUT = os.path.join(VIDEO, "refs")

IMAGENET = dict(mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375))

CASES = [
    # name, clip, frame index, size, preprocessing options
    ("mp4_f7_crop48", "testsrc2_160x120_25fps.mp4", 7, (160, 120),
     dict(width=48, height=48, resize="crop", channels="rgb", layout="nchw", **IMAGENET)),
    ("mkv_f20_stretch32x80_bgr_nhwc", "testsrc2_98x62_30fps.mkv", 20, (98, 62),
     dict(width=32, height=80, resize="stretch", channels="bgr", layout="nhwc",
          mean=(100.0, 110.0, 120.0), std=(50.0, 60.0, 70.0))),
    ("webm_f5_crop24", "mandelbrot_128x96_15fps.webm", 5, (128, 96),
     dict(width=24, height=24, resize="crop", channels="rgb", layout="nchw")),
    ("avi_f3_crop48x72_up", "testsrc_96x64_10fps.avi", 3, (96, 64),
     dict(width=48, height=72, resize="crop", channels="rgb", layout="nchw", **IMAGENET)),
]


def decode(clip, index, size):
    w, h = size
    raw = subprocess.run(
        ["ffmpeg", "-hide_banner", "-v", "error", "-nostdin", "-i", os.path.join(VIDEO, clip),
         "-map", "0:v:0", "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        check=True, capture_output=True).stdout
    n = len(raw) // (w * h * 3)
    assert index < n, f"{clip} has {n} frames"
    return np.frombuffer(raw, np.uint8).reshape(n, h, w, 3)[index]


def main():
    os.makedirs(OUT, exist_ok=True)
    params = []
    for name, clip, index, size, opts in CASES:
        rgb = decode(clip, index, size)
        Image.fromarray(rgb).save(os.path.join(OUT, f"{name}.rgb.png"), optimize=True)
        back = np.asarray(Image.open(os.path.join(OUT, f"{name}.rgb.png")).convert("RGB"))
        assert np.array_equal(back, rgb)
        x = preprocess(rgb, **opts)
        np.save(os.path.join(OUT, f"{name}.npy"), x)
        full = dict(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), **opts) if "mean" not in opts else opts
        params.append(dict(name=name, clip=clip, frame=index, **{
            k: list(v) if isinstance(v, tuple) else v for k, v in full.items()}))
        print(f"{name}: {rgb.shape} -> {x.shape}, range {x.min():.3f}..{x.max():.3f}")
    with open(os.path.join(OUT, "params.json"), "w") as f:
        json.dump(params, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
