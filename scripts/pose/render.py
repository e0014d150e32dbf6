#!/usr/bin/env python3
"""Renders motion-capture keypoints as simple clothed figures, so the pose CNN sees pixels made from
the same motions the head learns (issue 12: "render stick figures or silhouettes ... run them through
the pose CNN").

    from render import Renderer
    r = Renderer(rng)                       # one figure look and background per stream
    rgb = r.frame(uv, depth)                # uv [17, 2] pixels (x, y); depth [17] metres -> uint8 [H, W, 3]

    python scripts/pose/render.py PYBULLET_DATA OUT_DIR    # a few PNGs to look at

The figure: capsules for the limbs and the neck, a filled torso quad, an ellipse head with a face
(darker eyes, a nose tip) turned the way the nose keypoint says, hands and shoes; shirt, trousers,
skin and shoe colours drawn at random per stream; limbs drawn far-to-near by their depth, the far side
a little darker. Backgrounds: a random two-colour gradient with a floor band and blurred noise.
Drawn at 2x and downsampled (antialiasing). PIL only.
"""
import os
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

W, H = 640, 480
SS = 2  # supersampling

LIMBS = [  # (a, b, part, width in torso lengths)
    (5, 7, "shirt", 0.22), (7, 9, "skin", 0.17), (6, 8, "shirt", 0.22), (8, 10, "skin", 0.17),
    (11, 13, "trousers", 0.30), (13, 15, "trousers", 0.22), (12, 14, "trousers", 0.30),
    (14, 16, "trousers", 0.22),
]


def _colour(rng, lo, hi):
    return tuple(int(v) for v in rng.integers(lo, hi, 3))


class Renderer:
    def __init__(self, rng, size=(W, H)):
        self.w, self.h = size
        skin = np.array([[233, 190, 160], [198, 134, 96], [141, 85, 54], [250, 215, 190], [90, 56, 37]])
        self.col = {
            "skin": tuple(int(v) for v in np.clip(skin[rng.integers(len(skin))] + rng.integers(-15, 15, 3), 0, 255)),
            "shirt": _colour(rng, 0, 256),
            "trousers": _colour(rng, 0, 200),
            "shoe": _colour(rng, 0, 90),
            "hair": _colour(rng, 0, 120),
        }
        self.bg = self._background(rng)

    def _background(self, rng):
        a, b = np.array(_colour(rng, 40, 230), float), np.array(_colour(rng, 40, 230), float)
        t = np.linspace(0, 1, self.h)[:, None, None]
        img = (1 - t) * a + t * b + np.zeros((1, self.w, 1))
        floor = int(self.h * rng.uniform(0.55, 0.8))
        img[floor:] = img[floor:] * rng.uniform(0.5, 0.9)
        noise = rng.normal(0, rng.uniform(3, 20), (self.h // 8 + 1, self.w // 8 + 1, 3))
        noise = np.kron(noise, np.ones((8, 8, 1)))[: self.h, : self.w]
        img = np.clip(img + noise, 0, 255).astype(np.uint8)
        return Image.fromarray(img).filter(ImageFilter.GaussianBlur(2)).resize((self.w * SS, self.h * SS))

    def frame(self, uv, depth):
        im = self.bg.copy()
        d = ImageDraw.Draw(im)
        p = uv * SS
        torso = np.linalg.norm(p[5:7].mean(0) - p[11:13].mean(0)) + 1e-6
        near = depth.mean()

        def shade(c, z):  # far side a little darker
            f = 0.8 if z > near else 1.0
            return tuple(int(v * f) for v in c)

        def capsule(a, b, width, colour):
            r = max(1.0, width * torso / 2)
            d.line([tuple(a), tuple(b)], fill=colour, width=int(2 * r))
            for q in (a, b):
                d.ellipse([q[0] - r, q[1] - r, q[0] + r, q[1] + r], fill=colour)

        items = []
        for a, b, part, wd in LIMBS:
            items.append((max(depth[a], depth[b]), "limb", (a, b, part, wd)))
        items.append((depth[[5, 6, 11, 12]].mean(), "torso", None))
        items.append((depth[0], "head", None))
        for z, kind, arg in sorted(items, key=lambda t: -t[0]):
            if kind == "limb":
                a, b, part, wd = arg
                capsule(p[a], p[b], wd, shade(self.col[part], z))
                if b in (9, 10):  # hand
                    capsule(p[b], p[b], 0.2, shade(self.col["skin"], z))
                if b in (15, 16):  # shoe: a short capsule pointing away from the knee
                    v = p[b] - p[b - 2]
                    v = v / (np.linalg.norm(v) + 1e-6)
                    foot = p[b] + 0.12 * torso * np.array([-v[1], v[0]]) * np.sign(p[0, 0] - p[b, 0] + 1e-6)
                    capsule(p[b], foot, 0.16, shade(self.col["shoe"], z))
            elif kind == "torso":
                quad = [tuple(p[5]), tuple(p[6]), tuple(p[12]), tuple(p[11])]
                d.polygon(quad, fill=self.col["shirt"])
                capsule(p[5], p[6], 0.25, self.col["shirt"])
                capsule(p[11], p[12], 0.3, self.col["trousers"])
            else:
                neck = p[5:7].mean(0)
                head = p[[0, 1, 2, 3, 4]].mean(0)
                capsule(neck, head, 0.16, self.col["skin"])
                r = 0.28 * torso
                d.ellipse([head[0] - r, head[1] - 1.15 * r, head[0] + r, head[1] + 1.15 * r], fill=self.col["skin"])
                # hair on the side away from the face
                face = p[0] - head
                if np.linalg.norm(face) > 0.05 * r and depth[0] < depth[3:5].mean():
                    for k in (1, 2):
                        e = p[k]
                        d.ellipse([e[0] - 0.06 * r * 3, e[1] - 0.05 * r * 3, e[0] + 0.06 * r * 3, e[1] + 0.05 * r * 3],
                                  fill=(40, 30, 30))
                    d.ellipse([p[0][0] - 0.1 * r, p[0][1] - 0.1 * r, p[0][0] + 0.1 * r, p[0][1] + 0.1 * r],
                              fill=shade(self.col["skin"], near + 1))
                else:
                    d.ellipse([head[0] - r, head[1] - 1.15 * r, head[0] + r, head[1] + 0.3 * r], fill=self.col["hair"])
        return np.asarray(im.resize((self.w, self.h), Image.BILINEAR))


def main():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import mocap
    data, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    skel = mocap.urdf_skeleton(os.path.join(data, "humanoid", "humanoid.urdf"))
    rng = np.random.default_rng(0)
    for name in ["walk", "run", "jump", "punch", "kick", "crawl", "cartwheel", "dance_a"]:
        kp, _ = mocap.motion_keypoints(os.path.join(data, "data", "motions", f"humanoid3d_{name}.txt"), skel)
        uv, depth = mocap.project(kp, rng.uniform(0, 6.28), 0.1, 5.0, 1.6, with_depth=True)
        uv = uv * 320 + np.array([320, 240])
        r = Renderer(rng)
        Image.fromarray(r.frame(uv[len(uv) // 3], depth[len(uv) // 3])).save(os.path.join(out, f"{name}.png"))


if __name__ == "__main__":
    main()
