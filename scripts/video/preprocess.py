"""Reference of seqrec's video preprocessing (src/features/video.rs), in numpy.

    from preprocess import preprocess
    x = preprocess(rgb)            # rgb: uint8 [H, W, 3] -> float32 [3, 224, 224]

Exactly what seqrec does to each video frame before the model sees it:

1. Geometry.
   * resize="crop" (default): scale the frame so that it covers the target
     (the side that limits is scaled to exactly the target size, the other
     to round(size * scale), rounding halves up, never below the target),
     then cut the centre: offset = (resized - target) // 2 on each axis.
     For a square target this is "shorter side = target, centre crop"
     (torchvision's Resize(shorter) + CenterCrop, up to its rounding).
   * resize="stretch": scale each axis independently to the target.
2. Resampling: separable, antialiased triangle (bilinear) filter with PIL's
   convention -- per axis, scale = in_size / resized_size,
   support = max(1, scale), output pixel i is centred at (i + 0.5) * scale
   in input coordinates, taps x in [int(centre - support + 0.5),
   int(centre + support + 0.5)) clipped to the image, weight
   tri((x - centre + 0.5) / max(1, scale)) with tri(t) = max(0, 1 - |t|),
   weights normalised to sum 1. Horizontal pass, then vertical, both
   computed straight from the uint8 pixels with no intermediate rounding
   (PIL rounds to uint8 after each pass; seqrec does not). Only the output
   pixels inside the crop are computed.
3. channels="bgr" swaps R and B (after resizing).
4. Normalisation (v - mean[c]) / std[c], with v in 0..255 units and c the
   *output* channel index (so with channels="bgr", mean[0] is the blue mean).
5. layout="nchw" returns [3, height, width]; "nhwc" returns
   [height, width, 3]. No batch axis: stack frames with np.stack for N.

Computed in float64 and returned as float32; seqrec computes in float32 and
agrees to ~1e-5 in the same units (see tests/video_source.rs).
"""

import math

import numpy as np

__all__ = ["preprocess", "resized_geometry", "filter_weights"]


def resized_geometry(in_w, in_h, width, height, resize="crop"):
    """Returns (resized_w, resized_h, left, top) of the resize + centre crop."""
    if resize == "stretch":
        return width, height, 0, 0
    if resize != "crop":
        raise ValueError(f"resize must be 'crop' or 'stretch', not {resize!r}")
    # Which side limits: width if width/in_w >= height/in_h (exact, in integers).
    if width * in_h >= height * in_w:
        rw = width
        rh = max(height, int(math.floor(in_h * width / in_w + 0.5)))
    else:
        rh = height
        rw = max(width, int(math.floor(in_w * height / in_h + 0.5)))
    return rw, rh, (rw - width) // 2, (rh - height) // 2


def filter_weights(in_size, out_size, first, count):
    """PIL's antialiased bilinear weights for output pixels first..first+count
    of a resize in_size -> out_size. Returns a list of (start, weights)."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale
    out = []
    for i in range(first, first + count):
        centre = (i + 0.5) * scale
        xmin = max(int(centre - support + 0.5), 0)
        xmax = min(int(centre + support + 0.5), in_size)
        x = np.arange(xmin, xmax, dtype=np.float64)
        w = np.maximum(0.0, 1.0 - np.abs((x - centre + 0.5) / filterscale))
        total = w.sum()
        if total != 0.0:
            w = w / total
        out.append((xmin, w))
    return out


def _matrix(in_size, out_size, first, count):
    m = np.zeros((count, in_size), dtype=np.float64)
    for k, (start, w) in enumerate(filter_weights(in_size, out_size, first, count)):
        m[k, start : start + len(w)] = w
    return m


def preprocess(
    rgb,
    width=224,
    height=224,
    resize="crop",
    mean=(0.0, 0.0, 0.0),
    std=(1.0, 1.0, 1.0),
    channels="rgb",
    layout="nchw",
):
    """uint8 [H, W, 3] RGB frame -> float32 model input (see the module doc)."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected uint8 [H, W, 3], got {rgb.dtype} {rgb.shape}")
    if channels not in ("rgb", "bgr"):
        raise ValueError(f"channels must be 'rgb' or 'bgr', not {channels!r}")
    if layout not in ("nchw", "nhwc"):
        raise ValueError(f"layout must be 'nchw' or 'nhwc', not {layout!r}")
    in_h, in_w, _ = rgb.shape
    rw, rh, left, top = resized_geometry(in_w, in_h, width, height, resize)
    mx = _matrix(in_w, rw, left, width)  # [width, in_w]
    my = _matrix(in_h, rh, top, height)  # [height, in_h]
    x = rgb.astype(np.float64)
    x = np.einsum("ow,hwc->hoc", mx, x)  # horizontal pass: [in_h, width, 3]
    x = np.einsum("oh,hwc->owc", my, x)  # vertical pass: [height, width, 3]
    if channels == "bgr":
        x = x[:, :, ::-1]
    x = (x - np.asarray(mean, np.float64)) / np.asarray(std, np.float64)
    if layout == "nchw":
        x = x.transpose(2, 0, 1)
    return np.ascontiguousarray(x, dtype=np.float32)


def _pil_check():
    """Compares with PIL's BILINEAR resize + crop (which rounds to uint8)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for (h, w), (th, tw), mode in [
        ((120, 160), (224, 224), "crop"),
        ((480, 640), (224, 224), "crop"),
        ((1080, 1920), (224, 224), "crop"),
        ((240, 320), (112, 160), "stretch"),
        ((97, 203), (64, 48), "crop"),
    ]:
        yy, xx = np.mgrid[0:h, 0:w]
        img = np.stack([(xx * 255 // max(w - 1, 1)), (yy * 255 // max(h - 1, 1)),
                        ((xx + yy) * 7) % 256], -1).astype(np.uint8)
        noisy = np.clip(img.astype(int) + rng.integers(-20, 20, img.shape), 0, 255).astype(np.uint8)
        for name, a in (("smooth", img), ("noisy", noisy)):
            ours = preprocess(a, tw, th, mode, layout="nhwc")
            rw, rh, left, top = resized_geometry(w, h, tw, th, mode)
            pil = Image.fromarray(a).resize((rw, rh), Image.BILINEAR)
            pil = np.asarray(pil.crop((left, top, left + tw, top + th)), np.float32)
            d = np.abs(ours - pil)
            print(f"{w}x{h} -> {tw}x{th} {mode:7} {name:6}: max |ours - PIL| = {d.max():.3f}, mean = {d.mean():.3f}")


if __name__ == "__main__":
    _pil_check()
