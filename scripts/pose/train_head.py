#!/usr/bin/env python3
"""First experiment for issue 12's head: an LSTM over 2D keypoint features of motion capture seen by
random virtual cameras, evaluated leave-one-motion-source-out. Clean projected keypoints plus
detector-like noise only: the rendered path through MoveNet is not in this experiment yet.

    /work/venv-genre/bin/python scripts/pose/train_head.py PYBULLET_DATA [--folds] [--epochs N]

Sources (see mocap.py): the 15 DeepMimic motions and the 5 `walker` motions of the pybullet 3.2.7
wheel (zlib), CMU 01_01 (forward jumps; frames labelled jump only while the pelvis is >= 6 cm above
its standing height, the rest ungraded) and Boxing_Toes (punch) from Debian assimp-testmodels
(used as data, not shipped). `idle`: a frozen frame of the walking/standing sources with a slow sway.

Features per frame (FEATURES below; what a Rust stage will compute): keypoints centred on the hip
midpoint and divided by the torso length (shoulder midpoint to hip midpoint), their frame-to-frame
velocity, the hip midpoint's velocity in torso lengths, and the 17 scores; a joint below score 0.2
has its coordinates and velocity set to 0 (its score says it is missing).
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mocap  # noqa: E402

FPS = 15.0
LABELS = ["idle", "walk", "run", "jump", "punch", "kick", "crawl", "cartwheel", "dance", "getup"]
SEQ_S = 6.0
VARY_BODY = os.environ.get("POSE_VARY_BODY", "0") == "1"
HIDDEN = int(os.environ.get("POSE_HIDDEN", "64"))
DROP = float(os.environ.get("POSE_DROP", "0.0"))
MIN_SCORE = 0.2


def load_sources(data):
    """{source: (kp [F,17,3] metres y-up, dt s, per-frame label index or -1, loopable)}."""
    skel = mocap.urdf_skeleton(os.path.join(data, "humanoid", "humanoid.urdf"))
    mdir = os.path.join(data, "data", "motions")
    out = {}
    for name, lab in mocap.LABEL.items():
        if lab not in LABELS:
            continue
        kp, dt = mocap.motion_keypoints(os.path.join(mdir, f"humanoid3d_{name}.txt"), skel)
        out["dm_" + name] = (kp, dt, np.full(len(kp), LABELS.index(lab)), True)
    for f in sorted(os.listdir(os.path.join(mdir, "walker"))):
        kp, dt = mocap.motion_keypoints(os.path.join(mdir, "walker", f), skel)
        out["walker_" + f[:-4]] = (kp, dt, np.full(len(kp), LABELS.index("walk")), True)
    bvh = "/usr/share/assimp/models/BVH"
    kp, dt = mocap.bvh_keypoints(os.path.join(bvh, "01_01.bvh"), every=4)
    pelvis = kp[:, 11:13, 1].mean(1)
    lab = np.where(pelvis > np.median(pelvis) + 0.06, LABELS.index("jump"), -1)
    out["cmu_01_01"] = (kp, dt, lab, False)
    kp, dt = mocap.bvh_keypoints(os.path.join(bvh, "Boxing_Toes.bvh"), every=4)
    out["mb_boxing"] = (kp, dt, np.full(len(kp), LABELS.index("punch")), False)
    return out


# Leave-one-source-out folds: labels with two or more sources.
# A held-out name is a prefix: "walker_" holds out all five walker motions at once.
FOLDS = {"walk": ["dm_walk", "walker_"], "jump": ["dm_jump", "cmu_01_01"],
         "punch": ["dm_punch", "mb_boxing"], "kick": ["dm_kick", "dm_spinkick"],
         "dance": ["dm_dance_a", "dm_dance_b"], "getup": ["dm_getup_faceup", "dm_getup_facedown"]}
IDLE_FROM = ["dm_walk", "walker_0walk_forward", "cmu_01_01", "mb_boxing"]  # a frozen frame of these


def timeline(src, rng, seconds, fps=FPS):
    """3D keypoints and labels at `fps` for `seconds`: the motion played at a random speed (0.8-1.25x),
    looped clips repeated with their root displacement carried on, others cut at a random start."""
    kp, dt, lab, loop = src
    speed = rng.uniform(0.8, 1.25)
    n = int(seconds * fps)
    t = rng.uniform(0, len(kp) * dt) + np.arange(n) * speed / fps
    k = t / dt
    if loop:
        disp = kp[-1, 11:13].mean(0) - kp[0, 11:13].mean(0)
        disp[1] = 0.0
        cyc = np.floor(k / (len(kp) - 1))
        kk = k - cyc * (len(kp) - 1)
    else:
        kk = np.clip(k % len(kp), 0, len(kp) - 1.001)
        cyc = np.zeros(n)
        disp = np.zeros(3)
    i0 = np.floor(kk).astype(int)
    i1 = np.minimum(i0 + 1, len(kp) - 1)
    w = (kk - i0)[:, None, None]
    x = (1 - w) * kp[i0] + w * kp[i1] + cyc[:, None, None] * disp
    return x, lab[i0]


def idle_timeline(srcs, rng, seconds, allowed, fps=FPS):
    pool = [n for n in IDLE_FROM if n in allowed]
    src = srcs[pool[rng.integers(len(pool))]]
    kp = src[0][rng.integers(len(src[0]))]
    n = int(seconds * fps)
    t = np.arange(n) / fps
    sway = 0.02 * np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * t + rng.uniform(0, 6.3))
    x = np.repeat(kp[None], n, 0)
    x[:, :, 0] += sway[:, None] * (x[:, :, 1] - x[:, 15:17, 1].mean(1)[:, None])  # lean: more at the head
    return x, np.full(n, LABELS.index("idle"))


def body_variation(x3, rng):
    """Other bodies: width vs height 0.85-1.15x about the hips, forearms and shins 0.85-1.15x."""
    x = x3.copy()
    hip = x[:, 11:13].mean(1, keepdims=True)
    w = rng.uniform(0.85, 1.15)
    x[:, :, [0, 2]] = hip[:, :, [0, 2]] + w * (x[:, :, [0, 2]] - hip[:, :, [0, 2]])
    for a, b in ((7, 9), (8, 10), (13, 15), (14, 16)):  # elbow->wrist, knee->ankle
        x[:, b] = x[:, a] + rng.uniform(0.85, 1.15) * (x[:, b] - x[:, a])
    return x


def camera_view(x3, rng):
    """2D keypoints in pixels of a 640x480 camera, with detector-like scores and noise."""
    if VARY_BODY:
        x3 = body_variation(x3, rng)
    az, el = rng.uniform(0, 2 * np.pi), rng.uniform(-0.1, 0.5)
    dist, focal = rng.uniform(3, 9), rng.uniform(1.0, 2.2)
    uv = mocap.project(x3, az, el, dist, focal, mirror=rng.random() < 0.5) * 320 + np.array([320, 240])
    torso = np.linalg.norm(uv[:, 5:7].mean(1) - uv[:, 11:13].mean(1), axis=-1).mean()
    uv = uv + rng.normal(0, rng.uniform(0.01, 0.05) * torso, uv.shape)
    score = np.clip(rng.normal(0.7, 0.15, uv.shape[:2]), 0.3, 0.99)
    drop = rng.random(uv.shape[:2]) < rng.uniform(0.0, 0.12)
    score[drop] = rng.uniform(0.0, MIN_SCORE, drop.sum())
    uv[drop] += rng.normal(0, torso, (drop.sum(), 2))
    return uv, score


def features(uv, score):
    """[T, 87] per-frame features (see the module doc); causal: frame t uses frames t and t-1."""
    ok = score >= MIN_SCORE
    hip = uv[:, 11:13].mean(1)
    sh = uv[:, 5:7].mean(1)
    torso = np.maximum(np.linalg.norm(sh - hip, axis=-1), 1e-3)[:, None]
    rel = (uv - hip[:, None]) / torso[..., None]
    rel[~ok] = 0.0
    vel = np.zeros_like(rel)
    vel[1:] = rel[1:] - rel[:-1]
    both = np.zeros_like(ok)
    both[1:] = ok[1:] & ok[:-1]
    vel[~both] = 0.0
    hv = np.zeros_like(hip)
    hv[1:] = (hip[1:] - hip[:-1]) / torso[1:]
    return np.concatenate([rel.reshape(len(uv), -1), vel.reshape(len(uv), -1), hv, score], 1).astype(np.float32)


def make_stream(srcs, allowed, rng, seconds=SEQ_S):
    """Features and labels of a stream of 1-3 actions (label switches between them)."""
    xs, ys = [], []
    left = seconds
    by_label = {}
    for name in allowed:
        for lab in set(srcs[name][2][srcs[name][2] >= 0].tolist()):
            by_label.setdefault(lab, []).append(name)
    while left > 0.5:
        seg = min(left, rng.uniform(2.0, seconds))
        lab = rng.integers(len(LABELS))
        if lab == LABELS.index("idle"):
            x, y = idle_timeline(srcs, rng, seg, allowed)
        else:
            if lab not in by_label:
                continue
            names = by_label[lab]
            x, y = timeline(srcs[names[rng.integers(len(names))]], rng, seg)
        xs.append(x)
        ys.append(y)
        left -= seg
    x3 = np.concatenate(xs)
    uv, score = camera_view(x3, rng)
    return features(uv, score), np.concatenate(ys)


def fit(srcs, train_names, epochs, seed=0, hidden=HIDDEN):
    import torch
    from torch import nn
    torch.manual_seed(seed)
    torch.set_num_threads(2)
    rng = np.random.default_rng(seed)
    lstm, head = nn.LSTM(87, hidden), nn.Linear(hidden, len(LABELS))
    params = list(lstm.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=3e-3, weight_decay=1e-2)
    for ep in range(epochs):
        for _ in range(10):
            batch = [make_stream(srcs, train_names, rng) for _ in range(32)]
            T = min(len(b[0]) for b in batch)
            x = torch.from_numpy(np.stack([b[0][:T] for b in batch], 1))
            y = torch.from_numpy(np.stack([b[1][:T] for b in batch], 1)).long()
            out, _ = lstm(nn.functional.dropout(x, DROP))
            logit = head(out).reshape(-1, len(LABELS))
            yy = y.reshape(-1)
            loss = nn.functional.cross_entropy(logit[yy >= 0], yy[yy >= 0])
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
    return lstm, head


def segment_accuracy(model, srcs, name, rng, n=40, seconds=2.0):
    """Held-out source `name`: n streams of `seconds` (random camera, speed, start); a segment is right
    when the argmax of its mean posterior over graded frames is the source's label."""
    import torch
    lstm, head = model
    ok = 0
    conf = {}
    for _ in range(n):
        x3, y = timeline(srcs[name], rng, seconds)
        uv, score = camera_view(x3, rng)
        with torch.no_grad():
            out, _ = lstm(torch.from_numpy(features(uv, score))[:, None])
            p = torch.softmax(head(out[:, 0]), -1).numpy()
        g = y >= 0
        if not g.any():
            continue
        guess = int(p[g].mean(0).argmax())
        truth = int(np.bincount(y[g]).argmax())
        ok += guess == truth
        conf[LABELS[guess]] = conf.get(LABELS[guess], 0) + 1
    return ok / n, conf


def main():
    data = sys.argv[1]
    epochs = int(sys.argv[sys.argv.index("--epochs") + 1]) if "--epochs" in sys.argv else 30
    srcs = load_sources(data)
    for k, v in srcs.items():
        g = v[2] >= 0
        print(f"{k:24s} {len(v[0]):5d} frames x {v[1] * 1000:5.1f} ms, graded {g.mean():.2f}, "
              f"label {LABELS[int(np.bincount(v[2][g]).argmax())]}")
    rng = np.random.default_rng(1)
    results = {}
    for label, names in FOLDS.items():
        for held in names:
            test = [n for n in srcs if n.startswith(held)]
            train = [n for n in srcs if n not in test]
            model = fit(srcs, train, epochs)
            acc, conf = 0.0, {}
            for name in test:
                a, c = segment_accuracy(model, srcs, name, rng, n=40 // len(test))
                acc += a / len(test)
                for k, v in c.items():
                    conf[k] = conf.get(k, 0) + v
            results[held] = acc
            print(f"[fold] hold out {held:22s} ({label}): 2 s segment accuracy {acc:.2f}  guesses {conf}",
                  flush=True)
    print(f"[folds] mean over {len(results)} held-out sources: {np.mean(list(results.values())):.3f}")


if __name__ == "__main__":
    main()
